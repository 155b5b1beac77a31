//! Flood rules against classes of traffic, with the shipped rules and captures made by the
//! project's generator: a large healthy download (IPv4 and IPv6) raises nothing, an ICMP
//! echo flood of a few thousand packets per second and a carpet bomb of a /24 alert
//! within 2 s, and a spoofed SYN flood's evidence names no source it cannot vouch for.

// Test code: a failed expectation is a failed test, with its message.
#![allow(
    clippy::panic,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss
)]

mod common;

use std::path::{Path, PathBuf};

use common::{pcapgen, replay_json};

/// The networks the generator's scenarios protect.
const PROTECT: [&str; 4] = ["--protect", "10.201.0.0/16", "--protect", "fd00:201::/64"];

/// Runs the generator into `dir`; returns the capture and its ground truth.
fn generate(dir: &Path, name: &str, args: &[&str]) -> (PathBuf, serde_json::Value) {
    let scenario = args[0];
    let out_file = dir.join(format!("{name}.pcap"));
    let truth = pcapgen(scenario, &out_file, &args[1..]);
    (out_file, truth)
}

/// The alert records of a replay.
fn alerts(summary: &serde_json::Value) -> &Vec<serde_json::Value> {
    summary["alerts"].as_array().unwrap()
}

/// Whether an alert pages someone: `warning` or above.
fn pages(a: &serde_json::Value) -> bool {
    a["severity"] != "info"
}

/// Seconds from `start_ns` to the first firing of `rule` on `dst`.
fn latency(summary: &serde_json::Value, rule: &str, dst: &str, start_ns: u64) -> f64 {
    let alert = alerts(summary)
        .iter()
        .find(|a| a["rule"] == rule && a["state"] == "firing" && a["dst"] == dst)
        .unwrap_or_else(|| panic!("no {rule} alert on {dst}: {summary}"));
    alert["time"].as_f64().unwrap() - start_ns as f64 / 1e9
}

#[test]
fn large_single_flow_downloads_raise_no_flood() {
    let dir = tempfile::tempdir().unwrap();
    // 40 MB at 400 Mbit/s: ~34,000 data packets/s and ~17,000 ACKs/s in one connection,
    // over ten times the old 3,000 packets/s TCP threshold, on either end.
    for (name, extra) in [("v4", None), ("v6", Some("--ipv6"))] {
        let mut args = vec![
            "bulk-transfer",
            "--bytes",
            "40000000",
            "--bits-per-second",
            "400000000",
        ];
        args.extend(extra);
        let (pcap, truth) = generate(dir.path(), name, &args);
        assert!(truth["data_packets"].as_u64().unwrap() > 27_000);
        let summary = replay_json(&[&pcap], &PROTECT);
        let paged: Vec<_> = alerts(&summary).iter().filter(|a| pages(a)).collect();
        assert!(
            paged.is_empty(),
            "{name}: a download is no flood: {paged:?}"
        );
    }
}

#[test]
fn icmp_echo_flood_of_a_few_thousand_pps_alerts_within_2_s() {
    let dir = tempfile::tempdir().unwrap();
    // 2,000 echo requests/s from one source, each answered by the victim, as `ping -f`
    // or hping3 against a live host.
    let (pcap, truth) = generate(
        dir.path(),
        "icmp",
        &[
            "icmp-flood",
            "--packets",
            "6000",
            "--pps",
            "2000",
            "--payload-bytes",
            "56",
            "--replies",
        ],
    );
    assert_eq!(truth["replies"], 6000);
    let summary = replay_json(&[&pcap], &PROTECT);
    let victim = truth["victim"].as_str().unwrap();
    let start = truth["attack_start_ns"].as_u64().unwrap();
    let l = latency(&summary, "icmp_flood", victim, start);
    assert!((0.0..=2.0).contains(&l), "icmp_flood after {l}s");
    let alert = alerts(&summary)
        .iter()
        .find(|a| a["rule"] == "icmp_flood")
        .unwrap();
    // One real source: named, with a count it is guaranteed to have sent, and no hint.
    let source = truth["sources"][0].as_str().unwrap();
    let named = alert["contributors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "source")
        .unwrap_or_else(|| panic!("{alert}"));
    assert_eq!(named["value"], source);
    assert!(named["count"].as_u64().unwrap() >= 1000, "{alert}");
    assert!(alert["annotations"].get("source_hint").is_none(), "{alert}");
    // The replies leave the protected network: the source is no victim.
    assert!(
        !alerts(&summary).iter().any(|a| a["dst"] == source),
        "{summary}"
    );
}

#[test]
fn carpet_bomb_of_a_prefix_alerts_for_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    for protocol in ["udp", "syn", "icmp"] {
        // 30,000 packets/s over 254 hosts, about 120 per host and far below any host
        // rule, from 100,000 spoofed sources.
        let (pcap, truth) = generate(
            dir.path(),
            protocol,
            &[
                "carpet-bomb",
                "--protocol",
                protocol,
                "--pps",
                "30000",
                "--packets",
                "60000",
                "--sources",
                "100000",
            ],
        );
        assert!(truth["max_packets_per_host"].as_u64().unwrap() < 400);
        let summary = replay_json(&[&pcap], &PROTECT);
        let start = truth["attack_start_ns"].as_u64().unwrap();
        let l = latency(&summary, "carpet_bomb", "10.201.7.0", start);
        assert!(
            (0.0..=2.0).contains(&l),
            "{protocol}: carpet_bomb after {l}s"
        );
        let alert = alerts(&summary)
            .iter()
            .find(|a| a["rule"] == "carpet_bomb")
            .unwrap();
        assert_eq!(alert["severity"], "critical");
        assert_eq!(alert["network"], "10.201.0.0/16", "{alert}");
        let hosts: Vec<_> = alerts(&summary)
            .iter()
            .filter(|a| a["rule"] != "carpet_bomb" && pages(a))
            .map(|a| (&a["rule"], &a["dst"], &a["src"]))
            .collect();
        assert!(hosts.is_empty(), "{protocol}: no host crosses: {hosts:?}");
    }
}

#[test]
fn spoofed_syn_flood_names_no_source_and_says_spoofed() {
    let dir = tempfile::tempdir().unwrap();
    // 200,000 SYNs at 500,000/s from 100,000 spoofed sources: two SYNs per source.
    let (pcap, truth) = generate(
        dir.path(),
        "syn",
        &["syn-flood", "--packets", "200000", "--sources", "100000"],
    );
    let summary = replay_json(&[&pcap], &["--protect", "10.201.0.0/16"]);
    for victim in truth["victims"].as_array().unwrap() {
        let alert = alerts(&summary)
            .iter()
            .find(|a| a["rule"] == "syn_flood" && a["dst"] == *victim)
            .unwrap_or_else(|| panic!("no syn_flood on {victim}: {summary}"));
        let contributors = alert["contributors"].as_array().unwrap();
        assert!(
            !contributors.iter().any(|c| c["kind"] == "source"),
            "a spoofed source is no evidence: {alert}"
        );
        assert!(
            contributors
                .iter()
                .any(|c| c["kind"] == "port" && c["count"].as_u64().unwrap() > 100),
            "{alert}"
        );
        assert_eq!(alert["annotations"]["source_hint"], "spoofed", "{alert}");
        let distinct: f64 = alert["annotations"]["distinct_sources"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(distinct > 1000.0, "{alert}");
    }
}
