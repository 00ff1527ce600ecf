//! R3, R10 and R11: pooling the facts per scope (the org, each team, each service).

use std::collections::HashMap;

use polars::prelude::*;

use super::engine::CollectStreaming;
use super::lead_time::{LeadSummary, LeadTimes};
use super::service_numbers::{SERVICE_NUMBER, ServiceNumbers};
use super::team_numbers::{TEAM_NUMBER, TeamNumbers};

use crate::window::ReportWindow;

/// A scope's key column: the org is one group, a team or a service its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    Org,
    Team,
    Service,
}

impl Scope {
    /// Numbers group faster than names; [`key_names`] turns them back.
    fn key(self) -> Expr {
        match self {
            Self::Org => lit(0u64).cast(DataType::UInt64).alias("key"),
            Self::Team => col(TEAM_NUMBER).cast(DataType::UInt64).alias("key"),
            Self::Service => col(SERVICE_NUMBER).alias("key"),
        }
    }
}

/// What the scopes' numbers stand for.
pub(super) struct Names<'a> {
    pub services: &'a ServiceNumbers,
    pub teams: &'a TeamNumbers,
}

/// The pooled counts and medians of one scope, before bands and scores.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Pooled {
    pub deployments: u64,
    pub deployment_days: u64,
    pub failed_deployments: u64,
    pub rework_deployments: u64,
    pub fdrt_median_minutes: Option<f64>,
    pub fdrt_samples: u64,
    pub unrecovered_failures: u64,
    pub lead_time_median_minutes: Option<f64>,
    pub lead_time_samples: u64,
    pub ttr_median_minutes: Option<f64>,
    pub ttr_samples: u64,
    /// Distinct deployment days in each whole week / month, zeros included.
    pub days_per_week: Vec<u64>,
    pub days_per_month: Vec<u64>,
}

/// The facts frames, each with `service`, its number and its team's number, and R4's pooled lead
/// times.
pub(super) struct Facts {
    pub deployments: LazyFrame,
    pub lead_times: LeadTimes,
    pub restores: LazyFrame,
}

pub(super) fn pool(
    facts: &Facts,
    scope: Scope,
    window: &ReportWindow,
    names: &Names<'_>,
) -> PolarsResult<HashMap<String, Pooled>> {
    let mut pooled: HashMap<String, Pooled> = HashMap::new();
    let count = |e: Expr| e.cast(DataType::UInt64);

    let deployments = facts
        .deployments
        .clone()
        .group_by([scope.key()])
        .agg([
            count(len()).alias("deployments"),
            count(col("local_day").n_unique()).alias("deployment_days"),
            count(col("failed").sum()).alias("failed"),
            count(col("rework").sum()).alias("rework"),
            col("fdrt_minutes").median().alias("fdrt_median"),
            count(col("fdrt_minutes").count()).alias("fdrt_samples"),
            count(col("unrecovered").sum()).alias("unrecovered"),
        ])
        .collect_streaming()?;
    for row in Rows::new(&deployments, scope, names)? {
        let entry = pooled.entry(row.key.clone()).or_default();
        entry.deployments = row.u64("deployments")?;
        entry.deployment_days = row.u64("deployment_days")?;
        entry.failed_deployments = row.u64("failed")?;
        entry.rework_deployments = row.u64("rework")?;
        entry.fdrt_median_minutes = row.f64("fdrt_median")?;
        entry.fdrt_samples = row.u64("fdrt_samples")?;
        entry.unrecovered_failures = row.u64("unrecovered")?;
    }

    let lead = &facts.lead_times;
    let lead_summaries: Vec<(String, LeadSummary)> = match scope {
        Scope::Org => vec![(String::new(), lead.org)],
        Scope::Team => lead.teams.iter().map(|(t, s)| (t.clone(), *s)).collect(),
        Scope::Service => lead
            .services
            .iter()
            .filter_map(|(n, s)| Some((names.services.name(*n)?.to_owned(), *s)))
            .collect(),
    };
    for (key, summary) in lead_summaries {
        let entry = pooled.entry(key).or_default();
        entry.lead_time_median_minutes = summary.median_minutes;
        entry.lead_time_samples = summary.samples;
    }

    // Incidents without a service count only at org level.
    let restores = match scope {
        Scope::Org => facts.restores.clone(),
        Scope::Team | Scope::Service => facts.restores.clone().filter(col("service").is_not_null()),
    };
    let restores = restores
        .group_by([scope.key()])
        .agg([
            col("minutes").median().alias("median"),
            count(len()).alias("samples"),
        ])
        .collect_streaming()?;
    for row in Rows::new(&restores, scope, names)? {
        let entry = pooled.entry(row.key.clone()).or_default();
        entry.ttr_median_minutes = row.f64("median")?;
        entry.ttr_samples = row.u64("samples")?;
    }

    let days = facts
        .deployments
        .clone()
        .select([scope.key(), col("local_day")])
        .unique(None, UniqueKeepStrategy::Any);
    let weeks: Vec<i32> = window.whole_weeks().iter().map(|d| epoch_day(*d)).collect();
    let months: Vec<i32> = window
        .whole_months()
        .iter()
        .map(|d| month_number(*d))
        .collect();
    let week_of_day = col("local_day") - (col("local_day") + lit(3)) % lit(7);
    // Day numbers can be negative before 1970; `%` keeps the sign, so wrap it.
    let week_of_day = when(week_of_day.clone().gt(col("local_day")))
        .then(week_of_day.clone() - lit(7))
        .otherwise(week_of_day);
    let local_date = col("local_day").cast(DataType::Date);
    let month_of_day = local_date.clone().dt().year().cast(DataType::Int32) * lit(12)
        + local_date.dt().month().cast(DataType::Int32)
        - lit(1);
    for (period, starts, is_week) in [(week_of_day, &weeks, true), (month_of_day, &months, false)] {
        if starts.is_empty() {
            continue;
        }
        let counted = days
            .clone()
            .select([col("key"), period.alias("period")])
            .filter(col("period").is_in(
                lit(Series::new("starts".into(), starts.as_slice())).implode(false),
                false,
            ))
            .group_by([col("key"), col("period")])
            .agg([count(len()).alias("days")])
            .collect_streaming()?;
        let keys = key_names(&counted, scope, names)?;
        let periods = counted.column("period")?.i32()?;
        let counts = counted.column("days")?.u64()?;
        for ((key, period), days) in keys.into_iter().zip(periods.iter()).zip(counts.iter()) {
            let (Some(key), Some(period), Some(days)) = (key, period, days) else {
                continue;
            };
            let entry = pooled.entry(key).or_default();
            let slots = if is_week {
                &mut entry.days_per_week
            } else {
                &mut entry.days_per_month
            };
            if slots.is_empty() {
                slots.resize(starts.len(), 0);
            }
            if let Some(index) = starts.iter().position(|start| *start == period) {
                slots[index] = days;
            }
        }
    }
    for entry in pooled.values_mut() {
        entry.days_per_week.resize(weeks.len(), 0);
        entry.days_per_month.resize(months.len(), 0);
    }
    Ok(pooled)
}

/// R10: the linearly interpolated median; null without samples.
pub(super) fn median(values: &[u64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let middle = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[middle] as f64
    } else {
        (sorted[middle - 1] + sorted[middle]) as f64 / 2.0
    })
}

/// `year * 12 + month - 1`: a month's number, as the frame computes it.
fn month_number(first_day: chrono::NaiveDate) -> i32 {
    use chrono::Datelike;
    first_day.year() * 12 + i32::try_from(first_day.month0()).unwrap_or(0)
}

pub(super) fn epoch_day(day: chrono::NaiveDate) -> i32 {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    i32::try_from((day - epoch).num_days()).unwrap_or(i32::MAX)
}

/// Row access to a small aggregated frame keyed by `key`.
struct Rows<'a> {
    frame: &'a DataFrame,
    keys: Vec<String>,
}

struct Row<'a> {
    frame: &'a DataFrame,
    index: usize,
    key: String,
}

impl<'a> Rows<'a> {
    fn new(frame: &'a DataFrame, scope: Scope, names: &Names<'_>) -> PolarsResult<Self> {
        let keys = key_names(frame, scope, names)?
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        Ok(Self { frame, keys })
    }
}

/// A pooled frame's `key` column as names: the org's "", and the teams and services their
/// numbers stand for.
fn key_names(
    frame: &DataFrame,
    scope: Scope,
    names: &Names<'_>,
) -> PolarsResult<Vec<Option<String>>> {
    let name = |number: u64| match scope {
        Scope::Org => Some(""),
        Scope::Team => names.teams.name(number),
        Scope::Service => names.services.name(number),
    };
    Ok(frame
        .column("key")?
        .u64()?
        .iter()
        .map(|number| number.and_then(name).map(str::to_owned))
        .collect())
}

impl<'a> IntoIterator for Rows<'a> {
    type Item = Row<'a>;
    type IntoIter = std::vec::IntoIter<Row<'a>>;

    fn into_iter(self) -> Self::IntoIter {
        let frame = self.frame;
        self.keys
            .into_iter()
            .enumerate()
            .map(|(index, key)| Row { frame, index, key })
            .collect::<Vec<_>>()
            .into_iter()
    }
}

impl Row<'_> {
    fn u64(&self, name: &str) -> PolarsResult<u64> {
        Ok(self.frame.column(name)?.u64()?.get(self.index).unwrap_or(0))
    }

    fn f64(&self, name: &str) -> PolarsResult<Option<f64>> {
        Ok(self.frame.column(name)?.f64()?.get(self.index))
    }
}
