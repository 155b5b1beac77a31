//! `netwarden rules test FILE`: rule unit tests over capture files, in the spirit of
//! `promtool test rules`.
//!
//! A test file (TOML) lists cases. Each case replays one capture with one config and
//! checks the alerts: every `[[cases.expect]]` must have fired (right rule, key fields,
//! severity, within `within` of the case's `start`), no `[[cases.absent]]` may have fired,
//! and with `forbid_severity` nothing at or above that severity may fire. Paths are
//! relative to the test file; `${NETWARDEN_PCAPS}` expands to that environment variable
//! (default `../shared/pcaps`, relative to the working directory).
//!
//! Prints one line per case and, for a failure, what was expected next to every alert that
//! fired; returns an error (exit 1) if any case failed.
//!
//! ```toml
//! config = "../../config/netwarden.toml"
//!
//! [[cases]]
//! name = "spoofed SYN flood"
//! pcap = "${NETWARDEN_PCAPS}/attacks/stopddos_pkt.TCP.synflood.spoofed.pcap"
//! start = 1619605821.0995
//! [[cases.expect]]
//! rule = "syn_flood"
//! dst = "10.10.10.10"
//! severity = "critical"
//! within = "2s"
//! ```

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::alert::{Alert, AlertKind, AlertState, Severity};
use crate::cli::{ConfigArg, Overrides, ReplayArgs, RulesTestArgs};
use crate::config::HumanDuration;

/// A test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    /// Config used by cases that name none (built-in default when absent).
    config: Option<String>,
    /// The cases, run in order.
    cases: Vec<Case>,
}

/// One capture and what it must (not) raise.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// Shown in the report.
    name: String,
    /// The capture file.
    pcap: String,
    /// Config for this case.
    config: Option<String>,
    /// Packet time the attack starts (seconds since the epoch); `within` counts from it.
    /// Default: the capture's first packet.
    start: Option<f64>,
    /// Why the case expects nothing (a deliberate negative); shown in the report.
    reason: Option<String>,
    /// No alert at or above this severity may fire.
    forbid_severity: Option<Severity>,
    /// Alerts that must fire.
    #[serde(default)]
    expect: Vec<Expect>,
    /// Alerts that must not fire.
    #[serde(default)]
    absent: Vec<Matcher>,
}

/// Fields an alert must match; absent fields match anything.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Matcher {
    rule: Option<String>,
    kind: Option<AlertKind>,
    src: Option<String>,
    dst: Option<String>,
    severity: Option<Severity>,
}

/// An alert that must fire.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    #[serde(flatten)]
    matcher: Matcher,
    /// Longest time from `start` to firing.
    within: Option<HumanDuration>,
}

impl Matcher {
    fn matches(&self, a: &Alert) -> bool {
        let addr = |want: &Option<String>, got: Option<std::net::IpAddr>| {
            want.as_ref()
                .is_none_or(|w| got.is_some_and(|g| g.to_string() == *w))
        };
        self.rule.as_ref().is_none_or(|r| *r == a.rule)
            && self.kind.is_none_or(|k| k == a.kind)
            && self.severity.is_none_or(|s| s == a.severity)
            && addr(&self.src, a.src)
            && addr(&self.dst, a.dst)
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        let fields = [
            ("rule", self.rule.clone()),
            ("kind", self.kind.map(|k| k.as_str().to_owned())),
            ("src", self.src.clone()),
            ("dst", self.dst.clone()),
            ("severity", self.severity.map(|s| s.as_str().to_owned())),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                parts.push(format!("{k}={v}"));
            }
        }
        f.write_str(&parts.join(" "))
    }
}

/// Runs the `rules test` command.
///
/// # Errors
/// An unreadable or invalid test file, config or capture, or any failed case.
pub fn run(args: &RulesTestArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let file: TestFile =
        toml::from_str(&text).with_context(|| format!("parsing {}", args.file.display()))?;
    let base = args.file.parent().unwrap_or(Path::new("."));
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for case in &file.cases {
        let report = run_case(case, file.config.as_deref(), base)
            .with_context(|| format!("case `{}`", case.name))?;
        if !report.failures.is_empty() {
            failed += 1;
        }
        out.write_all(report.text.as_bytes())
            .context("writing report")?;
    }
    writeln!(
        out,
        "{} cases, {} passed, {failed} failed",
        file.cases.len(),
        file.cases.len() - failed
    )
    .context("writing report")?;
    if failed > 0 {
        bail!("{failed} rule test case(s) failed");
    }
    Ok(())
}

/// What one case printed and how it failed.
struct CaseReport {
    text: String,
    failures: Vec<String>,
}

/// Expands `${NETWARDEN_PCAPS}` and makes the path relative to the test file.
fn resolve(path: &str, base: &Path) -> PathBuf {
    const VAR: &str = "${NETWARDEN_PCAPS}";
    if let Some(rest) = path.strip_prefix(VAR) {
        let root =
            std::env::var("NETWARDEN_PCAPS").unwrap_or_else(|_| "../shared/pcaps".to_owned());
        return PathBuf::from(format!("{root}{rest}"));
    }
    base.join(path)
}

fn run_case(case: &Case, default_config: Option<&str>, base: &Path) -> anyhow::Result<CaseReport> {
    let (alerts, first_ts) = replay_case(case, default_config, base)?;
    let fired: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.state == AlertState::Firing)
        .collect();
    let start = case.start.or(first_ts).unwrap_or(0.0);
    let (failures, notes) = judge(case, &fired, start);
    let text = case_text(case, &fired, &failures, &notes);
    Ok(CaseReport { text, failures })
}

/// Replays the case's capture with its config: the alert transitions raised, and the
/// first packet's timestamp.
fn replay_case(
    case: &Case,
    default_config: Option<&str>,
    base: &Path,
) -> anyhow::Result<(Vec<Alert>, Option<f64>)> {
    let config_path = case
        .config
        .as_deref()
        .or(default_config)
        .map(|c| resolve(c, base));
    let pcap = resolve(&case.pcap, base);
    let config = crate::config::load(config_path.as_deref())?.config;
    let args = ReplayArgs {
        files: vec![pcap],
        config: ConfigArg {
            config: config_path,
        },
        overrides: Overrides {
            listen: None,
            protect: Vec::new(),
            log_json: false,
            web_config_file: None,
            hash_seed: None,
        },
        json: true,
        workers: 1,
    };
    let summary = super::replay::replay(&args, &config)?;
    let alerts = summary
        .alerts
        .into_iter()
        .map(serde_json::from_value)
        .collect::<Result<_, _>>()
        .context("decoding alerts")?;
    Ok((alerts, summary.first_ts))
}

/// The case's expectations against the alerts that `fired` (packet time `start` on):
/// every failure, and a note of when each expected alert fired.
fn judge(case: &Case, fired: &[&Alert], start: f64) -> (Vec<String>, Vec<String>) {
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    for e in &case.expect {
        let hit = fired.iter().find(|a| e.matcher.matches(a));
        match (hit, e.within) {
            (None, _) => failures.push(format!("expected {} (not fired)", e.matcher)),
            (Some(a), Some(within)) if a.time - start > within.0.as_secs_f64() => {
                failures.push(format!(
                    "expected {} within {:.1}s, fired after {:.3}s",
                    e.matcher,
                    within.0.as_secs_f64(),
                    a.time - start
                ));
            }
            (Some(a), _) => notes.push(format!("{} after {:.3}s", e.matcher, a.time - start)),
        }
    }
    for m in &case.absent {
        if let Some(a) = fired.iter().find(|a| m.matches(a)) {
            failures.push(format!("unexpected {m}: fired {}", describe(a)));
        }
    }
    if let Some(level) = case.forbid_severity {
        for a in fired.iter().filter(|a| a.severity >= level) {
            failures.push(format!(
                "unexpected alert at or above {}: {}",
                level.as_str(),
                describe(a)
            ));
        }
    }
    (failures, notes)
}

/// The report of one case: its status line, when expected alerts fired, and on failure
/// what failed and every alert that fired.
fn case_text(case: &Case, fired: &[&Alert], failures: &[String], notes: &[String]) -> String {
    let mut text = String::new();
    let status = if failures.is_empty() { "ok  " } else { "FAIL" };
    let _ = write!(text, "{status} {}", case.name);
    if let Some(reason) = &case.reason {
        let _ = write!(text, " (negative: {reason})");
    }
    text.push('\n');
    for n in notes {
        let _ = writeln!(text, "       fired {n}");
    }
    if !failures.is_empty() {
        for f in failures {
            let _ = writeln!(text, "     - {f}");
        }
        let _ = writeln!(text, "       alerts that fired ({}):", fired.len());
        for a in fired {
            let _ = writeln!(text, "     + {}", describe(a));
        }
    }
    text
}

/// One line for an alert: its fields and time from the start.
fn describe(a: &Alert) -> String {
    let addr = |x: Option<std::net::IpAddr>| x.map_or_else(|| "-".to_owned(), |x| x.to_string());
    format!(
        "rule={} kind={} src={} dst={} severity={} value={:.1} threshold={} time={:.3}",
        a.rule,
        a.kind,
        addr(a.src),
        addr(a.dst),
        a.severity.as_str(),
        a.value,
        a.threshold,
        a.time
    )
}
