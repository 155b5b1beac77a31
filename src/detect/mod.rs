//! Detection: rules evaluated on the packet clock, turning traffic into alerts.
//!
//! Module map, one concern each:
//! - [`view`](PacketView): the per-packet view the pipeline hands in; `probe`: a packet
//!   as a connection attempt, answer or refusal ([`Probe`]);
//! - `scope` ([`Scope`]), `rule` ([`Rule`], [`AlertKey`], [`Finding`]) and `template`
//!   (annotations): one rule, built once from its config;
//! - `rule_set` ([`RuleSet`]): every rule of a config, reading `blocklist` files, shared
//!   as an `Arc` so a reload can swap it;
//! - `detector` ([`Detector`]): one worker's state, one per rule, fed per packet and
//!   evaluated per packet-clock second; `reload`: a new rule set applied by rule name;
//!   `evaluation` ([`Evaluation`]): what the evaluations report, for the caller to
//!   deliver and count;
//! - `rules/`: the rule families (what each kind counts per key); [`sketch`]: bounded
//!   per-key tables, `HyperLogLog` and top-K; [`addr_set`]: the blocklist's address
//!   ranges. The pending → firing → resolved state machine is `crate::alert::lifecycle`,
//!   shared with the self-alerts.
//!
//! Does not own: decoding, flows (the pipeline passes their outcome in the view),
//! delivering alerts or counting metrics: detection returns what happened in an
//! [`Evaluation`], and `crate::pipeline` hands it on. It depends on no metrics code.
//!
//! # How it runs
//! - [`Detector::observe`] runs per packet: synchronous, lock-free, allocation-free. Each
//!   rule adds the packet to fixed-size per-key accumulators ([`sketch::KeyTable`],
//!   `HyperLogLog` for distinct counts, space-saving for top contributors), so millions of
//!   spoofed sources cost a fixed, configured amount of memory.
//! - [`Detector::tick`] runs once per second of packet time: every rule computes its value
//!   per key over its window, the lifecycle turns findings into transitions, and windows
//!   that are complete restart (a `baseline` rule first folds them into its learned
//!   level). Allocation happens here only (alert records).
//! - Time is only the packet clock, so a replay at any speed gives the same alerts.
//! - Warm-up: alerts of a rule are held for its `warmup` after the first packet, after
//!   a gap in the capture longer than [`CAPTURE_GAP`] (accumulators restart) and after a
//!   reload that added or changed the rule.
//!
//! # Limitation: several workers
//! With `workers_per_interface > 1` each worker sees a share of the traffic (PACKET_FANOUT
//! hashes flows, so both directions of a flow meet on one worker) and evaluates its rules
//! on that share alone. A flood spread over many flows is split across workers and each
//! sees only part of its rate, so thresholds act per worker. Merging worker summaries
//! centrally is left to a later issue.

pub mod addr_set;
mod detector;
mod evaluation;
mod probe;
mod reload;
mod rule;
mod rule_set;
mod rules;
mod scope;
pub mod sketch;
mod template;
mod view;

pub use detector::{CAPTURE_GAP, Detector};
pub use evaluation::{Evaluation, RuleFigures, RuleInstance};
pub use probe::{Outcome, Probe};
pub use rule::{AlertKey, Finding, Rule};
pub use rule_set::RuleSet;
pub use scope::Scope;
pub use view::PacketView;

#[cfg(test)]
mod protection_tests;
#[cfg(test)]
mod tests;
