//! ICMP (RFC 792) and `ICMPv6` (RFC 4443), including the packet quoted by error messages.
//!
//! Owns the 8-byte ICMP header view (type, code, checksum, 4 type-specific bytes: the same
//! layout in both versions), echo identifiers, and the [`QuotedPacket`] of errors.
//!
//! * Echo request/reply (v4 types 8/0, v6 types 128/129) yield [`IcmpRepr::echo_id`].
//! * Errors (v4: 3 destination unreachable, 4 source quench, 5 redirect, 11 time exceeded,
//!   12 parameter problem; v6: 1 destination unreachable, 2 packet too big, 3 time exceeded,
//!   4 parameter problem) quote the offending packet after the header: its IP header and at
//!   least the first 8 bytes of its payload (RFC 792; RFC 4443 §2.4 (c) quotes as much as
//!   fits). The quote never fails the outer packet: one too short for its IP header, or not
//!   IP of the message's version, gives [`IcmpRepr::quoted`] = `None`; one that ends before
//!   the ports (or quotes a later fragment, or a protocol without ports) gives zero ports.
//!
//! Header rules: 8 bytes must be present, else [`Reason::Truncated`] (layer
//! [`Layer::Icmp`](super::Layer::Icmp) or [`Layer::Icmpv6`](super::Layer::Icmpv6)).
//!
//! Does not own: checksums, neighbour discovery or router advertisement contents, the rest of
//! the quoted payload.
//!
//! Invariant: [`IcmpPacket::new_checked`] proves the header is present; quotes are read via
//! the IPv4/IPv6 checked views and `first_chunk` only.

use std::net::IpAddr;

use super::{Field, IcmpRepr, QuotedPacket, Reason, be16, ipv4::Ipv4Packet, ipv6};

/// Byte offsets of the ICMP/`ICMPv6` header (RFC 792; RFC 4443 §2.1).
mod field {
    use super::Field;

    pub(super) const TYPE: usize = 0;
    pub(super) const CODE: usize = 1;
    // Checksum 2..4 is not verified.
    /// Echo messages: identifier, then sequence number (6..8, not read).
    pub(super) const ECHO_IDENT: Field = 4..6;
    pub(super) const HEADER_LEN: usize = 8;
}

/// Byte offsets of the source and destination ports at the start of TCP, UDP, SCTP, DCCP
/// and UDP-Lite headers.
mod port_field {
    use super::Field;

    pub(super) const SRC_PORT: Field = 0..2;
    pub(super) const DST_PORT: Field = 2..4;
    pub(super) const LEN: usize = 4;
}

/// A checked view of an ICMP or `ICMPv6` header and the bytes after it.
#[derive(Clone, Copy, Debug)]
pub(super) struct IcmpPacket<'a> {
    header: &'a [u8; field::HEADER_LEN],
    payload: &'a [u8],
}

impl<'a> IcmpPacket<'a> {
    /// Checks that the 8-byte header is present.
    pub(super) fn new_checked(buffer: &'a [u8]) -> Result<Self, Reason> {
        let (header, payload) = buffer.split_first_chunk().ok_or(Reason::Truncated)?;
        Ok(IcmpPacket { header, payload })
    }

    #[inline]
    pub(super) fn msg_type(self) -> u8 {
        self.header[field::TYPE]
    }

    #[inline]
    pub(super) fn code(self) -> u8 {
        self.header[field::CODE]
    }

    /// The identifier field of an echo message.
    #[inline]
    pub(super) fn echo_ident(self) -> u16 {
        be16(&self.header[field::ECHO_IDENT])
    }

    /// The bytes after the header (for errors, the quoted packet).
    #[inline]
    pub(super) fn payload(self) -> &'a [u8] {
        self.payload
    }
}

/// Parses an ICMP (v4) message.
pub(super) fn parse_v4(bytes: &[u8]) -> Result<IcmpRepr, Reason> {
    let packet = IcmpPacket::new_checked(bytes)?;
    let icmp_type = packet.msg_type();
    let is_echo = matches!(
        icmp_type,
        IcmpRepr::V4_ECHO_REQUEST | IcmpRepr::V4_ECHO_REPLY
    );
    let is_error = matches!(icmp_type, 3 | 4 | 5 | 11 | 12);
    Ok(IcmpRepr {
        icmp_type,
        code: packet.code(),
        echo_id: is_echo.then(|| packet.echo_ident()),
        quoted: if is_error {
            quote_v4(packet.payload())
        } else {
            None
        },
    })
}

/// Parses an `ICMPv6` message.
pub(super) fn parse_v6(bytes: &[u8]) -> Result<IcmpRepr, Reason> {
    let packet = IcmpPacket::new_checked(bytes)?;
    let icmp_type = packet.msg_type();
    let is_echo = matches!(
        icmp_type,
        IcmpRepr::V6_ECHO_REQUEST | IcmpRepr::V6_ECHO_REPLY
    );
    let is_error = matches!(icmp_type, 1..=4);
    Ok(IcmpRepr {
        icmp_type,
        code: packet.code(),
        echo_id: is_echo.then(|| packet.echo_ident()),
        quoted: if is_error {
            quote_v6(packet.payload())
        } else {
            None
        },
    })
}

/// Returns true if and only if the protocol's header starts with source and destination
/// ports: TCP (6), UDP (17), DCCP (33), SCTP (132), UDP-Lite (136).
#[inline]
fn has_ports(protocol: u8) -> bool {
    matches!(protocol, 6 | 17 | 33 | 132 | 136)
}

/// Reads the ports at the start of a quoted transport header; zero when they are cut off or
/// the protocol has none.
#[inline]
fn quoted_ports(protocol: u8, transport: &[u8]) -> (u16, u16) {
    match transport.first_chunk::<{ port_field::LEN }>() {
        Some(ports) if has_ports(protocol) => (
            be16(&ports[port_field::SRC_PORT]),
            be16(&ports[port_field::DST_PORT]),
        ),
        _ => (0, 0),
    }
}

/// Decodes the IPv4 packet quoted by an ICMP error; `None` unless its header is complete.
fn quote_v4(quote: &[u8]) -> Option<QuotedPacket> {
    let ip = Ipv4Packet::new_checked(quote).ok()?;
    let protocol = ip.protocol();
    let (src_port, dst_port) = if ip.fragment().is_later() {
        (0, 0)
    } else {
        quoted_ports(protocol, ip.after_header())
    };
    Some(QuotedPacket {
        src: IpAddr::V4(ip.src_addr()),
        dst: IpAddr::V4(ip.dst_addr()),
        protocol,
        src_port,
        dst_port,
    })
}

/// Decodes the IPv6 packet quoted by an `ICMPv6` error; `None` unless its fixed header is
/// complete. When the quote cuts the extension-header chain, `protocol` is the first next
/// header and the ports are zero.
fn quote_v6(quote: &[u8]) -> Option<QuotedPacket> {
    let ip = ipv6::Ipv6Packet::new_checked(quote).ok()?;
    let after_header = ip.after_header();
    let (protocol, src_port, dst_port) =
        match ipv6::walk_extensions(ip.next_header(), after_header, after_header.len()) {
            Ok(chain) if !chain.fragment.is_later() => {
                let transport = after_header.get(chain.len..).unwrap_or_default();
                let (src_port, dst_port) = quoted_ports(chain.protocol, transport);
                (chain.protocol, src_port, dst_port)
            }
            Ok(chain) => (chain.protocol, 0, 0),
            Err(_) => (ip.next_header(), 0, 0),
        };
    Some(QuotedPacket {
        src: IpAddr::V6(ip.src_addr()),
        dst: IpAddr::V6(ip.dst_addr()),
        protocol,
        src_port,
        dst_port,
    })
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::decode::{DecodeError, Layer, LinkType, Transport, decode_frame};

    /// Port unreachable for a UDP probe 10.0.0.1:40000 → 10.0.0.2:33434.
    #[rustfmt::skip]
    static PORT_UNREACHABLE: [u8; 36] = [
        // type 3, code 3 (port unreachable), checksum, unused
        0x03, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        // quoted IPv4: version 4, IHL 5, total length 60, id, flags, TTL 1, UDP, checksum
        0x45, 0x00, 0x00, 0x3c, 0x00, 0x01, 0x00, 0x00, 0x01, 0x11, 0x00, 0x00,
        // quoted source 10.0.0.1, destination 10.0.0.2
        10, 0, 0, 1, 10, 0, 0, 2,
        // quoted UDP: source port 40000, destination port 33434, length, checksum
        0x9c, 0x40, 0x82, 0x9a, 0x00, 0x28, 0x00, 0x00,
    ];

    /// An `ICMPv6` echo request, identifier 0x4242, sequence 7, 2 bytes of data.
    #[rustfmt::skip]
    static ECHO_V6: [u8; 10] = [
        // type 128, code 0, checksum
        0x80, 0x00, 0x00, 0x00,
        // identifier 0x4242, sequence 7
        0x42, 0x42, 0x00, 0x07,
        // data
        0xaa, 0xbb,
    ];

    fn probe() -> QuotedPacket {
        QuotedPacket {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            protocol: 17,
            src_port: 40000,
            dst_port: 33434,
        }
    }

    #[test]
    fn test_deconstruct_error_with_quote() {
        let repr = parse_v4(&PORT_UNREACHABLE).unwrap();
        assert_eq!(
            repr,
            IcmpRepr {
                icmp_type: 3,
                code: 3,
                echo_id: None,
                quoted: Some(probe())
            }
        );
    }

    #[test]
    fn test_deconstruct_echo_v6() {
        let repr = parse_v6(&ECHO_V6).unwrap();
        assert_eq!(
            repr,
            IcmpRepr {
                icmp_type: 128,
                code: 0,
                echo_id: Some(0x4242),
                quoted: None
            }
        );
    }

    #[test]
    fn test_echo_v4_reply_has_identifier() {
        let reply = [0, 0, 0, 0, 0x12, 0x34, 0, 1];
        assert_eq!(parse_v4(&reply).unwrap().echo_id, Some(0x1234));
        // Same bytes as a v6 message: type 0 is not an echo there.
        assert_eq!(parse_v6(&reply).unwrap().echo_id, None);
    }

    #[test]
    fn test_truncated_at_every_length() {
        for len in 0..PORT_UNREACHABLE.len() {
            let result = parse_v4(&PORT_UNREACHABLE[..len]);
            match len {
                0..8 => assert_eq!(result, Err(Reason::Truncated), "len {len}"),
                // The quoted IP header is cut: no quote, the error itself is fine.
                8..28 => assert_eq!(result.unwrap().quoted, None, "len {len}"),
                // Header complete, ports cut: addresses kept, ports zero.
                28..32 => {
                    let quoted = result.unwrap().quoted.unwrap();
                    assert_eq!((quoted.src_port, quoted.dst_port), (0, 0), "len {len}");
                    assert_eq!(quoted.dst, probe().dst, "len {len}");
                }
                _ => assert_eq!(result.unwrap().quoted, Some(probe()), "len {len}"),
            }
        }
        for len in 0..8 {
            assert_eq!(parse_v6(&ECHO_V6[..len]), Err(Reason::Truncated));
        }
    }

    #[test]
    fn test_overlong_quote_ignores_the_rest() {
        let mut long = PORT_UNREACHABLE.to_vec();
        long.extend_from_slice(&[0x55; 32]);
        assert_eq!(parse_v4(&long).unwrap().quoted, Some(probe()));
    }

    #[test]
    fn test_unknown_type_kept() {
        let repr = parse_v4(&[42, 7, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(
            repr,
            IcmpRepr {
                icmp_type: 42,
                code: 7,
                echo_id: None,
                quoted: None
            }
        );
    }

    #[test]
    fn test_quote_of_non_ipv4_is_none() {
        let mut message = PORT_UNREACHABLE;
        message[8] = 0x65;
        assert_eq!(parse_v4(&message).unwrap().quoted, None);
    }

    #[test]
    fn test_quote_of_icmp_has_no_ports() {
        let mut message = PORT_UNREACHABLE;
        message[17] = 1;
        let quoted = parse_v4(&message).unwrap().quoted.unwrap();
        assert_eq!(
            (quoted.protocol, quoted.src_port, quoted.dst_port),
            (1, 0, 0)
        );
    }

    #[test]
    fn test_quote_of_later_fragment_has_no_ports() {
        let mut message = PORT_UNREACHABLE;
        message[14..16].copy_from_slice(&0x0010_u16.to_be_bytes());
        let quoted = parse_v4(&message).unwrap().quoted.unwrap();
        assert_eq!((quoted.src_port, quoted.dst_port), (0, 0));
    }

    /// An `ICMPv6` destination unreachable quoting a TCP SYN behind a destination-options
    /// header, cut after `quote_len` bytes of the quote.
    fn unreachable_v6(quote_len: usize) -> Vec<u8> {
        let mut message = vec![1, 4, 0, 0, 0, 0, 0, 0];
        // quoted IPv6: version 6, payload length 28, next header destination options, hop limit
        message.extend_from_slice(&[0x60, 0, 0, 0, 0, 28, 60, 64]);
        message.extend_from_slice(&"2001:db8::a".parse::<Ipv6Addr>().unwrap().octets());
        message.extend_from_slice(&"2001:db8::b".parse::<Ipv6Addr>().unwrap().octets());
        // destination options: next header TCP, length 0, PadN
        message.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
        // TCP ports 50000 → 22, sequence number
        message.extend_from_slice(&[0xc3, 0x50, 0x00, 0x16, 0, 0, 0, 1]);
        message.truncate(8 + quote_len);
        message
    }

    #[test]
    fn test_quote_v6_walks_extension_headers() {
        let quoted = parse_v6(&unreachable_v6(56)).unwrap().quoted.unwrap();
        assert_eq!(quoted.src, IpAddr::V6("2001:db8::a".parse().unwrap()));
        assert_eq!(
            (quoted.protocol, quoted.src_port, quoted.dst_port),
            (6, 50000, 22)
        );
    }

    #[test]
    fn test_quote_v6_cut_in_extension_keeps_addresses() {
        for quote_len in 40..48 {
            let quoted = parse_v6(&unreachable_v6(quote_len))
                .unwrap()
                .quoted
                .unwrap();
            assert_eq!(
                (quoted.protocol, quoted.src_port, quoted.dst_port),
                (60, 0, 0)
            );
        }
        assert_eq!(parse_v6(&unreachable_v6(39)).unwrap().quoted, None);
    }

    #[test]
    fn test_decode_frame_icmpv6_in_ipv6() {
        let mut packet = vec![0x60, 0, 0, 0, 0, 10, 58, 255];
        packet.extend_from_slice(&[0; 32]);
        packet.extend_from_slice(&ECHO_V6);
        let decoded = decode_frame(LinkType::Ipv6, &packet);
        assert_eq!(decoded.error, None);
        assert_eq!(
            decoded.transport,
            Transport::Icmpv6(parse_v6(&ECHO_V6).unwrap())
        );
        let decoded = decode_frame(LinkType::Ipv6, &packet[..45]);
        assert_eq!(
            decoded.error,
            Some(DecodeError::new(Layer::Icmpv6, Reason::Truncated))
        );
    }
}
