//! DNS message payloads (RFC 1035 §4.1) for synthetic UDP/53 traffic.
//!
//! Owns [`DnsMessage`]: a header, one question whose name is given as a label list, and an
//! answer section of address records or opaque records of a chosen size (so
//! amplification-sized responses can be built without real record data).
//! Does not own: the UDP/IP framing (`frame`), name compression beyond pointing answers at
//! the question name, or EDNS.
//!
//! Labels are written exactly as given. A label longer than 63 bytes makes a malformed name
//! on purpose (decoder tests want those); one longer than 255 bytes is cut to 255.

use std::net::IpAddr;

/// Record and query types used by the generators (RFC 1035 §3.2.2, RFC 3596, RFC 4034).
pub mod rtype {
    /// IPv4 address.
    pub const A: u16 = 1;
    /// Null record: arbitrary data, popular with DNS tunnels.
    pub const NULL: u16 = 10;
    /// Text strings.
    pub const TXT: u16 = 16;
    /// IPv6 address.
    pub const AAAA: u16 = 28;
    /// DNSSEC signature: large, a favourite of amplification attacks.
    pub const RRSIG: u16 = 46;
    /// Query for all records.
    pub const ANY: u16 = 255;
}

/// Class IN.
const CLASS_IN: u16 = 1;
/// Compression pointer to offset 12, where the question name starts.
const POINTER_TO_QNAME: u16 = 0xc00c;
/// Header flags of a recursive query: RD.
const FLAGS_QUERY: u16 = 0x0100;
/// Header flags of a recursive answer: QR, RD, RA (the rcode goes in the low 4 bits).
const FLAGS_RESPONSE: u16 = 0x8180;

/// The answer section of a [`DnsMessage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsAnswers<'a> {
    /// No answers.
    None,
    /// One A or AAAA record per address (by the address family), all with `ttl`.
    Addrs {
        /// Addresses to answer with.
        addrs: &'a [IpAddr],
        /// TTL of every record in seconds.
        ttl: u32,
    },
    /// `count` records of type `rtype`, each with `rdata_len` zero bytes of RDATA.
    ///
    /// Zero-filled RDATA is valid for TXT (a run of empty strings) and NULL, and the right
    /// size for anything else, which is what volume tests care about.
    Opaque {
        /// Record type written in each answer.
        rtype: u16,
        /// Number of records.
        count: u16,
        /// RDATA bytes per record.
        rdata_len: u16,
        /// TTL of every record in seconds.
        ttl: u32,
    },
}

/// A DNS query or response with one question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsMessage<'a> {
    /// Transaction id.
    pub id: u16,
    /// QR bit: a response rather than a query.
    pub is_response: bool,
    /// Response code (low 4 bits used).
    pub rcode: u8,
    /// Question name as labels, e.g. `[b"www", b"example", b"org"]`.
    pub qname: &'a [&'a [u8]],
    /// Question type, see [`rtype`].
    pub qtype: u16,
    /// Answer section.
    pub answers: DnsAnswers<'a>,
}

impl<'a> DnsMessage<'a> {
    /// A recursive query for `qname`/`qtype`.
    pub fn query(id: u16, qname: &'a [&'a [u8]], qtype: u16) -> DnsMessage<'a> {
        DnsMessage {
            id,
            is_response: false,
            rcode: 0,
            qname,
            qtype,
            answers: DnsAnswers::None,
        }
    }

    /// The response to this message's question carrying `answers` (rcode 0).
    #[must_use]
    pub fn answer(self, answers: DnsAnswers<'a>) -> DnsMessage<'a> {
        DnsMessage {
            is_response: true,
            rcode: 0,
            answers,
            ..self
        }
    }

    /// Appends the message in wire format to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let flags = if self.is_response {
            FLAGS_RESPONSE | u16::from(self.rcode & 0x0f)
        } else {
            FLAGS_QUERY
        };
        let answer_count = match self.answers {
            DnsAnswers::None => 0,
            DnsAnswers::Addrs { addrs, .. } => u16::try_from(addrs.len()).unwrap_or(u16::MAX),
            DnsAnswers::Opaque { count, .. } => count,
        };
        for word in [self.id, flags, 1, answer_count, 0, 0] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        for label in self.qname {
            let len = u8::try_from(label.len()).unwrap_or(u8::MAX);
            out.push(len);
            out.extend_from_slice(label.get(..usize::from(len)).unwrap_or(label));
        }
        out.push(0);
        out.extend_from_slice(&self.qtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        match self.answers {
            DnsAnswers::None => {}
            DnsAnswers::Addrs { addrs, ttl } => {
                for addr in addrs.iter().take(usize::from(answer_count)) {
                    match addr {
                        IpAddr::V4(v4) => {
                            write_record_header(out, rtype::A, ttl, 4);
                            out.extend_from_slice(&v4.octets());
                        }
                        IpAddr::V6(v6) => {
                            write_record_header(out, rtype::AAAA, ttl, 16);
                            out.extend_from_slice(&v6.octets());
                        }
                    }
                }
            }
            DnsAnswers::Opaque {
                rtype,
                count,
                rdata_len,
                ttl,
            } => {
                for _ in 0..count {
                    write_record_header(out, rtype, ttl, rdata_len);
                    out.resize(out.len() + usize::from(rdata_len), 0);
                }
            }
        }
    }
}

/// Writes an answer's owner (a pointer to the question name), type, class, TTL and RDLENGTH.
fn write_record_header(out: &mut Vec<u8>, rtype: u16, ttl: u32, rdata_len: u16) {
    out.extend_from_slice(&POINTER_TO_QNAME.to_be_bytes());
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&rdata_len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    const NAME: &[&[u8]] = &[b"www", b"example", b"org"];

    #[test]
    fn query_wire_format() {
        let mut out = Vec::new();
        DnsMessage::query(0xbeef, NAME, rtype::A).write(&mut out);
        let expected: &[u8] = &[
            0xbe, 0xef, 0x01, 0x00, // id, flags RD
            0, 1, 0, 0, 0, 0, 0, 0, // qd=1 an=0 ns=0 ar=0
            3, b'w', b'w', b'w', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'o', b'r', b'g',
            0, // qname
            0, 1, 0, 1, // qtype A, class IN
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn response_with_addresses() {
        let addrs = [
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        let mut out = Vec::new();
        DnsMessage::query(1, NAME, rtype::A)
            .answer(DnsAnswers::Addrs {
                addrs: &addrs,
                ttl: 300,
            })
            .write(&mut out);
        assert_eq!(&out[2..4], &[0x81, 0x80]);
        assert_eq!(&out[6..8], &[0, 2]);
        let question_end = 12 + 17 + 4;
        let a = &out[question_end..question_end + 16];
        assert_eq!(
            a,
            &[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4, 198, 18, 0, 1]
        );
        assert_eq!(out.len(), question_end + 16 + 28);
    }

    #[test]
    fn opaque_answers_reach_amplification_size() {
        let mut out = Vec::new();
        let answers = DnsAnswers::Opaque {
            rtype: rtype::RRSIG,
            count: 10,
            rdata_len: 340,
            ttl: 60,
        };
        DnsMessage::query(7, NAME, rtype::ANY)
            .answer(answers)
            .write(&mut out);
        assert_eq!(out.len(), 12 + 17 + 4 + 10 * (12 + 340));
        assert_eq!(&out[6..8], &[0, 10]);
    }

    #[test]
    fn overlong_label_is_written_as_given() {
        let long = [b'a'; 70];
        let name: &[&[u8]] = &[&long];
        let mut out = Vec::new();
        DnsMessage::query(0, name, rtype::TXT).write(&mut out);
        assert_eq!(out[12], 70);
        assert_eq!(out.len(), 12 + 1 + 70 + 1 + 4);
    }
}
