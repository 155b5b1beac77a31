//! Every alert netwarden or its shipped Prometheus rules can raise has a runbook, and the
//! alert links to it.
//!
//! The alert names come from both sources: the daemon's (one runbook per detection rule
//! kind, one per self-alert condition) and the `- alert:` rules of
//! dashboards/prometheus/*.yml. Each must have docs/runbooks/<name>.md with the four
//! sections, carry `runbook_url` (the default base + the file name) and `dashboard_url`,
//! and no name may be raised by two sources.

// Test code: a failed unwrap or panic is a failed test.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use netwarden::alert::links::AlertLinks;
use netwarden::alert::{Alert, AlertKind};
use netwarden::config::{AlertingConfig, DEFAULT_RUNBOOK_BASE_URL};
use netwarden::health::Condition;
use netwarden::vocabulary::RuleKind;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

/// The file a `runbook_url` with the default base points at, in the source tree.
fn runbook_file(url: &str) -> PathBuf {
    let name = url
        .strip_prefix(DEFAULT_RUNBOOK_BASE_URL)
        .unwrap_or_else(|| panic!("{url} does not start with {DEFAULT_RUNBOOK_BASE_URL}"));
    root().join("docs/runbooks").join(name)
}

fn alert(rule: &str, kind: AlertKind) -> Alert {
    Alert::new(rule, kind)
}

/// The daemon's alerts, each with the annotations delivery gives it by default: every
/// detection kind (under a rule name of the operator's choosing) and every self-alert.
fn daemon_alerts() -> Vec<Alert> {
    let links = AlertLinks::from_config(&AlertingConfig::default());
    let detections = RuleKind::ALL
        .iter()
        .map(|k| alert("my_rule", AlertKind::Rule(*k)));
    let selfs = Condition::ALL
        .iter()
        .map(|c| alert(c.rule(), AlertKind::SelfMonitoring));
    detections
        .chain(selfs)
        .map(|mut a| {
            links.annotate(&mut a);
            a
        })
        .collect()
}

/// (alertname, `runbook_url`, `dashboard_url`) of every alerting rule in the shipped files.
fn prometheus_alerts() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for file in ["netwarden-rules.yml", "netwarden-fleet.yml"] {
        let text =
            std::fs::read_to_string(root().join("dashboards/prometheus").join(file)).unwrap();
        let doc: serde_json::Value = serde_norway::from_str(&text).unwrap();
        for group in doc["groups"].as_array().unwrap() {
            for rule in group["rules"].as_array().unwrap() {
                let Some(name) = rule["alert"].as_str() else {
                    continue;
                };
                let note = |k: &str| rule["annotations"][k].as_str().unwrap_or("").to_owned();
                out.push((name.to_owned(), note("runbook_url"), note("dashboard_url")));
            }
        }
    }
    out
}

fn check_runbook(name: &str, path: &Path) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{name}: no runbook at {} ({e})", path.display()));
    assert!(text.starts_with(&format!("# {name}\n")), "{name}: title");
    for section in [
        "## What it means",
        "## How to confirm it",
        "## First responses",
        "## False-positive causes",
    ] {
        assert!(text.contains(section), "{name}: no `{section}`");
    }
}

#[test]
fn every_daemon_alert_links_an_existing_runbook_and_a_dashboard() {
    for a in daemon_alerts() {
        let url = &a.annotations["runbook_url"];
        let path = runbook_file(url);
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        check_runbook(&name, &path);
        assert!(
            a.annotations["dashboard_url"].starts_with("http://localhost:3000/d/netwarden-"),
            "{a:?}"
        );
    }
}

#[test]
fn every_prometheus_alert_links_its_own_runbook_and_a_dashboard() {
    let alerts = prometheus_alerts();
    assert!(alerts.len() >= 12, "{alerts:?}");
    for (name, runbook, dashboard) in &alerts {
        assert_eq!(
            runbook,
            &format!("{DEFAULT_RUNBOOK_BASE_URL}{name}.md"),
            "{name}"
        );
        check_runbook(name, &runbook_file(runbook));
        assert!(
            dashboard.starts_with("http://localhost:3000/d/netwarden-"),
            "{name}: dashboard_url {dashboard:?}"
        );
    }
}

#[test]
fn no_alert_name_is_raised_by_both_the_daemon_and_prometheus() {
    let daemon: BTreeSet<String> = daemon_alerts()
        .iter()
        .map(|a| match a.kind {
            AlertKind::SelfMonitoring => netwarden::alert::sinks::alertname(&a.rule),
            AlertKind::Rule(k) => netwarden::alert::sinks::alertname(k.as_str()),
        })
        .collect();
    let rules: BTreeSet<String> = prometheus_alerts().into_iter().map(|(n, _, _)| n).collect();
    let both: Vec<_> = daemon.intersection(&rules).collect();
    assert!(both.is_empty(), "raised by both: {both:?}");
    // And every runbook belongs to an alert one of them raises.
    for entry in std::fs::read_dir(root().join("docs/runbooks")).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if stem != "README" {
            assert!(
                daemon.contains(&stem) || rules.contains(&stem),
                "runbook for no alert: {}",
                path.display()
            );
        }
    }
}
