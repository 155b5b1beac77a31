//! The canonical bidirectional flow key.
//!
//! Owns [`FlowKey`] (a 5-tuple whose two endpoints are stored in a fixed order, so both
//! directions of a conversation map to one key) and [`Side`] (which direction a packet went).
//! Builds keys from a [`Decoded`] summary; does not look at timestamps or keep any state.
//!
//! # Invariants
//! - The first endpoint is the smaller `(address bytes, port)` pair, so `A→B` and `B→A`
//!   give equal keys. A packet from the first endpoint to the second is [`Side::Forward`];
//!   when both endpoints are equal (a LAND packet) every packet is `Forward`.
//! - Addresses are stored as 128-bit values, IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`). A flag
//!   remembers whether both endpoints were IPv4, so a genuine IPv6 packet between mapped
//!   addresses never shares a key with an IPv4 packet.
//! - Building a key never fails on hostile input: it only copies fields the decoder already
//!   validated.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::decode::{Decoded, IcmpRepr, Transport, ip_protocol};

/// The direction of one packet relative to its [`FlowKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// From the key's first endpoint to its second.
    Forward,
    /// From the key's second endpoint to its first.
    Reverse,
}

impl Side {
    /// Both sides, `Forward` first.
    pub const ALL: [Side; 2] = [Side::Forward, Side::Reverse];

    /// The other direction.
    #[must_use]
    pub const fn opposite(self) -> Side {
        match self {
            Side::Forward => Side::Reverse,
            Side::Reverse => Side::Forward,
        }
    }
}

/// A bidirectional 5-tuple: two `(address, port)` endpoints in canonical order plus the IP
/// protocol number.
///
/// 40 bytes (38 plus padding), compared field by field and hashed as three words. For ICMP the "ports" are the
/// echo identifier (both ends) or the message type and code; for protocols without ports
/// both are 0.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    /// Addresses of the first and second endpoint, IPv4 mapped into IPv6, each as its
    /// 128-bit big-endian value split into (high, low) halves: built from an `IpAddr` with
    /// no byte shuffling, ordered like the address bytes, and 8-byte aligned so the record
    /// layout is unchanged.
    addrs: [[u64; 2]; 2],
    /// Ports of the first and second endpoint.
    ports: [u16; 2],
    /// IP protocol number (IPv6: the upper-layer next header).
    protocol: u8,
    /// Both endpoints were IPv4 addresses.
    is_ipv4: bool,
}

impl FlowKey {
    /// Builds the key of a packet from `src` to `dst` and tells which side of it the packet is.
    ///
    /// Mixing an IPv4 and an IPv6 endpoint (which the decoder never produces) yields an IPv6
    /// key whose IPv4 endpoint is shown in its mapped form.
    pub fn new(src: SocketAddr, dst: SocketAddr, protocol: u8) -> (FlowKey, Side) {
        FlowKey::from_parts((src.ip(), src.port()), (dst.ip(), dst.port()), protocol)
    }

    /// [`FlowKey::new`] from separate addresses and ports, as the decoder gives them.
    ///
    /// The order test compares each address as one big-endian `u128` (the same order as
    /// comparing its 16 bytes one by one) instead of building `SocketAddr`s and comparing
    /// byte arrays: this runs once per packet.
    #[inline]
    fn from_parts(src: (IpAddr, u16), dst: (IpAddr, u16), protocol: u8) -> (FlowKey, Side) {
        let is_ipv4 = src.0.is_ipv4() && dst.0.is_ipv4();
        let s = (addr_bits(src.0), src.1);
        let d = (addr_bits(dst.0), dst.1);
        let (first, second, side) = if s <= d {
            (s, d, Side::Forward)
        } else {
            (d, s, Side::Reverse)
        };
        let key = FlowKey {
            addrs: [halves(first.0), halves(second.0)],
            ports: [first.1, second.1],
            protocol,
            is_ipv4,
        };
        (key, side)
    }

    /// The key and side of a decoded packet, or `None` when it cannot be put in a flow.
    ///
    /// IP packets only. TCP and UDP use their ports. ICMP and `ICMPv6` echo request/reply use
    /// the echo identifier as both ports, so a request and its reply share a flow; other ICMP
    /// messages use the type as first and the code as second port. Other IP protocols use
    /// ports 0. Returns `None` for non-IP frames, for non-first fragments (they carry no
    /// transport header; this table does not reassemble), and for TCP, UDP, ICMP or `ICMPv6`
    /// packets whose transport header did not decode (their ports are unknown).
    #[inline]
    pub fn from_decoded(decoded: &Decoded<'_>) -> Option<(FlowKey, Side)> {
        let ip = decoded.ip()?;
        if ip.fragment.is_later() {
            return None;
        }
        let (src_port, dst_port) = match (ip.protocol, &decoded.transport) {
            (ip_protocol::TCP, Transport::Tcp(tcp)) => (tcp.src_port, tcp.dst_port),
            (ip_protocol::UDP, Transport::Udp(udp)) => (udp.src_port, udp.dst_port),
            (ip_protocol::ICMP, Transport::Icmp(icmp))
            | (ip_protocol::ICMPV6, Transport::Icmpv6(icmp)) => icmp_ports(icmp),
            (ip_protocol::TCP | ip_protocol::UDP | ip_protocol::ICMP | ip_protocol::ICMPV6, _) => {
                return None;
            }
            _ => (0, 0),
        };
        Some(FlowKey::from_parts(
            (ip.src, src_port),
            (ip.dst, dst_port),
            ip.protocol,
        ))
    }

    /// The first endpoint (source of [`Side::Forward`] packets).
    pub fn first(&self) -> SocketAddr {
        SocketAddr::new(self.ip(self.addrs[0]), self.ports[0])
    }

    /// The second endpoint (source of [`Side::Reverse`] packets).
    pub fn second(&self) -> SocketAddr {
        SocketAddr::new(self.ip(self.addrs[1]), self.ports[1])
    }

    /// The sender of a packet travelling on `side`.
    pub fn source(&self, side: Side) -> SocketAddr {
        match side {
            Side::Forward => self.first(),
            Side::Reverse => self.second(),
        }
    }

    /// The receiver of a packet travelling on `side`.
    pub fn destination(&self, side: Side) -> SocketAddr {
        self.source(side.opposite())
    }

    /// The IP protocol number.
    pub const fn protocol(&self) -> u8 {
        self.protocol
    }

    /// Returns true if and only if both endpoints are IPv4 addresses.
    pub const fn is_ipv4(&self) -> bool {
        self.is_ipv4
    }

    /// Turns a stored address back into an address of the key's family.
    fn ip(&self, [high, low]: [u64; 2]) -> IpAddr {
        let v6 = Ipv6Addr::from(u128::from(high) << 64 | u128::from(low));
        match v6.to_ipv4_mapped() {
            Some(v4) if self.is_ipv4 => IpAddr::V4(v4),
            _ => IpAddr::V6(v6),
        }
    }
}

/// Hashes every field, as the derived `PartialEq` compares them all, but as two `u128`s and
/// one `u64` instead of the derive's per-array length prefixes and element-wise writes: the
/// flow table hashes once per packet, and this halves the hasher calls.
impl Hash for FlowKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [first, second] = self.addrs;
        let [first_port, second_port] = self.ports;
        let joined = |[high, low]: [u64; 2]| u128::from(high) << 64 | u128::from(low);
        state.write_u128(joined(first));
        state.write_u128(joined(second));
        state.write_u64(
            u64::from(first_port)
                | u64::from(second_port) << 16
                | u64::from(self.protocol) << 32
                | u64::from(self.is_ipv4) << 40,
        );
    }
}

impl fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FlowKey(proto {}, {} <-> {})",
            self.protocol,
            self.first(),
            self.second()
        )
    }
}

/// An address as the big-endian value of its 16-byte form (IPv6 as is, IPv4 mapped), so
/// that comparing values compares the bytes in order.
#[inline]
fn addr_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => 0xffff_0000_0000 | u128::from(v4.to_bits()),
        IpAddr::V6(v6) => v6.to_bits(),
    }
}

/// The (high, low) halves of a 128-bit value.
#[inline]
fn halves(v: u128) -> [u64; 2] {
    // Truncation is the point: the two halves.
    #[allow(clippy::cast_possible_truncation)]
    [(v >> 64) as u64, v as u64]
}

/// The pseudo-ports of an ICMP message: the echo identifier twice, else (type, code).
fn icmp_ports(icmp: &IcmpRepr) -> (u16, u16) {
    match icmp.echo_id {
        Some(id) => (id, id),
        None => (u16::from(icmp.icmp_type), u16::from(icmp.code)),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};

    use super::*;
    use crate::decode::{Fragment, IpRepr, Network, TcpFlags, TcpRepr, UdpRepr};

    fn ip_packet(src: &str, dst: &str, protocol: u8, transport: Transport) -> Decoded<'static> {
        Decoded {
            network: Network::Ip(IpRepr {
                src: src.parse().unwrap(),
                dst: dst.parse().unwrap(),
                protocol,
                ttl: 64,
                total_len: 60,
                fragment: Fragment::default(),
            }),
            transport,
            ..Decoded::EMPTY
        }
    }

    fn tcp(src_port: u16, dst_port: u16) -> Transport {
        Transport::Tcp(TcpRepr {
            src_port,
            dst_port,
            flags: TcpFlags(TcpFlags::SYN),
            seq: 1,
            ack: 0,
            window: 1024,
            payload_len: 0,
        })
    }

    fn udp(src_port: u16, dst_port: u16) -> Transport {
        Transport::Udp(UdpRepr {
            src_port,
            dst_port,
            payload_len: 10,
        })
    }

    fn icmp(icmp_type: u8, code: u8, echo_id: Option<u16>) -> IcmpRepr {
        IcmpRepr {
            icmp_type,
            code,
            echo_id,
            quoted: None,
        }
    }

    fn sock(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn both_directions_of_ipv4_tcp_share_a_key() {
        let out = ip_packet("10.0.0.2", "10.0.0.1", ip_protocol::TCP, tcp(40000, 443));
        let back = ip_packet("10.0.0.1", "10.0.0.2", ip_protocol::TCP, tcp(443, 40000));
        let (k1, s1) = FlowKey::from_decoded(&out).unwrap();
        let (k2, s2) = FlowKey::from_decoded(&back).unwrap();
        assert_eq!(k1, k2);
        assert_eq!(s1, s2.opposite());
        // 10.0.0.1 sorts first, so the packet it sent is Forward.
        assert_eq!(s2, Side::Forward);
        assert_eq!(k1.first(), sock("10.0.0.1:443"));
        assert_eq!(k1.second(), sock("10.0.0.2:40000"));
        assert_eq!(k1.source(s1), sock("10.0.0.2:40000"));
        assert_eq!(k1.destination(s1), sock("10.0.0.1:443"));
        assert_eq!(k1.protocol(), ip_protocol::TCP);
        assert!(k1.is_ipv4());
    }

    #[test]
    fn both_directions_of_ipv6_udp_share_a_key() {
        let out = ip_packet(
            "2001:db8::9",
            "2001:db8::1",
            ip_protocol::UDP,
            udp(5353, 53),
        );
        let back = ip_packet(
            "2001:db8::1",
            "2001:db8::9",
            ip_protocol::UDP,
            udp(53, 5353),
        );
        let (k1, s1) = FlowKey::from_decoded(&out).unwrap();
        let (k2, s2) = FlowKey::from_decoded(&back).unwrap();
        assert_eq!(k1, k2);
        assert_eq!(s1, Side::Reverse);
        assert_eq!(s2, Side::Forward);
        assert!(!k1.is_ipv4());
        assert_eq!(k1.first(), sock("[2001:db8::1]:53"));
    }

    #[test]
    fn same_address_different_ports_orders_by_port() {
        let (k, side) = FlowKey::new(sock("10.0.0.1:9000"), sock("10.0.0.1:80"), 6);
        assert_eq!(side, Side::Reverse);
        assert_eq!(k.first(), sock("10.0.0.1:80"));
        let (k2, side2) = FlowKey::new(sock("10.0.0.1:80"), sock("10.0.0.1:9000"), 6);
        assert_eq!((k, Side::Forward), (k2, side2));
    }

    #[test]
    fn land_packet_is_forward() {
        let (_, side) = FlowKey::new(sock("10.0.0.1:80"), sock("10.0.0.1:80"), 6);
        assert_eq!(side, Side::Forward);
    }

    #[test]
    fn protocol_and_family_are_part_of_the_key() {
        let (tcp_key, _) = FlowKey::new(sock("10.0.0.1:53"), sock("10.0.0.2:53"), 6);
        let (udp_key, _) = FlowKey::new(sock("10.0.0.1:53"), sock("10.0.0.2:53"), 17);
        assert_ne!(tcp_key, udp_key);
        let (v4, _) = FlowKey::new(sock("10.0.0.1:53"), sock("10.0.0.2:53"), 17);
        let (mapped, _) = FlowKey::new(
            sock("[::ffff:10.0.0.1]:53"),
            sock("[::ffff:10.0.0.2]:53"),
            17,
        );
        assert_ne!(v4, mapped);
        assert_eq!(mapped.first(), sock("[::ffff:10.0.0.1]:53"));
        assert_eq!(v4.first().ip(), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn icmp_echo_request_and_reply_share_a_flow() {
        let request = ip_packet(
            "192.0.2.1",
            "192.0.2.99",
            ip_protocol::ICMP,
            Transport::Icmp(icmp(IcmpRepr::V4_ECHO_REQUEST, 0, Some(0x1234))),
        );
        let reply = ip_packet(
            "192.0.2.99",
            "192.0.2.1",
            ip_protocol::ICMP,
            Transport::Icmp(icmp(IcmpRepr::V4_ECHO_REPLY, 0, Some(0x1234))),
        );
        let (k1, s1) = FlowKey::from_decoded(&request).unwrap();
        let (k2, s2) = FlowKey::from_decoded(&reply).unwrap();
        assert_eq!(k1, k2);
        assert_eq!(s1, s2.opposite());
        assert_eq!(k1.first().port(), 0x1234);
        assert_eq!(k1.second().port(), 0x1234);
    }

    #[test]
    fn icmpv6_echo_pairs_and_other_messages_use_type_and_code() {
        let request = ip_packet(
            "2001:db8::1",
            "2001:db8::2",
            ip_protocol::ICMPV6,
            Transport::Icmpv6(icmp(IcmpRepr::V6_ECHO_REQUEST, 0, Some(7))),
        );
        let reply = ip_packet(
            "2001:db8::2",
            "2001:db8::1",
            ip_protocol::ICMPV6,
            Transport::Icmpv6(icmp(IcmpRepr::V6_ECHO_REPLY, 0, Some(7))),
        );
        assert_eq!(
            FlowKey::from_decoded(&request).unwrap().0,
            FlowKey::from_decoded(&reply).unwrap().0
        );
        let unreachable = ip_packet(
            "2001:db8::2",
            "2001:db8::1",
            ip_protocol::ICMPV6,
            Transport::Icmpv6(icmp(IcmpRepr::V6_DEST_UNREACHABLE, 4, None)),
        );
        let (k, side) = FlowKey::from_decoded(&unreachable).unwrap();
        assert_eq!(k.source(side), sock("[2001:db8::2]:1"));
        assert_eq!(k.destination(side), sock("[2001:db8::1]:4"));
    }

    #[test]
    fn later_fragment_has_no_key_but_first_fragment_does() {
        let mut later = ip_packet("10.0.0.1", "10.0.0.2", ip_protocol::UDP, Transport::None);
        if let Network::Ip(ip) = &mut later.network {
            ip.fragment = Fragment {
                is_fragment: true,
                offset_bytes: 1480,
                more: false,
            };
        }
        assert_eq!(FlowKey::from_decoded(&later), None);

        let mut first = ip_packet("10.0.0.1", "10.0.0.2", ip_protocol::UDP, udp(1, 2));
        if let Network::Ip(ip) = &mut first.network {
            ip.fragment = Fragment {
                is_fragment: true,
                offset_bytes: 0,
                more: true,
            };
        }
        let (k, _) = FlowKey::from_decoded(&first).unwrap();
        assert_eq!(k.first(), sock("10.0.0.1:1"));
    }

    #[test]
    fn undecoded_transport_of_known_protocol_has_no_key() {
        for protocol in [
            ip_protocol::TCP,
            ip_protocol::UDP,
            ip_protocol::ICMP,
            ip_protocol::ICMPV6,
        ] {
            let d = ip_packet("10.0.0.1", "10.0.0.2", protocol, Transport::None);
            assert_eq!(FlowKey::from_decoded(&d), None, "protocol {protocol}");
        }
        // A transport that contradicts the IP protocol number is not trusted either.
        let d = ip_packet("10.0.0.1", "10.0.0.2", ip_protocol::UDP, tcp(1, 2));
        assert_eq!(FlowKey::from_decoded(&d), None);
    }

    #[test]
    fn other_ip_protocols_use_port_zero() {
        let gre = ip_packet("10.0.0.2", "10.0.0.1", 47, Transport::None);
        let (k, side) = FlowKey::from_decoded(&gre).unwrap();
        assert_eq!(k.protocol(), 47);
        assert_eq!(side, Side::Reverse);
        assert_eq!(k.first(), sock("10.0.0.1:0"));
        assert_eq!(k.second(), sock("10.0.0.2:0"));
    }

    #[test]
    fn non_ip_frames_have_no_key() {
        assert_eq!(FlowKey::from_decoded(&Decoded::EMPTY), None);
    }

    #[test]
    fn hash_agrees_with_equality_and_covers_every_field() {
        use std::hash::BuildHasher;
        let hasher = std::hash::RandomState::new();
        let (k, _) = FlowKey::new(sock("10.0.0.1:1"), sock("10.0.0.2:2"), 17);
        let (same, _) = FlowKey::new(sock("10.0.0.2:2"), sock("10.0.0.1:1"), 17);
        assert_eq!(hasher.hash_one(k), hasher.hash_one(same));
        let variants = [
            FlowKey::new(sock("10.0.0.3:1"), sock("10.0.0.2:2"), 17).0,
            FlowKey::new(sock("10.0.0.1:1"), sock("10.0.0.3:2"), 17).0,
            FlowKey::new(sock("10.0.0.1:9"), sock("10.0.0.2:2"), 17).0,
            FlowKey::new(sock("10.0.0.1:1"), sock("10.0.0.2:9"), 17).0,
            FlowKey::new(sock("10.0.0.1:1"), sock("10.0.0.2:2"), 6).0,
            FlowKey::new(sock("[::ffff:10.0.0.1]:1"), sock("[::ffff:10.0.0.2]:2"), 17).0,
        ];
        for v in variants {
            assert_ne!(v, k);
            assert_ne!(hasher.hash_one(v), hasher.hash_one(k), "{v:?}");
        }
    }

    #[test]
    fn debug_shows_both_endpoints() {
        let (k, _) = FlowKey::new(sock("10.0.0.1:1"), sock("10.0.0.2:2"), 17);
        assert_eq!(
            format!("{k:?}"),
            "FlowKey(proto 17, 10.0.0.1:1 <-> 10.0.0.2:2)"
        );
    }

    #[test]
    fn first_endpoint_is_the_smaller_in_byte_order() {
        // Pairs that differ only in the first byte, only in the last, in both (in opposite
        // directions), and only in the port: the first endpoint must be the one whose
        // (16 address bytes, port) sorts first, byte by byte.
        let pairs = [
            ("10.0.0.1:7", "11.0.0.0:7"),
            ("10.0.0.1:7", "10.0.0.2:7"),
            ("10.0.0.255:7", "11.0.0.0:7"),
            ("10.0.0.1:9", "10.0.0.1:8"),
            ("[2001:db8::ff]:1", "[2001:db9::1]:1"),
            ("[fe80::1]:1", "[2001:db8::2]:1"),
            ("[::1]:65535", "[::1]:0"),
        ];
        for (a, b) in pairs {
            let (a, b) = (sock(a), sock(b));
            let bytes = |s: SocketAddr| {
                let octets = match s.ip() {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                    IpAddr::V6(v6) => v6.octets(),
                };
                (octets, s.port())
            };
            let smaller = if bytes(a) <= bytes(b) { a } else { b };
            for (src, dst) in [(a, b), (b, a)] {
                let (key, side) = FlowKey::new(src, dst, 6);
                assert_eq!(key.first(), smaller, "{src} -> {dst}");
                assert_eq!(side == Side::Forward, src == smaller, "{src} -> {dst}");
            }
        }
    }
}
