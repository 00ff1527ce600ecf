//! The catalog function on AWS Lambda behind API Gateway (HTTP API, JWT authorizer).

use lambda_http::Error;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let app = catalog_api::app_from_env().await?;
    paved_http::lambda::run(app).await
}
