//! The ingestion function on AWS Lambda behind API Gateway. Webhook routes carry their own
//! signatures (no JWT authorizer); the batch route is behind the JWT authorizer.

use lambda_http::Error;
use paved_http::lambda::copy_authorizer_claims;
use tower::ServiceBuilder;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let app = events_ingest::app_from_env().await?;
    let app = ServiceBuilder::new()
        .map_request(copy_authorizer_claims)
        .service(app);
    lambda_http::run(app).await
}
