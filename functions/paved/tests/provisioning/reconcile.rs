//! The reconciliation loop end to end on the embedded backend, with an in-memory test driver
//! whose "provider" a test can change by hand: drift is observed and reported, ignored fields
//! never are, `enforce` repairs once however many reconcilers race, an outage shows
//! `Synced=Unknown` (never false drift) and pauses the provider, and a resource being
//! deprovisioned is left alone. The real drivers' drift and repairs are in
//! `shared/drivers/tests`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use paved_core::provisioning::Driver;
use serde_json::{Value, json};

use crate::harness::{
    App, Behaviour, TestDriver, admin, alice, config, request, start_with, template,
};

/// A platform (no background loops: the test pumps the queues) with one test driver whose
/// template asks for `policy`.
async fn platform(kind: &'static str, policy: &str, extra: &str) -> (App, Arc<TestDriver>) {
    let driver = TestDriver::new(kind, &["one", "two"], &[("one", Behaviour::Succeed)]);
    let dir = tempfile::tempdir().expect("dir");
    let mut c = config(dir.path());
    c.extra_drivers = vec![Arc::clone(&driver) as Arc<dyn Driver>];
    let app = start_with(dir, c, false).await;
    let yaml = format!(
        "{}  reconcile:\n    managementPolicy: {policy}\n    intervalSeconds: 60\n{extra}",
        template(kind, &["one", "two"])
    );
    let (status, body) = app.import(&yaml).await;
    assert_eq!(status, 200, "{body}");
    (app, driver)
}

/// Submits a resource and pumps until it is READY.
pub(crate) async fn ready(app: &App, kind: &str, name: &str) -> String {
    let id = app.submit(request(kind, name, "development")).await;
    for _ in 0..200 {
        app.pump_once().await;
        let (_, r) = app.get(&format!("/v1/requests/{id}"), &admin()).await;
        if r["status"] == "READY" {
            return id;
        }
        assert_ne!(r["status"], "FAILED", "{r:#}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{id} did not become READY");
}

/// Asks for an observation and runs it.
pub(crate) async fn reconcile(app: &App, id: &str) -> Value {
    let (status, body) = app
        .post(
            &format!("/v1/resources/{id}/reconcile"),
            &alice(),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    for _ in 0..5 {
        app.pump_once().await;
    }
    resource(app, id).await
}

pub(crate) async fn resource(app: &App, id: &str) -> Value {
    let (status, body) = app.get(&format!("/v1/resources/{id}"), &alice()).await;
    assert_eq!(status, 200, "{body}");
    body
}

pub(crate) fn condition<'a>(r: &'a Value, kind: &str) -> &'a Value {
    r["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} condition: {r:#}"))
}

pub(crate) fn drift_paths(r: &Value) -> Vec<String> {
    r["drift"]
        .as_array()
        .expect("drift")
        .iter()
        .map(|d| d["path"].as_str().expect("path").to_owned())
        .collect()
}

#[tokio::test]
async fn observe_reports_drift_field_by_field_and_never_an_ignored_field() {
    let (app, driver) = platform("widget", "observe", "    ignoreFields: [tags.*]\n").await;
    let id = ready(&app, "widget", "widget-one").await;
    let r = reconcile(&app, &id).await;
    assert_eq!(condition(&r, "Synced")["status"], "True", "{r:#}");
    assert_eq!(condition(&r, "Ready")["status"], "True", "{r:#}");
    assert!(r["lastObservedAt"].is_string(), "{r:#}");

    driver.drifted.lock().insert(
        "widget-one".into(),
        vec![
            ("config.size".into(), json!(3), json!(7)),
            ("tags.team".into(), json!("a"), json!("b")),
        ],
    );
    let r = reconcile(&app, &id).await;
    let synced = condition(&r, "Synced");
    assert_eq!(synced["status"], "False", "{r:#}");
    assert_eq!(synced["reason"], "Drifted");
    assert!(synced["lastTransitionTime"].is_string());
    assert_eq!(drift_paths(&r), ["config.size"], "tags.* is ignored: {r:#}");
    assert_eq!(r["drift"][0]["desired"], 3);
    assert_eq!(r["drift"][0]["actual"], 7);
    let events: Vec<&str> = r["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(events, ["drift_detected"], "{r:#}");
    // Observe never repairs: the driver applied each step once, at provisioning.
    assert_eq!(driver.applies("widget-one", "one"), 1);

    // The listing's filters find it, and only it.
    let (status, list) = app.get("/v1/resources?drifted=true", &alice()).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list["items"].as_array().expect("items").len(),
        1,
        "{list:#}"
    );
    let (_, synced) = app
        .get("/v1/resources?synced=true&type=widget", &alice())
        .await;
    assert_eq!(
        synced["items"].as_array().expect("items").len(),
        0,
        "{synced:#}"
    );
    let (status, bad) = app.get("/v1/resources?synced=maybe", &alice()).await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("invalid_query")),
        "{bad}"
    );

    // Ignoring the field by PATCH clears the drift at once, and the next observation agrees.
    let (status, patched) = app
        .patch(
            &format!("/v1/resources/{id}"),
            &alice(),
            &json!({"ignoreFields": ["tags.*", "config.size"]}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    let r = reconcile(&app, &id).await;
    assert_eq!(condition(&r, "Synced")["status"], "True", "{r:#}");
    assert!(drift_paths(&r).is_empty());
}

#[tokio::test]
async fn enforce_repairs_drift_and_recreates_a_deleted_resource_once() {
    let (app, driver) = platform("gadget", "enforce", "").await;
    let id = ready(&app, "gadget", "gadget-one").await;
    driver.drifted.lock().insert(
        "gadget-one".into(),
        vec![("config.size".into(), json!(3), json!(9))],
    );
    let r = reconcile(&app, &id).await;
    assert_eq!(condition(&r, "Synced")["status"], "True", "{r:#}");
    assert_eq!(condition(&r, "Synced")["reason"], "Repaired");
    assert_eq!(
        driver.applies("gadget-one", "one"),
        2,
        "one repair re-applied each step once"
    );
    assert_eq!(driver.copies("gadget-one", "one"), 1, "nothing made twice");

    // Deleted out of band: recreated under its own name.
    driver.created.lock().remove("gadget-one/one");
    let r = reconcile(&app, &id).await;
    assert_eq!(condition(&r, "Synced")["status"], "True", "{r:#}");
    assert_eq!(driver.copies("gadget-one", "one"), 1);
    let history: Vec<&str> = r["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(history, ["repaired", "recreated"], "{r:#}");
    // Repairs are events in the request's log.
    let (_, req) = app.get(&format!("/v1/requests/{id}"), &admin()).await;
    let repaired = req["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event"] == "repaired")
        .count();
    assert_eq!(repaired, 2, "{req:#}");
}

#[tokio::test]
async fn two_reconcilers_at_once_make_one_repair() {
    let (app, driver) = platform("gizmo", "enforce", "").await;
    let id = ready(&app, "gizmo", "gizmo-one").await;
    driver.drifted.lock().insert(
        "gizmo-one".into(),
        vec![("config.size".into(), json!(3), json!(9))],
    );
    // Two observe tasks for the same resource, run by two workers at once.
    for _ in 0..2 {
        let (status, body) = app
            .post(
                &format!("/v1/resources/{id}/reconcile"),
                &alice(),
                &json!({}),
                None,
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }
    // Two workers poll at once; each message's batch runs concurrently too.
    let worker = Arc::clone(&app.platform.worker);
    let q = app.queue();
    let binding = provision_worker::embedded::QueueBinding::new(
        paved_workflow::TASK_QUEUE,
        paved_workflow::TASK_DEAD_LETTER_QUEUE,
        5,
    );
    let (a, b) = tokio::join!(
        provision_worker::embedded::poll_once(q.as_ref(), &worker, &binding),
        provision_worker::embedded::poll_once(q.as_ref(), &worker, &binding),
    );
    let _ = (a, b);
    for _ in 0..10 {
        app.pump_once().await;
    }
    let r = resource(&app, &id).await;
    assert_eq!(condition(&r, "Synced")["status"], "True", "{r:#}");
    assert_eq!(
        driver.applies("gizmo-one", "one"),
        2,
        "provisioning once, one repair: {r:#}"
    );
    let repairs = r["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|e| e["event"] == "repaired")
        .count();
    assert_eq!(repairs, 1, "{r:#}");
}

#[tokio::test]
async fn an_outage_opens_the_breaker_pauses_the_provider_and_reads_unknown_not_drift() {
    let (app, driver) = platform("doohickey", "enforce", "").await;
    let id = ready(&app, "doohickey", "doohickey-one").await;
    driver.outage.store(true, Ordering::SeqCst);
    for _ in 0..7 {
        reconcile(&app, &id).await;
    }
    let calls = driver.observations.load(Ordering::SeqCst);
    let r = resource(&app, &id).await;
    let synced = condition(&r, "Synced");
    assert_eq!(synced["status"], "Unknown", "{r:#}");
    assert_eq!(synced["reason"], "ProviderUnavailable", "{r:#}");
    assert!(drift_paths(&r).is_empty(), "no false drift: {r:#}");
    // The breaker (5 failures) stopped the calls: 7 reconciles, 5 observations.
    assert_eq!(calls, 5, "{r:#}");
    assert_eq!(
        driver.applies("doohickey-one", "one"),
        1,
        "nothing repaired blind"
    );
    // The schedule's tick hands out no slot to a paused provider.
    let report = app
        .platform
        .worker
        .reconciler()
        .expect("reconciler")
        .tick()
        .await
        .expect("tick");
    assert_eq!(report.paused, ["doohickey"], "{report:?}");
}

#[tokio::test]
async fn a_resource_being_deprovisioned_is_left_alone() {
    let (app, driver) = platform("thingamajig", "enforce", "").await;
    let id = ready(&app, "thingamajig", "thing-one").await;
    driver.drifted.lock().insert(
        "thing-one".into(),
        vec![("config.size".into(), json!(3), json!(9))],
    );
    // Ask for the observation, then deprovision before it runs.
    let (status, _) = app
        .post(
            &format!("/v1/resources/{id}/reconcile"),
            &alice(),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let before = driver.observations.load(Ordering::SeqCst);
    let (status, body) = app.delete(&format!("/v1/resources/{id}"), &alice()).await;
    assert_eq!(status, 202, "{body}");
    // Run the observe task alone, before the delete task.
    let r = app
        .pump_only(
            |m| m["kind"] == "observe",
            &id,
            |r| r["status"] == "DEPROVISIONING",
        )
        .await;
    assert_eq!(r["status"], "DEPROVISIONING");
    for _ in 0..3 {
        app.pump_once().await;
    }
    assert_eq!(
        driver.observations.load(Ordering::SeqCst),
        before,
        "no observation"
    );
    assert_eq!(driver.applies("thing-one", "one"), 1, "no repair");
}
