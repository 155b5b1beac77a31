//! The shipped Prometheus rules and Alertmanager config, checked by the real tools:
//! `promtool check rules` and `promtool test rules` (Debian package `prometheus`),
//! `amtool check-config` and `amtool config routes test` (`prometheus-alertmanager`).

// Test code: a failed unwrap or panic is a failed test.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Proc, free_port, http_request, wait_for};

fn dashboards() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

/// Runs `tool args` in `dir`, panicking with its output unless it succeeds; returns stdout.
fn run_ok(tool: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool} ({e}); scripts/test.sh installs it"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{tool} {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn alerting_rules_pass_promtool_check() {
    let out = run_ok(
        "promtool",
        &["check", "rules", "netwarden-rules.yml"],
        &dashboards().join("prometheus"),
    );
    assert!(out.contains("SUCCESS: 11 rules found"), "{out}");
}

#[test]
fn every_alerting_rule_has_a_passing_unit_test() {
    let dir = dashboards().join("prometheus");
    run_ok(
        "promtool",
        &["test", "rules", "netwarden-rules.test.yml"],
        &dir,
    );
    let rules = std::fs::read_to_string(dir.join("netwarden-rules.yml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("netwarden-rules.test.yml")).unwrap();
    let names: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(names.len(), 11, "{names:?}");
    for name in names {
        // A test that expects the alert to fire names it with its labels.
        let firing = tests
            .split("alertname: ")
            .skip(1)
            .any(|case| case.starts_with(name) && case.contains("exp_labels"));
        assert!(firing, "no firing unit test for {name}");
    }
}

#[test]
fn fleet_rules_pass_promtool_check_and_their_unit_tests() {
    let dir = dashboards().join("prometheus");
    let out = run_ok("promtool", &["check", "rules", "netwarden-fleet.yml"], &dir);
    assert!(out.contains("SUCCESS: 10 rules found"), "{out}");
    run_ok(
        "promtool",
        &["test", "rules", "netwarden-fleet.test.yml"],
        &dir,
    );
    let rules = std::fs::read_to_string(dir.join("netwarden-fleet.yml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("netwarden-fleet.test.yml")).unwrap();
    let mut names: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    names.dedup();
    assert_eq!(names.len(), 2, "{names:?}");
    for name in names {
        let firing = tests
            .split("alertname: ")
            .skip(1)
            .any(|case| case.starts_with(name) && case.contains("exp_labels"));
        assert!(firing, "no firing unit test for {name}");
    }
    // Every recording rule's output is checked by a promql_expr_test.
    for record in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record: "))
    {
        let checked = record.starts_with("network_direction:netwarden_network_bytes")
            || record.starts_with("host_group_direction:netwarden_network_bytes")
            || tests.contains(&format!("expr: {record}"));
        assert!(checked, "recording rule {record} is not tested");
    }
}

#[test]
fn scrape_config_example_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dashboards().join("prometheus");
    // The example points rule_files at the installed path; check it against the repo copy.
    let config = std::fs::read_to_string(dashboards().join("prometheus/scrape.yml"))
        .unwrap()
        .replace("/etc/prometheus/rules", rules.to_str().unwrap());
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    run_ok(
        "promtool",
        &["check", "config", "prometheus.yml"],
        dir.path(),
    );
}

#[test]
fn alertmanager_config_passes_amtool_check() {
    let out = run_ok(
        "amtool",
        &["check-config", "alertmanager.yml"],
        &dashboards().join("alertmanager"),
    );
    assert!(out.contains("6 inhibit rules"), "{out}");
}

#[test]
fn alerts_route_by_protection_level_then_severity() {
    let dir = dashboards().join("alertmanager");
    for (labels, receiver) in [
        (
            &["severity=emergency", "rule=syn_flood", "protection_level=4"][..],
            "page",
        ),
        (
            &["severity=critical", "rule=port_scan", "protection_level=5"][..],
            "page",
        ),
        (
            &["severity=critical", "rule=syn_flood", "protection_level=2"][..],
            "soc",
        ),
        (
            &["severity=warning", "rule=port_scan", "protection_level=1"][..],
            "soc",
        ),
        (
            &["severity=info", "rule=new_talker", "protection_level=5"][..],
            "log",
        ),
        (&["severity=emergency", "rule=syn_flood"][..], "page"),
        (&["severity=critical", "component=netwarden"][..], "page"),
        (&["severity=warning", "rule=port_scan"][..], "channel"),
        (&["severity=info", "rule=new_talker"][..], "log"),
        (&["alertname=Unlabelled"][..], "log"),
    ] {
        let mut args = vec!["config", "routes", "test", "--config.file=alertmanager.yml"];
        args.extend_from_slice(labels);
        let out = run_ok("amtool", &args, &dir);
        assert_eq!(out.trim(), receiver, "{labels:?}");
    }
    // Level 4 and 5 page at once; the SOC channel waits to group.
    let config = std::fs::read_to_string(dir.join("alertmanager.yml")).unwrap();
    let route = |level: &str| {
        let at = config
            .find(&format!("['protection_level=~\"{level}\"'"))
            .unwrap();
        config[at..].lines().nth(2).unwrap().trim().to_owned()
    };
    assert_eq!(route("4|5"), "group_wait: 0s");
    assert_eq!(route("1|2|3"), "group_wait: 30s");
}

/// (alertname, severity, kind label, target label, target, inhibited).
type InhibitionCase = (
    &'static str,
    &'static str,
    (&'static str, &'static str),
    &'static str,
    &'static str,
    bool,
);

/// The alerts posted to Alertmanager, each with whether it must end up inhibited.
const INHIBITION_CASES: [InhibitionCase; 6] = [
    // Self-alerts: gw1 is down, so its drop warning is muted; gw2's is not.
    (
        "NetwardenDown",
        "critical",
        ("component", "netwarden"),
        "instance",
        "gw1:9847",
        false,
    ),
    (
        "NetwardenCaptureDropping",
        "warning",
        ("component", "netwarden"),
        "instance",
        "gw1:9847",
        true,
    ),
    (
        "NetwardenCaptureDropping",
        "warning",
        ("component", "netwarden"),
        "instance",
        "gw2:9847",
        false,
    ),
    // Detection: an emergency flood on 192.0.2.10 mutes a warning about the same target,
    // whatever the rule; a warning about another target stays.
    (
        "NetwardenSynFlood",
        "emergency",
        ("rule", "syn_flood"),
        "dst",
        "192.0.2.10",
        false,
    ),
    (
        "NetwardenTcpFlood",
        "warning",
        ("rule", "tcp_flood"),
        "dst",
        "192.0.2.10",
        true,
    ),
    (
        "NetwardenTcpFlood",
        "warning",
        ("rule", "tcp_flood"),
        "dst",
        "192.0.2.99",
        false,
    ),
];

/// (alertname, target, inhibited) of every alert Alertmanager holds, sorted.
fn alert_states(port: u16) -> Option<Vec<(String, String, bool)>> {
    let (_, body) = http_request(port, "GET", "/api/v2/alerts", "")?;
    let list: serde_json::Value = serde_json::from_str(&body).ok()?;
    let mut states: Vec<_> = list
        .as_array()?
        .iter()
        .map(|a| {
            let labels = &a["labels"];
            let target = labels["instance"]
                .as_str()
                .or_else(|| labels["dst"].as_str())
                .unwrap_or_default()
                .to_owned();
            let inhibited = a["status"]["inhibitedBy"]
                .as_array()
                .is_some_and(|v| !v.is_empty());
            let name = labels["alertname"].as_str().unwrap_or_default().to_owned();
            (name, target, inhibited)
        })
        .collect();
    states.sort();
    Some(states)
}

#[test]
fn higher_severity_inhibits_lower_for_the_same_target_only() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _am = Proc(
        Command::new("prometheus-alertmanager")
            .arg(format!(
                "--config.file={}",
                dashboards().join("alertmanager/alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", dir.path().display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // A lone instance: no gossip port to collide with parallel runs.
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start prometheus-alertmanager ({e})")),
    );
    let alerts: Vec<serde_json::Value> = INHIBITION_CASES
        .iter()
        .map(|(name, severity, (kind, value), target_label, target, _)| {
            serde_json::json!({ "labels": {
                "alertname": name, "severity": severity, *kind: value, *target_label: target,
            }})
        })
        .collect();
    let body = serde_json::Value::from(alerts).to_string();
    let posted = wait_for(30, || {
        http_request(port, "POST", "/api/v2/alerts", &body).filter(|(s, _)| *s == 200)
    });
    assert!(posted.is_some(), "Alertmanager never accepted the alerts");
    let mut expected: Vec<_> = INHIBITION_CASES
        .iter()
        .map(|(name, _, _, _, target, inhibited)| {
            ((*name).to_owned(), (*target).to_owned(), *inhibited)
        })
        .collect();
    expected.sort();
    let mut last = None;
    let settled = wait_for(30, || {
        last = alert_states(port);
        (last.as_ref() == Some(&expected)).then_some(())
    });
    assert!(settled.is_some(), "inhibition differs: {last:?}");
}
