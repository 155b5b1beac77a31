//! IPv4 (RFC 791).
//!
//! Owns the IPv4 header view, the length rules that turn a captured buffer into the IP
//! payload, and fragment state. Options are skipped, not parsed.
//!
//! Length rules, in order (each failure is a [`Layer::Ipv4`] error):
//! 1. 20 bytes captured, else [`Reason::Truncated`]; version 4, else [`Reason::BadVersion`].
//! 2. IHL ≥ 5, else [`Reason::BadHeaderLength`]; the whole header (with options) captured,
//!    else [`Reason::Truncated`].
//! 3. total length ≥ header length, else [`Reason::BadTotalLength`]. A total length of 0 is
//!    the TSO/GSO convention of Linux "BIG TCP" super-packets (captured on the sending host or
//!    after GRO) and is read as "the captured length", as tcpdump's `GUESS_TSO` does.
//! 4. total length < captured: the packet is trimmed (Ethernet padding). Total length >
//!    captured: the snap length cut the frame; the transport decodes from what is present.
//!
//! Non-first fragments (offset ≠ 0) carry no transport header: [`Transport::None`], no error.
//!
//! Does not own: checksum verification (offloaded NICs hand us bad checksums on the sending
//! host), reassembly, IP-in-IP tunnels (protocol 4/41 is kept as a number).
//!
//! Invariant: [`Ipv4Packet::new_checked`] proves that the 20-byte fixed header and the whole
//! IHL-sized header are present, so accessors index a fixed-size array.
//!
//! [`Transport::None`]: super::Transport::None

use std::net::{IpAddr, Ipv4Addr};

use super::{
    DecodeError, Decoded, Field, Fragment, IpPayload, IpRepr, Layer, Network, Reason, array4, be16,
};

/// Byte offsets of the fixed IPv4 header (RFC 791 §3.1).
mod field {
    use super::Field;

    /// Version (4 bits) and IHL (4 bits, in 32-bit words).
    pub(super) const VER_IHL: usize = 0;
    pub(super) const LENGTH: Field = 2..4;
    /// Flags (3 bits: reserved, DF, MF) and fragment offset (13 bits, in 8-byte units).
    pub(super) const FLG_OFF: Field = 6..8;
    pub(super) const TTL: usize = 8;
    pub(super) const PROTOCOL: usize = 9;
    pub(super) const SRC_ADDR: Field = 12..16;
    pub(super) const DST_ADDR: Field = 16..20;
    pub(super) const HEADER_LEN: usize = 20;
}

/// The more-fragments flag.
const FLAG_MF: u16 = 0x2000;
/// The fragment offset bits.
const OFFSET_MASK: u16 = 0x1fff;

/// A checked view of an IPv4 header.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ipv4Packet<'a> {
    header: &'a [u8; field::HEADER_LEN],
    /// The whole captured buffer, header included.
    buffer: &'a [u8],
}

impl<'a> Ipv4Packet<'a> {
    /// Checks the version and that the header, options included, is present.
    ///
    /// Deliberately does not look at the total length: the ICMP error decoder reuses this
    /// view on quoted headers, whose packets are cut by design.
    pub(super) fn new_checked(buffer: &'a [u8]) -> Result<Self, Reason> {
        let header: &[u8; field::HEADER_LEN] = buffer.first_chunk().ok_or(Reason::Truncated)?;
        let packet = Ipv4Packet { header, buffer };
        if header[field::VER_IHL] >> 4 != 4 {
            return Err(Reason::BadVersion);
        }
        if packet.header_len() < field::HEADER_LEN {
            return Err(Reason::BadHeaderLength);
        }
        if packet.header_len() > buffer.len() {
            return Err(Reason::Truncated);
        }
        Ok(packet)
    }

    /// Header length in bytes, options included (IHL × 4, at most 60).
    #[inline]
    pub(super) fn header_len(self) -> usize {
        usize::from(self.header[field::VER_IHL] & 0x0f) * 4
    }

    /// The total length field.
    #[inline]
    pub(super) fn total_len(self) -> u16 {
        be16(&self.header[field::LENGTH])
    }

    /// Fragment state: a fragment if MF is set or the offset is non-zero.
    #[inline]
    pub(super) fn fragment(self) -> Fragment {
        let flg_off = be16(&self.header[field::FLG_OFF]);
        let offset_bytes = u32::from(flg_off & OFFSET_MASK) * 8;
        let more = flg_off & FLAG_MF != 0;
        Fragment {
            is_fragment: more || offset_bytes != 0,
            offset_bytes,
            more,
        }
    }

    #[inline]
    pub(super) fn ttl(self) -> u8 {
        self.header[field::TTL]
    }

    #[inline]
    pub(super) fn protocol(self) -> u8 {
        self.header[field::PROTOCOL]
    }

    #[inline]
    pub(super) fn src_addr(self) -> Ipv4Addr {
        Ipv4Addr::from(array4(&self.header[field::SRC_ADDR]))
    }

    #[inline]
    pub(super) fn dst_addr(self) -> Ipv4Addr {
        Ipv4Addr::from(array4(&self.header[field::DST_ADDR]))
    }

    /// What follows the header (options skipped), up to the end of the capture.
    #[inline]
    pub(super) fn after_header(self) -> &'a [u8] {
        // new_checked proved header_len() <= buffer.len(); the fallback is never taken.
        self.buffer.get(self.header_len()..).unwrap_or_default()
    }
}

/// Decodes an IPv4 packet into [`Network::Ip`] and hands the payload to the transport layer.
pub(super) fn decode<'a>(data: &'a [u8], out: &mut Decoded<'a>) -> Result<(), DecodeError> {
    let error = |reason| DecodeError::new(Layer::Ipv4, reason);
    let packet = Ipv4Packet::new_checked(data).map_err(error)?;
    let header_len = packet.header_len();
    let total_len = match packet.total_len() {
        0 => data.len(),
        len => usize::from(len),
    };
    let Some(payload_len) = total_len.checked_sub(header_len) else {
        return Err(error(Reason::BadTotalLength));
    };
    let after_header = packet.after_header();
    let bytes = after_header.get(..payload_len).unwrap_or(after_header);
    let fragment = packet.fragment();
    let protocol = packet.protocol();
    out.network = Network::Ip(IpRepr {
        src: IpAddr::V4(packet.src_addr()),
        dst: IpAddr::V4(packet.dst_addr()),
        protocol,
        ttl: packet.ttl(),
        total_len: super::len_u32(total_len),
        fragment,
    });
    if fragment.is_later() {
        return Ok(());
    }
    let payload = IpPayload {
        bytes,
        len: payload_len,
        more_fragments: fragment.more,
    };
    super::decode_transport(protocol, payload, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{LinkType, TcpFlags, Transport, decode_frame};

    /// IPv4 header with 4 bytes of options, then a TCP SYN with no options.
    #[rustfmt::skip]
    static SYN_WITH_OPTIONS: [u8; 44] = [
        // version 4, IHL 6; DSCP/ECN; total length 44
        0x46, 0x00, 0x00, 0x2c,
        // identification; flags DF, offset 0
        0x12, 0x34, 0x40, 0x00,
        // TTL 64, protocol TCP, checksum (not verified)
        0x40, 0x06, 0x00, 0x00,
        // source 192.0.2.1
        192, 0, 2, 1,
        // destination 198.51.100.7
        198, 51, 100, 7,
        // option: router alert (type 148, length 4, value 0)
        0x94, 0x04, 0x00, 0x00,
        // TCP: source port 40000, destination port 443
        0x9c, 0x40, 0x01, 0xbb,
        // sequence number 1, acknowledgement 0
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
        // data offset 5, flags SYN, window 65535
        0x50, 0x02, 0xff, 0xff,
        // checksum, urgent pointer
        0x00, 0x00, 0x00, 0x00,
    ];

    fn decode_ip(data: &[u8]) -> Decoded<'_> {
        decode_frame(LinkType::Ipv4, data)
    }

    #[test]
    fn test_deconstruct() {
        let packet = Ipv4Packet::new_checked(&SYN_WITH_OPTIONS).unwrap();
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.total_len(), 44);
        assert_eq!(packet.ttl(), 64);
        assert_eq!(packet.protocol(), 6);
        assert_eq!(packet.src_addr(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(packet.dst_addr(), Ipv4Addr::new(198, 51, 100, 7));
        assert_eq!(packet.fragment(), Fragment::default());
        assert_eq!(packet.after_header().len(), 20);
    }

    #[test]
    fn test_decode_fills_ip_and_tcp() {
        let decoded = decode_ip(&SYN_WITH_OPTIONS);
        assert_eq!(decoded.error, None);
        let ip = decoded.ip().unwrap();
        assert_eq!(ip.src, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(ip.total_len, 44);
        let tcp = decoded.tcp().unwrap();
        assert_eq!(
            (tcp.src_port, tcp.dst_port, tcp.payload_len),
            (40000, 443, 0)
        );
        assert!(tcp.flags.has(TcpFlags::SYN));
    }

    #[test]
    fn test_truncated_at_every_length() {
        for len in 0..SYN_WITH_OPTIONS.len() {
            let decoded = decode_ip(&SYN_WITH_OPTIONS[..len]);
            if len < 24 {
                // The header (options included) is cut: IPv4 itself fails.
                assert_eq!(
                    decoded.error,
                    Some(DecodeError::new(Layer::Ipv4, Reason::Truncated))
                );
                assert_eq!(decoded.network, Network::Other { ethertype: 0x0800 });
            } else {
                // Snap-length cut: IP is kept, only the TCP header is reported.
                assert_eq!(
                    decoded.error,
                    Some(DecodeError::new(Layer::Tcp, Reason::Truncated))
                );
                assert_eq!(decoded.ip().unwrap().total_len, 44);
                assert_eq!(decoded.transport, Transport::None);
            }
        }
    }

    #[test]
    fn test_overlong_is_trimmed_to_total_len() {
        let mut padded = SYN_WITH_OPTIONS.to_vec();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(decode_ip(&padded), decode_ip(&SYN_WITH_OPTIONS));
        let after_header = Ipv4Packet::new_checked(&padded).unwrap().after_header();
        assert_eq!(after_header.len(), 26);
    }

    #[test]
    fn test_bad_version() {
        let mut packet = SYN_WITH_OPTIONS;
        packet[0] = 0x66;
        assert_eq!(
            Ipv4Packet::new_checked(&packet).err(),
            Some(Reason::BadVersion)
        );
    }

    #[test]
    fn test_small_ihl() {
        for ihl in 0..5 {
            let mut packet = SYN_WITH_OPTIONS;
            packet[0] = 0x40 | ihl;
            assert_eq!(
                Ipv4Packet::new_checked(&packet).err(),
                Some(Reason::BadHeaderLength)
            );
        }
    }

    #[test]
    fn test_ihl_beyond_capture_is_truncated() {
        let mut packet = SYN_WITH_OPTIONS;
        packet[0] = 0x4f;
        assert_eq!(
            Ipv4Packet::new_checked(&packet).err(),
            Some(Reason::Truncated)
        );
    }

    #[test]
    fn test_total_len_below_header_len() {
        for total in 1..24_u16 {
            let mut packet = SYN_WITH_OPTIONS;
            packet[2..4].copy_from_slice(&total.to_be_bytes());
            let decoded = decode_ip(&packet);
            assert_eq!(
                decoded.error,
                Some(DecodeError::new(Layer::Ipv4, Reason::BadTotalLength))
            );
        }
    }

    #[test]
    fn test_total_len_cutting_tcp_header_is_tcp_truncated() {
        let mut packet = SYN_WITH_OPTIONS;
        packet[2..4].copy_from_slice(&30_u16.to_be_bytes());
        let decoded = decode_ip(&packet);
        assert_eq!(
            decoded.error,
            Some(DecodeError::new(Layer::Tcp, Reason::Truncated))
        );
        assert_eq!(decoded.ip().unwrap().total_len, 30);
    }

    #[test]
    fn test_total_len_beyond_capture_is_snaplen_not_error() {
        let mut packet = SYN_WITH_OPTIONS;
        packet[2..4].copy_from_slice(&1500_u16.to_be_bytes());
        let decoded = decode_ip(&packet);
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.ip().unwrap().total_len, 1500);
        let tcp = decoded.tcp().unwrap();
        assert_eq!(tcp.payload_len, 1500 - 24 - 20);
    }

    #[test]
    fn test_zero_total_len_is_tso_super_packet() {
        let mut packet = SYN_WITH_OPTIONS.to_vec();
        packet[2..4].copy_from_slice(&[0, 0]);
        packet.extend_from_slice(&[0xaa; 100]);
        let decoded = decode_ip(&packet);
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.ip().unwrap().total_len, 144);
        let tcp = decoded.tcp().unwrap();
        assert_eq!(tcp.payload_len, 100);
    }

    #[test]
    fn test_first_fragment_decodes_transport() {
        let mut packet = SYN_WITH_OPTIONS;
        packet[6..8].copy_from_slice(&0x2000_u16.to_be_bytes());
        let decoded = decode_ip(&packet);
        assert_eq!(decoded.error, None);
        let ip = decoded.ip().unwrap();
        assert_eq!(
            ip.fragment,
            Fragment {
                is_fragment: true,
                offset_bytes: 0,
                more: true
            }
        );
        assert!(matches!(decoded.transport, Transport::Tcp(_)));
    }

    #[test]
    fn test_later_fragment_has_no_transport() {
        for flg_off in [0x2001_u16, 0x0001, 0x1fff] {
            let mut packet = SYN_WITH_OPTIONS;
            packet[6..8].copy_from_slice(&flg_off.to_be_bytes());
            // A later fragment's payload is not a TCP header, even if it is too short for one.
            packet[2..4].copy_from_slice(&30_u16.to_be_bytes());
            let decoded = decode_ip(&packet);
            assert_eq!(decoded.error, None);
            let fragment = decoded.ip().unwrap().fragment;
            assert!(fragment.is_later());
            assert_eq!(fragment.offset_bytes, u32::from(flg_off & 0x1fff) * 8);
            assert_eq!(fragment.more, flg_off & 0x2000 != 0);
            assert_eq!(decoded.transport, Transport::None);
        }
    }

    #[test]
    fn test_unknown_protocol_kept() {
        let mut packet = SYN_WITH_OPTIONS;
        packet[9] = 253;
        let decoded = decode_ip(&packet);
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.ip().unwrap().protocol, 253);
        assert_eq!(decoded.transport, Transport::None);
    }
}
