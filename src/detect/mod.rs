//! Detection: rules evaluated on the packet clock, turning traffic into alerts.
//!
//! Module map, one concern each:
//! - [`view`](PacketView): the per-packet view the pipeline hands in; `probe`: a packet
//!   as a connection attempt, answer or refusal ([`Probe`]);
//! - `scope` ([`Scope`]), `rule` ([`Rule`], [`AlertKey`], [`Finding`]) and `template`
//!   (annotations): one rule, built once from its config;
//! - `rule_set` ([`RuleSet`]): every rule of a config, reading `blocklist` files, shared
//!   as an `Arc` so a reload can swap it;
//! - `detector` ([`Detector`]): the state of every rule, fed per packet and evaluated per
//!   packet-clock second; `reload`: a new rule set applied by rule name; `partial`
//!   ([`Partial`]): what one of several workers counted, absorbed by the one detector
//!   that judges them all;
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
//! # Several workers, one judgement
//! With several capture workers each sees a share of the traffic (PACKET_FANOUT hashes
//! flows, so both directions of a flow meet on one worker). Each counts its share into a
//! [`Partial`] and hands it over once per packet-clock second; one [`Detector`] absorbs
//! them all and evaluates, so a rule's threshold applies to the traffic of every worker
//! together (`crate::pipeline::share` wires it). A single worker runs its detector
//! inline, with the same code.

pub mod addr_set;
mod detector;
mod evaluation;
mod partial;
mod probe;
mod reload;
mod rule;
mod rule_set;
mod rules;
mod scope;
pub mod sketch;
mod template;
mod view;

pub use detector::{CAPTURE_GAP, DEGRADED_ANNOTATION, DEGRADED_FOR, Detector};
pub use evaluation::{Evaluation, RuleFigures, RuleInstance};
pub use partial::Partial;
pub use probe::{Outcome, Probe};
pub use rule::{AlertKey, Finding, Rule, SourceCount};
pub use rule_set::RuleSet;
pub use scope::Scope;
pub use view::PacketView;

#[cfg(test)]
mod protection_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod traffic_tests;
