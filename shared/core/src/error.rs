//! One error enum for the domain. The HTTP edge (`paved-http`) maps it to problem+json in one
//! place; every variant carries a stable machine-readable `code`.

use serde::Serialize;

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
    pub code: &'static str,
    pub errors: Vec<Violation>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request could not be read at all (bad JSON/YAML, bad query syntax, bad cursor).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// The input was readable but breaks the model's rules.
    #[error("{message}")]
    Invalid {
        code: &'static str,
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
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// The stable machine-readable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. } | Self::Invalid { code, .. } => code,
            Self::ImportRejected(_) => "import_rejected",
            Self::PolicyDenied(_) => "policy_violation",
            Self::NotFound(_) => "not_found",
            Self::PreconditionFailed(_) => "precondition_failed",
            Self::Conflict(_) => "conflict",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Unavailable(_) => "unavailable",
            Self::Forbidden(_) => "forbidden",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Storage(_) => "storage_unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
