//! Which drivers this process can run, from the environment. The requests API refuses a
//! resource type whose driver is not configured, naming the setting that would enable it;
//! nothing is ever pretended.

use std::path::PathBuf;
use std::sync::Arc;

use paved_core::catalog::CatalogRepository;
use paved_core::provisioning::{Driver, SecretStore};

use crate::aws::{DynamoTableDriver, SqsQueueDriver};
use crate::postgres::PostgresDriver;
use crate::service::ServiceDriver;

#[derive(Debug, Clone, Default)]
pub struct DriverConfig {
    /// `PAVED_POSTGRES_URL`: an account that may create databases and roles.
    pub postgres_url: Option<String>,
    /// `PAVED_GIT_ROOT`: where new service repositories are created (bare repositories).
    pub git_root: Option<PathBuf>,
    /// `AWS_REGION` (or `AWS_DEFAULT_REGION`): turns the `sqs-queue` and `dynamodb-table`
    /// drivers on. Credentials and `AWS_ENDPOINT_URL` (an emulator) come from the SDK's usual
    /// environment.
    pub aws_region: Option<String>,
}

impl DriverConfig {
    /// Reads `PAVED_POSTGRES_URL` and `PAVED_GIT_ROOT`; `default_git_root` applies when the
    /// latter is unset (`paved up` uses `<data dir>/git`).
    pub fn from_env(default_git_root: Option<PathBuf>) -> Self {
        let non_empty = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Self {
            postgres_url: non_empty("PAVED_POSTGRES_URL"),
            git_root: non_empty("PAVED_GIT_ROOT")
                .map(PathBuf::from)
                .or(default_git_root),
            aws_region: Self::aws_region_from_env(),
        }
    }

    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub fn aws_region_from_env() -> Option<String> {
        ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Every resource type paved knows, with whether it is configured here and, if not, what
    /// would configure it.
    pub fn availability(&self) -> Vec<(&'static str, Result<(), String>)> {
        let need = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_owned()) };
        vec![
            (
                crate::postgres::RESOURCE_TYPE,
                need(
                    self.postgres_url.is_some(),
                    "the postgres-database driver is not configured: set PAVED_POSTGRES_URL to an account that may create databases and roles",
                ),
            ),
            (
                crate::service::RESOURCE_TYPE,
                need(
                    self.git_root.is_some(),
                    "the service driver is not configured: set PAVED_GIT_ROOT to the directory that holds the new repositories",
                ),
            ),
            (
                crate::aws::SQS_RESOURCE_TYPE,
                need(
                    self.aws_region.is_some(),
                    "the sqs-queue driver is not configured: set AWS_REGION and AWS credentials (and AWS_ENDPOINT_URL for an emulator)",
                ),
            ),
            (
                crate::aws::DYNAMODB_RESOURCE_TYPE,
                need(
                    self.aws_region.is_some(),
                    "the dynamodb-table driver is not configured: set AWS_REGION and AWS credentials (and AWS_ENDPOINT_URL for an emulator)",
                ),
            ),
        ]
    }

    /// The configured drivers.
    pub async fn build(
        &self,
        secrets: Arc<dyn SecretStore>,
        catalog: Option<Arc<CatalogRepository>>,
    ) -> Result<Vec<Arc<dyn Driver>>, String> {
        let mut drivers: Vec<Arc<dyn Driver>> = Vec::new();
        if let Some(url) = &self.postgres_url {
            drivers.push(Arc::new(PostgresDriver::new(url, secrets)?));
        }
        if let (Some(root), Some(catalog)) = (&self.git_root, catalog) {
            std::fs::create_dir_all(root)
                .map_err(|e| format!("PAVED_GIT_ROOT {}: {e}", root.display()))?;
            // git runs in scratch directories, where a relative root would point elsewhere.
            let root = std::path::absolute(root)
                .map_err(|e| format!("PAVED_GIT_ROOT {}: {e}", root.display()))?;
            drivers.push(Arc::new(ServiceDriver::new(root, catalog)));
        }
        if let Some(region) = &self.aws_region {
            let sdk = paved_aws::config::load(Some(region)).await;
            drivers.push(Arc::new(SqsQueueDriver::new(&sdk)));
            drivers.push(Arc::new(DynamoTableDriver::new(&sdk)));
        }
        Ok(drivers)
    }
}
