//! Snapshots: the whole catalog at one `seq` as a few chunks, so a cold start reads them in
//! parallel and then only the log's tail.
//!
//! The pointer item `CATALOG#SNAPSHOT / CURRENT` names the current snapshot and the one
//! before it. Writing a new one keeps both readable: a reader that read the pointer just
//! before the switch still finds its chunks and the log after its `seq`. What is older than
//! the previous snapshot (its chunks, the log records up to it, and the stages those
//! records named) is collected, and a reader that still needs them reloads.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{LOG_PARTITION, STAGES_PARTITION, chunks, seq_key};
use crate::error::Error;
use crate::ports::{Condition, Item, Key, SortKeyRange, StoreError, Table};

const POINTER_PARTITION: &str = "CATALOG#SNAPSHOT";
const POINTER_SORT: &str = "CURRENT";
/// An uncommitted stage older than this was abandoned by a crashed import.
const ABANDONED_AFTER_MILLIS: i64 = 60 * 60 * 1000;

fn pointer_key() -> Key {
    Key::new(POINTER_PARTITION, POINTER_SORT)
}

/// One snapshot: the catalog as of `seq`, in `chunks` chunks under `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotRef {
    pub(crate) seq: u64,
    pub(crate) id: String,
    pub(crate) chunks: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pointer {
    pub(crate) current: SnapshotRef,
    pub(crate) previous: Option<SnapshotRef>,
}

fn snapshot_ref(map: &Map<String, Value>, prefix: &str) -> Option<SnapshotRef> {
    Some(SnapshotRef {
        seq: map.get(&format!("{prefix}Seq"))?.as_u64()?,
        id: map.get(&format!("{prefix}Id"))?.as_str()?.to_owned(),
        chunks: usize::try_from(map.get(&format!("{prefix}Chunks"))?.as_u64()?).ok()?,
    })
}

fn put_ref(map: &mut Map<String, Value>, prefix: &str, r: &SnapshotRef) {
    map.insert(format!("{prefix}Seq"), Value::from(r.seq));
    map.insert(format!("{prefix}Id"), Value::String(r.id.clone()));
    map.insert(format!("{prefix}Chunks"), Value::from(r.chunks));
}

/// The pointer as stored now.
pub(crate) async fn current(table: &Arc<dyn Table>) -> Result<Option<Pointer>, Error> {
    let Some(item) = table.get(&pointer_key()).await? else {
        return Ok(None);
    };
    let current = snapshot_ref(&item.attrs, "current").ok_or_else(|| {
        Error::Internal("the catalog snapshot pointer is corrupt; delete it to rebuild".into())
    })?;
    Ok(Some(Pointer {
        current,
        previous: snapshot_ref(&item.attrs, "previous"),
    }))
}

/// Writes the encoded catalog as of `seq` and points readers at it, unless a snapshot as new
/// is there already. Then collects what is two snapshots old.
pub(crate) async fn publish(
    table: &Arc<dyn Table>,
    seq: u64,
    encoded: Vec<String>,
    now_millis: i64,
) -> Result<bool, Error> {
    let before = current(table).await?;
    if before.as_ref().is_some_and(|p| p.current.seq >= seq) {
        return Ok(false);
    }
    let id = format!("snapshot-{seq}-{}", uuid::Uuid::new_v4().simple());
    let fresh = SnapshotRef {
        seq,
        id: id.clone(),
        chunks: encoded.len(),
    };
    chunks::write(table, &id, encoded).await?;
    let mut attrs = Map::new();
    put_ref(&mut attrs, "current", &fresh);
    if let Some(p) = &before {
        put_ref(&mut attrs, "previous", &p.current);
    }
    attrs.insert("writtenAt".into(), Value::from(now_millis));
    let condition = match &before {
        None => Condition::Absent,
        Some(p) => Condition::AttrEquals {
            name: "currentId".into(),
            value: Value::String(p.current.id.clone()),
        },
    };
    match table.put(Item::new(pointer_key(), attrs), condition).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed { .. }) => {
            // Another process published first; ours is not needed.
            chunks::delete(table, &id).await?;
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    }
    if let Some(retired) = before.and_then(|p| p.previous) {
        collect(table, &retired, now_millis).await?;
    }
    Ok(true)
}

/// Removes a retired snapshot, the log records up to it, the stages they named, and stages
/// abandoned by crashed imports.
async fn collect(
    table: &Arc<dyn Table>,
    retired: &SnapshotRef,
    now_millis: i64,
) -> Result<(), Error> {
    chunks::delete(table, &retired.id).await?;
    let range = SortKeyRange::Between(seq_key(0), seq_key(retired.seq));
    loop {
        let page = table.query(LOG_PARTITION, &range, None, 100).await?;
        if page.items.is_empty() {
            break;
        }
        for item in &page.items {
            table.delete(&item.key, Condition::Always).await?;
        }
        if page.last_sk.is_none() {
            break;
        }
    }
    let mut after: Option<String> = None;
    loop {
        let page = table
            .query(STAGES_PARTITION, &SortKeyRange::All, after.as_deref(), 100)
            .await?;
        for stage in &page.items {
            let committed = stage.attrs.get("committed").and_then(Value::as_u64);
            let started = stage
                .attrs
                .get("startedAt")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let done = match committed {
                Some(seq) => seq <= retired.seq,
                None => now_millis - started > ABANDONED_AFTER_MILLIS,
            };
            if done {
                chunks::delete(table, &stage.key.sk).await?;
                table.delete(&stage.key, Condition::Always).await?;
            }
        }
        match page.last_sk {
            Some(sk) => after = Some(sk),
            None => return Ok(()),
        }
    }
}
