//! R12 (bands, edition 2023) and R13 (scores), at their boundaries.

use paved_analytics::dora::Band;
use paved_analytics::dora::bands::{Figures, bands, scores};

const HOUR: f64 = 60.0;
const DAY: f64 = 24.0 * HOUR;

fn figures() -> Figures {
    Figures {
        deploys_per_day: 0.0,
        median_deploy_days_per_week: None,
        median_deploy_days_per_month: None,
        lead_time_median_minutes: None,
        change_failure_rate: None,
        fdrt_median_minutes: None,
        rework_rate: None,
    }
}

#[test]
fn r12_deployment_frequency_band() {
    let band = |weekly, monthly| {
        bands(&Figures {
            median_deploy_days_per_week: weekly,
            median_deploy_days_per_month: monthly,
            ..figures()
        })
        .deployment_frequency
    };
    assert_eq!(band(Some(5.0), None), Some(Band::Elite));
    assert_eq!(band(Some(4.5), None), Some(Band::High));
    assert_eq!(band(Some(1.0), None), Some(Band::High));
    assert_eq!(band(Some(0.5), Some(1.0)), Some(Band::Medium));
    assert_eq!(band(Some(0.5), Some(0.5)), Some(Band::Low));
    // A null monthly median is not >= 1.
    assert_eq!(band(Some(0.0), None), Some(Band::Low));
    assert_eq!(band(None, Some(20.0)), None);
}

#[test]
fn r12_lead_time_band() {
    let band = |minutes| {
        bands(&Figures {
            lead_time_median_minutes: Some(minutes),
            ..figures()
        })
        .lead_time
    };
    assert_eq!(band(DAY - 0.001), Some(Band::Elite));
    assert_eq!(band(DAY), Some(Band::High));
    assert_eq!(band(7.0 * DAY), Some(Band::Medium));
    assert_eq!(band(30.0 * DAY - 1.0), Some(Band::Medium));
    assert_eq!(band(30.0 * DAY), Some(Band::Low));
    assert_eq!(bands(&figures()).lead_time, None);
}

#[test]
fn r12_change_failure_rate_band() {
    let band = |rate| {
        bands(&Figures {
            change_failure_rate: Some(rate),
            ..figures()
        })
        .change_failure_rate
    };
    assert_eq!(band(0.0), Some(Band::Elite));
    assert_eq!(band(0.05), Some(Band::Elite));
    assert_eq!(band(0.050_001), Some(Band::High));
    assert_eq!(band(0.10), Some(Band::High));
    assert_eq!(band(0.15), Some(Band::Medium));
    assert_eq!(band(0.150_001), Some(Band::Low));
}

#[test]
fn r12_recovery_time_band() {
    let band = |minutes| {
        bands(&Figures {
            fdrt_median_minutes: Some(minutes),
            ..figures()
        })
        .recovery_time
    };
    assert_eq!(band(59.9), Some(Band::Elite));
    assert_eq!(band(HOUR), Some(Band::High));
    assert_eq!(band(DAY), Some(Band::Medium));
    assert_eq!(band(7.0 * DAY), Some(Band::Low));
}

#[test]
fn r13_level_scores() {
    let lead = |minutes| {
        scores(&Figures {
            lead_time_median_minutes: Some(minutes),
            ..figures()
        })
        .lead_time
    };
    assert_eq!(lead(30.0), Some(10.0)); // level 6
    assert_eq!(lead(HOUR), Some(8.0)); // level 5
    assert_eq!(lead(2.0 * DAY), Some(6.0)); // level 4
    assert_eq!(lead(8.0 * DAY), Some(4.0)); // level 3
    assert_eq!(lead(100.0 * DAY), Some(2.0)); // level 2
    assert_eq!(lead(182.0 * DAY), Some(0.0)); // level 1
    let frequency = |per_day| {
        scores(&Figures {
            deploys_per_day: per_day,
            ..figures()
        })
        .deployment_frequency
    };
    assert_eq!(frequency(1.5), Some(10.0));
    assert_eq!(frequency(1.0), Some(8.0));
    assert_eq!(frequency(1.0 / 7.0), Some(6.0));
    assert_eq!(frequency(1.0 / 30.0), Some(4.0));
    assert_eq!(frequency(1.0 / 182.0), Some(2.0));
    assert_eq!(frequency(0.0), Some(0.0));
    let recovery = scores(&Figures {
        fdrt_median_minutes: Some(3.0 * HOUR),
        ..figures()
    });
    assert_eq!(recovery.recovery_time, Some(8.0));
}

#[test]
fn r13_rates_and_means_skip_nulls() {
    let s = scores(&Figures {
        deploys_per_day: 1.0,
        change_failure_rate: Some(0.25),
        rework_rate: None,
        ..figures()
    });
    assert_eq!(s.change_failure_rate, Some(7.5));
    assert_eq!(s.rework_rate, None);
    // Lead time and recovery are null: throughput is deployment frequency alone.
    assert_eq!(s.throughput, Some(8.0));
    assert_eq!(s.stability, Some(7.5));
    assert_eq!(s.overall, Some(7.75));
    let none = scores(&Figures {
        change_failure_rate: None,
        ..figures()
    });
    assert_eq!(none.stability, None);
}
