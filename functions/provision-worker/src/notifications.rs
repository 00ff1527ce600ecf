//! The state machine's final notification: the request becomes READY or FAILED. Handling it
//! twice changes nothing (a finished request stays as it is).

use paved_core::Error;
use paved_core::messages::{ExecutionOutcome, Outcome};
use paved_core::requests::{Failure, RequestStatus, StepStatus};
use serde_json::{Map, Value};

use crate::worker::{ProvisionWorker, WorkerError};

impl ProvisionWorker {
    pub(crate) async fn handle_notification(&self, n: ExecutionOutcome) -> Result<(), WorkerError> {
        let current = self.requests.get(&n.request_id).await?;
        if current.status.is_finished() {
            // A redelivery: queue the chat notification again in case the first handling died
            // before it did (its delivery happens once either way).
            return self.queue_chat_notification(&current).await;
        }
        let execution = n.execution_id.unwrap_or_default();
        let ready = n.status == Outcome::Ready;
        self.requests
            .update_retrying(&n.request_id, |r, now| {
                if r.status.is_finished() {
                    return Ok(());
                }
                if r.status == RequestStatus::Queued {
                    r.advance(RequestStatus::Provisioning, "the execution started", now)?;
                }
                if ready {
                    let mut outputs = Map::new();
                    for s in r.steps.iter().filter(|s| s.status == StepStatus::Succeeded) {
                        if let Value::Object(o) = &s.outputs {
                            outputs.extend(o.clone());
                        }
                    }
                    r.outputs = Value::Object(outputs);
                    r.advance(
                        RequestStatus::Ready,
                        &format!("every step succeeded ({execution})"),
                        now,
                    )
                } else {
                    let failure = r.failure.clone().unwrap_or_else(|| Failure {
                        code: "NonRetryable.ProvisioningFailed".into(),
                        message: "a step failed and the applied steps were undone".into(),
                    });
                    r.failure = Some(failure.clone());
                    r.advance(RequestStatus::Failed, &failure.message, now)
                }
            })
            .await
            .map_err(|e: Error| WorkerError::Domain(e))?;
        let finished = self.requests.get(&n.request_id).await?;
        self.queue_chat_notification(&finished).await
    }
}
