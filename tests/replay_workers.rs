//! `replay --workers N`: a capture spread by flow over N pipelines, judged by one shared
//! detector as N live capture workers are, raises the alerts that one worker raises: for
//! the public attack captures and for generated floods and scans whose traffic no single
//! worker sees enough of.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{captures_in, pcapgen, replay_json};

/// Each alert transition (rule, state, src, dst, severity) with how often it occurs.
fn alerts(pcap: &Path, workers: &str) -> BTreeMap<String, usize> {
    let summary = replay_json(
        &[pcap],
        &["--workers", workers, "--protect", "10.201.0.0/16"],
    );
    let mut counts = BTreeMap::new();
    for a in summary["alerts"].as_array().unwrap() {
        let key = format!(
            "{} {} {} -> {} {}",
            a["rule"], a["state"], a["src"], a["dst"], a["severity"]
        );
        *counts.entry(key).or_default() += 1;
    }
    counts
}

fn generated(dir: &Path) -> Vec<PathBuf> {
    let flood = dir.join("flood.pcap");
    // 1,400 SYN/s (1.4 times the shipped threshold) from 8,000 spoofed sources.
    pcapgen(
        "syn-flood",
        &flood,
        &[
            "--packets",
            "8400",
            "--pps",
            "1400",
            "--victims",
            "1",
            "--sources",
            "8000",
        ],
    );
    let scan = dir.join("scan.pcap");
    pcapgen("port-scan", &scan, &["--ports", "600"]);
    let sweep = dir.join("sweep.pcap");
    pcapgen("host-sweep", &sweep, &[]);
    vec![flood, scan, sweep]
}

#[test]
fn two_and_four_workers_raise_the_alerts_of_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = generated(dir.path());
    files.extend(captures_in("attacks"));
    let mut alerting = 0;
    for file in &files {
        let one = alerts(file, "1");
        alerting += usize::from(!one.is_empty());
        for workers in ["2", "4"] {
            assert_eq!(
                one,
                alerts(file, workers),
                "{}: 1 worker against {workers}",
                file.display()
            );
        }
    }
    assert!(
        alerting >= 3,
        "the generated attacks alert: {alerting} files did"
    );
}
