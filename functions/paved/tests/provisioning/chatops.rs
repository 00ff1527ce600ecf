//! Chat-ops end to end: Slack's signed slash commands and button clicks against the whole
//! platform, through to a provisioned request, and what is refused on the way.

use std::sync::Arc;
use std::time::Duration;

use chatops::slack::signature::SigningSecret;
use parking_lot::Mutex;
use paved_chat::notify::SlackTargets;
use serde_json::{Value, json};

use crate::harness::{App, Behaviour, TestDriver, config, request, start_with, template};

const SLACK_SECRET: &str = "slack-signing-secret-for-tests-0123";

const USERS: &str = "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: platform-approvers}\nspec: {type: team, children: []}\n---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: alice\n  annotations: {slack.com/user-id: U0ALICE}\nspec: {memberOf: [team-a]}\n---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: bob\n  annotations: {slack.com/user-id: U0BOB}\nspec: {memberOf: [team-b, platform-approvers]}\n";

/// A local HTTP server standing in for Slack: it records every post (path and JSON body) to
/// a `response_url`, the approvals channel's incoming webhook, or the Web API.
#[derive(Clone, Default)]
struct FakeSlack {
    /// The posts it accepted.
    posts: Arc<Mutex<Vec<(String, Value)>>>,
    /// How many posts it refused (500) before accepting.
    refused: Arc<Mutex<usize>>,
    url: String,
}

impl FakeSlack {
    async fn start() -> Self {
        Self::failing_first(0).await
    }

    /// A Slack that answers 500 to its first `n` posts (an outage), then accepts.
    async fn failing_first(n: usize) -> Self {
        let posts: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let refused: Arc<Mutex<usize>> = Arc::default();
        let recorded = Arc::clone(&posts);
        let failures = Arc::clone(&refused);
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: String| {
            let recorded = Arc::clone(&recorded);
            let failures = Arc::clone(&failures);
            async move {
                {
                    let mut f = failures.lock();
                    if *f < n {
                        *f += 1;
                        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "outage");
                    }
                }
                let json = serde_json::from_str(&body).unwrap_or(Value::Null);
                recorded.lock().push((uri.path().to_owned(), json));
                (axum::http::StatusCode::OK, "ok")
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            posts,
            refused,
            url,
        }
    }

    /// Waits for a post to `path` whose JSON contains `needle`.
    async fn wait_for(&self, path: &str, needle: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let found = self
                .posts
                .lock()
                .iter()
                .find(|(p, v)| p == path && v.to_string().contains(needle))
                .map(|(_, v)| v.clone());
            if let Some(v) = found {
                return v;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no post to {path} with {needle}: {:?}",
                self.posts.lock()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn count(&self, path: &str, needle: &str) -> usize {
        self.posts
            .lock()
            .iter()
            .filter(|(p, v)| p == path && v.to_string().contains(needle))
            .count()
    }
}

async fn app_with_slack() -> App {
    app_with(None).await
}

async fn app_with(slack: Option<&FakeSlack>) -> App {
    app_with_driver(
        slack,
        TestDriver::new("widget", &["one"], &[("one", Behaviour::Succeed)]),
    )
    .await
}

/// The platform with `driver` (of type `widget`) as its widget driver, so a test can change
/// its "provider" by hand.
async fn app_with_driver(slack: Option<&FakeSlack>, driver: Arc<TestDriver>) -> App {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = config(dir.path());
    c.extra_drivers = vec![driver as Arc<dyn paved_core::provisioning::Driver>];
    c.slack_signing_secret = SigningSecret::new(SLACK_SECRET);
    c.slack_targets = Some(SlackTargets {
        approvals_webhook: slack.map(|s| format!("{}/approvals", s.url)),
        resources_webhook: slack.map(|s| format!("{}/resources", s.url)),
        bot_token: slack.map(|_| "xoxb-test-token".to_owned()),
        api_url: slack.map(|s| s.url.clone()).unwrap_or_default(),
    });
    let app = start_with(dir, c, true).await;
    assert_eq!(app.import(&template("widget", &["one"])).await.0, 200);
    let (status, body) = app.import(USERS).await;
    assert_eq!(status, 200, "{body}");
    app
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn slash_form(user: &str, text: &str) -> String {
    slash_form_to(user, text, "https://hooks.slack.com/commands/T0001/1/abc")
}

fn slash_form_to(user: &str, text: &str, response_url: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("token", "legacy-token-ignored")
        .append_pair("team_id", "T0001")
        .append_pair("channel_id", "C0001")
        .append_pair("user_id", user)
        .append_pair("command", "/paved")
        .append_pair("text", text)
        .append_pair("response_url", response_url)
        .append_pair("trigger_id", &format!("trigger.{user}.{text}"))
        .finish()
}

fn click_form(user: &str, action: &str, request_id: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": user},
        "response_url": "https://hooks.slack.com/actions/T0001/1/abc",
        "actions": [{"action_id": action, "block_id": format!("decide:{request_id}"),
                     "value": request_id, "type": "button"}],
    });
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

/// Posts `body` to the Slack route, signed at `timestamp` (or with `signature` if given).
async fn post_slack(
    app: &App,
    body: &str,
    timestamp: i64,
    signature: Option<&str>,
) -> (u16, Value) {
    let ts = timestamp.to_string();
    let signed = SigningSecret::new(SLACK_SECRET)
        .expect("secret")
        .sign(&ts, body.as_bytes());
    let r = app
        .http
        .post(app.url("/v1/chatops/slack"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", signature.unwrap_or(&signed))
        .body(body.to_owned())
        .send()
        .await
        .expect("post");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn command(app: &App, user: &str, text: &str) -> Value {
    let (status, reply) = post_slack(app, &slash_form(user, text), now(), None).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["response_type"], "ephemeral", "{reply}");
    reply
}

fn all_text(reply: &Value) -> String {
    reply.to_string()
}

#[tokio::test]
async fn a_production_request_from_slack_is_approved_by_button_and_provisioned() {
    let slack = FakeSlack::start().await;
    let app = app_with(Some(&slack)).await;

    let text = "request widget w-chat environment=production size=2";
    let form = slash_form_to("U0ALICE", text, &format!("{}/response/alice", slack.url));
    let (status, reply) = post_slack(&app, &form, now(), None).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["response_type"], "ephemeral", "{reply}");
    assert!(
        all_text(&reply).contains("WAITING_FOR_APPROVAL"),
        "{reply:#}"
    );
    let buttons = reply["blocks"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["type"] == "actions"))
        .expect("approve/reject buttons");
    let id = buttons["elements"][0]["value"]
        .as_str()
        .expect("request id")
        .to_owned();
    assert_eq!(buttons["elements"][0]["action_id"], "approve");

    // The request is alice's, owned by her first group, with typed parameters.
    let r = app
        .wait_for(&id, &["WAITING_FOR_APPROVAL"], Duration::from_secs(5))
        .await;
    assert_eq!(r["requester"], "user:default/alice");
    assert_eq!(r["owner"], "group:default/team-a");
    assert_eq!(r["parameters"]["size"], 2);

    // The approvers' channel is told, with the buttons.
    let asked = slack.wait_for("/approvals", &id).await;
    assert!(
        asked.to_string().contains("An approval is needed"),
        "{asked:#}"
    );
    assert!(
        asked.to_string().contains("\"action_id\":\"approve\""),
        "{asked:#}"
    );

    // Alice cannot approve her own request from Slack either.
    let (status, own) = post_slack(&app, &click_form("U0ALICE", "approve", &id), now(), None).await;
    assert_eq!(status, 200);
    assert!(own["replace_original"].is_null(), "{own:#}");
    assert!(all_text(&own).contains(":warning:"), "{own:#}");
    app.wait_for(&id, &["WAITING_FOR_APPROVAL"], Duration::from_secs(1))
        .await;

    // Bob, an approver, clicks Approve: the message is replaced with the new state.
    let (status, approved) =
        post_slack(&app, &click_form("U0BOB", "approve", &id), now(), None).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["replace_original"], true, "{approved:#}");
    assert!(
        !all_text(&approved).contains("WAITING_FOR_APPROVAL"),
        "{approved:#}"
    );

    let ready = app.wait_for(&id, &["READY"], Duration::from_secs(20)).await;
    assert_eq!(ready["decision"]["by"], "user:default/bob");

    // Alice hears back on her slash command's response_url.
    let done = slack.wait_for("/response/alice", "is ready").await;
    assert!(done.to_string().contains("READY"), "{done:#}");
    assert_eq!(done["response_type"], "ephemeral");
    // The state machine's notification handled again (a redelivery) notifies no one twice.
    let message = json!({"requestId": id, "status": "READY"}).to_string();
    app.queue()
        .send(
            paved_workflow::NOTIFICATION_QUEUE,
            paved_core::ports::QueueMessage::new(message),
        )
        .await
        .expect("redeliver");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(slack.count("/response/alice", "is ready"), 1);
    assert_eq!(slack.count("/approvals", &id), 1);

    let status_reply = command(&app, "U0ALICE", &format!("status {id}")).await;
    assert!(
        all_text(&status_reply).contains("READY"),
        "{status_reply:#}"
    );

    // The same trigger (a retried delivery) does not create a second request.
    let (_, again) = post_slack(&app, &form, now(), None).await;
    assert!(all_text(&again).contains(&id), "{again:#}");
}

#[tokio::test]
async fn unsigned_wrongly_signed_stale_and_replayed_requests_get_401() {
    let app = app_with_slack().await;
    let body = slash_form("U0ALICE", "help");

    let (status, problem) = post_slack(&app, &body, now(), Some("v0=00")).await;
    assert_eq!(status, 401, "{problem}");
    assert_eq!(problem["code"], "unauthenticated", "{problem}");

    let r = app
        .http
        .post(app.url("/v1/chatops/slack"))
        .body(body.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 401, "no signature headers");

    // A request signed six minutes ago (a replay of a captured one) is refused, signature and all.
    let (status, stale) = post_slack(&app, &body, now() - 360, None).await;
    assert_eq!(status, 401, "{stale}");
    assert!(
        stale["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("five minutes")
            || stale["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("300 seconds"),
        "{stale}"
    );

    // A body changed after signing.
    let ts = now().to_string();
    let signature = SigningSecret::new(SLACK_SECRET)
        .expect("secret")
        .sign(&ts, body.as_bytes());
    let r = app
        .http
        .post(app.url("/v1/chatops/slack"))
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", signature)
        .body(body.replace("help", "approve+req-1"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn unknown_commands_get_help_and_malformed_posts_get_400() {
    let app = app_with_slack().await;
    let help = command(&app, "U0ALICE", "deploy everything").await;
    let text = all_text(&help);
    assert!(text.contains("unknown command 'deploy'"), "{help:#}");
    assert!(text.contains("/paved search"), "{help:#}");

    for body in [
        "",
        "hello=world",
        "payload=%7Bnot-json",
        "command=%2Fpaved&text=help",
    ] {
        let (status, problem) = post_slack(&app, body, now(), None).await;
        assert_eq!(status, 400, "{body}: {problem}");
        assert_eq!(problem["code"], "malformed_payload", "{problem}");
    }

    // A Slack user who is in no User entity is told how to fix it.
    let stranger = command(&app, "U0NOBODY", "search widget").await;
    assert!(
        all_text(&stranger).contains("slack.com/user-id: U0NOBODY"),
        "{stranger:#}"
    );
}

#[cfg(feature = "analytics")]
#[tokio::test]
async fn search_service_and_dora_answer_from_the_catalog_and_the_metrics() {
    let app = app_with_slack().await;
    let found = command(&app, "U0ALICE", "search widget").await;
    assert!(
        all_text(&found).contains("template:default/widget"),
        "{found:#}"
    );

    let one = command(&app, "U0ALICE", "service user:default/bob").await;
    assert!(all_text(&one).contains("user:default/bob"), "{one:#}");
    let missing = command(&app, "U0ALICE", "service nope").await;
    assert!(
        all_text(&missing).contains("component:default/nope is not in the catalog"),
        "{missing:#}"
    );

    // The DORA job ran at start on an empty store: the org has figures (zero deployments).
    app.platform
        .dora
        .run(chrono::Utc::now())
        .await
        .expect("dora");
    let dora = command(&app, "U0ALICE", "dora").await;
    assert!(all_text(&dora).contains("DORA: org"), "{dora:#}");
    let unknown_team = command(&app, "U0ALICE", "dora team-zzz").await;
    assert!(
        all_text(&unknown_team).contains("team:team-zzz"),
        "{unknown_team:#}"
    );
}

#[tokio::test]
async fn other_bots_use_the_envelope_as_a_catalog_user() {
    let slack = FakeSlack::start().await;
    let app = app_with(Some(&slack)).await;
    let state = &app.platform.chatops;

    // reply_to: the reply is also posted there as a Slack message.
    let replied = chatops::invoke(
        state,
        json!({"command": "search", "args": ["widget"], "actor": "alice",
               "reply_to": format!("{}/reply/bot", slack.url)}),
    )
    .await;
    assert_eq!(replied["replied"], true, "{replied:#}");
    let posted = slack
        .wait_for("/reply/bot", "template:default/widget")
        .await;
    assert_eq!(posted["response_type"], "ephemeral");
    let refused = chatops::invoke(
        state,
        json!({"command": "search", "args": ["widget"], "actor": "alice", "reply_to": "http://169.254.169.254/latest"}),
    )
    .await;
    assert_eq!(refused["error"]["code"], "invalid_reply_to", "{refused:#}");
    let result = chatops::invoke(
        state,
        json!({"command": "search", "args": ["widget"], "actor": "alice"}),
    )
    .await;
    assert_eq!(result["ok"], true, "{result:#}");
    assert_eq!(result["command"], "search");
    assert!(result["data"]["total"].as_u64() >= Some(1), "{result:#}");

    let submitted = chatops::invoke(
        state,
        json!({"command": "request", "args": ["widget", "w-bot", "environment=staging"], "actor": "user:default/alice", "idempotency_key": "bot-1"}),
    )
    .await;
    assert_eq!(submitted["ok"], true, "{submitted:#}");
    let id = submitted["data"]["id"].as_str().expect("id").to_owned();
    let again = chatops::invoke(
        state,
        json!({"command": "request", "args": ["widget", "w-bot", "environment=staging"], "actor": "alice", "idempotency_key": "bot-1"}),
    )
    .await;
    assert_eq!(
        again["data"]["id"],
        id.as_str(),
        "the key makes a retry return the first request"
    );

    for (envelope, code) in [
        (json!({"command": "search"}), "malformed_payload"),
        (
            json!({"command": "search", "args": ["x"], "actor": "mallory"}),
            "unknown_actor",
        ),
        (
            json!({"command": "search", "args": ["x"], "actor": "group:default/team-a"}),
            "unknown_actor",
        ),
    ] {
        let refused = chatops::invoke(state, envelope).await;
        assert_eq!(refused["ok"], false);
        assert_eq!(refused["error"]["code"], code, "{refused:#}");
    }
}

#[cfg(feature = "analytics")]
const SERVICES: &str = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: payments\n  description: Takes the money\n  annotations: {pagerduty.com/service-id: P123, paved.dev/template: service}\n  links: [{url: 'https://docs.example.com/payments', title: Docs, type: docs}]\nspec: {type: service, lifecycle: production, owner: team-a}\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: legacy}\nspec: {type: service, lifecycle: deprecated, owner: team-a}\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: orphan, description: Nobody's}\nspec: {type: service, lifecycle: production, owner: nobody}\n";

#[cfg(feature = "analytics")]
#[tokio::test]
async fn scorecards_score_the_catalog_with_the_metrics_over_http_and_chat() {
    let app = app_with_slack().await;
    let (status, body) = app.import(SERVICES).await;
    assert_eq!(status, 200, "{body}");
    // A production deployment yesterday for payments, through the batch ingestion route.
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let batch = json!({"deployments": [{"deploy_id": "d1", "service": "payments", "environment": "production",
        "status": "success", "finished_at": yesterday, "changes": []}]});
    let (status, body) = app
        .post(
            "/v1/events",
            &crate::harness::alice(),
            &batch,
            Some("batch-1"),
        )
        .await;
    assert!(status == 202 || status == 200, "{status} {body}");
    app.platform
        .dora
        .run(chrono::Utc::now())
        .await
        .expect("dora");

    let alice = crate::harness::alice();
    let (status, payments) = app
        .get("/v1/scorecards/component:default/payments", &alice)
        .await;
    assert_eq!(status, 200, "{payments}");
    assert_eq!(payments["scorecard"], "production-readiness");
    assert_eq!(payments["level"], "Silver", "{payments:#}");
    assert_eq!(payments["nextLevel"], "Gold");
    let encoded = app
        .get("/v1/scorecards/component%3Adefault%2Fpayments", &alice)
        .await;
    assert_eq!(
        encoded.1["level"], "Silver",
        "an encoded ref is the same entity"
    );
    let (_, legacy) = app.get("/v1/scorecards/legacy", &alice).await;
    assert_eq!(legacy["level"], Value::Null, "{legacy:#}");
    let (_, orphan) = app.get("/v1/scorecards/orphan", &alice).await;
    let owner = orphan["rules"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["id"] == "owner-is-group"))
        .expect("rule");
    assert_eq!(owner["passed"], false, "nobody is not a Group");

    let (status, team) = app.get("/v1/scorecards?team=team-a", &alice).await;
    assert_eq!(status, 200, "{team}");
    assert_eq!(team["entities"], 2);
    let counts: Vec<(String, u64)> = team["levels"]
        .as_array()
        .expect("levels")
        .iter()
        .map(|l| {
            (
                l["level"].as_str().unwrap_or("").to_owned(),
                l["count"].as_u64().unwrap_or(9),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("none".to_owned(), 1),
            ("Bronze".into(), 0),
            ("Silver".into(), 1),
            ("Gold".into(), 0)
        ]
    );
    assert_eq!(team["failingRules"][0]["failing"], 2, "{team:#}");
    let (status, _) = app.get("/v1/scorecards?team=team-zzz", &alice).await;
    assert_eq!(status, 404);
    let (status, problem) = app
        .get("/v1/scorecards/payments?scorecard=nope", &alice)
        .await;
    assert_eq!(status, 404, "{problem}");

    let (status, port) = app
        .get(
            "/v1/scorecard-definitions/production-readiness?format=port",
            &alice,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(port["levels"][0]["title"], "Basic");
    let r = app
        .http
        .get(app.url("/v1/scorecard-definitions/production-readiness?format=cortex"))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("cortex");
    assert_eq!(r.headers()["content-type"], "application/yaml");
    assert!(
        r.text()
            .await
            .expect("text")
            .contains("tag: production-readiness")
    );
    let (status, problem) = app
        .get(
            "/v1/scorecard-definitions/production-readiness?format=backstage",
            &alice,
        )
        .await;
    assert_eq!(status, 400, "{problem}");

    // The same run stored the adoption figures: payments deployed this week, 2 of team-a's
    // services in the catalog, none from a template but payments (paved.dev/template).
    let (status, adoption) = app
        .get("/v1/metrics/adoption?scope=team:team-a", &alice)
        .await;
    if status != 200 {
        let (_, whole) = app.get("/v1/metrics/adoption", &alice).await;
        panic!("{status} {adoption}: the stored figures are {whole:#}");
    }
    assert_eq!(adoption["figures"]["services"], 2, "{adoption:#}");
    assert_eq!(adoption["figures"]["from_template"], 1);
    let last_week = adoption["figures"]["weeks"]
        .as_array()
        .and_then(|w| w.last())
        .cloned()
        .expect("weeks");
    assert_eq!(last_week["services_deployed"], 1, "{last_week:#}");
    let (status, _) = app
        .get("/v1/metrics/adoption?scope=service:payments", &alice)
        .await;
    assert_eq!(status, 400);

    let chat = command(&app, "U0ALICE", "scorecard payments").await;
    let text = all_text(&chat);
    assert!(text.contains("Production readiness: Silver"), "{chat:#}");
    assert!(
        text.contains("lead"),
        "the failing Gold rules are listed: {chat:#}"
    );
}

/// Posts a JSON Events API body, signed now.
async fn post_event(app: &App, body: &Value, retry: Option<&str>) -> (u16, Value) {
    let body = body.to_string();
    let ts = now().to_string();
    let signature = SigningSecret::new(SLACK_SECRET)
        .expect("secret")
        .sign(&ts, body.as_bytes());
    let mut r = app
        .http
        .post(app.url("/v1/chatops/slack/events"))
        .header("content-type", "application/json")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", signature);
    if let Some(n) = retry {
        r = r
            .header("x-slack-retry-num", n)
            .header("x-slack-retry-reason", "http_timeout");
    }
    let r = r.body(body).send().await.expect("post");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn mentions_are_answered_in_the_thread_once_whatever_slack_retries() {
    let slack = FakeSlack::start().await;
    let app = app_with(Some(&slack)).await;

    let (status, handshake) = post_event(
        &app,
        &json!({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        handshake["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );

    let mention = json!({
        "token": "x", "team_id": "T0001", "api_app_id": "A0001", "type": "event_callback",
        "event_id": "Ev0PV52K21", "event_time": now(),
        "event": {"type": "app_mention", "user": "U0ALICE", "text": "<@U0BOT> search widget",
                  "ts": "1515449522.000016", "channel": "C0LAN2Q65", "event_ts": "1515449522000016"}
    });
    let (status, ack) = post_event(&app, &mention, None).await;
    assert_eq!(status, 200, "{ack}");
    let answer = slack
        .wait_for("/chat.postMessage", "template:default/widget")
        .await;
    assert_eq!(answer["channel"], "C0LAN2Q65");
    assert_eq!(answer["thread_ts"], "1515449522.000016");

    // Slack's retries of the same event are acknowledged and not answered again.
    for n in ["1", "2"] {
        let (status, ack) = post_event(&app, &mention, Some(n)).await;
        assert_eq!(status, 200, "{ack}");
        assert_eq!(ack["duplicate"], true);
    }
    assert_eq!(
        slack.count("/chat.postMessage", "template:default/widget"),
        1
    );

    // Other events are acknowledged and ignored; a broken body is 400; an unsigned one 401.
    let (status, ignored) = post_event(
        &app,
        &json!({"type": "event_callback", "event_id": "Ev2", "event": {"type": "reaction_added"}}),
        None,
    )
    .await;
    assert_eq!(
        (status, ignored["ok"].clone()),
        (200, json!(true)),
        "{ignored}"
    );
    let (status, problem) = post_event(&app, &json!({"type": "event_callback"}), None).await;
    assert_eq!(status, 400, "{problem}");
    let r = app
        .http
        .post(app.url("/v1/chatops/slack/events"))
        .body(mention.to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn a_notification_slack_refuses_is_retried_until_it_lands_once() {
    let slack = FakeSlack::failing_first(2).await;
    let app = app_with(Some(&slack)).await;
    let text = "request widget w-retry environment=production";
    let form = slash_form_to("U0ALICE", text, &format!("{}/response/alice", slack.url));
    let (status, reply) = post_slack(&app, &form, now(), None).await;
    assert_eq!(status, 200, "{reply}");
    let id = reply["blocks"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["type"] == "actions"))
        .and_then(|b| b["elements"][0]["value"].as_str())
        .expect("request id")
        .to_owned();
    // The approvals channel refused twice; the queue delivered the notification again.
    slack.wait_for("/approvals", &id).await;
    assert_eq!(*slack.refused.lock(), 2);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(slack.count("/approvals", &id), 1, "delivered once");
}

#[tokio::test]
async fn approving_your_own_request_through_slack_under_another_spelling_is_refused() {
    let app = app_with_slack().await;
    // Carol's catalog User is spelled with a capital; her token says `carol`.
    let carol = "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: Carol\n  annotations: {slack.com/user-id: U0CAROL}\nspec: {memberOf: [team-a, platform-approvers]}\n";
    assert_eq!(app.import(carol).await.0, 200);
    let token = crate::harness::token("carol", &["team-a"]);
    let body = json!({"template": "widget", "name": "w-spelled", "owner": "Team-A",
                      "environment": "production", "parameters": {"size": 1}});
    let (status, r) = app.post("/v1/requests", &token, &body, None).await;
    assert_eq!(status, 202, "{r}");
    assert_eq!(r["requester"], "user:default/carol", "{r}");
    assert_eq!(
        r["owner"], "group:default/team-a",
        "owners are canonical: {r}"
    );
    let id = r["id"].as_str().expect("id").to_owned();
    app.wait_for(&id, &["WAITING_FOR_APPROVAL"], Duration::from_secs(5))
        .await;

    let (status, own) = post_slack(&app, &click_form("U0CAROL", "approve", &id), now(), None).await;
    assert_eq!(status, 200, "{own}");
    assert!(all_text(&own).contains(":warning:"), "{own:#}");
    assert!(
        all_text(&own).contains("cannot approve their own request"),
        "{own:#}"
    );
    app.wait_for(&id, &["WAITING_FOR_APPROVAL"], Duration::from_secs(1))
        .await;

    // Another approver may.
    let (status, approved) =
        post_slack(&app, &click_form("U0BOB", "approve", &id), now(), None).await;
    assert_eq!(status, 200, "{approved}");
    app.wait_for(&id, &["READY"], Duration::from_secs(20)).await;
}

#[tokio::test]
async fn resources_and_reconcile_from_slack_show_conditions_and_drift_as_the_caller() {
    let driver = TestDriver::new("widget", &["one"], &[("one", Behaviour::Succeed)]);
    let app = app_with_driver(None, Arc::clone(&driver)).await;
    let dave = "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: dave\n  annotations: {slack.com/user-id: U0DAVE}\nspec: {memberOf: [team-b]}\n";
    assert_eq!(app.import(dave).await.0, 200);
    let id = app.submit(request("widget", "w-live", "development")).await;
    app.wait_for(&id, &["READY"], Duration::from_secs(20)).await;

    // Someone changes it by hand, a field paved set and one whose name is Slack markup.
    driver.drifted.lock().insert(
        "w-live".into(),
        vec![
            ("config.size".into(), json!(3), json!(7)),
            ("tags.<!here>".into(), json!("a"), json!("b")),
        ],
    );
    // Alice (team-a, its owner) asks for an observation now: queued, the result in the status.
    let queued = command(&app, "U0ALICE", &format!("reconcile {id}")).await;
    let text = all_text(&queued);
    assert!(
        text.contains(&format!("Observation of `{id}` queued")),
        "{queued:#}"
    );
    assert!(
        text.contains("The result appears in its status"),
        "{queued:#}"
    );
    assert_eq!(
        queued["text"],
        format!("observation of {id} queued; the result appears in its status")
    );
    let alice = crate::harness::alice();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, r) = app.get(&format!("/v1/resources/{id}"), &alice).await;
        assert_eq!(status, 200, "{r}");
        if r["drift"].as_array().is_some_and(|d| !d.is_empty()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the observation did not run: {r:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The listing, the caller's and the owning team's, shows both conditions and the drift.
    for text in [
        "resources",
        "resources team-a",
        "resources group:default/team-a",
    ] {
        let listed = command(&app, "U0ALICE", text).await;
        let all = all_text(&listed);
        assert!(
            all.contains(&format!("*`{id}`* widget `w-live`")),
            "{text}: {listed:#}"
        );
        assert!(
            all.contains("Synced: *False* (Drifted)"),
            "{text}: {listed:#}"
        );
        assert!(all.contains("Ready: *True*"), "{text}: {listed:#}");
        assert!(all.contains("`config.size`"), "{text}: {listed:#}");
        assert!(all.contains("`tags.&lt;!here&gt;`"), "{text}: {listed:#}");
        assert!(!all.contains("<!here>"), "escaped: {listed:#}");
        assert!(
            listed["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("1 live resource ") && t.ends_with("1 drifted")),
            "{listed:#}"
        );
    }
    let other_team = command(&app, "U0ALICE", "resources team-b").await;
    assert!(
        all_text(&other_team).contains("No live resources owned by team-b."),
        "{other_team:#}"
    );
    let not_an_owner = command(&app, "U0ALICE", "resources component:payments").await;
    let text = all_text(&not_an_owner);
    assert!(text.contains(":warning:"), "{not_an_owner:#}");
    assert!(
        text.contains("an owner is a group or a user"),
        "{not_an_owner:#}"
    );

    // Bob approves (he sees every request, so every resource) but does not own it.
    let listed = command(&app, "U0BOB", "resources").await;
    assert!(all_text(&listed).contains(&id), "{listed:#}");
    let refused = command(&app, "U0BOB", &format!("reconcile {id}")).await;
    let text = all_text(&refused);
    assert!(text.contains(":warning:"), "{refused:#}");
    assert!(
        text.contains("only members of group:default/team-a"),
        "{refused:#}"
    );
    // Dave (team-b) sees neither the resource nor whether it exists.
    let listed = command(&app, "U0DAVE", "resources").await;
    assert!(
        all_text(&listed).contains("No live resources you can see."),
        "{listed:#}"
    );
    assert!(!all_text(&listed).contains(&id), "{listed:#}");
    let hidden = command(&app, "U0DAVE", &format!("reconcile {id}")).await;
    assert!(all_text(&hidden).contains("not found"), "{hidden:#}");

    // Usage errors are help with the reason.
    for (text, reason) in [
        ("reconcile", "usage: /paved reconcile &lt;request-id&gt;"),
        ("resources team-a team-b", "usage: /paved resources [team]"),
    ] {
        let help = command(&app, "U0ALICE", text).await;
        let all = all_text(&help);
        assert!(all.contains(reason), "{text}: {help:#}");
        assert!(all.contains("/paved reconcile"), "the list: {help:#}");
    }

    // Other bots: the same commands through the envelope, the page as data.
    let state = &app.platform.chatops;
    let listed = chatops::invoke(
        state,
        json!({"command": "resources", "args": ["team-a"], "actor": "alice"}),
    )
    .await;
    assert_eq!(listed["ok"], true, "{listed:#}");
    assert_eq!(listed["command"], "resources");
    assert_eq!(listed["data"]["items"][0]["id"], id.as_str(), "{listed:#}");
    assert_eq!(
        listed["data"]["items"][0]["drift"][0]["path"],
        "config.size"
    );
    let queued = chatops::invoke(
        state,
        json!({"command": "reconcile", "args": [id], "actor": "alice"}),
    )
    .await;
    assert_eq!(queued["ok"], true, "{queued:#}");
    assert_eq!(queued["data"]["id"], id.as_str());
}
