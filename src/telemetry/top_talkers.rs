//! Top talkers: the heaviest sources and destinations by bytes, in bounded memory.
//!
//! Each worker keeps a [`TopTalkers`] sketch per role, the crate's space-saving
//! [`TopK`](crate::space_saving::TopK) over addresses: a fixed number of counters, so a spoofed-source flood of millions of addresses costs
//! nothing extra; any address sending more than 1/capacity of the bytes is guaranteed to
//! be kept. At the end of each packet-time window the worker publishes its top entries to
//! the shared [`TopTalkerBoard`] (one short lock per window, never per packet) and starts
//! afresh. The board is a Prometheus collector: at scrape time it merges the workers'
//! latest windows and exports the top N per role as `…_per_second` gauges labelled by
//! address, the one deliberate exception to "no raw IPs in labels", bounded by N.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

use hashbrown::HashMap;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, Opts};

use crate::space_saving::{Count, Indexed, TopK};

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

/// The most counters [`TopTalkers::new`] gives one sketch: four per exported talker at the
/// largest `metrics.top_talkers` the config accepts.
const MAX_SKETCH_SLOTS: usize = 4 * crate::config::limits::MAX_TOP_TALKERS;

/// An address as a sketch item (unused slots hold the unspecified IPv4 address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Addr(IpAddr);

impl Default for Addr {
    fn default() -> Addr {
        Addr(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }
}

/// Bytes (the weight that orders the sketch) and packets of one slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Traffic {
    bytes: u64,
    packets: u64,
}

impl Count for Traffic {
    #[inline]
    fn weight(&self) -> u64 {
        self.bytes
    }

    #[inline]
    fn add(&mut self, other: Traffic) {
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.packets = self.packets.saturating_add(other.packets);
    }
}

/// A space-saving heavy-hitter sketch over addresses, weighted by bytes: a [`TopK`] whose
/// slots are [`Indexed`] (a hash map and a min-heap), since it holds dozens to hundreds.
#[derive(Clone, Debug)]
pub struct TopTalkers(TopK<Addr, MAX_SKETCH_SLOTS, Traffic, Indexed<Addr>>);

impl TopTalkers {
    /// A sketch with `capacity` counters (at least 1, at most four per exported talker at
    /// the largest `metrics.top_talkers`). Allocates everything up front.
    pub fn new(capacity: usize) -> TopTalkers {
        let capacity = capacity.clamp(1, MAX_SKETCH_SLOTS);
        TopTalkers(TopK::with_lookup(Indexed::with_capacity(capacity)))
    }

    /// Adds `packets` packets totalling `bytes` from/to `addr`.
    // A call, not inlined: the pipeline samples one packet in eight, and the hash map and
    // heap inlined into `Pipeline::process` crowded the flow table's update out of it
    // (more instructions per packet for the whole loop).
    #[inline(never)]
    pub fn add(&mut self, addr: IpAddr, bytes: u64, packets: u64) {
        self.0.add(Addr(addr), Traffic { bytes, packets });
    }

    /// The `n` heaviest entries, heaviest first.
    pub fn top(&self, n: usize) -> Vec<Talker> {
        let mut v = self.0.sorted();
        v.truncate(n);
        v.into_iter()
            .map(|(Addr(addr), t)| Talker {
                addr,
                bytes: t.bytes,
                packets: t.packets,
            })
            .collect()
    }

    /// Forgets everything, keeping the allocations.
    pub fn clear(&mut self) {
        self.0.clear();
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
        assert_eq!(s.top(usize::MAX).len(), 16, "bounded by its capacity");
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
