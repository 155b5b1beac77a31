//! Started as root with `[daemon] user` set, netwarden opens its capture source and
//! metrics endpoint, then runs as that user with only `CAP_NET_RAW`, and keeps serving;
//! its state directory is handed over without following links, and one others can write
//! to stops start-up.
//!
//! Needs root (CI runs as root), like the live-capture test; set `NETWARDEN_SKIP_LIVE=1`
//! to skip it knowingly elsewhere.

// Test code: a failed unwrap or panic is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::os::unix::fs::MetadataExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Stdio};

use common::{free_port, http_get, netwarden, pcaps_dir, stop, temp_file, wait_for};

/// The value of `field` (e.g. `Uid:`) in `/proc/<pid>/status`.
fn status_field(pid: &str, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `pid/task/<tid>` of every thread of `pid`, for [`status_field`].
fn tasks(pid: &str) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| format!("{pid}/task/{}", e.unwrap().file_name().to_string_lossy()))
        .collect()
}

/// Whether the test may run: it needs root (CI runs as root).
fn running_as_root() -> bool {
    if std::env::var_os("NETWARDEN_SKIP_LIVE").is_some() {
        return false;
    }
    assert_eq!(
        status_field("self", "Uid:"),
        "0 0 0 0",
        "run as root (or set NETWARDEN_SKIP_LIVE=1)"
    );
    true
}

/// Drop to `nobody`; one rule, which the port scan capture fires.
const AS_NOBODY_WITH_SCAN_RULE: &str = r#"
[daemon]
user = "nobody"

[[rules]]
name = "port_scan"
kind = "port_scan"
scope = "all"
severity = "warning"
threshold = 25
window = "10s"
"#;

/// `netwarden run` as root with `user = "nobody"`, state in `state`, replaying a port
/// scan (which fires alerts), with `stderr` as given.
fn start_as_nobody(state: &Path, port: u16, stderr: Stdio) -> (Child, tempfile::NamedTempFile) {
    let config = temp_file(AS_NOBODY_WITH_SCAN_RULE, ".toml");
    let child = netwarden()
        .env("STATE_DIRECTORY", state)
        .args(["run", "--speed", "max", "--config"])
        .arg(config.path())
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--pcap")
        .arg(pcaps_dir().join("attacks/pcaphunt_ps-tcp_syn.pcap"))
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    (child, config)
}

#[test]
fn root_drops_to_configured_user_and_a_capture_file_keeps_no_capability() {
    if !running_as_root() {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    let (mut child, _config) = start_as_nobody(state.path(), port, Stdio::null());
    let ready = wait_for(20, || http_get(port, "/readyz").filter(|(s, _)| *s == 200));
    assert!(ready.is_some(), "never became ready");
    let pid = child.id().to_string();
    // nobody:nogroup is 65534:65534 on Debian; real, effective, saved and fs ids all moved.
    assert_eq!(status_field(&pid, "Uid:"), "65534 65534 65534 65534");
    assert_eq!(status_field(&pid, "Gid:"), "65534 65534 65534 65534");
    assert_eq!(status_field(&pid, "Groups:"), "65534");
    // A capture file is never reopened: not even CAP_NET_RAW (bit 13) is kept, in any
    // thread; the bounding set keeps only it.
    for task in tasks(&pid) {
        assert_eq!(status_field(&task, "CapEff:"), "0000000000000000", "{task}");
        assert_eq!(status_field(&task, "CapPrm:"), "0000000000000000", "{task}");
        assert_eq!(status_field(&task, "CapBnd:"), "0000000000002000", "{task}");
        assert_eq!(status_field(&task, "CapInh:"), "0000000000000000", "{task}");
        assert_eq!(status_field(&task, "CapAmb:"), "0000000000000000", "{task}");
        assert_eq!(status_field(&task, "NoNewPrivs:"), "1", "{task}");
    }
    // The state directory root created was handed over, so firing alerts can be saved.
    let owner = std::fs::metadata(state.path()).unwrap();
    assert_eq!((owner.uid(), owner.gid()), (65534, 65534));
    // Still serving after the switch.
    let metrics = http_get(port, "/metrics").unwrap();
    assert_eq!(metrics.0, 200);
    assert!(metrics.1.contains("netwarden_packets_total"));
    assert!(stop(&mut child, "TERM").success());
}

#[test]
fn state_directory_is_handed_over_and_written_without_following_links() {
    if !running_as_root() {
        return;
    }
    let outside = tempfile::tempdir().unwrap();
    let (given, truncated) = (
        outside.path().join("given"),
        outside.path().join("truncated"),
    );
    std::fs::write(&given, "root's").unwrap();
    std::fs::write(&truncated, "root's too").unwrap();
    let state = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&given, state.path().join("innocent")).unwrap();
    std::os::unix::fs::symlink(&truncated, state.path().join(".alerts.json.tmp")).unwrap();
    let port = free_port();
    let (mut child, _config) = start_as_nobody(state.path(), port, Stdio::null());
    let saved = state.path().join("alerts.json");
    let written = wait_for(20, || std::fs::metadata(&saved).ok());
    assert!(stop(&mut child, "TERM").success());
    // Neither link was followed: the files they name are root's, and intact.
    for (file, text) in [(&given, "root's"), (&truncated, "root's too")] {
        let meta = std::fs::metadata(file).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "{}", file.display());
        assert_eq!(std::fs::read_to_string(file).unwrap(), text);
    }
    // The port scan's alerts were saved, by the service user, in a file of its own.
    let written = written.expect("no alerts.json written");
    assert_eq!((written.uid(), written.mode() & 0o777), (65534, 0o600));
}

#[test]
fn state_directory_writable_by_others_stops_start_up() {
    if !running_as_root() {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (mut child, _config) = start_as_nobody(state.path(), free_port(), Stdio::piped());
    let exited = wait_for(10, || child.try_wait().unwrap());
    if exited.is_none() {
        drop(child.kill());
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        exited.is_some(),
        "started on a world-writable state directory"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the state directory {} is writable by its group or others (mode 0777)",
            state.path().display()
        )),
        "{stderr}"
    );
    // Nothing was handed over or written.
    let meta = std::fs::metadata(state.path()).unwrap();
    assert_eq!(meta.uid(), 0);
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0);
}

#[test]
fn unknown_user_stops_start_up_as_a_config_error() {
    let config = temp_file("[daemon]\nuser = \"no-such-user-nw\"\n", ".toml");
    let out = netwarden()
        .args([
            "run",
            "--speed",
            "max",
            "--listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(config.path())
        .arg("--pcap")
        .arg(pcaps_dir().join("attacks/pcaphunt_ps-tcp_syn.pcap"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "EX_CONFIG: {stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:2:1: key `daemon.user`: user `no-such-user-nw` does not exist",
            config.path().display()
        )),
        "{stderr}"
    );
}

#[test]
fn live_capture_started_as_root_keeps_only_cap_net_raw_and_no_new_privileges() {
    if !running_as_root() {
        return;
    }
    // No `[daemon] user`: the process stays uid 0, yet holds nothing but CAP_NET_RAW
    // (live capture reattaches an interface that comes back), in every thread.
    let rule_only = AS_NOBODY_WITH_SCAN_RULE.replace("[daemon]\nuser = \"nobody\"\n", "");
    assert!(!rule_only.contains("nobody"));
    let config = temp_file(&rule_only, ".toml");
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = netwarden()
        .env("STATE_DIRECTORY", state.path())
        .args(["run", "--interface", "lo", "--config"])
        .arg(config.path())
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = wait_for(20, || http_get(port, "/readyz").filter(|(s, _)| *s == 200));
    assert!(ready.is_some(), "never became ready");
    let pid = child.id().to_string();
    for task in tasks(&pid) {
        assert_eq!(status_field(&task, "CapEff:"), "0000000000002000", "{task}");
        assert_eq!(status_field(&task, "CapPrm:"), "0000000000002000", "{task}");
        assert_eq!(status_field(&task, "CapBnd:"), "0000000000002000", "{task}");
        assert_eq!(status_field(&task, "CapInh:"), "0000000000000000", "{task}");
        assert_eq!(status_field(&task, "CapAmb:"), "0000000000000000", "{task}");
        assert_eq!(status_field(&task, "NoNewPrivs:"), "1", "{task}");
    }
    assert_eq!(http_get(port, "/metrics").unwrap().0, 200);
    assert!(stop(&mut child, "TERM").success());
}
