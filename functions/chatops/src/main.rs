//! The chat-ops function on AWS Lambda behind API Gateway: Slack's slash commands and
//! interactivity, verified by their signatures (the route has no JWT authorizer).

use lambda_http::Error;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let app = chatops::router(chatops::state_from_env().await?);
    paved_http::lambda::run(app).await
}
