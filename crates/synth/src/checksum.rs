//! The Internet checksum (RFC 1071) used by IPv4, TCP, UDP, ICMP and `ICMPv6`.
//!
//! Owns the one's-complement sum in two steps, so callers can add a pseudo-header sum
//! (RFC 9293 §3.1, RFC 768, RFC 8200 §8.1) to the sum of the bytes before finishing.
//! Does not own the pseudo-header layout; `frame` builds it.

/// Sums `data` as big-endian 16-bit words, padding an odd last byte with zero.
///
/// The result is not folded: add further partial sums, then call [`finish`]. The `u64`
/// accumulator would need 2^48 words to overflow.
pub fn sum(data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(2);
    let mut total: u64 = 0;
    for pair in &mut chunks {
        if let [hi, lo] = *pair {
            total += u64::from(u16::from_be_bytes([hi, lo]));
        }
    }
    if let [last] = *chunks.remainder() {
        total += u64::from(u16::from_be_bytes([last, 0]));
    }
    total
}

/// Folds the carries of a partial sum into 16 bits and returns its one's complement:
/// the value to store in a checksum field.
pub fn finish(mut total: u64) -> u16 {
    while total > 0xffff {
        total = (total & 0xffff) + (total >> 16);
    }
    !u16::try_from(total).unwrap_or(u16::MAX)
}

/// The checksum of `data` alone (e.g. an IPv4 header or an `ICMPv4` message).
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example_sum() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 after folding.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn known_ipv4_header_checksum() {
        // A textbook IPv4 header (192.168.0.1 -> 192.168.0.199, UDP) with checksum b861.
        let mut header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&header), 0xb861);
        header[10] = 0xb8;
        header[11] = 0x61;
        // A header carrying its checksum sums to 0xffff, so its checksum is 0.
        assert_eq!(checksum(&header), 0);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(sum(&[]), 0);
    }

    #[test]
    fn finish_folds_repeatedly() {
        // 0x1fffe folds to 0xffff, whose complement is 0.
        assert_eq!(finish(0x1_fffe), 0);
        assert_eq!(finish(0x2_0000), !0x0002);
    }
}
