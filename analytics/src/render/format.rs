//! How figures read in the human renderings.

use crate::dora::{Band, Metrics, ServiceMetrics};

/// `45 min`, `2.5 h`, `3.1 d`; `–` for null.
pub(super) fn duration(minutes: Option<f64>) -> String {
    match minutes {
        None => "–".to_owned(),
        Some(m) if m < 60.0 => format!("{m:.0} min"),
        Some(m) if m < 48.0 * 60.0 => format!("{:.1} h", m / 60.0),
        Some(m) => format!("{:.1} d", m / 1440.0),
    }
}

pub(super) fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "–".to_owned(), |r| format!("{:.1} %", r * 100.0))
}

pub(super) fn score(score: Option<f64>) -> String {
    score.map_or_else(|| "–".to_owned(), |s| format!("{s:.1}"))
}

pub(super) fn band(band: Option<Band>) -> &'static str {
    band.map_or("none", Band::as_str)
}

pub(super) fn per_day(metrics: &Metrics) -> String {
    format!("{:.2}/day", metrics.deploys_per_day)
}

/// Services with deployments in the window, best first by overall score (then by more
/// deployments, then by name): the first `n` and the last `n`, without overlap.
pub(super) fn best_and_worst(
    services: &[ServiceMetrics],
    n: usize,
) -> (Vec<&ServiceMetrics>, Vec<&ServiceMetrics>) {
    let mut ranked: Vec<&ServiceMetrics> = services
        .iter()
        .filter(|s| s.metrics.deployments > 0)
        .collect();
    ranked.sort_by(|a, b| {
        let score = |s: &ServiceMetrics| s.metrics.scores.overall.unwrap_or(0.0);
        score(b)
            .total_cmp(&score(a))
            .then(b.metrics.deployments.cmp(&a.metrics.deployments))
            .then(a.service.cmp(&b.service))
    });
    let best: Vec<&ServiceMetrics> = ranked.iter().take(n).copied().collect();
    let worst_start = ranked.len().saturating_sub(n).max(best.len());
    let worst: Vec<&ServiceMetrics> = ranked[worst_start..].iter().rev().copied().collect();
    (best, worst)
}
