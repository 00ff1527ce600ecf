//! The requests function on AWS Lambda behind API Gateway (HTTP API, JWT authorizer).

use lambda_http::Error;
use paved_http::lambda::copy_authorizer_claims;
use tower::ServiceBuilder;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let state = requests_api::RequestsState {
        service: requests_api::service_from_env().await?,
        auth: std::sync::Arc::new(paved_http::Authenticator::Gateway),
    };
    let app = ServiceBuilder::new()
        .map_request(copy_authorizer_claims)
        .service(requests_api::router(state).fallback(paved_http::route_not_found));
    lambda_http::run(app).await
}
