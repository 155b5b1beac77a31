//! Zero-copy decoding of captured frames into a small [`Decoded`] summary.
//!
//! Owns every wire-format parser (one file per protocol, smoltcp style: a checked view over
//! the borrowed bytes plus a small `Repr`), the link-type table, and the [`DecodeError`]
//! taxonomy that becomes the `layer`/`reason` labels of `netwarden_decode_errors_total`.
//!
//! Does not own: flows, counters, logging or I/O. The decoder is a pure function of the
//! frame bytes.
//!
//! # Invariants
//! Packet data is hostile. No function in this module panics on any input: every view is
//! built through a `new_checked` constructor that validates all lengths once, and every
//! other access uses `get()` or checked arithmetic. A malformed packet yields a
//! [`Decoded`] whose `error` names the layer and reason, with every layer decoded before
//! the failure still filled in (so a truncated TCP header is still counted as IPv4/TCP
//! traffic between two known addresses).
//!
//! # Layout
//! [`decode_frame`] picks the link-layer decoder. Each protocol file has a checked view
//! (`XxxPacket::new_checked` is its only constructor, so an unchecked view cannot exist; the
//! 4-byte NULL header and NFLOG TLVs are read with `split_first_chunk` instead) and a
//! `decode`/`parse` function that fills the [`Decoded`] summary and hands the payload to the
//! next layer. Fixed headers are borrowed as `&[u8; N]`, so field accessors index with
//! constant ranges and need no run-time bounds check. Link: `ethernet` (with VLAN tags), `sll` (Linux cooked v1/v2), `null` (BSD
//! NULL/LOOP), `nflog`; raw IP is dispatched here. Encapsulation: `mpls`, `pppoe`. Network:
//! `arp`, `ipv4`, `ipv6` (with extension headers). Transport: `tcp`, `udp`, `icmp` (v4 and v6,
//! with the quoted packet of errors). Application: `dns` (header and first question).
//!
//! # Documented limits
//! * [`MAX_VLAN_TAGS`] stacked VLAN tags, [`MAX_MPLS_LABELS`] MPLS labels,
//!   [`MAX_IPV6_EXTENSION_HEADERS`] IPv6 extension headers: one more is
//!   [`Reason::TooManyLayers`].
//! * NFLOG: at most [`MAX_NFLOG_TLVS`] TLVs are walked looking for the payload.
//! * DNS names: RFC 1035 §2.3.4 limits (63-byte labels, 255-byte names, hence at most 127
//!   labels); a compression pointer ends the name and is not followed.
//!
//! # Lengths versus the capture
//! A length field smaller than the bytes captured trims the packet (Ethernet padding is not
//! payload). A length field larger than the bytes captured is *not* an error: the snap length
//! cut the frame, so decoding continues on what is present and only a transport header that is
//! itself cut is reported as [`Reason::Truncated`]. Payload lengths in the summaries
//! (`TcpRepr::payload_len`, `UdpRepr::payload_len`) come from the length fields, not from
//! the capture.

#![deny(clippy::indexing_slicing)]

use std::net::IpAddr;
use std::ops::Range;

mod arp;
mod dns;
mod ethernet;
mod icmp;
mod ipv4;
mod ipv6;
mod mpls;
mod nflog;
mod null;
mod pppoe;
mod sll;
mod tcp;
mod udp;

pub use dns::{DnsLabels, escape_name_text};
pub use ipv6::MAX_IPV6_EXTENSION_HEADERS;
pub use mpls::MAX_MPLS_LABELS;
pub use nflog::MAX_NFLOG_TLVS;

/// The link-layer framing of a capture, from a pcap `LINKTYPE_*` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1): IEEE 802.3 Ethernet, possibly VLAN/QinQ/MPLS/PPPoE-tagged.
    Ethernet,
    /// `LINKTYPE_NULL` (0): BSD loopback, 4-byte address family in host byte order.
    Null,
    /// `LINKTYPE_LOOP` (108): OpenBSD loopback, 4-byte address family in network order.
    Loop,
    /// `LINKTYPE_RAW` (101) and DLT 12/14: raw IPv4 or IPv6, told apart by the version nibble.
    RawIp,
    /// `LINKTYPE_IPV4` (228): raw IPv4.
    Ipv4,
    /// `LINKTYPE_IPV6` (229): raw IPv6.
    Ipv6,
    /// `LINKTYPE_LINUX_SLL` (113): Linux cooked capture v1.
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276): Linux cooked capture v2.
    LinuxSll2,
    /// `LINKTYPE_NFLOG` (239): Linux netfilter NFLOG messages.
    Nflog,
}

impl LinkType {
    /// Maps a pcap/pcapng link-type value to a supported [`LinkType`].
    ///
    /// The upper bits that libpcap reserves for FCS length (`0x0fff_0000` and the
    /// `0x1000_0000`-style flags, `LT_FCS_DATALEN` and friends) are masked off first, as the
    /// pcap specification requires. Returns `None` for link types netwarden does not decode.
    pub fn from_linktype(value: u32) -> Option<LinkType> {
        match value & 0x0000_ffff {
            0 => Some(LinkType::Null),
            1 => Some(LinkType::Ethernet),
            12 | 14 | 101 => Some(LinkType::RawIp),
            108 => Some(LinkType::Loop),
            113 => Some(LinkType::LinuxSll),
            228 => Some(LinkType::Ipv4),
            229 => Some(LinkType::Ipv6),
            239 => Some(LinkType::Nflog),
            276 => Some(LinkType::LinuxSll2),
            _ => None,
        }
    }

    /// A short stable name, used in logs and summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkType::Ethernet => "ethernet",
            LinkType::Null => "null",
            LinkType::Loop => "loop",
            LinkType::RawIp => "raw",
            LinkType::Ipv4 => "ipv4",
            LinkType::Ipv6 => "ipv6",
            LinkType::LinuxSll => "linux_sll",
            LinkType::LinuxSll2 => "linux_sll2",
            LinkType::Nflog => "nflog",
        }
    }
}

/// The protocol layer at which decoding stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Link-layer framing other than Ethernet (SLL, SLL2, NULL, NFLOG).
    Link,
    Ethernet,
    Vlan,
    Mpls,
    Pppoe,
    Arp,
    Ipv4,
    Ipv6,
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Dns,
}

impl Layer {
    /// Every layer, in label order (metrics pre-create one series per layer and reason).
    pub const ALL: [Layer; 13] = [
        Layer::Link,
        Layer::Ethernet,
        Layer::Vlan,
        Layer::Mpls,
        Layer::Pppoe,
        Layer::Arp,
        Layer::Ipv4,
        Layer::Ipv6,
        Layer::Tcp,
        Layer::Udp,
        Layer::Icmp,
        Layer::Icmpv6,
        Layer::Dns,
    ];

    /// The `layer` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Link => "link",
            Layer::Ethernet => "ethernet",
            Layer::Vlan => "vlan",
            Layer::Mpls => "mpls",
            Layer::Pppoe => "pppoe",
            Layer::Arp => "arp",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::Icmp => "icmp",
            Layer::Icmpv6 => "icmpv6",
            Layer::Dns => "dns",
        }
    }
}

/// Why decoding stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The buffer ends before the header (or a length the header claims) does.
    Truncated,
    /// A header-length field is smaller than the fixed header or larger than the packet.
    BadHeaderLength,
    /// A total/payload-length field contradicts the header or is impossible.
    BadTotalLength,
    /// The IP version nibble is not the one the enclosing layer announced.
    BadVersion,
    /// An option or extension-header chain is malformed.
    BadOption,
    /// More encapsulation layers (VLAN, MPLS, extension headers, DNS labels…) than the
    /// documented caps allow.
    TooManyLayers,
    /// A field holds a value the protocol forbids (e.g. a DNS label over 63 bytes,
    /// an address family the link layer cannot carry).
    InvalidField,
}

impl Reason {
    /// Every reason, in label order.
    pub const ALL: [Reason; 7] = [
        Reason::Truncated,
        Reason::BadHeaderLength,
        Reason::BadTotalLength,
        Reason::BadVersion,
        Reason::BadOption,
        Reason::TooManyLayers,
        Reason::InvalidField,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Truncated => "truncated",
            Reason::BadHeaderLength => "bad_header_len",
            Reason::BadTotalLength => "bad_total_len",
            Reason::BadVersion => "bad_version",
            Reason::BadOption => "bad_option",
            Reason::TooManyLayers => "too_many_layers",
            Reason::InvalidField => "invalid_field",
        }
    }
}

/// A decoding failure: small and `Copy`, so the hot path never allocates on bad input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DecodeError {
    /// Layer whose header was bad.
    pub layer: Layer,
    /// What was wrong with it.
    pub reason: Reason,
}

impl DecodeError {
    /// Shorthand constructor.
    pub const fn new(layer: Layer, reason: Reason) -> DecodeError {
        DecodeError { layer, reason }
    }

    /// Every (layer, reason) pair a decoder can report, layer by layer in [`Layer::ALL`]
    /// order: the only `netwarden_decode_errors_total` series. The decode property tests
    /// check that no decoder reports a pair outside it.
    pub const POSSIBLE: [DecodeError; 32] = {
        use Layer as L;
        use Reason as R;
        const fn e(layer: Layer, reason: Reason) -> DecodeError {
            DecodeError { layer, reason }
        }
        [
            // SLL, SLL2, NULL/LOOP, NFLOG and raw-IP framing.
            e(L::Link, R::Truncated),
            e(L::Link, R::BadVersion),
            e(L::Link, R::BadOption),
            e(L::Link, R::TooManyLayers),
            e(L::Link, R::InvalidField),
            e(L::Ethernet, R::Truncated),
            e(L::Vlan, R::Truncated),
            e(L::Vlan, R::TooManyLayers),
            e(L::Mpls, R::Truncated),
            e(L::Mpls, R::TooManyLayers),
            e(L::Pppoe, R::Truncated),
            e(L::Pppoe, R::BadTotalLength),
            e(L::Pppoe, R::InvalidField),
            e(L::Arp, R::Truncated),
            e(L::Ipv4, R::Truncated),
            e(L::Ipv4, R::BadHeaderLength),
            e(L::Ipv4, R::BadTotalLength),
            e(L::Ipv4, R::BadVersion),
            e(L::Ipv6, R::Truncated),
            e(L::Ipv6, R::BadTotalLength),
            e(L::Ipv6, R::BadVersion),
            e(L::Ipv6, R::BadOption),
            e(L::Ipv6, R::TooManyLayers),
            e(L::Tcp, R::Truncated),
            e(L::Tcp, R::BadHeaderLength),
            e(L::Udp, R::Truncated),
            e(L::Udp, R::BadTotalLength),
            e(L::Icmp, R::Truncated),
            e(L::Icmpv6, R::Truncated),
            e(L::Dns, R::Truncated),
            e(L::Dns, R::TooManyLayers),
            e(L::Dns, R::InvalidField),
        ]
    };

    /// Index of this error in [`DecodeError::POSSIBLE`], if it is there.
    #[inline]
    pub fn index(self) -> Option<usize> {
        DecodeError::POSSIBLE.iter().position(|p| *p == self)
    }
}

/// IP protocol numbers netwarden treats specially; everything else is kept as a number.
pub mod ip_protocol {
    /// ICMP (RFC 792).
    pub const ICMP: u8 = 1;
    /// TCP (RFC 9293).
    pub const TCP: u8 = 6;
    /// UDP (RFC 768).
    pub const UDP: u8 = 17;
    /// `ICMPv6` (RFC 4443).
    pub const ICMPV6: u8 = 58;
}

/// TCP control bits (RFC 9293 §3.1 plus ECE/CWR from RFC 3168), as in the header's flag byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    /// Returns true if and only if every bit of `mask` is set.
    pub const fn has(self, mask: u8) -> bool {
        self.0 & mask == mask
    }

    /// A SYN without ACK: a connection attempt.
    pub const fn is_syn_only(self) -> bool {
        self.0 & (Self::SYN | Self::ACK | Self::RST) == Self::SYN
    }

    /// A SYN with ACK: the server's handshake reply.
    pub const fn is_syn_ack(self) -> bool {
        self.0 & (Self::SYN | Self::ACK | Self::RST) == Self::SYN | Self::ACK
    }
}

/// IPv4/IPv6 fragmentation state of a packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fragment {
    /// The packet is a fragment (offset non-zero, more-fragments set, or an IPv6
    /// fragment header present).
    pub is_fragment: bool,
    /// Fragment offset in bytes.
    pub offset_bytes: u32,
    /// More fragments follow.
    pub more: bool,
}

impl Fragment {
    /// A non-first fragment carries no transport header.
    pub const fn is_later(self) -> bool {
        self.is_fragment && self.offset_bytes != 0
    }
}

/// Summary of an IPv4 or IPv6 header (after extension headers for IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRepr {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Upper-layer protocol (IPv6: the first non-extension next-header value).
    pub protocol: u8,
    /// TTL or hop limit.
    pub ttl: u8,
    /// Total length from the header (IPv4 total length; IPv6 payload length + 40).
    pub total_len: u32,
    pub fragment: Fragment,
}

/// Summary of an ARP packet (RFC 826), Ethernet/IPv4 only; other hardware types are kept
/// with zero addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpRepr {
    /// 1 = request, 2 = reply, others kept as-is.
    pub operation: u16,
    pub sender_ip: [u8; 4],
    pub target_ip: [u8; 4],
}

/// Summary of a TCP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    /// Bytes of TCP payload present in the IP packet (per the IP length, not the capture).
    pub payload_len: u32,
}

/// Summary of a UDP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    /// Bytes of UDP payload per the UDP length field.
    pub payload_len: u32,
}

/// The transport header quoted inside an ICMP/ICMPv6 error (RFC 792, RFC 4443 §3):
/// who sent the packet that failed, to which port. Scan detection uses it to see which
/// probes were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotedPacket {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    /// Zero when the quote is too short to hold ports or the protocol has none.
    pub src_port: u16,
    pub dst_port: u16,
}

/// Summary of an ICMP or `ICMPv6` message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpRepr {
    pub icmp_type: u8,
    pub code: u8,
    /// Identifier of echo request/reply messages, `None` for other types.
    pub echo_id: Option<u16>,
    /// The offending packet quoted by an error message (destination unreachable, time
    /// exceeded, parameter problem…), when its IP header decodes.
    pub quoted: Option<QuotedPacket>,
}

impl IcmpRepr {
    /// `ICMPv4` echo request type (RFC 792).
    pub const V4_ECHO_REQUEST: u8 = 8;
    /// `ICMPv4` echo reply type.
    pub const V4_ECHO_REPLY: u8 = 0;
    /// `ICMPv4` destination unreachable type.
    pub const V4_DEST_UNREACHABLE: u8 = 3;
    /// `ICMPv6` echo request type (RFC 4443).
    pub const V6_ECHO_REQUEST: u8 = 128;
    /// `ICMPv6` echo reply type.
    pub const V6_ECHO_REPLY: u8 = 129;
    /// `ICMPv6` destination unreachable type.
    pub const V6_DEST_UNREACHABLE: u8 = 1;
}

/// The transport layer of a decoded packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// No transport header: non-IP frame, non-first fragment, or decoding stopped earlier.
    None,
    Tcp(TcpRepr),
    Udp(UdpRepr),
    Icmp(IcmpRepr),
    Icmpv6(IcmpRepr),
}

/// The network layer of a decoded packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// Not IP or ARP (or decoding stopped in the link layer). `ethertype` is the last
    /// EtherType/protocol seen, 0 when there was none.
    Other {
        ethertype: u16,
    },
    Arp(ArpRepr),
    Ip(IpRepr),
}

/// A DNS name in wire format (RFC 1035 §3.1), as it appears in the question section.
///
/// The bytes were validated when the question was parsed: a sequence of length-prefixed
/// labels (each at most 63 bytes, at most 255 bytes in all) ending at a zero label or, if
/// the name was compressed, at the pointer (see [`DnsName::is_compressed`]). Iterating
/// [`DnsName::labels`] therefore cannot fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsName<'a> {
    /// Length-prefixed labels, without the terminating zero byte or pointer.
    pub wire: &'a [u8],
    /// The name ended in a compression pointer that was not followed.
    pub is_compressed: bool,
}

/// Summary of a DNS header and its first question (RFC 1035 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsRepr<'a> {
    pub id: u16,
    /// QR bit: a response rather than a query.
    pub is_response: bool,
    pub opcode: u8,
    pub rcode: u8,
    pub question_count: u16,
    pub answer_count: u16,
    pub authority_count: u16,
    pub additional_count: u16,
    /// The first question, if the header announces one and it parses.
    pub question: Option<DnsQuestion<'a>>,
    /// Size of the DNS message in bytes (the UDP payload length).
    pub message_len: u32,
}

/// One DNS question entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsQuestion<'a> {
    pub name: DnsName<'a>,
    pub qtype: u16,
    pub qclass: u16,
}

/// Everything netwarden keeps of one frame. Borrowed from the frame's bytes (DNS name only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Outer 802.1Q/802.1ad VLAN id, if tagged.
    pub vlan: Option<u16>,
    /// Inner VLAN id of a `QinQ` frame.
    pub inner_vlan: Option<u16>,
    pub network: Network,
    pub transport: Transport,
    /// DNS header and question of UDP port-53 traffic.
    pub dns: Option<DnsRepr<'a>>,
    /// Why decoding stopped early, if it did. Layers decoded before the failure are kept.
    pub error: Option<DecodeError>,
}

impl<'a> Decoded<'a> {
    /// A summary with nothing decoded yet.
    pub const EMPTY: Decoded<'static> = Decoded::empty();

    /// The same as [`Decoded::EMPTY`], built in place: assigning the constant copies all
    /// ~170 bytes with a `memcpy`, calling this at run time writes only the discriminants.
    #[inline]
    pub const fn empty() -> Decoded<'a> {
        Decoded {
            vlan: None,
            inner_vlan: None,
            network: Network::Other { ethertype: 0 },
            transport: Transport::None,
            dns: None,
            error: None,
        }
    }

    /// The IP header summary, if the frame carried IP.
    pub fn ip(&self) -> Option<&IpRepr> {
        match &self.network {
            Network::Ip(ip) => Some(ip),
            _ => None,
        }
    }

    /// The TCP header summary, if the frame carried one.
    pub fn tcp(&self) -> Option<&TcpRepr> {
        match &self.transport {
            Transport::Tcp(tcp) => Some(tcp),
            _ => None,
        }
    }

    /// The UDP header summary, if the frame carried one.
    pub fn udp(&self) -> Option<&UdpRepr> {
        match &self.transport {
            Transport::Udp(udp) => Some(udp),
            _ => None,
        }
    }
}

/// Ethernet type values netwarden recognises (IEEE 802 numbers); [`Network::Other`] keeps any
/// value as it was seen.
pub mod ethertype {
    /// IPv4 (RFC 894).
    pub const IPV4: u16 = 0x0800;
    /// ARP (RFC 826).
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// IPv6 (RFC 2464).
    pub const IPV6: u16 = 0x86dd;
    /// MPLS unicast (RFC 3032).
    pub const MPLS_UNICAST: u16 = 0x8847;
    /// MPLS multicast (RFC 5332).
    pub const MPLS_MULTICAST: u16 = 0x8848;
    /// `PPPoE` discovery stage (RFC 2516); not decoded further.
    pub const PPPOE_DISCOVERY: u16 = 0x8863;
    /// `PPPoE` session stage (RFC 2516).
    pub const PPPOE_SESSION: u16 = 0x8864;
    /// IEEE 802.1ad service VLAN tag (the outer tag of `QinQ`).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard `QinQ` outer tag still sent by some switches.
    pub const VLAN_9100: u16 = 0x9100;
}

/// Most stacked VLAN tags decoded in one frame; one more is [`Reason::TooManyLayers`].
///
/// Real networks use one or two (802.1Q, `QinQ`); eight leaves room for odd provider stacks
/// while bounding the work an attacker can cause.
pub const MAX_VLAN_TAGS: usize = 8;

/// Decodes one captured frame of the given link type into a [`Decoded`] summary.
///
/// Never panics and never allocates. Every layer that decodes is filled in; when a layer
/// fails, `error` names it and the layers outside it are kept. The failing layer itself is
/// left at its empty value, except that [`Network::Other`] records the Ethernet type that
/// announced a failing network layer, and a DNS header is kept when only its question fails.
///
/// For link types without an Ethernet type (raw IP, NULL, NFLOG, MPLS and PPP payloads) the
/// equivalent value (0x0800 or 0x86dd) is recorded, so a bad IP header reads the same
/// whatever the framing.
#[inline]
pub fn decode_frame(link: LinkType, data: &[u8]) -> Decoded<'_> {
    let mut out = Decoded::empty();
    decode_frame_into(link, data, &mut out);
    out
}

/// [`decode_frame`] writing into `out`, which it first resets: the per-packet form, because
/// returning the ~170-byte summary by value costs a `memcpy` per frame that the optimiser
/// does not elide.
#[inline]
pub fn decode_frame_into<'a>(link: LinkType, data: &'a [u8], out: &mut Decoded<'a>) {
    *out = Decoded::empty();
    let result = match link {
        LinkType::Ethernet => ethernet::decode(data, out),
        LinkType::Null => null::decode_null(data, out),
        LinkType::Loop => null::decode_loop(data, out),
        LinkType::RawIp => decode_raw_ip(data, out),
        LinkType::Ipv4 => decode_ipv4(data, out),
        LinkType::Ipv6 => decode_ipv6(data, out),
        LinkType::LinuxSll => sll::decode_v1(data, out),
        LinkType::LinuxSll2 => sll::decode_v2(data, out),
        LinkType::Nflog => nflog::decode(data, out),
    };
    if let Err(error) = result {
        out.error = Some(error);
    }
}

/// A byte range of a fixed-size header, as listed in each protocol's private `field` table.
type Field = Range<usize>;

/// Reads a big-endian `u16` from a 2-byte `field` range of a fixed-size header.
///
/// Callers index a `&[u8; N]` with a constant range, so the slice length is known at compile
/// time and the fallback is never taken (the optimiser removes it).
#[inline]
fn be16(bytes: &[u8]) -> u16 {
    bytes.first_chunk().map_or(0, |b| u16::from_be_bytes(*b))
}

/// Reads a big-endian `u32` from a 4-byte `field` range (see [`be16`]).
#[inline]
fn be32(bytes: &[u8]) -> u32 {
    bytes.first_chunk().map_or(0, |b| u32::from_be_bytes(*b))
}

/// Copies a 4-byte `field` range (an IPv4 address) out of a fixed-size header (see [`be16`]).
#[inline]
fn array4(bytes: &[u8]) -> [u8; 4] {
    bytes.first_chunk().copied().unwrap_or_default()
}

/// Copies a 16-byte `field` range (an IPv6 address) out of a fixed-size header (see [`be16`]).
#[inline]
fn array16(bytes: &[u8]) -> [u8; 16] {
    bytes.first_chunk().copied().unwrap_or_default()
}

/// Converts an in-memory length to the `u32` used in the summaries, saturating (frames are
/// far below 4 GiB, so this never saturates in practice).
#[inline]
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Decodes the payload announced by an Ethernet type: VLAN tags first (bounded by
/// [`MAX_VLAN_TAGS`]), then one of the network or encapsulation protocols.
///
/// Shared by Ethernet and the Linux cooked headers, whose protocol field is an Ethernet type.
fn decode_ethertype<'a>(
    ethertype: u16,
    payload: &'a [u8],
    out: &mut Decoded<'a>,
) -> Result<(), DecodeError> {
    let mut ethertype = ethertype;
    let mut payload = payload;
    let mut tags = 0;
    loop {
        out.network = Network::Other { ethertype };
        match ethertype {
            ethertype::VLAN | ethertype::QINQ | ethertype::VLAN_9100 => {
                if tags == MAX_VLAN_TAGS {
                    return Err(DecodeError::new(Layer::Vlan, Reason::TooManyLayers));
                }
                let tag = ethernet::VlanTag::new_checked(payload)
                    .map_err(|reason| DecodeError::new(Layer::Vlan, reason))?;
                match tags {
                    0 => out.vlan = Some(tag.vlan_id()),
                    1 => out.inner_vlan = Some(tag.vlan_id()),
                    _ => {}
                }
                tags += 1;
                ethertype = tag.ethertype();
                payload = tag.payload();
            }
            ethertype::IPV4 => return ipv4::decode(payload, out),
            ethertype::IPV6 => return ipv6::decode(payload, out),
            ethertype::ARP => return arp::decode(payload, out),
            ethertype::MPLS_UNICAST | ethertype::MPLS_MULTICAST => {
                return mpls::decode(payload, out);
            }
            ethertype::PPPOE_SESSION => return pppoe::decode(payload, out),
            _ => return Ok(()),
        }
    }
}

/// Decodes an IPv4 packet reached without an Ethernet type (raw IP, MPLS, PPP, NULL, NFLOG),
/// recording the equivalent Ethernet type first so a failure still names the protocol.
#[inline]
fn decode_ipv4<'a>(data: &'a [u8], out: &mut Decoded<'a>) -> Result<(), DecodeError> {
    out.network = Network::Other {
        ethertype: ethertype::IPV4,
    };
    ipv4::decode(data, out)
}

/// IPv6 counterpart of [`decode_ipv4`].
#[inline]
fn decode_ipv6<'a>(data: &'a [u8], out: &mut Decoded<'a>) -> Result<(), DecodeError> {
    out.network = Network::Other {
        ethertype: ethertype::IPV6,
    };
    ipv6::decode(data, out)
}

/// `LINKTYPE_RAW`: IPv4 or IPv6 with no link header, told apart by the version nibble.
fn decode_raw_ip<'a>(data: &'a [u8], out: &mut Decoded<'a>) -> Result<(), DecodeError> {
    match data.first().map(|b| b >> 4) {
        Some(4) => decode_ipv4(data, out),
        Some(6) => decode_ipv6(data, out),
        Some(_) => Err(DecodeError::new(Layer::Link, Reason::BadVersion)),
        None => Err(DecodeError::new(Layer::Link, Reason::Truncated)),
    }
}

/// The upper-layer part of an IP packet, as the transport decoders see it.
#[derive(Clone, Copy, Debug)]
struct IpPayload<'a> {
    /// The bytes present: bounded by the IP length fields and by the capture.
    bytes: &'a [u8],
    /// Length according to the IP header(s); larger than `bytes.len()` when the snap length
    /// cut the frame.
    len: usize,
    /// The packet is a first fragment, so transport length fields describe the whole
    /// datagram, not this packet.
    more_fragments: bool,
}

/// Decodes the transport header of an unfragmented packet or a first fragment.
///
/// Unknown protocols are not an error: the transport stays [`Transport::None`].
fn decode_transport<'a>(
    protocol: u8,
    payload: IpPayload<'a>,
    out: &mut Decoded<'a>,
) -> Result<(), DecodeError> {
    match protocol {
        ip_protocol::TCP => {
            let repr =
                tcp::parse(payload).map_err(|reason| DecodeError::new(Layer::Tcp, reason))?;
            out.transport = Transport::Tcp(repr);
        }
        ip_protocol::UDP => return udp::decode(payload, out),
        ip_protocol::ICMP => {
            let repr = icmp::parse_v4(payload.bytes)
                .map_err(|reason| DecodeError::new(Layer::Icmp, reason))?;
            out.transport = Transport::Icmp(repr);
        }
        ip_protocol::ICMPV6 => {
            let repr = icmp::parse_v6(payload.bytes)
                .map_err(|reason| DecodeError::new(Layer::Icmpv6, reason))?;
            out.transport = Transport::Icmpv6(repr);
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    /// A raw IPv4/UDP packet (ports 1 → 2, 2 bytes of data).
    #[rustfmt::skip]
    static RAW_IPV4_UDP: [u8; 30] = [
        // version 4, IHL 5, total length 30, id, flags, TTL 9, UDP, checksum
        0x45, 0x00, 0x00, 0x1e, 0x00, 0x00, 0x00, 0x00, 0x09, 0x11, 0x00, 0x00,
        // source 192.0.2.1, destination 192.0.2.2
        192, 0, 2, 1, 192, 0, 2, 2,
        // UDP: ports 1 → 2, length 10, checksum
        0x00, 0x01, 0x00, 0x02, 0x00, 0x0a, 0x00, 0x00,
        // data
        0xab, 0xcd,
    ];

    #[test]
    fn test_raw_ip_dispatches_on_version_nibble() {
        let decoded = decode_frame(LinkType::RawIp, &RAW_IPV4_UDP);
        assert_eq!(decoded.error, None);
        assert_eq!(decoded, decode_frame(LinkType::Ipv4, &RAW_IPV4_UDP));
        let ip = decoded.ip().unwrap();
        assert_eq!(ip.src, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(
            decoded.transport,
            Transport::Udp(UdpRepr {
                src_port: 1,
                dst_port: 2,
                payload_len: 2
            })
        );
    }

    #[test]
    fn test_raw_ip_rejects_other_versions() {
        assert_eq!(
            decode_frame(LinkType::RawIp, &[]).error,
            Some(DecodeError::new(Layer::Link, Reason::Truncated))
        );
        let mut packet = RAW_IPV4_UDP;
        packet[0] = 0x55;
        let decoded = decode_frame(LinkType::RawIp, &packet);
        assert_eq!(
            decoded.error,
            Some(DecodeError::new(Layer::Link, Reason::BadVersion))
        );
        assert_eq!(decoded.network, Network::Other { ethertype: 0 });
    }

    #[test]
    fn test_link_type_ipv4_and_ipv6_check_the_version() {
        let mut packet = RAW_IPV4_UDP.to_vec();
        packet.resize(60, 0);
        let decoded = decode_frame(LinkType::Ipv6, &packet);
        assert_eq!(
            decoded.error,
            Some(DecodeError::new(Layer::Ipv6, Reason::BadVersion))
        );
        assert_eq!(
            decoded.network,
            Network::Other {
                ethertype: ethertype::IPV6
            }
        );
    }

    #[test]
    fn test_truncated_raw_ip_at_every_length() {
        for len in 1..RAW_IPV4_UDP.len() {
            let layer = if len < 20 { Layer::Ipv4 } else { Layer::Udp };
            let decoded = decode_frame(LinkType::RawIp, &RAW_IPV4_UDP[..len]);
            let expected = (len < 28).then_some(DecodeError::new(layer, Reason::Truncated));
            assert_eq!(decoded.error, expected, "len {len}");
        }
    }

    #[test]
    fn test_empty_input_for_every_link_type() {
        let links = [
            (LinkType::Ethernet, Layer::Ethernet),
            (LinkType::Null, Layer::Link),
            (LinkType::Loop, Layer::Link),
            (LinkType::RawIp, Layer::Link),
            (LinkType::Ipv4, Layer::Ipv4),
            (LinkType::Ipv6, Layer::Ipv6),
            (LinkType::LinuxSll, Layer::Link),
            (LinkType::LinuxSll2, Layer::Link),
            (LinkType::Nflog, Layer::Link),
        ];
        for (link, layer) in links {
            let decoded = decode_frame(link, &[]);
            assert_eq!(
                decoded.error,
                Some(DecodeError::new(layer, Reason::Truncated)),
                "{link:?}"
            );
        }
    }

    #[test]
    fn test_field_helpers() {
        let header = [0x12_u8, 0x34, 0x56, 0x78];
        assert_eq!(be16(&header[0..2]), 0x1234);
        assert_eq!(be32(&header[0..4]), 0x1234_5678);
        assert_eq!(array4(&header[0..4]), header);
        assert_eq!(len_u32(usize::MAX), u32::MAX);
    }
}
