//! The metrics read API on AWS Lambda behind API Gateway (HTTP API, JWT authorizer).

use lambda_http::Error;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let app = metrics_api::router(metrics_api::state_from_env().await?);
    paved_http::lambda::run(app).await
}
