//! The reconciliation loop under load: 10,000 live resources on the embedded backend, observed
//! by an in-memory driver that only this benchmark links (the product never ships it).
//!
//! `cargo run --release -p paved --example bench_reconcile -- [resources] [rate] [pollers]`
//! (scripts/bench-reconcile.sh). Two passes over the same resources:
//! 1. **rate**: the tick at `rate` observations per second for the provider; every
//!    observation's start time is recorded, and the most starts in any one-second window
//!    must not exceed the rate;
//! 2. **overhead**: the same resources with no rate limit to speak of, through the same
//!    queue and worker path; the wall time per observation, less the driver's own time, is
//!    the loop's overhead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use paved::host::{HostConfig, build};
use paved_core::observation::Observation;
use paved_core::provisioning::{Driver, DriverError, PlannedStep, Planner, ResourceSpec};
use paved_core::requests::{NewRequest, RequestStatus};
use paved_core::resources::ReconcileSettings;
use serde_json::{Value, json};

/// Observes nothing but the clock: every call's start, and the time spent inside.
#[derive(Default)]
struct CountingObserver {
    kind: &'static str,
    starts: Mutex<Vec<Instant>>,
    inside: Mutex<Duration>,
}

impl Planner for CountingObserver {
    fn resource_type(&self) -> &'static str {
        self.kind
    }
    fn plan(&self, _: &ResourceSpec) -> Result<Vec<PlannedStep>, DriverError> {
        Ok(vec![PlannedStep {
            step: "one".into(),
            action: "nothing".into(),
        }])
    }
}

#[async_trait]
impl Driver for CountingObserver {
    async fn apply(&self, spec: &ResourceSpec, _: &str) -> Result<Value, DriverError> {
        Ok(json!({"name": spec.name}))
    }
    async fn undo(&self, _: &ResourceSpec, _: &str) -> Result<(), DriverError> {
        Ok(())
    }
    async fn status(&self, _: &ResourceSpec) -> Result<Option<Value>, DriverError> {
        Ok(Some(json!({})))
    }
    async fn delete(&self, _: &ResourceSpec) -> Result<(), DriverError> {
        Ok(())
    }
    /// It holds nothing on a provider: there is nothing to list.
    async fn inventory(
        &self,
        _: Option<&str>,
        _: usize,
    ) -> Result<paved_core::observation::InventoryPage, DriverError> {
        Ok(paved_core::observation::InventoryPage::default())
    }
    async fn remove_found(
        &self,
        _: &ResourceSpec,
        _: &paved_core::observation::Found,
    ) -> Result<(), DriverError> {
        Ok(())
    }
    async fn observe(&self, _: &ResourceSpec) -> Result<Observation, DriverError> {
        let t = Instant::now();
        self.starts.lock().push(t);
        let seen = Observation {
            exists: true,
            calls: 1,
            ..Observation::default()
        };
        *self.inside.lock() += t.elapsed();
        Ok(seen)
    }
}

const SECRET: &str = "bench-secret-bench-secret-bench-secret-00";

/// The most starts within any window of `width` (the windows begin at each start).
fn busiest_window(starts: &[Instant], width: Duration) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..starts.len() {
        while starts[hi].duration_since(starts[lo]) >= width {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

/// Waits until the background tick's first run is over: it claims every provider's first leak
/// scan in provider order, so once the last provider's is claimed, no provider is ticked again
/// until the tick period has passed, and the resources recorded next are the benchmark's alone.
async fn wait_for_first_tick(platform: &paved::host::Platform) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = platform
            .backend
            .table
            .query(
                "RECONCILE#PROVIDER",
                &paved_core::ports::SortKeyRange::All,
                None,
                100,
            )
            .await?;
        let claimed = |i: &paved_core::ports::Item| {
            i.attrs
                .get("nextScanMs")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                > 0
        };
        if !page.items.is_empty() && page.items.iter().all(claimed) {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "the first tick did not run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for(driver: &CountingObserver, n: usize) {
    while driver.starts.lock().len() < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Records `n` READY resources of `kind`, due now.
async fn record(
    platform: &paved::host::Platform,
    reconciler: &paved_core::resources::Reconciler,
    kind: &str,
    prefix: &str,
    n: usize,
) -> anyhow::Result<()> {
    let t = Instant::now();
    let now_ms = chrono::Utc::now().timestamp_millis();
    for i in 0..n {
        let created = platform
            .requests
            .create(NewRequest {
                id: format!("req-{prefix}{i:023}"),
                template: kind.into(),
                resource_type: kind.into(),
                name: format!("r{prefix}-{i:05}"),
                owner: "group:default/team-a".into(),
                environment: "development".into(),
                parameters: json!({}),
                requester: "user:default/alice".into(),
                steps: vec!["one".into()],
                needs_approval: false,
                reconcile: ReconcileSettings {
                    interval_seconds: 3600,
                    ..ReconcileSettings::default()
                },
            })
            .await?;
        let ready = platform
            .requests
            .update(&created.id, |r, at| {
                r.advance(RequestStatus::Queued, "bench", at)?;
                r.advance(RequestStatus::Provisioning, "bench", at)?;
                r.advance(RequestStatus::Ready, "bench", at)
            })
            .await?;
        reconciler.track_due_at(&ready, now_ms).await?;
    }
    eprintln!(
        "recorded {n} {kind} resources in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let resources: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let rate: f64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(500.0);
    let pollers: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1);

    let dir = tempfile::tempdir()?;
    let limited = Arc::new(CountingObserver {
        kind: "bench-limited",
        ..Default::default()
    });
    let unlimited = Arc::new(CountingObserver {
        kind: "bench-unlimited",
        ..Default::default()
    });
    let mut config = HostConfig::new(dir.path().to_path_buf());
    config.jwt_secret = Some(SECRET.into());
    config.workers = pollers;
    config.extra_drivers = vec![limited.clone(), unlimited.clone()];
    // The settings `PAVED_RECONCILE_RATES` would give; a tick hands out 15 minutes of slots
    // (the background tick runs once at start, before the resources exist, and starts each
    // provider's leak scan: the driver holds nothing, so the scans list nothing).
    config.worker.reconcile.tick_period = Duration::from_secs(900);
    config
        .worker
        .reconcile
        .rates
        .insert("bench-limited".into(), rate);
    // No limit to speak of: one slot per microsecond.
    config
        .worker
        .reconcile
        .rates
        .insert("bench-unlimited".into(), 1e6);
    let platform = build(&config).await?;
    let background = platform.start_background();
    let reconciler = Arc::clone(platform.worker.reconciler().expect("a reconciler"));
    wait_for_first_tick(&platform).await?;

    // 1. The overhead: the unlimited provider's resources, queued at once.
    record(&platform, &reconciler, "bench-unlimited", "u", resources).await?;
    let overhead_start = Instant::now();
    let report = reconciler.tick().await?;
    let tick_time = overhead_start.elapsed();
    anyhow::ensure!(
        report.queued.get("bench-unlimited").copied() == Some(resources),
        "the tick queued {report:?}"
    );
    wait_for(&unlimited, resources).await;
    let overhead_wall = overhead_start.elapsed();

    // 2. The rate: the limited provider's resources, each started at its slot.
    record(&platform, &reconciler, "bench-limited", "l", resources).await?;
    let report = reconciler.tick().await?;
    anyhow::ensure!(
        report.queued.get("bench-limited").copied() == Some(resources),
        "the tick queued {report:?}"
    );
    wait_for(&limited, resources).await;
    let limited_starts = limited.starts.lock().clone();
    let first = limited_starts[0];
    let last = limited_starts[resources - 1];
    let span = last.duration_since(first).as_secs_f64();
    let busiest = busiest_window(&limited_starts, Duration::from_secs(1));
    let achieved = (resources - 1) as f64 / span;

    let driver_time = *unlimited.inside.lock();
    let per_observation_ms =
        (overhead_wall.as_secs_f64() - driver_time.as_secs_f64()) * 1e3 / resources as f64;
    let tick_per_resource_us = tick_time.as_secs_f64() * 1e6 / resources as f64;

    // Every resource recorded as observed and synced.
    let page = reconciler
        .resources()
        .page(
            &paved_core::resources::ResourceFilter {
                state: Some(paved_core::resources::SyncState::Synced),
                ..Default::default()
            },
            None,
            1,
        )
        .await?;
    anyhow::ensure!(!page.items.is_empty(), "nothing recorded as synced");
    background.stop().await;

    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "resources_per_provider": resources,
            "pollers": pollers,
            "rate": {
                "limit_per_second": rate,
                "busiest_one_second_window": busiest,
                "achieved_per_second": (achieved * 10.0).round() / 10.0,
                "pass_seconds": (span * 100.0).round() / 100.0,
                "within_limit": busiest as f64 <= rate,
            },
            "overhead": {
                "pass_seconds": (overhead_wall.as_secs_f64() * 100.0).round() / 100.0,
                "driver_seconds": (driver_time.as_secs_f64() * 1000.0).round() / 1000.0,
                "loop_ms_per_observation": (per_observation_ms * 1000.0).round() / 1000.0,
                "tick_us_per_resource": (tick_per_resource_us * 10.0).round() / 10.0,
            },
        }))?
    );
    Ok(())
}
