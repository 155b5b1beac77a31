//! Hot reload of a running daemon: a valid edit of a watched rules file changes
//! what fires without a restart; an invalid edit, or one that leaves no rule, is refused
//! with its reason, the old rules keep running and the reload metrics say so; SIGHUP
//! reloads too.
//!
//! Each test runs `netwarden run --pcap` at twice real time over a generated capture:
//! 10 s of benign traffic to the victim, then a 1,000 SYN/s flood for 30 s, so the edits
//! land before the attack starts.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{free_port, http_get, metric_sum, netwarden, pcapgen, stop, wait_for};

/// The flood's victim (the generator's first victim).
const VICTIM: &str = "10.201.0.10";

/// A running daemon, killed if the test fails half-way.
struct Daemon {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        drop(self.child.kill());
        drop(self.child.wait());
    }
}

impl Daemon {
    /// Starts the daemon on `dir`'s config over the generated capture.
    fn start(dir: tempfile::TempDir) -> Daemon {
        let pcap = dir.path().join("flood.pcap");
        pcapgen(
            "syn-flood",
            &pcap,
            &[
                "--packets",
                "30000",
                "--pps",
                "1000",
                "--victims",
                "1",
                "--sources",
                "500",
                "--warmup-secs",
                "10",
            ],
        );
        let port = free_port();
        let child = netwarden()
            .arg("run")
            .arg("--config")
            .arg(dir.path().join("netwarden.toml"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--speed", "2"])
            .arg("--pcap")
            .arg(&pcap)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        let daemon = Daemon { child, port, dir };
        assert!(
            wait_for(20, || http_get(port, "/readyz").filter(|(s, _)| *s == 200)).is_some(),
            "never became ready: {}",
            daemon.stderr()
        );
        daemon
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.path("stderr.log")).unwrap_or_default()
    }

    fn metrics(&self) -> String {
        http_get(self.port, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    /// Waits until `netwarden_config_reloads_total{result}` reaches `n`.
    fn await_reloads(&self, result: &str, n: u64) {
        let label = format!("result=\"{result}\"");
        let seen = wait_for(15, || {
            let m = self.metrics();
            (metric_sum(&m, "netwarden_config_reloads_total", &[&label]) >= n).then_some(())
        });
        assert!(
            seen.is_some(),
            "no {result} reload #{n}; metrics:\n{}\nstderr:\n{}",
            self.metrics(),
            self.stderr()
        );
    }

    /// The `firing` transitions in the alert log, as (rule, dst).
    fn firing(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(self.path("alerts.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|a| a["state"] == "firing")
            .map(|a| {
                (
                    a["rule"].as_str().unwrap_or_default().to_owned(),
                    a["dst"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Waits for `rule` to fire on the victim.
    fn await_firing(&self, rule: &str) {
        let fired = wait_for(30, || {
            self.firing()
                .iter()
                .any(|(r, d)| r == rule && d == VICTIM)
                .then_some(())
        });
        assert!(
            fired.is_some(),
            "{rule} never fired; alerts: {:?}\nstderr:\n{}",
            self.firing(),
            self.stderr()
        );
    }
}

/// A config dir: `netwarden.toml` protecting the victim's network and logging alerts to
/// `alerts.jsonl`, and `rules.d/test.toml` holding `rule`.
fn config_dir(rule: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("alerts.jsonl");
    std::fs::write(
        dir.path().join("netwarden.toml"),
        format!(
            "[[networks]]\nname = \"lab\"\ncidrs = [\"10.201.0.0/16\"]\n\n\
             [alerting]\nlog_file = {:?}\n",
            log.display().to_string()
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("rules.d")).unwrap();
    write_atomically(&dir.path().join("rules.d/test.toml"), rule);
    dir
}

/// A SYN-rate rule on protected hosts.
fn syn_rule(name: &str, threshold: &str) -> String {
    format!(
        "[[rules]]\nname = \"{name}\"\nkind = \"volume\"\nscope = \"protected\"\n\
         severity = \"critical\"\nthreshold = {threshold}\nwindow = \"1s\"\nprotocol = \"tcp_syn\"\n"
    )
}

/// Writes `text` the way editors save: a temporary file renamed over the target.
fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn valid_rule_edit_takes_effect_without_restart() {
    let daemon = Daemon::start(config_dir(&syn_rule("syn_rate", "1e12")));
    let metrics = daemon.metrics();
    assert_eq!(
        metric_sum(&metrics, "netwarden_config_last_reload_successful", &[]),
        1
    );
    // Lower the threshold before the attack reaches the daemon (10 s of packet time).
    write_atomically(
        &daemon.path("rules.d/test.toml"),
        &syn_rule("syn_rate", "200"),
    );
    daemon.await_reloads("success", 1);
    assert!(
        daemon.firing().is_empty(),
        "fired before the edit: {:?}",
        daemon.firing()
    );
    daemon.await_firing("syn_rate");
    // A rule added by a new file in rules.d is picked up too.
    write_atomically(
        &daemon.path("rules.d/more.toml"),
        &syn_rule("syn_rate_added", "200"),
    );
    daemon.await_reloads("success", 2);
    daemon.await_firing("syn_rate_added");
    let firing = daemon.firing();
    assert_eq!(
        firing.iter().filter(|(r, _)| r == "syn_rate").count(),
        1,
        "the unchanged rule's alert fired again after the second reload: {firing:?}"
    );
}

#[test]
fn invalid_edit_is_refused_and_old_rules_keep_running() {
    let mut daemon = Daemon::start(config_dir(&syn_rule("syn_rate", "200")));
    let broken = syn_rule("syn_rate", "200").replace("threshold = 200", "threshold = \"lots\"");
    write_atomically(&daemon.path("rules.d/test.toml"), &broken);
    daemon.await_reloads("failure", 1);
    let metrics = daemon.metrics();
    assert_eq!(
        metric_sum(&metrics, "netwarden_config_last_reload_successful", &[]),
        0
    );
    assert_eq!(
        metric_sum(
            &metrics,
            "netwarden_config_reloads_total",
            &["result=\"success\""]
        ),
        0
    );
    // The refusal names the file and the line of the bad key.
    let stderr = daemon.stderr();
    assert!(
        stderr.contains("reload refused") && stderr.contains("test.toml:6"),
        "{stderr}"
    );
    // The old rule still runs: the attack raises its alert.
    daemon.await_firing("syn_rate");
    // Fixing the file is accepted and the gauge recovers.
    write_atomically(
        &daemon.path("rules.d/test.toml"),
        &syn_rule("syn_rate", "200"),
    );
    daemon.await_reloads("success", 1);
    let recovered = wait_for(5, || {
        (metric_sum(
            &daemon.metrics(),
            "netwarden_config_last_reload_successful",
            &[],
        ) == 1)
            .then_some(())
    });
    assert!(recovered.is_some(), "{}", daemon.metrics());
    // SIGHUP reloads too (nothing changed: still one more accepted reload), and does not
    // stop the daemon.
    let before = metric_sum(
        &daemon.metrics(),
        "netwarden_config_reloads_total",
        &["result=\"success\""],
    );
    Command::new("kill")
        .args(["-HUP", &daemon.child.id().to_string()])
        .status()
        .unwrap();
    daemon.await_reloads("success", before + 1);
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "SIGHUP stopped the daemon"
    );
    assert!(stop(&mut daemon.child, "TERM").success());
}

#[test]
fn blocklist_file_change_is_picked_up_without_restart() {
    let rule = "[[rules]]\nname = \"blocklisted\"\nkind = \"blocklist\"\nscope = \"protected\"\n\
                severity = \"warning\"\nfiles = [\"blocklist.txt\"]\nwindow = \"10s\"\n";
    let dir = config_dir(rule);
    std::fs::write(dir.path().join("blocklist.txt"), "# nothing listed yet\n").unwrap();
    let daemon = Daemon::start(dir);
    // Traffic to the victim flows from the start, but nothing is listed yet.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(daemon.firing().is_empty(), "{:?}", daemon.firing());
    // Listing the victim (as a feed job would, by renaming a new file into place) makes
    // its traffic match from the next tick on.
    write_atomically(
        &daemon.path("blocklist.txt"),
        &format!("# updated by the feed\n{VICTIM}/32  # the victim, for this test\n"),
    );
    daemon.await_reloads("success", 1);
    daemon.await_firing("blocklisted");
    // A malformed line is refused, naming the file and line; the list stays in force.
    write_atomically(&daemon.path("blocklist.txt"), "10.0.0.1\nnot-an-address\n");
    daemon.await_reloads("failure", 1);
    let stderr = daemon.stderr();
    assert!(stderr.contains("blocklist.txt:2"), "{stderr}");
}

#[test]
fn a_reload_that_leaves_no_rule_is_refused_unless_the_config_allows_it() {
    let mut daemon = Daemon::start(config_dir(&syn_rule("syn_rate", "200")));
    let loaded =
        |d: &Daemon| metric_sum(&d.metrics(), "netwarden_rules_loaded", &["kind=\"volume\""]);
    assert_eq!(loaded(&daemon), 1);
    // Emptying the rules folder would switch detection off: refused.
    std::fs::remove_file(daemon.path("rules.d/test.toml")).unwrap();
    Command::new("kill")
        .args(["-HUP", &daemon.child.id().to_string()])
        .status()
        .unwrap();
    daemon.await_reloads("failure", 1);
    assert!(
        daemon
            .stderr()
            .contains("no rule that can alert would be left"),
        "{}",
        daemon.stderr()
    );
    assert_eq!(loaded(&daemon), 1);
    // The old rule still runs: the attack raises its alert.
    daemon.await_firing("syn_rate");
    // Said explicitly, it is accepted, and the gauge shows it.
    let config = std::fs::read_to_string(daemon.path("netwarden.toml")).unwrap();
    write_atomically(
        &daemon.path("netwarden.toml"),
        &format!("allow_no_rules = true\n{config}"),
    );
    daemon.await_reloads("success", 1);
    assert_eq!(loaded(&daemon), 0);
    assert!(stop(&mut daemon.child, "TERM").success());
}

#[test]
fn a_fifo_in_place_of_a_blocklist_is_refused_and_sigterm_still_stops_the_daemon() {
    let rule = "[[rules]]\nname = \"blocklisted\"\nkind = \"blocklist\"\nscope = \"protected\"\n\
                severity = \"warning\"\nfiles = [\"blocklist.txt\"]\nwindow = \"10s\"\n";
    let dir = config_dir(rule);
    std::fs::write(dir.path().join("blocklist.txt"), "10.0.0.1\n").unwrap();
    let mut daemon = Daemon::start(dir);
    // A FIFO renamed into place: reading it would wait for a writer that never comes.
    let fifo = daemon.path("blocklist.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    std::fs::rename(&fifo, daemon.path("blocklist.txt")).unwrap();
    daemon.await_reloads("failure", 1);
    let stderr = daemon.stderr();
    assert!(
        stderr
            .contains("blocklist.txt: rule `blocklisted`: blocklist: not a regular file (a FIFO)"),
        "{stderr}"
    );
    assert!(stop(&mut daemon.child, "TERM").success());
}
