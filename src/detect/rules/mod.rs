//! The rule families: what each kind counts per key and when its condition holds.
//!
//! Owns [`RuleState`], a closed enum over the kinds (no dynamic dispatch on the hot path),
//! and helpers the families share. Each family's file documents its key, its value and
//! its guards.
//!
//! Does not own: the lifecycle of alerts (`super::lifecycle`) or windows (`super`).

mod baseline;
mod dns;
mod scan;
mod syn_flood;
mod volume;

use std::net::IpAddr;
use std::time::Duration;

use super::sketch::TopK;
use super::{Observation, PacketView, Rule};
use crate::alert::Contributor;
use crate::config::{RuleConfig, RuleKind};

/// Contributors listed per kind of contributor in an alert.
const TOP_CONTRIBUTORS: usize = 5;

/// One rule's accumulators.
pub(super) enum RuleState {
    Volume(volume::Volume),
    SynFlood(syn_flood::SynFlood),
    PortScan(scan::PortScan),
    HostSweep(scan::HostSweep),
    DnsAmplification(dns::Amplification),
    DnsTunnel(dns::Tunnel),
    Baseline(baseline::Baseline),
}

impl RuleState {
    /// Empty accumulators for `rule`, sized by its `max_keys`.
    pub(super) fn new(rule: &Rule, c: &RuleConfig) -> RuleState {
        match rule.kind {
            RuleKind::Volume => RuleState::Volume(volume::Volume::new(rule.max_keys, c)),
            RuleKind::SynFlood => RuleState::SynFlood(syn_flood::SynFlood::new(rule.max_keys, c)),
            RuleKind::PortScan => RuleState::PortScan(scan::PortScan::new(rule.max_keys, c)),
            RuleKind::HostSweep => RuleState::HostSweep(scan::HostSweep::new(rule.max_keys, c)),
            RuleKind::DnsAmplification => {
                RuleState::DnsAmplification(dns::Amplification::new(rule.max_keys, c))
            }
            RuleKind::DnsTunnel => RuleState::DnsTunnel(dns::Tunnel::new(rule.max_keys, c)),
            RuleKind::Baseline => RuleState::Baseline(baseline::Baseline::new(rule.max_keys, c)),
        }
    }

    /// Adds one packet.
    #[inline]
    pub(super) fn observe(&mut self, p: &PacketView<'_>) {
        match self {
            RuleState::Volume(s) => s.observe(p),
            RuleState::SynFlood(s) => s.observe(p),
            RuleState::PortScan(s) => s.observe(p),
            RuleState::HostSweep(s) => s.observe(p),
            RuleState::DnsAmplification(s) => s.observe(p),
            RuleState::DnsTunnel(s) => s.observe(p),
            RuleState::Baseline(s) => s.observe(p),
        }
    }

    /// Reports every key whose value reaches the threshold, `elapsed` into the window.
    pub(super) fn evaluate(
        &self,
        rule: &Rule,
        elapsed: Duration,
        hold: &mut dyn FnMut(Observation),
    ) {
        match self {
            RuleState::Volume(s) => s.evaluate(rule, elapsed, hold),
            RuleState::SynFlood(s) => s.evaluate(rule, elapsed, hold),
            RuleState::PortScan(s) => s.evaluate(rule, hold),
            RuleState::HostSweep(s) => s.evaluate(rule, hold),
            RuleState::DnsAmplification(s) => s.evaluate(rule, elapsed, hold),
            RuleState::DnsTunnel(s) => s.evaluate(rule, hold),
            RuleState::Baseline(s) => s.evaluate(rule, elapsed, hold),
        }
    }

    /// Ends a window of length `elapsed`: `baseline` folds it into its history, every
    /// other kind starts from nothing.
    pub(super) fn roll(&mut self, elapsed: Duration, window: Duration) {
        match self {
            RuleState::Baseline(s) => s.roll(elapsed, window),
            other => other.reset(),
        }
    }

    /// Forgets everything (after a gap in the capture).
    pub(super) fn reset(&mut self) {
        match self {
            RuleState::Volume(s) => s.table.clear(),
            RuleState::SynFlood(s) => s.table.clear(),
            RuleState::PortScan(s) => s.table.clear(),
            RuleState::HostSweep(s) => s.table.clear(),
            RuleState::DnsAmplification(s) => s.table.clear(),
            RuleState::DnsTunnel(s) => s.table.clear(),
            RuleState::Baseline(s) => s.table.clear(),
        }
    }

    /// Keys tracked now.
    pub(super) fn keys(&self) -> usize {
        match self {
            RuleState::Volume(s) => s.table.tracked(),
            RuleState::SynFlood(s) => s.table.tracked(),
            RuleState::PortScan(s) => s.table.tracked(),
            RuleState::HostSweep(s) => s.table.tracked(),
            RuleState::DnsAmplification(s) => s.table.tracked(),
            RuleState::DnsTunnel(s) => s.table.tracked(),
            RuleState::Baseline(s) => s.table.tracked(),
        }
    }

    /// Keys evicted since the last call.
    pub(super) fn take_evictions(&mut self) -> u64 {
        match self {
            RuleState::Volume(s) => s.table.take_evictions(),
            RuleState::SynFlood(s) => s.table.take_evictions(),
            RuleState::PortScan(s) => s.table.take_evictions(),
            RuleState::HostSweep(s) => s.table.take_evictions(),
            RuleState::DnsAmplification(s) => s.table.take_evictions(),
            RuleState::DnsTunnel(s) => s.table.take_evictions(),
            RuleState::Baseline(s) => s.table.take_evictions(),
        }
    }
}

/// `count` per second of the window: divided by at least the whole window, so a window
/// that has just started cannot spike.
fn per_second(count: u64, elapsed: Duration, window: Duration) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let count = count as f64;
    count / elapsed.max(window).as_secs_f64().max(1e-3)
}

/// An address back from its 128-bit sketch form.
fn ip_from_bits(bits: u128) -> IpAddr {
    let v6 = std::net::Ipv6Addr::from(bits);
    v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
}

/// A service (`protocol << 16 | port`) as text: `tcp/80`, `udp/53`, `proto/47`.
fn service_name(service: u32) -> String {
    let port = service & 0xffff;
    match service >> 16 {
        6 => format!("tcp/{port}"),
        17 => format!("udp/{port}"),
        1 => "icmp".to_owned(),
        58 => "icmpv6".to_owned(),
        0 => "arp".to_owned(),
        p => format!("proto/{p}"),
    }
}

/// The top entries of `top` as contributors of `kind`.
fn contributors<const N: usize>(
    out: &mut Vec<Contributor>,
    kind: &str,
    top: &TopK<N>,
    name: impl Fn(u128) -> String,
) {
    out.extend(
        top.sorted()
            .into_iter()
            .take(TOP_CONTRIBUTORS)
            .map(|(item, count)| Contributor {
                kind: kind.to_owned(),
                value: name(item),
                count,
            }),
    );
}
