//! Started as root with `[daemon] user` set, netwarden opens its capture source and
//! metrics endpoint, then runs as that user with only `CAP_NET_RAW`, and keeps serving.
//!
//! Needs root (CI runs as root), like the live-capture test; set `NETWARDEN_SKIP_LIVE=1`
//! to skip it knowingly elsewhere.

// Test code: a failed unwrap or panic is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::process::Stdio;

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

#[test]
fn root_drops_to_configured_user_keeping_only_cap_net_raw() {
    if std::env::var_os("NETWARDEN_SKIP_LIVE").is_some() {
        return;
    }
    assert_eq!(
        status_field("self", "Uid:"),
        "0 0 0 0",
        "run as root (or set NETWARDEN_SKIP_LIVE=1)"
    );
    let config = temp_file("[daemon]\nuser = \"nobody\"\n", ".toml");
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = netwarden()
        .env("STATE_DIRECTORY", state.path())
        .args(["run", "--speed", "max", "--config"])
        .arg(config.path())
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--pcap")
        .arg(pcaps_dir().join("attacks/pcaphunt_ps-tcp_syn.pcap"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = wait_for(20, || http_get(port, "/readyz").filter(|(s, _)| *s == 200));
    assert!(ready.is_some(), "never became ready");
    let pid = child.id().to_string();
    // nobody:nogroup is 65534:65534 on Debian; real, effective, saved and fs ids all moved.
    assert_eq!(status_field(&pid, "Uid:"), "65534 65534 65534 65534");
    assert_eq!(status_field(&pid, "Gid:"), "65534 65534 65534 65534");
    assert_eq!(status_field(&pid, "Groups:"), "65534");
    // CAP_NET_RAW is bit 13.
    assert_eq!(status_field(&pid, "CapEff:"), "0000000000002000");
    assert_eq!(status_field(&pid, "CapPrm:"), "0000000000002000");
    assert_eq!(status_field(&pid, "CapBnd:"), "0000000000002000");
    assert_eq!(status_field(&pid, "CapInh:"), "0000000000000000");
    assert_eq!(status_field(&pid, "CapAmb:"), "0000000000000000");
    // The state directory root created was handed over, so firing alerts can be saved.
    let owner = std::fs::metadata(state.path()).unwrap();
    assert_eq!(
        (
            std::os::unix::fs::MetadataExt::uid(&owner),
            std::os::unix::fs::MetadataExt::gid(&owner)
        ),
        (65534, 65534)
    );
    // Still serving after the switch.
    let metrics = http_get(port, "/metrics").unwrap();
    assert_eq!(metrics.0, 200);
    assert!(metrics.1.contains("netwarden_packets_total"));
    assert!(stop(&mut child, "TERM").success());
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
