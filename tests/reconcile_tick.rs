//! The reconciliation loop's tick on the SQLite store with a clock the test moves: start slots
//! exactly `1/rate` apart, never handed out twice, lost observations queued again, and a
//! paused provider left alone.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use paved_core::messages::WorkerMessage;
use paved_core::ports::{Clock, Queue, QueueMessage, ReceivedMessage, StoreError, Table};
use paved_core::requests::{NewRequest, RequestRepository, RequestStatus};
use paved_core::resources::{ObserveTask, Reconciler, ReconcilerSettings};
use serde_json::json;

struct TestClock(Mutex<DateTime<Utc>>);

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock()
    }
}

/// Keeps what is sent; the tick only sends.
#[derive(Default)]
struct SentQueue(Mutex<Vec<QueueMessage>>);

#[async_trait]
impl Queue for SentQueue {
    async fn send(&self, _: &str, message: QueueMessage) -> Result<String, StoreError> {
        self.0.lock().push(message);
        Ok("id".into())
    }
    async fn receive(
        &self,
        _: &str,
        _: usize,
        _: Duration,
    ) -> Result<Vec<ReceivedMessage>, StoreError> {
        Ok(Vec::new())
    }
    async fn delete(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn change_visibility(&self, _: &str, _: &str, _: Duration) -> Result<(), StoreError> {
        Ok(())
    }
}

impl SentQueue {
    fn take(&self) -> Vec<(ObserveTask, Duration)> {
        self.0
            .lock()
            .drain(..)
            .map(
                |m| match WorkerMessage::parse(&m.body).expect("a worker message") {
                    WorkerMessage::Observe(t) => (t, m.delay),
                    other => panic!("not an observe task: {other:?}"),
                },
            )
            .collect()
    }
}

#[tokio::test]
async fn the_tick_hands_out_each_slot_once_at_the_providers_rate() {
    let dir = tempfile::tempdir().expect("dir");
    let store = paved_sqlite::SqliteStore::open(&dir.path().join("paved.db")).expect("store");
    let table: Arc<dyn Table> = Arc::new(store);
    let start = Utc::now();
    let clock = Arc::new(TestClock(Mutex::new(start)));
    let queue = Arc::new(SentQueue::default());
    // The observation slots alone: leak scans (which share them) are tested beside the worker.
    let settings = ReconcilerSettings {
        default_rate: 10.0,
        leak_scan_every: None,
        ..ReconcilerSettings::default()
    };
    let reconciler = Reconciler::new(
        Arc::clone(&table),
        queue.clone(),
        "tasks".into(),
        "notes".into(),
        clock.clone(),
        settings,
    );
    let requests = RequestRepository::new(Arc::clone(&table), clock.clone());
    for i in 0..50 {
        let r = requests
            .create(NewRequest {
                id: format!("req-{i:024}"),
                template: "widget".into(),
                resource_type: "widget".into(),
                name: format!("widget-{i:03}"),
                owner: "group:default/team-a".into(),
                environment: "development".into(),
                parameters: json!({}),
                requester: "user:default/alice".into(),
                steps: vec!["one".into()],
                needs_approval: false,
                reconcile: Default::default(),
            })
            .await
            .expect("create");
        let r = requests
            .update(&r.id, |r, at| {
                r.advance(RequestStatus::Queued, "t", at)?;
                r.advance(RequestStatus::Provisioning, "t", at)?;
                r.advance(RequestStatus::Ready, "t", at)
            })
            .await
            .expect("ready");
        reconciler
            .track_due_at(&r, start.timestamp_millis() - 1000)
            .await
            .expect("track");
    }

    let report = reconciler.tick().await.expect("tick");
    assert_eq!(report.queued.get("widget"), Some(&50), "{report:?}");
    let sent = queue.take();
    let slots: Vec<i64> = sent.iter().map(|(t, _)| t.not_before_ms).collect();
    let first = start.timestamp_millis();
    let expected: Vec<i64> = (0..50).map(|i| first + i * 100).collect();
    assert_eq!(slots, expected, "10 per second: one slot every 100 ms");
    assert_eq!(
        sent[49].1,
        Duration::from_millis(4900),
        "queued with the delay to its slot"
    );

    // A second tick at the same time (EventBridge may invoke twice): nothing new to hand out.
    let again = reconciler.tick().await.expect("tick again");
    assert_eq!(again.queued.get("widget"), Some(&0), "{again:?}");
    assert!(queue.take().is_empty());

    // Eleven minutes later none was observed (their tasks were lost): queued again, on slots
    // after the last one given out.
    *clock.0.lock() = start + chrono::Duration::minutes(11);
    let rescued = reconciler.tick().await.expect("rescue tick");
    assert_eq!(rescued.queued.get("widget"), Some(&50), "{rescued:?}");
    let sent = queue.take();
    let now = clock.now().timestamp_millis();
    assert_eq!(sent[0].0.not_before_ms, now);
    assert!(
        sent.windows(2)
            .all(|w| w[1].0.not_before_ms - w[0].0.not_before_ms == 100)
    );
}
