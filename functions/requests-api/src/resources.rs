//! The live resources: their reconciliation status (conditions, drift, history), how they are
//! managed, and observations on demand
//! ([`RequestsService::resources`](paved_core::services::RequestsService::resources) and the
//! methods beside it hold the rules).

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use paved_core::services::requests::{ResourceListing, ResourcePatch};
use paved_core::{Error, ErrorCode};
use paved_http::{ApiError, Caller, read_body};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::{BODY_LIMIT, RequestsState};

paved_http::shared_answers! {
    /// What a call on one resource answers besides its success.
    ResourceAnswers = [
        (401, "No or bad token"),
        (403, "Not allowed to change it"),
        (404, "No such request visible to the caller"),
        (422, "The request's resource is not live (not_live), or the change breaks a rule"),
    ]
}

/// The body of `PATCH /v1/resources/{id}` (the OpenAPI schema of `ResourcePatch`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct ResourcePatchBody {
    /// `observe` reports drift; `enforce` repairs it.
    #[schema(example = "enforce")]
    management_policy: Option<String>,
    /// Paths never reported as drift (`queue.VisibilityTimeout`, `tags.*`); at most 50.
    ignore_fields: Option<Vec<String>>,
}

/// Lists the live resources the caller may see, with their conditions and drift.
#[utoipa::path(get, path = "/v1/resources", tag = "resources",
    params(
        ("owner" = Option<String>, Query, description = "An owner ref (team-a or group:default/team-a)"),
        ("type" = Option<String>, Query, description = "A resource type (postgres, service, sqs-queue, dynamodb-table)"),
        ("environment" = Option<String>, Query),
        ("synced" = Option<String>, Query, description = "true, false or unknown"),
        ("drifted" = Option<bool>, Query, description = "true: drifted now (synced=false)"),
        ("leaked" = Option<bool>, Query, description = "true: the leaks (paved's things with no live request: their marker's request is finished or unknown, or a pending name never marked) instead of the live resources; with owner, type and environment only"),
        ("limit" = Option<usize>, Query, description = "1-500, default 100"),
        ("cursor" = Option<String>, Query, description = "nextCursor of the previous page, with the same filters"),
    ),
    responses(
        (status = 200, description = "{items: [...], nextCursor}"),
        (status = 400, description = "A filter or cursor cannot be read", content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(
    State(s): State<RequestsState>,
    Caller(who): Caller,
    query: Result<Query<ResourceListing>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(listing) =
        query.map_err(|e| Error::bad_request(ErrorCode::InvalidQuery, e.body_text()))?;
    Ok(axum::Json(s.service.resources(&who, &listing).await?).into_response())
}

/// One live resource: conditions (Synced, Ready), drift, history and its management policy;
/// or one leak, by its id (`leak-...`).
#[utoipa::path(get, path = "/v1/resources/{id}", tag = "resources",
    params(("id" = String, Path, description = "The request id (req-...), or a leak's (leak-...)")),
    responses((status = 200, description = "The resource's status"), ResourceAnswers),
    security(("bearer" = [])))]
pub(crate) async fn one(
    State(s): State<RequestsState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(axum::Json(s.service.resource(&who, &id).await?).into_response())
}

/// Changes how a resource is managed (owners and admins); the next observation applies it.
#[utoipa::path(patch, path = "/v1/resources/{id}", tag = "resources",
    params(("id" = String, Path, description = "The request id (req-...)")),
    request_body(content = ResourcePatchBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The resource's status"),
        (status = 400, description = "The body is not JSON", content_type = "application/problem+json"),
        ResourceAnswers),
    security(("bearer" = [])))]
pub(crate) async fn patch(
    State(s): State<RequestsState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = read_body(body, BODY_LIMIT)?;
    let raw: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        Error::bad_request(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    let patch: ResourcePatch = serde_json::from_value(raw).map_err(|e| Error::Invalid {
        code: ErrorCode::InvalidResourcePatch,
        message: format!(
            "the body does not fit {{managementPolicy: observe|enforce, ignoreFields: [path]}}: {e}"
        ),
        violations: Vec::new(),
    })?;
    Ok(axum::Json(s.service.patch_resource(&who, &id, &patch).await?).into_response())
}

/// Observes the resource now, and repairs it under `enforce`; the result appears in its status.
#[utoipa::path(post, path = "/v1/resources/{id}/reconcile", tag = "resources",
    params(("id" = String, Path, description = "The request id (req-...)")),
    responses((status = 202, description = "Queued; the resource's status as it was"), ResourceAnswers),
    security(("bearer" = [])))]
pub(crate) async fn reconcile(
    State(s): State<RequestsState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let view = s.service.reconcile_resource(&who, &id).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(view)).into_response())
}

/// Adopts a leak (admins): its request is READY again, holds its name again, and is
/// reconciled from now on (observed at once). Refused when another live request holds the
/// name (`name_taken`), or when the leak names no request of this platform
/// (`leak_not_actionable`).
#[utoipa::path(post, path = "/v1/resources/{id}/adopt", tag = "resources",
    params(("id" = String, Path, description = "The leak's id (leak-...)")),
    responses((status = 200, description = "The adopted resource's status"), ResourceAnswers),
    security(("bearer" = [])))]
pub(crate) async fn adopt(
    State(s): State<RequestsState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(axum::Json(s.service.adopt_leak(&who, &id).await?).into_response())
}
