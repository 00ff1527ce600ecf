//! The DORA metrics of `../shared/metrics-spec.md` (version 1), computed with polars.
//!
//! Each rule group lives in its own module: [`deployments`] (R1 and the per-service order),
//! [`lead_time`] (R4), [`incidents`] (R5), [`facts`] (R6–R9 per row), [`aggregate`] (R3, R10,
//! R11) and [`bands`] (R12, R13).

mod aggregate;
pub mod bands;
mod deployments;
mod engine;
mod facts;
mod incidents;
mod lead_time;
pub mod report;
mod service_numbers;
mod settings;
mod sha_keys;
mod team_numbers;
mod trend;

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;

use crate::error::Result;
use crate::input::EventTables;
use aggregate::{Facts, Pooled, Scope};
use engine::CollectStreaming;
pub use report::{
    Band, Bands, Diagnostics, DoraReport, EDITION, Metrics, SPEC_VERSION, Scores, ServiceMetrics,
    TeamMetrics, WindowOut,
};
use service_numbers::{SERVICE_NUMBER, ServiceNumbers};
pub use settings::DoraSettings;
use team_numbers::{TEAM_NUMBER, TeamNumbers};
pub use trend::WeekPoint;

/// The team of a service missing from the services table.
pub const UNOWNED: &str = "unowned";

/// The report and the weekly series the HTML and Markdown renderings chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub report: DoraReport,
    pub weekly: Vec<WeekPoint>,
    /// Scorecards and adoption, when the report is computed over the platform's store.
    pub platform: Option<crate::platform::PlatformSection>,
}

/// Computes the whole report: the org, every team and every service.
pub fn compute(tables: &EventTables, settings: &DoraSettings) -> Result<DoraReport> {
    Ok(analyse(tables, settings)?.report)
}

/// [`compute`], plus the org's week-by-week figures.
pub fn analyse(tables: &EventTables, settings: &DoraSettings) -> Result<Analysis> {
    let started = std::time::Instant::now();
    let stage = |name: &str| {
        tracing::debug!(
            stage = name,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "dora"
        )
    };
    let production = deployments::production(tables.deployments.clone(), settings)?;
    stage("production");
    let teams = team_map(tables)?;
    // Every service a scope can name: those deployed to production and those with incidents.
    let incident_services = tables
        .incidents
        .clone()
        .select([col("service")])
        .collect_streaming()?;
    let numbers = ServiceNumbers::new([
        production.column("service")?,
        incident_services.column("service")?,
    ])?;
    let team_numbers = TeamNumbers::new(&teams, &numbers)?;
    // The team is taken once per deployment; lead time samples take it from their deployment.
    let order = deployments::service_order(production.clone().lazy(), settings, &numbers)
        .with_column(team_numbers.team_number(col(SERVICE_NUMBER)))
        .collect_streaming()?;
    stage("order");
    let owners = order
        .clone()
        .lazy()
        .filter(
            col("finished_at")
                .gt_eq(lit(settings.start_micros()))
                .and(col("finished_at").lt(lit(settings.end_micros())))
                .and(col("is_baseline").not()),
        )
        .select([
            col("seq"),
            col(TEAM_NUMBER),
            facts::local_day(col("finished_at"), settings).alias("local_day"),
        ])
        .collect_streaming()?;
    let wanted = incident_shas(tables)?;
    let lead = lead_time::pass(
        lead_time::Inputs {
            production: &production,
            order: &order,
            owners: &owners,
            deployments: tables.deployments.clone(),
            changes: tables.changes.clone(),
            wanted: &wanted,
        },
        &numbers,
        &team_numbers,
        settings.end_micros(),
    )?;
    drop(owners);
    stage("lead_time");
    let attributed = incidents::attribute(
        tables.incidents.clone(),
        production.clone().lazy(),
        lead.shipped.lazy(),
        order.clone().lazy(),
        &numbers,
        settings,
    )?
    .collect_streaming()?;
    stage("attribution");

    // Collected once: each scope and the weekly series read them again.
    let facts = Facts {
        deployments: facts::deployments(order.lazy(), attributed.clone().lazy(), settings)
            .collect_streaming()?
            .lazy(),
        lead_times: lead.lead_times,
        restores: facts::restores(attributed.clone().lazy(), settings)
            .with_column(numbers.service_number(col("service")))
            .with_column(team_numbers.team_number(col(SERVICE_NUMBER)))
            .collect_streaming()?
            .lazy(),
    };

    stage("facts");
    let diagnostics = diagnostics(&facts, &attributed, settings)?;
    let window = &settings.window;
    let names = aggregate::Names {
        services: &numbers,
        teams: &team_numbers,
    };
    let org = aggregate::pool(&facts, Scope::Org, window, &names)?;
    let by_team = aggregate::pool(&facts, Scope::Team, window, &names)?;
    let by_service = aggregate::pool(&facts, Scope::Service, window, &names)?;

    let service_teams = listed_services(&production, &attributed, &numbers, &team_numbers)?;
    let team_names: BTreeSet<&String> = service_teams.values().collect();
    let days = window.days();
    let (weeks, months) = (window.whole_weeks().len(), window.whole_months().len());
    // A scope without deployments still has its whole weeks and months, each with 0 days.
    let metrics = |pooled: Option<&Pooled>| {
        let mut pooled = pooled.cloned().unwrap_or_default();
        pooled.days_per_week.resize(weeks, 0);
        pooled.days_per_month.resize(months, 0);
        metrics(pooled, days)
    };
    stage("pooled");
    let weekly = trend::weekly(&facts, window)?;
    let report = DoraReport {
        spec_version: SPEC_VERSION.to_owned(),
        edition: EDITION.to_owned(),
        window: WindowOut {
            from: rfc3339(window.from),
            to: rfc3339(window.to),
            timezone: window.timezone.name().to_owned(),
        },
        org: metrics(org.get("")),
        teams: team_names
            .into_iter()
            .map(|team| TeamMetrics {
                team: team.clone(),
                metrics: metrics(by_team.get(team)),
            })
            .collect(),
        services: service_teams
            .iter()
            .map(|(service, team)| ServiceMetrics {
                service: service.clone(),
                team: team.clone(),
                metrics: metrics(by_service.get(service)),
            })
            .collect(),
        diagnostics,
    };
    Ok(Analysis {
        report,
        weekly,
        platform: None,
    })
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The distinct `commit_sha`s of the incidents (R5 step 2 looks for them in `changes`).
fn incident_shas(tables: &EventTables) -> Result<Vec<String>> {
    let shas = tables
        .incidents
        .clone()
        .select([col("commit_sha")])
        .filter(col("commit_sha").is_not_null())
        .unique(None, UniqueKeepStrategy::Any)
        .collect_streaming()?;
    Ok(shas
        .column("commit_sha")?
        .str()?
        .iter()
        .flatten()
        .map(str::to_owned)
        .collect())
}

/// `service` → `team`, one row per service (the first listed wins).
fn team_map(tables: &EventTables) -> Result<DataFrame> {
    Ok(match &tables.services {
        Some(services) => services
            .clone()
            .select([col("service"), col("team")])
            .unique_stable(Some(cols(["service"])), UniqueKeepStrategy::First)
            .collect_streaming()?,
        None => DataFrame::new_infer_height(vec![
            Column::new_empty("service".into(), &DataType::String),
            Column::new_empty("team".into(), &DataType::String),
        ])?,
    })
}

/// R11: every service with a production deployment or an incident, sorted, with its team.
fn listed_services(
    production: &DataFrame,
    attributed: &DataFrame,
    numbers: &ServiceNumbers,
    teams: &TeamNumbers,
) -> Result<BTreeMap<String, String>> {
    let mut listed = BTreeMap::new();
    for frame in [production, attributed] {
        let services = frame.column("service")?.as_materialized_series().unique()?;
        for service in services.str()?.iter().flatten() {
            let team = teams.team_of(numbers.number(service));
            listed.insert(service.to_owned(), team.to_owned());
        }
    }
    Ok(listed)
}

fn diagnostics(
    facts: &Facts,
    attributed: &DataFrame,
    settings: &DoraSettings,
) -> Result<Diagnostics> {
    let (from, to) = (settings.start_micros(), settings.end_micros());
    let unattributed_incidents = attributed
        .column("created_at")?
        .i64()?
        .iter()
        .zip(attributed.column("seq")?.as_materialized_series().iter())
        .filter(|(created, seq)| {
            created.is_some_and(|at| at >= from && at < to) && matches!(seq, AnyValue::Null)
        })
        .count();
    Ok(Diagnostics {
        lead_time_dropped: facts.lead_times.dropped,
        changes_unknown: facts.lead_times.unknown,
        unattributed_incidents: unattributed_incidents as u64,
    })
}

/// A scope's pooled figures → the spec's `M`, with rates, medians, bands and scores.
fn metrics(pooled: Pooled, days_in_window: f64) -> Metrics {
    let deployments = pooled.deployments;
    let rate = |count: u64| (deployments > 0).then(|| count as f64 / deployments as f64);
    let figures = bands::Figures {
        deploys_per_day: deployments as f64 / days_in_window,
        median_deploy_days_per_week: aggregate::median(&pooled.days_per_week),
        median_deploy_days_per_month: aggregate::median(&pooled.days_per_month),
        lead_time_median_minutes: pooled.lead_time_median_minutes,
        change_failure_rate: rate(pooled.failed_deployments),
        fdrt_median_minutes: pooled.fdrt_median_minutes,
        rework_rate: rate(pooled.rework_deployments),
    };
    Metrics {
        deployments,
        deploys_per_day: figures.deploys_per_day,
        deployment_days: pooled.deployment_days,
        median_deploy_days_per_week: figures.median_deploy_days_per_week,
        median_deploy_days_per_month: figures.median_deploy_days_per_month,
        lead_time_median_minutes: pooled.lead_time_median_minutes,
        lead_time_samples: pooled.lead_time_samples,
        failed_deployments: pooled.failed_deployments,
        change_failure_rate: figures.change_failure_rate,
        fdrt_median_minutes: pooled.fdrt_median_minutes,
        fdrt_samples: pooled.fdrt_samples,
        unrecovered_failures: pooled.unrecovered_failures,
        ttr_median_minutes: pooled.ttr_median_minutes,
        ttr_samples: pooled.ttr_samples,
        rework_rate: figures.rework_rate,
        bands: bands::bands(&figures),
        scores: bands::scores(&figures),
    }
}
