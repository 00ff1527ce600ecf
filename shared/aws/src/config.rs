//! How paved talks to AWS, chosen on purpose rather than left to defaults:
//! - retries: the SDK's standard mode (exponential backoff with jitter, a retry-token bucket
//!   that stops retry storms), 3 attempts: enough to ride out a throttle or a dropped
//!   connection inside one Lambda invocation, few enough that a sick dependency fails the
//!   call in seconds and the caller's own retry (SQS redelivery, Step Functions' `Retry`)
//!   takes over with its longer backoff;
//! - timeouts: 3.1 s to connect, 5 s per attempt, 12 s per operation, so no call can eat a
//!   function's whole time budget (API functions run with a 10-15 s timeout, the worker with
//!   a heartbeat every 10 s).
//!
//! - HTTPS: hyper and rustls with the ring crypto provider (the SDK's default is aws-lc, which
//!   is ~2.5 MB of every bootstrap); the CA roots are the system's, read on the first
//!   connection rather than during init.
//!
//! `AWS_ENDPOINT_URL` (an emulator) and the usual credential chain apply.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_secs(2))
}

pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(3100))
        .operation_attempt_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(12))
        .build()
}

/// The HTTPS client of every SDK client and credential provider.
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The loader with paved's client, retry and timeout settings.
fn defaults() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .retry_config(retry_config())
        .timeout_config(timeout_config())
}

/// The SDK configuration every paved AWS client uses; `region` overrides the environment's.
pub async fn load(region: Option<&str>) -> SdkConfig {
    let mut loader = defaults();
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_owned()));
    }
    loader.load().await
}

/// The configuration for an AWS emulator on `endpoint` (moto in the tests, and a local
/// bootstrap): the same retry and timeout settings, region `us-east-1`, and the placeholder
/// credentials emulators accept.
pub async fn for_emulator(endpoint: &str) -> SdkConfig {
    defaults()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "paved-emulator",
        ))
        .load()
        .await
}
