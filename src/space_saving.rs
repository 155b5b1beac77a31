//! Space-saving top-K (Metwally, Agrawal and El Abbadi, 2005): the heaviest items of an
//! unbounded stream, in a fixed number of counters.
//!
//! Owns [`TopK`], the crate's one heavy-hitter structure, and the two ways it finds slots
//! ([`Lookup`]): detection rules keep a few slots per tracked key (the sources of a flood,
//! the ports of a scan: `N` of 4 or 8), where a [`Scan`] of the items and of the counts is
//! fastest; the pipeline's top-talker sketch keeps dozens to hundreds, found through an
//! [`Indexed`] hash map and min-heap. Does not own: what is counted, when a window starts
//! afresh, or what the top items become (alert contributors, metric labels).
//!
//! # Invariants
//! - Memory is fixed at construction: the slots are inline arrays of `N` (all used by a
//!   [`Scan`], the first `capacity` by an [`Indexed`] lookup); [`TopK::add`] never
//!   allocates ([`Indexed`] is sized for its capacity up front and never holds more).
//! - The replacement rule, the same whatever the lookup: an item not yet counted, with
//!   every slot taken, takes over the slot with the lowest count (the lowest slot among
//!   equal counts) and inherits that count. So counts never under-estimate, they sum to
//!   everything added, any item heavier than `total / capacity` is held, and the items
//!   kept depend only on the stream: a replay always keeps the same ones.
//! - Each slot also keeps its error bound: the weight it inherited when its item took
//!   it over (0 for a slot filled while free). `count - error` is a guaranteed lower
//!   bound of the item's true weight ([`TopK::guaranteed`]), which is what evidence
//!   shown to people must use: on a stream of one-off items (spoofed sources) every
//!   count is almost all inherited error, and the guaranteed count is about 1.

use std::hash::Hash;

use hashbrown::HashMap;

/// What a [`TopK`] slot counts: a weight that orders slots, plus anything carried along
/// and inherited with it.
pub trait Count: Copy + Default {
    /// What orders the slots: the lightest slot is the one replaced.
    fn weight(&self) -> u64;
    /// Adds `other` (saturating).
    fn add(&mut self, other: Self);
}

impl Count for u64 {
    #[inline]
    fn weight(&self) -> u64 {
        *self
    }

    #[inline]
    fn add(&mut self, other: u64) {
        *self = self.saturating_add(other);
    }
}

/// How a [`TopK`] finds the slot of an item and the slot to replace, and how many of its
/// `N` slots it uses. `items` and `counts` are the slots in use.
pub trait Lookup<T> {
    /// How many of `slots` to use.
    fn capacity(&self, slots: usize) -> usize;
    /// The slot holding `item`.
    fn find(&self, items: &[T], item: &T) -> Option<usize>;
    /// The slot with the lowest count, the lowest slot among equal counts.
    fn lightest<C: Count>(&self, counts: &[C]) -> usize;
    /// `item` now sits in `slot` (the last slot in use, or in place of `replaced`).
    fn placed<C: Count>(&mut self, item: T, slot: usize, replaced: Option<T>, counts: &[C]);
    /// The count of `slot` grew.
    fn grew<C: Count>(&mut self, slot: usize, counts: &[C]);
    /// Every slot is free again.
    fn clear(&mut self);
}

/// Compares the item with each slot, and each count for the lightest: for a handful of
/// narrow slots the fastest way, and nothing to store or keep in order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scan;

impl<T: PartialEq> Lookup<T> for Scan {
    #[inline]
    fn capacity(&self, slots: usize) -> usize {
        slots
    }

    #[inline]
    fn find(&self, items: &[T], item: &T) -> Option<usize> {
        items.iter().position(|i| i == item)
    }

    #[inline]
    fn lightest<C: Count>(&self, counts: &[C]) -> usize {
        // `min_by_key` returns the first of equal minima.
        counts
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| c.weight())
            .map_or(0, |(slot, _)| slot)
    }

    #[inline]
    fn placed<C: Count>(&mut self, _: T, _: usize, _: Option<T>, _: &[C]) {}

    #[inline]
    fn grew<C: Count>(&mut self, _: usize, _: &[C]) {}

    fn clear(&mut self) {}
}

/// Finds an item through a hash map from item to slot, and the lightest slot as the root
/// of a binary min-heap of the slots by (count, slot): O(1) and O(log capacity) where a
/// scan of dozens of slots would cost more. Build it with [`Indexed::with_capacity`] so
/// that it never allocates later.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Indexed<T: Eq + Hash> {
    capacity: usize,
    slots: HashMap<T, u16>,
    /// Slots in use, a binary min-heap by (count weight, slot).
    heap: Vec<u16>,
    /// `place[s]` is the position of slot `s` in `heap`.
    place: Vec<u16>,
}

impl<T: Eq + Hash> Indexed<T> {
    /// An index of `capacity` slots (at least 1; a list uses no more than it has).
    pub fn with_capacity(capacity: usize) -> Indexed<T> {
        let capacity = capacity.clamp(1, usize::from(u16::MAX));
        Indexed {
            capacity,
            slots: HashMap::with_capacity(capacity),
            heap: Vec::with_capacity(capacity),
            place: Vec::with_capacity(capacity),
        }
    }

    /// Orders `(count weight, slot)` pairs: the lesser is replaced first.
    #[inline]
    fn key<C: Count>(counts: &[C], slot: u16) -> (u64, u16) {
        let weight = counts.get(usize::from(slot)).map_or(0, Count::weight);
        (weight, slot)
    }

    /// Puts `slot` at heap position `at`.
    #[inline]
    fn set(&mut self, at: usize, slot: u16) {
        if let (Some(h), Some(p)) = (self.heap.get_mut(at), self.place.get_mut(usize::from(slot))) {
            *h = slot;
            // INVARIANT: heap positions are below the capacity, at most u16::MAX.
            #[allow(clippy::cast_possible_truncation)]
            let at = at as u16;
            *p = at;
        }
    }

    /// Moves the slot at heap position `at` up past parents that order after it.
    fn sift_up<C: Count>(&mut self, mut at: usize, counts: &[C]) {
        let Some(&slot) = self.heap.get(at) else {
            return;
        };
        let key = Self::key(counts, slot);
        while at > 0 {
            let parent = (at - 1) / 2;
            let Some(&above) = self.heap.get(parent) else {
                break;
            };
            if Self::key(counts, above) <= key {
                break;
            }
            self.set(at, above);
            at = parent;
        }
        self.set(at, slot);
    }

    /// Moves the slot at heap position `at` down past children that order before it.
    fn sift_down<C: Count>(&mut self, mut at: usize, counts: &[C]) {
        let Some(&slot) = self.heap.get(at) else {
            return;
        };
        let key = Self::key(counts, slot);
        loop {
            let left = 2 * at + 1;
            let Some(&l) = self.heap.get(left) else {
                break;
            };
            let (mut child, mut child_key) = (left, Self::key(counts, l));
            if let Some(&r) = self.heap.get(left + 1) {
                let right_key = Self::key(counts, r);
                if right_key < child_key {
                    (child, child_key) = (left + 1, right_key);
                }
            }
            if key <= child_key {
                break;
            }
            self.set(at, child_key.1);
            at = child;
        }
        self.set(at, slot);
    }
}

impl<T: Copy + Eq + Hash> Lookup<T> for Indexed<T> {
    #[inline]
    fn capacity(&self, slots: usize) -> usize {
        self.capacity.min(slots)
    }

    #[inline]
    fn find(&self, _: &[T], item: &T) -> Option<usize> {
        self.slots.get(item).map(|&slot| usize::from(slot))
    }

    #[inline]
    fn lightest<C: Count>(&self, _: &[C]) -> usize {
        self.heap.first().map_or(0, |&slot| usize::from(slot))
    }

    #[inline]
    fn placed<C: Count>(&mut self, item: T, slot: usize, replaced: Option<T>, counts: &[C]) {
        // INVARIANT: slots are below the capacity, at most u16::MAX.
        #[allow(clippy::cast_possible_truncation)]
        let slot16 = slot as u16;
        if let Some(old) = replaced {
            self.slots.remove(&old);
            self.slots.insert(item, slot16);
            self.grew(slot, counts);
        } else {
            self.slots.insert(item, slot16);
            let at = self.heap.len();
            self.heap.push(slot16);
            self.place.push(0);
            self.sift_up(at, counts);
        }
    }

    #[inline]
    fn grew<C: Count>(&mut self, slot: usize, counts: &[C]) {
        let at = self.place.get(slot).map_or(0, |&p| usize::from(p));
        self.sift_down(at, counts);
    }

    fn clear(&mut self) {
        self.slots.clear();
        self.heap.clear();
        self.place.clear();
    }
}

/// The heaviest items seen, in at most `N` counters (see the module invariants).
///
/// Items and counts are separate arrays, and `T` is as narrow as the item (an address is
/// a `u128`, a port a `u16` or `u32`): a [`Scan`] reads only the items, and the counts
/// only when it must replace one, which keeps the lines touched per update few. The
/// length comes first and the fields stay in this order (`repr(C)`), so the length and
/// the first items share a cache line: a list new to a detection key (one or two items)
/// is read and written in three lines or fewer, not four.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct TopK<T, const N: usize, C = u64, L = Scan> {
    len: u16,
    items: [T; N],
    counts: [C; N],
    /// Weight inherited by each slot's item when it took the slot over.
    errors: [u64; N],
    lookup: L,
}

impl<T: Copy + Default, const N: usize, C: Count, L: Default> Default for TopK<T, N, C, L> {
    // Inlined, so that a detection rule resetting a key's accumulator in place (all of
    // whose lists start from zeros) writes zeros there rather than copying a temporary.
    #[inline]
    fn default() -> TopK<T, N, C, L> {
        TopK {
            items: [T::default(); N],
            counts: [C::default(); N],
            errors: [0; N],
            len: 0,
            lookup: L::default(),
        }
    }
}

impl<T: Copy + Default, const N: usize, C: Count, L> TopK<T, N, C, L> {
    /// An empty list that finds slots with `lookup` (and uses as many as it says).
    #[inline]
    pub fn with_lookup(lookup: L) -> TopK<T, N, C, L> {
        const { assert!(N > 0 && N <= u16::MAX as usize, "1 to 65535 slots") };
        TopK {
            items: [T::default(); N],
            counts: [C::default(); N],
            errors: [0; N],
            len: 0,
            lookup,
        }
    }
}

impl<T: Copy + Ord, const N: usize, C: Count, L: Lookup<T>> TopK<T, N, C, L> {
    /// Counts `count` for `item`.
    // Always inlined: detection calls it several times per packet from one large match
    // over the rules, and as a call it cost more than its few instructions of work.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub fn add(&mut self, item: T, count: C) {
        let len = usize::from(self.len);
        let used = self.items.get(..len).unwrap_or_default();
        if let Some(slot) = self.lookup.find(used, &item) {
            if let Some(c) = self.counts.get_mut(slot) {
                c.add(count);
            }
            let counts = self.counts.get(..len).unwrap_or_default();
            self.lookup.grew(slot, counts);
            return;
        }
        let capacity = self.lookup.capacity(N);
        let (slot, replaced) = if len < capacity {
            self.len += 1;
            (len, None)
        } else {
            // Full, so `len == capacity`; for a scan that is `N`, known when compiling.
            let counts = self.counts.get(..capacity).unwrap_or_default();
            let slot = self.lookup.lightest(counts);
            (slot, self.items.get(slot).copied())
        };
        if let (Some(i), Some(c), Some(e)) = (
            self.items.get_mut(slot),
            self.counts.get_mut(slot),
            self.errors.get_mut(slot),
        ) {
            *i = item;
            // A new slot starts from nothing; a replaced one keeps its count, all of which
            // may belong to the items it held before: that is the new item's error.
            if replaced.is_none() {
                *c = C::default();
            }
            *e = c.weight();
            c.add(count);
        }
        let counts = self.counts.get(..usize::from(self.len)).unwrap_or_default();
        self.lookup.placed(item, slot, replaced, counts);
    }

    /// Items with their counts, heaviest first (equal counts by item).
    pub fn sorted(&self) -> Vec<(T, C)> {
        let mut v: Vec<(T, C)> = self
            .items
            .iter()
            .copied()
            .zip(self.counts)
            .take(usize::from(self.len))
            .collect();
        v.sort_by(|a, b| b.1.weight().cmp(&a.1.weight()).then(a.0.cmp(&b.0)));
        v
    }

    /// Items with their guaranteed weight (count minus error bound: the item's true
    /// weight is at least this), heaviest guaranteed first (equal ones by item).
    pub fn guaranteed(&self) -> Vec<(T, u64)> {
        let mut v: Vec<(T, u64)> = self
            .items
            .iter()
            .zip(self.counts.iter().zip(self.errors))
            .take(usize::from(self.len))
            .map(|(&item, (c, e))| (item, c.weight().saturating_sub(e)))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    /// Adds every item of `other` with its count and error bound, as if its items had
    /// been counted here: how partial lists from several workers become one. Guaranteed
    /// counts stay lower bounds of the items' true totals.
    pub fn merge(&mut self, other: &TopK<T, N, C, L>) {
        let len = usize::from(other.len);
        let listed = other.items.iter().zip(&other.counts).zip(&other.errors);
        for ((&item, &count), &error) in listed.take(len) {
            self.add(item, count);
            let used = self.items.get(..usize::from(self.len)).unwrap_or_default();
            let slot = self.lookup.find(used, &item);
            if let Some(e) = slot.and_then(|slot| self.errors.get_mut(slot)) {
                *e = e.saturating_add(error);
            }
        }
    }

    /// Forgets every item (nothing is freed or allocated).
    pub fn clear(&mut self) {
        self.len = 0;
        self.lookup.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap as StdMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn merged_lists_count_every_item_of_both() {
        let (mut a, mut b) = (TopK::<u32, 4>::default(), TopK::<u32, 4>::default());
        a.add(1, 10);
        a.add(2, 5);
        b.add(2, 7);
        b.add(3, 1);
        a.merge(&b);
        assert_eq!(a.sorted(), vec![(2, 12), (1, 10), (3, 1)]);
    }

    #[test]
    fn full_list_replaces_its_first_lightest_item() {
        let mut t = TopK::<u128, 3>::default();
        t.add(1, 5);
        t.add(2, 2);
        t.add(3, 2);
        t.add(4, 1);
        let items: Vec<u128> = t.sorted().iter().map(|&(i, _)| i).collect();
        assert_eq!(items, vec![1, 4, 3]);
        assert_eq!(t.sorted()[1].1, 3);
    }

    #[test]
    fn heavy_item_survives_churn() {
        let mut t = TopK::<u128, 4>::default();
        for i in 0..10_000u128 {
            t.add(i + 100, 1);
            t.add(7, 3);
        }
        assert_eq!(t.sorted()[0].0, 7);
        assert!(t.sorted()[0].1 >= 30_000);
    }

    #[test]
    fn exact_under_capacity_and_empty_after_clear() {
        let mut t = TopK::<u16, 8, u64, Indexed<u16>>::with_lookup(Indexed::with_capacity(8));
        for (item, n) in [(1u16, 5u64), (2, 3), (3, 9)] {
            for _ in 0..n {
                t.add(item, 100);
            }
        }
        assert_eq!(t.sorted(), vec![(3, 900), (1, 500), (2, 300)]);
        t.clear();
        assert!(t.sorted().is_empty());
        t.add(4, 1);
        assert_eq!(t.sorted(), vec![(4, 1)]);
    }

    #[test]
    fn guaranteed_counts_drop_inherited_error() {
        // One packet per source, as in a spoofed flood: counts grow, guarantees do not.
        let mut t = TopK::<u128, 4>::default();
        for i in 0..1000u128 {
            t.add(i, 1);
        }
        assert!(t.sorted().iter().all(|&(_, c)| c >= 250));
        assert!(t.guaranteed().iter().all(|&(_, g)| g == 1));
        // A real heavy source keeps (nearly) all of its weight as guaranteed.
        let mut t = TopK::<u128, 4>::default();
        for i in 0..1000u128 {
            t.add(i + 10, 1);
            t.add(7, 2);
        }
        let (item, g) = t.guaranteed()[0];
        assert_eq!(item, 7);
        assert!(g >= 1990, "{g}");
    }

    /// The same rule as [`TopK`], written as plainly as possible: scan for the item, else
    /// take a free slot, else replace the first slot with the lowest count.
    fn naive(slots: &mut Vec<(u32, u64)>, capacity: usize, item: u32, count: u64) {
        if let Some(s) = slots.iter_mut().find(|s| s.0 == item) {
            s.1 += count;
        } else if slots.len() < capacity {
            slots.push((item, count));
        } else if let Some(s) = slots.iter_mut().min_by_key(|s| s.1) {
            *s = (item, s.1 + count);
        }
    }

    /// `stream` through a scanned list of `N` slots and an indexed one of `N` in 16.
    fn both<const N: usize>(stream: &[(u32, u64)]) -> [Vec<(u32, u64)>; 2] {
        let mut scanned = TopK::<u32, N>::default();
        let mut indexed =
            TopK::<u32, 16, u64, Indexed<u32>>::with_lookup(Indexed::with_capacity(N));
        for &(item, count) in stream {
            scanned.add(item, count);
            indexed.add(item, count);
            let (heap, place) = (&indexed.lookup.heap, &indexed.lookup.place);
            for (at, &slot) in heap.iter().enumerate() {
                assert_eq!(usize::from(place[usize::from(slot)]), at);
                if at > 0 {
                    let key = |s| Indexed::<u32>::key(&indexed.counts, s);
                    assert!(key(heap[(at - 1) / 2]) < key(slot), "heap order");
                }
            }
        }
        [scanned.sorted(), indexed.sorted()]
    }

    proptest! {
        #[test]
        fn a_cleared_list_counts_as_a_new_one(
            before in prop::collection::vec((0u32..40, 1u64..2000), 0..100),
            after in prop::collection::vec((0u32..40, 1u64..2000), 0..100),
        ) {
            let mut reused = TopK::<u32, 5>::default();
            for &(item, count) in &before {
                reused.add(item, count);
            }
            reused.clear();
            let mut fresh = TopK::<u32, 5>::default();
            for &(item, count) in &after {
                reused.add(item, count);
                fresh.add(item, count);
            }
            prop_assert_eq!(reused.sorted(), fresh.sorted());
            prop_assert_eq!(reused.guaranteed(), fresh.guaranteed());
        }

        #[test]
        fn guaranteed_counts_never_over_estimate(
            stream in prop::collection::vec((0u32..40, 1u64..2000), 0..400),
        ) {
            let mut truth: StdMap<u32, u64> = StdMap::new();
            let mut list = TopK::<u32, 5>::default();
            for &(item, count) in &stream {
                *truth.entry(item).or_default() += count;
                list.add(item, count);
            }
            for (item, g) in list.guaranteed() {
                prop_assert!(g <= truth[&item], "{} > {}", g, truth[&item]);
            }
        }

        #[test]
        fn both_lookups_follow_the_plain_rule_and_keep_space_saving_bounds(
            stream in prop::collection::vec((0u32..40, 1u64..2000), 0..400),
        ) {
            let mut truth: StdMap<u32, u64> = StdMap::new();
            for &(item, count) in &stream {
                *truth.entry(item).or_default() += count;
            }
            let total: u64 = truth.values().sum();
            for (capacity, lists) in [(1, both::<1>(&stream)), (3, both::<3>(&stream)), (12, both::<12>(&stream))] {
                let mut plain = Vec::new();
                for &(item, count) in &stream {
                    naive(&mut plain, capacity, item, count);
                }
                plain.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                prop_assert_eq!(&lists[0], &plain);
                prop_assert_eq!(&lists[1], &plain);
                prop_assert_eq!(plain.iter().map(|s| s.1).sum::<u64>(), total);
                for (item, count) in &plain {
                    prop_assert!(*count >= truth[item], "never under-estimates");
                }
                let bound = total / capacity as u64;
                for (item, &count) in &truth {
                    if count > bound {
                        prop_assert!(plain.iter().any(|s| s.0 == *item), "{} > {} kept", count, bound);
                    }
                }
            }
        }
    }
}
