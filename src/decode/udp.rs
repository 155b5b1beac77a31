//! UDP (RFC 768), and the hand-off of port-53 datagrams to the DNS decoder.
//!
//! Owns the UDP header view and the [`UdpRepr`] summary.
//!
//! Length rules (each failure is a [`Layer::Udp`] error):
//! * the 8-byte header must be captured, else [`Reason::Truncated`];
//! * the length field must be ≥ 8, else [`Reason::BadTotalLength`] (a length of 0 in an IPv6
//!   jumbogram means "the IP payload length", RFC 2675 §4);
//! * the length field must not exceed the IP payload length, else [`Reason::BadTotalLength`],
//!   except in a first fragment, whose UDP length covers the whole datagram.
//!
//! A length shorter than the IP payload trims the datagram (the rest is not UDP data).
//!
//! Does not own: checksum verification, DNS parsing (`dns.rs`).
//!
//! Invariant: [`UdpPacket::new_checked`] proves the header is present.

use super::{DecodeError, Decoded, Field, IpPayload, Layer, Reason, Transport, UdpRepr, be16, dns};

/// Byte offsets of the UDP header (RFC 768).
mod field {
    use super::Field;

    pub(super) const SRC_PORT: Field = 0..2;
    pub(super) const DST_PORT: Field = 2..4;
    pub(super) const LENGTH: Field = 4..6;
    pub(super) const HEADER_LEN: usize = 8;
}

/// The well-known DNS port (RFC 1035 §4.2.1).
const DNS_PORT: u16 = 53;

/// A checked view of a UDP header and the bytes after it.
#[derive(Clone, Copy, Debug)]
pub(super) struct UdpPacket<'a> {
    header: &'a [u8; field::HEADER_LEN],
    payload: &'a [u8],
}

impl<'a> UdpPacket<'a> {
    /// Checks that the header is present.
    pub(super) fn new_checked(buffer: &'a [u8]) -> Result<Self, Reason> {
        let (header, payload) = buffer.split_first_chunk().ok_or(Reason::Truncated)?;
        Ok(UdpPacket { header, payload })
    }

    #[inline]
    pub(super) fn src_port(self) -> u16 {
        be16(&self.header[field::SRC_PORT])
    }

    #[inline]
    pub(super) fn dst_port(self) -> u16 {
        be16(&self.header[field::DST_PORT])
    }

    /// The length field: header plus data.
    #[inline]
    pub(super) fn len(self) -> u16 {
        be16(&self.header[field::LENGTH])
    }

    /// The bytes after the header, up to the end of the IP payload present.
    #[inline]
    pub(super) fn payload(self) -> &'a [u8] {
        self.payload
    }
}

/// Parses the UDP header at the start of an IP payload; returns the summary and the datagram
/// data present (trimmed to the UDP length).
pub(super) fn parse(payload: IpPayload<'_>) -> Result<(UdpRepr, &[u8]), Reason> {
    let packet = UdpPacket::new_checked(payload.bytes)?;
    let udp_len = match usize::from(packet.len()) {
        0 if payload.len > usize::from(u16::MAX) => payload.len,
        len => len,
    };
    if udp_len > payload.len && !payload.more_fragments {
        return Err(Reason::BadTotalLength);
    }
    let data_len = udp_len
        .checked_sub(field::HEADER_LEN)
        .ok_or(Reason::BadTotalLength)?;
    let data = packet.payload().get(..data_len).unwrap_or(packet.payload());
    let repr = UdpRepr {
        src_port: packet.src_port(),
        dst_port: packet.dst_port(),
        payload_len: super::len_u32(data_len),
    };
    Ok((repr, data))
}

/// Decodes the UDP header into [`Transport::Udp`], then DNS for port-53 traffic.
///
/// A DNS failure leaves the UDP summary in place and reports [`Layer::Dns`].
pub(super) fn decode<'a>(payload: IpPayload<'a>, out: &mut Decoded<'a>) -> Result<(), DecodeError> {
    let (repr, data) = parse(payload).map_err(|reason| DecodeError::new(Layer::Udp, reason))?;
    out.transport = Transport::Udp(repr);
    if repr.src_port == DNS_PORT || repr.dst_port == DNS_PORT {
        return dns::decode(data, repr.payload_len, out);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::DnsRepr;

    /// A DNS query header with no questions, over UDP.
    #[rustfmt::skip]
    static DNS_DATAGRAM: [u8; 20] = [
        // source port 33000, destination port 53
        0x80, 0xe8, 0x00, 0x35,
        // length 20, checksum
        0x00, 0x14, 0x00, 0x00,
        // DNS: id 0xbeef, flags RD, no questions or records
        0xbe, 0xef, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    fn ip_payload(bytes: &[u8]) -> IpPayload<'_> {
        IpPayload {
            bytes,
            len: bytes.len(),
            more_fragments: false,
        }
    }

    #[test]
    fn test_deconstruct() {
        let (repr, data) = parse(ip_payload(&DNS_DATAGRAM)).unwrap();
        assert_eq!(
            repr,
            UdpRepr {
                src_port: 33000,
                dst_port: 53,
                payload_len: 12
            }
        );
        assert_eq!(data, &DNS_DATAGRAM[8..]);
    }

    #[test]
    fn test_decode_runs_dns_on_port_53() {
        let mut out = Decoded::EMPTY;
        decode(ip_payload(&DNS_DATAGRAM), &mut out).unwrap();
        let dns: DnsRepr<'_> = out.dns.unwrap();
        assert_eq!(
            (dns.id, dns.is_response, dns.message_len),
            (0xbeef, false, 12)
        );
    }

    #[test]
    fn test_decode_skips_dns_on_other_ports() {
        let mut datagram = DNS_DATAGRAM;
        datagram[2..4].copy_from_slice(&5353_u16.to_be_bytes());
        let mut out = Decoded::EMPTY;
        decode(ip_payload(&datagram), &mut out).unwrap();
        assert_eq!(out.dns, None);
        assert!(matches!(out.transport, Transport::Udp(_)));
    }

    #[test]
    fn test_truncated_at_every_length() {
        for len in 0..DNS_DATAGRAM.len() {
            let cut = IpPayload {
                bytes: &DNS_DATAGRAM[..len],
                len: 20,
                more_fragments: false,
            };
            let mut out = Decoded::EMPTY;
            let result = decode(cut, &mut out);
            if len < 8 {
                assert_eq!(result, Err(DecodeError::new(Layer::Udp, Reason::Truncated)));
                assert_eq!(out.transport, Transport::None);
            } else {
                // The DNS header is cut; UDP stays decoded.
                assert_eq!(result, Err(DecodeError::new(Layer::Dns, Reason::Truncated)));
                assert!(matches!(out.transport, Transport::Udp(_)));
            }
        }
    }

    #[test]
    fn test_overlong_payload_trimmed_to_udp_length() {
        let mut padded = DNS_DATAGRAM.to_vec();
        padded.extend_from_slice(&[0xff; 5]);
        let (repr, data) = parse(ip_payload(&padded)).unwrap();
        assert_eq!(repr.payload_len, 12);
        assert_eq!(data.len(), 12);
    }

    #[test]
    fn test_length_below_header() {
        for len in 0..8_u16 {
            let mut datagram = DNS_DATAGRAM;
            datagram[4..6].copy_from_slice(&len.to_be_bytes());
            assert_eq!(
                parse(ip_payload(&datagram)).err(),
                Some(Reason::BadTotalLength)
            );
        }
    }

    #[test]
    fn test_length_beyond_ip_payload() {
        let mut datagram = DNS_DATAGRAM;
        datagram[4..6].copy_from_slice(&21_u16.to_be_bytes());
        assert_eq!(
            parse(ip_payload(&datagram)).err(),
            Some(Reason::BadTotalLength)
        );
        // A first fragment carries only part of the datagram the length describes.
        let first_fragment = IpPayload {
            bytes: &datagram,
            len: 20,
            more_fragments: true,
        };
        assert_eq!(parse(first_fragment).unwrap().0.payload_len, 13);
    }

    #[test]
    fn test_zero_length_jumbogram() {
        let mut datagram = DNS_DATAGRAM;
        datagram[4..6].copy_from_slice(&[0, 0]);
        let jumbo = IpPayload {
            bytes: &datagram,
            len: 70_000,
            more_fragments: false,
        };
        assert_eq!(parse(jumbo).unwrap().0.payload_len, 70_000 - 8);
    }
}
