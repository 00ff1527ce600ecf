//! Leaks end to end on the embedded backend: what carries paved's marker but has no live
//! request is reported by the scan the tick starts, to admins and to the team its request was
//! for, never removed by the loop; an admin adopts one (its request READY and reconciled
//! again) or deletes it (through the driver). Requests here end "without their undo" (the
//! record says DELETED, the provider still has the thing), as after a crash or a deletion
//! that never reached the provider. The real drivers' inventories are in `leaks_real`.

use std::sync::Arc;
use std::time::Duration;

use paved_core::ports::SystemClock;
use paved_core::provisioning::Driver;
use paved_core::requests::{RequestRepository, RequestStatus};
use serde_json::{Value, json};

use crate::harness::{App, Behaviour, TestDriver, admin, alice, config, start_with, template};
use crate::reconcile::ready;

/// Ends request `id` as DELETED in the platform's records only: what it made stays on the
/// provider, marked with its id.
pub(crate) async fn end_without_undo(app: &App, id: &str) {
    let requests = RequestRepository::new(
        Arc::clone(&app.platform.backend.table),
        Arc::new(SystemClock),
    );
    requests
        .update(id, |r, _| {
            r.status = RequestStatus::Deleted;
            Ok(())
        })
        .await
        .expect("end the request");
}

/// Runs a leak scan of `provider` to its end and returns the leaks admins see.
pub(crate) async fn scan(app: &App, provider: &str) -> Vec<Value> {
    let reconciler = app.platform.worker.reconciler().expect("reconciler");
    reconciler
        .request_leak_scan(provider)
        .await
        .expect("queue a scan");
    pump_for(app, Duration::from_secs(3)).await;
    leaks(app, &admin(), "").await
}

pub(crate) async fn pump_for(app: &App, how_long: Duration) {
    let until = std::time::Instant::now() + how_long;
    while std::time::Instant::now() < until {
        app.pump_once().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET /v1/resources?leaked=true&<query>` as `token`, every page.
pub(crate) async fn leaks(app: &App, token: &str, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, body) = app
            .get(
                &format!("/v1/resources?leaked=true&limit=2{query}{cursor}"),
                token,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        out.extend(body["items"].as_array().expect("items").iter().cloned());
        match body["nextCursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

/// The leaks whose name is `name`.
pub(crate) fn named<'a>(leaks: &'a [Value], name: &str) -> Vec<&'a Value> {
    leaks.iter().filter(|l| l["name"] == name).collect()
}

/// An admin action on a leak as `token`: `adopt` (POST .../adopt) or `delete` (DELETE).
pub(crate) async fn act(app: &App, verb: &str, leak_id: &str, token: &str) -> (u16, Value) {
    match verb {
        "adopt" => {
            app.post(
                &format!("/v1/resources/{leak_id}/adopt"),
                token,
                &json!({}),
                None,
            )
            .await
        }
        "delete" => app.delete(&format!("/v1/resources/{leak_id}"), token).await,
        other => panic!("no leak action {other}"),
    }
}

/// `verb` on the leak as `token` is refused with `status` and `code`; the problem's body.
async fn refused(
    app: &App,
    verb: &str,
    leak_id: &str,
    token: &str,
    status: u16,
    code: &str,
) -> Value {
    let (got, body) = act(app, verb, leak_id, token).await;
    assert_eq!(
        (got, body["code"].as_str()),
        (status, Some(code)),
        "{verb}: {body}"
    );
    body
}

/// A platform with one test driver, observed and scanned at `rate` calls per second.
async fn platform(kind: &'static str, rate: f64) -> (App, Arc<TestDriver>) {
    let driver = TestDriver::new(kind, &["one", "two"], &[("one", Behaviour::Succeed)]);
    let dir = tempfile::tempdir().expect("dir");
    let mut c = config(dir.path());
    c.extra_drivers = vec![Arc::clone(&driver) as Arc<dyn Driver>];
    c.worker.reconcile.default_rate = rate;
    let app = start_with(dir, c, false).await;
    let (status, body) = app.import(&template(kind, &["one", "two"])).await;
    assert_eq!(status, 200, "{body}");
    (app, driver)
}

#[tokio::test]
async fn leaks_are_reported_by_the_scheduled_scan_and_only_admins_adopt_or_delete_them() {
    let (app, driver) = platform("gizmo", 200.0).await;
    let live = ready(&app, "gizmo", "live-one").await;
    let adopted = ready(&app, "gizmo", "adopt-me").await;
    let deleted = ready(&app, "gizmo", "delete-me").await;
    let taken = ready(&app, "gizmo", "taken-one").await;
    for id in [&adopted, &deleted, &taken] {
        end_without_undo(&app, id).await;
    }
    // The name is free again, and a new request takes it (finding the old thing there).
    let holder = ready(&app, "gizmo", "taken-one").await;
    // Marked by a request this platform never had (another installation's).
    driver
        .markers
        .lock()
        .insert("stranger/one".into(), "req-of-another-paved".into());

    // The tick starts the scan (due at once, then a day later), and pumping runs its pages.
    let reconciler = app.platform.worker.reconciler().expect("reconciler");
    let first = reconciler.tick().await.expect("tick");
    assert!(first.scans.iter().any(|p| p == "gizmo"), "{first:?}");
    let second = reconciler.tick().await.expect("tick");
    assert!(
        !second.scans.iter().any(|p| p == "gizmo"),
        "one scan a day: {second:?}"
    );
    pump_for(&app, Duration::from_secs(2)).await;

    let all = leaks(&app, &admin(), "").await;
    let mut names: Vec<(String, String)> = all
        .iter()
        .map(|l| {
            (
                format!(
                    "{}/{}",
                    l["name"].as_str().expect("name"),
                    l["kind"].as_str().expect("kind")
                ),
                l["reason"].as_str().expect("reason").to_owned(),
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("adopt-me/one".to_owned(), "requestFinished".to_owned()),
            ("adopt-me/two".into(), "requestFinished".into()),
            ("delete-me/one".into(), "requestFinished".into()),
            ("delete-me/two".into(), "requestFinished".into()),
            ("stranger/one".into(), "unknownRequest".into()),
            ("taken-one/one".into(), "requestFinished".into()),
            ("taken-one/two".into(), "requestFinished".into()),
        ],
        "the live resources are not leaks: {all:#?}"
    );
    assert!(
        all.iter().all(
            |l| l["leaked"] == true && l["id"].as_str().is_some_and(|i| i.starts_with("leak-"))
        )
    );
    let adopt_leak = named(&all, "adopt-me")[0];
    assert_eq!(adopt_leak["requestId"], adopted.as_str());
    assert_eq!(adopt_leak["requestStatus"], "DELETED");
    assert_eq!(adopt_leak["owner"], "group:default/team-a");

    // The team sees its own requests' leaks, not another installation's; other teams none.
    let team = leaks(&app, &alice(), "").await;
    assert_eq!(team.len(), 6, "{team:#?}");
    let outsider = crate::harness::token("eve", &["team-z"]);
    assert!(leaks(&app, &outsider, "").await.is_empty());
    assert_eq!(
        leaks(&app, &admin(), "&type=gizmo&owner=team-a")
            .await
            .len(),
        6
    );
    let (status, body) = app
        .get("/v1/resources?leaked=true&drifted=true", &admin())
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_query")),
        "{body}"
    );
    let stranger = named(&all, "stranger")[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (status, body) = app
        .get(&format!("/v1/resources/{stranger}"), &outsider)
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app
        .get(&format!("/v1/resources/{stranger}"), &admin())
        .await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (200, Some("unknownRequest")),
        "{body}"
    );

    // Only admins act, and only on a leak of a request of theirs.
    let adopt_id = adopt_leak["id"].as_str().expect("id").to_owned();
    for verb in ["adopt", "delete"] {
        refused(&app, verb, &adopt_id, &alice(), 403, "forbidden").await;
        refused(&app, verb, &stranger, &admin(), 422, "leak_not_actionable").await;
    }
    assert!(
        driver.markers.lock().contains_key("stranger/one"),
        "left alone"
    );

    // A name another live request holds now is not adopted back.
    let taken_leak = named(&all, "taken-one")[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let body = refused(&app, "adopt", &taken_leak, &admin(), 422, "name_taken").await;
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains(&holder)),
        "{body}"
    );

    // Adopted: READY again, reconciled, and its leaks (both parts) forgotten at once.
    let (status, body) = act(&app, "adopt", &adopt_id, &admin()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], adopted.as_str());
    pump_for(&app, Duration::from_secs(1)).await;
    let (_, r) = app.get(&format!("/v1/requests/{adopted}"), &admin()).await;
    assert_eq!(r["status"], "READY", "{r:#}");
    assert!(
        r["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["message"].as_str().is_some_and(|m| m.contains("adopted"))),
        "{r:#}"
    );
    let (status, r) = app.get(&format!("/v1/resources/{adopted}"), &alice()).await;
    assert_eq!(status, 200, "{r}");
    assert!(r["lastObservedAt"].is_string(), "observed at once: {r:#}");
    let after = leaks(&app, &admin(), "").await;
    assert!(named(&after, "adopt-me").is_empty(), "{after:#?}");

    // Deleted: through the driver, which removes what the leak's request marked.
    for leak in named(&after, "delete-me") {
        let id = leak["id"].as_str().expect("id");
        let (status, body) = act(&app, "delete", id, &admin()).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(
            body["removal"]["requestedBy"], "user:default/root",
            "{body}"
        );
    }
    pump_for(&app, Duration::from_secs(1)).await;
    assert_eq!(driver.copies("delete-me", "one"), 0);
    assert_eq!(driver.copies("delete-me", "two"), 0);
    let after = leaks(&app, &admin(), "").await;
    assert!(named(&after, "delete-me").is_empty(), "{after:#?}");
    // Nothing else was touched: the live resources, the stranger, the held name.
    assert_eq!(driver.copies("live-one", "one"), 1);
    assert_eq!(driver.copies("taken-one", "one"), 1);
    assert_eq!(named(&after, "stranger").len(), 1);
    let _ = live;
}

#[tokio::test]
async fn a_scan_takes_its_calls_from_the_providers_observation_slots() {
    // At 3 calls per second a page lists 3 things, in one call.
    let (slow, driver) = platform("widget", 3.0).await;
    for i in 0..12 {
        driver
            .markers
            .lock()
            .insert(format!("stray-{i:02}/one"), format!("req-gone-{i}"));
    }
    let before = chrono::Utc::now().timestamp_millis();
    let found = scan(&slow, "widget").await;
    assert_eq!(found.len(), 12, "{found:#?}");
    // Four pages of three, a call each: the provider's next free slot moved 4 × 333 ms on.
    let slots = slow
        .platform
        .backend
        .table
        .get(&paved_core::ports::Key::new("RECONCILE#PROVIDER", "widget"))
        .await
        .expect("get")
        .expect("the provider's slots");
    let next_slot = slots.attrs["nextSlotMs"].as_i64().expect("nextSlotMs");
    assert!(
        next_slot >= before + 4 * 333,
        "the scan took its slots: {} ms ahead",
        next_slot - before
    );
    // A scan that finds fewer sweeps the rest.
    driver
        .markers
        .lock()
        .retain(|k, _| k < &"stray-06".to_owned());
    let found = scan(&slow, "widget").await;
    assert_eq!(found.len(), 6, "{found:#?}");
}

#[tokio::test]
async fn a_scan_without_a_driver_here_or_a_deletion_of_a_gone_leak_is_not_retried_into_the_dlq() {
    let (app, _driver) = platform("sprocket", 200.0).await;
    let reconciler = app.platform.worker.reconciler().expect("reconciler");
    // A provider only another process has a driver for.
    reconciler
        .request_leak_scan("only-elsewhere")
        .await
        .expect("queue a scan");
    let body =
        paved_core::messages::WorkerMessage::RemoveLeak(paved_core::resources::RemoveLeakTask {
            leak_id: "leak-00000000000000000000".into(),
            by: "user:default/root".into(),
        })
        .to_json();
    app.queue()
        .send(
            paved_workflow::TASK_QUEUE,
            paved_core::ports::QueueMessage::new(body),
        )
        .await
        .expect("queue a deletion of a leak that is not there");
    pump_for(&app, Duration::from_millis(500)).await;
    assert!(app.dead_letters().await.is_empty());
    assert!(leaks(&app, &admin(), "").await.is_empty());
}
