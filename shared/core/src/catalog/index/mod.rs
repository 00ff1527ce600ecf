//! The catalog's read model: every entity in memory, pre-rendered as JSON with its relations,
//! with inverted indexes over its flattened fields. It answers Backstage's queries (filters,
//! facets, full text, ordering, keyset pages) without touching the store, which is what makes
//! paved's catalog reads fast. The [`CatalogRepository`](super::CatalogRepository) keeps it in
//! step with the table.
//!
//! This module holds the types and the lookups; [`write`] applies changes, [`slot`] turns an
//! entity into its terms, [`postings`] and [`full_text`] find entities, [`paging`] orders and
//! pages them and [`facets`] counts their values.

mod facets;
mod full_text;
mod paging;
mod postings;
mod slot;
#[cfg(test)]
mod tests;
mod write;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use bytes::Bytes;
use roaring::RoaringBitmap;
use serde::Serialize;

use super::entity::ValidEntity;
use super::kind::Kind;
use super::names::EntityRef;
use super::relations::RelationType;
use full_text::TextColumn;
use postings::Posting;
use slot::{KeyInterner, Slot};

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
    pub json: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}

#[derive(Default)]
pub struct CatalogIndex {
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    by_ref: HashMap<String, u32>,
    by_uid: HashMap<String, u32>,
    /// Relations other entities declare toward a ref key (the target need not exist yet).
    incoming: HashMap<String, Vec<(RelationType, u32)>>,
    values: HashMap<Arc<str>, HashMap<Box<str>, Posting>>,
    exists: HashMap<Arc<str>, RoaringBitmap>,
    all: RoaringBitmap,
    keys: KeyInterner,
    /// Full-text columns, built on first use after a write.
    text_columns: Mutex<HashMap<Arc<str>, Arc<TextColumn>>>,
}

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

    pub fn get_by_ref(&self, entity_ref: &EntityRef) -> Option<&EntityView> {
        self.get_by_key(&entity_ref.key())
    }

    /// Looks up by a lower-case ref key (`kind:namespace/name`).
    pub fn get_by_key(&self, key: &str) -> Option<&EntityView> {
        self.by_ref
            .get(key)
            .and_then(|&id| self.slot(id))
            .map(|s| &s.view)
    }

    /// The slot id of an entity, to test it against a filter's ids.
    pub fn id_of(&self, entity_ref: &EntityRef) -> Option<u32> {
        self.by_ref.get(&entity_ref.key()).copied()
    }

    pub fn get_by_uid(&self, uid: &str) -> Option<&EntityView> {
        self.by_uid
            .get(uid)
            .and_then(|&id| self.slot(id))
            .map(|s| &s.view)
    }

    pub fn view(&self, id: u32) -> Option<&EntityView> {
        self.slot(id).map(|s| &s.view)
    }

    /// All slot ids, for bulk readers.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.all.iter()
    }

    /// Every entity of one kind, for bulk readers (the DORA job's services, for instance).
    pub fn views_of_kind(&self, kind: Kind) -> impl Iterator<Item = &EntityView> + '_ {
        self.ids()
            .filter_map(|id| self.view(id))
            .filter(move |view| view.kind == kind)
    }
}
