//! The state machine's final notification: the request becomes READY or FAILED. Handling it
//! twice changes nothing (a finished request stays as it is).

use paved_core::Error;
use paved_core::messages::ExecutionOutcome;

use crate::worker::{ProvisionWorker, WorkerError};

impl ProvisionWorker {
    pub(crate) async fn handle_notification(&self, n: ExecutionOutcome) -> Result<(), WorkerError> {
        let current = self.requests.get(&n.request_id).await?;
        if current.status.is_finished() {
            // A redelivery: track the resource and queue the chat notification again in case
            // the first handling died before it did (both happen once either way).
            self.track(&current).await?;
            return self.queue_chat_notification(&current).await;
        }
        let execution = n.execution_id.unwrap_or_default();
        self.requests
            .update_retrying(&n.request_id, |r, now| r.finish(n.status, &execution, now))
            .await
            .map_err(|e: Error| WorkerError::Domain(e))?;
        let finished = self.requests.get(&n.request_id).await?;
        self.track(&finished).await?;
        self.queue_chat_notification(&finished).await
    }

    /// A READY resource enters the reconciliation loop.
    async fn track(
        &self,
        request: &paved_core::requests::ProvisioningRequest,
    ) -> Result<(), WorkerError> {
        if let Some(reconciler) = &self.reconciler {
            reconciler.track(request).await?;
        }
        Ok(())
    }
}
