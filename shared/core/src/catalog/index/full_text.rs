//! Full-text search: each field's distinct values laid end to end in one column, scanned once
//! for a term.

use std::collections::HashMap;
use std::sync::Arc;

use roaring::RoaringBitmap;

use super::CatalogIndex;
use super::postings::Posting;
use crate::catalog::query::FullTextFilter;

/// The distinct values of one field laid end to end, each followed by a NUL, so that a
/// full-text term is found in every value with one SIMD substring scan.
pub(super) struct TextColumn {
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

impl CatalogIndex {
    pub(super) fn full_text_ids(&self, ft: &FullTextFilter) -> RoaringBitmap {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
