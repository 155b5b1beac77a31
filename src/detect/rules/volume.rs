//! `volume`: packets, bits or new flows per second to one destination host, protected
//! network or host group.
//!
//! Key ([`Target`]): with `key = "host"` (the default) the destination (victim); with
//! `key = "network"` the protected network the traffic is for (the destination's network
//! for inbound and internal traffic, the source's for outbound), or the rule's host group
//! as a whole when its scope is a group. Value: the chosen metric per second over the
//! window, counting only packets of the chosen protocol and direction. Contributors: top
//! sources and destination ports. Covers SYN, UDP and ICMP floods and volumetric denial
//! of service, on one host or spread over a network.

use std::net::IpAddr;
use std::time::Duration;

use super::{Hashes, contributors, ip_from_bits, per_second};
use crate::alert::ContributorKind;
use crate::config::{VolumeDirection, VolumeKey, VolumeMetric, VolumeParams, VolumeProtocol};
use crate::decode::{TcpFlags, ip_protocol};
use crate::detect::sketch::{KeyTable, Merge, TopK, Weight, ip_bits, mix64};
use crate::detect::{AlertKey, Finding, PacketView, Rule, Scope};
use crate::networks::Direction;

/// The network index standing for a rule's whole host group.
const GROUP: u16 = u16::MAX;

/// What a volume-like rule counts per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// A destination host.
    Host(IpAddr),
    /// A protected network by index ([`GROUP`]: the rule's host group).
    Network(u16),
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
        }
    }
}

/// How a volume-like rule picks the [`Target`] of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Keying {
    Host,
    Network,
    Group,
}

impl Keying {
    pub(super) fn new(rule: &Rule, key: VolumeKey) -> Keying {
        match (key, &rule.scope) {
            (VolumeKey::Host, _) => Keying::Host,
            (VolumeKey::Network, Scope::Group(..)) => Keying::Group,
            (VolumeKey::Network, _) => Keying::Network,
        }
    }

    /// The target of `p` and its hash; `None` for a network key when neither end is
    /// protected.
    #[inline]
    pub(super) fn target(self, p: &PacketView<'_>, h: &mut Hashes) -> Option<(Target, u64)> {
        match self {
            Keying::Host => Some((Target::Host(p.dst), h.dst(p))),
            Keying::Network => p
                .placement
                .dst
                .or(p.placement.src)
                .map(|n| (Target::Network(n), mix64(u64::from(n)))),
            Keying::Group => Some((Target::Network(GROUP), mix64(u64::from(GROUP)))),
        }
    }
}

#[derive(Default)]
pub(super) struct Acc {
    packets: u64,
    bytes: u64,
    flows: u64,
    sources: TopK<u128, 8>,
    /// Protocol << 16 | destination port.
    ports: TopK<u32, 8>,
}

impl Weight for Acc {
    fn weight(&self) -> u64 {
        self.packets
    }
}

impl Merge for Acc {
    fn merge(&mut self, other: &Acc) {
        self.packets = self.packets.saturating_add(other.packets);
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.flows = self.flows.saturating_add(other.flows);
        self.sources.merge(&other.sources);
        self.ports.merge(&other.ports);
    }
}

pub(in crate::detect) struct Volume {
    pub(super) table: KeyTable<Target, Acc>,
    filter: Filter,
    keying: Keying,
}

/// Which packets a volume-like rule counts, and what it counts of them.
#[derive(Clone, Copy)]
pub(super) struct Filter {
    pub(super) metric: VolumeMetric,
    protocol: VolumeProtocol,
    direction: VolumeDirection,
}

impl Filter {
    pub(super) fn new(
        metric: VolumeMetric,
        protocol: VolumeProtocol,
        direction: VolumeDirection,
    ) -> Filter {
        Filter {
            metric,
            protocol,
            direction,
        }
    }

    /// Whether `p` has the rule's protocol and direction.
    #[inline]
    pub(super) fn admits(self, p: &PacketView<'_>) -> bool {
        let direction = match self.direction {
            VolumeDirection::Any => p.direction != Direction::None,
            VolumeDirection::Inbound => p.direction == Direction::Inbound,
            VolumeDirection::Outbound => p.direction == Direction::Outbound,
            VolumeDirection::Internal => p.direction == Direction::Internal,
        };
        let protocol = match self.protocol {
            VolumeProtocol::Any => true,
            VolumeProtocol::Tcp => p.protocol == ip_protocol::TCP,
            VolumeProtocol::TcpSyn => p.tcp_flags.is_some_and(TcpFlags::is_syn_only),
            VolumeProtocol::Udp => p.protocol == ip_protocol::UDP,
            VolumeProtocol::Icmp => {
                p.protocol == ip_protocol::ICMP || p.protocol == ip_protocol::ICMPV6
            }
            VolumeProtocol::Fragment => p.is_fragment,
        };
        direction && protocol
    }

    /// The [`super::need`] bits of the packets [`Filter::admits`] can admit.
    pub(super) fn needs(self) -> u32 {
        use super::need;
        let direction = match self.direction {
            VolumeDirection::Any => need::DIRECTED,
            VolumeDirection::Inbound => need::INBOUND,
            VolumeDirection::Outbound => need::OUTBOUND,
            VolumeDirection::Internal => need::INTERNAL,
        };
        let protocol = match self.protocol {
            VolumeProtocol::Any => 0,
            VolumeProtocol::Tcp => need::PROTO_TCP,
            VolumeProtocol::TcpSyn => need::SYN_ONLY,
            VolumeProtocol::Udp => need::PROTO_UDP,
            VolumeProtocol::Icmp => need::PROTO_ICMP,
            VolumeProtocol::Fragment => need::FRAGMENT,
        };
        direction | protocol
    }

    /// What `p` adds to the metric.
    #[inline]
    pub(super) fn amount(self, p: &PacketView<'_>) -> u64 {
        match self.metric {
            VolumeMetric::Packets => 1,
            VolumeMetric::Bits => u64::from(p.wire_len).saturating_mul(8),
            VolumeMetric::Flows => u64::from(p.flow.is_some_and(|f| f.created)),
        }
    }
}

impl Volume {
    pub(super) fn new(rule: &Rule, p: &VolumeParams) -> Volume {
        Volume {
            table: KeyTable::new(rule.max_keys),
            filter: Filter::new(p.metric, p.protocol, p.direction),
            keying: Keying::new(rule, p.key),
        }
    }

    pub(super) fn needs(&self) -> u32 {
        self.filter.needs()
    }

    #[inline]
    pub(super) fn observe(&mut self, p: &PacketView<'_>, h: &mut Hashes) {
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
        acc.sources.add(ip_bits(p.src), 1);
        acc.ports
            .add(u32::from(p.protocol) << 16 | u32::from(p.dst_port), 1);
    }

    pub(super) fn evaluate(&self, rule: &Rule, elapsed: Duration, hold: &mut dyn FnMut(Finding)) {
        for (target, acc) in self.table.iter() {
            let count = match self.filter.metric {
                VolumeMetric::Packets => acc.packets,
                VolumeMetric::Bits => acc.bytes.saturating_mul(8),
                VolumeMetric::Flows => acc.flows,
            };
            let value = per_second(count, elapsed, rule.window);
            if value < rule.threshold {
                continue;
            }
            let mut list = Vec::new();
            contributors(&mut list, ContributorKind::Source, &acc.sources, |b| {
                ip_from_bits(b).to_string()
            });
            contributors(
                &mut list,
                ContributorKind::Port,
                &acc.ports,
                super::service_name,
            );
            hold(Finding {
                key: target.key(),
                value,
                contributors: list,
                port: None,
            });
        }
    }
}
