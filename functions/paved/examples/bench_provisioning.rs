//! The provisioning benchmark: N concurrent requests of a 3-step template through the whole
//! embedded path (HTTP API → guardrails → workflow engine → task queue → worker → driver →
//! notification → READY), on a fresh data directory.
//!
//! The driver does no work, and the time spent inside it is measured anyway, so what remains
//! of each request's time-to-ready is orchestration: the API, the engine, the queue, the
//! worker's idempotency records and the request bookkeeping.
//!
//! `cargo run --release -p paved --example bench_provisioning -- [REQUESTS] [WORKERS] [full|normal]`
//! (scripts/bench-provisioning.sh runs it and prints the figures for docs/benchmarks.md).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use paved::host::{HostConfig, build};
use paved_core::observation::Observation;
use paved_core::provisioning::{Driver, DriverError, PlannedStep, Planner, ResourceSpec};
use paved_core::requests::RequestStatus;
use serde_json::{Value, json};

const STEPS: [&str; 3] = ["first", "second", "third"];

/// Three instant steps; records how long each call spent inside the driver.
#[derive(Default)]
struct InstantDriver {
    inside: Mutex<Vec<Duration>>,
}

impl Planner for InstantDriver {
    fn resource_type(&self) -> &'static str {
        "bench"
    }
    fn plan(&self, _: &ResourceSpec) -> Result<Vec<PlannedStep>, DriverError> {
        Ok(STEPS
            .iter()
            .map(|s| PlannedStep {
                step: (*s).into(),
                action: "nothing".into(),
            })
            .collect())
    }
}

#[async_trait]
impl Driver for InstantDriver {
    async fn apply(&self, spec: &ResourceSpec, step: &str) -> Result<Value, DriverError> {
        let t = Instant::now();
        let out = json!({ step: format!("{}-{step}", spec.name) });
        self.inside.lock().push(t.elapsed());
        Ok(out)
    }
    async fn undo(&self, _: &ResourceSpec, _: &str) -> Result<(), DriverError> {
        Ok(())
    }
    async fn status(&self, _: &ResourceSpec) -> Result<Option<Value>, DriverError> {
        Ok(None)
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
        Ok(Observation {
            exists: true,
            ..Observation::default()
        })
    }
}

const TEMPLATE: &str = "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {name: bench}\nspec:\n  type: bench\n  owner: platform-team\n  parameters: [{type: object}]\n  steps:\n    - {id: first, name: first, action: 'bench:first'}\n    - {id: second, name: second, action: 'bench:second'}\n    - {id: third, name: third, action: 'bench:third'}\n---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team-a}\nspec: {type: team, children: []}\n---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: platform-team}\nspec: {type: team, children: []}\n";
const SECRET: &str = "bench-secret-bench-secret-bench-secret-00";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let requests: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let workers: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4);
    let durability: paved_sqlite::Durability = args
        .next()
        .map(|a| a.parse().map_err(anyhow::Error::msg))
        .transpose()?
        .unwrap_or_default();
    let dir = tempfile::tempdir()?;
    let driver = Arc::new(InstantDriver::default());
    let mut config = HostConfig::new(dir.path().to_path_buf());
    config.jwt_secret = Some(SECRET.into());
    config.workers = workers;
    config.durability = durability;
    config.extra_drivers = vec![driver.clone()];
    // The default guardrails with the team quota out of the way: a thousand requests from one
    // team would otherwise (rightly) be refused after 25.
    let policy_dir = dir.path().join("policies");
    std::fs::create_dir_all(&policy_dir)?;
    let mut data: Value = serde_json::from_str(paved_core::policy::DEFAULT_CONFIG)?;
    data["paved"]["config"]["quota_per_team"] = json!(1_000_000);
    std::fs::write(policy_dir.join("config.json"), data.to_string())?;
    config.policies = Some(paved::host::PolicySource {
        dir: policy_dir,
        replace_default: false,
    });
    let platform = build(&config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = platform.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let background = platform.start_background();
    let http = reqwest::Client::new();
    let admin = paved_http::mint_token(
        SECRET.as_bytes(),
        "root",
        &["platform-admins".to_owned()],
        3600,
    )?;
    let alice = paved_http::mint_token(SECRET.as_bytes(), "alice", &["team-a".to_owned()], 3600)?;
    let imported = http
        .post(format!("http://{addr}/v1/entities/import"))
        .bearer_auth(&admin)
        .header("content-type", "application/yaml")
        .body(TEMPLATE)
        .send()
        .await?;
    anyhow::ensure!(
        imported.status().is_success(),
        "import: {}",
        imported.text().await?
    );

    // The guardrails alone: what one evaluation costs (in-process Rego, no sidecar).
    let guardrails = paved_core::policy::PolicyEngine::default_bundle()?;
    let input = json!({
        "request": {"template": "postgres-database", "name": "orders-db", "owner": "group:default/team-a",
                    "environment": "production", "parameters": {"storage_gb": 20}, "requester": "user:default/alice"},
        "template": {"name": "postgres-database", "environments": []},
        "usage": {"team_active_resources": 3},
    });
    let evaluations = 2000;
    let t = Instant::now();
    for _ in 0..evaluations {
        std::hint::black_box(guardrails.evaluate_request(&input)?);
    }
    let policy_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(evaluations);

    eprintln!("submitting {requests} requests at once ({workers} task pollers)");
    let started = Instant::now();
    let mut submissions = Vec::with_capacity(requests);
    for i in 0..requests {
        let (http, alice) = (http.clone(), alice.clone());
        submissions.push(tokio::spawn(async move {
            let body = json!({"template": "bench", "name": format!("bench-{i:05}"), "owner": "team-a", "environment": "development", "parameters": {}});
            let r = http.post(format!("http://{addr}/v1/requests")).bearer_auth(&alice).json(&body).send().await?;
            let status = r.status();
            let v: Value = r.json().await?;
            anyhow::ensure!(status.as_u16() == 202, "{status}: {v}");
            Ok::<_, anyhow::Error>(v["id"].as_str().unwrap_or_default().to_owned())
        }));
    }
    let mut ids = Vec::with_capacity(requests);
    for s in submissions {
        ids.push(s.await??);
    }
    let submitted = started.elapsed();
    // Cheap polls while the executions run (a COUNT), then until the final notifications land.
    let engine = &platform
        .backend
        .embedded
        .as_ref()
        .expect("the embedded backend")
        .engine;
    while engine.running().await? > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    loop {
        let left = platform
            .requests
            .list(|r| r.status != RequestStatus::Ready && r.status != RequestStatus::Failed)
            .await?
            .len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = started.elapsed();
    let all = platform.requests.list(|_| true).await?;

    // Unloaded: one request at a time, so time-to-ready is orchestration latency alone.
    let mut alone = Vec::new();
    for i in 0..50 {
        let body = json!({"template": "bench", "name": format!("alone-{i:03}"), "owner": "team-a", "environment": "development", "parameters": {}});
        let r: Value = http
            .post(format!("http://{addr}/v1/requests"))
            .bearer_auth(&alice)
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        let id = r["id"].as_str().unwrap_or_default().to_owned();
        loop {
            let r = platform.requests.get(&id).await?;
            if r.status == RequestStatus::Ready {
                alone.push(
                    (r.updated_at - r.created_at)
                        .num_microseconds()
                        .unwrap_or(0) as f64
                        / 1000.0,
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    alone.sort_by(f64::total_cmp);
    background.stop().await;
    let failed = all
        .iter()
        .filter(|r| r.status == RequestStatus::Failed)
        .count();
    anyhow::ensure!(failed == 0, "{failed} requests failed");
    let mut ttr: Vec<f64> = all
        .iter()
        .map(|r| {
            (r.updated_at - r.created_at)
                .num_microseconds()
                .unwrap_or(0) as f64
                / 1000.0
        })
        .collect();
    ttr.sort_by(f64::total_cmp);
    let inside: Duration = driver.inside.lock().iter().sum();
    let steps = (requests * STEPS.len()) as f64;
    let per_step_inside_ms = inside.as_secs_f64() * 1000.0 / steps;
    let mean_ttr = ttr.iter().sum::<f64>() / ttr.len() as f64;
    println!(
        "requests            {requests} (3 steps each, {workers} task pollers, SQLite sync {durability:?})"
    );
    println!("submitted in        {:.2} s", submitted.as_secs_f64());
    println!("all READY in        {:.2} s", wall.as_secs_f64());
    println!(
        "throughput          {:.0} requests/s, {:.0} steps/s",
        requests as f64 / wall.as_secs_f64(),
        steps / wall.as_secs_f64()
    );
    println!(
        "time-to-ready       p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&ttr, 0.5),
        percentile(&ttr, 0.99),
        ttr[ttr.len() - 1]
    );
    println!("inside the driver   {:.4} ms per step", per_step_inside_ms);
    println!(
        "orchestration       {:.2} ms per step of wall time ({:.2} ms per step of mean time-to-ready, queueing included)",
        wall.as_secs_f64() * 1000.0 / steps - per_step_inside_ms,
        mean_ttr / STEPS.len() as f64 - per_step_inside_ms
    );
    println!("guardrails          {policy_us:.0} µs per evaluation (deny and needs_approval)");
    println!(
        "one at a time       time-to-ready p50 {:.1} ms, p99 {:.1} ms: {:.2} ms per step",
        percentile(&alone, 0.5),
        percentile(&alone, 0.99),
        percentile(&alone, 0.5) / STEPS.len() as f64
    );
    Ok(())
}
