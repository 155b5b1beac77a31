//! TCP (RFC 9293 §3.1).
//!
//! Owns the TCP header view and the [`TcpRepr`] summary: ports, flags, sequence and
//! acknowledgement numbers, window, and the payload length implied by the IP length.
//!
//! Length rules (each failure is a [`Layer::Tcp`](super::Layer::Tcp) error):
//! * the 20-byte fixed header must be captured, else [`Reason::Truncated`];
//! * data offset ≥ 5, else [`Reason::BadHeaderLength`];
//! * data offset × 4 ≤ the IP payload length, else [`Reason::BadHeaderLength`] (except in a
//!   first fragment, where the options may continue in the next fragment: payload length 0).
//!
//! Options are never read, so options cut by the snap length are not an error.
//!
//! Does not own: option parsing, checksum verification, connection state (that is `flow`).
//!
//! Invariant: [`TcpPacket::new_checked`] proves the fixed header is present.

use super::{Field, IpPayload, Reason, TcpFlags, TcpRepr, be16, be32};

/// Byte offsets of the fixed TCP header (RFC 9293 §3.1).
mod field {
    use super::Field;

    pub(super) const SRC_PORT: Field = 0..2;
    pub(super) const DST_PORT: Field = 2..4;
    pub(super) const SEQ_NUM: Field = 4..8;
    pub(super) const ACK_NUM: Field = 8..12;
    /// Data offset (4 bits, in 32-bit words), reserved bits.
    pub(super) const DATA_OFF: usize = 12;
    /// CWR, ECE, URG, ACK, PSH, RST, SYN, FIN.
    pub(super) const FLAGS: usize = 13;
    pub(super) const WINDOW: Field = 14..16;
    pub(super) const HEADER_LEN: usize = 20;
}

/// A checked view of a TCP header.
#[derive(Clone, Copy, Debug)]
pub(super) struct TcpPacket<'a> {
    header: &'a [u8; field::HEADER_LEN],
}

impl<'a> TcpPacket<'a> {
    /// Checks that the fixed header is present and the data offset is at least 5.
    pub(super) fn new_checked(buffer: &'a [u8]) -> Result<Self, Reason> {
        let header = buffer.first_chunk().ok_or(Reason::Truncated)?;
        let packet = TcpPacket { header };
        if packet.header_len() < field::HEADER_LEN {
            return Err(Reason::BadHeaderLength);
        }
        Ok(packet)
    }

    /// Header length in bytes, options included (data offset × 4, at most 60).
    #[inline]
    pub(super) fn header_len(self) -> usize {
        usize::from(self.header[field::DATA_OFF] >> 4) * 4
    }

    #[inline]
    pub(super) fn src_port(self) -> u16 {
        be16(&self.header[field::SRC_PORT])
    }

    #[inline]
    pub(super) fn dst_port(self) -> u16 {
        be16(&self.header[field::DST_PORT])
    }

    #[inline]
    pub(super) fn seq_number(self) -> u32 {
        be32(&self.header[field::SEQ_NUM])
    }

    #[inline]
    pub(super) fn ack_number(self) -> u32 {
        be32(&self.header[field::ACK_NUM])
    }

    #[inline]
    pub(super) fn flags(self) -> TcpFlags {
        TcpFlags(self.header[field::FLAGS])
    }

    #[inline]
    pub(super) fn window(self) -> u16 {
        be16(&self.header[field::WINDOW])
    }
}

/// Parses the TCP header at the start of an IP payload.
pub(super) fn parse(payload: IpPayload<'_>) -> Result<TcpRepr, Reason> {
    let packet = TcpPacket::new_checked(payload.bytes)?;
    let data_len = match payload.len.checked_sub(packet.header_len()) {
        Some(len) => len,
        // A first fragment may end inside the options (RFC 791 allows any split; RFC 1858
        // calls it the tiny-fragment attack, which detection sees in the fragment fields).
        None if payload.more_fragments => 0,
        None => return Err(Reason::BadHeaderLength),
    };
    Ok(TcpRepr {
        src_port: packet.src_port(),
        dst_port: packet.dst_port(),
        flags: packet.flags(),
        seq: packet.seq_number(),
        ack: packet.ack_number(),
        window: packet.window(),
        payload_len: super::len_u32(data_len),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SYN-ACK with a 4-byte MSS option and 3 bytes of payload.
    #[rustfmt::skip]
    static SYN_ACK: [u8; 27] = [
        // source port 443, destination port 51000
        0x01, 0xbb, 0xc7, 0x38,
        // sequence number
        0x01, 0x02, 0x03, 0x04,
        // acknowledgement number
        0xa0, 0xb0, 0xc0, 0xd0,
        // data offset 6, flags SYN|ACK, window 29200
        0x60, 0x12, 0x72, 0x10,
        // checksum, urgent pointer
        0x00, 0x00, 0x00, 0x00,
        // option: MSS 1460
        0x02, 0x04, 0x05, 0xb4,
        // payload
        0x61, 0x62, 0x63,
    ];

    fn ip_payload(bytes: &[u8], len: usize) -> IpPayload<'_> {
        IpPayload {
            bytes,
            len,
            more_fragments: false,
        }
    }

    #[test]
    fn test_deconstruct() {
        let repr = parse(ip_payload(&SYN_ACK, SYN_ACK.len())).unwrap();
        assert_eq!(
            repr,
            TcpRepr {
                src_port: 443,
                dst_port: 51000,
                flags: TcpFlags(TcpFlags::SYN | TcpFlags::ACK),
                seq: 0x0102_0304,
                ack: 0xa0b0_c0d0,
                window: 29200,
                payload_len: 3,
            }
        );
        assert!(repr.flags.is_syn_ack());
        assert_eq!(TcpPacket::new_checked(&SYN_ACK).unwrap().header_len(), 24);
    }

    #[test]
    fn test_truncated_at_every_length() {
        for len in 0..SYN_ACK.len() {
            let result = parse(ip_payload(&SYN_ACK[..len], SYN_ACK.len()));
            if len < 20 {
                assert_eq!(result, Err(Reason::Truncated), "len {len}");
            } else {
                // Options and payload cut by the snap length: the header fields are all there.
                assert_eq!(result.unwrap().payload_len, 3, "len {len}");
            }
        }
    }

    #[test]
    fn test_overlong_capture_uses_ip_length() {
        let mut padded = SYN_ACK.to_vec();
        padded.extend_from_slice(&[0; 9]);
        let repr = parse(ip_payload(&padded, SYN_ACK.len())).unwrap();
        assert_eq!(repr.payload_len, 3);
    }

    #[test]
    fn test_small_data_offset() {
        for offset in 0..5_u8 {
            let mut packet = SYN_ACK;
            packet[12] = offset << 4;
            assert_eq!(
                TcpPacket::new_checked(&packet).err(),
                Some(Reason::BadHeaderLength)
            );
        }
    }

    #[test]
    fn test_data_offset_beyond_ip_length() {
        let mut packet = SYN_ACK;
        packet[12] = 0xf0;
        assert_eq!(parse(ip_payload(&packet, 59)), Err(Reason::BadHeaderLength));
        assert_eq!(parse(ip_payload(&packet, 60)).unwrap().payload_len, 0);
    }

    #[test]
    fn test_first_fragment_may_split_options() {
        let mut packet = SYN_ACK;
        packet[12] = 0xa0;
        let first_fragment = IpPayload {
            bytes: &packet,
            len: 24,
            more_fragments: true,
        };
        let repr = parse(first_fragment).unwrap();
        assert_eq!((repr.src_port, repr.payload_len), (443, 0));
    }

    #[test]
    fn test_all_flag_bits_kept() {
        let mut packet = SYN_ACK;
        packet[13] = 0xff;
        let flags = parse(ip_payload(&packet, SYN_ACK.len())).unwrap().flags;
        assert_eq!(flags, TcpFlags(0xff));
        assert!(flags.has(TcpFlags::CWR | TcpFlags::ECE | TcpFlags::URG | TcpFlags::FIN));
    }
}
