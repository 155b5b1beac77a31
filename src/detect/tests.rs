//! Detector tests: lifecycle (for, resolve delay, shadow, warm-up), probes, templates,
//! bounded state under spoofed sources, the blocklist and network-keyed volume rules, and
//! hot reload.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::probe::{flow_probe, icmp_probe};
use super::*;
use crate::alert::{Alert, AlertKind, AlertOutput, AlertState, Severity};
use crate::config::{Cidr, Config, NetworkConfig, RulesFile};
use crate::decode::{IcmpRepr, TcpFlags, ip_protocol};
use crate::flow::FlowUpdate;
use crate::networks::{Direction, Placement};
use crate::timestamp::Timestamp;
use crate::vocabulary::RuleKind;

/// Where a test's transitions go.
type Shared = Arc<Mutex<Vec<Alert>>>;

/// A validated config of `rules` (a rules file's text) with two protected networks,
/// `lan` (10.0.0.0/16) and `dmz` (10.9.0.0/16).
fn config(rules: &str) -> Config {
    let file: RulesFile = toml::from_str(rules).unwrap();
    let net = |name: &str, cidr: &str| NetworkConfig {
        name: name.to_owned(),
        cidrs: vec![cidr.parse::<Cidr>().unwrap()],
    };
    let config = Config {
        rules: file.rules,
        host_groups: file.host_groups,
        networks: vec![net("lan", "10.0.0.0/16"), net("dmz", "10.9.0.0/16")],
        ..Config::default()
    };
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    config
}

fn rule_set(rules: &str) -> Arc<RuleSet> {
    Arc::new(RuleSet::build(&config(rules)).unwrap())
}

/// A detector and what its evaluations reported: transitions go to a [`Shared`] list,
/// the rest stays in `out`.
struct Run {
    d: Detector,
    out: Evaluation,
    alerts: Shared,
}

impl Run {
    fn new(d: Detector, alerts: &Shared) -> Run {
        Run {
            d,
            out: Evaluation::default(),
            alerts: Arc::clone(alerts),
        }
    }

    fn tick(&mut self, now: Timestamp) {
        self.d.tick(now, &mut self.out);
        self.deliver();
    }

    fn reload(&mut self, rules: Arc<RuleSet>, now: Timestamp) {
        self.d.reload(rules, now, &mut self.out);
        self.deliver();
    }

    fn deliver(&mut self) {
        for a in self.out.alerts.drain(..) {
            self.alerts.emit(a);
        }
    }
}

impl std::ops::Deref for Run {
    type Target = Detector;
    fn deref(&self) -> &Detector {
        &self.d
    }
}

impl std::ops::DerefMut for Run {
    fn deref_mut(&mut self) -> &mut Detector {
        &mut self.d
    }
}

fn detector(rules: &str) -> (Run, Shared) {
    let out = Shared::default();
    (Run::new(Detector::new(rule_set(rules)), &out), out)
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
    PacketView::test_udp(secs(ts), src, dst)
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
fn flood(d: &mut Run, from: u32, to: u32, pps: u32) {
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
    assert!(out.lock().unwrap().is_empty(), "pending during `for`");
    flood(&mut d, 2, 6, 200);
    let alerts = out.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!(a.dst, Some(ip("10.0.0.1")));
    assert_eq!(a.src, None);
    assert_eq!(a.kind, AlertKind::Rule(RuleKind::Volume));
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
    assert_eq!(out.lock().unwrap().len(), 1);
    flood(&mut d, 9, 20, 10);
    let alerts = out.lock().unwrap().clone();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[1].state, AlertState::Resolved);
    assert!((alerts[1].time - alerts[1].last_seen - 5.0).abs() <= 1.0 + 1e-6);
}

#[test]
fn shadow_rules_count_but_send_nothing() {
    let (mut d, out) = detector(&FLOOD.replace("\"for\" = \"2s\"", "shadow = true"));
    flood(&mut d, 0, 3, 200);
    assert!(out.lock().unwrap().is_empty());
    assert_eq!(d.running[0].lifecycle.firing(), 1, "evaluated all the same");
}

#[test]
fn warm_up_holds_alerts_after_start_and_after_a_capture_gap() {
    let (mut d, out) = detector(&FLOOD.replace("\"for\" = \"2s\"", "warmup = \"3s\""));
    flood(&mut d, 0, 2, 200);
    assert!(out.lock().unwrap().is_empty(), "held during warm-up");
    flood(&mut d, 2, 4, 200);
    let alerts = out.lock().unwrap().clone();
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
    let alerts = out.lock().unwrap().clone();
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
        out.lock().unwrap().is_empty(),
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
    let alerts = out.lock().unwrap().clone();
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
    let alerts = out.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].rule, "flood");
    // The analyst reading the flood alert learns that the sweep rule went partly blind.
    let note = &alerts[0].annotations[DEGRADED_ANNOTATION];
    assert!(note.contains("rules sweep)"), "{note}");
    assert!(note.contains("lower bounds"), "{note}");
}

#[test]
fn an_alert_raised_while_no_table_is_full_carries_no_degradation_note() {
    let (mut d, out) = detector(FLOOD);
    flood(&mut d, 0, 4, 200);
    let alerts = out.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(!alerts[0].annotations.contains_key(DEGRADED_ANNOTATION));
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
        is_answered: true,
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
    assert!(out.lock().unwrap().is_empty());
    // 140/s is above the learned bound but below the 150 floor: still quiet.
    flood(&mut d, 10, 11, 140);
    assert!(out.lock().unwrap().is_empty());
    flood(&mut d, 11, 12, 400);
    let alerts = out.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].kind, AlertKind::Rule(RuleKind::Baseline));
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
    assert!(out.lock().unwrap().is_empty());
}

/// Every alert emitted so far.
fn emitted(out: &Shared) -> Vec<Alert> {
    out.lock().unwrap().clone()
}

/// A rules file with one blocklist rule reading `file` (absolute) plus inline entries.
fn blocklist_rules(file: &std::path::Path) -> String {
    format!(
        r#"
[[rules]]
name = "blocklisted"
kind = "blocklist"
scope = "all"
severity = "warning"
files = ["{}"]
entries = ["2001:db8::1"]
resolve_delay = "5s"
"#,
        file.display()
    )
}

#[test]
fn blocklist_keys_the_listed_address_by_who_initiated() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad-hosts.txt");
    std::fs::write(&file, "# test list\n198.51.100.0/24  # a whole range\n").unwrap();
    let (mut d, out) = detector(&blocklist_rules(&file));
    // A listed host opens a flow toward us: the alert is about it as the source.
    d.observe(&udp(0.1, ip("198.51.100.7"), ip("10.0.0.1")));
    // One of ours opens a flow to a listed IPv6 host, which answers.
    let mut ask = udp(0.2, ip("2001:db8::99"), ip("2001:db8::1"));
    ask.dst_port = 443;
    let mut answer = udp(0.3, ip("2001:db8::1"), ip("2001:db8::99"));
    answer.src_port = 443;
    answer.flow = answer.flow.map(|f| FlowUpdate {
        created: false,
        is_initiator_side: false,
        is_first_reply: true,
        is_answered: true,
        ..f
    });
    d.observe(&ask);
    d.observe(&answer);
    // Unlisted traffic counts for nothing.
    d.observe(&udp(0.4, ip("198.51.101.1"), ip("10.0.0.1")));
    d.tick(secs(1.0));
    let alerts = emitted(&out);
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let by_src = alerts.iter().find(|a| a.src.is_some()).unwrap();
    assert_eq!(
        (by_src.kind.as_str(), by_src.src, by_src.dst),
        ("blocklist", Some(ip("198.51.100.7")), None)
    );
    assert!((by_src.value - 1.0).abs() < 1e-9 && (by_src.threshold - 1.0).abs() < 1e-9);
    let contributor = |a: &Alert, kind: &str| {
        a.contributors
            .iter()
            .find(|c| c.kind.as_str() == kind)
            .map(|c| c.value.clone())
    };
    assert_eq!(contributor(by_src, "peer").as_deref(), Some("10.0.0.1"));
    assert_eq!(contributor(by_src, "port").as_deref(), Some("udp/53"));
    assert_eq!(
        contributor(by_src, "list").as_deref(),
        Some("bad-hosts.txt")
    );
    let by_dst = alerts.iter().find(|a| a.dst.is_some()).unwrap();
    assert_eq!((by_dst.src, by_dst.dst), (None, Some(ip("2001:db8::1"))));
    assert!((by_dst.value - 2.0).abs() < 1e-9, "request and answer");
    assert_eq!(contributor(by_dst, "port").as_deref(), Some("udp/443"));
    assert_eq!(contributor(by_dst, "list").as_deref(), Some("inline"));
}

#[test]
fn blocklist_file_problems_are_config_errors_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("list.txt");
    std::fs::write(
        &file,
        "203.0.113.1\n\n203.0.113.300\n# fine\n2001:db8::/129\n",
    )
    .unwrap();
    let errors = RuleSet::build(&config(&blocklist_rules(&file)))
        .unwrap_err()
        .to_string();
    let shown = file.display().to_string();
    assert!(
        errors.contains(&format!("{shown}:3: invalid CIDR `203.0.113.300`")),
        "{errors}"
    );
    assert!(errors.contains(&format!("{shown}:5: ")), "{errors}");
    assert_eq!(errors.lines().count(), 2, "{errors}");
    let missing = dir.path().join("missing.txt");
    let errors = RuleSet::build(&config(&blocklist_rules(&missing)))
        .unwrap_err()
        .to_string();
    assert!(
        errors.starts_with(&missing.display().to_string()) && errors.contains("cannot read"),
        "{errors}"
    );
}

#[test]
fn watched_files_lists_every_blocklist_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.txt");
    let b = dir.path().join("b.txt");
    std::fs::write(&a, "").unwrap();
    std::fs::write(&b, "").unwrap();
    let rules = format!(
        "{}\n[[rules]]\nname = \"second\"\nkind = \"blocklist\"\nseverity = \"info\"\nfiles = [\"{}\", \"{}\"]\n",
        blocklist_rules(&b),
        a.display(),
        b.display()
    );
    assert_eq!(rule_set(&rules).watched_files(), vec![a, b]);
    assert!(rule_set(FLOOD).watched_files().is_empty());
}

#[test]
fn volume_keyed_by_network_sums_its_hosts_and_names_the_network() {
    let rules = r#"
[[rules]]
name = "lan_flood"
kind = "volume"
severity = "critical"
threshold = 150
key = "network"
[[rules]]
name = "host_flood"
kind = "volume"
severity = "critical"
threshold = 150
"#;
    let (mut d, out) = detector(rules);
    for i in 0..100 {
        let t = f64::from(i) / 100.0;
        d.observe(&udp(t, ip("198.51.100.1"), ip("10.0.0.1")));
        d.observe(&udp(t, ip("198.51.100.1"), ip("10.0.0.2")));
        // Outbound from `dmz` (index 1) counts for `dmz`, not `lan`.
        let mut out_bound = udp(t, ip("10.9.0.1"), ip("192.0.2.1"));
        out_bound.placement = Placement {
            src: Some(1),
            dst: None,
        };
        out_bound.direction = Direction::Outbound;
        d.observe(&out_bound);
    }
    d.tick(secs(1.0));
    let alerts = emitted(&out);
    assert_eq!(alerts.len(), 1, "no host reaches 150/s: {alerts:?}");
    let a = &alerts[0];
    assert_eq!(a.rule, "lan_flood");
    assert_eq!(
        (a.src, a.dst, a.network.as_deref()),
        (None, None, Some("lan"))
    );
    assert!((a.value - 200.0).abs() < 1e-6, "{}", a.value);
}

#[test]
fn volume_keyed_by_network_with_a_group_scope_counts_the_group() {
    let rules = r#"
[[host_groups]]
name = "web"
cidrs = ["10.0.0.0/30"]
[[rules]]
name = "web_flood"
kind = "volume"
scope = "web"
severity = "critical"
threshold = 150
key = "network"
"#;
    let (mut d, out) = detector(rules);
    for i in 0..100 {
        let t = f64::from(i) / 100.0;
        d.observe(&udp(t, ip("198.51.100.1"), ip("10.0.0.1")));
        d.observe(&udp(t, ip("198.51.100.1"), ip("10.0.0.2")));
        d.observe(&udp(t, ip("198.51.100.1"), ip("10.0.0.9")));
    }
    d.tick(secs(1.0));
    let alerts = emitted(&out);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        (alerts[0].dst, alerts[0].network.as_deref()),
        (None, Some("web"))
    );
    assert!(
        (alerts[0].value - 200.0).abs() < 1e-6,
        "10.0.0.9 is outside the group"
    );
}

// --- hot reload ------------------------------------------------------------------------

#[test]
fn reload_keeps_an_unchanged_rules_firing_alert_without_a_second_firing() {
    let (mut d, out) = detector(FLOOD);
    flood(&mut d, 0, 4, 200);
    assert_eq!(emitted(&out).len(), 1);
    d.reload(rule_set(FLOOD), secs(4.0));
    flood(&mut d, 4, 12, 200);
    let alerts = emitted(&out);
    assert_eq!(alerts.len(), 1, "still the one firing alert: {alerts:?}");
    assert_eq!(d.running[0].lifecycle.firing(), 1);
}

#[test]
fn reload_keeps_the_accumulators_of_an_unchanged_rule() {
    let slow = r#"
[[rules]]
name = "slow"
kind = "port_scan"
scope = "all"
severity = "warning"
threshold = 20
window = "1m"
"#;
    let (mut d, out) = detector(slow);
    let probe = |t: f64, port: u16| {
        let mut p = udp(t, ip("198.51.100.1"), ip("10.0.0.1"));
        p.dst_port = port;
        p.probe = flow_probe(&p);
        p
    };
    for port in 0..15 {
        d.observe(&probe(f64::from(port) / 10.0, port));
    }
    d.tick(secs(2.0));
    d.reload(rule_set(slow), secs(2.0));
    for port in 15..30 {
        d.observe(&probe(2.0 + f64::from(port) / 10.0, port));
    }
    d.tick(secs(6.0));
    assert_eq!(
        emitted(&out).len(),
        1,
        "15 ports before and 15 after the reload add up"
    );
}

#[test]
fn reload_with_a_raised_threshold_resolves_the_alert_after_the_delay() {
    let (mut d, out) = detector(FLOOD);
    flood(&mut d, 0, 4, 200);
    d.reload(
        rule_set(&FLOOD.replace("threshold = 100", "threshold = 1000")),
        secs(4.0),
    );
    flood(&mut d, 4, 8, 200);
    assert_eq!(
        emitted(&out).len(),
        1,
        "within the resolve delay the alert goes on"
    );
    flood(&mut d, 8, 12, 200);
    let alerts = emitted(&out);
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[1].state, AlertState::Resolved);
    assert!(
        (alerts[1].time - 9.0).abs() < 1e-6,
        "last seen at 4 s + 5 s: {}",
        alerts[1].time
    );
    assert!((alerts[1].threshold - 1000.0).abs() < 1e-6);
}

#[test]
fn reload_that_removes_a_rule_resolves_its_alerts_and_retires_its_instance() {
    let (mut d, out) = detector(FLOOD);
    flood(&mut d, 0, 4, 200);
    let (old, _) = d.instances().next().unwrap();
    assert_eq!(d.out.rules[0].firing, 1);
    let other = FLOOD.replace("udp_flood", "other_flood");
    d.reload(rule_set(&other), secs(4.5));
    let alerts = emitted(&out);
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(
        (alerts[1].rule.as_str(), alerts[1].state, alerts[1].time),
        ("udp_flood", AlertState::Resolved, 4.5)
    );
    assert_eq!(d.out.retired, [old]);
    // The added rule is an instance of its own.
    let (new, _) = d.instances().next().unwrap();
    assert_ne!(new, old);
    flood(&mut d, 4, 8, 200);
    assert_eq!(d.out.rules[0].instance, new);
    assert_eq!(d.out.rules[0].firing, 1);
}

#[test]
fn evaluations_report_each_rules_figures_in_rule_order() {
    let two = format!("{FLOOD}\n{}", FLOOD.replace("udp_flood", "second"));
    let (mut d, _) = detector(&two);
    flood(&mut d, 0, 4, 200);
    let firing: Vec<usize> = d.out.rules.iter().map(|f| f.firing).collect();
    assert_eq!(firing, [1, 1]);
    let instances: Vec<RuleInstance> = d.instances().map(|(i, _)| i).collect();
    let reported: Vec<RuleInstance> = d.out.rules.iter().map(|f| f.instance).collect();
    assert_eq!(reported, instances);
    // A changed threshold keeps the instance (and so the rule's metric series).
    d.reload(
        rule_set(&two.replace("threshold = 100", "threshold = 150")),
        secs(4.0),
    );
    assert!(d.out.retired.is_empty());
    assert_eq!(d.instances().map(|(i, _)| i).collect::<Vec<_>>(), instances);
}

#[test]
fn reload_holds_a_new_or_changed_rule_for_its_warmup() {
    let (mut d, out) = detector(FLOOD);
    flood(&mut d, 0, 2, 10);
    let added = format!(
        "{FLOOD}\n[[rules]]\nname = \"new_flood\"\nkind = \"volume\"\nseverity = \"warning\"\nthreshold = 50\nwarmup = \"3s\"\n"
    );
    d.reload(rule_set(&added), secs(2.0));
    flood(&mut d, 2, 6, 60);
    let alerts = emitted(&out);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].rule, "new_flood");
    assert!(
        (alerts[0].time - 5.0).abs() < 1e-6,
        "held until 2 s + 3 s: {}",
        alerts[0].time
    );
    // Changing its threshold holds it again (its firing alert goes on meanwhile).
    let changed = added.replace("threshold = 50", "threshold = 40");
    d.reload(rule_set(&changed), secs(6.0));
    d.observe(&udp(6.5, ip("198.51.100.1"), ip("10.0.0.7")));
    for i in 0..60 {
        d.observe(&udp(
            6.0 + f64::from(i) / 60.0,
            ip("198.51.100.1"),
            ip("10.0.0.7"),
        ));
    }
    d.tick(secs(7.0));
    assert_eq!(emitted(&out).len(), 1, "10.0.0.7 is held until 9 s");
}

#[test]
fn reload_hands_an_unchanged_blocklist_rule_its_new_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("list.txt");
    std::fs::write(&file, "198.51.100.1\n").unwrap();
    let rules = blocklist_rules(&file);
    let (mut d, out) = detector(&rules);
    d.observe(&udp(0.5, ip("198.51.100.1"), ip("10.0.0.1")));
    d.tick(secs(1.0));
    std::fs::write(&file, "198.51.100.2\n").unwrap();
    d.reload(rule_set(&rules), secs(1.0));
    d.observe(&udp(1.5, ip("198.51.100.1"), ip("10.0.0.1")));
    d.observe(&udp(1.6, ip("198.51.100.2"), ip("10.0.0.1")));
    d.tick(secs(2.0));
    let alerts = emitted(&out);
    let firing: Vec<_> = alerts
        .iter()
        .filter(|a| a.state == AlertState::Firing)
        .map(|a| a.src)
        .collect();
    assert_eq!(
        firing,
        [Some(ip("198.51.100.1")), Some(ip("198.51.100.2"))],
        "{alerts:?}"
    );
    assert_eq!(
        alerts.len(),
        2,
        "the first alert goes on until its resolve delay"
    );
}

#[test]
fn tick_applies_the_newest_rule_set_from_the_updates_channel() {
    let (tx, rx) = std::sync::mpsc::channel();
    let out = Shared::default();
    let mut d = Run::new(Detector::new(rule_set(FLOOD)).with_updates(rx), &out);
    let first = rule_set(&FLOOD.replace("threshold = 100", "threshold = 1000"));
    let second = rule_set(&FLOOD.replace("threshold = 100", "threshold = 50"));
    tx.send(first).unwrap();
    tx.send(Arc::clone(&second)).unwrap();
    d.tick(secs(1.0));
    assert!(Arc::ptr_eq(d.rules(), &second));
    assert!((d.running[0].rule.threshold - 50.0).abs() < 1e-9);
    drop(tx);
    d.tick(secs(2.0));
    assert!(d.updates.is_none(), "a closed channel stops updates");
}

// --- false positives of amplification and floods -------------------------------------

/// An ICMP port unreachable from `outer_src` to `outer_dst` quoting a UDP packet from
/// `q_src` to `q_dst`.
fn unreachable(outer: (&str, &str), quoted: (&str, &str)) -> Option<Probe> {
    let mut v = udp(0.0, ip(outer.0), ip(outer.1));
    v.protocol = ip_protocol::ICMP;
    let icmp = IcmpRepr {
        icmp_type: IcmpRepr::V4_DEST_UNREACHABLE,
        code: 3,
        echo_id: None,
        quoted: Some(crate::decode::QuotedPacket {
            src: ip(quoted.0),
            dst: ip(quoted.1),
            protocol: ip_protocol::UDP,
            src_port: 4000,
            dst_port: 161,
        }),
    };
    icmp_probe(&v, &icmp)
}

#[test]
fn icmp_errors_refuse_probes_only_of_the_host_they_are_sent_to() {
    // The target refuses the scanner's probe: a failed probe of the scanner.
    let p = unreachable(("10.0.0.2", "10.0.0.128"), ("10.0.0.128", "10.0.0.2")).unwrap();
    assert_eq!(
        (p.scanner, p.target, p.outcome, p.service),
        (
            ip("10.0.0.128"),
            ip("10.0.0.2"),
            Outcome::Failed,
            0x0011_00a1
        )
    );
    // Both ends translated (NAT, anonymised capture): the outer addresses count.
    let p = unreachable(("10.0.0.2", "10.0.0.128"), ("192.168.1.5", "192.168.9.9")).unwrap();
    assert_eq!((p.scanner, p.target), (ip("10.0.0.128"), ip("10.0.0.2")));
    // Backscatter: the reflector refuses a packet of a third party and tells the victim;
    // the third party probed nobody.
    assert_eq!(
        unreachable(
            ("49.85.162.85", "10.10.10.10"),
            ("136.243.174.154", "49.85.162.85")
        ),
        None
    );
}

#[test]
fn large_packets_to_many_ports_are_a_flood_not_a_port_scan() {
    let rules = r#"
[[rules]]
name = "port_scan"
kind = "port_scan"
scope = "all"
severity = "warning"
threshold = 25
"#;
    for (wire_len, scan) in [(554, false), (60, true)] {
        let (mut d, out) = detector(rules);
        for port in 0..100u16 {
            let mut p = udp(f64::from(port) / 200.0, ip("198.51.100.1"), ip("10.0.0.1"));
            p.dst_port = port;
            p.wire_len = wire_len;
            p.probe = flow_probe(&p);
            d.observe(&p);
        }
        d.tick(secs(1.0));
        assert_eq!(
            emitted(&out).len(),
            usize::from(scan),
            "{wire_len}-byte probes"
        );
    }
}

#[test]
fn reload_into_shadow_mode_resolves_the_sent_alerts() {
    let (mut d, out) = detector(FLOOD);
    flood(&mut d, 0, 4, 200);
    d.reload(
        rule_set(&FLOOD.replace("\"for\" = \"2s\"", "shadow = true")),
        secs(4.0),
    );
    flood(&mut d, 4, 8, 200);
    let alerts = emitted(&out);
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(
        (alerts[1].state, alerts[1].time),
        (AlertState::Resolved, 4.0)
    );
    assert_eq!(d.running[0].lifecycle.firing(), 1, "evaluated in shadow");
}

#[test]
fn reload_with_a_new_severity_resolves_the_old_alert_and_fires_anew() {
    let (mut d, out) = detector(FLOOD);
    flood(&mut d, 0, 4, 200);
    d.reload(
        rule_set(&FLOOD.replace("severity = \"critical\"", "severity = \"emergency\"")),
        secs(4.0),
    );
    flood(&mut d, 4, 12, 200);
    let alerts = emitted(&out);
    let states: Vec<_> = alerts.iter().map(|a| (a.state, a.severity)).collect();
    assert_eq!(
        states,
        [
            (AlertState::Firing, Severity::Critical),
            (AlertState::Resolved, Severity::Critical),
            (AlertState::Firing, Severity::Emergency),
        ],
        "{alerts:?}"
    );
}

#[test]
fn a_detector_without_rules_is_idle_until_a_reload_brings_some() {
    let (tx, rx) = std::sync::mpsc::channel();
    let out = Shared::default();
    let mut d = Run::new(Detector::new(rule_set("")).with_updates(rx), &out);
    assert!(!d.has_rules(), "the pipeline builds no packet views for it");
    // While idle the pipeline only ticks it: no packet is observed.
    for s in 1..=5 {
        d.tick(secs(f64::from(s)));
    }
    tx.send(rule_set(FLOOD)).unwrap();
    d.tick(secs(6.0));
    assert!(d.has_rules());
    flood(&mut d, 6, 12, 200);
    let alerts = emitted(&out);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].state, AlertState::Firing);
    assert!(
        (alerts[0].time - 9.0).abs() < 1e-6,
        "as with the rule from the start: first window over at 7 s, then `for`: {}",
        alerts[0].time
    );
}

/// A TCP packet from `src` to the protected `dst` with `flags`, whose flow the table
/// left in `state` (from `previous`), `answered` or not, sent by the initiator or not.
fn tcp(
    ts: f64,
    (src, dst): (IpAddr, IpAddr),
    flags: u8,
    (previous, state): (crate::flow::TcpState, crate::flow::TcpState),
    (answered, initiator): (bool, bool),
) -> PacketView<'static> {
    let mut p = udp(ts, src, dst);
    if matches!(src, IpAddr::V4(a) if a.octets()[..2] == [10, 0]) {
        p.placement = Placement {
            src: Some(0),
            dst: None,
        };
        p.direction = Direction::Outbound;
    }
    p.protocol = crate::decode::ip_protocol::TCP;
    p.dst_port = 80;
    p.tcp_flags = Some(TcpFlags(flags));
    p.flow = p.flow.map(|f| FlowUpdate {
        created: previous == crate::flow::TcpState::None,
        state,
        previous_state: previous,
        is_answered: answered,
        is_initiator_side: initiator,
        ..f
    });
    p
}

/// A DNS query for `name` (dotted) from `src`, in wire form (the name's bytes leak: tests
/// only).
fn dns_query(ts: f64, src: IpAddr, name: &str) -> PacketView<'static> {
    let mut wire = Vec::new();
    for label in name.split('.') {
        wire.push(u8::try_from(label.len()).unwrap());
        wire.extend_from_slice(label.as_bytes());
    }
    let mut p = udp(ts, src, ip("10.0.0.53"));
    p.dns = Some(crate::decode::DnsRepr {
        id: 1,
        is_response: false,
        opcode: 0,
        rcode: 0,
        question_count: 1,
        answer_count: 0,
        authority_count: 0,
        additional_count: 0,
        question: Some(crate::decode::DnsQuestion {
            name: crate::decode::DnsName {
                wire: Vec::leak(wire),
                is_compressed: false,
            },
            qtype: 16,
            qclass: 1,
        }),
        message_len: 80,
    });
    p
}

#[test]
fn unanswered_traffic_skips_conversations_and_takes_back_completed_handshakes() {
    for protocol in ["tcp", "tcp_syn"] {
        unanswered_tcp_skips_conversations_and_takes_back_completed_handshakes(protocol);
    }
}

fn unanswered_tcp_skips_conversations_and_takes_back_completed_handshakes(protocol: &str) {
    use crate::flow::TcpState::{Established, None as Fresh, SynReceived, SynSent};
    let rules = &format!(
        r#"
[[rules]]
name = "tcp_flood"
kind = "volume"
scope = "protected"
severity = "critical"
threshold = 100
protocol = "{protocol}"
traffic = "unanswered"
"#
    );
    let (victim, server) = (ip("10.0.0.1"), ip("198.51.100.7"));
    let run = |packets: &dyn Fn(u32, f64) -> Vec<PacketView<'static>>| {
        let (mut d, out) = detector(rules);
        for i in 0..1000u32 {
            for p in packets(i, f64::from(i) / 1000.0) {
                d.observe(&p);
            }
        }
        d.tick(secs(1.0));
        emitted(&out)
    };
    // A download: 1000 data packets/s of one answered, established flow, both ways.
    let download = run(&|_, t| {
        let live = (Established, Established);
        vec![
            tcp(t, (server, victim), TcpFlags::ACK, live, (true, false)),
            tcp(t, (victim, server), TcpFlags::ACK, live, (true, true)),
        ]
    });
    assert!(download.is_empty(), "{protocol}: {download:?}");
    // A busy server: 1000 new connections/s, each completed by the client.
    let busy = run(&|i, t| {
        let client = IpAddr::from([198, 51, 100, u8::try_from(i % 200).unwrap()]);
        vec![
            tcp(
                t,
                (client, victim),
                TcpFlags::SYN,
                (Fresh, SynSent),
                (false, true),
            ),
            tcp(
                t,
                (victim, client),
                TcpFlags::SYN | TcpFlags::ACK,
                (SynSent, SynReceived),
                (true, false),
            ),
            tcp(
                t,
                (client, victim),
                TcpFlags::ACK,
                (SynReceived, Established),
                (true, true),
            ),
        ]
    });
    assert!(
        busy.is_empty(),
        "{protocol}: a completed handshake takes its SYN back: {busy:?}"
    );
    // A SYN flood the victim answers (SYN cookies) but nobody completes.
    let flood = run(&|i, t| {
        let spoofed = IpAddr::from([
            203,
            0,
            u8::try_from(i / 256).unwrap(),
            u8::try_from(i % 256).unwrap(),
        ]);
        vec![
            tcp(
                t,
                (spoofed, victim),
                TcpFlags::SYN,
                (Fresh, SynSent),
                (false, true),
            ),
            tcp(
                t,
                (victim, spoofed),
                TcpFlags::SYN | TcpFlags::ACK,
                (SynSent, SynReceived),
                (true, false),
            ),
        ]
    });
    assert_eq!(flood.len(), 1, "{protocol}: {flood:?}");
    assert_eq!(flood[0].dst, Some(victim), "only the protected victim");
    assert!((flood[0].value - 1000.0).abs() < 1.0, "{}", flood[0].value);
    assert!(
        !flood[0]
            .contributors
            .iter()
            .any(|c| c.kind == crate::alert::ContributorKind::Source),
        "one SYN per source names no source: {:?}",
        flood[0].contributors
    );
}

#[test]
fn a_tunnel_alert_carries_its_domain_so_two_domains_are_two_alerts() {
    let (mut d, out) = detector(
        r#"
[[rules]]
name = "dns_tunnel"
kind = "dns_tunnel"
severity = "warning"
threshold = 3
annotations = { summary = "DNS tunnel to {{ domain }}" }
"#,
    );
    let client = ip("10.0.0.7");
    for (i, label) in [
        "dGhpcyBpcyBlbmNvZGVkIGRhdGE",
        "c2Vjb25kIGNodW5rIG9mIGRhdGE",
        "dGhpcmQgY2h1bmsgb2YgZGF0YQ",
    ]
    .iter()
    .enumerate()
    {
        let t = f64::from(u32::try_from(i).unwrap());
        d.observe(&dns_query(t, client, &format!("{label}.t.example.com")));
        d.observe(&dns_query(
            t + 0.5,
            client,
            &format!("{label}.x.example.org"),
        ));
    }
    d.tick(secs(4.0));
    let mut domains: Vec<(Option<String>, String)> = emitted(&out)
        .into_iter()
        .map(|a| (a.domain, a.annotations["summary"].clone()))
        .collect();
    domains.sort();
    assert_eq!(
        domains,
        [
            (
                Some("example.com".to_owned()),
                "DNS tunnel to example.com".to_owned()
            ),
            (
                Some("example.org".to_owned()),
                "DNS tunnel to example.org".to_owned()
            ),
        ]
    );
}

#[test]
fn a_domain_from_packets_leaves_escaped_in_every_field() {
    let (mut d, out) = detector(
        r#"
[[rules]]
name = "dns_tunnel"
kind = "dns_tunnel"
severity = "warning"
threshold = 2
annotations = { summary = "DNS tunnel to {{ domain }}" }
"#,
    );
    for (t, label) in [
        (0.0, "dGhpcyBpcyBlbmNvZGVkIGRhdGE"),
        (1.0, "c2Vjb25kIGNodW5rIG9mIGRhdGE"),
    ] {
        let name = format!("{label}.x\n<b>y\".com");
        d.observe(&dns_query(t, ip("10.0.0.7"), &name));
    }
    d.tick(secs(3.0));
    let alerts = emitted(&out);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    let escaped = "x\\010\\060b\\062y\\034.com";
    assert_eq!(alert.domain.as_deref(), Some(escaped));
    assert_eq!(alert.contributors[0].value, escaped);
    assert_eq!(
        alert.annotations["summary"],
        format!("DNS tunnel to {escaped}")
    );
}

#[test]
fn a_blocklist_that_is_a_fifo_or_past_the_entry_cap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("list.txt");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    // Nobody writes to the FIFO: reading it would wait for ever.
    let errors = RuleSet::build(&config(&blocklist_rules(&fifo)))
        .unwrap_err()
        .to_string();
    assert_eq!(
        errors,
        format!(
            "{}: rule `blocklisted`: blocklist: not a regular file (a FIFO)",
            fifo.display()
        )
    );
    let big = dir.path().join("big.txt");
    let mut text = String::new();
    for i in 0..=super::addr_set::MAX_ENTRIES {
        let [_, a, b, c] = u32::try_from(i).unwrap().to_be_bytes();
        std::fmt::Write::write_fmt(&mut text, format_args!("10.{a}.{b}.{c}\n")).unwrap();
    }
    std::fs::write(&big, text).unwrap();
    let errors = RuleSet::build(&config(&blocklist_rules(&big)))
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains(&format!(
            "{}: more than {} entries",
            big.display(),
            super::addr_set::MAX_ENTRIES
        )),
        "{errors}"
    );
}
