//! The listing index of requests: a small item per request in each partition a listing may
//! read, written in the same transaction as the request itself, so a page reads about `limit`
//! items, strongly consistent, instead of every request.
//!
//! Each request is in eight partitions, one per combination of owner, requester and status:
//! `REQBY#ALL`, `REQBY#STATUS#<s>`, `REQBY#OWNER#<o>`, `REQBY#OWNER#<o>#STATUS#<s>`,
//! `REQBY#REQUESTER#<u>`, `REQBY#REQUESTER#<u>#STATUS#<s>`, `REQBY#OWNER#<o>#REQUESTER#<u>` and
//! `REQBY#OWNER#<o>#REQUESTER#<u>#STATUS#<s>` (owner and requester as lower-case refs). The
//! sort key is the creation time and the id, both inverted, so that a query (ascending) reads
//! newest first with the id breaking ties, the order the listing always had; request ids are
//! random, not time-ordered. An entry holds the id, the creation time, the template and the
//! environment (about 200 bytes); the page then reads each request by id.
//!
//! Every partition has a counter (`REQCOUNT#<same suffix>`/`n`), changed in the same
//! transaction as its entries and conditional on its value, so a listing's `total` is a few
//! reads too. A status change deletes four entries, puts four and moves eight counters; a
//! change that keeps the status writes no index item at all.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use futures::future::try_join_all;
use serde_json::{Map, Value};

use super::{
    ProvisioningRequest, REQUEST_PARTITION, RequestRepository, RequestStatus, decode, encode,
};
use crate::Error;
use crate::catalog::{EntityRef, RefDefaults};
use crate::ports::{Condition, Item, Key, SortKeyRange, StoreError, Table, TransactOp};

/// The request item's attribute saying which layout of the index reflects it. Items written
/// before the index have none; [`RequestRepository::backfill_index`] indexes them.
pub(super) const INDEXED_ATTR: &str = "indexed";
pub(super) const INDEX_VERSION: u64 = 1;
const PARTITION_PREFIX: &str = "REQBY";
const COUNTER_PREFIX: &str = "REQCOUNT";
const COUNTER_ATTR: &str = "n";
/// How often a write retries when a counter moved under it (another request's write).
const COUNTER_ATTEMPTS: u32 = 30;

/// The item that says every request is indexed: listings read the index once it exists.
fn marker_key() -> Key {
    Key::new("REQBY#META", format!("backfill-v{INDEX_VERSION}"))
}

/// How the index spells an owner: the lower-case ref (`team-a` is `group:default/team-a`),
/// however the request stored it.
pub fn owner_key(stored: &str) -> String {
    principal_key(stored, "group")
}

/// How the index spells a requester: the lower-case user ref.
pub fn requester_key(stored: &str) -> String {
    principal_key(stored, "user")
}

fn principal_key(stored: &str, kind: &'static str) -> String {
    EntityRef::parse(
        stored,
        RefDefaults {
            kind: Some(kind),
            namespace: "default",
        },
    )
    .map(|e| e.key())
    .unwrap_or_else(|_| stored.trim().to_ascii_lowercase().replace('#', "%23"))
}

fn status_name(status: RequestStatus) -> String {
    match serde_json::to_value(status) {
        Ok(Value::String(s)) => s,
        _ => format!("{status:?}"),
    }
}

/// The sort key: newest first (the time inverted, fixed width), then the id descending (each
/// byte inverted, and a terminator above every hex digit so that a longer id comes first).
pub(super) fn sort_key(created_at: DateTime<Utc>, id: &str) -> String {
    // Twice the nanoseconds a second has, so that a leap second's nanoseconds (up to
    // 1_999_999_999) keep chrono's order too.
    let ts = i128::from(created_at.timestamp()) * 2_000_000_000
        + i128::from(created_at.timestamp_subsec_nanos());
    let inverted = u128::try_from((1_i128 << 100) - ts).unwrap_or(0);
    let mut sk = String::with_capacity(28 + 2 * id.len());
    let _ = write!(sk, "{inverted:026x}#");
    for b in id.bytes() {
        let _ = write!(sk, "{:02x}", 255 - b);
    }
    sk.push('~');
    sk
}

/// One partition of the index: the requests with this owner, requester and status (each
/// optional; owner and requester as [`owner_key`] and [`requester_key`] spell them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    pub owner: Option<String>,
    pub requester: Option<String>,
    pub status: Option<RequestStatus>,
}

impl Selector {
    /// Every request.
    pub fn all() -> Self {
        Self::default()
    }

    /// The partition holding the requests this selector matches.
    pub(super) fn partition(&self) -> String {
        let mut p = String::from(PARTITION_PREFIX);
        if let Some(o) = &self.owner {
            p.push_str("#OWNER#");
            p.push_str(o);
        }
        if let Some(u) = &self.requester {
            p.push_str("#REQUESTER#");
            p.push_str(u);
        }
        if let Some(s) = self.status {
            p.push_str("#STATUS#");
            p.push_str(&status_name(s));
        }
        if p.len() == PARTITION_PREFIX.len() {
            p.push_str("#ALL");
        }
        p
    }

    fn counter(&self) -> Key {
        counter_key(&self.partition())
    }

    /// The requests both select, if any can be.
    pub fn intersect(&self, other: &Self) -> Option<Self> {
        fn both<T: PartialEq + Clone>(a: &Option<T>, b: &Option<T>) -> Option<Option<T>> {
            match (a, b) {
                (Some(x), Some(y)) if x != y => None,
                (Some(x), _) | (None, Some(x)) => Some(Some(x.clone())),
                (None, None) => Some(None),
            }
        }
        Some(Self {
            owner: both(&self.owner, &other.owner)?,
            requester: both(&self.requester, &other.requester)?,
            status: both(&self.status, &other.status)?,
        })
    }

    /// Whether `r` is one of the requests this selects.
    pub fn matches(&self, r: &ProvisioningRequest) -> bool {
        self.owner
            .as_ref()
            .is_none_or(|o| *o == owner_key(&r.owner))
            && self
                .requester
                .as_ref()
                .is_none_or(|u| *u == requester_key(&r.requester))
            && self.status.is_none_or(|s| s == r.status)
    }

    /// The eight selectors that select `r`.
    fn of(r: &ProvisioningRequest) -> Vec<Self> {
        let (o, u) = (owner_key(&r.owner), requester_key(&r.requester));
        let mut out = Vec::with_capacity(8);
        for owner in [None, Some(&o)] {
            for requester in [None, Some(&u)] {
                for status in [None, Some(r.status)] {
                    out.push(Self {
                        owner: owner.cloned(),
                        requester: requester.cloned(),
                        status,
                    });
                }
            }
        }
        out
    }
}

fn counter_key(partition: &str) -> Key {
    let suffix = partition
        .strip_prefix(PARTITION_PREFIX)
        .unwrap_or(partition);
    Key::new(format!("{COUNTER_PREFIX}{suffix}"), COUNTER_ATTR)
}

/// Filters the index does not key on; a listing with them reads its partitions through to
/// count, and filters the entries (not the requests) as it goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Narrow {
    pub template: Option<String>,
    pub environment: Option<String>,
}

impl Narrow {
    fn is_empty(&self) -> bool {
        self.template.is_none() && self.environment.is_none()
    }

    fn keeps(&self, template: &str, environment: &str) -> bool {
        self.template.as_deref().is_none_or(|t| t == template)
            && self.environment.as_deref().is_none_or(|e| e == environment)
    }
}

/// One page read through the index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedPage {
    /// Newest first. A request that left its partition between the index's read and its own
    /// (a status change) is left out, so a page may hold fewer than `limit`.
    pub items: Vec<ProvisioningRequest>,
    /// How many requests the selectors and filters match in all.
    pub total: usize,
    /// Where the next page starts (the last entry of this one), when more follow.
    pub next: Option<(DateTime<Utc>, String)>,
}

/// What [`RequestRepository::backfill_index`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backfill {
    /// Requests it indexed.
    pub indexed: usize,
    /// Requests indexed already (written since the index exists, or by another backfill).
    pub already: usize,
    /// Stored requests that do not decode: logged and left out (they cannot be listed).
    pub unreadable: usize,
}

/// An index entry as a listing reads it.
#[derive(Debug, Clone)]
struct Entry {
    sk: String,
    id: String,
    created_at: DateTime<Utc>,
    template: String,
    environment: String,
}

fn entry_item(selector_partition: String, r: &ProvisioningRequest) -> Item {
    let mut attrs = Map::new();
    attrs.insert("id".into(), Value::String(r.id.clone()));
    attrs.insert(
        "createdAt".into(),
        serde_json::to_value(r.created_at).unwrap_or(Value::Null),
    );
    attrs.insert("template".into(), Value::String(r.template.clone()));
    attrs.insert("environment".into(), Value::String(r.environment.clone()));
    Item::new(
        Key::new(selector_partition, sort_key(r.created_at, &r.id)),
        attrs,
    )
}

fn read_entry(item: Item) -> Option<Entry> {
    let entry = (|| {
        Some(Entry {
            id: item.str_attr("id")?.to_owned(),
            created_at: serde_json::from_value(item.attrs.get("createdAt")?.clone()).ok()?,
            template: item.str_attr("template")?.to_owned(),
            environment: item.str_attr("environment")?.to_owned(),
            sk: item.key.sk.clone(),
        })
    })();
    if entry.is_none() {
        tracing::error!(pk = %item.key.pk, sk = %item.key.sk, "an index entry does not decode; skipped");
    }
    entry
}

/// The index writes that take a request from `before` (`None`: not indexed) to `after`, and
/// how each counter moves.
#[derive(Debug, Default)]
pub(super) struct IndexChange {
    ops: Vec<TransactOp>,
    deltas: Vec<(Key, i64)>,
}

pub(super) fn change(
    before: Option<&ProvisioningRequest>,
    after: &ProvisioningRequest,
) -> IndexChange {
    let entries = |r: &ProvisioningRequest| -> BTreeMap<String, Item> {
        Selector::of(r)
            .into_iter()
            .map(|s| {
                let p = s.partition();
                (p.clone(), entry_item(p, r))
            })
            .collect()
    };
    let old = before.map(entries).unwrap_or_default();
    let new = entries(after);
    let mut out = IndexChange::default();
    for (p, item) in &old {
        if !new.contains_key(p) {
            out.ops.push(TransactOp::Delete {
                key: item.key.clone(),
                condition: Condition::Always,
            });
            out.deltas.push((counter_key(p), -1));
        }
    }
    for (p, item) in new {
        match old.get(&p) {
            None => out.deltas.push((counter_key(&p), 1)),
            Some(o) if o.key != item.key => out.ops.push(TransactOp::Delete {
                key: o.key.clone(),
                condition: Condition::Always,
            }),
            Some(o) if o.attrs == item.attrs => continue,
            Some(_) => {}
        }
        out.ops.push(TransactOp::Put {
            item,
            condition: Condition::Always,
        });
    }
    out
}

fn count_of(item: &Item) -> u64 {
    item.attrs
        .get(COUNTER_ATTR)
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// The counters' new values, each conditional on the value just read.
async fn counter_ops(
    table: &dyn Table,
    deltas: &[(Key, i64)],
) -> Result<Vec<TransactOp>, StoreError> {
    let current = try_join_all(deltas.iter().map(|(k, _)| table.get(k))).await?;
    Ok(deltas
        .iter()
        .zip(current)
        .map(|((key, delta), item)| {
            let (n, condition) = match &item {
                None => (0, Condition::Absent),
                Some(i) => match i.attrs.get(COUNTER_ATTR) {
                    Some(v) => (
                        count_of(i),
                        Condition::AttrEquals {
                            name: COUNTER_ATTR.into(),
                            value: v.clone(),
                        },
                    ),
                    None => (0, Condition::Exists),
                },
            };
            let next = i64::try_from(n).unwrap_or(i64::MAX).saturating_add(*delta);
            if next < 0 {
                tracing::error!(pk = %key.pk, "a request counter would go below zero; kept at 0");
            }
            let mut attrs = Map::new();
            attrs.insert(
                COUNTER_ATTR.into(),
                Value::from(u64::try_from(next).unwrap_or(0)),
            );
            TransactOp::Put {
                item: Item::new(key.clone(), attrs),
                condition,
            }
        })
        .collect())
}

async fn pause(attempt: u32) {
    let jitter = u64::try_from(uuid::Uuid::new_v4().as_u128() % 5).unwrap_or(0);
    tokio::time::sleep(std::time::Duration::from_millis(
        u64::from(attempt.min(20)) * 2 + jitter,
    ))
    .await;
}

/// One partition read a page at a time, resuming after the last entry it gave.
struct Stream<'a> {
    table: &'a dyn Table,
    partition: String,
    after: Option<String>,
    buffer: VecDeque<Entry>,
    done: bool,
    batch: usize,
}

impl Stream<'_> {
    async fn head(&mut self) -> Result<Option<&Entry>, StoreError> {
        while self.buffer.is_empty() && !self.done {
            let page = self
                .table
                .query(
                    &self.partition,
                    &SortKeyRange::All,
                    self.after.as_deref(),
                    self.batch,
                )
                .await?;
            self.done = page.last_sk.is_none() || page.items.is_empty();
            self.after = page.last_sk;
            self.buffer
                .extend(page.items.into_iter().filter_map(read_entry));
        }
        Ok(self.buffer.front())
    }
}

impl RequestRepository {
    /// Whether listings may read the index: every request is indexed (the backfill's marker
    /// exists). Remembered once true, since it never becomes false again.
    pub async fn index_ready(&self) -> Result<bool, Error> {
        if self.index.ready.load(Ordering::Acquire) {
            return Ok(true);
        }
        let ready = self.table.get(&marker_key()).await?.is_some();
        if ready {
            self.index.ready.store(true, Ordering::Release);
        }
        Ok(ready)
    }

    /// Starts [`backfill_index`](Self::backfill_index) in the background, once per process
    /// at a time; listings call it while the index is not ready (and read every request
    /// meanwhile, as before the index).
    pub fn start_backfill(&self) {
        if self.index.backfilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.index.backfilling.store(false, Ordering::Release);
            return;
        };
        let repo = Self {
            table: Arc::clone(&self.table),
            clock: Arc::clone(&self.clock),
            index: Arc::clone(&self.index),
        };
        runtime.spawn(async move {
            match repo.backfill_index().await {
                Ok(b) => {
                    tracing::info!(indexed = b.indexed, already = b.already, unreadable = b.unreadable, "the request index is complete");
                }
                Err(e) => {
                    tracing::error!(error = %e, "the request index backfill stopped; the next listing starts it again");
                }
            }
            repo.index.backfilling.store(false, Ordering::Release);
        });
    }

    /// Indexes every request written before the index existed, then writes the marker that
    /// lets listings read the index. Idempotent and resumable: an indexed request is skipped,
    /// each one is indexed in one transaction conditional on its version (so a concurrent
    /// writer and a second backfill are both safe), and the marker comes last.
    pub async fn backfill_index(&self) -> Result<Backfill, Error> {
        let mut report = Backfill::default();
        if self.index_ready().await? {
            return Ok(report);
        }
        let mut after: Option<String> = None;
        loop {
            let page = self
                .table
                .query(REQUEST_PARTITION, &SortKeyRange::All, after.as_deref(), 200)
                .await?;
            for item in page.items {
                match self.index_existing(item).await? {
                    Indexing::Indexed => report.indexed += 1,
                    Indexing::Already => report.already += 1,
                    Indexing::Unreadable => report.unreadable += 1,
                }
            }
            match page.last_sk {
                Some(sk) => after = Some(sk),
                None => break,
            }
        }
        let mut attrs = Map::new();
        attrs.insert(
            "at".into(),
            serde_json::to_value(self.clock.now()).unwrap_or(Value::Null),
        );
        attrs.insert("indexed".into(), Value::from(report.indexed));
        self.table
            .put(Item::new(marker_key(), attrs), Condition::Always)
            .await?;
        self.index.ready.store(true, Ordering::Release);
        Ok(report)
    }

    /// Indexes one stored request unless it is already, bumping its version so that a writer
    /// that read it unindexed loses its race and reads it again.
    async fn index_existing(&self, mut item: Item) -> Result<Indexing, Error> {
        for _ in 0..COUNTER_ATTEMPTS {
            if is_indexed(&item) {
                return Ok(Indexing::Already);
            }
            let Ok(mut request) = decode(item.clone()) else {
                return Ok(Indexing::Unreadable);
            };
            let expected = request.version;
            request.version = expected + 1;
            let ops = vec![TransactOp::Put {
                item: encode(&request)?,
                condition: Condition::AttrEquals {
                    name: "version".into(),
                    value: Value::from(expected),
                },
            }];
            match self.transact_indexed(ops, None, &request).await {
                Ok(()) => return Ok(Indexing::Indexed),
                Err(StoreError::TransactionCancelled { .. }) => {
                    match self.table.get(&item.key).await? {
                        Some(current) => item = current,
                        None => return Ok(Indexing::Already),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict(format!(
            "request {} kept changing while it was being indexed",
            item.key.sk
        )))
    }

    /// Commits `ops` (op 0 the request's own conditional write, then whatever else must go
    /// with it) together with the index changes from `before` to `after`, in one transaction.
    /// When a counter moved meanwhile (another request's write), reads the counters again
    /// and retries; any other failure is the caller's to read.
    pub(super) async fn transact_indexed(
        &self,
        mut ops: Vec<TransactOp>,
        before: Option<&ProvisioningRequest>,
        after: &ProvisioningRequest,
    ) -> Result<(), StoreError> {
        let change = change(before, after);
        ops.extend(change.ops);
        let fixed = ops.len();
        let mut attempt = 0;
        loop {
            let mut all = ops.clone();
            all.extend(counter_ops(&*self.table, &change.deltas).await?);
            match self.table.transact(all).await {
                Err(StoreError::TransactionCancelled { failed: Some(i) }) if i >= fixed => {}
                // DynamoDB's TransactionConflict: another transaction held a counter.
                Err(StoreError::Throttled(_)) if !change.deltas.is_empty() => {}
                other => return other,
            }
            attempt += 1;
            if attempt >= COUNTER_ATTEMPTS {
                return Err(StoreError::Throttled(
                    "the request counters kept moving; retry".into(),
                ));
            }
            pause(attempt).await;
        }
    }

    /// Every request in `status`, read through its index partition once the index is
    /// complete (the background sweep's queued requests, say), else by a full read.
    pub async fn with_status(
        &self,
        status: RequestStatus,
    ) -> Result<Vec<ProvisioningRequest>, Error> {
        if !self.index_ready().await? {
            self.start_backfill();
            return self.list(|r| r.status == status).await;
        }
        let selector = Selector {
            status: Some(status),
            ..Selector::default()
        };
        let mut out = Vec::new();
        let mut after: Option<(DateTime<Utc>, String)> = None;
        loop {
            let page = self
                .page(
                    std::slice::from_ref(&selector),
                    &Narrow::default(),
                    after.as_ref().map(|(at, id)| (*at, id.as_str())),
                    100,
                )
                .await?;
            out.extend(page.items.into_iter().filter(|r| r.status == status));
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// One page of the requests any of `selectors` selects and `narrow` keeps, newest first,
    /// starting after `after` (the previous page's last creation time and id). It reads
    /// `limit + 1` entries from each selector's partition (merged, a request selected twice
    /// counted once), then the page's requests by id; `total` comes from the partitions'
    /// counters. With `narrow` filters, or selectors that overlap three at a time, the
    /// partitions are read through to count.
    pub async fn page(
        &self,
        selectors: &[Selector],
        narrow: &Narrow,
        after: Option<(DateTime<Utc>, &str)>,
        limit: usize,
    ) -> Result<IndexedPage, Error> {
        let limit = limit.max(1);
        let mut unique: Vec<&Selector> = Vec::with_capacity(selectors.len());
        for s in selectors {
            if !unique.contains(&s) {
                unique.push(s);
            }
        }
        let after_sk = after.map(|(at, id)| sort_key(at, id));
        let (picked, more, total) = if narrow.is_empty() && pairwise_exact(&unique) {
            let (merged, total) = futures::try_join!(
                self.merge(&unique, after_sk.clone(), limit),
                self.count(&unique)
            )?;
            (merged.0, merged.1, total)
        } else {
            self.read_through(&unique, narrow, after_sk.as_deref(), limit)
                .await?
        };
        let keys: Vec<Key> = picked
            .iter()
            .map(|(_, e)| Key::new(REQUEST_PARTITION, &e.id))
            .collect();
        let got = try_join_all(keys.iter().map(|k| self.table.get(k))).await?;
        let mut items = Vec::with_capacity(picked.len());
        for ((s, e), item) in picked.iter().zip(got) {
            let Some(item) = item else {
                tracing::error!(request_id = %e.id, "an index entry names a request that is not stored");
                continue;
            };
            let r = decode(item)?;
            if unique[*s].matches(&r) && narrow.keeps(&r.template, &r.environment) {
                items.push(r);
            }
        }
        let next = if more {
            picked.last().map(|(_, e)| (e.created_at, e.id.clone()))
        } else {
            None
        };
        Ok(IndexedPage { items, total, next })
    }

    /// The first `limit` entries after `after_sk` over the selectors' partitions, merged, and
    /// whether more follow.
    async fn merge(
        &self,
        selectors: &[&Selector],
        after_sk: Option<String>,
        limit: usize,
    ) -> Result<(Vec<(usize, Entry)>, bool), Error> {
        let mut streams: Vec<Stream<'_>> = selectors
            .iter()
            .map(|s| Stream {
                table: &*self.table,
                partition: s.partition(),
                after: after_sk.clone(),
                buffer: VecDeque::new(),
                done: false,
                batch: limit + 1,
            })
            .collect();
        let mut picked: Vec<(usize, Entry)> = Vec::with_capacity(limit + 1);
        let mut last: Option<String> = None;
        while picked.len() <= limit {
            let mut best: Option<(usize, String)> = None;
            for (i, s) in streams.iter_mut().enumerate() {
                if let Some(e) = s.head().await?
                    && best.as_ref().is_none_or(|(_, sk)| e.sk < *sk)
                {
                    best = Some((i, e.sk.clone()));
                }
            }
            let Some((i, sk)) = best else { break };
            let Some(entry) = streams[i].buffer.pop_front() else {
                break;
            };
            if last.as_deref() == Some(sk.as_str()) {
                continue;
            }
            last = Some(sk);
            picked.push((i, entry));
        }
        let more = picked.len() > limit;
        picked.truncate(limit);
        Ok((picked, more))
    }

    /// How many requests any of the selectors selects, from the counters: the sum of each
    /// selector's, less each pair's overlap (exact when no request is in three of them).
    async fn count(&self, selectors: &[&Selector]) -> Result<usize, Error> {
        let mut terms: Vec<(Key, i64)> = selectors.iter().map(|s| (s.counter(), 1)).collect();
        for (i, a) in selectors.iter().enumerate() {
            for b in &selectors[i + 1..] {
                if let Some(both) = a.intersect(b) {
                    terms.push((both.counter(), -1));
                }
            }
        }
        let values = try_join_all(terms.iter().map(|(k, _)| self.table.get(k))).await?;
        let total: i64 = terms
            .iter()
            .zip(values)
            .map(|((_, sign), item)| {
                sign * item
                    .as_ref()
                    .map_or(0, |i| i64::try_from(count_of(i)).unwrap_or(i64::MAX))
            })
            .sum();
        Ok(usize::try_from(total).unwrap_or(0))
    }

    /// Every entry of the selectors' partitions that `narrow` keeps (small items, never the
    /// requests): the exact total, and the page after `after_sk`.
    async fn read_through(
        &self,
        selectors: &[&Selector],
        narrow: &Narrow,
        after_sk: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<(usize, Entry)>, bool, usize), Error> {
        let mut kept: BTreeMap<String, (usize, Entry)> = BTreeMap::new();
        for (i, s) in selectors.iter().enumerate() {
            let mut stream = Stream {
                table: &*self.table,
                partition: s.partition(),
                after: None,
                buffer: VecDeque::new(),
                done: false,
                batch: 1000,
            };
            while stream.head().await?.is_some() {
                let Some(e) = stream.buffer.pop_front() else {
                    break;
                };
                if narrow.keeps(&e.template, &e.environment) {
                    kept.entry(e.sk.clone()).or_insert((i, e));
                }
            }
        }
        let total = kept.len();
        let start = after_sk.map_or(Bound::Unbounded, |sk| Bound::Excluded(sk.to_owned()));
        let mut picked: Vec<(usize, Entry)> = kept
            .range((start, Bound::Unbounded))
            .take(limit + 1)
            .map(|(_, v)| v.clone())
            .collect();
        let more = picked.len() > limit;
        picked.truncate(limit);
        Ok((picked, more, total))
    }
}

/// Whether no request can be in three of the selectors, so that counting by pairs is exact.
fn pairwise_exact(selectors: &[&Selector]) -> bool {
    for (i, a) in selectors.iter().enumerate() {
        for (j, b) in selectors.iter().enumerate().skip(i + 1) {
            let Some(ab) = a.intersect(b) else { continue };
            if selectors[j + 1..].iter().any(|c| ab.intersect(c).is_some()) {
                return false;
            }
        }
    }
    true
}

/// Whether the stored request item is reflected by the index.
pub(super) fn is_indexed(item: &Item) -> bool {
    item.attrs.get(INDEXED_ATTR).and_then(Value::as_u64) == Some(INDEX_VERSION)
}

enum Indexing {
    Indexed,
    Already,
    Unreadable,
}

/// The listing state a repository keeps: whether the index is ready, and whether this
/// process is backfilling it.
#[derive(Debug, Default)]
pub(super) struct IndexState {
    ready: std::sync::atomic::AtomicBool,
    backfilling: std::sync::atomic::AtomicBool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_read_newest_first_then_the_id_descending() {
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("time")
                .with_timezone(&Utc)
        };
        let mut rows = vec![
            (t("2026-01-01T00:00:00Z"), "req-a"),
            (t("2026-01-01T00:00:00.000000001Z"), "req-a"),
            (t("2026-01-02T00:00:00Z"), "req-0"),
            (t("2026-01-02T00:00:00Z"), "req-f"),
            (t("2026-01-02T00:00:00Z"), "req-ff"),
            (t("1969-12-31T23:59:59Z"), "r1"),
            (t("2100-01-01T00:00:00Z"), "r1"),
        ];
        let mut by_key = rows.clone();
        by_key.sort_by_key(|(at, id)| sort_key(*at, id));
        rows.sort_by(|a, b| (b.0, b.1).cmp(&(a.0, a.1)));
        assert_eq!(by_key, rows);
        assert!(sort_key(t("2026-01-01T00:00:00Z"), "req-a").len() < 1024);
    }

    #[test]
    fn intersections_and_partitions() {
        let o = |x: &str| Selector {
            owner: Some(x.into()),
            ..Selector::default()
        };
        assert_eq!(Selector::all().partition(), "REQBY#ALL");
        assert_eq!(o("group:default/a").intersect(&o("group:default/b")), None);
        let r = Selector {
            requester: Some("user:default/u".into()),
            status: Some(RequestStatus::Ready),
            ..Selector::default()
        };
        let both = o("group:default/a").intersect(&r).expect("overlap");
        assert_eq!(
            both.partition(),
            "REQBY#OWNER#group:default/a#REQUESTER#user:default/u#STATUS#READY"
        );
        assert_eq!(
            counter_key(&both.partition()).pk,
            "REQCOUNT#OWNER#group:default/a#REQUESTER#user:default/u#STATUS#READY"
        );
        assert!(pairwise_exact(&[&o("a"), &o("b"), &r]));
        assert!(!pairwise_exact(&[&o("a"), &r, &Selector::all()]));
        assert_eq!(owner_key("Team-A"), "group:default/team-a");
        assert_eq!(requester_key("user:default/Alice"), "user:default/alice");
    }
}
