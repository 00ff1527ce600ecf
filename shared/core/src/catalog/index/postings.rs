//! The inverted index: each term's entities by key and value, kept as entities are posted and
//! unposted, and the filters answered from it.

use std::sync::Arc;

use roaring::RoaringBitmap;

use super::CatalogIndex;
use super::slot::Term;
use crate::catalog::query::FilterSet;

#[derive(Default)]
pub(super) struct Posting {
    pub(super) original: Box<str>,
    pub(super) ids: RoaringBitmap,
}

impl CatalogIndex {
    pub(super) fn post(&mut self, id: u32, terms: &[Term]) {
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

    pub(super) fn unpost(&mut self, id: u32, terms: &[Term]) {
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
}
