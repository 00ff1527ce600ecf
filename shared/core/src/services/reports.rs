//! Reading the figures the scheduled DORA job stored: the DORA report and the adoption
//! figures, whole or for one scope. The metrics API and chat-ops' `/paved dora` both ask here.

use crate::ErrorCode;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::Error;
use crate::delivery::DeliveryStore;

/// Which part of a report a caller asked for: `org`, `team:<name>` or `service:<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportScope {
    Org,
    Team(String),
    Service(String),
}

impl ReportScope {
    /// 400 `invalid_scope` for anything but `org`, `team:<name>` or `service:<name>`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        match text.split_once(':') {
            None if text == "org" => Ok(Self::Org),
            Some(("team", name)) if !name.is_empty() => Ok(Self::Team(name.to_owned())),
            Some(("service", name)) if !name.is_empty() => Ok(Self::Service(name.to_owned())),
            _ => Err(Error::bad_request(
                ErrorCode::InvalidScope,
                format!("scope {text:?} must be org, team:<name> or service:<name>"),
            )),
        }
    }

    fn label(&self) -> String {
        match self {
            Self::Org => "org".into(),
            Self::Team(name) => format!("team:{name}"),
            Self::Service(name) => format!("service:{name}"),
        }
    }
}

/// The stored reports, read.
#[derive(Clone)]
pub struct Reports {
    events: Arc<DeliveryStore>,
}

impl std::fmt::Debug for Reports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reports").finish_non_exhaustive()
    }
}

impl Reports {
    pub fn new(events: Arc<DeliveryStore>) -> Self {
        Self { events }
    }

    /// The latest DORA report, whole (with `computed_at`) or for one scope.
    pub async fn dora(&self, scope: Option<&ReportScope>) -> Result<Value, Error> {
        let Some((report, computed_at)) = self.events.latest_report().await? else {
            return Err(Error::NotFound(
                "the DORA report (it is computed on a schedule; none has run yet)".into(),
            ));
        };
        let Some(scope) = scope else {
            return Ok(whole(report, &computed_at));
        };
        let metrics = match scope {
            ReportScope::Org => report.get("org").cloned(),
            ReportScope::Team(name) => find(&report, "teams", "team", name),
            ReportScope::Service(name) => find(&report, "services", "service", name),
        };
        let label = scope.label();
        let metrics =
            metrics.ok_or_else(|| Error::NotFound(format!("{label} in the DORA report")))?;
        Ok(json!({
            "scope": label,
            "spec_version": report.get("spec_version"),
            "edition": report.get("edition"),
            "window": report.get("window"),
            "computed_at": computed_at,
            "metrics": metrics,
        }))
    }

    /// The latest adoption figures, whole or for the org or one team (never a service).
    pub async fn adoption(&self, scope: Option<&ReportScope>) -> Result<Value, Error> {
        let Some((report, computed_at)) = self.events.latest_adoption().await? else {
            return Err(Error::NotFound(
                "the adoption figures (they are computed with the DORA report; none has run yet)"
                    .into(),
            ));
        };
        let figures = match scope {
            None => return Ok(whole(report, &computed_at)),
            Some(ReportScope::Org) => report.get("org").cloned(),
            Some(ReportScope::Team(name)) => find(&report, "teams", "team", name),
            Some(ReportScope::Service(_)) => {
                return Err(Error::bad_request(
                    ErrorCode::InvalidScope,
                    "adoption is per team or for the org: scope=org or team:<name>",
                ));
            }
        };
        let label = scope.map(ReportScope::label).unwrap_or_default();
        let figures =
            figures.ok_or_else(|| Error::NotFound(format!("{label} in the adoption figures")))?;
        Ok(json!({
            "scope": label,
            "spec_version": report.get("spec_version"),
            "to": report.get("to"),
            "weeks": report.get("weeks"),
            "computed_at": computed_at,
            "figures": figures,
        }))
    }
}

fn whole<T: serde::Serialize>(mut report: Value, computed_at: &T) -> Value {
    if let Value::Object(map) = &mut report {
        map.insert("computed_at".into(), json!(computed_at));
    }
    report
}

fn find(report: &Value, list: &str, field: &str, name: &str) -> Option<Value> {
    report
        .get(list)?
        .as_array()?
        .iter()
        .find(|entry| entry.get(field).and_then(Value::as_str) == Some(name))
        .cloned()
}
