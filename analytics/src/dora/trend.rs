//! The org's figures week by week (every ISO week touching the window), for the charts. Not
//! part of the spec's JSON output.

use chrono::{Datelike, Duration, NaiveDate};
use polars::prelude::*;

use super::engine::CollectStreaming;
use serde::{Deserialize, Serialize};

use super::aggregate::{Facts, epoch_day};
use crate::window::ReportWindow;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeekPoint {
    /// The week's Monday, in the report's time zone.
    pub week_start: NaiveDate,
    pub deployments: u64,
    pub failed_deployments: u64,
    pub lead_time_median_minutes: Option<f64>,
}

pub(super) fn weekly(facts: &Facts, window: &ReportWindow) -> PolarsResult<Vec<WeekPoint>> {
    let first = window.from.with_timezone(&window.timezone).date_naive();
    let last = (window.to - Duration::microseconds(1))
        .with_timezone(&window.timezone)
        .date_naive();
    let monday =
        |day: NaiveDate| day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
    let mut points = Vec::new();
    let mut week = monday(first);
    while week <= last {
        points.push(WeekPoint {
            week_start: week,
            deployments: 0,
            failed_deployments: 0,
            lead_time_median_minutes: None,
        });
        week += Duration::days(7);
    }
    let positions: std::collections::HashMap<i32, usize> = points
        .iter()
        .enumerate()
        .map(|(index, p)| (epoch_day(p.week_start), index))
        .collect();
    let index_of = |day: i32| positions.get(&day).copied();
    let week_of = |day: Expr| day.clone() - (day + lit(3 + 7 * 1_000_000)) % lit(7);

    let deployments = facts
        .deployments
        .clone()
        .group_by([week_of(col("local_day")).alias("week")])
        .agg([
            len().cast(DataType::UInt64).alias("deployments"),
            col("failed").sum().cast(DataType::UInt64).alias("failed"),
        ])
        .collect_streaming()?;
    let weeks = deployments.column("week")?.i32()?;
    let counts = deployments.column("deployments")?.u64()?;
    let failed = deployments.column("failed")?.u64()?;
    for ((week, count), failed) in weeks.iter().zip(counts.iter()).zip(failed.iter()) {
        if let Some(index) = week.and_then(index_of) {
            points[index].deployments = count.unwrap_or(0);
            points[index].failed_deployments = failed.unwrap_or(0);
        }
    }

    for (week, summary) in &facts.lead_times.weeks {
        if let Some(index) = index_of(*week) {
            points[index].lead_time_median_minutes = summary.median_minutes;
        }
    }
    Ok(points)
}
