//! The catalog function on AWS Lambda behind API Gateway (HTTP API, JWT authorizer).

use lambda_http::Error;
use paved_http::lambda::copy_authorizer_claims;
use tower::ServiceBuilder;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let app = catalog_api::app_from_env().await?;
    let app = ServiceBuilder::new()
        .map_request(copy_authorizer_claims)
        .service(app);
    lambda_http::run(app).await
}
