//! Full-text search: each field's distinct values laid end to end in one column, scanned once
//! for a term.
//!
//! A column is built on the first search of its field and kept afterwards: a new value is
//! appended, a freed one stays behind as garbage that matches nothing (each match is checked
//! against the dictionary), and the column is rebuilt once it holds more garbage than values.
//! So a write costs a few appends, never a rebuild of every column.

use roaring::RoaringBitmap;

use super::CatalogIndex;
use super::postings::KeyData;
use crate::catalog::query::FullTextFilter;

/// The distinct values of one field laid end to end, each followed by a NUL, so that a
/// full-text term is found in every value with one SIMD substring scan.
pub(super) struct TextColumn {
    text: Vec<u8>,
    /// Where each value starts in `text`.
    starts: Vec<u32>,
    /// The term each value was when appended (it may have been freed, or reused, since).
    terms: Vec<u32>,
}

impl TextColumn {
    pub(super) fn build(key: &KeyData) -> Self {
        let mut column = Self {
            text: Vec::with_capacity(key.values.keys().map(|v| v.len() + 1).sum()),
            starts: Vec::with_capacity(key.values.len()),
            terms: Vec::with_capacity(key.values.len()),
        };
        for (value, &term) in &key.values {
            column.push(term, value);
        }
        column
    }

    pub(super) fn push(&mut self, term: u32, value: &str) {
        self.starts.push(self.text.len() as u32);
        self.terms.push(term);
        self.text.extend_from_slice(value.as_bytes());
        self.text.push(0);
    }

    /// Every value containing the finder's needle, each once, with the term it was appended
    /// as.
    fn matches<'a>(&'a self, finder: &memchr::memmem::Finder<'_>) -> Vec<(u32, &'a [u8])> {
        let bytes = self.text.as_slice();
        let mut found = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let Some(offset) = finder.find(&bytes[pos..]) else {
                break;
            };
            let at = pos + offset;
            let idx = self
                .starts
                .partition_point(|&s| s as usize <= at)
                .saturating_sub(1);
            let start = self.starts[idx] as usize;
            let end = self
                .starts
                .get(idx + 1)
                .map_or(bytes.len(), |&next| next as usize)
                - 1;
            if at + finder.needle().len() <= end {
                found.push((self.terms[idx], &bytes[start..end]));
            }
            // Each value counts once: continue after it.
            pos = end + 1;
        }
        found
    }
}

impl CatalogIndex {
    pub(super) fn full_text_ids(&self, ft: &FullTextFilter) -> RoaringBitmap {
        let finder = memchr::memmem::Finder::new(ft.term.as_bytes());
        let mut ids: Vec<u32> = Vec::new();
        for field in &ft.fields {
            let Some(key) = self.terms.key_id(field.as_str()) else {
                continue;
            };
            if !self.terms.columns.read().contains_key(&key) {
                let built = TextColumn::build(&self.terms.keys[key as usize]);
                self.terms.columns.write().entry(key).or_insert(built);
            }
            let columns = self.terms.columns.read();
            let Some(column) = columns.get(&key) else {
                continue;
            };
            for (term, value) in column.matches(&finder) {
                let Some(entry) = self.terms.entries.get(term as usize) else {
                    continue;
                };
                // Garbage: the value was freed (and its term perhaps reused) since.
                if entry.key != key || entry.value.as_bytes() != value {
                    continue;
                }
                entry.ids.extend_vec(&mut ids);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        RoaringBitmap::from_sorted_iter(ids).unwrap_or_default()
    }
}

/// How a column's values are told apart from garbage, for tests.
#[cfg(test)]
pub(super) fn column_values(column: &TextColumn) -> Vec<(u32, String)> {
    column
        .starts
        .iter()
        .zip(&column.terms)
        .map(|(&s, &t)| {
            let rest = &column.text[s as usize..];
            let end = memchr::memchr(0, rest).unwrap_or(rest.len());
            (t, String::from_utf8_lossy(&rest[..end]).into_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(values: &[&str]) -> TextColumn {
        let mut column = TextColumn {
            text: Vec::new(),
            starts: Vec::new(),
            terms: Vec::new(),
        };
        for (i, v) in values.iter().enumerate() {
            column.push(i as u32, v);
        }
        column
    }

    #[test]
    fn text_columns_find_each_value_once_and_never_across_values() {
        let column = column(&["abab", "ba", "xab", "cd"]);
        let found = column.matches(&memchr::memmem::Finder::new("ab"));
        let values: Vec<&[u8]> = found.iter().map(|(_, v)| *v).collect();
        assert_eq!(values, [b"abab".as_slice(), b"xab"]);
        assert_eq!(found[1].0, 2);
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
        assert_eq!(column_values(&column).len(), 4);
    }
}
