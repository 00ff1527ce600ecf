//! CDEvents (cdevents.dev, spec 0.4): `service.deployed`, `change.merged`, `incident.detected`
//! and `incident.resolved`, any minor version. A service subject's id names the catalog
//! Component (`service/checkout` or `checkout`); a change's repository maps through the
//! `github.com/project-slug` or `gitlab.com/project-slug` annotation.

use chrono::{DateTime, Utc};
use paved_core::delivery::{ChangeRecord, DeploymentRecord, IncidentRecord};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
struct CdEvent {
    context: Context,
    subject: Subject,
}

#[derive(Debug, Deserialize)]
struct Context {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    timestamp: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct Subject {
    id: String,
    #[serde(default)]
    content: Value,
}

/// A CDEvent, read: its id, and what it says.
#[derive(Debug)]
pub struct Reading {
    pub delivery_id: String,
    pub kind: Kind,
}

#[derive(Debug)]
pub enum Kind {
    Deployed(DeploymentRecord),
    /// A merged change of a repository, whose service the caller resolves.
    Merged {
        repository: String,
        sha: String,
        at: DateTime<Utc>,
    },
    Incident(IncidentRecord),
    Unused(String),
}

/// `service/checkout` → `checkout`.
fn service_name(id: &str) -> String {
    id.rsplit('/').next().unwrap_or(id).to_owned()
}

fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, key| v.get(*key))?.as_str()
}

pub fn parse(body: &[u8]) -> Result<Reading, String> {
    let event: CdEvent = serde_json::from_slice(body).map_err(|e| format!("not a CDEvent: {e}"))?;
    let at = event.context.timestamp;
    // dev.cdevents.<subject>.<predicate>.<version>
    let name = event
        .context
        .event_type
        .strip_prefix("dev.cdevents.")
        .and_then(|rest| {
            let mut parts = rest.splitn(3, '.');
            Some(format!("{}.{}", parts.next()?, parts.next()?))
        })
        .ok_or_else(|| format!("{:?} is not a CDEvents type", event.context.event_type))?;
    let content = &event.subject.content;
    let kind = match name.as_str() {
        "service.deployed" => {
            let environment = text(content, &["environment", "id"])
                .ok_or("service.deployed needs subject.content.environment.id")?;
            Kind::Deployed(DeploymentRecord {
                deploy_id: format!("cdevents-{}", event.context.id),
                service: service_name(&event.subject.id),
                environment: environment
                    .rsplit('/')
                    .next()
                    .unwrap_or(environment)
                    .to_owned(),
                status: "success".into(),
                kind: None,
                commit_sha: text(content, &["customData", "commit_sha"]).map(str::to_owned),
                finished_at: at,
                changes: Vec::new(),
            })
        }
        "change.merged" => Kind::Merged {
            repository: text(content, &["repository", "id"])
                .ok_or("change.merged needs subject.content.repository.id")?
                .to_owned(),
            sha: event.subject.id.clone(),
            at,
        },
        "incident.detected" | "incident.resolved" => Kind::Incident(IncidentRecord {
            incident_id: format!("cdevents:{}", event.subject.id),
            service: text(content, &["service", "id"]).map(service_name),
            created_at: at,
            resolved_at: (name == "incident.resolved").then_some(at),
            deploy_id: None,
            commit_sha: None,
        }),
        other => Kind::Unused(format!("CDEvent {other} is not one paved uses")),
    };
    Ok(Reading {
        delivery_id: event.context.id,
        kind,
    })
}

/// A merged change, once its service is known.
pub fn change(service: &str, sha: String, at: DateTime<Utc>) -> ChangeRecord {
    ChangeRecord {
        sha,
        service: service.to_owned(),
        authored_at: at,
    }
}
