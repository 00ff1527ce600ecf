//! The requests function on AWS Lambda behind API Gateway (HTTP API, JWT authorizer).

use std::collections::HashMap;
use std::sync::Arc;

use lambda_http::Error;
use paved_backend::{Backend, BackendConfig, WorkflowUse};
use paved_core::auth::AccessPolicy;
use paved_core::catalog::CatalogRepository;
use paved_core::policy::PolicyEngine;
use paved_core::provisioning::TableSecretStore;
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
    let catalog = Arc::new(CatalogRepository::load(Arc::clone(&table)).await?);
    let drivers_config = DriverConfig::from_env(backend.data_dir().map(|d| d.join("git")));
    let drivers = drivers_config
        .build(
            Arc::new(TableSecretStore::new(Arc::clone(&table))),
            Some(Arc::clone(&catalog)),
        )
        .await?;
    let unavailable = drivers_config
        .availability()
        .into_iter()
        .filter_map(|(t, a)| a.err().map(|why| (t.to_owned(), why)))
        .collect::<HashMap<_, _>>();
    let state = RequestsState::on_backend(
        &backend,
        catalog,
        PolicyEngine::default_bundle()?,
        Arc::new(AccessPolicy::new(
            &std::env::var("PAVED_ADMIN_GROUP").unwrap_or_else(|_| "platform-admins".into()),
        )?),
        Arc::new(Authenticator::Gateway),
        &drivers,
        unavailable,
    );
    let app = ServiceBuilder::new()
        .map_request(copy_authorizer_claims)
        .service(router(state).fallback(paved_http::route_not_found));
    lambda_http::run(app).await
}
