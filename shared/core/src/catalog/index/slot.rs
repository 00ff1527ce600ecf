//! An entity's slot in the read model: its view, its JSON without relations, and the terms its
//! JSON flattens into.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::postings::Terms;
use super::{EntityJson, EntityView, StoredEntity};
use crate::catalog::relations::{Relation, RelationType};

/// Values longer than this are indexed as "present" only, as Backstage's search table does.
pub(super) const MAX_INDEXED_VALUE: usize = 200;

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

pub(super) struct Slot {
    pub(super) view: EntityView,
    pub(super) key: Arc<str>,
    /// The relations this entity's spec declares: type and target ref as written (shared
    /// with the relation's term when that is the same string).
    pub(super) emitted: Box<[(RelationType, Arc<str>)]>,
    /// The entity as JSON, without relations; relations are spliced in when rendering.
    pub(super) base_json: Box<[u8]>,
    /// The terms of the JSON, in document order.
    pub(super) terms: Box<[u32]>,
    /// The `relations.<type>` terms: its own relations and the inverse of those pointing at it.
    pub(super) relation_terms: Vec<u32>,
}

impl Slot {
    /// The value an entity sorts by for a key: the first value of the field, or for a
    /// relation key the least target (as Backstage's relations are listed, sorted). `None`
    /// when it has none (it then sorts last).
    pub(super) fn sort_value<'a>(&self, terms: &'a Terms, key: u32) -> Option<&'a Arc<str>> {
        if let Some(&term) = self.terms.iter().find(|&&t| terms.key_of(t) == key) {
            return terms.value(term);
        }
        self.relation_terms
            .iter()
            .filter(|&&t| terms.key_of(t) == key)
            .filter_map(|&t| terms.value(t))
            .min()
    }
}

/// Builds the slot of an entity, posting its terms as `id`; its relations are left for the
/// caller to post.
pub(super) fn new_slot(
    stored: StoredEntity,
    key: Arc<str>,
    id: u32,
    terms: &mut Terms,
) -> (Slot, Vec<Relation>) {
    let StoredEntity {
        mut valid,
        uid,
        etag,
        generation,
    } = stored;
    let body = std::mem::take(&mut valid.body);
    let json = Value::Object(StoredEntity::served(body, &uid, &etag, generation));
    let mut posted = Vec::new();
    flatten(&mut String::new(), &json, &mut |field, value| {
        let (value, original) = match value {
            // The etag is unique per write and nobody filters on it: not worth indexing.
            _ if field == "metadata.etag" => return,
            Value::String(s) if s.len() <= MAX_INDEXED_VALUE => {
                let lower = s.to_lowercase();
                let original = (lower != *s).then_some(s.as_str());
                let key = terms.intern_key(field);
                posted.push(terms.post(id, key, Some(&lower), original));
                return;
            }
            Value::Number(n) => (Some(n.to_string()), None),
            Value::Bool(b) => (Some(b.to_string()), None),
            _ => (None, None),
        };
        let key = terms.intern_key(field);
        posted.push(terms.post(id, key, value.as_deref(), original));
    });
    let base_json = serde_json::to_vec(&json)
        .unwrap_or_else(|_| b"{}".to_vec())
        .into_boxed_slice();
    drop(json);
    let slot = Slot {
        view: EntityView {
            entity_ref: valid.entity_ref,
            kind: valid.kind,
            uid,
            etag,
            generation,
            content_hash: valid.content_hash,
            owner: valid.owner,
            json: EntityJson::default(),
        },
        key,
        emitted: Box::new([]),
        base_json,
        terms: posted.into_boxed_slice(),
        relation_terms: Vec::new(),
    };
    (slot, valid.relations)
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
        self.slots.iter().flatten().map(|s| &*s.base_json)
    }
}
