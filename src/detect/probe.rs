//! Probes: a packet seen as a connection attempt, an answer or a refusal.
//!
//! Owns [`Probe`] and [`Outcome`], and the classification of a packet's view
//! ([`icmp_probe`] for ICMP and `ICMPv6`, [`flow_probe`] for TCP, UDP and other IP
//! protocols, from what the flow table did with the packet). `port_scan` and `host_sweep`
//! count probes; [`super::PacketView`] carries the packet's probe, classified once when
//! the view is built.
//!
//! Does not own: ARP probes (built with the ARP view) or counting (the rules).

use std::net::IpAddr;

use super::PacketView;
use crate::decode::{IcmpRepr, TcpFlags, ip_protocol};

/// What a probe-like packet says about a (scanner, target) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The scanner opened something new toward the target.
    Attempt,
    /// The target answered (SYN-ACK, data, echo or ARP reply).
    Answered,
    /// The target refused (TCP RST, ICMP unreachable quoting the probe).
    Failed,
}

/// One packet seen as a connection attempt, answer or refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Who probes.
    pub scanner: IpAddr,
    /// Who is probed.
    pub target: IpAddr,
    /// `protocol << 16 | port`: the service probed (port 0 for protocols without ports).
    pub service: u32,
    /// What the packet says.
    pub outcome: Outcome,
}

/// ICMP: an echo request opening a flow is an attempt, its first reply an answer, and an
/// unreachable error quoting a probe refuses that probe.
pub(super) fn icmp_probe(v: &PacketView<'_>, icmp: &IcmpRepr) -> Option<Probe> {
    let unreachable = match v.protocol {
        ip_protocol::ICMP => icmp.icmp_type == IcmpRepr::V4_DEST_UNREACHABLE,
        _ => icmp.icmp_type == IcmpRepr::V6_DEST_UNREACHABLE,
    };
    if unreachable {
        let q = icmp.quoted?;
        // Protocol and port unreachable (codes 2 and 3) come from the probed host itself.
        let from_target = matches!(icmp.code, 2 | 3) && v.protocol == ip_protocol::ICMP;
        let (scanner, target) = if v.dst == q.src {
            // The error goes back to the sender of the packet it quotes.
            (q.src, if from_target { v.src } else { q.dst })
        } else if from_target && v.src != q.dst {
            // Neither outer address is in the quote: the probe went through NAT both
            // ways, and the outer addresses are the ones seen here.
            (v.dst, v.src)
        } else {
            // An error addressed to someone other than the sender it quotes (backscatter
            // of a spoofed source, as amplification victims receive) says nothing about
            // who probed whom.
            return None;
        };
        return Some(Probe {
            scanner,
            target,
            service: u32::from(q.protocol) << 16 | u32::from(q.dst_port),
            outcome: Outcome::Failed,
        });
    }
    let request = matches!(
        icmp.icmp_type,
        IcmpRepr::V4_ECHO_REQUEST | IcmpRepr::V6_ECHO_REQUEST
    );
    let reply = matches!(
        icmp.icmp_type,
        IcmpRepr::V4_ECHO_REPLY | IcmpRepr::V6_ECHO_REPLY
    );
    let f = v.flow?;
    let service = u32::from(v.protocol) << 16;
    if request && f.created && f.is_initiator_side {
        Some(Probe {
            scanner: v.src,
            target: v.dst,
            service,
            outcome: Outcome::Attempt,
        })
    } else if reply && f.is_first_reply {
        Some(Probe {
            scanner: v.dst,
            target: v.src,
            service,
            outcome: Outcome::Answered,
        })
    } else {
        None
    }
}

/// TCP, UDP and other IP protocols: the first packet of a flow is an attempt (unless it
/// is itself a reply: SYN-ACK or RST backscatter), the first packet back an answer, or a
/// refusal if it is a RST.
pub(super) fn flow_probe(v: &PacketView<'_>) -> Option<Probe> {
    let f = v.flow?;
    let flags = v.tcp_flags.unwrap_or_default();
    if f.created && f.is_initiator_side {
        if flags.is_syn_ack() || flags.has(TcpFlags::RST) {
            return None;
        }
        return Some(Probe {
            scanner: v.src,
            target: v.dst,
            service: u32::from(v.protocol) << 16 | u32::from(v.dst_port),
            outcome: Outcome::Attempt,
        });
    }
    if f.is_first_reply {
        let outcome = if flags.has(TcpFlags::RST) {
            Outcome::Failed
        } else {
            Outcome::Answered
        };
        return Some(Probe {
            scanner: v.dst,
            target: v.src,
            service: u32::from(v.protocol) << 16 | u32::from(v.src_port),
            outcome,
        });
    }
    None
}
