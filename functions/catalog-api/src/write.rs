//! Write handlers: upsert with `If-Match`, all-or-nothing import, delete.

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use paved_core::Error;
use paved_core::ErrorCode;
use paved_core::catalog::{WriteStatus, parse_documents};
use paved_http::{ApiError, Caller, read_body};
use serde_json::Value;

use crate::CatalogState;
use crate::read::entity_response;

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';').next().is_some_and(|m| {
                m.trim().eq_ignore_ascii_case("application/json") || m.trim().ends_with("+json")
            })
        })
}

fn utf8(body: &Bytes) -> Result<&str, Error> {
    std::str::from_utf8(body)
        .map_err(|_| Error::bad_request(ErrorCode::MalformedBody, "the body is not UTF-8 text"))
}

/// Reads one entity from a JSON or YAML body.
fn one_entity(headers: &HeaderMap, body: &Bytes) -> Result<Value, Error> {
    if is_json(headers) {
        return serde_json::from_slice(body).map_err(|e| {
            Error::bad_request(
                ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {e}"),
            )
        });
    }
    let mut docs = parse_documents(utf8(body)?)?;
    match docs.len() {
        1 => Ok(docs.remove(0)),
        0 => Err(Error::bad_request(
            ErrorCode::MalformedBody,
            "the body holds no entity",
        )),
        n => Err(Error::bad_request(
            ErrorCode::MalformedBody,
            format!("the body holds {n} entities; POST /v1/entities/import takes many"),
        )),
    }
}

/// Creates or replaces one entity (JSON or YAML). With `If-Match`, only while that etag is current.
#[utoipa::path(post, path = "/v1/entities", tag = "catalog",
    params(("If-Match" = Option<String>, Header, description = "The etag the write expects")),
    request_body(content = Object, description = "A Backstage entity", content_type = "application/json"),
    responses((status = 201, description = "Created"), (status = 200, description = "Replaced, or unchanged"),
              (status = 400, description = "Malformed body", content_type = "application/problem+json"),
              (status = 403, description = "Not an owner", content_type = "application/problem+json"),
              (status = 412, description = "The etag is not current", content_type = "application/problem+json"),
              (status = 413, description = "Body over the limit", content_type = "application/problem+json"),
              (status = 422, description = "The entity breaks the model's rules", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn upsert_entity(
    State(state): State<CatalogState>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = read_body(body, state.limits.entity_body)?;
    let entity = one_entity(&headers, &body)?;
    let if_match = headers
        .get(header::IF_MATCH)
        .map(|v| {
            v.to_str()
                .map_err(|_| Error::bad_request(ErrorCode::InvalidHeader, "If-Match is not text"))
        })
        .transpose()?;
    let outcome = state
        .repo
        .upsert(entity, if_match, &state.policy.writer(&who))
        .await?;
    tracing::info!(entity = %outcome.view.entity_ref, status = ?outcome.status, user = %who.user(), "entity written");
    let mut response = entity_response(&outcome.view);
    if outcome.status == WriteStatus::Created {
        *response.status_mut() = StatusCode::CREATED;
    }
    Ok(response)
}

/// Imports a multi-document catalog-info.yaml, all or nothing.
#[utoipa::path(post, path = "/v1/entities/import", tag = "catalog",
    request_body(content = String, description = "catalog-info.yaml documents", content_type = "application/yaml"),
    responses((status = 200, description = "{created, updated, unchanged, entities}"),
              (status = 422, description = "Per-document error report; nothing was written", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn import_entities(
    State(state): State<CatalogState>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = read_body(body, state.limits.import_body)?;
    let documents = if is_json(&headers) {
        match serde_json::from_slice::<Value>(&body).map_err(|e| {
            Error::bad_request(
                ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {e}"),
            )
        })? {
            Value::Array(items) => items,
            other => vec![other],
        }
    } else {
        parse_documents(utf8(&body)?)?
    };
    if documents.is_empty() {
        return Err(
            Error::bad_request(ErrorCode::MalformedBody, "the body holds no entity").into(),
        );
    }
    let outcome = state
        .repo
        .import(documents, &state.policy.writer(&who))
        .await?;
    tracing::info!(created = outcome.created, updated = outcome.updated, unchanged = outcome.unchanged, user = %who.user(), "catalog import");
    Ok(axum::Json(outcome).into_response())
}

/// Deletes one entity.
#[utoipa::path(delete, path = "/api/catalog/entities/by-uid/{uid}", tag = "catalog", params(("uid" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, description = "Not an owner", content_type = "application/problem+json"),
              (status = 404, description = "No such entity", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn delete_by_uid(
    State(state): State<CatalogState>,
    Caller(who): Caller,
    Path(uid): Path<String>,
) -> Result<StatusCode, ApiError> {
    let entity_ref = state
        .repo
        .delete_by_uid(&uid, &state.policy.writer(&who))
        .await?;
    tracing::info!(entity = %entity_ref, user = %who.user(), "entity deleted");
    Ok(StatusCode::NO_CONTENT)
}
