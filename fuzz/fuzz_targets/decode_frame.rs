//! Fuzz target for `decode::decode_frame`.
//!
//! The first input byte picks the link type (modulo the number supported); the rest is the
//! frame. Beyond "does not panic", every summary must obey the layering invariants the rest
//! of netwarden relies on.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netwarden::decode::{Decoded, LinkType, Network, Transport, decode_frame, ip_protocol};

/// Every supported link type, indexed by the first input byte.
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

fn check_invariants(decoded: &Decoded<'_>) {
    let ip = match decoded.network {
        Network::Ip(ip) => Some(ip),
        _ => None,
    };
    match decoded.transport {
        Transport::None => {}
        transport => {
            let ip = ip.expect("a transport header implies an IP header");
            assert!(
                !ip.fragment.is_later(),
                "a later fragment has no transport header"
            );
            let protocol = match transport {
                Transport::Tcp(_) => ip_protocol::TCP,
                Transport::Udp(_) => ip_protocol::UDP,
                Transport::Icmp(_) => ip_protocol::ICMP,
                Transport::Icmpv6(_) => ip_protocol::ICMPV6,
                Transport::None => unreachable!(),
            };
            assert_eq!(ip.protocol, protocol, "transport matches the IP protocol");
        }
    }
    if let Some(dns) = decoded.dns {
        assert!(
            matches!(decoded.transport, Transport::Udp(_)),
            "DNS only over UDP"
        );
        if let Some(question) = dns.question {
            let name = question.name;
            // Parse-time validation makes these hold for every decoded name.
            assert!(name.wire.len() < 255, "RFC 1035 name length");
            let labels: usize = name.labels().map(|label| label.len() + 1).sum();
            assert_eq!(
                labels,
                name.wire.len(),
                "labels cover the wire form exactly"
            );
            assert!(
                name.labels()
                    .all(|label| !label.is_empty() && label.len() <= 63)
            );
            assert_eq!(name.len_text(), labels.saturating_sub(1));
        }
    }
    if decoded.inner_vlan.is_some() {
        assert!(decoded.vlan.is_some(), "an inner VLAN implies an outer one");
    }
    if let Some(ip) = ip {
        assert_eq!(
            ip.src.is_ipv4(),
            ip.dst.is_ipv4(),
            "both addresses of one version"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    let link = LINK_TYPES[usize::from(selector) % LINK_TYPES.len()];
    let decoded = decode_frame(link, frame);
    check_invariants(&decoded);
    // Decoding is a pure function of the bytes.
    assert_eq!(decode_frame(link, frame), decoded);
});
