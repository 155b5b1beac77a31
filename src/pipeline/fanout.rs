//! Several pipelines behind one source, frames spread by flow: what `PACKET_FANOUT` in
//! hash mode does to a live interface, done in one thread for capture files.
//!
//! Owns [`Fanout`]. `replay --workers N` runs a file through it, so what several live
//! workers do to detection (each counts a share of the traffic, one evaluator judges the
//! sum) can be checked offline, deterministically, against one worker on the same file.
//!
//! Frames of one flow, both directions, reach one pipeline (the flow key is symmetric, as
//! the kernel's flow hash is); IP frames without a flow key (later fragments) go by their
//! address pair, anything else to the first pipeline. When a frame moves the packet clock
//! past the next second, every pipeline is ticked to it, as a quiet live worker is ticked
//! by its read timeouts.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::time::Duration;

use super::{Pipeline, Stage, Totals};
use crate::capture::Frame;
use crate::decode::{Decoded, decode_frame_into};
use crate::flow::FlowKey;
use crate::telemetry::WorkerMetrics;
use crate::timestamp::Timestamp;

/// How often, in packet time, every pipeline is ticked.
const TICK_INTERVAL: Duration = Duration::from_secs(1);

/// Pipelines fed by flow from one source.
pub struct Fanout {
    pipelines: Vec<Pipeline>,
    next_tick: Timestamp,
}

impl Fanout {
    /// Spreads frames over `pipelines` (at least one).
    pub fn new(pipelines: Vec<Pipeline>) -> Fanout {
        Fanout {
            pipelines,
            next_tick: Timestamp::ZERO,
        }
    }

    /// Which pipeline takes `frame`.
    fn pick(&self, frame: &Frame<'_>) -> usize {
        let mut decoded = Decoded::empty();
        decode_frame_into(frame.link, frame.data, &mut decoded);
        // SipHash with fixed keys: the same file spreads the same way on every run.
        let mut h = std::hash::DefaultHasher::new();
        if let Some((key, _)) = FlowKey::from_decoded(&decoded) {
            key.hash(&mut h);
        } else if let Some(ip) = decoded.ip() {
            let (a, b): (IpAddr, IpAddr) = (ip.src.min(ip.dst), ip.src.max(ip.dst));
            (a, b).hash(&mut h);
        } else {
            return 0;
        }
        let n = u64::try_from(self.pipelines.len().max(1)).unwrap_or(1);
        usize::try_from(h.finish() % n).unwrap_or(0)
    }

    /// Ends every pipeline's flows and detection (see [`Pipeline::finish`]).
    pub fn finish(&mut self, metrics: &WorkerMetrics) {
        for p in &mut self.pipelines {
            p.finish(metrics);
        }
    }

    /// Publishes every pipeline's top-talker window so far.
    pub fn publish_window(&mut self) {
        self.pipelines.iter_mut().for_each(Pipeline::publish_window);
    }

    /// The pipelines' totals, summed.
    pub fn totals(&self) -> Totals {
        let mut sum = Totals::default();
        for p in &self.pipelines {
            sum.add(p.totals());
        }
        sum
    }
}

impl Stage for Fanout {
    fn process(&mut self, frame: &Frame<'_>) {
        let k = self.pick(frame);
        if let Some(p) = self.pipelines.get_mut(k) {
            p.process(frame);
        }
        if frame.ts >= self.next_tick {
            self.tick(frame.ts);
        }
    }

    fn tick(&mut self, now: Timestamp) {
        for p in &mut self.pipelines {
            p.tick(now);
        }
        self.next_tick = now.saturating_add(TICK_INTERVAL);
    }

    fn flush(&mut self, metrics: &WorkerMetrics) {
        let mut active = 0usize;
        for p in &mut self.pipelines {
            p.flush(metrics);
            active += p.active_flows();
        }
        metrics
            .flows_active
            .set(i64::try_from(active).unwrap_or(i64::MAX));
    }

    fn packets(&self) -> u64 {
        self.pipelines.iter().map(|p| p.totals().packets).sum()
    }
}
