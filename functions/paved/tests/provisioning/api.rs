//! The requests API over the real service driver (git) and test drivers.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{
    App, Behaviour, TestDriver, admin, alice, bob_approver, request, start, template, token,
};

const SLOW: Duration = Duration::from_secs(30);

fn service(name: &str, environment: &str) -> Value {
    json!({"template": "service", "name": name, "owner": "team-a", "environment": environment,
           "parameters": {"language": "rust-axum", "description": "Orders"}})
}

async fn count_requests(app: &App) -> u64 {
    let (status, list) = app.get("/v1/requests", &admin()).await;
    assert_eq!(status, 200, "{list}");
    list["total"].as_u64().expect("total")
}

#[tokio::test]
async fn a_service_request_makes_a_real_repository_and_registers_it() {
    let app = start(Vec::new()).await;
    let id = app.submit(service("orders", "development")).await;
    let r = app.wait_for(&id, &["READY", "FAILED"], SLOW).await;
    assert_eq!(r["status"], "READY", "{r:#}");
    for step in r["steps"].as_array().expect("steps") {
        assert_eq!(step["status"], "SUCCEEDED", "{step}");
        assert_eq!(step["attempts"], 1);
        assert!(step["startedAt"].is_string() && step["finishedAt"].is_string());
    }
    let events: Vec<&str> = r["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(
        events.contains(&"submitted") && events.contains(&"step_succeeded"),
        "{events:?}"
    );
    assert_eq!(
        r["conditions"][2],
        json!({"type": "Ready", "status": "True", "reason": "Provisioned"})
    );

    let repo = app.dir.path().join("git").join("orders.git");
    assert!(
        repo.join("HEAD").exists(),
        "a bare repository at {}",
        repo.display()
    );
    let (status, entity) = app
        .get(
            "/api/catalog/entities/by-name/component/default/orders",
            &alice(),
        )
        .await;
    assert_eq!(status, 200, "registered in the catalog: {entity}");

    // Deprovisioning removes it.
    let (status, d) = app.delete(&format!("/v1/resources/{id}"), &alice()).await;
    assert_eq!(status, 202, "{d}");
    assert_eq!(d["status"], "DEPROVISIONING");
    let r = app.wait_for(&id, &["DELETED", "DELETE_FAILED"], SLOW).await;
    assert_eq!(r["status"], "DELETED", "{r:#}");
    assert!(!repo.exists(), "the repository is gone");
    let (status, _) = app
        .get(
            "/api/catalog/entities/by-name/component/default/orders",
            &alice(),
        )
        .await;
    assert_eq!(status, 404);
    // The name is free again.
    let again = app.submit(service("orders", "development")).await;
    assert_eq!(
        app.wait_for(&again, &["READY", "FAILED"], SLOW).await["status"],
        "READY"
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_writes_nothing() {
    let app = start(Vec::new()).await;
    let raw = app
        .http
        .post(app.url("/v1/requests"))
        .bearer_auth(alice())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(raw.status().as_u16(), 400);
    assert_eq!(raw.headers()["content-type"], "application/problem+json");

    let cases: Vec<(Value, &str, u16, &str)> = vec![
        (
            json!({"template": "service", "name": "x1x"}),
            "alice",
            422,
            "invalid_request",
        ),
        (
            json!({"template": "service", "name": "orders", "owner": "team-a", "environment": "development", "parameters": {}, "extra": 1}),
            "alice",
            422,
            "invalid_request",
        ),
        (
            json!({"template": "nope", "name": "orders", "owner": "team-a", "environment": "development"}),
            "alice",
            422,
            "unknown_template",
        ),
        (
            json!({"template": "service", "name": "orders", "owner": "team-a", "environment": "development", "parameters": {"language": "cobol"}}),
            "alice",
            422,
            "invalid_parameters",
        ),
        (
            json!({"template": "service", "name": "orders", "owner": "team-b", "environment": "development", "parameters": {"language": "rust-axum"}}),
            "alice",
            403,
            "forbidden",
        ),
        (
            json!({"template": "service", "name": "orders", "owner": "team-zzz", "environment": "development", "parameters": {"language": "rust-axum"}}),
            "alice",
            422,
            "unknown_owner",
        ),
        (
            json!({"template": "service", "name": "Bad_Name", "owner": "team-a", "environment": "development", "parameters": {"language": "rust-axum"}}),
            "alice",
            422,
            "policy_violation",
        ),
        (
            json!({"template": "service", "name": "orders", "owner": "team-a", "environment": "mars", "parameters": {"language": "rust-axum"}}),
            "alice",
            422,
            "policy_violation",
        ),
        (
            json!({"template": "postgres-database", "name": "orders", "owner": "team-a", "environment": "development"}),
            "alice",
            422,
            "driver_not_configured",
        ),
    ];
    for (body, _who, status, code) in cases {
        let (got, problem) = app.post("/v1/requests", &alice(), &body, None).await;
        assert_eq!(
            (got, problem["code"].as_str()),
            (status, Some(code)),
            "{body} → {problem:#}"
        );
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{problem}"
        );
    }
    let (_, policy) = app
        .post("/v1/requests", &alice(), &json!({"template": "service", "name": "Bad_Name", "owner": "team-a", "environment": "mars", "parameters": {"language": "rust-axum"}}), None)
        .await;
    let rules: Vec<&str> = policy["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .filter_map(|v| v["rule"].as_str())
        .collect();
    assert_eq!(rules, ["environment.known", "naming.pattern"], "{policy:#}");
    let (_, not_configured) = app
        .post("/v1/requests", &alice(), &json!({"template": "postgres-database", "name": "orders", "owner": "team-a", "environment": "development"}), None)
        .await;
    assert!(
        not_configured["detail"]
            .as_str()
            .expect("detail")
            .contains("PAVED_POSTGRES_URL"),
        "{not_configured}"
    );
    let (status, _) = app.get("/v1/requests", "not-a-token").await;
    assert_eq!(status, 401);

    assert_eq!(count_requests(&app).await, 0, "nothing was written");
    assert_eq!(
        app.platform
            .backend
            .embedded
            .as_ref()
            .expect("embedded")
            .engine
            .running()
            .await
            .expect("running"),
        0,
        "nothing started"
    );
    assert!(!app.dir.path().join("git").join("orders.git").exists());
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_request_and_a_different_body_is_refused() {
    let driver = TestDriver::new("widget", &["one", "two", "three"], &[]);
    let app = start(vec![driver.clone()]).await;
    assert_eq!(
        app.import(&template("widget", &["one", "two", "three"]))
            .await
            .0,
        200
    );
    let body = request("widget", "w-one", "development");

    // 20 concurrent POSTs with one key: one request.
    let mut posts = Vec::new();
    for _ in 0..20 {
        let (app_ref, body) = (&app, body.clone());
        posts.push(async move {
            app_ref
                .post("/v1/requests", &alice(), &body, Some("key-1"))
                .await
        });
    }
    let answers = futures::future::join_all(posts).await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(status, r)| {
            assert_eq!(*status, 202, "{r}");
            r["id"].as_str().expect("id").to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one request: {ids:?}");
    assert_eq!(count_requests(&app).await, 1);

    let (status, replay) = app
        .post("/v1/requests", &alice(), &body, Some("key-1"))
        .await;
    assert_eq!(
        (status, replay["id"].as_str()),
        (202, ids.iter().next().map(String::as_str))
    );
    let mut changed = body.clone();
    changed["parameters"] = json!({"size": 2});
    let (status, problem) = app
        .post("/v1/requests", &alice(), &changed, Some("key-1"))
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("idempotency_key_reused")),
        "{problem}"
    );
    // Keys belong to their caller: bob's key-1 is another request (which he may not make for team-a).
    let (status, _) = app
        .post("/v1/requests", &bob_approver(), &body, Some("key-1"))
        .await;
    assert_eq!(status, 403);

    let id = ids.into_iter().next().expect("id");
    assert_eq!(
        app.wait_for(&id, &["READY", "FAILED"], SLOW).await["status"],
        "READY"
    );
    for step in ["one", "two", "three"] {
        assert_eq!(driver.applies("w-one", step), 1, "{step} ran once");
    }
    // A second request for a live name is refused.
    let (status, problem) = app.post("/v1/requests", &alice(), &body, None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("name_taken")),
        "{problem}"
    );
}

#[tokio::test]
async fn production_waits_for_an_approver_who_is_not_the_requester() {
    let driver = TestDriver::new("widget", &["one"], &[]);
    let app = start(vec![driver.clone()]).await;
    assert_eq!(app.import(&template("widget", &["one"])).await.0, 200);

    let (status, dry) = app
        .post(
            "/v1/requests?dryRun=true",
            &alice(),
            &request("widget", "w-prod", "production"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(
        (dry["allowed"].as_bool(), dry["needsApproval"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(dry["plan"][0]["step"], "one");
    let (_, bad_dry) = app
        .post(
            "/v1/requests?dryRun=true",
            &alice(),
            &request("widget", "X", "production"),
            None,
        )
        .await;
    assert_eq!(bad_dry["allowed"], false);
    assert_eq!(bad_dry["violations"][0]["rule"], "naming.pattern");
    assert_eq!(count_requests(&app).await, 0, "dry runs write nothing");

    let id = app.submit(request("widget", "w-prod", "production")).await;
    let r = app.wait_for(&id, &["WAITING_FOR_APPROVAL"], SLOW).await;
    assert_eq!(r["conditions"][1]["status"], "Unknown");

    // The requester cannot approve, even as an approver; nor can a non-approver.
    let self_approver = token("alice", &["team-a", "platform-approvers"]);
    let (status, p) = app
        .post(
            &format!("/v1/requests/{id}/approve"),
            &self_approver,
            &json!({}),
            None,
        )
        .await;
    assert_eq!(status, 403, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .expect("detail")
            .contains("approval.not-requester"),
        "{p}"
    );
    let (status, _) = app
        .post(
            &format!("/v1/requests/{id}/approve"),
            &token("carol", &["team-a"]),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        driver.calls.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing ran before the approval"
    );

    let (status, approved) = app
        .post(
            &format!("/v1/requests/{id}/approve"),
            &bob_approver(),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    let r = app.wait_for(&id, &["READY", "FAILED"], SLOW).await;
    assert_eq!(r["status"], "READY");
    assert_eq!(r["decision"]["by"], "user:default/bob");
    let (status, _) = app
        .post(
            &format!("/v1/requests/{id}/approve"),
            &bob_approver(),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(status, 422, "approving twice is an invalid transition");

    // Reject and cancel.
    let second = app
        .submit(request("widget", "w-prod-2", "production"))
        .await;
    app.wait_for(&second, &["WAITING_FOR_APPROVAL"], SLOW).await;
    let (status, rejected) = app
        .post(
            &format!("/v1/requests/{second}/reject"),
            &bob_approver(),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(
        (status, rejected["status"].as_str()),
        (200, Some("REJECTED"))
    );
    let third = app
        .submit(request("widget", "w-prod-3", "production"))
        .await;
    app.wait_for(&third, &["WAITING_FOR_APPROVAL"], SLOW).await;
    let (status, _) = app
        .post(
            &format!("/v1/requests/{third}/cancel"),
            &token("eve", &["team-b"]),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(status, 404, "other teams do not even see it");
    let (status, cancelled) = app
        .post(
            &format!("/v1/requests/{third}/cancel"),
            &alice(),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (200, Some("CANCELLED"))
    );

    // Filters.
    let (_, waiting) = app.get("/v1/requests?status=rejected", &alice()).await;
    assert_eq!(waiting["total"], 1);
    let (_, mine) = app
        .get(
            "/v1/requests?owner=team-a&environment=production&template=widget",
            &alice(),
        )
        .await;
    assert_eq!(mine["total"], 3);
    let (_, theirs) = app.get("/v1/requests", &token("eve", &["team-b"])).await;
    assert_eq!(theirs["total"], 0, "eve sees nothing of team-a's");
    let (status, _) = app.get("/v1/requests?status=NOPE", &alice()).await;
    assert_eq!(status, 400);

    // Pages: newest first, each request once, and cursors bound to their filters.
    let (_, all) = app.get("/v1/requests?limit=100", &alice()).await;
    let everything: Vec<String> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect();
    let created: Vec<&str> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["createdAt"].as_str().expect("createdAt"))
        .collect();
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {created:?}"
    );
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/requests?limit=1&cursor={c}"),
            None => "/v1/requests?limit=1".to_owned(),
        };
        let (status, page) = app.get(&path, &alice()).await;
        assert_eq!(status, 200, "{page}");
        paged.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|r| r["id"].as_str().expect("id").to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, everything);
    assert!(everything.len() >= 3);
    let (_, first) = app.get("/v1/requests?limit=1", &alice()).await;
    let c = first["nextCursor"].as_str().expect("more pages");
    let (status, problem) = app
        .get(
            &format!("/v1/requests?limit=1&status=READY&cursor={c}"),
            &alice(),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
    let (status, problem) = app.get("/v1/requests?cursor=tampered", &alice()).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
    let _ = Behaviour::Succeed;
}

#[tokio::test]
async fn sqs_and_dynamodb_requests_make_real_resources_on_the_aws_emulator() {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL is not set: run scripts/test.sh, which starts moto");
    let dir = tempfile::tempdir().expect("dir");
    let mut c = crate::harness::config(dir.path());
    c.drivers.aws_region = Some("us-east-1".into());
    let app = crate::harness::start_with(dir, c, true).await;
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let queue = app
        .submit(json!({"template": "sqs-queue", "name": format!("events-{suffix}"), "owner": "team-a", "environment": "staging",
                       "parameters": {"max_receive_count": 4}}))
        .await;
    let table = app
        .submit(json!({"template": "dynamodb-table", "name": format!("ledger-{suffix}"), "owner": "team-a", "environment": "staging",
                       "parameters": {"partition_key": "id"}}))
        .await;
    let q = app.wait_for(&queue, &["READY", "FAILED"], SLOW).await;
    assert_eq!(q["status"], "READY", "{q:#}");
    assert!(
        q["outputs"]["queueUrl"]
            .as_str()
            .expect("url")
            .contains(&format!("paved-staging-events-{suffix}"))
    );
    assert!(q["outputs"]["deadLetterQueueUrl"].is_string());
    let t = app.wait_for(&table, &["READY", "FAILED"], SLOW).await;
    assert_eq!(t["status"], "READY", "{t:#}");
    assert_eq!(t["outputs"]["pointInTimeRecovery"], true);

    let (status, _) = app
        .delete(&format!("/v1/resources/{queue}"), &alice())
        .await;
    assert_eq!(status, 202);
    assert_eq!(
        app.wait_for(&queue, &["DELETED", "DELETE_FAILED"], SLOW)
            .await["status"],
        "DELETED"
    );
}

#[tokio::test]
async fn every_router_refuses_a_body_over_its_limit_with_a_413_problem() {
    let app = start(Vec::new()).await;
    let token = alice();
    // (method, path, content type, the router's limit): one byte over each.
    let routes: [(&str, &str, &str, usize); 8] = [
        (
            "POST",
            "/v1/requests",
            "application/json",
            requests_api::BODY_LIMIT,
        ),
        (
            "POST",
            "/v1/requests/req-x/approve",
            "application/json",
            requests_api::BODY_LIMIT,
        ),
        (
            "DELETE",
            "/v1/resources/req-x",
            "application/json",
            requests_api::BODY_LIMIT,
        ),
        (
            "GET",
            "/v1/scorecards",
            "application/json",
            catalog_api::scorecards::BODY_LIMIT,
        ),
        (
            "GET",
            "/v1/scorecard-definitions",
            "application/json",
            catalog_api::scorecards::BODY_LIMIT,
        ),
        (
            "GET",
            "/v1/metrics/dora",
            "application/json",
            metrics_api::BODY_LIMIT,
        ),
        ("POST", "/v1/entities", "application/json", 1024 * 1024),
        (
            "POST",
            "/api/catalog/entities/by-refs",
            "application/json",
            1024 * 1024,
        ),
    ];
    for (method, path, content_type, limit) in routes {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let r = app
            .http
            .request(method.clone(), app.url(path))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(vec![b' '; limit + 1])
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 413, "{method} {path}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{method} {path}"
        );
        let problem: Value = r.json().await.expect("problem");
        assert_eq!(problem["code"], "payload_too_large", "{method} {path}");
    }
}

#[tokio::test]
async fn the_team_quota_counts_every_spelling_of_the_owner() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = crate::harness::config(dir.path());
    c.extra_drivers = vec![TestDriver::new(
        "widget",
        &["one"],
        &[("one", Behaviour::Succeed)],
    )];
    // A quota of one resource per team.
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).expect("dir");
    let mut data: Value =
        serde_json::from_str(paved_core::policy::DEFAULT_CONFIG).expect("default config");
    data["paved"]["config"]["quota_per_team"] = json!(1);
    std::fs::write(policies.join("config.json"), data.to_string()).expect("write");
    c.policies = Some(paved::host::PolicySource {
        dir: policies,
        replace_default: false,
    });
    let app = crate::harness::start_with(dir, c, true).await;
    assert_eq!(app.import(&template("widget", &["one"])).await.0, 200);

    let ask = |name: &str, owner: &str| {
        json!({"template": "widget", "name": name, "owner": owner,
               "environment": "development", "parameters": {"size": 1}})
    };
    let first = app.submit(ask("w-first", "team-a")).await;
    app.wait_for(&first, &["READY"], SLOW).await;
    for owner in [
        "Team-A",
        "TEAM-A",
        "group:default/Team-A",
        "group:DEFAULT/team-A",
    ] {
        let (status, r) = app
            .post("/v1/requests", &alice(), &ask("w-second", owner), None)
            .await;
        assert_eq!(status, 422, "{owner}: {r}");
        assert_eq!(r["code"], "policy_violation", "{owner}: {r}");
        assert!(
            r["violations"].to_string().contains("quota.team"),
            "{owner}: {r}"
        );
    }
}

#[tokio::test]
async fn a_stored_request_that_does_not_decode_is_a_500_not_the_callers_fault() {
    use paved_core::ports::{Condition, Item, Key};
    let app = start(Vec::new()).await;
    let mut attrs = serde_json::Map::new();
    attrs.insert("id".into(), json!("req-0123456789abcdef01234567"));
    attrs.insert("status".into(), json!("NOT_A_STATUS"));
    app.platform
        .backend
        .table
        .put(
            Item::new(Key::new("REQUEST", "req-0123456789abcdef01234567"), attrs),
            Condition::Always,
        )
        .await
        .expect("put");
    let (status, problem) = app
        .get("/v1/requests/req-0123456789abcdef01234567", &admin())
        .await;
    assert_eq!(status, 500, "{problem}");
    assert_eq!(problem["code"], "internal", "{problem}");
    assert!(
        !problem["detail"].to_string().contains("NOT_A_STATUS"),
        "the cause is logged, not answered: {problem}"
    );
}

#[tokio::test]
async fn the_root_says_what_paved_is_and_where_to_go() {
    let app = start(Vec::new()).await;
    let r = app.http.get(app.url("/")).send().await.expect("get");
    assert_eq!(r.status(), 200);
    let index: Value = r.json().await.expect("json");
    assert_eq!(index["name"], "paved");
    assert_eq!(index["openapi"], "/openapi.json");
    let r = app
        .http
        .get(app.url(index["openapi"].as_str().expect("path")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200, "the link it gives works");
}

#[tokio::test]
async fn ids_that_are_not_request_ids_are_not_found_before_any_lookup() {
    let app = start(Vec::new()).await;
    let long = format!("req-{}", "a".repeat(4000));
    for id in [
        "not-an-id",
        "req-",
        "req-XYZ0123456789abcdef0123",
        "req-0123456789ABCDEF01234567",
        long.as_str(),
    ] {
        let (status, problem) = app.get(&format!("/v1/requests/{id}"), &admin()).await;
        assert_eq!(status, 404, "{id}: {problem}");
        assert_eq!(problem["code"], "not_found", "{id}");
        let (status, _) = app
            .post(
                &format!("/v1/requests/{id}/cancel"),
                &admin(),
                &json!({}),
                None,
            )
            .await;
        assert_eq!(status, 404, "{id}");
    }
}
