//! The QUEUED sweeper on AWS Lambda, on a schedule (EventBridge, every minute): starts the
//! execution of every request left QUEUED, as `paved up`'s background sweeper does, so a
//! StartExecution that failed after its request was recorded is retried on AWS too.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let service = requests_api::service_from_env().await?;
    lambda_runtime::run(service_fn(|_: LambdaEvent<serde_json::Value>| {
        let service = &service;
        async move {
            let started = service.resume_queued().await?;
            tracing::info!(started, "QUEUED requests swept");
            Ok::<_, Error>(serde_json::json!({"started": started}))
        }
    }))
    .await
}
