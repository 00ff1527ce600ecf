//! The chat-ops commands for other bots, invoked directly (`aws lambda invoke`): IAM decides
//! who may call it; the envelope names the paved user it acts for.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let state = chatops::state_from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let state = &state;
        async move { Ok::<_, Error>(chatops::invoke(state, event.payload).await) }
    }))
    .await
}
