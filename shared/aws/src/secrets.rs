//! The [`SecretStore`] port on AWS Secrets Manager: where the provision worker keeps the
//! credentials it generates (the `postgres-database` driver's passwords) on the AWS backend.
//!
//! - Names are deterministic: a driver's name (`postgres/<database>/<role>/<request token>`)
//!   under the stack's prefix, `PAVED_SECRET_PREFIX` (the template sets
//!   `paved/<stack name>`; the default, `paved/paved`, matches `paved aws bootstrap`). The
//!   worker's IAM policy allows Secrets Manager under that prefix only.
//! - [`put_if_absent`](SecretStore::put_if_absent) is `CreateSecret`; when the name is taken
//!   (`ResourceExistsException`: an earlier attempt of the step made it, even one whose answer
//!   was lost) it reads the stored value back, so a retried step reuses the first password and
//!   no second secret is ever made. The SDK gives each call a `ClientRequestToken`, so its
//!   own retries of one `CreateSecret` are idempotent too.
//! - Secrets are tagged `paved:managed=true`, `paved:owner=<owning group>` and
//!   `paved:request-id=<request>`: an owner team's role reads its secrets through a condition
//!   on `secretsmanager:ResourceTag/paved:owner` (docs/deployment.md, "Generated credentials").
//! - The reference outputs carry is the secret's ARN.
//! - [`delete`](SecretStore::delete) is `DeleteSecret` with a recovery window,
//!   `PAVED_SECRET_RECOVERY_DAYS` (7 by default, 7-30 as AWS allows; `0` deletes at once with
//!   `ForceDeleteWithoutRecovery`). A deprovisioned database's password can then be restored
//!   for a week (`aws secretsmanager restore-secret`), and costs nothing meanwhile. A secret
//!   that is gone, or already scheduled for deletion, counts as deleted.
//! - Errors: throttling, 5xx answers, timeouts and connection failures are
//!   [`StoreError::Throttled`] (worth a retry; the driver fails its step with
//!   `Retryable.SecretStore`, which the state machine retries), anything else
//!   [`StoreError::Backend`].

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::types::Tag;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use paved_core::ports::StoreError;
use paved_core::provisioning::{SecretLabels, SecretStore, StoredSecret};

use crate::settings::DEFAULT_PREFIX;

/// The recovery window by default, in days: the shortest AWS allows.
pub const DEFAULT_RECOVERY_DAYS: u8 = 7;

/// What deleting a secret does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretDeletion {
    /// Scheduled: restorable for `days` (7-30), then gone.
    RecoveryWindow { days: u8 },
    /// `ForceDeleteWithoutRecovery`: gone at once.
    Immediately,
}

/// Where the secrets are and how they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsSettings {
    /// `PAVED_SECRET_PREFIX`, without a trailing `/`: `paved/<stack>`.
    pub prefix: String,
    /// `PAVED_SECRET_RECOVERY_DAYS`: 7-30, or 0 for [`SecretDeletion::Immediately`].
    pub deletion: SecretDeletion,
}

impl Default for SecretsSettings {
    fn default() -> Self {
        Self {
            prefix: format!("paved/{DEFAULT_PREFIX}"),
            deletion: SecretDeletion::RecoveryWindow {
                days: DEFAULT_RECOVERY_DAYS,
            },
        }
    }
}

impl SecretsSettings {
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// An unusable recovery window falls back to the default, and says so.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut settings = Self::default();
        if let Some(prefix) = get("PAVED_SECRET_PREFIX") {
            let prefix = prefix.trim_end_matches('/');
            if !prefix.is_empty() {
                settings.prefix = prefix.to_owned();
            }
        }
        if let Some(days) = get("PAVED_SECRET_RECOVERY_DAYS") {
            match days.parse::<u8>() {
                Ok(0) => settings.deletion = SecretDeletion::Immediately,
                Ok(d @ 7..=30) => settings.deletion = SecretDeletion::RecoveryWindow { days: d },
                _ => tracing::warn!(
                    value = days,
                    "PAVED_SECRET_RECOVERY_DAYS must be 0 (no recovery) or 7 to 30; using {DEFAULT_RECOVERY_DAYS}"
                ),
            }
        }
        settings
    }
}

/// Secrets in AWS Secrets Manager, under one prefix.
#[derive(Debug, Clone)]
pub struct SecretsManagerSecretStore {
    client: Client,
    settings: SecretsSettings,
}

const RETRYABLE_CODES: [&str; 7] = [
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "InternalServiceError",
    "InternalFailure",
    "ServiceUnavailable",
];

/// Whether an SDK error is worth a retry: throttling, a 5xx answer, a timeout, no connection.
fn retryable<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::ServiceError(s) => {
            s.raw().status().as_u16() >= 500
                || s.err().code().is_some_and(|c| RETRYABLE_CODES.contains(&c))
        }
        SdkError::ResponseError(r) => r.raw().status().as_u16() >= 500,
        SdkError::ConstructionFailure(_) => false,
        // Timeouts, connection failures, and whatever the SDK adds later.
        _ => true,
    }
}

fn code<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

fn store_error<E>(what: &str, e: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let text = format!(
        "Secrets Manager {what}: {}",
        aws_smithy_types::error::display::DisplayErrorContext(&e)
    );
    if retryable(&e) {
        StoreError::Throttled(text)
    } else {
        StoreError::Backend(text)
    }
}

/// A tag value as Secrets Manager accepts it: letters, digits, spaces and `_.:/=+-@`, at most
/// 256 characters; anything else becomes `_`.
fn tag_value(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(256)
        .collect()
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(tag_value(value)).build()
}

const RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";
const RESOURCE_EXISTS: &str = "ResourceExistsException";
/// Among others, what Secrets Manager answers for a secret scheduled for deletion.
const INVALID_REQUEST: &str = "InvalidRequestException";

/// What `DescribeSecret` says of a name.
enum Described {
    Absent,
    /// Scheduled for deletion.
    Deleted,
    Live {
        arn: String,
    },
}

impl SecretsManagerSecretStore {
    pub fn new(config: &aws_config::SdkConfig, settings: SecretsSettings) -> Self {
        Self {
            client: Client::new(config),
            settings,
        }
    }

    pub fn settings(&self) -> &SecretsSettings {
        &self.settings
    }

    /// The secret's id in Secrets Manager: a driver's name under the prefix, or an ARN as is
    /// (the reference this store hands out).
    pub fn secret_id(&self, name: &str) -> String {
        if name.starts_with("arn:") {
            name.to_owned()
        } else {
            format!("{}/{}", self.settings.prefix, name.trim_start_matches('/'))
        }
    }

    async fn describe(&self, id: &str) -> Result<Described, StoreError> {
        match self.client.describe_secret().secret_id(id).send().await {
            Ok(out) if out.deleted_date().is_some() => Ok(Described::Deleted),
            Ok(out) => Ok(Described::Live {
                arn: out.arn().unwrap_or(id).to_owned(),
            }),
            Err(e) if code(&e) == Some(RESOURCE_NOT_FOUND) => Ok(Described::Absent),
            Err(e) => Err(store_error("DescribeSecret", e)),
        }
    }

    /// The stored value and ARN, `None` if there is no live secret under `id`.
    async fn read(&self, id: &str) -> Result<Option<StoredSecret>, StoreError> {
        match self.client.get_secret_value().secret_id(id).send().await {
            Ok(out) => Ok(Some(StoredSecret {
                value: out.secret_string().unwrap_or_default().to_owned(),
                reference: out.arn().unwrap_or(id).to_owned(),
            })),
            Err(e) if code(&e) == Some(RESOURCE_NOT_FOUND) => Ok(None),
            // Scheduled for deletion, or something else wrong with the request.
            Err(e) if code(&e) == Some(INVALID_REQUEST) => match self.describe(id).await? {
                Described::Absent | Described::Deleted => Ok(None),
                Described::Live { .. } => Err(store_error("GetSecretValue", e)),
            },
            Err(e) => Err(store_error("GetSecretValue", e)),
        }
    }

    fn scheduled_for_deletion(id: &str) -> StoreError {
        StoreError::Backend(format!(
            "the secret {id} is scheduled for deletion: restore it (`aws secretsmanager restore-secret --secret-id {id}`) or delete it for good before it is made again"
        ))
    }
}

#[async_trait]
impl SecretStore for SecretsManagerSecretStore {
    async fn put_if_absent(
        &self,
        name: &str,
        value: &str,
        labels: SecretLabels<'_>,
    ) -> Result<StoredSecret, StoreError> {
        let id = self.secret_id(name);
        let created = self
            .client
            .create_secret()
            .name(&id)
            .description(format!(
                "Generated by paved for request {} (owner {})",
                tag_value(labels.request_id),
                tag_value(labels.owner)
            ))
            .secret_string(value)
            .tags(tag("paved:managed", "true"))
            .tags(tag("paved:owner", labels.owner))
            .tags(tag("paved:request-id", labels.request_id))
            .send()
            .await;
        match created {
            Ok(out) => Ok(StoredSecret {
                value: value.to_owned(),
                reference: out.arn().unwrap_or(&id).to_owned(),
            }),
            // An earlier attempt made it: its value wins.
            Err(e) if code(&e) == Some(RESOURCE_EXISTS) => self
                .read(&id)
                .await?
                .ok_or_else(|| Self::scheduled_for_deletion(&id)),
            // AWS's answer when the name is scheduled for deletion.
            Err(e) if code(&e) == Some(INVALID_REQUEST) => match self.describe(&id).await? {
                Described::Deleted => Err(Self::scheduled_for_deletion(&id)),
                _ => Err(store_error("CreateSecret", e)),
            },
            Err(e) => Err(store_error("CreateSecret", e)),
        }
    }

    async fn get(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self.read(&self.secret_id(name)).await?.map(|s| s.value))
    }

    async fn reference(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(match self.describe(&self.secret_id(name)).await? {
            Described::Live { arn } => Some(arn),
            Described::Absent | Described::Deleted => None,
        })
    }

    async fn delete(&self, name: &str) -> Result<(), StoreError> {
        let id = self.secret_id(name);
        let request = self.client.delete_secret().secret_id(&id);
        let request = match self.settings.deletion {
            SecretDeletion::RecoveryWindow { days } => {
                request.recovery_window_in_days(i64::from(days))
            }
            SecretDeletion::Immediately => request.force_delete_without_recovery(true),
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == Some(RESOURCE_NOT_FOUND) => Ok(()),
            // Already scheduled for deletion: done.
            Err(e) if code(&e) == Some(INVALID_REQUEST) => match self.describe(&id).await? {
                Described::Absent | Described::Deleted => Ok(()),
                Described::Live { .. } => Err(store_error("DeleteSecret", e)),
            },
            Err(e) => Err(store_error("DeleteSecret", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_to_the_bootstrap_stack_and_a_week_of_recovery() {
        let s = SecretsSettings::from_lookup(|_| None);
        assert_eq!(s.prefix, "paved/paved");
        assert_eq!(s.deletion, SecretDeletion::RecoveryWindow { days: 7 });
        let s = SecretsSettings::from_lookup(|k| match k {
            "PAVED_SECRET_PREFIX" => Some("paved/prod-stack/".into()),
            "PAVED_SECRET_RECOVERY_DAYS" => Some("30".into()),
            _ => None,
        });
        assert_eq!(s.prefix, "paved/prod-stack");
        assert_eq!(s.deletion, SecretDeletion::RecoveryWindow { days: 30 });
        let immediate = SecretsSettings::from_lookup(|k| {
            (k == "PAVED_SECRET_RECOVERY_DAYS").then(|| "0".into())
        });
        assert_eq!(immediate.deletion, SecretDeletion::Immediately);
        for bad in ["3", "31", "a week"] {
            let s = SecretsSettings::from_lookup(|k| {
                (k == "PAVED_SECRET_RECOVERY_DAYS").then(|| bad.into())
            });
            assert_eq!(
                s.deletion,
                SecretDeletion::RecoveryWindow { days: 7 },
                "{bad}"
            );
        }
    }

    #[test]
    fn tag_values_keep_entity_references_and_replace_the_rest() {
        assert_eq!(tag_value("group:default/team-a"), "group:default/team-a");
        assert_eq!(tag_value("team a; rm"), "team a_ rm");
        assert_eq!(tag_value(&"x".repeat(300)).len(), 256);
    }

    #[tokio::test]
    async fn names_go_under_the_prefix_and_arns_are_used_as_they_are() {
        let config = crate::config::for_emulator("http://127.0.0.1:9").await;
        let store = SecretsManagerSecretStore::new(&config, SecretsSettings::default());
        assert_eq!(
            store.secret_id("postgres/dev_orders/dev_orders_app/0123"),
            "paved/paved/postgres/dev_orders/dev_orders_app/0123"
        );
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:paved/paved/x-AbCdEf";
        assert_eq!(store.secret_id(arn), arn);
    }
}
