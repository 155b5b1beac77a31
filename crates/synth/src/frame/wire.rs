//! Wire encoding of the headers a [`FrameSpec`](super::FrameSpec) describes.
//!
//! Owns the byte layout of each header (RFC 894 Ethernet, IEEE 802.1Q, Linux SLL v1,
//! RFC 791 IPv4, RFC 8200 IPv6, RFC 9293 TCP, RFC 768 UDP, RFC 792/4443 echo), the
//! pseudo-header sums, and the small byte helpers. Offsets computed here always lie inside
//! headers just written, so the helpers' out-of-range fallbacks are never taken.

use super::{IpSpec, LinkSpec, Payload, TransportSpec};
use crate::checksum;

/// `EtherType` of IPv4.
pub(super) const ETHERTYPE_IPV4: u16 = 0x0800;
/// `EtherType` of IPv6.
pub(super) const ETHERTYPE_IPV6: u16 = 0x86dd;
/// TPID of an 802.1Q tag.
const ETHERTYPE_VLAN: u16 = 0x8100;
/// Shortest Ethernet frame without FCS; shorter frames are zero-padded, as NICs do.
pub(super) const MIN_ETHERNET_FRAME: usize = 60;
/// `ARPHRD_ETHER`, the hardware type in a Linux cooked header.
const ARPHRD_ETHER: u16 = 1;
/// IP protocol numbers.
const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
pub(super) const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;

/// What the transport header writer tells the frame writer.
pub(super) struct TransportInfo {
    pub(super) protocol: u8,
    /// Offset of the checksum field from the start of the transport header.
    pub(super) checksum_at: Option<usize>,
    /// The checksum covers the IP pseudo-header (everything but `ICMPv4`).
    pub(super) pseudo_header: bool,
}

impl LinkSpec {
    pub(super) fn write(&self, ethertype: u16, out: &mut Vec<u8>) {
        match self {
            LinkSpec::Ethernet(eth) => {
                out.extend_from_slice(&eth.dst);
                out.extend_from_slice(&eth.src);
                if let Some(vlan) = eth.vlan {
                    out.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
                    out.extend_from_slice(&(vlan & 0x0fff).to_be_bytes());
                }
                out.extend_from_slice(&ethertype.to_be_bytes());
            }
            LinkSpec::Raw => {}
            LinkSpec::LinuxSll { packet_type, src } => {
                out.extend_from_slice(&packet_type.to_be_bytes());
                out.extend_from_slice(&ARPHRD_ETHER.to_be_bytes());
                out.extend_from_slice(&6u16.to_be_bytes());
                out.extend_from_slice(src);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&ethertype.to_be_bytes());
            }
        }
    }
}

impl IpSpec {
    /// Fills the 20- or 40-byte header slot once the transport length is known.
    pub(super) fn write_header(&self, header: &mut [u8], protocol: u8, l4_len: usize) {
        match self {
            IpSpec::V4(ip) => {
                let flags = (u16::from(ip.dont_fragment) << 14)
                    | (u16::from(ip.more_fragments) << 13)
                    | (ip.fragment_offset & 0x1fff);
                let mut bytes = [0u8; 20];
                let fields: [&[u8]; 8] = [
                    &[0x45, 0],
                    &saturate_u16(20 + l4_len).to_be_bytes(),
                    &ip.ident.to_be_bytes(),
                    &flags.to_be_bytes(),
                    &[ip.ttl, protocol],
                    &[0, 0],
                    &ip.src.octets(),
                    &ip.dst.octets(),
                ];
                concat_into(&mut bytes, &fields);
                let sum = checksum::checksum(&bytes);
                put_u16(&mut bytes, 10, sum);
                copy_prefix(header, &bytes);
            }
            IpSpec::V6(ip) => {
                let first = (6u32 << 28) | (ip.flow_label & 0x000f_ffff);
                let mut bytes = [0u8; 40];
                let fields: [&[u8]; 5] = [
                    &first.to_be_bytes(),
                    &saturate_u16(l4_len).to_be_bytes(),
                    &[protocol, ip.hop_limit],
                    &ip.src.octets(),
                    &ip.dst.octets(),
                ];
                concat_into(&mut bytes, &fields);
                copy_prefix(header, &bytes);
            }
        }
    }

    /// Sum of the pseudo-header (RFC 9293 §3.1 for IPv4, RFC 8200 §8.1 for IPv6).
    pub(super) fn pseudo_header_sum(&self, protocol: u8, l4_len: usize) -> u64 {
        let len = u64::try_from(l4_len).unwrap_or(u64::MAX);
        match self {
            IpSpec::V4(ip) => {
                checksum::sum(&ip.src.octets())
                    + checksum::sum(&ip.dst.octets())
                    + u64::from(protocol)
                    + len
            }
            IpSpec::V6(ip) => {
                // The 32-bit upper-layer length contributes its two 16-bit halves.
                checksum::sum(&ip.src.octets())
                    + checksum::sum(&ip.dst.octets())
                    + (len >> 16)
                    + (len & 0xffff)
                    + u64::from(protocol)
            }
        }
    }
}

impl TransportSpec {
    pub(super) fn write_header(&self, is_v6: bool, out: &mut Vec<u8>) -> TransportInfo {
        match self {
            TransportSpec::Tcp(tcp) => {
                let header_words: u8 = if tcp.mss.is_some() { 6 } else { 5 };
                out.extend_from_slice(&tcp.src_port.to_be_bytes());
                out.extend_from_slice(&tcp.dst_port.to_be_bytes());
                out.extend_from_slice(&tcp.seq.to_be_bytes());
                out.extend_from_slice(&tcp.ack.to_be_bytes());
                out.extend_from_slice(&[header_words << 4, tcp.flags]);
                out.extend_from_slice(&tcp.window.to_be_bytes());
                out.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
                if let Some(mss) = tcp.mss {
                    out.extend_from_slice(&[2, 4]); // kind MSS, length 4
                    out.extend_from_slice(&mss.to_be_bytes());
                }
                TransportInfo {
                    protocol: PROTO_TCP,
                    checksum_at: Some(16),
                    pseudo_header: true,
                }
            }
            TransportSpec::Udp(udp) => {
                out.extend_from_slice(&udp.src_port.to_be_bytes());
                out.extend_from_slice(&udp.dst_port.to_be_bytes());
                out.extend_from_slice(&[0, 0, 0, 0]); // length (filled later), checksum
                TransportInfo {
                    protocol: PROTO_UDP,
                    checksum_at: Some(6),
                    pseudo_header: true,
                }
            }
            TransportSpec::IcmpEcho(echo) => {
                let (icmp_type, protocol) = match (is_v6, echo.is_reply) {
                    (false, false) => (8, PROTO_ICMP),
                    (false, true) => (0, PROTO_ICMP),
                    (true, false) => (128, PROTO_ICMPV6),
                    (true, true) => (129, PROTO_ICMPV6),
                };
                out.extend_from_slice(&[icmp_type, 0, 0, 0]);
                out.extend_from_slice(&echo.ident.to_be_bytes());
                out.extend_from_slice(&echo.seq.to_be_bytes());
                TransportInfo {
                    protocol,
                    checksum_at: Some(2),
                    pseudo_header: is_v6,
                }
            }
            TransportSpec::Raw { protocol } => TransportInfo {
                protocol: *protocol,
                checksum_at: None,
                pseudo_header: false,
            },
        }
    }
}

impl Payload<'_> {
    /// Appends the payload; returns whether it may hold non-zero bytes (and must be summed).
    pub(super) fn write(&self, out: &mut Vec<u8>) -> bool {
        match self {
            Payload::Zeros(len) => {
                out.resize(out.len() + len, 0);
                false
            }
            Payload::Bytes(bytes) => {
                out.extend_from_slice(bytes);
                true
            }
            Payload::Dns(message) => {
                message.write(out);
                true
            }
        }
    }
}

pub(super) fn saturate_u16(value: usize) -> u16 {
    u16::try_from(value).unwrap_or(u16::MAX)
}

/// Stores `value` big-endian at `at`; a position past the end is a no-op (cannot happen for
/// the offsets this module computes, which all lie inside headers it has just written).
pub(super) fn put_u16(out: &mut [u8], at: usize, value: u16) {
    if let Some(slot) = out.get_mut(at..at + 2) {
        slot.copy_from_slice(&value.to_be_bytes());
    }
}

/// Copies `fields` back to back into `dst`, stopping at its end.
fn concat_into(dst: &mut [u8], fields: &[&[u8]]) {
    let mut at = 0;
    for field in fields {
        copy_prefix(dst.get_mut(at..).unwrap_or_default(), field);
        at += field.len();
    }
}

/// Copies as much of `src` as fits into the start of `dst`.
fn copy_prefix(dst: &mut [u8], src: &[u8]) {
    let n = dst.len().min(src.len());
    if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
        d.copy_from_slice(s);
    }
}
