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

use super::reading::{Reading, SinkReading};

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
    delivery: BTreeMap<String, Streak>,
    queued_since: BTreeMap<String, Duration>,
}

/// Failed attempts (and drops) of one sink since it last delivered anything.
#[derive(Clone, Copy, Debug)]
struct Streak {
    /// The sink's failure counter at its last delivery (or when first read).
    failures_at_success: f64,
    /// Its failure and delivery counters at the previous reading.
    failures: f64,
    sent: f64,
    /// When its failure counter last rose.
    last_failure: Option<Duration>,
}

impl Streak {
    fn new(s: &SinkReading) -> Streak {
        Streak {
            failures_at_success: s.failures,
            failures: s.failures,
            sent: s.sent,
            last_failure: None,
        }
    }

    /// Takes in a reading at `now`; returns the failures since the last delivery. A
    /// reading in which the sink delivered ends the streak, whatever else failed in it.
    fn update(&mut self, now: Duration, s: &SinkReading) -> f64 {
        if s.failures > self.failures {
            self.last_failure = Some(now);
        }
        if s.sent > self.sent {
            self.failures_at_success = s.failures;
        }
        self.failures = s.failures;
        self.sent = s.sent;
        (s.failures - self.failures_at_success).max(0.0)
    }
}

/// Failed attempts or drops in a row, with no delivery between them, that make a sink
/// failing (one failure that a retry mends is not an incident).
pub(super) const FAILING_AFTER: f64 = 3.0;

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

    /// One observation naming every detection rule that gave up keys within the window
    /// (their tables are full); none when no rule did. One alert, not one per rule: under
    /// attack the SOC needs the attack in front of it, and the attack's own alerts carry
    /// the degradation (`crate::detect::DEGRADED_ANNOTATION`).
    fn evicting_rules(
        &mut self,
        now: Duration,
        reading: &Reading,
        t: &Thresholds,
    ) -> Vec<Observation> {
        let mut rules = Vec::new();
        let mut total = 0.0;
        for (rule, &evicted) in &reading.rule_keys_evicted {
            let w = self.evicted.entry(rule.clone()).or_default();
            w.push(now, evicted, t.eviction_window);
            let n = w.increase();
            if n > 0.0 {
                rules.push(rule.as_str());
                total += n;
            }
        }
        if rules.is_empty() {
            return Vec::new();
        }
        let names = rules.join(", ");
        vec![Observation {
            key: String::new(),
            labels: Vec::new(),
            value: total,
            threshold: 0.0,
            summary: format!(
                "Detection key tables full: rules {names} gave up {total} keys in the last {}",
                human(t.eviction_window)
            ),
            description: format!(
                "Rules {names} are at their max_keys: their counts are lower bounds and \
                 attacks they track may be missed (alerts raised meanwhile say so in their \
                 `{}` annotation). Usually a flood of spoofed sources; if it lasts without \
                 one, raise those rules' max_keys.",
                crate::detect::DEGRADED_ANNOTATION
            ),
        }]
    }

    /// Sinks failing now: [`FAILING_AFTER`] failed attempts or drops since their last
    /// delivery, the latest within the window; or a queue non-empty at every reading of
    /// the window. A sink that delivers again is not failing, whatever failed before.
    fn failing_sinks(
        &mut self,
        now: Duration,
        reading: &Reading,
        t: &Thresholds,
    ) -> Vec<Observation> {
        let mut out = Vec::new();
        for (sink, s) in &reading.sinks {
            let streak = self
                .delivery
                .entry(sink.clone())
                .or_insert_with(|| Streak::new(s));
            let failures = streak.update(now, s);
            let recent = streak
                .last_failure
                .is_some_and(|f| now.saturating_sub(f) < t.delivery_window);
            let failing = failures >= FAILING_AFTER && recent;
            let since = if s.queue_length > 0.0 {
                Some(*self.queued_since.entry(sink.clone()).or_insert(now))
            } else {
                self.queued_since.remove(sink);
                None
            };
            let stuck = since.is_some_and(|s| now.saturating_sub(s) >= t.delivery_window);
            if failing || stuck {
                out.push(failing_sink(sink, s, failures, stuck, t.delivery_window));
            }
        }
        out
    }

    fn forget_absent(&mut self, reading: &Reading) {
        retain_present(&mut self.silence, &reading.interfaces);
        retain_present(&mut self.received, &reading.interfaces);
        retain_present(&mut self.dropped, &reading.interfaces);
        retain_present(&mut self.evicted, &reading.rule_keys_evicted);
        retain_present(&mut self.delivery, &reading.sinks);
        retain_present(&mut self.queued_since, &reading.sinks);
    }
}

/// The observation of a failing `sink` (`failures` in a row; `stuck`: its queue has not
/// emptied for `window`).
fn failing_sink(
    sink: &str,
    s: &SinkReading,
    failures: f64,
    stuck: bool,
    window: Duration,
) -> Observation {
    let window = human(window);
    let mut description =
        format!("{failures} failed attempts or dropped alerts since it last delivered one");
    if stuck {
        let _ = write!(
            description,
            "; {} alerts have waited in its queue for over {window}",
            s.queue_length
        );
    }
    description.push_str(": on-call may not be told of detections.");
    Observation {
        key: sink.to_owned(),
        labels: vec![("sink", sink.to_owned())],
        value: failures.max(s.queue_length),
        threshold: 0.0,
        summary: format!("Alert delivery through {sink} is failing"),
        description,
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
        assert!(obs[3][0].summary.contains("rules scan gave up 4 keys"));
        assert_eq!(obs[3][0].value, 4.0);
        assert!(!m.observe(secs(10), &evicted(4.0), &T)[3].is_empty());
        assert!(m.observe(secs(12), &evicted(4.0), &T)[3].is_empty());
    }

    #[test]
    fn rules_whose_tables_fill_together_make_one_observation_naming_them() {
        let mut m = Memory::default();
        let evicted = |scan: f64, sweep: f64| {
            let mut r = Reading::default();
            r.rule_keys_evicted.insert("port_scan".into(), scan);
            r.rule_keys_evicted.insert("host_sweep".into(), sweep);
            r.rule_keys_evicted.insert("syn_flood".into(), 0.0);
            r
        };
        assert!(m.observe(secs(0), &evicted(0.0, 0.0), &T)[3].is_empty());
        let obs = m.observe(secs(1), &evicted(300.0, 200.0), &T);
        assert_eq!(obs[3].len(), 1, "{:?}", obs[3]);
        let full = &obs[3][0];
        assert!(
            full.labels.is_empty(),
            "no per-rule identity: {:?}",
            full.labels
        );
        assert!(
            full.summary
                .contains("rules host_sweep, port_scan gave up 500 keys")
        );
        assert!(full.description.contains("lower bounds"));
        assert_eq!(full.value, 500.0);
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

    fn sink(failures: f64, queue_length: f64, sent: f64) -> Reading {
        let mut r = Reading::default();
        r.sinks.insert(
            "alertmanager-0".into(),
            SinkReading {
                failures,
                queue_length,
                sent,
            },
        );
        r
    }

    #[test]
    fn a_sink_that_delivered_again_is_not_failing() {
        // An Alertmanager down for 9 s: five failed attempts, then the retry succeeds.
        let mut m = Memory::default();
        assert!(m.observe(secs(0), &sink(0.0, 0.0, 0.0), &T)[5].is_empty());
        for s in 1..=9_u32 {
            let failures = f64::from(s.min(5));
            let failing = !m.observe(secs(s.into()), &sink(failures, 2.0, 0.0), &T)[5].is_empty();
            assert_eq!(failing, s >= 3, "second {s}: failing {failing}");
        }
        for s in 10..40 {
            let obs = m.observe(secs(s), &sink(5.0, 0.0, 2.0), &T);
            assert!(obs[5].is_empty(), "second {s}: {:?}", obs[5]);
        }
    }

    #[test]
    fn a_sink_failing_without_a_delivery_stays_failing_while_attempts_go_on() {
        let mut m = Memory::default();
        m.observe(secs(0), &sink(0.0, 1.0, 10.0), &T);
        let mut failures = 0.0;
        let mut held = Vec::new();
        // A retry every 8 s (under the 10 s window), each failing.
        for s in 1..60_u32 {
            if s % 8 == 0 {
                failures += 1.0;
            }
            let obs = m.observe(secs(s.into()), &sink(failures, 1.0, 10.0), &T);
            held.push(!obs[5].is_empty());
        }
        // Failing from the third failure on (or the queue stuck for the window).
        assert!(held[..9].iter().all(|h| !h));
        assert!(held[24..].iter().all(|h| *h));
        assert!(held[10..].iter().all(|h| *h), "the queue never emptied");
    }

    #[test]
    fn one_failure_mended_by_a_retry_or_a_rejected_alert_never_holds() {
        let mut m = Memory::default();
        m.observe(secs(0), &sink(0.0, 0.0, 0.0), &T);
        m.observe(secs(1), &sink(1.0, 1.0, 0.0), &T);
        for s in 2..30 {
            let obs = m.observe(secs(s), &sink(2.0, 0.0, 1.0), &T);
            assert!(obs[5].is_empty(), "second {s}");
        }
        // Errors long ago, then a quiet sink: three old failures do not hold forever.
        let mut m = Memory::default();
        m.observe(secs(0), &sink(0.0, 0.0, 0.0), &T);
        m.observe(secs(1), &sink(3.0, 0.0, 0.0), &T);
        assert!(m.observe(secs(11), &sink(3.0, 0.0, 0.0), &T)[5].is_empty());
    }

    #[test]
    fn a_queue_that_never_empties_is_failing_after_the_window() {
        let mut m = Memory::default();
        for s in 0..10 {
            assert!(m.observe(secs(s), &sink(0.0, 2.0, 5.0), &T)[5].is_empty());
        }
        let obs = m.observe(secs(10), &sink(0.0, 2.0, 5.0), &T);
        assert!(obs[5][0].description.contains("waited in its queue"));
        // One empty reading restarts the clock.
        assert!(m.observe(secs(11), &sink(0.0, 0.0, 7.0), &T)[5].is_empty());
        assert!(m.observe(secs(12), &sink(0.0, 1.0, 7.0), &T)[5].is_empty());
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
