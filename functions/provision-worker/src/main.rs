//! The provision worker on AWS Lambda, triggered by the task and notification queues
//! (`ReportBatchItemFailures`).

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use paved_backend::{Backend, BackendConfig, WorkflowUse};
use paved_core::catalog::CatalogRepository;
use paved_core::ports::SystemClock;
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
    let backend = Backend::open(&BackendConfig::from_env()?, WorkflowUse::AnswersTokens).await?;
    let table = Arc::clone(&backend.table);
    let catalog = Arc::new(CatalogRepository::load(Arc::clone(&table)).await?);
    let drivers = DriverConfig::from_env(backend.data_dir().map(|d| d.join("git")))
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
        runner,
        backend.workflow,
        requests,
        clock,
        config,
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
