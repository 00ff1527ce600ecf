//! The ingestion function on AWS Lambda behind API Gateway. Webhook routes carry their own
//! signatures (no JWT authorizer); the batch route is behind the JWT authorizer.

use std::sync::Arc;

use events_ingest::signatures::WebhookSecrets;
use events_ingest::{IngestState, router};
use lambda_http::Error;
use paved_backend::{Backend, BackendConfig};
use paved_core::catalog::CatalogRepository;
use paved_core::events::EventStore;
use paved_core::ports::SystemClock;
use paved_http::Authenticator;
use paved_http::lambda::copy_authorizer_claims;
use tower::ServiceBuilder;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let table = Backend::open_table(&BackendConfig::from_env()?).await?;
    let catalog = Arc::new(CatalogRepository::load(Arc::clone(&table)).await?);
    let state = IngestState {
        events: Arc::new(EventStore::new(table)),
        catalog,
        secrets: WebhookSecrets::from_env(),
        auth: Arc::new(Authenticator::Gateway),
        clock: Arc::new(SystemClock),
    };
    let app = ServiceBuilder::new()
        .map_request(copy_authorizer_claims)
        .service(router(state).fallback(paved_http::route_not_found));
    lambda_http::run(app).await
}
