//! Writes: applying upserts and removals, then re-deriving the relations, terms and rendered
//! JSON of every entity they touch.

use std::collections::{BTreeSet, HashSet};

use bytes::Bytes;

use super::slot::{Term, new_slot};
use super::{CatalogIndex, StoredEntity};
use crate::catalog::names::EntityRef;
use crate::catalog::relations::{Relation, RelationType};

impl CatalogIndex {
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
}
