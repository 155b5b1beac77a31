//! The six self-alert conditions, judged on successive [`Reading`]s.
//!
//! Owns [`Condition`] (each one's `rule` name and key label), [`Thresholds`] (the runtime
//! form of the `[self_alerts]` limits) and [`Memory`]: what must be remembered between
//! readings to judge them (when each interface last received a packet, each counter's
//! readings over its window, since when each alert queue has been non-empty).
//!
//! Does not own: the `for`/resolve hysteresis (`tracker`) or reading the metrics (`reading`).
//!
//! Invariants: memory is kept only for keys present in the latest reading, and a counter's
//! history covers at most its window (plus the one reading before it), so it stays bounded
//! by the label cardinality times the 1 h window cap. Counters that go down (never in one
//! process) count as no increase.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

use super::reading::Reading;

/// One self-alert condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Condition {
    /// No packet on an interface for `silent_after`.
    InterfaceSilent,
    /// Kernel drop ratio above `max_ratio` over its window.
    CaptureDrops,
    /// A flow table at its capacity.
    FlowTable,
    /// A detection rule evicting tracked keys.
    DetectionState,
    /// A blocklist file older than its rule's `max_age`.
    BlocklistAge,
    /// An alert sink failing, dropping, or with a queue that never empties.
    AlertDelivery,
}

impl Condition {
    /// Every condition, in the order of `SelfAlertsConfig::holds`.
    pub const ALL: [Condition; 6] = [
        Condition::InterfaceSilent,
        Condition::CaptureDrops,
        Condition::FlowTable,
        Condition::DetectionState,
        Condition::BlocklistAge,
        Condition::AlertDelivery,
    ];

    /// The `rule` of its alerts.
    pub fn rule(self) -> &'static str {
        match self {
            Condition::InterfaceSilent => "netwarden_interface_silent",
            Condition::CaptureDrops => "netwarden_capture_dropping",
            Condition::FlowTable => "netwarden_flow_table_full",
            Condition::DetectionState => "netwarden_detection_state_full",
            Condition::BlocklistAge => "netwarden_blocklist_stale",
            Condition::AlertDelivery => "netwarden_alert_delivery_failing",
        }
    }

    /// Index into [`Condition::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// What holds for one key of one condition at one reading.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// Identifies the alert within its condition (the key label's value).
    pub key: String,
    /// The labels that identify it (`interface`, `worker`, `detection_rule`, `file`, `sink`).
    pub labels: Vec<(&'static str, String)>,
    /// The measured value (seconds, a ratio, a count: see the condition).
    pub value: f64,
    /// The limit it crossed.
    pub threshold: f64,
    /// One-line annotation.
    pub summary: String,
    /// What it means and what to do.
    pub description: String,
}

/// The limits of the conditions (from `[self_alerts]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// `interface_silent.silent_after`.
    pub silent_after: Duration,
    /// `capture_drops.max_ratio`.
    pub max_drop_ratio: f64,
    /// `capture_drops.window`.
    pub drop_window: Duration,
    /// `detection_state.window`.
    pub eviction_window: Duration,
    /// `alert_delivery.window`.
    pub delivery_window: Duration,
}

/// The readings of one counter over a window.
#[derive(Clone, Debug, Default)]
struct CounterWindow {
    /// (time, value), oldest first; the first is the newest reading at or before the
    /// window's start once there is one.
    samples: VecDeque<(Duration, f64)>,
}

impl CounterWindow {
    /// Adds `value` read at `now` and forgets readings older than needed for `window`.
    fn push(&mut self, now: Duration, value: f64, window: Duration) {
        self.samples.push_back((now, value));
        let start = now.saturating_sub(window);
        while self.samples.get(1).is_some_and(|&(t, _)| t <= start) {
            self.samples.pop_front();
        }
    }

    /// How much the counter rose over the window (0 with a single reading).
    fn increase(&self) -> f64 {
        match (self.samples.front(), self.samples.back()) {
            (Some((_, first)), Some((_, last))) => (last - first).max(0.0),
            _ => 0.0,
        }
    }
}

/// When an interface's packet counter last moved.
#[derive(Clone, Copy, Debug)]
struct Silence {
    received: f64,
    since: Duration,
}

/// What the conditions remember between readings.
#[derive(Debug, Default)]
pub struct Memory {
    silence: BTreeMap<String, Silence>,
    received: BTreeMap<String, CounterWindow>,
    dropped: BTreeMap<String, CounterWindow>,
    evicted: BTreeMap<String, CounterWindow>,
    failures: BTreeMap<String, CounterWindow>,
    queued_since: BTreeMap<String, Duration>,
}

/// Keeps only the entries of `map` whose key is in `present`.
fn retain_present<V, W>(map: &mut BTreeMap<String, V>, present: &BTreeMap<String, W>) {
    map.retain(|k, _| present.contains_key(k));
}

/// Whole seconds, the human way (`5m 3s`).
fn human(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

impl Memory {
    /// Takes in `reading`, made at `now` (a monotonic clock), and returns the observations
    /// that hold, indexed by [`Condition::index`].
    pub fn observe(
        &mut self,
        now: Duration,
        reading: &Reading,
        t: &Thresholds,
    ) -> [Vec<Observation>; 6] {
        self.forget_absent(reading);
        let (silent, dropping) = self.captures(now, reading, t);
        [
            silent,
            dropping,
            full_flow_tables(reading),
            self.evicting_rules(now, reading, t),
            stale_blocklists(reading),
            self.failing_sinks(now, reading, t),
        ]
    }

    /// Silent interfaces and interfaces dropping too much.
    fn captures(
        &mut self,
        now: Duration,
        reading: &Reading,
        t: &Thresholds,
    ) -> (Vec<Observation>, Vec<Observation>) {
        let (mut silent, mut dropping) = (Vec::new(), Vec::new());
        for (interface, c) in &reading.interfaces {
            let silence = self.silence.entry(interface.clone()).or_insert(Silence {
                received: c.received,
                since: now,
            });
            // Counters count whole frames: any change is at least one.
            if (c.received - silence.received).abs() >= 1.0 {
                *silence = Silence {
                    received: c.received,
                    since: now,
                };
            }
            let quiet = now.saturating_sub(silence.since);
            if quiet >= t.silent_after {
                silent.push(Observation {
                    key: interface.clone(),
                    labels: vec![("interface", interface.clone())],
                    value: quiet.as_secs_f64(),
                    threshold: t.silent_after.as_secs_f64(),
                    summary: format!(
                        "netwarden has seen no packets on {interface} for {}",
                        human(quiet)
                    ),
                    description: "Check the link, the mirror/SPAN port and [capture] interfaces: \
                                  netwarden is blind there."
                        .to_owned(),
                });
            }
            let received = self.received.entry(interface.clone()).or_default();
            received.push(now, c.received, t.drop_window);
            let dropped = self.dropped.entry(interface.clone()).or_default();
            dropped.push(now, c.kernel_dropped, t.drop_window);
            let (r, d) = (received.increase(), dropped.increase());
            let ratio = if r + d > 0.0 { d / (r + d) } else { 0.0 };
            if ratio > t.max_drop_ratio {
                dropping.push(Observation {
                    key: interface.clone(),
                    labels: vec![("interface", interface.clone())],
                    value: ratio,
                    threshold: t.max_drop_ratio,
                    summary: format!(
                        "netwarden drops {:.1}% of frames on {interface}",
                        ratio * 100.0
                    ),
                    description: format!(
                        "The kernel dropped {d} of {} frames in the last {}: traffic metrics and \
                         detection undercount. Raise [capture] ring_blocks or \
                         workers_per_interface.",
                        r + d,
                        human(t.drop_window)
                    ),
                });
            }
        }
        (silent, dropping)
    }

    /// Detection rules that gave up keys within the window.
    fn evicting_rules(
        &mut self,
        now: Duration,
        reading: &Reading,
        t: &Thresholds,
    ) -> Vec<Observation> {
        let mut out = Vec::new();
        for (rule, &evicted) in &reading.rule_keys_evicted {
            let w = self.evicted.entry(rule.clone()).or_default();
            w.push(now, evicted, t.eviction_window);
            let n = w.increase();
            if n > 0.0 {
                out.push(Observation {
                    key: rule.clone(),
                    labels: vec![("detection_rule", rule.clone())],
                    value: n,
                    threshold: 0.0,
                    summary: format!(
                        "Rule {rule} gave up {n} tracked keys in the last {}",
                        human(t.eviction_window)
                    ),
                    description: "Its key table is at its cap (max_keys), so its detection \
                                  accuracy is degraded; raise the rule's max_keys."
                        .to_owned(),
                });
            }
        }
        out
    }

    /// Sinks failing, dropping, or with a queue that never empties.
    fn failing_sinks(
        &mut self,
        now: Duration,
        reading: &Reading,
        t: &Thresholds,
    ) -> Vec<Observation> {
        let mut out = Vec::new();
        for (sink, s) in &reading.sinks {
            let w = self.failures.entry(sink.clone()).or_default();
            w.push(now, s.failures, t.delivery_window);
            let failures = w.increase();
            let since = if s.queue_length > 0.0 {
                Some(*self.queued_since.entry(sink.clone()).or_insert(now))
            } else {
                self.queued_since.remove(sink);
                None
            };
            let stuck = since.is_some_and(|s| now.saturating_sub(s) >= t.delivery_window);
            if failures > 0.0 || stuck {
                let window = human(t.delivery_window);
                let mut description =
                    format!("{failures} failed attempts or dropped alerts in the last {window}");
                if stuck {
                    let _ = write!(
                        description,
                        "; {} alerts have waited in its queue for over {window}",
                        s.queue_length
                    );
                }
                description.push_str(": on-call may not be told of detections.");
                out.push(Observation {
                    key: sink.clone(),
                    labels: vec![("sink", sink.clone())],
                    value: failures.max(s.queue_length),
                    threshold: 0.0,
                    summary: format!("Alert delivery through {sink} is failing"),
                    description,
                });
            }
        }
        out
    }

    fn forget_absent(&mut self, reading: &Reading) {
        retain_present(&mut self.silence, &reading.interfaces);
        retain_present(&mut self.received, &reading.interfaces);
        retain_present(&mut self.dropped, &reading.interfaces);
        retain_present(&mut self.evicted, &reading.rule_keys_evicted);
        retain_present(&mut self.failures, &reading.sinks);
        retain_present(&mut self.queued_since, &reading.sinks);
    }
}

/// Flow tables at their capacity.
fn full_flow_tables(reading: &Reading) -> Vec<Observation> {
    reading
        .flow_tables
        .iter()
        .filter(|(_, f)| f.capacity > 0.0 && f.active >= f.capacity)
        .map(|(worker, f)| Observation {
            key: worker.clone(),
            labels: vec![("worker", worker.clone())],
            value: f.active,
            threshold: f.capacity,
            summary: format!(
                "Flow table of worker {worker} is full ({} of {} flows)",
                f.active, f.capacity
            ),
            description: "Every new flow evicts an old one: flow counts and detection lose \
                          accuracy. Raise [flows] max_flows (and MemoryMax), or shorten the flow \
                          timeouts."
                .to_owned(),
        })
        .collect()
}

/// Blocklist files older than their rule's `max_age`, or unreadable.
fn stale_blocklists(reading: &Reading) -> Vec<Observation> {
    let mut out = Vec::new();
    for b in &reading.blocklists {
        if b.age.is_some_and(|age| age <= b.file.max_age) {
            continue;
        }
        let file = b.file.path.display().to_string();
        let summary = match b.age {
            Some(age) => format!(
                "Blocklist {file} of rule {} is {} old (max {})",
                b.file.rule,
                human(age),
                human(b.file.max_age)
            ),
            None => format!("Blocklist {file} of rule {} cannot be read", b.file.rule),
        };
        out.push(Observation {
            key: format!("{}|{file}", b.file.rule),
            labels: vec![("detection_rule", b.file.rule.clone()), ("file", file)],
            // An unreadable file has no age: -1 marks it (JSON has no infinity).
            value: b.age.map_or(-1.0, |a| a.as_secs_f64()),
            threshold: b.file.max_age.as_secs_f64(),
            summary,
            description: "The list is no longer refreshed, so addresses added since are not \
                          blocked or reported. Check the job that updates it."
                .to_owned(),
        });
    }
    out
}

#[cfg(test)]
// Readings here are small whole numbers and their ratios, exact in f64.
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;
    use crate::health::reading::{
        BlocklistFile, BlocklistReading, CaptureReading, FlowTableReading, SinkReading,
    };

    const T: Thresholds = Thresholds {
        silent_after: Duration::from_secs(5),
        max_drop_ratio: 0.01,
        drop_window: Duration::from_secs(10),
        eviction_window: Duration::from_secs(10),
        delivery_window: Duration::from_secs(10),
    };

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn keys(obs: &[Observation]) -> Vec<&str> {
        obs.iter().map(|o| o.key.as_str()).collect()
    }

    fn capture(received: f64, kernel_dropped: f64) -> Reading {
        let mut r = Reading::default();
        r.interfaces.insert(
            "eth0".into(),
            CaptureReading {
                received,
                kernel_dropped,
            },
        );
        r
    }

    #[test]
    fn counter_window_measures_the_rise_over_the_window_only() {
        let mut w = CounterWindow::default();
        for s in 0..=30 {
            let v = u32::try_from(s.min(10)).unwrap();
            w.push(secs(s), f64::from(v), secs(10));
        }
        assert_eq!(w.increase(), 0.0);
        assert!(w.samples.len() <= 12);
        let mut w = CounterWindow::default();
        w.push(secs(0), 5.0, secs(10));
        assert_eq!(w.increase(), 0.0, "a single reading is a baseline");
        w.push(secs(1), 7.0, secs(10));
        assert_eq!(w.increase(), 2.0);
    }

    #[test]
    fn an_interface_is_silent_after_silent_after_without_packets() {
        let mut m = Memory::default();
        for s in 0..5 {
            assert!(m.observe(secs(s), &capture(10.0, 0.0), &T)[0].is_empty());
        }
        let obs = m.observe(secs(5), &capture(10.0, 0.0), &T);
        assert_eq!(keys(&obs[0]), ["eth0"]);
        assert_eq!(obs[0][0].labels, [("interface", "eth0".to_owned())]);
        assert_eq!(obs[0][0].value, 5.0);
        assert!(m.observe(secs(6), &capture(11.0, 0.0), &T)[0].is_empty());
    }

    #[test]
    fn drop_ratio_is_measured_over_the_window() {
        let mut m = Memory::default();
        // 1000 frames a second, 2% dropped, for 5 s.
        let mut last = Vec::new();
        for s in 0..5_u32 {
            let s = f64::from(s);
            last = m.observe(
                Duration::from_secs_f64(s),
                &capture(980.0 * s, 20.0 * s),
                &T,
            )[1]
            .clone();
        }
        assert_eq!(keys(&last), ["eth0"]);
        assert!((last[0].value - 0.02).abs() < 1e-9, "{}", last[0].value);
        // Then no drops: the ratio sinks below 1% once the drops leave the window.
        for s in 5..30_u32 {
            let s = f64::from(s);
            last = m.observe(Duration::from_secs_f64(s), &capture(980.0 * s, 80.0), &T)[1].clone();
        }
        assert!(last.is_empty());
    }

    #[test]
    fn a_full_flow_table_holds_an_empty_or_unstarted_one_does_not() {
        let mut r = Reading::default();
        let table = |active, capacity| FlowTableReading { active, capacity };
        r.flow_tables.insert("a".into(), table(1024.0, 1024.0));
        r.flow_tables.insert("b".into(), table(10.0, 1024.0));
        r.flow_tables.insert("c".into(), table(0.0, 0.0));
        let obs = Memory::default().observe(secs(0), &r, &T);
        assert_eq!(keys(&obs[2]), ["a"]);
        assert_eq!(obs[2][0].labels, [("worker", "a".to_owned())]);
    }

    #[test]
    fn key_evictions_hold_for_the_window_after_they_happen() {
        let mut m = Memory::default();
        let evicted = |n: f64| {
            let mut r = Reading::default();
            r.rule_keys_evicted.insert("scan".into(), n);
            r
        };
        assert!(m.observe(secs(0), &evicted(0.0), &T)[3].is_empty());
        let obs = m.observe(secs(1), &evicted(4.0), &T);
        assert_eq!(obs[3][0].labels, [("detection_rule", "scan".to_owned())]);
        assert_eq!(obs[3][0].value, 4.0);
        assert!(!m.observe(secs(10), &evicted(4.0), &T)[3].is_empty());
        assert!(m.observe(secs(12), &evicted(4.0), &T)[3].is_empty());
    }

    #[test]
    fn a_blocklist_older_than_max_age_or_unreadable_is_stale() {
        let file = |name: &str| BlocklistFile {
            rule: "bl".into(),
            path: name.into(),
            max_age: secs(3600),
        };
        let r = Reading {
            blocklists: vec![
                BlocklistReading {
                    file: file("/fresh"),
                    age: Some(secs(60)),
                },
                BlocklistReading {
                    file: file("/old"),
                    age: Some(secs(7200)),
                },
                BlocklistReading {
                    file: file("/gone"),
                    age: None,
                },
            ],
            ..Reading::default()
        };
        let obs = Memory::default().observe(secs(0), &r, &T);
        assert_eq!(keys(&obs[4]), ["bl|/old", "bl|/gone"]);
        assert_eq!(
            obs[4][0].labels,
            [
                ("detection_rule", "bl".to_owned()),
                ("file", "/old".to_owned())
            ]
        );
        assert!(obs[4][1].summary.contains("cannot be read"));
    }

    #[test]
    fn delivery_fails_on_errors_or_drops_or_a_queue_that_never_empties() {
        let mut m = Memory::default();
        let sink = |failures, queue_length| {
            let mut r = Reading::default();
            r.sinks.insert(
                "alertmanager-0".into(),
                SinkReading {
                    failures,
                    queue_length,
                },
            );
            r
        };
        assert!(m.observe(secs(0), &sink(0.0, 0.0), &T)[5].is_empty());
        assert_eq!(m.observe(secs(1), &sink(3.0, 0.0), &T)[5].len(), 1);
        assert!(m.observe(secs(20), &sink(3.0, 0.0), &T)[5].is_empty());
        // A queue non-empty at every reading for the whole window.
        for s in 21..31 {
            assert!(m.observe(secs(s), &sink(3.0, 2.0), &T)[5].is_empty());
        }
        let obs = m.observe(secs(31), &sink(3.0, 2.0), &T);
        assert!(obs[5][0].description.contains("waited in its queue"));
        // One empty reading restarts the clock.
        assert!(m.observe(secs(32), &sink(3.0, 0.0), &T)[5].is_empty());
        assert!(m.observe(secs(33), &sink(3.0, 1.0), &T)[5].is_empty());
    }

    #[test]
    fn rule_names_are_distinct_and_in_config_order() {
        let rules: std::collections::HashSet<_> = Condition::ALL.iter().map(|c| c.rule()).collect();
        assert_eq!(rules.len(), 6);
        let tables: Vec<_> = crate::config::SelfAlertsConfig::default()
            .holds()
            .iter()
            .map(|(t, _)| *t)
            .collect();
        for (c, table) in Condition::ALL.iter().zip(tables) {
            assert!(c.rule().ends_with(match table {
                "interface_silent" => "interface_silent",
                "capture_drops" => "capture_dropping",
                "flow_table" => "flow_table_full",
                "detection_state" => "detection_state_full",
                "blocklist_age" => "blocklist_stale",
                _ => "alert_delivery_failing",
            }));
        }
    }
}
