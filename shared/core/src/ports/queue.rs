//! A message queue with at-least-once delivery and visibility timeouts: the subset of SQS that
//! paved's workers need.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;

/// A message to send.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueMessage {
    pub body: String,
    /// Delivery is held back this long (SQS `DelaySeconds`).
    pub delay: Duration,
}

impl QueueMessage {
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
}

/// A message as received: hidden from other receivers until its visibility timeout passes or
/// it is deleted with its receipt handle.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    /// How many times this message has been received, this time included.
    pub receive_count: u32,
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends a message and returns its id.
    async fn send(&self, queue: &str, message: QueueMessage) -> Result<String, StoreError>;
    /// Sends several messages (SQS's `SendMessageBatch`, ten at a time; one transaction on
    /// the embedded queue); the default sends them one by one.
    async fn send_batch(&self, queue: &str, messages: Vec<QueueMessage>) -> Result<(), StoreError> {
        for m in messages {
            self.send(queue, m).await?;
        }
        Ok(())
    }
    /// Receives up to `max` visible messages, hiding them for `visibility`.
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, StoreError>;
    /// Deletes a received message. A stale receipt handle is not an error (SQS semantics).
    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<(), StoreError>;
    /// Deletes several received messages (SQS's `DeleteMessageBatch`); the default deletes
    /// them one by one.
    async fn delete_batch(
        &self,
        queue: &str,
        receipt_handles: &[String],
    ) -> Result<(), StoreError> {
        for r in receipt_handles {
            self.delete(queue, r).await?;
        }
        Ok(())
    }
    /// Waits up to `max` for a message to be sent (SQS's long polling); returns early when one
    /// may be there. The default just sleeps.
    async fn wait_for_messages(&self, max: Duration) {
        tokio::time::sleep(max).await;
    }
    /// Changes how long a received message stays hidden (zero makes it visible now).
    async fn change_visibility(
        &self,
        queue: &str,
        receipt_handle: &str,
        visibility: Duration,
    ) -> Result<(), StoreError>;
}
