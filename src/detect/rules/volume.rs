//! `volume`: packets, bits or new flows per second to one destination host, prefix,
//! protected network or host group.
//!
//! Key ([`Target`]): with `key = "host"` (the default) the destination (victim); with
//! `key = "prefix"` the destination's prefix (a /24 or /64: carpet bombing spreads a flood
//! over a subnet so that no host crosses a host threshold); with `key = "network"` the
//! protected network the traffic is for (the destination's network for inbound and
//! internal traffic, the source's for outbound), or the rule's host group as a whole when
//! its scope is a group. Host and prefix keys take only destinations inside the rule's
//! scope: under scope `protected` the outside server a protected host downloads from is
//! never a victim. Value: the chosen metric per second over the window, counting only
//! packets of the chosen protocol and direction and, with `traffic = "unanswered"`, only
//! packets of no established, answered flow, so a heavy conversation counts its handshake
//! and nothing more. Guard: `min_hosts` distinct destinations (`HyperLogLog`) for a
//! spread flood. Contributors: top sources and destination ports by guaranteed count,
//! only those worth naming; plus the distinct-source estimate. Covers SYN, UDP and ICMP
//! floods and volumetric denial of service, on one host or spread over a network.
//!
//! Every accumulator is a plain mergeable value: counters, `HyperLogLog` registers and
//! space-saving lists, with no state that depends on the order of packets across keys.

use std::net::IpAddr;
use std::time::Duration;

use super::filter::{Filter, completes_handshake, is_crediting_reply, reversed_direction};
use super::{Hashes, contributors, ip_from_bits, meaningful, per_second};
use crate::alert::ContributorKind;
use crate::config::{VolumeKey, VolumeMetric, VolumeParams, VolumeProtocol, VolumeTraffic};
use crate::decode::ip_protocol;
use crate::detect::sketch::{Hll, KeyTable, Merge, Reset, TopK, Weight, hash128, ip_bits, mix64};
use crate::detect::{AlertKey, Finding, PacketView, Rule, Scope, SourceCount};
use crate::networks::Placement;

/// The network index standing for a rule's whole host group.
const GROUP: u16 = u16::MAX;

/// What a volume-like rule counts per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// A destination host.
    Host(IpAddr),
    /// A protected network by index ([`GROUP`]: the rule's host group).
    Network(u16),
    /// A destination prefix by its first address, with the protected network it is in.
    Prefix(IpAddr, Option<u16>),
}

impl Target {
    /// The alert key: `dst` for a host; for a network no address, its index + 1 in
    /// `aux` (which `Rule::alert` turns into the `network` name).
    pub(super) fn key(self) -> AlertKey {
        match self {
            Target::Host(ip) => AlertKey {
                src: None,
                dst: Some(ip),
                aux: 0,
            },
            Target::Network(n) => AlertKey {
                src: None,
                dst: None,
                aux: u64::from(n) + 1,
            },
            Target::Prefix(base, n) => AlertKey {
                src: None,
                dst: Some(base),
                aux: n.map_or(0, |n| u64::from(n) + 1),
            },
        }
    }
}

/// How a volume-like rule picks the [`Target`] of a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Keying {
    /// The destination, if in the scope.
    Host(Scope),
    /// The destination's prefix of `v4` or `v6` bits, if the destination is in the scope.
    Prefix {
        v4: u8,
        v6: u8,
        scope: Scope,
    },
    Network,
    Group,
}

impl Keying {
    /// The keying of `rule` by `key`; a prefix key takes `prefix` = (IPv4, IPv6) lengths.
    pub(super) fn new(rule: &Rule, key: VolumeKey, prefix: (u8, u8)) -> Keying {
        match (key, &rule.scope) {
            (VolumeKey::Host, scope) => Keying::Host(scope.clone()),
            (VolumeKey::Prefix, scope) => Keying::Prefix {
                v4: prefix.0,
                v6: prefix.1,
                scope: scope.clone(),
            },
            (VolumeKey::Network, Scope::Group(..)) => Keying::Group,
            (VolumeKey::Network, _) => Keying::Network,
        }
    }

    /// The target `p`'s source would be as a destination: the side an answer comes from,
    /// whose count its flow's earlier packets went to.
    #[inline]
    fn reply_target(&self, p: &PacketView<'_>, h: &mut Hashes) -> Option<(Target, u64)> {
        let placement = Placement {
            src: p.placement.dst,
            dst: p.placement.src,
        };
        self.target_of(p.src, placement, || h.src(p))
    }

    /// Whether targets are single hosts.
    fn is_host(&self) -> bool {
        matches!(self, Keying::Host(_))
    }

    /// The target of `p` and its hash; `None` for a host or prefix key when the
    /// destination is outside the scope, for a network key when neither end is protected.
    #[inline]
    pub(super) fn target(&self, p: &PacketView<'_>, h: &mut Hashes) -> Option<(Target, u64)> {
        self.target_of(p.dst, p.placement, || h.dst(p))
    }

    /// The target of a packet to `dst`, whose ends are placed in `placement`, and its
    /// hash; `dst_hash` gives the hash of `dst`, asked for only for a host key.
    #[inline]
    fn target_of(
        &self,
        dst: IpAddr,
        placement: Placement,
        dst_hash: impl FnOnce() -> u64,
    ) -> Option<(Target, u64)> {
        match self {
            Keying::Host(scope) => scope
                .admits_host(dst, placement.dst)
                .then(|| (Target::Host(dst), dst_hash())),
            Keying::Prefix { v4, v6, scope } => {
                if !scope.admits_host(dst, placement.dst) {
                    return None;
                }
                let base = prefix_base(dst, *v4, *v6);
                let target = Target::Prefix(base, placement.dst);
                Some((target, hash128(ip_bits(base))))
            }
            Keying::Network => placement
                .dst
                .or(placement.src)
                .map(|n| (Target::Network(n), mix64(u64::from(n)))),
            Keying::Group => Some((Target::Network(GROUP), mix64(u64::from(GROUP)))),
        }
    }
}

/// The first address of `ip`'s prefix of `v4` (IPv4) or `v6` (IPv6) bits.
fn prefix_base(ip: IpAddr, v4: u8, v6: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(v4.min(32)))
                .unwrap_or(0);
            IpAddr::V4((a.to_bits() & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(v6.min(128)))
                .unwrap_or(0);
            IpAddr::V6((a.to_bits() & mask).into())
        }
    }
}

#[derive(Default)]
pub(super) struct Acc {
    packets: u64,
    /// Of `packets`, those a conversation later answered (`traffic = "unanswered"`).
    answered: u64,
    bytes: u64,
    flows: u64,
    sources: TopK<u128, 8>,
    /// Protocol << 16 | destination port.
    ports: TopK<u32, 8>,
    /// Distinct sources.
    sources_seen: Hll,
    /// Distinct destinations (prefix and network keys only).
    hosts_seen: Hll,
}

impl Weight for Acc {
    fn weight(&self) -> u64 {
        self.packets
    }
}

impl Merge for Acc {
    fn merge(&mut self, other: &Acc) {
        self.packets = self.packets.saturating_add(other.packets);
        self.answered = self.answered.saturating_add(other.answered);
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.flows = self.flows.saturating_add(other.flows);
        self.sources.merge(&other.sources);
        self.ports.merge(&other.ports);
        self.sources_seen.merge(&other.sources_seen);
        self.hosts_seen.merge(&other.hosts_seen);
    }
}

impl Reset for Acc {
    fn reset(&mut self) {
        let Acc {
            packets,
            answered,
            bytes,
            flows,
            sources,
            ports,
            sources_seen,
            hosts_seen,
        } = self;
        (*packets, *answered, *bytes, *flows) = (0, 0, 0, 0);
        sources.reset();
        ports.reset();
        sources_seen.reset();
        hosts_seen.reset();
    }
}

pub(in crate::detect) struct Volume {
    pub(super) table: KeyTable<Target, Acc>,
    filter: Filter,
    keying: Keying,
    min_hosts: f64,
}

impl Volume {
    pub(super) fn new(rule: &Rule, p: &VolumeParams) -> Volume {
        Volume {
            table: KeyTable::new(rule.max_keys),
            filter: Filter::new(p.metric, p.protocol, p.direction, p.traffic),
            keying: Keying::new(rule, p.key, (p.prefix_v4, p.prefix_v6)),
            min_hosts: f64::from(p.min_hosts),
        }
    }

    pub(super) fn needs(&self) -> u32 {
        self.filter.needs()
    }

    #[inline]
    pub(super) fn observe(&mut self, p: &PacketView<'_>, h: &mut Hashes) {
        if self.filter.traffic == VolumeTraffic::Unanswered {
            self.credit(p, h);
        }
        if !self.filter.admits(p) {
            return;
        }
        let Some((target, hash)) = self.keying.target(p, h) else {
            return;
        };
        let Some(mut acc) = self.table.entry(target, hash) else {
            return;
        };
        acc.packets += 1;
        acc.bytes = acc.bytes.saturating_add(u64::from(p.wire_len));
        if p.flow.is_some_and(|f| f.created) {
            acc.flows += 1;
        }
        let src = ip_bits(p.src);
        acc.sources.add(src, 1);
        acc.sources_seen.insert(hash128(src));
        acc.ports
            .add(u32::from(p.protocol) << 16 | u32::from(p.dst_port), 1);
        if !self.keying.is_host() {
            acc.hosts_seen.insert(h.dst(p));
        }
    }

    /// Credits back the unanswered packets a conversation turned out to answer: a TCP
    /// handshake completed by the initiator's ACK takes back the SYN from the
    /// responder's count and the SYN-ACK from the initiator's; the first answer of any
    /// other flow but ICMP (whose requests always count) takes back the packets it
    /// answers from the answering side's count. A busy server's new connections and a
    /// resolver's queries so cost nothing, while a flood (spoofed, never answered, or SYNs
    /// answered but never completed) keeps its count. Credits only lower `packets`.
    #[inline]
    fn credit(&mut self, p: &PacketView<'_>, h: &mut Hashes) {
        let Some(f) = p.flow else {
            return;
        };
        if !self.filter.admits_protocol(p) && self.filter.protocol != VolumeProtocol::TcpSyn {
            return;
        }
        if p.protocol == ip_protocol::TCP {
            if !completes_handshake(p) {
                return;
            }
            if self.filter.admits_direction(p.direction) {
                let target = self.keying.target(p, h);
                self.take_back(target, 1);
            }
            if self.filter.protocol != VolumeProtocol::TcpSyn
                && self.filter.admits_direction(reversed_direction(p))
            {
                let target = self.keying.reply_target(p, h);
                self.take_back(target, 1);
            }
        } else if is_crediting_reply(p) && self.filter.admits_direction(reversed_direction(p)) {
            let target = self.keying.reply_target(p, h);
            self.take_back(target, f.packets_in_flow.saturating_sub(1));
        }
    }

    /// Lowers the tracked `target`'s count by `packets` answered.
    #[inline]
    fn take_back(&mut self, target: Option<(Target, u64)>, packets: u64) {
        if let Some((target, hash)) = target
            && let Some(mut acc) = self.table.get_mut(target, hash)
        {
            acc.answered = acc.answered.saturating_add(packets);
        }
    }

    pub(super) fn evaluate(&self, rule: &Rule, elapsed: Duration, hold: &mut dyn FnMut(Finding)) {
        for (target, acc) in self.table.iter() {
            let count = match self.filter.metric {
                VolumeMetric::Packets => acc.packets.saturating_sub(acc.answered),
                VolumeMetric::Bits => acc.bytes.saturating_mul(8),
                VolumeMetric::Flows => acc.flows,
            };
            let value = per_second(count, elapsed, rule.window);
            // The distinct-host estimate is the dear test: only for keys past the rate.
            if value < rule.threshold
                || (self.min_hosts > 1.0 && acc.hosts_seen.estimate().round() < self.min_hosts)
            {
                continue;
            }
            let mut list = Vec::new();
            let min = meaningful(acc.packets);
            contributors(&mut list, ContributorKind::Source, &acc.sources, min, |b| {
                ip_from_bits(b).to_string()
            });
            contributors(
                &mut list,
                ContributorKind::Port,
                &acc.ports,
                min,
                super::service_name,
            );
            hold(Finding {
                key: target.key(),
                value,
                contributors: list,
                port: None,
                sources: Some(SourceCount {
                    distinct: acc.sources_seen.estimate(),
                    packets: acc.packets,
                }),
                evidence: Vec::new(),
            });
        }
    }
}
