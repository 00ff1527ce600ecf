//! The requests function on AWS Lambda behind API Gateway (HTTP API, JWT authorizer).

use std::sync::Arc;

use lambda_http::Error;
use paved_backend::{Backend, BackendConfig, WorkflowUse};
use paved_core::catalog::CatalogRepository;
use paved_http::Authenticator;
use paved_http::lambda::copy_authorizer_claims;
use requests_api::{RequestsState, router};
use tower::ServiceBuilder;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let guardrails = requests_api::compile_default_guardrails();
    let backend = Backend::open(&BackendConfig::from_env()?, WorkflowUse::StartsExecutions).await?;
    let table = Arc::clone(&backend.table);
    let catalog = Arc::new(CatalogRepository::load(table).await?);
    let guardrails = guardrails.await??;
    let state = RequestsState::from_env(
        &backend,
        catalog,
        Arc::new(Authenticator::Gateway),
        guardrails,
    )?;
    let app = ServiceBuilder::new()
        .map_request(copy_authorizer_claims)
        .service(router(state).fallback(paved_http::route_not_found));
    lambda_http::run(app).await
}
