//! `PPPoE` session stage (RFC 2516 §4, Ethernet type 0x8864) and the PPP protocol field.
//!
//! Owns the 6-byte `PPPoE` header plus the 2-byte PPP protocol (RFC 1661 §2) that follows it.
//! PPP protocol 0x0021 is IPv4 and 0x0057 IPv6 (RFC 5072 §3); control protocols (LCP, IPCP,
//! PAP…) and anything else are kept as [`Network::Other`](super::Network::Other) with the
//! `PPPoE` session Ethernet type, without error. The discovery stage (0x8863) never reaches
//! this file.
//!
//! Rules (each failure is a [`Layer::Pppoe`] error): 8 bytes must be present, else
//! [`Reason::Truncated`]; version and type must both be 1, else [`Reason::InvalidField`];
//! the length (PPP protocol plus payload) must be ≥ 2, else [`Reason::BadTotalLength`]. A
//! length shorter than the frame trims it (Ethernet padding); a longer one means the snap
//! length cut the frame.
//!
//! Does not own: session ids, the discovery stage, PPP protocol-field compression (a 1-byte
//! protocol field, RFC 1661 §6.5; rarely negotiated over `PPPoE`, and such frames read as an
//! unknown protocol and are kept as `Other`).
//!
//! Invariant: [`PppoePacket::new_checked`] proves the 8 header bytes are present.

use super::{DecodeError, Decoded, Field, Layer, Reason, be16};

/// Byte offsets of the `PPPoE` header (RFC 2516 §4) and the PPP protocol field.
mod field {
    use super::Field;

    /// Version (4 bits) and type (4 bits), both 1.
    pub(super) const VER_TYPE: usize = 0;
    // Code 1 (0 in the session stage) and session id 2..4 are not read.
    /// Length of the `PPPoE` payload: the PPP protocol field and the PPP payload.
    pub(super) const LENGTH: Field = 4..6;
    pub(super) const PPP_PROTOCOL: Field = 6..8;
    pub(super) const HEADER_LEN: usize = 8;
}

/// Version 1, type 1.
const VER_TYPE_1_1: u8 = 0x11;
/// Size of the PPP protocol field counted by the `PPPoE` length.
const PPP_PROTOCOL_LEN: usize = 2;
/// PPP protocol numbers (RFC 1332, RFC 5072).
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;

/// A checked view of a `PPPoE` session header with its PPP protocol field.
#[derive(Clone, Copy, Debug)]
pub(super) struct PppoePacket<'a> {
    header: &'a [u8; field::HEADER_LEN],
    payload: &'a [u8],
}

impl<'a> PppoePacket<'a> {
    /// Checks presence, version/type and that the length covers the PPP protocol field.
    pub(super) fn new_checked(buffer: &'a [u8]) -> Result<Self, Reason> {
        let (header, payload) = buffer.split_first_chunk().ok_or(Reason::Truncated)?;
        let packet = PppoePacket { header, payload };
        if header[field::VER_TYPE] != VER_TYPE_1_1 {
            return Err(Reason::InvalidField);
        }
        if usize::from(packet.len()) < PPP_PROTOCOL_LEN {
            return Err(Reason::BadTotalLength);
        }
        Ok(packet)
    }

    /// The `PPPoE` length field.
    #[inline]
    pub(super) fn len(self) -> u16 {
        be16(&self.header[field::LENGTH])
    }

    /// The PPP protocol number.
    #[inline]
    pub(super) fn ppp_protocol(self) -> u16 {
        be16(&self.header[field::PPP_PROTOCOL])
    }

    /// The PPP payload, trimmed to the `PPPoE` length when the frame is longer.
    #[inline]
    pub(super) fn payload(self) -> &'a [u8] {
        let len = usize::from(self.len()).saturating_sub(PPP_PROTOCOL_LEN);
        self.payload.get(..len).unwrap_or(self.payload)
    }
}

/// Decodes a `PPPoE` session frame and its IPv4/IPv6 payload.
pub(super) fn decode<'a>(data: &'a [u8], out: &mut Decoded<'a>) -> Result<(), DecodeError> {
    let packet =
        PppoePacket::new_checked(data).map_err(|reason| DecodeError::new(Layer::Pppoe, reason))?;
    match packet.ppp_protocol() {
        PPP_IPV4 => super::decode_ipv4(packet.payload(), out),
        PPP_IPV6 => super::decode_ipv6(packet.payload(), out),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{LinkType, Network, Transport, decode_frame, ethertype};

    /// Ethernet, `PPPoE` session, PPP IPv6, an IPv6 header with no payload, then padding.
    #[rustfmt::skip]
    static PPPOE_IPV6: [u8; 66] = [
        // destination MAC, source MAC
        0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2,
        // Ethernet type PPPoE session
        0x88, 0x64,
        // version 1 type 1, code 0, session id 0x0042, length 42
        0x11, 0x00, 0x00, 0x42, 0x00, 0x2a,
        // PPP protocol IPv6
        0x00, 0x57,
        // IPv6: version 6, payload length 0, next header 59 (none), hop limit 255
        0x60, 0, 0, 0, 0x00, 0x00, 59, 255,
        // source fe80::1
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        // destination fe80::2
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
        // Ethernet padding
        0, 0, 0, 0,
    ];

    #[test]
    fn test_deconstruct() {
        let packet = PppoePacket::new_checked(&PPPOE_IPV6[14..]).unwrap();
        assert_eq!(packet.len(), 42);
        assert_eq!(packet.ppp_protocol(), PPP_IPV6);
        // The padding is trimmed by the PPPoE length.
        assert_eq!(packet.payload().len(), 40);
    }

    #[test]
    fn test_decode_to_ipv6() {
        let decoded = decode_frame(LinkType::Ethernet, &PPPOE_IPV6);
        assert_eq!(decoded.error, None);
        let ip = decoded.ip().unwrap();
        assert_eq!((ip.protocol, ip.ttl, ip.total_len), (59, 255, 40));
        assert_eq!(decoded.transport, Transport::None);
    }

    #[test]
    fn test_truncated_at_every_length() {
        for len in 14..62 {
            let decoded = decode_frame(LinkType::Ethernet, &PPPOE_IPV6[..len]);
            let layer = if len < 22 { Layer::Pppoe } else { Layer::Ipv6 };
            assert_eq!(
                decoded.error,
                Some(DecodeError::new(layer, Reason::Truncated)),
                "{len}"
            );
        }
    }

    #[test]
    fn test_bad_version_type() {
        let mut frame = PPPOE_IPV6;
        frame[14] = 0x21;
        let decoded = decode_frame(LinkType::Ethernet, &frame);
        assert_eq!(
            decoded.error,
            Some(DecodeError::new(Layer::Pppoe, Reason::InvalidField))
        );
        assert_eq!(
            decoded.network,
            Network::Other {
                ethertype: ethertype::PPPOE_SESSION
            }
        );
    }

    #[test]
    fn test_length_below_protocol_field() {
        for len in 0..2_u16 {
            let mut frame = PPPOE_IPV6;
            frame[18..20].copy_from_slice(&len.to_be_bytes());
            let decoded = decode_frame(LinkType::Ethernet, &frame);
            assert_eq!(
                decoded.error,
                Some(DecodeError::new(Layer::Pppoe, Reason::BadTotalLength))
            );
        }
    }

    #[test]
    fn test_length_beyond_frame_is_snaplen() {
        let mut frame = PPPOE_IPV6;
        frame[18..20].copy_from_slice(&1492_u16.to_be_bytes());
        let packet = PppoePacket::new_checked(&frame[14..]).unwrap();
        assert_eq!(packet.payload().len(), 44);
        assert_eq!(decode_frame(LinkType::Ethernet, &frame).error, None);
    }

    #[test]
    fn test_control_protocol_is_other() {
        let mut frame = PPPOE_IPV6;
        // LCP.
        frame[20..22].copy_from_slice(&0xc021_u16.to_be_bytes());
        let decoded = decode_frame(LinkType::Ethernet, &frame);
        assert_eq!(decoded.error, None);
        assert_eq!(
            decoded.network,
            Network::Other {
                ethertype: ethertype::PPPOE_SESSION
            }
        );
    }

    #[test]
    fn test_discovery_stage_is_other() {
        let mut frame = PPPOE_IPV6;
        frame[12..14].copy_from_slice(&ethertype::PPPOE_DISCOVERY.to_be_bytes());
        let decoded = decode_frame(LinkType::Ethernet, &frame);
        assert_eq!(decoded.error, None);
        assert_eq!(
            decoded.network,
            Network::Other {
                ethertype: ethertype::PPPOE_DISCOVERY
            }
        );
    }
}
