//! Detector tests of graded protection: an alert's severity and asset labels come from
//! the host group at its key's address (or the rule's group scope, or the defaults), its
//! annotations can name them, and a reload that changes the groups ends the old alerts.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::alert::{Alert, AlertState, Severity};
use crate::timestamp::Timestamp;

/// Host groups every test uses: `db` (level 4, core) inside `office` (level unset).
const GROUPS: &str = r#"
[[networks]]
name = "lan"
cidrs = ["10.0.0.0/16"]
[[host_groups]]
name = "office"
cidrs = ["10.0.0.0/16"]
[[host_groups]]
name = "db"
cidrs = ["10.0.5.0/24"]
protection_level = 4
data_grade = "core"
"#;

const FLOOD: &str = r#"
[[rules]]
name = "udp_flood"
kind = "volume"
severity = "critical"
threshold = 100
protocol = "udp"
resolve_delay = "2s"
annotations = { summary = "{{ host_group }} level {{ protection_level }} ({{ data_grade }}): {{ severity }}" }
"#;

fn rules(text: &str) -> Arc<RuleSet> {
    let config = crate::config::parse(text, Path::new("t.toml")).unwrap();
    Arc::new(RuleSet::build(&config).unwrap())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// 200 UDP packets a second to `dst` for seconds `from..to`, ticking every second;
/// returns the transitions.
fn flood(d: &mut Detector, dst: &str, from: u64, to: u64) -> Vec<Alert> {
    let mut out = Evaluation::default();
    for s in from..to {
        for i in 0..200 {
            let ts = Timestamp::from_nanos(s * 1_000_000_000 + i * 5_000_000);
            d.observe(&PacketView::test_udp(ts, ip("198.51.100.1"), ip(dst)));
        }
        d.tick(Timestamp::from_nanos((s + 1) * 1_000_000_000), &mut out);
    }
    out.alerts
}

fn labels(a: &Alert) -> [&str; 3] {
    ["host_group", "protection_level", "data_grade"].map(|k| a.labels[k].as_str())
}

#[test]
fn an_alert_takes_the_severity_and_labels_of_its_victims_host_group() {
    let mut d = Detector::new(rules(&format!("{GROUPS}{FLOOD}")));
    let db = flood(&mut d, "10.0.5.7", 0, 2);
    assert_eq!(db.len(), 1, "{db:?}");
    assert_eq!(db[0].severity, Severity::Emergency);
    assert_eq!(labels(&db[0]), ["db", "4", "core"]);
    assert_eq!(db[0].annotations["summary"], "db level 4 (core): emergency");
    let office = flood(&mut d, "10.0.6.7", 2, 4);
    let fired: Vec<&Alert> = office
        .iter()
        .filter(|a| a.state == AlertState::Firing)
        .collect();
    assert_eq!(fired.len(), 1, "{office:?}");
    assert_eq!(fired[0].severity, Severity::Critical);
    assert_eq!(labels(fired[0]), ["office", "2", "general"]);
}

#[test]
fn a_network_keyed_rule_takes_its_scope_group_and_an_unscoped_one_the_defaults() {
    let rule = |scope: &str| {
        format!(
            "{GROUPS}[protection]\ndefault_level = 3\n[[rules]]\nname = \"net\"\nkind = \"volume\"\n\
             severity = \"warning\"\nthreshold = 100\nkey = \"network\"\nscope = \"{scope}\"\n"
        )
    };
    let mut d = Detector::new(rules(&rule("db")));
    let a = flood(&mut d, "10.0.5.7", 0, 2);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(
        (a[0].severity, labels(&a[0])),
        (Severity::Critical, ["db", "4", "core"])
    );
    let mut d = Detector::new(rules(&rule("protected")));
    let a = flood(&mut d, "10.0.5.7", 0, 2);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(
        (a[0].severity, labels(&a[0])),
        (Severity::Warning, ["ungrouped", "3", "general"])
    );
}

#[test]
fn a_reload_that_changes_a_groups_level_ends_the_alert_under_its_old_labels() {
    let mut d = Detector::new(rules(&format!("{GROUPS}{FLOOD}")));
    let before = flood(&mut d, "10.0.5.7", 0, 2);
    assert_eq!(labels(&before[0]), ["db", "4", "core"]);
    let mut out = Evaluation::default();
    let lowered = GROUPS.replace("protection_level = 4", "protection_level = 3");
    d.reload(
        rules(&format!("{lowered}{FLOOD}")),
        Timestamp::from_nanos(2_000_000_000),
        &mut out,
    );
    assert_eq!(out.alerts.len(), 1, "{:?}", out.alerts);
    assert_eq!(out.alerts[0].state, AlertState::Resolved);
    assert_eq!(
        out.alerts[0].severity,
        Severity::Emergency,
        "as it was sent"
    );
    assert_eq!(labels(&out.alerts[0]), ["db", "4", "core"]);
    let after = flood(&mut d, "10.0.5.7", 2, 4);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].state, AlertState::Firing);
    assert_eq!(after[0].severity, Severity::Critical);
    assert_eq!(labels(&after[0]), ["db", "3", "core"]);
}

#[test]
fn a_reload_with_the_same_groups_keeps_the_alert() {
    let text = format!("{GROUPS}{FLOOD}");
    let mut d = Detector::new(rules(&text));
    assert_eq!(flood(&mut d, "10.0.5.7", 0, 2).len(), 1);
    let mut out = Evaluation::default();
    d.reload(rules(&text), Timestamp::from_nanos(2_000_000_000), &mut out);
    assert!(out.alerts.is_empty(), "{:?}", out.alerts);
    assert!(
        flood(&mut d, "10.0.5.7", 2, 4).is_empty(),
        "still the same alert"
    );
}
