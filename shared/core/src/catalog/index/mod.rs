//! The catalog's read model: every entity in memory with inverted indexes over its flattened
//! fields and sorted orders over the fields it is ordered by. It answers Backstage's queries
//! (filters, facets, full text, ordering, keyset pages) without touching the store, which is
//! what makes paved's catalog reads fast. The [`CatalogRepository`](super::CatalogRepository)
//! keeps it in step with the table.
//!
//! This module holds the types and the lookups; [`write`] applies changes, [`slot`] turns an
//! entity into its terms, [`postings`] holds the term dictionary and answers filters,
//! [`full_text`] scans values, [`orders`] keeps entities sorted by a field, [`paging`] cuts
//! pages, [`render`] writes an entity's JSON with its relations and [`facets`] counts values.
//!
//! What a write costs is proportional to what it changes, never to the catalog: terms are
//! posted and unposted one by one, sorted orders and full-text columns are updated in place,
//! and an entity whose relations changed is only marked, to be rendered again on its next
//! read.

mod facets;
mod full_text;
mod orders;
mod paged;
mod paging;
mod postings;
mod render;
mod slot;
#[cfg(test)]
mod tests;
mod write;

use std::collections::{BTreeMap, HashMap};
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use roaring::RoaringBitmap;
use serde::Serialize;

use super::entity::ValidEntity;
use super::kind::Kind;
use super::names::EntityRef;
use super::relations::RelationType;
use orders::Orders;
use paged::Paged;
use postings::Terms;
use slot::Slot;

/// An entity as the store holds it: the validated body plus what the catalog assigned.
#[derive(Debug, Clone)]
pub struct StoredEntity {
    pub valid: ValidEntity,
    pub uid: String,
    pub etag: String,
    pub generation: u64,
}

/// What a reader gets for one entity: the rendered JSON and the facts authorization needs.
#[derive(Debug, Clone)]
pub struct EntityView {
    pub entity_ref: EntityRef,
    pub kind: Kind,
    pub uid: String,
    pub etag: String,
    pub generation: u64,
    pub content_hash: String,
    pub owner: Option<EntityRef>,
    /// The entity with its relations, as JSON.
    pub json: EntityJson,
}

/// An entity's JSON with its relations, as bytes (`&view.json` is a `&[u8]`).
///
/// The read model keeps each entity's JSON once, without relations, and renders this on
/// demand: every way to a view ([`CatalogIndex::view`], [`CatalogIndex::get_by_key`], ...)
/// renders it first, so a view never shows it empty, and the next write forgets it again.
/// A write that adds the 1,000th component of a group only marks the group; nothing renders
/// its 1,000 relations until somebody reads it. The HTTP reads use [`CatalogIndex::json`],
/// which renders without keeping.
#[derive(Debug, Clone, Default)]
pub struct EntityJson(OnceLock<Bytes>);

impl EntityJson {
    /// The JSON as shared bytes (a reference count, no copy), for a response body.
    pub fn bytes(&self) -> Bytes {
        self.0.get().cloned().unwrap_or_default()
    }
}

impl Deref for EntityJson {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.0.get().map_or(&[], |b| b.as_ref())
    }
}

impl AsRef<[u8]> for EntityJson {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}

#[derive(Default)]
pub struct CatalogIndex {
    slots: Paged<Option<Slot>>,
    free: Vec<u32>,
    /// Ref key (`kind:namespace/name`, lower-case) to slot; the keys are shared with `refs`,
    /// the slots and the sorted orders.
    by_ref: HashMap<Arc<str>, u32>,
    /// The same keys in order: the default order of every query and its final tie-breaker.
    refs: BTreeMap<Arc<str>, u32>,
    /// Uids too long to be a term of `metadata.uid` (by which the others are found).
    long_uids: HashMap<Box<str>, u32>,
    /// Relations other entities declare toward a ref key (the target need not exist yet). The
    /// keys are shared with the terms of those relations.
    incoming: HashMap<Arc<str>, Vec<(RelationType, u32)>>,
    terms: Terms,
    /// The key id of `relations.<type>` for each relation type, once interned.
    relation_keys: [Option<u32>; RELATION_TYPES],
    all: RoaringBitmap,
    /// Entities sorted by the fields queries order by, built on first use.
    orders: RwLock<Orders>,
    /// Slots whose rendered JSON a view kept, forgotten at the next write.
    kept: Mutex<Vec<u32>>,
}

/// How many [`RelationType`]s there are.
const RELATION_TYPES: usize = 14;

impl std::fmt::Debug for CatalogIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogIndex").finish_non_exhaustive()
    }
}

impl CatalogIndex {
    pub fn len(&self) -> usize {
        self.by_ref.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ref.is_empty()
    }

    fn slot(&self, id: u32) -> Option<&Slot> {
        self.slots.get(id as usize).and_then(Option::as_ref)
    }

    /// The view of a slot, its JSON rendered (and kept until the next write) if need be.
    fn view_of<'a>(&'a self, id: u32, slot: &'a Slot) -> &'a EntityView {
        if slot.view.json.0.get().is_none() {
            let _ = slot.view.json.0.set(self.render(slot));
            self.kept.lock().push(id);
        }
        &slot.view
    }

    pub fn get_by_ref(&self, entity_ref: &EntityRef) -> Option<&EntityView> {
        self.get_by_key(&entity_ref.key())
    }

    /// Looks up by a lower-case ref key (`kind:namespace/name`).
    pub fn get_by_key(&self, key: &str) -> Option<&EntityView> {
        self.id_by_key(key).and_then(|id| self.view(id))
    }

    /// The slot id of a lower-case ref key.
    pub fn id_by_key(&self, key: &str) -> Option<u32> {
        self.by_ref.get(key).copied()
    }

    /// The slot id of an entity, to test it against a filter's ids.
    pub fn id_of(&self, entity_ref: &EntityRef) -> Option<u32> {
        self.id_by_key(&entity_ref.key())
    }

    pub fn get_by_uid(&self, uid: &str) -> Option<&EntityView> {
        self.id_by_uid(uid).and_then(|id| self.view(id))
    }

    /// The slot id of a `metadata.uid`, found through its term.
    pub fn id_by_uid(&self, uid: &str) -> Option<u32> {
        if let Some(&id) = self.long_uids.get(uid) {
            return Some(id);
        }
        let key = self.terms.key_id("metadata.uid")?;
        let term = self.terms.term(key, &uid.to_lowercase())?;
        let mut holders = Vec::new();
        self.terms.entries[term as usize]
            .ids
            .extend_vec(&mut holders);
        holders
            .into_iter()
            .find(|&id| self.slot(id).is_some_and(|s| s.view.uid == uid))
    }

    pub fn view(&self, id: u32) -> Option<&EntityView> {
        self.slot(id).map(|s| self.view_of(id, s))
    }

    /// An entity's JSON with its relations, for a response: the kept bytes when there are
    /// some, else rendered for this read (and kept when it has many relations, which are
    /// costly to render). [`CatalogIndex::view`] gives the same bytes.
    pub fn json(&self, id: u32) -> Option<Bytes> {
        let slot = self.slot(id)?;
        if let Some(json) = slot.view.json.0.get() {
            return Some(json.clone());
        }
        let json = self.render(slot);
        if self.relation_count(slot) > render::KEEP_RENDERED_ABOVE {
            let _ = slot.view.json.0.set(json.clone());
        }
        Some(json)
    }

    /// Appends an entity's JSON with its relations to `out`, as [`CatalogIndex::json`] gives
    /// it; whether the entity exists.
    pub fn write_json(&self, id: u32, out: &mut Vec<u8>) -> bool {
        let Some(slot) = self.slot(id) else {
            return false;
        };
        match slot.view.json.0.get() {
            Some(json) => out.extend_from_slice(json),
            None if self.relation_count(slot) > render::KEEP_RENDERED_ABOVE => {
                if let Some(json) = self.json(id) {
                    out.extend_from_slice(&json);
                }
            }
            None => self.write_slot_json(slot, out),
        }
        true
    }

    /// An entity's etag, for its `ETag` header.
    pub fn etag(&self, id: u32) -> Option<&str> {
        self.slot(id).map(|s| s.view.etag.as_str())
    }

    /// All slot ids, for bulk readers.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.all.iter()
    }

    /// Every entity of one kind, for bulk readers (the DORA job's services, for instance).
    pub fn views_of_kind(&self, kind: Kind) -> impl Iterator<Item = &EntityView> + '_ {
        self.ids()
            .filter_map(|id| self.slot(id).map(|s| (id, s)))
            .filter(move |(_, slot)| slot.view.kind == kind)
            .map(|(id, slot)| self.view_of(id, slot))
    }
}
