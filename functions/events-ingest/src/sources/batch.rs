//! paved's own batch format: the metrics spec's three tables as JSON,
//! `{"deployments": [...], "changes": [...], "incidents": [...]}`, rows as in NDJSON input.

use paved_core::delivery::{ChangeRecord, DeploymentRecord, IncidentRecord};
use serde::Deserialize;

use crate::normalized::Normalized;

/// Rows per batch: a batch is written row by row, and a bounded one bounds the request.
pub const MAX_ROWS: usize = 5_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    #[serde(default)]
    deployments: Vec<DeploymentRecord>,
    #[serde(default)]
    changes: Vec<ChangeRecord>,
    #[serde(default)]
    incidents: Vec<IncidentRecord>,
}

/// The rows, as given: a batch carries its own change sets, so nothing is taken from the
/// pending commits.
pub fn parse(body: &[u8]) -> Result<Normalized, String> {
    let batch: Batch =
        serde_json::from_slice(body).map_err(|e| format!("not a paved event batch: {e}"))?;
    let rows = batch.deployments.len() + batch.changes.len() + batch.incidents.len();
    if rows > MAX_ROWS {
        return Err(format!("{rows} rows: a batch holds at most {MAX_ROWS}"));
    }
    for d in &batch.deployments {
        if d.deploy_id.is_empty() || d.service.is_empty() {
            return Err("every deployment needs a deploy_id and a service".into());
        }
    }
    Ok(Normalized {
        changes: batch.changes,
        deployments: batch.deployments,
        incidents: batch.incidents,
        ..Normalized::default()
    })
}
