//! Ethernet II framing (IEEE 802.3) and IEEE 802.1Q / 802.1ad VLAN tags.
//!
//! Owns the 14-byte Ethernet header view and the 4-byte VLAN tag view. The dispatch on the
//! Ethernet type (including how many tags may be stacked) lives in `decode/mod.rs`, because the
//! Linux cooked headers feed the same table.
//!
//! Does not own: the MAC addresses (netwarden keeps none), the frame check sequence (capture
//! files rarely carry it and nothing here verifies it), 802.3 LLC/SNAP payloads (a type field
//! below 0x0600 is a length; it is kept in [`Network::Other`](super::Network::Other) as is).
//!
//! Invariant: both views are built only by `new_checked`, which proves the fixed header is
//! present, so their accessors index a fixed-size array and cannot panic.

use super::{DecodeError, Decoded, Field, Layer, Reason, be16};

/// Byte offsets of the Ethernet II header (IEEE 802.3 clause 3.1.1).
mod field {
    use super::Field;

    // Destination MAC 0..6 and source MAC 6..12 are not read.
    pub(super) const ETHERTYPE: Field = 12..14;
    pub(super) const HEADER_LEN: usize = 14;
}

/// Byte offsets of a VLAN tag, counted from the byte after the tag protocol identifier
/// (IEEE 802.1Q clause 9.6): the tag control information, then the encapsulated type.
mod vlan_field {
    use super::Field;

    /// Priority (3 bits), drop eligible (1 bit), VLAN id (12 bits).
    pub(super) const TCI: Field = 0..2;
    pub(super) const ETHERTYPE: Field = 2..4;
    pub(super) const TAG_LEN: usize = 4;
}

/// The VLAN id bits of the tag control information.
const VLAN_ID_MASK: u16 = 0x0fff;

/// A checked view of an Ethernet II header and its payload.
#[derive(Clone, Copy, Debug)]
pub(super) struct EthernetFrame<'a> {
    header: &'a [u8; field::HEADER_LEN],
    payload: &'a [u8],
}

impl<'a> EthernetFrame<'a> {
    /// Checks that the 14-byte header is present.
    pub(super) fn new_checked(buffer: &'a [u8]) -> Result<Self, Reason> {
        let (header, payload) = buffer.split_first_chunk().ok_or(Reason::Truncated)?;
        Ok(EthernetFrame { header, payload })
    }

    /// The Ethernet type (or, below 0x0600, the 802.3 length).
    #[inline]
    pub(super) fn ethertype(self) -> u16 {
        be16(&self.header[field::ETHERTYPE])
    }

    /// Everything after the header, trailing padding included (IP trims it).
    #[inline]
    pub(super) fn payload(self) -> &'a [u8] {
        self.payload
    }
}

/// A checked view of one VLAN tag (without its tag protocol identifier) and what follows.
#[derive(Clone, Copy, Debug)]
pub(super) struct VlanTag<'a> {
    tag: &'a [u8; vlan_field::TAG_LEN],
    payload: &'a [u8],
}

impl<'a> VlanTag<'a> {
    /// Checks that the 4-byte tag is present.
    pub(super) fn new_checked(buffer: &'a [u8]) -> Result<Self, Reason> {
        let (tag, payload) = buffer.split_first_chunk().ok_or(Reason::Truncated)?;
        Ok(VlanTag { tag, payload })
    }

    /// The 12-bit VLAN id (0 for a priority-only tag).
    #[inline]
    pub(super) fn vlan_id(self) -> u16 {
        be16(&self.tag[vlan_field::TCI]) & VLAN_ID_MASK
    }

    /// The Ethernet type of what follows the tag.
    #[inline]
    pub(super) fn ethertype(self) -> u16 {
        be16(&self.tag[vlan_field::ETHERTYPE])
    }

    /// Everything after the tag.
    #[inline]
    pub(super) fn payload(self) -> &'a [u8] {
        self.payload
    }
}

/// Decodes an Ethernet frame (`LINKTYPE_ETHERNET`).
pub(super) fn decode<'a>(data: &'a [u8], out: &mut Decoded<'a>) -> Result<(), DecodeError> {
    let frame = EthernetFrame::new_checked(data)
        .map_err(|reason| DecodeError::new(Layer::Ethernet, reason))?;
    super::decode_ethertype(frame.ethertype(), frame.payload(), out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{LinkType, MAX_VLAN_TAGS, Network, Transport, decode_frame, ethertype};

    /// An ARP request inside two VLAN tags (802.1ad outer, 802.1Q inner).
    #[rustfmt::skip]
    static QINQ_ARP: [u8; 50] = [
        // destination MAC (broadcast), source MAC
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
        // 802.1ad tag protocol id, TCI: priority 5, VLAN 100
        0x88, 0xa8, 0xa0, 0x64,
        // 802.1Q tag protocol id, TCI: priority 0, DEI set, VLAN 4095
        0x81, 0x00, 0x1f, 0xff,
        // Ethernet type: ARP
        0x08, 0x06,
        // ARP: Ethernet/IPv4, hlen 6, plen 4, request
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
        // sender MAC, sender IP 192.0.2.1
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 192, 0, 2, 1,
        // target MAC, target IP 192.0.2.2
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 192, 0, 2, 2,
    ];

    #[test]
    fn test_deconstruct_header() {
        let frame = EthernetFrame::new_checked(&QINQ_ARP).unwrap();
        assert_eq!(frame.ethertype(), ethertype::QINQ);
        assert_eq!(frame.payload().len(), QINQ_ARP.len() - 14);
        let outer = VlanTag::new_checked(frame.payload()).unwrap();
        assert_eq!(outer.vlan_id(), 100);
        assert_eq!(outer.ethertype(), ethertype::VLAN);
        let inner = VlanTag::new_checked(outer.payload()).unwrap();
        assert_eq!(inner.vlan_id(), 4095);
        assert_eq!(inner.ethertype(), ethertype::ARP);
    }

    #[test]
    fn test_qinq_records_both_vlan_ids() {
        let decoded = decode_frame(LinkType::Ethernet, &QINQ_ARP);
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.vlan, Some(100));
        assert_eq!(decoded.inner_vlan, Some(4095));
        assert!(matches!(decoded.network, Network::Arp(_)));
        assert_eq!(decoded.transport, Transport::None);
    }

    #[test]
    fn test_truncated_at_every_length() {
        for len in 0..QINQ_ARP.len() {
            let decoded = decode_frame(LinkType::Ethernet, &QINQ_ARP[..len]);
            let expected_layer = match len {
                0..14 => Layer::Ethernet,
                14..22 => Layer::Vlan,
                _ => Layer::Arp,
            };
            assert_eq!(
                decoded.error,
                Some(DecodeError::new(expected_layer, Reason::Truncated)),
                "len {len}"
            );
            // The outer tag is kept once it is complete, the inner one likewise.
            assert_eq!(decoded.vlan.is_some(), len >= 18, "len {len}");
            assert_eq!(decoded.inner_vlan.is_some(), len >= 22, "len {len}");
        }
    }

    #[test]
    fn test_overlong_frame_ignores_trailing_bytes() {
        let mut padded = QINQ_ARP.to_vec();
        padded.extend_from_slice(&[0xee; 20]);
        let decoded = decode_frame(LinkType::Ethernet, &padded);
        assert_eq!(decoded, decode_frame(LinkType::Ethernet, &QINQ_ARP));
    }

    #[test]
    fn test_unknown_ethertype_kept() {
        let mut frame = QINQ_ARP[..14].to_vec();
        frame[12..14].copy_from_slice(&0x88b5_u16.to_be_bytes());
        let decoded = decode_frame(LinkType::Ethernet, &frame);
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.network, Network::Other { ethertype: 0x88b5 });
    }

    #[test]
    fn test_8023_length_field_kept_as_is() {
        let mut frame = QINQ_ARP[..20].to_vec();
        frame[12..14].copy_from_slice(&6_u16.to_be_bytes());
        let decoded = decode_frame(LinkType::Ethernet, &frame);
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.network, Network::Other { ethertype: 6 });
    }

    /// Builds an Ethernet header followed by `tags` 0x9100 tags (VLAN ids 1, 2, …) and an
    /// unknown payload type.
    fn stacked_tags(tags: u16) -> Vec<u8> {
        let mut frame = QINQ_ARP[..12].to_vec();
        for id in 1..=tags {
            frame.extend_from_slice(&ethertype::VLAN_9100.to_be_bytes());
            frame.extend_from_slice(&id.to_be_bytes());
        }
        frame.extend_from_slice(&0x88b5_u16.to_be_bytes());
        frame
    }

    #[test]
    fn test_vlan_cap_allows_eight_tags() {
        let frame = stacked_tags(8);
        let decoded = decode_frame(LinkType::Ethernet, &frame);
        assert_eq!(decoded.error, None);
        assert_eq!((decoded.vlan, decoded.inner_vlan), (Some(1), Some(2)));
        assert_eq!(decoded.network, Network::Other { ethertype: 0x88b5 });
    }

    #[test]
    fn test_vlan_cap_rejects_nine_tags() {
        assert_eq!(MAX_VLAN_TAGS, 8);
        let frame = stacked_tags(9);
        let decoded = decode_frame(LinkType::Ethernet, &frame);
        assert_eq!(
            decoded.error,
            Some(DecodeError::new(Layer::Vlan, Reason::TooManyLayers))
        );
        assert_eq!((decoded.vlan, decoded.inner_vlan), (Some(1), Some(2)));
    }
}
