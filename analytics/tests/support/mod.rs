//! Builders for hand-worked vectors: rows read like the spec's tables.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use paved_analytics::dora::{self, DoraReport, DoraSettings};
use paved_analytics::input::{
    ChangeRecord, DeploymentRecord, EventRecords, EventTables, IncidentRecord, ServiceRecord,
};
use paved_analytics::window::ReportWindow;

pub(crate) fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("test instant")
        .with_timezone(&Utc)
}

/// A successful production deployment.
pub(crate) fn deploy(id: &str, service: &str, finished_at: &str) -> DeploymentRecord {
    DeploymentRecord {
        deploy_id: id.to_owned(),
        service: service.to_owned(),
        environment: "production".to_owned(),
        status: "success".to_owned(),
        kind: None,
        commit_sha: None,
        finished_at: at(finished_at),
        changes: Vec::new(),
    }
}

pub(crate) trait DeploymentExt {
    fn env(self, environment: &str) -> Self;
    fn status(self, status: &str) -> Self;
    fn kind(self, kind: &str) -> Self;
    fn head(self, sha: &str) -> Self;
    fn ships(self, shas: &[&str]) -> Self;
}

impl DeploymentExt for DeploymentRecord {
    fn env(mut self, environment: &str) -> Self {
        self.environment = environment.to_owned();
        self
    }
    fn status(mut self, status: &str) -> Self {
        self.status = status.to_owned();
        self
    }
    fn kind(mut self, kind: &str) -> Self {
        self.kind = Some(kind.to_owned());
        self
    }
    fn head(mut self, sha: &str) -> Self {
        self.commit_sha = Some(sha.to_owned());
        self
    }
    fn ships(mut self, shas: &[&str]) -> Self {
        self.changes = shas.iter().map(|s| (*s).to_owned()).collect();
        self
    }
}

pub(crate) fn change(sha: &str, service: &str, authored_at: &str) -> ChangeRecord {
    ChangeRecord {
        sha: sha.to_owned(),
        service: service.to_owned(),
        authored_at: at(authored_at),
    }
}

pub(crate) fn incident(id: &str, service: Option<&str>, created_at: &str) -> IncidentRecord {
    IncidentRecord {
        incident_id: id.to_owned(),
        service: service.map(str::to_owned),
        created_at: at(created_at),
        resolved_at: None,
        deploy_id: None,
        commit_sha: None,
    }
}

pub(crate) trait IncidentExt {
    fn resolved(self, at: &str) -> Self;
    fn deploy(self, id: &str) -> Self;
    fn commit(self, sha: &str) -> Self;
}

impl IncidentExt for IncidentRecord {
    fn resolved(mut self, resolved_at: &str) -> Self {
        self.resolved_at = Some(at(resolved_at));
        self
    }
    fn deploy(mut self, id: &str) -> Self {
        self.deploy_id = Some(id.to_owned());
        self
    }
    fn commit(mut self, sha: &str) -> Self {
        self.commit_sha = Some(sha.to_owned());
        self
    }
}

pub(crate) fn owned_by(pairs: &[(&str, &str)]) -> Option<Vec<ServiceRecord>> {
    Some(
        pairs
            .iter()
            .map(|(service, team)| ServiceRecord {
                service: (*service).to_owned(),
                team: (*team).to_owned(),
            })
            .collect(),
    )
}

/// The report over `[from, to)` in UTC, with the spec's defaults.
pub(crate) fn report(records: &EventRecords, from: &str, to: &str) -> DoraReport {
    report_in(records, from, to, "UTC")
}

pub(crate) fn report_in(
    records: &EventRecords,
    from: &str,
    to: &str,
    timezone: &str,
) -> DoraReport {
    let window =
        ReportWindow::parse(Some(from), Some(to), Some(timezone), Utc::now()).expect("test window");
    let tables = EventTables::from_records(records).expect("tables");
    dora::compute(&tables, &DoraSettings::new(window)).expect("report")
}

pub(crate) fn records(
    deployments: Vec<DeploymentRecord>,
    changes: Vec<ChangeRecord>,
    incidents: Vec<IncidentRecord>,
) -> EventRecords {
    EventRecords {
        deployments,
        changes,
        incidents,
        services: None,
    }
}
