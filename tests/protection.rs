//! Graded protection end to end: the same attack, replayed against host groups of
//! different protection levels, raises alerts whose severity follows the severity matrix
//! and whose labels name the asset; the per-network series carry the same labels;
//! `check-config --print-matrix` shows the matrix.

// Test code: a failed expectation is a failed test, with its message.
#![allow(clippy::panic, clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;

use std::process::Stdio;

use common::{
    free_port, http_get, metric_sum, netwarden, pcapgen, replay_json, shipped_rules_config, stop,
    wait_for,
};

/// The victim of the generated flood.
const VICTIM: &str = "10.201.0.10";

/// A config in `dir` with the shipped rules and the victim in host group `group` at
/// protection level `level`, data grade `grade`.
fn config(dir: &Path, group: &str, level: u8, grade: &str) -> std::path::PathBuf {
    let groups = format!(
        "[[host_groups]]\nname = \"{group}\"\ncidrs = [\"10.201.0.0/24\"]\n\
         protection_level = {level}\ndata_grade = \"{grade}\"\n\
         [[host_groups]]\nname = \"elsewhere\"\ncidrs = [\"10.202.0.0/16\"]\nprotection_level = 5\n"
    );
    std::fs::create_dir_all(dir).unwrap();
    shipped_rules_config(dir, &groups)
}

/// The first firing `syn_flood` alert on the victim in a replay of `pcap` under `config`.
fn syn_flood_alert(pcap: &Path, config: &Path) -> serde_json::Value {
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--protect",
        "10.0.0.0/8",
    ];
    let summary = replay_json(&[pcap], &args);
    summary["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "syn_flood" && a["state"] == "firing" && a["dst"] == VICTIM)
        .unwrap_or_else(|| panic!("no syn_flood alert on {VICTIM}: {summary}"))
        .clone()
}

#[test]
fn the_same_syn_flood_is_critical_on_level_two_and_an_emergency_on_level_four() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("syn-flood.pcap");
    let truth = pcapgen(
        "syn-flood",
        &pcap,
        &[
            "--packets",
            "20000",
            "--pps",
            "5000",
            "--victims",
            "1",
            "--sources",
            "5000",
        ],
    );
    assert_eq!(truth["victims"][0], VICTIM, "{truth}");

    let office = config(&dir.path().join("l2"), "office", 2, "general");
    let alert = syn_flood_alert(&pcap, &office);
    assert_eq!(alert["severity"], "critical", "{alert}");
    assert_eq!(alert["labels"]["host_group"], "office", "{alert}");
    assert_eq!(alert["labels"]["protection_level"], "2", "{alert}");
    assert_eq!(alert["labels"]["data_grade"], "general", "{alert}");

    let core = config(&dir.path().join("l4"), "payments", 4, "core");
    let alert = syn_flood_alert(&pcap, &core);
    assert_eq!(alert["severity"], "emergency", "{alert}");
    assert_eq!(alert["labels"]["host_group"], "payments", "{alert}");
    assert_eq!(alert["labels"]["protection_level"], "4", "{alert}");
    assert_eq!(alert["labels"]["data_grade"], "core", "{alert}");
    // The rule's own severity is unchanged: the matrix escalates the alert only.
    assert_eq!(alert["rule"], "syn_flood");
}

#[test]
fn a_host_in_no_group_takes_the_configured_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("syn-flood.pcap");
    pcapgen(
        "syn-flood",
        &pcap,
        &[
            "--packets",
            "20000",
            "--pps",
            "5000",
            "--victims",
            "1",
            "--sources",
            "5000",
        ],
    );
    let config = shipped_rules_config(
        dir.path(),
        "[protection]\ndefault_host_group = \"unclassified\"\ndefault_level = 5\n\
         default_data_grade = \"important\"\n",
    );
    let alert = syn_flood_alert(&pcap, &config);
    assert_eq!(alert["severity"], "emergency", "{alert}");
    assert_eq!(alert["labels"]["host_group"], "unclassified", "{alert}");
    assert_eq!(alert["labels"]["protection_level"], "5", "{alert}");
    assert_eq!(alert["labels"]["data_grade"], "important", "{alert}");
}

#[test]
fn check_config_prints_the_severity_matrix_in_effect() {
    let dir = tempfile::tempdir().unwrap();
    let config = shipped_rules_config(
        dir.path(),
        "[protection.severity_matrix]\n\
         warning = [\"warning\", \"warning\", \"critical\", \"critical\", \"emergency\"]\n",
    );
    let out = netwarden()
        .args(["check-config", "--print-matrix", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 5, "{stdout}");
    assert_eq!(
        rows[2],
        [
            "warning",
            "warning",
            "warning",
            "critical",
            "critical",
            "emergency"
        ],
        "{stdout}"
    );
    assert_eq!(
        rows[3],
        [
            "critical",
            "critical",
            "critical",
            "critical",
            "emergency",
            "emergency"
        ],
        "the shipped row where the config sets none: {stdout}"
    );
}

#[test]
fn a_bad_protection_setting_is_reported_at_its_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = shipped_rules_config(
        dir.path(),
        "[[host_groups]]\nname = \"db\"\ncidrs = [\"10.0.0.0/24\"]\nprotection_level = 6\n",
    );
    let out = netwarden()
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:5:20: key `host_groups.protection_level`: protection level must be 1 to 5, got 6",
            config.display()
        )),
        "{stderr}"
    );
}

#[test]
fn per_network_series_carry_the_host_group_labels_of_the_protected_end() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("syn-flood.pcap");
    pcapgen(
        "syn-flood",
        &pcap,
        &[
            "--packets",
            "20000",
            "--pps",
            "5000",
            "--victims",
            "1",
            "--sources",
            "5000",
        ],
    );
    let config = config(&dir.path().join("cfg"), "payments", 4, "core");
    let port = free_port();
    let mut child = netwarden()
        .args([
            "run",
            "--speed",
            "max",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--protect", "10.0.0.0/8", "--config"])
        .arg(&config)
        .arg("--pcap")
        .arg(&pcap)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let metrics = wait_for(30, || {
        let (_, body) = http_get(port, "/metrics")?;
        (metric_sum(&body, "netwarden_packets_total", &[]) >= 20_000).then_some(body)
    })
    .expect("packets never all counted");
    let series = |labels: &[&str]| metric_sum(&metrics, "netwarden_network_packets_total", labels);
    let payments = [
        "network=\"10.0.0.0/8\"",
        "host_group=\"payments\"",
        "protection_level=\"4\"",
        "data_grade=\"core\"",
    ];
    assert!(series(&payments) > 0, "{metrics}");
    assert_eq!(
        series(&payments),
        series(&[]),
        "every packet is to or from the victim"
    );
    // The other host group and the hosts in no group have their series, at zero.
    assert!(
        metrics.contains(
            "netwarden_network_packets_total{data_grade=\"general\",direction=\"inbound\",\
             host_group=\"ungrouped\",network=\"10.0.0.0/8\",protection_level=\"2\"} 0"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("host_group=\"elsewhere\""), "{metrics}");
    let status = stop(&mut child, "TERM");
    assert!(status.success(), "exit status {status:?}");
}
