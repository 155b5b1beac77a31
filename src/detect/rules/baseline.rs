//! `baseline`: a rate per destination host (or protected network, host group) above what
//! it usually sees.
//!
//! Key: the destination, or with `key = "network"` its protected network or the rule's
//! host group (as for `volume`, see [`super::volume::Target`]). Each window's rate (the `metric` of the packets the `protocol`
//! and `direction` filters admit, per second) updates an exponentially weighted moving
//! average of its level and variance (weight `alpha`). The condition holds when the
//! current rate exceeds `level + k·σ` and the absolute floor `threshold`, once the host
//! has `min_windows` windows of history (its warm-up). No hand-tuned rate is needed
//! beyond the floor. A host's history lives as long as its table entry: a full table
//! evicts the host with the least traffic and history.

use std::time::Duration;

use super::filter::Filter;
use super::per_second;
use super::volume::{Keying, Target};
use crate::config::{BaselineParams, VolumeTraffic};
use crate::detect::sketch::{KeyTable, Merge, Reset, Weight};
use crate::detect::{Finding, PacketView, Rule};

#[derive(Default)]
pub(super) struct Acc {
    /// This window's amount.
    count: u64,
    /// EWMA of the rate.
    level: f64,
    /// EWMA of the squared deviation.
    variance: f64,
    /// Windows of history.
    windows: u32,
}

impl Weight for Acc {
    fn weight(&self) -> u64 {
        self.count.saturating_add(u64::from(self.windows))
    }
}

impl Merge for Acc {
    /// Only the window's count: the learned level is the evaluator's own.
    fn merge(&mut self, other: &Acc) {
        self.count = self.count.saturating_add(other.count);
    }
}

impl Reset for Acc {
    /// Small and without lists: the whole default.
    fn reset(&mut self) {
        *self = Acc::default();
    }
}

pub(in crate::detect) struct Baseline {
    pub(super) table: KeyTable<Target, Acc>,
    filter: Filter,
    keying: Keying,
    k: f64,
    alpha: f64,
    min_windows: u32,
}

impl Baseline {
    pub(super) fn new(rule: &Rule, p: &BaselineParams) -> Baseline {
        Baseline {
            table: KeyTable::new(rule.max_keys),
            filter: Filter::new(p.metric, p.protocol, p.direction, VolumeTraffic::All),
            keying: Keying::new(rule, p.key, (24, 64)),
            k: p.k,
            alpha: p.alpha,
            min_windows: p.min_windows,
        }
    }

    pub(super) fn needs(&self) -> u32 {
        self.filter.needs()
    }

    #[inline]
    pub(super) fn observe(&mut self, p: &PacketView<'_>, h: &mut super::Hashes) {
        if !self.filter.admits(p) {
            return;
        }
        let Some((target, hash)) = self.keying.target(p, h) else {
            return;
        };
        if let Some(mut acc) = self.table.entry(target, hash) {
            acc.count = acc.count.saturating_add(self.filter.amount(p));
        }
    }

    /// The rate above which a host's current window is abnormal.
    fn bound(&self, acc: &Acc) -> f64 {
        acc.level + self.k * acc.variance.max(0.0).sqrt()
    }

    pub(super) fn evaluate(&self, rule: &Rule, elapsed: Duration, hold: &mut dyn FnMut(Finding)) {
        for (target, acc) in self.table.iter() {
            let value = per_second(acc.count, elapsed, rule.window);
            if acc.windows < self.min_windows || value < rule.threshold || value <= self.bound(acc)
            {
                continue;
            }
            hold(Finding {
                key: target.key(),
                value,
                contributors: Vec::new(),
                port: None,
                sources: None,
                evidence: Vec::new(),
            });
        }
    }

    /// Ends a window of length `elapsed`: folds each host's rate into its baseline and
    /// starts counting again (the history stays).
    pub(super) fn roll(&mut self, elapsed: Duration, window: Duration) {
        let alpha = self.alpha;
        for (_, mut acc) in self.table.iter_mut() {
            let rate = per_second(acc.count, elapsed, window);
            if acc.windows == 0 {
                acc.level = rate;
            } else {
                let deviation = rate - acc.level;
                acc.level += alpha * deviation;
                acc.variance = (1.0 - alpha) * (acc.variance + alpha * deviation * deviation);
            }
            acc.windows = acc.windows.saturating_add(1);
            acc.count = 0;
        }
    }
}
