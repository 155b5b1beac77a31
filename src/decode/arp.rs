//! ARP (RFC 826).
//!
//! Owns the ARP header view and the [`ArpRepr`] summary: the operation for every hardware and
//! protocol type, and the sender/target IPv4 addresses for the Ethernet/IPv4 combination.
//!
//! Does not own: hardware addresses (netwarden keeps none), RARP (Ethernet type 0x8035 is
//! left as [`Network::Other`]).
//!
//! Invariant: [`ArpPacket::new_checked`] proves the fixed 8-byte header and both address
//! pairs (as sized by the header) are present.

use super::{ArpRepr, DecodeError, Decoded, Field, Layer, Network, Reason, array4, be16};

/// Byte offsets of the ARP header (RFC 826, "Packet format").
mod field {
    use super::Field;

    pub(super) const HTYPE: Field = 0..2;
    pub(super) const PTYPE: Field = 2..4;
    pub(super) const HLEN: usize = 4;
    pub(super) const PLEN: usize = 5;
    pub(super) const OPER: Field = 6..8;
    pub(super) const HEADER_LEN: usize = 8;
}

/// Byte offsets of the whole packet when the hardware is Ethernet and the protocol IPv4.
mod ether_ipv4 {
    use super::Field;

    // Sender hardware address 8..14 and target hardware address 18..24 are not read.
    pub(super) const SPA: Field = 14..18;
    pub(super) const TPA: Field = 24..28;
    pub(super) const PACKET_LEN: usize = 28;
}

/// Hardware type of Ethernet.
const HTYPE_ETHERNET: u16 = 1;

/// A checked view of an ARP packet.
#[derive(Clone, Copy, Debug)]
pub(super) struct ArpPacket<'a> {
    header: &'a [u8; field::HEADER_LEN],
    /// The Ethernet/IPv4 layout, when the header announces it.
    ether_ipv4: Option<&'a [u8; ether_ipv4::PACKET_LEN]>,
}

impl<'a> ArpPacket<'a> {
    /// Checks that the fixed header and the four addresses it sizes are present.
    pub(super) fn new_checked(buffer: &'a [u8]) -> Result<Self, Reason> {
        let header: &[u8; field::HEADER_LEN] = buffer.first_chunk().ok_or(Reason::Truncated)?;
        let hlen = usize::from(header[field::HLEN]);
        let plen = usize::from(header[field::PLEN]);
        // Two (hardware, protocol) address pairs follow the fixed header; at most 8 + 1020.
        if buffer.len() < field::HEADER_LEN + 2 * (hlen + plen) {
            return Err(Reason::Truncated);
        }
        let is_ether_ipv4 = be16(&header[field::HTYPE]) == HTYPE_ETHERNET
            && be16(&header[field::PTYPE]) == super::ethertype::IPV4
            && hlen == 6
            && plen == 4;
        // The length check above covers all 28 bytes in the Ethernet/IPv4 case.
        let ether_ipv4 = if is_ether_ipv4 {
            buffer.first_chunk()
        } else {
            None
        };
        Ok(ArpPacket { header, ether_ipv4 })
    }

    /// The operation: 1 request, 2 reply, anything else kept as is.
    #[inline]
    pub(super) fn operation(self) -> u16 {
        be16(&self.header[field::OPER])
    }

    /// The summary; addresses are zero unless the packet is Ethernet/IPv4.
    pub(super) fn repr(self) -> ArpRepr {
        let (sender_ip, target_ip) = self.ether_ipv4.map_or(([0; 4], [0; 4]), |packet| {
            (
                array4(&packet[ether_ipv4::SPA]),
                array4(&packet[ether_ipv4::TPA]),
            )
        });
        ArpRepr {
            operation: self.operation(),
            sender_ip,
            target_ip,
        }
    }
}

/// Decodes an ARP packet into [`Network::Arp`].
pub(super) fn decode(data: &[u8], out: &mut Decoded<'_>) -> Result<(), DecodeError> {
    let packet =
        ArpPacket::new_checked(data).map_err(|reason| DecodeError::new(Layer::Arp, reason))?;
    out.network = Network::Arp(packet.repr());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{LinkType, decode_frame};

    /// An ARP reply, Ethernet/IPv4.
    #[rustfmt::skip]
    static REPLY: [u8; 28] = [
        // hardware type Ethernet, protocol type IPv4
        0x00, 0x01, 0x08, 0x00,
        // hardware length 6, protocol length 4, operation reply
        0x06, 0x04, 0x00, 0x02,
        // sender MAC, sender IP 10.0.0.1
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 1,
        // target MAC, target IP 10.0.0.2
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 10, 0, 0, 2,
    ];

    #[test]
    fn test_deconstruct() {
        let packet = ArpPacket::new_checked(&REPLY).unwrap();
        assert_eq!(
            packet.repr(),
            ArpRepr {
                operation: 2,
                sender_ip: [10, 0, 0, 1],
                target_ip: [10, 0, 0, 2]
            }
        );
    }

    #[test]
    fn test_truncated_at_every_length() {
        for len in 0..REPLY.len() {
            assert_eq!(
                ArpPacket::new_checked(&REPLY[..len]).err(),
                Some(Reason::Truncated)
            );
        }
    }

    #[test]
    fn test_overlong_ignores_padding() {
        let mut padded = REPLY.to_vec();
        padded.extend_from_slice(&[0; 18]);
        let packet = ArpPacket::new_checked(&padded).unwrap();
        assert_eq!(packet.repr().target_ip, [10, 0, 0, 2]);
    }

    #[test]
    fn test_other_hardware_kept_with_zero_addresses() {
        // Hardware type 6 (IEEE 802), protocol IPv4, hlen 2, plen 4, operation 9.
        let packet = [
            0x00, 0x06, 0x08, 0x00, 0x02, 0x04, 0x00, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ];
        let repr = ArpPacket::new_checked(&packet).unwrap().repr();
        assert_eq!(
            repr,
            ArpRepr {
                operation: 9,
                sender_ip: [0; 4],
                target_ip: [0; 4]
            }
        );
        assert_eq!(
            ArpPacket::new_checked(&packet[..19]).err(),
            Some(Reason::Truncated)
        );
    }

    #[test]
    fn test_huge_address_lengths_are_truncated_not_panics() {
        let packet = [0x00, 0x01, 0x08, 0x00, 0xff, 0xff, 0x00, 0x01, 0, 0, 0, 0];
        assert_eq!(
            ArpPacket::new_checked(&packet).err(),
            Some(Reason::Truncated)
        );
    }

    #[test]
    fn test_decode_frame_sets_network() {
        let mut frame = vec![0xff; 12];
        frame.extend_from_slice(&[0x08, 0x06]);
        frame.extend_from_slice(&REPLY);
        let decoded = decode_frame(LinkType::Ethernet, &frame);
        assert_eq!(decoded.error, None);
        assert_eq!(
            decoded.network,
            Network::Arp(ArpPacket::new_checked(&REPLY).unwrap().repr())
        );
    }
}
