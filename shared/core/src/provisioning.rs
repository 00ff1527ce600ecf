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
    /// What exists of the resource and how it differs from what `spec` provisions, field by
    /// field (the reconciliation loop's input). Read-only: never a side effect, so it may run
    /// as often as the loop's rate limit allows.
    async fn observe(
        &self,
        spec: &ResourceSpec,
    ) -> Result<crate::observation::Observation, DriverError>;
    /// A page of what is paved's on the provider, by marker or by a name only paved makes,
    /// whichever request made it (the leak scan's input): at most about `limit` things, from
    /// after `after` (a previous page's `next`). Read-only.
    async fn inventory(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<crate::observation::InventoryPage, DriverError>;
    /// Removes one thing [`inventory`](Self::inventory) found, for an admin who chose to
    /// delete a leak: only if it still carries `spec`'s request id as its marker, else
    /// [`codes::NOT_OWNED`] and nothing is touched. Removing what is gone succeeds.
    async fn remove_found(
        &self,
        spec: &ResourceSpec,
        found: &crate::observation::Found,
    ) -> Result<(), DriverError>;
}

/// The planners of drivers a process runs itself (`paved up` checks requests with the same
/// drivers its worker uses).
pub fn planners_of(drivers: &[std::sync::Arc<dyn Driver>]) -> Vec<std::sync::Arc<dyn Planner>> {
    drivers
        .iter()
        .map(|d| std::sync::Arc::clone(d) as std::sync::Arc<dyn Planner>)
        .collect()
}

/// Whom a generated secret belongs to, for the store to label it with: Secrets Manager tags
/// the secret (`paved:owner`, `paved:request-id`), and the owners' roles read by those tags
/// (docs/deployment.md, "Generated credentials").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretLabels<'a> {
    /// The owning group's entity reference, as the request names it (`group:default/team-a`).
    pub owner: &'a str,
    pub request_id: &'a str,
}

impl<'a> SecretLabels<'a> {
    pub fn of(spec: &'a ResourceSpec) -> Self {
        Self {
            owner: &spec.owner,
            request_id: &spec.request_id,
        }
    }
}

/// A secret as the store holds it: the value, for the driver alone, and the reference that
/// outputs carry instead (`secret:<name>` in the platform's table, the ARN in Secrets Manager).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSecret {
    pub value: String,
    pub reference: String,
}

impl std::fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSecret")
            .field("value", &"<redacted>")
            .field("reference", &self.reference)
            .finish()
    }
}

/// Secrets, kept out of outputs, logs and responses; outputs carry only a reference.
///
/// Names are deterministic (a driver derives one per request and thing), so a step retried
/// after a failure, even one that left the secret created, finds it instead of making a
/// second: nothing is orphaned by a retry, and the step's undo deletes it.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Stores `value` under `name` unless a secret is there already; returns the stored one
    /// (so a retried step reuses the first password rather than minting a second), with its
    /// reference.
    async fn put_if_absent(
        &self,
        name: &str,
        value: &str,
        labels: SecretLabels<'_>,
    ) -> Result<StoredSecret, StoreError>;
    /// The value under `name` (or under a reference this store handed out), if any.
    async fn get(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// The reference of the secret under `name`, without reading its value; `None` if there
    /// is none (or it is scheduled for deletion).
    async fn reference(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// Removes the secret under `name`; removing what is not there succeeds.
    async fn delete(&self, name: &str) -> Result<(), StoreError>;
}

const SECRET_PARTITION: &str = "SECRET";

/// The reference [`TableSecretStore`] hands out for `name`.
fn table_secret_reference(name: &str) -> String {
    format!("{TABLE_SECRET_SCHEME}{name}")
}

const TABLE_SECRET_SCHEME: &str = "secret:";

/// Secrets in the platform's table (the embedded backend keeps them in its SQLite file, which
/// `paved up` creates readable by its owner only). References are `secret:<name>`.
#[derive(Debug)]
pub struct TableSecretStore<T: ?Sized> {
    table: std::sync::Arc<T>,
}

impl<T: Table + ?Sized> TableSecretStore<T> {
    pub fn new(table: std::sync::Arc<T>) -> Self {
        Self { table }
    }

    fn key(name: &str) -> Key {
        Key::new(
            SECRET_PARTITION,
            name.strip_prefix(TABLE_SECRET_SCHEME).unwrap_or(name),
        )
    }
}

#[async_trait]
impl<T: Table + ?Sized> SecretStore for TableSecretStore<T> {
    async fn put_if_absent(
        &self,
        name: &str,
        value: &str,
        labels: SecretLabels<'_>,
    ) -> Result<StoredSecret, StoreError> {
        let mut attrs = Map::new();
        attrs.insert("value".into(), Value::String(value.to_owned()));
        attrs.insert("owner".into(), Value::String(labels.owner.to_owned()));
        attrs.insert(
            "requestId".into(),
            Value::String(labels.request_id.to_owned()),
        );
        let key = Self::key(name);
        let reference = table_secret_reference(&key.sk);
        let value = match self
            .table
            .put(Item::new(key, attrs), Condition::Absent)
            .await
        {
            Ok(()) => value.to_owned(),
            Err(StoreError::ConditionFailed {
                current: Some(item),
                ..
            }) => item.str_attr("value").unwrap_or_default().to_owned(),
            Err(e) => return Err(e),
        };
        Ok(StoredSecret { value, reference })
    }

    async fn get(&self, name: &str) -> Result<Option<String>, StoreError> {
        let item = self.table.get(&Self::key(name)).await?;
        Ok(item.and_then(|i| i.str_attr("value").map(str::to_owned)))
    }

    async fn reference(&self, name: &str) -> Result<Option<String>, StoreError> {
        let key = Self::key(name);
        let found = self.table.get(&key).await?.is_some();
        Ok(found.then(|| table_secret_reference(&key.sk)))
    }

    async fn delete(&self, name: &str) -> Result<(), StoreError> {
        self.table.delete(&Self::key(name), Condition::Always).await
    }
}
