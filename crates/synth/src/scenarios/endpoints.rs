//! Addressing of one flow and the frames it sends in each direction.
//!
//! Owns [`Endpoints`] (hosts, ports, VLAN, and the per-direction TTL and IPv4
//! identification counters), the gateway MACs that tell inbound from outbound frames, and
//! the TCP flag constants the scenarios share.
//! Does not own: session state (`session`) or choosing addresses (the scenarios).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::frame::{
    EthernetSpec, FrameSpec, IcmpEchoSpec, IpSpec, Ipv4Spec, Ipv6Spec, LinkSpec, Payload, TcpSpec,
    TransportSpec, UdpSpec,
};
use crate::rng::{Draw as _, Rng};

/// MAC of the gateway port facing the protected network.
const INSIDE_MAC: [u8; 6] = [0x02, 0x00, 0x0a, 0x00, 0x00, 0x01];
/// MAC of the gateway port facing the outside.
const OUTSIDE_MAC: [u8; 6] = [0x02, 0x00, 0x0a, 0x00, 0x00, 0x02];

/// TCP control bits.
pub(super) const FIN: u8 = 0x01;
pub(super) const SYN: u8 = 0x02;
pub(super) const RST: u8 = 0x04;
pub(super) const PSH: u8 = 0x08;
pub(super) const ACK: u8 = 0x10;

/// Bytes of ICMP echo data, as `ping` sends by default.
const PING_DATA: usize = 56;

/// Ethernet framing of a packet leaving (`outbound`) or entering the protected network.
pub(super) fn link(outbound: bool, vlan: Option<u16>) -> LinkSpec {
    let (src, dst) = if outbound {
        (INSIDE_MAC, OUTSIDE_MAC)
    } else {
        (OUTSIDE_MAC, INSIDE_MAC)
    };
    LinkSpec::Ethernet(EthernetSpec { src, dst, vlan })
}

/// The two hosts of a flow.
#[derive(Clone, Copy, Debug)]
pub(super) enum Hosts {
    V4 { client: Ipv4Addr, server: Ipv4Addr },
    V6 { client: Ipv6Addr, server: Ipv6Addr },
}

/// Addressing of one flow plus the per-direction header state (TTL, IP identification).
#[derive(Clone, Debug)]
pub(super) struct Endpoints {
    hosts: Hosts,
    client_port: u16,
    server_port: u16,
    vlan: Option<u16>,
    /// The client sits in the protected network (selects the MAC direction).
    client_inside: bool,
    client_ttl: u8,
    server_ttl: u8,
    client_ident: u16,
    server_ident: u16,
    flow_label: u32,
}

impl Endpoints {
    /// A flow between `hosts` on the given ports; TTLs and IP ids are drawn from `rng`.
    pub(super) fn new(
        hosts: Hosts,
        (client_port, server_port): (u16, u16),
        vlan: Option<u16>,
        client_inside: bool,
        rng: &mut Rng,
    ) -> Endpoints {
        Endpoints {
            hosts,
            client_port,
            server_port,
            vlan,
            client_inside,
            client_ttl: rng.pick(&[64, 64, 128], 64),
            server_ttl: rng.pick(&[64, 57, 118, 244], 64),
            client_ident: rng.next_u16(),
            server_ident: rng.next_u16(),
            flow_label: rng.next_u32() & 0x000f_ffff,
        }
    }

    pub(super) fn is_v6(&self) -> bool {
        matches!(self.hosts, Hosts::V6 { .. })
    }

    pub(super) fn client_port(&self) -> u16 {
        self.client_port
    }

    /// A frame in one direction; bumps that side's IPv4 identification.
    fn frame<'a>(
        &mut self,
        from_client: bool,
        transport: TransportSpec,
        payload: Payload<'a>,
    ) -> FrameSpec<'a> {
        let (ttl, ident) = if from_client {
            self.client_ident = self.client_ident.wrapping_add(1);
            (self.client_ttl, self.client_ident)
        } else {
            self.server_ident = self.server_ident.wrapping_add(1);
            (self.server_ttl, self.server_ident)
        };
        let ip = match self.hosts {
            Hosts::V4 { client, server } => {
                let (src, dst) = if from_client {
                    (client, server)
                } else {
                    (server, client)
                };
                IpSpec::V4(Ipv4Spec {
                    ttl,
                    ident,
                    ..Ipv4Spec::new(src, dst)
                })
            }
            Hosts::V6 { client, server } => {
                let (src, dst) = if from_client {
                    (client, server)
                } else {
                    (server, client)
                };
                let flow_label = self.flow_label;
                IpSpec::V6(Ipv6Spec {
                    hop_limit: ttl,
                    flow_label,
                    ..Ipv6Spec::new(src, dst)
                })
            }
        };
        let link = link(from_client == self.client_inside, self.vlan);
        FrameSpec {
            link,
            ip,
            transport,
            payload,
            l4_checksum: true,
        }
    }

    /// Ports in the order of a packet's direction.
    fn ports(&self, from_client: bool) -> (u16, u16) {
        if from_client {
            (self.client_port, self.server_port)
        } else {
            (self.server_port, self.client_port)
        }
    }

    /// Writes a TCP segment with `payload_len` zero bytes of data.
    pub(super) fn write_tcp(&mut self, out: &mut Vec<u8>, from_client: bool, seg: Segment) {
        let (src_port, dst_port) = self.ports(from_client);
        let window = if from_client { 64240 } else { 65160 };
        let mss = if seg.flags & SYN == 0 {
            None
        } else if self.is_v6() {
            Some(1440)
        } else {
            Some(1460)
        };
        let tcp = TcpSpec {
            src_port,
            dst_port,
            seq: seg.seq,
            ack: seg.ack,
            flags: seg.flags,
            window,
            mss,
        };
        self.frame(
            from_client,
            TransportSpec::Tcp(tcp),
            Payload::Zeros(seg.payload_len),
        )
        .write(out);
    }

    /// Writes a UDP datagram.
    pub(super) fn write_udp(&mut self, out: &mut Vec<u8>, from_client: bool, payload: Payload<'_>) {
        let (src_port, dst_port) = self.ports(from_client);
        self.frame(
            from_client,
            TransportSpec::Udp(UdpSpec { src_port, dst_port }),
            payload,
        )
        .write(out);
    }

    /// Writes an echo request (from the client) or reply (from the server).
    pub(super) fn write_echo(
        &mut self,
        out: &mut Vec<u8>,
        from_client: bool,
        ident: u16,
        seq: u16,
    ) {
        let echo = IcmpEchoSpec {
            is_reply: !from_client,
            ident,
            seq,
        };
        self.frame(
            from_client,
            TransportSpec::IcmpEcho(echo),
            Payload::Zeros(PING_DATA),
        )
        .write(out);
    }
}

/// The varying fields of one TCP segment.
#[derive(Clone, Copy, Debug)]
pub(super) struct Segment {
    pub(super) seq: u32,
    pub(super) ack: u32,
    pub(super) flags: u8,
    pub(super) payload_len: usize,
}

/// Shorthand for a [`Segment`].
pub(super) fn seg(seq: u32, ack: u32, flags: u8, payload_len: usize) -> Segment {
    Segment {
        seq,
        ack,
        flags,
        payload_len,
    }
}
