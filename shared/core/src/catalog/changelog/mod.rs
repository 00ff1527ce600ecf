//! The catalog's change log: the one sequence of commits that every process's read model
//! follows, on every backend.
//!
//! - Every write is one record, `CATALOG#LOG / <seq>`, put only if absent: two writers that
//!   read the catalog at the same `seq` cannot both commit `seq + 1`, so a commit is
//!   conditioned on everything the writer checked (owners, etags, memberships) being as it
//!   read them.
//! - A small change travels inside its record. A large one (an import of thousands) is first
//!   staged as chunks under its own id, then committed by a record that names the stage, in
//!   one transaction with the stage's registry item: a crash leaves either no record (the
//!   stage is garbage, never read) or the whole change.
//! - Readers tail the log after the `seq` they hold. A reader that finds a gap (the records it
//!   needs were collected) reloads rather than serving a catalog with a hole in it.
//! - [`snapshot`] keeps a compact copy of the whole catalog, so a cold start reads a few
//!   chunks in parallel plus the log's tail instead of every entity.

pub(crate) mod chunks;
pub(crate) mod snapshot;

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::index::StoredEntity;
use super::names::EntityRef;
use crate::error::Error;
use crate::ports::{Condition, Item, Key, SortKeyRange, StoreError, Table, TransactOp};

pub(crate) const LOG_PARTITION: &str = "CATALOG#LOG";
/// One item per stage: when it started, and the record that committed it, if any.
pub(crate) const STAGES_PARTITION: &str = "CATALOG#STAGES";
/// Records read per query while tailing.
const TAIL_PAGE: usize = 100;
/// A change whose encoded form is at most this travels inside its record.
const INLINE_MAX: usize = chunks::MAX_CHUNK_ITEM;

pub(crate) fn seq_key(seq: u64) -> String {
    format!("{seq:020}")
}

/// What one commit changes.
#[derive(Debug, Default)]
pub(crate) struct ChangeSet {
    pub(crate) upserts: Vec<StoredEntity>,
    pub(crate) removals: Vec<EntityRef>,
}

impl ChangeSet {
    pub(crate) fn len(&self) -> usize {
        self.upserts.len() + self.removals.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The lower-case ref keys this change touches.
    pub(crate) fn keys(&self) -> impl Iterator<Item = String> + '_ {
        self.upserts
            .iter()
            .map(|s| s.valid.entity_ref.key())
            .chain(self.removals.iter().map(EntityRef::key))
    }

    /// Encodes the change as chunks: removals first, as the read model applies them.
    pub(crate) fn encode(&self) -> Result<Vec<String>, Error> {
        let removals: Vec<Vec<u8>> = self
            .removals
            .iter()
            .map(|r| serde_json::to_vec(&r.to_string()).unwrap_or_default())
            .collect();
        let upserts: Vec<Vec<u8>> = self.upserts.iter().map(StoredEntity::log_json).collect();
        chunks::encode(removals.iter().chain(upserts.iter()).map(Vec::as_slice))
    }
}

/// A committed record, as a tailing reader receives it.
#[derive(Debug)]
pub(crate) struct Committed {
    pub(super) seq: u64,
    pub(super) changes: ChangeSet,
}

/// Why the tail could not be followed.
#[derive(Debug)]
pub(crate) enum TailError {
    /// The records after the reader's position are gone: reload.
    #[allow(dead_code, reason = "read through Debug, in the reload's log line")]
    Gap {
        held: u64,
        first: u64,
    },
    /// A staged chunk is gone (collected after a newer snapshot): reload.
    Missing,
    Failed(Error),
}

impl From<StoreError> for TailError {
    fn from(e: StoreError) -> Self {
        Self::Failed(e.into())
    }
}

impl From<chunks::ReadError> for TailError {
    fn from(e: chunks::ReadError) -> Self {
        match e {
            chunks::ReadError::Missing => Self::Missing,
            chunks::ReadError::Failed(e) => Self::Failed(e),
        }
    }
}

/// Every record after `held`, in order. Consecutive or an error: a reader never skips one.
pub(crate) async fn tail(table: &Arc<dyn Table>, held: u64) -> Result<Vec<Committed>, TailError> {
    let mut out = Vec::new();
    let mut after = seq_key(held);
    let mut expected = held + 1;
    loop {
        let page = table
            .query(LOG_PARTITION, &SortKeyRange::All, Some(&after), TAIL_PAGE)
            .await?;
        for item in page.items {
            let seq: u64 = item.key.sk.parse().map_err(|_| {
                TailError::Failed(Error::Internal(format!(
                    "a catalog log record has the key {}",
                    item.key.sk
                )))
            })?;
            if seq != expected {
                return Err(TailError::Gap {
                    held: expected - 1,
                    first: seq,
                });
            }
            let changes = record_changes(table, &item).await?;
            out.push(Committed { seq, changes });
            expected += 1;
        }
        match page.last_sk {
            Some(sk) => after = sk,
            None => return Ok(out),
        }
    }
}

async fn record_changes(table: &Arc<dyn Table>, item: &Item) -> Result<ChangeSet, TailError> {
    if let Some(inline) = item.str_attr("changes") {
        let mut changes = ChangeSet::default();
        chunks::decode(inline, &mut changes).map_err(TailError::Failed)?;
        return Ok(changes);
    }
    let stage = item.str_attr("stage").ok_or_else(|| {
        TailError::Failed(Error::Internal(format!(
            "the catalog log record {} has neither changes nor a stage",
            item.key.sk
        )))
    })?;
    let count = item
        .attrs
        .get("chunks")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Ok(chunks::read(table, stage, count as usize).await?)
}

/// The outcome of trying to commit at one position.
#[derive(Debug)]
pub(crate) enum Append {
    Committed,
    /// Another writer committed this position first: catch up and decide again.
    Lost,
}

/// A change ready to commit: inline, or staged under an id.
#[derive(Debug)]
pub(crate) enum Prepared {
    Inline(String),
    Staged { id: String, chunks: usize },
}

/// A change encoded: small enough to travel in its record, or chunks to stage.
#[derive(Debug)]
pub(crate) enum Encoded {
    Inline(Prepared),
    Chunks(Vec<String>),
}

pub(crate) fn encode(changes: &ChangeSet) -> Result<Encoded, Error> {
    let mut encoded = changes.encode()?;
    if encoded.len() == 1 && encoded[0].len() <= INLINE_MAX {
        return Ok(Encoded::Inline(Prepared::Inline(encoded.remove(0))));
    }
    Ok(Encoded::Chunks(encoded))
}

/// Stages chunks under a new id (outside any lock: a stage is invisible until a record names
/// it). The stage's registry item comes first, so a crash mid-way leaves something the
/// snapshot's collection finds.
pub(crate) async fn stage(
    table: &Arc<dyn Table>,
    encoded: Vec<String>,
    now_millis: i64,
) -> Result<Prepared, Error> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut attrs = Map::new();
    attrs.insert("startedAt".into(), Value::from(now_millis));
    table
        .put(
            Item::new(Key::new(STAGES_PARTITION, &id), attrs),
            Condition::Absent,
        )
        .await?;
    let prepared = Prepared::Staged {
        id: id.clone(),
        chunks: encoded.len(),
    };
    if let Err(e) = chunks::write(table, &id, encoded).await {
        discard(table, &prepared).await;
        return Err(e.into());
    }
    Ok(prepared)
}

/// Commits a prepared change at `seq`, only if nobody has.
pub(crate) async fn append(
    table: &Arc<dyn Table>,
    seq: u64,
    prepared: &Prepared,
    entities: usize,
    now_millis: i64,
) -> Result<Append, Error> {
    let mut attrs = Map::new();
    attrs.insert("entities".into(), Value::from(entities));
    attrs.insert("at".into(), Value::from(now_millis));
    let record_key = Key::new(LOG_PARTITION, seq_key(seq));
    let result = match prepared {
        Prepared::Inline(data) => {
            attrs.insert("changes".into(), Value::String(data.clone()));
            table
                .put(Item::new(record_key, attrs), Condition::Absent)
                .await
        }
        Prepared::Staged { id, chunks } => {
            attrs.insert("stage".into(), Value::String(id.clone()));
            attrs.insert("chunks".into(), Value::from(*chunks));
            let mut stage = Map::new();
            stage.insert("committed".into(), Value::from(seq));
            stage.insert("startedAt".into(), Value::from(now_millis));
            table
                .transact(vec![
                    TransactOp::Put {
                        item: Item::new(record_key, attrs),
                        condition: Condition::Absent,
                    },
                    TransactOp::Put {
                        item: Item::new(Key::new(STAGES_PARTITION, id), stage),
                        condition: Condition::Exists,
                    },
                ])
                .await
        }
    };
    match result {
        Ok(()) => Ok(Append::Committed),
        Err(StoreError::ConditionFailed { .. })
        | Err(StoreError::TransactionCancelled {
            failed: Some(0) | None,
        }) => Ok(Append::Lost),
        Err(StoreError::TransactionCancelled { failed: Some(_) }) => Err(Error::Internal(
            "the staged import was collected before it committed; retry the import".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Drops a stage that will not be committed (the import was refused after staging).
pub(crate) async fn discard(table: &Arc<dyn Table>, prepared: &Prepared) {
    if let Prepared::Staged { id, .. } = prepared {
        let removed = async {
            chunks::delete(table, id).await?;
            table
                .delete(&Key::new(STAGES_PARTITION, id), Condition::Always)
                .await
        }
        .await;
        if let Err(e) = removed {
            tracing::warn!(stage = %id, error = %e, "an abandoned catalog stage was not removed; the next snapshot collects it");
        }
    }
}

/// Whether any of `keys` is among `touched`.
pub(crate) fn overlaps(touched: &HashSet<String>, changes: &ChangeSet) -> bool {
    changes.keys().any(|k| touched.contains(&k))
}
