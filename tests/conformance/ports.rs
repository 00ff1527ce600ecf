//! The ports and the repositories written over them, and the provisioning state machine with
//! its queues.

use std::sync::Arc;
use std::time::Duration;

use paved_aws::{DynamoTable, SqsQueue, StepFunctionsWorkflow};
use paved_core::idempotency::{IdempotencyStore, NextAction};
use paved_core::ports::{
    Condition, Item, Key, Queue, QueueMessage, SortKeyRange, StoreError, SystemClock, Table,
    TransactOp, Workflow, WorkflowError,
};
use paved_core::requests::{NewRequest, ProvisioningRequest, RequestRepository, RequestStatus};
use paved_sqlite::SqliteStore;
use serde_json::{Value, json};

struct Backend {
    table: Arc<dyn Table>,
    queue: Arc<dyn Queue>,
    /// A queue name of this backend, fresh per test.
    queue_name: String,
    /// Whether two conditional writes racing on one item can never both succeed. DynamoDB and
    /// SQLite: yes. moto 5.2.5 checks and writes without a lock, so under real concurrency
    /// both may pass (docs/decisions.md, "Where moto and AWS differ").
    atomic_conditions: bool,
    _dir: Option<tempfile::TempDir>,
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

async fn embedded() -> Backend {
    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteStore::open(&dir.path().join("paved.db")).expect("open");
    Backend {
        table: Arc::new(store.clone()),
        queue: Arc::new(store),
        queue_name: unique("q"),
        atomic_conditions: true,
        _dir: Some(dir),
    }
}

async fn aws() -> Backend {
    let endpoint = std::env::var("PAVED_TEST_AWS_ENDPOINT").expect(
        "PAVED_TEST_AWS_ENDPOINT is not set: run scripts/test.sh, which starts moto on loopback",
    );
    let config = paved_aws::config::for_emulator(&endpoint).await;
    // The table as the template defines it (keys, TTL, PITR).
    let spec = paved_aws::stack::StackSpec::shipped().expect("the template");
    let name = paved_aws::bootstrap::create_table(&config, &spec.table, &unique("paved"))
        .await
        .expect("create the table");
    let table = DynamoTable::new(&config, &name);
    let queue = SqsQueue::new(&config);
    let queue_name = unique("q");
    queue
        .create_if_missing(&queue_name)
        .await
        .expect("create the queue");
    Backend {
        table: Arc::new(table),
        queue: Arc::new(queue),
        queue_name,
        atomic_conditions: false,
        _dir: None,
    }
}

fn item(pk: &str, sk: &str, attrs: Value) -> Item {
    let Value::Object(map) = attrs else {
        panic!("attrs must be an object")
    };
    Item::new(Key::new(pk, sk), map)
}

async fn conditional_writes_return_the_current_item(b: Backend) {
    let t = &b.table;
    let v1 = item(
        "E",
        "a",
        json!({"version": 1, "name": "one", "tags": ["x", "y"], "nested": {"n": 1.5}}),
    );
    t.put(v1.clone(), Condition::Absent)
        .await
        .expect("first put");
    assert_eq!(
        t.get(&Key::new("E", "a")).await.expect("get"),
        Some(v1.clone()),
        "attributes round-trip"
    );
    match t
        .put(item("E", "a", json!({"version": 9})), Condition::Absent)
        .await
    {
        Err(StoreError::ConditionFailed {
            current: Some(current),
            ..
        }) => assert_eq!(*current, v1),
        other => panic!("expected ConditionFailed with the item: {other:?}"),
    }
    let v2 = item("E", "a", json!({"version": 2, "name": "two"}));
    t.put(
        v2.clone(),
        Condition::AttrEquals {
            name: "version".into(),
            value: json!(1),
        },
    )
    .await
    .expect("conditional on the version");
    assert!(matches!(
        t.put(
            v2.clone(),
            Condition::AttrEquals {
                name: "version".into(),
                value: json!(1)
            }
        )
        .await,
        Err(StoreError::ConditionFailed { .. })
    ));
    t.put(
        item("E", "a", json!({"version": 3})),
        Condition::AnyOf(vec![
            Condition::Absent,
            Condition::AllOf(vec![
                Condition::Exists,
                Condition::AttrLessThan {
                    name: "version".into(),
                    value: 3,
                },
            ]),
        ]),
    )
    .await
    .expect("AnyOf/AllOf/AttrLessThan");
    assert!(matches!(
        t.delete(
            &Key::new("E", "a"),
            Condition::AttrEquals {
                name: "version".into(),
                value: json!(2)
            }
        )
        .await,
        Err(StoreError::ConditionFailed {
            current: Some(_),
            ..
        })
    ));
    t.delete(&Key::new("E", "a"), Condition::Exists)
        .await
        .expect("delete");
    assert_eq!(t.get(&Key::new("E", "a")).await.expect("get"), None);
    match t.delete(&Key::new("E", "a"), Condition::Exists).await {
        Err(StoreError::ConditionFailed { current: None, .. }) => {}
        other => panic!("expected ConditionFailed without an item: {other:?}"),
    }
}

async fn queries_page_through_a_partition_in_order(b: Backend) {
    let t = &b.table;
    for i in (0..25).rev() {
        t.put(
            item("P", &format!("k#{i:03}"), json!({"i": i})),
            Condition::Always,
        )
        .await
        .expect("put");
    }
    t.put(item("P", "other#1", json!({})), Condition::Always)
        .await
        .expect("put");
    t.put(item("Q", "k#000", json!({})), Condition::Always)
        .await
        .expect("put");
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = t
            .query(
                "P",
                &SortKeyRange::BeginsWith("k#".into()),
                after.as_deref(),
                10,
            )
            .await
            .expect("query");
        assert!(page.items.len() <= 10);
        seen.extend(page.items.iter().map(|i| i.key.sk.clone()));
        match page.last_sk {
            Some(sk) => after = Some(sk),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).map(|i| format!("k#{i:03}")).collect();
    assert_eq!(seen, expected, "every item once, in sort-key order");
    let between = t
        .query(
            "P",
            &SortKeyRange::Between("k#005".into(), "k#007".into()),
            None,
            100,
        )
        .await
        .expect("between");
    assert_eq!(
        between
            .items
            .iter()
            .map(|i| i.key.sk.as_str())
            .collect::<Vec<_>>(),
        ["k#005", "k#006", "k#007"]
    );
    let all = t
        .query("P", &SortKeyRange::All, None, 100)
        .await
        .expect("all");
    assert_eq!(all.items.len(), 26);
}

async fn transactions_are_all_or_nothing(b: Backend) {
    let t = &b.table;
    t.put(item("T", "taken", json!({"v": 1})), Condition::Always)
        .await
        .expect("put");
    let ops = vec![
        TransactOp::Put {
            item: item("T", "new", json!({"v": 1})),
            condition: Condition::Absent,
        },
        TransactOp::Put {
            item: item("T", "taken", json!({"v": 2})),
            condition: Condition::Absent,
        },
    ];
    match t.transact(ops).await {
        Err(StoreError::TransactionCancelled { failed }) => assert_eq!(failed, Some(1)),
        other => panic!("expected a cancelled transaction: {other:?}"),
    }
    assert_eq!(
        t.get(&Key::new("T", "new")).await.expect("get"),
        None,
        "nothing was written"
    );
    let ops = vec![
        TransactOp::Put {
            item: item("T", "new", json!({"v": 1})),
            condition: Condition::Absent,
        },
        TransactOp::Delete {
            key: Key::new("T", "taken"),
            condition: Condition::AttrEquals {
                name: "v".into(),
                value: json!(1),
            },
        },
        TransactOp::Check {
            key: Key::new("T", "missing"),
            condition: Condition::Absent,
        },
    ];
    t.transact(ops).await.expect("commit");
    assert!(t.get(&Key::new("T", "new")).await.expect("get").is_some());
    assert!(t.get(&Key::new("T", "taken")).await.expect("get").is_none());
    assert!(t.max_transaction_ops() >= 25);
}

async fn queue_messages_come_back_until_deleted(b: Backend) {
    let (q, name) = (&b.queue, b.queue_name.as_str());
    q.send(name, QueueMessage::new("one")).await.expect("send");
    let got = q
        .receive(name, 10, Duration::from_secs(1))
        .await
        .expect("receive");
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].body.as_str(), got[0].receive_count), ("one", 1));
    assert!(
        q.receive(name, 10, Duration::from_secs(30))
            .await
            .expect("receive")
            .is_empty(),
        "hidden while in flight"
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let again = q
        .receive(name, 10, Duration::from_secs(30))
        .await
        .expect("receive");
    assert_eq!(again.len(), 1, "back after its visibility timeout");
    assert_eq!(again[0].receive_count, 2);
    q.change_visibility(name, &again[0].receipt_handle, Duration::ZERO)
        .await
        .expect("release");
    let third = q
        .receive(name, 10, Duration::from_secs(30))
        .await
        .expect("receive");
    assert_eq!(third.len(), 1);
    q.delete_batch(name, &[third[0].receipt_handle.clone()])
        .await
        .expect("delete");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        q.receive(name, 10, Duration::ZERO)
            .await
            .expect("receive")
            .is_empty()
    );
}

async fn requests_hold_names_and_writes_are_conditional(b: Backend) {
    let repo = RequestRepository::new(Arc::clone(&b.table), Arc::new(SystemClock));
    let new = |id: &str, name: &str| NewRequest {
        id: id.into(),
        template: "postgres-database".into(),
        resource_type: "postgres-database".into(),
        name: name.into(),
        owner: "group:default/team-a".into(),
        environment: "staging".into(),
        parameters: json!({"storage_gb": 10}),
        requester: "user:default/alice".into(),
        steps: vec!["database".into(), "role".into()],
        needs_approval: false,
        reconcile: Default::default(),
    };
    let r = repo.create(new("r1", "orders")).await.expect("create");
    assert_eq!(r.status, RequestStatus::Submitted);
    assert_eq!(
        repo.create(new("r2", "orders"))
            .await
            .expect_err("taken")
            .code(),
        "name_taken"
    );
    assert_eq!(
        repo.create(new("r1", "other"))
            .await
            .expect_err("same id")
            .code(),
        "conflict"
    );
    assert_eq!(
        repo.live_count("group:default/team-a")
            .await
            .expect("count"),
        1
    );
    repo.transition("r1", RequestStatus::Queued, "go")
        .await
        .expect("queue");
    assert_eq!(
        repo.transition("r1", RequestStatus::Ready, "skip")
            .await
            .expect_err("edge")
            .code(),
        "invalid_transition"
    );
    // A writer holding an older version loses, and learns the current item (every backend).
    let current = repo.get("r1").await.expect("get");
    let mut stale = b
        .table
        .get(&Key::new("REQUEST", "r1"))
        .await
        .expect("get")
        .expect("the request item");
    stale.attrs.insert("status".into(), json!("CANCELLED"));
    match b
        .table
        .put(
            stale,
            Condition::AttrEquals {
                name: "version".into(),
                value: json!(current.version - 1),
            },
        )
        .await
    {
        Err(StoreError::ConditionFailed {
            current: Some(item),
            ..
        }) => {
            assert_eq!(item.attrs["version"], json!(current.version));
        }
        other => panic!("a stale write must fail its condition: {other:?}"),
    }
    // Two writers from the same version at once: one wins. moto 5.2.5 checks and writes
    // without a lock, so racing transactions there can undo each other's writes (a CI run
    // saw the live marker of a cancelled request come back); on it the two run one after
    // the other, and the version condition decides as well.
    let provisioning =
        |r: &mut ProvisioningRequest, now| r.advance(RequestStatus::Provisioning, "a", now);
    let cancelled =
        |r: &mut ProvisioningRequest, now| r.advance(RequestStatus::Cancelled, "b", now);
    let (a, b2) = if b.atomic_conditions {
        tokio::join!(
            repo.update("r1", provisioning),
            repo.update("r1", cancelled)
        )
    } else {
        let a = repo.update("r1", provisioning).await;
        (a, repo.update("r1", cancelled).await)
    };
    let winners = usize::from(a.is_ok()) + usize::from(b2.is_ok());
    if b.atomic_conditions {
        assert_eq!(winners, 1, "{a:?} / {b2:?}");
    } else {
        assert!(winners >= 1, "{a:?} / {b2:?}");
    }
    let now = repo.get("r1").await.expect("get");
    if now.status == RequestStatus::Provisioning {
        repo.transition("r1", RequestStatus::Failed, "broke")
            .await
            .expect("fail");
    }
    assert_eq!(
        repo.live_count("group:default/team-a")
            .await
            .expect("count"),
        0
    );
    repo.create(new("r3", "orders"))
        .await
        .expect("the name is free again");
    assert_eq!(
        repo.list(|r| r.name == "orders").await.expect("list").len(),
        2
    );
}

async fn idempotency_records_replay_and_refuse_other_payloads(b: Backend) {
    let store = IdempotencyStore::new(
        Arc::clone(&b.table),
        Arc::new(SystemClock),
        "conformance",
        Duration::from_secs(3600),
    );
    let payload = json!({"a": 1});
    let NextAction::Execute(lease) = store
        .try_acquire("k", &payload, Duration::from_secs(60))
        .await
        .expect("acquire")
    else {
        panic!("the first caller takes the lock");
    };
    assert_eq!(
        store
            .try_acquire("k", &payload, Duration::from_secs(60))
            .await
            .expect("again"),
        NextAction::InProgress
    );
    assert_eq!(
        store
            .try_acquire("k", &json!({"a": 2}), Duration::from_secs(60))
            .await
            .expect_err("other payload")
            .code(),
        "idempotency_key_reused"
    );
    store
        .complete("k", &lease, &payload, &json!({"out": [1, 2]}))
        .await
        .expect("complete");
    assert_eq!(
        store
            .try_acquire("k", &payload, Duration::from_secs(60))
            .await
            .expect("replay"),
        NextAction::Replay(json!({"out": [1, 2]}))
    );
    // A lapsed lease is taken over, and the lapsed holder may no longer complete.
    let NextAction::Execute(lapsed) = store
        .try_acquire("short", &payload, Duration::from_millis(1))
        .await
        .expect("acquire")
    else {
        panic!("the first caller takes the lock");
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let NextAction::Execute(successor) = store
        .try_acquire("short", &payload, Duration::from_secs(60))
        .await
        .expect("take over")
    else {
        panic!("a lapsed lease is taken over");
    };
    assert_eq!(
        store
            .complete("short", &lapsed, &payload, &json!({"by": "lapsed"}))
            .await
            .expect_err("fenced")
            .code(),
        "conflict"
    );
    store
        .renew("short", &successor, &payload, Duration::from_secs(60))
        .await
        .expect("the successor renews");
    store
        .complete("short", &successor, &payload, &json!({"by": "successor"}))
        .await
        .expect("the successor completes");
}

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("instant")
        .with_timezone(&chrono::Utc)
}

async fn event_store_deduplicates_deliveries_and_ships_pending_commits(b: Backend) {
    use paved_core::delivery::{
        ChangeRecord, Delivery, DeliveryStore, DeploymentRecord, IncidentRecord,
    };
    let events = DeliveryStore::new(Arc::clone(&b.table));
    let raw = json!({"zen": "Keep it logically awesome."});
    let now = at("2026-03-01T00:00:00Z");
    assert_eq!(
        events
            .record_delivery("github", "d-1", &raw, now)
            .await
            .expect("first"),
        Delivery::New
    );
    assert_eq!(
        events
            .record_delivery("github", "d-1", &raw, now)
            .await
            .expect("again"),
        Delivery::Duplicate
    );
    assert_eq!(
        events.delivery("github", "d-1").await.expect("raw"),
        Some(raw)
    );
    events
        .forget_delivery("github", "d-1")
        .await
        .expect("forget");
    assert_eq!(
        events
            .record_delivery("github", "d-1", &json!({}), now)
            .await
            .expect("retry"),
        Delivery::New
    );

    let commit = |sha: &str, authored: &str| ChangeRecord {
        sha: sha.into(),
        service: "orders".into(),
        authored_at: at(authored),
    };
    events
        .push_commits(
            "orders",
            &[
                commit("c1", "2026-03-01T10:00:00Z"),
                commit("c2", "2026-03-01T11:00:00Z"),
            ],
        )
        .await
        .expect("push");
    // The same commit pushed again (another branch, a re-delivery) keeps its earliest time.
    events
        .push_commits(
            "orders",
            &[
                commit("c2", "2026-03-01T12:00:00Z"),
                commit("c3", "2026-03-01T13:00:00Z"),
            ],
        )
        .await
        .expect("push again");
    let deployment = |id: &str, head: &str, finished: &str| DeploymentRecord {
        deploy_id: id.into(),
        service: "orders".into(),
        environment: "production".into(),
        status: "success".into(),
        kind: None,
        commit_sha: Some(head.into()),
        finished_at: at(finished),
        changes: Vec::new(),
    };
    // The deployment of c2 ships c1 and c2; c3 waits for the next one.
    let shipped = events
        .ship_pending(deployment("dep-1", "c2", "2026-03-01T14:00:00Z"))
        .await
        .expect("ship");
    assert_eq!(shipped, ["c1", "c2"]);
    let shipped = events
        .ship_pending(deployment("dep-2", "c3", "2026-03-02T09:00:00Z"))
        .await
        .expect("ship the rest");
    assert_eq!(shipped, ["c3"]);
    // A re-sent older row of dep-2 does not replace the newer one.
    let mut older = deployment("dep-2", "c3", "2026-03-02T08:00:00Z");
    older.changes = vec!["stale".into()];
    events.save_deployment(&older).await.expect("older");

    let incident = IncidentRecord {
        incident_id: "PD-1".into(),
        service: Some("orders".into()),
        created_at: at("2026-03-02T10:00:00Z"),
        resolved_at: None,
        deploy_id: None,
        commit_sha: None,
    };
    events.save_incident(&incident).await.expect("triggered");
    events
        .save_incident(&IncidentRecord {
            service: None,
            resolved_at: Some(at("2026-03-02T11:30:00Z")),
            ..incident.clone()
        })
        .await
        .expect("resolved");

    let mut loaded = events.load().await.expect("load");
    loaded
        .deployments
        .sort_by(|a, b| a.deploy_id.cmp(&b.deploy_id));
    loaded.changes.sort_by(|a, b| a.sha.cmp(&b.sha));
    assert_eq!(loaded.deployments.len(), 2);
    assert_eq!(loaded.deployments[1].changes, ["c3"]);
    assert_eq!(
        loaded.deployments[1].finished_at,
        at("2026-03-02T09:00:00Z")
    );
    let authored: Vec<_> = loaded
        .changes
        .iter()
        .map(|c| (c.sha.as_str(), c.authored_at))
        .collect();
    assert_eq!(
        authored,
        [
            ("c1", at("2026-03-01T10:00:00Z")),
            ("c2", at("2026-03-01T11:00:00Z")),
            ("c3", at("2026-03-01T13:00:00Z")),
        ]
    );
    assert_eq!(loaded.incidents.len(), 1);
    assert_eq!(loaded.incidents[0].service.as_deref(), Some("orders"));
    assert_eq!(
        loaded.incidents[0].resolved_at,
        Some(at("2026-03-02T11:30:00Z"))
    );

    events
        .save_report(&json!({"spec_version": "1"}), now)
        .await
        .expect("report");
    assert_eq!(
        events.latest_report().await.expect("latest"),
        Some((json!({"spec_version": "1"}), now))
    );
}

/// The reconciliation loop's store and queue use, alike on both backends: the tick claims each
/// provider's slots and its leak scan once (conditional writes on the provider item) and sends
/// one batch; resource states list by owner in a page; leaks are written, listed and swept in
/// transactions; an adopted request claims its name again, and a held name refuses it.
async fn the_reconcilers_slots_states_and_leaks_behave_alike(b: Backend) {
    use paved_core::observation::Found;
    use paved_core::resources::{
        Leak, LeakFilter, LeakReason, Reconciler, ReconcilerSettings, ResourceFilter,
    };

    let clock = Arc::new(SystemClock);
    let requests = RequestRepository::new(Arc::clone(&b.table), clock.clone());
    let reconciler = Reconciler::new(
        Arc::clone(&b.table),
        Arc::clone(&b.queue),
        b.queue_name.clone(),
        "notes".into(),
        clock,
        ReconcilerSettings {
            default_rate: 1000.0,
            ..ReconcilerSettings::default()
        },
    );
    let provider = unique("widget");
    let new = |i: usize| NewRequest {
        id: format!("req-{provider}-{i}"),
        template: "widget".into(),
        resource_type: provider.clone(),
        name: format!("widget-{i}"),
        owner: "group:default/team-a".into(),
        environment: "staging".into(),
        parameters: json!({}),
        requester: "user:default/alice".into(),
        steps: vec!["one".into()],
        needs_approval: false,
        reconcile: Default::default(),
    };
    let past = chrono::Utc::now().timestamp_millis() - 1000;
    for i in 0..5 {
        let r = requests.create(new(i)).await.expect("create");
        let r = requests
            .update(&r.id, |r, at| {
                r.advance(RequestStatus::Queued, "t", at)?;
                r.advance(RequestStatus::Provisioning, "t", at)?;
                r.advance(RequestStatus::Ready, "t", at)
            })
            .await
            .expect("ready");
        reconciler.track_due_at(&r, past).await.expect("track");
    }

    let first = reconciler.tick().await.expect("tick");
    assert_eq!(first.queued.get(&provider), Some(&5), "{first:?}");
    assert!(first.scans.contains(&provider), "{first:?}");
    let second = reconciler.tick().await.expect("tick");
    assert_eq!(
        second.queued.get(&provider).copied().unwrap_or(0),
        0,
        "{second:?}"
    );
    assert!(!second.scans.contains(&provider), "{second:?}");
    let mut kinds = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while kinds.len() < 6 && std::time::Instant::now() < deadline {
        for m in b
            .queue
            .receive(&b.queue_name, 10, Duration::from_secs(60))
            .await
            .expect("receive")
        {
            let v: Value = serde_json::from_str(&m.body).expect("json");
            kinds.push(v["kind"].as_str().expect("kind").to_owned());
        }
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "observe",
            "observe",
            "observe",
            "observe",
            "observe",
            "scan_leaks"
        ]
    );

    let page = reconciler
        .resources()
        .page(
            &ResourceFilter {
                owner: Some(paved_core::requests::owner_key("group:default/team-a")),
                resource_type: Some(provider.clone()),
                ..ResourceFilter::default()
            },
            None,
            3,
        )
        .await
        .expect("page");
    assert_eq!(page.items.len(), 3);
    assert!(page.next.is_some());

    // Leaks: two of a finished request of team-a's, one of an unknown request; an older scan's
    // leak is swept by a newer scan.
    let now = chrono::Utc::now();
    let leak = |name: &str, owner: Option<&str>, scan_ms: i64| {
        let found = Found {
            kind: "queue".into(),
            name: name.into(),
            request_id: Some("req-gone".into()),
        };
        Leak {
            id: paved_core::resources::leaks::leak_id(&provider, &found),
            resource_type: provider.clone(),
            found,
            reason: if owner.is_some() {
                LeakReason::RequestFinished
            } else {
                LeakReason::UnknownRequest
            },
            request_status: owner.map(|_| RequestStatus::Deleted),
            owner: owner.map(str::to_owned),
            environment: owner.map(|_| "staging".to_owned()),
            first_seen_at: now,
            last_seen_at: now,
            scan_ms,
            removal: None,
        }
    };
    let leaks = reconciler.leaks();
    for l in [
        leak("paved-staging-a", Some("group:default/team-a"), 2),
        leak("paved-staging-a-dlq", Some("group:default/team-a"), 2),
        leak("paved-elsewhere", None, 1),
    ] {
        leaks.record(l).await.expect("record");
    }
    let team = LeakFilter {
        owner: Some(paved_core::requests::owner_key("group:default/team-a")),
        resource_type: Some(provider.clone()),
        environment: None,
    };
    let (mine, _) = leaks.page(&team, None, 10).await.expect("page");
    assert_eq!(mine.len(), 2);
    let all = LeakFilter {
        resource_type: Some(provider.clone()),
        ..LeakFilter::default()
    };
    let (first_page, next) = leaks.page(&all, None, 2).await.expect("page");
    assert_eq!(first_page.len(), 2);
    let (rest, _) = leaks.page(&all, next.as_deref(), 2).await.expect("page");
    assert_eq!(rest.len(), 1);
    assert_eq!(leaks.sweep(&provider, 2).await.expect("sweep"), 1);
    let (left, _) = leaks.page(&all, None, 10).await.expect("page");
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|l| l.reason == LeakReason::RequestFinished));

    // Adoption claims the name again in the same transaction.
    requests
        .update(&format!("req-{provider}-0"), |r, at| {
            r.advance(RequestStatus::Deprovisioning, "t", at)?;
            r.advance(RequestStatus::Deleted, "t", at)
        })
        .await
        .expect("deleted");
    let adopted = requests
        .adopt(&format!("req-{provider}-0"), "adopted by root")
        .await
        .expect("adopt");
    assert_eq!(adopted.status, RequestStatus::Ready);
    let mut again = new(0);
    again.id = format!("req-{provider}-again");
    assert_eq!(
        requests.create(again).await.expect_err("held").code(),
        "name_taken"
    );
    requests
        .update(&format!("req-{provider}-1"), |r, at| {
            r.advance(RequestStatus::Deprovisioning, "t", at)?;
            r.advance(RequestStatus::Deleted, "t", at)
        })
        .await
        .expect("deleted");
    let mut taker = new(1);
    taker.id = format!("req-{provider}-taker");
    requests.create(taker).await.expect("the name is free");
    assert_eq!(
        requests
            .adopt(&format!("req-{provider}-1"), "adopted by root")
            .await
            .expect_err("held by the taker")
            .code(),
        "name_taken"
    );
    assert_eq!(
        requests
            .get(&format!("req-{provider}-1"))
            .await
            .expect("get")
            .status,
        RequestStatus::Deleted,
        "nothing half-written"
    );
}

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod embedded_backend {
            $(#[tokio::test] async fn $scenario() { super::$scenario(super::embedded().await).await; })*
        }
        mod aws_backend {
            $(#[tokio::test] async fn $scenario() { super::$scenario(super::aws().await).await; })*
        }
    };
}

on_both_backends!(
    conditional_writes_return_the_current_item,
    queries_page_through_a_partition_in_order,
    transactions_are_all_or_nothing,
    queue_messages_come_back_until_deleted,
    requests_hold_names_and_writes_are_conditional,
    idempotency_records_replay_and_refuse_other_payloads,
    event_store_deduplicates_deliveries_and_ships_pending_commits,
    the_reconcilers_slots_states_and_leaks_behave_alike,
);

/// The provisioning state machine with its queues, on one backend.
struct Flow {
    workflow: Arc<dyn Workflow>,
    queue: Arc<dyn Queue>,
    tasks: String,
    notes: String,
    /// Whether a second answer on a token is refused (AWS and embedded: yes; moto: no).
    reused_tokens_refused: bool,
    _dir: Option<tempfile::TempDir>,
}

async fn embedded_flow() -> Flow {
    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteStore::open(&dir.path().join("paved.db")).expect("open");
    let engine = paved_workflow::WorkflowEngine::provisioning(store.clone()).expect("engine");
    Flow {
        workflow: Arc::new(engine),
        queue: Arc::new(store),
        tasks: paved_workflow::TASK_QUEUE.into(),
        notes: paved_workflow::NOTIFICATION_QUEUE.into(),
        reused_tokens_refused: true,
        _dir: Some(dir),
    }
}

async fn aws_flow() -> Flow {
    let endpoint = paved_tests::moto_with_state_machines().await;
    let config = paved_aws::config::for_emulator(&endpoint).await;
    let spec = paved_aws::stack::StackSpec::shipped().expect("the template");
    let stack = paved_aws::bootstrap::bootstrap(&config, &spec, &unique("flow"))
        .await
        .expect("bootstrap");
    Flow {
        workflow: Arc::new(StepFunctionsWorkflow::new(
            &config,
            Some(&stack.state_machine_arn),
        )),
        queue: Arc::new(SqsQueue::new(&config)),
        tasks: stack.queue("TaskQueue").to_owned(),
        notes: stack.queue("NotificationQueue").to_owned(),
        reused_tokens_refused: false,
        _dir: None,
    }
}

/// Waits for the next message on `queue` (state machines run asynchronously on AWS).
async fn next_message(f: &Flow, queue: &str) -> Value {
    for _ in 0..200 {
        let got = f
            .queue
            .receive(queue, 1, Duration::from_secs(30))
            .await
            .expect("receive");
        if let Some(m) = got.into_iter().next() {
            f.queue
                .delete(queue, &m.receipt_handle)
                .await
                .expect("delete");
            return serde_json::from_str(&m.body).expect("a JSON body");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no message on {queue}");
}

async fn the_provisioning_machine_applies_then_compensates_through_the_queues(f: Flow) {
    let input = json!({"requestId": "req-c1", "resourceType": "postgres-database", "spec": {"name": "orders"},
                       "steps": ["database", "role", "grants"]});
    f.workflow
        .start_execution("req-c1", &input)
        .await
        .expect("start");
    let again = f.workflow.start_execution("req-c1", &input).await;
    assert!(
        matches!(again, Ok(_) | Err(WorkflowError::ExecutionAlreadyExists(_))),
        "a second start is the same execution: {again:?}"
    );

    let first = next_message(&f, &f.tasks).await;
    assert_eq!(first["taskId"], "req-c1/database/apply");
    assert_eq!(
        (first["action"].as_str(), first["spec"]["name"].as_str()),
        (Some("apply"), Some("orders"))
    );
    let token = first["taskToken"].as_str().expect("token").to_owned();
    f.workflow
        .send_task_heartbeat(&token)
        .await
        .expect("heartbeat");
    f.workflow
        .send_task_success(&token, &json!({"database": "db"}))
        .await
        .expect("success");
    let second = next_message(&f, &f.tasks).await;
    assert_eq!(second["taskId"], "req-c1/role/apply");
    // Once answered, a token is dead: AWS and the embedded engine say InvalidToken (or
    // TaskTimedOut). moto 5.2.5 accepts the second answer and ignores it; the worker handles
    // both (docs/decisions.md).
    let twice = f.workflow.send_task_success(&token, &json!({})).await;
    if f.reused_tokens_refused {
        assert!(
            matches!(twice, Err(WorkflowError::InvalidToken(_))),
            "a token answers once: {twice:?}"
        );
    } else {
        assert!(
            matches!(twice, Ok(()) | Err(WorkflowError::InvalidToken(_))),
            "{twice:?}"
        );
    }
    f.workflow
        .send_task_failure(
            second["taskToken"].as_str().expect("token"),
            "NonRetryable.Refused",
            "no",
        )
        .await
        .expect("failure");
    let mut undone = Vec::new();
    for _ in 0..2 {
        let undo = next_message(&f, &f.tasks).await;
        undone.push(undo["taskId"].as_str().expect("id").to_owned());
        f.workflow
            .send_task_success(undo["taskToken"].as_str().expect("token"), &json!({}))
            .await
            .expect("ok");
    }
    assert_eq!(undone, ["req-c1/role/undo", "req-c1/database/undo"]);
    let note = next_message(&f, &f.notes).await;
    assert_eq!(
        (note["requestId"].as_str(), note["status"].as_str()),
        (Some("req-c1"), Some("FAILED"))
    );
    let mut status = f
        .workflow
        .describe_execution("req-c1")
        .await
        .expect("describe");
    for _ in 0..100 {
        if status.status != "RUNNING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        status = f
            .workflow
            .describe_execution("req-c1")
            .await
            .expect("describe");
    }
    assert_eq!(status.status, "FAILED");
    assert_eq!(
        status.error.as_deref(),
        Some("NonRetryable.ProvisioningFailed")
    );
}

mod embedded_workflow {
    #[tokio::test]
    async fn the_provisioning_machine_applies_then_compensates_through_the_queues() {
        super::the_provisioning_machine_applies_then_compensates_through_the_queues(
            super::embedded_flow().await,
        )
        .await;
    }
}

mod aws_workflow {
    #[tokio::test]
    async fn the_provisioning_machine_applies_then_compensates_through_the_queues() {
        super::the_provisioning_machine_applies_then_compensates_through_the_queues(
            super::aws_flow().await,
        )
        .await;
    }
}
