//! The [`Queue`] port on SQLite, with SQS's at-least-once semantics: a received message is
//! hidden until its visibility timeout passes, and comes back if it is not deleted.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use paved_core::ports::{Queue, QueueMessage, ReceivedMessage, StoreError};
use rusqlite::{TransactionBehavior, params};

use crate::db::{SqliteStore, store_error};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Sends inside the caller's transaction: the workflow engine uses it so that a state change
/// and the message it sends commit together.
pub fn enqueue(
    conn: &rusqlite::Connection,
    queue: &str,
    body: &str,
    delay: Duration,
) -> Result<String, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    conn.prepare_cached(
        "INSERT INTO queue_messages (id, queue, body, sent_at_ms, visible_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| s.execute(params![id, queue, body, now, now + ms(delay)]))
    .map_err(store_error)?;
    Ok(id)
}

/// Milliseconds since the Unix epoch, as the queue's visibility times count them.
pub fn now_millis() -> i64 {
    now_ms()
}

#[async_trait]
impl Queue for SqliteStore {
    async fn send(&self, queue: &str, message: QueueMessage) -> Result<String, StoreError> {
        let queue = queue.to_owned();
        let id = self
            .run(move |conn| enqueue(conn, &queue, &message.body, message.delay))
            .await?;
        self.messages_sent.notify_waiters();
        Ok(id)
    }

    async fn send_batch(&self, queue: &str, messages: Vec<QueueMessage>) -> Result<(), StoreError> {
        let queue = queue.to_owned();
        self.run(move |conn| {
            let tx = conn.transaction().map_err(store_error)?;
            for m in &messages {
                enqueue(&tx, &queue, &m.body, m.delay)?;
            }
            tx.commit().map_err(store_error)
        })
        .await?;
        self.messages_sent.notify_waiters();
        Ok(())
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, StoreError> {
        let queue = queue.to_owned();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(store_error)?;
            let now = now_ms();
            let picked: Vec<(String, String, u32)> = {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT id, body, receive_count FROM queue_messages
                         WHERE queue = ?1 AND visible_at_ms <= ?2 ORDER BY visible_at_ms, sent_at_ms LIMIT ?3",
                    )
                    .map_err(store_error)?;
                let limit = i64::try_from(max).unwrap_or(i64::MAX);
                stmt.query_map(params![queue, now, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .map_err(store_error)?
                    .collect::<Result<_, _>>()
                    .map_err(store_error)?
            };
            let mut out = Vec::with_capacity(picked.len());
            for (id, body, count) in picked {
                let receipt = uuid::Uuid::new_v4().to_string();
                tx.execute(
                    "UPDATE queue_messages SET visible_at_ms = ?1, receive_count = receive_count + 1, receipt = ?2 WHERE id = ?3",
                    params![now + ms(visibility), receipt, id],
                )
                .map_err(store_error)?;
                out.push(ReceivedMessage { message_id: id, receipt_handle: receipt, body, receive_count: count + 1 });
            }
            tx.commit().map_err(store_error)?;
            Ok(out)
        })
        .await
    }

    async fn delete_batch(
        &self,
        queue: &str,
        receipt_handles: &[String],
    ) -> Result<(), StoreError> {
        let (queue, receipts) = (queue.to_owned(), receipt_handles.to_vec());
        self.run(move |conn| {
            let tx = conn.transaction().map_err(store_error)?;
            {
                let mut stmt = tx
                    .prepare_cached("DELETE FROM queue_messages WHERE queue = ?1 AND receipt = ?2")
                    .map_err(store_error)?;
                for r in &receipts {
                    stmt.execute(params![queue, r]).map_err(store_error)?;
                }
            }
            tx.commit().map_err(store_error)
        })
        .await
    }

    async fn wait_for_messages(&self, max: Duration) {
        let _ = tokio::time::timeout(max, self.messages_sent.notified()).await;
    }

    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<(), StoreError> {
        let (queue, receipt) = (queue.to_owned(), receipt_handle.to_owned());
        self.run(move |conn| {
            conn.execute(
                "DELETE FROM queue_messages WHERE queue = ?1 AND receipt = ?2",
                params![queue, receipt],
            )
            .map_err(store_error)?;
            Ok(())
        })
        .await
    }

    async fn change_visibility(
        &self,
        queue: &str,
        receipt_handle: &str,
        visibility: Duration,
    ) -> Result<(), StoreError> {
        let (queue, receipt) = (queue.to_owned(), receipt_handle.to_owned());
        self.run(move |conn| {
            conn.execute(
                "UPDATE queue_messages SET visible_at_ms = ?1 WHERE queue = ?2 AND receipt = ?3",
                params![now_ms() + ms(visibility), queue, receipt],
            )
            .map_err(store_error)?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("paved.db")).expect("open");
        (dir, store)
    }

    #[tokio::test]
    async fn a_received_message_is_hidden_until_deleted_or_timed_out() {
        let (_d, s) = store();
        s.send("tasks", QueueMessage::new("one"))
            .await
            .expect("send");
        s.send("other", QueueMessage::new("elsewhere"))
            .await
            .expect("send");
        let got = s
            .receive("tasks", 10, Duration::from_millis(200))
            .await
            .expect("receive");
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].body.as_str(), got[0].receive_count), ("one", 1));
        assert!(
            s.receive("tasks", 10, Duration::from_secs(30))
                .await
                .expect("receive")
                .is_empty(),
            "hidden"
        );

        tokio::time::sleep(Duration::from_millis(250)).await;
        let again = s
            .receive("tasks", 10, Duration::from_secs(30))
            .await
            .expect("receive");
        assert_eq!(
            again[0].receive_count, 2,
            "redelivered after the visibility timeout"
        );

        s.delete("tasks", &got[0].receipt_handle)
            .await
            .expect("a stale receipt is not an error");
        s.delete("tasks", &again[0].receipt_handle)
            .await
            .expect("delete");
        s.change_visibility("tasks", &again[0].receipt_handle, Duration::ZERO)
            .await
            .expect("no-op");
        assert!(
            s.receive("tasks", 10, Duration::ZERO)
                .await
                .expect("receive")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn delays_and_visibility_changes() {
        let (_d, s) = store();
        s.send(
            "q",
            QueueMessage {
                body: "later".into(),
                delay: Duration::from_secs(60),
            },
        )
        .await
        .expect("send");
        assert!(
            s.receive("q", 1, Duration::from_secs(1))
                .await
                .expect("receive")
                .is_empty()
        );
        s.send("q", QueueMessage::new("now")).await.expect("send");
        let got = s
            .receive("q", 5, Duration::from_secs(60))
            .await
            .expect("receive");
        assert_eq!(got.len(), 1);
        s.change_visibility("q", &got[0].receipt_handle, Duration::ZERO)
            .await
            .expect("release");
        assert_eq!(
            s.receive("q", 5, Duration::from_secs(60))
                .await
                .expect("receive")
                .len(),
            1
        );
    }
}
