//! The JSON-lines alert log behaves like a log: it follows rotation (a rename, logrotate's
//! `create` mode, SIGHUP) and never leaves half a line behind when the disk fills up.
//!
//! The SIGHUP test runs the real daemon over a generated SYN flood; the others drive the
//! library's `AlertRouter` as the daemon does. The full-disk test mounts a small tmpfs and
//! the rotation test runs the real `logrotate` on the shipped snippet, so both need root
//! (CI runs as root); set `NETWARDEN_SKIP_LIVE=1` to skip them knowingly elsewhere.

// Test code: a failed unwrap or panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::{
    Proc, alert_log, free_port, http_get, metric_sum, netwarden, short_syn_flood, stop,
    syn_flood_rules, wait_for,
};
use netwarden::alert::sinks::{AlertRouter, RouterSettings};
use netwarden::alert::{Alert, AlertKind};
use netwarden::config::AlertingConfig;
use netwarden::telemetry::Metrics;
use netwarden::vocabulary::RuleKind;

/// Whether the root-only tests run (see the module doc).
fn as_root() -> bool {
    if std::env::var_os("NETWARDEN_SKIP_LIVE").is_some() {
        return false;
    }
    assert!(
        is_root(),
        "run as root (or set NETWARDEN_SKIP_LIVE=1 to skip)"
    );
    true
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

/// An alert of rule `rule` whose JSON line is about `padding` bytes longer than usual.
fn alert(rule: &str, padding: usize) -> Alert {
    Alert {
        time: 1.0,
        started: 1.0,
        last_seen: 1.0,
        value: 2.0,
        threshold: 1.0,
        annotations: BTreeMap::from([("padding".to_owned(), "x".repeat(padding))]),
        ..Alert::new(rule, AlertKind::Rule(RuleKind::Volume))
    }
}

fn router(log_file: &Path) -> (AlertRouter, Arc<Metrics>) {
    let config = AlertingConfig {
        log_file: log_file.to_owned(),
        ..AlertingConfig::default()
    };
    let metrics = Arc::new(Metrics::new(&[], 10).unwrap());
    let router = AlertRouter::start(
        RouterSettings::from_config(&config).unwrap(),
        &metrics.alerts,
    )
    .unwrap();
    (router, metrics)
}

/// The rules of the log's lines; every line must be a whole JSON alert.
fn logged_rules(path: &Path) -> Vec<String> {
    alert_log(path)
        .iter()
        .map(|a| a["rule"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until `path` holds `n` lines.
fn wait_lines(path: &Path, n: usize) {
    let done = wait_for(10, || (alert_log(path).len() >= n).then_some(()));
    assert!(done.is_some(), "{} never had {n} lines", path.display());
}

#[test]
fn sighup_reopens_the_alert_log_at_its_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules.d")).unwrap();
    std::fs::write(dir.path().join("rules.d/flood.toml"), syn_flood_rules("5s")).unwrap();
    let log = dir.path().join("alerts.jsonl");
    let port = free_port();
    let config = dir.path().join("netwarden.toml");
    std::fs::write(
        &config,
        format!(
            "[[networks]]\nname = \"victims\"\ncidrs = [\"10.201.0.0/16\"]\n\
             [metrics]\nlisten = \"127.0.0.1:{port}\"\n[alerting]\nlog_file = {:?}\n",
            log.display().to_string()
        ),
    )
    .unwrap();
    let pcap = dir.path().join("flood.pcap");
    short_syn_flood(&pcap, 3, "41");
    let mut daemon = Proc(
        netwarden()
            .arg("run")
            .arg("--config")
            .arg(&config)
            .args(["--speed", "max", "--pcap"])
            .arg(&pcap)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ready = wait_for(20, || http_get(port, "/readyz").filter(|(s, _)| *s == 200));
    assert!(ready.is_some(), "daemon never became ready");
    wait_lines(&log, 1);

    // What logrotate does in its default `create` mode, then its postrotate signal.
    let rotated = dir.path().join("alerts.jsonl.1");
    std::fs::rename(&log, &rotated).unwrap();
    send_signal(&daemon, "HUP");
    let reopened = wait_for(5, || log.exists().then_some(()));
    assert!(reopened.is_some(), "no new log file after SIGHUP");

    // The flood is over: its resolve goes to the new file, not the rotated one.
    wait_lines(&log, 1);
    let states = |p: &Path| -> Vec<String> {
        alert_log(p)
            .iter()
            .map(|a| a["state"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(states(&rotated), ["firing"]);
    assert_eq!(states(&log), ["resolved"]);
    let exit = stop(&mut daemon.0, "TERM");
    assert!(exit.success(), "{exit:?}");
}

/// Sends `signal` without waiting for the process to end.
fn send_signal(daemon: &Proc, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(daemon.0.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// A small tmpfs mounted on a temporary directory, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(bytes: usize) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={bytes},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "cannot mount a tmpfs");
        SmallDisk { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Fills every free byte with `filler`.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.path("filler")).unwrap();
        let chunk = [0_u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        // A last short chunk may have fit in part; the disk is full either way.
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        drop(Command::new("umount").arg(self.dir.path()).status());
    }
}

#[test]
fn a_short_write_on_a_full_disk_leaves_no_partial_line() {
    if !as_root() {
        return;
    }
    let disk = SmallDisk::mount(64 << 10);
    let log = disk.path("alerts.jsonl");
    let (router, metrics) = router(&log);
    let mut out = router.handle().alert_output();
    out.emit(alert("first", 0));
    wait_lines(&log, 1);
    let first = std::fs::read(&log).unwrap();

    // The log's last page has room for part of the next line, the disk for nothing more:
    // the kernel takes what fits and refuses the rest.
    disk.fill();
    out.emit(alert("too_long", 8_000));
    let failed = wait_for(10, || {
        let text = metrics.render();
        (metric_sum(
            &text,
            "netwarden_alerts_dropped_total",
            &["sink=\"log_file\""],
        ) == 1)
            .then_some(())
    });
    assert!(
        failed.is_some(),
        "the line that did not fit was not counted"
    );
    assert_eq!(std::fs::read(&log).unwrap(), first, "half a line was left");

    std::fs::remove_file(disk.path("filler")).unwrap();
    out.emit(alert("after", 0));
    wait_lines(&log, 2);
    assert_eq!(logged_rules(&log), ["first", "after"]);
    assert_eq!(router.shutdown(), 0);
}

#[test]
fn shipped_logrotate_snippet_rotates_to_a_new_file() {
    if !as_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("alerts.jsonl");
    let snippet = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/logrotate.d/netwarden"
    ))
    .unwrap();
    assert!(snippet.contains("/var/log/netwarden/"), "{snippet}");
    let conf = dir.path().join("logrotate.conf");
    std::fs::write(
        &conf,
        snippet.replace("/var/log/netwarden/", &format!("{}/", dir.path().display())),
    )
    .unwrap();

    let (router, _metrics) = router(&log);
    let mut out = router.handle().alert_output();
    out.emit(alert("before", 0));
    wait_lines(&log, 1);
    let rotated = Command::new("logrotate")
        .arg("--force")
        .arg("--state")
        .arg(dir.path().join("logrotate.state"))
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        rotated.status.success(),
        "logrotate failed: {}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert_eq!(logged_rules(&dir.path().join("alerts.jsonl.1")), ["before"]);
    out.emit(alert("after", 0));
    wait_lines(&log, 1);
    assert_eq!(logged_rules(&log), ["after"]);
    assert_eq!(router.shutdown(), 0);
}
