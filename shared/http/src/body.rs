use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use bytes::Bytes;
use paved_core::Error;

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
            "unreadable_body",
            rejection.body_text(),
        ))),
    }
}
