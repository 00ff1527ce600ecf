//! The inverted index: a dictionary of every distinct `(key, value)` term with the entities
//! that hold it, kept as entities are posted and unposted, and the filters answered from it.
//!
//! A slot refers to its terms by id (8 bytes a term), and a value held by one entity (a name,
//! a uid) keeps its one id inline rather than in a bitmap, so the dictionary costs about what
//! its distinct values do.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use roaring::RoaringBitmap;

use super::CatalogIndex;
use super::full_text::TextColumn;
use super::paged::Paged;
use crate::catalog::query::FilterSet;

/// No term (yet).
pub(super) const NONE: u32 = u32::MAX;
/// [`TermData::original`] of a key's "present" term: the field without an indexable value
/// (too long, `null`, ...), which filters and facets never see but `exists` counts.
const PRESENT: u32 = u32::MAX;

/// A value to post: borrowed (allocated if new) or already shared.
enum Value<'a> {
    Borrowed(&'a str),
    Shared(&'a Arc<str>),
}

impl Value<'_> {
    fn as_str(&self) -> &str {
        match self {
            Value::Borrowed(v) => v,
            Value::Shared(v) => v,
        }
    }
}

/// The entities holding a term: none, one inline, or a bitmap.
#[derive(Debug, Default)]
pub(super) enum Ids {
    #[default]
    Empty,
    One(u32),
    Many(Box<RoaringBitmap>),
}

impl Ids {
    pub(super) fn insert(&mut self, id: u32) {
        match self {
            Ids::Empty => *self = Ids::One(id),
            Ids::One(x) if *x == id => {}
            Ids::One(x) => {
                let mut b = RoaringBitmap::new();
                b.insert(*x);
                b.insert(id);
                *self = Ids::Many(Box::new(b));
            }
            Ids::Many(b) => {
                b.insert(id);
            }
        }
    }

    /// Removes `id`; whether it was there.
    pub(super) fn remove(&mut self, id: u32) -> bool {
        match self {
            Ids::Empty => false,
            Ids::One(x) => {
                let was = *x == id;
                if was {
                    *self = Ids::Empty;
                }
                was
            }
            Ids::Many(b) => {
                let was = b.remove(id);
                if b.len() == 1 {
                    let only = b.min().unwrap_or(id);
                    *self = Ids::One(only);
                }
                was
            }
        }
    }

    pub(super) fn len(&self) -> u64 {
        match self {
            Ids::Empty => 0,
            Ids::One(_) => 1,
            Ids::Many(b) => b.len(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        matches!(self, Ids::Empty)
    }

    pub(super) fn union_into(&self, into: &mut RoaringBitmap) {
        match self {
            Ids::Empty => {}
            Ids::One(x) => {
                into.insert(*x);
            }
            Ids::Many(b) => *into |= b.as_ref(),
        }
    }

    pub(super) fn to_bitmap(&self) -> RoaringBitmap {
        match self {
            Ids::Many(b) => b.as_ref().clone(),
            other => {
                let mut b = RoaringBitmap::new();
                other.union_into(&mut b);
                b
            }
        }
    }

    pub(super) fn intersection_len(&self, other: &RoaringBitmap) -> u64 {
        match self {
            Ids::Empty => 0,
            Ids::One(x) => u64::from(other.contains(*x)),
            Ids::Many(b) => b.intersection_len(other),
        }
    }

    pub(super) fn extend_vec(&self, into: &mut Vec<u32>) {
        match self {
            Ids::Empty => {}
            Ids::One(x) => into.push(*x),
            Ids::Many(b) => into.extend(b.iter()),
        }
    }
}

/// One distinct field key (`spec.owner`) and its values.
pub(super) struct KeyData {
    /// The key's "present" term, [`NONE`] while no entity holds one.
    present: u32,
    /// Each distinct value (lower-case) to its term.
    pub(super) values: HashMap<Arc<str>, u32>,
    /// Every entity holding the key, with or without a value.
    pub(super) exists: RoaringBitmap,
    /// Terms of this key freed since its full-text column was built.
    pub(super) stale_in_column: usize,
}

/// One distinct term (40 bytes, plus its value's allocation).
pub(super) struct TermData {
    pub(super) key: u32,
    /// Where the value as first written is kept in [`Terms::originals`] (plus one), when it
    /// differs from `value` (for facets); 0 when it does not; [`PRESENT`] for a "present"
    /// term.
    original: u32,
    /// Lower-case; empty while the term is free.
    pub(super) value: Arc<str>,
    pub(super) ids: Ids,
}

/// The term dictionary.
#[derive(Default)]
pub(super) struct Terms {
    pub(super) keys: Vec<KeyData>,
    pub(super) key_ids: HashMap<Arc<str>, u32>,
    pub(super) entries: Paged<TermData>,
    free: Vec<u32>,
    /// Values as first written, for the few terms whose spelling differs from their value.
    originals: Vec<Box<str>>,
    free_originals: Vec<u32>,
    /// Full-text columns by key id, built on first use and kept up to date afterwards.
    pub(super) columns: RwLock<HashMap<u32, TextColumn>>,
}

impl Terms {
    pub(super) fn key_id(&self, name: &str) -> Option<u32> {
        self.key_ids.get(name).copied()
    }

    pub(super) fn intern_key(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.key_ids.get(name) {
            return id;
        }
        let id = self.keys.len() as u32;
        self.keys.push(KeyData {
            present: NONE,
            values: HashMap::new(),
            exists: RoaringBitmap::new(),
            stale_in_column: 0,
        });
        self.key_ids.insert(Arc::from(name), id);
        id
    }

    /// The term of a value of a key, if any entity holds it.
    pub(super) fn term(&self, key: u32, value: &str) -> Option<u32> {
        self.keys
            .get(key as usize)
            .and_then(|k| k.values.get(value))
            .copied()
    }

    /// The value of a term (a "present" term has none).
    pub(super) fn value(&self, term: u32) -> Option<&Arc<str>> {
        let entry = &self.entries[term as usize];
        (entry.original != PRESENT).then_some(&entry.value)
    }

    /// The key of a term.
    pub(super) fn key_of(&self, term: u32) -> u32 {
        self.entries[term as usize].key
    }

    /// The value of a term as first written (facets report it).
    pub(super) fn original(&self, term: u32) -> Option<&str> {
        let entry = self.entries.get(term as usize)?;
        let at = entry
            .original
            .checked_sub(1)
            .filter(|_| entry.original != PRESENT)?;
        self.originals.get(at as usize).map(|o| &**o)
    }

    /// Posts `id` under `key` with a lower-case `value` (`None`: present, no value), and
    /// `original`, the value as written when it differs.
    pub(super) fn post(
        &mut self,
        id: u32,
        key: u32,
        value: Option<&str>,
        original: Option<&str>,
    ) -> u32 {
        self.post_value(id, key, value.map(Value::Borrowed), original)
    }

    /// [`Terms::post`] with the value's string already allocated (a ref key the catalog holds
    /// anyway), so that a new term shares it.
    pub(super) fn post_shared(
        &mut self,
        id: u32,
        key: u32,
        value: &Arc<str>,
        original: Option<&str>,
    ) -> u32 {
        self.post_value(id, key, Some(Value::Shared(value)), original)
    }

    fn post_value(
        &mut self,
        id: u32,
        key: u32,
        value: Option<Value<'_>>,
        original: Option<&str>,
    ) -> u32 {
        let data = &mut self.keys[key as usize];
        data.exists.insert(id);
        let Some(value) = value else {
            if data.present == NONE {
                data.present = Self::new_entry(
                    &mut self.entries,
                    &mut self.free,
                    TermData {
                        key,
                        original: PRESENT,
                        value: Arc::from(""),
                        ids: Ids::Empty,
                    },
                );
            }
            let term = data.present;
            self.entries[term as usize].ids.insert(id);
            return term;
        };
        let term = match data.values.get(value.as_str()) {
            Some(&term) => term,
            None => {
                let value: Arc<str> = match value {
                    Value::Borrowed(v) => Arc::from(v),
                    Value::Shared(v) => Arc::clone(v),
                };
                let original = match original {
                    None => 0,
                    Some(o) => {
                        let o = Box::from(o);
                        let at = match self.free_originals.pop() {
                            Some(at) => {
                                self.originals[at as usize] = o;
                                at
                            }
                            None => {
                                self.originals.push(o);
                                (self.originals.len() - 1) as u32
                            }
                        };
                        at + 1
                    }
                };
                let entry = TermData {
                    key,
                    original,
                    value: Arc::clone(&value),
                    ids: Ids::Empty,
                };
                let term = Self::new_entry(&mut self.entries, &mut self.free, entry);
                data.values.insert(Arc::clone(&value), term);
                if let Some(column) = self.columns.get_mut().get_mut(&key) {
                    column.push(term, &value);
                }
                term
            }
        };
        self.entries[term as usize].ids.insert(id);
        term
    }

    fn new_entry(entries: &mut Paged<TermData>, free: &mut Vec<u32>, entry: TermData) -> u32 {
        match free.pop() {
            Some(term) => {
                entries[term as usize] = entry;
                term
            }
            None => {
                entries.push(entry);
                (entries.len() - 1) as u32
            }
        }
    }

    /// Removes `id` from a term (not from its key's `exists`), freeing the term when nobody
    /// holds it any more. Unposting a term twice is harmless.
    pub(super) fn unpost_term(&mut self, id: u32, term: u32) {
        let entry = &mut self.entries[term as usize];
        if !entry.ids.remove(id) || !entry.ids.is_empty() {
            return;
        }
        let key = entry.key;
        let value = std::mem::replace(&mut entry.value, Arc::from(""));
        let original = std::mem::take(&mut entry.original);
        self.free.push(term);
        let data = &mut self.keys[key as usize];
        if original == PRESENT {
            data.present = NONE;
            return;
        }
        if let Some(at) = original.checked_sub(1) {
            self.originals[at as usize] = Box::from("");
            self.free_originals.push(at);
        }
        data.values.remove(&value);
        if self.columns.get_mut().contains_key(&key) {
            data.stale_in_column += 1;
        }
    }

    /// Removes `id` from a key's `exists`.
    pub(super) fn unmark_key(&mut self, id: u32, key: u32) {
        self.keys[key as usize].exists.remove(id);
    }

    /// Unposts every term of a slot.
    pub(super) fn unpost_all(&mut self, id: u32, terms: &[u32]) {
        for &term in terms {
            let key = self.key_of(term);
            self.unmark_key(id, key);
            self.unpost_term(id, term);
        }
    }

    /// Rebuilds the full-text columns that hold more freed values than live ones.
    pub(super) fn compact_columns(&mut self) {
        let keys = &mut self.keys;
        for (&key, column) in self.columns.get_mut().iter_mut() {
            let data = &mut keys[key as usize];
            if data.stale_in_column > 1024 && data.stale_in_column > data.values.len() {
                *column = TextColumn::build(data);
                data.stale_in_column = 0;
            }
        }
    }
}

impl CatalogIndex {
    /// The entities matching a filter (all of them for an empty filter).
    pub fn filter_ids(&self, filter: &FilterSet) -> RoaringBitmap {
        if filter.is_empty() {
            return self.all.clone();
        }
        let mut result = RoaringBitmap::new();
        for clause in &filter.clauses {
            let mut acc: Option<RoaringBitmap> = None;
            for cond in &clause.conditions {
                let key = self.terms.key_id(cond.key.as_str());
                let ids = match (&cond.values, key) {
                    (_, None) => RoaringBitmap::new(),
                    (None, Some(key)) => self.terms.keys[key as usize].exists.clone(),
                    (Some(values), Some(key)) => {
                        let terms = values.iter().filter_map(|v| self.terms.term(key, v));
                        let mut ids = RoaringBitmap::new();
                        for (i, term) in terms.enumerate() {
                            let held = &self.terms.entries[term as usize].ids;
                            if i == 0 {
                                ids = held.to_bitmap();
                            } else {
                                held.union_into(&mut ids);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_move_between_inline_and_bitmap() {
        let mut ids = Ids::default();
        ids.insert(7);
        assert!(matches!(ids, Ids::One(7)));
        ids.insert(7);
        ids.insert(9);
        assert_eq!(ids.len(), 2);
        assert!(ids.remove(7));
        assert!(matches!(ids, Ids::One(9)), "one left goes back inline");
        assert!(!ids.remove(7));
        assert!(ids.remove(9));
        assert!(ids.is_empty());
    }

    #[test]
    fn freed_terms_are_reused_and_forgotten() {
        let mut terms = Terms::default();
        let key = terms.intern_key("metadata.name");
        let a = terms.post(1, key, Some("a"), Some("A"));
        assert_eq!(terms.term(key, "a"), Some(a));
        assert_eq!(terms.original(a), Some("A"));
        terms.unpost_all(1, &[a]);
        assert_eq!(terms.term(key, "a"), None);
        assert!(terms.keys[key as usize].exists.is_empty());
        let b = terms.post(2, key, Some("b"), None);
        assert_eq!(b, a, "the freed term is reused");
        assert_eq!(terms.original(b), None);
        // Unposting again, after the term went to someone else, changes nothing.
        terms.unpost_term(1, a);
        assert_eq!(terms.entries[b as usize].ids.len(), 1);
        // A field without a value: present, with no value to filter or sort by.
        let present = terms.post(3, key, None, None);
        assert_eq!(terms.value(present), None);
        assert_eq!(terms.original(present), None);
        assert_eq!(terms.post(4, key, None, None), present);
        assert!(terms.keys[key as usize].exists.contains(4));
        terms.unpost_all(3, &[present]);
        terms.unpost_all(4, &[present]);
        assert_eq!(terms.keys[key as usize].present, NONE);
        assert_eq!(terms.term(key, ""), None);
    }
}
