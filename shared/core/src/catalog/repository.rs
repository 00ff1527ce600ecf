//! The catalog repository: entities in the [`Table`], written once over the port so that
//! conditional writes and transactions behave alike on every backend, with the in-memory
//! [`CatalogIndex`] kept in step for reads.

use crate::ErrorCode;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{RwLock, RwLockReadGuard};
use serde::Serialize;
use serde_json::Value;

use super::changelog::chunks::ReadError;
use super::changelog::{self, Append, ChangeSet, Encoded, TailError, snapshot};
use super::entity::{
    ValidEntity, validate_entity, validate_entity_except_templates, validate_stored_entity,
};
use super::index::{CatalogIndex, EntityView, StoredEntity};
use super::kind::Kind;
use super::names::EntityRef;
use crate::error::{DocumentReport, Error, Violation};
use crate::ports::{Item, SortKeyRange, Table};

/// The partition where versions before the change log kept every entity, keyed by its
/// lower-case ref; read until the first snapshot includes them.
pub const ENTITY_PARTITION: &str = "CATALOG#ENTITY";
const LOAD_PAGE: usize = 1000;

/// The platform itself writing (installing its golden paths, registering what it provisioned):
/// there is no caller to authorize.
#[derive(Debug)]
pub struct PlatformWriter;

impl WriteGuard for PlatformWriter {
    fn check(
        &self,
        _: &EntityRef,
        _: Kind,
        _: Option<&EntityRef>,
        _: Option<&EntityRef>,
    ) -> Result<(), Error> {
        Ok(())
    }
}

/// Decides whether the caller may write an entity (see
/// [`AccessPolicy::check_catalog_write`](crate::auth::AccessPolicy::check_catalog_write)).
pub trait WriteGuard: Send + Sync {
    fn check(
        &self,
        entity_ref: &EntityRef,
        kind: Kind,
        current_owner: Option<&EntityRef>,
        new_owner: Option<&EntityRef>,
    ) -> Result<(), Error>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteStatus {
    Created,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone)]
pub struct UpsertOutcome {
    pub status: WriteStatus,
    pub view: EntityView,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportedEntity {
    #[serde(rename = "entityRef")]
    pub entity_ref: String,
    pub status: WriteStatus,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportOutcome {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub entities: Vec<ImportedEntity>,
}

pub struct CatalogRepository {
    table: Arc<dyn Table>,
    options: CatalogOptions,
    index: RwLock<CatalogIndex>,
    /// Where this process's read model stands in the change log. Writers and catch-ups hold
    /// it, so the index applies records in the log's order.
    sync: tokio::sync::Mutex<SyncState>,
    /// When the read model was last known to match the log (the start of the last catch-up).
    /// Nanoseconds after `epoch`; an atomic, as every request reads it.
    synced_at: AtomicU64,
    epoch: Instant,
    snapshotting: AtomicBool,
}

/// How a process follows the catalog that other processes write.
#[derive(Debug, Clone)]
pub struct CatalogOptions {
    /// Readers ([`CatalogRepository::fresh`]) catch up with the change log when their read
    /// model is older than this. Writers always catch up first.
    pub max_staleness: Duration,
    /// A snapshot is written after this many records since the last one...
    pub snapshot_after_records: u64,
    /// ...or once this many entities, or half the catalog if more, changed since.
    pub snapshot_after_entities: usize,
}

impl Default for CatalogOptions {
    fn default() -> Self {
        Self {
            max_staleness: Duration::from_secs(1),
            snapshot_after_records: 200,
            snapshot_after_entities: 2_000,
        }
    }
}

#[derive(Debug, Default)]
struct SyncState {
    seq: u64,
    /// The snapshot this process knows of, and what was committed after it.
    snapshot_seq: u64,
    records_since_snapshot: u64,
    entities_since_snapshot: usize,
}

impl SyncState {
    fn record(&mut self, seq: u64, entities: usize) {
        self.seq = seq;
        self.records_since_snapshot += 1;
        self.entities_since_snapshot += entities;
    }
}

/// What a catch-up saw.
#[derive(Debug, Default)]
struct CaughtUp {
    /// The ref keys the records applied touched.
    touched: HashSet<String>,
    /// The read model was rebuilt (it had fallen behind a collected log): assume anything
    /// changed.
    reloaded: bool,
}

impl std::fmt::Debug for CatalogRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogRepository").finish_non_exhaustive()
    }
}

/// Attempts at a write that keeps losing its log position to other writers.
const WRITE_ATTEMPTS: usize = 8;

impl CatalogRepository {
    /// Loads the catalog (its snapshot and the change log after it) with the default options.
    pub async fn load(table: Arc<dyn Table>) -> Result<Self, Error> {
        Self::load_with(table, CatalogOptions::default()).await
    }

    /// Loads the catalog: the latest snapshot's chunks in parallel, then the log's tail.
    pub async fn load_with(table: Arc<dyn Table>, options: CatalogOptions) -> Result<Self, Error> {
        let started = Instant::now();
        let (index, state) = read_from_store(&table).await?;
        tracing::info!(
            entities = index.len(),
            seq = state.seq,
            snapshot_seq = state.snapshot_seq,
            tail = state.records_since_snapshot,
            "catalog loaded"
        );
        Ok(Self {
            table,
            options,
            index: RwLock::new(index),
            sync: tokio::sync::Mutex::new(state),
            synced_at: AtomicU64::new(0),
            epoch: started,
            snapshotting: AtomicBool::new(false),
        })
    }

    /// The read model as this process last synced it, for queries. Hold the guard briefly:
    /// writers wait for it. Entry points use [`CatalogRepository::fresh`].
    pub fn read(&self) -> RwLockReadGuard<'_, CatalogIndex> {
        self.index.read()
    }

    /// The read model, first caught up with the change log if it is older than
    /// [`CatalogOptions::max_staleness`]: what any process committed that long ago is in it.
    pub async fn fresh(&self) -> Result<RwLockReadGuard<'_, CatalogIndex>, Error> {
        if self.is_stale() {
            let mut state = self.sync.lock().await;
            if self.is_stale() {
                self.catch_up(&mut state).await?;
            }
        }
        Ok(self.read())
    }

    /// Catches the read model up with the change log if it is older than
    /// [`CatalogOptions::max_staleness`]. Entry points call it (the HTTP functions through
    /// `paved_http::fresh_catalog`) before they read with [`CatalogRepository::read`].
    pub async fn refresh(&self) -> Result<(), Error> {
        drop(self.fresh().await?);
        Ok(())
    }

    /// The change-log position of the read model.
    pub async fn position(&self) -> u64 {
        self.sync.lock().await.seq
    }

    fn is_stale(&self) -> bool {
        let synced = Duration::from_nanos(self.synced_at.load(Ordering::Acquire));
        self.epoch.elapsed().saturating_sub(synced) >= self.options.max_staleness
    }

    /// Applies every record committed after the read model's position; reloads when the
    /// records it needs were collected.
    async fn catch_up(&self, state: &mut SyncState) -> Result<CaughtUp, Error> {
        let started = Instant::now();
        let mut seen = CaughtUp::default();
        match changelog::tail(&self.table, state.seq).await {
            Ok(records) => {
                if !records.is_empty() {
                    let mut index = self.index.write();
                    for record in records {
                        seen.touched.extend(record.changes.keys());
                        let n = record.changes.len();
                        index.apply(record.changes.upserts, &record.changes.removals);
                        state.record(record.seq, n);
                    }
                }
            }
            Err(TailError::Failed(e)) => return Err(e),
            Err(why) => {
                tracing::warn!(
                    held = state.seq,
                    ?why,
                    "the read model fell behind the catalog's change log; reloading it"
                );
                let (index, fresh) = read_from_store(&self.table).await?;
                *self.index.write() = index;
                *state = fresh;
                seen.reloaded = true;
            }
        }
        let since_epoch = started.saturating_duration_since(self.epoch).as_nanos();
        self.synced_at.store(
            u64::try_from(since_epoch).unwrap_or(u64::MAX),
            Ordering::Release,
        );
        Ok(seen)
    }

    /// Commits the change `decide` makes of the current catalog at the log's next position.
    /// When another writer takes that position first, the catalog is caught up and `decide`
    /// runs again on what the winner wrote: whatever `decide` checked (owner, etag, caller's
    /// rights) holds at the moment of the commit.
    ///
    /// A change too large to travel in one record is staged outside the lock and committed
    /// unless a record committed meanwhile touched one of its entities (then nothing is
    /// written and the caller hears `Conflict`).
    async fn commit<T>(
        &self,
        decide: impl Fn(&CatalogIndex) -> Result<(ChangeSet, T), Error>,
    ) -> Result<T, Error> {
        for _ in 0..WRITE_ATTEMPTS {
            let mut state = self.sync.lock().await;
            self.catch_up(&mut state).await?;
            let (changes, outcome) = decide(&self.read())?;
            if changes.is_empty() {
                return Ok(outcome);
            }
            let prepared = match changelog::encode(&changes)? {
                Encoded::Inline(inline) => inline,
                Encoded::Chunks(chunks) => {
                    drop(state);
                    return self.commit_staged(chunks, changes, outcome).await;
                }
            };
            let seq = state.seq + 1;
            match changelog::append(&self.table, seq, &prepared, changes.len(), now_millis())
                .await?
            {
                Append::Committed => {
                    self.apply_own(&mut state, seq, changes);
                    drop(state);
                    self.maybe_snapshot().await;
                    return Ok(outcome);
                }
                Append::Lost => continue,
            }
        }
        Err(Error::Conflict(
            "the catalog is changing too fast to commit this write; nothing was written, retry it"
                .into(),
        ))
    }

    async fn commit_staged<T>(
        &self,
        chunks: Vec<String>,
        changes: ChangeSet,
        outcome: T,
    ) -> Result<T, Error> {
        let prepared = changelog::stage(&self.table, chunks, now_millis()).await?;
        let result = async {
            let mut state = self.sync.lock().await;
            for _ in 0..WRITE_ATTEMPTS {
                let seen = self.catch_up(&mut state).await?;
                if seen.reloaded || changelog::overlaps(&seen.touched, &changes) {
                    return Err(Error::Conflict(
                        "the catalog changed during the import; nothing was written, retry it"
                            .into(),
                    ));
                }
                let seq = state.seq + 1;
                match changelog::append(&self.table, seq, &prepared, changes.len(), now_millis())
                    .await?
                {
                    Append::Committed => return Ok((state, seq)),
                    Append::Lost => continue,
                }
            }
            Err(Error::Conflict(
                "the catalog is changing too fast to commit this import; nothing was written, retry it"
                    .into(),
            ))
        }
        .await;
        match result {
            Ok((mut state, seq)) => {
                self.apply_own(&mut state, seq, changes);
                drop(state);
                self.maybe_snapshot().await;
                Ok(outcome)
            }
            Err(e) => {
                changelog::discard(&self.table, &prepared).await;
                Err(e)
            }
        }
    }

    fn apply_own(&self, state: &mut SyncState, seq: u64, changes: ChangeSet) {
        let n = changes.len();
        self.index.write().apply(changes.upserts, &changes.removals);
        state.record(seq, n);
    }

    /// Publishes a snapshot once enough changed since the last one, so cold starts stay a
    /// few parallel reads. A failure is logged; the log still holds everything.
    async fn maybe_snapshot(&self) {
        let (seq, encoded, records, entities) = {
            let state = self.sync.lock().await;
            let entities_due = self
                .options
                .snapshot_after_entities
                .max(self.read().len() / 2);
            let due = state.records_since_snapshot >= self.options.snapshot_after_records
                || state.entities_since_snapshot >= entities_due;
            if !due || self.snapshotting.swap(true, Ordering::AcqRel) {
                return;
            }
            let encoded = changelog::chunks::encode(self.read().log_lines());
            (
                state.seq,
                encoded,
                state.records_since_snapshot,
                state.entities_since_snapshot,
            )
        };
        let published = match encoded {
            Ok(encoded) => snapshot::publish(&self.table, seq, encoded, now_millis()).await,
            Err(e) => Err(e),
        };
        match published {
            Ok(_) => {
                let mut state = self.sync.lock().await;
                if state.snapshot_seq < seq {
                    state.snapshot_seq = seq;
                    state.records_since_snapshot -= records.min(state.records_since_snapshot);
                    state.entities_since_snapshot -= entities.min(state.entities_since_snapshot);
                }
                tracing::info!(seq, "catalog snapshot published");
            }
            Err(e) => {
                tracing::warn!(seq, error = %e, "the catalog snapshot was not published; cold starts read more of the log until one is")
            }
        }
        self.snapshotting.store(false, Ordering::Release);
    }

    /// Creates or replaces one entity. With `if_match`, the write happens only while the
    /// entity's current etag is that one.
    pub async fn upsert(
        &self,
        value: Value,
        if_match: Option<&str>,
        guard: &dyn WriteGuard,
    ) -> Result<UpsertOutcome, Error> {
        let valid = validate_entity(value)?;
        let status = self
            .commit(|index| {
                let current = index.get_by_ref(&valid.entity_ref);
                guard.check(
                    &valid.entity_ref,
                    valid.kind,
                    current.and_then(|c| c.owner.as_ref()),
                    valid.owner.as_ref(),
                )?;
                if let Some(expected) = if_match {
                    check_if_match(expected, current, &valid.entity_ref)?;
                }
                let status = match current {
                    Some(c) if c.content_hash == valid.content_hash => {
                        return Ok((ChangeSet::default(), WriteStatus::Unchanged));
                    }
                    Some(_) => WriteStatus::Updated,
                    None => WriteStatus::Created,
                };
                let changes = ChangeSet {
                    upserts: vec![prepare_write(valid.clone(), current)],
                    removals: Vec::new(),
                };
                Ok((changes, status))
            })
            .await?;
        let view = self
            .read()
            .get_by_ref(&valid.entity_ref)
            .cloned()
            .ok_or_else(|| Error::NotFound(valid.entity_ref.to_string()))?;
        Ok(UpsertOutcome { status, view })
    }

    /// Imports a whole multi-document body: every document is checked first, and either all
    /// of the changes are written, in one transaction, or none is.
    pub async fn import(
        &self,
        documents: Vec<Value>,
        guard: &dyn WriteGuard,
    ) -> Result<ImportOutcome, Error> {
        self.import_checked(documents, guard, validate_entity, false)
            .await
    }

    /// Registers the one Component a provisioned service's catalog-info.yaml declares, as the
    /// platform. The file was rendered from a request's parameters, so it is held to exactly
    /// what the request asked for: one document, a Component with the expected name and
    /// owner, carrying the request's id. Anything else (a second document, a User, a
    /// Template, another team's owner) is refused and nothing is written.
    pub async fn register_service_component(
        &self,
        documents: Vec<Value>,
        expected: &ServiceComponent<'_>,
    ) -> Result<ImportOutcome, Error> {
        let refuse = |field: &str, message: String| Error::Invalid {
            code: ErrorCode::NotTheServiceComponent,
            message: format!("the service's catalog-info.yaml is refused: {message}"),
            violations: vec![Violation::new(field, message)],
        };
        let count = documents.len();
        let Ok([document]) = <[Value; 1]>::try_from(documents) else {
            return Err(refuse(
                "",
                format!(
                    "it declares {count} documents; a new service registers exactly its own Component"
                ),
            ));
        };
        let valid = validate_entity_except_templates(document.clone())?;
        if valid.kind != Kind::Component || valid.entity_ref.key() != expected.entity_ref.key() {
            return Err(refuse(
                "metadata.name",
                format!(
                    "it declares {}, not {}",
                    valid.entity_ref, expected.entity_ref
                ),
            ));
        }
        if valid.owner.as_ref().map(EntityRef::key) != Some(expected.owner.key()) {
            return Err(refuse(
                "spec.owner",
                format!("its owner is not the request's owner {}", expected.owner),
            ));
        }
        let stamped = valid
            .body
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get(expected.request_annotation))
            .and_then(Value::as_str);
        if stamped != Some(expected.request_id) {
            return Err(refuse(
                "metadata.annotations",
                format!(
                    "it does not carry {}: {}",
                    expected.request_annotation, expected.request_id
                ),
            ));
        }
        self.import_checked(
            vec![document],
            &PlatformWriter,
            validate_entity_except_templates,
            false,
        )
        .await
    }

    async fn import_checked(
        &self,
        documents: Vec<Value>,
        guard: &dyn WriteGuard,
        validate: fn(Value) -> Result<ValidEntity, Error>,
        only_missing: bool,
    ) -> Result<ImportOutcome, Error> {
        let mut reports = Vec::new();
        let mut valid = Vec::with_capacity(documents.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, doc) in documents.into_iter().enumerate() {
            let fallback_ref = doc_ref(&doc);
            match validate(doc) {
                Ok(v) => {
                    let key = v.entity_ref.key();
                    if let Some(first) = seen.insert(key, i) {
                        reports.push(DocumentReport {
                            document: i,
                            entity_ref: Some(v.entity_ref.to_string()),
                            code: ErrorCode::DuplicateEntity,
                            errors: vec![Violation::new(
                                "metadata.name",
                                format!("{} is also document {first} of this import", v.entity_ref),
                            )],
                        });
                    }
                    valid.push((i, v));
                }
                Err(Error::Invalid {
                    code, violations, ..
                }) => reports.push(DocumentReport {
                    document: i,
                    entity_ref: fallback_ref,
                    code,
                    errors: violations,
                }),
                Err(other) => return Err(other),
            }
        }
        if !reports.is_empty() {
            return Err(Error::ImportRejected(reports));
        }

        self.commit(|index| {
            let mut reports = Vec::new();
            let mut outcome = ImportOutcome::default();
            let mut changes = ChangeSet::default();
            for (i, v) in &valid {
                let current = index.get_by_ref(&v.entity_ref);
                if current.is_some() && only_missing {
                    continue;
                }
                if let Err(e) = guard.check(
                    &v.entity_ref,
                    v.kind,
                    current.and_then(|c| c.owner.as_ref()),
                    v.owner.as_ref(),
                ) {
                    reports.push(DocumentReport {
                        document: *i,
                        entity_ref: Some(v.entity_ref.to_string()),
                        code: e.error_code(),
                        errors: vec![Violation::new("", e.to_string())],
                    });
                    continue;
                }
                let status = match current {
                    Some(c) if c.content_hash == v.content_hash => WriteStatus::Unchanged,
                    Some(_) => WriteStatus::Updated,
                    None => WriteStatus::Created,
                };
                outcome.entities.push(ImportedEntity {
                    entity_ref: v.entity_ref.to_string(),
                    status,
                });
                match status {
                    WriteStatus::Unchanged => outcome.unchanged += 1,
                    WriteStatus::Updated => outcome.updated += 1,
                    WriteStatus::Created => outcome.created += 1,
                }
                if status != WriteStatus::Unchanged {
                    changes.upserts.push(prepare_write(v.clone(), current));
                }
            }
            if !reports.is_empty() {
                return Err(Error::ImportRejected(reports));
            }
            Ok((changes, outcome))
        })
        .await
    }

    /// Writes those of `documents` that the catalog does not hold yet, as the platform itself
    /// (no caller to authorize); what is there already is left as its owners made it.
    ///
    /// Several processes may do this at once (cold starts of the catalog function): whatever
    /// another one installed first is, by the time this one commits, already there and left.
    pub async fn install_missing(&self, documents: Vec<Value>) -> Result<ImportOutcome, Error> {
        let missing: Vec<Value> = {
            let index = self.fresh().await?;
            documents
                .into_iter()
                .filter(|doc| {
                    doc_ref(doc).is_none_or(|r| index.get_by_key(&r.to_lowercase()).is_none())
                })
                .collect()
        };
        if missing.is_empty() {
            return Ok(ImportOutcome::default());
        }
        self.import_checked(missing, &PlatformWriter, validate_entity, true)
            .await
    }

    /// Deletes an entity by uid. The delete commits only if, at that moment, the entity is
    /// still the one the guard authorized (same uid, owner and etag).
    pub async fn delete_by_uid(
        &self,
        uid: &str,
        guard: &dyn WriteGuard,
    ) -> Result<EntityRef, Error> {
        self.commit(|index| {
            let current = index
                .get_by_uid(uid)
                .ok_or_else(|| Error::NotFound(format!("entity with uid {uid}")))?;
            guard.check(
                &current.entity_ref,
                current.kind,
                current.owner.as_ref(),
                None,
            )?;
            let changes = ChangeSet {
                upserts: Vec::new(),
                removals: vec![current.entity_ref.clone()],
            };
            Ok((changes, current.entity_ref.clone()))
        })
        .await
    }
}

/// Builds the stored form of a write: a new uid when the entity is new, a fresh etag always,
/// and a generation that moves when the spec changes.
fn prepare_write(valid: ValidEntity, current: Option<&EntityView>) -> StoredEntity {
    let (uid, generation) = match current {
        Some(c) => {
            let spec_changed = spec_changed(c, &valid).unwrap_or(true);
            (c.uid.clone(), c.generation + u64::from(spec_changed))
        }
        None => (uuid::Uuid::new_v4().to_string(), 1),
    };
    StoredEntity {
        valid,
        uid,
        etag: uuid::Uuid::new_v4().simple().to_string(),
        generation,
    }
}

fn spec_changed(current: &EntityView, valid: &ValidEntity) -> Option<bool> {
    let old: Value = serde_json::from_slice(&current.json).ok()?;
    Some(old.get("spec") != valid.body.get("spec"))
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Reads the catalog from the store: the snapshot the pointer names (or, before the first
/// snapshot, the entities an earlier version kept one item each), then the log after it.
/// A snapshot replaced while it is read, or a log collected under it, starts the read again.
async fn read_from_store(table: &Arc<dyn Table>) -> Result<(CatalogIndex, SyncState), Error> {
    const ATTEMPTS: usize = 5;
    for attempt in 1..=ATTEMPTS {
        let pointer = snapshot::current(table).await?;
        let (base, snapshot_seq) = match &pointer {
            Some(p) => {
                match changelog::chunks::read(table, &p.current.id, p.current.chunks).await {
                    Ok(changes) => (changes.upserts, p.current.seq),
                    Err(ReadError::Missing) => continue,
                    Err(ReadError::Failed(e)) => return Err(e),
                }
            }
            None => (per_item_entities(table).await?, 0),
        };
        let mut index = CatalogIndex::default();
        let legacy = if pointer.is_none() { base.len() } else { 0 };
        index.apply(base, &[]);
        let mut state = SyncState {
            seq: snapshot_seq,
            snapshot_seq,
            records_since_snapshot: 0,
            entities_since_snapshot: legacy,
        };
        match changelog::tail(table, snapshot_seq).await {
            Ok(records) => {
                for record in records {
                    let n = record.changes.len();
                    index.apply(record.changes.upserts, &record.changes.removals);
                    state.record(record.seq, n);
                }
                return Ok((index, state));
            }
            Err(TailError::Failed(e)) => return Err(e),
            Err(why) => {
                tracing::info!(
                    attempt,
                    ?why,
                    "the catalog changed under the load; reading it again"
                );
            }
        }
    }
    Err(Error::Unavailable(
        "the catalog's snapshot kept changing while it was read; retry".into(),
    ))
}

/// Entities an earlier version of paved stored one item each, read once until the first
/// snapshot includes them.
async fn per_item_entities(table: &Arc<dyn Table>) -> Result<Vec<StoredEntity>, Error> {
    let mut stored = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = table
            .query(
                ENTITY_PARTITION,
                &SortKeyRange::All,
                after.as_deref(),
                LOAD_PAGE,
            )
            .await?;
        for item in page.items {
            match decode(&item) {
                Ok(entity) => stored.push(entity),
                Err(e) => {
                    tracing::error!(key = ?item.key, error = %e, "a stored entity no longer passes validation; it is left in the table but not served")
                }
            }
        }
        match page.last_sk {
            Some(sk) => after = Some(sk),
            None => return Ok(stored),
        }
    }
}

/// What a new service's register step may write: its own Component, as the request made it.
#[derive(Debug, Clone, Copy)]
pub struct ServiceComponent<'a> {
    pub entity_ref: &'a EntityRef,
    pub owner: &'a EntityRef,
    /// The annotation that carries the request id, and the id.
    pub request_annotation: &'a str,
    pub request_id: &'a str,
}

fn check_if_match(
    expected: &str,
    current: Option<&EntityView>,
    entity_ref: &EntityRef,
) -> Result<(), Error> {
    let expected = expected.trim().trim_start_matches("W/").trim_matches('"');
    match current {
        None => Err(Error::PreconditionFailed(format!(
            "If-Match was given but {entity_ref} does not exist"
        ))),
        Some(_) if expected == "*" => Ok(()),
        Some(c) if c.etag == expected => Ok(()),
        Some(c) => Err(Error::PreconditionFailed(format!(
            "If-Match {expected} is not the current etag of {entity_ref} ({}); fetch it again and retry",
            c.etag
        ))),
    }
}

fn doc_ref(doc: &Value) -> Option<String> {
    let kind = doc.get("kind")?.as_str()?;
    let meta = doc.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    let ns = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    Some(format!(
        "{}:{}/{}",
        kind.to_lowercase(),
        ns.to_lowercase(),
        name
    ))
}

/// A stored entity that does not read back is the server's fault, never a caller's (`load`
/// logs it and leaves it out of the read model).
fn decode(item: &Item) -> Result<StoredEntity, Error> {
    let corrupt = |why: String| {
        Error::Internal(format!(
            "the stored entity {}/{} is corrupt: {why}",
            item.key.pk, item.key.sk
        ))
    };
    let entity = item
        .str_attr("entity")
        .ok_or_else(|| corrupt("no entity attribute".into()))?;
    let entity: Value = serde_json::from_str(entity).map_err(|e| corrupt(e.to_string()))?;
    let valid = validate_stored_entity(entity).map_err(|e| corrupt(e.to_string()))?;
    Ok(StoredEntity {
        valid,
        uid: item.str_attr("uid").unwrap_or_default().to_owned(),
        etag: item.str_attr("etag").unwrap_or_default().to_owned(),
        generation: item
            .attrs
            .get("generation")
            .and_then(Value::as_u64)
            .unwrap_or(1),
    })
}
