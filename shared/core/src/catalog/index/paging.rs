//! Running a query: ordering the matching entities and cutting one offset or keyset page, with
//! the cursors of the pages around it.
//!
//! A query orders by at most one field in practice, so that case walks sorted structures: the
//! field's [`Order`] (entities with a value), then the entities without one by ref key, from
//! the start or from the cursor's anchor, keeping the matches, until the page is full. That
//! costs the page plus the non-matching entries walked past, never a sort of every match. A
//! small match set, and orders by several fields, are sorted directly instead.

use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::Arc;

use roaring::RoaringBitmap;

use super::CatalogIndex;
use super::orders::{From, Order};
use crate::catalog::query::{
    Anchor, EntityQuery, OrderField, PageRequest, QueryPage, encode_cursor,
};

/// Up to this many matches are sorted; more are walked in a sorted order.
pub(super) const SORT_AT_MOST: u64 = 2048;

type Walk<'a> = Box<dyn Iterator<Item = u32> + 'a>;

/// A page: its ids, whether something comes before and after it.
struct Cut {
    ids: Vec<u32>,
    has_prev: bool,
    has_next: bool,
}

/// The entities of a match set without a value of the order field, by ref key: walked in the
/// catalog's key order, or, when there are few, sorted.
enum Rest<'a> {
    Walk {
        refs: &'a std::collections::BTreeMap<Arc<str>, u32>,
        ids: RoaringBitmap,
    },
    Sorted(Vec<(&'a str, u32)>),
}

impl<'a> Rest<'a> {
    fn new(index: &'a CatalogIndex, ids: RoaringBitmap) -> Self {
        if ids.len() > SORT_AT_MOST {
            return Rest::Walk {
                refs: &index.refs,
                ids,
            };
        }
        let mut sorted: Vec<(&str, u32)> = ids
            .iter()
            .filter_map(|id| index.slot(id).map(|s| (&*s.key, id)))
            .collect();
        sorted.sort_unstable();
        Rest::Sorted(sorted)
    }

    fn forward(&'a self, from: Option<(&'a str, bool)>) -> Walk<'a> {
        match self {
            Rest::Walk { refs, ids } => {
                let range = match from {
                    None => refs.range::<str, _>(..),
                    Some((key, true)) => {
                        refs.range::<str, _>((Bound::Included(key), Bound::Unbounded))
                    }
                    Some((key, false)) => {
                        refs.range::<str, _>((Bound::Excluded(key), Bound::Unbounded))
                    }
                };
                Box::new(range.map(|(_, &id)| id).filter(move |&id| ids.contains(id)))
            }
            Rest::Sorted(sorted) => {
                let start = match from {
                    None => 0,
                    Some((key, true)) => sorted.partition_point(|(k, _)| *k < key),
                    Some((key, false)) => sorted.partition_point(|(k, _)| *k <= key),
                };
                Box::new(sorted[start..].iter().map(|&(_, id)| id))
            }
        }
    }

    fn backward(&'a self, from: Option<(&'a str, bool)>) -> Walk<'a> {
        match self {
            Rest::Walk { refs, ids } => {
                let range = match from {
                    None => refs.range::<str, _>(..),
                    Some((key, true)) => {
                        refs.range::<str, _>((Bound::Unbounded, Bound::Included(key)))
                    }
                    Some((key, false)) => {
                        refs.range::<str, _>((Bound::Unbounded, Bound::Excluded(key)))
                    }
                };
                Box::new(
                    range
                        .rev()
                        .map(|(_, &id)| id)
                        .filter(move |&id| ids.contains(id)),
                )
            }
            Rest::Sorted(sorted) => {
                let end = match from {
                    None => sorted.len(),
                    Some((key, true)) => sorted.partition_point(|(k, _)| *k <= key),
                    Some((key, false)) => sorted.partition_point(|(k, _)| *k < key),
                };
                Box::new(sorted[..end].iter().rev().map(|&(_, id)| id))
            }
        }
    }
}

impl CatalogIndex {
    /// The sort key of an entity for the given order: the sort value of each order field.
    fn sort_values(&self, id: u32, order: &[OrderField]) -> Vec<Option<&str>> {
        let Some(slot) = self.slot(id) else {
            return vec![None; order.len()];
        };
        order
            .iter()
            .map(|o| {
                self.terms
                    .key_id(&o.field)
                    .and_then(|key| slot.sort_value(&self.terms, key))
                    .map(|v| &**v)
            })
            .collect()
    }

    /// Runs a query and returns one page, with cursors for the pages around it.
    pub fn query(&self, query: &EntityQuery, page: &PageRequest) -> QueryPage {
        self.run(query, page, None)
    }

    /// [`CatalogIndex::query`], walking sorted orders (`Some(true)`), sorting the matches
    /// (`Some(false)`) or choosing by the number of matches (`None`).
    pub(super) fn run(
        &self,
        query: &EntityQuery,
        page: &PageRequest,
        walk: Option<bool>,
    ) -> QueryPage {
        let mut ids = self.filter_ids(&query.filter);
        if let Some(ft) = &query.full_text {
            ids &= self.full_text_ids(ft);
        }
        let total = ids.len() as usize;
        let walk = query.order.len() <= 1 && walk.unwrap_or(ids.len() > SORT_AT_MOST);
        let cut = if walk {
            self.walk_page(query.order.first(), &ids, page)
        } else {
            self.sort_page(&query.order, &ids, page)
        };
        let anchor_of = |id: u32, before: bool| Anchor {
            before,
            values: self
                .sort_values(id, &query.order)
                .into_iter()
                .map(|v| v.map(str::to_owned))
                .collect(),
            key: self.slot(id).map(|s| s.key.to_string()).unwrap_or_default(),
        };
        let next_cursor = match (cut.has_next, cut.ids.last()) {
            (true, Some(&last)) => Some(encode_cursor(query, anchor_of(last, false))),
            _ => None,
        };
        let prev_cursor = match (cut.has_prev, cut.ids.first()) {
            (true, Some(&first)) => Some(encode_cursor(query, anchor_of(first, true))),
            _ => None,
        };
        QueryPage {
            ids: cut.ids,
            total,
            next_cursor,
            prev_cursor,
        }
    }

    /// The sorted order of a field, built now if no query needed it yet.
    fn with_order<T>(&self, key: u32, f: impl FnOnce(&Order) -> T) -> T {
        {
            let orders = self.orders.read();
            if let Some(order) = orders.get(key) {
                return f(order);
            }
        }
        let built = Order::build(self, key);
        self.orders.write().keep(key, built);
        let orders = self.orders.read();
        match orders.get(key) {
            Some(order) => f(order),
            // Kept and dropped at once: only with more keys than orders racing.
            None => f(&Order::build(self, key)),
        }
    }

    /// A page of `ids` ordered by `order` (or by ref key), walking sorted structures.
    fn walk_page(
        &self,
        order: Option<&OrderField>,
        ids: &RoaringBitmap,
        page: &PageRequest,
    ) -> Cut {
        let key = order.and_then(|o| self.terms.key_id(&o.field));
        match (order, key) {
            (Some(o), Some(key)) => self.with_order(key, |sorted| {
                let rest = Rest::new(self, ids - &sorted.valued);
                let walk = Walker {
                    valued: Some((sorted, o.descending)),
                    ids,
                    rest: &rest,
                };
                walk.page(ids.len(), page)
            }),
            // No entity has the field: all of them sort as missing, by ref key.
            _ => {
                let rest = Rest::new(self, ids.clone());
                let walk = Walker {
                    valued: None,
                    ids,
                    rest: &rest,
                };
                walk.page(ids.len(), page)
            }
        }
    }

    /// A page of `ids` sorted in full (few matches, or several order fields).
    fn sort_page(&self, order: &[OrderField], ids: &RoaringBitmap, page: &PageRequest) -> Cut {
        let mut keyed: Vec<(Vec<Option<&str>>, &str, u32)> = ids
            .iter()
            .filter_map(|id| {
                self.slot(id)
                    .map(|s| (self.sort_values(id, order), &*s.key, id))
            })
            .collect();
        let cmp = |a: &(Vec<Option<&str>>, &str, u32), b: &(Vec<Option<&str>>, &str, u32)| {
            compare(order, &a.0, a.1, &b.0, b.1)
        };
        let limit = page.limit;
        let n = keyed.len();
        match &page.anchor {
            None => {
                let start = page.offset.min(n);
                let end = start.saturating_add(limit).min(n);
                take_smallest(&mut keyed, end, cmp);
                let ids = keyed.drain(start..).map(|k| k.2).collect();
                Cut {
                    ids,
                    has_prev: start > 0,
                    has_next: end < n,
                }
            }
            Some(anchor) => {
                let values: Vec<Option<&str>> =
                    anchor.values.iter().map(Option::as_deref).collect();
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
                    Cut {
                        ids: keyed.into_iter().map(|k| k.2).collect(),
                        has_prev: remaining > limit,
                        has_next: remaining < n,
                    }
                } else {
                    let end = limit.min(remaining);
                    take_smallest(&mut keyed, end, cmp);
                    Cut {
                        ids: keyed.into_iter().map(|k| k.2).collect(),
                        has_prev: remaining < n,
                        has_next: remaining > limit,
                    }
                }
            }
        }
    }
}

/// The sequence of a query's matches: those with a value in the field's order, then the rest
/// by ref key.
struct Walker<'a> {
    valued: Option<(&'a Order, bool)>,
    ids: &'a RoaringBitmap,
    rest: &'a Rest<'a>,
}

impl<'a> Walker<'a> {
    /// Forward from the start, or from next to the anchor.
    fn forward(&self, anchor: Option<(&'a Anchor, bool)>) -> Walk<'a> {
        let valued = self.valued;
        let ids = self.ids;
        match (anchor, valued) {
            (None, Some((order, desc))) => Box::new(
                order
                    .forward(desc, ids, From::End)
                    .chain(self.rest.forward(None)),
            ),
            (None, None) => self.rest.forward(None),
            (Some((a, inclusive)), Some((order, desc))) => match anchor_value(a) {
                Some(value) => Box::new(
                    order
                        .forward(
                            desc,
                            ids,
                            From::At {
                                value,
                                key: &a.key,
                                inclusive,
                            },
                        )
                        .chain(self.rest.forward(None)),
                ),
                None => self.rest.forward(Some((&a.key, inclusive))),
            },
            (Some((a, inclusive)), None) => self.rest.forward(Some((&a.key, inclusive))),
        }
    }

    /// Backward from next to the anchor.
    fn backward(&self, a: &'a Anchor, inclusive: bool) -> Walk<'a> {
        let ids = self.ids;
        match (self.valued, anchor_value(a)) {
            (Some((order, desc)), Some(value)) => order.backward(
                desc,
                ids,
                From::At {
                    value,
                    key: &a.key,
                    inclusive,
                },
            ),
            (Some((order, desc)), None) => Box::new(
                self.rest
                    .backward(Some((&a.key, inclusive)))
                    .chain(order.backward(desc, ids, From::End)),
            ),
            (None, _) => self.rest.backward(Some((&a.key, inclusive))),
        }
    }

    fn page(&self, n: u64, page: &'a PageRequest) -> Cut {
        let limit = page.limit;
        match &page.anchor {
            None => {
                let n = n as usize;
                let start = page.offset.min(n);
                let end = start.saturating_add(limit).min(n);
                Cut {
                    ids: self.forward(None).skip(start).take(end - start).collect(),
                    has_prev: start > 0,
                    has_next: end < n,
                }
            }
            Some(a) if !a.before => {
                let mut walk = self.forward(Some((a, false)));
                let ids: Vec<u32> = walk.by_ref().take(limit).collect();
                Cut {
                    has_next: walk.next().is_some(),
                    has_prev: self.backward(a, true).next().is_some(),
                    ids,
                }
            }
            Some(a) => {
                let mut walk = self.backward(a, false);
                let mut ids: Vec<u32> = walk.by_ref().take(limit).collect();
                ids.reverse();
                Cut {
                    has_prev: walk.next().is_some(),
                    has_next: self.forward(Some((a, true))).next().is_some(),
                    ids,
                }
            }
        }
    }
}

/// The anchor's value for the (one) order field.
fn anchor_value(a: &Anchor) -> Option<&str> {
    a.values.first().and_then(Option::as_deref)
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
pub(super) fn compare(
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
