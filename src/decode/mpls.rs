//! MPLS label stacks (RFC 3032), Ethernet types 0x8847 (unicast) and 0x8848 (multicast).
//!
//! Owns the 4-byte label-stack-entry view and the pop loop: labels are popped until the
//! bottom-of-stack bit, at most [`MAX_MPLS_LABELS`]; one more is [`Reason::TooManyLayers`].
//! MPLS does not say what it carries, so the payload is guessed from its first nibble, as
//! routers and Wireshark do: 4 is IPv4, 6 is IPv6. Anything else, notably the 0 nibble of a
//! pseudowire control word (RFC 4385) before an Ethernet frame, is kept as
//! [`Network::Other`](super::Network::Other) with the MPLS Ethernet type, without error.
//!
//! Does not own: label values, traffic class, TTL (netwarden keeps none), pseudowire payloads.
//!
//! Invariant: each entry is read through `split_first_chunk`, so no access can be out of
//! bounds; the loop runs at most [`MAX_MPLS_LABELS`] times.

use super::{DecodeError, Decoded, Layer, Reason};

/// Byte offsets of a label stack entry (RFC 3032 §2.1).
mod field {
    /// Label (20 bits), traffic class (3 bits), bottom of stack (1 bit), TTL (8 bits): the
    /// bottom-of-stack bit is the lowest bit of this byte.
    pub(super) const TC_S: usize = 2;
    pub(super) const ENTRY_LEN: usize = 4;
}

/// The bottom-of-stack bit in byte [`field::TC_S`].
const BOTTOM_OF_STACK: u8 = 0x01;

/// Most labels popped in one frame; one more is
/// [`Reason::TooManyLayers`].
///
/// Deployed stacks rarely exceed 3–4 labels (transport, service, entropy); eight bounds the
/// work a crafted frame can cause.
pub const MAX_MPLS_LABELS: usize = 8;

/// A checked view of one label stack entry and what follows it.
#[derive(Clone, Copy, Debug)]
pub(super) struct MplsEntry<'a> {
    entry: &'a [u8; field::ENTRY_LEN],
    payload: &'a [u8],
}

impl<'a> MplsEntry<'a> {
    /// Checks that the 4-byte entry is present.
    pub(super) fn new_checked(buffer: &'a [u8]) -> Result<Self, Reason> {
        let (entry, payload) = buffer.split_first_chunk().ok_or(Reason::Truncated)?;
        Ok(MplsEntry { entry, payload })
    }

    /// The entry is the last of the stack.
    #[inline]
    pub(super) fn is_bottom(self) -> bool {
        self.entry[field::TC_S] & BOTTOM_OF_STACK != 0
    }

    /// Everything after the entry.
    #[inline]
    pub(super) fn payload(self) -> &'a [u8] {
        self.payload
    }
}

/// Pops the label stack and decodes an IPv4/IPv6 payload.
pub(super) fn decode<'a>(data: &'a [u8], out: &mut Decoded<'a>) -> Result<(), DecodeError> {
    let error = |reason| DecodeError::new(Layer::Mpls, reason);
    let mut rest = data;
    for _ in 0..MAX_MPLS_LABELS {
        let entry = MplsEntry::new_checked(rest).map_err(error)?;
        rest = entry.payload();
        if entry.is_bottom() {
            return match rest.first().map(|b| b >> 4) {
                Some(4) => super::decode_ipv4(rest, out),
                Some(6) => super::decode_ipv6(rest, out),
                Some(_) => Ok(()),
                None => Err(error(Reason::Truncated)),
            };
        }
    }
    Err(error(Reason::TooManyLayers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{LinkType, Network, Transport, decode_frame, ethertype};

    /// Ethernet, two MPLS labels, then an IPv4/UDP header.
    #[rustfmt::skip]
    static TWO_LABELS_UDP: [u8; 50] = [
        // destination MAC, source MAC
        0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2,
        // Ethernet type MPLS unicast
        0x88, 0x47,
        // label 16, TC 0, not bottom, TTL 64
        0x00, 0x01, 0x00, 0x40,
        // label 17, TC 0, bottom of stack, TTL 64
        0x00, 0x01, 0x11, 0x40,
        // IPv4: version 4, IHL 5, total length 28, id, flags, TTL, UDP, checksum
        0x45, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00,
        // source 10.1.1.1, destination 10.2.2.2
        10, 1, 1, 1, 10, 2, 2, 2,
        // UDP: ports 1000 → 2000, length 8, checksum
        0x03, 0xe8, 0x07, 0xd0, 0x00, 0x08, 0x00, 0x00,
    ];

    #[test]
    fn test_deconstruct() {
        let entry = MplsEntry::new_checked(&TWO_LABELS_UDP[14..]).unwrap();
        assert!(!entry.is_bottom());
        let entry = MplsEntry::new_checked(entry.payload()).unwrap();
        assert!(entry.is_bottom());
        assert_eq!(entry.payload().len(), 28);
    }

    #[test]
    fn test_decode_pops_to_ipv4() {
        let decoded = decode_frame(LinkType::Ethernet, &TWO_LABELS_UDP);
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.ip().unwrap().protocol, 17);
        assert!(matches!(decoded.transport, Transport::Udp(_)));
    }

    #[test]
    fn test_truncated_at_every_length() {
        for len in 14..TWO_LABELS_UDP.len() {
            let decoded = decode_frame(LinkType::Ethernet, &TWO_LABELS_UDP[..len]);
            let expected = match len {
                14..23 => DecodeError::new(Layer::Mpls, Reason::Truncated),
                23..42 => DecodeError::new(Layer::Ipv4, Reason::Truncated),
                _ => DecodeError::new(Layer::Udp, Reason::Truncated),
            };
            assert_eq!(decoded.error, Some(expected), "len {len}");
        }
    }

    #[test]
    fn test_overlong_frame() {
        let mut padded = TWO_LABELS_UDP.to_vec();
        padded.extend_from_slice(&[0; 10]);
        assert_eq!(decode_frame(LinkType::Ethernet, &padded).error, None);
    }

    #[test]
    fn test_pseudowire_control_word_is_other() {
        let mut frame = TWO_LABELS_UDP[..22].to_vec();
        frame[12..14].copy_from_slice(&ethertype::MPLS_MULTICAST.to_be_bytes());
        // Control word (first nibble 0), then an Ethernet frame that is not decoded.
        frame.extend_from_slice(&[0, 0, 0, 0, 0x02, 0, 0, 0, 0, 3]);
        let decoded = decode_frame(LinkType::Ethernet, &frame);
        assert_eq!(decoded.error, None);
        assert_eq!(
            decoded.network,
            Network::Other {
                ethertype: ethertype::MPLS_MULTICAST
            }
        );
    }

    /// `count` labels, the last one bottom of stack, then an IPv6 version nibble.
    fn stack_of(count: usize) -> Vec<u8> {
        let mut stack = Vec::new();
        for index in 0..count {
            let bottom = u8::from(index + 1 == count);
            stack.extend_from_slice(&[0, 0x01, bottom, 64]);
        }
        stack.push(0x60);
        stack
    }

    #[test]
    fn test_label_cap() {
        // Eight labels pop fine; the cut IPv6 header is what fails.
        let stack = stack_of(MAX_MPLS_LABELS);
        let mut out = Decoded::EMPTY;
        let result = decode(&stack, &mut out);
        assert_eq!(
            result,
            Err(DecodeError::new(Layer::Ipv6, Reason::Truncated))
        );
        let stack = stack_of(MAX_MPLS_LABELS + 1);
        let mut out = Decoded::EMPTY;
        let result = decode(&stack, &mut out);
        assert_eq!(
            result,
            Err(DecodeError::new(Layer::Mpls, Reason::TooManyLayers))
        );
    }
}
