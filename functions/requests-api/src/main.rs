//! The requests function on AWS Lambda behind API Gateway (HTTP API, JWT authorizer).

use lambda_http::Error;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let app = requests_api::router(requests_api::RequestsState {
        service: requests_api::service_from_env().await?,
        auth: std::sync::Arc::new(paved_http::Authenticator::Gateway),
    });
    paved_http::lambda::run(app).await
}
