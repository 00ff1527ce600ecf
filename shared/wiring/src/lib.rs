//! The wiring every entry point shares: which adapters sit behind paved's ports, chosen once
//! at start-up from `PAVED_BACKEND`, and the use-case services built on them.
//!
//! `PAVED_BACKEND`:
//! `embedded` (the default: one SQLite file in `PAVED_DATA_DIR` and the local workflow engine)
//! or `aws` (DynamoDB, SQS and Step Functions, found through [`AwsSettings`]). Every function's
//! `main.rs` and `paved up` open their ports here, so they cannot disagree on names.
//!
//! The embedded backend is the `embedded` feature (on by default). The functions' Lambda builds
//! leave it out, and such a build refuses `PAVED_BACKEND=embedded` with a clear message.
//!
//! The drivers' secret store is chosen here too ([`Backend::secret_store`]): the platform's table
//! on the embedded backend (the SQLite file, readable by its owner only), Secrets Manager on
//! AWS.
//!
//! The use-case services are built here too ([`requests_service_from_env`]), on the ports and
//! with the settings every function honours, so the functions and `paved up` share them.

mod catalog;
pub mod guardrails;
mod services;

#[cfg(feature = "embedded")]
use std::path::PathBuf;
use std::sync::Arc;

use paved_aws::{AwsSettings, SecretsManagerSecretStore, SecretsSettings};
use paved_core::ports::{Queue, Table, Workflow};
use paved_core::provisioning::{SecretStore, TableSecretStore};
#[cfg(feature = "embedded")]
use paved_sqlite::{Durability, SqliteStore};
#[cfg(feature = "embedded")]
use paved_workflow::WorkflowEngine;
#[cfg(feature = "embedded")]
use paved_workflow::{
    NOTIFICATION_DEAD_LETTER_QUEUE, NOTIFICATION_QUEUE, TASK_DEAD_LETTER_QUEUE, TASK_QUEUE,
};

pub use catalog::{catalog_options_from_lookup, load_catalog};
pub use services::requests_service_from_env;

/// Whether this build has the embedded backend (the `embedded` feature).
pub const HAS_EMBEDDED: bool = cfg!(feature = "embedded");

/// Where state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendConfig {
    /// One SQLite file (`paved.db`) in `data_dir`.
    #[cfg(feature = "embedded")]
    Embedded {
        data_dir: PathBuf,
        durability: Durability,
    },
    /// DynamoDB, SQS and Step Functions.
    Aws(AwsSettings),
}

impl BackendConfig {
    /// Reads `PAVED_BACKEND` (`embedded` or `aws`), `PAVED_DATA_DIR` (default `./.paved`) and,
    /// for `aws`, the variables of [`AwsSettings`].
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        match get("PAVED_BACKEND").as_deref().map(str::trim) {
            #[cfg(feature = "embedded")]
            None | Some("" | "embedded") => Ok(Self::Embedded {
                data_dir: get("PAVED_DATA_DIR")
                    .filter(|d| !d.trim().is_empty())
                    .unwrap_or_else(|| ".paved".into())
                    .into(),
                durability: Durability::Full,
            }),
            #[cfg(not(feature = "embedded"))]
            None | Some("" | "embedded") => Err(
                "this build has no embedded backend (it is a Lambda build): set PAVED_BACKEND=aws, or run the `paved` binary for the embedded platform".into(),
            ),
            Some("aws") => Ok(Self::Aws(AwsSettings::from_lookup(get))),
            Some(other) => Err(format!("PAVED_BACKEND is '{other}'; use embedded or aws")),
        }
    }

    pub fn is_aws(&self) -> bool {
        matches!(self, Self::Aws(_))
    }
}

/// The queues of the provisioning workflow, by name (embedded) or URL (SQS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueNames {
    pub tasks: String,
    pub task_dead_letters: String,
    pub notifications: String,
    pub notification_dead_letters: String,
}

/// The embedded backend's own parts: the store, and the engine whose timers `paved up` runs.
#[cfg(feature = "embedded")]
#[derive(Debug, Clone)]
pub struct Embedded {
    pub store: SqliteStore,
    pub engine: WorkflowEngine,
    pub data_dir: PathBuf,
}

/// What a function needs of the workflow engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowUse {
    /// Starts executions: the state machine must be known (found by name if not configured).
    StartsExecutions,
    /// Only answers task tokens (the worker) or none at all (the catalog).
    AnswersTokens,
}

/// The ports, open.
#[derive(Clone)]
pub struct Backend {
    pub table: Arc<dyn Table>,
    pub queue: Arc<dyn Queue>,
    pub workflow: Arc<dyn Workflow>,
    pub queues: QueueNames,
    /// `None` on AWS.
    #[cfg(feature = "embedded")]
    pub embedded: Option<Embedded>,
    /// The SDK configuration on AWS, for the clients built on demand ([`Backend::secret_store`]).
    aws: Option<aws_config::SdkConfig>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

impl Backend {
    pub async fn open(config: &BackendConfig, workflow: WorkflowUse) -> Result<Self, String> {
        match config {
            #[cfg(feature = "embedded")]
            BackendConfig::Embedded {
                data_dir,
                durability,
            } => {
                let store = open_store(data_dir, *durability)?;
                let engine = WorkflowEngine::provisioning(store.clone())
                    .map_err(|e| format!("loading the provisioning state machine: {e}"))?;
                Ok(Self {
                    table: Arc::new(store.clone()),
                    queue: Arc::new(store.clone()),
                    workflow: Arc::new(engine.clone()),
                    queues: QueueNames {
                        tasks: TASK_QUEUE.into(),
                        task_dead_letters: TASK_DEAD_LETTER_QUEUE.into(),
                        notifications: NOTIFICATION_QUEUE.into(),
                        notification_dead_letters: NOTIFICATION_DEAD_LETTER_QUEUE.into(),
                    },
                    embedded: Some(Embedded {
                        store,
                        engine,
                        data_dir: data_dir.clone(),
                    }),
                    aws: None,
                })
            }
            BackendConfig::Aws(settings) => {
                let sdk = settings.sdk_config().await;
                let arn = match workflow {
                    WorkflowUse::StartsExecutions => {
                        Some(settings.resolve_state_machine(&sdk).await?)
                    }
                    WorkflowUse::AnswersTokens => settings.state_machine_arn.clone(),
                };
                let (table, queue, sfn) = settings.adapters(&sdk, arn.as_deref());
                Ok(Self {
                    table,
                    queue,
                    workflow: sfn,
                    queues: QueueNames {
                        tasks: settings.task_queue.clone(),
                        task_dead_letters: settings.task_dead_letter_queue.clone(),
                        notifications: settings.notification_queue.clone(),
                        notification_dead_letters: settings.notification_dead_letter_queue.clone(),
                    },
                    #[cfg(feature = "embedded")]
                    embedded: None,
                    aws: Some(sdk),
                })
            }
        }
    }

    /// Only the table, for the functions that neither queue nor start executions (the
    /// catalog, ingestion, the metrics API, the DORA job): their Lambda builds then link no
    /// SQS or Step Functions client.
    pub async fn open_table(config: &BackendConfig) -> Result<Arc<dyn Table>, String> {
        match config {
            #[cfg(feature = "embedded")]
            BackendConfig::Embedded {
                data_dir,
                durability,
            } => Ok(Arc::new(open_store(data_dir, *durability)?)),
            BackendConfig::Aws(settings) => {
                Ok(settings.table_adapter(&settings.sdk_config().await))
            }
        }
    }

    /// Where the drivers keep the credentials they generate: on AWS, Secrets Manager under
    /// `PAVED_SECRET_PREFIX` ([`SecretsSettings`]; the worker's IAM role alone may write there);
    /// on the embedded backend, the platform's table, in the SQLite file only its owner reads.
    /// Built on demand, so a function that never asks links no Secrets Manager client.
    pub fn secret_store(&self) -> Arc<dyn SecretStore> {
        match &self.aws {
            Some(sdk) => Arc::new(SecretsManagerSecretStore::new(
                sdk,
                SecretsSettings::from_env(),
            )),
            None => Arc::new(TableSecretStore::new(Arc::clone(&self.table))),
        }
    }

    /// The reconciliation loop over this backend's table and task queue (the worker adds its
    /// drivers; the schedule's tick needs none).
    pub fn reconciler(
        &self,
        settings: paved_core::resources::ReconcilerSettings,
    ) -> paved_core::resources::Reconciler {
        paved_core::resources::Reconciler::new(
            Arc::clone(&self.table),
            Arc::clone(&self.queue),
            self.queues.tasks.clone(),
            self.queues.notifications.clone(),
            Arc::new(paved_core::ports::SystemClock),
            settings,
        )
    }

    /// Where a function may keep local files (the `service` driver's repositories): the data
    /// directory on the embedded backend, none on AWS.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        #[cfg(feature = "embedded")]
        return self.embedded.as_ref().map(|e| e.data_dir.as_path());
        #[cfg(not(feature = "embedded"))]
        None
    }
}

#[cfg(feature = "embedded")]
fn open_store(data_dir: &std::path::Path, durability: Durability) -> Result<SqliteStore, String> {
    paved_sqlite::create_private_dir(data_dir)
        .map_err(|e| format!("creating {}: {e}", data_dir.display()))?;
    SqliteStore::open_with(&data_dir.join("paved.db"), durability)
        .map_err(|e| format!("opening the embedded store: {e}"))
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;

    #[test]
    fn the_backend_comes_from_the_environment() {
        assert_eq!(
            BackendConfig::from_lookup(|_| None),
            Ok(BackendConfig::Embedded {
                data_dir: ".paved".into(),
                durability: Durability::Full
            })
        );
        let aws = BackendConfig::from_lookup(|k| (k == "PAVED_BACKEND").then(|| "aws".into()))
            .expect("aws");
        assert!(aws.is_aws());
        let err = BackendConfig::from_lookup(|k| (k == "PAVED_BACKEND").then(|| "mongo".into()))
            .expect_err("refused");
        assert!(err.contains("mongo"), "{err}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_embedded_backend_keeps_secrets_in_its_owner_only_file() {
        use paved_core::provisioning::SecretLabels;
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().expect("dir");
        let config = BackendConfig::Embedded {
            data_dir: dir.path().join("data"),
            durability: Durability::Full,
        };
        let backend = Backend::open(&config, WorkflowUse::AnswersTokens)
            .await
            .expect("open");
        let secrets = backend.secret_store();
        let labels = SecretLabels {
            owner: "group:default/team-a",
            request_id: "req-1",
        };
        let first = secrets
            .put_if_absent("postgres/db/role/t1", "first", labels)
            .await
            .expect("put");
        let again = secrets
            .put_if_absent("postgres/db/role/t1", "second", labels)
            .await
            .expect("put again");
        assert_eq!(
            (first.value.as_str(), again.value.as_str()),
            ("first", "first")
        );
        assert_eq!(first.reference, "secret:postgres/db/role/t1");
        assert_eq!(again.reference, first.reference);
        assert_eq!(
            secrets.reference("postgres/db/role/t1").await.expect("ref"),
            Some(first.reference.clone())
        );
        assert_eq!(
            secrets
                .get(&first.reference)
                .await
                .expect("get by reference"),
            Some("first".into())
        );
        // The file and SQLite's journal beside it, while the store is open and written.
        for file in ["paved.db", "paved.db-wal", "paved.db-shm"] {
            let path = dir.path().join("data").join(file);
            let mode = std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("{file}: {e}"))
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        secrets.delete("postgres/db/role/t1").await.expect("delete");
        assert_eq!(secrets.get("postgres/db/role/t1").await.expect("get"), None);
        assert_eq!(
            secrets.reference("postgres/db/role/t1").await.expect("ref"),
            None
        );
        secrets
            .delete("postgres/db/role/t1")
            .await
            .expect("deleting twice is fine");
    }
}
