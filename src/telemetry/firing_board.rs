//! The alerts firing now, as Prometheus series: what an incident dashboard lists.
//!
//! Owns [`FiringBoard`], a Prometheus collector in the manner of Prometheus's own `ALERTS`
//! and `ALERTS_FOR_STATE`: for each firing alert, `netwarden_alert_firing` (always 1),
//! `netwarden_alert_started_timestamp_seconds` (when it started firing) and
//! `netwarden_alert_value` (the peak value it reports), labelled by the alert's identity
//! ([`LABELS`]: rule, kind, severity, victim or source, network, asset labels, and a
//! self-alert's subject). The alert router publishes its firing table here
//! ([`FiringBoard::publish`]) after it changed, at most once a second; a scrape exports the
//! latest publication. A resolved alert is absent from the next publication, so its series
//! end with it.
//!
//! Does not own: deciding what is firing (the router's firing table, which already merges
//! the workers, the self-alert monitor and restored alerts into one entry per identity),
//! nor reading alerts: the router fills each [`FiringSeries`] from its alert record.
//!
//! # Invariants
//! - At most [`MAX_FIRING_SERIES`] alerts are exported, the most severe first, then the
//!   oldest; the rest are counted in `netwarden_alert_firing_unexported`, so a flood of
//!   alerts cannot flood Prometheus and is still visible.
//! - Every label value is at most [`MAX_LABEL_VALUE_BYTES`] long and free of control
//!   characters (the text format escapes quotes and backslashes itself).

use std::sync::{Mutex, PoisonError};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntGauge, Opts};

use crate::vocabulary::Severity;

/// Most alerts exported at once (three series each).
pub const MAX_FIRING_SERIES: usize = 200;

/// Longest label value exported, in bytes; longer values are cut at a character boundary.
pub const MAX_LABEL_VALUE_BYTES: usize = 128;

/// The label names of every firing-alert series, in order. An alert without a field has
/// an empty value, which Prometheus treats as an absent label.
pub const LABELS: [&str; 17] = [
    "alertname",
    "rule",
    "kind",
    "severity",
    "src",
    "dst",
    "network",
    "domain",
    "protocol",
    "host_group",
    "protection_level",
    "data_grade",
    "interface",
    "worker",
    "detection_rule",
    "sink",
    "file",
];

/// One firing alert, as the router publishes it.
#[derive(Clone, Debug, PartialEq)]
pub struct FiringSeries {
    /// The value of each of [`LABELS`], in order (empty: the alert has none).
    pub labels: [String; LABELS.len()],
    /// Its severity, which orders the export.
    pub severity: Severity,
    /// When it started firing, seconds since the epoch.
    pub started: f64,
    /// The peak value it reports.
    pub value: f64,
}

/// The latest publication and the series it becomes at scrape time.
pub struct FiringBoard {
    published: Mutex<Vec<FiringSeries>>,
    firing: GaugeVec,
    started: GaugeVec,
    value: GaugeVec,
    unexported: IntGauge,
}

impl FiringBoard {
    /// An empty board.
    ///
    /// # Errors
    /// Only on an invalid metric definition.
    pub fn new() -> prometheus::Result<FiringBoard> {
        let gauge = |name: &str, help: &str| GaugeVec::new(Opts::new(name, help), &LABELS);
        Ok(FiringBoard {
            published: Mutex::new(Vec::new()),
            firing: gauge(
                "netwarden_alert_firing",
                "1 for each alert firing now, labelled by its identity (at most 200 alerts, most severe and oldest first).",
            )?,
            started: gauge(
                "netwarden_alert_started_timestamp_seconds",
                "When each alert in netwarden_alert_firing started firing, seconds since the epoch.",
            )?,
            value: gauge(
                "netwarden_alert_value",
                "The peak value each alert in netwarden_alert_firing reports (its rule's unit).",
            )?,
            unexported: IntGauge::new(
                "netwarden_alert_firing_unexported",
                "Alerts firing now that netwarden_alert_firing leaves out because it is full.",
            )?,
        })
    }

    /// Publishes the alerts firing now, replacing the last publication: the first
    /// [`MAX_FIRING_SERIES`] by severity (highest first), start (oldest first) and labels,
    /// each label value bounded.
    pub fn publish(&self, mut firing: Vec<FiringSeries>) {
        firing.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.started.total_cmp(&b.started))
                .then_with(|| a.labels.cmp(&b.labels))
        });
        let left_out = firing.len().saturating_sub(MAX_FIRING_SERIES);
        firing.truncate(MAX_FIRING_SERIES);
        for series in &mut firing {
            for value in &mut series.labels {
                bound(value);
            }
        }
        *self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = firing;
        self.unexported
            .set(i64::try_from(left_out).unwrap_or(i64::MAX));
    }

    fn refresh(&self) {
        let published = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for v in [&self.firing, &self.started, &self.value] {
            v.reset();
        }
        for s in published.iter() {
            let labels: [&str; LABELS.len()] =
                std::array::from_fn(|i| s.labels.get(i).map_or("", String::as_str));
            self.firing.with_label_values(&labels).set(1.0);
            self.started.with_label_values(&labels).set(s.started);
            self.value.with_label_values(&labels).set(s.value);
        }
    }
}

/// Replaces each control character of `value` with U+FFFD and cuts it to at most
/// [`MAX_LABEL_VALUE_BYTES`] at a character boundary.
fn bound(value: &mut String) {
    if value.len() <= MAX_LABEL_VALUE_BYTES && !value.chars().any(char::is_control) {
        return;
    }
    let mut out = String::with_capacity(value.len().min(MAX_LABEL_VALUE_BYTES));
    for c in value.chars() {
        let c = if c.is_control() { '\u{fffd}' } else { c };
        if out.len() + c.len_utf8() > MAX_LABEL_VALUE_BYTES {
            break;
        }
        out.push(c);
    }
    *value = out;
}

impl Collector for FiringBoard {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = self.firing.desc();
        d.extend(self.started.desc());
        d.extend(self.value.desc());
        d.extend(self.unexported.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        let mut families = self.firing.collect();
        families.extend(self.started.collect());
        families.extend(self.value.collect());
        families.extend(self.unexported.collect());
        families
    }
}

/// Registers a shared board: the registry owns this handle, the router keeps its own.
pub(super) struct SharedFiringBoard(pub(super) std::sync::Arc<FiringBoard>);

impl Collector for SharedFiringBoard {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.0.collect()
    }
}

/// A line of the text format without its labels whose value is empty: what Prometheus
/// stores of it.
#[cfg(test)]
pub(crate) fn without_empty_labels(line: &str) -> String {
    let Some((name, rest)) = line.split_once('{') else {
        return line.to_owned();
    };
    let Some((labels, value)) = rest.rsplit_once('}') else {
        return line.to_owned();
    };
    let kept: Vec<&str> = labels
        .split(',')
        .filter(|l| !l.ends_with("=\"\""))
        .collect();
    format!("{name}{{{}}}{value}", kept.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(rule: &str, severity: Severity, started: f64) -> FiringSeries {
        let mut labels: [String; LABELS.len()] = Default::default();
        labels[0] = format!("Netwarden{rule}");
        labels[1] = rule.to_owned();
        labels[3] = severity.as_str().to_owned();
        FiringSeries {
            labels,
            severity,
            started,
            value: 42.0,
        }
    }

    /// The rendered series, each without its empty labels (which Prometheus drops).
    fn render(board: &FiringBoard) -> String {
        // As a registry gathers: families without series are left out.
        let families: Vec<MetricFamily> = (board.collect().into_iter())
            .filter(|f| !f.get_metric().is_empty())
            .collect();
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&families)
            .unwrap();
        text.lines()
            .map(without_empty_labels)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn exports_each_alert_with_its_start_and_value_until_it_is_gone() {
        let board = FiringBoard::new().unwrap();
        board.publish(vec![series("udp_flood", Severity::Critical, 1000.0)]);
        let text = render(&board);
        let labels = "{alertname=\"Netwardenudp_flood\",rule=\"udp_flood\",severity=\"critical\"}";
        for line in [
            format!("netwarden_alert_firing{labels} 1"),
            format!("netwarden_alert_started_timestamp_seconds{labels} 1000"),
            format!("netwarden_alert_value{labels} 42"),
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
        assert!(
            text.contains("netwarden_alert_firing_unexported 0"),
            "{text}"
        );
        board.publish(Vec::new());
        let text = render(&board);
        assert!(!text.contains("udp_flood"), "resolved alerts leave: {text}");
    }

    #[test]
    fn keeps_the_most_severe_and_oldest_and_counts_the_rest() {
        let board = FiringBoard::new().unwrap();
        let mut firing: Vec<FiringSeries> = (0..MAX_FIRING_SERIES + 5)
            .map(|i| {
                series(
                    &format!("scan{i}"),
                    Severity::Warning,
                    f64::from(u32::try_from(i).unwrap()),
                )
            })
            .collect();
        firing.push(series("flood", Severity::Critical, 5000.0));
        board.publish(firing);
        let text = render(&board);
        assert!(
            text.contains("rule=\"flood\""),
            "the critical one is kept: {text}"
        );
        assert!(
            text.contains("rule=\"scan0\""),
            "the oldest warning is kept"
        );
        assert!(!text.contains(&format!("rule=\"scan{}\"", MAX_FIRING_SERIES + 4)));
        assert!(
            text.contains("netwarden_alert_firing_unexported 6"),
            "{text}"
        );
        let firing = text
            .lines()
            .filter(|l| l.starts_with("netwarden_alert_firing{"))
            .count();
        assert_eq!(firing, MAX_FIRING_SERIES);
    }

    #[test]
    fn label_values_are_cut_and_stripped_of_control_characters() {
        let board = FiringBoard::new().unwrap();
        let mut s = series("tunnel", Severity::Warning, 1.0);
        s.labels[7] = format!("a\u{7}\n{}", "é".repeat(100));
        board.publish(vec![s]);
        let published = board.published.lock().unwrap();
        let domain = &published[0].labels[7];
        assert!(domain.starts_with("a\u{fffd}\u{fffd}é"), "{domain:?}");
        assert!(domain.len() <= MAX_LABEL_VALUE_BYTES, "{}", domain.len());
        assert_eq!(domain.len(), 127, "cut at a character boundary");
    }
}
