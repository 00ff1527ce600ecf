//! Rows → polars frames with the normalised schema.

use polars::prelude::*;

use super::{
    ChangeRecord, DeploymentRecord, EventRecords, EventTables, IncidentRecord, ServiceRecord,
    micros,
};

pub(super) fn from_records(records: &EventRecords) -> crate::Result<EventTables> {
    Ok(EventTables {
        deployments: deployments(&records.deployments)?.lazy(),
        changes: changes(&records.changes)?.lazy(),
        incidents: incidents(&records.incidents)?.lazy(),
        services: match &records.services {
            None => None,
            Some(rows) => Some(services(rows)?.lazy()),
        },
    })
}

pub(super) fn deployments(rows: &[DeploymentRecord]) -> PolarsResult<DataFrame> {
    let shipped: usize = rows.iter().map(|d| d.changes.len()).sum();
    let mut changes_column = ListStringChunkedBuilder::new("changes".into(), rows.len(), shipped);
    for row in rows {
        changes_column.append_values_iter(row.changes.iter().map(String::as_str));
    }
    DataFrame::new_infer_height(vec![
        text("deploy_id", rows.iter().map(|d| Some(d.deploy_id.as_str()))),
        text("service", rows.iter().map(|d| Some(d.service.as_str()))),
        text(
            "environment",
            rows.iter().map(|d| Some(d.environment.as_str())),
        ),
        text("status", rows.iter().map(|d| Some(d.status.as_str()))),
        text("kind", rows.iter().map(|d| d.kind.as_deref())),
        text("commit_sha", rows.iter().map(|d| d.commit_sha.as_deref())),
        instants(
            "finished_at",
            rows.iter().map(|d| Some(micros(d.finished_at))),
        ),
        changes_column.finish().into_column(),
    ])
}

pub(super) fn changes(rows: &[ChangeRecord]) -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(vec![
        text("sha", rows.iter().map(|c| Some(c.sha.as_str()))),
        text("service", rows.iter().map(|c| Some(c.service.as_str()))),
        instants(
            "authored_at",
            rows.iter().map(|c| Some(micros(c.authored_at))),
        ),
    ])
}

pub(super) fn incidents(rows: &[IncidentRecord]) -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(vec![
        text(
            "incident_id",
            rows.iter().map(|i| Some(i.incident_id.as_str())),
        ),
        text("service", rows.iter().map(|i| i.service.as_deref())),
        instants(
            "created_at",
            rows.iter().map(|i| Some(micros(i.created_at))),
        ),
        instants(
            "resolved_at",
            rows.iter().map(|i| i.resolved_at.map(micros)),
        ),
        text("deploy_id", rows.iter().map(|i| i.deploy_id.as_deref())),
        text("commit_sha", rows.iter().map(|i| i.commit_sha.as_deref())),
    ])
}

pub(super) fn services(rows: &[ServiceRecord]) -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(vec![
        text("service", rows.iter().map(|s| Some(s.service.as_str()))),
        text("team", rows.iter().map(|s| Some(s.team.as_str()))),
    ])
}

/// A string column that is typed `String` even when empty.
fn text<'a>(name: &str, values: impl Iterator<Item = Option<&'a str>>) -> Column {
    StringChunked::from_iter_options(name.into(), values).into_column()
}

/// An instant column (microseconds since the epoch, UTC).
fn instants(name: &str, values: impl Iterator<Item = Option<i64>>) -> Column {
    Int64Chunked::from_iter_options(name.into(), values).into_column()
}
