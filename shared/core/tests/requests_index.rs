//! The requests listing index: a page reads about `limit` index entries however many requests
//! there are; every write moves the index in the request's own transaction (a failed one
//! moves nothing); pages, totals, cursors and access rules are those of the listing before the
//! index; requests stored before the index are backfilled once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use parking_lot::Mutex;
use serde_json::{Map, Value, json};

use paved_core::auth::{AccessPolicy, Identity};
use paved_core::catalog::CatalogRepository;
use paved_core::policy::PolicyEngine;
use paved_core::ports::{
    Clock, Condition, ExecutionStatus, Item, Key, Page, Queue, QueueMessage, ReceivedMessage,
    SortKeyRange, StoreError, Table, TransactOp, Workflow, WorkflowError,
};
use paved_core::requests::{NewRequest, RequestRepository, RequestStatus};
use paved_core::services::requests::DEFAULT_APPROVER_GROUP;
use paved_core::services::{RequestListing, RequestPage, RequestsPorts, RequestsService};

type Store = BTreeMap<(String, String), Map<String, Value>>;

/// A table in memory with DynamoDB's transaction semantics: every condition is checked
/// against the state before the transaction, one op per item, all or nothing.
#[derive(Default)]
struct MemTable {
    items: Mutex<Store>,
}

fn k(key: &Key) -> (String, String) {
    (key.pk.clone(), key.sk.clone())
}

impl MemTable {
    fn partition(&self, pk: &str) -> Vec<Item> {
        self.items
            .lock()
            .iter()
            .filter(|((p, _), _)| p == pk)
            .map(|((p, s), a)| Item::new(Key::new(p, s), a.clone()))
            .collect()
    }

    fn counter(&self, suffix: &str) -> u64 {
        self.items
            .lock()
            .get(&(format!("REQCOUNT#{suffix}"), "n".to_owned()))
            .and_then(|a| a.get("n").and_then(Value::as_u64))
            .unwrap_or(0)
    }

    fn entry_ids(&self, suffix: &str) -> Vec<String> {
        self.partition(&format!("REQBY#{suffix}"))
            .iter()
            .map(|i| i.str_attr("id").expect("id").to_owned())
            .collect()
    }
}

#[async_trait]
impl Table for MemTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        Ok(self
            .items
            .lock()
            .get(&k(key))
            .map(|a| Item::new(key.clone(), a.clone())))
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        let mut items = self.items.lock();
        let current = items
            .get(&k(&item.key))
            .map(|a| Item::new(item.key.clone(), a.clone()));
        if !condition.holds(current.as_ref()) {
            return Err(StoreError::ConditionFailed {
                key: item.key,
                current: current.map(Box::new),
            });
        }
        items.insert(k(&item.key), item.attrs);
        Ok(())
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        let mut items = self.items.lock();
        let current = items
            .get(&k(key))
            .map(|a| Item::new(key.clone(), a.clone()));
        if !condition.holds(current.as_ref()) {
            return Err(StoreError::ConditionFailed {
                key: key.clone(),
                current: current.map(Box::new),
            });
        }
        items.remove(&k(key));
        Ok(())
    }

    async fn query(
        &self,
        pk: &str,
        range: &SortKeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let items = self.items.lock();
        let mut out = Vec::new();
        let mut more = false;
        for ((p, sk), attrs) in items.range((pk.to_owned(), String::new())..) {
            if p != pk {
                break;
            }
            if !range.contains(sk) || after.is_some_and(|a| sk.as_str() <= a) {
                continue;
            }
            if out.len() == limit {
                more = true;
                break;
            }
            out.push(Item::new(Key::new(p, sk), attrs.clone()));
        }
        let last_sk = if more {
            out.last().map(|i: &Item| i.key.sk.clone())
        } else {
            None
        };
        Ok(Page {
            items: out,
            last_sk,
        })
    }

    async fn transact(&self, ops: Vec<TransactOp>) -> Result<(), StoreError> {
        if ops.len() > self.max_transaction_ops() {
            return Err(StoreError::TransactionTooLarge {
                requested: ops.len(),
                limit: self.max_transaction_ops(),
            });
        }
        let mut items = self.items.lock();
        let mut seen = HashSet::new();
        for (i, op) in ops.iter().enumerate() {
            let (key, condition) = match op {
                TransactOp::Put { item, condition } => (&item.key, condition),
                TransactOp::Delete { key, condition } | TransactOp::Check { key, condition } => {
                    (key, condition)
                }
            };
            if !seen.insert(k(key)) {
                return Err(StoreError::Backend(format!(
                    "two ops of one transaction on {key:?}"
                )));
            }
            let current = items
                .get(&k(key))
                .map(|a| Item::new(key.clone(), a.clone()));
            if !condition.holds(current.as_ref()) {
                return Err(StoreError::TransactionCancelled { failed: Some(i) });
            }
        }
        for op in ops {
            match op {
                TransactOp::Put { item, .. } => {
                    items.insert(k(&item.key), item.attrs);
                }
                TransactOp::Delete { key, .. } => {
                    items.remove(&k(&key));
                }
                TransactOp::Check { .. } => {}
            }
        }
        Ok(())
    }

    fn max_transaction_ops(&self) -> usize {
        100
    }
}

type Hook = Box<dyn FnOnce(&MemTable) + Send>;

/// Counts what a repository reads and writes, and can play another writer just before the
/// next transaction, or a table on which the index was never backfilled.
struct Counting {
    inner: Arc<MemTable>,
    queried_items: AtomicUsize,
    gets: AtomicUsize,
    transactions: Mutex<Vec<Vec<TransactOp>>>,
    plain_writes: AtomicUsize,
    /// The backfill's marker is never there (and cannot be written): the listing as it was.
    before_the_index: AtomicBool,
    before_next_transaction: Mutex<Option<Hook>>,
}

impl Counting {
    fn new(inner: Arc<MemTable>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            queried_items: AtomicUsize::new(0),
            gets: AtomicUsize::new(0),
            transactions: Mutex::new(Vec::new()),
            plain_writes: AtomicUsize::new(0),
            before_the_index: AtomicBool::new(false),
            before_next_transaction: Mutex::new(None),
        })
    }

    fn reset(&self) {
        self.queried_items.store(0, Ordering::SeqCst);
        self.gets.store(0, Ordering::SeqCst);
        self.transactions.lock().clear();
        self.plain_writes.store(0, Ordering::SeqCst);
    }

    fn is_marker(&self, key: &Key) -> bool {
        self.before_the_index.load(Ordering::SeqCst) && key.pk == "REQBY#META"
    }
}

#[async_trait]
impl Table for Counting {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        if self.is_marker(key) {
            return Ok(None);
        }
        self.inner.get(key).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        if self.is_marker(&item.key) {
            return Err(StoreError::Backend("no marker here".into()));
        }
        self.plain_writes.fetch_add(1, Ordering::SeqCst);
        self.inner.put(item, condition).await
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        self.plain_writes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key, condition).await
    }

    async fn query(
        &self,
        pk: &str,
        range: &SortKeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let page = self.inner.query(pk, range, after, limit).await?;
        self.queried_items
            .fetch_add(page.items.len(), Ordering::SeqCst);
        Ok(page)
    }

    async fn transact(&self, ops: Vec<TransactOp>) -> Result<(), StoreError> {
        let hook = self.before_next_transaction.lock().take();
        if let Some(hook) = hook {
            hook(&self.inner);
        }
        self.transactions.lock().push(ops.clone());
        self.inner.transact(ops).await
    }

    fn max_transaction_ops(&self) -> usize {
        self.inner.max_transaction_ops()
    }
}

/// Time that moves a millisecond every third reading, so that some requests share a
/// creation time and their ids order them.
struct Stepping(AtomicI64);

impl Clock for Stepping {
    fn now(&self) -> DateTime<Utc> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0)
            .single()
            .expect("time")
            + chrono::Duration::milliseconds(n / 3)
    }
}

struct NoWorkflow;

#[async_trait]
impl Workflow for NoWorkflow {
    async fn start_execution(&self, name: &str, _: &Value) -> Result<String, WorkflowError> {
        Ok(name.to_owned())
    }
    async fn send_task_success(&self, _: &str, _: &Value) -> Result<(), WorkflowError> {
        Ok(())
    }
    async fn send_task_failure(&self, _: &str, _: &str, _: &str) -> Result<(), WorkflowError> {
        Ok(())
    }
    async fn send_task_heartbeat(&self, _: &str) -> Result<(), WorkflowError> {
        Ok(())
    }
    async fn describe_execution(&self, name: &str) -> Result<ExecutionStatus, WorkflowError> {
        Err(WorkflowError::ExecutionNotFound(name.to_owned()))
    }
}

struct NoQueue;

#[async_trait]
impl Queue for NoQueue {
    async fn send(&self, _: &str, _: QueueMessage) -> Result<String, StoreError> {
        Ok("m".into())
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

fn clock() -> Arc<dyn Clock> {
    Arc::new(Stepping(AtomicI64::new(0)))
}

async fn service(table: Arc<dyn Table>) -> RequestsService {
    let catalog = Arc::new(
        CatalogRepository::load(Arc::clone(&table))
            .await
            .expect("catalog"),
    );
    RequestsService::new(
        RequestsPorts {
            table,
            clock: clock(),
            workflow: Arc::new(NoWorkflow),
            queue: Arc::new(NoQueue),
            task_queue: "tasks".into(),
            notification_queue: "notifications".into(),
        },
        catalog,
        PolicyEngine::default_bundle().expect("guardrails"),
        Arc::new(AccessPolicy::new("platform-admins").expect("admins")),
        &[],
        HashMap::new(),
    )
}

fn who(user: &str, groups: &[&str]) -> Identity {
    Identity::from_claims(user, groups).expect("identity")
}

fn new_request(i: usize, owner: &str, requester: &str) -> NewRequest {
    NewRequest {
        id: format!(
            "req-{:024x}",
            (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15) % (1 << 96)
        ),
        template: if i.is_multiple_of(3) {
            "service"
        } else {
            "widget"
        }
        .into(),
        resource_type: "widget".into(),
        name: format!("w-{i}"),
        owner: owner.into(),
        environment: if i.is_multiple_of(4) {
            "production"
        } else {
            "development"
        }
        .into(),
        parameters: json!({}),
        requester: requester.into(),
        steps: vec!["widget".into()],
        needs_approval: false,
        reconcile: Default::default(),
    }
}

fn listing(limit: usize) -> RequestListing {
    RequestListing {
        limit: Some(limit),
        ..RequestListing::default()
    }
}

/// Every page of a listing, following the cursors.
async fn every_page(s: &RequestsService, w: &Identity, l: &RequestListing) -> Vec<RequestPage> {
    let mut pages = Vec::new();
    let mut l = l.clone();
    loop {
        let page = s.list(w, &l).await.expect("page");
        let next = page.next_cursor.clone();
        pages.push(page);
        match next {
            Some(c) => l.cursor = Some(c),
            None => return pages,
        }
        assert!(pages.len() < 1000, "the cursors go round in circles");
    }
}

#[tokio::test]
async fn a_page_of_ten_reads_eleven_entries_of_a_thousand_requests() {
    let mem = Arc::new(MemTable::default());
    let table = Counting::new(Arc::clone(&mem));
    let s = service(table.clone()).await;
    let repo = s.repository();
    repo.backfill_index().await.expect("backfill");
    for i in 0..1000 {
        let requester = if i % 2 == 0 {
            "user:default/alice"
        } else {
            "user:default/bob"
        };
        repo.create(new_request(i, "group:default/team-a", requester))
            .await
            .expect("create");
    }
    let admin = who("root", &["platform-admins"]);

    table.reset();
    let first = s.list(&admin, &listing(10)).await.expect("page");
    assert_eq!((first.items.len(), first.total), (10, 1000));
    assert_eq!(
        table.queried_items.load(Ordering::SeqCst),
        11,
        "one partition, limit + 1 entries"
    );
    assert_eq!(
        table.gets.load(Ordering::SeqCst),
        10 + 1,
        "the ten requests and one counter"
    );

    // The second page reads as little, and follows on.
    table.reset();
    let second = s
        .list(
            &admin,
            &RequestListing {
                cursor: first.next_cursor.clone(),
                ..listing(10)
            },
        )
        .await
        .expect("page");
    assert_eq!(table.queried_items.load(Ordering::SeqCst), 11);
    let newest_first = |p: &RequestPage| {
        p.items
            .windows(2)
            .all(|w| (w[0].created_at, &w[0].id) > (w[1].created_at, &w[1].id))
    };
    assert!(newest_first(&first) && newest_first(&second));
    assert!(
        (first.items[9].created_at, &first.items[9].id)
            > (second.items[0].created_at, &second.items[0].id)
    );

    // A member of the team merges three partitions (the team's, hers as an owner, hers as
    // the requester): at most limit + 1 from each.
    table.reset();
    let alice = who("alice", &["team-a"]);
    let page = s.list(&alice, &listing(10)).await.expect("page");
    assert_eq!((page.items.len(), page.total), (10, 1000));
    let read = table.queried_items.load(Ordering::SeqCst);
    assert!(read <= 3 * 11, "{read} entries read");
    println!("admin page of 10: 11 entries; team member's page of 10: {read} entries");

    // Filtered by status: the status partition only.
    repo.transition(&first.items[3].id, RequestStatus::Queued, "go")
        .await
        .expect("queue");
    table.reset();
    let queued = s
        .list(
            &admin,
            &RequestListing {
                status: Some("queued".into()),
                ..listing(10)
            },
        )
        .await
        .expect("page");
    assert_eq!((queued.items.len(), queued.total), (1, 1));
    assert_eq!(table.queried_items.load(Ordering::SeqCst), 1);
    let submitted = s
        .list(
            &alice,
            &RequestListing {
                status: Some("SUBMITTED".into()),
                requester: Some("bob".into()),
                ..listing(5)
            },
        )
        .await
        .expect("page");
    let moved_a_bobs = usize::from(first.items[3].requester == "user:default/bob");
    assert_eq!(
        (submitted.items.len(), submitted.total),
        (5, 500 - moved_a_bobs)
    );
}

#[tokio::test]
async fn every_write_moves_the_index_in_the_requests_own_transaction() {
    let mem = Arc::new(MemTable::default());
    let table = Counting::new(Arc::clone(&mem));
    let repo = RequestRepository::new(table.clone(), clock());
    repo.backfill_index().await.expect("backfill");
    let r = repo
        .create(new_request(1, "group:default/team-a", "user:default/alice"))
        .await
        .expect("create");
    let owner = "OWNER#group:default/team-a";
    assert_eq!(
        mem.entry_ids(&format!("{owner}#STATUS#SUBMITTED")),
        [r.id.as_str()]
    );
    assert_eq!(mem.counter("STATUS#SUBMITTED"), 1);
    assert_eq!(mem.counter("ALL"), 1);

    table.reset();
    repo.transition(&r.id, RequestStatus::Queued, "go")
        .await
        .expect("queue");
    let transactions = table.transactions.lock().clone();
    assert_eq!(transactions.len(), 1, "one transaction");
    assert_eq!(table.plain_writes.load(Ordering::SeqCst), 0);
    let keys: Vec<(String, bool)> = transactions[0]
        .iter()
        .map(|op| match op {
            TransactOp::Put { item, .. } => (item.key.pk.clone(), true),
            TransactOp::Delete { key, .. } => (key.pk.clone(), false),
            TransactOp::Check { key, .. } => (key.pk.clone(), true),
        })
        .collect();
    assert_eq!(keys[0], ("REQUEST".into(), true));
    for status in ["SUBMITTED", "QUEUED"] {
        for partition in [
            format!("REQBY#STATUS#{status}"),
            format!("REQBY#{owner}#STATUS#{status}"),
            format!("REQBY#REQUESTER#user:default/alice#STATUS#{status}"),
            format!("REQBY#{owner}#REQUESTER#user:default/alice#STATUS#{status}"),
        ] {
            assert!(
                keys.contains(&(partition.clone(), status == "QUEUED")),
                "{partition} in {keys:?}"
            );
        }
    }
    assert_eq!(
        keys.iter()
            .filter(|(pk, _)| pk.starts_with("REQCOUNT#"))
            .count(),
        8,
        "four counters down, four up"
    );
    assert!(
        mem.entry_ids(&format!("{owner}#STATUS#SUBMITTED"))
            .is_empty()
    );
    assert_eq!(
        mem.entry_ids(&format!("{owner}#STATUS#QUEUED")),
        [r.id.as_str()]
    );
    assert_eq!(
        (
            mem.counter("STATUS#SUBMITTED"),
            mem.counter("STATUS#QUEUED")
        ),
        (0, 1)
    );

    // A change that keeps the status writes the request alone.
    table.reset();
    repo.update(&r.id, |r, now| {
        r.log(now, "note", "nothing moves");
        Ok(())
    })
    .await
    .expect("update");
    assert_eq!(table.transactions.lock()[0].len(), 1);
    assert_eq!(table.gets.load(Ordering::SeqCst), 1, "no counter is read");

    // Another writer gets in between: the transition fails and writes neither the request
    // nor its index.
    let id = r.id.clone();
    *table.before_next_transaction.lock() = Some(Box::new(move |m: &MemTable| {
        let mut items = m.items.lock();
        let attrs = items
            .get_mut(&("REQUEST".to_owned(), id))
            .expect("the request");
        let v = attrs["version"].as_u64().expect("version");
        attrs.insert("version".into(), json!(v + 1));
    }));
    let before: Store = mem.items.lock().clone();
    let err = repo
        .transition(&r.id, RequestStatus::Provisioning, "start")
        .await
        .expect_err("lost the race");
    assert_eq!(err.code(), "conflict");
    let after: Store = mem.items.lock().clone();
    let changed: Vec<&(String, String)> = after
        .iter()
        .filter(|(key, attrs)| before.get(*key) != Some(*attrs))
        .map(|(key, _)| key)
        .collect();
    assert_eq!(
        changed,
        [&("REQUEST".to_owned(), r.id.clone())],
        "only the other writer's bump"
    );
    assert_eq!(after.len(), before.len());
    assert!(mem.entry_ids("STATUS#PROVISIONING").is_empty());
    assert_eq!(mem.entry_ids("STATUS#QUEUED"), [r.id.as_str()]);
    assert_eq!(
        repo.get(&r.id).await.expect("get").status,
        RequestStatus::Queued
    );

    // A counter moved under the write (another request's): the write reads it again and
    // retries, and loses nobody's count.
    *table.before_next_transaction.lock() = Some(Box::new(|m: &MemTable| {
        let mut items = m.items.lock();
        let a = items
            .entry(("REQCOUNT#STATUS#PROVISIONING".into(), "n".into()))
            .or_default();
        let n = a.get("n").and_then(Value::as_u64).unwrap_or(0);
        a.insert("n".into(), json!(n + 1));
    }));
    table.reset();
    repo.transition(&r.id, RequestStatus::Provisioning, "start")
        .await
        .expect("retried");
    assert_eq!(table.transactions.lock().len(), 2, "a second try");
    assert_eq!(
        mem.counter("STATUS#PROVISIONING"),
        2,
        "the other writer's one and ours"
    );
    assert_eq!(mem.entry_ids("STATUS#PROVISIONING"), [r.id.as_str()]);
}

/// Every partition's counter equals its entries.
fn assert_counters_match(mem: &MemTable) {
    let items = mem.items.lock().clone();
    let mut entries: BTreeMap<String, u64> = BTreeMap::new();
    for (pk, _) in items.keys() {
        if let Some(suffix) = pk.strip_prefix("REQBY#")
            && suffix != "META"
        {
            *entries.entry(suffix.to_owned()).or_default() += 1;
        }
    }
    for ((pk, _), attrs) in &items {
        if let Some(suffix) = pk.strip_prefix("REQCOUNT#") {
            let n = attrs["n"].as_u64().expect("n");
            assert_eq!(
                n,
                entries.get(suffix).copied().unwrap_or(0),
                "counter {suffix}"
            );
        }
    }
    for (suffix, n) in entries {
        assert_eq!(mem.counter(&suffix), n, "counter {suffix}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_keep_every_counter_exact() {
    let mem = Arc::new(MemTable::default());
    let repo = Arc::new(RequestRepository::new(mem.clone(), clock()));
    let mut tasks = Vec::new();
    for i in 0..60 {
        let repo = Arc::clone(&repo);
        tasks.push(tokio::spawn(async move {
            let owner = ["group:default/team-a", "group:default/team-b"][i % 2];
            let r = repo
                .create(new_request(i, owner, "user:default/alice"))
                .await
                .expect("create");
            repo.transition(&r.id, RequestStatus::Queued, "go")
                .await
                .expect("queue");
            if i.is_multiple_of(3) {
                repo.transition(&r.id, RequestStatus::Cancelled, "stop")
                    .await
                    .expect("cancel");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_counters_match(&mem);
    assert_eq!(mem.counter("ALL"), 60);
    assert_eq!(mem.counter("STATUS#CANCELLED"), 20);
    assert_eq!(mem.counter("OWNER#group:default/team-b#STATUS#QUEUED"), 20);
}

/// Requests of several owners, requesters, statuses, templates and environments, some owned
/// by a user, some stored with another spelling.
async fn mixed_requests(repo: &RequestRepository) {
    let owners = [
        "group:default/team-a",
        "group:default/team-b",
        "group:default/team-c",
        "user:default/dave",
        "Team-A",
    ];
    let requesters = [
        "user:default/alice",
        "user:default/bob",
        "user:default/carol",
        "user:default/dave",
        "user:default/Alice",
    ];
    for i in 0..140 {
        let r = repo
            .create(new_request(i, owners[i % 5], requesters[(i / 5) % 5]))
            .await
            .expect("create");
        let path: &[RequestStatus] = match i % 7 {
            0 => &[],
            1 | 2 => &[RequestStatus::Queued],
            3 => &[RequestStatus::Queued, RequestStatus::Provisioning],
            4 => &[
                RequestStatus::Queued,
                RequestStatus::Provisioning,
                RequestStatus::Ready,
            ],
            5 => &[RequestStatus::Queued, RequestStatus::Cancelled],
            _ => &[RequestStatus::WaitingForApproval, RequestStatus::Rejected],
        };
        for st in path {
            repo.transition(&r.id, *st, "moves").await.expect("move");
        }
    }
}

fn identities() -> Vec<Identity> {
    vec![
        who("root", &["platform-admins"]),
        who("judge", &[DEFAULT_APPROVER_GROUP]),
        who("alice", &["team-a"]),
        who("bob", &["team-b"]),
        who("carol", &["team-c", "team-a"]),
        who("dave", &[]),
        who("eve", &["team-z"]),
    ]
}

fn listings() -> Vec<RequestListing> {
    let l = |f: &dyn Fn(&mut RequestListing)| {
        let mut x = listing(7);
        f(&mut x);
        x
    };
    vec![
        listing(7),
        listing(1000),
        l(&|x| x.status = Some("queued".into())),
        l(&|x| x.status = Some("READY".into())),
        l(&|x| x.owner = Some("team-a".into())),
        l(&|x| x.owner = Some("group:default/team-b".into())),
        l(&|x| x.owner = Some("user:dave".into())),
        l(&|x| x.requester = Some("alice".into())),
        l(&|x| x.requester = Some("bob".into())),
        l(&|x| {
            x.owner = Some("team-a".into());
            x.status = Some("cancelled".into());
        }),
        l(&|x| {
            x.owner = Some("team-a".into());
            x.requester = Some("alice".into());
        }),
        l(&|x| {
            x.owner = Some("team-c".into());
            x.requester = Some("bob".into());
            x.status = Some("queued".into());
        }),
        l(&|x| x.template = Some("service".into())),
        l(&|x| {
            x.owner = Some("team-a".into());
            x.environment = Some("production".into());
        }),
        l(&|x| {
            x.requester = Some("carol".into());
            x.template = Some("widget".into());
            x.status = Some("SUBMITTED".into());
        }),
    ]
}

#[tokio::test]
async fn pages_totals_cursors_and_access_are_those_of_the_listing_before_the_index() {
    let mem = Arc::new(MemTable::default());
    let before = Counting::new(Arc::clone(&mem));
    before.before_the_index.store(true, Ordering::SeqCst);
    let indexed = Counting::new(Arc::clone(&mem));
    let old = service(before.clone()).await;
    let new = service(indexed.clone()).await;
    new.repository().backfill_index().await.expect("backfill");
    mixed_requests(new.repository()).await;
    assert_counters_match(&mem);
    let mut compared = 0;
    for w in identities() {
        for l in listings() {
            let expected = every_page(&old, &w, &l).await;
            let got = every_page(&new, &w, &l).await;
            assert_eq!(got, expected, "{w:?} {l:?}");
            compared += expected.iter().map(|p| p.items.len()).sum::<usize>();
        }
    }
    assert!(compared > 1000, "{compared}");

    // The access rules, spelled out.
    let total = |w: Identity, l: RequestListing| {
        let new = &new;
        async move { new.list(&w, &l).await.expect("page").total }
    };
    assert_eq!(
        total(who("root", &["platform-admins"]), listing(5)).await,
        140
    );
    assert_eq!(total(who("eve", &["team-z"]), listing(5)).await, 0);
    let everything = every_page(&new, &who("root", &["platform-admins"]), &listing(1000)).await;
    let bobs = |r: &&paved_core::requests::ProvisioningRequest| {
        r.owner == "group:default/team-b" || r.requester == "user:default/bob"
    };
    let bob_sees = every_page(&new, &who("bob", &["team-b"]), &listing(1000)).await;
    assert!(bob_sees[0].items.iter().all(|r| bobs(&r)));
    assert!(
        bob_sees[0]
            .items
            .iter()
            .any(|r| r.owner != "group:default/team-b")
    );
    assert_eq!(
        bob_sees[0].total,
        everything[0].items.iter().filter(bobs).count()
    );
    assert_eq!(
        bob_sees[0].total,
        28 + 30 - 6,
        "his team's, his own, both once"
    );
    let theirs = RequestListing {
        owner: Some("team-a".into()),
        ..listing(5)
    };
    let eve = new
        .list(&who("eve", &["team-z"]), &theirs)
        .await
        .expect("page");
    assert_eq!((eve.items.len(), eve.total), (0, 0));
    let dave = every_page(&new, &who("dave", &[]), &listing(1000)).await;
    assert!(
        dave[0]
            .items
            .iter()
            .all(|r| r.owner == "user:default/dave" || r.requester == "user:default/dave")
    );
    assert_eq!(
        total(
            who("alice", &["team-a"]),
            RequestListing {
                owner: Some("Team-A".into()),
                ..listing(5)
            }
        )
        .await,
        56,
        "team-a's 28 and the 28 stored as Team-A"
    );
}

#[tokio::test]
async fn requests_stored_before_the_index_are_listed_then_backfilled_once() {
    // The requests as an earlier paved stored them: request items only.
    let mem = Arc::new(MemTable::default());
    {
        let scratch = Arc::new(MemTable::default());
        mixed_requests(&RequestRepository::new(scratch.clone(), clock())).await;
        let mut items = mem.items.lock();
        for ((pk, sk), mut attrs) in scratch.items.lock().clone() {
            if pk == "REQUEST" {
                attrs.remove("indexed");
                items.insert((pk, sk), attrs);
            }
        }
    }
    let reference = Counting::new(Arc::clone(&mem));
    reference.before_the_index.store(true, Ordering::SeqCst);
    let old = service(reference.clone()).await;
    let table = Counting::new(Arc::clone(&mem));
    let s = service(table.clone()).await;
    let repo = s.repository();
    assert!(!repo.index_ready().await.expect("ready"));
    let admin = who("root", &["platform-admins"]);
    let expected = every_page(&old, &admin, &listing(1000)).await;

    // Until the backfill is done a listing reads every request, exactly as before.
    let waiting = s.list(&admin, &listing(1000)).await.expect("page");
    assert_eq!(waiting.total, 140);
    let ids = |p: &RequestPage| p.items.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&waiting), ids(&expected[0]));

    // A write indexes what it writes, whatever the backfill does.
    let lazily = expected[0].items[0].id.clone();
    repo.update(&lazily, |r, now| {
        r.log(now, "note", "touched");
        Ok(())
    })
    .await
    .expect("update");
    assert!(mem.entry_ids("ALL").contains(&lazily));

    let report = repo.backfill_index().await.expect("backfill");
    assert!(repo.index_ready().await.expect("ready"));
    // The listing may have started one in the background already.
    assert_eq!(report.indexed + report.already, 140, "{report:?}");
    assert_eq!(report.unreadable, 0);
    assert_counters_match(&mem);
    assert_eq!(mem.counter("ALL"), 140);
    let again = repo.backfill_index().await.expect("again");
    assert_eq!(again, paved_core::requests::Backfill::default());

    let fresh = service(Counting::new(Arc::clone(&mem))).await;
    assert!(fresh.repository().index_ready().await.expect("ready"));
    for w in identities() {
        for l in listings() {
            // The backfill bumped versions; the rest reads the same.
            let before: Vec<(Vec<String>, usize, Option<String>)> = every_page(&old, &w, &l)
                .await
                .iter()
                .map(|p| (ids(p), p.total, p.next_cursor.clone()))
                .collect();
            let after: Vec<(Vec<String>, usize, Option<String>)> = every_page(&fresh, &w, &l)
                .await
                .iter()
                .map(|p| (ids(p), p.total, p.next_cursor.clone()))
                .collect();
            assert_eq!(after, before, "{w:?} {l:?}");
        }
    }
}
