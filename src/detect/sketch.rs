//! Fixed-size sketches that keep per-key detection state bounded whatever the traffic.
//!
//! Owns [`Hll`] (a 64-register `HyperLogLog` for distinct ports, hosts or reflectors) and
//! [`KeyTable`] (a set-associative table of per-key accumulators with a hard capacity),
//! plus the fixed hash they share. The heavy-hitter list the rules keep per key,
//! [`TopK`], is the crate's shared space-saving structure (`crate::space_saving`),
//! re-exported here beside the other sketches.
//!
//! Does not own: what is counted (the rules in `super::rules`) or when it is reset.
//!
//! # Invariants
//! - Every structure is allocated once, at construction; inserting never allocates.
//! - A key new to a full [`KeyTable`] bucket takes the place of the bucket's lightest
//!   entry (by the accumulator's [`Weight`]) only with probability (w + 1) / (m + 1),
//!   where w is its own weight (0 for a key seen first now) and m the lightest's: one
//!   at least as heavy always gets in, a light one pays about one try per unit of the
//!   weight it would throw out. So a stream of one-packet spoofed keys needs about m + 1
//!   packets to push out an entry of weight m, and a heavy key (a real scanner, a flooded
//!   victim) survives millions of them. The draw is keyed by the key's (secret) hash and
//!   a per-table counter: reproducible under a fixed hash key, unpredictable otherwise.
//!   Evicted entries and turned-away keys are both counted (the table was full).
//! - Every hash of a key or an item is keyed by the process's one hash key
//!   ([`hash_key`]): the daemon draws it from the operating system at start
//!   ([`set_hash_key`] with [`random_hash_key`]), so an attacker cannot aim spoofed keys
//!   at a real scanner's bucket or pick ports that an HLL undercounts; `replay` keeps
//!   [`FIXED_HASH_KEY`] unless told otherwise, so a replay gives the same estimates every
//!   run. The key is set once, before any table is filled, and never changes: workers'
//!   partial tables carry their keys' hashes to the evaluator, so all must agree.
//!
//! Why a process-wide static and not a value handed to every rule: the key must be the
//! same for every worker, the evaluator and every rule set a reload builds, for the life
//! of the process; a set-once static guarantees exactly that, reading it is one atomic
//! load, and no rule can be built with a different one by mistake.

use std::net::IpAddr;
use std::sync::OnceLock;

use crate::space_saving::{Count, Lookup};

/// Registers of an [`Hll`]: 2^6, a standard error of about 13 %, in 64 bytes.
const HLL_BITS: u32 = 6;
const HLL_REGISTERS: usize = 1 << HLL_BITS;

/// Entries per [`KeyTable`] bucket.
const WAYS: usize = 4;

/// `1 / 2^min(r, 31)` for every register value `r`: [`Hll::estimate`] adds these exact
/// powers of two instead of dividing per register (same terms, same order, same sum).
const INVERSE_POWERS: [f64; 256] = {
    let mut t = [0.0; 256];
    let mut r = 0;
    while r < 256 {
        let e: u64 = if r < 31 { r as u64 } else { 31 };
        // 2^-e built from its exponent bits: exact, and `e` ≤ 31 keeps it normal.
        #[allow(clippy::indexing_slicing)]
        {
            t[r] = f64::from_bits((1023 - e) << 52);
        }
        r += 1;
    }
    t
};

/// The hash key of a process that was given none: the public one `replay` uses by
/// default, so its output stays byte-identical from run to run.
pub const FIXED_HASH_KEY: u64 = 0;

/// The process's hash key once set.
static HASH_KEY: OnceLock<u64> = OnceLock::new();

/// The process's hash key was set already, to a different value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the detection hash key is already set")]
pub struct HashKeyAlreadySet;

/// Sets the process's hash key. Call once, before any detection table exists; setting
/// the same value again is harmless.
///
/// # Errors
/// The key was already set to another value (tables filled since would disagree).
pub fn set_hash_key(key: u64) -> Result<(), HashKeyAlreadySet> {
    if *HASH_KEY.get_or_init(|| key) == key {
        Ok(())
    } else {
        Err(HashKeyAlreadySet)
    }
}

/// The process's hash key: the one set, else [`FIXED_HASH_KEY`].
#[inline]
pub fn hash_key() -> u64 {
    HASH_KEY.get().copied().unwrap_or(FIXED_HASH_KEY)
}

/// A hash key nobody can predict: from the operating system's randomness (through the
/// standard library's per-process hasher keys, see [`crate::rng::Rng::from_entropy`]).
/// Never [`FIXED_HASH_KEY`].
pub fn random_hash_key() -> u64 {
    let mut rng = crate::rng::Rng::from_entropy();
    loop {
        let key = rng.next_u64();
        if key != FIXED_HASH_KEY {
            return key;
        }
    }
}

/// Finalizer of splitmix64: a fast, well-mixing 64-bit permutation (unkeyed: hash
/// attacker-chosen values with [`hash64`] or [`hash128`]).
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// An address as 128 bits (IPv4 as its IPv4-mapped IPv6 form), for hashing and sketches.
#[inline]
pub fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Keyed hash of a 64-bit value (a port, a service), under the process's key.
#[inline]
pub fn hash64(v: u64) -> u64 {
    hash64_keyed(v, hash_key())
}

/// Keyed hash of a 64-bit value under `key`.
#[inline]
pub fn hash64_keyed(v: u64, key: u64) -> u64 {
    mix64(v ^ key)
}

/// Keyed hash of a 128-bit value (an address), under the process's key.
#[inline]
pub fn hash128(v: u128) -> u64 {
    hash128_keyed(v, hash_key())
}

/// Keyed hash of a 128-bit value under `key`.
#[inline]
pub fn hash128_keyed(v: u128, key: u64) -> u64 {
    // Splitting into halves is the point: both feed the mix.
    #[allow(clippy::cast_possible_truncation)]
    let (lo, hi) = (v as u64, (v >> 64) as u64);
    mix64(mix64(lo ^ 0x9e37_79b9_7f4a_7c15 ^ key) ^ hi)
}

/// A `HyperLogLog` distinct counter with 64 registers.
///
/// Aligned to a cache line, so that starting one afresh for a new key ([`Reset`]) or
/// counting an item into it touches one line, not the two a misaligned one straddles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(align(64))]
pub struct Hll {
    registers: [u8; HLL_REGISTERS],
}

impl Default for Hll {
    fn default() -> Hll {
        Hll {
            registers: [0; HLL_REGISTERS],
        }
    }
}

impl Hll {
    /// Adds an item by its 64-bit hash.
    #[inline]
    pub fn insert(&mut self, hash: u64) {
        // The top bits choose the register (always < 64), the rest give the rank.
        let index = usize::try_from(hash >> (64 - HLL_BITS)).unwrap_or(0);
        let rest = hash << HLL_BITS;
        let rank = u8::try_from(rest.leading_zeros().min(64 - HLL_BITS) + 1).unwrap_or(u8::MAX);
        if let Some(r) = self.registers.get_mut(index) {
            *r = (*r).max(rank);
        }
    }

    /// Takes in every item `other` has seen: the union of the two sets.
    pub fn merge(&mut self, other: &Hll) {
        for (r, o) in self.registers.iter_mut().zip(other.registers) {
            *r = (*r).max(o);
        }
    }

    /// Estimated number of distinct items (linear counting for small sets, which is
    /// nearly exact up to a few dozen items).
    pub fn estimate(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let m = HLL_REGISTERS as f64;
        let mut sum = 0.0;
        let mut zeros = 0u32;
        for &r in &self.registers {
            sum += INVERSE_POWERS.get(usize::from(r)).copied().unwrap_or(0.0);
            zeros += u32::from(r == 0);
        }
        let raw = 0.709 * m * m / sum;
        if raw <= 2.5 * m && zeros > 0 {
            m * (m / f64::from(zeros)).ln()
        } else {
            raw
        }
    }
}

/// The space-saving list of the few heaviest items (sources, ports) a rule keeps per key;
/// shared with telemetry's top talkers.
pub use crate::space_saving::TopK;

/// How much an accumulator is worth keeping when its bucket is full.
pub trait Weight {
    /// Larger is kept longer.
    fn weight(&self) -> u64;
}

/// Accumulators a [`KeyTable`] starts afresh, in place, for a key new to a slot.
///
/// Assigning `V::default()` instead built the whole accumulator (hundreds of bytes) on
/// the stack and copied it over the slot: a read and a write of every cache line of an
/// accumulator that is usually cold, for each new key. A reset writes only what a fresh
/// accumulator's readers look at: counters, registers, and the lengths of its lists
/// (a [`TopK`] never reads past its length, so the old items may stay).
pub trait Reset {
    /// Makes this accumulator count as one that has seen nothing: every reading of it
    /// and every update after it is as for `Default::default()`.
    fn reset(&mut self);
}

impl Reset for Hll {
    #[inline]
    fn reset(&mut self) {
        self.registers.fill(0);
    }
}

impl<T: Copy + Ord, const N: usize, C: Count, L: Lookup<T>> Reset for TopK<T, N, C, L> {
    #[inline]
    fn reset(&mut self) {
        self.clear();
    }
}

/// Accumulators that several workers fill apart and one evaluator sums.
pub trait Merge {
    /// Adds what `other` counted, as if its packets had been counted here.
    fn merge(&mut self, other: &Self);
}

/// A bounded map from a key to an accumulator, `WAYS`-way set-associative.
///
/// Each bucket keeps a tag of each slot's key hash and each slot's weight together in one
/// cache line (a `Bucket`); keys and accumulators sit in two arrays beside it. A lookup
/// reads the bucket's line and, only where a tag matches, that slot's key; an insertion
/// into a full bucket finds the lightest slot in the same line. So a key the table does
/// not hold costs one line, not the two or three of a bucket's keys (an address pair is
/// 34 bytes), and neither drags the accumulators (hundreds of bytes each) through the
/// cache: only the one accumulator found is touched. Each weight is the accumulator's
/// [`Weight`] as of its last change, kept current by [`Slot`].
pub struct KeyTable<K, V> {
    /// `None` exactly where the bucket's tag is 0.
    keys: Vec<Option<K>>,
    buckets: Vec<Bucket>,
    values: Vec<V>,
    evictions: u64,
    /// Occupied slots (slots fill and empty only through `entry` and `clear`).
    tracked: usize,
    /// A worker's partial table (see [`KeyTable::make_partial`]).
    partial: bool,
    /// A partial table's hash of each slot's key, for the merge (empty otherwise).
    hashes: Vec<u64>,
    /// Draws made for keys new to a full bucket (see [`KeyTable::admits`]).
    draws: u64,
}

/// The slots of one [`KeyTable`] bucket as a lookup sees them, in one cache line.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Bucket {
    /// [`tag`] of each slot's key hash; 0 for a free slot.
    tags: [u32; WAYS],
    /// Each slot's weight.
    weights: [u64; WAYS],
}

/// Every slot's weight, in slot order.
fn weights_mut(buckets: &mut [Bucket]) -> impl Iterator<Item = &mut u64> {
    buckets.iter_mut().flat_map(|b| b.weights.iter_mut())
}

/// The tag of a key hash: its upper half (the bucket comes from the lower bits), never 0.
#[inline]
fn tag(hash: u64) -> u32 {
    u32::try_from(hash >> 32).unwrap_or(u32::MAX) | 1
}

/// One tracked key's accumulator, borrowed from a [`KeyTable`]. Dropping it stores the
/// accumulator's new weight in the table.
pub struct Slot<'a, V: Weight> {
    value: &'a mut V,
    weight: &'a mut u64,
}

impl<V: Weight> std::ops::Deref for Slot<'_, V> {
    type Target = V;
    fn deref(&self) -> &V {
        self.value
    }
}

impl<V: Weight> std::ops::DerefMut for Slot<'_, V> {
    fn deref_mut(&mut self) -> &mut V {
        self.value
    }
}

impl<V: Weight> Drop for Slot<'_, V> {
    #[inline]
    fn drop(&mut self) {
        *self.weight = self.value.weight();
    }
}

impl<K: Copy + Eq, V: Default + Weight + Reset> KeyTable<K, V> {
    /// A table of about `max_keys` entries (rounded up to a power of two, at least 4).
    pub fn new(max_keys: usize) -> KeyTable<K, V> {
        let capacity = max_keys.max(WAYS).next_power_of_two();
        let mut values = Vec::with_capacity(capacity);
        values.resize_with(capacity, V::default);
        KeyTable {
            keys: vec![None; capacity],
            buckets: vec![Bucket::default(); capacity / WAYS],
            values,
            evictions: 0,
            tracked: 0,
            partial: false,
            hashes: Vec::new(),
            draws: 0,
        }
    }

    /// Makes this a table of a worker's partial counts, to be merged into an evaluator's
    /// with [`KeyTable::merge_from`]: its [`KeyTable::get_mut`] inserts too, since the
    /// key may be tracked by the evaluator even though this slice of packets has not
    /// inserted it (an answer to a probe counted in an earlier second, say). Such an
    /// entry weighs nothing: it is the first to go from a full bucket, and the merge
    /// adds it only to a key the evaluator tracks.
    pub fn make_partial(&mut self) {
        self.partial = true;
        self.hashes = vec![0; self.keys.len()];
    }

    /// Index of `hash`'s bucket.
    #[inline]
    fn bucket_of(&self, hash: u64) -> usize {
        // The bucket count is a power of two, so the mask keeps the bucket inside.
        usize::try_from(hash).unwrap_or(0) & (self.buckets.len() - 1)
    }

    /// Index of the slot of `key` (hashed to `hash`), if tracked.
    #[inline]
    fn find(&self, key: K, hash: u64) -> Option<usize> {
        let b = self.bucket_of(hash);
        let bucket = self.buckets.get(b)?;
        let t = tag(hash);
        // The tags that match, as bits: one compare of the four tags, then the keys of the
        // matching slots only (almost always none or one).
        let mut matches = bucket
            .tags
            .iter()
            .enumerate()
            .fold(0u32, |m, (w, &slot_tag)| m | u32::from(slot_tag == t) << w);
        while matches != 0 {
            let i = b * WAYS + matches.trailing_zeros() as usize;
            if self.keys.get(i).is_some_and(|k| *k == Some(key)) {
                return Some(i);
            }
            matches &= matches - 1;
        }
        None
    }

    /// The borrowed accumulator of slot `i`.
    fn slot(&mut self, i: usize) -> Option<Slot<'_, V>> {
        Some(Slot {
            value: self.values.get_mut(i)?,
            weight: self.buckets.get_mut(i / WAYS)?.weights.get_mut(i % WAYS)?,
        })
    }

    /// The accumulator of `key` (hashed to `hash`), inserted if absent. In a full bucket
    /// the new key takes the lightest entry's place only if [`KeyTable::admits`] it;
    /// `None` when it does not (or the table has no slots at all).
    // Always inlined: each rule's `observe` inserts through it, and as a call of its own
    // (which LLVM chose once the partial tables' hash store was added) it cost ~3 % of a
    // replay's instructions.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub fn entry(&mut self, key: K, hash: u64) -> Option<Slot<'_, V>> {
        self.entry_weighing(key, hash, 0)
    }

    /// [`KeyTable::entry`] for a key that arrives with `weight` already, in the units of
    /// the accumulators' [`Weight`]: a worker's partial count being merged, or the bytes
    /// of the packet that brings it to a byte-weighted table (so one large packet weighs
    /// against the lightest entry's bytes as one packet does against its packets).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub fn entry_weighing(&mut self, key: K, hash: u64, weight: u64) -> Option<Slot<'_, V>> {
        if let Some(i) = self.find(key, hash) {
            return self.slot(i);
        }
        let b = self.bucket_of(hash);
        let bucket = self.buckets.get(b)?;
        let w = if let Some(free) = bucket.tags.iter().position(|&t| t == 0) {
            self.tracked += 1;
            free
        } else {
            self.evictions += 1;
            let (w, &lightest) = bucket.weights.iter().enumerate().min_by_key(|&(_, w)| *w)?;
            if !self.admits(hash, weight, lightest) {
                return None;
            }
            w
        };
        *self.buckets.get_mut(b)?.tags.get_mut(w)? = tag(hash);
        let i = b * WAYS + w;
        *self.keys.get_mut(i)? = Some(key);
        if let Some(h) = self.hashes.get_mut(i) {
            *h = hash;
        }
        self.values.get_mut(i)?.reset();
        self.slot(i)
    }

    /// Whether a key of `weight`, hashed to `hash`, new to a full bucket whose lightest
    /// entry weighs `lightest`, takes that entry's place: always when it is at least as
    /// heavy, else with probability (weight + 1) / (lightest + 1). The draw mixes the
    /// key's hash (secret when the process's hash key is) with a count of draws, so one
    /// key that keeps coming gets a fresh chance each time.
    fn admits(&mut self, hash: u64, weight: u64, lightest: u64) -> bool {
        if weight >= lightest {
            return true;
        }
        self.draws = self.draws.wrapping_add(1);
        let roll = mix64(hash ^ self.draws.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        roll % lightest.saturating_add(1) <= weight
    }

    /// The accumulator of `key`, if tracked, to read.
    pub fn get(&self, key: K, hash: u64) -> Option<&V> {
        let i = self.find(key, hash)?;
        self.values.get(i)
    }

    /// The accumulator of `key`, if tracked (never inserts, but in a
    /// [`KeyTable::make_partial`] table, where it is [`KeyTable::entry`]).
    #[inline]
    pub fn get_mut(&mut self, key: K, hash: u64) -> Option<Slot<'_, V>> {
        if self.partial {
            return self.partial_entry(key, hash);
        }
        let i = self.find(key, hash)?;
        self.slot(i)
    }

    /// [`KeyTable::entry`] for [`KeyTable::get_mut`] on a partial table: a call of its
    /// own, so that `entry` stays inlined where rules insert.
    #[inline(never)]
    fn partial_entry(&mut self, key: K, hash: u64) -> Option<Slot<'_, V>> {
        self.entry(key, hash)
    }

    /// Every tracked key and accumulator.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.keys
            .iter()
            .zip(&self.values)
            .filter_map(|(k, v)| Some((k.as_ref()?, v)))
    }

    /// Every tracked key and accumulator, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, Slot<'_, V>)> {
        self.keys
            .iter()
            .zip(self.values.iter_mut().zip(weights_mut(&mut self.buckets)))
            .filter_map(|(k, (value, weight))| Some((k.as_ref()?, Slot { value, weight })))
    }

    /// Keys tracked now.
    pub fn tracked(&self) -> usize {
        self.tracked
    }

    /// Entries given up for a new key, and new keys turned away, since the last
    /// [`KeyTable::take_evictions`]: each a packet whose key the full table could not keep.
    pub fn take_evictions(&mut self) -> u64 {
        std::mem::take(&mut self.evictions)
    }

    /// Adds every entry of `other` (a worker's [`KeyTable::make_partial`] table) into this
    /// table, then empties `other`. An entry that weighs nothing (answers, completions)
    /// only adds to a key tracked here, as [`KeyTable::get_mut`] would have; `other`'s
    /// evictions become this table's. Only a partial table knows its keys' hashes, so
    /// `other` must be one.
    pub fn merge_from(&mut self, other: &mut KeyTable<K, V>)
    where
        V: Merge,
    {
        let entries = other.keys.iter().zip(&other.values);
        let weights = other.buckets.iter().flat_map(|b| b.weights);
        for ((key, value), (weight, &hash)) in entries.zip(weights.zip(&other.hashes)) {
            let Some(key) = *key else { continue };
            let slot = if weight == 0 {
                self.get_mut(key, hash)
            } else {
                self.entry_weighing(key, hash, weight)
            };
            if let Some(mut slot) = slot {
                slot.merge(value);
            }
        }
        self.evictions += other.take_evictions();
        other.clear();
    }

    /// Forgets every key (the slab stays allocated).
    pub fn clear(&mut self) {
        self.keys.fill(None);
        for b in &mut self.buckets {
            b.tags = [0; WAYS];
        }
        self.tracked = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Count(u64);
    impl Weight for Count {
        fn weight(&self) -> u64 {
            self.0
        }
    }
    impl Merge for Count {
        fn merge(&mut self, other: &Count) {
            self.0 += other.0;
        }
    }
    impl Reset for Count {
        fn reset(&mut self) {
            self.0 = 0;
        }
    }

    #[test]
    fn hll_is_close_for_small_and_large_sets() {
        for n in [1u64, 10, 50, 1000, 100_000] {
            let mut h = Hll::default();
            for i in 0..n {
                h.insert(mix64(i));
            }
            #[allow(clippy::cast_precision_loss)]
            let err = (h.estimate() - n as f64).abs() / n as f64;
            assert!(err < 0.35, "n={n} estimate={}", h.estimate());
        }
        assert!(Hll::default().estimate() < 0.5);
    }

    #[test]
    fn hll_estimate_matches_the_per_register_division() {
        for seed in 0..200u64 {
            let mut h = Hll::default();
            for i in 0..seed * 7 {
                h.insert(mix64(seed << 32 | i));
            }
            let (mut sum, mut zeros) = (0.0, 0u32);
            for &r in &h.registers {
                sum += 1.0 / f64::from(1u32 << r.min(31));
                zeros += u32::from(r == 0);
            }
            let raw = 0.709 * 64.0 * 64.0 / sum;
            let want = if raw <= 2.5 * 64.0 && zeros > 0 {
                64.0 * (64.0 / f64::from(zeros)).ln()
            } else {
                raw
            };
            assert_eq!(h.estimate().to_bits(), want.to_bits(), "seed {seed}");
        }
    }

    #[test]
    fn key_table_evicts_by_the_weight_left_by_the_last_change() {
        // Capacity 4 is a single bucket, so every key competes for the same slots.
        let mut t: KeyTable<u64, Count> = KeyTable::new(4);
        for k in 0..4u64 {
            t.entry(k, k).unwrap().0 = 10 + k;
        }
        for (k, mut c) in t.iter_mut() {
            if *k == 3 {
                c.0 = 0;
            }
        }
        t.entry(99, 99).unwrap().0 = 1;
        assert!(
            t.get_mut(3, 3).is_none(),
            "the entry lightened through iter_mut goes"
        );
        assert!((0..3).all(|k| t.get_mut(k, k).is_some_and(|c| c.0 == 10 + k)));
        t.get_mut(0, 0).unwrap().0 = 0;
        t.entry(100, 100);
        assert!(
            t.get_mut(0, 0).is_none(),
            "the entry lightened through get_mut goes"
        );
        assert_eq!(t.take_evictions(), 2);
    }

    #[test]
    fn keys_with_the_same_hash_are_told_apart_by_the_key() {
        // Same hash, so the same bucket and the same tag: only the key tells them apart.
        let mut t: KeyTable<u64, Count> = KeyTable::new(64);
        let hash = 0xdead_beef_0000_0001;
        t.entry(1, hash).unwrap().0 = 10;
        t.entry(2, hash).unwrap().0 = 20;
        assert_eq!(t.get(1, hash).map(|c| c.0), Some(10));
        assert_eq!(t.get(2, hash).map(|c| c.0), Some(20));
        assert!(t.get(3, hash).is_none());
        assert!(
            t.get(1, hash ^ 1 << 40).is_none(),
            "another tag is another key"
        );
        assert_eq!(t.tracked(), 2);
        t.clear();
        assert!(t.get(1, hash).is_none() && t.iter().next().is_none());
        t.entry(3, hash).unwrap().0 = 5;
        assert_eq!(
            t.iter().map(|(k, c)| (*k, c.0)).collect::<Vec<_>>(),
            [(3, 5)]
        );
    }

    /// An accumulator with the parts a rule's has: a counter, a heavy-hitter list and
    /// distinct-count registers.
    #[derive(Default)]
    struct Sketched {
        packets: u64,
        top: TopK<u128, 4>,
        distinct: Hll,
    }
    impl Weight for Sketched {
        fn weight(&self) -> u64 {
            self.packets
        }
    }
    impl Reset for Sketched {
        fn reset(&mut self) {
            self.packets = 0;
            self.top.reset();
            self.distinct.reset();
        }
    }

    #[test]
    fn a_key_that_takes_over_a_slot_starts_from_nothing() {
        // One bucket: the fifth key must take a slot that held another key's counts.
        let mut t: KeyTable<u64, Sketched> = KeyTable::new(4);
        for k in 0..4u64 {
            let mut acc = t.entry(k, k).unwrap();
            for i in 0..u128::from(k + 1) * 7 {
                acc.packets += 1;
                acc.top.add(i % 5, 1);
                acc.distinct.insert(mix64(u64::try_from(i).unwrap()));
            }
        }
        // Key 0 is the lightest (7 packets); one of 8 packets outweighs it.
        let mut acc = t.entry_weighing(99, 99, 8).unwrap();
        assert_eq!(acc.packets, 0);
        assert!(acc.top.sorted().is_empty());
        assert!(acc.distinct.estimate() < 0.5);
        acc.packets += 1;
        acc.top.add(42, 1);
        drop(acc);
        assert!(t.get(0, 0).is_none(), "the lightest key made room");
        let acc = t.get(99, 99).unwrap();
        assert_eq!((acc.packets, acc.top.sorted()), (1, vec![(42, 1)]));
    }

    #[test]
    fn key_table_is_bounded_and_keeps_heavy_keys() {
        let mut t: KeyTable<u64, Count> = KeyTable::new(64);
        for round in 0..100u64 {
            t.entry(1, mix64(1)).unwrap().0 += 1000;
            for k in 0..1000u64 {
                let key = 10 + round * 1000 + k;
                if let Some(mut c) = t.entry(key, mix64(key)) {
                    c.0 += 1;
                }
            }
        }
        assert!(t.tracked() <= 64);
        assert!(t.get_mut(1, mix64(1)).is_some_and(|c| c.0 == 100_000));
        assert!(t.take_evictions() > 0);
        t.clear();
        assert_eq!(t.tracked(), 0);
    }

    #[derive(Default)]
    struct Answered {
        probes: u64,
        answers: u64,
    }
    impl Weight for Answered {
        fn weight(&self) -> u64 {
            self.probes
        }
    }
    impl Merge for Answered {
        fn merge(&mut self, other: &Answered) {
            self.probes += other.probes;
            self.answers += other.answers;
        }
    }
    impl Reset for Answered {
        fn reset(&mut self) {
            *self = Answered::default();
        }
    }

    #[test]
    fn merging_a_partial_table_adds_its_counts_and_empties_it() {
        let mut whole: KeyTable<u64, Answered> = KeyTable::new(64);
        let mut partial: KeyTable<u64, Answered> = KeyTable::new(16);
        partial.make_partial();
        whole.entry(1, mix64(1)).unwrap().probes = 5;
        partial.entry(1, mix64(1)).unwrap().probes = 3;
        partial.entry(2, mix64(2)).unwrap().probes = 7;
        // In a partial table a lookup inserts: the answer counts for a key that only the
        // whole table has seen probed, and an answer alone weighs nothing.
        partial.get_mut(1, mix64(1)).unwrap().answers += 1;
        partial.get_mut(3, mix64(3)).unwrap().answers += 1;
        whole.merge_from(&mut partial);
        let get = |t: &mut KeyTable<u64, Answered>, k: u64| {
            t.get_mut(k, mix64(k)).map(|a| (a.probes, a.answers))
        };
        assert_eq!(get(&mut whole, 1), Some((8, 1)));
        assert_eq!(get(&mut whole, 2), Some((7, 0)));
        assert_eq!(
            get(&mut whole, 3),
            None,
            "an answer to a key never probed does not insert it"
        );
        assert_eq!(partial.tracked(), 0, "the partial is emptied for reuse");
        assert_eq!(
            get(&mut partial, 2),
            Some((0, 0)),
            "emptied, not merged twice"
        );
    }

    #[test]
    fn a_partial_tables_evictions_are_counted_by_the_table_it_merges_into() {
        let mut whole: KeyTable<u64, Count> = KeyTable::new(64);
        let mut partial: KeyTable<u64, Count> = KeyTable::new(4);
        partial.make_partial();
        for k in 0..6u64 {
            if let Some(mut c) = partial.entry(k, k) {
                c.0 = 1 + k;
            }
        }
        whole.merge_from(&mut partial);
        assert_eq!(whole.take_evictions(), 2);
        assert_eq!(whole.tracked(), 4, "a full bucket keeps four keys");
    }

    /// Four keys of `weight` filling the single bucket of a 4-slot table.
    fn full_bucket(weight: u64) -> KeyTable<u64, Count> {
        let mut t: KeyTable<u64, Count> = KeyTable::new(4);
        for k in 0..4u64 {
            t.entry(k, mix64(k)).unwrap().0 = weight;
        }
        t
    }

    #[test]
    fn one_packet_keys_aimed_at_a_bucket_do_not_push_out_heavy_keys() {
        // Spoofed keys an attacker aimed at the bucket of four real, heavy keys.
        let mut t = full_bucket(1_000);
        let mut admitted = 0;
        for spoofed in 100..200u64 {
            if let Some(mut c) = t.entry(spoofed, mix64(spoofed)) {
                c.0 += 1;
                admitted += 1;
            }
        }
        let kept = (0..4u64)
            .filter(|&k| t.get_mut(k, mix64(k)).is_some())
            .count();
        assert_eq!(kept, 4, "{admitted} spoofed keys got in");
        assert_eq!(t.take_evictions(), 100, "each turned-away key is counted");
    }

    #[test]
    fn a_light_key_that_keeps_coming_gets_in_after_about_the_lightest_weight_tries() {
        let mut t = full_bucket(3);
        let tries = (1..=200)
            .find(|_| t.entry(99, mix64(99)).is_some())
            .unwrap();
        assert!(tries <= 40, "admitted after {tries} tries");
        // Once in, it is tracked like any other key.
        assert!(t.get_mut(99, mix64(99)).is_some());
        assert_eq!(t.tracked(), 4);
    }

    #[test]
    fn a_merged_key_at_least_as_heavy_as_the_lightest_always_gets_in() {
        let mut whole = full_bucket(5);
        let mut partial: KeyTable<u64, Count> = KeyTable::new(4);
        partial.make_partial();
        partial.entry(42, mix64(42)).unwrap().0 = 5;
        whole.merge_from(&mut partial);
        assert!(whole.get_mut(42, mix64(42)).is_some_and(|c| c.0 == 5));
        assert_eq!(whole.take_evictions(), 1);
    }

    #[test]
    fn the_fixed_hash_key_hashes_as_the_unkeyed_functions_always_did() {
        // Replay's output depends on these values: pinned to the formula before keying.
        for v in [0u128, 1, 0xffff_0a00_0001, u128::MAX] {
            #[allow(clippy::cast_possible_truncation)]
            let (lo, hi) = (v as u64, (v >> 64) as u64);
            let before = mix64(mix64(lo ^ 0x9e37_79b9_7f4a_7c15) ^ hi);
            assert_eq!(hash128_keyed(v, FIXED_HASH_KEY), before);
        }
        for port in [0u64, 22, 443, 65_535] {
            assert_eq!(hash64_keyed(port, FIXED_HASH_KEY), mix64(port));
        }
    }

    #[test]
    fn keys_that_share_a_bucket_under_one_hash_key_spread_under_another() {
        // An attacker who knows the key picks addresses landing in one bucket of a
        // 4,096-slot table (1,024 buckets); under a key they do not know, they spread.
        let bucket = |key: u64, a: u128| hash128_keyed(a, key) & 1023;
        let target = bucket(FIXED_HASH_KEY, 1);
        let aimed: Vec<u128> = (2..)
            .filter(|&a| bucket(FIXED_HASH_KEY, a) == target)
            .take(16)
            .collect();
        let secret = random_hash_key();
        assert_ne!(secret, FIXED_HASH_KEY);
        let still = aimed
            .iter()
            .filter(|&&a| bucket(secret, a) == bucket(secret, 1))
            .count();
        assert!(still <= 2, "{still} of 16 still share the bucket");
        assert_ne!(random_hash_key(), secret, "every draw differs");
    }

    #[test]
    fn merged_hyperloglogs_count_the_union() {
        let (mut a, mut b, mut both) = (Hll::default(), Hll::default(), Hll::default());
        for i in 0..3000u64 {
            let h = mix64(i);
            if i % 2 == 0 {
                a.insert(h);
            } else {
                b.insert(h);
            }
            both.insert(h);
        }
        a.merge(&b);
        assert_eq!(a, both);
    }
}
