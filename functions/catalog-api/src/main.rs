//! The catalog function on AWS Lambda behind API Gateway (HTTP API, JWT authorizer).

use std::sync::Arc;

use catalog_api::config::{Backend, CatalogConfig};
use catalog_api::{CatalogState, router};
use lambda_http::Error;
use paved_core::auth::AccessPolicy;
use paved_core::catalog::CatalogRepository;
use paved_core::ports::Table;
use paved_http::Authenticator;
use paved_http::lambda::copy_authorizer_claims;
use tower::ServiceBuilder;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let config = CatalogConfig::from_env()?;
    let table: Arc<dyn Table> = match &config.backend {
        Backend::Embedded { data_dir } => {
            std::fs::create_dir_all(data_dir)?;
            Arc::new(paved_embedded::SqliteStore::open(&data_dir.join("paved.db"))?)
        }
        Backend::Aws => return Err("PAVED_BACKEND=aws needs the DynamoDB adapter (shared/aws), which this build does not include yet".into()),
    };
    let repo = Arc::new(CatalogRepository::load(table).await?);
    catalog_api::install_default_templates(&repo).await?;
    let state = CatalogState {
        repo,
        policy: Arc::new(AccessPolicy::new(&config.admin_group)?),
        limits: config.limits,
        auth: Arc::new(Authenticator::Gateway),
    };
    let app = ServiceBuilder::new()
        .map_request(copy_authorizer_claims)
        .service(router(state).fallback(paved_http::route_not_found));
    lambda_http::run(app).await
}
