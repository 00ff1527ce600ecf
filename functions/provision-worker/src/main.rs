//! The provision worker on AWS Lambda, triggered by the task and notification queues
//! (`ReportBatchItemFailures`).

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use provision_worker::lambda::handle_event;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paved_http::lambda::init_tracing();
    let worker = Arc::new(provision_worker::worker_from_env().await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let worker = Arc::clone(&worker);
        async move { Ok::<_, Error>(handle_event(&worker, event.payload).await) }
    }))
    .await
}
