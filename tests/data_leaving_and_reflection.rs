//! The shipped `exfiltration` and `reflection` rules against classes of traffic made by
//! the project's generator: a workstation suddenly uploading hundreds of megabytes to one
//! outside address alerts within 30 s, the same download and an internal backup raise
//! nothing; reflection through each reflector service alerts for the victim within 2 s
//! with or without the spoofed requests on the link, our own servers abused as reflectors
//! (toward an outside victim or one beside them) alert for the server, and the services used as they should be raise nothing. Two
//! workers raise the alerts of one.

// Test code: a failed expectation is a failed test, with its message.
#![allow(
    clippy::panic,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss
)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{pcapgen, replay_json};

/// The networks the generator's scenarios protect.
const PROTECT: [&str; 4] = ["--protect", "10.201.0.0/16", "--protect", "fd00:201::/64"];

/// The reflector services of the generator.
const SERVICES: [(&str, u64); 8] = [
    ("dns", 53),
    ("ntp", 123),
    ("ssdp", 1900),
    ("memcached", 11211),
    ("cldap", 389),
    ("chargen", 19),
    ("snmp", 161),
    ("ws-discovery", 3702),
];

/// Runs the generator into `dir`; returns the capture and its ground truth.
fn generate(dir: &Path, name: &str, args: &[&str]) -> (PathBuf, serde_json::Value) {
    let out_file = dir.join(format!("{name}.pcap"));
    let truth = pcapgen(args[0], &out_file, &args[1..]);
    (out_file, truth)
}

/// The alert records of a replay.
fn alerts(summary: &serde_json::Value) -> &Vec<serde_json::Value> {
    summary["alerts"].as_array().unwrap()
}

/// Alert records of `rule` at warning or above.
fn paged<'a>(summary: &'a serde_json::Value, rule: &str) -> Vec<&'a serde_json::Value> {
    alerts(summary)
        .iter()
        .filter(|a| a["rule"] == rule && a["severity"] != "info")
        .collect()
}

/// Each alert transition (rule, state, src, dst, port, severity) with its count.
fn transitions(summary: &serde_json::Value) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for a in alerts(summary) {
        let key = format!(
            "{} {} {} -> {} {} {}",
            a["rule"], a["state"], a["src"], a["dst"], a["port"], a["severity"]
        );
        *counts.entry(key).or_default() += 1;
    }
    counts
}

fn with_workers(workers: &str) -> Vec<&str> {
    let mut args = PROTECT.to_vec();
    args.extend(["--workers", workers]);
    args
}

#[test]
fn a_sudden_upload_alerts_within_30_s_and_a_download_or_internal_backup_does_not() {
    let dir = tempfile::tempdir().unwrap();
    // 300 MB in a minute (40 Mbit/s) from a workstation to one outside address.
    let transfer = [
        "bulk-transfer",
        "--bytes",
        "300000000",
        "--bits-per-second",
        "40000000",
    ];
    let mut upload = transfer.to_vec();
    upload.push("--upload");
    let (pcap, truth) = generate(dir.path(), "upload", &upload);
    let summary = replay_json(&[&pcap], &PROTECT);
    let fired = paged(&summary, "exfiltration");
    let alert = fired
        .iter()
        .find(|a| a["state"] == "firing")
        .unwrap_or_else(|| panic!("no exfiltration alert: {summary}"));
    assert_eq!(alert["src"], truth["client"]);
    let start = truth["data_start_ns"].as_u64().unwrap() as f64 / 1e9;
    let latency = alert["time"].as_f64().unwrap() - start;
    assert!((0.0..=30.0).contains(&latency), "alert after {latency}s");
    let notes = &alert["annotations"];
    assert_eq!(notes["destination"], truth["server"], "{alert}");
    assert_eq!(notes["ports"], "tcp/443", "{alert}");
    assert_eq!(notes["first_seen_destination"], "true", "{alert}");
    assert_eq!(notes["usual_share"], "no usual volume learned", "{alert}");
    assert!(notes["bytes"].as_str().unwrap().parse::<u64>().unwrap() >= 50_000_000);
    assert!(
        notes["duration"].as_str().unwrap().ends_with('s'),
        "{alert}"
    );
    assert_eq!(
        transitions(&summary),
        transitions(&replay_json(&[&pcap], &with_workers("2"))),
        "two workers raise the alerts of one"
    );
    // The same transfer the other way, and an upload to a protected server: nothing.
    let mut backup = upload.clone();
    backup.push("--internal");
    for (name, args) in [("download", transfer.to_vec()), ("backup", backup)] {
        let (pcap, _) = generate(dir.path(), name, &args);
        let summary = replay_json(&[&pcap], &PROTECT);
        let any: Vec<_> = alerts(&summary)
            .iter()
            .filter(|a| a["severity"] != "info")
            .collect();
        assert!(any.is_empty(), "{name}: {any:?}");
    }
}

#[test]
fn reflection_through_each_service_alerts_for_the_victim_within_2_s() {
    let dir = tempfile::tempdir().unwrap();
    for (service, port) in SERVICES {
        // Reflectors outside, only the responses seen; and reflectors beside the victim,
        // the spoofed requests seen too (the responses then answer "its" requests).
        for (layout, requests) in [("inbound", false), ("internal", true)] {
            let mut args = vec![
                "reflection",
                "--service",
                service,
                "--layout",
                layout,
                "--packets",
                "6000",
                "--pps",
                "2000",
            ];
            if requests {
                args.push("--requests");
            }
            let name = format!("{service}-{layout}");
            let (pcap, truth) = generate(dir.path(), &name, &args);
            let summary = replay_json(&[&pcap], &PROTECT);
            let fired = paged(&summary, "reflection");
            let alert = fired
                .iter()
                .find(|a| a["state"] == "firing" && a["dst"] == truth["victim"])
                .unwrap_or_else(|| panic!("{name}: no reflection alert: {summary}"));
            assert_eq!(alert["port"], port, "{name}: {alert}");
            let start = truth["attack_start_ns"].as_u64().unwrap() as f64 / 1e9;
            let latency = alert["time"].as_f64().unwrap() - start;
            assert!((0.0..=2.0).contains(&latency), "{name}: after {latency}s");
            let factor = alert["annotations"]["amplification_factor"]
                .as_str()
                .unwrap();
            if requests {
                assert!(factor.parse::<f64>().unwrap() >= 5.0, "{name}: {alert}");
            } else {
                assert_eq!(factor, "unsolicited", "{name}: {alert}");
            }
            // Outside reflectors are no servers of ours (those beside the victim are, and
            // each alerts once its own share crosses the threshold).
            if layout == "inbound" {
                let abused = paged(&summary, "reflection_outbound");
                assert!(abused.is_empty(), "{name}: {summary}");
            }
        }
    }
}

#[test]
fn our_servers_abused_as_reflectors_alert_for_the_server() {
    let dir = tempfile::tempdir().unwrap();
    for service in ["ntp", "memcached", "dns"] {
        let args = [
            "reflection",
            "--service",
            service,
            "--layout",
            "outbound",
            "--requests",
            "--reflectors",
            "2",
            "--packets",
            "6000",
            "--pps",
            "2000",
        ];
        let (pcap, truth) = generate(dir.path(), service, &args);
        let summary = replay_json(&[&pcap], &PROTECT);
        let mut servers: Vec<_> = paged(&summary, "reflection_outbound")
            .iter()
            .filter(|a| a["state"] == "firing")
            .map(|a| a["src"].as_str().unwrap().to_owned())
            .collect();
        servers.sort();
        let reflectors: Vec<_> = truth["reflectors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(servers, reflectors, "{service}: {summary}");
        assert_eq!(
            transitions(&summary),
            transitions(&replay_json(&[&pcap], &with_workers("2"))),
            "{service}: two workers raise the alerts of one"
        );
    }
}

#[test]
fn reflector_services_used_as_they_should_be_raise_no_reflection_alert() {
    let dir = tempfile::tempdir().unwrap();
    for (service, _) in SERVICES {
        // 3,000 ordinary exchanges a second, as a busy client sees them and as our busy
        // servers answer them.
        for layout in ["inbound", "outbound"] {
            let args = [
                "reflection",
                "--service",
                service,
                "--layout",
                layout,
                "--normal",
                "--packets",
                "9000",
                "--pps",
                "3000",
            ];
            let name = format!("{service}-{layout}-normal");
            let (pcap, _) = generate(dir.path(), &name, &args);
            let summary = replay_json(&[&pcap], &PROTECT);
            for rule in ["reflection", "reflection_outbound"] {
                let fired = paged(&summary, rule);
                assert!(fired.is_empty(), "{name}: {fired:?}");
            }
        }
    }
}
