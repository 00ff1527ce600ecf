//! PagerDuty v3 webhooks: `incident.triggered` and `incident.resolved`. The PagerDuty service
//! maps to a catalog Component through the annotation `pagerduty.com/service-id`; an incident of
//! an unmapped service still counts, for the org.

use chrono::{DateTime, Utc};
use paved_core::delivery::IncidentRecord;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Envelope {
    event: Event,
}

#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    event_type: String,
    occurred_at: DateTime<Utc>,
    data: Incident,
}

#[derive(Debug, Deserialize)]
struct Incident {
    id: String,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    service: Option<ServiceReference>,
}

#[derive(Debug, Deserialize)]
struct ServiceReference {
    id: String,
}

/// A delivery: its id (for de-duplication), the PagerDuty service id, and the incident update
/// (its `service` filled in by the caller) or why it is not used.
#[derive(Debug)]
pub struct PagerDutyEvent {
    pub delivery_id: String,
    pub pagerduty_service: Option<String>,
    pub incident: Result<IncidentRecord, String>,
}

pub fn parse(body: &[u8]) -> Result<PagerDutyEvent, String> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| format!("not a PagerDuty v3 webhook: {e}"))?;
    let event = envelope.event;
    let created = event.data.created_at.unwrap_or(event.occurred_at);
    let incident = match event.event_type.as_str() {
        "incident.triggered" => Ok(IncidentRecord {
            incident_id: format!("pagerduty:{}", event.data.id),
            service: None,
            created_at: created,
            resolved_at: None,
            deploy_id: None,
            commit_sha: None,
        }),
        "incident.resolved" => Ok(IncidentRecord {
            incident_id: format!("pagerduty:{}", event.data.id),
            service: None,
            created_at: created,
            resolved_at: Some(event.occurred_at),
            deploy_id: None,
            commit_sha: None,
        }),
        other => Err(format!("PagerDuty event {other} is not one paved uses")),
    };
    Ok(PagerDutyEvent {
        delivery_id: event.id,
        pagerduty_service: event.data.service.map(|s| s.id),
        incident,
    })
}
