//! Which packets a volume-like rule (`volume`, `baseline`) counts: its protocol,
//! direction and traffic filter ([`Filter`]), and what telling a conversation from a
//! flood means ([`in_conversation`]).
//!
//! Does not own: keys or accumulators (`super::volume`).

use crate::config::{VolumeDirection, VolumeMetric, VolumeProtocol, VolumeTraffic};
use crate::decode::{TcpFlags, ip_protocol};
use crate::detect::PacketView;
use crate::flow::TcpState;
use crate::networks::{Direction, Placement};

/// Which packets a volume-like rule counts, and what it counts of them.
#[derive(Clone, Copy)]
pub(super) struct Filter {
    pub(super) metric: VolumeMetric,
    pub(super) protocol: VolumeProtocol,
    direction: VolumeDirection,
    pub(super) traffic: VolumeTraffic,
}

impl Filter {
    pub(super) fn new(
        metric: VolumeMetric,
        protocol: VolumeProtocol,
        direction: VolumeDirection,
        traffic: VolumeTraffic,
    ) -> Filter {
        Filter {
            metric,
            protocol,
            direction,
            traffic,
        }
    }

    /// Whether `p` has the rule's protocol and direction, and is of the traffic counted.
    #[inline]
    pub(super) fn admits(self, p: &PacketView<'_>) -> bool {
        let traffic = match self.traffic {
            VolumeTraffic::All => true,
            VolumeTraffic::Unanswered => !in_conversation(p),
        };
        self.admits_direction(p.direction) && self.admits_protocol(p) && traffic
    }

    /// Whether the rule counts packets travelling in `direction`.
    #[inline]
    pub(super) fn admits_direction(self, direction: Direction) -> bool {
        match self.direction {
            VolumeDirection::Any => direction != Direction::None,
            VolumeDirection::Inbound => direction == Direction::Inbound,
            VolumeDirection::Outbound => direction == Direction::Outbound,
            VolumeDirection::Internal => direction == Direction::Internal,
        }
    }

    /// Whether `p` has the rule's protocol.
    #[inline]
    pub(super) fn admits_protocol(self, p: &PacketView<'_>) -> bool {
        match self.protocol {
            VolumeProtocol::Any => true,
            VolumeProtocol::Tcp => p.protocol == ip_protocol::TCP,
            VolumeProtocol::TcpSyn => p.tcp_flags.is_some_and(TcpFlags::is_syn_only),
            VolumeProtocol::Udp => p.protocol == ip_protocol::UDP,
            VolumeProtocol::Icmp => {
                p.protocol == ip_protocol::ICMP || p.protocol == ip_protocol::ICMPV6
            }
            VolumeProtocol::Fragment => p.is_fragment,
        }
    }

    /// The [`super::need`] bits of the packets [`Filter::admits`] can admit.
    pub(super) fn needs(self) -> u32 {
        use super::need;
        let direction = match self.direction {
            // Unanswered traffic is credited back from the answers, which travel the
            // other way.
            _ if self.traffic == VolumeTraffic::Unanswered => need::DIRECTED,
            VolumeDirection::Any => need::DIRECTED,
            VolumeDirection::Inbound => need::INBOUND,
            VolumeDirection::Outbound => need::OUTBOUND,
            VolumeDirection::Internal => need::INTERNAL,
        };
        let protocol = match self.protocol {
            VolumeProtocol::Any => 0,
            VolumeProtocol::Tcp => need::PROTO_TCP,
            // The ACK completing a handshake credits an unanswered SYN back.
            VolumeProtocol::TcpSyn if self.traffic == VolumeTraffic::Unanswered => {
                need::SYN_OR_COMPLETION
            }
            VolumeProtocol::TcpSyn => need::SYN_ONLY,
            VolumeProtocol::Udp => need::PROTO_UDP,
            VolumeProtocol::Icmp => need::PROTO_ICMP,
            VolumeProtocol::Fragment => need::FRAGMENT,
        };
        let traffic = match self.traffic {
            VolumeTraffic::All => 0,
            VolumeTraffic::Unanswered => need::UNANSWERED_OR_ANSWER,
        };
        direction | protocol | traffic
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

/// The direction of a packet going the other way than `p`.
pub(super) fn reversed_direction(p: &PacketView<'_>) -> Direction {
    Placement {
        src: p.placement.dst,
        dst: p.placement.src,
    }
    .direction()
}

/// Whether `p` is the initiator's packet that completes a TCP handshake (its flow moves
/// from `SynSent` or `SynReceived` to `Established`): the answer that tells a busy server's
/// connections from a SYN flood.
#[inline]
pub(super) fn completes_handshake(p: &PacketView<'_>) -> bool {
    p.protocol == ip_protocol::TCP
        && p.flow.is_some_and(|f| {
            f.is_initiator_side
                && f.state == TcpState::Established
                && matches!(f.previous_state, TcpState::SynSent | TcpState::SynReceived)
        })
}

/// Whether `p` is a flow's first reply that credits back unanswered counts: any protocol
/// but TCP (credited at the handshake's completion) and ICMP (whose requests always count).
#[inline]
pub(super) fn is_crediting_reply(p: &PacketView<'_>) -> bool {
    !matches!(
        p.protocol,
        ip_protocol::TCP | ip_protocol::ICMP | ip_protocol::ICMPV6
    ) && p.flow.is_some_and(|f| f.is_first_reply)
}

/// Whether `p` belongs to an established, answered flow: its flow has seen packets from
/// both sides, and a TCP flow is established (or closing) or this packet ends it, and an
/// ICMP packet is the answer (an echo reply to the host that asked). Such a packet is
/// part of a conversation the destination takes part in, however fast; a flood's packets
/// are not (spoofed or one-way flows, handshakes never completed, packets after a reset,
/// echo requests however many are answered).
#[inline]
pub(super) fn in_conversation(p: &PacketView<'_>) -> bool {
    let Some(f) = p.flow else {
        return false;
    };
    let live = |s: TcpState| matches!(s, TcpState::Established | TcpState::Closing);
    f.is_answered
        && match p.protocol {
            ip_protocol::TCP => live(f.state) || live(f.previous_state),
            ip_protocol::ICMP | ip_protocol::ICMPV6 => !f.is_initiator_side,
            _ => true,
        }
}
