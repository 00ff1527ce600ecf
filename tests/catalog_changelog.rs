//! The catalog's change log, on both backends (a SQLite file, and DynamoDB on moto in server
//! mode): two repositories on one table stand in for two processes (two Lambda containers,
//! or a restart), and see each other's writes within the staleness bound; imports of any size
//! are all-or-nothing, also when the store fails at any point of one; a reader that fell
//! behind a collected log reloads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use paved_core::Error;
use paved_core::catalog::{
    CatalogOptions, CatalogRepository, EntityRef, Kind, PlatformWriter, WriteGuard,
};
use paved_core::ports::{Condition, Item, Key, Page, SortKeyRange, StoreError, Table, TransactOp};
use serde_json::{Value, json};

/// Both backends: a fresh table on each.
async fn tables() -> Vec<(&'static str, Arc<dyn Table>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite: Arc<dyn Table> =
        Arc::new(paved_sqlite::SqliteStore::open(&dir.path().join("paved.db")).expect("open"));
    vec![
        ("sqlite", sqlite, Some(dir)),
        ("dynamodb", dynamo_table().await, None),
    ]
}

async fn dynamo_table() -> Arc<dyn Table> {
    let endpoint = std::env::var("PAVED_TEST_AWS_ENDPOINT").expect(
        "PAVED_TEST_AWS_ENDPOINT is not set: run scripts/test.sh, which starts moto on loopback",
    );
    let config = paved_aws::config::for_emulator(&endpoint).await;
    let spec = paved_aws::stack::StackSpec::shipped().expect("the shipped stack");
    let name = format!(
        "catalog-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    paved_aws::bootstrap::create_table(&config, &spec.table, &name)
        .await
        .expect("create table");
    Arc::new(paved_aws::DynamoTable::new(&config, &name))
}

/// Options for a process that always catches up before reading (no staleness).
fn eager() -> CatalogOptions {
    CatalogOptions {
        max_staleness: Duration::ZERO,
        ..CatalogOptions::default()
    }
}

fn group(name: &str) -> Value {
    json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
           "metadata": {"name": name}, "spec": {"type": "team", "children": []}})
}

/// `n` components; `padding` bytes of incompressible description make the import big.
fn components(prefix: &str, n: usize, owner: &str, padding: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            // xorshift: text deflate cannot shrink much.
            let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let noise: String = (0..padding)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    char::from(ALPHABET[(x % 62) as usize])
                })
                .collect();
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                   "metadata": {"name": format!("{prefix}-{i}"), "description": noise},
                   "spec": {"type": "service", "lifecycle": "production", "owner": owner}})
        })
        .collect()
}

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

fn count_of(repo: &CatalogRepository, kind: Kind) -> usize {
    repo.read().views_of_kind(kind).count()
}

#[tokio::test]
async fn a_write_through_one_process_is_seen_by_another_within_the_bound() {
    for (backend, table, _dir) in tables().await {
        let a = CatalogRepository::load_with(Arc::clone(&table), eager())
            .await
            .expect("load a");
        let b = CatalogRepository::load_with(
            Arc::clone(&table),
            CatalogOptions {
                max_staleness: Duration::from_millis(300),
                ..CatalogOptions::default()
            },
        )
        .await
        .expect("load b");
        a.import(vec![group("payments")], &PlatformWriter)
            .await
            .expect("import");
        let payments = EntityRef::new("group", "default", "payments");
        assert!(
            a.read().get_by_ref(&payments).is_some(),
            "{backend}: the writer sees its write at once"
        );
        // Within the bound, without a reload: B catches up from the log.
        tokio::time::sleep(Duration::from_millis(350)).await;
        let seen = b
            .fresh()
            .await
            .expect("fresh")
            .get_by_ref(&payments)
            .is_some();
        assert!(
            seen,
            "{backend}: the other process sees the group after the bound"
        );

        // And deletes travel too.
        let uid = b.read().get_by_ref(&payments).expect("there").uid.clone();
        b.delete_by_uid(&uid, &PlatformWriter)
            .await
            .expect("delete");
        assert!(
            a.fresh()
                .await
                .expect("fresh")
                .get_by_ref(&payments)
                .is_none(),
            "{backend}: the delete reached the first process"
        );
        assert_eq!(a.position().await, b.position().await, "{backend}");
    }
}

/// Allows writes only to entities owned (before and after) by one group.
struct OwnedBy(&'static str);

impl WriteGuard for OwnedBy {
    fn check(
        &self,
        entity_ref: &EntityRef,
        _: Kind,
        current: Option<&EntityRef>,
        new: Option<&EntityRef>,
    ) -> Result<(), Error> {
        let mine = |o: Option<&EntityRef>| o.is_none_or(|o| o.name() == self.0);
        if mine(current) && mine(new) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "{entity_ref} is not {}'s",
                self.0
            )))
        }
    }
}

#[tokio::test]
async fn a_stale_process_authorizes_against_the_owner_at_commit_time() {
    for (backend, table, _dir) in tables().await {
        let a = CatalogRepository::load_with(Arc::clone(&table), eager())
            .await
            .expect("load a");
        a.import(components("svc", 1, "team-a", 0), &PlatformWriter)
            .await
            .expect("import");
        // B would serve reads an hour stale: only its writes catch up.
        let b = CatalogRepository::load_with(
            Arc::clone(&table),
            CatalogOptions {
                max_staleness: Duration::from_secs(3600),
                ..CatalogOptions::default()
            },
        )
        .await
        .expect("load b");
        let svc = EntityRef::new("component", "default", "svc-0");
        let uid = b.read().get_by_ref(&svc).expect("b sees it").uid.clone();
        // A hands the component to team-b; B has not looked since.
        a.import(components("svc", 1, "team-b", 0), &PlatformWriter)
            .await
            .expect("owner change");
        assert_eq!(
            b.read()
                .get_by_ref(&svc)
                .and_then(|v| v.owner.clone())
                .map(|o| o.name().to_owned()),
            Some("team-a".to_owned()),
            "{backend}: B's read model is stale, as configured"
        );
        let refused = b.delete_by_uid(&uid, &OwnedBy("team-a")).await;
        assert!(
            matches!(refused, Err(Error::Forbidden(_))),
            "{backend}: team-a may no longer delete it: {refused:?}"
        );
        assert!(
            a.fresh().await.expect("fresh").get_by_ref(&svc).is_some(),
            "{backend}: nothing was deleted"
        );

        // Two writers with the same If-Match: one wins, the other is told to re-read.
        let etag = a.read().get_by_ref(&svc).expect("there").etag.clone();
        let mut next = components("svc", 1, "team-b", 0).remove(0);
        next["metadata"]["description"] = json!("from a");
        let first = a.upsert(next.clone(), Some(&etag), &PlatformWriter).await;
        next["metadata"]["description"] = json!("from b");
        let second = b.upsert(next, Some(&etag), &PlatformWriter).await;
        assert!(first.is_ok(), "{backend}: {first:?}");
        assert!(
            matches!(second, Err(Error::PreconditionFailed(_))),
            "{backend}: {second:?}"
        );
    }
}

#[tokio::test]
async fn an_import_of_2000_entities_commits_all_or_nothing_on_both_backends() {
    for (backend, table, _dir) in tables().await {
        let a = CatalogRepository::load_with(Arc::clone(&table), eager())
            .await
            .expect("load");
        // 2,000 entities of ~600 incompressible bytes: far past one record, so staged.
        let outcome = a
            .import(components("big", 2000, "team-a", 600), &PlatformWriter)
            .await
            .expect("import");
        assert_eq!(outcome.created, 2000, "{backend}");
        let cold = CatalogRepository::load(Arc::clone(&table))
            .await
            .expect("cold load");
        assert_eq!(
            count_of(&cold, Kind::Component),
            2000,
            "{backend}: a cold start sees it all"
        );
        let chunks = stage_chunks(&table).await;
        assert!(
            chunks > 1,
            "{backend}: the import was staged in {chunks} chunks"
        );
    }
}

/// The chunks of every stage the registry lists.
async fn stage_chunks(table: &Arc<dyn Table>) -> usize {
    let stages = table
        .query("CATALOG#STAGES", &SortKeyRange::All, None, 1000)
        .await
        .expect("stages");
    let mut n = 0;
    for stage in stages.items {
        n += table
            .query(
                &format!("CATALOG#CHUNKS#{}", stage.key.sk),
                &SortKeyRange::All,
                None,
                1000,
            )
            .await
            .expect("chunks")
            .items
            .len();
    }
    n
}

/// A table that fails every write after the first `allowed` ones, as a crash would stop
/// them: nothing after that point reaches the store.
struct FailsAfter {
    inner: Arc<dyn Table>,
    allowed: usize,
    writes: AtomicUsize,
}

impl FailsAfter {
    fn write(&self) -> Result<(), StoreError> {
        if self.writes.fetch_add(1, Ordering::SeqCst) >= self.allowed {
            Err(StoreError::Backend("the process died here".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Table for FailsAfter {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.write()?;
        self.inner.put(item, condition).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        self.write()?;
        self.inner.delete(key, condition).await
    }
    async fn query(
        &self,
        pk: &str,
        range: &SortKeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        self.inner.query(pk, range, after, limit).await
    }
    async fn transact(&self, ops: Vec<TransactOp>) -> Result<(), StoreError> {
        self.write()?;
        self.inner.transact(ops).await
    }
    fn max_transaction_ops(&self) -> usize {
        self.inner.max_transaction_ops()
    }
}

#[tokio::test]
async fn an_import_interrupted_at_any_write_leaves_all_or_nothing() {
    for (backend, table, _dir) in tables().await {
        let base = CatalogRepository::load_with(Arc::clone(&table), eager())
            .await
            .expect("load");
        base.import(vec![group("team-a")], &PlatformWriter)
            .await
            .expect("the old catalog");
        let documents = components("cut", 600, "team-a", 600);
        let mut allowed = 0;
        loop {
            let failing: Arc<dyn Table> = Arc::new(FailsAfter {
                inner: Arc::clone(&table),
                allowed,
                writes: AtomicUsize::new(0),
            });
            let writer = CatalogRepository::load_with(failing, eager())
                .await
                .expect("load through the failing table");
            let result = writer.import(documents.clone(), &PlatformWriter).await;
            let reader = CatalogRepository::load(Arc::clone(&table))
                .await
                .expect("a cold reader");
            let seen = count_of(&reader, Kind::Component);
            assert!(
                seen == 0 || seen == 600,
                "{backend}: cut after {allowed} writes, a reader sees {seen} of 600"
            );
            assert_eq!(
                reader.read().len() - seen,
                1,
                "{backend}: the old catalog is intact"
            );
            if result.is_ok() {
                assert_eq!(seen, 600, "{backend}");
                break;
            }
            assert_eq!(seen, 0, "{backend}: a failed import wrote nothing visible");
            allowed += 1;
            assert!(allowed < 50, "{backend}: the import never completed");
        }
        assert!(allowed > 2, "{backend}: the import took {allowed} writes");
    }
}

#[tokio::test]
async fn a_reader_that_fell_behind_a_collected_log_reloads() {
    for (backend, table, _dir) in tables().await {
        let options = CatalogOptions {
            max_staleness: Duration::ZERO,
            snapshot_after_records: 3,
            snapshot_after_entities: 1_000_000,
        };
        let writer = CatalogRepository::load_with(Arc::clone(&table), options.clone())
            .await
            .expect("writer");
        writer
            .import(vec![group("g-0")], &PlatformWriter)
            .await
            .expect("first");
        let behind = CatalogRepository::load_with(Arc::clone(&table), options)
            .await
            .expect("reader");
        // Enough writes for three snapshots: the log the reader would need is collected.
        for i in 1..=10 {
            writer
                .import(vec![group(&format!("g-{i}"))], &PlatformWriter)
                .await
                .expect("write");
        }
        let first = table
            .query("CATALOG#LOG", &SortKeyRange::All, None, 1)
            .await
            .expect("log")
            .items;
        assert!(
            first
                .first()
                .is_some_and(|r| r.key.sk.trim_start_matches('0') != "2"),
            "{backend}: the early log was collected"
        );
        let groups = behind.fresh().await.expect("the reader reloads").len();
        assert_eq!(groups, 11, "{backend}: the reloaded reader has every group");
        assert_eq!(
            behind.position().await,
            writer.position().await,
            "{backend}"
        );
    }
}
