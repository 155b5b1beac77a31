//! IPv6 (RFC 8200) and its extension-header chain.
//!
//! Owns the fixed 40-byte header view, the walk over extension headers to the upper-layer
//! protocol, fragment state from the fragment header, and the jumbogram rule.
//!
//! Extension headers walked (at most [`MAX_IPV6_EXTENSION_HEADERS`]): hop-by-hop options (0,
//! only directly after the fixed header, RFC 8200 §4.1), routing (43), fragment (44),
//! destination options (60), mobility (135, RFC 6275 §6.1), all sized `(len + 1) × 8`, and
//! the authentication header (51, RFC 4302 §2.2) sized `(len + 2) × 4`. ESP (50), no next
//! header (59) and anything else end the walk and become the upper-layer protocol.
//!
//! Length rules (each failure is a [`Layer::Ipv6`] error):
//! * 40 bytes captured, else [`Reason::Truncated`]; version 6, else [`Reason::BadVersion`].
//! * Payload length 0 with a hop-by-hop header is a jumbogram (RFC 2675): the captured length
//!   is used. Otherwise a payload shorter than the capture trims it, and a longer one means the
//!   snap length cut the frame (decoding continues on what is present).
//! * An extension header that runs past the payload length is [`Reason::BadOption`]; one
//!   that runs past the capture (but not the payload length) is [`Reason::Truncated`].
//!
//! A fragment header makes the packet a fragment even with offset 0 and M clear (an "atomic
//! fragment", RFC 6946); a non-zero offset ends the walk with no transport header.
//!
//! Does not own: option contents (skipped), routing-header semantics, tunnels.
//!
//! Invariant: [`Ipv6Packet::new_checked`] proves the fixed header is present; the chain walk
//! reads only through `get`/`first_chunk`.

use std::net::{IpAddr, Ipv6Addr};

use super::{
    DecodeError, Decoded, Field, Fragment, IpPayload, IpRepr, Layer, Network, Reason, array16, be16,
};

/// Byte offsets of the fixed IPv6 header (RFC 8200 §3).
mod field {
    use super::Field;

    /// Version (4 bits), traffic class (8 bits), flow label (20 bits).
    pub(super) const VER_TC_FLOW: usize = 0;
    pub(super) const PAYLOAD_LEN: Field = 4..6;
    pub(super) const NEXT_HEADER: usize = 6;
    pub(super) const HOP_LIMIT: usize = 7;
    pub(super) const SRC_ADDR: Field = 8..24;
    pub(super) const DST_ADDR: Field = 24..40;
    pub(super) const HEADER_LEN: usize = 40;
}

/// Byte offsets shared by every extension header walked here.
mod ext_field {
    use super::Field;

    pub(super) const NEXT_HEADER: usize = 0;
    /// Header length, in units that depend on the header type.
    pub(super) const LENGTH: usize = 1;
    /// Fragment header only: offset (13 bits, 8-byte units), 2 reserved bits, M flag.
    pub(super) const FRAG_OFF_M: Field = 2..4;
    /// Every extension header is at least this long (the fragment header exactly).
    pub(super) const MIN_LEN: usize = 8;
}

/// Next-header values of the extension headers walked.
mod next_header {
    pub(super) const HOP_BY_HOP: u8 = 0;
    pub(super) const ROUTING: u8 = 43;
    pub(super) const FRAGMENT: u8 = 44;
    pub(super) const AUTH: u8 = 51;
    pub(super) const DEST_OPTS: u8 = 60;
    pub(super) const MOBILITY: u8 = 135;
}

/// Fragment offset bits of the fragment header: already a byte count (8-byte units << 3).
const FRAG_OFFSET_MASK: u16 = 0xfff8;
/// The M (more fragments) flag of the fragment header.
const FRAG_MORE: u16 = 0x0001;

/// Most IPv6 extension headers walked in one packet; one more is
/// [`Reason::TooManyLayers`].
///
/// RFC 8200 §4.1 recommends each header appear at most once (destination options twice), so
/// a legitimate chain has at most 7; long chains are an evasion technique.
pub const MAX_IPV6_EXTENSION_HEADERS: usize = 8;

/// A checked view of the fixed IPv6 header.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ipv6Packet<'a> {
    header: &'a [u8; field::HEADER_LEN],
    /// Everything after the fixed header, up to the end of the capture.
    after_header: &'a [u8],
}

impl<'a> Ipv6Packet<'a> {
    /// Checks that the fixed header is present and the version is 6.
    pub(super) fn new_checked(buffer: &'a [u8]) -> Result<Self, Reason> {
        let (header, after_header) = buffer.split_first_chunk().ok_or(Reason::Truncated)?;
        if header[field::VER_TC_FLOW] >> 4 != 6 {
            return Err(Reason::BadVersion);
        }
        Ok(Ipv6Packet {
            header,
            after_header,
        })
    }

    #[inline]
    pub(super) fn payload_len(self) -> u16 {
        be16(&self.header[field::PAYLOAD_LEN])
    }

    #[inline]
    pub(super) fn next_header(self) -> u8 {
        self.header[field::NEXT_HEADER]
    }

    #[inline]
    pub(super) fn hop_limit(self) -> u8 {
        self.header[field::HOP_LIMIT]
    }

    #[inline]
    pub(super) fn src_addr(self) -> Ipv6Addr {
        Ipv6Addr::from(array16(&self.header[field::SRC_ADDR]))
    }

    #[inline]
    pub(super) fn dst_addr(self) -> Ipv6Addr {
        Ipv6Addr::from(array16(&self.header[field::DST_ADDR]))
    }

    /// Everything after the fixed header, up to the end of the capture.
    #[inline]
    pub(super) fn after_header(self) -> &'a [u8] {
        self.after_header
    }
}

/// Where the extension-header chain ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ExtChain {
    /// The upper-layer protocol; for a non-first fragment, the fragment header's next header.
    pub(super) protocol: u8,
    /// Bytes of extension headers before the upper-layer header.
    pub(super) len: usize,
    pub(super) fragment: Fragment,
}

/// Returns true if and only if `value` is an extension header this module walks.
#[inline]
fn is_extension(value: u8) -> bool {
    matches!(
        value,
        next_header::HOP_BY_HOP
            | next_header::ROUTING
            | next_header::FRAGMENT
            | next_header::AUTH
            | next_header::DEST_OPTS
            | next_header::MOBILITY
    )
}

/// Walks the extension headers starting with `first` over `bytes` (the payload present), with
/// `payload_len` the length the IPv6 header announces (≥ `bytes.len()`).
pub(super) fn walk_extensions(
    first: u8,
    bytes: &[u8],
    payload_len: usize,
) -> Result<ExtChain, Reason> {
    // Running past the announced payload is a malformed chain; past the capture, a cut frame.
    let cut = |end: usize| {
        if end > payload_len {
            Reason::BadOption
        } else {
            Reason::Truncated
        }
    };
    let mut protocol = first;
    let mut offset = 0;
    let mut fragment = Fragment::default();
    let mut count = 0;
    while is_extension(protocol) {
        if count == MAX_IPV6_EXTENSION_HEADERS {
            return Err(Reason::TooManyLayers);
        }
        if protocol == next_header::HOP_BY_HOP && count != 0 {
            return Err(Reason::BadOption);
        }
        count += 1;
        let rest = bytes.get(offset..).unwrap_or_default();
        let fixed: &[u8; ext_field::MIN_LEN] = rest
            .first_chunk()
            .ok_or_else(|| cut(offset + ext_field::MIN_LEN))?;
        let units = usize::from(fixed[ext_field::LENGTH]);
        let len = match protocol {
            next_header::FRAGMENT => ext_field::MIN_LEN,
            next_header::AUTH => (units + 2) * 4,
            _ => (units + 1) * 8,
        };
        if rest.len() < len {
            return Err(cut(offset + len));
        }
        offset += len;
        let header_type = protocol;
        protocol = fixed[ext_field::NEXT_HEADER];
        if header_type == next_header::FRAGMENT {
            let off_m = be16(&fixed[ext_field::FRAG_OFF_M]);
            fragment = Fragment {
                is_fragment: true,
                offset_bytes: u32::from(off_m & FRAG_OFFSET_MASK),
                more: off_m & FRAG_MORE != 0,
            };
            if fragment.is_later() {
                // The rest is fragment data, not headers.
                break;
            }
        }
    }
    Ok(ExtChain {
        protocol,
        len: offset,
        fragment,
    })
}

/// Decodes an IPv6 packet into [`Network::Ip`] and hands the payload to the transport layer.
pub(super) fn decode<'a>(data: &'a [u8], out: &mut Decoded<'a>) -> Result<(), DecodeError> {
    let error = |reason| DecodeError::new(Layer::Ipv6, reason);
    let packet = Ipv6Packet::new_checked(data).map_err(error)?;
    let after_header = packet.after_header();
    let first_header = packet.next_header();
    let payload_len = match packet.payload_len() {
        0 if first_header == next_header::HOP_BY_HOP => after_header.len(),
        len => usize::from(len),
    };
    let bytes = after_header.get(..payload_len).unwrap_or(after_header);
    let chain = walk_extensions(first_header, bytes, payload_len).map_err(error)?;
    out.network = Network::Ip(IpRepr {
        src: IpAddr::V6(packet.src_addr()),
        dst: IpAddr::V6(packet.dst_addr()),
        protocol: chain.protocol,
        ttl: packet.hop_limit(),
        total_len: super::len_u32(payload_len.saturating_add(field::HEADER_LEN)),
        fragment: chain.fragment,
    });
    if chain.fragment.is_later() {
        return Ok(());
    }
    let payload = IpPayload {
        bytes: bytes.get(chain.len..).unwrap_or_default(),
        len: payload_len.saturating_sub(chain.len),
        more_fragments: chain.fragment.more,
    };
    super::decode_transport(chain.protocol, payload, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{IcmpRepr, LinkType, Transport, UdpRepr, decode_frame};

    /// IPv6 with hop-by-hop options and an atomic fragment header, carrying a UDP datagram.
    #[rustfmt::skip]
    static UDP_WITH_EXTENSIONS: [u8; 68] = [
        // version 6, traffic class 0, flow label 0
        0x60, 0x00, 0x00, 0x00,
        // payload length 28, next header hop-by-hop, hop limit 64
        0x00, 0x1c, 0x00, 0x40,
        // source 2001:db8::1
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        // destination 2001:db8::2
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
        // hop-by-hop: next header fragment, length 0 (8 bytes), PadN option of 4 bytes
        44, 0, 0x01, 0x04, 0, 0, 0, 0,
        // fragment: next header UDP, reserved, offset 0 and M clear, identification
        17, 0, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef,
        // UDP: source port 5353, destination port 9999, length 12, checksum
        0x14, 0xe9, 0x27, 0x0f, 0x00, 0x0c, 0x00, 0x00,
        // UDP payload
        1, 2, 3, 4,
    ];

    /// Builds a packet whose first next header is `first`, with `ext` extension-header bytes
    /// followed by `upper`, and a payload length that matches.
    fn build(first: u8, ext: &[u8], upper: &[u8]) -> Vec<u8> {
        let mut packet = UDP_WITH_EXTENSIONS[..40].to_vec();
        let payload_len = u16::try_from(ext.len() + upper.len()).unwrap();
        packet[4..6].copy_from_slice(&payload_len.to_be_bytes());
        packet[6] = first;
        packet.extend_from_slice(ext);
        packet.extend_from_slice(upper);
        packet
    }

    fn decode_ip(data: &[u8]) -> Decoded<'_> {
        decode_frame(LinkType::Ipv6, data)
    }

    #[test]
    fn test_deconstruct() {
        let packet = Ipv6Packet::new_checked(&UDP_WITH_EXTENSIONS).unwrap();
        assert_eq!(packet.payload_len(), 28);
        assert_eq!(packet.next_header(), 0);
        assert_eq!(packet.hop_limit(), 64);
        assert_eq!(
            packet.src_addr(),
            "2001:db8::1".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            packet.dst_addr(),
            "2001:db8::2".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(packet.after_header().len(), 28);
    }

    #[test]
    fn test_decode_walks_extensions_to_udp() {
        let decoded = decode_ip(&UDP_WITH_EXTENSIONS);
        assert_eq!(decoded.error, None);
        let ip = decoded.ip().unwrap();
        assert_eq!(ip.protocol, 17);
        assert_eq!(ip.ttl, 64);
        assert_eq!(ip.total_len, 68);
        // An atomic fragment: a fragment header with offset 0 and M clear.
        assert_eq!(
            ip.fragment,
            Fragment {
                is_fragment: true,
                offset_bytes: 0,
                more: false
            }
        );
        assert_eq!(
            decoded.transport,
            Transport::Udp(UdpRepr {
                src_port: 5353,
                dst_port: 9999,
                payload_len: 4
            })
        );
    }

    #[test]
    fn test_truncated_at_every_length() {
        for len in 0..UDP_WITH_EXTENSIONS.len() {
            let decoded = decode_ip(&UDP_WITH_EXTENSIONS[..len]);
            let expected = match len {
                0..56 => Some(DecodeError::new(Layer::Ipv6, Reason::Truncated)),
                56..64 => Some(DecodeError::new(Layer::Udp, Reason::Truncated)),
                // The UDP payload is cut, but its length comes from the header.
                _ => None,
            };
            assert_eq!(decoded.error, expected, "len {len}");
            assert_eq!(decoded.ip().is_some(), len >= 56, "len {len}");
        }
    }

    #[test]
    fn test_overlong_is_trimmed_to_payload_len() {
        let mut padded = UDP_WITH_EXTENSIONS.to_vec();
        padded.extend_from_slice(&[0; 10]);
        assert_eq!(decode_ip(&padded), decode_ip(&UDP_WITH_EXTENSIONS));
    }

    #[test]
    fn test_bad_version() {
        let mut packet = UDP_WITH_EXTENSIONS;
        packet[0] = 0x40;
        assert_eq!(
            Ipv6Packet::new_checked(&packet).err(),
            Some(Reason::BadVersion)
        );
    }

    #[test]
    fn test_extension_past_payload_len_is_bad_option() {
        // Payload length 12 ends inside the fragment header, although the capture has it all.
        let mut packet = UDP_WITH_EXTENSIONS;
        packet[4..6].copy_from_slice(&12_u16.to_be_bytes());
        let decoded = decode_ip(&packet);
        assert_eq!(
            decoded.error,
            Some(DecodeError::new(Layer::Ipv6, Reason::BadOption))
        );
        assert_eq!(decoded.network, Network::Other { ethertype: 0x86dd });
    }

    #[test]
    fn test_hop_by_hop_after_first_is_bad_option() {
        let ext = [60, 0, 1, 4, 0, 0, 0, 0, 17, 0, 1, 4, 0, 0, 0, 0];
        let packet = build(next_header::DEST_OPTS, &ext, &[0; 8]);
        let mut bad = packet.clone();
        bad[40] = next_header::HOP_BY_HOP;
        assert_eq!(
            decode_ip(&packet).error,
            Some(DecodeError::new(Layer::Udp, Reason::BadTotalLength))
        );
        assert_eq!(
            decode_ip(&bad).error,
            Some(DecodeError::new(Layer::Ipv6, Reason::BadOption))
        );
    }

    /// `count` destination-options headers, then UDP.
    fn chain_of(count: usize) -> Vec<u8> {
        let mut ext = Vec::new();
        for index in 0..count {
            let next = if index + 1 == count {
                17
            } else {
                next_header::DEST_OPTS
            };
            ext.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
        build(
            next_header::DEST_OPTS,
            &ext,
            &[0x00, 0x35, 0x00, 0x35, 0x00, 0x08, 0, 0],
        )
    }

    #[test]
    fn test_extension_cap_allows_eight() {
        let packet = chain_of(MAX_IPV6_EXTENSION_HEADERS);
        let decoded = decode_ip(&packet);
        assert_eq!(
            decoded.error,
            Some(DecodeError::new(Layer::Dns, Reason::Truncated))
        );
        assert_eq!(decoded.ip().unwrap().protocol, 17);
    }

    #[test]
    fn test_extension_cap_rejects_nine() {
        let packet = chain_of(MAX_IPV6_EXTENSION_HEADERS + 1);
        let decoded = decode_ip(&packet);
        assert_eq!(
            decoded.error,
            Some(DecodeError::new(Layer::Ipv6, Reason::TooManyLayers))
        );
    }

    #[test]
    fn test_auth_header_length_is_in_words_minus_two() {
        // AH with payload length 1: (1 + 2) × 4 = 12 bytes.
        let ah = [58, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2];
        let packet = build(next_header::AUTH, &ah, &[128, 0, 0, 0, 0x12, 0x34, 0, 1]);
        let decoded = decode_ip(&packet);
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.ip().unwrap().protocol, 58);
        let echo = IcmpRepr {
            icmp_type: 128,
            code: 0,
            echo_id: Some(0x1234),
            quoted: None,
        };
        assert_eq!(decoded.transport, Transport::Icmpv6(echo));
    }

    #[test]
    fn test_later_fragment_has_no_transport() {
        // Offset 1448 bytes (181 units), M set; the data is not a UDP header.
        let frag = [17, 0, 0x05, 0xa9, 0, 0, 0, 1];
        let packet = build(next_header::FRAGMENT, &frag, &[0xff; 3]);
        let decoded = decode_ip(&packet);
        assert_eq!(decoded.error, None);
        let ip = decoded.ip().unwrap();
        assert_eq!(ip.protocol, 17);
        assert_eq!(
            ip.fragment,
            Fragment {
                is_fragment: true,
                offset_bytes: 1448,
                more: true
            }
        );
        assert_eq!(decoded.transport, Transport::None);
    }

    #[test]
    fn test_first_fragment_keeps_udp_length_of_whole_datagram() {
        let frag = [17, 0, 0x00, 0x01, 0, 0, 0, 1];
        let udp = [0x30, 0x39, 0x30, 0x3a, 0x05, 0xdc, 0, 0];
        let packet = build(next_header::FRAGMENT, &frag, &udp);
        let decoded = decode_ip(&packet);
        assert_eq!(decoded.error, None);
        assert!(decoded.ip().unwrap().fragment.more);
        let udp = decoded.udp().unwrap();
        assert_eq!(udp.payload_len, 1500 - 8);
    }

    #[test]
    fn test_jumbogram_uses_captured_length() {
        let mut packet = UDP_WITH_EXTENSIONS.to_vec();
        packet[4..6].copy_from_slice(&[0, 0]);
        let decoded = decode_ip(&packet);
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.ip().unwrap().total_len, 68);
    }

    #[test]
    fn test_zero_payload_without_hop_by_hop() {
        let packet = build(59, &[], &[]);
        let decoded = decode_ip(&packet);
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.ip().unwrap().protocol, 59);
        // Without a jumbo hop-by-hop header, a TCP header beyond payload length 0 is cut.
        let mut tcp = build(6, &[], &[0; 20]);
        tcp[4..6].copy_from_slice(&[0, 0]);
        assert_eq!(
            decode_ip(&tcp).error,
            Some(DecodeError::new(Layer::Tcp, Reason::Truncated))
        );
    }

    #[test]
    fn test_unknown_upper_layer_kept() {
        let packet = build(50, &[], &[0; 16]);
        let decoded = decode_ip(&packet);
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.ip().unwrap().protocol, 50);
        assert_eq!(decoded.transport, Transport::None);
    }

    #[test]
    fn test_walk_on_cut_capture_is_truncated() {
        let ext = [17, 0, 1, 4, 0, 0, 0, 0];
        assert_eq!(
            walk_extensions(next_header::DEST_OPTS, &ext[..7], 8),
            Err(Reason::Truncated)
        );
        assert_eq!(
            walk_extensions(next_header::DEST_OPTS, &ext[..7], 7),
            Err(Reason::BadOption)
        );
        let chain = walk_extensions(next_header::DEST_OPTS, &ext, 8).unwrap();
        assert_eq!((chain.protocol, chain.len), (17, 8));
    }
}
