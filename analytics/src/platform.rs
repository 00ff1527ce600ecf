//! The platform's own figures for the leaders' report, when it is computed over the platform's
//! store (`paved report dora --store`): scorecard levels per team with the rules failing most
//! often, and platform adoption. A report over a folder of event tables has no catalog and so
//! no such section.

use paved_core::adoption::{AdoptionReport, Figures, Week};
use paved_core::scorecards::Distribution;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlatformSection {
    /// The scorecard's title ("Production readiness").
    pub scorecard: String,
    pub levels: Vec<String>,
    pub org: Distribution,
    pub teams: Vec<Distribution>,
    pub adoption: AdoptionReport,
}

/// One row of the adoption tables: the last whole week's figures, formatted.
#[derive(Debug, Clone, Serialize)]
pub struct AdoptionRow {
    pub name: String,
    pub services: usize,
    pub from_template: String,
    pub deployed: String,
    pub success_rate: String,
    pub time_to_ready: String,
    pub active_requesters: usize,
    pub adoption_rate: String,
    pub retention: String,
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), |v| format!("{:.0} %", v * 100.0))
}

fn signed_percent(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), |v| format!("{:+.0} %", v * 100.0))
}

fn minutes(x: Option<f64>) -> String {
    match x {
        None => "–".into(),
        Some(m) if m < 60.0 => format!("{m:.0} min"),
        Some(m) => format!("{:.1} h", m / 60.0),
    }
}

pub fn adoption_row(name: &str, f: &Figures) -> AdoptionRow {
    let last: Option<&Week> = f.weeks.last();
    AdoptionRow {
        name: name.to_owned(),
        services: f.services,
        from_template: percent(f.from_template_share),
        deployed: percent(last.and_then(|w| w.deployed_share)),
        success_rate: percent(last.and_then(|w| w.success_rate)),
        time_to_ready: minutes(last.and_then(|w| w.median_minutes_to_ready)),
        active_requesters: last.map_or(0, |w| w.active_requesters),
        adoption_rate: signed_percent(last.and_then(|w| w.adoption_rate)),
        retention: percent(last.and_then(|w| w.retention)),
    }
}
