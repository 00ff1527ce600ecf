//! The metrics read API on AWS Lambda behind API Gateway (HTTP API, JWT authorizer).

use std::sync::Arc;

use lambda_http::Error;
use metrics_api::{MetricsState, router};
use paved_core::delivery::DeliveryStore;
use paved_core::services::Reports;
use paved_http::Authenticator;
use paved_http::lambda::copy_authorizer_claims;
use paved_wiring::{Backend, BackendConfig};
use tower::ServiceBuilder;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let table = Backend::open_table(&BackendConfig::from_env()?).await?;
    let state = MetricsState {
        reports: Reports::new(Arc::new(DeliveryStore::new(table))),
        auth: Arc::new(Authenticator::Gateway),
    };
    let app = ServiceBuilder::new()
        .map_request(copy_authorizer_claims)
        .service(router(state).fallback(paved_http::route_not_found));
    lambda_http::run(app).await
}
