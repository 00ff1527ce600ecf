//! What the `sqs-queue` and `dynamodb-table` drivers share: deterministic AWS names and the
//! mapping of SDK errors to stable driver codes (throttling and transport trouble are
//! `Retryable.*`, refusals `NonRetryable.AwsRefused`).

use std::fmt::Debug;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;
use paved_core::provisioning::{DriverError, ResourceSpec};
use serde_json::Value;

/// `paved-<environment>-<name>`, within AWS's name rules (letters, digits, `-`, `_`).
pub(crate) fn aws_name(spec: &ResourceSpec) -> String {
    format!("paved-{}-{}", spec.environment, spec.name)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Refuses a found thing that is not a `kind` under a name [`aws_name`] makes: a leak's
/// record is the platform's own, but nothing on a provider is touched on its word alone.
pub(crate) fn check_found(
    found: &paved_core::observation::Found,
    kind: &str,
) -> Result<(), DriverError> {
    if found.kind == kind && is_paved_aws_name(&found.name) {
        return Ok(());
    }
    Err(crate::ownership::not_owned(format!(
        "the {} {} is not a {kind} paved makes; it is left alone",
        found.kind, found.name
    )))
}

/// Whether `name` is one [`aws_name`] makes (a queue's may end in `.fifo`).
pub(crate) fn is_paved_aws_name(name: &str) -> bool {
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    name.len() <= 255
        && base.starts_with("paved-")
        && base
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

const THROTTLING: [&str; 6] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
];

/// Maps an SDK error to a driver error with a stable code.
pub(crate) fn classify<E, R>(what: &str, e: SdkError<E, R>) -> DriverError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug,
{
    match &e {
        SdkError::ServiceError(service) => {
            let err = service.err();
            let code = err.code().unwrap_or("Unknown");
            let message = format!("{what}: {code}: {}", err.message().unwrap_or_default());
            if THROTTLING.contains(&code)
                || code.starts_with("InternalFailure")
                || code == "ServiceUnavailable"
            {
                DriverError::Retryable {
                    code: "Retryable.Throttled",
                    message,
                }
            } else {
                DriverError::NonRetryable {
                    code: "NonRetryable.AwsRefused",
                    message,
                }
            }
        }
        // Timeouts, connection failures, unparseable answers: the provider may be back soon.
        _ => DriverError::Retryable {
            code: "Retryable.AwsUnavailable",
            message: format!(
                "{what}: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&e)
            ),
        },
    }
}

pub(crate) fn service_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

pub(crate) fn param_u64(spec: &ResourceSpec, name: &str, default: u64) -> u64 {
    spec.parameters
        .get(name)
        .and_then(Value::as_u64)
        .unwrap_or(default)
}
