//! Rendering: an entity's JSON with its relations, its own and the inverse of those other
//! entities declare toward it, sorted and without duplicates.
//!
//! The read model keeps each entity's JSON once, without relations; the relations are written
//! after it on every read (a few hundred nanoseconds for an entity with a handful). Only an
//! entity with many relations (a group owning hundreds of components) keeps its rendered JSON
//! until one of them changes.

use std::borrow::Cow;
use std::cmp::Ordering;

use bytes::Bytes;

use super::CatalogIndex;
use super::slot::Slot;
use crate::catalog::relations::RelationType;

/// An entity with more relations than this keeps its rendered JSON between reads.
pub(super) const KEEP_RENDERED_ABOVE: usize = 16;

/// One relation as listed: its type, its target's key (the order) and the target as written.
struct Listed<'a> {
    rel_type: RelationType,
    key: Cow<'a, str>,
    target: Target<'a>,
}

enum Target<'a> {
    /// A target as this entity's spec wrote it.
    Written(&'a str),
    /// The entity at the other end of a relation toward this one.
    Source(&'a Slot),
}

impl Target<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        // Writing a string to a Vec cannot fail.
        let _ = match self {
            Target::Written(s) => serde_json::to_writer(&mut *out, s),
            Target::Source(slot) => {
                serde_json::to_writer(&mut *out, &format_args!("{}", slot.view.entity_ref))
            }
        };
    }

    fn display(&self) -> Cow<'_, str> {
        match self {
            Target::Written(s) => Cow::Borrowed(s),
            Target::Source(slot) => Cow::Owned(slot.view.entity_ref.to_string()),
        }
    }
}

impl CatalogIndex {
    /// How many relations an entity lists (before duplicates are dropped).
    pub(super) fn relation_count(&self, slot: &Slot) -> usize {
        slot.emitted.len() + self.incoming.get(&*slot.key).map_or(0, Vec::len)
    }

    /// Appends the entity's JSON with its relations to `out`.
    pub(super) fn write_slot_json(&self, slot: &Slot, out: &mut Vec<u8>) {
        let mut listed: Vec<Listed<'_>> = Vec::with_capacity(self.relation_count(slot));
        for (rel_type, target) in slot.emitted.iter() {
            let key = if target.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(target.to_ascii_lowercase())
            } else {
                Cow::Borrowed(&**target)
            };
            listed.push(Listed {
                rel_type: *rel_type,
                key,
                target: Target::Written(target),
            });
        }
        for &(rel_type, src) in self.incoming.get(&*slot.key).into_iter().flatten() {
            if let Some(source) = self.slot(src) {
                listed.push(Listed {
                    rel_type: rel_type.inverse(),
                    key: Cow::Borrowed(&source.key),
                    target: Target::Source(source),
                });
            }
        }
        let order = |a: &Listed<'_>, b: &Listed<'_>| {
            a.rel_type
                .cmp(&b.rel_type)
                .then_with(|| a.key.cmp(&b.key))
                .then_with(|| match (&a.target, &b.target) {
                    (Target::Written(x), Target::Written(y)) => x.cmp(y),
                    _ => a.target.display().cmp(&b.target.display()),
                })
        };
        listed.sort_unstable_by(order);
        listed.dedup_by(|a, b| order(a, b) == Ordering::Equal);
        let base = &slot.base_json[..slot.base_json.len().saturating_sub(1)];
        out.reserve(base.len() + 64 * listed.len() + 16);
        out.extend_from_slice(base);
        out.extend_from_slice(b",\"relations\":[");
        for (i, relation) in listed.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"type\":\"");
            out.extend_from_slice(relation.rel_type.as_str().as_bytes());
            out.extend_from_slice(b"\",\"targetRef\":");
            relation.target.write(out);
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    }

    pub(super) fn render(&self, slot: &Slot) -> Bytes {
        let mut json = Vec::new();
        self.write_slot_json(slot, &mut json);
        Bytes::from(json.into_boxed_slice())
    }
}
