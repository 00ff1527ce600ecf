//! Acting on a request: approve, reject, cancel, and deprovision what it made.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use paved_core::Error;
use paved_core::auth::Identity;
use paved_core::catalog::OwnerRef;
use paved_core::ports::QueueMessage;
use paved_core::provisioning::ResourceSpec;
use paved_core::requests::{Decision, ProvisioningRequest, RequestStatus};
use paved_core::tasks::{TaskAction, TaskMessage};
use paved_http::{ApiError, Caller};
use serde_json::json;

use crate::RequestsState;
use crate::views::{request_view, visible};

fn ok(r: &ProvisioningRequest, status: StatusCode) -> Response {
    (status, axum::Json(request_view(r))).into_response()
}

/// The guardrails' approval rules (approver group, not the requester).
fn check_approver(s: &RequestsState, who: &Identity, r: &ProvisioningRequest) -> Result<(), Error> {
    let violations = s.guardrails.evaluate_approval(&json!({
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
fn check_owner(s: &RequestsState, who: &Identity, r: &ProvisioningRequest) -> Result<(), Error> {
    let owner = OwnerRef::parse(&r.owner).map_err(|m| {
        tracing::error!(request_id = %r.id, owner = %r.owner, why = %m, "a stored request's owner does not parse");
        Error::Internal(format!("request {} has a corrupt owner", r.id))
    })?;
    if who.is(owner.entity_ref()) || s.access.is_admin(who) || who.is_user(&r.requester) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "only members of {owner} (or platform admins) may do this"
        )))
    }
}

fn waiting(r: &ProvisioningRequest) -> Result<(), Error> {
    if r.status == RequestStatus::WaitingForApproval {
        Ok(())
    } else {
        Err(Error::Invalid {
            code: "invalid_transition",
            message: format!(
                "request {} is {:?}, not waiting for an approval",
                r.id, r.status
            ),
            violations: Vec::new(),
        })
    }
}

/// Approves a request that waits for an approval (approvers only, never the requester).
#[utoipa::path(post, path = "/v1/requests/{id}/approve", tag = "requests",
    params(("id" = String, Path, description = "The request id (req-...)")),
    responses(
        (status = 200, description = "The request: status, steps, conditions and events"),
        (status = 401, description = "No or bad token", content_type = "application/problem+json"),
        (status = 403, description = "Not allowed to act on it", content_type = "application/problem+json"),
        (status = 404, description = "No such request visible to the caller", content_type = "application/problem+json"),
        (status = 422, description = "The request's status does not allow this", content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn approve(
    State(s): State<RequestsState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let r = decide(&s, &who, &id, true).await?;
    let r = crate::submit::start_execution(&s, r).await?;
    Ok(ok(&r, StatusCode::OK))
}

/// Rejects a request that waits for an approval.
#[utoipa::path(post, path = "/v1/requests/{id}/reject", tag = "requests",
    params(("id" = String, Path, description = "The request id (req-...)")),
    responses(
        (status = 200, description = "The request: status, steps, conditions and events"),
        (status = 401, description = "No or bad token", content_type = "application/problem+json"),
        (status = 403, description = "Not allowed to act on it", content_type = "application/problem+json"),
        (status = 404, description = "No such request visible to the caller", content_type = "application/problem+json"),
        (status = 422, description = "The request's status does not allow this", content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn reject(
    State(s): State<RequestsState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let r = decide(&s, &who, &id, false).await?;
    Ok(ok(&r, StatusCode::OK))
}

/// Records an approver's decision: QUEUED when approved, REJECTED when not.
async fn decide(
    s: &RequestsState,
    who: &Identity,
    id: &str,
    approved: bool,
) -> Result<ProvisioningRequest, Error> {
    let current = visible(s, who, id).await?;
    waiting(&current)?;
    check_approver(s, who, &current)?;
    let by = who.user().to_string();
    let (next, verb) = if approved {
        (RequestStatus::Queued, "approved")
    } else {
        (RequestStatus::Rejected, "rejected")
    };
    let r = s
        .requests
        .update(id, |r, now| {
            waiting(r)?;
            r.decision = Some(Decision {
                by: by.clone(),
                at: now,
                approved,
            });
            r.advance(next, &format!("{verb} by {by}"), now)
        })
        .await?;
    tracing::info!(request_id = %id, approver = %by, decision = verb, "request decided");
    Ok(r)
}

/// Cancels a request before it is provisioned (owners, the requester, admins).
#[utoipa::path(post, path = "/v1/requests/{id}/cancel", tag = "requests",
    params(("id" = String, Path, description = "The request id (req-...)")),
    responses(
        (status = 200, description = "The request: status, steps, conditions and events"),
        (status = 401, description = "No or bad token", content_type = "application/problem+json"),
        (status = 403, description = "Not allowed to act on it", content_type = "application/problem+json"),
        (status = 404, description = "No such request visible to the caller", content_type = "application/problem+json"),
        (status = 422, description = "The request's status does not allow this", content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn cancel(
    State(s): State<RequestsState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let current = visible(&s, &who, &id).await?;
    check_owner(&s, &who, &current)?;
    let by = who.user().to_string();
    let r = s
        .requests
        .update(&id, |r, now| {
            r.advance(RequestStatus::Cancelled, &format!("cancelled by {by}"), now)
        })
        .await?;
    Ok(ok(&r, StatusCode::OK))
}

/// Removes what a READY request made. Repeating the call while it is DEPROVISIONING re-queues
/// the same task (the worker runs it once in effect).
/// Deprovisions what a READY request made: DEPROVISIONING, then DELETED or DELETE_FAILED.
#[utoipa::path(delete, path = "/v1/resources/{id}", tag = "requests",
    params(("id" = String, Path, description = "The request id (req-...)")),
    responses(
        (status = 200, description = "The request: status, steps, conditions and events"),
        (status = 401, description = "No or bad token", content_type = "application/problem+json"),
        (status = 403, description = "Not allowed to act on it", content_type = "application/problem+json"),
        (status = 404, description = "No such request visible to the caller", content_type = "application/problem+json"),
        (status = 422, description = "The request's status does not allow this", content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn deprovision(
    State(s): State<RequestsState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let current = visible(&s, &who, &id).await?;
    check_owner(&s, &who, &current)?;
    let by = who.user().to_string();
    let r = if current.status == RequestStatus::Deprovisioning {
        current
    } else {
        s.requests
            .update(&id, |r, now| {
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
        spec: ResourceSpec {
            request_id: r.id.clone(),
            name: r.name.clone(),
            owner: r.owner.clone(),
            environment: r.environment.clone(),
            parameters: r.parameters.clone(),
        },
    };
    let body = paved_core::messages::WorkerMessage::Task(task).to_json();
    s.tasks.send(&s.task_queue, QueueMessage::new(body)).await?;
    tracing::info!(request_id = %id, user = %by, "deprovisioning queued");
    Ok(ok(&r, StatusCode::ACCEPTED))
}
