//! Per-worker plain counters, flushed to Prometheus once per batch.
//!
//! The hot path adds into these `u64` arrays (no atomics, no locks, no label lookups);
//! [`LocalCounters::flush_into`] moves them into the shared Prometheus handles of one
//! worker and zeroes them.

use crate::decode::DecodeError;
use crate::flow::EndReason;
use crate::networks::Direction;
use crate::telemetry::{Protocol, WorkerMetrics};

const TRAFFIC_SLOTS: usize = Direction::ALL.len() * Protocol::ALL.len();
const DECODE_SLOTS: usize = DecodeError::POSSIBLE.len();

/// Index of a (direction, protocol) pair in the traffic arrays.
#[inline]
pub(crate) fn traffic_slot(direction: Direction, protocol: Protocol) -> usize {
    direction.index() * Protocol::ALL.len() + protocol.index()
}

/// Index of a flow end reason.
#[inline]
pub(crate) fn end_slot(r: EndReason) -> usize {
    EndReason::ALL.iter().position(|x| *x == r).unwrap_or(0)
}

/// Counts accumulated since the last flush.
#[derive(Clone, Debug)]
pub(crate) struct LocalCounters {
    pub(crate) frames: u64,
    pub(crate) frame_bytes: u64,
    pub(crate) packets: [u64; TRAFFIC_SLOTS],
    pub(crate) bytes: [u64; TRAFFIC_SLOTS],
    decode_errors: [u64; DECODE_SLOTS],
    pub(crate) tcp_flags: [u64; 8],
    /// Per network segment (`NetworkSet::segments`): inbound, outbound, internal.
    pub(crate) network_packets: Vec<[u64; 3]>,
    pub(crate) network_bytes: Vec<[u64; 3]>,
    pub(crate) flows_created: u64,
    pub(crate) flows_ended: [u64; EndReason::ALL.len()],
}

impl LocalCounters {
    /// Zeroed counters for `segments` network segments.
    pub(crate) fn new(segments: usize) -> LocalCounters {
        LocalCounters {
            frames: 0,
            frame_bytes: 0,
            packets: [0; TRAFFIC_SLOTS],
            bytes: [0; TRAFFIC_SLOTS],
            decode_errors: [0; DECODE_SLOTS],
            tcp_flags: [0; 8],
            network_packets: vec![[0; 3]; segments],
            network_bytes: vec![[0; 3]; segments],
            flows_created: 0,
            flows_ended: [0; EndReason::ALL.len()],
        }
    }

    #[inline]
    pub(crate) fn decode_error(&mut self, e: DecodeError) {
        // Every pair a decoder reports is in the table (the decode property tests check
        // it); one that were not would go uncounted rather than under a wrong label.
        if let Some(c) = e.index().and_then(|i| self.decode_errors.get_mut(i)) {
            *c += 1;
        }
    }

    /// Adds everything into `m` and zeroes the local copies.
    pub(crate) fn flush_into(&mut self, m: &WorkerMetrics) {
        let frames = std::mem::take(&mut self.frames);
        if frames != 0 {
            m.interface.received_packets.inc_by(frames);
            m.worker_packets.inc_by(frames);
        }
        add(&m.interface.received_bytes, &mut self.frame_bytes);
        add_all(&m.packets, &mut self.packets);
        add_all(&m.bytes, &mut self.bytes);
        add_all(&m.decode_errors, &mut self.decode_errors);
        add_all(&m.tcp_flags, &mut self.tcp_flags);
        for (handles, local) in m.network_packets.iter().zip(&mut self.network_packets) {
            add_all(handles, local);
        }
        for (handles, local) in m.network_bytes.iter().zip(&mut self.network_bytes) {
            add_all(handles, local);
        }
        add(&m.flows_created, &mut self.flows_created);
        add_all(&m.flows_ended, &mut self.flows_ended);
    }
}

fn add(counter: &prometheus::IntCounter, local: &mut u64) {
    if *local != 0 {
        counter.inc_by(*local);
        *local = 0;
    }
}

fn add_all(counters: &[prometheus::IntCounter], locals: &mut [u64]) {
    for (c, l) in counters.iter().zip(locals.iter_mut()) {
        add(c, l);
    }
}
