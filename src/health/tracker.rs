//! The life of one self-alert condition's alerts: pending → firing → resolved, on the
//! monotonic clock.
//!
//! Owns [`Tracker`]: the shared state machine (`crate::alert::lifecycle`) keyed by the
//! condition's key label, its `for` hold (pending before firing) and resolve delay (a
//! condition that returns within it continues the same alert, so a flapping condition
//! sends one firing and, at the end, one resolved), counted from the first evaluation
//! the condition no longer held; and the self-alert record of each transition.
//!
//! Does not own: judging the condition (`conditions`) or delivering the transitions (the
//! caller's `AlertOutput`).
//!
//! Invariants: a key emits `firing` at most once per alert and `resolved` only after
//! `firing`, with the very labels and severity it fired with (the monitor resolves every
//! alert of a condition whose severity or labels change); keys are kept in order, so
//! transitions of one evaluation leave in a deterministic order (key order); only keys
//! whose condition held are tracked, and they are forgotten once clear (pending) or
//! resolved.

use std::collections::BTreeMap;
use std::time::Duration;

use super::conditions::Observation;
use crate::alert::lifecycle::{
    ClearFrom, Clock, Lifecycle, MAX_ALERTS_PER_RULE, Timing, Transition,
};
use crate::alert::{Alert, AlertKind, Severity};
use crate::config::SelfAlertHold;

/// The `kind` of every self-alert.
pub const KIND: AlertKind = AlertKind::SelfMonitoring;

/// One instant of evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tick {
    /// A monotonic clock, for holds and windows (immune to wall-clock steps).
    pub monotonic: Duration,
    /// Seconds since the epoch, for the alerts' times.
    pub wall: f64,
}

/// Holds and delays are measured on the monotonic clock; records carry the wall clock.
impl Clock for Tick {
    fn since(self, earlier: Tick) -> Duration {
        self.monotonic.saturating_sub(earlier.monotonic)
    }
}

/// What an alert keeps with its peak value.
#[derive(Debug)]
struct Peak {
    threshold: f64,
    annotations: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    severity: Severity,
}

/// Every alert of one condition.
pub struct Tracker {
    alerts: Lifecycle<String, Tick, Peak>,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            alerts: Lifecycle::new(MAX_ALERTS_PER_RULE, ClearFrom::FirstClear),
        }
    }
}

/// The alert transition `t` of condition `rule`.
fn transition(rule: &str, t: &Transition<'_, String, Tick, Peak>) -> Alert {
    Alert {
        severity: t.peak.severity,
        state: t.state,
        time: t.now.wall,
        started: t.since.wall,
        last_seen: t.last_seen.wall,
        value: t.value,
        threshold: t.peak.threshold,
        labels: t.peak.labels.clone(),
        annotations: t.peak.annotations.clone(),
        ..Alert::new(rule, KIND)
    }
}

impl Tracker {
    /// Takes one evaluation at `now`: `holding` are the keys whose condition holds (every
    /// other tracked key is clear). `labels` are added to each alert's own labels.
    /// Transitions go to `emit`.
    pub fn update(
        &mut self,
        rule: &str,
        now: Tick,
        hold: &SelfAlertHold,
        labels: &BTreeMap<String, String>,
        holding: Vec<Observation>,
        emit: &mut dyn FnMut(Alert),
    ) {
        self.alerts.begin();
        for obs in holding {
            let peak = Peak {
                threshold: obs.threshold,
                annotations: BTreeMap::from([
                    ("summary".to_owned(), obs.summary),
                    ("description".to_owned(), obs.description),
                ]),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .chain(obs.labels.iter().map(|(k, v)| ((*k).to_owned(), v.clone())))
                    .collect(),
                severity: hold.severity,
            };
            self.alerts.hold(now, obs.key, obs.value, peak);
        }
        let timing = Timing {
            for_: hold.for_.0,
            resolve_delay: hold.resolve_delay.0,
        };
        self.alerts
            .end(now, timing, false, &mut |t| emit(transition(rule, &t)));
    }

    /// Resolves every firing alert at once and forgets every key (the condition was
    /// turned off, or its severity or labels changed).
    pub fn resolve_all(&mut self, rule: &str, now: Tick, emit: &mut dyn FnMut(Alert)) {
        self.alerts
            .resolve_all(now, &mut |t| emit(transition(rule, &t)));
    }

    /// Firing alerts now.
    pub fn firing(&self) -> usize {
        self.alerts.firing()
    }
}

#[cfg(test)]
// Values and times here are small whole numbers, exact in f64.
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;
    use crate::alert::AlertState;
    use crate::config::HumanDuration;

    const HOLD: SelfAlertHold = SelfAlertHold {
        enabled: true,
        severity: Severity::Critical,
        for_: HumanDuration::secs(3),
        resolve_delay: HumanDuration::secs(5),
    };

    fn tick(s: u64) -> Tick {
        Tick {
            monotonic: Duration::from_secs(s),
            wall: 1_700_000_000.0 + f64::from(u32::try_from(s).unwrap()),
        }
    }

    fn obs(key: &str, value: f64) -> Observation {
        Observation {
            key: key.to_owned(),
            labels: vec![("interface", key.to_owned())],
            value,
            threshold: 1.0,
            summary: format!("{key} is {value}"),
            description: "d".to_owned(),
        }
    }

    /// Runs `holds[s]` (the values holding at second `s`) through a tracker.
    fn run(tracker: &mut Tracker, from: u64, holds: &[Option<f64>]) -> Vec<(u64, Alert)> {
        let labels = BTreeMap::from([("component".to_owned(), "netwarden".to_owned())]);
        let mut out = Vec::new();
        for (s, v) in (from..).zip(holds) {
            let holding = v.map(|v| obs("eth0", v)).into_iter().collect();
            tracker.update("r", tick(s), &HOLD, &labels, holding, &mut |a| {
                out.push((s, a));
            });
        }
        out
    }

    #[test]
    fn fires_only_after_for_and_a_shorter_blip_sends_nothing() {
        let mut t = Tracker::default();
        let out = run(&mut t, 0, &[Some(2.0), Some(2.0), None, Some(2.0), None]);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(t.firing(), 0);
        let out = run(&mut t, 10, &[Some(2.0), Some(3.0), Some(4.0), Some(5.0)]);
        assert_eq!(out.len(), 1);
        let (at, a) = &out[0];
        assert_eq!(*at, 13);
        assert_eq!(a.state, AlertState::Firing);
        assert_eq!(a.rule, "r");
        assert_eq!(a.kind.as_str(), "self");
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(a.started, tick(10).wall);
        assert_eq!(a.value, 5.0);
        assert_eq!(a.labels["interface"], "eth0");
        assert_eq!(a.labels["component"], "netwarden");
        assert_eq!(a.annotations["summary"], "eth0 is 5");
        assert_eq!(t.firing(), 1);
    }

    #[test]
    fn resolves_after_the_resolve_delay_with_its_peak_and_labels() {
        let mut t = Tracker::default();
        let holding = [
            Some(2.0),
            Some(2.0),
            Some(2.0),
            Some(2.0),
            Some(9.0),
            Some(3.0),
        ];
        let mut out = run(&mut t, 0, &holding);
        out.extend(run(&mut t, 6, &[None; 6]));
        let states: Vec<_> = out.iter().map(|(s, a)| (*s, a.state)).collect();
        assert_eq!(
            states,
            [(3, AlertState::Firing), (11, AlertState::Resolved)],
            "{out:?}"
        );
        let resolved = &out[1].1;
        assert_eq!(resolved.value, 9.0, "peak while firing");
        assert_eq!(resolved.annotations["summary"], "eth0 is 9");
        assert_eq!(resolved.last_seen, tick(5).wall);
        assert_eq!(resolved.time, tick(11).wall);
        assert_eq!(resolved.labels, out[0].1.labels);
        assert_eq!(t.firing(), 0);
    }

    #[test]
    fn a_flapping_condition_stays_one_alert() {
        let mut t = Tracker::default();
        // Fires at 3, then flaps off and on more often than the resolve delay.
        let pattern = [
            Some(2.0),
            Some(2.0),
            Some(2.0),
            Some(2.0),
            None,
            None,
            Some(2.0),
            None,
            None,
            None,
            None,
            Some(2.0),
            None,
            Some(2.0),
        ];
        let out = run(&mut t, 0, &pattern);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(t.firing(), 1);
        let out = run(&mut t, 14, &[None; 6]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1.state, AlertState::Resolved);
        assert_eq!(out[0].0, 19);
    }

    #[test]
    fn zero_for_fires_at_once_and_resolve_all_resolves_firing_only() {
        let hold = SelfAlertHold {
            for_: HumanDuration::secs(0),
            ..HOLD
        };
        let mut t = Tracker::default();
        let mut out = Vec::new();
        let none = BTreeMap::new();
        t.update("r", tick(0), &hold, &none, vec![obs("a", 1.0)], &mut |a| {
            out.push(a);
        });
        assert_eq!(out.len(), 1);
        t.update(
            "r",
            tick(1),
            &HOLD,
            &none,
            vec![obs("a", 1.0), obs("b", 1.0)],
            &mut |a| {
                out.push(a);
            },
        );
        assert_eq!(out.len(), 1, "b is pending under the 3 s hold");
        t.resolve_all("r", tick(2), &mut |a| out.push(a));
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].state, AlertState::Resolved);
        assert_eq!(out[1].labels["interface"], "a");
        assert_eq!(t.firing(), 0);
    }
}
