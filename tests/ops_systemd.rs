//! systemd integration, end to end: the shipped unit verifies and rates "OK" or better in
//! `systemd-analyze security`, and the real binary speaks the `sd_notify` protocol
//! (READY=1, watchdog pings, STOPPING=1) to a `$NOTIFY_SOCKET` it is given.

// Test code: a failed unwrap or panic is a failed test.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{netwarden, pcaps_dir, stop};

/// The shipped unit with its `/usr/bin/netwarden` paths pointed at the binary under test,
/// in a temp dir (`systemd-analyze verify` checks that executables exist).
fn unit_under_test() -> (tempfile::TempDir, std::path::PathBuf) {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/netwarden.service"),
    )
    .unwrap();
    let unit = unit.replace("/usr/bin/netwarden", env!("CARGO_BIN_EXE_netwarden"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("netwarden.service");
    std::fs::write(&path, unit).unwrap();
    (dir, path)
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let (_dir, unit) = unit_under_test();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze not found (Debian package systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "verify failed: {stderr}");
    // verify reports unknown keys and bad values as warnings without failing.
    assert!(
        !stderr.contains("netwarden.service"),
        "verify complained: {stderr}"
    );
}

#[test]
fn unit_security_exposure_is_ok_or_better() {
    let (_dir, unit) = unit_under_test();
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze not found (Debian package systemd)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall exposure in: {stdout}"));
    let score: f64 = line
        .rsplit(':')
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unparsable exposure line: {line}"));
    assert!(score <= 1.6, "exposure {score} > 1.6: {stdout}");
    // IP traffic is denied but for an allow-list (loopback as shipped).
    let ip = stdout
        .lines()
        .find(|l| l.contains("IPAddressDeny="))
        .unwrap_or_else(|| panic!("no IPAddressDeny line in: {stdout}"));
    assert!(ip.contains("only localhost"), "{ip}");
}

/// Receives datagrams until one contains `want` or `secs` pass; returns every message seen.
fn recv_until(socket: &UnixDatagram, want: &str, secs: u64) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = message.lines().any(|l| l == want);
            seen.push(message);
            if done {
                return seen;
            }
        }
    }
    panic!("no {want} within {secs} s; got {seen:?}");
}

#[test]
fn daemon_notifies_ready_pings_watchdog_and_notifies_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut child = netwarden()
        .args(["run", "--speed", "max", "--listen", "127.0.0.1:0", "--pcap"])
        .arg(pcaps_dir().join("attacks/pcaphunt_ps-tcp_syn.pcap"))
        .env("NOTIFY_SOCKET", &path)
        // A ping every 2 s: heartbeats have one-second resolution.
        .env("WATCHDOG_USEC", "4000000")
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = recv_until(&socket, "READY=1", 20);
    assert!(
        first.iter().all(|m| !m.contains("WATCHDOG=1")),
        "watchdog before readiness: {first:?}"
    );
    assert!(
        first
            .last()
            .is_some_and(|m| m.lines().any(|l| l.starts_with("STATUS=Capturing"))),
        "readiness without status: {first:?}"
    );
    // Two pings: the file is finished by then, and an idle worker still beats.
    recv_until(&socket, "WATCHDOG=1", 10);
    recv_until(&socket, "WATCHDOG=1", 10);
    assert!(stop(&mut child, "TERM").success());
    recv_until(&socket, "STOPPING=1", 1);
}

#[test]
fn daemon_without_notify_socket_runs_normally() {
    let port = common::free_port();
    let mut child = netwarden()
        .args(["run", "--speed", "max", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--pcap")
        .arg(pcaps_dir().join("attacks/pcaphunt_ps-tcp_syn.pcap"))
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = common::wait_for(20, || {
        common::http_get(port, "/readyz").filter(|(s, _)| *s == 200)
    });
    assert!(ready.is_some(), "never became ready");
    assert!(stop(&mut child, "TERM").success());
}
