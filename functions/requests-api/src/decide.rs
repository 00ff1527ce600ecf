//! Acting on a request: approve, reject, cancel, and deprovision what it made
//! ([`RequestsService`](paved_core::services::RequestsService) holds the rules).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use paved_core::requests::ProvisioningRequest;
use paved_core::services::requests::request_view;
use paved_http::{ApiError, Caller};

use crate::RequestsState;

paved_http::shared_answers! {
    /// What an action on one request answers besides its success.
    ActionAnswers = [
        (401, "No or bad token"),
        (403, "Not allowed to act on it"),
        (404, "No such request visible to the caller"),
        (422, "The request's status does not allow this"),
    ]
}

fn ok(r: &ProvisioningRequest, status: StatusCode) -> Response {
    (status, axum::Json(request_view(r))).into_response()
}

/// Approves a request that waits for an approval (approvers only, never the requester).
#[utoipa::path(post, path = "/v1/requests/{id}/approve", tag = "requests",
    params(("id" = String, Path, description = "The request id (req-...)")),
    responses((status = 200, description = "The request: status, steps, conditions and events"), ActionAnswers),
    security(("bearer" = [])))]
pub(crate) async fn approve(
    State(s): State<RequestsState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let r = s.service.approve(&who, &id).await?;
    Ok(ok(&r, StatusCode::OK))
}

/// Rejects a request that waits for an approval.
#[utoipa::path(post, path = "/v1/requests/{id}/reject", tag = "requests",
    params(("id" = String, Path, description = "The request id (req-...)")),
    responses((status = 200, description = "The request: status, steps, conditions and events"), ActionAnswers),
    security(("bearer" = [])))]
pub(crate) async fn reject(
    State(s): State<RequestsState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let r = s.service.reject(&who, &id).await?;
    Ok(ok(&r, StatusCode::OK))
}

/// Cancels a request before it is provisioned (owners, the requester, admins).
#[utoipa::path(post, path = "/v1/requests/{id}/cancel", tag = "requests",
    params(("id" = String, Path, description = "The request id (req-...)")),
    responses((status = 200, description = "The request: status, steps, conditions and events"), ActionAnswers),
    security(("bearer" = [])))]
pub(crate) async fn cancel(
    State(s): State<RequestsState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let r = s.service.cancel(&who, &id).await?;
    Ok(ok(&r, StatusCode::OK))
}

/// Deprovisions what a READY request made: DEPROVISIONING, then DELETED or DELETE_FAILED.
/// With a leak's id (admins): queues its deletion through its driver, which removes it only
/// while its marker still names the leak's request; the leak leaves the listing once it is gone.
#[utoipa::path(delete, path = "/v1/resources/{id}", tag = "requests",
    params(("id" = String, Path, description = "The request id (req-...), or a leak's (leak-...)")),
    responses((status = 202, description = "The request (status, steps, conditions, events), or the leak with its removal"), ActionAnswers),
    security(("bearer" = [])))]
pub(crate) async fn deprovision(
    State(s): State<RequestsState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if paved_core::resources::is_leak_id(&id) {
        let leak = s.service.delete_leak(&who, &id).await?;
        return Ok((StatusCode::ACCEPTED, axum::Json(leak)).into_response());
    }
    let r = s.service.deprovision(&who, &id).await?;
    Ok(ok(&r, StatusCode::ACCEPTED))
}
