//! Per-row facts in the window, before they are pooled per scope: one row per production
//! deployment (R3, R6, R7, R9), per lead time sample (R4) and per restored incident (R8).

use polars::prelude::*;

use super::deployments::FIX_KINDS;
use super::service_numbers::SERVICE_NUMBER;
use super::settings::DoraSettings;
use super::team_numbers::TEAM_NUMBER;

const MINUTE: f64 = 60e6;

fn in_window(column: &str, settings: &DoraSettings) -> Expr {
    col(column)
        .gt_eq(lit(settings.start_micros()))
        .and(col(column).lt(lit(settings.end_micros())))
}

/// `service`, its number, the team's number, `local_day` (days since the epoch in the report's time
/// zone), `failed`, `rework`, `fdrt_minutes` (null without a sample) and `unrecovered`.
pub(super) fn deployments(
    order: LazyFrame,
    attributed: LazyFrame,
    settings: &DoraSettings,
) -> LazyFrame {
    let incidents_per_deployment = attributed
        .filter(col("seq").is_not_null())
        .group_by([col("seq")])
        .agg([
            col("resolved_at")
                .null_count()
                .eq(lit(0))
                .alias("all_resolved"),
            col("resolved_at").max().alias("last_resolved_at"),
        ]);
    let is_fix = col("kind").is_in(
        lit(Series::new("fix".into(), FIX_KINDS)).implode(false),
        false,
    );
    let incident_candidate = when(col("all_resolved").fill_null(lit(false)))
        .then(col("last_resolved_at"))
        .otherwise(lit(NULL).cast(DataType::Int64));
    order
        .filter(in_window("finished_at", settings))
        .join(
            incidents_per_deployment,
            [col("seq")],
            [col("seq")],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            col("all_resolved")
                .is_not_null()
                .or(col("followed_by_fix"))
                .alias("failed"),
            earliest(incident_candidate, col("next_fix_at")).alias("recovered_at"),
        ])
        .select([
            col("service"),
            col(SERVICE_NUMBER),
            col(TEAM_NUMBER),
            local_day(col("finished_at"), settings).alias("local_day"),
            col("failed"),
            is_fix.alias("rework"),
            when(col("failed").and(col("recovered_at").is_not_null()))
                .then(minutes_between(col("finished_at"), col("recovered_at")))
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias("fdrt_minutes"),
            col("failed")
                .and(col("recovered_at").is_null())
                .alias("unrecovered"),
        ])
}

/// R8: `service` (maybe null) and `minutes` for incidents resolved in the window.
pub(super) fn restores(attributed: LazyFrame, settings: &DoraSettings) -> LazyFrame {
    attributed
        .filter(in_window("resolved_at", settings))
        .select([
            col("service"),
            minutes_between(col("created_at"), col("resolved_at")).alias("minutes"),
        ])
}

/// `end - start` in minutes, a negative span counting as 0.
fn minutes_between(start: Expr, end: Expr) -> Expr {
    let minutes = (end - start).cast(DataType::Float64) / lit(MINUTE);
    when(minutes.clone().lt(lit(0.0)))
        .then(lit(0.0))
        .otherwise(minutes)
}

/// The earlier of two instants, either of which may be null.
fn earliest(a: Expr, b: Expr) -> Expr {
    when(a.clone().is_null())
        .then(b.clone())
        .when(b.clone().is_null().or(a.clone().lt_eq(b.clone())))
        .then(a)
        .otherwise(b)
}

/// The local date of a UTC instant, as days since 1970-01-01.
pub(super) fn local_day(instant: Expr, settings: &DoraSettings) -> Expr {
    let utc = instant.cast(DataType::Datetime(
        TimeUnit::Microseconds,
        Some(TimeZone::UTC),
    ));
    let local = if settings.window.timezone == chrono_tz::Tz::UTC {
        utc
    } else {
        let zone = TimeZone::opt_try_new(Some(settings.window.timezone.name()))
            .ok()
            .flatten()
            .unwrap_or(TimeZone::UTC);
        utc.dt().convert_time_zone(zone)
    };
    local.dt().date().cast(DataType::Int32)
}
