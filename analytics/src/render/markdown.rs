//! A short Markdown summary for a chat post or a pull request.

use std::fmt::Write;

use super::format::{band, best_and_worst, duration, per_day, percent, score};
use crate::dora::{Analysis, Metrics};

/// Teams listed in the summary; the rest are counted, not shown.
const TEAM_ROWS: usize = 25;

pub(super) fn render(analysis: &Analysis) -> String {
    let report = &analysis.report;
    let org = &report.org;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# DORA metrics, {} to {} ({})\n",
        report.window.from, report.window.to, report.window.timezone
    );
    let _ = writeln!(out, "| Metric | Value | Band | Score |\n|---|---|---|---|");
    let rows = [
        (
            "Deployment frequency",
            format!(
                "{} ({} deployments; median {} days/week)",
                per_day(org),
                org.deployments,
                org.median_deploy_days_per_week
                    .map_or_else(|| "–".to_owned(), |d| format!("{d}"))
            ),
            band(org.bands.deployment_frequency),
            score(org.scores.deployment_frequency),
        ),
        (
            "Lead time for changes",
            format!(
                "{} (median of {})",
                duration(org.lead_time_median_minutes),
                org.lead_time_samples
            ),
            band(org.bands.lead_time),
            score(org.scores.lead_time),
        ),
        (
            "Change failure rate",
            format!(
                "{} ({} of {})",
                percent(org.change_failure_rate),
                org.failed_deployments,
                org.deployments
            ),
            band(org.bands.change_failure_rate),
            score(org.scores.change_failure_rate),
        ),
        (
            "Failed deployment recovery time",
            format!(
                "{} ({} unrecovered)",
                duration(org.fdrt_median_minutes),
                org.unrecovered_failures
            ),
            band(org.bands.recovery_time),
            score(org.scores.recovery_time),
        ),
        (
            "Rework rate",
            percent(org.rework_rate),
            "–",
            score(org.scores.rework_rate),
        ),
        (
            "Time to restore (legacy)",
            duration(org.ttr_median_minutes),
            "–",
            "–".to_owned(),
        ),
    ];
    for (name, value, band, score) in rows {
        let _ = writeln!(out, "| {name} | {value} | {band} | {score} |");
    }
    let _ = writeln!(
        out,
        "\n**Overall {} / 10** (throughput {}, stability {})\n",
        score(org.scores.overall),
        score(org.scores.throughput),
        score(org.scores.stability)
    );

    let _ = writeln!(out, "## Teams\n");
    let _ = writeln!(
        out,
        "| Team | Deploys | Lead time | Change failure | Recovery | Overall |\n|---|---|---|---|---|---|"
    );
    let mut teams: Vec<_> = report.teams.iter().collect();
    teams.sort_by(|a, b| {
        b.metrics
            .deployments
            .cmp(&a.metrics.deployments)
            .then(a.team.cmp(&b.team))
    });
    for team in teams.iter().take(TEAM_ROWS) {
        let _ = writeln!(out, "| {} | {} |", escape(&team.team), cells(&team.metrics));
    }
    if teams.len() > TEAM_ROWS {
        let _ = writeln!(
            out,
            "\n…and {} more teams (see the HTML or CSV report).",
            teams.len() - TEAM_ROWS
        );
    }

    let (best, worst) = best_and_worst(&report.services, 5);
    for (title, services) in [
        ("Best services", best),
        ("Services needing attention", worst),
    ] {
        if services.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n## {title}\n");
        let _ = writeln!(
            out,
            "| Service | Team | Deploys | Lead time | Change failure | Recovery | Overall |\n|---|---|---|---|---|---|---|"
        );
        for s in services {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                escape(&s.service),
                escape(&s.team),
                cells(&s.metrics)
            );
        }
    }
    let d = &report.diagnostics;
    let _ = writeln!(
        out,
        "\n_paved metrics spec version {}, bands edition {}. Diagnostics: {} lead time samples dropped, {} shipped changes unknown, {} incidents unattributed._",
        report.spec_version,
        report.edition,
        d.lead_time_dropped,
        d.changes_unknown,
        d.unattributed_incidents
    );
    if let Some(p) = &analysis.platform {
        platform(&mut out, p);
    }
    out
}

/// Scorecard levels per team, the most failed rules, and last week's adoption.
fn platform(out: &mut String, p: &crate::platform::PlatformSection) {
    let _ = writeln!(out, "\n### {}\n", escape(&p.scorecard));
    let header: Vec<&str> = std::iter::once("none")
        .chain(p.levels.iter().map(String::as_str))
        .collect();
    let _ = writeln!(
        out,
        "| Team | Services | {} |\n|---|---|{}",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for d in std::iter::once(&p.org).chain(&p.teams) {
        let name = match d.team.as_deref() {
            None => "Organisation",
            Some("") => "(no team)",
            Some(t) => t,
        };
        let counts: Vec<String> = d.levels.iter().map(|l| l.count.to_string()).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            escape(name),
            d.entities,
            counts.join(" | ")
        );
    }
    if !p.org.failing_rules.is_empty() {
        let _ = writeln!(out, "\nRules failing most often:\n");
        for r in p.org.failing_rules.iter().take(5) {
            let _ = writeln!(
                out,
                "- {} ({}): {} services",
                escape(&r.title),
                escape(&r.level),
                r.failing
            );
        }
    }
    let _ = writeln!(
        out,
        "\n### Platform adoption (last week)\n\n| Team | Services | From a template | Deployed | Self-service success | Time to ready | Active requesters | Adoption | Retention |\n|---|---|---|---|---|---|---|---|---|"
    );
    let rows = std::iter::once(crate::platform::adoption_row(
        "Organisation",
        &p.adoption.org,
    ))
    .chain(
        p.adoption
            .teams
            .iter()
            .map(|t| crate::platform::adoption_row(&t.team, &t.figures)),
    );
    for a in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            escape(&a.name),
            a.services,
            a.from_template,
            a.deployed,
            a.success_rate,
            a.time_to_ready,
            a.active_requesters,
            a.adoption_rate,
            a.retention
        );
    }
    let _ = writeln!(
        out,
        "\n### Drift\n\n| Team | Live resources | Synced | Drifted | Drifted > 1 day | Unknown | Repairs |\n|---|---|---|---|---|---|---|"
    );
    for d in &p.drift {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            escape(&d.team),
            d.live,
            d.synced,
            d.drifted,
            d.drifted_over_1d,
            d.unknown,
            d.repairs
        );
    }
}

fn cells(m: &Metrics) -> String {
    format!(
        "{} | {} | {} | {} | {}",
        per_day(m),
        duration(m.lead_time_median_minutes),
        percent(m.change_failure_rate),
        duration(m.fdrt_median_minutes),
        score(m.scores.overall)
    )
}

/// Keeps a name from breaking the table.
fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}
