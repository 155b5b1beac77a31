//! What detection reports: the alert transitions and per-rule figures of its
//! evaluations.
//!
//! Owns [`Evaluation`], which [`super::Detector::tick`], [`super::Detector::finish`] and
//! [`super::Detector::reload`] fill, [`RuleFigures`] (one rule's figures in one
//! evaluation) and [`RuleInstance`] (which running rule the figures are of). Detection
//! counts nothing itself: whoever drives a detector delivers the transitions and turns
//! the figures into metrics (`crate::pipeline`).
//!
//! Does not own: making the transitions (`crate::alert::lifecycle`) or the metrics.

use std::time::Duration;

use crate::alert::Alert;

/// One running instance of a rule in one detector. A reload that keeps the rule's alerts
/// (same config, or other parameters of the same kind, severity and labels) keeps its
/// instance; a rule added, or replaced under the same name, is a new instance, and the
/// one it replaces is listed in [`Evaluation::retired`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleInstance(pub(super) u64);

/// What one rule did in one evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RuleFigures {
    /// Which running rule.
    pub instance: RuleInstance,
    /// Alerts that started firing (sent, or for a shadow rule, would have been).
    pub fired: u64,
    /// Alerts firing now.
    pub firing: usize,
    /// Keys tracked now.
    pub keys: usize,
    /// Keys given up since the last evaluation: evicted from a full table, or refused
    /// because the rule already tracked its most alerts.
    pub evicted: u64,
    /// Time spent evaluating the rule (wall clock).
    pub elapsed: Duration,
}

/// What a detector's evaluations and reloads reported. The detector appends to
/// `alerts` and `retired`, which the caller takes; `rules` holds the figures of the
/// latest evaluation only.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// Alert transitions, in the order they happened (the resolutions of rules a reload
    /// removed come first).
    pub alerts: Vec<Alert>,
    /// One entry per rule of [`super::Detector::rules`], in its order.
    pub rules: Vec<RuleFigures>,
    /// Instances a reload ended: their rules were removed or replaced.
    pub retired: Vec<RuleInstance>,
}
