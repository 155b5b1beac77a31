//! Linux netfilter NFLOG messages, `LINKTYPE_NFLOG` (239).
//!
//! Layout (<https://www.tcpdump.org/linktypes/LINKTYPE_NFLOG.html>): a 4-byte header (address
//! family, version 0, resource id in network order), then netlink-style TLVs. Each TLV has a
//! length and a type in the capturing host's byte order, read here as little-endian (every
//! host netwarden targets); the length counts the 4-byte TLV header but not the padding to the
//! next multiple of 4. TLV type 9 (`NFULA_PAYLOAD`) holds the IP packet; its family comes from
//! the header (2 IPv4, 10 IPv6).
//!
//! Rules (each failure is a [`Layer::Link`] error): header cut or TLVs end before the payload
//! TLV: [`Reason::Truncated`]; version ≠ 0: [`Reason::BadVersion`]; family other than 2/10:
//! [`Reason::InvalidField`]; a TLV length below 4: [`Reason::BadOption`]; more than
//! [`MAX_NFLOG_TLVS`] TLVs before the payload: [`Reason::TooManyLayers`]. A payload TLV longer
//! than the capture is the snap length at work: what is present is decoded.
//!
//! Does not own: the other TLVs (prefix, marks, timestamps, UID…), which are skipped.
//!
//! Invariant: TLVs are read through `get`/`split_first_chunk` only; each loop turn consumes at
//! least 4 bytes and the loop is capped at [`MAX_NFLOG_TLVS`] turns.

use super::{DecodeError, Decoded, Field, Layer, Reason};

/// Byte offsets of the NFLOG header.
mod field {
    pub(super) const FAMILY: usize = 0;
    pub(super) const VERSION: usize = 1;
    // Resource id 2..4 (the NFLOG group) is not read.
    pub(super) const HEADER_LEN: usize = 4;
}

/// Byte offsets of a TLV header (little-endian fields).
mod tlv_field {
    use super::Field;

    pub(super) const LENGTH: Field = 0..2;
    pub(super) const TYPE: Field = 2..4;
    pub(super) const HEADER_LEN: usize = 4;
}

/// The only NFLOG version (`NFULNL_VERSION`).
const VERSION_0: u8 = 0;
/// Address families of the logged packet.
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// `NFULA_PAYLOAD`: the packet itself.
const NFULA_PAYLOAD: u16 = 9;
/// Netlink attribute types carry two flag bits (`NLA_F_NESTED`, `NLA_F_NET_BYTEORDER`) above
/// the type proper.
const NLA_TYPE_MASK: u16 = 0x3fff;

/// Most TLVs walked looking for the payload; one more is
/// [`Reason::TooManyLayers`].
///
/// The kernel defines about 20 attribute types and sends each at most once, so 32 leaves room
/// while bounding the walk over a crafted 64 KiB frame.
pub const MAX_NFLOG_TLVS: usize = 32;

/// Reads a little-endian `u16` from a 2-byte `field` range (see [`super::be16`]).
#[inline]
fn le16(bytes: &[u8]) -> u16 {
    bytes.first_chunk().map_or(0, |b| u16::from_le_bytes(*b))
}

/// Finds the payload TLV in `tlvs` (the bytes after the NFLOG header) and returns its value,
/// cut short where the capture ends.
fn find_payload(tlvs: &[u8]) -> Result<&[u8], Reason> {
    let mut rest = tlvs;
    for _ in 0..MAX_NFLOG_TLVS {
        let (header, _) = rest
            .split_first_chunk::<{ tlv_field::HEADER_LEN }>()
            .ok_or(Reason::Truncated)?;
        let len = usize::from(le16(&header[tlv_field::LENGTH]));
        let value_len = len
            .checked_sub(tlv_field::HEADER_LEN)
            .ok_or(Reason::BadOption)?;
        let value = rest.get(tlv_field::HEADER_LEN..).unwrap_or_default();
        if le16(&header[tlv_field::TYPE]) & NLA_TYPE_MASK == NFULA_PAYLOAD {
            return Ok(value.get(..value_len).unwrap_or(value));
        }
        if len > rest.len() {
            return Err(Reason::Truncated);
        }
        // The last TLV may omit its padding.
        let padded = len.next_multiple_of(4);
        rest = rest.get(padded..).unwrap_or_default();
    }
    Err(Reason::TooManyLayers)
}

/// Decodes an NFLOG message and the IPv4/IPv6 packet in its payload TLV.
pub(super) fn decode<'a>(data: &'a [u8], out: &mut Decoded<'a>) -> Result<(), DecodeError> {
    let error = |reason| DecodeError::new(Layer::Link, reason);
    let (header, tlvs) = data
        .split_first_chunk::<{ field::HEADER_LEN }>()
        .ok_or(error(Reason::Truncated))?;
    if header[field::VERSION] != VERSION_0 {
        return Err(error(Reason::BadVersion));
    }
    let family = header[field::FAMILY];
    if family != AF_INET && family != AF_INET6 {
        return Err(error(Reason::InvalidField));
    }
    let payload = find_payload(tlvs).map_err(error)?;
    if family == AF_INET {
        super::decode_ipv4(payload, out)
    } else {
        super::decode_ipv6(payload, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{LinkType, Network, Transport, decode_frame};

    /// NFLOG header, a prefix TLV needing padding, and a payload TLV with an IPv4/TCP header.
    #[rustfmt::skip]
    static NFLOG_TCP: [u8; 56] = [
        // family AF_INET, version 0, resource id 42
        0x02, 0x00, 0x00, 0x2a,
        // TLV: length 7, type 10 (NFULA_PREFIX), "ab\0", 1 byte of padding
        0x07, 0x00, 0x0a, 0x00, b'a', b'b', 0x00, 0x00,
        // TLV: length 44, type 9 (NFULA_PAYLOAD)
        0x2c, 0x00, 0x09, 0x00,
        // IPv4: version 4, IHL 5, total length 40, id, DF, TTL 64, TCP, checksum
        0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00,
        // source 10.0.2.15, destination 93.184.216.34
        10, 0, 2, 15, 93, 184, 216, 34,
        // TCP: ports 49762 → 80, sequence, acknowledgement
        0xc2, 0x62, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0,
        // data offset 5, SYN, window, checksum, urgent pointer
        0x50, 0x02, 0x72, 0x10, 0, 0, 0, 0,
    ];

    #[test]
    fn test_deconstruct() {
        let payload = find_payload(&NFLOG_TCP[4..]).unwrap();
        assert_eq!(payload, &NFLOG_TCP[16..]);
        let decoded = decode_frame(LinkType::Nflog, &NFLOG_TCP);
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.ip().unwrap().total_len, 40);
        let tcp = decoded.tcp().unwrap();
        assert_eq!((tcp.src_port, tcp.dst_port), (49762, 80));
    }

    #[test]
    fn test_truncated_at_every_length() {
        for len in 0..NFLOG_TCP.len() {
            let layer = match len {
                0..16 => Layer::Link,
                16..36 => Layer::Ipv4,
                _ => Layer::Tcp,
            };
            let decoded = decode_frame(LinkType::Nflog, &NFLOG_TCP[..len]);
            assert_eq!(
                decoded.error,
                Some(DecodeError::new(layer, Reason::Truncated)),
                "{len}"
            );
        }
    }

    #[test]
    fn test_overlong_trailing_tlv_ignored() {
        let mut frame = NFLOG_TCP.to_vec();
        frame.extend_from_slice(&[0x08, 0x00, 0x0b, 0x00, 0, 0, 0, 1]);
        assert_eq!(
            decode_frame(LinkType::Nflog, &frame),
            decode_frame(LinkType::Nflog, &NFLOG_TCP)
        );
    }

    #[test]
    fn test_tlv_length_below_header_is_bad_option() {
        for len in 0..4 {
            let mut frame = NFLOG_TCP;
            frame[4] = len;
            let decoded = decode_frame(LinkType::Nflog, &frame);
            assert_eq!(
                decoded.error,
                Some(DecodeError::new(Layer::Link, Reason::BadOption))
            );
        }
    }

    #[test]
    fn test_tlv_length_beyond_capture_is_truncated() {
        // The zeek nflog-bad-tlv-len sample: a 256-byte TLV in a 12-byte frame.
        let frame = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0, 0, 0, 0];
        let decoded = decode_frame(LinkType::Nflog, &frame);
        assert_eq!(
            decoded.error,
            Some(DecodeError::new(Layer::Link, Reason::Truncated))
        );
        assert_eq!(decoded.network, Network::Other { ethertype: 0 });
    }

    #[test]
    fn test_version_and_family() {
        let mut frame = NFLOG_TCP;
        frame[1] = 1;
        let decoded = decode_frame(LinkType::Nflog, &frame);
        assert_eq!(
            decoded.error,
            Some(DecodeError::new(Layer::Link, Reason::BadVersion))
        );
        let mut frame = NFLOG_TCP;
        frame[0] = 7;
        let decoded = decode_frame(LinkType::Nflog, &frame);
        assert_eq!(
            decoded.error,
            Some(DecodeError::new(Layer::Link, Reason::InvalidField))
        );
        let mut frame = NFLOG_TCP;
        frame[0] = 10;
        let decoded = decode_frame(LinkType::Nflog, &frame);
        assert_eq!(
            decoded.error,
            Some(DecodeError::new(Layer::Ipv6, Reason::BadVersion))
        );
    }

    #[test]
    fn test_payload_type_flag_bits_ignored() {
        let mut frame = NFLOG_TCP;
        frame[15] = 0x80;
        assert_eq!(decode_frame(LinkType::Nflog, &frame).error, None);
    }

    #[test]
    fn test_tlv_cap() {
        let mut frame = NFLOG_TCP[..4].to_vec();
        let filler = [0x04, 0x00, 0x0b, 0x00];
        for _ in 0..MAX_NFLOG_TLVS - 1 {
            frame.extend_from_slice(&filler);
        }
        let mut capped = frame.clone();
        frame.extend_from_slice(&NFLOG_TCP[12..]);
        assert_eq!(decode_frame(LinkType::Nflog, &frame).error, None);
        capped.extend_from_slice(&filler);
        capped.extend_from_slice(&NFLOG_TCP[12..]);
        let decoded = decode_frame(LinkType::Nflog, &capped);
        assert_eq!(
            decoded.error,
            Some(DecodeError::new(Layer::Link, Reason::TooManyLayers))
        );
    }

    #[test]
    fn test_payload_cut_by_snaplen_is_decoded() {
        // The payload TLV claims 1024 bytes; the capture keeps 40 of them.
        let mut frame = NFLOG_TCP;
        frame[12..14].copy_from_slice(&1028_u16.to_le_bytes());
        let decoded = decode_frame(LinkType::Nflog, &frame);
        assert_eq!(decoded.error, None);
        assert!(matches!(decoded.transport, Transport::Tcp(_)));
    }
}
