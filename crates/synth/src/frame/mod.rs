//! A frame builder: [`FrameSpec`] describes one packet, [`FrameSpec::write`] serialises it.
//!
//! Owns the wire layout of what the generators emit: Ethernet II with an optional 802.1Q
//! tag, raw IP or Linux cooked (SLL) framing; IPv4 (RFC 791) or IPv6 (RFC 8200); TCP with an
//! optional MSS option (RFC 9293), UDP (RFC 768), ICMP/ICMPv6 echo (RFC 792, RFC 4443), or
//! no transport header; and a zero-filled, given or DNS payload. Lengths and checksums are
//! filled in. The types and `FrameSpec::write` live here; the header encoders in `wire`.
//! Does not own: DNS message layout (`dns`), choosing values (`scenarios`), or any parsing.
//!
//! # Invariants
//! - `write` clears and refills the caller's buffer, so a reused `Vec` stops allocating once
//!   it has grown to the largest frame.
//! - Zero-filled payload is never summed: it adds nothing to a checksum, and skipping it keeps
//!   a 1514-byte data frame as cheap as an ACK.
//! - Lengths saturate at `u16::MAX` if a caller asks for a packet larger than IP can carry;
//!   the frame is then deliberately inconsistent rather than a panic.

mod wire;

use std::net::{Ipv4Addr, Ipv6Addr};

use self::wire::{
    ETHERTYPE_IPV4, ETHERTYPE_IPV6, MIN_ETHERNET_FRAME, PROTO_UDP, put_u16, saturate_u16,
};
use super::checksum;
use super::dns::DnsMessage;

/// Link-layer framing of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkSpec {
    /// Ethernet II (pcap link type 1), padded to 60 bytes.
    Ethernet(EthernetSpec),
    /// No link header: the frame starts with the IP header (pcap link type 101).
    Raw,
    /// Linux cooked capture v1 header (pcap link type 113).
    LinuxSll {
        /// 0 = to us, 3 = another host, 4 = sent by us (`PACKET_*`).
        packet_type: u16,
        /// Link-layer address of the sender.
        src: [u8; 6],
    },
}

/// Ethernet II addresses and optional 802.1Q VLAN id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthernetSpec {
    /// Source MAC.
    pub src: [u8; 6],
    /// Destination MAC.
    pub dst: [u8; 6],
    /// VLAN id (12 bits used); `None` for an untagged frame.
    pub vlan: Option<u16>,
}

/// Network layer of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpSpec {
    /// IPv4 without options.
    V4(Ipv4Spec),
    /// IPv6 without extension headers.
    V6(Ipv6Spec),
}

/// IPv4 header fields the generators vary; length, protocol and checksum are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Spec {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Time to live.
    pub ttl: u8,
    /// Identification field.
    pub ident: u16,
    /// DF flag.
    pub dont_fragment: bool,
    /// MF flag.
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units (13 bits used).
    pub fragment_offset: u16,
}

impl Ipv4Spec {
    /// An unfragmented packet with DF set, TTL 64 and identification 0.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr) -> Ipv4Spec {
        Ipv4Spec {
            src,
            dst,
            ttl: 64,
            ident: 0,
            dont_fragment: true,
            more_fragments: false,
            fragment_offset: 0,
        }
    }
}

/// IPv6 header fields the generators vary; payload length and next header are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Spec {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Hop limit.
    pub hop_limit: u8,
    /// Flow label (20 bits used).
    pub flow_label: u32,
}

impl Ipv6Spec {
    /// A packet with hop limit 64 and flow label 0.
    pub fn new(src: Ipv6Addr, dst: Ipv6Addr) -> Ipv6Spec {
        Ipv6Spec {
            src,
            dst,
            hop_limit: 64,
            flow_label: 0,
        }
    }
}

/// Transport layer of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportSpec {
    /// TCP header (20 bytes, 24 with the MSS option).
    Tcp(TcpSpec),
    /// UDP header.
    Udp(UdpSpec),
    /// ICMP echo (over IPv4) or `ICMPv6` echo (over IPv6).
    IcmpEcho(IcmpEchoSpec),
    /// No transport header: the payload follows the IP header directly under `protocol`
    /// (use for non-first fragments and other protocols).
    Raw {
        /// IP protocol / next header number.
        protocol: u8,
    },
}

/// TCP header fields; data offset and checksum are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSpec {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Control bits, e.g. `0x12` for SYN|ACK (see `decode::TcpFlags`).
    pub flags: u8,
    /// Receive window.
    pub window: u16,
    /// MSS option value, sent only when `Some` (normally on SYN and SYN-ACK).
    pub mss: Option<u16>,
}

/// UDP ports; length and checksum are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpSpec {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

/// ICMP/ICMPv6 echo fields; the type follows from the IP version and `is_reply`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpEchoSpec {
    /// Echo reply rather than echo request.
    pub is_reply: bool,
    /// Identifier.
    pub ident: u16,
    /// Sequence number.
    pub seq: u16,
}

/// Bytes after the transport header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload<'a> {
    /// This many zero bytes.
    Zeros(usize),
    /// These bytes.
    Bytes(&'a [u8]),
    /// A DNS message.
    Dns(&'a DnsMessage<'a>),
}

/// One frame to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSpec<'a> {
    /// Link-layer framing.
    pub link: LinkSpec,
    /// IP header.
    pub ip: IpSpec,
    /// Transport header.
    pub transport: TransportSpec,
    /// Payload.
    pub payload: Payload<'a>,
    /// Compute the TCP/UDP/ICMP checksum; when false the field is left 0 (the IPv4 header
    /// checksum is always computed).
    pub l4_checksum: bool,
}

impl FrameSpec<'_> {
    /// Replaces the contents of `out` with this frame.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.clear();
        let (ethertype, ip_header_len, is_v6) = match self.ip {
            IpSpec::V4(_) => (ETHERTYPE_IPV4, 20, false),
            IpSpec::V6(_) => (ETHERTYPE_IPV6, 40, true),
        };
        self.link.write(ethertype, out);
        let ip_start = out.len();
        out.resize(ip_start + ip_header_len, 0);
        let l4_start = out.len();
        let info = self.transport.write_header(is_v6, out);
        let header_end = out.len();
        let payload_needs_sum = self.payload.write(out);
        let l4_len = out.len() - l4_start;
        if let TransportSpec::Udp(_) = self.transport {
            put_u16(out, l4_start + 4, saturate_u16(l4_len));
        }
        if let Some(header) = out.get_mut(ip_start..l4_start) {
            self.ip.write_header(header, info.protocol, l4_len);
        }
        if let (true, Some(at)) = (self.l4_checksum, info.checksum_at) {
            let sum_end = if payload_needs_sum {
                out.len()
            } else {
                header_end
            };
            let mut total = checksum::sum(out.get(l4_start..sum_end).unwrap_or_default());
            if info.pseudo_header {
                total += self.ip.pseudo_header_sum(info.protocol, l4_len);
            }
            let mut value = checksum::finish(total);
            if info.protocol == PROTO_UDP && value == 0 {
                // RFC 768: a computed zero is sent as all ones; zero means "no checksum".
                value = 0xffff;
            }
            put_u16(out, l4_start + at, value);
        }
        if matches!(self.link, LinkSpec::Ethernet(_)) && out.len() < MIN_ETHERNET_FRAME {
            out.resize(MIN_ETHERNET_FRAME, 0);
        }
    }
}

#[cfg(test)]
mod tests;
