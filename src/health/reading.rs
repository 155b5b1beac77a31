//! One reading of the daemon's own state: the metric values the self-alert conditions
//! need, and the age of every blocklist file that has a `max_age`.
//!
//! Owns [`Reading`] (plain numbers keyed by their label: interface, worker, rule, sink),
//! read through the typed series the telemetry module provides
//! ([`Reading::from_metrics`]), and [`BlocklistFile`] (which files to stat, read from the
//! config). Does not own: judging the numbers (`conditions`), defining the metrics or
//! reading their values (`crate::telemetry`).
//!
//! Invariant: no metric is looked up by name, so renaming one cannot silently switch a
//! self-alert off.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::telemetry::{HealthSeries, Metrics};

/// Frames delivered by one capture source, and frames the kernel dropped before it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CaptureReading {
    /// `netwarden_capture_received_packets_total`.
    pub received: f64,
    /// `netwarden_capture_dropped_packets_total{reason="kernel"}`.
    pub kernel_dropped: f64,
}

/// One worker's flow table.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FlowTableReading {
    /// `netwarden_flows_active`.
    pub active: f64,
    /// `netwarden_flows_capacity` (0 until the worker has started).
    pub capacity: f64,
}

/// One alert sink (`router`, `alertmanager-<i>`, `webhook`, `log_file`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SinkReading {
    /// Failed attempts plus dropped alerts, every type and reason together.
    pub failures: f64,
    /// `netwarden_alert_queue_length`.
    pub queue_length: f64,
    /// `netwarden_alerts_sent_total`: transitions delivered.
    pub sent: f64,
}

/// One blocklist file and its age.
#[derive(Clone, Debug, PartialEq)]
pub struct BlocklistReading {
    /// The file and the limit on its age.
    pub file: BlocklistFile,
    /// Time since its last modification; `None` when it cannot be read.
    pub age: Option<Duration>,
}

/// A blocklist file whose age is checked: from a `blocklist` rule with `max_age`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlocklistFile {
    /// The rule's name.
    pub rule: String,
    /// The file (absolute after config loading).
    pub path: PathBuf,
    /// The rule's `max_age`.
    pub max_age: Duration,
}

impl BlocklistFile {
    /// Every file of every `blocklist` rule that sets `max_age`, in config order.
    pub fn from_config(config: &Config) -> Vec<BlocklistFile> {
        config
            .rules
            .iter()
            .filter_map(|r| Some((&r.common.name, r.blocklist()?)))
            .filter_map(|(r, b)| b.max_age.map(|max_age| (r, b, max_age.0)))
            .flat_map(|(r, b, max_age)| {
                b.files.iter().map(move |path| BlocklistFile {
                    rule: r.clone(),
                    path: path.clone(),
                    max_age,
                })
            })
            .collect()
    }

    /// The file's age at `now` from its modification time (a syscall: off the hot path).
    /// A modification time in the future counts as age zero.
    pub fn read(&self, now: SystemTime) -> BlocklistReading {
        let age = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
            .map(|modified| now.duration_since(modified).unwrap_or_default());
        BlocklistReading {
            file: self.clone(),
            age,
        }
    }
}

/// The numbers behind every self-alert condition at one instant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reading {
    /// By `interface`.
    pub interfaces: BTreeMap<String, CaptureReading>,
    /// By `worker`.
    pub flow_tables: BTreeMap<String, FlowTableReading>,
    /// `netwarden_rule_keys_evicted_total` by `rule`.
    pub rule_keys_evicted: BTreeMap<String, f64>,
    /// By `sink`.
    pub sinks: BTreeMap<String, SinkReading>,
    /// Every checked blocklist file.
    pub blocklists: Vec<BlocklistReading>,
}

impl Reading {
    /// Reads the daemon's own state through the typed series `metrics` provides
    /// ([`Metrics::health_values`]); blocklists are left empty.
    pub fn from_metrics(metrics: &Metrics) -> Reading {
        let mut r = Reading::default();
        let values = |series| metrics.health_values(series);
        for (interface, v) in values(HealthSeries::ReceivedPackets) {
            r.interfaces.entry(interface).or_default().received = v;
        }
        for (interface, v) in values(HealthSeries::KernelDropped) {
            r.interfaces.entry(interface).or_default().kernel_dropped = v;
        }
        for (worker, v) in values(HealthSeries::FlowsActive) {
            r.flow_tables.entry(worker).or_default().active = v;
        }
        for (worker, v) in values(HealthSeries::FlowsCapacity) {
            r.flow_tables.entry(worker).or_default().capacity = v;
        }
        r.rule_keys_evicted = values(HealthSeries::RuleKeysEvicted);
        for (sink, v) in values(HealthSeries::SinkFailures) {
            r.sinks.entry(sink).or_default().failures = v;
        }
        for (sink, v) in values(HealthSeries::SinkQueueLength) {
            r.sinks.entry(sink).or_default().queue_length = v;
        }
        for (sink, v) in values(HealthSeries::SinkSent) {
            r.sinks.entry(sink).or_default().sent = v;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::health::conditions::{Condition, Memory, Thresholds};

    #[test]
    fn reading_finds_every_series_the_conditions_need() {
        let metrics = Metrics::new(&[], 10).unwrap();
        let w = metrics.worker("eth0", "eth0-0");
        w.interface.received_packets.inc_by(90);
        w.interface.kernel_dropped.inc_by(10);
        w.flows_active.set(1024);
        w.flows_capacity.set(1024);
        let mut rules = metrics
            .detection
            .for_rules(&[("scan".to_owned(), "warning")]);
        rules.rule(0).unwrap().record(0, false, 0, 5, 7, 0.0);
        let sink = metrics.alerts.sink("alertmanager-0");
        sink.error("connect");
        sink.retries_exhausted.inc();
        sink.queue_length.set(3);
        sink.sent.inc_by(4);
        metrics.alerts.dropped("router", "queue_full").inc();

        let r = Reading::from_metrics(&metrics);
        assert_eq!(
            r.interfaces.get("eth0"),
            Some(&CaptureReading {
                received: 90.0,
                kernel_dropped: 10.0
            })
        );
        assert_eq!(
            r.flow_tables.get("eth0-0"),
            Some(&FlowTableReading {
                active: 1024.0,
                capacity: 1024.0
            })
        );
        assert_eq!(r.rule_keys_evicted.get("scan"), Some(&7.0));
        assert_eq!(
            r.sinks.get("alertmanager-0"),
            Some(&SinkReading {
                failures: 2.0,
                queue_length: 3.0,
                sent: 4.0
            })
        );
        assert_eq!(r.sinks.get("router").map(|s| s.failures), Some(1.0));
    }

    #[test]
    fn conditions_see_values_set_through_the_metric_handles() {
        let metrics = Metrics::new(&[], 10).unwrap();
        let w = metrics.worker("eth0", "eth0-0");
        let mut rules = metrics
            .detection
            .for_rules(&[("scan".to_owned(), "warning")]);
        let t = Thresholds {
            silent_after: Duration::from_secs(60),
            max_drop_ratio: 0.01,
            drop_window: Duration::from_secs(10),
            eviction_window: Duration::from_secs(10),
            delivery_window: Duration::from_secs(10),
        };
        let mut memory = Memory::default();
        memory.observe(Duration::ZERO, &Reading::from_metrics(&metrics), &t);
        w.flows_capacity.set(64);
        w.flows_active.set(64);
        w.interface.received_packets.inc_by(90);
        w.interface.kernel_dropped.inc_by(10);
        rules.rule(0).unwrap().record(0, false, 0, 5, 7, 0.0);
        let held = memory.observe(Duration::from_secs(1), &Reading::from_metrics(&metrics), &t);
        let value = |c: Condition| held[c.index()].first().map(|o| (o.key.clone(), o.value));
        assert_eq!(
            value(Condition::FlowTable),
            Some(("eth0-0".to_owned(), 64.0))
        );
        assert_eq!(
            value(Condition::CaptureDrops),
            Some(("eth0".to_owned(), 0.1))
        );
        assert_eq!(value(Condition::DetectionState), Some((String::new(), 7.0)));
    }

    #[test]
    fn blocklist_files_come_from_rules_with_max_age_and_report_their_age() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("bad.txt");
        std::fs::write(&list, "192.0.2.1\n").unwrap();
        let src = format!(
            "[[rules]]\nname = \"bl\"\nkind = \"blocklist\"\nseverity = \"warning\"\n\
             files = [{list:?}, \"/nonexistent/list.txt\"]\nmax_age = \"1h\"\n\
             [[rules]]\nname = \"ageless\"\nkind = \"blocklist\"\nseverity = \"info\"\n\
             files = [{list:?}]\n"
        );
        let config = crate::config::parse(&src, Path::new("t.toml")).unwrap();
        let files = BlocklistFile::from_config(&config);
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!(files[0].rule, "bl");
        assert_eq!(files[0].max_age, Duration::from_secs(3600));
        let later = SystemTime::now() + Duration::from_secs(7200);
        let age = files[0].read(later).age.unwrap();
        assert!(age >= Duration::from_secs(7199), "{age:?}");
        assert_eq!(files[1].read(later).age, None);
    }
}
