//! Ingestion end to end, in process: GitHub's real payloads (@octokit/webhooks-examples,
//! installed by the test command), PagerDuty's v3 format, the batch format, and the refusals.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use events_ingest::signatures::WebhookSecrets;
use events_ingest::{IngestState, router};
use hmac::{Hmac, Mac};
use http::{Request, StatusCode};
use paved_core::catalog::CatalogRepository;
use paved_core::delivery::DeliveryStore;
use paved_core::ports::{
    Condition, Item, Key, Page, SortKeyRange, StoreError, SystemClock, Table, TransactOp,
};
use paved_http::{Authenticator, mint_token};
use serde_json::{Value, json};
use sha2::Sha256;
use tower::ServiceExt;

const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const PAGERDUTY_SECRET: &str = "pagerduty-signing-secret";
const JWT_SECRET: &[u8] = b"ingest-test-secret-ingest-test-secret-0";

struct Harness {
    app: axum::Router,
    events: Arc<DeliveryStore>,
    _dir: tempfile::TempDir,
}

async fn harness(secrets: WebhookSecrets) -> Harness {
    let dir = tempfile::tempdir().expect("dir");
    let table: Arc<dyn Table> =
        Arc::new(paved_sqlite::SqliteStore::open(&dir.path().join("paved.db")).expect("db"));
    let catalog = Arc::new(
        CatalogRepository::load(Arc::clone(&table))
            .await
            .expect("catalog"),
    );
    catalog
        .install_missing(vec![
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
                   "metadata": {"name": "octo"}, "spec": {"type": "team", "children": []}}),
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                   "metadata": {"name": "hello-world", "annotations": {
                       "github.com/project-slug": "Codertocat/Hello-World",
                       "pagerduty.com/service-id": "PF9KMXH"}},
                   "spec": {"type": "service", "lifecycle": "production", "owner": "octo"}}),
        ])
        .await
        .expect("seed");
    let events = Arc::new(DeliveryStore::new(Arc::clone(&table)));
    let app = router(IngestState {
        events: Arc::clone(&events),
        catalog,
        secrets,
        auth: Arc::new(Authenticator::hs256(JWT_SECRET)),
        clock: Arc::new(SystemClock),
    });
    Harness {
        app,
        events,
        _dir: dir,
    }
}

fn configured() -> WebhookSecrets {
    WebhookSecrets {
        github: Some(GITHUB_SECRET.into()),
        gitlab: Some("gitlab-token".into()),
        pagerduty: Some(PAGERDUTY_SECRET.into()),
    }
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn github_request(
    event: &str,
    delivery: &str,
    body: &[u8],
    signature: Option<String>,
) -> Request<Body> {
    let mut request = Request::post("/v1/events/github")
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery);
    if let Some(signature) = signature {
        request = request.header("x-hub-signature-256", signature);
    }
    request.body(Body::from(body.to_vec())).expect("request")
}

async fn github(
    app: &axum::Router,
    event: &str,
    delivery: &str,
    payload: &Value,
) -> (StatusCode, Value) {
    let body = serde_json::to_vec(payload).expect("json");
    let signature = format!("sha256={}", hmac_hex(GITHUB_SECRET, &body));
    send(app, github_request(event, delivery, &body, Some(signature))).await
}

/// GitHub's examples by event name.
fn octokit_examples() -> Vec<(String, Vec<Value>)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/webhook-examples/node_modules/@octokit/webhooks-examples/api.github.com/index.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run scripts/test.sh (npm ci --prefix tests/webhook-examples)",
            path.display()
        )
    });
    let index: Vec<Value> = serde_json::from_str(&text).expect("index.json");
    index
        .into_iter()
        .map(|e| {
            (
                e["name"].as_str().expect("name").to_owned(),
                e["examples"].as_array().cloned().unwrap_or_default(),
            )
        })
        .collect()
}

fn example(name: &str, pick: impl Fn(&Value) -> bool) -> Value {
    octokit_examples()
        .into_iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, examples)| examples.into_iter().find(|e| pick(e)))
        .unwrap_or_else(|| panic!("an example of {name}"))
}

#[tokio::test]
async fn every_github_example_is_answered_without_a_server_error() {
    let h = harness(configured()).await;
    let used = [
        "push",
        "pull_request",
        "deployment",
        "deployment_status",
        "issues",
        "ping",
    ];
    let mut count = 0;
    for (name, examples) in octokit_examples() {
        for (i, payload) in examples.iter().enumerate() {
            let (status, body) = github(&h.app, &name, &format!("{name}-{i}"), payload).await;
            assert!(
                status == StatusCode::ACCEPTED || status == StatusCode::OK,
                "{name} #{i}: {status} {body}"
            );
            if !used.contains(&name.as_str()) {
                assert_eq!(body["status"], "ignored", "{name}");
                assert!(body["reason"].as_str().is_some_and(|r| r.contains(&name)));
            }
            count += 1;
        }
    }
    assert!(count > 100, "{count} examples");
}

#[tokio::test]
async fn a_push_then_a_production_deployment_ships_the_pushed_commits() {
    let h = harness(configured()).await;
    let push = example("push", |e| e["ref"] == "refs/heads/master");
    let (status, body) = github(&h.app, "push", "p-1", &push).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["recorded"]["changes"], 1);
    let deployed = example("deployment_status", |e| {
        e["deployment_status"]["state"] == "success"
    });
    let (status, body) = github(&h.app, "deployment_status", "ds-1", &deployed).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["recorded"]["deployments"], 1);

    let stored = h.events.load().await.expect("load");
    assert_eq!(stored.deployments.len(), 1);
    let deployment = &stored.deployments[0];
    assert_eq!(deployment.service, "hello-world");
    assert_eq!(deployment.environment, "production");
    assert_eq!(deployment.status, "success");
    let pushed: Vec<&str> = push["commits"]
        .as_array()
        .expect("commits")
        .iter()
        .map(|c| c["id"].as_str().expect("id"))
        .collect();
    assert_eq!(deployment.changes, pushed);
    assert_eq!(stored.changes.len(), pushed.len());
    // The raw payload is kept for replay.
    assert_eq!(
        h.events.delivery("github", "p-1").await.expect("raw"),
        Some(push)
    );

    // A redelivery is recognised and changes nothing.
    let (status, body) = github(&h.app, "deployment_status", "ds-1", &deployed).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "duplicate");
    assert_eq!(h.events.load().await.expect("load").deployments.len(), 1);
}

#[tokio::test]
async fn an_issue_labelled_incident_is_an_incident() {
    let h = harness(configured()).await;
    let mut issue = example("issues", |e| e["action"] == "opened");
    let (status, body) = github(&h.app, "issues", "i-0", &issue).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["status"], "ignored");
    issue["issue"]["labels"] = json!([{"name": "Incident", "color": "d73a4a"}]);
    let (status, body) = github(&h.app, "issues", "i-1", &issue).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["recorded"]["incidents"], 1);
    let stored = h.events.load().await.expect("load");
    assert_eq!(stored.incidents[0].service.as_deref(), Some("hello-world"));
    assert!(
        stored.incidents[0]
            .incident_id
            .starts_with("github:Codertocat/Hello-World#")
    );
}

#[tokio::test]
async fn unsigned_wrongly_signed_unconfigured_and_malformed_deliveries_are_refused() {
    let h = harness(configured()).await;
    let body = br#"{"zen":"Design for failure."}"#;
    let (status, problem) = send(&h.app, github_request("ping", "x-1", body, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(problem["code"], "unauthenticated");
    let wrong = format!("sha256={}", hmac_hex("not the secret", body));
    let (status, _) = send(&h.app, github_request("ping", "x-2", body, Some(wrong))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let unconfigured = harness(WebhookSecrets::default()).await;
    let good = format!("sha256={}", hmac_hex(GITHUB_SECRET, body));
    let (status, problem) = send(
        &unconfigured.app,
        github_request("ping", "x-3", body, Some(good)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("PAVED_GITHUB_WEBHOOK_SECRET")),
        "{problem}"
    );

    let broken = b"{not json";
    let signed = format!("sha256={}", hmac_hex(GITHUB_SECRET, broken));
    let (status, problem) = send(&h.app, github_request("push", "x-4", broken, Some(signed))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["code"], "malformed_payload");
    let (status, problem) = github(&h.app, "push", "x-5", &json!({"ref": 7})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["code"], "malformed_payload");
    // Nothing was kept of the refused deliveries.
    assert_eq!(h.events.delivery("github", "x-4").await.expect("get"), None);
}

/// PagerDuty's v3 webhook format (developer.pagerduty.com, "V3 Webhooks": incident events).
fn pagerduty_event(id: &str, event_type: &str, occurred_at: &str) -> Value {
    json!({"event": {
        "id": id,
        "event_type": event_type,
        "resource_type": "incident",
        "occurred_at": occurred_at,
        "agent": {"html_url": "https://acme.pagerduty.com/users/PLH1HKV", "id": "PLH1HKV",
                  "self": "https://api.pagerduty.com/users/PLH1HKV", "summary": "Tenex Engineer",
                  "type": "user_reference"},
        "client": null,
        "data": {
            "id": "PGR0VU2",
            "type": "incident",
            "self": "https://api.pagerduty.com/incidents/PGR0VU2",
            "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
            "number": 2,
            "status": if event_type == "incident.resolved" { "resolved" } else { "triggered" },
            "incident_key": "d3640fbd41094207a1c11e58e46b1662",
            "created_at": "2020-04-09T15:16:27Z",
            "title": "A little bump in the road",
            "service": {"html_url": "https://acme.pagerduty.com/services/PF9KMXH", "id": "PF9KMXH",
                        "self": "https://api.pagerduty.com/services/PF9KMXH", "summary": "API Service",
                        "type": "service_reference"},
            "assignees": [], "escalation_policy": null, "teams": [], "priority": null,
            "urgency": "high", "conference_bridge": null, "resolve_reason": null
        }
    }})
}

async fn pagerduty(app: &axum::Router, payload: &Value, secret: &str) -> (StatusCode, Value) {
    let body = serde_json::to_vec(payload).expect("json");
    let request = Request::post("/v1/events/pagerduty")
        .header("content-type", "application/json")
        .header(
            "x-pagerduty-signature",
            format!("v1={}", hmac_hex(secret, &body)),
        )
        .body(Body::from(body))
        .expect("request");
    send(app, request).await
}

#[tokio::test]
async fn pagerduty_trigger_and_resolution_make_one_incident() {
    let h = harness(configured()).await;
    let triggered = pagerduty_event(
        "01BRTEQMXKCIXFS5VLWZBT3L7M",
        "incident.triggered",
        "2020-04-09T15:16:27.223Z",
    );
    let (status, body) = pagerduty(&h.app, &triggered, PAGERDUTY_SECRET).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let resolved = pagerduty_event(
        "01BRTEQMXKCIXFS5VLWZBT3L7N",
        "incident.resolved",
        "2020-04-09T16:46:27.100Z",
    );
    let (status, _) = pagerduty(&h.app, &resolved, PAGERDUTY_SECRET).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let acknowledged = pagerduty_event(
        "01BRTEQMXKCIXFS5VLWZBT3L7P",
        "incident.acknowledged",
        "2020-04-09T15:20:00Z",
    );
    let (status, body) = pagerduty(&h.app, &acknowledged, PAGERDUTY_SECRET).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["status"], "ignored");
    let (status, _) = pagerduty(&h.app, &triggered, "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let stored = h.events.load().await.expect("load");
    assert_eq!(stored.incidents.len(), 1);
    let incident = &stored.incidents[0];
    assert_eq!(incident.incident_id, "pagerduty:PGR0VU2");
    assert_eq!(incident.service.as_deref(), Some("hello-world"));
    assert_eq!(
        incident.created_at.to_rfc3339(),
        "2020-04-09T15:16:27+00:00"
    );
    assert_eq!(
        incident.resolved_at.map(|t| t.to_rfc3339()),
        Some("2020-04-09T16:46:27.100+00:00".into())
    );
}

#[tokio::test]
async fn the_batch_format_needs_a_token_and_is_idempotent() {
    let h = harness(configured()).await;
    let batch = json!({
        "deployments": [{"deploy_id": "d-1", "service": "hello-world", "environment": "production",
                         "status": "success", "finished_at": "2026-11-20T10:00:00+01:00",
                         "changes": ["abc"]}],
        "changes": [{"sha": "abc", "service": "hello-world", "authored_at": "2026-11-20T08:00:00Z"}],
        "incidents": []
    });
    let token = mint_token(JWT_SECRET, "ci-bot", &[], 600).expect("token");
    let post = |body: Vec<u8>, auth: bool| {
        let mut r = Request::post("/v1/events")
            .header("content-type", "application/json")
            .header("idempotency-key", "run-42");
        if auth {
            r = r.header("authorization", format!("Bearer {token}"));
        }
        r.body(Body::from(body)).expect("request")
    };
    let body = serde_json::to_vec(&batch).expect("json");
    let (status, _) = send(&h.app, post(body.clone(), false)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, answer) = send(&h.app, post(body.clone(), true)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(
        answer["recorded"],
        json!({"deployments": 1, "changes": 1, "incidents": 0})
    );
    let (status, answer) = send(&h.app, post(body, true)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["status"], "duplicate");
    let stored = h.events.load().await.expect("load");
    // The offset is converted, not dropped.
    assert_eq!(
        stored.deployments[0].finished_at.to_rfc3339(),
        "2026-11-20T09:00:00+00:00"
    );
    let (status, problem) = send(
        &h.app,
        post(br#"{"deployments": [{"service": 1}]}"#.to_vec(), true),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["code"], "malformed_payload");
    let (status, _) = send(&h.app, post(br#"{"surprise": []}"#.to_vec(), true)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .expect("fixture")
}

async fn gitlab(app: &axum::Router, token: &str, uuid: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let request = Request::post("/v1/events/gitlab")
        .header("content-type", "application/json")
        .header("x-gitlab-token", token)
        .header("x-gitlab-event-uuid", uuid)
        .body(Body::from(body))
        .expect("request");
    send(app, request).await
}

/// GitLab's documented webhook examples (docs.gitlab.com, "Webhook events"), with the project
/// path set to the catalog's annotation.
#[tokio::test]
async fn gitlab_push_merge_deployment_and_incident() {
    let h = harness(configured()).await;
    let (status, body) = gitlab(&h.app, "gitlab-token", "u-1", fixture("gitlab-push.json")).await;
    // mike/diaspora is not in the catalog yet: used by nobody, said so.
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["status"], "ignored");
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("gitlab.com/project-slug"))
    );

    let h = harness_with_gitlab_project().await;
    for (i, name) in [
        "gitlab-push.json",
        "gitlab-merge-request.json",
        "gitlab-deployment.json",
        "gitlab-issue.json",
    ]
    .iter()
    .enumerate()
    {
        let (status, body) = gitlab(&h.app, "gitlab-token", &format!("g-{i}"), fixture(name)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{name}: {body}");
        assert_eq!(body["status"], "accepted", "{name}: {body}");
    }
    let stored = h.events.load().await.expect("load");
    assert_eq!(stored.deployments.len(), 1);
    let deployment = &stored.deployments[0];
    assert_eq!(deployment.deploy_id, "gitlab-15");
    assert_eq!(
        deployment.finished_at.to_rfc3339(),
        "2021-04-28T19:50:00+00:00"
    );
    // The deployment of da15608 ships both pushed commits; the merge commit (pushed after it
    // in this replay) stays pending.
    assert_eq!(
        deployment.changes,
        [
            "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327",
            "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
        ]
    );
    assert_eq!(stored.incidents.len(), 1);
    assert_eq!(stored.incidents[0].incident_id, "gitlab:mike/diaspora#23");

    let (status, _) = gitlab(&h.app, "wrong-token", "g-9", fixture("gitlab-push.json")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, problem) = gitlab(
        &h.app,
        "gitlab-token",
        "g-10",
        br#"{"object_kind":"push"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["code"], "malformed_payload");
}

async fn harness_with_gitlab_project() -> Harness {
    let h = harness(configured()).await;
    let dir = h._dir.path().join("paved.db");
    let table: Arc<dyn Table> = Arc::new(paved_sqlite::SqliteStore::open(&dir).expect("db"));
    let catalog = Arc::new(
        CatalogRepository::load(Arc::clone(&table))
            .await
            .expect("catalog"),
    );
    catalog
        .install_missing(vec![json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
               "metadata": {"name": "diaspora", "annotations": {"gitlab.com/project-slug": "mike/diaspora"}},
               "spec": {"type": "service", "lifecycle": "production", "owner": "octo"}})])
        .await
        .expect("seed");
    let events = Arc::new(DeliveryStore::new(Arc::clone(&table)));
    let app = router(IngestState {
        events: Arc::clone(&events),
        catalog,
        secrets: configured(),
        auth: Arc::new(Authenticator::hs256(JWT_SECRET)),
        clock: Arc::new(SystemClock),
    });
    Harness {
        app,
        events,
        _dir: h._dir,
    }
}

/// A CDEvent as the spec's examples write them (cdevents.dev, spec v0.4).
fn cdevent(id: &str, event_type: &str, subject_id: &str, content: Value, at: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "context": {"version": "0.4.1", "id": id, "source": "/event/source/123",
                    "type": event_type, "timestamp": at},
        "subject": {"id": subject_id, "source": "/event/source/123", "content": content}
    }))
    .expect("json")
}

#[tokio::test]
async fn cdevents_change_merged_then_service_deployed_then_an_incident() {
    let h = harness(configured()).await;
    let token = mint_token(JWT_SECRET, "argo", &[], 600).expect("token");
    let post = |body: Vec<u8>| {
        Request::post("/v1/events/cdevents")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from(body))
            .expect("request")
    };
    let merged = cdevent(
        "271069a8-fc18-44f1-b38f-9d70a1695819",
        "dev.cdevents.change.merged.0.2.0",
        "4fe2a7c",
        json!({"repository": {"id": "Codertocat/Hello-World", "source": "https://github.com"}}),
        "2026-11-20T08:00:00Z",
    );
    let (status, body) = send(&h.app, post(merged)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "accepted");
    let deployed = cdevent(
        "8b36e1c2-7d5e-4c44-9a2b-1e0b6f7f2d11",
        "dev.cdevents.service.deployed.0.2.0",
        "service/hello-world",
        json!({"environment": {"id": "production", "source": "/event/source/123"},
               "artifactId": "pkg:oci/hello-world@sha256%3A0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427"}),
        "2026-11-20T09:30:00Z",
    );
    let (status, _) = send(&h.app, post(deployed.clone())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = send(&h.app, post(deployed)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("duplicate"))
    );
    for (id, kind, at) in [
        (
            "c1",
            "dev.cdevents.incident.detected.0.1.0",
            "2026-11-20T10:00:00Z",
        ),
        (
            "c2",
            "dev.cdevents.incident.resolved.0.1.0",
            "2026-11-20T10:40:00Z",
        ),
    ] {
        let incident = cdevent(
            id,
            kind,
            "incident-123",
            json!({"description": "checkout errors", "environment": {"id": "production"},
                   "service": {"id": "service/hello-world"}}),
            at,
        );
        let (status, body) = send(&h.app, post(incident)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let stored = h.events.load().await.expect("load");
    assert_eq!(stored.deployments.len(), 1);
    assert_eq!(stored.deployments[0].service, "hello-world");
    assert_eq!(stored.deployments[0].changes, ["4fe2a7c"]);
    assert_eq!(stored.incidents.len(), 1);
    assert_eq!(
        stored.incidents[0].resolved_at.map(|t| t.to_rfc3339()),
        Some("2026-11-20T10:40:00+00:00".into())
    );

    let unused = cdevent(
        "c3",
        "dev.cdevents.pipelinerun.started.0.2.0",
        "p-1",
        json!({}),
        "2026-11-20T10:00:00Z",
    );
    let (status, body) = send(&h.app, post(unused)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::ACCEPTED, Some("ignored"))
    );
    let (status, problem) = send(&h.app, post(br#"{"context": {}}"#.to_vec())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["code"], "malformed_payload");
    let unauthenticated = Request::post("/v1/events/cdevents")
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .expect("request");
    let (status, _) = send(&h.app, unauthenticated).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// A table whose next transaction fails, as a crash or an outage mid-delivery would.
struct FailingOnce {
    inner: Arc<dyn Table>,
    fail_next_transaction: AtomicBool,
}

#[async_trait::async_trait]
impl Table for FailingOnce {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.inner.put(item, condition).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        self.inner.delete(key, condition).await
    }
    async fn query(
        &self,
        pk: &str,
        range: &SortKeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        self.inner.query(pk, range, after, limit).await
    }
    async fn transact(&self, ops: Vec<TransactOp>) -> Result<(), StoreError> {
        if self.fail_next_transaction.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Backend("injected outage".into()));
        }
        self.inner.transact(ops).await
    }
    fn max_transaction_ops(&self) -> usize {
        self.inner.max_transaction_ops()
    }
}

#[tokio::test]
async fn a_delivery_that_fails_midway_is_processed_on_the_senders_retry() {
    let h = harness(configured()).await;
    let table: Arc<dyn Table> =
        Arc::new(paved_sqlite::SqliteStore::open(&h._dir.path().join("paved.db")).expect("db"));
    let failing = Arc::new(FailingOnce {
        inner: Arc::clone(&table),
        fail_next_transaction: AtomicBool::new(false),
    });
    let failing_table: Arc<dyn Table> = failing.clone();
    let events = Arc::new(DeliveryStore::new(Arc::clone(&failing_table)));
    let app = router(IngestState {
        events: Arc::clone(&events),
        catalog: Arc::new(
            CatalogRepository::load(Arc::clone(&table))
                .await
                .expect("catalog"),
        ),
        secrets: configured(),
        auth: Arc::new(Authenticator::hs256(JWT_SECRET)),
        clock: Arc::new(SystemClock),
    });
    let push = example("push", |e| e["ref"] == "refs/heads/master");
    assert_eq!(
        github(&app, "push", "p-1", &push).await.0,
        StatusCode::ACCEPTED
    );
    let deployed = example("deployment_status", |e| {
        e["deployment_status"]["state"] == "success"
    });
    failing.fail_next_transaction.store(true, Ordering::SeqCst);
    let (status, problem) = github(&app, "deployment_status", "ds-1", &deployed).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{problem}");
    // Nothing half-written: no deployment, the commits still pending, the delivery forgotten.
    assert!(events.load().await.expect("load").deployments.is_empty());
    assert_eq!(events.delivery("github", "ds-1").await.expect("get"), None);
    // GitHub redelivers: processed once, shipping the commits.
    let (status, body) = github(&app, "deployment_status", "ds-1", &deployed).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let stored = events.load().await.expect("load");
    assert_eq!(stored.deployments.len(), 1);
    assert_eq!(
        stored.deployments[0].changes.len(),
        push["commits"].as_array().map_or(0, Vec::len)
    );
}

/// A JSON body of exactly `n` bytes.
fn padded(n: usize) -> Vec<u8> {
    let frame = br#"{"pad":""}"#.len();
    let mut body = br#"{"pad":""#.to_vec();
    body.resize(n - 2, b'a');
    body.extend_from_slice(br#""}"#);
    assert_eq!(body.len(), n.max(frame));
    body
}

/// The status, the content type and the body of an answer.
async fn send_raw(app: &axum::Router, request: Request<Body>) -> (StatusCode, String, Value) {
    let response = app.clone().oneshot(request).await.expect("response");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        content_type,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn assert_too_large(answer: &(StatusCode, String, Value), limit: usize, route: &str) {
    let (status, content_type, problem) = answer;
    assert_eq!(*status, StatusCode::PAYLOAD_TOO_LARGE, "{route}: {problem}");
    assert_eq!(content_type, "application/problem+json", "{route}");
    assert_eq!(problem["code"], "payload_too_large", "{route}: {problem}");
    assert_eq!(problem["status"], 413, "{route}: {problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&limit.to_string())),
        "{route}: {problem}"
    );
}

#[tokio::test]
async fn each_route_bounds_its_body_before_any_signature_or_parse() {
    use events_ingest::limits;
    let h = harness(configured()).await;
    let token = mint_token(JWT_SECRET, "ci-bot", &[], 600).expect("token");

    // GitHub: the body is bounded before the signature is computed, so an oversized one is a
    // 413 signed, unsigned or wrongly signed; at the limit it is read and verified.
    let over = padded(limits::GITHUB + 1);
    for signature in [
        Some(format!("sha256={}", hmac_hex(GITHUB_SECRET, &over))),
        None,
        Some(format!("sha256={}", "0".repeat(64))),
    ] {
        let answer = send_raw(&h.app, github_request("push", "big-1", &over, signature)).await;
        assert_too_large(&answer, limits::GITHUB, "github");
    }
    let at = padded(limits::GITHUB);
    let (status, _, body) = send_raw(&h.app, github_request("ping", "big-2", &at, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let signed = format!("sha256={}", hmac_hex(GITHUB_SECRET, &at));
    let (status, _, body) =
        send_raw(&h.app, github_request("ping", "big-3", &at, Some(signed))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // Streamed without a Content-Length: cut off at the limit all the same.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..=limits::GITHUB / (64 * 1024))
        .map(|_| Ok(vec![b' '; 64 * 1024]))
        .collect();
    let streamed = Request::post("/v1/events/github")
        .header("x-github-event", "push")
        .header("x-github-delivery", "big-4")
        .header("x-hub-signature-256", format!("sha256={}", "0".repeat(64)))
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .expect("request");
    assert_too_large(&send_raw(&h.app, streamed).await, limits::GITHUB, "github");

    // GitLab: the token is a header, checked before anything is read.
    let gitlab_request = |token: &str, body: Vec<u8>| {
        Request::post("/v1/events/gitlab")
            .header("x-gitlab-token", token)
            .header("x-gitlab-event-uuid", "big-5")
            .body(Body::from(body))
            .expect("request")
    };
    let (status, _, _) = send_raw(
        &h.app,
        gitlab_request("wrong-token", padded(limits::GITLAB + 1)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let answer = send_raw(
        &h.app,
        gitlab_request("gitlab-token", padded(limits::GITLAB + 1)),
    )
    .await;
    assert_too_large(&answer, limits::GITLAB, "gitlab");
    let (status, _, body) = send_raw(
        &h.app,
        gitlab_request("gitlab-token", padded(limits::GITLAB)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "malformed_payload");

    // PagerDuty: as GitHub, bounded before the signature.
    let pagerduty_request = |body: Vec<u8>| {
        let signature = format!("v1={}", hmac_hex(PAGERDUTY_SECRET, &body));
        Request::post("/v1/events/pagerduty")
            .header("x-pagerduty-signature", signature)
            .body(Body::from(body))
            .expect("request")
    };
    let answer = send_raw(&h.app, pagerduty_request(padded(limits::PAGERDUTY + 1))).await;
    assert_too_large(&answer, limits::PAGERDUTY, "pagerduty");
    let unsigned = Request::post("/v1/events/pagerduty")
        .body(Body::from(padded(limits::PAGERDUTY + 1)))
        .expect("request");
    assert_too_large(
        &send_raw(&h.app, unsigned).await,
        limits::PAGERDUTY,
        "pagerduty",
    );
    let (status, _, body) = send_raw(&h.app, pagerduty_request(padded(limits::PAGERDUTY))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // CDEvents and the batch: the token first (nothing is read without one), then the bound.
    for (route, limit) in [
        ("/v1/events/cdevents", limits::CDEVENTS),
        ("/v1/events", limits::BATCH),
    ] {
        let request = |auth: bool, body: Vec<u8>| {
            let mut r = Request::post(route).header("content-type", "application/json");
            if auth {
                r = r.header("authorization", format!("Bearer {token}"));
            }
            r.body(Body::from(body)).expect("request")
        };
        let (status, _, _) = send_raw(&h.app, request(false, padded(limit + 1))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{route}");
        assert_too_large(
            &send_raw(&h.app, request(true, padded(limit + 1))).await,
            limit,
            route,
        );
        let (status, _, body) = send_raw(&h.app, request(true, padded(limit))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{route}: {body}");
        assert_eq!(body["code"], "malformed_payload", "{route}");
    }
    // Nothing of the refused bodies was kept.
    assert_eq!(h.events.load().await.expect("load").changes.len(), 0);
    for id in ["big-1", "big-4"] {
        assert!(!h.events.is_recorded("github", id).await.expect("get"));
    }
}

/// A table on which the process "crashes" after a delivery's rows and before its id: the
/// next `fail` puts of a delivery id fail (nothing after them in the request runs).
struct CrashBeforeTheId {
    inner: Arc<dyn Table>,
    fail: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Table for CrashBeforeTheId {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        if item.key.pk.starts_with("EVENTS#DELIVERY#")
            && self
                .fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(StoreError::Backend("the process died here".into()));
        }
        self.inner.put(item, condition).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        self.inner.delete(key, condition).await
    }
    async fn query(
        &self,
        pk: &str,
        range: &SortKeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        self.inner.query(pk, range, after, limit).await
    }
    async fn transact(&self, ops: Vec<TransactOp>) -> Result<(), StoreError> {
        self.inner.transact(ops).await
    }
    fn max_transaction_ops(&self) -> usize {
        self.inner.max_transaction_ops()
    }
}

#[tokio::test]
async fn a_crash_between_the_rows_and_the_delivery_id_loses_nothing_and_counts_once() {
    let h = harness(configured()).await;
    let table: Arc<dyn Table> =
        Arc::new(paved_sqlite::SqliteStore::open(&h._dir.path().join("paved.db")).expect("db"));
    let crashing = Arc::new(CrashBeforeTheId {
        inner: Arc::clone(&table),
        fail: std::sync::atomic::AtomicUsize::new(0),
    });
    let crashing_table: Arc<dyn Table> = crashing.clone();
    let events = Arc::new(DeliveryStore::new(Arc::clone(&crashing_table)));
    let app = router(IngestState {
        events: Arc::clone(&events),
        catalog: Arc::new(
            CatalogRepository::load(Arc::clone(&table))
                .await
                .expect("catalog"),
        ),
        secrets: configured(),
        auth: Arc::new(Authenticator::hs256(JWT_SECRET)),
        clock: Arc::new(SystemClock),
    });
    let push = example("push", |e| e["ref"] == "refs/heads/master");
    let pushed: Vec<String> = push["commits"]
        .as_array()
        .expect("commits")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect();
    assert!(!pushed.is_empty());
    let deployed = example("deployment_status", |e| {
        e["deployment_status"]["state"] == "success"
    });

    // The push's rows are written, then the process dies before its id is recorded.
    crashing.fail.store(1, Ordering::SeqCst);
    let (status, _) = github(&app, "push", "p-1", &push).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!events.is_recorded("github", "p-1").await.expect("get"));
    // The same for the production deployment that ships the commits.
    crashing.fail.store(1, Ordering::SeqCst);
    let (status, _) = github(&app, "deployment_status", "ds-1", &deployed).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let stored = events.load().await.expect("load");
    assert_eq!(stored.deployments.len(), 1);
    assert_eq!(stored.deployments[0].changes, pushed);

    // Both are redelivered (the deployment first): processed, to the same end.
    let (status, body) = github(&app, "deployment_status", "ds-1", &deployed).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = github(&app, "push", "p-1", &push).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let stored = events.load().await.expect("load");
    assert_eq!(stored.deployments.len(), 1);
    // The replayed deployment did not lose the commits it shipped.
    assert_eq!(stored.deployments[0].changes, pushed);
    let mut shas: Vec<&str> = stored.changes.iter().map(|c| c.sha.as_str()).collect();
    shas.sort_unstable();
    let mut expected: Vec<&str> = pushed.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(shas, expected, "each pushed commit is one change row");
    // Now recorded: a third copy of either is a duplicate.
    for (event, id, payload) in [
        ("push", "p-1", &push),
        ("deployment_status", "ds-1", &deployed),
    ] {
        let (status, body) = github(&app, event, id, payload).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("duplicate"))
        );
    }

    // The replayed push did not make the shipped commits pending again: the next production
    // deployment ships nothing.
    let mut next = deployed.clone();
    next["deployment"]["id"] = json!(424242);
    next["deployment_status"]["created_at"] = json!("2030-01-01T00:00:00Z");
    let (status, body) = github(&app, "deployment_status", "ds-2", &next).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let stored = events.load().await.expect("load");
    assert_eq!(stored.deployments.len(), 2);
    let later = stored
        .deployments
        .iter()
        .find(|d| d.deploy_id == "github-424242")
        .expect("the next deployment");
    assert!(later.changes.is_empty(), "{:?}", later.changes);
}
