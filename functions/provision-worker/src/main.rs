//! The provision worker on AWS Lambda, triggered by the task and notification queues
//! (`ReportBatchItemFailures`).

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use paved_core::catalog::CatalogRepository;
use paved_core::ports::{SystemClock, Table};
use paved_core::provisioning::TableSecretStore;
use paved_core::requests::RequestRepository;
use paved_core::tasks::TaskRunner;
use paved_drivers::config::DriverConfig;
use provision_worker::lambda::{batch_response, deliveries};
use provision_worker::{ProvisionWorker, WorkerConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    paved_http::lambda::require_embedded_backend()?;
    let (data_dir, store) = paved_embedded::SqliteStore::open_data_dir_from_env()?;
    let table: Arc<dyn Table> = Arc::new(store.clone());
    let workflow = Arc::new(paved_embedded::WorkflowEngine::provisioning(store)?);
    let catalog = Arc::new(CatalogRepository::load(Arc::clone(&table)).await?);
    let drivers = DriverConfig::from_env(Some(data_dir.join("git")))
        .build(
            Arc::new(TableSecretStore::new(Arc::clone(&table))),
            Some(catalog),
        )
        .await?;
    let clock = Arc::new(SystemClock);
    let config = WorkerConfig {
        max_receives: std::env::var("PAVED_MAX_RECEIVES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5),
        ..WorkerConfig::default()
    };
    let runner = Arc::new(TaskRunner::new(
        drivers,
        Arc::clone(&table),
        clock.clone(),
        config.attempt_timeout.max(Duration::from_secs(1)),
    ));
    let requests = Arc::new(RequestRepository::new(table, clock.clone()));
    let worker = Arc::new(ProvisionWorker::new(
        runner, workflow, requests, clock, config,
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let worker = Arc::clone(&worker);
        async move {
            let failed = worker.handle_batch(&deliveries(event.payload)).await;
            Ok::<_, Error>(batch_response(failed))
        }
    }))
    .await
}
