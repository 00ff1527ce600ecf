//! Idempotency records over the embedded table: one lock, replays, expiry, key reuse.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use paved_core::idempotency::{IdempotencyStore, Lease, NextAction};
use paved_core::ports::Clock;
use paved_sqlite::SqliteStore;
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

fn lease(action: NextAction) -> Lease {
    match action {
        NextAction::Execute(lease) => lease,
        other => panic!("expected the lock, got {other:?}"),
    }
}

#[tokio::test]
async fn the_first_caller_executes_and_later_ones_replay() {
    let (_d, _clock, idem) = setup();
    let payload = json!({"template": "postgres-database", "name": "orders"});
    let held = lease(
        idem.try_acquire("k1", &payload, Duration::from_secs(30))
            .await
            .expect("lock"),
    );
    assert_eq!(
        idem.try_acquire("k1", &payload, Duration::from_secs(30))
            .await
            .expect("lock"),
        NextAction::InProgress
    );
    idem.complete("k1", &held, &payload, &json!({"id": "req-1"}))
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
    lease(
        idem.try_acquire("k", &payload, Duration::from_secs(10))
            .await
            .expect("lock"),
    );
    *clock.0.lock() += chrono::Duration::seconds(11);
    let second = lease(
        idem.try_acquire("k", &payload, Duration::from_secs(10))
            .await
            .expect("lock"),
    );
    idem.release("k", &second).await.expect("release");
    lease(
        idem.try_acquire("k", &payload, Duration::from_secs(10))
            .await
            .expect("lock"),
    );
}

#[tokio::test]
async fn a_holder_whose_lock_was_taken_over_can_neither_renew_release_nor_complete_it() {
    let (_d, clock, idem) = setup();
    let payload = json!({"task": "t-1"});
    let first = lease(
        idem.try_acquire("t", &payload, Duration::from_secs(10))
            .await
            .expect("lock"),
    );
    // The first holder stalls past its deadline; a redelivery takes the lock over.
    *clock.0.lock() += chrono::Duration::seconds(11);
    let second = lease(
        idem.try_acquire("t", &payload, Duration::from_secs(10))
            .await
            .expect("lock"),
    );
    assert_ne!(first, second);

    // The stale holder wakes up: its renew and complete are refused, its release is a no-op.
    let err = idem
        .renew("t", &first, &payload, Duration::from_secs(10))
        .await
        .expect_err("lost");
    assert_eq!(err.code(), "conflict");
    idem.release("t", &first).await.expect("release is a no-op");
    let err = idem
        .complete("t", &first, &payload, &json!({"by": "first"}))
        .await
        .expect_err("lost");
    assert_eq!(err.code(), "conflict");
    assert_eq!(
        idem.try_acquire("t", &payload, Duration::from_secs(10))
            .await
            .expect("lock"),
        NextAction::InProgress,
        "the successor still holds the lock"
    );

    // The successor's lease works throughout.
    idem.renew("t", &second, &payload, Duration::from_secs(10))
        .await
        .expect("renew");
    idem.complete("t", &second, &payload, &json!({"by": "second"}))
        .await
        .expect("complete");
    assert_eq!(
        idem.try_acquire("t", &payload, Duration::from_secs(10))
            .await
            .expect("lock"),
        NextAction::Replay(json!({"by": "second"}))
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
        if matches!(t.await.expect("join"), NextAction::Execute(_)) {
            executed += 1;
        }
    }
    assert_eq!(executed, 1);
}
