//! Detector tests of the data-leaving and reflection kinds: an exfiltration floor follows
//! the source's data grade, a learned usual volume lifts a backup server's bound but not
//! a quiet host's, first-seen destinations cross at a lower volume, state stays bounded
//! under scattered destinations, and a reflection is judged by its amplification factor
//! whether or not its requests are seen.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::alert::Alert;
use crate::decode::ip_protocol;
use crate::networks::{Direction, Placement};
use crate::timestamp::Timestamp;

/// `lan` with a `db` group of grade `core`; `backup` and `office` keep the default grade
/// (`general`).
const NETWORKS: &str = r#"
[[networks]]
name = "lan"
cidrs = ["10.0.0.0/16"]
[[host_groups]]
name = "db"
cidrs = ["10.0.5.0/24"]
data_grade = "core"
"#;

const EXFILTRATION: &str = r#"
[[rules]]
name = "exfiltration"
kind = "exfiltration"
severity = "warning"
scope = "protected"
threshold = 100_000_000
core_threshold = 20_000_000
window = "10s"
windows = 6
new_destination_factor = 2
"#;

const REFLECTION: &str = r#"
[[rules]]
name = "reflection"
kind = "reflection"
severity = "critical"
scope = "protected"
threshold = 500_000
window = "2s"
min_factor = 5
min_peers = 2
"#;

fn detector(rules: &str) -> Detector {
    let text = format!("{NETWORKS}{rules}");
    let config = crate::config::parse(&text, Path::new("t.toml")).unwrap();
    Detector::new(Arc::new(RuleSet::build(&config).unwrap()))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_nanos(ms * 1_000_000)
}

/// A TCP segment of `payload` bytes from the protected `src` to the outside `dst`:443.
fn upload(ms: u64, src: &str, dst: &str, payload: u32) -> PacketView<'static> {
    PacketView {
        protocol: ip_protocol::TCP,
        dst_port: 443,
        payload_len: payload,
        wire_len: payload.saturating_add(54),
        direction: Direction::Outbound,
        placement: Placement {
            src: Some(0),
            dst: None,
        },
        ..PacketView::test_udp(at(ms), ip(src), ip(dst))
    }
}

/// A UDP packet of `wire` bytes from `src`:`sport` to `dst`:`dport`, both protected.
fn datagram(
    ms: u64,
    (src, sport): (&str, u16),
    (dst, dport): (&str, u16),
    wire: u32,
) -> PacketView<'static> {
    PacketView {
        src_port: sport,
        dst_port: dport,
        wire_len: wire,
        payload_len: wire.saturating_sub(42),
        direction: Direction::Internal,
        placement: Placement {
            src: Some(0),
            dst: Some(0),
        },
        ..PacketView::test_udp(at(ms), ip(src), ip(dst))
    }
}

/// Runs `packets(second)` for seconds `from..to`, ticking every second; returns the
/// firing alerts.
fn run(
    d: &mut Detector,
    from: u64,
    to: u64,
    packets: &mut dyn FnMut(u64) -> Vec<PacketView<'static>>,
) -> Vec<Alert> {
    let mut out = Evaluation::default();
    let mut fired = Vec::new();
    for s in from..to {
        for p in packets(s) {
            d.observe(&p);
        }
        d.tick(at((s + 1) * 1000), &mut out);
        fired.extend(
            out.alerts
                .drain(..)
                .filter(|a| a.state == crate::alert::AlertState::Firing),
        );
    }
    fired
}

#[test]
fn exfiltration_floor_follows_the_source_data_grade() {
    let mut d = detector(EXFILTRATION);
    // 1 MB/s for 40 s from a general host and from a core one, to known-to-nobody
    // addresses: 40 MB crosses the core floor's half (new destination), not the
    // general one's.
    let fired = run(&mut d, 0, 40, &mut |s| {
        vec![
            upload(s * 1000, "10.0.1.9", "198.51.100.7", 1_000_000),
            upload(s * 1000, "10.0.5.9", "198.51.100.8", 1_000_000),
        ]
    });
    let sources: Vec<_> = fired.iter().map(|a| a.src).collect();
    assert_eq!(sources, vec![Some(ip("10.0.5.9"))], "{fired:?}");
    let alert = &fired[0];
    assert_eq!(alert.labels["data_grade"], "core");
    assert_eq!(alert.annotations["destination"], "198.51.100.8");
    assert_eq!(alert.annotations["first_seen_destination"], "true");
    assert_eq!(alert.annotations["ports"], "tcp/443");
    assert_eq!(alert.port, Some(443));
}

#[test]
fn exfiltration_learns_a_backup_servers_usual_volume_but_not_a_quiet_hosts() {
    let mut d = detector(EXFILTRATION);
    let backup = |s: u64| upload(s * 1000, "10.0.1.20", "198.51.100.20", 6_000_000);
    // Keep-alive traffic elsewhere, so the capture has no gap.
    let idle = |s: u64| upload(s * 1000, "10.0.1.30", "198.51.100.30", 100);
    // Night one: 180 MB in 30 s. The first run is news.
    let first = run(&mut d, 0, 30, &mut |s| vec![backup(s), idle(s)]);
    assert!(
        first.iter().any(|a| a.src == Some(ip("10.0.1.20"))),
        "{first:?}"
    );
    // Quiet for ten minutes: the run is learned once its peak has passed.
    run(&mut d, 30, 630, &mut |s| vec![idle(s)]);
    // Night two: the same run is usual for the backup server; the same volume from a
    // host that never uploaded alerts.
    let second = run(&mut d, 630, 660, &mut |s| {
        vec![
            backup(s),
            upload(s * 1000, "10.0.1.40", "198.51.100.20", 6_000_000),
            idle(s),
        ]
    });
    let sources: Vec<_> = second.iter().map(|a| a.src).collect();
    assert_eq!(sources, vec![Some(ip("10.0.1.40"))], "{second:?}");
    assert_eq!(
        second[0].annotations["usual_share"],
        "no usual volume learned"
    );
}

#[test]
fn exfiltration_state_is_bounded_under_scattered_destinations() {
    let rules = EXFILTRATION.replace("window = \"10s\"", "window = \"10s\"\nmax_keys = 256");
    let mut d = detector(&rules);
    // 5,000 one-packet destinations a second (spoofed or scanned), and one real upload.
    let mut n = 0u32;
    let fired = run(&mut d, 0, 30, &mut |s| {
        let mut v: Vec<_> = (0..5000)
            .map(|_| {
                n += 1;
                let dst = std::net::Ipv4Addr::from(0xc633_0000 + n).to_string();
                upload(s * 1000, "10.0.1.50", &dst, 100)
            })
            .collect();
        v.push(upload(s * 1000, "10.0.1.50", "203.0.113.5", 5_000_000));
        v
    });
    let mut out = Evaluation::default();
    d.tick(at(31_000), &mut out);
    assert!(out.rules[0].keys <= 2 * 256, "{}", out.rules[0].keys);
    let alert = fired.first().expect("the upload alerts");
    assert_eq!(alert.annotations["destination"], "203.0.113.5");
}

#[test]
fn reflection_is_judged_by_amplification_with_or_without_the_spoofed_requests() {
    for requests in [false, true] {
        let mut d = detector(REFLECTION);
        // 1,000 NTP responses a second of 510 bytes from 20 reflectors in the LAN to the
        // victim; with `requests`, one 50-byte spoofed request per ten responses.
        let fired = run(&mut d, 0, 5, &mut |s| {
            let mut v = Vec::new();
            for i in 0..1000u64 {
                let reflector = format!("10.0.9.{}", 1 + i / 10 % 20);
                if requests && i % 10 == 0 {
                    v.push(datagram(
                        s * 1000 + i,
                        ("10.0.1.1", 443),
                        (&reflector, 123),
                        50,
                    ));
                }
                v.push(datagram(
                    s * 1000 + i,
                    (&reflector, 123),
                    ("10.0.1.1", 443),
                    510,
                ));
            }
            v
        });
        let alert = fired.first().expect("a reflection alert");
        assert_eq!((alert.dst, alert.port), (Some(ip("10.0.1.1")), Some(123)));
        let factor = &alert.annotations["amplification_factor"];
        if requests {
            assert_eq!(factor, "102.0");
        } else {
            assert_eq!(factor, "unsolicited");
        }
    }
}

#[test]
fn reflection_through_two_services_is_two_alerts_told_apart_by_their_service_label() {
    let mut d = detector(REFLECTION);
    // NTP and memcached responses from 20 reflectors each to one victim, unsolicited.
    let fired = run(&mut d, 0, 5, &mut |s| {
        let mut v = Vec::new();
        for i in 0..1000u64 {
            let reflector = format!("10.0.9.{}", 1 + i / 10 % 20);
            for port in [123, 11211] {
                v.push(datagram(
                    s * 1000 + i,
                    (&reflector, port),
                    ("10.0.1.1", 443),
                    510,
                ));
            }
        }
        v
    });
    let mut services: Vec<&str> = fired
        .iter()
        .filter(|a| a.dst == Some(ip("10.0.1.1")))
        .map(|a| a.labels["service"].as_str())
        .collect();
    services.sort_unstable();
    assert_eq!(
        services,
        ["udp/11211 (memcached)", "udp/123 (ntp)"],
        "{fired:?}"
    );
}

#[test]
fn reflection_leaves_ordinary_exchanges_alone() {
    let mut d = detector(REFLECTION);
    // A busy client: 2,000 DNS answers a second (about 3 Mbit/s) from two resolvers,
    // each answering a query of half its size.
    let fired = run(&mut d, 0, 10, &mut |s| {
        let mut v = Vec::new();
        for i in 0..2000u64 {
            let resolver = if i % 2 == 0 { "10.0.0.53" } else { "10.0.0.54" };
            v.push(datagram(s * 1000, ("10.0.1.1", 40000), (resolver, 53), 100));
            v.push(datagram(s * 1000, (resolver, 53), ("10.0.1.1", 40000), 200));
        }
        v
    });
    assert!(fired.is_empty(), "{fired:?}");
}
