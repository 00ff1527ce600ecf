//! `GET /v1/metrics/dora`: the latest DORA report the scheduled `dora-report` function stored,
//! whole or for one scope ([`Reports`] reads them). Reading is cheap and needs no analytics engine, so this function
//! stays small while the heavy computation runs on a schedule.

use std::sync::Arc;

use axum::extract::{FromRef, Query, State};
use axum::middleware;
use axum::routing::get;
use axum::{Json, Router};
use paved_core::Error;
use paved_core::services::{ReportScope, Reports};
use paved_http::{ApiError, Authenticator, BodyLimit, Caller, bounded_body};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct MetricsState {
    pub reports: Reports,
    pub auth: Arc<Authenticator>,
}

impl FromRef<MetricsState> for Arc<Authenticator> {
    fn from_ref(state: &MetricsState) -> Self {
        Arc::clone(&state.auth)
    }
}

/// The routes are GETs, which carry no body; a kilobyte is room for a client that sends an
/// empty JSON object all the same. A larger body is a 413 `payload_too_large`.
pub const BODY_LIMIT: usize = 1024;

pub fn router(state: MetricsState) -> Router {
    Router::new()
        .route("/v1/metrics/dora", get(dora))
        .route("/v1/metrics/adoption", get(adoption))
        .layer(middleware::from_fn_with_state(
            BodyLimit(BODY_LIMIT),
            bounded_body,
        ))
        .with_state(state)
}

paved_http::shared_answers! {
    /// What reading a stored report answers besides its figures.
    ReportAnswers = [
        (400, "A scope that cannot be read"),
        (401, "No or bad token"),
        (404, "No report yet, or no such scope"),
        (413, "A body over 1 KiB"),
    ]
}

#[derive(Debug, Deserialize)]
pub struct DoraQuery {
    /// `org`, `team:<name>` or `service:<name>`; absent for the whole report.
    scope: Option<String>,
}

impl DoraQuery {
    fn scope(&self) -> Result<Option<ReportScope>, Error> {
        self.scope.as_deref().map(ReportScope::parse).transpose()
    }
}

/// The latest DORA report, whole or for one scope.
#[utoipa::path(get, path = "/v1/metrics/dora", tag = "metrics",
    params(("scope" = Option<String>, Query, description = "org, team:<name> or service:<name>")),
    responses((status = 200, description = "The figures"), ReportAnswers),
    security(("bearer" = [])))]
async fn dora(
    State(state): State<MetricsState>,
    Caller(_caller): Caller,
    Query(query): Query<DoraQuery>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(state.reports.dora(query.scope()?.as_ref()).await?))
}

/// Golden-path adoption, whole or for one scope.
#[utoipa::path(get, path = "/v1/metrics/adoption", tag = "metrics",
    params(("scope" = Option<String>, Query, description = "org, team:<name> or service:<name>")),
    responses((status = 200, description = "The figures"), ReportAnswers),
    security(("bearer" = [])))]
async fn adoption(
    State(state): State<MetricsState>,
    Caller(_caller): Caller,
    Query(query): Query<DoraQuery>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(state.reports.adoption(query.scope()?.as_ref()).await?))
}

/// The state the metrics function runs with on Lambda: the stored reports on the table from
/// the environment, identity from API Gateway's authorizer.
pub async fn state_from_env() -> Result<MetricsState, Box<dyn std::error::Error + Send + Sync>> {
    use paved_wiring::{Backend, BackendConfig};
    let table = Backend::open_table(&BackendConfig::from_env()?).await?;
    Ok(MetricsState {
        reports: Reports::new(Arc::new(paved_core::delivery::DeliveryStore::new(table))),
        auth: Arc::new(Authenticator::Gateway),
    })
}

/// This function's operations, for paved's OpenAPI document (`tests/openapi.rs`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    #[derive(OpenApi)]
    #[openapi(
        paths(dora, adoption),
        tags((name = "metrics", description = "DORA metrics and adoption"))
    )]
    struct MetricsDoc;
    MetricsDoc::openapi()
}
