//! The event source mapping of `paved up`: polls a queue of the embedded store, hands batches
//! to the worker, deletes what succeeded, and moves a message that was received more than
//! `max_receives` times to the dead-letter queue, as SQS's redrive policy does.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use paved_core::ports::{Queue, QueueMessage};

use crate::worker::{Delivery, ProvisionWorker};

#[derive(Debug, Clone)]
pub struct QueueBinding {
    pub queue: String,
    pub dead_letter_queue: String,
    pub max_receives: u32,
    pub batch_size: usize,
    /// How long a received message stays hidden; extended every third of it while its batch
    /// runs, so a crash of `paved up` makes it visible again within this.
    pub visibility: Duration,
    /// How soon a failed message is retried the first time; doubled on each receive after.
    pub retry_after: Duration,
    /// The longest wait on an empty queue before polling again (a send wakes it sooner).
    pub idle_poll: Duration,
}

impl QueueBinding {
    pub fn new(queue: &str, dead_letter_queue: &str, max_receives: u32) -> Self {
        Self {
            queue: queue.to_owned(),
            dead_letter_queue: dead_letter_queue.to_owned(),
            max_receives,
            batch_size: 10,
            visibility: Duration::from_secs(45),
            retry_after: Duration::from_secs(2),
            idle_poll: Duration::from_millis(50),
        }
    }
}

/// Polls until `shutdown` resolves; a batch in flight is finished first.
pub async fn poll(
    queue: Arc<dyn Queue>,
    worker: Arc<ProvisionWorker>,
    binding: QueueBinding,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let idle = tokio::select! {
            () = &mut shutdown => return,
            idle = poll_once(queue.as_ref(), &worker, &binding) => idle,
        };
        if idle {
            tokio::select! {
                () = &mut shutdown => return,
                () = queue.wait_for_messages(binding.idle_poll) => {},
            }
        }
    }
}

/// One receive and its handling; `true` when the queue was empty (or failing).
pub async fn poll_once(queue: &dyn Queue, worker: &ProvisionWorker, b: &QueueBinding) -> bool {
    let received = match queue.receive(&b.queue, b.batch_size, b.visibility).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(queue = %b.queue, error = %e, "receiving failed");
            return true;
        }
    };
    if received.is_empty() {
        return true;
    }
    let mut batch = Vec::with_capacity(received.len());
    for m in &received {
        if m.receive_count > b.max_receives {
            tracing::error!(queue = %b.queue, message_id = %m.message_id, receives = m.receive_count, "moving the message to the dead-letter queue");
            let moved = queue
                .send(&b.dead_letter_queue, QueueMessage::new(m.body.clone()))
                .await;
            if moved.is_ok() {
                let _ = queue.delete(&b.queue, &m.receipt_handle).await;
            }
            continue;
        }
        batch.push(Delivery {
            message_id: m.message_id.clone(),
            body: m.body.clone(),
            receive_count: m.receive_count,
        });
    }
    let failed = {
        let handling = worker.handle_batch(&batch);
        tokio::pin!(handling);
        // Keep the batch hidden while it runs, as a long-running consumer of SQS would.
        let every = b.visibility / 3;
        let mut extend = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                failed = &mut handling => break failed,
                _ = extend.tick() => {
                    for m in &received {
                        let _ = queue.change_visibility(&b.queue, &m.receipt_handle, b.visibility).await;
                    }
                }
            }
        }
    };
    let mut done = Vec::with_capacity(received.len());
    for m in received
        .iter()
        .filter(|m| m.receive_count <= b.max_receives)
    {
        if failed.contains(&m.message_id) {
            // Exponential redelivery: retry_after, then twice that, and so on.
            let factor = 2u32.saturating_pow(m.receive_count.saturating_sub(1).min(10));
            let delay = (b.retry_after * factor).min(b.visibility);
            if let Err(e) = queue
                .change_visibility(&b.queue, &m.receipt_handle, delay)
                .await
            {
                tracing::warn!(error = %e, "could not delay a failed message; it comes back at its visibility timeout");
            }
        } else {
            done.push(m.receipt_handle.clone());
        }
    }
    if let Err(e) = queue.delete_batch(&b.queue, &done).await {
        tracing::warn!(error = %e, "could not delete handled messages; they will come back and replay");
    }
    false
}
