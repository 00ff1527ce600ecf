//! One row per scope (org, teams, services) with every figure of `M`, for spreadsheets.

use crate::dora::{DoraReport, Metrics};
use crate::error::{AnalyticsError, Result};

const HEADER: [&str; 32] = [
    "scope",
    "team",
    "service",
    "deployments",
    "deploys_per_day",
    "deployment_days",
    "median_deploy_days_per_week",
    "median_deploy_days_per_month",
    "lead_time_median_minutes",
    "lead_time_samples",
    "failed_deployments",
    "change_failure_rate",
    "fdrt_median_minutes",
    "fdrt_samples",
    "unrecovered_failures",
    "ttr_median_minutes",
    "ttr_samples",
    "rework_rate",
    "band_deployment_frequency",
    "band_lead_time",
    "band_change_failure_rate",
    "band_recovery_time",
    "score_lead_time",
    "score_deployment_frequency",
    "score_recovery_time",
    "score_change_failure_rate",
    "score_rework_rate",
    "score_throughput",
    "score_stability",
    "score_overall",
    "window_from",
    "window_to",
];

pub(super) fn render(report: &DoraReport) -> Result<String> {
    let mut out = ::csv::Writer::from_writer(Vec::new());
    let fail = |e: ::csv::Error| AnalyticsError::InvalidOption(e.to_string());
    out.write_record(HEADER).map_err(fail)?;
    let window = [report.window.from.as_str(), report.window.to.as_str()];
    out.write_record(row("org", "", "", &report.org, window))
        .map_err(fail)?;
    for team in &report.teams {
        out.write_record(row("team", &team.team, "", &team.metrics, window))
            .map_err(fail)?;
    }
    for service in &report.services {
        out.write_record(row(
            "service",
            &service.team,
            &service.service,
            &service.metrics,
            window,
        ))
        .map_err(fail)?;
    }
    let bytes = out
        .into_inner()
        .map_err(|e| AnalyticsError::InvalidOption(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| AnalyticsError::InvalidOption(e.to_string()))
}

fn row(scope: &str, team: &str, service: &str, m: &Metrics, window: [&str; 2]) -> Vec<String> {
    let number = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let band = |b: Option<crate::dora::Band>| b.map(|b| b.as_str().to_owned()).unwrap_or_default();
    vec![
        scope.to_owned(),
        team.to_owned(),
        service.to_owned(),
        m.deployments.to_string(),
        m.deploys_per_day.to_string(),
        m.deployment_days.to_string(),
        number(m.median_deploy_days_per_week),
        number(m.median_deploy_days_per_month),
        number(m.lead_time_median_minutes),
        m.lead_time_samples.to_string(),
        m.failed_deployments.to_string(),
        number(m.change_failure_rate),
        number(m.fdrt_median_minutes),
        m.fdrt_samples.to_string(),
        m.unrecovered_failures.to_string(),
        number(m.ttr_median_minutes),
        m.ttr_samples.to_string(),
        number(m.rework_rate),
        band(m.bands.deployment_frequency),
        band(m.bands.lead_time),
        band(m.bands.change_failure_rate),
        band(m.bands.recovery_time),
        number(m.scores.lead_time),
        number(m.scores.deployment_frequency),
        number(m.scores.recovery_time),
        number(m.scores.change_failure_rate),
        number(m.scores.rework_rate),
        number(m.scores.throughput),
        number(m.scores.stability),
        number(m.scores.overall),
        window[0].to_owned(),
        window[1].to_owned(),
    ]
}
