//! The reconciliation loop's tick on AWS Lambda, on a schedule (EventBridge, every minute):
//! queues the due observations of every provider within its rate, as `paved up`'s background
//! tick does; the provision worker runs them.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let reconciler = provision_worker::reconciler_from_env().await?;
    lambda_runtime::run(service_fn(|_: LambdaEvent<serde_json::Value>| {
        let reconciler = &reconciler;
        async move {
            let report = reconciler.tick().await?;
            tracing::info!(?report, "reconciler tick");
            Ok::<_, Error>(serde_json::to_value(report)?)
        }
    }))
    .await
}
