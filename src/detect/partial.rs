//! Per-key partial counts: how several capture workers share one detector.
//!
//! Owns [`Partial`], what one worker counted for every rule over a slice of packet time
//! (a second, or longer when the evaluator is behind), and [`Detector::absorb`], which
//! adds a partial into the detector that judges them all. A worker observes packets into
//! a partial exactly as a detector would (the same rule states and the same per-packet
//! code); it never evaluates, keeps no window, baseline or alert. The evaluator's
//! detector owns those, so a rule's threshold applies to the sum of every worker's
//! traffic, whatever the number of workers.
//!
//! Merging is exact for counters and distinct counts (`HyperLogLog` registers take the
//! maximum, the union of the sets); heavy-hitter lists merge as space-saving lists do,
//! so a contributor's count may differ a little from a single worker's.
//!
//! # Invariants
//! - Observing and handing over allocate nothing: a partial's tables are allocated when
//!   it is built (at start and after a reload), emptied by the merge and reused. They
//!   hold a quarter of the rule's `max_keys` (see `partial_keys`), so each worker's two
//!   partials together cost half of the evaluator's state.
//! - A partial built for another rule set than the detector's (a reload happened while
//!   it was counting) is emptied without being merged: at most the slice of packet time
//!   it covers is not counted, for the rules the reload kept.

use std::sync::Arc;

use super::detector::{Detector, Running, observe_each};
use super::rule_set::RuleSet;
use super::view::PacketView;
use crate::timestamp::Timestamp;

/// Keys a worker's partial table holds for a rule that keeps `max_keys`: a quarter,
/// since it holds one worker's share of one second, not the whole traffic of a window.
/// Under key pressure (a spoofed flood) it gives up its lightest keys as the evaluator's
/// table does, and a real attacker's or victim's key is heavy within any second.
fn partial_keys(max_keys: usize) -> usize {
    (max_keys / 4).max(64)
}

/// One worker's counts for every rule of a rule set, since the last hand-over.
pub struct Partial {
    rules: Arc<RuleSet>,
    running: Vec<Running>,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
}

impl Partial {
    /// Empty partial counts for the rules `detector` runs now. Allocates every rule's
    /// tables (as large as the detector's).
    pub fn for_detector(detector: &Detector) -> Partial {
        let running = detector
            .running
            .iter()
            .map(|r| {
                let mut rule = r.rule.clone();
                rule.max_keys = partial_keys(rule.max_keys);
                let mut r = Running::new(&rule, r.instance);
                r.state.make_partial();
                r
            })
            .collect();
        Partial {
            rules: Arc::clone(&detector.rules),
            running,
            first: None,
            last: None,
        }
    }

    /// A partial that counts nothing, in place of one that has been handed over for good.
    pub fn empty() -> Partial {
        Partial {
            rules: Arc::new(RuleSet::default()),
            running: Vec::new(),
            first: None,
            last: None,
        }
    }

    /// Whether the partial counts for the rule set `detector` runs now (otherwise it
    /// should be replaced with [`Partial::for_detector`] before it is used again).
    pub fn is_for(&self, detector: &Detector) -> bool {
        Arc::ptr_eq(&self.rules, &detector.rules)
    }

    /// Whether any rule counts here (see [`Detector::has_rules`]).
    #[inline]
    pub fn has_rules(&self) -> bool {
        !self.running.is_empty()
    }

    /// Adds one packet to every rule whose scope admits it.
    #[inline]
    pub fn observe(&mut self, p: &PacketView<'_>) {
        self.first = Some(self.first.map_or(p.ts, |f| f.min(p.ts)));
        self.last = Some(self.last.map_or(p.ts, |l| l.max(p.ts)));
        observe_each(&mut self.running, p);
    }
}

impl Detector {
    /// Adds a worker's partial counts into this detector's, as if its packets had been
    /// observed here, and empties the partial for reuse. A partial counted for another
    /// rule set is emptied only (see the module invariants).
    pub fn absorb(&mut self, partial: &mut Partial) {
        let (first, last) = (partial.first.take(), partial.last.take());
        if !partial.is_for(self) {
            partial.running.iter_mut().for_each(|r| r.state.reset());
            return;
        }
        let (Some(first), Some(last)) = (first, last) else {
            return;
        };
        self.note_packet_time(first);
        for (r, p) in self.running.iter_mut().zip(&mut partial.running) {
            r.state.merge_from(&mut p.state);
        }
        self.note_packet_time(last);
    }
}
