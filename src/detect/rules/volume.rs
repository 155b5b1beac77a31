//! `volume`: packets, bits or new flows per second to one destination host.
//!
//! Key: the destination (victim). Value: the chosen metric per second over the window,
//! counting only packets of the chosen protocol and direction. Contributors: top sources
//! and destination ports. Covers SYN, UDP and ICMP floods and volumetric denial of
//! service.

use std::net::IpAddr;
use std::time::Duration;

use super::{contributors, ip_from_bits, per_second};
use crate::config::{RuleConfig, VolumeDirection, VolumeMetric, VolumeProtocol};
use crate::decode::{TcpFlags, ip_protocol};
use crate::detect::sketch::{KeyTable, TopK, Weight, hash128, ip_bits};
use crate::detect::{AlertKey, Observation, PacketView, Rule};
use crate::networks::Direction;

#[derive(Default)]
pub(super) struct Acc {
    packets: u64,
    bytes: u64,
    flows: u64,
    sources: TopK<8>,
    ports: TopK<8>,
}

impl Weight for Acc {
    fn weight(&self) -> u64 {
        self.packets
    }
}

pub(in crate::detect) struct Volume {
    pub(super) table: KeyTable<IpAddr, Acc>,
    filter: Filter,
}

/// Which packets a volume-like rule counts, and what it counts of them.
#[derive(Clone, Copy)]
pub(super) struct Filter {
    pub(super) metric: VolumeMetric,
    protocol: VolumeProtocol,
    direction: VolumeDirection,
}

impl Filter {
    pub(super) fn new(c: &RuleConfig) -> Filter {
        Filter {
            metric: c.metric.unwrap_or_default(),
            protocol: c.protocol.unwrap_or_default(),
            direction: c.direction.unwrap_or_default(),
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
    pub(super) fn new(max_keys: usize, c: &RuleConfig) -> Volume {
        Volume {
            table: KeyTable::new(max_keys),
            filter: Filter::new(c),
        }
    }

    #[inline]
    pub(super) fn observe(&mut self, p: &PacketView<'_>) {
        if !self.filter.admits(p) {
            return;
        }
        let Some(acc) = self.table.entry(p.dst, hash128(ip_bits(p.dst))) else {
            return;
        };
        acc.packets += 1;
        acc.bytes = acc.bytes.saturating_add(u64::from(p.wire_len));
        if p.flow.is_some_and(|f| f.created) {
            acc.flows += 1;
        }
        acc.sources.add(ip_bits(p.src), 1);
        acc.ports
            .add(u128::from(p.protocol) << 16 | u128::from(p.dst_port), 1);
    }

    pub(super) fn evaluate(
        &self,
        rule: &Rule,
        elapsed: Duration,
        hold: &mut dyn FnMut(Observation),
    ) {
        for (dst, acc) in self.table.iter() {
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
            contributors(&mut list, "source", &acc.sources, |b| {
                ip_from_bits(b).to_string()
            });
            contributors(&mut list, "port", &acc.ports, |s| {
                super::service_name(u32::try_from(s).unwrap_or(0))
            });
            hold(Observation {
                key: AlertKey {
                    src: None,
                    dst: Some(*dst),
                    aux: 0,
                },
                value,
                contributors: list,
                port: None,
            });
        }
    }
}
