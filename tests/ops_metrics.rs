//! A scrape of a running daemon, judged as Prometheus would: `promtool check metrics`
//! finds nothing to complain about, the series are the bounded set the docs promise
//! (decode errors only for pairs a decoder can report, per interface; the standard
//! `process_*` series), and `netwarden_build_info` names the commit it was built from.
//!
//! Needs Debian's `prometheus` package for promtool (scripts/test.sh installs it).

// Test code: a failed unwrap or panic is a failed test, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use common::{Proc, free_port, http_request, metric_sum, netwarden, pcaps_dir, wait_for};
use netwarden::decode::DecodeError;

/// Runs netwarden with the shipped rules on a scan capture; returns it and its scrape once
/// every frame is counted.
fn scrape() -> (Proc, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = common::shipped_rules_config(dir.path(), "[daemon]\nstate_directory = \"\"\n");
    let port = free_port();
    let daemon = Proc(
        netwarden()
            .arg("run")
            .arg("--config")
            .arg(&config)
            .args(["--speed", "max", "--protect", "10.0.0.0/24", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--pcap")
            .arg(pcaps_dir().join("attacks/pcaphunt_ps-tcp_syn.pcap"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // HTTP/1.0: the body exactly as served, never chunked.
    let body = wait_for(30, || {
        let (_, body) = http_request(port, "GET", "/metrics", "")?;
        (metric_sum(&body, "netwarden_packets_total", &[]) >= 4993).then_some(body)
    })
    .expect("packets never all counted");
    (daemon, body)
}

fn series<'a>(body: &'a str, metric: &str) -> Vec<&'a str> {
    body.lines()
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with(['{', ' ']))
        .collect()
}

#[test]
fn scrape_passes_promtool_check_metrics_with_bounded_series() {
    let (_daemon, body) = scrape();
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run promtool ({e}); scripts/test.sh installs it"));
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && report.trim().is_empty(), "{report}");

    // One decode-error series per possible pair, each with the interface.
    let decode = series(&body, "netwarden_decode_errors_total");
    assert_eq!(decode.len(), DecodeError::POSSIBLE.len(), "{decode:?}");
    assert!(decode.iter().all(|l| l.contains("interface=\"pcap\"")));
    for metric in [
        "process_start_time_seconds",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
    ] {
        assert_eq!(series(&body, metric).len(), 1, "{metric}");
    }
}

#[test]
fn build_info_names_the_commit_built() {
    let (_daemon, body) = scrape();
    let info = series(&body, "netwarden_build_info");
    assert_eq!(info.len(), 1, "{info:?}");
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    // An override in the environment of `cargo test` reached the build too.
    let over = std::env::var("NETWARDEN_REVISION").ok();
    let want = match (over, head) {
        (Some(over), _) if !over.trim().is_empty() => over.trim().to_owned(),
        (_, Some(commit)) => commit,
        // Built outside a checkout without an override: nothing else to report.
        _ => "unknown".to_owned(),
    };
    assert!(
        info[0].contains(&format!("revision=\"{want}\"")),
        "{info:?}, want {want}"
    );
}
