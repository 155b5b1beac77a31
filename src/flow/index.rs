//! The flow table's hash index: which slab entry holds the flow of a key hash.
//!
//! Owns [`FlowIndex`], an open-addressing table with linear probing over one array of
//! 8-byte slots. A slot holds the upper 32 bits of its key's hash (its home slot and a
//! tag) and the slab index plus one (0 is an empty slot). A lookup reads the slots from
//! the home slot on, usually within one cache line, and compares a slab entry's key only
//! where the tag matches; [`FlowIndex::prefetch`] starts loading that line before the
//! lookup, so the pipeline can overlap the miss with the packet's other work. Removal
//! shifts the slots that follow back (no tombstones), so probe lengths never degrade
//! with churn.
//!
//! Does not own: the keys (in the slab), hashing (the table's keyed hasher) or deciding
//! what is inserted or removed (`super::table`).
//!
//! # Invariants
//! - The slot count is a power of two, at least 4/3 of the flows it indexes, allocated
//!   once: the table is at most three quarters full, so every probe meets an empty slot.
//! - A key's slot is reached from its home slot without crossing an empty slot.

use crate::prefetch::prefetch;

/// An empty slot.
const EMPTY: u64 = 0;

/// Most slots: the upper half of a hash (32 bits) must be able to name every one.
const MAX_SLOTS: u64 = 1 << 32;

/// Slab indices by key hash (see the module doc).
pub(super) struct FlowIndex {
    slots: Vec<u64>,
    /// `slots.len() - 1`.
    mask: usize,
    len: usize,
}

/// The upper half of `hash`: the home slot (its low bits) and the tag.
#[allow(clippy::cast_possible_truncation)]
fn upper(hash: u64) -> u32 {
    (hash >> 32) as u32
}

/// The slot of slab index `entry` whose key hashes to `hash`.
fn pack(hash: u64, entry: u32) -> u64 {
    u64::from(upper(hash)) << 32 | (u64::from(entry) + 1)
}

/// The slab index a non-empty slot holds.
#[allow(clippy::cast_possible_truncation)]
fn entry_of(slot: u64) -> u32 {
    // A slot's low half is an index plus one (≤ u32::MAX), so this does not wrap.
    (slot as u32).wrapping_sub(1)
}

impl FlowIndex {
    /// An empty index for up to `flows` flows (a power of two of slots, at least 4/3 as
    /// many, and never more than 2^32 so that the upper half of a hash reaches them all).
    pub(super) fn with_capacity(flows: usize) -> FlowIndex {
        let slots = flows
            .saturating_add(flows.div_ceil(3))
            .max(8)
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX / 2 + 1)
            .min(usize::try_from(MAX_SLOTS).unwrap_or(usize::MAX / 2 + 1));
        FlowIndex {
            slots: vec![EMPTY; slots],
            mask: slots - 1,
            len: 0,
        }
    }

    /// The home slot of `hash`.
    fn home(&self, hash: u64) -> usize {
        usize::try_from(upper(hash)).unwrap_or(0) & self.mask
    }

    /// The home slot of the key a non-empty `slot` indexes.
    fn home_of_slot(&self, slot: u64) -> usize {
        usize::try_from(slot >> 32).unwrap_or(0) & self.mask
    }

    /// Starts loading the slots a lookup of `hash` reads first.
    #[inline]
    pub(super) fn prefetch(&self, hash: u64) {
        if let Some(slot) = self.slots.get(self.home(hash)) {
            prefetch(slot);
        }
    }

    /// The slab index of the key hashed to `hash` for which `is_key` holds, if indexed.
    #[inline]
    pub(super) fn find(&self, hash: u64, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let tag = upper(hash);
        let mut at = self.home(hash);
        for _ in 0..self.slots.len() {
            let slot = *self.slots.get(at)?;
            if slot == EMPTY {
                return None;
            }
            if upper(slot) == tag && is_key(entry_of(slot)) {
                return Some(entry_of(slot));
            }
            at = (at + 1) & self.mask;
        }
        None
    }

    /// Indexes slab entry `entry` under `hash`; the caller knows it is not indexed yet and
    /// that the index holds fewer flows than it was built for. Returns whether it was
    /// indexed (always, under that contract).
    pub(super) fn insert(&mut self, hash: u64, entry: u32) -> bool {
        let mut at = self.home(hash);
        for _ in 0..self.slots.len() {
            let Some(slot) = self.slots.get_mut(at) else {
                return false;
            };
            if *slot == EMPTY {
                *slot = pack(hash, entry);
                self.len += 1;
                return true;
            }
            at = (at + 1) & self.mask;
        }
        false
    }

    /// Forgets slab entry `entry`, indexed under `hash`; the slots after it that would
    /// no longer be reachable from their home slot move back into the gap.
    pub(super) fn remove(&mut self, hash: u64, entry: u32) {
        let Some(mut gap) = self.position(hash, entry) else {
            return;
        };
        let mut at = gap;
        for _ in 0..self.slots.len() {
            at = (at + 1) & self.mask;
            let slot = self.slots.get(at).copied().unwrap_or(EMPTY);
            if slot == EMPTY {
                break;
            }
            // The slot stays if its home lies cyclically in (gap, at]: a probe from
            // there reaches it without crossing the gap.
            let home = self.home_of_slot(slot);
            let stays = if gap <= at {
                gap < home && home <= at
            } else {
                gap < home || home <= at
            };
            if !stays {
                if let Some(h) = self.slots.get_mut(gap) {
                    *h = slot;
                }
                gap = at;
            }
        }
        if let Some(h) = self.slots.get_mut(gap) {
            *h = EMPTY;
            self.len -= 1;
        }
    }

    /// The slot holding slab entry `entry`, indexed under `hash`.
    fn position(&self, hash: u64, entry: u32) -> Option<usize> {
        let wanted = pack(hash, entry);
        let mut at = self.home(hash);
        for _ in 0..self.slots.len() {
            let slot = *self.slots.get(at)?;
            if slot == EMPTY {
                return None;
            }
            if slot == wanted {
                return Some(at);
            }
            at = (at + 1) & self.mask;
        }
        None
    }

    /// Forgets every flow (the slots stay allocated).
    pub(super) fn clear(&mut self) {
        self.slots.fill(EMPTY);
        self.len = 0;
    }

    /// Flows indexed.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes the index allocated.
    #[cfg(test)]
    pub(super) fn allocation_size(&self) -> usize {
        self.slots.capacity() * size_of::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    /// A hash whose home slot is `home` (in an index of at most 256 slots) and whose
    /// upper half differs from another's of the same home by `tag`.
    fn hash(home: u32, tag: u32) -> u64 {
        u64::from(tag << 8 | (home & 0xff)) << 32 | u64::from(home)
    }

    #[test]
    fn is_sized_for_three_quarters_load_at_most() {
        for (flows, slots) in [
            (0, 8),
            (1, 8),
            (6, 8),
            (7, 16),
            (1_000, 2_048),
            (262_144, 524_288),
        ] {
            let index = FlowIndex::with_capacity(flows);
            assert_eq!(index.slots.len(), slots, "{flows} flows");
            assert!(flows * 4 <= slots * 3, "{flows} flows");
        }
    }

    #[test]
    fn colliding_keys_are_found_and_removed_whatever_the_order() {
        // Eight slots; six keys, four of them at home slot 6, so they wrap to 0 and 1.
        let mut index = FlowIndex::with_capacity(6);
        let keys = [
            (hash(6, 1), 10),
            (hash(6, 2), 11),
            (hash(7, 3), 12),
            (hash(6, 4), 13),
            (hash(6, 5), 14),
            (hash(0, 6), 15),
        ];
        for &(h, e) in &keys {
            assert!(index.insert(h, e));
        }
        for &(h, e) in &keys {
            assert_eq!(index.find(h, |i| i == e), Some(e));
        }
        // Removing from the middle of the run moves the wrapped keys back.
        index.remove(keys[1].0, keys[1].1);
        index.remove(keys[2].0, keys[2].1);
        for &(h, e) in &[keys[0], keys[3], keys[4], keys[5]] {
            assert_eq!(index.find(h, |i| i == e), Some(e), "entry {e}");
        }
        assert_eq!(index.find(keys[1].0, |i| i == keys[1].1), None);
        assert_eq!(index.len(), 4);
    }

    #[test]
    fn a_tag_match_is_not_enough() {
        let mut index = FlowIndex::with_capacity(4);
        assert!(index.insert(hash(3, 9), 1));
        // Same hash, other key (the caller's comparison says no).
        assert_eq!(index.find(hash(3, 9), |_| false), None);
        assert_eq!(index.find(hash(3, 8), |_| true), None);
    }

    proptest! {
        /// Any sequence of inserts and removes under hashes crowded onto few home slots
        /// leaves the index agreeing with a map, with every key reachable.
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec((any::<bool>(), 0u32..48, 0u32..6, 0u32..4), 0..400)) {
            let capacity = 48;
            let mut index = FlowIndex::with_capacity(capacity);
            let mut model: HashMap<u32, u64> = HashMap::new();
            for (insert, entry, home, tag) in ops {
                let h = hash(home, tag);
                match (insert, model.get(&entry).copied()) {
                    (true, None) => {
                        prop_assert!(index.insert(h, entry));
                        model.insert(entry, h);
                    }
                    (false, Some(old)) => {
                        index.remove(old, entry);
                        model.remove(&entry);
                    }
                    _ => {}
                }
                prop_assert_eq!(index.len(), model.len());
            }
            for (&entry, &h) in &model {
                prop_assert_eq!(index.find(h, |i| i == entry), Some(entry));
            }
            for entry in 0..48u32 {
                if !model.contains_key(&entry) {
                    for home in 0..6 {
                        for tag in 0..4 {
                            prop_assert_eq!(index.find(hash(home, tag), |i| i == entry), None);
                        }
                    }
                }
            }
        }
    }
}
