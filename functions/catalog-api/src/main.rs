//! The catalog function on AWS Lambda behind API Gateway (HTTP API, JWT authorizer).

use std::sync::Arc;

use catalog_api::config::CatalogConfig;
use catalog_api::{CatalogState, router};
use lambda_http::Error;
use paved_backend::Backend;
use paved_core::auth::AccessPolicy;
use paved_core::catalog::CatalogRepository;
use paved_core::events::EventStore;
use paved_core::scorecards::ScorecardSet;
use paved_http::Authenticator;
use paved_http::lambda::copy_authorizer_claims;
use tower::ServiceBuilder;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let config = CatalogConfig::from_env()?;
    let table = Backend::open_table(&config.backend).await?;
    let repo = Arc::new(CatalogRepository::load(Arc::clone(&table)).await?);
    catalog_api::install_default_templates(&repo).await?;
    let state = CatalogState {
        repo,
        policy: Arc::new(AccessPolicy::new(&config.admin_group)?),
        limits: config.limits,
        auth: Arc::new(Authenticator::Gateway),
    };
    let scorecards = catalog_api::scorecards::ScorecardsState {
        catalog: Arc::clone(&state.repo),
        events: Arc::new(EventStore::new(table)),
        cards: Arc::new(ScorecardSet::from_env()?),
        auth: Arc::clone(&state.auth),
    };
    let app = ServiceBuilder::new()
        .map_request(copy_authorizer_claims)
        .service(
            router(state)
                .merge(catalog_api::scorecards::router(scorecards))
                .fallback(paved_http::route_not_found),
        );
    lambda_http::run(app).await
}
