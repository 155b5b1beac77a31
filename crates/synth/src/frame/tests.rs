//! Tests of the frame builder: layouts, lengths, checksums (recomputed independently from
//! the bytes), link types, and buffer reuse.

use super::*;

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn eth(vlan: Option<u16>) -> LinkSpec {
    LinkSpec::Ethernet(EthernetSpec {
        src: MAC_A,
        dst: MAC_B,
        vlan,
    })
}

fn v4() -> IpSpec {
    IpSpec::V4(Ipv4Spec::new(
        Ipv4Addr::new(10, 201, 1, 2),
        Ipv4Addr::new(198, 18, 0, 7),
    ))
}

fn v6() -> IpSpec {
    let src = "fd00:201::1234".parse().unwrap();
    IpSpec::V6(Ipv6Spec::new(src, "2001:db8::53".parse().unwrap()))
}

fn syn() -> TransportSpec {
    TransportSpec::Tcp(TcpSpec {
        src_port: 40000,
        dst_port: 443,
        seq: 0x0102_0304,
        ack: 0,
        flags: 0x02,
        window: 64240,
        mss: Some(1460),
    })
}

fn build(spec: &FrameSpec<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    spec.write(&mut out);
    out
}

/// Recomputes a transport checksum from the frame bytes alone, independently of the
/// builder: pseudo-header fields are read back out of the IP header.
fn transport_sum_ok(ip: &[u8], l4: &[u8]) -> bool {
    let pseudo = if ip[0] >> 4 == 4 {
        let mut p = ip[12..20].to_vec();
        p.extend_from_slice(&[0, ip[9]]);
        p.extend_from_slice(&u16::try_from(l4.len()).unwrap().to_be_bytes());
        p
    } else {
        let mut p = ip[8..40].to_vec();
        p.extend_from_slice(&u32::try_from(l4.len()).unwrap().to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, ip[6]]);
        p
    };
    checksum::finish(checksum::sum(&pseudo) + checksum::sum(l4)) == 0
}

#[test]
fn ipv4_tcp_syn_is_padded_and_checksummed() {
    let spec = FrameSpec {
        link: eth(None),
        ip: v4(),
        transport: syn(),
        payload: Payload::Zeros(0),
        l4_checksum: true,
    };
    let out = build(&spec);
    assert_eq!(out.len(), 60, "14 + 20 + 24 = 58, padded to 60");
    assert_eq!(&out[0..6], &MAC_B);
    assert_eq!(&out[6..12], &MAC_A);
    assert_eq!(&out[12..14], &[0x08, 0x00]);
    let ip = &out[14..34];
    assert_eq!(ip[0], 0x45);
    assert_eq!(&ip[2..4], &44u16.to_be_bytes());
    assert_eq!(&ip[6..8], &[0x40, 0x00], "DF set, offset 0");
    assert_eq!(ip[9], 6);
    assert_eq!(checksum::checksum(ip), 0, "a valid header sums to 0xffff");
    let tcp = &out[34..58];
    assert_eq!(tcp[12], 6 << 4);
    assert_eq!(tcp[13], 0x02);
    assert_eq!(&tcp[20..24], &[2, 4, 0x05, 0xb4]);
    assert!(transport_sum_ok(ip, tcp));
    assert!(out[58..].iter().all(|&b| b == 0));
}

#[test]
fn zero_payload_checksum_matches_full_sum() {
    let spec = FrameSpec {
        link: eth(Some(201)),
        ip: v6(),
        transport: syn(),
        payload: Payload::Zeros(1440),
        l4_checksum: true,
    };
    let out = build(&spec);
    assert_eq!(out.len(), 18 + 40 + 24 + 1440);
    assert_eq!(&out[12..18], &[0x81, 0x00, 0x00, 201, 0x86, 0xdd]);
    let ip = &out[18..58];
    assert_eq!(&ip[4..6], &(24u16 + 1440).to_be_bytes());
    assert!(transport_sum_ok(ip, &out[58..]));
}

#[test]
fn udp_dns_over_ipv6_has_length_and_checksum() {
    let name: &[&[u8]] = &[b"www", b"example", b"org"];
    let msg = DnsMessage::query(0x1234, name, super::super::dns::rtype::AAAA);
    let transport = TransportSpec::Udp(UdpSpec {
        src_port: 5353,
        dst_port: 53,
    });
    let spec = FrameSpec {
        link: eth(None),
        ip: v6(),
        transport,
        payload: Payload::Dns(&msg),
        l4_checksum: true,
    };
    let out = build(&spec);
    let udp = &out[54..];
    let dns_len = 12 + 17 + 4;
    assert_eq!(udp.len(), 8 + dns_len);
    assert_eq!(
        &udp[4..6],
        &u16::try_from(8 + dns_len).unwrap().to_be_bytes()
    );
    assert_eq!(out[20], 17);
    assert!(transport_sum_ok(&out[14..54], udp));
    assert_eq!(&udp[8..10], &[0x12, 0x34]);
}

#[test]
fn odd_length_payload_bytes_are_summed() {
    let transport = TransportSpec::Udp(UdpSpec {
        src_port: 1,
        dst_port: 2,
    });
    let spec = FrameSpec {
        link: LinkSpec::Raw,
        ip: v4(),
        transport,
        payload: Payload::Bytes(&[0xde, 0xad, 0xbe]),
        l4_checksum: true,
    };
    let out = build(&spec);
    assert_eq!(out.len(), 20 + 8 + 3, "raw IP frames are not padded");
    assert!(transport_sum_ok(&out[..20], &out[20..]));
}

#[test]
fn icmp_echo_checksums_follow_ip_version() {
    let echo = IcmpEchoSpec {
        is_reply: false,
        ident: 0x4242,
        seq: 7,
    };
    let mut spec = FrameSpec {
        link: LinkSpec::Raw,
        ip: v4(),
        transport: TransportSpec::IcmpEcho(echo),
        payload: Payload::Bytes(&[1, 2, 3, 4, 5]),
        l4_checksum: true,
    };
    let out = build(&spec);
    assert_eq!(out[9], 1);
    assert_eq!(out[20], 8);
    assert_eq!(
        checksum::checksum(&out[20..]),
        0,
        "ICMPv4 has no pseudo-header"
    );
    spec.ip = v6();
    spec.transport = TransportSpec::IcmpEcho(IcmpEchoSpec {
        is_reply: true,
        ..echo
    });
    let out = build(&spec);
    assert_eq!(out[6], 58);
    assert_eq!(out[40], 129);
    assert!(transport_sum_ok(&out[..40], &out[40..]));
}

#[test]
fn checksum_can_be_skipped() {
    let spec = FrameSpec {
        link: LinkSpec::Raw,
        ip: v4(),
        transport: syn(),
        payload: Payload::Zeros(10),
        l4_checksum: false,
    };
    let out = build(&spec);
    assert_eq!(&out[36..38], &[0, 0]);
    assert_eq!(
        checksum::checksum(&out[..20]),
        0,
        "IPv4 header checksum is always set"
    );
}

#[test]
fn fragment_fields_are_encoded() {
    let ip = Ipv4Spec {
        dont_fragment: false,
        more_fragments: true,
        fragment_offset: 185,
        ident: 0xabcd,
        ttl: 3,
        ..Ipv4Spec::new(Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8))
    };
    let spec = FrameSpec {
        link: LinkSpec::Raw,
        ip: IpSpec::V4(ip),
        transport: TransportSpec::Raw { protocol: 17 },
        payload: Payload::Zeros(16),
        l4_checksum: true,
    };
    let out = build(&spec);
    assert_eq!(out.len(), 36);
    assert_eq!(&out[4..6], &[0xab, 0xcd]);
    assert_eq!(u16::from_be_bytes([out[6], out[7]]), 0x2000 | 0xb9);
    assert_eq!(out[8], 3);
    assert_eq!(out[9], 17);
}

#[test]
fn linux_sll_header_layout() {
    let spec = FrameSpec {
        link: LinkSpec::LinuxSll {
            packet_type: 0,
            src: MAC_A,
        },
        ip: v4(),
        transport: TransportSpec::Udp(UdpSpec {
            src_port: 1,
            dst_port: 2,
        }),
        payload: Payload::Zeros(0),
        l4_checksum: true,
    };
    let out = build(&spec);
    assert_eq!(
        &out[..16],
        &[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00]
    );
    assert_eq!(out.len(), 16 + 20 + 8);
}

#[test]
fn reused_buffer_does_not_reallocate() {
    let mut spec = FrameSpec {
        link: eth(Some(7)),
        ip: v6(),
        transport: syn(),
        payload: Payload::Zeros(1440),
        l4_checksum: true,
    };
    let mut out = Vec::new();
    spec.write(&mut out);
    let (ptr, cap) = (out.as_ptr(), out.capacity());
    for len in [0, 100, 1440, 7] {
        spec.payload = Payload::Zeros(len);
        spec.write(&mut out);
        assert_eq!((out.as_ptr(), out.capacity()), (ptr, cap));
    }
}

#[test]
fn raw_and_sll_frames_decode_with_their_link_types() {
    use netwarden::decode::{LinkType, Transport, decode_frame};
    let transport = TransportSpec::Udp(UdpSpec {
        src_port: 5000,
        dst_port: 6000,
    });
    for (link, link_type) in [
        (LinkSpec::Raw, LinkType::RawIp),
        (
            LinkSpec::LinuxSll {
                packet_type: 0,
                src: MAC_A,
            },
            LinkType::LinuxSll,
        ),
        (eth(Some(42)), LinkType::Ethernet),
    ] {
        for ip in [v4(), v6()] {
            let spec = FrameSpec {
                link,
                ip,
                transport,
                payload: Payload::Zeros(3),
                l4_checksum: true,
            };
            let out = build(&spec);
            let decoded = decode_frame(link_type, &out);
            assert_eq!(decoded.error, None, "{link:?} {ip:?}");
            let Transport::Udp(udp) = decoded.transport else {
                unreachable!("{link:?}: {:?}", decoded.transport)
            };
            assert_eq!(
                (udp.src_port, udp.dst_port, udp.payload_len),
                (5000, 6000, 3)
            );
        }
    }
}
