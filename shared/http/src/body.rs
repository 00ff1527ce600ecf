use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use paved_core::Error;
use paved_core::ErrorCode;

use crate::ApiError;

/// Reads a request body that axum's `DefaultBodyLimit` capped at `limit` bytes, turning an
/// oversized body into a 413 problem rather than axum's plain-text answer.
pub fn read_body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    match body {
        Ok(bytes) => Ok(bytes),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(ApiError(Error::PayloadTooLarge { limit }))
        }
        Err(rejection) => Err(ApiError(Error::bad_request(
            ErrorCode::UnreadableBody,
            rejection.body_text(),
        ))),
    }
}

/// The body limit of a router whose handlers never read a body (GET-only routes).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Middleware for [`BodyLimit`]: reads the body up to its limit before the handler runs, so
/// that a request with a large body is refused with a 413 problem rather than ignored (axum's
/// `DefaultBodyLimit` applies only where a handler reads the body). Use it as
/// `.layer(axum::middleware::from_fn_with_state(BodyLimit(n), bounded_body))`.
pub async fn bounded_body(
    State(BodyLimit(limit)): State<BodyLimit>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(e) if is_length_limit(&e) => ApiError(Error::PayloadTooLarge { limit }).into_response(),
        Err(e) => {
            ApiError(Error::bad_request(ErrorCode::UnreadableBody, e.to_string())).into_response()
        }
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    std::iter::successors(Some(e as &dyn std::error::Error), |e| e.source())
        .any(|e| e.is::<http_body_util::LengthLimitError>())
}
