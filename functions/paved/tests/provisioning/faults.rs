//! Faults that must lose nothing and create nothing twice.

use std::sync::Arc;
use std::time::Duration;

use paved_core::ports::QueueMessage;
use paved_workflow::{NOTIFICATION_DEAD_LETTER_QUEUE, NOTIFICATION_QUEUE, TASK_QUEUE};
use provision_worker::Delivery;
use provision_worker::embedded::{QueueBinding, poll_once};
use serde_json::json;

use crate::harness::{App, Behaviour, TestDriver, config, request, start, start_with, template};

const SLOW: Duration = Duration::from_secs(60);

/// Delivers every task message `copies` times at once (as SQS may), re-delivering the
/// copies that failed until each succeeds, until the request finishes.
async fn pump_duplicated(app: &App, id: &str, copies: usize) -> serde_json::Value {
    let queue = app.queue();
    let notes = QueueBinding {
        retry_after: Duration::ZERO,
        ..QueueBinding::new(NOTIFICATION_QUEUE, NOTIFICATION_DEAD_LETTER_QUEUE, 5)
    };
    for _ in 0..2000 {
        for m in queue
            .receive(TASK_QUEUE, 10, Duration::from_secs(60))
            .await
            .expect("receive")
        {
            let copies: Vec<Delivery> = (0..copies)
                .map(|i| Delivery {
                    message_id: format!("{}#{i}", m.message_id),
                    body: m.body.clone(),
                    receive_count: 1,
                })
                .collect();
            let mut failed = app.platform.worker.handle_batch(&copies).await;
            while !failed.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let again: Vec<Delivery> = copies
                    .iter()
                    .filter(|d| failed.contains(&d.message_id))
                    .cloned()
                    .collect();
                failed = app.platform.worker.handle_batch(&again).await;
            }
            queue
                .delete(TASK_QUEUE, &m.receipt_handle)
                .await
                .expect("delete");
        }
        poll_once(queue.as_ref(), &app.platform.worker, &notes).await;
        let (_, r) = app
            .get(&format!("/v1/requests/{id}"), &crate::harness::admin())
            .await;
        if ["READY", "FAILED"].contains(&r["status"].as_str().unwrap_or_default()) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("request {id} did not finish");
}

#[tokio::test]
async fn every_task_delivered_twice_or_three_times_makes_one_resource() {
    let driver = TestDriver::new("widget", &["one", "two", "three"], &[]);
    let dir = tempfile::tempdir().expect("dir");
    let mut c = config(dir.path());
    c.extra_drivers = vec![driver.clone()];
    let app = start_with(dir, c, false).await;
    assert_eq!(
        app.import(&template("widget", &["one", "two", "three"]))
            .await
            .0,
        200
    );
    for (copies, name) in [(2, "twice"), (3, "thrice")] {
        let id = app.submit(request("widget", name, "development")).await;
        let r = pump_duplicated(&app, &id, copies).await;
        assert_eq!(r["status"], "READY", "{r:#}");
        for step in ["one", "two", "three"] {
            assert_eq!(
                driver.applies(name, step),
                1,
                "{name}/{step}: the driver ran once"
            );
            assert_eq!(driver.copies(name, step), 1, "{name}/{step}: one resource");
        }
    }
    // The real service driver under triple delivery: one repository, one catalog entity.
    let id = app
        .submit(json!({"template": "service", "name": "dup-svc", "owner": "team-a", "environment": "development", "parameters": {"language": "python-fastapi"}}))
        .await;
    assert_eq!(pump_duplicated(&app, &id, 3).await["status"], "READY");
    let repos: Vec<_> = std::fs::read_dir(app.dir.path().join("git"))
        .expect("git root")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".git"))
        .collect();
    assert_eq!(repos.len(), 1);
    let (_, found) = app
        .get(
            "/api/catalog/entities/by-query?filter=kind=component,metadata.name=dup-svc",
            &crate::harness::admin(),
        )
        .await;
    assert_eq!(found["items"].as_array().map(Vec::len), Some(1), "{found}");
}

#[tokio::test]
async fn a_worker_killed_after_the_side_effect_is_retried_without_a_duplicate() {
    let driver = TestDriver::new(
        "widget",
        &["one", "two"],
        &[("two", Behaviour::CrashAfterEffectOnce)],
    );
    let dir = tempfile::tempdir().expect("dir");
    let mut c = config(dir.path());
    c.extra_drivers = vec![driver.clone()];
    // The crashed attempt's lock expires after this (Lambda's remaining time, on AWS).
    c.worker.attempt_timeout = Duration::from_secs(1);
    let app = start_with(dir, c, true).await;
    assert_eq!(
        app.import(&template("widget", &["one", "two"])).await.0,
        200
    );
    let id = app.submit(request("widget", "crashy", "development")).await;
    let r = app.wait_for(&id, &["READY", "FAILED"], SLOW).await;
    assert_eq!(r["status"], "READY", "{r:#}");
    assert_eq!(
        driver.applies("crashy", "two"),
        2,
        "the step ran again after the crash"
    );
    assert_eq!(driver.copies("crashy", "two"), 1, "and found its own work");
    assert_eq!(r["steps"][1]["attempts"], 2);
}

#[tokio::test]
async fn transient_driver_errors_are_retried_then_succeed() {
    let driver = TestDriver::new(
        "widget",
        &["one", "two"],
        &[("two", Behaviour::Transient(2))],
    );
    let app = start(vec![driver.clone()]).await;
    assert_eq!(
        app.import(&template("widget", &["one", "two"])).await.0,
        200
    );
    let id = app.submit(request("widget", "flaky", "development")).await;
    // Step Functions' backoff: 2 s, then 4 s.
    let r = app.wait_for(&id, &["READY", "FAILED"], SLOW).await;
    assert_eq!(r["status"], "READY", "{r:#}");
    assert_eq!(r["steps"][1]["attempts"], 3);
    assert_eq!(driver.applies("flaky", "two"), 3);
    assert_eq!(driver.copies("flaky", "two"), 1);
}

#[tokio::test]
async fn a_permanent_failure_at_step_three_undoes_everything() {
    let driver = TestDriver::new(
        "widget",
        &["one", "two", "three"],
        &[("three", Behaviour::Permanent)],
    );
    let app = start(vec![driver.clone()]).await;
    assert_eq!(
        app.import(&template("widget", &["one", "two", "three"]))
            .await
            .0,
        200
    );
    let id = app.submit(request("widget", "doomed", "development")).await;
    let r = app.wait_for(&id, &["READY", "FAILED"], SLOW).await;
    assert_eq!(r["status"], "FAILED", "{r:#}");
    assert_eq!(r["failure"]["code"], "NonRetryable.TestRefused");
    assert!(
        r["failure"]["message"]
            .as_str()
            .expect("message")
            .contains("three is refused")
    );
    let statuses: Vec<&str> = r["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["status"].as_str())
        .collect();
    assert_eq!(statuses, ["UNDONE", "UNDONE", "UNDONE"]);
    assert_eq!(driver.live(), 0, "nothing left behind");
    // The name is free again after a failure.
    let (status, _) = app
        .post(
            "/v1/requests?dryRun=true",
            &crate::harness::alice(),
            &request("widget", "doomed", "development"),
            None,
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_poison_message_ends_in_the_dlq_and_fails_the_request_with_the_reason() {
    let driver = TestDriver::new("widget", &["one", "two"], &[("two", Behaviour::Panic)]);
    let dir = tempfile::tempdir().expect("dir");
    let mut c = config(dir.path());
    c.extra_drivers = vec![driver.clone()];
    c.worker.max_receives = 2;
    c.worker.attempt_timeout = Duration::from_millis(100);
    let app = start_with(dir, c, true).await;
    assert_eq!(
        app.import(&template("widget", &["one", "two"])).await.0,
        200
    );
    let id = app.submit(request("widget", "poison", "development")).await;
    let r = app.wait_for(&id, &["READY", "FAILED"], SLOW).await;
    assert_eq!(r["status"], "FAILED", "{r:#}");
    assert_eq!(r["failure"]["code"], "NonRetryable.PoisonMessage");
    let message = r["failure"]["message"].as_str().expect("reason");
    assert!(
        message.contains("dead-letter") && message.contains("2 times"),
        "{message}"
    );
    assert_eq!(driver.live(), 0, "step one was undone");

    // A message nobody can read goes to the DLQ too.
    app.queue()
        .send(TASK_QUEUE, QueueMessage::new("{garbage"))
        .await
        .expect("send");
    let deadline = std::time::Instant::now() + SLOW;
    let dead = loop {
        let dead = app.dead_letters().await;
        if dead.len() >= 2 || std::time::Instant::now() > deadline {
            break dead;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(dead.iter().any(|b| b.contains("poison")), "{dead:?}");
    assert!(dead.iter().any(|b| b == "{garbage"), "{dead:?}");
}

#[tokio::test]
async fn paved_restarted_mid_workflow_resumes_and_completes() {
    let driver = TestDriver::new("widget", &["one", "two", "three"], &[]);
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().to_path_buf();
    let mut c = config(&path);
    c.extra_drivers = vec![driver.clone() as Arc<dyn paved_core::provisioning::Driver>];
    let app = start_with(dir, c.clone(), false).await;
    assert_eq!(
        app.import(&template("widget", &["one", "two", "three"]))
            .await
            .0,
        200
    );
    let id = app
        .submit(request("widget", "restarts", "development"))
        .await;
    // Run one step by hand, then "crash": drop everything with the second task queued.
    app.pump_once().await;
    let (_, r) = app
        .get(&format!("/v1/requests/{id}"), &crate::harness::admin())
        .await;
    assert_eq!(r["status"], "PROVISIONING", "{r:#}");
    let App { dir, platform, .. } = app;
    drop(platform);

    let app = start_with(dir, c, true).await;
    let r = app.wait_for(&id, &["READY", "FAILED"], SLOW).await;
    assert_eq!(r["status"], "READY", "{r:#}");
    for step in ["one", "two", "three"] {
        assert_eq!(driver.applies("restarts", step), 1);
    }
}
