//! Deterministic traffic scenarios that stream frames to a callback and report ground truth.
//!
//! Owns the generators: [`mix()`] (a realistic gateway mix, for benchmarks and fixtures),
//! [`syn_flood()`], [`udp_flood()`], [`icmp_flood()`], [`port_scan()`], [`host_sweep()`],
//! [`dns_amplification()`] and [`dns_tunnel()`] (small attack traces for detection tests),
//! [`carpet_bomb()`] (a flood spread over a /24), [`bulk_transfer()`] (one large healthy
//! download, which flood rules must leave alone, or an upload, which an exfiltration rule
//! must not) and [`reflection()`] (UDP reflection through one reflector service, or its
//! ordinary use).
//! Each takes a parameter struct with a `Default` (start 2026-01-01T00:00:00Z, seed 42),
//! calls `emit(timestamp, frame)` once per frame in non-decreasing time order, and returns a
//! serialisable ground-truth struct whose counts equal what was emitted.
//! Does not own: frame layout (`frame`), files (`pcap_writer`), or the CLI.
//!
//! The callback cannot fail: a caller writing a file keeps its first error and stops
//! writing (see `netwarden-pcapgen`). Frames are borrowed from a buffer that is reused for
//! the next frame, so copy them if they must outlive the call.
//!
//! Addressing (all test-only ranges): protected side 10.201.0.0/16 and `fd00:201::/64`,
//! outside 198.18.0.0/15 (RFC 2544 benchmarking) and `2001:db8::/32` (RFC 3849), spoofed
//! flood sources 10.192.0.0/10 outside 10.201.0.0/16; locally administered MACs `02:…`.
//!
//! # Invariants
//! Memory is bounded by the number of concurrently active sessions (a binary heap of
//! next-event times), never by the packet count.

mod carpet;
mod dns_abuse;
mod endpoints;
mod flood;
mod mix;
mod recon;
mod reflection;
mod schedule;
mod session;
mod transfer;

use netwarden::timestamp::Timestamp;
use serde::Serialize;

pub use carpet::{CarpetBombParams, CarpetBombTruth, CarpetProtocol, carpet_bomb};
pub use dns_abuse::{
    DnsAmplificationParams, DnsAmplificationTruth, DnsTunnelParams, DnsTunnelTruth,
    dns_amplification, dns_tunnel,
};
pub use flood::{
    FloodParams, FloodTruth, SynFloodParams, SynFloodTruth, icmp_flood, syn_flood, udp_flood,
};
pub use mix::{FlowCounts, MixParams, MixTruth, mix};
pub use recon::{
    HostSweepParams, HostSweepTruth, PortScanParams, PortScanTruth, host_sweep, port_scan,
};
pub use reflection::{
    ReflectionLayout, ReflectionParams, ReflectionTruth, ReflectorService, reflection,
};
pub use transfer::{TransferParams, TransferTruth, bulk_transfer};

/// Default start of every scenario: 2026-01-01T00:00:00Z.
pub const DEFAULT_START: Timestamp = Timestamp::from_nanos(1_767_225_600 * NANOS_PER_SEC);

/// Default seed of every scenario.
pub const DEFAULT_SEED: u64 = 42;

/// Nanoseconds per second.
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A scenario parameter that cannot produce a trace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scenario parameter `{name}`: {reason}")]
pub struct ScenarioError {
    /// Parameter name as in the params struct.
    pub name: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// What a scenario emitted in total.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TraceTotals {
    /// Frames emitted.
    pub packets: u64,
    /// Sum of frame lengths in bytes.
    pub bytes: u64,
    /// Timestamp of the first frame, nanoseconds since the epoch (0 if none).
    pub first_ts_ns: u64,
    /// Timestamp of the last frame, nanoseconds since the epoch (0 if none).
    pub last_ts_ns: u64,
}

/// Wraps the caller's callback and counts what passes through it.
struct Tally<F: FnMut(Timestamp, &[u8])> {
    emit: F,
    totals: TraceTotals,
}

impl<F: FnMut(Timestamp, &[u8])> Tally<F> {
    fn new(emit: F) -> Tally<F> {
        Tally {
            emit,
            totals: TraceTotals::default(),
        }
    }

    fn emit(&mut self, at_ns: u64, frame: &[u8]) {
        (self.emit)(Timestamp::from_nanos(at_ns), frame);
        if self.totals.packets == 0 {
            self.totals.first_ts_ns = at_ns;
        }
        self.totals.packets += 1;
        self.totals.bytes += u64::try_from(frame.len()).unwrap_or(u64::MAX);
        self.totals.last_ts_ns = at_ns;
    }
}

/// Fails with `reason` unless `ok`.
fn require(ok: bool, name: &'static str, reason: &'static str) -> Result<(), ScenarioError> {
    if ok {
        Ok(())
    } else {
        Err(ScenarioError { name, reason })
    }
}

/// Nanoseconds from the start of a constant-rate stream to its event `index`, exact (no
/// accumulated rounding) for any rate.
fn rate_offset_ns(index: u64, per_second: u64) -> u64 {
    let offset = u128::from(index) * u128::from(NANOS_PER_SEC) / u128::from(per_second.max(1));
    u64::try_from(offset).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
