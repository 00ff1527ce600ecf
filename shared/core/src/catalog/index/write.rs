//! Writes: applying upserts and removals term by term, and keeping the relations of the
//! entities they point at in step.
//!
//! The cost of a write is that of what it changes: its entities' terms, a sorted-order entry
//! per kept order, and for each relation one incoming entry and one term on its target. The
//! target's JSON is only marked for rendering on its next read, so the 1,000th component of
//! a group does not re-render (or re-index) the group's other 999 relations.

use std::sync::Arc;

use super::slot::{MAX_INDEXED_VALUE, new_slot};
use super::{CatalogIndex, EntityJson, StoredEntity};
use crate::catalog::names::EntityRef;
use crate::catalog::relations::RelationType;

/// Whether a relation term is added or removed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Add,
    Remove,
}

impl CatalogIndex {
    /// Adds or replaces entities and removes others, with the relations they declare and
    /// receive.
    pub fn apply(&mut self, upserts: Vec<StoredEntity>, removals: &[EntityRef]) {
        // Rendered JSON that views kept since the last write is forgotten: the read model
        // keeps each entity's JSON once.
        for id in std::mem::take(self.kept.get_mut()) {
            if let Some(slot) = self.slots.get_mut(id as usize).and_then(Option::as_mut) {
                slot.view.json = EntityJson::default();
            }
        }
        for entity_ref in removals {
            let key = entity_ref.key();
            let Some(id) = self.by_ref.get(key.as_str()).copied() else {
                continue;
            };
            self.drop_slot(id);
            self.by_ref.remove(key.as_str());
            self.refs.remove(key.as_str());
            self.all.remove(id);
            self.free.push(id);
        }
        for stored in upserts {
            let key = stored.valid.entity_ref.key();
            let (id, key) = match self.by_ref.get_key_value(key.as_str()) {
                Some((k, &id)) => {
                    let k = Arc::clone(k);
                    self.drop_slot(id);
                    (id, k)
                }
                None => {
                    let id = self.free.pop().unwrap_or(self.slots.len() as u32);
                    if id as usize == self.slots.len() {
                        self.slots.push(None);
                    }
                    let key: Arc<str> = Arc::from(key);
                    self.by_ref.insert(Arc::clone(&key), id);
                    self.refs.insert(Arc::clone(&key), id);
                    self.all.insert(id);
                    (id, key)
                }
            };
            self.fill_slot(id, stored, key);
        }
        self.terms.compact_columns();
    }

    /// Takes an entity out: its relations from their targets, its terms, its order entries.
    /// The id and ref key stay for the caller to reuse or free.
    fn drop_slot(&mut self, id: u32) {
        let Some(slot) = self.slots[id as usize].take() else {
            return;
        };
        self.orders.get_mut().remove_slot(id, &slot, &self.terms);
        let display = slot.view.entity_ref.to_string();
        for (rel_type, target) in &slot.emitted {
            let target = target.to_ascii_lowercase();
            if let Some(list) = self.incoming.get_mut(target.as_str()) {
                if let Some(pos) = list.iter().position(|&(t, s)| t == *rel_type && s == id) {
                    list.swap_remove(pos);
                }
                if list.is_empty() {
                    self.incoming.remove(target.as_str());
                }
            }
            self.relation_on_target(
                &target,
                rel_type.inverse(),
                &slot.key,
                &display,
                Change::Remove,
            );
        }
        self.terms.unpost_all(id, &slot.terms);
        self.terms.unpost_all(id, &slot.relation_terms);
        self.long_uids.remove(slot.view.uid.as_str());
    }

    /// Builds an entity's slot: its terms, its relations (own and received), its order
    /// entries; then tells the targets of its relations.
    fn fill_slot(&mut self, id: u32, stored: StoredEntity, key: Arc<str>) {
        let (mut slot, relations) = new_slot(stored, key, id, &mut self.terms);
        let mut relation_terms = Vec::with_capacity(relations.len());
        // Each own relation: its term, and the target key to tell (shared with the term).
        let mut targets: Vec<(RelationType, Arc<str>)> = Vec::with_capacity(relations.len());
        let mut emitted: Vec<(RelationType, Arc<str>)> = Vec::with_capacity(relations.len());
        for relation in relations {
            let written = relation.target.to_string();
            let target_key = written.to_ascii_lowercase();
            let term_key = self.relation_key(relation.rel_type);
            let original = (target_key != written).then_some(written.as_str());
            let posted = match self.by_ref.get_key_value(target_key.as_str()) {
                // The target's own key: the term shares it.
                Some((shared, _)) => {
                    let shared = Arc::clone(shared);
                    self.terms.post_shared(id, term_key, &shared, original)
                }
                None => self.terms.post(id, term_key, Some(&target_key), original),
            };
            relation_terms.push(posted);
            let shared = match self.terms.value(posted) {
                Some(v) => Arc::clone(v),
                None => Arc::from(target_key),
            };
            let written: Arc<str> = if *shared == *written {
                Arc::clone(&shared)
            } else {
                Arc::from(written)
            };
            emitted.push((relation.rel_type, written));
            targets.push((relation.rel_type, shared));
        }
        slot.emitted = emitted.into_boxed_slice();
        let received: Vec<(RelationType, Arc<str>, String)> = self
            .incoming
            .get(&*slot.key)
            .into_iter()
            .flatten()
            .filter_map(|&(rel_type, src)| {
                self.slot(src).map(|s| {
                    (
                        rel_type.inverse(),
                        Arc::clone(&s.key),
                        s.view.entity_ref.to_string(),
                    )
                })
            })
            .collect();
        for (rel_type, source_key, display) in &received {
            let term_key = self.relation_key(*rel_type);
            relation_terms.push(self.terms.post_shared(
                id,
                term_key,
                source_key,
                (**source_key != **display).then_some(display.as_str()),
            ));
        }
        slot.relation_terms = relation_terms;
        if slot.view.uid.len() > MAX_INDEXED_VALUE {
            self.long_uids.insert(slot.view.uid.as_str().into(), id);
        }
        self.orders.get_mut().insert_slot(id, &slot, &self.terms);
        let display = slot.view.entity_ref.to_string();
        let key = Arc::clone(&slot.key);
        self.slots[id as usize] = Some(slot);
        for (rel_type, target) in targets {
            self.incoming
                .entry(Arc::clone(&target))
                .or_default()
                .push((rel_type, id));
            self.relation_on_target(&target, rel_type.inverse(), &key, &display, Change::Add);
        }
    }

    /// Adds or removes, on the entity `target` (if it exists), the relation term of a
    /// relation `source` declares toward it, and marks its JSON for rendering.
    fn relation_on_target(
        &mut self,
        target: &str,
        rel_type: RelationType,
        source_key: &Arc<str>,
        source_display: &str,
        change: Change,
    ) {
        let Some(&tid) = self.by_ref.get(target) else {
            return;
        };
        let term_key = self.relation_key(rel_type);
        let Some(slot) = self.slots[tid as usize].as_mut() else {
            return;
        };
        slot.view.json = EntityJson::default();
        let ordered = self.orders.get_mut().has(term_key);
        let old = if ordered {
            slot.sort_value(&self.terms, term_key).cloned()
        } else {
            None
        };
        match change {
            Change::Add => {
                let posted = self.terms.post_shared(
                    tid,
                    term_key,
                    source_key,
                    (**source_key != *source_display).then_some(source_display),
                );
                slot.relation_terms.push(posted);
            }
            Change::Remove => {
                let Some(term) = self.terms.term(term_key, source_key) else {
                    return;
                };
                let Some(pos) = slot.relation_terms.iter().position(|&t| t == term) else {
                    return;
                };
                slot.relation_terms.swap_remove(pos);
                if !slot.relation_terms.contains(&term) {
                    self.terms.unpost_term(tid, term);
                }
                let terms = &self.terms;
                let holds_key = slot
                    .terms
                    .iter()
                    .chain(&slot.relation_terms)
                    .any(|&t| terms.key_of(t) == term_key);
                if !holds_key {
                    self.terms.unmark_key(tid, term_key);
                }
            }
        }
        if ordered {
            let new = slot.sort_value(&self.terms, term_key).cloned();
            let key = Arc::clone(&slot.key);
            self.orders.get_mut().moved(term_key, tid, &key, old, new);
        }
    }

    /// The key id of `relations.<type>`.
    fn relation_key(&mut self, rel_type: RelationType) -> u32 {
        let slot = &mut self.relation_keys[rel_type as usize];
        if let Some(key) = *slot {
            return key;
        }
        let key = self
            .terms
            .intern_key(&format!("relations.{}", rel_type.as_str().to_lowercase()));
        self.relation_keys[rel_type as usize] = Some(key);
        key
    }
}
