//! Detector tests: lifecycle (for, resolve delay, shadow, warm-up), probes, templates,
//! and bounded state under spoofed sources.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::*;
use crate::config::{Config, RulesFile};
use crate::flow::TcpState;

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<Alert>>>);

impl AlertOutput for Shared {
    fn emit(&mut self, alert: Alert) {
        self.0.lock().unwrap().push(alert);
    }
}

fn detector(rules: &str) -> (Detector, Shared) {
    let file: RulesFile = toml::from_str(rules).unwrap();
    let config = Config {
        rules: file.rules,
        host_groups: file.host_groups,
        ..Config::default()
    };
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    let out = Shared::default();
    (
        Detector::new(Arc::new(RuleSet::build(&config)), Box::new(out.clone())),
        out,
    )
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn secs(s: f64) -> Timestamp {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Timestamp::from_nanos((s * 1e9) as u64)
}

/// A UDP packet from `src` to the protected `dst`, opening a flow.
fn udp(ts: f64, src: IpAddr, dst: IpAddr) -> PacketView<'static> {
    PacketView {
        ts: secs(ts),
        src,
        dst,
        wire_len: 100,
        protocol: ip_protocol::UDP,
        src_port: 4000,
        dst_port: 53,
        tcp_flags: None,
        is_fragment: false,
        direction: Direction::Inbound,
        placement: Placement {
            src: None,
            dst: Some(0),
        },
        flow: Some(FlowUpdate {
            created: true,
            state: TcpState::None,
            previous_state: TcpState::None,
            packets_in_flow: 1,
            is_initiator_side: true,
            is_first_reply: false,
        }),
        probe: None,
        dns: None,
    }
}

const FLOOD: &str = r#"
[[rules]]
name = "udp_flood"
kind = "volume"
severity = "critical"
threshold = 100
protocol = "udp"
"for" = "2s"
resolve_delay = "5s"
annotations = { summary = "UDP flood on {{ dst }} ({{ value }} > {{ threshold }}) {{ nope }}" }
"#;

/// Sends `pps` packets per second to `dst` for seconds `from..to`, ticking every second.
fn flood(d: &mut Detector, from: u32, to: u32, pps: u32) {
    for s in from..to {
        for i in 0..pps {
            let t = f64::from(s) + f64::from(i) / f64::from(pps);
            d.observe(&udp(t, ip("198.51.100.1"), ip("10.0.0.1")));
        }
        d.tick(secs(f64::from(s + 1)));
    }
}

#[test]
fn an_alert_fires_only_after_for_and_once_per_key() {
    let (mut d, out) = detector(FLOOD);
    flood(&mut d, 0, 2, 200);
    assert!(out.0.lock().unwrap().is_empty(), "pending during `for`");
    flood(&mut d, 2, 6, 200);
    let alerts = out.0.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!(a.dst, Some(ip("10.0.0.1")));
    assert_eq!(a.src, None);
    assert_eq!(a.kind, "volume");
    assert_eq!(a.protocol.as_deref(), Some("udp"));
    assert!(a.value >= 100.0 && (a.time - a.started - 2.0).abs() < 1e-6);
    assert_eq!(
        a.annotations["summary"],
        "UDP flood on 10.0.0.1 (200.0 > 100.0) {{ nope }}"
    );
    assert_eq!(a.contributors[0].value, "198.51.100.1");
}

#[test]
fn a_flapping_attack_is_one_alert_and_resolves_after_the_delay() {
    let (mut d, out) = detector(FLOOD);
    flood(&mut d, 0, 4, 200);
    // Quiet for 3 s (less than the 5 s resolve delay), then back: the same alert.
    flood(&mut d, 4, 7, 10);
    flood(&mut d, 7, 9, 200);
    assert_eq!(out.0.lock().unwrap().len(), 1);
    flood(&mut d, 9, 20, 10);
    let alerts = out.0.lock().unwrap().clone();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[1].state, AlertState::Resolved);
    assert!((alerts[1].time - alerts[1].last_seen - 5.0).abs() <= 1.0 + 1e-6);
}

#[test]
fn shadow_rules_count_but_send_nothing() {
    let (mut d, out) = detector(&FLOOD.replace("\"for\" = \"2s\"", "shadow = true"));
    flood(&mut d, 0, 3, 200);
    assert!(out.0.lock().unwrap().is_empty());
    assert_eq!(d.running[0].lifecycle.firing(), 1, "evaluated all the same");
}

#[test]
fn warm_up_holds_alerts_after_start_and_after_a_capture_gap() {
    let (mut d, out) = detector(&FLOOD.replace("\"for\" = \"2s\"", "warmup = \"3s\""));
    flood(&mut d, 0, 2, 200);
    assert!(out.0.lock().unwrap().is_empty(), "held during warm-up");
    flood(&mut d, 2, 4, 200);
    let alerts = out.0.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1);
    assert!(
        (alerts[0].time - 3.0).abs() < 1e-6,
        "fires when the hold ends"
    );
    // A long silence, then a new attack on another host: held again for 3 s.
    for s in 1000..1003 {
        for i in 0..200 {
            d.observe(&udp(
                f64::from(s) + f64::from(i) / 200.0,
                ip("198.51.100.1"),
                ip("10.0.0.2"),
            ));
        }
        d.tick(secs(f64::from(s + 1)));
    }
    let alerts = out.0.lock().unwrap().clone();
    assert!(
        alerts
            .iter()
            .all(|a| a.dst != Some(ip("10.0.0.2")) || a.time >= 1003.0),
        "{alerts:?}"
    );
}

#[test]
fn scope_limits_rules_to_their_host_group() {
    let rules = r#"
[[host_groups]]
name = "dmz"
cidrs = ["10.9.0.0/16"]
[[rules]]
name = "dmz_flood"
kind = "volume"
scope = "dmz"
severity = "warning"
threshold = 50
"#;
    let (mut d, out) = detector(rules);
    flood(&mut d, 0, 2, 200);
    assert!(
        out.0.lock().unwrap().is_empty(),
        "10.0.0.1 is not in the group"
    );
    for i in 0..200 {
        d.observe(&udp(
            3.0 + f64::from(i) / 200.0,
            ip("198.51.100.1"),
            ip("10.9.0.1"),
        ));
    }
    d.tick(secs(4.0));
    let alerts = out.0.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].network.as_deref(), Some("dmz"));
}

#[test]
fn millions_of_spoofed_sources_cost_a_fixed_table_and_still_alert() {
    let rules = r#"
[[rules]]
name = "flood"
kind = "volume"
severity = "critical"
threshold = 1000
max_keys = 64
[[rules]]
name = "sweep"
kind = "host_sweep"
scope = "all"
severity = "warning"
threshold = 25
max_keys = 64
"#;
    let (mut d, out) = detector(rules);
    for i in 0..1_000_000u32 {
        let mut p = udp(
            f64::from(i) / 1e6,
            IpAddr::from(i.to_be_bytes()),
            ip("10.0.0.1"),
        );
        p.probe = flow_probe(&p);
        d.observe(&p);
    }
    for r in &d.running {
        assert!(r.state.keys() <= 64);
    }
    d.tick(secs(1.0));
    let alerts = out.0.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].rule, "flood");
}

#[test]
fn probes_classify_attempts_answers_and_refusals() {
    let mut p = udp(0.0, ip("198.51.100.1"), ip("10.0.0.1"));
    p.protocol = ip_protocol::TCP;
    p.tcp_flags = Some(TcpFlags(TcpFlags::SYN));
    let probe = flow_probe(&p).unwrap();
    assert_eq!(probe.outcome, Outcome::Attempt);
    assert_eq!(probe.service, 0x0006_0035, "tcp/53");
    // Backscatter (a SYN-ACK or RST opening a flow) probes nobody.
    p.tcp_flags = Some(TcpFlags(TcpFlags::SYN | TcpFlags::ACK));
    assert_eq!(flow_probe(&p), None);
    // The target's first packet back: RST refuses, anything else answers.
    let mut reply = udp(0.1, ip("10.0.0.1"), ip("198.51.100.1"));
    reply.protocol = ip_protocol::TCP;
    reply.flow = reply.flow.map(|f| FlowUpdate {
        created: false,
        is_initiator_side: false,
        is_first_reply: true,
        ..f
    });
    reply.tcp_flags = Some(TcpFlags(TcpFlags::RST | TcpFlags::ACK));
    let refused = flow_probe(&reply).unwrap();
    assert_eq!(
        (refused.outcome, refused.scanner, refused.target),
        (Outcome::Failed, ip("198.51.100.1"), ip("10.0.0.1"))
    );
    reply.tcp_flags = Some(TcpFlags(TcpFlags::SYN | TcpFlags::ACK));
    assert_eq!(flow_probe(&reply).unwrap().outcome, Outcome::Answered);
}

#[test]
fn a_baseline_learns_a_host_and_fires_on_a_jump_above_k_sigma_and_the_floor() {
    let rules = r#"
[[rules]]
name = "learned"
kind = "baseline"
severity = "warning"
threshold = 150
k = 3
alpha = 0.2
min_windows = 5
"#;
    let (mut d, out) = detector(rules);
    // Ten seconds at 100 to 120 packets/s: learned, no alert (below the floor and bound).
    for s in 0..10 {
        flood(&mut d, s, s + 1, 100 + 2 * s);
    }
    assert!(out.0.lock().unwrap().is_empty());
    // 140/s is above the learned bound but below the 150 floor: still quiet.
    flood(&mut d, 10, 11, 140);
    assert!(out.0.lock().unwrap().is_empty());
    flood(&mut d, 11, 12, 400);
    let alerts = out.0.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].kind, "baseline");
    assert!((alerts[0].value - 400.0).abs() < 1e-6);
}

#[test]
fn a_baseline_stays_quiet_during_a_hosts_warm_up() {
    let rules = r#"
[[rules]]
name = "learned"
kind = "baseline"
severity = "warning"
threshold = 10
min_windows = 5
"#;
    let (mut d, out) = detector(rules);
    flood(&mut d, 0, 3, 100);
    flood(&mut d, 3, 4, 5000);
    assert!(out.0.lock().unwrap().is_empty());
}
