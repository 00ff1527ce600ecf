//! Acting on a request: approve, reject, cancel, and deprovision what it made.

use crate::ErrorCode;
use serde_json::json;

use super::RequestsService;
use crate::Error;
use crate::auth::Identity;
use crate::catalog::OwnerRef;
use crate::messages::WorkerMessage;
use crate::ports::QueueMessage;
use crate::requests::{Decision, ProvisioningRequest, RequestStatus};
use crate::tasks::{TaskAction, TaskMessage};

fn waiting(r: &ProvisioningRequest) -> Result<(), Error> {
    if r.status == RequestStatus::WaitingForApproval {
        Ok(())
    } else {
        Err(Error::Invalid {
            code: ErrorCode::InvalidTransition,
            message: format!(
                "request {} is {:?}, not waiting for an approval",
                r.id, r.status
            ),
            violations: Vec::new(),
        })
    }
}

impl RequestsService {
    /// Approves a request that waits for an approval (approvers only, never the requester),
    /// and starts it.
    pub async fn approve(&self, who: &Identity, id: &str) -> Result<ProvisioningRequest, Error> {
        let r = self.decide(who, id, true).await?;
        Ok(self.start_execution(r).await)
    }

    /// Rejects a request that waits for an approval.
    pub async fn reject(&self, who: &Identity, id: &str) -> Result<ProvisioningRequest, Error> {
        self.decide(who, id, false).await
    }

    /// Cancels a request before it is provisioned (owners, the requester, admins).
    pub async fn cancel(&self, who: &Identity, id: &str) -> Result<ProvisioningRequest, Error> {
        let current = self.visible(who, id).await?;
        self.check_owner(who, &current)?;
        let by = who.user().to_string();
        self.requests
            .update(&current.id, |r, now| {
                r.advance(RequestStatus::Cancelled, &format!("cancelled by {by}"), now)
            })
            .await
    }

    /// Removes what a READY request made: DEPROVISIONING, then the worker's delete task makes
    /// it DELETED or DELETE_FAILED. Repeating the call while it is DEPROVISIONING re-queues
    /// the same task (the worker runs it once in effect).
    pub async fn deprovision(
        &self,
        who: &Identity,
        id: &str,
    ) -> Result<ProvisioningRequest, Error> {
        let current = self.visible(who, id).await?;
        self.check_owner(who, &current)?;
        let by = who.user().to_string();
        let r = if current.status == RequestStatus::Deprovisioning {
            current
        } else {
            self.requests
                .update(&current.id, |r, now| {
                    r.advance(
                        RequestStatus::Deprovisioning,
                        &format!("deprovisioning requested by {by}"),
                        now,
                    )?;
                    r.deprovision_attempt += 1;
                    r.failure = None;
                    Ok(())
                })
                .await?
        };
        let task = TaskMessage {
            task_token: None,
            task_id: TaskMessage::task_id_for(
                &r.id,
                &format!("resource-{}", r.deprovision_attempt),
                TaskAction::Delete,
            ),
            resource_type: r.resource_type.clone(),
            step: "delete".into(),
            action: TaskAction::Delete,
            spec: r.spec(),
        };
        let body = WorkerMessage::Task(task).to_json();
        self.queue
            .send(&self.task_queue, QueueMessage::new(body))
            .await?;
        tracing::info!(request_id = %r.id, user = %by, "deprovisioning queued");
        Ok(r)
    }

    /// Records an approver's decision: QUEUED when approved, REJECTED when not.
    async fn decide(
        &self,
        who: &Identity,
        id: &str,
        approved: bool,
    ) -> Result<ProvisioningRequest, Error> {
        let current = self.visible(who, id).await?;
        waiting(&current)?;
        self.check_approver(who, &current)?;
        let by = who.user().to_string();
        let (next, verb) = if approved {
            (RequestStatus::Queued, "approved")
        } else {
            (RequestStatus::Rejected, "rejected")
        };
        let r = self
            .requests
            .update(&current.id, |r, now| {
                waiting(r)?;
                r.decision = Some(Decision {
                    by: by.clone(),
                    at: now,
                    approved,
                });
                r.advance(next, &format!("{verb} by {by}"), now)
            })
            .await?;
        tracing::info!(request_id = %r.id, approver = %by, decision = verb, "request decided");
        Ok(r)
    }

    /// The guardrails' approval rules (approver group, not the requester).
    fn check_approver(&self, who: &Identity, r: &ProvisioningRequest) -> Result<(), Error> {
        let violations = self.guardrails.evaluate_approval(&json!({
            "request": {"requester": r.requester, "owner": r.owner, "environment": r.environment, "template": r.template},
            "approver": {"user": who.user().to_string(), "groups": who.groups().iter().map(ToString::to_string).collect::<Vec<_>>()},
        }))?;
        if violations.is_empty() {
            Ok(())
        } else {
            Err(Error::Forbidden(
                violations
                    .iter()
                    .map(|v| format!("{}: {}", v.rule, v.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            ))
        }
    }

    /// Members of the owning team, the requester, and admins may cancel or deprovision.
    pub(super) fn check_owner(&self, who: &Identity, r: &ProvisioningRequest) -> Result<(), Error> {
        let owner = OwnerRef::parse(&r.owner).map_err(|m| {
            tracing::error!(request_id = %r.id, owner = %r.owner, why = %m, "a stored request's owner does not parse");
            Error::Internal(format!("request {} has a corrupt owner", r.id))
        })?;
        if who.is(owner.entity_ref()) || self.access.is_admin(who) || who.is_user(&r.requester) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "only members of {owner} (or platform admins) may do this"
            )))
        }
    }
}
