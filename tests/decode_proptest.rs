//! Property tests of `decode::decode_frame`.
//!
//! * Robustness: any byte string, under every link type, decodes without panicking and the
//!   summary obeys the layering invariants (transport only over IP, no transport in a later
//!   fragment, DNS only over UDP).
//! * Differential round trip: Ethernet frames (0–2 VLAN tags) carrying IPv4 or IPv6 and TCP,
//!   UDP or ICMP are built from random fields by a small builder below, which writes every
//!   length field from the RFC layouts independently of the decoder; decoding must give back
//!   exactly those fields. The same bytes behind Linux cooked v1/v2 and raw-IP framing must
//!   decode to the same summary, and every prefix shorter than the header stack must be
//!   reported as truncated while every longer prefix decodes cleanly (snap-length rule).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netwarden::decode::{
    Decoded, Fragment, IcmpRepr, IpRepr, LinkType, Network, Reason, TcpFlags, TcpRepr, Transport,
    UdpRepr, decode_frame, ethertype, ip_protocol,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// Every supported link type.
const LINK_TYPES: [LinkType; 9] = [
    LinkType::Ethernet,
    LinkType::Null,
    LinkType::Loop,
    LinkType::RawIp,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Nflog,
];

/// Checks the layering invariants every summary must satisfy, whatever the input.
fn assert_invariants(decoded: &Decoded<'_>) {
    if let Some(e) = decoded.error {
        assert!(
            e.index().is_some(),
            "{e:?} is not in DecodeError::POSSIBLE, so it has no metric series"
        );
    }
    if !matches!(decoded.transport, Transport::None) {
        assert!(
            decoded.ip().is_some_and(|ip| !ip.fragment.is_later()),
            "a transport header implies an IP header that is not a later fragment"
        );
    }
    if decoded.dns.is_some() {
        assert!(
            matches!(decoded.transport, Transport::Udp(_)),
            "DNS only over UDP"
        );
    }
    if decoded.inner_vlan.is_some() {
        assert!(decoded.vlan.is_some(), "an inner VLAN implies an outer one");
    }
    if let Some(ip) = decoded.ip() {
        let is_v4 = ip.src.is_ipv4();
        assert_eq!(is_v4, ip.dst.is_ipv4(), "both addresses of one version");
        match decoded.transport {
            Transport::Icmp(_) => assert_eq!(ip.protocol, ip_protocol::ICMP),
            Transport::Icmpv6(_) => assert_eq!(ip.protocol, ip_protocol::ICMPV6),
            Transport::Tcp(_) => assert_eq!(ip.protocol, ip_protocol::TCP),
            Transport::Udp(_) => assert_eq!(ip.protocol, ip_protocol::UDP),
            Transport::None => {}
        }
    }
}

/// The IP layer of a generated frame.
#[derive(Clone, Debug)]
enum IpSpec {
    V4 {
        src: [u8; 4],
        dst: [u8; 4],
        ttl: u8,
        ident: u16,
        dont_fragment: bool,
    },
    V6 {
        src: [u8; 16],
        dst: [u8; 16],
        hop_limit: u8,
        flow_label: u32,
    },
}

/// The transport layer of a generated frame.
#[derive(Clone, Debug)]
enum L4Spec {
    Tcp {
        src_port: u16,
        dst_port: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
        /// Length of `options` in 32-bit words (at most 10).
        option_words: u8,
        /// TCP options, `option_words` × 4 bytes.
        options: Vec<u8>,
    },
    /// Ports are never 53, so no DNS decoding is attempted on random payloads.
    Udp { src_port: u16, dst_port: u16 },
    Icmp {
        icmp_type: u8,
        code: u8,
        rest: [u8; 4],
    },
}

/// A whole generated frame.
#[derive(Clone, Debug)]
struct FrameSpec {
    macs: [u8; 12],
    /// (tag protocol id, tag control information) per VLAN tag, outermost first.
    tags: Vec<(u16, u16)>,
    ip: IpSpec,
    l4: L4Spec,
    payload: Vec<u8>,
    /// Bytes after the IP packet (Ethernet padding, FCS, junk); the IP length excludes them.
    trailer: Vec<u8>,
}

fn ip_spec() -> impl Strategy<Value = IpSpec> {
    prop_oneof![
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u8>(),
            any::<u16>(),
            any::<bool>()
        )
            .prop_map(|(src, dst, ttl, ident, dont_fragment)| IpSpec::V4 {
                src,
                dst,
                ttl,
                ident,
                dont_fragment
            }),
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u8>(),
            0..(1_u32 << 20)
        )
            .prop_map(|(src, dst, hop_limit, flow_label)| IpSpec::V6 {
                src,
                dst,
                hop_limit,
                flow_label
            }),
    ]
}

fn non_dns_port() -> impl Strategy<Value = u16> {
    any::<u16>().prop_map(|port| if port == 53 { 54 } else { port })
}

fn l4_spec() -> impl Strategy<Value = L4Spec> {
    // Up to 10 words (40 bytes) of options, the most a 4-bit data offset allows.
    let options =
        (0..=10_u8).prop_flat_map(|words| (Just(words), vec(any::<u8>(), usize::from(words) * 4)));
    let tcp = (
        (any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>()),
        (any::<u8>(), any::<u16>()),
        options,
    )
        .prop_map(
            |((src_port, dst_port, seq, ack), (flags, window), (option_words, options))| {
                L4Spec::Tcp {
                    src_port,
                    dst_port,
                    seq,
                    ack,
                    flags,
                    window,
                    option_words,
                    options,
                }
            },
        );
    let udp = (non_dns_port(), non_dns_port())
        .prop_map(|(src_port, dst_port)| L4Spec::Udp { src_port, dst_port });
    let icmp = (any::<u8>(), any::<u8>(), any::<[u8; 4]>()).prop_map(|(icmp_type, code, rest)| {
        L4Spec::Icmp {
            icmp_type,
            code,
            rest,
        }
    });
    prop_oneof![tcp, udp, icmp]
}

fn frame_spec() -> impl Strategy<Value = FrameSpec> {
    let tag = (
        prop::sample::select(vec![ethertype::VLAN, ethertype::QINQ, ethertype::VLAN_9100]),
        any::<u16>(),
    );
    (
        any::<[u8; 12]>(),
        vec(tag, 0..=2),
        ip_spec(),
        l4_spec(),
        vec(any::<u8>(), 0..64),
        vec(any::<u8>(), 0..24),
    )
        .prop_map(|(macs, tags, ip, l4, payload, trailer)| FrameSpec {
            macs,
            tags,
            ip,
            l4,
            payload,
            trailer,
        })
}

fn be16(value: u16) -> [u8; 2] {
    value.to_be_bytes()
}

/// A length field. Generated packets stay far below 64 KiB; a saturated value could only make
/// the round trip fail loudly, never pass wrongly.
fn len16(len: usize) -> [u8; 2] {
    be16(u16::try_from(len).unwrap_or(u16::MAX))
}

/// A length as the summaries hold it (see [`len16`]).
fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl FrameSpec {
    fn is_v6(&self) -> bool {
        matches!(self.ip, IpSpec::V6 { .. })
    }

    fn protocol(&self) -> u8 {
        match (&self.l4, self.is_v6()) {
            (L4Spec::Tcp { .. }, _) => ip_protocol::TCP,
            (L4Spec::Udp { .. }, _) => ip_protocol::UDP,
            (L4Spec::Icmp { .. }, false) => ip_protocol::ICMP,
            (L4Spec::Icmp { .. }, true) => ip_protocol::ICMPV6,
        }
    }

    /// The transport header and payload (RFC 9293 §3.1, RFC 768, RFC 792 / RFC 4443 §2.1).
    /// Checksums are left zero: the decoder does not verify them.
    fn l4_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match &self.l4 {
            L4Spec::Tcp {
                src_port,
                dst_port,
                seq,
                ack,
                flags,
                window,
                option_words,
                options,
            } => {
                out.extend_from_slice(&be16(*src_port));
                out.extend_from_slice(&be16(*dst_port));
                out.extend_from_slice(&seq.to_be_bytes());
                out.extend_from_slice(&ack.to_be_bytes());
                out.extend_from_slice(&[(5 + option_words) << 4, *flags]);
                out.extend_from_slice(&be16(*window));
                out.extend_from_slice(&[0, 0, 0, 0]);
                out.extend_from_slice(options);
            }
            L4Spec::Udp { src_port, dst_port } => {
                out.extend_from_slice(&be16(*src_port));
                out.extend_from_slice(&be16(*dst_port));
                out.extend_from_slice(&len16(8 + self.payload.len()));
                out.extend_from_slice(&[0, 0]);
            }
            L4Spec::Icmp {
                icmp_type,
                code,
                rest,
            } => {
                out.extend_from_slice(&[*icmp_type, *code, 0, 0]);
                out.extend_from_slice(rest);
            }
        }
        out.extend_from_slice(&self.payload);
        out
    }

    /// The IP packet (RFC 791 §3.1, RFC 8200 §3), without trailer.
    fn ip_bytes(&self) -> Vec<u8> {
        let l4 = self.l4_bytes();
        let mut out = Vec::new();
        match &self.ip {
            IpSpec::V4 {
                src,
                dst,
                ttl,
                ident,
                dont_fragment,
            } => {
                out.extend_from_slice(&[0x45, 0]);
                out.extend_from_slice(&len16(20 + l4.len()));
                out.extend_from_slice(&be16(*ident));
                out.extend_from_slice(&if *dont_fragment { [0x40, 0] } else { [0, 0] });
                out.extend_from_slice(&[*ttl, self.protocol(), 0, 0]);
                out.extend_from_slice(src);
                out.extend_from_slice(dst);
            }
            IpSpec::V6 {
                src,
                dst,
                hop_limit,
                flow_label,
            } => {
                out.extend_from_slice(&(0x6000_0000 | flow_label).to_be_bytes());
                out.extend_from_slice(&len16(l4.len()));
                out.extend_from_slice(&[self.protocol(), *hop_limit]);
                out.extend_from_slice(src);
                out.extend_from_slice(dst);
            }
        }
        out.extend_from_slice(&l4);
        out
    }

    /// The Ethernet frame.
    fn frame(&self) -> Vec<u8> {
        let mut out = self.macs.to_vec();
        for &(tpid, tci) in &self.tags {
            out.extend_from_slice(&be16(tpid));
            out.extend_from_slice(&be16(tci));
        }
        out.extend_from_slice(&be16(if self.is_v6() {
            ethertype::IPV6
        } else {
            ethertype::IPV4
        }));
        out.extend_from_slice(&self.ip_bytes());
        out.extend_from_slice(&self.trailer);
        out
    }

    /// Bytes of headers before the payload: a shorter prefix must be reported as truncated.
    fn header_stack_len(&self) -> usize {
        let ip = if self.is_v6() { 40 } else { 20 };
        let l4 = match &self.l4 {
            L4Spec::Tcp { .. } => 20,
            L4Spec::Udp { .. } | L4Spec::Icmp { .. } => 8,
        };
        14 + 4 * self.tags.len() + ip + l4
    }

    /// The summary the frame must decode to.
    fn expected(&self) -> Decoded<'static> {
        let (src, dst, ttl, header_len) = match &self.ip {
            IpSpec::V4 { src, dst, ttl, .. } => (
                IpAddr::V4(Ipv4Addr::from(*src)),
                IpAddr::V4(Ipv4Addr::from(*dst)),
                *ttl,
                20,
            ),
            IpSpec::V6 {
                src,
                dst,
                hop_limit,
                ..
            } => (
                IpAddr::V6(Ipv6Addr::from(*src)),
                IpAddr::V6(Ipv6Addr::from(*dst)),
                *hop_limit,
                40,
            ),
        };
        let l4_len = self.l4_bytes().len();
        let payload_len = len32(self.payload.len());
        let transport = match &self.l4 {
            L4Spec::Tcp {
                src_port,
                dst_port,
                seq,
                ack,
                flags,
                window,
                ..
            } => Transport::Tcp(TcpRepr {
                src_port: *src_port,
                dst_port: *dst_port,
                flags: TcpFlags(*flags),
                seq: *seq,
                ack: *ack,
                window: *window,
                payload_len,
            }),
            L4Spec::Udp { src_port, dst_port } => Transport::Udp(UdpRepr {
                src_port: *src_port,
                dst_port: *dst_port,
                payload_len,
            }),
            L4Spec::Icmp {
                icmp_type,
                code,
                rest,
            } => {
                let echo_types: [u8; 2] = if self.is_v6() { [128, 129] } else { [8, 0] };
                let repr = IcmpRepr {
                    icmp_type: *icmp_type,
                    code: *code,
                    echo_id: echo_types
                        .contains(icmp_type)
                        .then(|| u16::from_be_bytes([rest[0], rest[1]])),
                    // Checked separately: a random payload may or may not hold a quote.
                    quoted: None,
                };
                if self.is_v6() {
                    Transport::Icmpv6(repr)
                } else {
                    Transport::Icmp(repr)
                }
            }
        };
        Decoded {
            vlan: self.tags.first().map(|&(_, tci)| tci & 0x0fff),
            inner_vlan: self.tags.get(1).map(|&(_, tci)| tci & 0x0fff),
            network: Network::Ip(IpRepr {
                src,
                dst,
                protocol: self.protocol(),
                ttl,
                total_len: len32(header_len + l4_len),
                fragment: Fragment::default(),
            }),
            transport,
            dns: None,
            error: None,
        }
    }

    /// Returns true if and only if the ICMP type is an error that quotes a packet.
    fn is_icmp_error(&self) -> bool {
        match (&self.l4, self.is_v6()) {
            (L4Spec::Icmp { icmp_type, .. }, false) => matches!(icmp_type, 3 | 4 | 5 | 11 | 12),
            (L4Spec::Icmp { icmp_type, .. }, true) => matches!(icmp_type, 1..=4),
            _ => false,
        }
    }
}

/// Clears the quoted packet of an ICMP summary, so that an error's random quote does not
/// take part in the comparison.
fn without_quote(mut decoded: Decoded<'_>) -> Decoded<'_> {
    match &mut decoded.transport {
        Transport::Icmp(icmp) | Transport::Icmpv6(icmp) => icmp.quoted = None,
        _ => {}
    }
    decoded
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(data in vec(any::<u8>(), 0..2048)) {
        for link in LINK_TYPES {
            assert_invariants(&decode_frame(link, &data));
        }
    }

    #[test]
    fn decode_never_panics_on_mutated_valid_frames(
        spec in frame_spec(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        // Random bytes rarely get past the first length check; corrupting a valid frame
        // reaches the deeper layers.
        let mut frame = spec.frame();
        for (index, value) in flips {
            let at = index.index(frame.len());
            frame[at] = value;
        }
        for link in LINK_TYPES {
            assert_invariants(&decode_frame(link, &frame));
        }
    }

    #[test]
    fn decode_round_trips_built_frames(spec in frame_spec()) {
        let frame = spec.frame();
        let decoded = decode_frame(LinkType::Ethernet, &frame);
        assert_invariants(&decoded);
        prop_assert_eq!(without_quote(decoded), spec.expected());
        if !spec.is_icmp_error() {
            prop_assert_eq!(decoded, spec.expected());
        }
    }

    #[test]
    fn decode_agrees_across_link_types(spec in frame_spec()) {
        let frame = spec.frame();
        let ethernet = decode_frame(LinkType::Ethernet, &frame);
        // Linux cooked v1: 14 bytes, then the protocol where Ethernet has its type.
        let mut sll = vec![0_u8; 14];
        sll.extend_from_slice(&frame[12..]);
        prop_assert_eq!(decode_frame(LinkType::LinuxSll, &sll), ethernet);
        // Linux cooked v2: the protocol first, then 18 bytes.
        let mut sll2 = frame[12..14].to_vec();
        sll2.extend_from_slice(&[0; 18]);
        sll2.extend_from_slice(&frame[14..]);
        prop_assert_eq!(decode_frame(LinkType::LinuxSll2, &sll2), ethernet);
        // Raw IP, with the trailer: no VLAN ids, the rest identical.
        let ip_start = 14 + 4 * spec.tags.len();
        let untagged = Decoded { vlan: None, inner_vlan: None, ..ethernet };
        let raw_link = if spec.is_v6() { LinkType::Ipv6 } else { LinkType::Ipv4 };
        prop_assert_eq!(decode_frame(LinkType::RawIp, &frame[ip_start..]), untagged);
        prop_assert_eq!(decode_frame(raw_link, &frame[ip_start..]), untagged);
    }

    #[test]
    fn decode_reports_every_cut_header_as_truncated(spec in frame_spec()) {
        let frame = spec.frame();
        let stack = spec.header_stack_len();
        let expected = spec.expected();
        for len in 0..frame.len() {
            let decoded = decode_frame(LinkType::Ethernet, &frame[..len]);
            assert_invariants(&decoded);
            if len < stack {
                prop_assert_eq!(decoded.error.map(|e| e.reason), Some(Reason::Truncated), "len {}", len);
            } else {
                // Snap-length rule: the IP length exceeds the capture, yet nothing is wrong.
                prop_assert_eq!(decoded.error, None, "len {}", len);
                prop_assert_eq!(decoded.ip(), expected.ip());
            }
        }
    }
}
