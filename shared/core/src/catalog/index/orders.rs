//! Sorted orders: the entities holding a field, kept sorted by its value (then by ref key),
//! so that an ordered page walks the first entries instead of sorting every match.
//!
//! An order is built on the first query that needs it and kept up to date by every write
//! afterwards (a `BTreeSet` insert and remove per changed entity). At most [`MAX_ORDERS`] are
//! kept; the least recently used goes first. One order serves both directions: descending
//! walks the values backwards, each run of equal values still in ascending ref-key order.

use std::collections::{BTreeSet, HashMap};
use std::iter::Peekable;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use roaring::RoaringBitmap;

use super::CatalogIndex;
use super::postings::Terms;
use super::slot::Slot;

/// The most sorted orders kept at once (each costs about 60 bytes per entity holding its
/// field).
pub(super) const MAX_ORDERS: usize = 16;

/// One entry: the entity's sort value, its ref key, its slot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct OrderKey {
    pub(super) value: Arc<str>,
    pub(super) key: Arc<str>,
    pub(super) id: u32,
}

impl OrderKey {
    fn bound(value: &str, key: &str, id: u32) -> Self {
        Self {
            value: Arc::from(value),
            key: Arc::from(key),
            id,
        }
    }
}

/// The entities holding a value for one field, sorted.
pub(super) struct Order {
    pub(super) set: BTreeSet<OrderKey>,
    /// The slots in `set`.
    pub(super) valued: RoaringBitmap,
    used: AtomicU64,
}

/// Where a walk starts: at one end, or next to a position (the anchor of a cursor).
#[derive(Debug, Clone, Copy)]
pub(super) enum From<'a> {
    End,
    At {
        value: &'a str,
        key: &'a str,
        /// Whether the entry at the position itself is walked.
        inclusive: bool,
    },
}

type Walk<'a> = Box<dyn Iterator<Item = u32> + 'a>;

impl Order {
    pub(super) fn build(index: &CatalogIndex, key: u32) -> Self {
        let holders = &index.terms.keys[key as usize].exists;
        let mut valued = Vec::new();
        let mut entries = Vec::new();
        for id in holders {
            let Some(slot) = index.slot(id) else { continue };
            if let Some(value) = slot.sort_value(&index.terms, key) {
                valued.push(id);
                entries.push(OrderKey {
                    value: Arc::clone(value),
                    key: Arc::clone(&slot.key),
                    id,
                });
            }
        }
        entries.sort_unstable();
        Self {
            set: entries.into_iter().collect(),
            valued: RoaringBitmap::from_sorted_iter(valued).unwrap_or_default(),
            used: AtomicU64::new(0),
        }
    }

    fn insert(&mut self, entry: OrderKey) {
        self.valued.insert(entry.id);
        self.set.insert(entry);
    }

    fn remove(&mut self, entry: &OrderKey) {
        self.valued.remove(entry.id);
        self.set.remove(entry);
    }

    fn ascending_from(&self, from: From<'_>) -> std::collections::btree_set::Range<'_, OrderKey> {
        match from {
            From::End => self.set.range::<OrderKey, _>(..),
            From::At {
                value,
                key,
                inclusive: true,
            } => self.set.range((
                Bound::Included(OrderKey::bound(value, key, 0)),
                Bound::Unbounded,
            )),
            From::At { value, key, .. } => self.set.range((
                Bound::Excluded(OrderKey::bound(value, key, u32::MAX)),
                Bound::Unbounded,
            )),
        }
    }

    fn descending_from(&self, from: From<'_>) -> std::collections::btree_set::Range<'_, OrderKey> {
        match from {
            From::End => self.set.range::<OrderKey, _>(..),
            From::At {
                value,
                key,
                inclusive: true,
            } => self.set.range((
                Bound::Unbounded,
                Bound::Included(OrderKey::bound(value, key, u32::MAX)),
            )),
            From::At { value, key, .. } => self.set.range((
                Bound::Unbounded,
                Bound::Excluded(OrderKey::bound(value, key, 0)),
            )),
        }
    }

    /// The slots of `m` in this order (`desc`: values descending), from `from` on.
    pub(super) fn forward<'a>(
        &'a self,
        desc: bool,
        m: &'a RoaringBitmap,
        from: From<'a>,
    ) -> Walk<'a> {
        let member = move |e: &&OrderKey| m.contains(e.id);
        match (desc, from) {
            (false, _) => Box::new(self.ascending_from(from).filter(member).map(|e| e.id)),
            (true, From::End) => Box::new(ReverseRuns::new(self.set.iter().rev().filter(member))),
            (true, From::At { value, .. }) => {
                // The rest of the anchor's run (ref keys ascending), then the smaller values.
                let head = self
                    .ascending_from(from)
                    .take_while(move |e| *e.value == *value)
                    .filter(member)
                    .map(|e| e.id);
                let below = self
                    .set
                    .range((
                        Bound::Unbounded,
                        Bound::Excluded(OrderKey::bound(value, "", 0)),
                    ))
                    .rev()
                    .filter(member);
                Box::new(head.chain(ReverseRuns::new(below)))
            }
        }
    }

    /// The slots of `m` in the reverse of this order, from `from` (or the end) back.
    pub(super) fn backward<'a>(
        &'a self,
        desc: bool,
        m: &'a RoaringBitmap,
        from: From<'a>,
    ) -> Walk<'a> {
        let member = move |e: &&OrderKey| m.contains(e.id);
        match (desc, from) {
            (false, _) => Box::new(
                self.descending_from(from)
                    .rev()
                    .filter(member)
                    .map(|e| e.id),
            ),
            (true, From::End) => Box::new(ReverseRuns::new(self.set.iter().filter(member))),
            (true, From::At { value, .. }) => {
                // The start of the anchor's run (ref keys descending), then the larger values.
                let head = self
                    .descending_from(from)
                    .rev()
                    .take_while(move |e| *e.value == *value)
                    .filter(member)
                    .map(|e| e.id);
                // The least string above `value`: every larger value is at least this.
                let above = OrderKey::bound(&format!("{value}\0"), "", 0);
                let larger = self
                    .set
                    .range((Bound::Included(above), Bound::Unbounded))
                    .filter(member);
                Box::new(head.chain(ReverseRuns::new(larger)))
            }
        }
    }
}

/// Yields the ids of sorted entries with each run of equal values reversed: the entries of a
/// descending walk, whose ties still go by ascending ref key.
struct ReverseRuns<'a, I: Iterator<Item = &'a OrderKey>> {
    inner: Peekable<I>,
    run: Vec<u32>,
}

impl<'a, I: Iterator<Item = &'a OrderKey>> ReverseRuns<'a, I> {
    fn new(inner: I) -> Self {
        Self {
            inner: inner.peekable(),
            run: Vec::new(),
        }
    }
}

impl<'a, I: Iterator<Item = &'a OrderKey>> Iterator for ReverseRuns<'a, I> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if let Some(id) = self.run.pop() {
            return Some(id);
        }
        let first = self.inner.next()?;
        self.run.push(first.id);
        while let Some(next) = self.inner.next_if(|e| e.value == first.value) {
            self.run.push(next.id);
        }
        self.run.pop()
    }
}

/// The orders kept, by key id.
#[derive(Default)]
pub(super) struct Orders {
    by_key: HashMap<u32, Order>,
    clock: AtomicU64,
}

impl Orders {
    pub(super) fn get(&self, key: u32) -> Option<&Order> {
        let order = self.by_key.get(&key)?;
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        order.used.store(now, Ordering::Relaxed);
        Some(order)
    }

    /// Keeps a new order, dropping the least recently used when there are too many.
    pub(super) fn keep(&mut self, key: u32, order: Order) {
        if self.by_key.contains_key(&key) {
            return;
        }
        if self.by_key.len() >= MAX_ORDERS
            && let Some(oldest) = self
                .by_key
                .iter()
                .min_by_key(|(_, o)| o.used.load(Ordering::Relaxed))
                .map(|(&k, _)| k)
        {
            self.by_key.remove(&oldest);
        }
        order.used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        self.by_key.insert(key, order);
    }

    pub(super) fn has(&self, key: u32) -> bool {
        self.by_key.contains_key(&key)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_key.len()
    }

    #[cfg(test)]
    pub(super) fn order(&self, key: u32) -> Option<&Order> {
        self.by_key.get(&key)
    }

    /// Takes a slot out of every order; call it while the slot's terms are still posted.
    pub(super) fn remove_slot(&mut self, id: u32, slot: &Slot, terms: &Terms) {
        for (&key, order) in &mut self.by_key {
            if let Some(value) = slot.sort_value(terms, key) {
                order.remove(&OrderKey {
                    value: Arc::clone(value),
                    key: Arc::clone(&slot.key),
                    id,
                });
            }
        }
    }

    /// Puts a slot into every order; call it once its terms are posted.
    pub(super) fn insert_slot(&mut self, id: u32, slot: &Slot, terms: &Terms) {
        for (&key, order) in &mut self.by_key {
            if let Some(value) = slot.sort_value(terms, key) {
                order.insert(OrderKey {
                    value: Arc::clone(value),
                    key: Arc::clone(&slot.key),
                    id,
                });
            }
        }
    }

    /// Moves a slot whose sort value for `key` changed from `old` to `new`.
    pub(super) fn moved(
        &mut self,
        key: u32,
        id: u32,
        slot_key: &Arc<str>,
        old: Option<Arc<str>>,
        new: Option<Arc<str>>,
    ) {
        let Some(order) = self.by_key.get_mut(&key) else {
            return;
        };
        if old == new {
            return;
        }
        if let Some(value) = old {
            order.remove(&OrderKey {
                value,
                key: Arc::clone(slot_key),
                id,
            });
        }
        if let Some(value) = new {
            order.insert(OrderKey {
                value,
                key: Arc::clone(slot_key),
                id,
            });
        }
    }
}
