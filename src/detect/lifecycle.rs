//! The life of one rule's alerts: pending → firing → resolved, on the packet clock.
//!
//! Owns [`Lifecycle`]: one entry per alert key of one rule (so alerts are deduplicated
//! by rule and key), the `for` duration (pending before firing), the resolve delay
//! (hysteresis: a condition that returns within it continues the same alert), the warm-up
//! hold (no alert leaves while held; the condition must still hold when the hold ends) and
//! shadow mode (transitions are counted, not emitted).
//!
//! Does not own: measuring values (the rules) or delivering alerts (the `AlertOutput`).
//!
//! # Invariants
//! - Alerts are kept in key order, so transitions of one evaluation leave in a
//!   deterministic order (a replay is reproducible byte for byte).
//! - At most `MAX_ALERTS_PER_RULE` keys are tracked; new keys beyond it are counted
//!   ([`Lifecycle::take_dropped`]) and ignored until room frees up.
//! - A key emits `firing` at most once per alert and `resolved` only after `firing`.

use std::collections::BTreeMap;

use super::{AlertKey, Finding, Rule};
use crate::alert::{Alert, AlertState, Contributor};
use crate::timestamp::Timestamp;

/// Most alerts (pending or firing) one rule tracks per worker.
pub const MAX_ALERTS_PER_RULE: usize = 10_000;

/// One alert's state.
struct Active {
    /// Firing (else pending).
    firing: bool,
    /// First time the condition held, this alert.
    since: Timestamp,
    /// Last time the condition held.
    last_seen: Timestamp,
    /// Peak value while pending or firing.
    value: f64,
    contributors: Vec<Contributor>,
    port: Option<u16>,
    /// Evaluation round in which the condition last held.
    round: u64,
}

/// What a lifecycle did in one evaluation, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Alerts that started firing (sent, or would have been in shadow mode).
    pub fired: u64,
    /// Alerts that resolved.
    pub resolved: u64,
}

/// Every alert of one rule.
#[derive(Default)]
pub struct Lifecycle {
    alerts: BTreeMap<AlertKey, Active>,
    round: u64,
    /// Keys refused because `MAX_ALERTS_PER_RULE` were tracked.
    dropped: u64,
}

impl Lifecycle {
    /// Starts an evaluation round.
    pub fn begin(&mut self) {
        self.round += 1;
    }

    /// The condition holds for `obs.key` at `now`.
    pub fn hold(&mut self, now: Timestamp, obs: Finding) {
        let round = self.round;
        if let Some(a) = self.alerts.get_mut(&obs.key) {
            a.last_seen = now;
            a.round = round;
            if obs.value >= a.value || !a.firing {
                a.value = obs.value;
                a.contributors = obs.contributors;
                a.port = obs.port;
            }
            return;
        }
        if self.alerts.len() >= MAX_ALERTS_PER_RULE {
            self.dropped += 1;
            return;
        }
        self.alerts.insert(
            obs.key,
            Active {
                firing: false,
                since: now,
                last_seen: now,
                value: obs.value,
                contributors: obs.contributors,
                port: obs.port,
                round,
            },
        );
    }

    /// Ends the round at `now`: fires pending alerts whose `for` has passed (unless
    /// `held`), drops pending alerts whose condition went away, resolves firing alerts
    /// clear for the resolve delay. Transitions go to `emit` unless the rule is in shadow
    /// mode.
    pub fn end(
        &mut self,
        now: Timestamp,
        rule: &Rule,
        held: bool,
        emit: &mut dyn FnMut(Alert),
    ) -> Outcome {
        let mut outcome = Outcome::default();
        let round = self.round;
        self.alerts.retain(|key, a| {
            if a.round == round {
                if !a.firing && !held && now.saturating_since(a.since) >= rule.for_ {
                    a.firing = true;
                    outcome.fired += 1;
                    if !rule.shadow {
                        emit(rule.alert(
                            key,
                            AlertState::Firing,
                            now,
                            a.since,
                            a.last_seen,
                            a.value,
                            a.contributors.clone(),
                            a.port,
                        ));
                    }
                }
                return true;
            }
            if !a.firing {
                return false;
            }
            if now.saturating_since(a.last_seen) < rule.resolve_delay {
                return true;
            }
            outcome.resolved += 1;
            if !rule.shadow {
                emit(rule.alert(
                    key,
                    AlertState::Resolved,
                    now,
                    a.since,
                    a.last_seen,
                    a.value,
                    std::mem::take(&mut a.contributors),
                    a.port,
                ));
            }
            false
        });
        outcome
    }

    /// Ends every alert at `now` because its rule went away (removed, or its kind changed
    /// by a reload): firing alerts resolve (emitted unless the rule is in shadow mode),
    /// pending ones are dropped.
    pub fn resolve_all(
        &mut self,
        now: Timestamp,
        rule: &Rule,
        emit: &mut dyn FnMut(Alert),
    ) -> Outcome {
        let mut outcome = Outcome::default();
        for (key, a) in std::mem::take(&mut self.alerts) {
            if !a.firing {
                continue;
            }
            outcome.resolved += 1;
            if !rule.shadow {
                emit(rule.alert(
                    &key,
                    AlertState::Resolved,
                    now,
                    a.since,
                    a.last_seen,
                    a.value,
                    a.contributors,
                    a.port,
                ));
            }
        }
        outcome
    }

    /// Keys refused since the last call because the rule already tracked
    /// `MAX_ALERTS_PER_RULE` alerts.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// Alerts firing now.
    pub fn firing(&self) -> usize {
        self.alerts.values().filter(|a| a.firing).count()
    }
}
