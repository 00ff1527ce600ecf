//! The DORA report function on AWS Lambda, run by an EventBridge schedule.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use paved_wiring::{Backend, BackendConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let backend_config = BackendConfig::from_env()?;
    let config = paved_analytics::job::DoraJobConfig::from_env()?;
    let table = Backend::open_table(&backend_config).await?;
    let job = paved_analytics::job::DoraJob::new(table, config);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let job = &job;
        async move {
            dora_report::handle(job, event.payload)
                .await
                .map_err(|e| Error::from(e.to_string()))
        }
    }))
    .await
}
