//! Alert delivery against real receivers: Debian's `prometheus-alertmanager` on
//! loopback, a webhook server written here that fails on purpose, and the JSON-lines log.
//!
//! Each test drives the library's `AlertRouter` directly (as the daemon does) and reads
//! the outcome back from the receiver and from the delivery metrics. Every process started
//! is stopped by a guard's `Drop`; ports are picked free so parallel runs do not collide.

// Test code: a failed unwrap or panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Alertmanager, free_port, http_get, metric_sum, wait_for};
use netwarden::alert::links::AlertLinks;
use netwarden::alert::sinks::{AlertRouter, RouterSettings};
use netwarden::alert::{Alert, AlertKind, AlertState, Contributor, ContributorKind, Severity};
use netwarden::config::{AlertingConfig, HumanDuration, WebhookConfig};
use netwarden::telemetry::Metrics;
use netwarden::vocabulary::RuleKind;

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn rfc3339(secs: f64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_secs_f64(secs)).to_string()
}

fn syn_flood(state: AlertState, started: f64, time: f64) -> Alert {
    Alert {
        rule: "syn_flood".into(),
        kind: AlertKind::Rule(RuleKind::SynFlood),
        severity: Severity::Critical,
        state,
        time,
        started,
        last_seen: time,
        value: 25_000.0,
        threshold: 1_000.0,
        src: None,
        dst: Some("192.0.2.10".parse().unwrap()),
        network: Some("dmz".into()),
        domain: None,
        protocol: Some("tcp".into()),
        port: None,
        contributors: vec![Contributor {
            kind: ContributorKind::Source,
            value: "198.51.100.7".into(),
            count: 9_000,
        }],
        labels: BTreeMap::from([("team".into(), "noc".into())]),
        annotations: BTreeMap::from([
            ("summary".into(), "SYN flood against 192.0.2.10".into()),
            ("runbook_url".into(), "https://runbooks.example/syn".into()),
        ]),
    }
}

/// Fast retries, so a test waits seconds, not minutes.
fn fast(mut c: AlertingConfig) -> AlertingConfig {
    c.initial_backoff = HumanDuration::millis(50);
    c.max_backoff = HumanDuration::millis(200);
    c.timeout = HumanDuration::secs(2);
    c.max_attempts = 1_000;
    c.shutdown_grace = HumanDuration::secs(2);
    c
}

/// `alert` as delivered: with the runbook and dashboard links of `config`.
fn linked(config: &AlertingConfig, alert: &Alert) -> Alert {
    let mut a = alert.clone();
    AlertLinks::from_config(config).annotate(&mut a);
    a
}

fn start(config: &AlertingConfig) -> (AlertRouter, Arc<Metrics>) {
    assert!(config.validate_ok(), "test config invalid");
    let metrics = Arc::new(Metrics::new(&[], 10).unwrap());
    let router = AlertRouter::start(
        RouterSettings::from_config(config).unwrap(),
        &metrics.alerts,
    )
    .unwrap();
    (router, metrics)
}

trait ValidateOk {
    fn validate_ok(&self) -> bool;
}

impl ValidateOk for AlertingConfig {
    fn validate_ok(&self) -> bool {
        let mut ok = true;
        self.validate(&mut |_: &str, _: String| ok = false);
        ok
    }
}

fn counter(metrics: &Metrics, name: &str, labels: &[&str]) -> u64 {
    metric_sum(&metrics.render(), name, labels)
}

#[test]
fn alertmanager_receives_firing_then_resolved_on_every_url() {
    let ams = [
        Alertmanager::start(free_port()),
        Alertmanager::start(free_port()),
    ];
    let config = fast(AlertingConfig {
        alertmanager_urls: ams.iter().map(Alertmanager::url).collect(),
        ..AlertingConfig::default()
    });
    let (router, metrics) = start(&config);
    let mut out = router.handle().alert_output();
    let started = now_secs() - 30.0;
    out.emit(syn_flood(AlertState::Firing, started, started + 2.0));

    for am in &ams {
        let a = am
            .wait_alert("NetwardenSynFlood", 20)
            .expect("the firing alert reaches every Alertmanager");
        assert_eq!(a["labels"]["rule"], "syn_flood");
        assert_eq!(a["labels"]["kind"], "syn_flood");
        assert_eq!(a["labels"]["severity"], "critical");
        assert_eq!(a["labels"]["dst"], "192.0.2.10");
        assert_eq!(a["labels"]["network"], "dmz");
        assert_eq!(a["labels"]["team"], "noc");
        assert_eq!(a["annotations"]["summary"], "SYN flood against 192.0.2.10");
        assert_eq!(
            a["annotations"]["runbook_url"],
            "https://runbooks.example/syn"
        );
        assert_eq!(a["annotations"]["threshold"], "1000");
        assert_eq!(
            a["annotations"]["contributors"],
            "source 198.51.100.7 (9000)"
        );
        assert_eq!(a["startsAt"], rfc3339(started), "{a}");
        // Firing: endsAt is three re-send intervals (3 min) ahead of the send.
        let ends_at = a["endsAt"].as_str().unwrap();
        assert!(ends_at > rfc3339(now_secs() + 120.0).as_str(), "{a}");
        assert!(ends_at < rfc3339(now_secs() + 200.0).as_str(), "{a}");
    }

    let resolved_at = now_secs() - 1.0;
    out.emit(syn_flood(AlertState::Resolved, started, resolved_at));
    for am in &ams {
        // Alertmanager's API lists only alerts whose endsAt is still ahead: the resolve
        // (endsAt = resolve time) makes it drop out.
        let gone = wait_for(20, || {
            am.alerts()
                .iter()
                .all(|a| a["labels"]["alertname"] != "NetwardenSynFlood")
                .then_some(())
        });
        assert!(
            gone.is_some(),
            "resolved alert still active: {:?}",
            am.alerts()
        );
    }
    for i in 0..2 {
        let sink = format!("sink=\"alertmanager-{i}\"");
        // Alertmanager may show the resolve before the router has read its response and
        // counted the send: wait for the count rather than race it.
        let sent = wait_for(10, || {
            (counter(&metrics, "netwarden_alerts_sent_total", &[&sink]) >= 2).then_some(())
        });
        assert!(sent.is_some(), "sends to {sink} not counted");
        assert_eq!(
            counter(&metrics, "netwarden_alerts_dropped_total", &[&sink]),
            0
        );
    }
    assert_eq!(router.shutdown(), 0);
}

#[test]
fn alert_queued_while_alertmanager_is_down_arrives_when_it_comes_up() {
    let port = free_port();
    let config = fast(AlertingConfig {
        alertmanager_urls: vec![format!("http://127.0.0.1:{port}")],
        ..AlertingConfig::default()
    });
    let (router, metrics) = start(&config);
    let started = now_secs() - 5.0;
    router
        .handle()
        .alert_output()
        .emit(syn_flood(AlertState::Firing, started, started));

    let connect = ["sink=\"alertmanager-0\"", "error_type=\"connect\""];
    let retried = wait_for(10, || {
        (counter(&metrics, "netwarden_alert_send_errors_total", &connect) >= 3).then_some(())
    });
    assert!(
        retried.is_some(),
        "no retries counted: {}",
        metrics.render()
    );
    assert_eq!(
        counter(
            &metrics,
            "netwarden_alerts_sent_total",
            &["sink=\"alertmanager-0\""]
        ),
        0
    );

    let am = Alertmanager::start(port);
    let a = am
        .wait_alert("NetwardenSynFlood", 20)
        .expect("the queued alert arrives once Alertmanager is up");
    assert_eq!(a["labels"]["dst"], "192.0.2.10");
    assert_eq!(
        counter(
            &metrics,
            "netwarden_alerts_sent_total",
            &["sink=\"alertmanager-0\""]
        ),
        1
    );
    assert_eq!(counter(&metrics, "netwarden_alerts_dropped_total", &[]), 0);
    assert_eq!(router.shutdown(), 0);
}

#[test]
fn shutdown_drops_and_counts_what_cannot_be_delivered_in_the_grace_period() {
    let port = free_port();
    let mut config = fast(AlertingConfig {
        alertmanager_urls: vec![format!("http://127.0.0.1:{port}")],
        ..AlertingConfig::default()
    });
    config.shutdown_grace = HumanDuration::millis(300);
    let (router, metrics) = start(&config);
    let t = now_secs();
    router
        .handle()
        .alert_output()
        .emit(syn_flood(AlertState::Firing, t, t));
    let begun = std::time::Instant::now();
    assert_eq!(router.shutdown(), 1);
    assert!(
        begun.elapsed() < Duration::from_secs(3),
        "{:?}",
        begun.elapsed()
    );
    let shutdown = ["sink=\"alertmanager-0\"", "reason=\"shutdown\""];
    assert_eq!(
        counter(&metrics, "netwarden_alerts_dropped_total", &shutdown),
        1
    );
}

/// A webhook receiver that answers 503 to the first `fail_first` requests, then 200,
/// keeping the bodies it accepted. Stopped and joined on drop.
struct FlakyWebhook {
    port: u16,
    accepted: Arc<Mutex<Vec<serde_json::Value>>>,
    requests: Arc<Mutex<usize>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FlakyWebhook {
    fn start(fail_first: usize) -> FlakyWebhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (accepted, requests, stop) = (
                Arc::clone(&accepted),
                Arc::clone(&requests),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let n = {
                                let mut r = requests.lock().unwrap();
                                *r += 1;
                                *r
                            };
                            serve_one(stream, n > fail_first, &accepted);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        FlakyWebhook {
            port,
            accepted,
            requests,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FlakyWebhook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one HTTP request (headers, then a Content-Length body) and answers it.
fn serve_one(mut stream: TcpStream, accept: bool, accepted: &Mutex<Vec<serde_json::Value>>) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0_u8; 4096];
    let body_start = loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed mid-request");
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&raw[..body_start]).to_ascii_lowercase();
    assert!(head.starts_with("post / http/1.1"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    while raw.len() < body_start + length {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed mid-body");
        raw.extend_from_slice(&buf[..n]);
    }
    let status = if accept {
        accepted
            .lock()
            .unwrap()
            .push(serde_json::from_slice(&raw[body_start..body_start + length]).unwrap());
        "200 OK"
    } else {
        "503 Service Unavailable"
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
}

#[test]
fn webhook_retries_through_failures_and_delivers_each_transition_once() {
    let hook = FlakyWebhook::start(3);
    let config = fast(AlertingConfig {
        webhook: WebhookConfig {
            url: format!("http://127.0.0.1:{}/", hook.port),
            ..WebhookConfig::default()
        },
        ..AlertingConfig::default()
    });
    let (router, metrics) = start(&config);
    let mut out = router.handle().alert_output();
    let t = now_secs();
    let firing = syn_flood(AlertState::Firing, t - 10.0, t - 8.0);
    let resolved = syn_flood(AlertState::Resolved, t - 10.0, t - 1.0);
    out.emit(firing.clone());
    out.emit(resolved.clone());

    let got = wait_for(15, || {
        let a = hook.accepted.lock().unwrap();
        (a.len() >= 2).then(|| a.clone())
    })
    .expect("both transitions delivered");
    // Let any duplicate arrive before judging "exactly once".
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(hook.accepted.lock().unwrap().len(), 2);
    assert_eq!(
        got[0],
        serde_json::to_value(linked(&config, &firing)).unwrap()
    );
    assert_eq!(
        got[1],
        serde_json::to_value(linked(&config, &resolved)).unwrap()
    );
    assert_eq!(*hook.requests.lock().unwrap(), 5);
    let errors = ["sink=\"webhook\"", "error_type=\"status_5xx\""];
    assert_eq!(
        counter(&metrics, "netwarden_alert_send_errors_total", &errors),
        3
    );
    assert_eq!(
        counter(
            &metrics,
            "netwarden_alerts_sent_total",
            &["sink=\"webhook\""]
        ),
        2
    );
    assert_eq!(router.shutdown(), 0);
}

#[test]
fn log_file_gets_one_json_line_per_transition() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("alerts.jsonl");
    let config = AlertingConfig {
        log_file: path.clone(),
        ..AlertingConfig::default()
    };
    let (router, metrics) = start(&config);
    let mut out = router.handle().alert_output();
    let t = now_secs();
    let sent = [
        syn_flood(AlertState::Firing, t - 10.0, t - 9.0),
        syn_flood(AlertState::Resolved, t - 10.0, t - 2.0),
    ];
    for a in &sent {
        out.emit(a.clone());
    }
    assert_eq!(router.shutdown(), 0);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Alert> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, sent.map(|a| linked(&config, &a)));
    assert!(text.ends_with('\n'));
    assert_eq!(
        counter(
            &metrics,
            "netwarden_alerts_sent_total",
            &["sink=\"log_file\""]
        ),
        2
    );
}

/// `netwarden run` on a capture file, killed on drop if a test fails before stopping it.
struct Daemon {
    child: Child,
    metrics_port: u16,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Runs the daemon on `capture` (a port scan the default rules flag) with the shipped
    /// rules, delivering to `alerting` (TOML lines of the `[alerting]` table).
    fn start(alerting: &str) -> Daemon {
        let capture = common::pcaps_dir().join("attacks/pcaphunt_ps-tcp_syn.pcap");
        let metrics_port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let config = common::shipped_rules_config(
            dir.path(),
            &format!("[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n[alerting]\n{alerting}\n"),
        );
        let child = common::netwarden()
            .arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--pcap")
            .arg(&capture)
            .args(["--speed", "max"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Daemon {
            child,
            metrics_port,
            _dir: dir,
        }
    }

    fn metric(&self, name: &str, labels: &[&str]) -> Option<u64> {
        let (status, body) = http_get(self.metrics_port, "/metrics")?;
        (status == 200).then(|| metric_sum(&body, name, labels))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

const SCAN: (&str, &str) = ("10.0.0.140", "10.0.0.2");

fn is_scan_alert(a: &serde_json::Value) -> bool {
    a["labels"]["alertname"] == "NetwardenPortScan"
        && a["labels"]["src"] == SCAN.0
        && a["labels"]["dst"] == SCAN.1
}

#[test]
fn daemon_delivers_a_replayed_scan_to_a_real_alertmanager() {
    let am = Alertmanager::start(free_port());
    let mut daemon = Daemon::start(&format!("alertmanager_urls = [\"{}\"]", am.url()));
    let got = wait_for(30, || am.alerts().into_iter().find(is_scan_alert));
    let a = got.expect("the daemon's port-scan alert reaches Alertmanager");
    assert_eq!(a["labels"]["severity"], "warning");
    assert_eq!(a["labels"]["kind"], "port_scan");
    assert!(
        a["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains(SCAN.0),
        "{a}"
    );
    let status = common::stop(&mut daemon.child, "TERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn daemon_alert_arrives_once_a_down_alertmanager_comes_back() {
    let port = free_port();
    let daemon = Daemon::start(&format!(
        "alertmanager_urls = [\"http://127.0.0.1:{port}\"]\n\
         initial_backoff = \"50ms\"\nmax_backoff = \"200ms\"\nmax_attempts = 1000"
    ));
    let connect = ["sink=\"alertmanager-0\"", "error_type=\"connect\""];
    let failing = wait_for(30, || {
        daemon
            .metric("netwarden_alert_send_errors_total", &connect)
            .filter(|n| *n >= 3)
    });
    assert!(
        failing.is_some(),
        "no failed attempts counted while Alertmanager is down"
    );
    let am = Alertmanager::start(port);
    let got = wait_for(30, || am.alerts().into_iter().find(is_scan_alert));
    assert!(
        got.is_some(),
        "queued alert not delivered: {:?}",
        am.alerts()
    );
    assert_eq!(
        daemon.metric("netwarden_alerts_dropped_total", &[]),
        Some(0)
    );
}

#[test]
fn firing_alert_is_resent_so_alertmanager_keeps_it_active() {
    let am = Alertmanager::start(free_port());
    let mut config = fast(AlertingConfig {
        alertmanager_urls: vec![am.url()],
        ..AlertingConfig::default()
    });
    config.resend_interval = HumanDuration::secs(1);
    let (router, metrics) = start(&config);
    let t = now_secs();
    router
        .handle()
        .alert_output()
        .emit(syn_flood(AlertState::Firing, t, t));
    let first = am.wait_alert("NetwardenSynFlood", 20).unwrap();
    // Without re-sends, endsAt (3 s ahead) would pass and the alert would drop out.
    std::thread::sleep(Duration::from_secs(5));
    let later = am
        .wait_alert("NetwardenSynFlood", 1)
        .expect("still active after its first endsAt");
    assert!(
        later["endsAt"].as_str().unwrap() > first["endsAt"].as_str().unwrap(),
        "{first} then {later}"
    );
    let sent = counter(
        &metrics,
        "netwarden_alerts_sent_total",
        &["sink=\"alertmanager-0\""],
    );
    assert!(
        (4..=7).contains(&sent),
        "{sent} sends in ~5 s at a 1 s interval"
    );
    assert_eq!(router.shutdown(), 0);
}
