//! Self-alerts through the real binary: `netwarden run --pcap` with small caps and
//! short holds, and the JSON-lines alert log (`[alerting] log_file`) as the witness that the
//! self-alerts travel the same path as detections.

// Test code: a failed unwrap or panic is a failed test.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, SystemTime};

use common::{free_port, http_get, metric_sum, netwarden, pcaps_dir, stop, wait_for};
use serde_json::Value;

/// A daemon stopped (and reaped) on drop, so a failed assertion leaves nothing behind.
struct Daemon {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Daemon {
    /// Starts `run --speed max --pcap <pcap>` with a config in `dir` that logs alerts to
    /// `dir/alerts.jsonl` and ends with the tables in `extra`.
    fn start(dir: &Path, pcap: &str, extra: &str) -> Daemon {
        let port = free_port();
        let log = dir.join("alerts.jsonl");
        let config = dir.join("netwarden.toml");
        std::fs::write(
            &config,
            format!(
                "[daemon]\nstate_directory = \"\"\n\
                 [metrics]\nlisten = \"127.0.0.1:{port}\"\n\
                 [[networks]]\nname = \"victims\"\ncidrs = [\"10.0.0.0/8\"]\n\
                 [alerting]\nlog_file = \"{}\"\ninitial_backoff = \"50ms\"\n\
                 max_backoff = \"200ms\"\n\
                 {extra}\n",
                log.display()
            ),
        )
        .unwrap();
        let child = netwarden()
            .args(["run", "--speed", "max", "--config"])
            .arg(&config)
            .arg("--pcap")
            .arg(pcaps_dir().join(pcap))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Daemon { child, port, log }
    }

    /// Every alert transition logged so far.
    fn alerts(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits up to `secs` for a logged transition of `rule` in `state`.
    fn wait_alert(&self, secs: u64, rule: &str, state: &str) -> Value {
        wait_for(secs, || {
            self.alerts()
                .into_iter()
                .find(|a| a["rule"] == rule && a["state"] == state)
        })
        .unwrap_or_else(|| panic!("no {state} {rule} in {:#?}", self.alerts()))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            stop(&mut self.child, "TERM");
        }
    }
}

#[test]
fn full_flow_table_and_silent_capture_are_logged_as_self_alerts() {
    let dir = tempfile::tempdir().unwrap();
    // 7,055 reflectors in 0.15 s: far more flows than the smallest table holds. Short flow
    // timeouts empty it soon after the file ends (packet time then runs on the wall clock).
    let daemon = Daemon::start(
        dir.path(),
        "attacks/stopddos_amp.TCP.reflection.SYNACK.pcap",
        "[flows]\nmax_flows = 1024\n\
         [flows.timeouts]\ntcp_half_open = \"3s\"\ntcp_established = \"3s\"\n\
         tcp_closing = \"3s\"\ntcp_closed = \"3s\"\nudp = \"3s\"\nicmp = \"3s\"\nother = \"3s\"\n\
         [self_alerts]\ninstance = \"gw-test\"\n\
         [self_alerts.flow_table]\nfor = \"1s\"\nresolve_delay = \"1s\"\n\
         [self_alerts.interface_silent]\nsilent_after = \"4s\"\n",
    );
    let full = daemon.wait_alert(20, "netwarden_flow_table_full", "firing");
    assert_eq!(full["kind"], "self");
    assert_eq!(full["severity"], "warning");
    assert_eq!(full["labels"]["worker"], "pcap-0");
    assert_eq!(full["labels"]["instance"], "gw-test");
    assert_eq!(full["labels"]["component"], "netwarden");
    assert_eq!(full["value"], 1024.0);
    assert_eq!(full["threshold"], 1024.0);
    assert!(
        full["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("is full"),
        "{full}"
    );

    // The file is done: its interface label is `pcap`, silent from then on (critical).
    let silent = daemon.wait_alert(20, "netwarden_interface_silent", "firing");
    assert_eq!(silent["severity"], "critical");
    assert_eq!(silent["labels"]["interface"], "pcap");
    assert!(silent["value"].as_f64().unwrap() >= 4.0, "{silent}");
    let (_, metrics) = http_get(daemon.port, "/metrics").unwrap();
    assert_eq!(
        metric_sum(
            &metrics,
            "netwarden_self_alerts_firing",
            &[
                "rule=\"netwarden_interface_silent\"",
                "severity=\"critical\""
            ]
        ),
        1,
        "{metrics}"
    );

    // The flows time out, the table empties, the alert resolves with its firing labels.
    let resolved = daemon.wait_alert(30, "netwarden_flow_table_full", "resolved");
    assert_eq!(resolved["labels"], full["labels"]);
    assert_eq!(resolved["started"], full["started"]);
    // No flapping: one firing and one resolved for the flow table.
    let transitions = daemon
        .alerts()
        .into_iter()
        .filter(|a| a["rule"] == "netwarden_flow_table_full")
        .count();
    assert_eq!(transitions, 2, "{:#?}", daemon.alerts());
}

#[test]
fn stale_blocklist_and_unreachable_webhook_are_logged_as_self_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("blocked.txt");
    std::fs::write(&list, "# test list\n192.0.2.1\n").unwrap();
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&list)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    // Nothing listens there: every delivery attempt fails to connect.
    let closed = free_port();
    let daemon = Daemon::start(
        dir.path(),
        "attacks/esnet_nmap_nmap_80_vanilla.pcap",
        &format!(
            "[[rules]]\nname = \"blocked_peers\"\nkind = \"blocklist\"\nseverity = \"warning\"\n\
             files = [\"blocked.txt\"]\nmax_age = \"1h\"\n\
             [self_alerts.alert_delivery]\nfor = \"1s\"\nwindow = \"5s\"\n\
             [alerting.webhook]\nurl = \"http://127.0.0.1:{closed}/hook\"\n"
        ),
    );
    let stale = daemon.wait_alert(20, "netwarden_blocklist_stale", "firing");
    assert_eq!(stale["severity"], "warning");
    assert_eq!(stale["labels"]["detection_rule"], "blocked_peers");
    assert_eq!(stale["labels"]["file"], list.display().to_string());
    assert!(stale["value"].as_f64().unwrap() >= 7200.0, "{stale}");
    assert_eq!(stale["threshold"], 3600.0);

    // The stale-blocklist alert itself goes to the dead webhook, whose failures then fire.
    let failing = daemon.wait_alert(30, "netwarden_alert_delivery_failing", "firing");
    assert_eq!(failing["severity"], "critical");
    assert_eq!(failing["labels"]["sink"], "webhook");
}

#[test]
fn check_config_names_the_file_line_and_key_of_a_bad_self_alert_setting() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("netwarden.toml");
    std::fs::write(
        &config,
        "[self_alerts]\nenabled = true\n\n[self_alerts.capture_drops]\nmax_ratio = 1.5\n",
    )
    .unwrap();
    let out = netwarden()
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:5:1: key `self_alerts.capture_drops.max_ratio`",
            config.display()
        )),
        "{stderr}"
    );
}

#[test]
fn readme_lists_every_metric_and_self_alert_rule() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut names = Vec::new();
    let mut dirs = vec![root.join("src/telemetry")];
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        for quoted in text.split('"').skip(1).step_by(2) {
            if quoted.starts_with("netwarden_")
                && quoted.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            {
                names.push(quoted.to_owned());
            }
        }
    }
    names.extend(
        netwarden::health::Condition::ALL
            .iter()
            .map(|c| c.rule().to_owned()),
    );
    assert!(names.len() > 40, "{names:?}");
    let missing: Vec<_> = names
        .iter()
        .filter(|n| !readme.contains(&format!("`{n}`")))
        .collect();
    assert!(missing.is_empty(), "README does not list {missing:?}");
}

/// An Alertmanager child process, killed and reaped on drop.
struct Alertmanager(Child);

impl Drop for Alertmanager {
    fn drop(&mut self) {
        drop(self.0.kill());
        drop(self.0.wait());
    }
}

/// `method path` with `body`: the body of a 200 answer.
fn http(port: u16, method: &str, path: &str, body: &str) -> Option<String> {
    common::http_request(port, method, path, body)
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
}

#[test]
fn shipped_alertmanager_config_inhibits_self_alerts_with_the_same_key_only() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _am = Alertmanager(
        std::process::Command::new("prometheus-alertmanager")
            .arg(format!(
                "--config.file={}",
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("dashboards/alertmanager/alertmanager.yml")
                    .display()
            ))
            .arg(format!("--storage.path={}", dir.path().display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start prometheus-alertmanager ({e})")),
    );
    // (rule, severity, instance, key label, must end up inhibited)
    let cases = [
        // gw1's eth0 is blind: its drop warning about eth0 is muted; the flow table
        // warning of the same gateway and gw2's drops on eth0 are other things.
        (
            "netwarden_interface_silent",
            "critical",
            "gw1",
            ("interface", "eth0"),
            false,
        ),
        (
            "netwarden_capture_dropping",
            "warning",
            "gw1",
            ("interface", "eth0"),
            true,
        ),
        (
            "netwarden_flow_table_full",
            "warning",
            "gw1",
            ("worker", "eth0-0"),
            false,
        ),
        (
            "netwarden_capture_dropping",
            "warning",
            "gw2",
            ("interface", "eth0"),
            false,
        ),
    ];
    let mut alerts: Vec<Value> = cases
        .iter()
        .map(|(rule, severity, instance, (k, v), _)| {
            serde_json::json!({ "labels": {
                "alertname": rule, "rule": rule, "kind": "self", "severity": severity,
                "component": "netwarden", "instance": instance, *k: v,
            }})
        })
        .collect();
    // A detection warning without src/dst must not be muted by a critical self-alert.
    alerts.push(serde_json::json!({ "labels": {
        "alertname": "NetwardenVolume", "rule": "volume", "kind": "volume",
        "severity": "warning", "network": "lan",
    }}));
    let body = Value::from(alerts).to_string();
    assert!(
        wait_for(30, || http(port, "POST", "/api/v2/alerts", &body)).is_some(),
        "Alertmanager never accepted the alerts"
    );
    let mut expected: Vec<(String, String, bool)> = cases
        .iter()
        .map(|(rule, _, instance, _, inhibited)| {
            ((*rule).to_owned(), (*instance).to_owned(), *inhibited)
        })
        .collect();
    expected.push(("volume".to_owned(), String::new(), false));
    expected.sort();
    let mut last = None;
    let settled = wait_for(30, || {
        let answer: Value = serde_json::from_str(&http(port, "GET", "/api/v2/alerts", "")?).ok()?;
        let mut got: Vec<(String, String, bool)> = answer
            .as_array()?
            .iter()
            .map(|a| {
                let label = |k: &str| a["labels"][k].as_str().unwrap_or_default().to_owned();
                let inhibited = a["status"]["inhibitedBy"]
                    .as_array()
                    .is_some_and(|v| !v.is_empty());
                (label("rule"), label("instance"), inhibited)
            })
            .collect();
        got.sort();
        let done = got == expected;
        last = Some(got);
        done.then_some(())
    });
    assert!(settled.is_some(), "inhibition differs: {last:?}");
}
