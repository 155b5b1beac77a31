//! Firing alerts survive a restart, through the real binary: `netwarden run
//! --pcap` over a generated SYN flood with a state directory, an alert log file and a real
//! Alertmanager; SIGTERM; a restart on a capture that continues the flood must not fire
//! the alert a second time (one `firing` line across both runs, Alertmanager keeps the
//! first `startsAt`); a restart without the flood resolves it once `restore_grace` ends.
//!
//! Every process started is stopped by a guard's `Drop`; ports are picked free.

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
    Alertmanager, Proc, alert_log, free_port, http_get, metric_sum, netwarden, pcaps_dir,
    short_syn_flood, stop, syn_flood_rules, wait_for,
};
use serde_json::Value;

/// The generator's first victim.
const VICTIM: &str = "10.201.0.10";

/// One test's files: config, rules, state directory, alert log, captures.
struct Site {
    dir: tempfile::TempDir,
    am_url: String,
}

impl Site {
    fn new(am: &Alertmanager) -> Site {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules.d")).unwrap();
        // Long enough that the first run's alert is still firing when it is stopped.
        std::fs::write(
            dir.path().join("rules.d/flood.toml"),
            syn_flood_rules("60s"),
        )
        .unwrap();
        Site {
            dir,
            am_url: am.url(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs the daemon on `pcap` with `restore_grace = grace`; waits until it is ready.
    fn run(&self, pcap: &Path, grace: &str) -> (Proc, u16) {
        let port = free_port();
        let config = self.path(&format!("netwarden-{port}.toml"));
        std::fs::write(
            &config,
            format!(
                "[[networks]]\nname = \"victims\"\ncidrs = [\"10.201.0.0/16\"]\n\
                 [metrics]\nlisten = \"127.0.0.1:{port}\"\n[alerting]\n\
                 alertmanager_urls = [\"{}\"]\nlog_file = {:?}\nrestore_grace = \"{grace}\"\n\
                 initial_backoff = \"50ms\"\nmax_backoff = \"200ms\"\n",
                self.am_url,
                self.path("alerts.jsonl").display().to_string()
            ),
        )
        .unwrap();
        let child = netwarden()
            .arg("run")
            .arg("--config")
            .arg(&config)
            .args(["--speed", "max", "--pcap"])
            .arg(pcap)
            .env("STATE_DIRECTORY", self.path("state"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.path(&format!("stderr-{port}.log"))).unwrap())
            .spawn()
            .unwrap();
        let daemon = Proc(child);
        let ready = wait_for(20, || http_get(port, "/readyz").filter(|(s, _)| *s == 200));
        assert!(ready.is_some(), "daemon never became ready");
        (daemon, port)
    }

    /// The log lines of the flood alert on the victim, as (state, started).
    fn flood_lines(&self) -> Vec<(String, f64)> {
        alert_log(&self.path("alerts.jsonl"))
            .iter()
            .filter(|a| a["rule"] == "syn_flood" && a["dst"] == VICTIM)
            .map(|a| {
                (
                    a["state"].as_str().unwrap().to_owned(),
                    a["started"].as_f64().unwrap(),
                )
            })
            .collect()
    }

    /// The alerts in the state file.
    fn saved(&self) -> Vec<Value> {
        std::fs::read_to_string(self.path("state/alerts.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["alerts"].as_array().cloned())
            .unwrap_or_default()
    }

    /// A SYN flood on the victim (`common::short_syn_flood`) starting `ago` seconds ago.
    fn flood(&self, name: &str, ago: u64, seed: &str) -> PathBuf {
        let pcap = self.path(name);
        short_syn_flood(&pcap, ago, seed);
        pcap
    }
}

fn stop_daemon(mut daemon: Proc) {
    let status = stop(&mut daemon.0, "TERM");
    assert!(status.success(), "{status:?}");
}

fn flood_alert(am: &Alertmanager) -> Option<Value> {
    am.alerts()
        .into_iter()
        .find(|a| a["labels"]["rule"] == "syn_flood" && a["labels"]["dst"] == VICTIM)
}

/// First run: the flood fires; SIGTERM leaves it in the state file. Returns Alertmanager's
/// `startsAt` for it and the saved record's transition time.
fn fire_and_stop(site: &Site, am: &Alertmanager) -> (String, f64) {
    let first = site.flood("first.pcap", 60, "1");
    let (daemon, _) = site.run(&first, "30s");
    let fired = wait_for(20, || (!site.flood_lines().is_empty()).then_some(()));
    assert!(fired.is_some(), "the flood never fired");
    let alert = wait_for(20, || flood_alert(am)).expect("the alert reaches Alertmanager");
    stop_daemon(daemon);
    let saved = site.saved();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(saved[0]["dst"], VICTIM);
    assert_eq!(site.flood_lines().len(), 1);
    (
        alert["startsAt"].as_str().unwrap().to_owned(),
        saved[0]["time"].as_f64().unwrap(),
    )
}

#[test]
fn restart_during_an_attack_keeps_one_alert_firing() {
    let am = Alertmanager::start(free_port());
    let site = Site::new(&am);
    let (starts_at, fired_at) = fire_and_stop(&site, &am);
    let first_started = site.flood_lines()[0].1;

    // The flood goes on: the second capture starts where the first one ended.
    let second = site.flood("second.pcap", 57, "2");
    let (daemon, port) = site.run(&second, "30s");
    // Detection reports the flood again and the router adopts it: the saved record is
    // refreshed with the second run's packet times.
    let adopted = wait_for(20, || {
        let saved = site.saved();
        (saved.len() == 1 && saved[0]["time"].as_f64() != Some(fired_at)).then_some(saved)
    });
    assert!(adopted.is_some(), "never adopted: {:?}", site.saved());
    let gauge = http_get(port, "/metrics")
        .map(|(_, m)| metric_sum(&m, "netwarden_alerts_firing", &["rule=\"syn_flood\""]));
    assert_eq!(gauge, Some(1), "detection confirms the alert");
    let alert = flood_alert(&am).expect("still active in Alertmanager");
    assert_eq!(alert["startsAt"], starts_at.as_str(), "{alert}");
    stop_daemon(daemon);
    assert_eq!(
        site.flood_lines(),
        [("firing".to_owned(), first_started)],
        "one firing across both runs"
    );
    assert_eq!(site.saved()[0]["started"].as_f64(), Some(first_started));
}

#[test]
fn restart_after_the_attack_resolves_the_alert_after_the_grace() {
    let am = Alertmanager::start(free_port());
    let site = Site::new(&am);
    fire_and_stop(&site, &am);
    let first_started = site.flood_lines()[0].1;

    let begun = std::time::Instant::now();
    let (daemon, _) = site.run(&pcaps_dir().join("benign/zeek_http_get.pcap"), "2s");
    let resolved = wait_for(20, || (site.flood_lines().len() == 2).then_some(()));
    assert!(
        resolved.is_some(),
        "never resolved: {:?}",
        site.flood_lines()
    );
    let took = begun.elapsed();
    assert!(
        took >= std::time::Duration::from_secs(2),
        "resolved before the grace: {took:?}"
    );
    assert_eq!(
        site.flood_lines(),
        [
            ("firing".to_owned(), first_started),
            ("resolved".to_owned(), first_started)
        ]
    );
    let gone = wait_for(20, || flood_alert(&am).is_none().then_some(()));
    assert!(gone.is_some(), "still active: {:?}", flood_alert(&am));
    let emptied = wait_for(5, || site.saved().is_empty().then_some(()));
    assert!(emptied.is_some(), "{:?}", site.saved());
    stop_daemon(daemon);
}
