//! The life of one rule's alerts: pending → firing → resolved.
//!
//! Owns [`Lifecycle`], the one state machine behind detection rules (on the packet clock,
//! keyed by `detect::AlertKey`) and self-alerts (on the monotonic clock, keyed by a label
//! value): one entry per alert key (so alerts are deduplicated by rule and key), the `for`
//! duration (pending before firing), the resolve delay (hysteresis: a condition that
//! returns within it continues the same alert), the hold (no alert fires while held: a
//! detection rule's warm-up; the condition must still hold when the hold ends), and the
//! peak an alert reports. Generic over what differs: the key `K`, the clock `C`
//! ([`Clock`]), the payload `P` kept with the peak value, and where the resolve delay
//! counts from ([`ClearFrom`]).
//!
//! Does not own: judging the condition (the caller says which keys hold), the alert
//! record (the caller makes one from each [`Transition`]; shadow rules make none) or
//! delivery.
//!
//! # Invariants
//! - Alerts are kept in key order, so transitions of one evaluation leave in a
//!   deterministic order (a replay is reproducible byte for byte).
//! - At most the lifecycle's limit of keys is tracked; new keys beyond it are counted
//!   ([`Lifecycle::take_dropped`]) and ignored until room frees up.
//! - A key emits `firing` at most once per alert and `resolved` only after `firing`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::timestamp::Timestamp;
use crate::vocabulary::AlertState;

/// Most alerts (pending or firing) one rule tracks per worker.
pub const MAX_ALERTS_PER_RULE: usize = 10_000;

/// A clock a lifecycle measures `for` and the resolve delay on.
pub trait Clock: Copy {
    /// The time from `earlier` to `self`, zero if `earlier` is later.
    fn since(self, earlier: Self) -> Duration;
}

impl Clock for Timestamp {
    fn since(self, earlier: Timestamp) -> Duration {
        self.saturating_since(earlier)
    }
}

/// Where the resolve delay of a firing alert whose condition went away counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClearFrom {
    /// The last evaluation in which the condition held (detection rules).
    LastHeld,
    /// The first evaluation in which it no longer held (self-alerts).
    FirstClear,
}

/// A rule's `for` and resolve delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long the condition must hold before the alert fires.
    pub for_: Duration,
    /// How long it must stay clear before a firing alert resolves.
    pub resolve_delay: Duration,
}

/// One alert's state.
struct Active<C, P> {
    /// Firing (else pending).
    firing: bool,
    /// First time the condition held, this alert.
    since: C,
    /// Last time the condition held.
    last_seen: C,
    /// First evaluation the condition no longer held, while firing ([`ClearFrom::FirstClear`]).
    clear_since: Option<C>,
    /// Peak value while pending or firing.
    value: f64,
    /// What came with the peak value.
    peak: P,
    /// Evaluation round in which the condition last held.
    round: u64,
}

/// One transition, for the caller to turn into an alert record.
pub struct Transition<'a, K, C, P> {
    /// The alert's key.
    pub key: &'a K,
    /// Firing or resolved.
    pub state: AlertState,
    /// When the transition happens.
    pub now: C,
    /// When the condition first held, this alert.
    pub since: C,
    /// When the condition last held.
    pub last_seen: C,
    /// The peak value.
    pub value: f64,
    /// What came with the peak value. After a `Resolved` transition the alert is
    /// forgotten, so the caller may take from it.
    pub peak: &'a mut P,
}

/// What a lifecycle did in one evaluation, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Alerts that started firing.
    pub fired: u64,
    /// Alerts that resolved.
    pub resolved: u64,
}

/// Every alert of one rule.
pub struct Lifecycle<K, C, P> {
    alerts: BTreeMap<K, Active<C, P>>,
    round: u64,
    /// Keys refused because `limit` were tracked.
    dropped: u64,
    limit: usize,
    clear_from: ClearFrom,
}

impl<K: Ord, C: Clock, P> Lifecycle<K, C, P> {
    /// No alerts yet; at most `limit` keys will be tracked.
    pub fn new(limit: usize, clear_from: ClearFrom) -> Self {
        Lifecycle {
            alerts: BTreeMap::new(),
            round: 0,
            dropped: 0,
            limit,
            clear_from,
        }
    }

    /// Starts an evaluation round.
    pub fn begin(&mut self) {
        self.round += 1;
    }

    /// The condition holds for `key` at `now`, measuring `value`, with `peak` (kept if
    /// `value` is the alert's peak, or while it is pending).
    pub fn hold(&mut self, now: C, key: K, value: f64, peak: P) {
        let round = self.round;
        if let Some(a) = self.alerts.get_mut(&key) {
            a.last_seen = now;
            a.clear_since = None;
            a.round = round;
            if value >= a.value || !a.firing {
                a.value = value;
                a.peak = peak;
            }
            return;
        }
        if self.alerts.len() >= self.limit {
            self.dropped += 1;
            return;
        }
        self.alerts.insert(
            key,
            Active {
                firing: false,
                since: now,
                last_seen: now,
                clear_since: None,
                value,
                peak,
                round,
            },
        );
    }

    /// Ends the round at `now`: fires pending alerts whose `for` has passed (unless
    /// `held`), drops pending alerts whose condition went away, resolves firing alerts
    /// clear for the resolve delay. Transitions go to `emit`, in key order.
    pub fn end(
        &mut self,
        now: C,
        timing: Timing,
        held: bool,
        emit: &mut dyn FnMut(Transition<'_, K, C, P>),
    ) -> Outcome {
        let mut outcome = Outcome::default();
        let (round, clear_from) = (self.round, self.clear_from);
        self.alerts.retain(|key, a| {
            if a.round == round {
                if !a.firing && !held && now.since(a.since) >= timing.for_ {
                    a.firing = true;
                    outcome.fired += 1;
                    emit(a.transition(key, AlertState::Firing, now));
                }
                return true;
            }
            if !a.firing {
                return false;
            }
            let from = match clear_from {
                ClearFrom::LastHeld => a.last_seen,
                ClearFrom::FirstClear => *a.clear_since.get_or_insert(now),
            };
            if now.since(from) < timing.resolve_delay {
                return true;
            }
            outcome.resolved += 1;
            emit(a.transition(key, AlertState::Resolved, now));
            false
        });
        outcome
    }

    /// Ends every alert at `now` because its rule went away (removed, changed by a
    /// reload, or turned off): firing alerts resolve, pending ones are dropped.
    pub fn resolve_all(
        &mut self,
        now: C,
        emit: &mut dyn FnMut(Transition<'_, K, C, P>),
    ) -> Outcome {
        let mut outcome = Outcome::default();
        for (key, mut a) in std::mem::take(&mut self.alerts) {
            if a.firing {
                outcome.resolved += 1;
                emit(a.transition(&key, AlertState::Resolved, now));
            }
        }
        outcome
    }

    /// Keys refused since the last call because the rule already tracked its limit.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// Alerts firing now.
    pub fn firing(&self) -> usize {
        self.alerts.values().filter(|a| a.firing).count()
    }
}

impl<C: Clock, P> Active<C, P> {
    fn transition<'a, K>(
        &'a mut self,
        key: &'a K,
        state: AlertState,
        now: C,
    ) -> Transition<'a, K, C, P> {
        Transition {
            key,
            state,
            now,
            since: self.since,
            last_seen: self.last_seen,
            value: self.value,
            peak: &mut self.peak,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: Timing = Timing {
        for_: Duration::from_secs(2),
        resolve_delay: Duration::from_secs(3),
    };

    fn at(s: u64) -> Timestamp {
        Timestamp::from_nanos(s * 1_000_000_000)
    }

    /// Runs `holds[s]` (the value holding for key 1 at second `s`, if any) through a
    /// lifecycle; returns (second, state, value, peak) of each transition.
    fn run(clear_from: ClearFrom, holds: &[Option<f64>]) -> Vec<(u64, AlertState, f64, u64)> {
        let mut l: Lifecycle<u8, Timestamp, u64> = Lifecycle::new(10, clear_from);
        let mut out = Vec::new();
        for (s, v) in (0..).zip(holds) {
            l.begin();
            if let Some(v) = v {
                l.hold(at(s), 1, *v, s);
            }
            l.end(at(s), TIMING, false, &mut |t| {
                out.push((s, t.state, t.value, *t.peak));
            });
        }
        out
    }

    #[test]
    fn fires_after_for_and_resolves_after_the_delay_with_its_peak() {
        let holds = [
            Some(1.0),
            Some(1.0),
            Some(1.0),
            Some(5.0),
            Some(2.0),
            None,
            None,
            None,
        ];
        let out = run(ClearFrom::LastHeld, &holds);
        assert_eq!(
            out,
            [
                (2, AlertState::Firing, 1.0, 2),
                (7, AlertState::Resolved, 5.0, 3)
            ],
            "the peak, 5, came at 3; last held at 4, resolved 3 s later"
        );
    }

    #[test]
    fn the_resolve_delay_counts_from_where_the_lifecycle_says() {
        let holds = [
            Some(1.0),
            Some(1.0),
            Some(1.0),
            None,
            None,
            None,
            None,
            None,
        ];
        let last_held = run(ClearFrom::LastHeld, &holds);
        let first_clear = run(ClearFrom::FirstClear, &holds);
        assert_eq!(last_held[1].0, 5, "held last at 2");
        assert_eq!(first_clear[1].0, 6, "first clear at 3");
    }

    #[test]
    fn a_blip_shorter_than_for_and_a_held_round_fire_nothing() {
        assert!(
            run(
                ClearFrom::LastHeld,
                &[Some(1.0), Some(1.0), None, Some(1.0)]
            )
            .is_empty()
        );
        let mut l: Lifecycle<u8, Timestamp, ()> = Lifecycle::new(10, ClearFrom::LastHeld);
        let mut fired = 0;
        for s in 0..5 {
            l.begin();
            l.hold(at(s), 1, 1.0, ());
            fired += l.end(at(s), TIMING, s < 4, &mut |_| {}).fired;
        }
        assert_eq!(fired, 1, "fires when the hold ends, not before");
    }

    #[test]
    fn keys_beyond_the_limit_are_dropped_and_resolve_all_resolves_the_firing() {
        let mut l: Lifecycle<u8, Timestamp, ()> = Lifecycle::new(2, ClearFrom::LastHeld);
        l.begin();
        for key in 0..3 {
            l.hold(at(0), key, 1.0, ());
        }
        let zero = Timing {
            for_: Duration::ZERO,
            ..TIMING
        };
        assert_eq!(l.end(at(0), zero, false, &mut |_| {}).fired, 2);
        assert_eq!((l.take_dropped(), l.take_dropped()), (1, 0));
        l.begin();
        l.hold(at(1), 0, 1.0, ());
        let mut keys = Vec::new();
        let outcome = l.resolve_all(at(1), &mut |t| keys.push((*t.key, t.state)));
        assert_eq!(outcome.resolved, 2);
        assert_eq!(keys, [(0, AlertState::Resolved), (1, AlertState::Resolved)]);
        assert_eq!(l.firing(), 0);
    }
}
