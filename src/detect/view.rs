//! The view of one packet that detection reads.
//!
//! Owns [`PacketView`]: everything the rules need from one packet (addresses, ports,
//! flags, direction, protected-network placement, the flow table's update, the packet as
//! a probe, its DNS summary), small, `Copy` and built without allocation, from an IP
//! packet ([`PacketView::ip`]) or an ARP packet ([`PacketView::arp`]).
//!
//! Does not own: decoding or the flow table (the pipeline passes their outcome in), or
//! telling what a packet probes (`super::probe`).

use std::net::IpAddr;

use super::probe::{Outcome, Probe, flow_probe, icmp_probe};
use crate::decode::{ArpRepr, Decoded, DnsRepr, IpRepr, TcpFlags, Transport};
use crate::flow::FlowUpdate;
use crate::networks::{Direction, Placement};
use crate::timestamp::Timestamp;

/// Everything detection needs from one packet: small, `Copy`, built without allocation.
#[derive(Clone, Copy, Debug)]
pub struct PacketView<'a> {
    /// Packet time.
    pub ts: Timestamp,
    /// Source address (ARP: sender).
    pub src: IpAddr,
    /// Destination address (ARP: target).
    pub dst: IpAddr,
    /// Wire length.
    pub wire_len: u32,
    /// Bytes of TCP or UDP payload, per the headers' lengths (0 for other protocols).
    pub payload_len: u32,
    /// IP protocol number (0 for ARP).
    pub protocol: u8,
    /// Transport source port (0 when none).
    pub src_port: u16,
    /// Transport destination port (0 when none).
    pub dst_port: u16,
    /// TCP flags, for TCP.
    pub tcp_flags: Option<TcpFlags>,
    /// An IP fragment (first or later).
    pub is_fragment: bool,
    /// Direction relative to the protected networks.
    pub direction: Direction,
    /// Protected-network membership of each end.
    pub placement: Placement,
    /// What the flow table did with the packet (none for ARP and later fragments).
    pub flow: Option<FlowUpdate>,
    /// The packet as a probe, answer or refusal, if it is one.
    pub probe: Option<Probe>,
    /// DNS header and question.
    pub dns: Option<DnsRepr<'a>>,
}

impl<'a> PacketView<'a> {
    /// The view of an IP packet.
    // Inlined so the view is built where the pipeline observes it; as a call it was built
    // on the callee's stack and copied out, ~50 instructions per packet.
    #[inline]
    pub fn ip(
        d: &Decoded<'a>,
        ip: &IpRepr,
        placement: Placement,
        flow: Option<FlowUpdate>,
        ts: Timestamp,
        wire_len: u32,
    ) -> PacketView<'a> {
        let (src_port, dst_port, tcp_flags, payload_len) = match d.transport {
            Transport::Tcp(t) => (t.src_port, t.dst_port, Some(t.flags), t.payload_len),
            Transport::Udp(u) => (u.src_port, u.dst_port, None, u.payload_len),
            _ => (0, 0, None, 0),
        };
        let mut view = PacketView {
            ts,
            src: ip.src,
            dst: ip.dst,
            wire_len,
            payload_len,
            protocol: ip.protocol,
            src_port,
            dst_port,
            tcp_flags,
            is_fragment: ip.fragment.is_fragment,
            direction: placement.direction(),
            placement,
            flow,
            probe: None,
            dns: d.dns,
        };
        view.probe = match d.transport {
            Transport::Icmp(icmp) | Transport::Icmpv6(icmp) => icmp_probe(&view, &icmp),
            _ => flow_probe(&view),
        };
        view
    }

    /// The view of an ARP packet: requests are probes of their target, replies answers.
    pub fn arp(arp: &ArpRepr, ts: Timestamp, wire_len: u32) -> PacketView<'static> {
        let sender = IpAddr::from(arp.sender_ip);
        let target = IpAddr::from(arp.target_ip);
        let probe = match arp.operation {
            // A gratuitous ARP announces the sender; it probes nobody.
            1 if sender != target && !sender.is_unspecified() => Some(Probe {
                scanner: sender,
                target,
                service: 0,
                outcome: Outcome::Attempt,
            }),
            2 => Some(Probe {
                scanner: target,
                target: sender,
                service: 0,
                outcome: Outcome::Answered,
            }),
            _ => None,
        };
        PacketView {
            ts,
            src: sender,
            dst: target,
            wire_len,
            payload_len: 0,
            protocol: 0,
            src_port: 0,
            dst_port: 0,
            tcp_flags: None,
            is_fragment: false,
            direction: Direction::None,
            placement: Placement {
                src: None,
                dst: None,
            },
            flow: None,
            probe,
            dns: None,
        }
    }
}

#[cfg(test)]
impl PacketView<'static> {
    /// A 100-byte UDP packet from `src` (port 4000) to `dst` (port 53, in protected
    /// network 0), inbound, opening a flow.
    pub(crate) fn test_udp(ts: Timestamp, src: IpAddr, dst: IpAddr) -> PacketView<'static> {
        PacketView {
            ts,
            src,
            dst,
            wire_len: 100,
            payload_len: 58,
            protocol: crate::decode::ip_protocol::UDP,
            src_port: 4000,
            dst_port: 53,
            tcp_flags: None,
            is_fragment: false,
            direction: Direction::Inbound,
            placement: Placement {
                src: None,
                dst: Some(0),
            },
            flow: Some(FlowUpdate {
                created: true,
                state: crate::flow::TcpState::None,
                previous_state: crate::flow::TcpState::None,
                packets_in_flow: 1,
                is_initiator_side: true,
                is_first_reply: false,
                is_answered: false,
            }),
            probe: None,
            dns: None,
        }
    }
}
