//! Submitting a request ([`RequestsService::submit`], or `dry_run` with `?dryRun=true`).
//! `Idempotency-Key` makes a retried POST return the request the first one made.

use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use paved_core::Error;
use paved_core::ErrorCode;
use paved_core::idempotency::IdempotencyKey;
use paved_core::services::requests::request_view;
use paved_core::services::{RequestForm, Submission};
use paved_http::{ApiError, Caller, read_body};
use serde::Deserialize;
use serde_json::Value;

use crate::{BODY_LIMIT, RequestsState};

// The wire form (and OpenAPI schema) of `RequestForm`.
/// The body of `POST /v1/requests`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// A golden path's name (`GET /v1/templates`).
    pub template: String,
    /// The resource's name, as the guardrails' naming rule allows.
    pub name: String,
    /// The owning Group (or User): `team-a` or `group:default/team-a`.
    pub owner: String,
    pub environment: String,
    /// The template's parameters, checked against its JSON Schema.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
}

impl From<CreateRequest> for RequestForm {
    fn from(c: CreateRequest) -> Self {
        Self {
            template: c.template,
            name: c.name,
            owner: c.owner,
            environment: c.environment,
            parameters: c.parameters,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CreateQuery {
    #[serde(default)]
    dry_run: bool,
}

/// Asks for a resource from a golden path: 202 with the request (or 200 with the plan and the
/// guardrails' verdicts for a dry run).
#[utoipa::path(post, path = "/v1/requests", tag = "requests",
    params(
        ("dryRun" = Option<bool>, Query, description = "Check and plan only; nothing is recorded"),
        ("Idempotency-Key" = Option<String>, Header, description = "The same key and body return the same request"),
    ),
    request_body(content = CreateRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "The request, recorded and queued (or waiting for an approval)"),
        (status = 200, description = "A dry run's verdict and plan"),
        (status = 400, description = "The body or a header cannot be read", content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", content_type = "application/problem+json"),
        (status = 403, description = "Not a member of the owner", content_type = "application/problem+json"),
        (status = 409, description = "The same Idempotency-Key is still being submitted", content_type = "application/problem+json"),
        (status = 413, description = "The body is over 64 KiB", content_type = "application/problem+json"),
        (status = 422, description = "Unknown template or owner, bad parameters, a guardrail refuses, the name is taken", content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn create(
    State(s): State<RequestsState>,
    Caller(who): Caller,
    query: Result<Query<CreateQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|e| Error::bad_request(ErrorCode::InvalidQuery, e.body_text()))?;
    let body = read_body(body, BODY_LIMIT)?;
    let raw: Value = serde_json::from_slice(&body).map_err(|e| {
        Error::bad_request(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    let form: CreateRequest = serde_json::from_value(raw).map_err(|e| Error::Invalid {
        code: ErrorCode::InvalidRequest,
        message: format!(
            "the request body does not fit {{template, name, owner, environment, parameters}}: {e}"
        ),
        violations: Vec::new(),
    })?;
    let form = RequestForm::from(form);
    let key = headers
        .get("idempotency-key")
        // Bytes outside ASCII become U+FFFD, which the key's parse refuses.
        .map(|v| IdempotencyKey::parse(&String::from_utf8_lossy(v.as_bytes())))
        .transpose()?;
    if query.dry_run {
        let verdict = s.service.dry_run(&who, &form).await?;
        return Ok(axum::Json(verdict).into_response());
    }
    let submission = s.service.submit(&who, &form, key.as_ref()).await?;
    Ok(accepted(&submission))
}

fn accepted(Submission { request, replayed }: &Submission) -> Response {
    let mut response = (StatusCode::ACCEPTED, axum::Json(request_view(request))).into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/requests/{}", request.id)) {
        headers.insert("location", location);
    }
    if *replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}
