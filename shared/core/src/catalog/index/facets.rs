//! Facets: how many of the matching entities hold each value of a field.

use super::{CatalogIndex, FacetCount};
use crate::catalog::query::FilterSet;

impl CatalogIndex {
    /// Counts the values of each facet among the entities matching `filter`, most frequent
    /// first. Values are reported as first written.
    pub fn facets(&self, facets: &[String], filter: &FilterSet) -> Vec<(String, Vec<FacetCount>)> {
        let ids = (!filter.is_empty()).then(|| self.filter_ids(filter));
        facets
            .iter()
            .map(|facet| {
                let key = self.terms.key_id(facet.to_lowercase().as_str());
                let mut counts: Vec<FacetCount> = key
                    .map(|key| {
                        self.terms.keys[key as usize]
                            .values
                            .iter()
                            .filter_map(|(value, &term)| {
                                let entry = &self.terms.entries[term as usize];
                                let count = match &ids {
                                    Some(ids) => entry.ids.intersection_len(ids),
                                    None => entry.ids.len(),
                                };
                                (count > 0).then(|| FacetCount {
                                    value: self.terms.original(term).unwrap_or(value).to_owned(),
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
}
