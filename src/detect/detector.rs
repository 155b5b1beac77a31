//! One worker's detection state, fed per packet and evaluated per packet-clock second.
//!
//! Owns [`Detector`]: one running state per rule (its accumulators, its alerts'
//! lifecycle, its window and warm-up), [`Detector::observe`] (per packet, the hot path)
//! and [`Detector::tick`] / [`Detector::finish`] (per second of packet time, and at the
//! end of input). Reloads are in `super::reload`.
//!
//! # Hot path
//! `observe` is synchronous, lock-free and allocation-free. Each rule's `needs` mask (the
//! packet features without which neither its scope nor its state would take the packet)
//! is tested first, so most rules skip most packets at the cost of one mask test; the
//! hashes several rules key by are computed at most once per packet (`rules::Hashes`).

use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::lifecycle::Lifecycle;
use super::rule::Rule;
use super::rule_set::RuleSet;
use super::rules::{self, RuleState};
use super::scope::Scope;
use super::view::PacketView;
use crate::alert::{Alert, AlertOutput};
use crate::telemetry::{DetectionMetricVecs, RuleMetrics};
use crate::timestamp::Timestamp;

/// A silence in the packet clock longer than this restarts windows and warm-up.
pub const CAPTURE_GAP: Duration = Duration::from_secs(60);

/// One rule's running state in one worker.
pub(super) struct Running {
    pub(super) rule: Rule,
    pub(super) state: RuleState,
    pub(super) lifecycle: Lifecycle,
    pub(super) window_start: Option<Timestamp>,
    pub(super) hold_until: Timestamp,
    /// This rule's metric handles in this detector (with [`Detector::with_metrics`]).
    pub(super) metrics: Option<RuleMetrics>,
    /// The packet features (`rules::need` bits) without which neither the scope nor the
    /// state would take a packet: checked first, so most rules skip most packets at the
    /// cost of one mask test.
    pub(super) needs: u32,
    /// The scope is a host group, whose prefixes are checked per packet after `needs`.
    pub(super) grouped: bool,
}

impl Running {
    /// Fresh state for `rule` (tables allocated now).
    pub(super) fn new(rule: &Rule) -> Running {
        let mut r = Running {
            state: RuleState::new(rule),
            rule: rule.clone(),
            lifecycle: Lifecycle::default(),
            window_start: None,
            hold_until: Timestamp::ZERO,
            metrics: None,
            needs: 0,
            grouped: false,
        };
        r.refresh_needs();
        r
    }

    /// Recomputes `needs` and `grouped` from the rule and its state.
    pub(super) fn refresh_needs(&mut self) {
        let scope = match self.rule.scope {
            Scope::Protected => rules::need::PROTECTED,
            Scope::All | Scope::Group(..) => 0,
        };
        self.needs = scope | self.state.needs();
        self.grouped = matches!(self.rule.scope, Scope::Group(..));
    }
}

/// One worker's detection state.
pub struct Detector {
    pub(super) rules: Arc<RuleSet>,
    pub(super) running: Vec<Running>,
    pub(super) alerts: Box<dyn AlertOutput>,
    pub(super) metrics: Option<DetectionMetricVecs>,
    pub(super) updates: Option<Receiver<Arc<RuleSet>>>,
    pub(super) last_packet: Option<Timestamp>,
}

impl Detector {
    /// A detector for `rules`, sending transitions to `alerts`. Allocates every rule's
    /// tables now.
    pub fn new(rules: Arc<RuleSet>, alerts: Box<dyn AlertOutput>) -> Detector {
        let running = rules.rules().iter().map(Running::new).collect();
        Detector {
            rules,
            running,
            alerts,
            metrics: None,
            updates: None,
            last_packet: None,
        }
    }

    /// Exports per-rule figures to `metrics`: handles of every rule are resolved now, and
    /// for the rules a reload adds or changes when it applies.
    #[must_use]
    pub fn with_metrics(mut self, metrics: DetectionMetricVecs) -> Detector {
        for r in &mut self.running {
            r.metrics = Some(metrics.rule(&r.rule.name, r.rule.severity.as_str()));
        }
        self.metrics = Some(metrics);
        self
    }

    /// Takes new rule sets from `updates`: [`Detector::tick`] applies the newest one
    /// waiting. A closed channel just stops updates.
    #[must_use]
    pub fn with_updates(mut self, updates: Receiver<Arc<RuleSet>>) -> Detector {
        self.updates = Some(updates);
        self
    }

    /// The rule set this detector runs.
    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// Whether any rule is running: without one, [`Detector::observe`] has nothing to do
    /// and the pipeline skips building the packet's view.
    #[inline]
    pub fn has_rules(&self) -> bool {
        !self.running.is_empty()
    }

    /// Adds one packet to every rule whose scope admits it.
    #[inline]
    pub fn observe(&mut self, p: &PacketView<'_>) {
        let gap = self
            .last_packet
            .is_some_and(|last| p.ts.saturating_since(last) > CAPTURE_GAP);
        if self.last_packet.is_none() || gap {
            for r in &mut self.running {
                r.hold_until = p.ts.saturating_add(r.rule.warmup);
                if gap {
                    r.state.reset();
                }
                r.window_start = Some(p.ts);
            }
        }
        self.last_packet = Some(self.last_packet.map_or(p.ts, |l| l.max(p.ts)));
        let features = rules::features(p);
        let mut hashes = rules::Hashes::default();
        for r in &mut self.running {
            if features & r.needs == r.needs && (!r.grouped || r.rule.scope.admits(p)) {
                r.state.observe(p, &mut hashes);
            }
        }
    }

    /// Applies a rule set waiting in the updates channel, then evaluates every rule at
    /// `now` (packet clock); complete windows restart.
    pub fn tick(&mut self, now: Timestamp) {
        self.apply_updates(now);
        self.evaluate(now, false);
    }

    /// Evaluates the partial windows at the end of input (a capture file ended).
    pub fn finish(&mut self, now: Timestamp) {
        self.evaluate(now, true);
    }

    fn evaluate(&mut self, now: Timestamp, last: bool) {
        let alerts = &mut self.alerts;
        let mut emit = |a: Alert| alerts.emit(a);
        for r in &mut self.running {
            let started = Instant::now();
            let start = *r.window_start.get_or_insert(now);
            let elapsed = now.saturating_since(start);
            let lifecycle = &mut r.lifecycle;
            lifecycle.begin();
            r.state
                .evaluate(&r.rule, elapsed, &mut |obs| lifecycle.hold(now, obs));
            let held = now < r.hold_until;
            let outcome = lifecycle.end(now, &r.rule, held, &mut emit);
            if elapsed >= r.rule.window && !last {
                r.state.roll(elapsed, r.rule.window);
                r.window_start = Some(now);
            }
            if let Some(m) = r.metrics.as_mut() {
                m.record(
                    outcome.fired,
                    r.rule.shadow,
                    lifecycle.firing(),
                    r.state.keys(),
                    r.state.take_evictions() + lifecycle.take_dropped(),
                    started.elapsed().as_secs_f64(),
                );
            }
        }
    }
}
