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
}
