//! What provisioning drivers implement, and the secrets they keep. A driver provisions a real
//! thing (a PostgreSQL database and role, a git repository, a queue, a table) under a
//! deterministic external name, so that a retried step never creates a second one.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ports::{Condition, Item, Key, StoreError, Table};

/// What is being provisioned: the request's validated fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceSpec {
    pub request_id: String,
    /// The resource's name, already checked by the guardrails (`^[a-z][a-z0-9-]{1,38}[a-z0-9]$`).
    pub name: String,
    pub owner: String,
    pub environment: String,
    #[serde(default)]
    pub parameters: Value,
}

/// A driver failure, with the stable code Step Functions' `Retry`/`Catch` match on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// Worth retrying: the provider is busy, unreachable, or throttling.
    #[error("{code}: {message}")]
    Retryable { code: &'static str, message: String },
    /// Retrying will not help: bad parameters, a conflict with something not ours, a refusal.
    #[error("{code}: {message}")]
    NonRetryable { code: &'static str, message: String },
}

impl DriverError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Retryable { code, .. } | Self::NonRetryable { code, .. } => code,
        }
    }
}

/// The stable codes of ownership refusals, shared by every driver and the worker.
///
/// Names are deterministic, so a name can outlive the request that made the thing behind it:
/// every driver stamps the request id on what it creates (a comment, a tag, a git config
/// entry) and proves it before adopting, undoing or deleting anything under that name.
pub mod codes {
    /// Create: something is there under the name already, and it is not this request's (no
    /// paved marker, or another request's). Nothing is touched.
    pub const NAME_TAKEN: &str = "NonRetryable.NameTaken";
    /// Undo or delete: what is there under the name is not this request's, or the request no
    /// longer holds the name. Nothing is touched.
    pub const NOT_OWNED: &str = "NonRetryable.NotOwned";
}

/// A step's planned effect, shown by `?dryRun=true` before anything happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedStep {
    pub step: String,
    pub action: String,
}

/// The side-effect-free half of a driver: what each step of a request would do. Checking a
/// request needs only this, so the functions that check requests (requests API, chat-ops)
/// hold planners and link no provider client (PostgreSQL, git, the SDK's create/delete calls).
pub trait Planner: Send + Sync {
    /// The template `spec.type` this driver provisions.
    fn resource_type(&self) -> &'static str;
    /// What each step would do, with no side effect. An error here refuses the request before
    /// anything is started.
    fn plan(&self, spec: &ResourceSpec) -> Result<Vec<PlannedStep>, DriverError>;
}

/// A driver does what its [`Planner`] said, one step at a time.
#[async_trait]
pub trait Driver: Planner {
    /// Performs one step. Idempotent: a repeated call finds its own earlier work and returns
    /// the same outputs.
    async fn apply(&self, spec: &ResourceSpec, step: &str) -> Result<Value, DriverError>;
    /// Undoes one step (compensation). Idempotent: undoing what is not there succeeds. What
    /// is there but not this request's (see [`codes`]) is refused with
    /// [`codes::NOT_OWNED`] and left alone.
    async fn undo(&self, spec: &ResourceSpec, step: &str) -> Result<(), DriverError>;
    /// Whether the resource exists, and its outputs if so.
    async fn status(&self, spec: &ResourceSpec) -> Result<Option<Value>, DriverError>;
    /// Removes the whole resource (deprovisioning). Idempotent; refuses what is not this
    /// request's, as [`undo`](Self::undo) does.
    async fn delete(&self, spec: &ResourceSpec) -> Result<(), DriverError>;
}

/// The planners of drivers a process runs itself (`paved up` checks requests with the same
/// drivers its worker uses).
pub fn planners_of(drivers: &[std::sync::Arc<dyn Driver>]) -> Vec<std::sync::Arc<dyn Planner>> {
    drivers
        .iter()
        .map(|d| std::sync::Arc::clone(d) as std::sync::Arc<dyn Planner>)
        .collect()
}

/// Secrets, kept out of outputs, logs and responses; outputs carry only a reference.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Stores `value` under `name` unless a secret is there already; returns the stored one
    /// (so a retried step reuses the first password rather than minting a second).
    async fn put_if_absent(&self, name: &str, value: &str) -> Result<String, StoreError>;
    async fn get(&self, name: &str) -> Result<Option<String>, StoreError>;
    async fn delete(&self, name: &str) -> Result<(), StoreError>;
}

const SECRET_PARTITION: &str = "SECRET";

/// Secrets in the platform's table (the embedded backend keeps them in its SQLite file, which
/// `paved up` creates readable by its owner only).
#[derive(Debug)]
pub struct TableSecretStore<T: ?Sized> {
    table: std::sync::Arc<T>,
}

impl<T: Table + ?Sized> TableSecretStore<T> {
    pub fn new(table: std::sync::Arc<T>) -> Self {
        Self { table }
    }
}

#[async_trait]
impl<T: Table + ?Sized> SecretStore for TableSecretStore<T> {
    async fn put_if_absent(&self, name: &str, value: &str) -> Result<String, StoreError> {
        let mut attrs = Map::new();
        attrs.insert("value".into(), Value::String(value.to_owned()));
        let key = Key::new(SECRET_PARTITION, name);
        match self
            .table
            .put(Item::new(key, attrs), Condition::Absent)
            .await
        {
            Ok(()) => Ok(value.to_owned()),
            Err(StoreError::ConditionFailed {
                current: Some(item),
                ..
            }) => Ok(item.str_attr("value").unwrap_or_default().to_owned()),
            Err(e) => Err(e),
        }
    }

    async fn get(&self, name: &str) -> Result<Option<String>, StoreError> {
        let item = self.table.get(&Key::new(SECRET_PARTITION, name)).await?;
        Ok(item.and_then(|i| i.str_attr("value").map(str::to_owned)))
    }

    async fn delete(&self, name: &str) -> Result<(), StoreError> {
        self.table
            .delete(&Key::new(SECRET_PARTITION, name), Condition::Always)
            .await
    }
}
