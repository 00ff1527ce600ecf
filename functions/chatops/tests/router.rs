//! The chat-ops router and the direct-invocation envelope in process: body limits, Slack
//! timestamps at the extremes, the `reply_to` rules (parsed, exact hosts, no redirects), and
//! the resource commands' answers on a platform with no live resource.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use chatops::slack::signature::SigningSecret;
use chatops::{BODY_LIMIT, ChatopsState, invoke, router};
use http::{Request, StatusCode};
use paved_chat::origins::ChatOrigins;
use paved_core::auth::AccessPolicy;
use paved_core::catalog::CatalogRepository;
use paved_core::delivery::DeliveryStore;
use paved_core::ports::{SystemClock, Table};
use paved_core::scorecards::ScorecardSet;
use paved_core::services::{Reports, RequestsPorts, RequestsService};
use serde_json::{Value, json};
use tower::ServiceExt;

const SECRET: &str = "chatops-router-test-signing-secret";

struct Harness {
    state: ChatopsState,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("dir");
    let store = paved_sqlite::SqliteStore::open(&dir.path().join("paved.db")).expect("db");
    let table: Arc<dyn Table> = Arc::new(store.clone());
    let catalog = Arc::new(
        CatalogRepository::load(Arc::clone(&table))
            .await
            .expect("catalog"),
    );
    catalog
        .install_missing(vec![
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
                   "metadata": {"name": "team-a"}, "spec": {"type": "team", "children": []}}),
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "User",
                   "metadata": {"name": "alice", "annotations": {"slack.com/user-id": "U0ALICE"}},
                   "spec": {"memberOf": ["team-a"]}}),
        ])
        .await
        .expect("seed");
    let state = ChatopsState {
        catalog: Arc::clone(&catalog),
        // Reached only by the resource commands, on a store with no live resource.
        requests: Arc::new(RequestsService::new(
            RequestsPorts {
                table: Arc::clone(&table),
                clock: Arc::new(SystemClock),
                workflow: Arc::new(
                    paved_workflow::WorkflowEngine::provisioning(store.clone()).expect("engine"),
                ),
                queue: Arc::new(store),
                task_queue: "tasks".into(),
                notification_queue: "notifications".into(),
            },
            Arc::clone(&catalog),
            paved_wiring::guardrails::load(None).expect("guardrails"),
            Arc::new(AccessPolicy::new("platform-admins").expect("admins")),
            &[],
            HashMap::new(),
        )),
        reports: Reports::new(Arc::new(DeliveryStore::new(Arc::clone(&table)))),
        signing_secret: SigningSecret::new(SECRET),
        clock: Arc::new(SystemClock),
        origins: Arc::new(ChatOrigins::new(Arc::clone(&table))),
        scorecards: Arc::new(ScorecardSet::default()),
        events: Arc::new(DeliveryStore::new(Arc::clone(&table))),
        slack: chatops::slack_poster(None),
        seen_events: Arc::new(chatops::slack_event_log(Arc::clone(&table))),
    };
    Harness { state, _dir: dir }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        .try_into()
        .expect("seconds fit")
}

/// A request to `path` signed the way Slack signs, at `timestamp`.
fn signed(path: &str, timestamp: &str, body: Vec<u8>) -> Request<Body> {
    let signature = SigningSecret::new(SECRET)
        .expect("secret")
        .sign(timestamp, &body);
    Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", timestamp)
        .header("x-slack-signature", signature)
        .body(Body::from(body))
        .expect("request")
}

async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, String, Value) {
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

/// A slash command's form body, padded with an unused field to exactly `n` bytes.
fn command_body(n: usize) -> Vec<u8> {
    let mut body = b"command=%2Fpaved&text=help&user_id=U0ALICE&response_url=&pad=".to_vec();
    body.resize(n, b'a');
    body
}

#[tokio::test]
async fn both_slack_routes_refuse_a_body_over_the_limit_with_a_413_problem() {
    let h = harness().await;
    let app = router(h.state.clone());
    let ts = now().to_string();
    for path in ["/v1/chatops/slack", "/v1/chatops/slack/events"] {
        // Signed or not: the body is bounded before the signature is computed.
        for request in [
            signed(path, &ts, command_body(BODY_LIMIT + 1)),
            Request::post(path)
                .body(Body::from(command_body(BODY_LIMIT + 1)))
                .expect("request"),
        ] {
            let (status, content_type, problem) = send(&app, request).await;
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}: {problem}");
            assert_eq!(content_type, "application/problem+json", "{path}");
            assert_eq!(problem["code"], "payload_too_large", "{path}: {problem}");
        }
    }
    // At the limit, a signed slash command is answered.
    let (status, _, reply) = send(
        &app,
        signed("/v1/chatops/slack", &ts, command_body(BODY_LIMIT)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert!(
        reply["text"].as_str().is_some_and(|t| !t.is_empty()),
        "{reply}"
    );
}

#[tokio::test]
async fn extreme_slack_timestamps_are_a_401_not_a_panic() {
    let h = harness().await;
    let app = router(h.state.clone());
    for ts in [
        i64::MIN.to_string(),
        (i64::MIN + 1).to_string(),
        i64::MAX.to_string(),
        "-1".to_string(),
        "0".to_string(),
        "99999999999999999999999".to_string(),
        "-99999999999999999999999".to_string(),
    ] {
        for path in ["/v1/chatops/slack", "/v1/chatops/slack/events"] {
            // Correctly signed for the crafted timestamp: only its value is wrong.
            let (status, content_type, problem) =
                send(&app, signed(path, &ts, command_body(200))).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{path} at {ts}: {problem}"
            );
            assert_eq!(content_type, "application/problem+json");
            assert_eq!(problem["code"], "unauthenticated", "{problem}");
        }
    }
}

/// A slash command's form body, as Slack posts it.
fn slash(text: &str) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("command", "/paved")
        .append_pair("text", text)
        .append_pair("user_id", "U0ALICE")
        .append_pair("response_url", "")
        .finish()
        .into_bytes()
}

#[tokio::test]
async fn resource_commands_answer_signed_slash_commands_with_blocks() {
    let h = harness().await;
    let app = router(h.state.clone());
    let ts = now().to_string();
    let ask = |text: &str| signed("/v1/chatops/slack", &ts, slash(text));

    let (status, _, reply) = send(&app, ask("resources")).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["response_type"], "ephemeral", "{reply}");
    assert_eq!(reply["text"], "0 live resources you can see, 0 drifted");
    assert_eq!(
        reply["blocks"][0]["text"]["text"],
        "No live resources you can see."
    );

    let (_, _, reply) = send(&app, ask("reconcile req-0123456789abcdef01234567")).await;
    let text = reply["blocks"][0]["text"]["text"].as_str().unwrap_or("");
    assert!(text.starts_with(":warning:"), "{reply}");
    assert!(
        text.contains("request req-0123456789abcdef01234567 was not found"),
        "{reply}"
    );

    // A bad team is the API's 400, in words; a missing id is the usage, with the list.
    let (_, _, reply) = send(&app, ask("resources component:payments")).await;
    assert!(
        reply["blocks"][0]["text"]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with(":warning:") && t.contains("an owner is a group")),
        "{reply}"
    );
    let (_, _, reply) = send(&app, ask("reconcile")).await;
    assert_eq!(
        reply["blocks"][0]["text"]["text"],
        ":grey_question: usage: /paved reconcile &lt;request-id&gt;"
    );
    assert!(
        reply["blocks"][1]["text"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("/paved resources [team]")),
        "{reply}"
    );
    // An argument past the bound is refused without being repeated back.
    let long = format!("req-{}", "a".repeat(300));
    let (_, _, reply) = send(&app, ask(&format!("reconcile {long}"))).await;
    assert!(
        reply["text"]
            .as_str()
            .is_some_and(|t| t.contains("too long")),
        "{reply}"
    );
    assert!(!reply.to_string().contains(&long), "{reply}");
}

async fn invoke_with(state: &ChatopsState, reply_to: &str) -> Value {
    invoke(
        state,
        json!({"command": "help", "args": [], "actor": "alice", "reply_to": reply_to}),
    )
    .await
}

#[tokio::test]
async fn reply_to_is_parsed_and_tricky_spellings_are_refused() {
    let h = harness().await;
    for bad in [
        "http://127.0.0.1.evil.example/x",
        "http://127.0.0.1@evil.example/x",
        "http://localhost.evil.example/x",
        "http://localhost@evil.example/x",
        "http://localhost:8080@evil.example/x",
        "https://hooks.slack.com@evil.example/",
        "https://user:pass@hooks.slack.com/commands/x",
        "https://169.254.169.254/latest/meta-data/",
        "https://2852039166/latest",
        "https://0251.0376.0251.0376/",
        "https://[::ffff:169.254.169.254]/",
        "https://[fd00:ec2::254]/latest",
        "https://[fe80::1]/",
        "http://169.254.169.254/latest",
        "http://hooks.slack.com/x",
        "ftp://hooks.slack.com/x",
        "hooks.slack.com/x",
        "",
    ] {
        let answer = invoke_with(&h.state, bad).await;
        assert_eq!(answer["ok"], false, "{bad}: {answer}");
        assert_eq!(
            answer["error"]["code"], "invalid_reply_to",
            "{bad}: {answer}"
        );
    }
}

/// A local server whose `/reply` answers `status` with `Location: /target`, and counts the
/// requests that reach `/target`.
async fn redirecting(status: StatusCode) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    let app = axum::Router::new()
        .route(
            "/reply",
            axum::routing::post(move || async move {
                (status, [(http::header::LOCATION, "/target")], "moved")
            }),
        )
        .route(
            "/target",
            axum::routing::any(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { "ok" }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, hits)
}

#[tokio::test]
async fn a_redirect_from_reply_to_is_not_followed() {
    let h = harness().await;
    for status in [
        StatusCode::FOUND,
        StatusCode::TEMPORARY_REDIRECT,
        StatusCode::PERMANENT_REDIRECT,
    ] {
        let (url, hits) = redirecting(status).await;
        let answer = invoke_with(&h.state, &format!("{url}/reply")).await;
        // The command ran; its reply was posted once, to reply_to only.
        assert_eq!(answer["ok"], true, "{answer}");
        assert_eq!(answer["replied"], false, "{answer}");
        assert!(
            answer["reply_error"]
                .as_str()
                .is_some_and(|e| e.contains(&status.as_u16().to_string())),
            "{answer}"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 0, "{status} was followed");
        // The target itself works: a reply_to naming it is posted there.
        let answer = invoke_with(&h.state, &format!("{url}/target")).await;
        assert_eq!(answer["replied"], true, "{answer}");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }
}
