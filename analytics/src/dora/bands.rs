//! R12 (bands, edition 2023) and R13 (0–10 scores on the DORA Quick Check scale).

use super::report::{Band, Bands, Scores};

const HOUR: f64 = 60.0;
const DAY: f64 = 24.0 * HOUR;

/// The raw figures bands and scores are derived from.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub deploys_per_day: f64,
    pub median_deploy_days_per_week: Option<f64>,
    pub median_deploy_days_per_month: Option<f64>,
    pub lead_time_median_minutes: Option<f64>,
    pub change_failure_rate: Option<f64>,
    pub fdrt_median_minutes: Option<f64>,
    pub rework_rate: Option<f64>,
}

pub fn bands(f: &Figures) -> Bands {
    Bands {
        deployment_frequency: f.median_deploy_days_per_week.map(|weekly| {
            if weekly >= 5.0 {
                Band::Elite
            } else if weekly >= 1.0 {
                Band::High
            } else if f
                .median_deploy_days_per_month
                .is_some_and(|monthly| monthly >= 1.0)
            {
                Band::Medium
            } else {
                Band::Low
            }
        }),
        lead_time: f
            .lead_time_median_minutes
            .map(|m| duration_band(m, DAY, 7.0 * DAY, 30.0 * DAY)),
        change_failure_rate: f.change_failure_rate.map(|rate| {
            if rate <= 0.05 {
                Band::Elite
            } else if rate <= 0.10 {
                Band::High
            } else if rate <= 0.15 {
                Band::Medium
            } else {
                Band::Low
            }
        }),
        recovery_time: f
            .fdrt_median_minutes
            .map(|m| duration_band(m, HOUR, DAY, 7.0 * DAY)),
    }
}

fn duration_band(minutes: f64, elite: f64, high: f64, medium: f64) -> Band {
    if minutes < elite {
        Band::Elite
    } else if minutes < high {
        Band::High
    } else if minutes < medium {
        Band::Medium
    } else {
        Band::Low
    }
}

pub fn scores(f: &Figures) -> Scores {
    let lead_time = f
        .lead_time_median_minutes
        .map(|m| level_score(duration_level(m)));
    let recovery_time = f
        .fdrt_median_minutes
        .map(|m| level_score(duration_level(m)));
    let deployment_frequency = Some(level_score(frequency_level(f.deploys_per_day)));
    let change_failure_rate = f.change_failure_rate.map(rate_score);
    let rework_rate = f.rework_rate.map(rate_score);
    Scores {
        lead_time,
        deployment_frequency,
        recovery_time,
        change_failure_rate,
        rework_rate,
        throughput: mean(&[lead_time, deployment_frequency, recovery_time]),
        stability: mean(&[change_failure_rate, rework_rate]),
        overall: mean(&[
            lead_time,
            deployment_frequency,
            recovery_time,
            change_failure_rate,
            rework_rate,
        ]),
    }
}

fn duration_level(minutes: f64) -> u8 {
    match minutes {
        m if m < HOUR => 6,
        m if m < DAY => 5,
        m if m < 7.0 * DAY => 4,
        m if m < 30.0 * DAY => 3,
        m if m < 182.0 * DAY => 2,
        _ => 1,
    }
}

fn frequency_level(per_day: f64) -> u8 {
    match per_day {
        d if d > 1.0 => 6,
        d if d >= 1.0 => 5,
        d if d >= 1.0 / 7.0 => 4,
        d if d >= 1.0 / 30.0 => 3,
        d if d >= 1.0 / 182.0 => 2,
        _ => 1,
    }
}

fn level_score(level: u8) -> f64 {
    f64::from(level - 1) / 5.0 * 10.0
}

fn rate_score(rate: f64) -> f64 {
    10.0 - 10.0 * rate
}

/// The mean of the values that are not null; null when all are.
fn mean(values: &[Option<f64>]) -> Option<f64> {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64)
}
