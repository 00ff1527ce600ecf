//! The sample events in `events/` (the same files `cargo lambda invoke --data-file` takes),
//! run through the Lambda path: API Gateway v2 event → request → authorizer claims → router.

use std::sync::Arc;

use axum::body::to_bytes;
use catalog_api::{CatalogState, Limits, router};
use paved_core::auth::AccessPolicy;
use paved_core::catalog::CatalogRepository;
use paved_http::Authenticator;
use paved_http::lambda::copy_authorizer_claims;
use paved_sqlite::SqliteStore;
use serde_json::Value;
use tower::ServiceExt;

const EVENTS: &[(&str, &str)] = &[
    (
        "upsert",
        include_str!("../../../events/catalog-api.apigw.upsert.json"),
    ),
    (
        "by-name",
        include_str!("../../../events/catalog-api.apigw.by-name.json"),
    ),
    (
        "by-query",
        include_str!("../../../events/catalog-api.apigw.by-query.json"),
    ),
    (
        "unauthorized",
        include_str!("../../../events/catalog-api.apigw.unauthorized.json"),
    ),
];

#[tokio::test]
async fn every_sample_event_runs_through_the_lambda_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("paved.db")).expect("open");
    let state = CatalogState {
        repo: Arc::new(
            CatalogRepository::load(Arc::new(store))
                .await
                .expect("load"),
        ),
        policy: Arc::new(AccessPolicy::new("platform-admins").expect("policy")),
        limits: Limits::default(),
        auth: Arc::new(Authenticator::Gateway),
    };
    let app = router(state);

    let mut statuses = Vec::new();
    for (name, event) in EVENTS {
        let request = lambda_http::request::from_str(event)
            .unwrap_or_else(|e| panic!("{name} is not an API Gateway event: {e}"));
        let response = app
            .clone()
            .oneshot(copy_authorizer_claims(request))
            .await
            .expect("infallible");
        let status = response.status().as_u16();
        let body = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let body: Value = serde_json::from_slice(&body).expect("json");
        if *name == "by-query" {
            assert_eq!(body["totalItems"], 1, "{body}");
        }
        if *name == "by-name" {
            assert_eq!(body["metadata"]["name"], "payments");
        }
        statuses.push((*name, status));
    }
    assert_eq!(
        statuses,
        [
            ("upsert", 201),
            ("by-name", 200),
            ("by-query", 200),
            ("unauthorized", 401)
        ]
    );
}
