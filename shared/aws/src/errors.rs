//! SDK errors as the ports' `StoreError`.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;
use paved_core::ports::StoreError;

const THROTTLING: [&str; 6] = [
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "TransactionInProgressException",
];

/// The service's error code, when the service answered.
pub(crate) fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

pub(crate) fn store_error<E, R>(what: &str, e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = code(&e).map(str::to_owned);
    let text = format!(
        "{what}: {}",
        aws_smithy_types::error::display::DisplayErrorContext(&e)
    );
    match code.as_deref() {
        Some(c) if THROTTLING.contains(&c) => StoreError::Throttled(text),
        // Timeouts and connection failures are worth a retry too.
        None => StoreError::Throttled(text),
        Some(_) => StoreError::Backend(text),
    }
}
