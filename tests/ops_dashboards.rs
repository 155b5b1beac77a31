//! The shipped Grafana dashboards against a real Prometheus (`/usr/bin/prometheus`, Debian
//! package `prometheus`) scraping a real netwarden that replays a SYN flood made by
//! `netwarden-pcapgen` in real time (`run --pcap`, the flood still going while the
//! dashboards are queried):
//! - every `PromQL` expression of every panel and annotation is valid and returns data;
//! - every template-variable query (`label_values(selector, label)`) returns values,
//!   through the label-values API;
//! - the incident dashboard's alert table lists the flood with its victim's address, and
//!   its top-victims table has the victim.
//!
//! Without Prometheus, the dashboards' shape is checked too: every panel has a description
//! and a unit, time series have table legends with last and max, every dashboard has a
//! shared crosshair, the alert annotations and links to all the others, and all but the
//! one-screen incident dashboard have rows.
//!
//! Grafana's variables are substituted the way Grafana would for "All":
//! `$__rate_interval` and `$__interval` → `1m`, `$instance`, `$interface`, `$network` and
//! `$rule` → `.*`.

// Test code: a failed unwrap or panic is a failed test.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Proc, free_port, get_json, netwarden, pcapgen, rfc3339_ago};
use common::{url_encode as encode, wait_for};
use serde_json::Value;

/// The generator's first SYN-flood victim.
const VICTIM: &str = "10.201.0.10";

/// The protected network (`--protect`), named by its prefix.
const PROTECTED: &str = "10.0.0.0/8";

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

/// Every `expr` of every panel target and every annotation query, with where it is.
fn all_expressions(dashboard: &Value) -> Vec<(String, String)> {
    let mut exprs = Vec::new();
    expressions(&dashboard["panels"], "", &mut exprs);
    expressions(&dashboard["annotations"], "annotation", &mut exprs);
    exprs
}

fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "1m")
        .replace("$instance", ".*")
        .replace("$interface", ".*")
        .replace("$network", ".*")
        .replace("$rule", ".*")
}

fn dashboard_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dashboard_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn load(file: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

/// Writes `out`: a SYN flood on `VICTIM`, 3,000 SYN/s from 500 spoofed sources for 90 s,
/// starting 2 s ago (so replayed at real speed it is live for the whole test).
fn live_flood(out: &Path) {
    let truth = pcapgen(
        "syn-flood",
        out,
        &[
            "--packets",
            "270000",
            "--pps",
            "3000",
            "--victims",
            "1",
            "--sources",
            "500",
            "--start",
            &rfc3339_ago(2),
        ],
    );
    assert_eq!(truth["victims"][0], VICTIM, "{truth}");
}

/// Starts netwarden on a live SYN flood and Prometheus scraping it every second; returns
/// both processes and Prometheus's port once netwarden's rates are queryable and the
/// flood's alert is firing.
fn start_stack(storage: &Path) -> (Proc, Proc, u16) {
    let pcap = storage.join("flood.pcap");
    live_flood(&pcap);
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
            .args(["--speed", "1", "--protect", PROTECTED, "--listen"])
            .arg(format!("127.0.0.1:{nw_port}"))
            .arg("--pcap")
            .arg(&pcap)
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
    for ready in [
        "count(rate(netwarden_worker_busy_seconds_total[1m]))",
        "netwarden_alert_firing",
        "netwarden_top_talker_packets_per_second",
    ] {
        let has_data = wait_for(60, || {
            let v = get_json(prom_port, &format!("/api/v1/query?query={}", encode(ready)))?;
            let n = v["data"]["result"].as_array()?.len();
            (n > 0).then_some(())
        });
        assert!(has_data.is_some(), "Prometheus never had {ready}");
    }
    (netwarden, prometheus, prom_port)
}

/// The result of the instant query `expr` (Grafana variables substituted).
fn query(port: u16, expr: &str) -> Option<Value> {
    let v = get_json(
        port,
        &format!("/api/v1/query?query={}", encode(&substitute(expr))),
    )?;
    (v["status"] == "success").then(|| v["data"]["result"].clone())
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
        let exprs = all_expressions(&load(file));
        assert!(!exprs.is_empty(), "{} has no expressions", file.display());
        for (panel, expr) in exprs {
            checked += 1;
            let v = query(port, &expr);
            if v.as_ref()
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            {
                let query = substitute(&expr);
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
        let json = load(&file);
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

/// The first panel titled `title` in `dashboard` (rows' nested panels included).
fn panel<'a>(dashboard: &'a Value, title: &str) -> &'a Value {
    let panels = dashboard["panels"].as_array().unwrap();
    panels
        .iter()
        .flat_map(|p| std::iter::once(p).chain(p["panels"].as_array().into_iter().flatten()))
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("no panel {title:?}"))
}

#[test]
fn incident_dashboard_lists_a_live_flood_with_its_victim() {
    let storage = tempfile::tempdir().unwrap();
    let (_netwarden, _prometheus, port) = start_stack(storage.path());
    let incident = load(&dashboard_dir().join("incident.json"));

    let table = panel(&incident, "Firing alerts");
    let expr = table["targets"][0]["expr"].as_str().unwrap();
    let rows = query(port, expr).unwrap();
    let flood = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"]["rule"] == "syn_flood")
        .unwrap_or_else(|| panic!("no syn_flood row in {expr}: {rows}"));
    assert_eq!(flood["metric"]["dst"], VICTIM, "{flood}");
    assert_eq!(flood["metric"]["severity"], "critical", "{flood}");
    assert_eq!(flood["metric"]["alertname"], "NetwardenSynFlood", "{flood}");
    assert_eq!(flood["metric"]["kind"], "syn_flood", "{flood}");
    assert_eq!(
        flood["metric"]["network"], PROTECTED,
        "the victim's: {flood}"
    );
    let value: f64 = flood["value"][1].as_str().unwrap().parse().unwrap();
    assert!(value > 1000.0, "above the 1,000 SYN/s threshold: {flood}");
    // The protected-network variable selects it, and another network leaves it out.
    for (network, rows) in [(PROTECTED, 1), ("192.0.2.0/24", 0)] {
        let selected = expr.replace("$network", network);
        let result = query(port, &selected).unwrap();
        let victims = (result.as_array().unwrap().iter())
            .filter(|r| r["metric"]["dst"] == VICTIM && r["metric"]["rule"] == "syn_flood")
            .count();
        assert_eq!(victims, rows, "{selected}: {result}");
    }
    // The start column: a real time, within the flood.
    let started = query(port, table["targets"][1]["expr"].as_str().unwrap()).unwrap();
    let started_ms: f64 = (started.as_array().unwrap().iter())
        .find(|r| r["metric"]["dst"] == VICTIM)
        .and_then(|r| r["value"][1].as_str()?.parse().ok())
        .unwrap_or_else(|| panic!("no start for the victim: {started}"));
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0;
    assert!(
        (now_ms - 120_000.0..=now_ms).contains(&started_ms),
        "started {started_ms} vs now {now_ms}"
    );

    let victims = panel(&incident, "Top victims (destinations)");
    let expr = victims["targets"][0]["expr"].as_str().unwrap();
    let rows = query(port, expr).unwrap();
    assert_eq!(
        rows[0]["metric"]["address"], VICTIM,
        "the victim tops {expr}: {rows}"
    );
}

fn dashboard_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/grafana")
}

/// Every panel that is not a row, with its dashboard's file name.
fn panels_of(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().unwrap() {
        if p["type"] == "row" {
            out.extend(p["panels"].as_array().into_iter().flatten());
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn every_panel_is_described_with_a_unit_and_every_dashboard_links_to_the_others() {
    let dashboards: Vec<(String, Value)> = dashboard_files()
        .iter()
        .map(|f| {
            (
                f.file_name().unwrap().to_string_lossy().into_owned(),
                load(f),
            )
        })
        .collect();
    let names: Vec<&str> = dashboards.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"incident.json"), "{names:?}");
    let uids: Vec<&str> = dashboards
        .iter()
        .map(|(_, d)| d["uid"].as_str().unwrap())
        .collect();
    let mut problems = Vec::new();
    for (name, d) in &dashboards {
        let mut problem = |what: String| problems.push(format!("{name}: {what}"));
        if d["graphTooltip"] != 1 {
            problem("no shared crosshair (graphTooltip 1)".into());
        }
        let panels = d["panels"].as_array().unwrap();
        // The incident dashboard is one screen: row headers would push it past one.
        if name != "incident.json" && !panels.iter().any(|p| p["type"] == "row") {
            problem("no rows".into());
        }
        let linked: Vec<&str> = (d["links"].as_array().into_iter().flatten())
            .filter_map(|l| l["url"].as_str()?.strip_prefix("/d/"))
            .collect();
        for uid in uids.iter().filter(|u| **u != d["uid"]) {
            if !linked.contains(uid) {
                problem(format!("no link to {uid}"));
            }
        }
        let annotated = (d["annotations"]["list"].as_array().into_iter().flatten()).any(|a| {
            a["expr"]
                .as_str()
                .is_some_and(|e| e.contains("netwarden_alert_firing"))
        });
        if !annotated {
            problem("no alert annotations".into());
        }
        for p in panels_of(d) {
            let title = p["title"].as_str().unwrap_or("?");
            if p["description"]
                .as_str()
                .is_none_or(|s| s.trim().is_empty())
            {
                problem(format!("{title}: no description"));
            }
            if p["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .is_none_or(str::is_empty)
            {
                problem(format!("{title}: no unit"));
            }
            if p["type"] == "timeseries" {
                let legend = &p["options"]["legend"];
                let calcs = legend["calcs"].as_array().cloned().unwrap_or_default();
                if legend["displayMode"] != "table"
                    || !calcs.contains(&"lastNotNull".into())
                    || !calcs.contains(&"max".into())
                {
                    problem(format!("{title}: legend is not a table with last and max"));
                }
            }
            let exprs: Vec<&str> = (p["targets"].as_array().into_iter().flatten())
                .filter_map(|t| t["expr"].as_str())
                .collect();
            if exprs
                .iter()
                .any(|e| e.contains("increase(") && e.contains("$__rate_interval"))
            {
                problem(format!("{title}: increase() over overlapping windows"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
