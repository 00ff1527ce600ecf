//! The requests function on AWS Lambda behind API Gateway (HTTP API, JWT authorizer).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lambda_http::Error;
use paved_backend::{Backend, BackendConfig, WorkflowUse};
use paved_core::auth::AccessPolicy;
use paved_core::catalog::CatalogRepository;
use paved_core::idempotency::IdempotencyStore;
use paved_core::policy::PolicyEngine;
use paved_core::ports::SystemClock;
use paved_core::provisioning::TableSecretStore;
use paved_core::requests::RequestRepository;
use paved_drivers::config::DriverConfig;
use paved_http::Authenticator;
use paved_http::lambda::copy_authorizer_claims;
use requests_api::{RequestsState, router};
use tower::ServiceBuilder;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let backend = Backend::open(&BackendConfig::from_env()?, WorkflowUse::StartsExecutions).await?;
    let table = Arc::clone(&backend.table);
    let clock = Arc::new(SystemClock);
    let catalog = Arc::new(CatalogRepository::load(Arc::clone(&table)).await?);
    let drivers_config = DriverConfig::from_env(backend.data_dir().map(|d| d.join("git")));
    let drivers = drivers_config
        .build(
            Arc::new(TableSecretStore::new(Arc::clone(&table))),
            Some(Arc::clone(&catalog)),
        )
        .await?;
    let state = RequestsState {
        requests: Arc::new(RequestRepository::new(Arc::clone(&table), clock.clone())),
        catalog,
        guardrails: Arc::new(PolicyEngine::default_bundle()?),
        access: Arc::new(AccessPolicy::new(
            &std::env::var("PAVED_ADMIN_GROUP").unwrap_or_else(|_| "platform-admins".into()),
        )?),
        auth: Arc::new(Authenticator::Gateway),
        workflow: backend.workflow,
        idempotency: Arc::new(IdempotencyStore::new(
            Arc::clone(&table),
            clock,
            "requests-api",
            Duration::from_secs(24 * 3600),
        )),
        tasks: backend.queue,
        task_queue: backend.queues.tasks,
        drivers: Arc::new(
            drivers
                .into_iter()
                .map(|d| (d.resource_type().to_owned(), d))
                .collect(),
        ),
        unavailable: Arc::new(
            drivers_config
                .availability()
                .into_iter()
                .filter_map(|(t, a)| a.err().map(|why| (t.to_owned(), why)))
                .collect::<HashMap<_, _>>(),
        ),
        approver_group: "group:default/platform-approvers".into(),
    };
    let app = ServiceBuilder::new()
        .map_request(copy_authorizer_claims)
        .service(router(state).fallback(paved_http::route_not_found));
    lambda_http::run(app).await
}
