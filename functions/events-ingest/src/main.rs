//! The ingestion function on AWS Lambda behind API Gateway. Webhook routes carry their own
//! signatures (no JWT authorizer); the batch route is behind the JWT authorizer.

use lambda_http::Error;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let app = events_ingest::app_from_env().await?;
    paved_http::lambda::run(app).await
}
