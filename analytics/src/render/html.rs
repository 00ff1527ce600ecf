//! The leaders' report: one self-contained HTML file (inline CSS and SVG, no scripts, no
//! network), rendered with minijinja.

use minijinja::Environment;
use serde::Serialize;

use super::charts;
use super::format::{band, best_and_worst, duration, per_day, percent, score};
use crate::dora::{Analysis, Metrics};
use crate::error::{AnalyticsError, Result};

const TEMPLATE: &str = include_str!("dora.html.j2");
/// Teams charted (the busiest); the table lists them all.
const CHARTED_TEAMS: usize = 20;
const RANKED_SERVICES: usize = 10;

/// Everything the template shows.
#[derive(Serialize)]
struct Page<'a> {
    window: &'a crate::dora::WindowOut,
    spec_version: &'a str,
    edition: &'a str,
    org: Row,
    scores: [(&'static str, String); 3],
    diagnostics: &'a crate::dora::Diagnostics,
    weekly_chart: String,
    lead_chart: String,
    cfr_chart: String,
    recovery_chart: String,
    teams: Vec<Row>,
    best: Vec<Row>,
    worst: Vec<Row>,
    service_count: usize,
    platform: Option<PlatformPage<'a>>,
}

/// The platform section as the page shows it.
#[derive(Serialize)]
struct PlatformPage<'a> {
    scorecard: &'a str,
    levels: Vec<String>,
    /// Per team (organisation first): name, entities, and the count at each level.
    readiness: Vec<(String, usize, Vec<usize>)>,
    failing: &'a [paved_core::scorecards::FailingRule],
    adoption: Vec<crate::platform::AdoptionRow>,
    drift: &'a [crate::platform::TeamDrift],
}

fn platform_page(p: &crate::platform::PlatformSection) -> PlatformPage<'_> {
    let counts =
        |d: &paved_core::scorecards::Distribution| d.levels.iter().map(|l| l.count).collect();
    let mut readiness = vec![("Organisation".to_owned(), p.org.entities, counts(&p.org))];
    readiness.extend(p.teams.iter().map(|d| {
        let name = d
            .team
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "(no team)".into());
        (name, d.entities, counts(d))
    }));
    let mut adoption = vec![crate::platform::adoption_row(
        "Organisation",
        &p.adoption.org,
    )];
    adoption.extend(
        p.adoption
            .teams
            .iter()
            .map(|t| crate::platform::adoption_row(&t.team, &t.figures)),
    );
    PlatformPage {
        drift: &p.drift,
        scorecard: &p.scorecard,
        levels: std::iter::once("none".to_owned())
            .chain(p.levels.iter().cloned())
            .collect(),
        readiness,
        failing: &p.org.failing_rules[..p.org.failing_rules.len().min(5)],
        adoption,
    }
}

/// A scope's figures as the page shows them.
#[derive(Serialize)]
struct Row {
    name: String,
    team: String,
    deployments: u64,
    per_day: String,
    lead_time: String,
    change_failure: String,
    recovery: String,
    restore: String,
    rework: String,
    overall: String,
    bands: [(&'static str, &'static str); 4],
}

fn row(name: &str, team: &str, m: &Metrics) -> Row {
    Row {
        name: name.to_owned(),
        team: team.to_owned(),
        deployments: m.deployments,
        per_day: per_day(m),
        lead_time: duration(m.lead_time_median_minutes),
        change_failure: percent(m.change_failure_rate),
        recovery: duration(m.fdrt_median_minutes),
        restore: duration(m.ttr_median_minutes),
        rework: percent(m.rework_rate),
        overall: score(m.scores.overall),
        bands: [
            ("Deployment frequency", band(m.bands.deployment_frequency)),
            ("Lead time", band(m.bands.lead_time)),
            ("Change failure rate", band(m.bands.change_failure_rate)),
            ("Recovery time", band(m.bands.recovery_time)),
        ],
    }
}

pub(super) fn render(analysis: &Analysis) -> Result<String> {
    let report = &analysis.report;
    let mut busiest: Vec<_> = report.teams.iter().collect();
    busiest.sort_by(|a, b| {
        b.metrics
            .deployments
            .cmp(&a.metrics.deployments)
            .then(a.team.cmp(&b.team))
    });
    busiest.truncate(CHARTED_TEAMS);
    let cfr: Vec<(String, f64)> = busiest
        .iter()
        .map(|t| {
            (
                t.team.clone(),
                t.metrics.change_failure_rate.unwrap_or(0.0) * 100.0,
            )
        })
        .collect();
    let recovery: Vec<(String, f64)> = busiest
        .iter()
        .map(|t| {
            (
                t.team.clone(),
                t.metrics.fdrt_median_minutes.unwrap_or(0.0) / 60.0,
            )
        })
        .collect();
    let (best, worst) = best_and_worst(&report.services, RANKED_SERVICES);
    let org = &report.org;
    let scores = [
        ("Overall", score(org.scores.overall)),
        ("Throughput", score(org.scores.throughput)),
        ("Stability", score(org.scores.stability)),
    ];

    let mut env = Environment::new();
    env.add_template("dora.html", TEMPLATE)
        .map_err(|e| AnalyticsError::InvalidOption(format!("template: {e}")))?;
    let page = env
        .get_template("dora.html")
        .and_then(|t| {
            t.render(minijinja::Value::from(minijinja::value::Serde(Page {
                window: &report.window,
                spec_version: &report.spec_version,
                edition: &report.edition,
                org: row("Organisation", "", org),
                scores,
                diagnostics: &report.diagnostics,
                weekly_chart: charts::weekly_deployments(&analysis.weekly),
                lead_chart: charts::lead_time_trend(&analysis.weekly),
                cfr_chart: charts::team_bars(
                    "Change failure rate by team (busiest teams)",
                    &cfr,
                    "%",
                ),
                recovery_chart: charts::team_bars(
                    "Median recovery time by team, hours (busiest teams)",
                    &recovery,
                    "h",
                ),
                teams: report
                    .teams
                    .iter()
                    .map(|t| row(&t.team, &t.team, &t.metrics))
                    .collect(),
                best: best
                    .iter()
                    .map(|s| row(&s.service, &s.team, &s.metrics))
                    .collect(),
                worst: worst
                    .iter()
                    .map(|s| row(&s.service, &s.team, &s.metrics))
                    .collect(),
                service_count: report.services.len(),
                platform: analysis.platform.as_ref().map(platform_page),
            })))
        })
        .map_err(|e| AnalyticsError::InvalidOption(format!("template: {e}")))?;
    Ok(page)
}
