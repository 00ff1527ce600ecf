//! The requests function: developers ask for a resource from a golden path and follow it to
//! READY. An axum Router (served by `paved up` and, through `main.rs`, by Lambda).
//!
//! - `POST /v1/requests` (`Idempotency-Key`, `?dryRun=true`) → 202
//! - `GET /v1/requests`, `GET /v1/requests/{id}`
//! - `POST /v1/requests/{id}/approve|reject|cancel`
//! - `DELETE /v1/resources/{id}` → DEPROVISIONING → DELETED | DELETE_FAILED

mod cursor;
mod decide;
pub mod guardrails;
pub mod openapi;
mod submit;
mod views;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{delete, get, post};
use paved_core::auth::AccessPolicy;
use paved_core::catalog::CatalogRepository;
use paved_core::idempotency::IdempotencyStore;
use paved_core::policy::PolicyEngine;
use paved_core::ports::{Queue, Workflow};
use paved_core::provisioning::Planner;
use paved_core::requests::RequestRepository;
use paved_http::{Authenticator, BodyLimit, bounded_body};

pub use submit::resume_queued;

/// Everything the handlers share; cheap to clone.
#[derive(Clone)]
pub struct RequestsState {
    pub requests: Arc<RequestRepository>,
    pub catalog: Arc<CatalogRepository>,
    pub guardrails: Arc<PolicyEngine>,
    pub access: Arc<AccessPolicy>,
    pub auth: Arc<Authenticator>,
    pub workflow: Arc<dyn Workflow>,
    pub idempotency: Arc<IdempotencyStore>,
    /// Where deprovisioning tasks go (the worker's task queue).
    pub tasks: Arc<dyn Queue>,
    pub task_queue: String,
    /// Where chat notifications go (a request waits for an approval): the notifications
    /// queue, on the same queue port.
    pub notification_queue: String,
    /// The configured drivers' planners by resource type: they check a request and answer
    /// dry runs; the worker's drivers do the work.
    pub planners: Arc<HashMap<String, Arc<dyn Planner>>>,
    /// Why each known but unconfigured resource type is unavailable.
    pub unavailable: Arc<HashMap<String, String>>,
    /// Members of this group may approve and see every request.
    pub approver_group: String,
}

impl RequestsState {
    /// The state over one backend's ports: the requests repository and idempotency records
    /// on its table, executions on its workflow engine, deprovisioning tasks on its task
    /// queue. `planners` are the configured drivers'; `unavailable` says why the others are off.
    pub fn on_backend(
        backend: &paved_backend::Backend,
        catalog: Arc<CatalogRepository>,
        guardrails: PolicyEngine,
        access: Arc<AccessPolicy>,
        auth: Arc<Authenticator>,
        planners: &[Arc<dyn Planner>],
        unavailable: HashMap<String, String>,
    ) -> Self {
        let clock: Arc<dyn paved_core::ports::Clock> = Arc::new(paved_core::ports::SystemClock);
        Self {
            requests: Arc::new(RequestRepository::new(
                Arc::clone(&backend.table),
                Arc::clone(&clock),
            )),
            catalog,
            approver_group: guardrails
                .approver_group()
                .unwrap_or_else(|| "group:default/platform-approvers".into()),
            guardrails: Arc::new(guardrails),
            access,
            auth,
            workflow: Arc::clone(&backend.workflow),
            idempotency: Arc::new(IdempotencyStore::new(
                Arc::clone(&backend.table),
                clock,
                "requests-api",
                std::time::Duration::from_secs(24 * 3600),
            )),
            tasks: Arc::clone(&backend.queue),
            task_queue: backend.queues.tasks.clone(),
            notification_queue: backend.queues.notifications.clone(),
            planners: Arc::new(
                planners
                    .iter()
                    .map(|p| (p.resource_type().to_owned(), Arc::clone(p)))
                    .collect(),
            ),
            unavailable: Arc::new(unavailable),
        }
    }
}

impl RequestsState {
    /// The state a Lambda function runs with: the drivers configured in the environment
    /// (`PAVED_*` driver settings), the default guardrails, `PAVED_ADMIN_GROUP` (default
    /// `platform-admins`) as the catalog's admins. The requests and chat-ops functions share it.
    pub fn from_env(
        backend: &paved_backend::Backend,
        catalog: Arc<CatalogRepository>,
        auth: Arc<Authenticator>,
        guardrails: PolicyEngine,
    ) -> Result<Self, String> {
        let drivers_config = paved_drivers::config::DriverConfig::from_env(
            backend.data_dir().map(|d| d.join("git")),
        );
        let planners = drivers_config.planners()?;
        let unavailable = drivers_config
            .availability()
            .into_iter()
            .filter_map(|(t, a)| a.err().map(|why| (t.to_owned(), why)))
            .collect::<HashMap<_, _>>();
        let admins = std::env::var("PAVED_ADMIN_GROUP")
            .unwrap_or_else(|_| paved_core::auth::DEFAULT_ADMIN_GROUP.into());
        Ok(Self::on_backend(
            backend,
            catalog,
            guardrails,
            Arc::new(AccessPolicy::new(&admins)?),
            auth,
            &planners,
            unavailable,
        ))
    }
}

/// The state the requests functions run with on Lambda (the API and the QUEUED sweeper):
/// the backend from the environment, the catalog loaded from it, identity from API Gateway's
/// authorizer, and the default guardrails, compiled while the backend opens.
pub async fn state_from_env() -> Result<RequestsState, Box<dyn std::error::Error + Send + Sync>> {
    use paved_backend::{Backend, BackendConfig, WorkflowUse};
    let guardrails = compile_guardrails_from_env();
    let backend = Backend::open(&BackendConfig::from_env()?, WorkflowUse::StartsExecutions).await?;
    let catalog = Arc::new(CatalogRepository::load(Arc::clone(&backend.table)).await?);
    let guardrails = guardrails.await??;
    Ok(RequestsState::from_env(
        &backend,
        catalog,
        Arc::new(Authenticator::Gateway),
        guardrails,
    )?)
}

/// Compiles the guardrails `PAVED_POLICY_DIR` names (the default bundle without it) on a
/// blocking thread: a cold start overlaps it with opening the backend and reading the
/// catalog, which wait on the network.
pub fn compile_guardrails_from_env()
-> tokio::task::JoinHandle<Result<PolicyEngine, paved_core::Error>> {
    tokio::task::spawn_blocking(|| {
        let source = guardrails::source_from_env();
        guardrails::load(
            source
                .as_ref()
                .map(|(dir, replace)| (dir.as_path(), *replace)),
        )
    })
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
        .route("/v1/resources/{id}", delete(decide::deprovision))
        // Every route, those that read no body too: a body past the limit is a 413.
        .layer(axum::middleware::from_fn_with_state(
            BodyLimit(BODY_LIMIT),
            bounded_body,
        ))
        .with_state(state)
}
