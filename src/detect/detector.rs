//! Detection state, fed per packet and evaluated per packet-clock second.
//!
//! Owns [`Detector`]: one running state per rule (its accumulators, its alerts'
//! lifecycle, its window and warm-up), [`Detector::observe`] (per packet, the hot path)
//! and [`Detector::tick`] / [`Detector::finish`] (per second of packet time, and at the
//! end of input), which report their transitions and figures in an [`Evaluation`].
//! Reloads are in `super::reload`.
//!
//! # Hot path
//! `observe` is synchronous, lock-free and allocation-free. Each rule's `needs` mask (the
//! packet features without which neither its scope nor its state would take the packet)
//! is tested first, so most rules skip most packets at the cost of one mask test; the
//! hashes several rules key by are computed at most once per packet (`rules::Hashes`).

use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::evaluation::{Evaluation, RuleFigures, RuleInstance};
use super::rule::{Rule, RuleLifecycle, new_lifecycle};
use super::rule_set::RuleSet;
use super::rules::{self, RuleState};
use super::scope::Scope;
use super::view::PacketView;
use crate::timestamp::Timestamp;
use crate::vocabulary::AlertState;

/// A silence in the packet clock longer than this restarts windows and warm-up.
pub const CAPTURE_GAP: Duration = Duration::from_secs(60);

/// How long (packet clock) after its table last gave up a key a rule still counts as
/// degraded in the [`DEGRADED_ANNOTATION`] of alerts that start firing.
pub const DEGRADED_FOR: Duration = Duration::from_secs(60);

/// The annotation a firing alert carries when some rule's key table was full within
/// [`DEGRADED_FOR`]: which rules, and what it means for the figures the analyst reads.
pub const DEGRADED_ANNOTATION: &str = "detection_degraded";

/// One rule's running state.
pub(super) struct Running {
    pub(super) rule: Rule,
    pub(super) state: RuleState,
    pub(super) lifecycle: RuleLifecycle,
    pub(super) window_start: Option<Timestamp>,
    pub(super) hold_until: Timestamp,
    /// Which running rule this is, for the figures it reports.
    pub(super) instance: RuleInstance,
    /// The packet features (`rules::need` bits) without which neither the scope nor the
    /// state would take a packet: checked first, so most rules skip most packets at the
    /// cost of one mask test.
    pub(super) needs: u32,
    /// The scope is a host group, whose prefixes are checked per packet after `needs`.
    pub(super) grouped: bool,
    /// When (packet clock) its key table last gave up a key.
    pub(super) last_full: Option<Timestamp>,
}

impl Running {
    /// Fresh state for `rule` (tables allocated now), running as `instance`.
    pub(super) fn new(rule: &Rule, instance: RuleInstance) -> Running {
        let mut r = Running {
            state: RuleState::new(rule),
            rule: rule.clone(),
            lifecycle: new_lifecycle(),
            window_start: None,
            hold_until: Timestamp::ZERO,
            instance,
            needs: 0,
            grouped: false,
            last_full: None,
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

/// The state of every rule: fed by one worker's packets ([`Detector::observe`]) or by
/// several workers' partial counts ([`Detector::absorb`]).
pub struct Detector {
    pub(super) rules: Arc<RuleSet>,
    pub(super) running: Vec<Running>,
    pub(super) updates: Option<Receiver<Arc<RuleSet>>>,
    pub(super) last_packet: Option<Timestamp>,
    /// The number of the next new [`RuleInstance`].
    pub(super) next_instance: u64,
}

impl Detector {
    /// A detector for `rules`. Allocates every rule's tables now.
    pub fn new(rules: Arc<RuleSet>) -> Detector {
        let mut d = Detector {
            rules: Arc::new(RuleSet::default()),
            running: Vec::new(),
            updates: None,
            last_packet: None,
            next_instance: 0,
        };
        d.running = rules.rules().iter().map(|r| d.fresh(r)).collect();
        d.rules = rules;
        d
    }

    /// Fresh state for `rule`, as a new instance.
    pub(super) fn fresh(&mut self, rule: &Rule) -> Running {
        let instance = RuleInstance(self.next_instance);
        self.next_instance += 1;
        Running::new(rule, instance)
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

    /// Every running rule with its instance, in the order of [`Detector::rules`].
    pub fn instances(&self) -> impl Iterator<Item = (RuleInstance, &Rule)> {
        self.running.iter().map(|r| (r.instance, &r.rule))
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
        self.note_packet_time(p.ts);
        observe_each(&mut self.running, p);
    }

    /// Notes that a packet stamped `ts` was seen: the first packet starts every rule's
    /// window and warm-up, and so does the first after a gap of more than
    /// [`CAPTURE_GAP`], which also forgets what was counted before it.
    #[inline]
    pub(super) fn note_packet_time(&mut self, ts: Timestamp) {
        let gap = self
            .last_packet
            .is_some_and(|last| ts.saturating_since(last) > CAPTURE_GAP);
        if self.last_packet.is_none() || gap {
            for r in &mut self.running {
                r.hold_until = ts.saturating_add(r.rule.warmup);
                if gap {
                    r.state.reset();
                }
                r.window_start = Some(ts);
            }
        }
        self.last_packet = Some(self.last_packet.map_or(ts, |l| l.max(ts)));
    }

    /// Applies a rule set waiting in the updates channel, then evaluates every rule at
    /// `now` (packet clock); complete windows restart. Transitions and figures go to
    /// `out`.
    pub fn tick(&mut self, now: Timestamp, out: &mut Evaluation) {
        self.apply_updates(now, out);
        self.evaluate(now, false, out);
    }

    /// Evaluates the partial windows at the end of input (a capture file ended).
    pub fn finish(&mut self, now: Timestamp, out: &mut Evaluation) {
        self.evaluate(now, true, out);
    }

    fn evaluate(&mut self, now: Timestamp, last: bool, out: &mut Evaluation) {
        out.rules.clear();
        let first_new = out.alerts.len();
        // Every table's losses first, so an alert of any rule knows them all.
        let evicted: Vec<u64> = self
            .running
            .iter_mut()
            .map(|r| {
                let n = r.state.take_evictions();
                if n > 0 {
                    r.last_full = Some(now);
                }
                n
            })
            .collect();
        let alerts = &mut out.alerts;
        for (r, evicted) in self.running.iter_mut().zip(evicted) {
            let started = Instant::now();
            let start = *r.window_start.get_or_insert(now);
            let elapsed = now.saturating_since(start);
            let lifecycle = &mut r.lifecycle;
            lifecycle.begin();
            r.state.evaluate(&r.rule, elapsed, &mut |f| {
                let (key, value, peak) = f.into_parts();
                lifecycle.hold(now, key, value, peak);
            });
            let held = now < r.hold_until;
            let rule = &r.rule;
            let outcome = lifecycle.end(now, rule.timing(), held, &mut |mut t| {
                alerts.extend(rule.alert(&mut t));
            });
            if elapsed >= r.rule.window && !last {
                r.state.roll(&r.rule, elapsed);
                r.window_start = Some(now);
            }
            out.rules.push(RuleFigures {
                instance: r.instance,
                fired: outcome.fired,
                firing: lifecycle.firing(),
                keys: r.state.keys(),
                evicted: evicted + lifecycle.take_dropped(),
                elapsed: started.elapsed(),
            });
        }
        if let Some(note) = degraded_note(&self.running, now) {
            for alert in alerts.iter_mut().skip(first_new) {
                if alert.state == AlertState::Firing {
                    alert
                        .annotations
                        .insert(DEGRADED_ANNOTATION.to_owned(), note.clone());
                }
            }
        }
    }
}

/// What the [`DEGRADED_ANNOTATION`] says at `now`: the rules whose key tables gave up keys
/// within [`DEGRADED_FOR`], in rule order; `None` when there are none.
fn degraded_note(running: &[Running], now: Timestamp) -> Option<String> {
    let full: Vec<&str> = running
        .iter()
        .filter(|r| {
            r.last_full
                .is_some_and(|t| now.saturating_since(t) <= DEGRADED_FOR)
        })
        .map(|r| r.rule.name.as_str())
        .collect();
    if full.is_empty() {
        return None;
    }
    Some(format!(
        "Key tables full in the last {}s (rules {}): keys were evicted or turned away, so \
         their counts are lower bounds and attacks they track may be missed.",
        DEGRADED_FOR.as_secs(),
        full.join(", ")
    ))
}

/// Adds one packet to every rule of `running` whose scope admits it.
// Always inlined into its two callers (a detector, a worker's partial), as this loop was
// before it was shared: as a call of its own it cost a few percent of the per-packet work.
#[allow(clippy::inline_always)]
#[inline(always)]
pub(super) fn observe_each(running: &mut [Running], p: &PacketView<'_>) {
    let features = rules::features(p);
    let mut hashes = rules::Hashes::default();
    for r in running {
        if features & r.needs == r.needs && (!r.grouped || r.rule.scope.admits(p)) {
            r.state.observe(p, &mut hashes);
        }
    }
}
