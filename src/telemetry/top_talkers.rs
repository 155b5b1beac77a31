//! Top talkers: the heaviest sources and destinations by bytes, in bounded memory.
//!
//! Each worker keeps a [`TopTalkers`] space-saving sketch (Metwally et al., 2005) per role:
//! a fixed number of counters, so a spoofed-source flood of millions of addresses costs
//! nothing extra; any address sending more than 1/capacity of the bytes is guaranteed to
//! be kept. At the end of each packet-time window the worker publishes its top entries to
//! the shared [`TopTalkerBoard`] (one short lock per window, never per packet) and starts
//! afresh. The board is a Prometheus collector: at scrape time it merges the workers'
//! latest windows and exports the top N per role as `…_per_second` gauges labelled by
//! address, the one deliberate exception to "no raw IPs in labels", bounded by N.

use std::net::IpAddr;
use std::sync::Mutex;

use hashbrown::HashMap;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, Opts};

/// One address and its traffic in a window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Talker {
    /// The address.
    pub addr: IpAddr,
    /// Bytes (an over-estimate by at most the sketch's error bound).
    pub bytes: u64,
    /// Packets.
    pub packets: u64,
}

/// An address's merged rate over the workers' latest windows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// The address.
    pub addr: IpAddr,
    /// Bytes per second.
    pub bytes_per_sec: f64,
    /// Packets per second.
    pub packets_per_sec: f64,
}

/// A space-saving heavy-hitter sketch over addresses, weighted by bytes.
///
/// Entries stay where they were inserted; `heap` orders their indices as a binary
/// min-heap by bytes (with `slot` giving each entry's place in it), so finding the entry a
/// new address replaces, and restoring order after a count grows, costs O(log capacity)
/// instead of a scan of every entry.
#[derive(Clone, Debug)]
pub struct TopTalkers {
    capacity: usize,
    entries: Vec<Talker>,
    index: HashMap<IpAddr, u32>,
    /// Entry indices, a min-heap by `entries[i].bytes`.
    heap: Vec<u32>,
    /// `slot[i]` is the position of entry `i` in `heap`.
    slot: Vec<u32>,
}

impl TopTalkers {
    /// A sketch with `capacity` counters (at least 1). Allocates everything up front.
    pub fn new(capacity: usize) -> TopTalkers {
        // Indices are u32; no deployment asks for billions of counters.
        let capacity = capacity.clamp(1, u32::MAX as usize);
        TopTalkers {
            capacity,
            entries: Vec::with_capacity(capacity),
            index: HashMap::with_capacity(capacity),
            heap: Vec::with_capacity(capacity),
            slot: Vec::with_capacity(capacity),
        }
    }

    /// Adds `packets` packets totalling `bytes` from/to `addr`.
    #[inline]
    pub fn add(&mut self, addr: IpAddr, bytes: u64, packets: u64) {
        if let Some(&i) = self.index.get(&addr) {
            if let Some(e) = self.entries.get_mut(i as usize) {
                e.bytes = e.bytes.saturating_add(bytes);
                e.packets = e.packets.saturating_add(packets);
            }
            self.sift_down(self.position(i));
            return;
        }
        if self.entries.len() < self.capacity {
            // INVARIANT: len < capacity <= u32::MAX.
            #[allow(clippy::cast_possible_truncation)]
            let i = self.entries.len() as u32;
            self.entries.push(Talker {
                addr,
                bytes,
                packets,
            });
            self.index.insert(addr, i);
            self.slot.push(i);
            self.heap.push(i);
            self.sift_up(i as usize);
            return;
        }
        // Full: the new address takes over the smallest counter, inheriting its count as
        // the over-estimate bound (the space-saving replacement rule).
        let Some(&min) = self.heap.first() else {
            return;
        };
        if let Some(e) = self.entries.get_mut(min as usize) {
            self.index.remove(&e.addr);
            *e = Talker {
                addr,
                bytes: e.bytes.saturating_add(bytes),
                packets: e.packets.saturating_add(packets),
            };
            self.index.insert(addr, min);
        }
        self.sift_down(0);
    }

    /// Bytes of the entry at heap position `at` (0 past the end, never reached).
    fn bytes_at(&self, at: usize) -> u64 {
        self.heap
            .get(at)
            .and_then(|&i| self.entries.get(i as usize))
            .map_or(0, |e| e.bytes)
    }

    /// Heap position of entry `i`.
    fn position(&self, i: u32) -> usize {
        self.slot.get(i as usize).map_or(0, |&p| p as usize)
    }

    /// Swaps heap positions `a` and `b`, keeping `slot` in step.
    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        for at in [a, b] {
            if let Some(&i) = self.heap.get(at)
                && let Some(s) = self.slot.get_mut(i as usize)
            {
                // INVARIANT: heap positions are < capacity <= u32::MAX.
                #[allow(clippy::cast_possible_truncation)]
                let at = at as u32;
                *s = at;
            }
        }
    }

    /// Moves the entry at heap position `at` up past parents with more bytes.
    fn sift_up(&mut self, mut at: usize) {
        while at > 0 {
            let parent = (at - 1) / 2;
            if self.bytes_at(parent) <= self.bytes_at(at) {
                break;
            }
            self.swap(at, parent);
            at = parent;
        }
    }

    /// Moves the entry at heap position `at` down past children with fewer bytes.
    fn sift_down(&mut self, mut at: usize) {
        let len = self.heap.len();
        loop {
            let (left, right) = (2 * at + 1, 2 * at + 2);
            let mut least = at;
            if left < len && self.bytes_at(left) < self.bytes_at(least) {
                least = left;
            }
            if right < len && self.bytes_at(right) < self.bytes_at(least) {
                least = right;
            }
            if least == at {
                break;
            }
            self.swap(at, least);
            at = least;
        }
    }

    /// The `n` heaviest entries, heaviest first.
    pub fn top(&self, n: usize) -> Vec<Talker> {
        let mut v = self.entries.clone();
        v.sort_unstable_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.addr.cmp(&b.addr)));
        v.truncate(n);
        v
    }

    /// Forgets everything, keeping the allocations.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.index.clear();
        self.heap.clear();
        self.slot.clear();
    }
}

/// One worker's latest window.
#[derive(Clone, Debug, Default)]
struct Window {
    sources: Vec<Talker>,
    destinations: Vec<Talker>,
    seconds: f64,
}

/// Where workers publish their windows and Prometheus reads the merged top N.
pub struct TopTalkerBoard {
    n: usize,
    windows: Mutex<Vec<Window>>,
    bytes: GaugeVec,
    packets: GaugeVec,
}

impl TopTalkerBoard {
    /// A board exporting the top `n` per role.
    ///
    /// # Errors
    /// Only on an invalid metric definition.
    pub fn new(n: usize) -> prometheus::Result<TopTalkerBoard> {
        let labels = ["address", "role"];
        Ok(TopTalkerBoard {
            n,
            windows: Mutex::new(Vec::new()),
            bytes: GaugeVec::new(
                Opts::new(
                    "netwarden_top_talker_bytes_per_second",
                    "Heaviest addresses by bytes over the last top-talker window (role=source|destination); only the top N are exported.",
                ),
                &labels,
            )?,
            packets: GaugeVec::new(
                Opts::new(
                    "netwarden_top_talker_packets_per_second",
                    "Packet rate of the addresses in netwarden_top_talker_bytes_per_second.",
                ),
                &labels,
            )?,
        })
    }

    /// How many talkers per role are exported.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Publishes worker `worker`'s finished window of `seconds`.
    pub fn publish(
        &self,
        worker: usize,
        sources: &TopTalkers,
        destinations: &TopTalkers,
        seconds: f64,
    ) {
        let window = Window {
            sources: sources.top(self.n),
            destinations: destinations.top(self.n),
            seconds,
        };
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() <= worker {
            windows.resize_with(worker + 1, Window::default);
        }
        if let Some(slot) = windows.get_mut(worker) {
            *slot = window;
        }
    }

    /// The merged top N per role: (sources, destinations).
    pub fn merged(&self) -> (Vec<Rate>, Vec<Rate>) {
        let windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let merge = |pick: fn(&Window) -> &Vec<Talker>| {
            let mut sum: HashMap<IpAddr, Rate> = HashMap::new();
            for w in windows.iter().filter(|w| w.seconds > 0.0) {
                for t in pick(w) {
                    let e = sum.entry(t.addr).or_insert(Rate {
                        addr: t.addr,
                        bytes_per_sec: 0.0,
                        packets_per_sec: 0.0,
                    });
                    #[allow(clippy::cast_precision_loss)]
                    {
                        e.bytes_per_sec += t.bytes as f64 / w.seconds;
                        e.packets_per_sec += t.packets as f64 / w.seconds;
                    }
                }
            }
            let mut v: Vec<Rate> = sum.into_values().collect();
            v.sort_by(|a, b| {
                b.bytes_per_sec
                    .total_cmp(&a.bytes_per_sec)
                    .then_with(|| a.addr.cmp(&b.addr))
            });
            v.truncate(self.n);
            v
        };
        (merge(|w| &w.sources), merge(|w| &w.destinations))
    }

    fn refresh(&self) {
        let (sources, destinations) = self.merged();
        self.bytes.reset();
        self.packets.reset();
        for (role, list) in [("source", sources), ("destination", destinations)] {
            for rate in list {
                let addr = rate.addr.to_string();
                let labels = [addr.as_str(), role];
                self.bytes
                    .with_label_values(&labels)
                    .set(rate.bytes_per_sec);
                self.packets
                    .with_label_values(&labels)
                    .set(rate.packets_per_sec);
            }
        }
    }
}

impl Collector for TopTalkerBoard {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = self.bytes.desc();
        d.extend(self.packets.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        let mut families = self.bytes.collect();
        families.extend(self.packets.collect());
        families
    }
}

/// Registers a shared board: the registry owns this handle, workers keep theirs.
pub(super) struct SharedBoard(pub(super) std::sync::Arc<TopTalkerBoard>);

impl Collector for SharedBoard {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.0.collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prop_assert;

    use super::*;

    fn ip(i: u32) -> IpAddr {
        IpAddr::V4(i.into())
    }

    #[test]
    fn heavy_hitters_survive_a_flood_of_distinct_addresses() {
        let mut s = TopTalkers::new(16);
        for i in 0..200_000u32 {
            s.add(ip(0x0a00_0000 + i), 60, 1);
            if i % 4 == 0 {
                s.add(ip(1), 1500, 1);
            }
            if i % 10 == 0 {
                s.add(ip(2), 1500, 1);
            }
        }
        let top = s.top(2);
        assert_eq!(top[0].addr, ip(1));
        assert_eq!(top[1].addr, ip(2));
        assert!(top[0].bytes >= 50_000 * 1500, "never under-estimates");
        assert!(s.index.len() <= 16 && s.entries.len() <= 16);
    }

    /// Checks the heap order and its `slot` map, and the space-saving guarantees.
    fn holds_space_saving_invariants(s: &TopTalkers, total: u64, truth: &HashMap<IpAddr, u64>) {
        for (at, &i) in s.heap.iter().enumerate().skip(1) {
            let parent = s.heap[(at - 1) / 2] as usize;
            assert!(s.entries[parent].bytes <= s.entries[i as usize].bytes);
            assert_eq!(s.slot[i as usize] as usize, at);
        }
        // Space-saving keeps the total, never under-estimates a kept address, and keeps
        // every address heavier than total / capacity.
        assert_eq!(s.entries.iter().map(|e| e.bytes).sum::<u64>(), total);
        for e in &s.entries {
            assert!(e.bytes >= truth[&e.addr]);
        }
        let bound = total / s.capacity as u64;
        for (addr, &bytes) in truth {
            if bytes > bound {
                assert!(s.index.contains_key(addr), "{addr} with {bytes} > {bound}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn the_heap_keeps_space_saving_exact_on_arbitrary_streams(
            capacity in 1usize..12,
            stream in proptest::collection::vec((0u32..40, 1u64..2000), 0..400),
        ) {
            let mut s = TopTalkers::new(capacity);
            let mut truth: HashMap<IpAddr, u64> = HashMap::new();
            let mut total = 0;
            for (i, (addr, bytes)) in stream.into_iter().enumerate() {
                s.add(ip(addr), bytes, 1);
                *truth.entry(ip(addr)).or_default() += bytes;
                total += bytes;
                if i % 50 == 0 {
                    holds_space_saving_invariants(&s, total, &truth);
                }
            }
            holds_space_saving_invariants(&s, total, &truth);
            s.clear();
            prop_assert!(s.heap.is_empty() && s.slot.is_empty() && s.top(1).is_empty());
        }
    }

    #[test]
    fn exact_when_under_capacity() {
        let mut s = TopTalkers::new(8);
        for (i, n) in [(1, 5u64), (2, 3), (3, 9)] {
            for _ in 0..n {
                s.add(ip(i), 100, 1);
            }
        }
        let top = s.top(8);
        assert_eq!(
            top.iter()
                .map(|t| (t.addr, t.bytes, t.packets))
                .collect::<Vec<_>>(),
            vec![(ip(3), 900, 9), (ip(1), 500, 5), (ip(2), 300, 3)]
        );
    }

    #[test]
    fn board_merges_workers_and_exports_only_n() {
        let board = TopTalkerBoard::new(2).unwrap();
        let mut a = TopTalkers::new(8);
        let mut b = TopTalkers::new(8);
        a.add(ip(1), 1000, 1);
        a.add(ip(2), 500, 1);
        b.add(ip(2), 800, 1);
        b.add(ip(3), 100, 1);
        board.publish(0, &a, &b, 10.0);
        board.publish(1, &b, &a, 10.0);
        let (src, _) = board.merged();
        assert_eq!(src.len(), 2);
        assert_eq!(src[0].addr, ip(2));
        assert!(
            (src[0].bytes_per_sec - 130.0).abs() < 1e-9,
            "500+800 bytes over 10 s"
        );
        let families = board.collect();
        assert_eq!(families[0].get_metric().len(), 4, "2 per role");
    }
}
