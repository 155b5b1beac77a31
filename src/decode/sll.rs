//! Linux cooked capture headers: `LINKTYPE_LINUX_SLL` (v1, 16 bytes) and
//! `LINKTYPE_LINUX_SLL2` (v2, 20 bytes), as written by libpcap for the "any" device.
//!
//! Owns both header views. Their protocol field is an Ethernet type for every ARPHRD type
//! netwarden meets (Ethernet, loopback, tunnels, PPP, IP-over-GRE…), so the payload goes
//! through the same Ethernet-type table as Ethernet, VLAN tags included. The few small
//! non-Ethernet-type values libpcap uses (0x0001 Novell 802.3, 0x0004 802.2 LLC, 0x000c CAN…)
//! fall through as [`Network::Other`](super::Network::Other).
//!
//! Does not own: packet direction, interface index, link-layer addresses.
//!
//! Invariant: both views are built only by `new_checked`, which proves the header is present.

use super::{DecodeError, Decoded, Field, Layer, Reason, be16};

/// Byte offsets of the SLL v1 header (<https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html>).
mod v1_field {
    use super::Field;

    // Packet type 0..2, ARPHRD type 2..4, address length 4..6, address 6..14 are not read.
    pub(super) const PROTOCOL: Field = 14..16;
    pub(super) const HEADER_LEN: usize = 16;
}

/// Byte offsets of the SLL v2 header (<https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL2.html>).
mod v2_field {
    use super::Field;

    pub(super) const PROTOCOL: Field = 0..2;
    // Reserved 2..4, interface index 4..8, ARPHRD type 8..10, packet type 10, address length
    // 11 and address 12..20 are not read.
    pub(super) const HEADER_LEN: usize = 20;
}

/// A checked view of an `N`-byte cooked header; where its protocol field sits depends on the
/// version (see [`SllV1Packet`] and [`SllV2Packet`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct SllPacket<'a, const N: usize> {
    header: &'a [u8; N],
    payload: &'a [u8],
}

/// SLL v1 view.
pub(super) type SllV1Packet<'a> = SllPacket<'a, { v1_field::HEADER_LEN }>;
/// SLL v2 view.
pub(super) type SllV2Packet<'a> = SllPacket<'a, { v2_field::HEADER_LEN }>;

impl<'a, const N: usize> SllPacket<'a, N> {
    /// Checks that the header is present.
    pub(super) fn new_checked(buffer: &'a [u8]) -> Result<Self, Reason> {
        let (header, payload) = buffer.split_first_chunk().ok_or(Reason::Truncated)?;
        Ok(SllPacket { header, payload })
    }

    /// Everything after the header.
    #[inline]
    pub(super) fn payload(self) -> &'a [u8] {
        self.payload
    }
}

impl SllV1Packet<'_> {
    /// The protocol (Ethernet type) of the payload.
    #[inline]
    pub(super) fn protocol(self) -> u16 {
        be16(&self.header[v1_field::PROTOCOL])
    }
}

impl SllV2Packet<'_> {
    /// The protocol (Ethernet type) of the payload.
    #[inline]
    pub(super) fn protocol(self) -> u16 {
        be16(&self.header[v2_field::PROTOCOL])
    }
}

/// Decodes a `LINKTYPE_LINUX_SLL` frame.
pub(super) fn decode_v1<'a>(data: &'a [u8], out: &mut Decoded<'a>) -> Result<(), DecodeError> {
    let packet =
        SllV1Packet::new_checked(data).map_err(|reason| DecodeError::new(Layer::Link, reason))?;
    super::decode_ethertype(packet.protocol(), packet.payload(), out)
}

/// Decodes a `LINKTYPE_LINUX_SLL2` frame.
pub(super) fn decode_v2<'a>(data: &'a [u8], out: &mut Decoded<'a>) -> Result<(), DecodeError> {
    let packet =
        SllV2Packet::new_checked(data).map_err(|reason| DecodeError::new(Layer::Link, reason))?;
    super::decode_ethertype(packet.protocol(), packet.payload(), out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{ArpRepr, LinkType, Network, decode_frame, ethertype};

    /// SLL v1, outgoing, Ethernet, carrying an ARP request.
    #[rustfmt::skip]
    static SLL_ARP: [u8; 44] = [
        // packet type 4 (outgoing), ARPHRD_ETHER, address length 6
        0x00, 0x04, 0x00, 0x01, 0x00, 0x06,
        // address (6 bytes + 2 unused)
        0x02, 0, 0, 0, 0, 1, 0, 0,
        // protocol ARP
        0x08, 0x06,
        // ARP: Ethernet/IPv4 request from 192.168.0.1 for 192.168.0.2
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
        0x02, 0, 0, 0, 0, 1, 192, 168, 0, 1,
        0, 0, 0, 0, 0, 0, 192, 168, 0, 2,
    ];

    /// The same ARP request behind an SLL v2 header.
    fn sll2_arp() -> Vec<u8> {
        // protocol ARP, reserved, interface index 3, ARPHRD_ETHER, packet type 0, address length 6
        let mut frame = vec![0x08, 0x06, 0, 0, 0, 0, 0, 3, 0x00, 0x01, 0x00, 0x06];
        // address (6 bytes + 2 unused)
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0, 0]);
        frame.extend_from_slice(&SLL_ARP[16..]);
        frame
    }

    #[test]
    fn test_deconstruct() {
        let v1 = SllV1Packet::new_checked(&SLL_ARP).unwrap();
        assert_eq!((v1.protocol(), v1.payload().len()), (ethertype::ARP, 28));
        let frame = sll2_arp();
        let v2 = SllV2Packet::new_checked(&frame).unwrap();
        assert_eq!((v2.protocol(), v2.payload().len()), (ethertype::ARP, 28));
    }

    #[test]
    fn test_decode_both_versions() {
        let v1 = decode_frame(LinkType::LinuxSll, &SLL_ARP);
        assert_eq!(v1.error, None);
        let arp = ArpRepr {
            operation: 1,
            sender_ip: [192, 168, 0, 1],
            target_ip: [192, 168, 0, 2],
        };
        assert_eq!(v1.network, Network::Arp(arp));
        assert_eq!(decode_frame(LinkType::LinuxSll2, &sll2_arp()), v1);
    }

    #[test]
    fn test_truncated_at_every_length() {
        for (link, frame, header_len) in [
            (LinkType::LinuxSll, SLL_ARP.to_vec(), 16),
            (LinkType::LinuxSll2, sll2_arp(), 20),
        ] {
            for len in 0..frame.len() {
                let layer = if len < header_len {
                    Layer::Link
                } else {
                    Layer::Arp
                };
                let decoded = decode_frame(link, &frame[..len]);
                assert_eq!(
                    decoded.error,
                    Some(DecodeError::new(layer, Reason::Truncated))
                );
            }
        }
    }

    #[test]
    fn test_overlong_frame() {
        let mut padded = SLL_ARP.to_vec();
        padded.extend_from_slice(&[0; 16]);
        assert_eq!(
            decode_frame(LinkType::LinuxSll, &padded),
            decode_frame(LinkType::LinuxSll, &SLL_ARP)
        );
    }

    #[test]
    fn test_vlan_tag_after_cooked_header() {
        // libpcap re-inserts a stripped VLAN tag: protocol 0x8100, then TCI and the real type.
        let mut frame = SLL_ARP[..14].to_vec();
        frame.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a, 0x08, 0x06]);
        frame.extend_from_slice(&SLL_ARP[16..]);
        let decoded = decode_frame(LinkType::LinuxSll, &frame);
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.vlan, Some(10));
        assert!(matches!(decoded.network, Network::Arp(_)));
    }

    #[test]
    fn test_non_ethertype_protocol_kept() {
        let mut frame = SLL_ARP;
        frame[14..16].copy_from_slice(&0x0004_u16.to_be_bytes());
        let decoded = decode_frame(LinkType::LinuxSll, &frame);
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.network, Network::Other { ethertype: 4 });
    }
}
