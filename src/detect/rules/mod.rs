//! The rule families: what each kind counts per key and when its condition holds.
//!
//! Owns [`RuleState`], a closed enum over the kinds (no dynamic dispatch on the hot path),
//! and helpers the families share. Each family's file documents its key, its value and
//! its guards.
//!
//! Does not own: the lifecycle of alerts (`crate::alert::lifecycle`) or windows
//! (`super::detector`).

mod baseline;
mod blocklist;
mod dns;
mod exfiltration;
mod filter;
mod reflection;
mod scan;
mod syn_flood;
mod volume;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::sketch::{TopK, hash128, ip_bits, mix64};
use super::{Finding, PacketView, Probe, Rule};
use crate::alert::{Contributor, ContributorKind};
use crate::config::RuleParams;

pub(super) use blocklist::load as load_blocklist;
pub(super) use reflection::service_label;

/// Contributors listed per kind of contributor in an alert.
const TOP_CONTRIBUTORS: usize = 5;

/// Packet features, as bits: a rule needs some (its `needs` mask), and a packet lacking
/// one of them would be ignored by the rule's `observe`, so [`super::Detector::observe`]
/// skips the call. Each bit is a necessary condition the rule checks again itself.
pub(super) mod need {
    /// One end in a protected network (scope `protected`).
    pub(in crate::detect) const PROTECTED: u32 = 1;
    /// A TCP header (flags).
    pub(in crate::detect) const TCP_HEADER: u32 = 1 << 1;
    /// A TCP SYN without ACK.
    pub(in crate::detect) const SYN_ONLY: u32 = 1 << 2;
    /// IP protocol TCP.
    pub(in crate::detect) const PROTO_TCP: u32 = 1 << 3;
    /// IP protocol UDP.
    pub(in crate::detect) const PROTO_UDP: u32 = 1 << 4;
    /// IP protocol ICMP or ICMPv6.
    pub(in crate::detect) const PROTO_ICMP: u32 = 1 << 5;
    /// An IP fragment.
    pub(in crate::detect) const FRAGMENT: u32 = 1 << 6;
    /// Any direction but `None` (IP, not ARP).
    pub(in crate::detect) const DIRECTED: u32 = 1 << 7;
    /// Inbound.
    pub(in crate::detect) const INBOUND: u32 = 1 << 8;
    /// Outbound.
    pub(in crate::detect) const OUTBOUND: u32 = 1 << 9;
    /// Internal.
    pub(in crate::detect) const INTERNAL: u32 = 1 << 10;
    /// A probe, answer or refusal.
    pub(in crate::detect) const PROBE: u32 = 1 << 11;
    /// A DNS response.
    pub(in crate::detect) const DNS_RESPONSE: u32 = 1 << 12;
    /// A DNS query with a question.
    pub(in crate::detect) const DNS_QUERY: u32 = 1 << 13;
    /// What `traffic = "unanswered"` counts or credits: a packet of no established,
    /// answered conversation, the ACK completing a TCP handshake, or a flow's first reply
    /// (see `filter::in_conversation`, `filter::completes_handshake`,
    /// `filter::is_crediting_reply`). Mid-conversation packets, most of a link's, lack it.
    pub(in crate::detect) const UNANSWERED_OR_ANSWER: u32 = 1 << 14;
    /// A TCP SYN without ACK, or the ACK completing a handshake.
    pub(in crate::detect) const SYN_OR_COMPLETION: u32 = 1 << 15;
    /// Set on no packet: a rule that needs it counts nothing (an empty blocklist).
    pub(in crate::detect) const NEVER: u32 = 1 << 31;
}

/// The hashes of one packet that several rules key by, each computed at most once per
/// packet (a fresh `Hashes` per packet: they are only valid for it).
#[derive(Default)]
pub(super) struct Hashes {
    src: Option<u64>,
    dst: Option<u64>,
    scanner: Option<u64>,
    pair: Option<u64>,
}

impl Hashes {
    /// Hash of the source address.
    #[inline]
    fn src(&mut self, p: &PacketView<'_>) -> u64 {
        *self.src.get_or_insert_with(|| hash128(ip_bits(p.src)))
    }

    /// Hash of the destination address.
    #[inline]
    fn dst(&mut self, p: &PacketView<'_>) -> u64 {
        *self.dst.get_or_insert_with(|| hash128(ip_bits(p.dst)))
    }

    /// Hash of the packet's probe's scanner.
    #[inline]
    fn scanner(&mut self, probe: &Probe) -> u64 {
        *self
            .scanner
            .get_or_insert_with(|| hash128(ip_bits(probe.scanner)))
    }

    /// Hash of the packet's probe's (scanner, target) pair.
    #[inline]
    fn pair(&mut self, probe: &Probe) -> u64 {
        if let Some(h) = self.pair {
            return h;
        }
        let h = self.scanner(probe) ^ mix64(hash128(ip_bits(probe.target)));
        self.pair = Some(h);
        h
    }
}

/// The features of `p` (see [`need`]).
#[inline]
pub(super) fn features(p: &PacketView<'_>) -> u32 {
    use crate::decode::{TcpFlags, ip_protocol};
    use crate::networks::Direction;
    let bit = |on: bool, b: u32| if on { b } else { 0 };
    let direction = match p.direction {
        Direction::Inbound => need::DIRECTED | need::INBOUND,
        Direction::Outbound => need::DIRECTED | need::OUTBOUND,
        Direction::Internal => need::DIRECTED | need::INTERNAL,
        Direction::External => need::DIRECTED,
        Direction::None => 0,
    };
    let protocol = match p.protocol {
        ip_protocol::TCP => need::PROTO_TCP,
        ip_protocol::UDP => need::PROTO_UDP,
        ip_protocol::ICMP | ip_protocol::ICMPV6 => need::PROTO_ICMP,
        _ => 0,
    };
    let completes = filter::completes_handshake(p);
    let tcp = match p.tcp_flags {
        Some(f) if TcpFlags::is_syn_only(f) => {
            need::TCP_HEADER | need::SYN_ONLY | need::SYN_OR_COMPLETION
        }
        Some(_) => need::TCP_HEADER | bit(completes, need::SYN_OR_COMPLETION),
        None => 0,
    };
    let unanswered = !filter::in_conversation(p) || completes || filter::is_crediting_reply(p);
    let dns = match p.dns {
        Some(d) if d.is_response => need::DNS_RESPONSE,
        Some(d) if d.question.is_some() => need::DNS_QUERY,
        _ => 0,
    };
    direction
        | protocol
        | tcp
        | dns
        | bit(
            p.placement.src.is_some() || p.placement.dst.is_some(),
            need::PROTECTED,
        )
        | bit(p.is_fragment, need::FRAGMENT)
        | bit(p.probe.is_some(), need::PROBE)
        | bit(unanswered, need::UNANSWERED_OR_ANSWER)
}

/// One rule's accumulators.
pub(super) enum RuleState {
    Volume(volume::Volume),
    SynFlood(syn_flood::SynFlood),
    PortScan(scan::PortScan),
    HostSweep(scan::HostSweep),
    DnsAmplification(dns::Amplification),
    DnsTunnel(dns::Tunnel),
    Baseline(baseline::Baseline),
    Blocklist(blocklist::Blocklist),
    Exfiltration(exfiltration::Exfiltration),
    Reflection(reflection::Reflection),
}

impl RuleState {
    /// Empty accumulators for `rule`, from its kind's parameters, sized by its
    /// `max_keys`.
    pub(super) fn new(rule: &Rule) -> RuleState {
        let keys = rule.max_keys;
        match &rule.config.params {
            RuleParams::Volume(p) => RuleState::Volume(volume::Volume::new(rule, p)),
            RuleParams::SynFlood(p) => RuleState::SynFlood(syn_flood::SynFlood::new(rule, p)),
            RuleParams::PortScan(p) => RuleState::PortScan(scan::PortScan::new(keys, p)),
            RuleParams::HostSweep(p) => RuleState::HostSweep(scan::HostSweep::new(keys, p)),
            RuleParams::DnsAmplification(p) => {
                RuleState::DnsAmplification(dns::Amplification::new(keys, p))
            }
            RuleParams::DnsTunnel(p) => RuleState::DnsTunnel(dns::Tunnel::new(keys, p)),
            RuleParams::Baseline(p) => RuleState::Baseline(baseline::Baseline::new(rule, p)),
            RuleParams::Blocklist(_) => RuleState::Blocklist(blocklist::Blocklist::new(
                keys,
                rule.blocklist.clone().unwrap_or_default(),
            )),
            RuleParams::Exfiltration(p) => {
                RuleState::Exfiltration(exfiltration::Exfiltration::new(rule, p))
            }
            RuleParams::Reflection(p) => {
                RuleState::Reflection(reflection::Reflection::new(rule, p))
            }
        }
    }

    /// Takes what `rule` (a reloaded rule with the same config) carries besides its
    /// parameters: a `blocklist` rule's address set, rebuilt from its files.
    pub(super) fn adopt(&mut self, rule: &Rule) {
        if let (RuleState::Blocklist(s), Some(set)) = (self, &rule.blocklist) {
            s.adopt(Arc::clone(set));
        }
    }

    /// The [`need`] bits a packet must have for this state's `observe` to count it
    /// (the scope's are added by the caller).
    pub(super) fn needs(&self) -> u32 {
        match self {
            RuleState::Volume(s) => s.needs(),
            RuleState::Baseline(s) => s.needs(),
            RuleState::SynFlood(_) => need::TCP_HEADER | need::SYN_OR_COMPLETION,
            RuleState::PortScan(_) | RuleState::HostSweep(_) => need::PROBE,
            RuleState::DnsAmplification(_) => need::DNS_RESPONSE | need::PROTO_UDP,
            RuleState::DnsTunnel(_) => need::DNS_QUERY,
            RuleState::Blocklist(s) => s.needs(),
            RuleState::Exfiltration(_) => need::OUTBOUND,
            RuleState::Reflection(_) => need::PROTO_UDP,
        }
    }

    /// Adds one packet.
    // Never inlined into `Detector::observe`'s loop over rules: there LLVM hoisted every
    // kind's hashing (HyperLogLog ranks of ports and addresses, pair hashes) out of the
    // loop and computed all of it for every packet, ~500 instructions per packet even when
    // no rule wanted the packet. A call per admitted rule costs far less.
    #[inline(never)]
    pub(super) fn observe(&mut self, p: &PacketView<'_>, h: &mut Hashes) {
        match self {
            RuleState::Volume(s) => s.observe(p, h),
            RuleState::SynFlood(s) => s.observe(p, h),
            RuleState::PortScan(s) => s.observe(p, h),
            RuleState::HostSweep(s) => s.observe(p, h),
            RuleState::DnsAmplification(s) => s.observe(p, h),
            RuleState::DnsTunnel(s) => s.observe(p),
            RuleState::Baseline(s) => s.observe(p, h),
            RuleState::Blocklist(s) => s.observe(p),
            RuleState::Exfiltration(s) => s.observe(p, h),
            RuleState::Reflection(s) => s.observe(p, h),
        }
    }

    /// Reports every key whose value reaches the threshold, `elapsed` into the window.
    pub(super) fn evaluate(&self, rule: &Rule, elapsed: Duration, hold: &mut dyn FnMut(Finding)) {
        match self {
            RuleState::Volume(s) => s.evaluate(rule, elapsed, hold),
            RuleState::SynFlood(s) => s.evaluate(rule, elapsed, hold),
            RuleState::PortScan(s) => s.evaluate(rule, hold),
            RuleState::HostSweep(s) => s.evaluate(rule, hold),
            RuleState::DnsAmplification(s) => s.evaluate(rule, elapsed, hold),
            RuleState::DnsTunnel(s) => s.evaluate(rule, hold),
            RuleState::Baseline(s) => s.evaluate(rule, elapsed, hold),
            RuleState::Blocklist(s) => s.evaluate(rule, hold),
            RuleState::Exfiltration(s) => s.evaluate(rule, hold),
            RuleState::Reflection(s) => s.evaluate(rule, elapsed, hold),
        }
    }

    /// Ends a window of `rule` of length `elapsed`: `baseline` and `exfiltration` fold
    /// it into their history, every other kind starts from nothing.
    pub(super) fn roll(&mut self, rule: &Rule, elapsed: Duration) {
        match self {
            RuleState::Baseline(s) => s.roll(elapsed, rule.window),
            RuleState::Exfiltration(s) => s.roll(rule),
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
            RuleState::Blocklist(s) => s.table.clear(),
            RuleState::Exfiltration(s) => s.clear(),
            RuleState::Reflection(s) => s.table.clear(),
        }
    }

    /// Makes this state a worker's partial counts (see `KeyTable::make_partial`).
    pub(super) fn make_partial(&mut self) {
        match self {
            RuleState::Volume(s) => s.table.make_partial(),
            RuleState::SynFlood(s) => s.table.make_partial(),
            RuleState::PortScan(s) => s.table.make_partial(),
            RuleState::HostSweep(s) => s.table.make_partial(),
            RuleState::DnsAmplification(s) => s.table.make_partial(),
            RuleState::DnsTunnel(s) => s.table.make_partial(),
            RuleState::Baseline(s) => s.table.make_partial(),
            RuleState::Blocklist(s) => s.table.make_partial(),
            RuleState::Exfiltration(s) => {
                s.sources.make_partial();
                s.pairs.make_partial();
            }
            RuleState::Reflection(s) => s.table.make_partial(),
        }
    }

    /// Adds a worker's partial counts for the same rule into this state, and empties
    /// them. States of two kinds (never built from one rule) are left as they are.
    pub(super) fn merge_from(&mut self, partial: &mut RuleState) {
        match (self, partial) {
            (RuleState::Volume(s), RuleState::Volume(p)) => s.table.merge_from(&mut p.table),
            (RuleState::SynFlood(s), RuleState::SynFlood(p)) => s.table.merge_from(&mut p.table),
            (RuleState::PortScan(s), RuleState::PortScan(p)) => s.table.merge_from(&mut p.table),
            (RuleState::HostSweep(s), RuleState::HostSweep(p)) => {
                s.table.merge_from(&mut p.table);
            }
            (RuleState::DnsAmplification(s), RuleState::DnsAmplification(p)) => {
                s.table.merge_from(&mut p.table);
            }
            (RuleState::DnsTunnel(s), RuleState::DnsTunnel(p)) => {
                s.table.merge_from(&mut p.table);
            }
            (RuleState::Baseline(s), RuleState::Baseline(p)) => s.table.merge_from(&mut p.table),
            (RuleState::Blocklist(s), RuleState::Blocklist(p)) => {
                s.table.merge_from(&mut p.table);
            }
            (RuleState::Exfiltration(s), RuleState::Exfiltration(p)) => {
                s.sources.merge_from(&mut p.sources);
                s.pairs.merge_from(&mut p.pairs);
            }
            (RuleState::Reflection(s), RuleState::Reflection(p)) => {
                s.table.merge_from(&mut p.table);
            }
            _ => {}
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
            RuleState::Blocklist(s) => s.table.tracked(),
            RuleState::Exfiltration(s) => s.sources.tracked() + s.pairs.tracked(),
            RuleState::Reflection(s) => s.table.tracked(),
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
            RuleState::Blocklist(s) => s.table.take_evictions(),
            RuleState::Exfiltration(s) => s.sources.take_evictions() + s.pairs.take_evictions(),
            RuleState::Reflection(s) => s.table.take_evictions(),
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

/// The top entries of `top` as contributors of `kind`, each with its guaranteed count
/// (space-saving's count minus its error bound: a lower bound of the truth, never an
/// over-estimate), leaving out those guaranteed fewer than `min`.
fn contributors<T: Copy + Ord, const N: usize>(
    out: &mut Vec<Contributor>,
    kind: ContributorKind,
    top: &TopK<T, N>,
    min: u64,
    name: impl Fn(T) -> String,
) {
    out.extend(
        top.guaranteed()
            .into_iter()
            .filter(|&(_, count)| count >= min.max(1))
            .take(TOP_CONTRIBUTORS)
            .map(|(item, count)| Contributor {
                kind,
                value: name(item),
                count,
            }),
    );
}

/// The least guaranteed count worth naming a flood's source (or port, reflector) by, out
/// of `total`: 2 packets and 1 % of the total. Below it a name is noise (one spoofed
/// packet among thousands), and a person might block it.
fn meaningful(total: u64) -> u64 {
    (total / 100).max(2)
}
