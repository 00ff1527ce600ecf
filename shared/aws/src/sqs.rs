//! The [`Queue`] port on SQS. Queue names map to URLs once (`GetQueueUrl`, cached).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, SendMessageBatchRequestEntry,
};
use parking_lot::Mutex;
use paved_core::ports::{Queue, QueueMessage, ReceivedMessage, StoreError};

use crate::errors::store_error;

#[derive(Debug)]
pub struct SqsQueue {
    client: Client,
    urls: Mutex<HashMap<String, String>>,
    /// `WaitTimeSeconds` of every receive: zero (answer at once) unless a poller asks for
    /// long polling, which answers as soon as a message arrives and saves empty receives.
    long_poll: Duration,
}

fn secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

impl SqsQueue {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: Client::new(config),
            urls: Mutex::new(HashMap::new()),
            long_poll: Duration::ZERO,
        }
    }

    /// Receives wait up to `wait` (at most 20 s, SQS's limit) for a message to arrive.
    pub fn with_long_polling(mut self, wait: Duration) -> Self {
        self.long_poll = wait.min(Duration::from_secs(20));
        self
    }

    /// Creates a queue if missing (for emulators and tests; on AWS the template does).
    pub async fn create_if_missing(&self, name: &str) -> Result<String, StoreError> {
        let out = self
            .client
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| store_error("CreateQueue", e))?;
        let url = out
            .queue_url
            .ok_or_else(|| StoreError::Backend("CreateQueue returned no URL".into()))?;
        self.urls.lock().insert(name.to_owned(), url.clone());
        Ok(url)
    }

    async fn url(&self, name: &str) -> Result<String, StoreError> {
        if name.starts_with("https://") || name.starts_with("http://") {
            return Ok(name.to_owned());
        }
        if let Some(u) = self.urls.lock().get(name) {
            return Ok(u.clone());
        }
        let out = self
            .client
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| store_error("GetQueueUrl", e))?;
        let url = out
            .queue_url
            .ok_or_else(|| StoreError::Backend(format!("no URL for queue {name}")))?;
        self.urls.lock().insert(name.to_owned(), url.clone());
        Ok(url)
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, queue: &str, message: QueueMessage) -> Result<String, StoreError> {
        let out = self
            .client
            .send_message()
            .queue_url(self.url(queue).await?)
            .message_body(message.body)
            .delay_seconds(secs(message.delay).min(900))
            .send()
            .await
            .map_err(|e| store_error("SendMessage", e))?;
        Ok(out.message_id.unwrap_or_default())
    }

    async fn send_batch(&self, queue: &str, messages: Vec<QueueMessage>) -> Result<(), StoreError> {
        let url = self.url(queue).await?;
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(&m.body)
                        .delay_seconds(secs(m.delay).min(900))
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| store_error("SendMessageBatch", e))?;
            if let Some(failed) = out.failed.first() {
                return Err(StoreError::Backend(format!(
                    "SendMessageBatch refused {} of {} messages (first: {} {})",
                    out.failed.len(),
                    chunk.len(),
                    failed.code,
                    failed.message.as_deref().unwrap_or_default()
                )));
            }
        }
        Ok(())
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, StoreError> {
        let out = self
            .client
            .receive_message()
            .queue_url(self.url(queue).await?)
            .max_number_of_messages(i32::try_from(max.clamp(1, 10)).unwrap_or(10))
            .visibility_timeout(secs(visibility))
            .wait_time_seconds(secs(self.long_poll))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| store_error("ReceiveMessage", e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| ReceivedMessage {
                receive_count: m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
                message_id: m.message_id.unwrap_or_default(),
                receipt_handle: m.receipt_handle.unwrap_or_default(),
                body: m.body.unwrap_or_default(),
            })
            .collect())
    }

    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<(), StoreError> {
        match self
            .client
            .delete_message()
            .queue_url(self.url(queue).await?)
            .receipt_handle(receipt_handle)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // A stale receipt handle is not an error (the port's contract).
            Err(e)
                if crate::errors::code(&e)
                    .is_some_and(|c| c.contains("ReceiptHandleIsInvalid")) =>
            {
                Ok(())
            }
            Err(e) => Err(store_error("DeleteMessage", e)),
        }
    }

    async fn delete_batch(
        &self,
        queue: &str,
        receipt_handles: &[String],
    ) -> Result<(), StoreError> {
        let url = self.url(queue).await?;
        for chunk in receipt_handles.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            self.client
                .delete_message_batch()
                .queue_url(&url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| store_error("DeleteMessageBatch", e))?;
        }
        Ok(())
    }

    async fn change_visibility(
        &self,
        queue: &str,
        receipt_handle: &str,
        visibility: Duration,
    ) -> Result<(), StoreError> {
        match self
            .client
            .change_message_visibility()
            .queue_url(self.url(queue).await?)
            .receipt_handle(receipt_handle)
            .visibility_timeout(secs(visibility))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if crate::errors::code(&e).is_some_and(|c| {
                    c.contains("ReceiptHandleIsInvalid") || c.contains("MessageNotInflight")
                }) =>
            {
                Ok(())
            }
            Err(e) => Err(store_error("ChangeMessageVisibility", e)),
        }
    }
}
