//! Running a query: ordering the matching entities and cutting one offset or keyset page, with
//! the cursors of the pages around it.

use std::cmp::Ordering;

use super::CatalogIndex;
use super::slot::Slot;
use crate::catalog::query::{
    Anchor, EntityQuery, OrderField, PageRequest, QueryPage, encode_cursor,
};

impl CatalogIndex {
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
