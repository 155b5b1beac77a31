//! Every `PromQL` expression in every shipped Grafana dashboard is valid and returns data,
//! checked against a real Prometheus (`/usr/bin/prometheus`, Debian package `prometheus`)
//! scraping a real netwarden that replays an attack capture (`run --pcap`).
//!
//! Grafana's variables are substituted the way Grafana would for "All":
//! `$__rate_interval` → `1m`, `$instance`, `$interface` and `$rule` → `.*`. Template-variable
//! queries (`label_values(selector, label)`) are checked through the label-values API.

// Test code: a failed unwrap or panic is a failed test.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Proc, free_port, get_json, netwarden, pcaps_dir, url_encode as encode, wait_for};
use serde_json::Value;

/// Every `expr` of every panel target (nested rows included), with the panel title.
fn expressions(value: &Value, title: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            let title = map
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or(title)
                .to_owned();
            if let Some(expr) = map.get("expr").and_then(Value::as_str) {
                out.push((title.clone(), expr.to_owned()));
            }
            for v in map.values() {
                expressions(v, &title, out);
            }
        }
        Value::Array(items) => {
            for v in items {
                expressions(v, title, out);
            }
        }
        _ => {}
    }
}

fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$instance", ".*")
        .replace("$interface", ".*")
        .replace("$rule", ".*")
}

fn dashboard_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/grafana");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// Starts netwarden on an attack capture and Prometheus scraping it every second;
/// returns both processes and Prometheus's port once netwarden's rates are queryable.
fn start_stack(storage: &Path) -> (Proc, Proc, u16) {
    let nw_port = free_port();
    // The shipped rules plus an alert sink, so the delivery panels have series too.
    let nw_config = common::shipped_rules_config(
        storage,
        &format!(
            "[daemon]\nstate_directory = \"\"\n\n[alerting]\nlog_file = {:?}\n",
            storage.join("alerts.jsonl").display().to_string()
        ),
    );
    let netwarden = Proc(
        netwarden()
            .arg("run")
            .arg("--config")
            .arg(&nw_config)
            .args(["--speed", "max", "--protect", "10.0.0.0/8", "--listen"])
            .arg(format!("127.0.0.1:{nw_port}"))
            .arg("--pcap")
            .arg(pcaps_dir().join("attacks/esnet_nmap_nmap_80_vanilla.pcap"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let config = storage.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: netwarden\n    static_configs:\n      \
             - targets: [\"127.0.0.1:{nw_port}\"]\n"
        ),
    )
    .unwrap();
    let prom_port = free_port();
    let prometheus = Proc(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                storage.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start prometheus ({e}); scripts/test.sh installs it")
            }),
    );
    // Rates need two samples of every series in the window.
    let ready = wait_for(60, || {
        let q = encode("count(rate(netwarden_worker_busy_seconds_total[1m]))");
        let v = get_json(prom_port, &format!("/api/v1/query?query={q}"))?;
        let n = v["data"]["result"].as_array()?.len();
        (n > 0).then_some(())
    });
    assert!(ready.is_some(), "Prometheus never had netwarden's rates");
    (netwarden, prometheus, prom_port)
}

#[test]
fn every_dashboard_expression_is_valid_and_returns_data() {
    let files = dashboard_files();
    assert!(files.len() >= 2, "dashboards missing: {files:?}");
    let storage = tempfile::tempdir().unwrap();
    let (_netwarden, _prometheus, port) = start_stack(storage.path());
    let mut failures = Vec::new();
    let mut checked = 0;
    for file in &files {
        let json: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let mut exprs = Vec::new();
        expressions(&json["panels"], "", &mut exprs);
        assert!(!exprs.is_empty(), "{} has no expressions", file.display());
        for (panel, expr) in exprs {
            checked += 1;
            let query = substitute(&expr);
            let v = get_json(port, &format!("/api/v1/query?query={}", encode(&query)));
            let ok = v.as_ref().is_some_and(|v| {
                v["status"] == "success"
                    && v["data"]["result"]
                        .as_array()
                        .is_some_and(|r| !r.is_empty())
            });
            if !ok {
                failures.push(format!("{} / {panel}: {query}\n  -> {v:?}", file.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{checked} checked, failing:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_template_variable_query_returns_values() {
    let storage = tempfile::tempdir().unwrap();
    let (_netwarden, _prometheus, port) = start_stack(storage.path());
    let mut failures = Vec::new();
    for file in dashboard_files() {
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let vars = json["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for var in vars.iter().filter(|v| v["type"] == "query") {
            let definition = var["definition"].as_str().unwrap();
            // label_values(selector, label)
            let inner = definition
                .strip_prefix("label_values(")
                .and_then(|s| s.strip_suffix(')'))
                .unwrap_or_else(|| panic!("unsupported variable query {definition}"));
            let (selector, label) = inner.rsplit_once(',').unwrap();
            let selector = substitute(selector.trim());
            let path = format!(
                "/api/v1/label/{}/values?match[]={}",
                label.trim(),
                encode(&selector)
            );
            let v = get_json(port, &path);
            let ok = v.as_ref().is_some_and(|v| {
                v["status"] == "success" && v["data"].as_array().is_some_and(|r| !r.is_empty())
            });
            if !ok {
                failures.push(format!("{}: {definition} -> {v:?}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "failing:\n{}", failures.join("\n"));
}
