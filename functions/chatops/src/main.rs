//! The chat-ops function on AWS Lambda behind API Gateway: Slack's slash commands and
//! interactivity, verified by their signatures (the route has no JWT authorizer).

use lambda_http::Error;
use tower::ServiceBuilder;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let state = chatops::state_from_env().await?;
    let app =
        ServiceBuilder::new().service(chatops::router(state).fallback(paved_http::route_not_found));
    lambda_http::run(app).await
}
