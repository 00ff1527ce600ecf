//! The metrics spec's three event tables (and the optional service→team map) as rows: what
//! ingestion stores, what the analytics read from NDJSON or the store, what the generator makes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One row of `deployments`. Time stamps are RFC 3339; an offset is converted to UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    pub deploy_id: String,
    pub service: String,
    pub environment: String,
    /// `success` or `failure`.
    pub status: String,
    /// `normal`, `rollback` or `hotfix`; absent means normal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_sha: Option<String>,
    pub finished_at: DateTime<Utc>,
    /// The commit shas this deployment shipped.
    #[serde(default)]
    pub changes: Vec<String>,
}

/// One row of `changes`: a commit of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub sha: String,
    pub service: String,
    pub authored_at: DateTime<Utc>,
}

/// One row of `incidents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentRecord {
    pub incident_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_sha: Option<String>,
}

/// One row of the optional `services` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub service: String,
    pub team: String,
}

/// All four tables as rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecords {
    pub deployments: Vec<DeploymentRecord>,
    pub changes: Vec<ChangeRecord>,
    pub incidents: Vec<IncidentRecord>,
    /// `None` when the input has no services table: every service is then `unowned`.
    pub services: Option<Vec<ServiceRecord>>,
}
