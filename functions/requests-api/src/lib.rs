//! The requests function: developers ask for a resource from a golden path and follow it to
//! READY. An axum Router (served by `paved up` and, through `main.rs`, by Lambda) over
//! [`RequestsService`], where the rules live.
//!
//! - `POST /v1/requests` (`Idempotency-Key`, `?dryRun=true`) → 202
//! - `GET /v1/requests`, `GET /v1/requests/{id}`
//! - `POST /v1/requests/{id}/approve|reject|cancel`
//! - `DELETE /v1/resources/{id}` → DEPROVISIONING → DELETED | DELETE_FAILED

mod decide;
pub mod openapi;
mod resources;
mod submit;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{delete, get, post};
use paved_core::services::RequestsService;
use paved_http::{Authenticator, BodyLimit, bounded_body};

/// What the handlers share; cheap to clone.
#[derive(Debug, Clone)]
pub struct RequestsState {
    pub service: Arc<RequestsService>,
    pub auth: Arc<Authenticator>,
}

/// The service the requests functions run with on Lambda (the API and the QUEUED sweeper):
/// the backend from the environment, the catalog loaded from it, and the guardrails
/// `PAVED_POLICY_DIR` names, compiled while the backend opens.
pub async fn service_from_env()
-> Result<Arc<RequestsService>, Box<dyn std::error::Error + Send + Sync>> {
    use paved_wiring::{Backend, BackendConfig, WorkflowUse};
    let guardrails = paved_wiring::guardrails::compile_from_env();
    let backend = Backend::open(&BackendConfig::from_env()?, WorkflowUse::StartsExecutions).await?;
    let catalog = paved_wiring::load_catalog(&backend.table).await?;
    let guardrails = guardrails.await??;
    Ok(Arc::new(paved_wiring::requests_service_from_env(
        &backend, catalog, guardrails,
    )?))
}

impl FromRef<RequestsState> for Arc<Authenticator> {
    fn from_ref(s: &RequestsState) -> Self {
        Arc::clone(&s.auth)
    }
}

/// The largest request body any route reads: a request's JSON (template, name, owner,
/// environment, parameters). The decisions' bodies are empty.
pub const BODY_LIMIT: usize = 64 * 1024;

pub fn router(state: RequestsState) -> Router {
    Router::new()
        .route("/v1/requests", post(submit::create).get(views::list))
        .route("/v1/requests/{id}", get(views::one))
        .route("/v1/requests/{id}/approve", post(decide::approve))
        .route("/v1/requests/{id}/reject", post(decide::reject))
        .route("/v1/requests/{id}/cancel", post(decide::cancel))
        .route("/v1/resources", get(resources::list))
        .route(
            "/v1/resources/{id}",
            delete(decide::deprovision)
                .get(resources::one)
                .patch(resources::patch),
        )
        .route("/v1/resources/{id}/reconcile", post(resources::reconcile))
        .route("/v1/resources/{id}/adopt", post(resources::adopt))
        // Every route, those that read no body too: a body past the limit is a 413.
        .layer(axum::middleware::from_fn_with_state(
            BodyLimit(BODY_LIMIT),
            bounded_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(state.service.catalog()),
            paved_http::fresh_catalog,
        ))
        .with_state(state)
}
