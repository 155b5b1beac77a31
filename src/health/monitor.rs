//! The self-alert monitor: once a second, read the daemon's own metrics, judge the six
//! conditions and send their transitions through the alert router.
//!
//! Owns [`SelfMonitor`] (settings from `[self_alerts]`, the conditions' memory, one
//! tracker per condition, the `netwarden_self_alerts_firing` gauge) and [`run`], the task
//! that drives it on the wall clock and applies config updates from the reloader.
//!
//! Does not own: the metrics it reads (`crate::telemetry`), delivery (`crate::alert::sinks`).
//!
//! Invariants: it never runs on a capture worker and never blocks one (the alert output is
//! the router's non-blocking handle); a condition turned off, or whose severity or labels
//! change on reload, first resolves its firing alerts, so Alertmanager never keeps an alert
//! nobody will resolve; the gauge has one series per enabled condition.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::IntGaugeVec;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::conditions::{Condition, Memory, Thresholds};
use super::reading::{BlocklistFile, Reading};
use super::tracker::{Tick, Tracker};
use crate::alert::AlertOutput;
use crate::alert::sinks::RouterHandle;
use crate::config::{Config, SelfAlertHold};
use crate::telemetry::Metrics;

/// How often the conditions are evaluated.
pub const PERIOD: Duration = Duration::from_secs(1);

/// The runtime form of `[self_alerts]` (plus the blocklist rules' files).
#[derive(Clone, Debug, PartialEq)]
struct Settings {
    enabled: bool,
    /// In [`Condition::ALL`] order.
    holds: [SelfAlertHold; 6],
    thresholds: Thresholds,
    /// `component` and `instance`, on every self-alert.
    labels: BTreeMap<String, String>,
    blocklists: Vec<BlocklistFile>,
}

impl Settings {
    fn from_config(config: &Config) -> Settings {
        let s = &config.self_alerts;
        let instance = if s.instance.is_empty() {
            host_name()
        } else {
            s.instance.clone()
        };
        Settings {
            enabled: s.enabled,
            holds: s.holds().map(|(_, hold)| hold),
            thresholds: Thresholds {
                silent_after: s.interface_silent.silent_after.0,
                max_drop_ratio: s.capture_drops.max_ratio,
                drop_window: s.capture_drops.window.0,
                eviction_window: s.detection_state.window.0,
                delivery_window: s.alert_delivery.window.0,
            },
            labels: BTreeMap::from([
                ("component".to_owned(), "netwarden".to_owned()),
                ("instance".to_owned(), instance),
            ]),
            blocklists: BlocklistFile::from_config(config),
        }
    }

    /// Whether `hold`'s condition runs.
    fn runs(&self, hold: &SelfAlertHold) -> bool {
        self.enabled && hold.enabled
    }
}

/// The kernel's host name, or `unknown`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Judges the self-alert conditions on successive readings and sends their transitions.
pub struct SelfMonitor {
    settings: Settings,
    memory: Memory,
    /// In [`Condition::ALL`] order.
    trackers: [Tracker; 6],
    output: Box<dyn AlertOutput>,
    firing: IntGaugeVec,
}

impl SelfMonitor {
    /// A monitor for `config`'s `[self_alerts]` sending to `output` and counting firing
    /// alerts in `firing` (`netwarden_self_alerts_firing`).
    pub fn new(config: &Config, output: Box<dyn AlertOutput>, firing: IntGaugeVec) -> SelfMonitor {
        let monitor = SelfMonitor {
            settings: Settings::from_config(config),
            memory: Memory::default(),
            trackers: Default::default(),
            output,
            firing,
        };
        monitor.publish();
        monitor
    }

    /// The blocklist files whose age the next reading must include.
    pub fn blocklists(&self) -> &[BlocklistFile] {
        &self.settings.blocklists
    }

    /// Applies a new config at `now`. A condition turned off, or whose severity or
    /// common labels change, resolves its firing alerts first; the others carry on.
    pub fn reconfigure(&mut self, config: &Config, now: Tick) {
        let new = Settings::from_config(config);
        let old = &self.settings;
        let output = &mut self.output;
        for ((c, tracker), (before, after)) in Condition::ALL
            .iter()
            .zip(&mut self.trackers)
            .zip(old.holds.iter().zip(&new.holds))
        {
            let ends =
                !new.runs(after) || before.severity != after.severity || old.labels != new.labels;
            if ends {
                tracker.resolve_all(c.rule(), now, &mut |a| output.emit(a));
            }
            if old.runs(before) && (ends || !new.runs(after)) {
                // Absent when it was never set; nothing to remove then.
                let _ = self
                    .firing
                    .remove_label_values(&[c.rule(), before.severity.as_str()]);
            }
        }
        self.settings = new;
        self.publish();
    }

    /// Judges `reading`, made at `now`, and sends the transitions it causes.
    pub fn evaluate(&mut self, now: Tick, reading: &Reading) {
        if !self.settings.enabled {
            return;
        }
        let observed = self
            .memory
            .observe(now.monotonic, reading, &self.settings.thresholds);
        let output = &mut self.output;
        for (((c, tracker), hold), holding) in Condition::ALL
            .iter()
            .zip(&mut self.trackers)
            .zip(&self.settings.holds)
            .zip(observed)
        {
            if hold.enabled {
                tracker.update(
                    c.rule(),
                    now,
                    hold,
                    &self.settings.labels,
                    holding,
                    &mut |a| output.emit(a),
                );
            }
        }
        self.publish();
    }

    /// Sets the firing gauge of every running condition.
    fn publish(&self) {
        for ((c, tracker), hold) in Condition::ALL
            .iter()
            .zip(&self.trackers)
            .zip(&self.settings.holds)
        {
            if self.settings.runs(hold) {
                self.firing
                    .with_label_values(&[c.rule(), hold.severity.as_str()])
                    .set(i64::try_from(tracker.firing()).unwrap_or(i64::MAX));
            }
        }
    }
}

/// Starts [`run`] on `runtime`: a monitor for `config` sending through `alerts`, reading
/// `metrics` and following the configs sent on `updates`.
pub fn spawn(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
    metrics: &Arc<Metrics>,
    alerts: &RouterHandle,
    updates: &watch::Sender<Arc<Config>>,
) {
    let monitor = SelfMonitor::new(
        config,
        alerts.alert_output(),
        metrics.self_alerts_firing.clone(),
    );
    runtime.spawn(run(monitor, Arc::clone(metrics), updates.subscribe()));
}

/// The current instant: monotonic since `origin`, and on the wall clock.
fn tick(origin: tokio::time::Instant) -> Tick {
    Tick {
        monotonic: origin.elapsed(),
        wall: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64(),
    }
}

/// Evaluates `monitor` every [`PERIOD`] on a reading of `metrics` until the task is dropped,
/// applying every config sent on `updates` (a closed channel keeps the last config).
pub async fn run(
    mut monitor: SelfMonitor,
    metrics: Arc<Metrics>,
    mut updates: watch::Receiver<Arc<Config>>,
) {
    let origin = tokio::time::Instant::now();
    let mut every = tokio::time::interval(PERIOD);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut watching = true;
    loop {
        tokio::select! {
            _ = every.tick() => {
                let now = tick(origin);
                let mut reading = Reading::from_metrics(&metrics);
                let wall = SystemTime::now();
                reading.blocklists = monitor.blocklists().iter().map(|b| b.read(wall)).collect();
                monitor.evaluate(now, &reading);
            }
            changed = updates.changed(), if watching => {
                if changed.is_ok() {
                    let config = Arc::clone(&updates.borrow_and_update());
                    monitor.reconfigure(&config, tick(origin));
                } else {
                    watching = false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::alert::{Alert, AlertState, Severity};
    use crate::config::HumanDuration;
    use crate::health::reading::FlowTableReading;

    /// An output the test can read while the monitor owns it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<Alert>>>);

    impl AlertOutput for Shared {
        fn emit(&mut self, alert: Alert) {
            self.0.lock().unwrap().push(alert);
        }
    }

    impl Shared {
        fn take(&self) -> Vec<(String, AlertState, Severity)> {
            std::mem::take(&mut *self.0.lock().unwrap())
                .into_iter()
                .map(|a| (a.rule, a.state, a.severity))
                .collect()
        }
    }

    fn config(edit: impl FnOnce(&mut Config)) -> Config {
        let mut c = Config::default();
        c.self_alerts.instance = "gw1".to_owned();
        c.self_alerts.flow_table.for_ = HumanDuration::secs(2);
        c.self_alerts.flow_table.resolve_delay = HumanDuration::secs(2);
        edit(&mut c);
        c
    }

    fn full_table() -> Reading {
        let mut r = Reading::default();
        r.flow_tables.insert(
            "pcap-0".into(),
            FlowTableReading {
                active: 1024.0,
                capacity: 1024.0,
            },
        );
        r
    }

    fn at(s: u64) -> Tick {
        Tick {
            monotonic: Duration::from_secs(s),
            wall: 1_700_000_000.0 + f64::from(u32::try_from(s).unwrap()),
        }
    }

    fn gauge(metrics: &Metrics, rule: &str, severity: &str) -> Option<i64> {
        metrics
            .registry()
            .gather()
            .iter()
            .find(|f| f.name() == "netwarden_self_alerts_firing")?
            .get_metric()
            .iter()
            .find(|m| {
                let l = m.get_label();
                l.iter().any(|p| p.value() == rule) && l.iter().any(|p| p.value() == severity)
            })
            // A gauge of small counts: the cast is exact.
            .map(|m| {
                #[allow(clippy::cast_possible_truncation)]
                let n = m.get_gauge().get_value() as i64;
                n
            })
    }

    #[test]
    fn monitor_fires_resolves_and_counts_with_common_labels() {
        let metrics = Metrics::new(&[], 10).unwrap();
        let out = Shared::default();
        let mut m = SelfMonitor::new(
            &config(|_| {}),
            Box::new(out.clone()),
            metrics.self_alerts_firing.clone(),
        );
        let rule = "netwarden_flow_table_full";
        assert_eq!(gauge(&metrics, rule, "warning"), Some(0));
        for s in 0..3 {
            m.evaluate(at(s), &full_table());
        }
        let alerts = out.0.lock().unwrap().clone();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].labels["instance"], "gw1");
        assert_eq!(alerts[0].labels["component"], "netwarden");
        assert_eq!(alerts[0].labels["worker"], "pcap-0");
        assert_eq!(alerts[0].kind.as_str(), "self");
        assert_eq!(gauge(&metrics, rule, "warning"), Some(1));
        out.take();
        for s in 3..6 {
            m.evaluate(at(s), &Reading::default());
        }
        assert_eq!(
            out.take(),
            [(rule.to_owned(), AlertState::Resolved, Severity::Warning)]
        );
        assert_eq!(gauge(&metrics, rule, "warning"), Some(0));
    }

    #[test]
    fn reload_resolves_alerts_of_disabled_or_re_rated_conditions() {
        let metrics = Metrics::new(&[], 10).unwrap();
        let out = Shared::default();
        let mut m = SelfMonitor::new(
            &config(|_| {}),
            Box::new(out.clone()),
            metrics.self_alerts_firing.clone(),
        );
        let rule = "netwarden_flow_table_full";
        for s in 0..3 {
            m.evaluate(at(s), &full_table());
        }
        assert_eq!(out.take().len(), 1);
        // Same settings: nothing happens.
        m.reconfigure(&config(|_| {}), at(3));
        assert!(out.take().is_empty());
        // A new severity: resolved under the old one, fires again under the new one.
        let critical = config(|c| c.self_alerts.flow_table.severity = Severity::Critical);
        m.reconfigure(&critical, at(4));
        assert_eq!(
            out.take(),
            [(rule.to_owned(), AlertState::Resolved, Severity::Warning)]
        );
        assert_eq!(gauge(&metrics, rule, "warning"), None);
        for s in 5..8 {
            m.evaluate(at(s), &full_table());
        }
        assert_eq!(
            out.take(),
            [(rule.to_owned(), AlertState::Firing, Severity::Critical)]
        );
        // Turned off: resolved at once, its gauge series removed, and no more alerts.
        let off = config(|c| c.self_alerts.enabled = false);
        m.reconfigure(&off, at(8));
        assert_eq!(
            out.take(),
            [(rule.to_owned(), AlertState::Resolved, Severity::Critical)]
        );
        assert_eq!(gauge(&metrics, rule, "critical"), None);
        for s in 9..20 {
            m.evaluate(at(s), &full_table());
        }
        assert!(out.take().is_empty());
    }

    /// Lets `runtime` run its tasks for `ms` milliseconds.
    fn pause(runtime: &tokio::runtime::Runtime, ms: u64) {
        runtime.block_on(async { tokio::time::sleep(Duration::from_millis(ms)).await });
    }

    #[test]
    fn run_reads_the_registry_every_second_and_follows_config_updates() {
        let metrics = Arc::new(Metrics::new(&[], 10).unwrap());
        let w = metrics.worker("pcap", "pcap-0");
        w.flows_capacity.set(1024);
        w.flows_active.set(1024);
        let zero = |c: &mut Config| c.self_alerts.flow_table.for_ = HumanDuration::secs(0);
        let (updates, rx) = watch::channel(Arc::new(config(zero)));
        let out = Shared::default();
        let monitor = SelfMonitor::new(
            &config(zero),
            Box::new(out.clone()),
            metrics.self_alerts_firing.clone(),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let task = runtime.spawn(run(monitor, Arc::clone(&metrics), rx));
        pause(&runtime, 1500);
        assert_eq!(
            out.take(),
            [(
                "netwarden_flow_table_full".to_owned(),
                AlertState::Firing,
                Severity::Warning
            )]
        );
        updates
            .send(Arc::new(config(|c| {
                zero(c);
                c.self_alerts.flow_table.enabled = false;
            })))
            .unwrap();
        pause(&runtime, 200);
        assert_eq!(out.take().len(), 1, "resolved when turned off");
        // The reloader going away leaves the monitor running on its last config.
        drop(updates);
        pause(&runtime, 1200);
        assert!(!task.is_finished());
        assert!(out.take().is_empty());
        task.abort();
    }
}
