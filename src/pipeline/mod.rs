//! The synchronous hot path: one frame in, counters and flow state updated.
//!
//! Owns [`Pipeline`], the per-worker state (flow table, local counters, top-talker
//! sketches, packet clock) and what happens to each frame: decode, classify by protected
//! network and protocol, count, update the flow table, and on packet-clock ticks expire
//! flows and close top-talker windows. [`worker`] drives a pipeline from a capture source.
//! A pipeline given a [`Detection`] ([`Pipeline::set_detector`]: a detector, its alert
//! output and metrics) hands it a [`PacketView`] of every packet and evaluates its rules
//! on each packet-clock tick.
//!
//! Nothing here allocates, locks or makes a syscall per packet; shared state is touched
//! only in [`Pipeline::flush`] (once per batch) and when a top-talker window closes.

mod counters;
mod detection;
mod evaluator;
mod fanout;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use counters::{LocalCounters, end_slot, traffic_slot};
pub use detection::Detection;
pub use evaluator::{Collector, Evaluator, share};
pub use fanout::Fanout;

use crate::capture::Frame;
use crate::decode::{Decoded, Network, TcpFlags, Transport, decode_frame_into, ip_protocol};
use crate::detect::PacketView;
use crate::flow::{
    EndReason, FlowKey, FlowRecord, FlowTable, FlowTableConfig, FlowUpdate, Located, Side,
};
use crate::networks::{Direction, NetworkSet, Placement};
use crate::telemetry::{Protocol, TopTalkerBoard, TopTalkers, WorkerMetrics};
use crate::timestamp::Timestamp;

/// Top talkers are estimated from one packet in this many (counted with this weight), as
/// sFlow does: heavy hitters keep their rank and rate, at an eighth of the sketch cost.
const TOP_TALKER_SAMPLING: u64 = 8;

/// How often, in packet time, idle flows are expired.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(1);

/// Counters of a whole run, for the replay summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Frames processed.
    pub packets: u64,
    /// Wire bytes of those frames.
    pub bytes: u64,
    /// Frames whose decoding stopped early.
    pub decode_errors: u64,
    /// Flows started.
    pub flows: u64,
    /// Flows ended, by `EndReason::ALL` order.
    pub flows_ended: [u64; EndReason::ALL.len()],
    /// Timestamp of the earliest frame.
    pub first_ts: Option<Timestamp>,
    /// Timestamp of the latest frame.
    pub last_ts: Option<Timestamp>,
    /// Packets by protocol, `Protocol::ALL` order.
    pub protocols: [u64; Protocol::ALL.len()],
    /// Flows started, by protocol (`Protocol::ALL` order).
    pub flows_by_protocol: [u64; Protocol::ALL.len()],
}

impl Totals {
    /// Adds another worker's totals.
    pub fn add(&mut self, other: &Totals) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.decode_errors += other.decode_errors;
        self.flows += other.flows;
        for (t, o) in self.flows_ended.iter_mut().zip(other.flows_ended) {
            *t += o;
        }
        self.first_ts = match (self.first_ts, other.first_ts) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_ts = self.last_ts.max(other.last_ts);
        for (t, o) in self.protocols.iter_mut().zip(other.protocols) {
            *t += o;
        }
        for (t, o) in self
            .flows_by_protocol
            .iter_mut()
            .zip(other.flows_by_protocol)
        {
            *t += o;
        }
    }
}

/// What a worker loop ([`worker::drive`]) feeds frames to: one [`Pipeline`], or a
/// [`Fanout`] of several.
pub trait Stage {
    /// Processes one frame.
    fn process(&mut self, frame: &Frame<'_>);
    /// Advances the packet clock to `now` without a frame.
    fn tick(&mut self, now: Timestamp);
    /// Moves local counters into the worker's series.
    fn flush(&mut self, metrics: &WorkerMetrics);
    /// Frames processed so far.
    fn packets(&self) -> u64;
}

impl Stage for Pipeline {
    #[inline]
    fn process(&mut self, frame: &Frame<'_>) {
        Pipeline::process(self, frame);
    }

    fn tick(&mut self, now: Timestamp) {
        Pipeline::tick(self, now);
    }

    fn flush(&mut self, metrics: &WorkerMetrics) {
        Pipeline::flush(self, metrics);
    }

    fn packets(&self) -> u64 {
        self.totals.packets
    }
}

/// What a pipeline needs besides its config: where top talkers go.
#[derive(Clone)]
pub struct PipelineOptions {
    /// Flow-table size and timeouts for this worker.
    pub flows: FlowTableConfig,
    /// Protected networks.
    pub networks: Arc<NetworkSet>,
    /// The shared top-talker board.
    pub top_talkers: Arc<TopTalkerBoard>,
    /// Packet-time length of a top-talker window.
    pub top_talkers_window: Duration,
    /// This worker's slot on the board.
    pub worker_index: usize,
}

/// One worker's state.
pub struct Pipeline {
    networks: Arc<NetworkSet>,
    flows: FlowTable,
    counters: LocalCounters,
    totals: Totals,
    sources: TopTalkers,
    destinations: TopTalkers,
    board: Arc<TopTalkerBoard>,
    worker_index: usize,
    window: Duration,
    window_start: Option<Timestamp>,
    next_expiry: Timestamp,
    detector: Option<Judge>,
}

impl Pipeline {
    /// A pipeline with an empty flow table (allocated up front).
    pub fn new(options: PipelineOptions) -> Pipeline {
        // Four counters per exported talker keeps the sketch's error well below the
        // exported rates on skewed traffic.
        let sketch = options.top_talkers.n().saturating_mul(4).max(32);
        Pipeline {
            counters: LocalCounters::new(options.networks.segments().len()),
            networks: options.networks,
            flows: FlowTable::new(options.flows),
            totals: Totals::default(),
            sources: TopTalkers::new(sketch),
            destinations: TopTalkers::new(sketch),
            board: options.top_talkers,
            worker_index: options.worker_index,
            window: options.top_talkers_window,
            window_start: None,
            next_expiry: Timestamp::ZERO,
            detector: None,
        }
    }

    /// Judges this pipeline's packets with `judge` from now on (replacing any previous
    /// one): a [`Detection`] of its own (`Detection::new(Detector::new(rules), alerts)`:
    /// `rules` the shared `Arc<RuleSet>`, `alerts` where transitions go), or a
    /// [`Collector`] of a detector shared with other workers (see [`share`]).
    pub fn set_detector(&mut self, judge: impl Into<Judge>) {
        self.detector = Some(judge.into());
    }

    /// Processes one frame.
    #[inline]
    pub fn process(&mut self, frame: &Frame<'_>) {
        let mut decoded = Decoded::empty();
        decode_frame_into(frame.link, frame.data, &mut decoded);
        // Hashed now, so its index slots load while the packet is classified and counted.
        let flow_key =
            FlowKey::from_decoded(&decoded).map(|(key, side)| (self.flows.locate(key), side));
        let wire = u64::from(frame.wire_len);
        let ts = frame.ts;
        let t = &mut self.totals;
        t.packets += 1;
        t.bytes += wire;
        t.first_ts = Some(t.first_ts.map_or(ts, |f| f.min(ts)));
        t.last_ts = Some(t.last_ts.map_or(ts, |l| l.max(ts)));
        self.counters.frames += 1;
        self.counters.frame_bytes += wire;
        if let Some(e) = decoded.error {
            self.totals.decode_errors += 1;
            self.counters.decode_error(e);
        }

        let (direction, protocol, placement) = self.classify(&decoded, wire);
        let slot = traffic_slot(direction, protocol);
        if let Some(c) = self.counters.packets.get_mut(slot) {
            *c += 1;
        }
        if let Some(c) = self.counters.bytes.get_mut(slot) {
            *c += wire;
        }
        if let Some(c) = self.totals.protocols.get_mut(protocol.index()) {
            *c += 1;
        }
        if let Transport::Tcp(tcp) = decoded.transport {
            count_flags(&mut self.counters.tcp_flags, tcp.flags);
        }
        let update = flow_key.map(|(located, side)| {
            self.track_flow(located, side, &decoded, ts, frame.wire_len, protocol)
        });
        if let Some(detector) = self.detector.as_mut().filter(|d| d.has_rules()) {
            // Each view is built right where it is observed: wrapping it in an `Option`
            // first cost two extra copies of the ~200-byte view per packet.
            match (&decoded.network, placement) {
                (Network::Ip(ip), Some(placement)) => detector.observe(&PacketView::ip(
                    &decoded,
                    ip,
                    placement,
                    update,
                    ts,
                    frame.wire_len,
                )),
                (Network::Arp(arp), _) => {
                    detector.observe(&PacketView::arp(arp, ts, frame.wire_len));
                }
                _ => {}
            }
        }
        if ts >= self.next_expiry {
            self.tick(ts);
        }
    }

    /// Direction, protocol and placement of a packet; counts per-network traffic (by
    /// segment: network and host group) and top talkers.
    #[inline]
    fn classify(&mut self, d: &Decoded<'_>, wire: u64) -> (Direction, Protocol, Option<Placement>) {
        let ip = match &d.network {
            Network::Ip(ip) => ip,
            Network::Arp(_) => return (Direction::None, Protocol::Arp, None),
            Network::Other { .. } => return (Direction::None, Protocol::Other, None),
        };
        let (placement, segments) = self.networks.locate(ip.src, ip.dst);
        let c = &mut self.counters;
        let mut count = |segment: Option<u16>, dir: usize| {
            if let Some(n) = segment.map(usize::from) {
                if let Some(p) = c.network_packets.get_mut(n).and_then(|a| a.get_mut(dir)) {
                    *p += 1;
                }
                if let Some(b) = c.network_bytes.get_mut(n).and_then(|a| a.get_mut(dir)) {
                    *b += wire;
                }
            }
        };
        // Traffic within one network is counted once, under the destination's segment, so
        // the segments of a network add up to the network's traffic.
        if placement.src.is_some() && placement.src == placement.dst {
            count(segments.dst, 2);
        } else {
            count(segments.dst, 0);
            count(segments.src, 1);
        }
        if self.totals.packets % TOP_TALKER_SAMPLING == 1 {
            let bytes = wire * TOP_TALKER_SAMPLING;
            self.sources.add(ip.src, bytes, TOP_TALKER_SAMPLING);
            self.destinations.add(ip.dst, bytes, TOP_TALKER_SAMPLING);
        }
        let protocol = match d.transport {
            Transport::Tcp(_) => Protocol::Tcp,
            Transport::Udp(_) => Protocol::Udp,
            Transport::Icmp(_) => Protocol::Icmp,
            Transport::Icmpv6(_) => Protocol::Icmpv6,
            Transport::None => match ip.protocol {
                ip_protocol::TCP => Protocol::Tcp,
                ip_protocol::UDP => Protocol::Udp,
                ip_protocol::ICMP => Protocol::Icmp,
                ip_protocol::ICMPV6 => Protocol::Icmpv6,
                _ => Protocol::OtherIp,
            },
        };
        (placement.direction(), protocol, Some(placement))
    }

    #[inline]
    fn track_flow(
        &mut self,
        located: Located,
        side: Side,
        d: &Decoded<'_>,
        ts: Timestamp,
        wire_len: u32,
        protocol: Protocol,
    ) -> FlowUpdate {
        let flags = match d.transport {
            Transport::Tcp(t) => Some(t.flags),
            _ => None,
        };
        let update = self.flows.update_located(
            located,
            side,
            ts,
            wire_len,
            flags,
            &mut count_end(&mut self.counters.flows_ended),
        );
        if update.created {
            self.counters.flows_created += 1;
            self.totals.flows += 1;
            if let Some(c) = self.totals.flows_by_protocol.get_mut(protocol.index()) {
                *c += 1;
            }
        }
        update
    }

    /// Advances the packet clock to `now` without a packet: expires idle flows and closes
    /// the top-talker window when due. Live workers call it when the capture is idle.
    pub fn tick(&mut self, now: Timestamp) {
        if now >= self.next_expiry {
            self.flows
                .expire(now, &mut count_end(&mut self.counters.flows_ended));
            self.next_expiry = now.saturating_add(EXPIRY_INTERVAL);
            if let Some(detector) = self.detector.as_mut() {
                detector.tick(now);
            }
        }
        match self.window_start {
            None => self.window_start = Some(now),
            Some(start) if now.saturating_since(start) >= self.window => self.close_window(now),
            Some(_) => {}
        }
    }

    /// Publishes the top-talker window so far (the capture file ended, so packet time will
    /// not advance to close it).
    pub fn publish_window(&mut self) {
        if let Some(last) = self.totals.last_ts {
            self.close_window(last);
        }
    }

    fn close_window(&mut self, now: Timestamp) {
        let seconds = self
            .window_start
            .map_or(0.0, |s| now.saturating_since(s).as_secs_f64());
        self.board.publish(
            self.worker_index,
            &self.sources,
            &self.destinations,
            seconds,
        );
        self.sources.clear();
        self.destinations.clear();
        self.window_start = Some(now);
    }

    /// Moves the local counters into the worker's Prometheus series.
    pub fn flush(&mut self, metrics: &WorkerMetrics) {
        for (total, local) in self
            .totals
            .flows_ended
            .iter_mut()
            .zip(self.counters.flows_ended)
        {
            *total += local;
        }
        self.counters.flush_into(metrics);
        metrics
            .flows_active
            .set(i64::try_from(self.active_flows()).unwrap_or(i64::MAX));
    }

    /// Ends every flow (reason `shutdown`), evaluates the detector's last partial windows
    /// and publishes the last top-talker window.
    pub fn finish(&mut self, metrics: &WorkerMetrics) {
        if let Some(detector) = self.detector.as_mut() {
            detector.finish(self.totals.last_ts);
        }
        self.flows
            .drain(&mut count_end(&mut self.counters.flows_ended));
        self.publish_window();
        self.flush(metrics);
    }

    /// Flows in the flow table now.
    pub fn active_flows(&self) -> usize {
        self.flows.len()
    }

    /// Totals up to the last [`Pipeline::flush`].
    pub fn totals(&self) -> &Totals {
        &self.totals
    }
}

/// Where a pipeline's packets are judged.
pub enum Judge {
    /// By a detector of its own.
    Here(Detection),
    /// By a detector shared with other workers.
    Shared(Collector),
}

impl From<Detection> for Judge {
    fn from(d: Detection) -> Judge {
        Judge::Here(d)
    }
}

impl From<Collector> for Judge {
    fn from(c: Collector) -> Judge {
        Judge::Shared(c)
    }
}

impl Judge {
    #[inline]
    fn has_rules(&self) -> bool {
        match self {
            Judge::Here(d) => d.has_rules(),
            Judge::Shared(c) => c.has_rules(),
        }
    }

    #[inline]
    fn observe(&mut self, p: &PacketView<'_>) {
        match self {
            Judge::Here(d) => d.observe(p),
            Judge::Shared(c) => c.observe(p),
        }
    }

    fn tick(&mut self, now: Timestamp) {
        match self {
            Judge::Here(d) => d.tick(now),
            Judge::Shared(c) => c.tick(now),
        }
    }

    /// The input has ended; `last` is its last packet's time, if there was a packet.
    fn finish(&mut self, last: Option<Timestamp>) {
        match self {
            Judge::Here(d) => {
                if let Some(last) = last {
                    d.finish(last);
                }
            }
            Judge::Shared(c) => c.finish(last),
        }
    }
}

/// A flow-table callback that counts ended flows by reason.
fn count_end(ended: &mut [u64; EndReason::ALL.len()]) -> impl FnMut(&FlowRecord, EndReason) + '_ {
    move |_, reason| {
        if let Some(c) = ended.get_mut(end_slot(reason)) {
            *c += 1;
        }
    }
}

/// Adds one to the counter of every flag set in `flags`.
#[inline]
fn count_flags(counters: &mut [u64; 8], flags: TcpFlags) {
    let mut bits = flags.0;
    while bits != 0 {
        let bit = bits.trailing_zeros() as usize;
        if let Some(c) = counters.get_mut(bit) {
            *c += 1;
        }
        bits &= bits - 1;
    }
}
