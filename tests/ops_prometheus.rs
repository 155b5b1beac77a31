//! The shipped Prometheus rules and Alertmanager config, checked by the real tools:
//! `promtool check rules` and `promtool test rules` (Debian package `prometheus`),
//! `amtool check-config` and `amtool config routes test` (`prometheus-alertmanager`).

// Test code: a failed unwrap or panic is a failed test.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Proc, free_port, http_request, wait_for};
use netwarden::vocabulary::{RuleKind, Severity};

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
    assert!(out.contains("SUCCESS: 10 rules found"), "{out}");
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
    assert_eq!(names.len(), 10, "{names:?}");
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

/// Where the example config sends an alert of `kind` and `severity`, about an asset of
/// `level` (detections only): self-alerts by severity; detections page on an emergency or
/// a level-4/5 asset, else go to the SOC; info is logged.
fn expected_receiver(kind: &str, severity: Severity, level: Option<u8>) -> &'static str {
    match (kind, severity) {
        (_, Severity::Info) => "log",
        ("self", Severity::Warning) => "channel",
        ("self", _) | (_, Severity::Emergency) => "page",
        _ if level.is_some_and(|l| l >= 4) => "page",
        _ => "soc",
    }
}

#[test]
fn alerts_route_by_kind_protection_level_and_severity() {
    let dir = dashboards().join("alertmanager");
    let route = |labels: &[String]| {
        let mut args = vec!["config", "routes", "test", "--config.file=alertmanager.yml"];
        args.extend(labels.iter().map(String::as_str));
        run_ok("amtool", &args, &dir).trim().to_owned()
    };
    let levels = [None, Some(1), Some(2), Some(3), Some(4), Some(5)];
    let mut kinds: Vec<&str> = RuleKind::ALL.iter().map(|k| k.as_str()).collect();
    kinds.extend(["fleet", "self"]);
    for (i, kind) in kinds.iter().enumerate() {
        for (j, severity) in Severity::ALL.into_iter().enumerate() {
            // Every kind and severity, the protection levels in turn (self-alerts have none).
            let level = if *kind == "self" {
                None
            } else {
                levels.get((i + j) % levels.len()).copied().flatten()
            };
            let mut labels = vec![
                format!("kind={kind}"),
                format!("severity={}", severity.as_str()),
            ];
            labels.extend(level.map(|l| format!("protection_level={l}")));
            let want = expected_receiver(kind, severity, level);
            assert_eq!(route(&labels), want, "{labels:?}");
        }
    }
    // Every level with every severity, for one detection kind.
    for level in levels {
        for severity in Severity::ALL {
            let mut labels = vec![
                "kind=syn_flood".to_owned(),
                format!("severity={}", severity.as_str()),
            ];
            labels.extend(level.map(|l| format!("protection_level={l}")));
            let want = expected_receiver("syn_flood", severity, level);
            assert_eq!(route(&labels), want, "{labels:?}");
        }
    }
    // Alerts from elsewhere (no kind) are only logged.
    assert_eq!(
        route(&["alertname=Foreign".into(), "severity=critical".into()]),
        "log"
    );
    // Level 4 and 5 page at once; the SOC channel waits to group.
    let config = std::fs::read_to_string(dir.join("alertmanager.yml")).unwrap();
    let wait_after = |matchers: &str| {
        let at = config.find(matchers).unwrap();
        config[at..].lines().nth(2).unwrap().trim().to_owned()
    };
    assert_eq!(
        wait_after(r#"['protection_level=~"4|5"', 'severity=~"critical|warning"']"#),
        "group_wait: 0s"
    );
    assert_eq!(
        wait_after(r#"['severity=~"critical|warning"']"#),
        "group_wait: 30s"
    );
}

/// One alert posted to Alertmanager: its `case` label, its labels, and whether it must end
/// up inhibited.
struct Posted {
    case: &'static str,
    labels: &'static [(&'static str, &'static str)],
    inhibited: bool,
}

/// A detection alert's labels: a flood on 192.0.2.10 in the dmz, level 3.
const FLOOD: &[(&str, &str)] = &[
    ("alertname", "NetwardenUdpFlood"),
    ("rule", "udp_flood"),
    ("kind", "volume"),
    ("severity", "critical"),
    ("dst", "192.0.2.10"),
    ("network", "dmz"),
    ("host_group", "web"),
    ("protection_level", "3"),
    ("protocol", "udp"),
];

/// The alert combinations that once hid attacks or health problems, and the mutes that
/// are intended.
const POSTED: &[Posted] = &[
    Posted {
        case: "critical flood on a dmz victim",
        labels: FLOOD,
        inhibited: false,
    },
    // A network-keyed baseline alert of another network is another thing.
    Posted {
        case: "warning baseline of the office network",
        labels: &[
            ("alertname", "NetwardenOfficeBaseline"),
            ("rule", "office_baseline"),
            ("kind", "baseline"),
            ("severity", "warning"),
            ("network", "office"),
            ("host_group", "office"),
            ("protection_level", "2"),
        ],
        inhibited: false,
    },
    // A self-alert naming the flood rule is not about the flood's victim.
    Posted {
        case: "detection state full for the flood rule",
        labels: &[
            ("alertname", "NetwardenDetectionStateFull"),
            ("rule", "netwarden_detection_state_full"),
            ("kind", "self"),
            ("component", "netwarden"),
            ("severity", "warning"),
            ("instance", "gw1"),
            ("detection_rule", "udp_flood"),
        ],
        inhibited: false,
    },
    // The same victim and protocol, another rule with the same key: muted by the
    // critical flood.
    Posted {
        case: "warning udp volume on the flood's victim",
        labels: &[
            ("alertname", "NetwardenUdpVolume"),
            ("rule", "udp_volume"),
            ("kind", "volume"),
            ("severity", "warning"),
            ("dst", "192.0.2.10"),
            ("network", "dmz"),
            ("host_group", "web"),
            ("protection_level", "3"),
            ("protocol", "udp"),
        ],
        inhibited: true,
    },
    // The same victim over every protocol (no `protocol` key): another key, not muted.
    Posted {
        case: "warning baseline on the flood's victim",
        labels: &[
            ("alertname", "NetwardenHostBaseline"),
            ("rule", "host_baseline"),
            ("kind", "baseline"),
            ("severity", "warning"),
            ("dst", "192.0.2.10"),
            ("network", "dmz"),
            ("host_group", "web"),
            ("protection_level", "3"),
        ],
        inhibited: false,
    },
    // A reflection through another service on the same victim is another attack.
    Posted {
        case: "warning reflection of another service on the flood's victim",
        labels: &[
            ("alertname", "NetwardenReflection"),
            ("rule", "reflection"),
            ("kind", "reflection"),
            ("severity", "warning"),
            ("dst", "192.0.2.10"),
            ("network", "dmz"),
            ("host_group", "web"),
            ("protection_level", "3"),
            ("service", "udp/123 (ntp)"),
        ],
        inhibited: false,
    },
    // A scan of the same victim by a known source has another key (src).
    Posted {
        case: "warning scan of the flood's victim",
        labels: &[
            ("alertname", "NetwardenPortScan"),
            ("rule", "port_scan"),
            ("kind", "port_scan"),
            ("severity", "warning"),
            ("src", "198.51.100.7"),
            ("dst", "192.0.2.10"),
            ("network", "dmz"),
            ("host_group", "web"),
            ("protection_level", "3"),
        ],
        inhibited: false,
    },
    // Delivery failing to a sink says nothing about an interface's drops.
    Posted {
        case: "critical delivery failure on gw2",
        labels: &[
            ("alertname", "NetwardenAlertDeliveryFailing"),
            ("rule", "netwarden_alert_delivery_failing"),
            ("kind", "self"),
            ("component", "netwarden"),
            ("severity", "critical"),
            ("instance", "gw2"),
            ("sink", "alertmanager"),
        ],
        inhibited: false,
    },
    Posted {
        case: "capture drops on gw2 eth0",
        labels: &[
            ("alertname", "NetwardenCaptureDropping"),
            ("rule", "netwarden_capture_dropping"),
            ("kind", "self"),
            ("component", "netwarden"),
            ("severity", "warning"),
            ("instance", "gw2"),
            ("interface", "eth0"),
        ],
        inhibited: false,
    },
    // A silent interface mutes the same interface's drops, not another's.
    Posted {
        case: "silent gw1 eth0",
        labels: &[
            ("alertname", "NetwardenInterfaceSilent"),
            ("rule", "netwarden_interface_silent"),
            ("kind", "self"),
            ("component", "netwarden"),
            ("severity", "critical"),
            ("instance", "gw1"),
            ("interface", "eth0"),
        ],
        inhibited: false,
    },
    Posted {
        case: "capture drops on gw1 eth0",
        labels: &[
            ("alertname", "NetwardenCaptureDropping"),
            ("rule", "netwarden_capture_dropping"),
            ("kind", "self"),
            ("component", "netwarden"),
            ("severity", "warning"),
            ("instance", "gw1"),
            ("interface", "eth0"),
        ],
        inhibited: true,
    },
    Posted {
        case: "capture drops on gw1 eth1",
        labels: &[
            ("alertname", "NetwardenCaptureDropping"),
            ("rule", "netwarden_capture_dropping"),
            ("kind", "self"),
            ("component", "netwarden"),
            ("severity", "warning"),
            ("instance", "gw1"),
            ("interface", "eth1"),
        ],
        inhibited: false,
    },
    // Prometheus's view: a target down mutes that target's instance-wide warnings only.
    Posted {
        case: "gw3 down",
        labels: &[
            ("alertname", "NetwardenDown"),
            ("kind", "self"),
            ("component", "netwarden"),
            ("severity", "critical"),
            ("job", "netwarden"),
            ("instance", "gw3:9847"),
        ],
        inhibited: false,
    },
    Posted {
        case: "gw3 reload failed",
        labels: &[
            ("alertname", "NetwardenConfigReloadFailed"),
            ("kind", "self"),
            ("component", "netwarden"),
            ("severity", "warning"),
            ("instance", "gw3:9847"),
        ],
        inhibited: true,
    },
    Posted {
        case: "gw4 reload failed",
        labels: &[
            ("alertname", "NetwardenConfigReloadFailed"),
            ("kind", "self"),
            ("component", "netwarden"),
            ("severity", "warning"),
            ("instance", "gw4:9847"),
        ],
        inhibited: false,
    },
    // With [self_alerts] instance set to the scrape address, the daemon's alert mutes
    // Prometheus's about the same interface, and only that.
    Posted {
        case: "gw3 eth0 silent, from the daemon",
        labels: &[
            ("alertname", "NetwardenInterfaceSilent"),
            ("rule", "netwarden_interface_silent"),
            ("kind", "self"),
            ("component", "netwarden"),
            ("severity", "critical"),
            ("instance", "gw3:9847"),
            ("interface", "eth0"),
        ],
        inhibited: false,
    },
    Posted {
        case: "gw3 eth0 decode errors, from Prometheus",
        labels: &[
            ("alertname", "NetwardenDecodeErrorsSpiking"),
            ("kind", "self"),
            ("component", "netwarden"),
            ("severity", "warning"),
            ("instance", "gw3:9847"),
            ("interface", "eth0"),
        ],
        inhibited: true,
    },
    Posted {
        case: "gw3 eth1 decode errors, from Prometheus",
        labels: &[
            ("alertname", "NetwardenDecodeErrorsSpiking"),
            ("kind", "self"),
            ("component", "netwarden"),
            ("severity", "warning"),
            ("instance", "gw3:9847"),
            ("interface", "eth1"),
        ],
        inhibited: false,
    },
    // A self-alert with no key at all mutes neither detections nor foreign alerts.
    Posted {
        case: "no netwarden target",
        labels: &[
            ("alertname", "NetwardenAbsent"),
            ("kind", "self"),
            ("component", "netwarden"),
            ("severity", "critical"),
            ("job", "netwarden"),
        ],
        inhibited: false,
    },
    Posted {
        case: "foreign warning without kind",
        labels: &[("alertname", "DiskFull"), ("severity", "warning")],
        inhibited: false,
    },
    Posted {
        case: "fleet surge of another host group",
        labels: &[
            ("alertname", "NetwardenFleetHostGroupSurge"),
            ("kind", "fleet"),
            ("severity", "info"),
            ("host_group", "db"),
            ("protection_level", "5"),
        ],
        inhibited: false,
    },
];

/// (case, inhibited) of every alert Alertmanager holds, sorted.
fn alert_states(port: u16) -> Option<Vec<(String, bool)>> {
    let (_, body) = http_request(port, "GET", "/api/v2/alerts", "")?;
    let list: serde_json::Value = serde_json::from_str(&body).ok()?;
    let mut states: Vec<_> = list
        .as_array()?
        .iter()
        .map(|a| {
            let case = a["labels"]["case"].as_str().unwrap_or_default().to_owned();
            let inhibited = a["status"]["inhibitedBy"]
                .as_array()
                .is_some_and(|v| !v.is_empty());
            (case, inhibited)
        })
        .collect();
    states.sort();
    Some(states)
}

#[test]
fn inhibition_mutes_only_lower_severity_alerts_with_the_same_identity() {
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
    let alerts: Vec<serde_json::Value> = POSTED
        .iter()
        .map(|p| {
            let mut labels: serde_json::Map<String, serde_json::Value> = p
                .labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).into()))
                .collect();
            labels.insert("case".into(), p.case.into());
            serde_json::json!({ "labels": labels })
        })
        .collect();
    let body = serde_json::Value::from(alerts).to_string();
    let posted = wait_for(30, || {
        http_request(port, "POST", "/api/v2/alerts", &body).filter(|(s, _)| *s == 200)
    });
    assert!(posted.is_some(), "Alertmanager never accepted the alerts");
    let mut expected: Vec<_> = POSTED
        .iter()
        .map(|p| (p.case.to_owned(), p.inhibited))
        .collect();
    expected.sort();
    let mut last = None;
    let settled = wait_for(30, || {
        last = alert_states(port);
        (last.as_ref() == Some(&expected)).then_some(())
    });
    assert!(
        settled.is_some(),
        "inhibition differs:\nwant {expected:?}\ngot  {last:?}"
    );
}
