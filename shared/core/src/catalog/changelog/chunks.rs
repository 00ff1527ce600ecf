//! Chunks: a list of changes as deflated, base64-encoded items small enough for any table
//! item (DynamoDB's limit is 400 KB), written and read many at a time.
//!
//! A chunk is newline-separated JSON lines. A line is either an entity in its
//! [`StoredEntity::log_json`] form (an upsert) or a JSON string holding a ref (a removal).

use std::io::{Read, Write};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use futures::{StreamExt, TryStreamExt, stream};
use serde_json::{Map, Value};

use super::ChangeSet;
use crate::ErrorCode;
use crate::catalog::entity::validate_stored_entity;
use crate::catalog::index::StoredEntity;
use crate::catalog::names::{EntityRef, RefDefaults};
use crate::error::Error;
use crate::ports::{Condition, Item, Key, SortKeyRange, StoreError, Table};

/// Uncompressed bytes gathered before a chunk is deflated. Catalog JSON deflates to about a
/// fifth, so a chunk's item lands well under [`MAX_CHUNK_ITEM`].
const RAW_CHUNK: usize = 768 * 1024;
/// The largest encoded chunk stored in one item; a larger one is split in two.
pub(crate) const MAX_CHUNK_ITEM: usize = 300 * 1024;
/// Chunk reads and writes in flight at once.
const PARALLEL: usize = 16;
/// The most a stored chunk may inflate to: a corrupt or hostile item cannot exhaust memory.
const MAX_INFLATED: u64 = 64 * 1024 * 1024;

/// The partition that holds the chunks of one stage or snapshot.
pub(crate) fn partition(id: &str) -> String {
    format!("CATALOG#CHUNKS#{id}")
}

/// Encodes lines into chunks. A single line too large for an item is refused.
pub(crate) fn encode<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Result<Vec<String>, Error> {
    let mut chunks = Vec::new();
    let mut batch: Vec<&[u8]> = Vec::new();
    let mut size = 0;
    for line in lines {
        size += line.len() + 1;
        batch.push(line);
        if size >= RAW_CHUNK {
            flush(&batch, &mut chunks)?;
            batch.clear();
            size = 0;
        }
    }
    if !batch.is_empty() {
        flush(&batch, &mut chunks)?;
    }
    Ok(chunks)
}

fn flush(lines: &[&[u8]], out: &mut Vec<String>) -> Result<(), Error> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::fast());
    for line in lines {
        // Writing to a Vec cannot fail.
        let _ = encoder.write_all(line);
        let _ = encoder.write_all(b"\n");
    }
    let deflated = encoder.finish().unwrap_or_default();
    let encoded = STANDARD.encode(deflated);
    if encoded.len() <= MAX_CHUNK_ITEM {
        out.push(encoded);
        return Ok(());
    }
    if lines.len() == 1 {
        return Err(Error::invalid(
            ErrorCode::EntityTooLarge,
            format!(
                "an entity of {} bytes does not fit in one stored item even compressed; keep entities under a few hundred kilobytes",
                lines[0].len()
            ),
        ));
    }
    let (left, right) = lines.split_at(lines.len() / 2);
    flush(left, out)?;
    flush(right, out)
}

/// Decodes one chunk into the changes it holds, in order. An entity that no longer passes
/// validation is logged and left out, as a start-up load leaves it out.
pub(crate) fn decode(encoded: &str, into: &mut ChangeSet) -> Result<(), Error> {
    let corrupt =
        |why: String| Error::Internal(format!("a stored catalog chunk is corrupt: {why}"));
    let deflated = STANDARD
        .decode(encoded)
        .map_err(|e| corrupt(e.to_string()))?;
    let mut text = Vec::new();
    DeflateDecoder::new(deflated.as_slice())
        .take(MAX_INFLATED)
        .read_to_end(&mut text)
        .map_err(|e| corrupt(e.to_string()))?;
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<Value>(line).map_err(|e| corrupt(e.to_string()))? {
            Value::String(reference) => {
                let entity_ref = EntityRef::parse(
                    &reference,
                    RefDefaults {
                        kind: None,
                        namespace: "default",
                    },
                )
                .map_err(|e| corrupt(format!("removal of {reference}: {e}")))?;
                into.removals.push(entity_ref);
            }
            Value::Object(body) => match stored_entity(body) {
                Ok(stored) => into.upserts.push(stored),
                Err(e) => {
                    tracing::error!(error = %e, "a stored entity no longer passes validation; it is not served")
                }
            },
            other => return Err(corrupt(format!("a line is {other}"))),
        }
    }
    Ok(())
}

/// An entity in its log form: server metadata read back, the rest validated again.
fn stored_entity(mut body: Map<String, Value>) -> Result<StoredEntity, Error> {
    let meta = body.get("metadata").and_then(Value::as_object);
    let text = |name: &str| {
        meta.and_then(|m| m.get(name))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let uid = text("uid");
    let etag = text("etag");
    let generation = meta
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_u64)
        .unwrap_or(1);
    // Relations are derived, never stored; drop any for safety.
    body.remove("relations");
    let valid = validate_stored_entity(Value::Object(body))?;
    Ok(StoredEntity {
        valid,
        uid,
        etag,
        generation,
    })
}

/// Writes chunks `0..n` of `id`, many at a time. Each chunk is written only if absent, so a
/// stage id can never be written twice.
pub(crate) async fn write(
    table: &Arc<dyn Table>,
    id: &str,
    chunks: Vec<String>,
) -> Result<(), StoreError> {
    let pk = partition(id);
    stream::iter(chunks.into_iter().enumerate().map(|(i, data)| {
        let table = Arc::clone(table);
        let key = Key::new(pk.clone(), format!("{i:06}"));
        async move {
            let mut attrs = Map::new();
            attrs.insert("data".into(), Value::String(data));
            table.put(Item::new(key, attrs), Condition::Absent).await
        }
    }))
    .buffer_unordered(PARALLEL)
    .try_collect::<()>()
    .await
}

/// Why chunks could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// A chunk is gone: a newer snapshot replaced the one being read. Start again.
    Missing,
    Failed(Error),
}

impl From<StoreError> for ReadError {
    fn from(e: StoreError) -> Self {
        Self::Failed(e.into())
    }
}

impl From<Error> for ReadError {
    fn from(e: Error) -> Self {
        Self::Failed(e)
    }
}

/// Reads chunks `0..count` of `id` many at a time and decodes them in order.
pub(crate) async fn read(
    table: &Arc<dyn Table>,
    id: &str,
    count: usize,
) -> Result<ChangeSet, ReadError> {
    let pk = partition(id);
    let items: Vec<Option<Item>> = stream::iter((0..count).map(|i| {
        let table = Arc::clone(table);
        let key = Key::new(pk.clone(), format!("{i:06}"));
        async move { table.get(&key).await }
    }))
    .buffered(PARALLEL)
    .try_collect()
    .await?;
    let mut changes = ChangeSet::default();
    for item in items {
        let item = item.ok_or(ReadError::Missing)?;
        let data = item
            .str_attr("data")
            .ok_or_else(|| Error::Internal("a stored catalog chunk has no data".into()))?;
        decode(data, &mut changes)?;
    }
    Ok(changes)
}

/// Deletes every chunk of `id` (however many were written before a crash).
pub(crate) async fn delete(table: &Arc<dyn Table>, id: &str) -> Result<(), StoreError> {
    let pk = partition(id);
    loop {
        let page = table.query(&pk, &SortKeyRange::All, None, 100).await?;
        if page.items.is_empty() {
            return Ok(());
        }
        let more = page.last_sk.is_some();
        stream::iter(page.items.into_iter().map(|item| {
            let table = Arc::clone(table);
            async move { table.delete(&item.key, Condition::Always).await }
        }))
        .buffer_unordered(PARALLEL)
        .try_collect::<()>()
        .await?;
        if !more {
            return Ok(());
        }
    }
}
