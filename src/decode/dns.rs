//! DNS over UDP (RFC 1035 §4.1): the header and the first question.
//!
//! Owns the DNS header view, question-name validation, and the [`DnsName`] helpers
//! ([`DnsName::labels`], [`DnsName::len_text`], `Display`).
//!
//! Name rules (RFC 1035 §2.3.4, §3.1, §4.1.4), each failure a [`Layer::Dns`] error:
//! * a label is at most 63 bytes: the two top bits of a length byte are `00` for a label, `11`
//!   for a compression pointer; `01` and `10` (RFC 6891 §5 retired extended labels) are
//!   [`Reason::InvalidField`];
//! * a name is at most 255 bytes in wire form, length bytes and the final zero included, else
//!   [`Reason::InvalidField`]; hence at most 127 labels, and a 128th is
//!   [`Reason::TooManyLayers`];
//! * a compression pointer ends the name and is not followed ([`DnsName::is_compressed`]); a
//!   first question normally has none, and not following pointers rules out pointer loops;
//! * any of it cut off is [`Reason::Truncated`].
//!
//! The header is kept when only the question fails, so [`Decoded::dns`] can be `Some` with
//! `error` set. Label bytes are not restricted to letters, digits and hyphens: DNS names are
//! binary (RFC 2181 §11), and odd bytes are a signal for detection, not a decoding error.
//!
//! Does not own: answer, authority and additional records, DNS over TCP, EDNS.
//!
//! Invariant: [`DnsPacket::new_checked`] proves the 12-byte header is present; names are read
//! through `get` only, with a loop bounded by the 127-label cap.

use std::fmt::{self, Write as _};

use super::{DecodeError, Decoded, DnsName, DnsQuestion, DnsRepr, Field, Layer, Reason, be16};

/// Byte offsets of the DNS header (RFC 1035 §4.1.1).
mod field {
    use super::Field;

    pub(super) const ID: Field = 0..2;
    /// QR (1 bit), opcode (4 bits), AA, TC, RD.
    pub(super) const FLAGS_HI: usize = 2;
    /// RA, Z, AD, CD, rcode (4 bits).
    pub(super) const FLAGS_LO: usize = 3;
    pub(super) const QDCOUNT: Field = 4..6;
    pub(super) const ANCOUNT: Field = 6..8;
    pub(super) const NSCOUNT: Field = 8..10;
    pub(super) const ARCOUNT: Field = 10..12;
    pub(super) const HEADER_LEN: usize = 12;
}

/// Byte offsets of the question fields after the name (RFC 1035 §4.1.2).
mod question_field {
    use super::Field;

    pub(super) const QTYPE: Field = 0..2;
    pub(super) const QCLASS: Field = 2..4;
    pub(super) const LEN: usize = 4;
}

/// Longest name in wire form, length bytes and the root label included (RFC 1035 §2.3.4).
const MAX_NAME_LEN: usize = 255;
/// Most labels a 255-byte name can hold (each takes at least 2 bytes, plus the root byte).
const MAX_LABELS: usize = 127;
/// The two top bits of a length byte that mark a compression pointer (RFC 1035 §4.1.4).
const POINTER_TAG: u8 = 0xc0;

/// A checked view of a DNS message header and the bytes after it.
#[derive(Clone, Copy, Debug)]
pub(super) struct DnsPacket<'a> {
    header: &'a [u8; field::HEADER_LEN],
    body: &'a [u8],
}

impl<'a> DnsPacket<'a> {
    /// Checks that the 12-byte header is present.
    pub(super) fn new_checked(buffer: &'a [u8]) -> Result<Self, Reason> {
        let (header, body) = buffer.split_first_chunk().ok_or(Reason::Truncated)?;
        Ok(DnsPacket { header, body })
    }

    /// The header summary, with no question yet.
    pub(super) fn repr(self, message_len: u32) -> DnsRepr<'a> {
        let flags_hi = self.header[field::FLAGS_HI];
        DnsRepr {
            id: be16(&self.header[field::ID]),
            is_response: flags_hi & 0x80 != 0,
            opcode: (flags_hi >> 3) & 0x0f,
            rcode: self.header[field::FLAGS_LO] & 0x0f,
            question_count: be16(&self.header[field::QDCOUNT]),
            answer_count: be16(&self.header[field::ANCOUNT]),
            authority_count: be16(&self.header[field::NSCOUNT]),
            additional_count: be16(&self.header[field::ARCOUNT]),
            question: None,
            message_len,
        }
    }

    /// Parses the first question (the caller checks that the header announces one).
    pub(super) fn first_question(self) -> Result<DnsQuestion<'a>, Reason> {
        let (name, rest) = parse_name(self.body)?;
        let tail: &[u8; question_field::LEN] = rest.first_chunk().ok_or(Reason::Truncated)?;
        Ok(DnsQuestion {
            name,
            qtype: be16(&tail[question_field::QTYPE]),
            qclass: be16(&tail[question_field::QCLASS]),
        })
    }
}

/// Parses a name at the start of `bytes`; returns it and the bytes after it.
fn parse_name(bytes: &[u8]) -> Result<(DnsName<'_>, &[u8]), Reason> {
    let mut pos = 0;
    let mut labels = 0;
    loop {
        let len = *bytes.get(pos).ok_or(Reason::Truncated)?;
        match len & POINTER_TAG {
            0 if len == 0 => {
                let wire = bytes.get(..pos).unwrap_or_default();
                let rest = bytes.get(pos + 1..).unwrap_or_default();
                return Ok((
                    DnsName {
                        wire,
                        is_compressed: false,
                    },
                    rest,
                ));
            }
            0 => {
                if labels == MAX_LABELS {
                    return Err(Reason::TooManyLayers);
                }
                labels += 1;
                pos += 1 + usize::from(len);
                // `pos` bytes of labels plus at least the root byte.
                if pos + 1 > MAX_NAME_LEN {
                    return Err(Reason::InvalidField);
                }
            }
            POINTER_TAG => {
                let rest = bytes.get(pos + 2..).ok_or(Reason::Truncated)?;
                let wire = bytes.get(..pos).unwrap_or_default();
                return Ok((
                    DnsName {
                        wire,
                        is_compressed: true,
                    },
                    rest,
                ));
            }
            _ => return Err(Reason::InvalidField),
        }
    }
}

/// Decodes a DNS message into [`Decoded::dns`]; `message_len` is the UDP payload length.
pub(super) fn decode<'a>(
    message: &'a [u8],
    message_len: u32,
    out: &mut Decoded<'a>,
) -> Result<(), DecodeError> {
    let packet =
        DnsPacket::new_checked(message).map_err(|reason| DecodeError::new(Layer::Dns, reason))?;
    let mut repr = packet.repr(message_len);
    let result = if repr.question_count == 0 {
        Ok(())
    } else {
        packet
            .first_question()
            .map(|question| repr.question = Some(question))
    };
    out.dns = Some(repr);
    result.map_err(|reason| DecodeError::new(Layer::Dns, reason))
}

/// An iterator over the labels of a [`DnsName`], outermost (leftmost) first.
#[derive(Clone, Debug)]
pub struct DnsLabels<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for DnsLabels<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, tail) = self.rest.split_first()?;
        let Some((label, rest)) = tail.split_at_checked(usize::from(len)) else {
            // Only a hand-built name can be malformed; stop rather than guess.
            self.rest = &[];
            return None;
        };
        self.rest = rest;
        Some(label)
    }
}

impl<'a> DnsName<'a> {
    /// The labels, leftmost first; empty for the root name. Stops early (without panicking)
    /// only if `wire` was built by hand and is not a valid label sequence.
    #[inline]
    pub fn labels(&self) -> DnsLabels<'a> {
        DnsLabels { rest: self.wire }
    }

    /// Length of the name in dotted text form without the trailing dot (`www.example.com`
    /// is 15, the root is 0), counting each label byte once and without escaping. For a
    /// compressed name, only the labels before the pointer count.
    ///
    /// Constant time: every length byte of a valid name becomes a dot except the first (a
    /// hand-built `wire` that is not a valid label sequence gives a meaningless but
    /// panic-free value).
    #[inline]
    pub fn len_text(&self) -> usize {
        self.wire.len().saturating_sub(1)
    }
}

impl fmt::Display for DnsName<'_> {
    /// Dotted text without the trailing dot; the root name is `.`. Bytes outside printable
    /// ASCII, and `.` or `\` inside a label, are escaped as `\DDD` (RFC 1035 §5.1), so the
    /// output is unambiguous but may be longer than [`DnsName::len_text`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wire.is_empty() && !self.is_compressed {
            return f.write_str(".");
        }
        for (index, label) in self.labels().enumerate() {
            if index != 0 {
                f.write_str(".")?;
            }
            for &byte in label {
                if byte.is_ascii_graphic() && byte != b'.' && byte != b'\\' {
                    fmt::Write::write_char(f, char::from(byte))?;
                } else {
                    write!(f, "\\{byte:03}")?;
                }
            }
        }
        Ok(())
    }
}

/// `text`, the dotted form of a name from a packet (its labels joined by `.`), made safe
/// to hand to people and to other programs: every byte but an ASCII letter, digit, `-`,
/// `_` and the separating `.` is written `\DDD` (RFC 1035 §5.1, the form of
/// [`DnsName`]'s `Display`), so no control character (a newline), markup (`<`, `&`,
/// quotes), `\` or non-ASCII byte gets through as itself. Runs when an alert is made,
/// never per packet.
pub fn escape_name_text(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\{byte:03}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_text_keeps_host_name_characters_and_escapes_everything_else() {
        assert_eq!(
            escape_name_text(b"xn--bcher-kva.example.com"),
            "xn--bcher-kva.example.com"
        );
        assert_eq!(escape_name_text(b"_dmarc.Ex-1.org"), "_dmarc.Ex-1.org");
        assert_eq!(
            escape_name_text(b"a\nb<script>&\"x\\.com"),
            "a\\010b\\060script\\062\\038\\034x\\092.com"
        );
        assert_eq!(escape_name_text(&[0xc3, 0xa9, b' ']), "\\195\\169\\032");
    }

    /// A recursive query for `www.example.com` A IN.
    #[rustfmt::skip]
    static QUERY: [u8; 33] = [
        // id 0x1234, flags: RD
        0x12, 0x34, 0x01, 0x00,
        // one question, no answer, authority or additional records
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        // name: 3 "www" 7 "example" 3 "com" 0
        3, b'w', b'w', b'w', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0,
        // qtype A, qclass IN
        0x00, 0x01, 0x00, 0x01,
    ];

    fn decode_message(message: &[u8]) -> (Result<(), DecodeError>, Option<DnsRepr<'_>>) {
        let mut out = Decoded::EMPTY;
        let result = decode(message, super::super::len_u32(message.len()), &mut out);
        (result, out.dns)
    }

    /// A message with the header of [`QUERY`] and the given body.
    fn message_with(body: &[u8]) -> Vec<u8> {
        let mut message = QUERY[..12].to_vec();
        message.extend_from_slice(body);
        message
    }

    fn first_question(message: &[u8]) -> Result<DnsQuestion<'_>, Reason> {
        DnsPacket::new_checked(message).unwrap().first_question()
    }

    #[test]
    fn test_deconstruct() {
        let (result, dns) = decode_message(&QUERY);
        assert_eq!(result, Ok(()));
        let dns = dns.unwrap();
        assert_eq!(
            (dns.id, dns.is_response, dns.opcode, dns.rcode),
            (0x1234, false, 0, 0)
        );
        assert_eq!((dns.question_count, dns.answer_count), (1, 0));
        assert_eq!(
            (dns.authority_count, dns.additional_count, dns.message_len),
            (0, 0, 33)
        );
        let question = dns.question.unwrap();
        assert_eq!((question.qtype, question.qclass), (1, 1));
        assert_eq!(question.name.wire, &QUERY[12..28]);
        assert!(!question.name.is_compressed);
    }

    #[test]
    fn test_name_helpers() {
        let name = DnsPacket::new_checked(&QUERY)
            .unwrap()
            .first_question()
            .unwrap()
            .name;
        let labels: Vec<&[u8]> = name.labels().collect();
        assert_eq!(labels, [&b"www"[..], b"example", b"com"]);
        assert_eq!(name.len_text(), "www.example.com".len());
        assert_eq!(name.to_string(), "www.example.com");
    }

    #[test]
    fn test_root_name() {
        let message = message_with(&[0, 0, 2, 0, 1]);
        let question = first_question(&message).unwrap();
        assert_eq!(question.name.labels().count(), 0);
        assert_eq!(question.name.len_text(), 0);
        assert_eq!(question.name.to_string(), ".");
        assert_eq!(question.qtype, 2);
    }

    #[test]
    fn test_display_escapes_odd_bytes() {
        let message = message_with(&[3, b'a', b'.', 0x00, 1, b'\\', 0, 0, 16, 0, 1]);
        let question = first_question(&message).unwrap();
        assert_eq!(question.name.to_string(), "a\\046\\000.\\092");
        assert_eq!(question.name.len_text(), 5);
    }

    #[test]
    fn test_response_flags() {
        let mut message = QUERY;
        // QR, opcode 5 (update), AA clear, TC, RD; RA, rcode 3 (NXDOMAIN).
        message[2..4].copy_from_slice(&[0xab, 0x83]);
        let dns = decode_message(&message).1.unwrap();
        assert_eq!((dns.is_response, dns.opcode, dns.rcode), (true, 5, 3));
    }

    #[test]
    fn test_truncated_at_every_length() {
        for len in 0..QUERY.len() {
            let (result, dns) = decode_message(&QUERY[..len]);
            assert_eq!(
                result,
                Err(DecodeError::new(Layer::Dns, Reason::Truncated)),
                "len {len}"
            );
            // The header is kept once it is complete; the question never is when cut.
            assert_eq!(dns.is_some(), len >= 12, "len {len}");
            assert_eq!(dns.and_then(|dns| dns.question), None, "len {len}");
        }
    }

    #[test]
    fn test_overlong_message_ignores_trailing_records() {
        let mut message = QUERY.to_vec();
        message.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        let question = decode_message(&message).1.unwrap().question.unwrap();
        assert_eq!(question.name.wire, &QUERY[12..28]);
    }

    #[test]
    fn test_no_question_is_not_an_error() {
        let mut message = QUERY;
        message[4..6].copy_from_slice(&[0, 0]);
        let (result, dns) = decode_message(&message[..12]);
        assert_eq!(result, Ok(()));
        assert_eq!(dns.unwrap().question, None);
    }

    #[test]
    fn test_compression_pointer_ends_name() {
        let message = message_with(&[3, b'w', b'w', b'w', 0xc0, 0x0c, 0, 28, 0, 1]);
        let question = first_question(&message).unwrap();
        assert!(question.name.is_compressed);
        assert_eq!(question.name.to_string(), "www");
        assert_eq!(question.qtype, 28);
        assert_eq!(
            first_question(&message_with(&[0xc0])).err(),
            Some(Reason::Truncated)
        );
    }

    #[test]
    fn test_extended_label_types_are_invalid() {
        assert_eq!(
            first_question(&message_with(&[0x40, 0, 0, 1, 0, 1])).err(),
            Some(Reason::InvalidField)
        );
        assert_eq!(
            first_question(&message_with(&[0x80, 0, 0, 1, 0, 1])).err(),
            Some(Reason::InvalidField)
        );
    }

    /// A name of labels with the given lengths, then qtype/qclass.
    fn name_of(label_lens: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        for &len in label_lens {
            body.push(len);
            body.extend(std::iter::repeat_n(b'x', usize::from(len)));
        }
        body.extend_from_slice(&[0, 0, 1, 0, 1]);
        body
    }

    #[test]
    fn test_name_length_limit() {
        // 3 × 64 + 62 bytes of labels + the root byte = 255.
        let longest = name_of(&[63, 63, 63, 61]);
        let message = message_with(&longest);
        let question = first_question(&message).unwrap();
        assert_eq!(question.name.wire.len(), 254);
        assert_eq!(question.name.len_text(), 253);
        assert_eq!(question.name.to_string().len(), 253);
        assert_eq!(
            first_question(&message_with(&name_of(&[63, 63, 63, 62]))).err(),
            Some(Reason::InvalidField)
        );
    }

    #[test]
    fn test_label_count_limit() {
        let message = message_with(&name_of(&[1; 127]));
        let question = first_question(&message).unwrap();
        assert_eq!(question.name.labels().count(), 127);
        assert_eq!(
            first_question(&message_with(&name_of(&[1; 128]))).err(),
            Some(Reason::TooManyLayers)
        );
    }

    #[test]
    fn test_bad_question_keeps_header() {
        let mut message = QUERY;
        message[12] = 0x41;
        let (result, dns) = decode_message(&message);
        assert_eq!(
            result,
            Err(DecodeError::new(Layer::Dns, Reason::InvalidField))
        );
        let dns = dns.unwrap();
        assert_eq!((dns.id, dns.question), (0x1234, None));
    }

    #[test]
    fn test_labels_of_hand_built_name_stop_without_panic() {
        let name = DnsName {
            wire: &[5, b'a', b'b'],
            is_compressed: false,
        };
        assert_eq!(name.labels().count(), 0);
        let name = DnsName {
            wire: &[1, b'a', 9],
            is_compressed: false,
        };
        assert_eq!(name.labels().collect::<Vec<_>>(), [&b"a"[..]]);
    }
}
