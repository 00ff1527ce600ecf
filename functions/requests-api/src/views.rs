//! Reading requests: one, or a filtered page ([`RequestsService::get`], [`RequestsService::list`]).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use paved_core::Error;
use paved_core::ErrorCode;
use paved_core::services::RequestListing;
use paved_core::services::requests::request_view;
use paved_http::{ApiError, Caller};

use crate::RequestsState;

/// One request, if the caller may see it.
#[utoipa::path(get, path = "/v1/requests/{id}", tag = "requests",
    params(("id" = String, Path, description = "The request id (req-...)")),
    responses(
        (status = 200, description = "The request: status, steps, conditions and events"),
        (status = 401, description = "No or bad token", content_type = "application/problem+json"),
        (status = 404, description = "No such request visible to the caller", content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn one(
    State(s): State<RequestsState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let r = s.service.get(&who, &id).await?;
    Ok(axum::Json(request_view(&r)).into_response())
}

/// The requests the caller may see, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/requests", tag = "requests",
    params(
        ("status" = Option<String>, Query, description = "SUBMITTED, WAITING_FOR_APPROVAL, QUEUED, PROVISIONING, READY, FAILED, REJECTED, CANCELLED, DEPROVISIONING, DELETED or DELETE_FAILED"),
        ("owner" = Option<String>, Query, description = "An owner ref (team-a or group:default/team-a)"),
        ("template" = Option<String>, Query),
        ("environment" = Option<String>, Query),
        ("requester" = Option<String>, Query, description = "A user ref"),
        ("limit" = Option<usize>, Query, description = "1-1000, default 100"),
        ("cursor" = Option<String>, Query, description = "nextCursor of the previous page, with the same filters"),
    ),
    responses(
        (status = 200, description = "{items: [...], total, nextCursor?}"),
        (status = 400, description = "A filter or cursor cannot be read", content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(
    State(s): State<RequestsState>,
    Caller(who): Caller,
    query: Result<Query<RequestListing>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(listing) =
        query.map_err(|e| Error::bad_request(ErrorCode::InvalidQuery, e.body_text()))?;
    let page = s.service.list(&who, &listing).await?;
    Ok(axum::Json(page.to_json()).into_response())
}
