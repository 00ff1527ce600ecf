//! Idempotency records over the embedded table: one lock, replays, expiry, key reuse.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use paved_core::idempotency::{IdempotencyStore, NextAction};
use paved_core::ports::Clock;
use paved_embedded::SqliteStore;
use serde_json::json;

/// A clock the test moves by hand.
struct ManualClock(Mutex<DateTime<Utc>>);

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock()
    }
}

fn setup() -> (tempfile::TempDir, Arc<ManualClock>, IdempotencyStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("paved.db")).expect("open");
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    let idem = IdempotencyStore::new(
        Arc::new(store),
        clock.clone(),
        "test",
        Duration::from_secs(3600),
    );
    (dir, clock, idem)
}

#[tokio::test]
async fn the_first_caller_executes_and_later_ones_replay() {
    let (_d, _clock, idem) = setup();
    let payload = json!({"template": "postgres-database", "name": "orders"});
    assert_eq!(
        idem.try_acquire("k1", &payload, Duration::from_secs(30))
            .await
            .expect("lock"),
        NextAction::Execute
    );
    assert_eq!(
        idem.try_acquire("k1", &payload, Duration::from_secs(30))
            .await
            .expect("lock"),
        NextAction::InProgress
    );
    idem.complete("k1", &payload, &json!({"id": "req-1"}))
        .await
        .expect("complete");
    assert_eq!(
        idem.try_acquire("k1", &payload, Duration::from_secs(30))
            .await
            .expect("lock"),
        NextAction::Replay(json!({"id": "req-1"}))
    );
    let other = json!({"template": "postgres-database", "name": "payments"});
    let err = idem
        .try_acquire("k1", &other, Duration::from_secs(30))
        .await
        .expect_err("reused");
    assert_eq!(err.code(), "idempotency_key_reused");
}

#[tokio::test]
async fn an_abandoned_lock_can_be_taken_after_its_deadline() {
    let (_d, clock, idem) = setup();
    let payload = json!({"a": 1});
    assert_eq!(
        idem.try_acquire("k", &payload, Duration::from_secs(10))
            .await
            .expect("lock"),
        NextAction::Execute
    );
    *clock.0.lock() += chrono::Duration::seconds(11);
    assert_eq!(
        idem.try_acquire("k", &payload, Duration::from_secs(10))
            .await
            .expect("lock"),
        NextAction::Execute
    );
    idem.release("k").await.expect("release");
    assert_eq!(
        idem.try_acquire("k", &payload, Duration::from_secs(10))
            .await
            .expect("lock"),
        NextAction::Execute
    );
}

#[tokio::test]
async fn concurrent_callers_get_one_lock() {
    let (_d, _clock, idem) = setup();
    let idem = Arc::new(idem);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let idem = Arc::clone(&idem);
            tokio::spawn(async move {
                idem.try_acquire("same", &json!({"x": 1}), Duration::from_secs(30))
                    .await
                    .expect("lock")
            })
        })
        .collect();
    let mut executed = 0;
    for t in tasks {
        if t.await.expect("join") == NextAction::Execute {
            executed += 1;
        }
    }
    assert_eq!(executed, 1);
}
