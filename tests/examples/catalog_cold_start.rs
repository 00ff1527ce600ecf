//! The catalog's cold start on DynamoDB (moto in server mode): what one new container reads
//! to build its read model, counted at the `Table` port (calls, items, bytes, wall time).
//!
//! Two layouts of the same catalog (`scripts/gen_catalog.py`, seeded) are loaded:
//! - the change log's: the snapshot pointer, its chunks 16 at a time, then the log's tail;
//! - one item per entity (`CATALOG#ENTITY`, what versions before the change log wrote),
//!   read as sequential `Query` pages.
//!
//! `scripts/bench-catalog-coldstart.sh` starts moto and runs this in release; usage:
//! `catalog_cold_start <moto endpoint> <catalog.yaml>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use paved_core::catalog::{CatalogRepository, ENTITY_PARTITION, PlatformWriter, parse_documents};
use paved_core::ports::{Condition, Item, Key, Page, SortKeyRange, StoreError, Table, TransactOp};
use serde_json::{Map, Value};

/// Counts what passes through the port.
struct Counting {
    inner: Arc<dyn Table>,
    gets: AtomicU64,
    queries: AtomicU64,
    items: AtomicU64,
    bytes: AtomicU64,
    /// Microseconds spent waiting on the store, summed over calls (parallel calls overlap).
    waited_us: AtomicU64,
}

impl Counting {
    fn new(inner: Arc<dyn Table>) -> Self {
        Self {
            inner,
            gets: AtomicU64::new(0),
            queries: AtomicU64::new(0),
            items: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            waited_us: AtomicU64::new(0),
        }
    }

    fn saw(&self, item: &Item) {
        self.items.fetch_add(1, Ordering::Relaxed);
        let size = item.key.pk.len()
            + item.key.sk.len()
            + item
                .attrs
                .iter()
                .map(|(k, v)| k.len() + v.as_str().map_or(8, str::len))
                .sum::<usize>();
        self.bytes.fetch_add(size as u64, Ordering::Relaxed);
    }

    fn waited(&self, since: Instant) {
        self.waited_us
            .fetch_add(since.elapsed().as_micros() as u64, Ordering::Relaxed);
    }

    fn report(&self, what: &str, entities: usize, seconds: f64) {
        println!(
            "| {what} | {entities} | {} | {} | {} | {:.1} MB | {:.2} s | {:.2} s |",
            self.gets.load(Ordering::Relaxed),
            self.queries.load(Ordering::Relaxed),
            self.items.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed) as f64 / 1e6,
            seconds,
            self.waited_us.load(Ordering::Relaxed) as f64 / 1e6
        );
    }
}

#[async_trait]
impl Table for Counting {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        let since = Instant::now();
        let item = self.inner.get(key).await?;
        self.waited(since);
        if let Some(item) = &item {
            self.saw(item);
        }
        Ok(item)
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.inner.put(item, condition).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        self.inner.delete(key, condition).await
    }
    async fn query(
        &self,
        pk: &str,
        range: &SortKeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let since = Instant::now();
        let page = self.inner.query(pk, range, after, limit).await?;
        self.waited(since);
        for item in &page.items {
            self.saw(item);
        }
        Ok(page)
    }
    async fn transact(&self, ops: Vec<TransactOp>) -> Result<(), StoreError> {
        self.inner.transact(ops).await
    }
    fn max_transaction_ops(&self) -> usize {
        self.inner.max_transaction_ops()
    }
}

async fn new_table(config: &aws_config::SdkConfig) -> Arc<dyn Table> {
    let spec = paved_aws::stack::StackSpec::shipped().expect("the shipped stack");
    let name = format!(
        "coldstart-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    paved_aws::bootstrap::create_table(config, &spec.table, &name)
        .await
        .expect("create table");
    Arc::new(paved_aws::DynamoTable::new(config, &name))
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let endpoint = args
        .next()
        .expect("usage: catalog_cold_start <endpoint> <catalog.yaml>");
    let path = args
        .next()
        .expect("usage: catalog_cold_start <endpoint> <catalog.yaml>");
    let yaml = std::fs::read_to_string(&path).expect("the catalog file");
    let documents = parse_documents(&yaml).expect("a valid catalog");
    let entities = documents.len();
    let config = paved_aws::config::for_emulator(&endpoint).await;

    println!(
        "| layout | entities | GetItem | Query | items read | bytes read | wall time | store calls, summed |"
    );
    println!("|---|---|---|---|---|---|---|---|");

    // The change log's layout, as one import writes it (and the snapshot it triggers).
    let table = new_table(&config).await;
    let writer = CatalogRepository::load(Arc::clone(&table))
        .await
        .expect("load");
    let started = Instant::now();
    writer
        .import(documents, &PlatformWriter)
        .await
        .expect("import");
    eprintln!(
        "imported {entities} entities in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let counting = Arc::new(Counting::new(Arc::clone(&table)));
    let started = Instant::now();
    let cold = CatalogRepository::load(Arc::clone(&counting) as Arc<dyn Table>)
        .await
        .expect("cold load");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(cold.read().len(), entities);
    counting.report("snapshot + log tail", entities, seconds);

    // One item per entity, as before the change log.
    let legacy = new_table(&config).await;
    let rows: Vec<Item> = {
        let index = writer.read();
        index
            .ids()
            .filter_map(|id| index.view(id))
            .map(|view| {
                let mut entity: Value = serde_json::from_slice(&view.json).expect("json");
                if let Some(map) = entity.as_object_mut() {
                    map.remove("relations");
                }
                let mut attrs = Map::new();
                attrs.insert("entity".into(), Value::String(entity.to_string()));
                attrs.insert("uid".into(), Value::String(view.uid.clone()));
                attrs.insert("etag".into(), Value::String(view.etag.clone()));
                attrs.insert("generation".into(), Value::from(view.generation));
                Item::new(Key::new(ENTITY_PARTITION, view.entity_ref.key()), attrs)
            })
            .collect()
    };
    futures::stream::iter(rows.into_iter().map(|item| {
        let legacy = Arc::clone(&legacy);
        async move { legacy.put(item, Condition::Always).await }
    }))
    .buffer_unordered(16)
    .try_collect::<()>()
    .await
    .expect("legacy rows");
    let counting = Arc::new(Counting::new(Arc::clone(&legacy)));
    let started = Instant::now();
    let cold = CatalogRepository::load(Arc::clone(&counting) as Arc<dyn Table>)
        .await
        .expect("cold load");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(cold.read().len(), entities);
    counting.report("one item per entity (before)", entities, seconds);
}
