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
    /// The live resources' reconciliation per team (the reconciliation loop's states).
    pub drift: Vec<TeamDrift>,
}

/// One team's live resources as the reconciliation loop last saw them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TeamDrift {
    pub team: String,
    pub live: usize,
    pub synced: usize,
    pub drifted: usize,
    /// Drifted without a break for more than a day (the scorecard's `no-lasting-drift`).
    pub drifted_over_1d: usize,
    /// Not observed, or the provider was unavailable.
    pub unknown: usize,
    /// Repairs made under `enforce`, over the resources' lives.
    pub repairs: u64,
}

/// Counts each team's live resources by their `Synced` condition (teams by name, sorted;
/// the resources read one page of the listing at a time).
pub async fn drift_by_team(
    resources: &paved_core::resources::ResourceRepository,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<TeamDrift>, paved_core::Error> {
    use paved_core::resources::{ResourceFilter, SyncState};
    let mut teams: std::collections::BTreeMap<String, TeamDrift> = Default::default();
    let mut after: Option<String> = None;
    loop {
        let page = resources
            .page(&ResourceFilter::default(), after.as_deref(), 500)
            .await?;
        for s in &page.items {
            let team = paved_core::catalog::EntityRef::parse(
                &s.owner,
                paved_core::catalog::RefDefaults {
                    kind: Some("group"),
                    namespace: "default",
                },
            )
            .map(|r| r.name().to_owned())
            .unwrap_or_else(|_| s.owner.clone());
            let row = teams.entry(team.clone()).or_insert_with(|| TeamDrift {
                team,
                ..TeamDrift::default()
            });
            row.live += 1;
            row.repairs += u64::from(s.repairs);
            let state = if s.is_stale(now) {
                SyncState::Unknown
            } else {
                s.sync_state()
            };
            match state {
                SyncState::Synced => row.synced += 1,
                SyncState::Drifted => {
                    row.drifted += 1;
                    if s.drifted_since
                        .is_some_and(|t| now - t > chrono::Duration::days(1))
                    {
                        row.drifted_over_1d += 1;
                    }
                }
                SyncState::Unknown => row.unknown += 1,
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(teams.into_values().collect()),
        }
    }
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
