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
//!   is ~2.5 MB of every bootstrap);
//! - CA roots: AWS's endpoints all chain to Amazon Trust Services, so by default the clients
//!   trust its five roots, compiled in ([`TlsRoots::Amazon`]), instead of reading and parsing
//!   the system's whole store on a cold start (4-6 ms of a 22 ms init here).
//!   `PAVED_AWS_TLS_ROOTS=native` trusts the system's store instead (a TLS-inspecting proxy,
//!   an https emulator with its own CA); emulators configured with [`for_emulator`] always do.
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

/// Amazon Root CA 1-4 and Starfield Services Root CA G2 (which cross-signs them), the roots
/// of every AWS endpoint's certificate.
pub const AMAZON_TRUST_SERVICES_ROOTS: &[u8] = include_bytes!("amazon-trust-services-roots.pem");

/// Which certificate authorities the SDK clients trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsRoots {
    /// Amazon Trust Services' roots, compiled in: nothing to read at a cold start.
    Amazon,
    /// The system's store (`SSL_CERT_FILE`, `SSL_CERT_DIR`, the distribution's bundle).
    Native,
}

impl TlsRoots {
    /// `PAVED_AWS_TLS_ROOTS`: `amazon` (the default) or `native`.
    pub fn from_env() -> Self {
        Self::parse(std::env::var("PAVED_AWS_TLS_ROOTS").ok().as_deref())
    }

    /// An unknown value falls back to the system's store, the one that trusts more, and says so.
    pub fn parse(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            None | Some("") | Some("amazon") => Self::Amazon,
            Some("native") => Self::Native,
            Some(other) => {
                tracing::warn!(
                    value = other,
                    "PAVED_AWS_TLS_ROOTS must be `amazon` or `native`; using the system's roots"
                );
                Self::Native
            }
        }
    }

    fn trust_store(self) -> tls::TrustStore {
        match self {
            Self::Amazon => tls::TrustStore::empty()
                .with_native_roots(false)
                .with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS),
            Self::Native => tls::TrustStore::default(),
        }
    }
}

/// The HTTPS client of every SDK client and credential provider, trusting `roots`.
pub fn https_client(roots: TlsRoots) -> SharedHttpClient {
    let context = tls::TlsContext::builder()
        .with_trust_store(roots.trust_store())
        .build()
        .unwrap_or_default();
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https()
}

/// The loader with paved's client, retry and timeout settings.
fn defaults(roots: TlsRoots) -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client(roots))
        .retry_config(retry_config())
        .timeout_config(timeout_config())
}

/// The SDK configuration every paved AWS client uses; `region` overrides the environment's.
pub async fn load(region: Option<&str>) -> SdkConfig {
    let mut loader = defaults(TlsRoots::from_env());
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_owned()));
    }
    loader.load().await
}

/// The configuration for an AWS emulator on `endpoint` (moto in the tests, and a local
/// bootstrap): the same retry and timeout settings, region `us-east-1`, and the placeholder
/// credentials emulators accept.
pub async fn for_emulator(endpoint: &str) -> SdkConfig {
    defaults(TlsRoots::Native)
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

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn the_compiled_in_roots_are_the_five_amazon_trust_services_certificates() {
        let certs = CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES_ROOTS)
            .collect::<Result<Vec<_>, _>>()
            .expect("every root parses");
        assert_eq!(certs.len(), 5);
        let mut roots = rustls::RootCertStore::empty();
        let (valid, invalid) = roots.add_parsable_certificates(certs);
        assert_eq!((valid, invalid), (5, 0));
    }

    #[test]
    fn roots_default_to_amazon_and_unknown_values_fall_back_to_the_system() {
        assert_eq!(TlsRoots::parse(None), TlsRoots::Amazon);
        assert_eq!(TlsRoots::parse(Some("amazon")), TlsRoots::Amazon);
        assert_eq!(TlsRoots::parse(Some(" native ")), TlsRoots::Native);
        assert_eq!(TlsRoots::parse(Some("mozilla")), TlsRoots::Native);
    }
}
