//! An entity's slot in the read model: its view, the terms its JSON flattens into, and the
//! interner that shares their keys.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::{EntityView, StoredEntity};
use crate::catalog::relations::Relation;

/// Values longer than this are indexed as "present" only, as Backstage's search table does.
const MAX_INDEXED_VALUE: usize = 200;

impl StoredEntity {
    /// Adds `metadata.uid/etag/generation` to a body: the entity as served, minus relations.
    fn served(
        mut body: Map<String, Value>,
        uid: &str,
        etag: &str,
        generation: u64,
    ) -> Map<String, Value> {
        if let Some(Value::Object(meta)) = body.get_mut("metadata") {
            meta.insert("uid".into(), Value::String(uid.to_owned()));
            meta.insert("etag".into(), Value::String(etag.to_owned()));
            meta.insert("generation".into(), Value::from(generation));
        }
        body
    }
}

/// One flattened field of an entity: a lower-case dotted key and its lower-case value
/// (`None` when present without an indexable value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Term {
    /// Interned: the same few dozen keys repeat across every entity.
    pub(super) key: Arc<str>,
    pub(super) value: Option<Box<str>>,
    /// The value as written, kept only when it differs from `value` (for facets).
    pub(super) original: Option<Box<str>>,
}

pub(super) struct Slot {
    pub(super) view: EntityView,
    pub(super) key: String,
    pub(super) emitted: Vec<Relation>,
    /// The entity as JSON, without relations; relations are spliced in when rendering.
    pub(super) base_json: Vec<u8>,
    pub(super) base_terms: Vec<Term>,
    /// Terms currently posted for this slot (base terms plus relation terms).
    pub(super) posted: Vec<Term>,
}

/// Shares one allocation per distinct field key.
#[derive(Default)]
pub(super) struct KeyInterner(HashSet<Arc<str>>);

impl KeyInterner {
    pub(super) fn intern(&mut self, key: &str) -> Arc<str> {
        if let Some(k) = self.0.get(key) {
            return Arc::clone(k);
        }
        let k: Arc<str> = Arc::from(key);
        self.0.insert(Arc::clone(&k));
        k
    }
}

pub(super) fn new_slot(stored: StoredEntity, key: String, keys: &mut KeyInterner) -> Slot {
    let StoredEntity {
        mut valid,
        uid,
        etag,
        generation,
    } = stored;
    let body = std::mem::take(&mut valid.body);
    let json = Value::Object(StoredEntity::served(body, &uid, &etag, generation));
    let mut base_terms = Vec::new();
    flatten(&mut String::new(), &json, &mut |key, value| {
        let (value, original) = match value {
            // The etag is unique per write and nobody filters on it: not worth indexing.
            _ if key == "metadata.etag" => return,
            Value::String(s) if s.len() <= MAX_INDEXED_VALUE => {
                let lower = s.to_lowercase();
                let original = (lower != *s).then(|| s.as_str().into());
                (Some(lower.into_boxed_str()), original)
            }
            Value::Number(n) => (Some(n.to_string().into_boxed_str()), None),
            Value::Bool(b) => (Some(b.to_string().into_boxed_str()), None),
            _ => (None, None),
        };
        base_terms.push(Term {
            key: keys.intern(key),
            value,
            original,
        });
    });
    let base_json = serde_json::to_vec(&json).unwrap_or_else(|_| b"{}".to_vec());
    drop(json);
    Slot {
        view: EntityView {
            entity_ref: valid.entity_ref,
            kind: valid.kind,
            uid,
            etag,
            generation,
            content_hash: valid.content_hash,
            owner: valid.owner,
            json: Bytes::new(),
        },
        key,
        emitted: valid.relations,
        base_json,
        base_terms,
        posted: Vec::new(),
    }
}

/// Visits every leaf of a JSON value with its lower-case dotted key; array items share their
/// array's key, as in Backstage's search table.
fn flatten(prefix: &mut String, value: &Value, visit: &mut impl FnMut(&str, &Value)) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let len = prefix.len();
                if !prefix.is_empty() {
                    prefix.push('.');
                }
                prefix.push_str(&k.to_lowercase());
                flatten(prefix, v, visit);
                prefix.truncate(len);
            }
        }
        Value::Array(items) => {
            for item in items {
                flatten(prefix, item, visit);
            }
        }
        leaf => visit(prefix, leaf),
    }
}

impl StoredEntity {
    /// The entity as the change log and snapshots carry it: the served JSON without
    /// relations (the body plus `metadata.uid/etag/generation`), the same bytes the read
    /// model keeps for each entity.
    pub(crate) fn log_json(&self) -> Vec<u8> {
        let json = Value::Object(StoredEntity::served(
            self.valid.body.clone(),
            &self.uid,
            &self.etag,
            self.generation,
        ));
        serde_json::to_vec(&json).unwrap_or_else(|_| b"{}".to_vec())
    }
}

impl super::CatalogIndex {
    /// Every entity in its [`StoredEntity::log_json`] form, for a snapshot.
    pub(crate) fn log_lines(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.slots.iter().flatten().map(|s| s.base_json.as_slice())
    }
}
