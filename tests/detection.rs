//! Detection: the shipped rules against the public captures (through
//! `netwarden rules test`), detection latency on the packet clock with the project's
//! capture generator, the alert record in `replay --json`, and peak memory under a
//! spoofed-source SYN flood of millions of sources.

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
use std::process::Output;
use std::time::Duration;

use common::{netwarden, pcapgen, pcaps_dir, replay_json};

fn rules_test(file: &Path) -> Output {
    netwarden()
        .args(["rules", "test"])
        .arg(file)
        .env("NETWARDEN_PCAPS", pcaps_dir())
        .output()
        .unwrap()
}

fn rules_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/rules")
        .join(name)
}

#[test]
fn attack_captures_raise_their_ground_truth() {
    let out = rules_test(&rules_file("attacks.toml"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("0 failed"), "{stdout}");
}

#[test]
fn benign_captures_raise_nothing_at_warning_or_above() {
    let out = rules_test(&rules_file("benign.toml"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let benign = std::fs::read_dir(pcaps_dir().join("benign"))
        .unwrap()
        .count();
    assert!(
        stdout.contains(&format!("{benign} cases, {benign} passed")),
        "every benign capture must be a case: {stdout}"
    );
}

#[test]
fn blocklist_rule_flags_listed_addresses_in_captures() {
    let out = rules_test(&rules_file("blocklist.toml"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("3 cases, 3 passed, 0 failed"), "{stdout}");
}

#[test]
fn a_bad_blocklist_line_fails_the_run_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "# ok\n192.0.2.1\nnot-an-address\n").unwrap();
    let config = dir.path().join("netwarden.toml");
    std::fs::write(
        &config,
        "[[rules]]\nname = \"listed\"\nkind = \"blocklist\"\nseverity = \"warning\"\nfiles = [\"list.txt\"]\n",
    )
    .unwrap();
    let pcap = pcaps_dir().join("attacks/stopddos_amp.UDP.isakmp.pcap");
    let out = netwarden()
        .args(["replay", "--json", "--config"])
        .arg(&config)
        .arg(&pcap)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:3: invalid CIDR `not-an-address`",
            list.display()
        )),
        "{stderr}"
    );
}

#[test]
fn rules_test_fails_with_a_readable_diff() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wrong.toml");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/netwarden.toml");
    std::fs::write(
        &file,
        format!(
            r#"config = "{}"
[[cases]]
name = "wrong victim"
pcap = "${{NETWARDEN_PCAPS}}/attacks/stopddos_amp.UDP.isakmp.pcap"
[[cases.expect]]
rule = "udp_flood"
dst = "192.0.2.1"
[[cases.absent]]
rule = "udp_flood"
"#,
            config.display()
        ),
    )
    .unwrap();
    let out = rules_test(&file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("FAIL wrong victim"), "{stdout}");
    assert!(
        stdout.contains("expected rule=udp_flood dst=192.0.2.1 (not fired)"),
        "{stdout}"
    );
    assert!(stdout.contains("unexpected rule=udp_flood"), "{stdout}");
    assert!(
        stdout.contains("+ rule=udp_flood kind=volume src=- dst=10.10.10.10"),
        "{stdout}"
    );
    assert!(stdout.contains("1 cases, 0 passed, 1 failed"), "{stdout}");
}

/// Runs the generator into `dir`; returns the capture and its ground truth.
fn generate(dir: &Path, scenario: &str, args: &[&str]) -> (PathBuf, serde_json::Value) {
    let out_file = dir.join(format!("{scenario}.pcap"));
    let truth = pcapgen(scenario, &out_file, args);
    (out_file, truth)
}

/// Seconds from `start_ns` to the first firing of `rule` matching `key` (`src` or `dst`).
fn latency(summary: &serde_json::Value, rule: &str, key: (&str, &str), start_ns: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let start = start_ns as f64 / 1e9;
    let alert = summary["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == rule && a["state"] == "firing" && a[key.0] == key.1)
        .unwrap_or_else(|| panic!("no {rule} alert for {key:?}: {summary}"));
    alert["time"].as_f64().unwrap() - start
}

#[test]
fn synthetic_attacks_alert_within_the_latency_budget() {
    let dir = tempfile::tempdir().unwrap();
    let ns = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap();

    let (pcap, truth) = generate(
        dir.path(),
        "syn-flood",
        &[
            "--packets",
            "200000",
            "--sources",
            "100000",
            "--warmup-secs",
            "3",
        ],
    );
    let summary = replay_json(&[&pcap], &[]);
    for victim in truth["victims"].as_array().unwrap() {
        let victim = victim.as_str().unwrap();
        let l = latency(
            &summary,
            "syn_flood",
            ("dst", victim),
            ns(&truth, "attack_start_ns"),
        );
        assert!((0.0..=2.0).contains(&l), "syn_flood on {victim} after {l}s");
    }
    // The warm-up traffic (completed sessions) before the attack raised nothing.
    for a in summary["alerts"].as_array().unwrap() {
        assert!(a["time"].as_f64().unwrap() * 1e9 >= ns(&truth, "attack_start_ns") as f64);
    }
    // The same capture gives the same alerts: time is the packet clock.
    assert_eq!(replay_json(&[&pcap], &[])["alerts"], summary["alerts"]);

    for (scenario, rule) in [("udp-flood", "udp_flood"), ("icmp-flood", "icmp_flood")] {
        let (pcap, truth) = generate(dir.path(), scenario, &["--sources", "3"]);
        let summary = replay_json(&[&pcap], &[]);
        let victim = truth["victim"].as_str().unwrap();
        let l = latency(
            &summary,
            rule,
            ("dst", victim),
            ns(&truth, "attack_start_ns"),
        );
        assert!((0.0..=2.0).contains(&l), "{rule} after {l}s");
        // Large packets to random ports are a flood, not a port scan.
        assert!(
            !summary["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["kind"] == "port_scan" || a["kind"] == "host_sweep"),
            "a {scenario} is not a scan: {summary}"
        );
    }

    let (pcap, truth) = generate(dir.path(), "dns-amplification", &[]);
    let summary = replay_json(&[&pcap], &[]);
    let victim = truth["victim"].as_str().unwrap();
    let l = latency(
        &summary,
        "dns_amplification",
        ("dst", victim),
        ns(&truth, "attack_start_ns"),
    );
    assert!((0.0..=2.0).contains(&l), "dns_amplification after {l}s");

    let (pcap, truth) = generate(dir.path(), "port-scan", &[]);
    let summary = replay_json(&[&pcap], &[]);
    let scanner = truth["scanner"].as_str().unwrap();
    let l = latency(
        &summary,
        "port_scan",
        ("src", scanner),
        ns(&truth, "scan_start_ns"),
    );
    assert!((0.0..=5.0).contains(&l), "port_scan after {l}s");
    assert!(
        !summary["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "syn_flood"),
        "a port scan is not a SYN flood: {summary}"
    );

    let (pcap, truth) = generate(dir.path(), "host-sweep", &[]);
    let summary = replay_json(&[&pcap], &[]);
    let scanner = truth["scanner"].as_str().unwrap();
    let l = latency(
        &summary,
        "host_sweep",
        ("src", scanner),
        ns(&truth, "sweep_start_ns"),
    );
    assert!((0.0..=5.0).contains(&l), "host_sweep after {l}s");

    let (pcap, truth) = generate(dir.path(), "dns-tunnel", &[]);
    let summary = replay_json(&[&pcap], &[]);
    let client = truth["client"].as_str().unwrap();
    let l = latency(
        &summary,
        "dns_tunnel",
        ("src", client),
        ns(&truth, "start_ns"),
    );
    assert!((0.0..=60.0).contains(&l), "dns_tunnel after {l}s");
}

#[test]
fn replay_alert_records_carry_the_documented_fields() {
    let path = pcaps_dir().join("attacks/stopddos_pkt.TCP.synflood.spoofed.pcap");
    let summary = replay_json(&[&path], &[]);
    let alert = summary["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "syn_flood")
        .unwrap_or_else(|| panic!("{summary}"));
    assert_eq!(alert["kind"], "syn_flood");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["state"], "firing");
    assert_eq!(alert["dst"], "10.10.10.10");
    assert!(alert.get("src").is_none(), "a flood is keyed by its victim");
    for field in ["time", "started", "last_seen", "value", "threshold"] {
        assert!(alert[field].is_f64(), "{field}: {alert}");
    }
    assert!(alert["value"].as_f64() >= alert["threshold"].as_f64());
    let contributors = alert["contributors"].as_array().unwrap();
    // About one SYN per spoofed source: no source can be vouched for, so none is named;
    // the alert says how many there were and that they are spoofed.
    assert!(
        !contributors.iter().any(|c| c["kind"] == "source"),
        "{alert}"
    );
    assert_eq!(alert["annotations"]["source_hint"], "spoofed", "{alert}");
    assert!(
        alert["annotations"]["distinct_sources"].is_string(),
        "{alert}"
    );
    assert!(
        contributors
            .iter()
            .any(|c| c["kind"] == "port" && c["value"] == "tcp/25565"),
        "{alert}"
    );
    assert_eq!(alert["annotations"]["summary"], "SYN flood on 10.10.10.10");
}

/// Peak resident memory of a running process, KiB (`VmHWM` only grows, so the last read
/// before exit is the peak up to a polling interval).
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn spoofed_syn_flood_of_millions_of_sources_stays_within_256_mib() {
    let dir = tempfile::tempdir().unwrap();
    // The default scenario: 5,000,000 SYNs from 3,000,000 spoofed sources to 3 victims.
    let (pcap, truth) = generate(dir.path(), "syn-flood", &[]);
    assert_eq!(truth["distinct_sources"], 3_000_000);
    let out_path = dir.path().join("summary.json");
    let mut child = netwarden()
        .args(["replay", "--json"])
        .arg(&pcap)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .spawn()
        .unwrap();
    let mut peak_kib = 0;
    let status = loop {
        if let Some(kib) = vm_hwm_kib(child.id()) {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    eprintln!("peak RSS {} MiB", peak_kib / 1024);
    assert!(peak_kib > 0, "VmHWM was never read");
    assert!(peak_kib <= 256 * 1024, "peak RSS {peak_kib} KiB");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_path).unwrap()).unwrap();
    for victim in truth["victims"].as_array().unwrap() {
        assert!(
            summary["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["rule"] == "syn_flood" && a["state"] == "firing" && a["dst"] == *victim),
            "no syn_flood alert on {victim}"
        );
    }
}
