//! Chat notifications on the notifications queue: a request waits for an approval, or became
//! READY or FAILED. Each is delivered to Slack once: an idempotency record per request and
//! event stops duplicate messages (SQS delivers at least once; the state machine's
//! notification may be handled twice), and a failed post goes back to the queue to be retried,
//! then to its dead-letter queue.

use std::sync::Arc;
use std::time::Duration;

use paved_chat::notify::{ChatEvent, ChatNotification, Delivered, SlackNotifier, SlackTargets};
use paved_chat::origins::ChatOrigins;
use paved_core::idempotency::{IdempotencyStore, NextAction};
use paved_core::ports::{Clock, Queue, QueueMessage, Table};
use paved_core::requests::{ProvisioningRequest, RequestStatus};
use serde_json::{Value, json};

use crate::worker::{ProvisionWorker, WorkerError};

/// How long one delivery may hold its record before another may try (a crashed attempt).
const DELIVERY_LEASE: Duration = Duration::from_secs(60);
/// How long a delivered notification is remembered.
const REMEMBER_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the worker needs to send and deliver chat notifications.
pub struct ChatDelivery {
    notifier: SlackNotifier,
    origins: ChatOrigins,
    once: IdempotencyStore,
    queue: Arc<dyn Queue>,
    queue_name: String,
}

impl std::fmt::Debug for ChatDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatDelivery").finish_non_exhaustive()
    }
}

impl ChatDelivery {
    pub fn new(
        targets: SlackTargets,
        table: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
        queue: Arc<dyn Queue>,
        queue_name: String,
    ) -> Self {
        Self {
            notifier: SlackNotifier::new(targets),
            origins: ChatOrigins::new(Arc::clone(&table)),
            once: IdempotencyStore::new(table, clock, "chat-notifications", REMEMBER_FOR),
            queue,
            queue_name,
        }
    }
}

fn event_of(status: RequestStatus) -> Option<ChatEvent> {
    match status {
        RequestStatus::Ready => Some(ChatEvent::Ready),
        RequestStatus::Failed => Some(ChatEvent::Failed),
        _ => None,
    }
}

impl ProvisionWorker {
    /// Queues the chat notification of a finished request (READY or FAILED). Called every time
    /// the state machine's notification is handled, so a redelivery re-queues it; delivery is
    /// once per request and event.
    pub(crate) async fn queue_chat_notification(
        &self,
        request: &ProvisioningRequest,
    ) -> Result<(), WorkerError> {
        let (Some(chat), Some(event)) = (&self.chat, event_of(request.status)) else {
            return Ok(());
        };
        let note = ChatNotification::new(&request.id, event);
        chat.queue
            .send(&chat.queue_name, QueueMessage::new(note.to_json()))
            .await
            .map_err(|e| WorkerError::Retry(format!("queueing the chat notification: {e}")))?;
        Ok(())
    }

    pub(crate) async fn handle_chat(&self, note: ChatNotification) -> Result<(), WorkerError> {
        let Some(chat) = &self.chat else {
            tracing::info!(request_id = %note.request_id, "chat is not configured; notification dropped");
            return Ok(());
        };
        let key = note.delivery_key();
        let payload = json!({"event": note.event});
        let lease = match chat
            .once
            .try_acquire(&key, &payload, DELIVERY_LEASE)
            .await?
        {
            NextAction::Execute(lease) => lease,
            NextAction::Replay(_) => {
                tracing::info!(key, "chat notification already delivered");
                return Ok(());
            }
            NextAction::InProgress => {
                return Err(WorkerError::Retry(format!(
                    "the chat notification {key} is being delivered by another attempt"
                )));
            }
        };
        match self.deliver_chat(chat, &note).await {
            Ok(outcome) => {
                tracing::info!(key, outcome = ?outcome, "chat notification handled");
                chat.once
                    .complete(
                        &key,
                        &lease,
                        &payload,
                        &json!({"outcome": format!("{outcome:?}")}),
                    )
                    .await?;
                Ok(())
            }
            Err(e) => {
                chat.once.release(&key, &lease).await?;
                Err(e)
            }
        }
    }

    async fn deliver_chat(
        &self,
        chat: &ChatDelivery,
        note: &ChatNotification,
    ) -> Result<Delivered, WorkerError> {
        if matches!(
            note.event,
            ChatEvent::Drifted | ChatEvent::Repaired | ChatEvent::Unrepairable
        ) {
            let Some(reconciler) = &self.reconciler else {
                return Ok(Delivered::NoTarget("this worker runs no reconciler"));
            };
            let Some(state) = reconciler.resources().get(&note.request_id).await? else {
                return Ok(Delivered::NoTarget("the resource is no longer tracked"));
            };
            let view = state.view(self.now());
            return chat
                .notifier
                .deliver(note, &view, None, self.now())
                .await
                .map_err(|e| WorkerError::Retry(e.to_string()));
        }
        let request = self.requests.get(&note.request_id).await?;
        if note.event == ChatEvent::ApprovalNeeded
            && request.status != RequestStatus::WaitingForApproval
        {
            return Ok(Delivered::NoTarget("the request was decided already"));
        }
        let origin = chat.origins.get(&note.request_id).await?;
        let view = serde_json::to_value(&request).unwrap_or(Value::Null);
        chat.notifier
            .deliver(note, &view, origin.as_ref(), self.now())
            .await
            .map_err(|e| WorkerError::Retry(e.to_string()))
    }
}
