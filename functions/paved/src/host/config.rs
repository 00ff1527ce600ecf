//! What `paved up` is configured with: flags and the environment, resolved.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use catalog_api::Limits;
use paved_aws::AwsSettings;
use paved_core::provisioning::Driver;
use paved_drivers::config::DriverConfig;
use paved_sqlite::Durability;
use paved_wiring::BackendConfig;
use provision_worker::WorkerConfig;

/// A platform team's own guardrails.
#[derive(Debug, Clone)]
pub struct PolicySource {
    pub dir: PathBuf,
    pub replace_default: bool,
}

/// Everything `paved up` needs, resolved from flags and the environment.
#[derive(Clone)]
pub struct HostConfig {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub jwt_secret: Option<String>,
    pub admin_group: String,
    pub limits: Limits,
    pub drivers: DriverConfig,
    pub policies: Option<PolicySource>,
    /// Task pollers running at once.
    pub workers: usize,
    pub worker: WorkerConfig,
    /// How soon a task message that failed in the worker is delivered again.
    pub retry_after: Duration,
    /// How hard the SQLite file's commits wait for the disk.
    pub durability: Durability,
    /// Drivers added by an embedding program (tests use this for fault injection).
    pub extra_drivers: Vec<Arc<dyn Driver>>,
    /// Run on DynamoDB, SQS and Step Functions instead of the embedded backend.
    pub aws: Option<AwsSettings>,
    /// How often the DORA report is recomputed (at start, then on this period), as the
    /// schedule does on AWS; `None` turns it off.
    pub dora_every: Option<Duration>,
    /// Slack's signing secret for `/v1/chatops/slack` (`PAVED_SLACK_SIGNING_SECRET`); without
    /// it every Slack request is refused.
    pub slack_signing_secret: Option<chatops::slack::signature::SigningSecret>,
    /// Where Slack notifications go (`PAVED_SLACK_APPROVALS_WEBHOOK`, `PAVED_SLACK_BOT_TOKEN`).
    pub slack_targets: Option<paved_chat::notify::SlackTargets>,
    /// The scorecards (`PAVED_SCORECARDS_DIR` adds to and replaces the default).
    pub scorecards: paved_core::scorecards::ScorecardSet,
}

impl std::fmt::Debug for HostConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostConfig").finish_non_exhaustive()
    }
}

impl HostConfig {
    /// Defaults for a data directory: loopback, the local git root, no PostgreSQL.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            jwt_secret: None,
            admin_group: paved_core::auth::DEFAULT_ADMIN_GROUP.into(),
            limits: Limits::default(),
            drivers: DriverConfig {
                postgres_url: None,
                git_root: Some(data_dir.join("git")),
                aws_region: None,
            },
            policies: None,
            workers: 4,
            worker: WorkerConfig::default(),
            retry_after: Duration::from_secs(2),
            durability: Durability::Full,
            extra_drivers: Vec::new(),
            aws: None,
            dora_every: Some(Duration::from_secs(24 * 3600)),
            slack_signing_secret: chatops::slack::signature::SigningSecret::from_env(),
            slack_targets: paved_chat::notify::SlackTargets::from_env(),
            scorecards: paved_core::scorecards::ScorecardSet::default(),
            data_dir,
        }
    }

    pub(super) fn backend(&self) -> BackendConfig {
        match &self.aws {
            Some(settings) => BackendConfig::Aws(AwsSettings {
                // paved up's pollers long-poll; Lambda's event source mapping does it on AWS.
                receive_wait: Duration::from_secs(2),
                ..settings.clone()
            }),
            None => BackendConfig::Embedded {
                data_dir: self.data_dir.clone(),
                durability: self.durability,
            },
        }
    }
}
