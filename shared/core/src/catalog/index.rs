//! The catalog's read model: every entity in memory, pre-rendered as JSON with its relations,
//! with inverted indexes over its flattened fields. It answers Backstage's queries (filters,
//! facets, full text, ordering, keyset pages) without touching the store, which is what makes
//! paved's catalog reads fast. The [`CatalogRepository`](super::CatalogRepository) keeps it in
//! step with the table.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;

use bytes::Bytes;
use roaring::RoaringBitmap;
use serde::Serialize;
use serde_json::{Map, Value};

use super::entity::ValidEntity;
use super::kind::Kind;
use super::names::EntityRef;
use super::query::{
    Anchor, EntityQuery, FilterSet, FullTextFilter, OrderField, PageRequest, QueryPage,
    encode_cursor,
};
use super::relations::{Relation, RelationType};

/// Values longer than this are indexed as "present" only, as Backstage's search table does.
const MAX_INDEXED_VALUE: usize = 200;

/// An entity as the store holds it: the validated body plus what the catalog assigned.
#[derive(Debug, Clone)]
pub struct StoredEntity {
    pub valid: ValidEntity,
    pub uid: String,
    pub etag: String,
    pub generation: u64,
}

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

/// One flattened field of an entity: a lower-case dotted key and its lower-case value
/// (`None` when present without an indexable value).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    /// Interned: the same few dozen keys repeat across every entity.
    key: Arc<str>,
    value: Option<Box<str>>,
    /// The value as written, kept only when it differs from `value` (for facets).
    original: Option<Box<str>>,
}

struct Slot {
    view: EntityView,
    key: String,
    emitted: Vec<Relation>,
    /// The entity as JSON, without relations; relations are spliced in when rendering.
    base_json: Vec<u8>,
    base_terms: Vec<Term>,
    /// Terms currently posted for this slot (base terms plus relation terms).
    posted: Vec<Term>,
}

#[derive(Default)]
struct Posting {
    original: Box<str>,
    ids: RoaringBitmap,
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

/// The distinct values of one field laid end to end, each followed by a NUL, so that a
/// full-text term is found in every value with one SIMD substring scan.
struct TextColumn {
    text: String,
    /// Where each value starts in `text`.
    starts: Vec<usize>,
}

impl TextColumn {
    fn build(postings: &HashMap<Box<str>, Posting>) -> Self {
        let mut text = String::with_capacity(postings.keys().map(|v| v.len() + 1).sum());
        let mut starts = Vec::with_capacity(postings.len());
        for value in postings.keys() {
            starts.push(text.len());
            text.push_str(value);
            text.push('\0');
        }
        Self { text, starts }
    }

    /// Every distinct value containing the finder's needle.
    fn matches<'a>(&'a self, finder: &memchr::memmem::Finder<'_>) -> Vec<&'a str> {
        let bytes = self.text.as_bytes();
        let mut found = Vec::new();
        let mut pos = 0;
        while let Some(offset) = finder.find(&bytes[pos..]) {
            let at = pos + offset;
            let idx = self.starts.partition_point(|&s| s <= at).saturating_sub(1);
            let start = self.starts[idx];
            let end = self.starts.get(idx + 1).map_or(bytes.len(), |&next| next) - 1;
            if at + finder.needle().len() <= end {
                found.push(&self.text[start..end]);
            }
            // Each value counts once: continue after it.
            pos = end + 1;
            if pos >= bytes.len() {
                break;
            }
        }
        found
    }
}

/// Shares one allocation per distinct field key.
#[derive(Default)]
struct KeyInterner(HashSet<Arc<str>>);

impl KeyInterner {
    fn intern(&mut self, key: &str) -> Arc<str> {
        if let Some(k) = self.0.get(key) {
            return Arc::clone(k);
        }
        let k: Arc<str> = Arc::from(key);
        self.0.insert(Arc::clone(&k));
        k
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

    /// Adds or replaces entities and removes others, then re-derives relations, indexes and
    /// rendered JSON once for every entity the change touches.
    pub fn apply(&mut self, upserts: Vec<StoredEntity>, removals: &[EntityRef]) {
        self.text_columns.get_mut().clear();
        let mut touched: HashSet<String> = HashSet::new();
        for entity_ref in removals {
            let key = entity_ref.key();
            let Some(id) = self.by_ref.remove(&key) else {
                continue;
            };
            if let Some(slot) = self.slots[id as usize].take() {
                self.unlink(id, &slot.emitted, &mut touched);
                self.unpost(id, &slot.posted);
                self.by_uid.remove(&slot.view.uid);
                self.all.remove(id);
                self.free.push(id);
            }
        }
        for stored in upserts {
            let key = stored.valid.entity_ref.key();
            let id = match self.by_ref.get(&key) {
                Some(&id) => {
                    if let Some(old) = self.slots[id as usize].take() {
                        self.unlink(id, &old.emitted, &mut touched);
                        self.unpost(id, &old.posted);
                        self.by_uid.remove(&old.view.uid);
                    }
                    id
                }
                None => {
                    let id = self.free.pop().unwrap_or(self.slots.len() as u32);
                    if id as usize == self.slots.len() {
                        self.slots.push(None);
                    }
                    self.by_ref.insert(key.clone(), id);
                    self.all.insert(id);
                    id
                }
            };
            let slot = new_slot(stored, key.clone(), &mut self.keys);
            for rel in &slot.emitted {
                let target = rel.target.key();
                self.incoming
                    .entry(target.clone())
                    .or_default()
                    .push((rel.rel_type, id));
                touched.insert(target);
            }
            self.by_uid.insert(slot.view.uid.clone(), id);
            self.slots[id as usize] = Some(slot);
            touched.insert(key);
        }
        for key in touched {
            if let Some(&id) = self.by_ref.get(&key) {
                self.rederive(id);
            }
        }
    }

    /// Forgets the relations `id` declared, noting their targets as touched.
    fn unlink(&mut self, id: u32, emitted: &[Relation], touched: &mut HashSet<String>) {
        for rel in emitted {
            let target = rel.target.key();
            if let Some(list) = self.incoming.get_mut(&target) {
                list.retain(|&(_, src)| src != id);
                if list.is_empty() {
                    self.incoming.remove(&target);
                }
            }
            touched.insert(target);
        }
    }

    /// Recomputes an entity's relations (its own plus the inverse of those pointing at it),
    /// re-posts its terms and re-renders its JSON.
    fn rederive(&mut self, id: u32) {
        let Some(slot) = self.slots[id as usize].as_ref() else {
            return;
        };
        let mut relations: BTreeSet<(RelationType, String, String)> = BTreeSet::new();
        for rel in &slot.emitted {
            relations.insert((rel.rel_type, rel.target.key(), rel.target.to_string()));
        }
        if let Some(list) = self.incoming.get(&slot.key) {
            for &(rel_type, src) in list {
                if let Some(source) = self.slot(src) {
                    let r = &source.view.entity_ref;
                    relations.insert((rel_type.inverse(), r.key(), r.to_string()));
                }
            }
        }
        let mut terms = slot.base_terms.clone();
        let mut json = Vec::with_capacity(slot.base_json.len() + 64 * relations.len() + 16);
        json.extend_from_slice(&slot.base_json[..slot.base_json.len().saturating_sub(1)]);
        json.extend_from_slice(b",\"relations\":[");
        for (i, (rel_type, key, display)) in relations.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            json.extend_from_slice(b"{\"type\":\"");
            json.extend_from_slice(rel_type.as_str().as_bytes());
            json.extend_from_slice(b"\",\"targetRef\":");
            json.extend_from_slice(&serde_json::to_vec(display).unwrap_or_default());
            json.push(b'}');
            let term_key = self
                .keys
                .intern(&format!("relations.{}", rel_type.as_str().to_lowercase()));
            terms.push(Term {
                key: term_key,
                value: Some(key.as_str().into()),
                original: (key != display).then(|| display.as_str().into()),
            });
        }
        json.extend_from_slice(b"]}");
        let old = std::mem::take(
            &mut self.slots[id as usize]
                .as_mut()
                .map(|s| std::mem::take(&mut s.posted))
                .unwrap_or_default(),
        );
        self.unpost(id, &old);
        self.post(id, &terms);
        if let Some(slot) = self.slots[id as usize].as_mut() {
            slot.view.json = Bytes::from(json);
            slot.posted = terms;
        }
    }

    fn post(&mut self, id: u32, terms: &[Term]) {
        for term in terms {
            self.exists
                .entry(Arc::clone(&term.key))
                .or_default()
                .insert(id);
            if let Some(value) = &term.value {
                let posting = self
                    .values
                    .entry(Arc::clone(&term.key))
                    .or_default()
                    .entry(value.clone())
                    .or_default();
                if posting.ids.is_empty() {
                    // Facets report a value as it was first written.
                    posting.original = term.original.clone().unwrap_or_else(|| value.clone());
                }
                posting.ids.insert(id);
            }
        }
    }

    fn unpost(&mut self, id: u32, terms: &[Term]) {
        for term in terms {
            if let Some(ids) = self.exists.get_mut(&term.key) {
                ids.remove(id);
                if ids.is_empty() {
                    self.exists.remove(&term.key);
                }
            }
            let Some(value) = &term.value else { continue };
            let Some(values) = self.values.get_mut(&term.key) else {
                continue;
            };
            if let Some(posting) = values.get_mut(value) {
                posting.ids.remove(id);
                if posting.ids.is_empty() {
                    values.remove(value);
                }
            }
            if values.is_empty() {
                self.values.remove(&term.key);
            }
        }
    }

    /// The entities matching a filter (all of them for an empty filter).
    pub fn filter_ids(&self, filter: &FilterSet) -> RoaringBitmap {
        if filter.is_empty() {
            return self.all.clone();
        }
        let mut result = RoaringBitmap::new();
        for clause in &filter.clauses {
            let mut acc: Option<RoaringBitmap> = None;
            for cond in &clause.conditions {
                let ids = match &cond.values {
                    None => self
                        .exists
                        .get(cond.key.as_str())
                        .cloned()
                        .unwrap_or_default(),
                    Some(values) => {
                        let mut ids = RoaringBitmap::new();
                        if let Some(postings) = self.values.get(cond.key.as_str()) {
                            for v in values {
                                if let Some(p) = postings.get(v.as_str()) {
                                    ids |= &p.ids;
                                }
                            }
                        }
                        ids
                    }
                };
                let next = match acc {
                    None => ids,
                    Some(a) => a & ids,
                };
                let empty = next.is_empty();
                acc = Some(next);
                if empty {
                    break;
                }
            }
            if let Some(acc) = acc {
                result |= acc;
            }
        }
        result
    }

    fn full_text_ids(&self, ft: &FullTextFilter) -> RoaringBitmap {
        let finder = memchr::memmem::Finder::new(ft.term.as_bytes());
        let mut ids: Vec<u32> = Vec::new();
        for field in &ft.fields {
            let Some((key, postings)) = self.values.get_key_value(field.as_str()) else {
                continue;
            };
            let column = Arc::clone(
                self.text_columns
                    .lock()
                    .entry(Arc::clone(key))
                    .or_insert_with(|| Arc::new(TextColumn::build(postings))),
            );
            for value in column.matches(&finder) {
                if let Some(posting) = postings.get(value) {
                    ids.extend(posting.ids.iter());
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        RoaringBitmap::from_sorted_iter(ids).unwrap_or_default()
    }

    /// The sort key of an entity for the given order: the first value of each order field.
    fn sort_values<'a>(&'a self, slot: &'a Slot, order: &[OrderField]) -> Vec<Option<&'a str>> {
        order
            .iter()
            .map(|o| {
                slot.posted
                    .iter()
                    .find(|t| *t.key == *o.field)
                    .and_then(|t| t.value.as_deref())
            })
            .collect()
    }

    /// Runs a query and returns one page, with cursors for the pages around it.
    pub fn query(&self, query: &EntityQuery, page: &PageRequest) -> QueryPage {
        let mut ids = self.filter_ids(&query.filter);
        if let Some(ft) = &query.full_text {
            ids &= self.full_text_ids(ft);
        }
        let total = ids.len() as usize;
        let order = &query.order;
        let mut keyed: Vec<(Vec<Option<&str>>, &str, u32)> = ids
            .iter()
            .filter_map(|id| {
                self.slot(id)
                    .map(|s| (self.sort_values(s, order), s.key.as_str(), id))
            })
            .collect();
        let cmp = |a: &(Vec<Option<&str>>, &str, u32), b: &(Vec<Option<&str>>, &str, u32)| {
            compare(order, &a.0, a.1, &b.0, b.1)
        };
        let limit = page.limit;
        let (start_has_prev, selected, has_next) = match &page.anchor {
            None => {
                let n = keyed.len();
                let start = page.offset.min(n);
                let end = start.saturating_add(limit).min(n);
                take_smallest(&mut keyed, end, cmp);
                let selected: Vec<_> = keyed.drain(start..).collect();
                (start > 0, selected, end < n)
            }
            Some(anchor) => {
                let values: Vec<Option<&str>> =
                    anchor.values.iter().map(Option::as_deref).collect();
                let n = keyed.len();
                let side = if anchor.before {
                    Ordering::Less
                } else {
                    Ordering::Greater
                };
                keyed.retain(|k| compare(order, &k.0, k.1, &values, &anchor.key) == side);
                let remaining = keyed.len();
                if anchor.before {
                    // The `limit` largest items below the anchor, in order.
                    let skip = remaining.saturating_sub(limit);
                    if skip > 0 {
                        keyed.select_nth_unstable_by(skip - 1, cmp);
                        keyed.drain(..skip);
                    }
                    keyed.sort_unstable_by(cmp);
                    (remaining > limit, keyed, remaining < n)
                } else {
                    let end = limit.min(remaining);
                    take_smallest(&mut keyed, end, cmp);
                    (remaining < n, keyed, remaining > limit)
                }
            }
        };
        let anchor_of = |item: &(Vec<Option<&str>>, &str, u32), before: bool| Anchor {
            before,
            values: item.0.iter().map(|v| v.map(str::to_owned)).collect(),
            key: item.1.to_owned(),
        };
        let next_cursor = match (has_next, selected.last()) {
            (true, Some(last)) => Some(encode_cursor(query, anchor_of(last, false))),
            _ => None,
        };
        let prev_cursor = match (start_has_prev, selected.first()) {
            (true, Some(first)) => Some(encode_cursor(query, anchor_of(first, true))),
            _ => None,
        };
        QueryPage {
            ids: selected.iter().map(|k| k.2).collect(),
            total,
            next_cursor,
            prev_cursor,
        }
    }

    /// Counts the values of each facet among the entities matching `filter`, most frequent
    /// first. Values are reported as first written.
    pub fn facets(&self, facets: &[String], filter: &FilterSet) -> Vec<(String, Vec<FacetCount>)> {
        let ids = (!filter.is_empty()).then(|| self.filter_ids(filter));
        facets
            .iter()
            .map(|facet| {
                let mut counts: Vec<FacetCount> = self
                    .values
                    .get(facet.to_lowercase().as_str())
                    .map(|postings| {
                        postings
                            .iter()
                            .filter_map(|(value, posting)| {
                                let count = match &ids {
                                    Some(ids) => posting.ids.intersection_len(ids),
                                    None => posting.ids.len(),
                                };
                                (count > 0).then(|| FacetCount {
                                    value: if posting.original.is_empty() {
                                        value.to_string()
                                    } else {
                                        posting.original.to_string()
                                    },
                                    count,
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
                (facet.clone(), counts)
            })
            .collect()
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

fn take_smallest<T>(items: &mut Vec<T>, n: usize, cmp: impl Fn(&T, &T) -> Ordering + Copy) {
    if n < items.len() {
        if n > 0 {
            items.select_nth_unstable_by(n - 1, cmp);
        }
        items.truncate(n);
    }
    items.sort_unstable_by(cmp);
}

/// Orders by each order field (missing values last, whatever the direction), then by ref key.
fn compare(
    order: &[OrderField],
    a: &[Option<&str>],
    ak: &str,
    b: &[Option<&str>],
    bk: &str,
) -> Ordering {
    for (i, o) in order.iter().enumerate() {
        let ord = match (a.get(i).copied().flatten(), b.get(i).copied().flatten()) {
            (Some(x), Some(y)) => {
                let ord = x.cmp(y);
                if o.descending { ord.reverse() } else { ord }
            }
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    ak.cmp(bk)
}

fn new_slot(stored: StoredEntity, key: String, keys: &mut KeyInterner) -> Slot {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::catalog::query::decode_cursor;
    use crate::catalog::validate_entity;

    fn stored(value: Value) -> StoredEntity {
        let valid = validate_entity(value).expect("valid");
        let name = valid.entity_ref.name().to_owned();
        StoredEntity {
            valid,
            uid: format!("uid-{name}"),
            etag: "e1".into(),
            generation: 1,
        }
    }

    fn component(name: &str, owner: &str, extra: Value) -> StoredEntity {
        let mut spec = json!({"type": "service", "lifecycle": "production", "owner": owner});
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        stored(
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": name, "description": format!("The {name} service")}, "spec": spec}),
        )
    }

    fn group(name: &str) -> StoredEntity {
        stored(
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
            "metadata": {"name": name}, "spec": {"type": "team", "children": []}}),
        )
    }

    fn rendered(index: &CatalogIndex, key: &str) -> Value {
        serde_json::from_slice(&index.get_by_key(key).expect("present").json).expect("json")
    }

    fn relations(index: &CatalogIndex, key: &str) -> Vec<String> {
        rendered(index, key)["relations"]
            .as_array()
            .expect("array")
            .iter()
            .map(|r| {
                format!(
                    "{}>{}",
                    r["type"].as_str().unwrap_or(""),
                    r["targetRef"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    fn names(index: &CatalogIndex, page: &QueryPage) -> Vec<String> {
        page.ids
            .iter()
            .map(|&id| index.view(id).expect("slot").entity_ref.name().to_owned())
            .collect()
    }

    #[test]
    fn relations_appear_on_both_ends_and_follow_changes() {
        let mut index = CatalogIndex::default();
        index.apply(
            vec![
                component("svc", "Team-A", json!({"dependsOn": ["component:db"]})),
                group("team-a"),
            ],
            &[],
        );
        assert_eq!(
            relations(&index, "component:default/svc"),
            [
                "ownedBy>group:default/Team-A",
                "dependsOn>component:default/db"
            ]
        );
        assert_eq!(
            relations(&index, "group:default/team-a"),
            ["ownerOf>component:default/svc"]
        );

        // The target of a relation may arrive later and still sees it.
        index.apply(vec![component("db", "team-a", json!({}))], &[]);
        assert_eq!(
            relations(&index, "component:default/db"),
            [
                "ownedBy>group:default/team-a",
                "dependencyOf>component:default/svc"
            ]
        );

        // Moving ownership moves the inverse relation.
        index.apply(
            vec![component("svc", "team-b", json!({})), group("team-b")],
            &[],
        );
        assert_eq!(
            relations(&index, "group:default/team-a"),
            ["ownerOf>component:default/db"]
        );
        assert_eq!(
            relations(&index, "group:default/team-b"),
            ["ownerOf>component:default/svc"]
        );
        assert_eq!(
            relations(&index, "component:default/db"),
            ["ownedBy>group:default/team-a"]
        );

        // Removing an entity removes what it declared.
        index.apply(vec![], &[EntityRef::new("component", "default", "svc")]);
        assert_eq!(
            relations(&index, "group:default/team-b"),
            Vec::<String>::new()
        );
        assert!(index.get_by_uid("uid-svc").is_none());
        assert_eq!(index.len(), 3);
    }

    #[test]
    fn filters_or_across_and_within() {
        let mut index = CatalogIndex::default();
        index.apply(
            vec![
                component("a", "team-a", json!({})),
                component("b", "team-b", json!({})),
                group("team-a"),
            ],
            &[],
        );
        let q = |f: &[&str]| {
            let query = EntityQuery {
                filter: FilterSet::parse(f).expect("valid"),
                ..Default::default()
            };
            names(&index, &index.query(&query, &PageRequest::first(100)))
        };
        assert_eq!(q(&["kind=component,spec.owner=TEAM-A"]), ["a"]);
        assert_eq!(q(&["spec.owner=team-a", "spec.owner=team-b"]), ["a", "b"]);
        assert_eq!(
            q(&["kind=group", "relations.ownedby=group:default/team-b"]),
            ["b", "team-a"],
            "default order is by ref"
        );
        assert_eq!(
            q(&["spec.children"]),
            Vec::<String>::new(),
            "an empty list has no value"
        );
        assert_eq!(q(&["spec.lifecycle"]), ["a", "b"]);
        assert_eq!(q(&["kind=nothing"]), Vec::<String>::new());
    }

    #[test]
    fn pages_walk_forward_and_back_with_cursors() {
        let mut index = CatalogIndex::default();
        index.apply(
            (0..7)
                .map(|i| component(&format!("svc-{i}"), "t", json!({})))
                .collect(),
            &[],
        );
        let query = EntityQuery {
            order: vec![OrderField::parse("metadata.name,desc").expect("ok")],
            ..Default::default()
        };
        let p1 = index.query(&query, &PageRequest::first(3));
        assert_eq!(
            (names(&index, &p1), p1.total),
            (vec!["svc-6".to_owned(), "svc-5".into(), "svc-4".into()], 7)
        );
        assert!(p1.prev_cursor.is_none());
        let (q2, a2) = decode_cursor(p1.next_cursor.as_deref().expect("next")).expect("valid");
        let p2 = index.query(
            &q2,
            &PageRequest {
                limit: 3,
                offset: 0,
                anchor: Some(a2),
            },
        );
        assert_eq!(names(&index, &p2), ["svc-3", "svc-2", "svc-1"]);
        let (q3, a3) = decode_cursor(p2.next_cursor.as_deref().expect("next")).expect("valid");
        let p3 = index.query(
            &q3,
            &PageRequest {
                limit: 3,
                offset: 0,
                anchor: Some(a3),
            },
        );
        assert_eq!(names(&index, &p3), ["svc-0"]);
        assert!(p3.next_cursor.is_none());
        let (qb, ab) = decode_cursor(p3.prev_cursor.as_deref().expect("prev")).expect("valid");
        let back = index.query(
            &qb,
            &PageRequest {
                limit: 3,
                offset: 0,
                anchor: Some(ab),
            },
        );
        assert_eq!(names(&index, &back), ["svc-3", "svc-2", "svc-1"]);
        let offset = index.query(
            &query,
            &PageRequest {
                limit: 2,
                offset: 5,
                anchor: None,
            },
        );
        assert_eq!(names(&index, &offset), ["svc-1", "svc-0"]);
        assert!(offset.prev_cursor.is_some() && offset.next_cursor.is_none());
    }

    #[test]
    fn full_text_and_facets() {
        let mut index = CatalogIndex::default();
        index.apply(
            vec![
                component("payments", "Team-A", json!({})),
                component("ledger", "Team-A", json!({})),
                component("search", "team-b", json!({})),
            ],
            &[],
        );
        let query = EntityQuery {
            full_text: FullTextFilter::new("PAY", None).expect("ok"),
            ..Default::default()
        };
        assert_eq!(
            names(&index, &index.query(&query, &PageRequest::first(20))),
            ["payments"]
        );
        let query = EntityQuery {
            full_text: FullTextFilter::new("service", Some("metadata.description")).expect("ok"),
            ..Default::default()
        };
        assert_eq!(index.query(&query, &PageRequest::first(20)).total, 3);

        let facets = index.facets(&["spec.owner".into()], &FilterSet::default());
        assert_eq!(
            facets[0].1,
            [
                FacetCount {
                    value: "Team-A".into(),
                    count: 2
                },
                FacetCount {
                    value: "team-b".into(),
                    count: 1
                }
            ]
        );
        let filtered = index.facets(
            &["spec.owner".into()],
            &FilterSet::parse(&["metadata.name=search"]).expect("ok"),
        );
        assert_eq!(
            filtered[0].1,
            [FacetCount {
                value: "team-b".into(),
                count: 1
            }]
        );
    }

    #[test]
    fn text_columns_find_each_value_once_and_never_across_values() {
        let mut postings: HashMap<Box<str>, Posting> = HashMap::new();
        for v in ["abab", "ba", "xab", "cd"] {
            postings.insert(v.into(), Posting::default());
        }
        let column = TextColumn::build(&postings);
        let mut found = column.matches(&memchr::memmem::Finder::new("ab"));
        found.sort_unstable();
        assert_eq!(found, ["abab", "xab"]);
        assert!(
            column
                .matches(&memchr::memmem::Finder::new("a\0c"))
                .is_empty()
        );
        assert!(
            column
                .matches(&memchr::memmem::Finder::new("bac"))
                .is_empty()
        );
    }
}
