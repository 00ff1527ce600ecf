//! One error enum for the domain. The HTTP edge (`paved-http`) maps it to problem+json in one
//! place; every variant carries a stable machine-readable `code`.

mod codes;

use serde::Serialize;

pub use codes::{ErrorCode, markdown_summary, markdown_table};

use crate::ports::StoreError;

/// One rule an input broke, naming the field (a dotted path) it broke it in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The verdict on one document of a multi-document import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentReport {
    /// Zero-based position of the document in the body.
    pub document: usize,
    #[serde(rename = "entityRef", skip_serializing_if = "Option::is_none")]
    pub entity_ref: Option<String>,
    pub code: ErrorCode,
    pub errors: Vec<Violation>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request could not be read at all (bad JSON/YAML, bad query syntax, bad cursor).
    #[error("{message}")]
    BadRequest { code: ErrorCode, message: String },
    /// The input was readable but breaks the model's rules.
    #[error("{message}")]
    Invalid {
        code: ErrorCode,
        message: String,
        violations: Vec<Violation>,
    },
    /// An all-or-nothing import where at least one document was refused; nothing was written.
    #[error("the import was refused: {} of its documents have errors, nothing was written", .0.len())]
    ImportRejected(Vec<DocumentReport>),
    /// The guardrails refused the request; each violation names its rule.
    #[error("the request breaks {} guardrail(s): {}", .0.len(), .0.iter().map(|v| v.message.as_str()).collect::<Vec<_>>().join("; "))]
    PolicyDenied(Vec<crate::policy::PolicyViolation>),
    #[error("{0} was not found")]
    NotFound(String),
    /// `If-Match` named an etag that is no longer current (or the entity does not exist).
    #[error("{0}")]
    PreconditionFailed(String),
    /// The store changed underneath a multi-item write; nothing was written.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("storage failure")]
    Storage(#[from] StoreError),
    /// A service paved depends on (Slack, ...) did not answer; the caller may retry.
    #[error("{0}")]
    Unavailable(String),
    /// A fault of the server's own (stored data that does not parse, ...): a 500, logged
    /// with its cause, never blamed on the caller.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// A 400 (or whatever `code`'s status is): the input cannot be read.
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// A 422 (or whatever `code`'s status is) without per-field violations: the input was
    /// readable but breaks a rule.
    pub fn invalid(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
            violations: Vec::new(),
        }
    }

    /// The stable machine-readable code clients match on.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::BadRequest { code, .. } | Self::Invalid { code, .. } => *code,
            Self::ImportRejected(_) => ErrorCode::ImportRejected,
            Self::PolicyDenied(_) => ErrorCode::PolicyViolation,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::PreconditionFailed(_) => ErrorCode::PreconditionFailed,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::Storage(_) => ErrorCode::StorageUnavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// [`Self::error_code`] as a string.
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
