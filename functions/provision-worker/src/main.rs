//! The provision worker on AWS Lambda, triggered by the task and notification queues
//! (`ReportBatchItemFailures`).

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use paved_backend::{Backend, BackendConfig, WorkflowUse};
use paved_core::catalog::CatalogRepository;
use paved_core::provisioning::TableSecretStore;
use paved_drivers::config::DriverConfig;
use provision_worker::lambda::handle_event;
use provision_worker::{ProvisionWorker, WorkerConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let backend = Backend::open(&BackendConfig::from_env()?, WorkflowUse::AnswersTokens).await?;
    let table = Arc::clone(&backend.table);
    let drivers_config = DriverConfig::from_env(backend.data_dir().map(|d| d.join("git")));
    // Only the service driver reads the catalog; don't pay for loading it otherwise.
    let catalog = match drivers_config.git_root {
        Some(_) => Some(Arc::new(CatalogRepository::load(Arc::clone(&table)).await?)),
        None => None,
    };
    let drivers = drivers_config
        .build(Arc::new(TableSecretStore::new(Arc::clone(&table))), catalog)
        .await?;
    let config = WorkerConfig {
        max_receives: std::env::var("PAVED_MAX_RECEIVES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5),
        ..WorkerConfig::default()
    };
    let worker = Arc::new(ProvisionWorker::on_backend(
        &backend,
        drivers,
        config,
        paved_chat::notify::SlackTargets::from_env(),
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let worker = Arc::clone(&worker);
        async move { Ok::<_, Error>(handle_event(&worker, event.payload).await) }
    }))
    .await
}
