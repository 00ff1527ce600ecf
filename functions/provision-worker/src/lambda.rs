//! The SQS event source mapping's formats: a batch in, `batchItemFailures` out.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

use crate::worker::{Delivery, ProvisionWorker};

/// The batch's messages, with SQS's `ApproximateReceiveCount`.
pub fn deliveries(event: SqsEvent) -> Vec<Delivery> {
    event
        .records
        .into_iter()
        .map(|r| Delivery {
            message_id: r.message_id.unwrap_or_default(),
            body: r.body.unwrap_or_default(),
            receive_count: r
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1),
        })
        .collect()
}

/// The answer that makes SQS retry only the failed messages (`ReportBatchItemFailures`).
pub fn batch_response(failed: Vec<String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    response
}

/// One invocation by the event source mapping: the batch through the worker, and the
/// messages to retry.
pub async fn handle_event(worker: &ProvisionWorker, event: SqsEvent) -> SqsBatchResponse {
    batch_response(worker.handle_batch(&deliveries(event)).await)
}
