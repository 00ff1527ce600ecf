use std::collections::HashMap;
use std::time::Duration;

use paved_core::ports::{Queue, ReceivedMessage, Workflow, WorkflowError};
use serde_json::{Value, json};

use super::WorkflowEngine;
use paved_sqlite::SqliteStore;

const PROVISION: &str = include_str!("../../../infra/statemachines/provision.asl.json");

fn subs() -> HashMap<String, String> {
    HashMap::from([
        ("TaskQueueUrl".to_owned(), "tasks".to_owned()),
        (
            "NotificationQueueUrl".to_owned(),
            "notifications".to_owned(),
        ),
    ])
}

fn open(dir: &tempfile::TempDir) -> (SqliteStore, WorkflowEngine) {
    let store = SqliteStore::open(&dir.path().join("paved.db")).expect("open");
    let engine = WorkflowEngine::new(store.clone(), "provision", PROVISION, &subs()).expect("load");
    (store, engine)
}

async fn take(store: &SqliteStore, queue: &str) -> Vec<(ReceivedMessage, Value)> {
    let got = store
        .receive(queue, 10, Duration::from_secs(30))
        .await
        .expect("receive");
    for m in &got {
        store
            .delete(queue, &m.receipt_handle)
            .await
            .expect("delete");
    }
    got.into_iter()
        .map(|m| {
            let body = serde_json::from_str(&m.body).expect("json body");
            (m, body)
        })
        .collect()
}

async fn one_task(store: &SqliteStore) -> Value {
    let mut got = take(store, "tasks").await;
    assert_eq!(got.len(), 1, "exactly one task message: {got:?}");
    got.remove(0).1
}

fn input(steps: &[&str]) -> Value {
    json!({"requestId": "req-1", "resourceType": "postgres-database", "spec": {"name": "orders"}, "steps": steps})
}

fn future(secs: i64) -> i64 {
    chrono::Utc::now().timestamp_millis() + secs * 1000
}

#[tokio::test]
async fn runs_every_step_through_the_task_queue_then_notifies_ready() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, engine) = open(&dir);
    let arn = engine
        .start_execution("req-1", &input(&["database", "role"]))
        .await
        .expect("start");
    assert!(arn.ends_with(":execution:provision:req-1"));
    assert_eq!(
        engine
            .start_execution("req-1", &input(&["database", "role"]))
            .await
            .expect("same start"),
        arn
    );
    assert!(matches!(
        engine.start_execution("req-1", &input(&["other"])).await,
        Err(WorkflowError::ExecutionAlreadyExists(_))
    ));

    let first = one_task(&store).await;
    assert_eq!(first["taskId"], "req-1/database/apply");
    assert_eq!(
        (first["step"].as_str(), first["action"].as_str()),
        (Some("database"), Some("apply"))
    );
    assert_eq!(first["spec"], json!({"name": "orders"}));
    let token = first["taskToken"].as_str().expect("token").to_owned();
    engine.send_task_heartbeat(&token).await.expect("heartbeat");
    engine
        .send_task_success(&token, &json!({"database": "x"}))
        .await
        .expect("success");
    assert!(
        matches!(
            engine.send_task_success(&token, &json!({})).await,
            Err(WorkflowError::InvalidToken(_))
        ),
        "a token answers once"
    );

    let second = one_task(&store).await;
    assert_eq!(second["taskId"], "req-1/role/apply");
    engine
        .send_task_success(second["taskToken"].as_str().expect("t"), &json!({}))
        .await
        .expect("success");

    let notes = take(&store, "notifications").await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].1["status"], "READY");
    assert_eq!(notes[0].1["requestId"], "req-1");
    assert!(
        notes[0].1["executionId"]
            .as_str()
            .expect("id")
            .ends_with("req-1")
    );
    let done = engine.describe_execution("req-1").await.expect("describe");
    assert_eq!(done.status, "SUCCEEDED");
    assert!(
        matches!(
            engine
                .start_execution("req-1", &input(&["database", "role"]))
                .await,
            Err(WorkflowError::ExecutionAlreadyExists(_))
        ),
        "a closed execution's name stays taken, as on AWS"
    );
}

#[tokio::test]
async fn a_failed_step_undoes_the_applied_ones_in_reverse_then_fails() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, engine) = open(&dir);
    engine
        .start_execution("req-1", &input(&["database", "role", "grants"]))
        .await
        .expect("start");
    for _ in 0..2 {
        let t = one_task(&store).await;
        engine
            .send_task_success(t["taskToken"].as_str().expect("t"), &json!({}))
            .await
            .expect("ok");
    }
    let third = one_task(&store).await;
    assert_eq!(third["taskId"], "req-1/grants/apply");
    engine
        .send_task_failure(
            third["taskToken"].as_str().expect("t"),
            "NonRetryable.Refused",
            "no",
        )
        .await
        .expect("failure");
    let mut undone = Vec::new();
    for _ in 0..3 {
        let t = one_task(&store).await;
        undone.push(t["taskId"].as_str().expect("id").to_owned());
        engine
            .send_task_success(t["taskToken"].as_str().expect("t"), &Value::Null)
            .await
            .expect("ok");
    }
    assert_eq!(
        undone,
        [
            "req-1/grants/undo",
            "req-1/role/undo",
            "req-1/database/undo"
        ]
    );
    let notes = take(&store, "notifications").await;
    assert_eq!(notes[0].1["status"], "FAILED");
    let done = engine.describe_execution("req-1").await.expect("describe");
    assert_eq!(
        (done.status.as_str(), done.error.as_deref()),
        ("FAILED", Some("NonRetryable.ProvisioningFailed"))
    );
}

#[tokio::test]
async fn retryable_errors_back_off_then_retry_and_timeouts_fire() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, engine) = open(&dir);
    engine
        .start_execution("req-1", &input(&["database"]))
        .await
        .expect("start");
    let t = one_task(&store).await;
    engine
        .send_task_failure(
            t["taskToken"].as_str().expect("t"),
            "Retryable.PostgresUnavailable",
            "down",
        )
        .await
        .expect("failure");
    assert!(
        take(&store, "tasks").await.is_empty(),
        "nothing is resent before the backoff"
    );
    assert_eq!(
        engine.fire_timers_at(future(1)).await.expect("timers"),
        0,
        "2 s interval not reached"
    );
    assert_eq!(engine.fire_timers_at(future(3)).await.expect("timers"), 1);
    let retry = one_task(&store).await;
    assert_eq!(
        retry["taskId"], "req-1/database/apply",
        "the same business id"
    );
    assert_ne!(
        retry["taskToken"], t["taskToken"],
        "a new token per attempt"
    );

    // No heartbeat for 60 s: States.HeartbeatTimeout, retried as States.Timeout (4 s backoff now).
    assert_eq!(engine.fire_timers_at(future(61)).await.expect("timers"), 1);
    assert!(
        matches!(
            engine
                .send_task_success(retry["taskToken"].as_str().expect("t"), &json!({}))
                .await,
            Err(WorkflowError::InvalidToken(_))
        ),
        "a timed-out token is dead"
    );
    engine.fire_timers_at(future(61 + 5)).await.expect("timers");
    let third = one_task(&store).await;
    engine
        .send_task_success(third["taskToken"].as_str().expect("t"), &json!({}))
        .await
        .expect("ok");
    assert_eq!(
        engine.describe_execution("req-1").await.expect("d").status,
        "SUCCEEDED"
    );
}

#[tokio::test]
async fn an_execution_resumes_after_the_process_restarts() {
    let dir = tempfile::tempdir().expect("dir");
    {
        let (_store, engine) = open(&dir);
        engine
            .start_execution("req-1", &input(&["database", "role"]))
            .await
            .expect("start");
    }
    let (store, engine) = open(&dir);
    let t = one_task(&store).await;
    engine
        .send_task_success(t["taskToken"].as_str().expect("t"), &json!({}))
        .await
        .expect("ok");
    drop(engine);
    let engine = WorkflowEngine::new(store.clone(), "provision", PROVISION, &subs()).expect("load");
    let t = one_task(&store).await;
    assert_eq!(t["taskId"], "req-1/role/apply");
    engine
        .send_task_success(t["taskToken"].as_str().expect("t"), &json!({}))
        .await
        .expect("ok");
    assert_eq!(
        engine.describe_execution("req-1").await.expect("d").status,
        "SUCCEEDED"
    );
}

const MAP_WAIT_CHOICE: &str = r#"{
  "StartAt": "Each",
  "States": {
    "Each": {
      "Type": "Map",
      "ItemsPath": "$.items",
      "MaxConcurrency": 2,
      "ItemSelector": {"value.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index", "tag.$": "$.tag"},
      "ItemProcessor": {
        "StartAt": "Work",
        "States": {
          "Work": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": "${Q}", "MessageBody": {"token.$": "$$.Task.Token", "value.$": "$.value"}},
            "ResultSelector": {"doubled.$": "$.doubled"},
            "End": true
          }
        }
      },
      "ResultPath": "$.results",
      "Next": "Pause"
    },
    "Pause": {"Type": "Wait", "Seconds": 30, "Next": "Check"},
    "Check": {
      "Type": "Choice",
      "Choices": [{"Variable": "$.results[0].doubled", "NumericEquals": 2, "Next": "Good"}],
      "Default": "Bad"
    },
    "Good": {"Type": "Succeed", "OutputPath": "$.results"},
    "Bad": {"Type": "Fail", "Error": "Custom.Bad", "Cause": "wrong"}
  }
}"#;

#[tokio::test]
async fn map_wait_and_choice_work_with_bounded_concurrency() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteStore::open(&dir.path().join("paved.db")).expect("open");
    let engine = WorkflowEngine::new(
        store.clone(),
        "m",
        MAP_WAIT_CHOICE,
        &HashMap::from([("Q".to_owned(), "q".to_owned())]),
    )
    .expect("load");
    engine
        .start_execution("x", &json!({"items": [1, 2, 3], "tag": "t"}))
        .await
        .expect("start");
    let mut answered = 0;
    loop {
        let got = take(&store, "q").await;
        if got.is_empty() {
            break;
        }
        assert!(got.len() <= 2, "MaxConcurrency 2 holds: {}", got.len());
        for (_, body) in got {
            let v = body["value"].as_i64().expect("value");
            engine
                .send_task_success(
                    body["token"].as_str().expect("t"),
                    &json!({"doubled": v * 2, "noise": true}),
                )
                .await
                .expect("ok");
            answered += 1;
        }
    }
    assert_eq!(answered, 3);
    assert_eq!(
        engine.describe_execution("x").await.expect("d").status,
        "RUNNING",
        "waiting 30 s"
    );
    engine.fire_timers_at(future(31)).await.expect("timers");
    let done = engine.describe_execution("x").await.expect("d");
    assert_eq!(done.status, "SUCCEEDED");
    assert_eq!(
        done.output,
        Some(json!([{"doubled": 2}, {"doubled": 4}, {"doubled": 6}]))
    );
}

#[test]
fn definitions_outside_the_subset_are_refused_clearly() {
    let load = |text: &str| {
        super::Machine::load(text, &subs())
            .err()
            .unwrap_or_default()
    };
    let parallel =
        r#"{"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [], "End": true}}}"#;
    assert!(load(parallel).contains("Parallel"), "{}", load(parallel));
    let lambda = r#"{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"QueueUrl": "x"}, "End": true}}}"#;
    assert!(load(lambda).contains("lambda:invoke"), "{}", load(lambda));
    let field = r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "Bogus": 1, "End": true}}}"#;
    assert!(load(field).contains("Bogus"), "{}", load(field));
    let intrinsic = r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"x.$": "States.UUID()"}, "End": true}}}"#;
    assert!(
        load(intrinsic).contains("States.UUID"),
        "{}",
        load(intrinsic)
    );
    let next = r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "Next": "Nowhere"}}}"#;
    assert!(load(next).contains("Nowhere"), "{}", load(next));
    let no_token = r#"{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "Parameters": {"QueueUrl": "q", "MessageBody": {}}, "End": true}}}"#;
    assert!(load(no_token).contains("Task.Token"), "{}", load(no_token));
    let missing = super::Machine::load(PROVISION, &HashMap::new())
        .err()
        .unwrap_or_default();
    assert!(missing.contains("TaskQueueUrl"), "{missing}");
    super::Machine::load(PROVISION, &subs()).expect("the shipped definition loads");
}
