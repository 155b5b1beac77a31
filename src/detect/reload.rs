//! Hot reload of a worker's detector: a new rule set applied at a packet-clock instant.
//!
//! A new rule set reaches a worker's detector through the channel given to
//! [`Detector::with_updates`]; [`Detector::tick`] applies the newest one waiting
//! ([`Detector::reload`]), matching rules by name:
//! - same config: everything is kept (accumulators, pending and firing alerts, its
//!   instance, so its metric series); the state takes the new rule, so a blocklist whose file changed sees the
//!   new addresses at once;
//! - same kind, other parameters: fresh accumulators, alerts kept (a firing alert goes
//!   on, and resolves as usual if the new condition no longer holds), held for `warmup`;
//! - new rule (or same name, other kind or shadow mode switched, or other host groups or
//!   severity matrix, which change its alerts' labels and severity): fresh, held for
//!   `warmup`;
//! - removed rule (or the old rule of another kind or shadow mode): its firing alerts
//!   resolve now, and its instance is reported retired (so its share of the firing gauge
//!   goes).

use std::sync::Arc;
use std::sync::mpsc::TryRecvError;

use super::detector::{Detector, Running};
use super::evaluation::Evaluation;
use super::rule::Rule;
use super::rule_set::RuleSet;
use crate::timestamp::Timestamp;

impl Detector {
    /// Runs `rules` from `now` on (packet clock), keeping the state of unchanged rules
    /// (see the module doc). Resolved transitions of removed rules go to `out` now, and
    /// so do the instances that ended.
    pub fn reload(&mut self, rules: Arc<RuleSet>, now: Timestamp, out: &mut Evaluation) {
        let mut old: Vec<Option<Running>> = std::mem::take(&mut self.running)
            .into_iter()
            .map(Some)
            .collect();
        let mut running = Vec::with_capacity(rules.rules().len());
        for rule in rules.rules() {
            let previous = old
                .iter_mut()
                .find(|o| o.as_ref().is_some_and(|o| o.rule.name == rule.name))
                .and_then(Option::take);
            let r = match previous {
                Some(mut r)
                    if r.rule.config == rule.config && r.rule.protection == rule.protection =>
                {
                    r.state.adopt(rule);
                    r.rule = rule.clone();
                    r.refresh_needs();
                    r
                }
                // A shadow rule's alerts were never sent, a live rule's were: switching
                // between the two ends the old alerts as a removal does. So does a new
                // severity or new labels (a host group's level or grade included): receivers
                // tell alerts apart by their labels, so the old alert must end rather than
                // linger under its old labels.
                Some(r)
                    if r.rule.kind == rule.kind
                        && r.rule.shadow == rule.shadow
                        && r.rule.severity == rule.severity
                        && r.rule.labels == rule.labels
                        && r.rule.protection == rule.protection =>
                {
                    let mut changed = self.started(rule, now);
                    changed.lifecycle = r.lifecycle;
                    changed.instance = r.instance;
                    changed
                }
                other => {
                    if let Some(gone) = other {
                        retire(gone, now, out);
                    }
                    self.started(rule, now)
                }
            };
            running.push(r);
        }
        for gone in old.into_iter().flatten() {
            retire(gone, now, out);
        }
        self.running = running;
        self.rules = rules;
    }

    /// Fresh state for `rule`, a new instance, its window and warm-up starting at `now`
    /// (before the first packet, `observe` starts them).
    fn started(&mut self, rule: &Rule, now: Timestamp) -> Running {
        let mut r = self.fresh(rule);
        if self.last_packet.is_some() {
            r.window_start = Some(now);
            r.hold_until = now.saturating_add(rule.warmup);
        }
        r
    }

    /// Applies the newest rule set waiting in the updates channel, if any.
    pub(super) fn apply_updates(&mut self, now: Timestamp, out: &mut Evaluation) {
        let Some(updates) = &self.updates else {
            return;
        };
        let mut newest = None;
        loop {
            match updates.try_recv() {
                Ok(rules) => newest = Some(rules),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.updates = None;
                    break;
                }
            }
        }
        if let Some(rules) = newest {
            self.reload(rules, now, out);
        }
    }
}

/// Ends a rule that a reload removed: its firing alerts resolve at `now`.
fn retire(mut gone: Running, now: Timestamp, out: &mut Evaluation) {
    let (alerts, rule) = (&mut out.alerts, &gone.rule);
    gone.lifecycle
        .resolve_all(now, &mut |mut t| alerts.extend(rule.alert(&mut t)));
    out.retired.push(gone.instance);
}
