//! The scheduled DORA job over the store and the catalog, then `GET /v1/metrics/dora`.

use std::sync::Arc;

use axum::body::Body;
use chrono::{DateTime, Utc};
use http::{Request, StatusCode};
use metrics_api::{MetricsState, router};
use paved_core::catalog::CatalogRepository;
use paved_core::delivery::{ChangeRecord, DeliveryStore, DeploymentRecord, IncidentRecord};
use paved_core::ports::Table;
use paved_http::{Authenticator, mint_token};
use serde_json::{Value, json};
use tower::ServiceExt;

const SECRET: &[u8] = b"metrics-test-secret-metrics-test-secret";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("instant")
        .with_timezone(&Utc)
}

async fn get(app: &axum::Router, uri: &str, authorized: bool) -> (StatusCode, Value) {
    let mut request = Request::get(uri);
    if authorized {
        let token = mint_token(SECRET, "lead", &["leaders".into()], 600).expect("token");
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_job_stores_the_report_and_the_api_serves_each_scope() {
    let dir = tempfile::tempdir().expect("dir");
    let table: Arc<dyn Table> =
        Arc::new(paved_sqlite::SqliteStore::open(&dir.path().join("paved.db")).expect("db"));
    let catalog = CatalogRepository::load(Arc::clone(&table))
        .await
        .expect("catalog");
    catalog
        .install_missing(vec![
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
                   "metadata": {"name": "payments"}, "spec": {"type": "team", "children": []}}),
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                   "metadata": {"name": "checkout"},
                   "spec": {"type": "service", "lifecycle": "production", "owner": "payments"}}),
        ])
        .await
        .expect("seed the catalog");

    let events = DeliveryStore::new(Arc::clone(&table));
    let deploy = |id: &str, head: &str, finished: &str| DeploymentRecord {
        deploy_id: id.into(),
        service: "checkout".into(),
        environment: "production".into(),
        status: "success".into(),
        kind: None,
        commit_sha: Some(head.into()),
        finished_at: at(finished),
        changes: Vec::new(),
    };
    let commit = |sha: &str, authored: &str| ChangeRecord {
        sha: sha.into(),
        service: "checkout".into(),
        authored_at: at(authored),
    };
    events
        .ship_pending(deploy("d0", "c0", "2026-11-02T09:00:00Z"))
        .await
        .expect("baseline");
    events
        .push_commits(
            "checkout",
            &[
                commit("c1", "2026-11-09T08:00:00Z"),
                commit("c2", "2026-11-09T09:30:00Z"),
            ],
        )
        .await
        .expect("push");
    events
        .ship_pending(deploy("d1", "c2", "2026-11-09T10:00:00Z"))
        .await
        .expect("deploy");
    events
        .save_incident(&IncidentRecord {
            incident_id: "inc-1".into(),
            service: Some("checkout".into()),
            created_at: at("2026-11-09T10:30:00Z"),
            resolved_at: Some(at("2026-11-09T11:15:00Z")),
            deploy_id: Some("d1".into()),
            commit_sha: None,
        })
        .await
        .expect("incident");

    let app = router(MetricsState {
        reports: paved_core::services::Reports::new(Arc::new(DeliveryStore::new(Arc::clone(
            &table,
        )))),
        auth: Arc::new(Authenticator::hs256(SECRET)),
    });
    let (status, body) = get(&app, "/v1/metrics/dora?scope=org", true).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let job = paved_analytics::job::DoraJob::new(
        Arc::clone(&table),
        paved_analytics::job::DoraJobConfig {
            timezone: chrono_tz::Tz::UTC,
        },
    );
    let summary = job
        .run("2026-11-23T06:00:00Z".parse().expect("instant"))
        .await
        .expect("run");
    assert_eq!(summary.deployments, 2);
    assert_eq!(summary.to, "2026-11-23T00:00:00Z");

    let (status, org) = get(&app, "/v1/metrics/dora?scope=org", true).await;
    assert_eq!(status, StatusCode::OK, "{org}");
    assert_eq!(org["scope"], "org");
    assert_eq!(org["spec_version"], "1");
    assert_eq!(org["metrics"]["deployments"], 2);
    // c1: 120 min, c2: 30 min → 75; d1 failed (inc-1) and recovered in 75 minutes.
    assert_eq!(org["metrics"]["lead_time_median_minutes"], 75.0);
    assert_eq!(org["metrics"]["change_failure_rate"], 0.5);
    assert_eq!(org["metrics"]["fdrt_median_minutes"], 75.0);

    let (status, team) = get(&app, "/v1/metrics/dora?scope=team:payments", true).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(team["metrics"]["team"], "payments");
    assert_eq!(team["metrics"]["deployments"], 2);
    let (status, service) = get(&app, "/v1/metrics/dora?scope=service:checkout", true).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(service["metrics"]["team"], "payments");
    let (status, whole) = get(&app, "/v1/metrics/dora", true).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(whole["services"][0]["service"], "checkout");
    assert!(whole["computed_at"].is_string());

    let (status, problem) = get(&app, "/v1/metrics/dora?scope=galaxy", true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["code"], "invalid_scope");
    let (status, _) = get(&app, "/v1/metrics/dora?scope=team:nobody", true).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(&app, "/v1/metrics/dora?scope=org", false).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A run as of an earlier instant that finishes later (an overlapping or back-dated run)
    // keeps the newer report; a run as of a later instant replaces it.
    let older = job
        .run("2026-11-16T06:00:00Z".parse().expect("instant"))
        .await
        .expect("older run");
    assert!(!older.stored);
    let (_, org) = get(&app, "/v1/metrics/dora?scope=org", true).await;
    assert_eq!(org["window"]["to"], "2026-11-23T00:00:00Z", "{org}");
    let newer = job
        .run("2026-11-30T06:00:00Z".parse().expect("instant"))
        .await
        .expect("newer run");
    assert!(newer.stored);
    let (_, org) = get(&app, "/v1/metrics/dora?scope=org", true).await;
    assert_eq!(org["window"]["to"], "2026-11-30T00:00:00Z", "{org}");
}

#[tokio::test]
async fn a_request_with_a_body_over_the_limit_is_a_413_problem() {
    let dir = tempfile::tempdir().expect("dir");
    let table: Arc<dyn Table> =
        Arc::new(paved_sqlite::SqliteStore::open(&dir.path().join("paved.db")).expect("db"));
    let app = router(MetricsState {
        reports: paved_core::services::Reports::new(Arc::new(DeliveryStore::new(Arc::clone(
            &table,
        )))),
        auth: Arc::new(Authenticator::hs256(SECRET)),
    });
    let token = mint_token(SECRET, "lead", &["leaders".into()], 600).expect("token");
    let send = |body: Body| {
        let app = app.clone();
        let token = token.clone();
        async move {
            let response = app
                .oneshot(
                    Request::get("/v1/metrics/dora")
                        .header("authorization", format!("Bearer {token}"))
                        .body(body)
                        .expect("request"),
                )
                .await
                .expect("response");
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
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    for body in [
        Body::from(vec![b'x'; metrics_api::BODY_LIMIT + 1]),
        Body::from(vec![b'x'; 10 * 1024 * 1024]),
    ] {
        let (status, content_type, problem) = send(body).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(problem["code"], "payload_too_large", "{problem}");
    }
    // Up to the limit the body is ignored as before: no report has been computed yet.
    let (status, _, problem) = send(Body::from(vec![b'x'; metrics_api::BODY_LIMIT])).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    let (status, _, problem) = send(Body::empty()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    assert_eq!(problem["code"], "not_found", "{problem}");
}
