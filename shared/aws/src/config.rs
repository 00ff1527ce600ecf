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
//! - credentials and region: a Lambda function reads the ones Lambda puts in its environment
//!   (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`), and
//!   nothing else. The SDK's default chain (profiles, web identity and role assumption through
//!   STS, the container and instance metadata services) is the `default-credential-chain`
//!   feature, which the `paved` CLI turns on: linked into every function it was 0.6-0.9 MB of
//!   each bootstrap (docs/decisions.md → "Lambda bootstraps").
//!
//! `AWS_ENDPOINT_URL` (an emulator) applies in both builds. The SDK's other environment and
//! profile settings (`AWS_ENDPOINT_URL_<SERVICE>`, FIPS and dual-stack endpoints) apply only
//! with the default chain.

use std::time::Duration;

use aws_config::identity::IdentityCache;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_async::rt::sleep::default_async_sleep;
use aws_smithy_async::time::SharedTimeSource;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_types::sdk_config::SharedCredentialsProvider;

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

/// The SDK configuration every paved AWS client uses; `region` overrides the environment's.
/// The SDK's default chains find the credentials and the region: the environment, profiles,
/// SSO, web identity, the container and instance metadata services.
#[cfg(feature = "default-credential-chain")]
pub async fn load(region: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client(TlsRoots::from_env()))
        .retry_config(retry_config())
        .timeout_config(timeout_config());
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_owned()));
    }
    loader.load().await
}

/// The SDK configuration every paved AWS client uses; `region` overrides the environment's.
/// Lambda's way: the credentials, region and endpoint in the environment, and nothing else
/// linked. A missing credential fails each call, naming the variable.
#[cfg(not(feature = "default-credential-chain"))]
pub async fn load(region: Option<&str>) -> SdkConfig {
    let env = |k: &str| std::env::var(k).ok();
    let region = region.map(str::to_owned).or_else(|| region_from_env(env));
    if region.is_none() {
        tracing::warn!("neither AWS_REGION nor AWS_DEFAULT_REGION is set");
    }
    if env("AWS_ACCESS_KEY_ID").is_none() {
        tracing::warn!(
            "AWS_ACCESS_KEY_ID is not set: this build reads AWS credentials from the environment \
             only, as Lambda provides them (the `paved` CLI also reads profiles, SSO and roles)"
        );
    }
    let credentials = SharedCredentialsProvider::new(
        aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
    );
    let endpoint = env("AWS_ENDPOINT_URL").filter(|v| !v.trim().is_empty());
    explicit(
        TlsRoots::from_env(),
        region,
        credentials,
        endpoint.as_deref(),
    )
}

/// `AWS_REGION`, else `AWS_DEFAULT_REGION`, ignoring empty values.
pub fn region_from_env(get: impl Fn(&str) -> Option<String>) -> Option<String> {
    ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .into_iter()
        .filter_map(|k| get(k).map(|v| v.trim().to_owned()))
        .find(|v| !v.is_empty())
}

/// A configuration from exactly these settings, with paved's client, retry and timeout
/// settings. Nothing is looked up, so none of the SDK's provider chains is linked.
fn explicit(
    roots: TlsRoots,
    region: Option<String>,
    credentials: SharedCredentialsProvider,
    endpoint: Option<&str>,
) -> SdkConfig {
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(https_client(roots))
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .time_source(SharedTimeSource::default())
        .identity_cache(IdentityCache::lazy().build())
        .credentials_provider(credentials);
    if let Some(sleep) = default_async_sleep() {
        builder = builder.sleep_impl(sleep);
    }
    builder.set_region(region.map(Region::new));
    builder.set_endpoint_url(endpoint.map(str::to_owned));
    builder.build()
}

/// The configuration for an AWS emulator on `endpoint` (moto in the tests, and a local
/// bootstrap): the same retry and timeout settings, region `us-east-1`, and the placeholder
/// credentials emulators accept.
pub async fn for_emulator(endpoint: &str) -> SdkConfig {
    let credentials = SharedCredentialsProvider::new(aws_sdk_sqs::config::Credentials::new(
        "testing",
        "testing",
        None,
        None,
        "paved-emulator",
    ));
    explicit(
        TlsRoots::Native,
        Some("us-east-1".into()),
        credentials,
        Some(endpoint),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn the_region_is_aws_region_else_aws_default_region_ignoring_empty_values() {
        fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
            |k| {
                pairs
                    .iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        }
        let both = [
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "us-east-2"),
        ];
        assert_eq!(region_from_env(env(&both)).as_deref(), Some("eu-west-1"));
        let empty = [("AWS_REGION", " "), ("AWS_DEFAULT_REGION", "us-east-2")];
        assert_eq!(region_from_env(env(&empty)).as_deref(), Some("us-east-2"));
        assert_eq!(region_from_env(env(&[])), None);
    }

    #[tokio::test]
    async fn an_emulator_configuration_names_everything_it_needs() {
        let config = for_emulator("http://127.0.0.1:5000").await;
        assert_eq!(config.region().map(|r| r.as_ref()), Some("us-east-1"));
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:5000"));
        assert!(config.credentials_provider().is_some());
        assert!(
            config.sleep_impl().is_some(),
            "retries and timeouts need a sleep"
        );
        assert!(config.identity_cache().is_some());
        let retry = config.retry_config().expect("paved's retry settings");
        assert_eq!(retry.max_attempts(), 3);
        let timeouts = config.timeout_config().expect("paved's timeouts");
        assert_eq!(timeouts.operation_timeout(), Some(Duration::from_secs(12)));
    }

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
