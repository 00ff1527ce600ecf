//! Submitting a request: check it against the template, the owner and the guardrails, record
//! it, then start it (or leave it waiting for an approval). An [`IdempotencyKey`] makes a
//! retried submission return the request the first one made.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::RequestsService;
use crate::auth::Identity;
use crate::catalog::{EntityRef, Kind, OwnerRef, Template};
use crate::idempotency::{IdempotencyKey, NextAction};
use crate::messages::{ChatEvent, ChatNotification};
use crate::policy::PolicyViolation;
use crate::ports::{QueueMessage, WorkflowError};
use crate::provisioning::{PlannedStep, ResourceSpec};
use crate::requests::{NewRequest, ProvisioningRequest, RequestId, RequestStatus, ResourceName};
use crate::{Error, ErrorCode};

/// How long a second submission with the same key waits for the first to finish.
const IN_PROGRESS_WAIT: Duration = Duration::from_secs(10);
/// How long a submission holds its key's lock before another may take it over.
const LOCK_FOR: Duration = Duration::from_secs(60);

/// What a developer asks for: the body of `POST /v1/requests`, a chat `request` command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestForm {
    /// A golden path's name.
    pub template: String,
    pub name: String,
    /// The owning Group (or User): `team-a` or `group:default/team-a`.
    pub owner: String,
    pub environment: String,
    /// The template's parameters, checked against its JSON Schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}

/// A dry run's verdict: what the guardrails say and what each step would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    pub dry_run: bool,
    pub allowed: bool,
    pub needs_approval: bool,
    pub violations: Vec<PolicyViolation>,
    pub resource_type: String,
    pub parameters: Value,
    pub plan: Vec<PlannedStep>,
}

/// A recorded request, and whether it is the one an earlier submission with the same key made.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub request: ProvisioningRequest,
    pub replayed: bool,
}

/// A request that passed every check and may be recorded.
struct Checked {
    new: NewRequest,
    plan: Vec<PlannedStep>,
    violations: Vec<PolicyViolation>,
}

fn invalid(code: ErrorCode, message: String) -> Error {
    Error::Invalid {
        code,
        message,
        violations: Vec::new(),
    }
}

impl RequestsService {
    /// Every check and the plan, with nothing recorded.
    pub async fn dry_run(&self, who: &Identity, form: &RequestForm) -> Result<DryRun, Error> {
        let checked = self.check(who, form, "dry-run").await?;
        Ok(DryRun {
            dry_run: true,
            allowed: checked.violations.is_empty(),
            needs_approval: checked.new.needs_approval,
            violations: checked.violations,
            resource_type: checked.new.resource_type,
            parameters: checked.new.parameters,
            plan: checked.plan,
        })
    }

    /// Records a request that passes every check and starts it, or leaves it waiting for an
    /// approval. With `key`, a retry (same caller, same key, same form) replays the first
    /// submission's request; another form under the same key is refused.
    pub async fn submit(
        &self,
        who: &Identity,
        form: &RequestForm,
        key: Option<&IdempotencyKey>,
    ) -> Result<Submission, Error> {
        let Some(key) = key else {
            let request = self.record(who, form, &RequestId::random()).await?;
            return Ok(Submission {
                request,
                replayed: false,
            });
        };
        // Keys are per caller, so one user's key never collides with another's.
        let scoped = format!("{}#{}", who.user().key(), key.as_str());
        let id = RequestId::for_digest(&hex::encode(Sha256::digest(scoped.as_bytes())));
        let payload = serde_json::to_value(form)
            .map_err(|e| Error::Internal(format!("encoding a request form: {e}")))?;
        let deadline = tokio::time::Instant::now() + IN_PROGRESS_WAIT;
        loop {
            match self
                .idempotency
                .try_acquire(&scoped, &payload, LOCK_FOR)
                .await?
            {
                NextAction::Execute(lease) => {
                    return match self.record(who, form, &id).await {
                        Ok(request) => {
                            self.idempotency
                                .complete(
                                    &scoped,
                                    &lease,
                                    &payload,
                                    &json!({"requestId": request.id}),
                                )
                                .await?;
                            Ok(Submission {
                                request,
                                replayed: false,
                            })
                        }
                        Err(e) => {
                            self.idempotency.release(&scoped, &lease).await?;
                            Err(e)
                        }
                    };
                }
                NextAction::Replay(data) => {
                    let first = data
                        .get("requestId")
                        .and_then(Value::as_str)
                        .unwrap_or(id.as_str());
                    return Ok(Submission {
                        request: self.requests.get(first).await?,
                        replayed: true,
                    });
                }
                NextAction::InProgress if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                NextAction::InProgress => {
                    return Err(Error::Conflict(
                        "a request with this Idempotency-Key is still being submitted; retry shortly"
                            .into(),
                    ));
                }
            }
        }
    }

    /// Every check a request must pass, with no side effect (a dry run stops here).
    async fn check(&self, who: &Identity, form: &RequestForm, id: &str) -> Result<Checked, Error> {
        // Whoever calls (HTTP, chat-ops, the CLI), the owner and template are judged against
        // a catalog no older than its staleness bound.
        self.catalog.refresh().await?;
        let name = ResourceName::parse(&form.name)?;
        let template = self.template(&form.template)?;
        let resource_type = template.resource_type().to_owned();
        let Some(planner) = self.planners.get(&resource_type) else {
            let why = self
                .unavailable
                .get(&resource_type)
                .cloned()
                .unwrap_or_else(|| {
                    format!("paved has no driver for the resource type {resource_type:?}")
                });
            return Err(invalid(ErrorCode::DriverNotConfigured, why));
        };
        let parameters =
            template.with_defaults(form.parameters.clone().unwrap_or_else(|| json!({})));
        template.validate(&parameters)?;

        let owner = OwnerRef::parse(&form.owner)
            .map_err(|m| invalid(ErrorCode::InvalidOwner, format!("owner: {m}")))?;
        let owner_exists = self
            .catalog
            .read()
            .get_by_ref(owner.entity_ref())
            .is_some_and(|v| matches!(v.kind, Kind::Group | Kind::User));
        if !owner_exists {
            return Err(invalid(
                ErrorCode::UnknownOwner,
                format!("the owner {owner} is not a group or user in the catalog"),
            ));
        }
        if !who.is(owner.entity_ref()) && !self.access.is_admin(who) {
            return Err(Error::Forbidden(format!(
                "you are not a member of {owner}, so you cannot request resources it owns"
            )));
        }

        let owner_ref = owner.to_string();
        let verdict = self.guardrails.evaluate_request(&json!({
            "request": {
                "template": form.template, "name": name.as_str(), "owner": owner_ref,
                "environment": form.environment, "parameters": parameters,
                "requester": who.user().to_string(),
            },
            "template": {"name": template.name(), "environments": template.environments()},
            "usage": {"team_active_resources": self.requests.live_count(&owner_ref).await?},
        }))?;
        let spec = ResourceSpec {
            request_id: id.to_owned(),
            name: name.to_string(),
            owner: owner_ref.clone(),
            environment: form.environment.clone(),
            parameters: parameters.clone(),
        };
        let plan = if verdict.violations.is_empty() {
            planner
                .plan(&spec)
                .map_err(|e| invalid(ErrorCode::PlanFailed, e.to_string()))?
        } else {
            Vec::new()
        };
        Ok(Checked {
            new: NewRequest {
                id: id.to_owned(),
                template: form.template.clone(),
                resource_type,
                name: name.to_string(),
                owner: owner_ref,
                environment: form.environment.clone(),
                parameters,
                requester: who.user().to_string(),
                steps: template.steps().to_vec(),
                needs_approval: verdict.needs_approval,
                reconcile: template.reconcile().clone(),
            },
            plan,
            violations: verdict.violations,
        })
    }

    /// The golden path called `name`, parsed.
    fn template(&self, name: &str) -> Result<Template, Error> {
        let catalog = self.catalog.read();
        let view = catalog
            .get_by_ref(&EntityRef::new("template", "default", name))
            .ok_or_else(|| {
                invalid(
                    ErrorCode::UnknownTemplate,
                    format!("there is no template named {name:?}; GET /v1/templates lists them"),
                )
            })?;
        let entity: Value = serde_json::from_slice(&view.json).map_err(|e| {
            tracing::error!(template = %name, error = %e, "a stored template is not JSON");
            Error::Internal(format!("template {name} is corrupt in the catalog"))
        })?;
        Template::from_entity(&entity)
    }

    /// Records a checked request and starts it, or leaves it waiting for an approval.
    async fn record(
        &self,
        who: &Identity,
        form: &RequestForm,
        id: &RequestId,
    ) -> Result<ProvisioningRequest, Error> {
        let checked = self.check(who, form, id.as_str()).await?;
        if !checked.violations.is_empty() {
            return Err(Error::PolicyDenied(checked.violations));
        }
        let request = match self.requests.create(checked.new).await {
            Ok(r) => r,
            // A keyed request whose first attempt died after recording it: carry on with it.
            Err(Error::Conflict(_)) => self.requests.get(id.as_str()).await?,
            Err(e) => return Err(e),
        };
        tracing::info!(request_id = %request.id, template = %request.template, user = %who.user(), "request submitted");
        match request.status {
            RequestStatus::Submitted if request.needs_approval => {
                let waiting = self
                    .requests
                    .transition(
                        &request.id,
                        RequestStatus::WaitingForApproval,
                        "the guardrails require an approval",
                    )
                    .await?;
                self.notify_approvers(&waiting.id).await;
                Ok(waiting)
            }
            RequestStatus::Submitted => {
                let queued = self
                    .requests
                    .transition(&request.id, RequestStatus::Queued, "no approval needed")
                    .await?;
                Ok(self.start_execution(queued).await)
            }
            RequestStatus::Queued => Ok(self.start_execution(request).await),
            _ => Ok(request),
        }
    }

    /// Tells the approvers (through the notifications queue, which the worker delivers to
    /// Slack). The request is recorded either way; a failed send is logged, and the request can
    /// still be approved from the API or a `/paved status` reply's buttons.
    async fn notify_approvers(&self, id: &str) {
        let note = ChatNotification::new(id, ChatEvent::ApprovalNeeded);
        if let Err(e) = self
            .queue
            .send(&self.notification_queue, QueueMessage::new(note.to_json()))
            .await
        {
            tracing::error!(request_id = %id, error = %e, "the approval notification was not queued");
        }
    }

    /// Starts the state machine of a QUEUED request (named after it: starting twice is one
    /// execution). If the start fails the request stays QUEUED and [`Self::resume_queued`]
    /// retries it.
    pub(super) async fn start_execution(
        &self,
        request: ProvisioningRequest,
    ) -> ProvisioningRequest {
        let input = execution_input(&request);
        match self.workflow.start_execution(&request.id, &input).await {
            Ok(_) | Err(WorkflowError::ExecutionAlreadyExists(_)) => {}
            Err(e) => {
                tracing::error!(request_id = %request.id, error = %e, "starting the execution failed; the QUEUED sweeper retries it")
            }
        }
        request
    }

    /// Starts the execution of every QUEUED request (idempotent): `paved up` runs it at
    /// start-up and every minute, AWS on the `requests-sweeper` schedule, so a crash between
    /// recording a request and starting it loses nothing.
    pub async fn resume_queued(&self) -> Result<usize, Error> {
        let queued = self.requests.with_status(RequestStatus::Queued).await?;
        let n = queued.len();
        for r in queued {
            self.start_execution(r).await;
        }
        Ok(n)
    }
}

fn execution_input(r: &ProvisioningRequest) -> Value {
    json!({
        "requestId": r.id,
        "resourceType": r.resource_type,
        "spec": r.spec(),
        "steps": r.steps.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
    })
}
