//! The input side of the spec: the event tables, from rows or from a folder of `.parquet` or
//! `.ndjson` files, normalised to one schema. Inside the crate every time stamp is an `Int64` of
//! microseconds since the epoch, UTC, so rules do plain integer arithmetic on them.

mod folder;
mod frames;

pub use folder::{TableFormat, read_dir, write_dir};
pub use paved_core::delivery::{
    ChangeRecord, DeploymentRecord, EventRecords, IncidentRecord, ServiceRecord,
};

use polars::prelude::LazyFrame;

/// The normalised tables the DORA rules run on.
#[derive(Clone)]
pub struct EventTables {
    /// deploy_id, service, environment, status, kind, commit_sha: str; finished_at: i64 µs;
    /// changes: list<str>.
    pub deployments: LazyFrame,
    /// sha, service: str; authored_at: i64 µs.
    pub changes: LazyFrame,
    /// incident_id, service, deploy_id, commit_sha: str; created_at, resolved_at: i64 µs.
    pub incidents: LazyFrame,
    /// service, team: str.
    pub services: Option<LazyFrame>,
}

impl std::fmt::Debug for EventTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventTables").finish_non_exhaustive()
    }
}

impl EventTables {
    /// Tables built from rows: the store, the tests and the generator use this.
    pub fn from_records(records: &EventRecords) -> crate::Result<Self> {
        frames::from_records(records)
    }
}

/// Microseconds since the epoch: the crate's one time representation.
pub(crate) fn micros(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_micros()
}
