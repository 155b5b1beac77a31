//! The whole operations path, end to end on loopback: netwarden (`run --pcap`
//! over a SYN flood made by `netwarden-pcapgen`), a real Prometheus scraping it, and two
//! real Alertmanagers gossiping as a cluster, both configured in netwarden.
//!
//! Asserts that Prometheus has netwarden's series and a firing-alert gauge above zero for
//! the flood rule; that each Alertmanager shows the alert exactly once; that it resolves
//! once the attack has ended (a test rule resolves 3 s after the flood stops, counted on
//! the packet clock, which runs on at wall speed after the file ends); and that with one
//! Alertmanager stopped, a new attack's alert still reaches the other.
//!
//! Needs Debian's `prometheus` and `prometheus-alertmanager` (scripts/test.sh installs
//! them). Every port comes from `free_port()`; every process is killed by a guard's
//! `Drop` on every path.

// Test code: a failed unwrap or panic is a failed test, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{
    Alertmanager, Proc, Prometheus, free_port, http_get, metric_sum, netwarden, short_syn_flood,
    stop, syn_flood_rules, wait_for,
};
use serde_json::Value;

/// The generator's first victim.
const VICTIM: &str = "10.201.0.10";

/// Writes the config (both Alertmanagers, fast retries) and the test rules into `dir`.
fn write_config(dir: &Path, ams: &[&Alertmanager]) -> PathBuf {
    std::fs::create_dir_all(dir.join("rules.d")).unwrap();
    // Resolves 3 s after the flood's last SYN on the packet clock.
    std::fs::write(dir.join("rules.d/flood.toml"), syn_flood_rules("3s")).unwrap();
    let urls: Vec<String> = ams.iter().map(|am| format!("\"{}\"", am.url())).collect();
    let config = dir.join("netwarden.toml");
    std::fs::write(
        &config,
        format!(
            "[[networks]]\nname = \"victims\"\ncidrs = [\"10.201.0.0/16\"]\n\
             [alerting]\nalertmanager_urls = [{}]\n\
             initial_backoff = \"50ms\"\nmax_backoff = \"200ms\"\nmax_attempts = 1000\n",
            urls.join(", ")
        ),
    )
    .unwrap();
    config
}

/// A 3-second flood on `VICTIM` whose packet times end about now.
fn flood(dir: &Path, name: &str, seed: &str) -> PathBuf {
    let pcap = dir.join(name);
    short_syn_flood(&pcap, 3, seed);
    pcap
}

/// `netwarden run` on `pcap` at twice real time, metrics on `port`; waits until ready.
fn run(config: &Path, pcap: &Path, port: u16) -> Proc {
    let child = netwarden()
        .arg("run")
        .arg("--config")
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--speed", "2"])
        .arg("--pcap")
        .arg(pcap)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log_of(config, port)).unwrap())
        .spawn()
        .unwrap();
    let daemon = Proc(child);
    let ready = wait_for(20, || http_get(port, "/readyz").filter(|(s, _)| *s == 200));
    assert!(ready.is_some(), "netwarden never became ready");
    daemon
}

/// Where the daemon with metrics on `port` logs, beside `config`.
fn log_of(config: &Path, port: u16) -> PathBuf {
    config.with_file_name(format!("netwarden-{port}.log"))
}

/// The flood alerts an Alertmanager holds.
fn flood_alerts(am: &Alertmanager) -> Vec<Value> {
    am.alerts()
        .into_iter()
        .filter(|a| a["labels"]["alertname"] == "NetwardenSynFlood" && a["labels"]["dst"] == VICTIM)
        .collect()
}

#[test]
fn attack_reaches_prometheus_and_a_clustered_alertmanager_pair_then_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = [free_port(), free_port()];
    let ams = [
        Alertmanager::start_in_cluster(free_port(), cluster[0], &cluster[1..]),
        Alertmanager::start_in_cluster(free_port(), cluster[1], &cluster[..1]),
    ];
    let config = write_config(dir.path(), &[&ams[0], &ams[1]]);
    let nw_port = free_port();
    let prometheus = Prometheus::start(dir.path(), &[format!("127.0.0.1:{nw_port}")]);
    prometheus.wait_scraping(20);
    let mut daemon = run(&config, &flood(dir.path(), "first.pcap", "1"), nw_port);

    // Prometheus scrapes netwarden and sees the alert firing.
    let packets = prometheus
        .wait_for_data("sum(netwarden_packets_total{job=\"netwarden\"}) > 0", 20)
        .expect("Prometheus never had netwarden's packet counters");
    assert_eq!(packets.len(), 1);
    let firing = prometheus.wait_for_data(
        "max_over_time(netwarden_alerts_firing{rule=\"syn_flood\",severity=\"critical\"}[1m]) > 0",
        20,
    );
    assert!(
        firing.is_some(),
        "the firing gauge never rose above 0: {:?}\nnetwarden's log:\n{}",
        prometheus.query("netwarden_alerts_firing[1m]"),
        std::fs::read_to_string(log_of(&config, nw_port)).unwrap_or_default(),
    );

    // Each Alertmanager holds the alert exactly once.
    for am in &ams {
        let one = wait_for(20, || Some(flood_alerts(am)).filter(|a| !a.is_empty()))
            .expect("the alert reaches every Alertmanager");
        assert_eq!(one.len(), 1, "{one:?}");
        assert_eq!(one[0]["labels"]["severity"], "critical");
        assert_eq!(one[0]["labels"]["rule"], "syn_flood");
    }
    let all: Vec<usize> = ams.iter().map(|am| am.alerts().len()).collect();
    assert_eq!(all, [1, 1], "nothing else, nothing twice");

    // The file ends; 3 s of packet time later the alert resolves everywhere.
    for am in &ams {
        let gone = wait_for(30, || flood_alerts(am).is_empty().then_some(()));
        assert!(gone.is_some(), "never resolved: {:?}", flood_alerts(am));
    }
    let cleared = prometheus.wait_for_data(
        "netwarden_alerts_firing{rule=\"syn_flood\",severity=\"critical\"} == 0",
        20,
    );
    assert!(cleared.is_some(), "the firing gauge never fell back to 0");
    assert!(stop(&mut daemon.0, "TERM").success());

    // One Alertmanager down: a new attack's alert still reaches the other.
    let [survivor, stopped] = ams;
    drop(stopped);
    let port = free_port();
    let _daemon = run(&config, &flood(dir.path(), "second.pcap", "2"), port);
    let arrived = wait_for(20, || {
        Some(flood_alerts(&survivor)).filter(|a| !a.is_empty())
    });
    assert_eq!(
        arrived.map(|a| a.len()),
        Some(1),
        "alert lost with one Alertmanager down"
    );
    let connect = ["sink=\"alertmanager-1\"", "error_type=\"connect\""];
    let failing = wait_for(10, || {
        let (_, m) = http_get(port, "/metrics")?;
        (metric_sum(&m, "netwarden_alert_send_errors_total", &connect) > 0).then_some(())
    });
    assert!(
        failing.is_some(),
        "no failed sends counted for the stopped Alertmanager"
    );
}
