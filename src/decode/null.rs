//! BSD loopback encapsulation: `LINKTYPE_NULL` (0) and `LINKTYPE_LOOP` (108).
//!
//! Owns the 4-byte address-family header. `LINKTYPE_NULL` stores the family in the byte order
//! of the host that captured it, which the file does not record; families are small numbers,
//! so a value with its upper half zero is read as little-endian and anything else as
//! big-endian. `LINKTYPE_LOOP` (OpenBSD) is always big-endian.
//!
//! Families (<https://www.tcpdump.org/linktypes/LINKTYPE_NULL.html>): 2 is IPv4 everywhere;
//! IPv6 is 10 (Linux), 24 (NetBSD, OpenBSD, BSD/OS), 28 (FreeBSD, `DragonFly`) or 30 (macOS).
//! Any other family (OSI, IPX, `AppleTalk`…) is one these links cannot carry for netwarden:
//! a [`Layer::Link`] [`Reason::InvalidField`] error.
//!
//! Invariant: the header is read through `split_first_chunk` only.

use super::{DecodeError, Decoded, Layer, Reason};

/// Length of the address-family header.
const HEADER_LEN: usize = 4;

/// How the 4-byte family is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ByteOrder {
    /// `LINKTYPE_NULL`: the capturing host's order, guessed from the value.
    Host,
    /// `LINKTYPE_LOOP`: network order.
    Network,
}

/// Reads the address family from the header.
#[inline]
fn family(header: [u8; HEADER_LEN], order: ByteOrder) -> u32 {
    let big_endian = u32::from_be_bytes(header);
    match order {
        ByteOrder::Network => big_endian,
        ByteOrder::Host => {
            let little_endian = u32::from_le_bytes(header);
            if little_endian >> 16 == 0 {
                little_endian
            } else {
                big_endian
            }
        }
    }
}

/// Decodes the header and the IPv4/IPv6 packet after it.
fn decode<'a>(data: &'a [u8], order: ByteOrder, out: &mut Decoded<'a>) -> Result<(), DecodeError> {
    let error = |reason| DecodeError::new(Layer::Link, reason);
    let (header, payload) = data.split_first_chunk().ok_or(error(Reason::Truncated))?;
    match family(*header, order) {
        2 => super::decode_ipv4(payload, out),
        10 | 24 | 28 | 30 => super::decode_ipv6(payload, out),
        _ => Err(error(Reason::InvalidField)),
    }
}

/// Decodes a `LINKTYPE_NULL` frame.
pub(super) fn decode_null<'a>(data: &'a [u8], out: &mut Decoded<'a>) -> Result<(), DecodeError> {
    decode(data, ByteOrder::Host, out)
}

/// Decodes a `LINKTYPE_LOOP` frame.
pub(super) fn decode_loop<'a>(data: &'a [u8], out: &mut Decoded<'a>) -> Result<(), DecodeError> {
    decode(data, ByteOrder::Network, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{LinkType, Network, Transport, decode_frame};

    /// NULL header (family 2, little-endian) and an IPv4 header carrying a UDP header.
    #[rustfmt::skip]
    static NULL_IPV4_UDP: [u8; 32] = [
        // family AF_INET, little-endian
        0x02, 0x00, 0x00, 0x00,
        // IPv4: version 4, IHL 5, total length 28, id, flags, TTL, UDP, checksum
        0x45, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00,
        // source 127.0.0.1, destination 127.0.0.1
        127, 0, 0, 1, 127, 0, 0, 1,
        // UDP: ports 9 → 9, length 8, checksum
        0x00, 0x09, 0x00, 0x09, 0x00, 0x08, 0x00, 0x00,
    ];

    #[test]
    fn test_family_byte_orders() {
        assert_eq!(family([2, 0, 0, 0], ByteOrder::Host), 2);
        assert_eq!(family([0, 0, 0, 2], ByteOrder::Host), 2);
        assert_eq!(family([30, 0, 0, 0], ByteOrder::Host), 30);
        assert_eq!(family([0, 0, 0, 24], ByteOrder::Host), 24);
        assert_eq!(family([0, 0, 0, 24], ByteOrder::Network), 24);
        assert_eq!(family([24, 0, 0, 0], ByteOrder::Network), 0x1800_0000);
    }

    #[test]
    fn test_decode_null_ipv4() {
        let decoded = decode_frame(LinkType::Null, &NULL_IPV4_UDP);
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.ip().unwrap().total_len, 28);
        assert!(matches!(decoded.transport, Transport::Udp(_)));
        // A big-endian writer gives the same result.
        let mut big_endian = NULL_IPV4_UDP;
        big_endian[..4].copy_from_slice(&[0, 0, 0, 2]);
        assert_eq!(decode_frame(LinkType::Null, &big_endian), decoded);
        assert_eq!(decode_frame(LinkType::Loop, &big_endian), decoded);
    }

    #[test]
    fn test_ipv6_families() {
        for family in [10_u8, 24, 28, 30] {
            let mut frame = vec![family, 0, 0, 0, 0x60, 0, 0, 0, 0, 0, 59, 1];
            frame.extend_from_slice(&[0; 32]);
            let decoded = decode_frame(LinkType::Null, &frame);
            assert_eq!(decoded.error, None, "family {family}");
            assert_eq!(decoded.ip().unwrap().protocol, 59);
        }
    }

    #[test]
    fn test_truncated_at_every_length() {
        for len in 0..NULL_IPV4_UDP.len() {
            let layer = match len {
                0..4 => Layer::Link,
                4..24 => Layer::Ipv4,
                _ => Layer::Udp,
            };
            let decoded = decode_frame(LinkType::Null, &NULL_IPV4_UDP[..len]);
            assert_eq!(
                decoded.error,
                Some(DecodeError::new(layer, Reason::Truncated)),
                "{len}"
            );
        }
    }

    #[test]
    fn test_overlong_frame() {
        let mut padded = NULL_IPV4_UDP.to_vec();
        padded.extend_from_slice(&[0; 7]);
        assert_eq!(
            decode_frame(LinkType::Null, &padded),
            decode_frame(LinkType::Null, &NULL_IPV4_UDP)
        );
    }

    #[test]
    fn test_unknown_family_is_invalid() {
        let mut frame = NULL_IPV4_UDP;
        frame[0] = 7;
        let decoded = decode_frame(LinkType::Null, &frame);
        assert_eq!(
            decoded.error,
            Some(DecodeError::new(Layer::Link, Reason::InvalidField))
        );
        assert_eq!(decoded.network, Network::Other { ethertype: 0 });
        // Little-endian 2 read in network order is not a family.
        assert_eq!(
            decode_frame(LinkType::Loop, &NULL_IPV4_UDP).error,
            decoded.error
        );
    }
}
