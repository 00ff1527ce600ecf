use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use paved_core::Error;
use paved_core::ErrorCode;
use serde_json::{Value, json};

/// The one place where domain errors become HTTP responses: RFC 9457 problem+json with a
/// stable `code`. A 5xx here is a bug or an outage, never bad input.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match &self.0 {
            // The code says its status (`ErrorCode`): 400 for what cannot be read, 422 for
            // what breaks a rule.
            Error::BadRequest { code, .. } | Error::Invalid { code, .. } => {
                StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Error::ImportRejected(reports)
                if reports.iter().all(|r| r.code == ErrorCode::Forbidden) =>
            {
                StatusCode::FORBIDDEN
            }
            Error::ImportRejected(_) | Error::PolicyDenied(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Storage(paved_core::ports::StoreError::Throttled(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Storage(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem document.
    pub fn body(&self) -> Value {
        let status = self.status();
        let code = self.0.code();
        let detail = match &self.0 {
            // Never leak backend internals; they are logged instead.
            Error::Storage(_) => "the store failed; the error was logged, try again".to_owned(),
            Error::Internal(_) => "the server failed; the error was logged".to_owned(),
            other => other.to_string(),
        };
        let mut body = json!({
            "type": format!("urn:paved:problem:{code}"),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail,
            "code": code,
        });
        match &self.0 {
            Error::Invalid { violations, .. } if !violations.is_empty() => {
                body["errors"] = json!(violations)
            }
            Error::ImportRejected(reports) => body["documents"] = json!(reports),
            Error::PolicyDenied(violations) => body["violations"] = json!(violations),
            _ => {}
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            let chain: Vec<String> =
                std::iter::successors(Some(&self.0 as &dyn std::error::Error), |e| e.source())
                    .map(ToString::to_string)
                    .collect();
            tracing::error!(code = self.0.code(), cause = ?chain, "request failed");
        }
        let mut response = (status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The fallback for unknown routes: a 404 problem rather than an empty body.
pub async fn route_not_found(uri: axum::http::Uri) -> ApiError {
    ApiError(Error::NotFound(format!("the route {}", uri.path())))
}

#[cfg(test)]
mod tests {
    use paved_core::Violation;
    use paved_core::error::DocumentReport;

    use super::*;

    #[test]
    fn every_error_has_a_status_code_and_problem_body() {
        let cases = [
            (
                Error::bad_request(ErrorCode::MalformedJson, "x"),
                400,
                "malformed_json",
            ),
            (
                Error::Invalid {
                    code: ErrorCode::InvalidEntity,
                    message: "m".into(),
                    violations: vec![Violation::new("f", "m")],
                },
                422,
                "invalid_entity",
            ),
            (Error::NotFound("x".into()), 404, "not_found"),
            (
                Error::PreconditionFailed("x".into()),
                412,
                "precondition_failed",
            ),
            (Error::Unauthenticated("x".into()), 401, "unauthenticated"),
            (Error::Forbidden("x".into()), 403, "forbidden"),
            (
                Error::PayloadTooLarge { limit: 1 },
                413,
                "payload_too_large",
            ),
            (Error::Conflict("x".into()), 409, "conflict"),
        ];
        for (error, status, code) in cases {
            let e = ApiError(error);
            assert_eq!(e.status().as_u16(), status);
            let body = e.body();
            assert_eq!(body["code"], code);
            assert_eq!(body["status"], status);
        }
        let forbidden_only = ApiError(Error::ImportRejected(vec![DocumentReport {
            document: 0,
            entity_ref: None,
            code: ErrorCode::Forbidden,
            errors: vec![],
        }]));
        assert_eq!(forbidden_only.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn storage_details_stay_out_of_responses() {
        let e = ApiError(Error::Storage(paved_core::ports::StoreError::Backend(
            "disk /secret/path failed".into(),
        )));
        assert!(!e.body().to_string().contains("/secret/path"));
    }
}
