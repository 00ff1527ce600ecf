//! The task runner with a real driver (git + catalog): duplicate deliveries, concurrency, a
//! worker dying between the side effect and the answer, and failures.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use paved_core::catalog::CatalogRepository;
use paved_core::idempotency::{IdempotencyStore, NextAction};
use paved_core::ports::{Clock, Table};
use paved_core::provisioning::{Driver, ResourceSpec};
use paved_core::tasks::{TaskAction, TaskMessage, TaskOutcome, TaskRunner};
use paved_drivers::service::ServiceDriver;
use paved_sqlite::SqliteStore;
use serde_json::json;

struct ManualClock(Mutex<DateTime<Utc>>);

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock()
    }
}

struct World {
    dir: tempfile::TempDir,
    table: Arc<SqliteStore>,
    clock: Arc<ManualClock>,
    driver: Arc<ServiceDriver>,
    runner: TaskRunner,
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = Arc::new(SqliteStore::open(&dir.path().join("paved.db")).expect("open"));
    let catalog = Arc::new(CatalogRepository::load(table.clone()).await.expect("load"));
    let driver = Arc::new(ServiceDriver::new(dir.path().join("git"), catalog));
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    let runner = TaskRunner::new(
        vec![driver.clone() as Arc<dyn Driver>],
        table.clone(),
        clock.clone(),
        Duration::from_secs(60),
    );
    World {
        dir,
        table,
        clock,
        driver,
        runner,
    }
}

fn task(step: &str, token: &str) -> TaskMessage {
    let spec = ResourceSpec {
        request_id: "req-1".into(),
        name: "orders".into(),
        owner: "team-a".into(),
        environment: "development".into(),
        parameters: json!({"language": "rust-axum"}),
    };
    TaskMessage {
        task_token: Some(token.into()),
        task_id: TaskMessage::task_id_for("req-1", step, TaskAction::Apply),
        resource_type: "service".into(),
        step: step.into(),
        action: TaskAction::Apply,
        spec,
    }
}

fn commits(w: &World) -> usize {
    let bare = w.dir.path().join("git/orders.git");
    let out = std::process::Command::new("git")
        .args(["rev-list", "--count", "main"])
        .current_dir(bare)
        .output()
        .expect("git");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("count")
}

#[tokio::test]
async fn a_task_delivered_three_times_provisions_once() {
    let w = world().await;
    assert!(matches!(
        w.runner.run(&task("render", "t0")).await.expect("run"),
        TaskOutcome::Succeeded { .. }
    ));
    let mut results = Vec::new();
    for token in ["t1", "t2", "t3"] {
        // Redeliveries may carry newer tokens; the task id is what counts.
        results.push(w.runner.run(&task("repository", token)).await.expect("run"));
    }
    let TaskOutcome::Succeeded {
        outputs: first,
        replayed: false,
    } = &results[0]
    else {
        panic!("{results:?}")
    };
    for later in &results[1..] {
        assert_eq!(
            later,
            &TaskOutcome::Succeeded {
                outputs: first.clone(),
                replayed: true
            }
        );
    }
    assert_eq!(commits(&w), 1);
    let marker = w
        .runner
        .marker(&task("repository", "").task_id)
        .await
        .expect("marker")
        .expect("written");
    assert_eq!(marker.str_attr("status"), Some("DONE"));
}

#[tokio::test]
async fn concurrent_deliveries_run_the_step_once() {
    let w = Arc::new(world().await);
    w.runner.run(&task("render", "t0")).await.expect("run");
    let runs: Vec<_> = (0..5)
        .map(|i| {
            let w = Arc::clone(&w);
            tokio::spawn(async move {
                w.runner
                    .run(&task("repository", &format!("t{i}")))
                    .await
                    .expect("run")
            })
        })
        .collect();
    let mut executed = 0;
    for r in runs {
        match r.await.expect("join") {
            TaskOutcome::Succeeded {
                replayed: false, ..
            } => executed += 1,
            TaskOutcome::Succeeded { replayed: true, .. } | TaskOutcome::InProgress => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(executed, 1);
    assert_eq!(commits(&w), 1);
}

#[tokio::test]
async fn a_worker_killed_after_the_side_effect_is_retried_without_a_duplicate() {
    let w = world().await;
    w.runner.run(&task("render", "t0")).await.expect("run");
    let t = task("repository", "t1");

    // The first worker takes the lock, does the side effect, and dies before recording it.
    let idem = IdempotencyStore::new(
        w.table.clone() as Arc<dyn Table>,
        w.clock.clone(),
        "provision-worker",
        Duration::from_secs(3600),
    );
    let identity = json!({"taskId": t.task_id, "resourceType": t.resource_type, "step": t.step, "action": t.action, "spec": t.spec});
    assert!(matches!(
        idem.try_acquire(&t.task_id, &identity, Duration::from_secs(60))
            .await
            .expect("lock"),
        NextAction::Execute(_)
    ));
    let before = w
        .driver
        .apply(&t.spec, "repository")
        .await
        .expect("side effect");

    // SQS redelivers before the dead worker's lock expires: nobody runs it twice at once.
    assert_eq!(
        w.runner.run(&task("repository", "t2")).await.expect("run"),
        TaskOutcome::InProgress
    );

    // After the lock's deadline the retry runs, and the driver finds its own work.
    *w.clock.0.lock() += chrono::Duration::seconds(61);
    let TaskOutcome::Succeeded {
        outputs,
        replayed: false,
    } = w.runner.run(&task("repository", "t3")).await.expect("run")
    else {
        panic!("the retry completes")
    };
    assert_eq!(outputs["commit"], before["commit"]);
    assert_eq!(commits(&w), 1, "no second push");
}

#[tokio::test]
async fn failures_release_the_task_for_a_retry_and_unknown_types_are_refused() {
    let w = world().await;
    let mut bad = task("render", "t1");
    bad.spec.parameters = json!({"language": "cobol"});
    let TaskOutcome::Failed(e) = w.runner.run(&bad).await.expect("run") else {
        panic!("fails")
    };
    assert_eq!(e.code(), "NonRetryable.InvalidParameters");
    let marker = w
        .runner
        .marker(&bad.task_id)
        .await
        .expect("marker")
        .expect("written");
    assert_eq!(marker.str_attr("status"), Some("FAILED"));
    // Not stuck in progress: the next delivery runs again.
    assert!(matches!(
        w.runner.run(&bad).await.expect("run"),
        TaskOutcome::Failed(_)
    ));

    let mut other = task("table", "t1");
    other.resource_type = "mainframe".into();
    let TaskOutcome::Failed(e) = w.runner.run(&other).await.expect("run") else {
        panic!("refused")
    };
    assert_eq!(e.code(), "NonRetryable.NoDriver");
    assert_eq!(w.runner.resource_types(), ["service"]);
}
