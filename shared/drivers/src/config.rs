//! Which drivers this process can run, from the environment. The requests API refuses a
//! resource type whose driver is not configured, naming the setting that would enable it;
//! nothing is ever pretended.

use std::path::PathBuf;
use std::sync::Arc;

use paved_core::catalog::CatalogRepository;
use paved_core::provisioning::{Driver, Planner, SecretStore};

use crate::dynamodb::{DynamoTableDriver, DynamoTablePlanner};
use crate::postgres::{PostgresDriver, PostgresPlanner};
use crate::service::{ServiceDriver, ServicePlanner};
use crate::sqs::{SqsQueueDriver, SqsQueuePlanner};

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
                crate::sqs::SQS_RESOURCE_TYPE,
                need(
                    self.aws_region.is_some(),
                    "the sqs-queue driver is not configured: set AWS_REGION and AWS credentials (and AWS_ENDPOINT_URL for an emulator)",
                ),
            ),
            (
                crate::dynamodb::DYNAMODB_RESOURCE_TYPE,
                need(
                    self.aws_region.is_some(),
                    "the dynamodb-table driver is not configured: set AWS_REGION and AWS credentials (and AWS_ENDPOINT_URL for an emulator)",
                ),
            ),
        ]
    }

    /// The configured drivers' planners, for checking requests: nothing is connected or
    /// created, and none of the provider clients is linked into a program that only plans.
    pub fn planners(&self) -> Result<Vec<Arc<dyn Planner>>, String> {
        let mut planners: Vec<Arc<dyn Planner>> = Vec::new();
        if let Some(url) = &self.postgres_url {
            planners.push(Arc::new(PostgresPlanner::new(url)?));
        }
        if let Some(root) = &self.git_root {
            planners.push(Arc::new(ServicePlanner::new(absolute_git_root(root)?)));
        }
        if self.aws_region.is_some() {
            planners.push(Arc::new(SqsQueuePlanner));
            planners.push(Arc::new(DynamoTablePlanner));
        }
        Ok(planners)
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
            drivers.push(Arc::new(ServiceDriver::new(
                absolute_git_root(root)?,
                catalog,
            )));
        }
        if let Some(region) = &self.aws_region {
            let sdk = paved_aws::config::load(Some(region)).await;
            drivers.push(Arc::new(SqsQueueDriver::new(&sdk)));
            drivers.push(Arc::new(DynamoTableDriver::new(&sdk)));
        }
        Ok(drivers)
    }
}

/// git runs in scratch directories, where a relative root would point elsewhere.
fn absolute_git_root(root: &std::path::Path) -> Result<PathBuf, String> {
    std::path::absolute(root).map_err(|e| format!("PAVED_GIT_ROOT {}: {e}", root.display()))
}

#[cfg(test)]
mod tests {
    use paved_core::provisioning::{DriverError, ResourceSpec};
    use serde_json::json;

    use super::*;

    fn spec(parameters: serde_json::Value) -> ResourceSpec {
        ResourceSpec {
            request_id: "req-1".into(),
            name: "orders".into(),
            owner: "team-a".into(),
            environment: "development".into(),
            parameters,
        }
    }

    #[test]
    fn planners_need_no_server_and_touch_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("git");
        let config = DriverConfig {
            // Nothing listens there: a planner never connects.
            postgres_url: Some("postgresql://admin@db.invalid:6543/postgres".into()),
            git_root: Some(root.clone()),
            aws_region: Some("eu-west-1".into()),
        };
        let planners = config.planners().expect("planners");
        let types: Vec<_> = planners.iter().map(|p| p.resource_type()).collect();
        assert_eq!(
            types,
            [
                "postgres-database",
                "service",
                "sqs-queue",
                "dynamodb-table"
            ]
        );
        assert!(!root.exists(), "planning creates no directory");

        let postgres = planners[0].plan(&spec(json!({}))).expect("plan");
        assert_eq!(
            postgres[0].action,
            "create database paved_development_orders on db.invalid:6543"
        );
        let service = planners[1]
            .plan(&spec(json!({"language": "python-fastapi"})))
            .expect("plan");
        assert_eq!(
            service[1].action,
            format!("create {} and push main", root.join("orders.git").display())
        );
        match planners[1].plan(&spec(json!({"language": "cobol"}))) {
            Err(DriverError::NonRetryable { code, message }) => {
                assert_eq!(code, "NonRetryable.InvalidParameters");
                assert!(message.contains("cobol"), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_bad_postgres_url_is_refused_when_planning_too() {
        let config = DriverConfig {
            postgres_url: Some("postgresql://admin@host:notaport/db".into()),
            ..DriverConfig::default()
        };
        let err = config.planners().err().expect("refused");
        assert!(err.contains("PAVED_POSTGRES_URL"), "{err}");
    }
}
