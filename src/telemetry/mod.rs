//! Prometheus telemetry: every metric definition, its registry, and the top-talker board.
//!
//! Owns the names, help texts and label sets of all `netwarden_*` metrics ([`Metrics`]),
//! the per-worker handle bundles resolved once at start-up ([`WorkerMetrics`], so the hot
//! path never looks up a labelled series), the typed reads of the series the self-alerts
//! judge ([`HealthSeries`]), [`TopTalkers`], the bounded space-saving sketch behind the
//! top-talker gauges, and [`FiringBoard`], the alerts firing now (`netwarden_alert_firing`).
//!
//! Label values are bounded by construction: interfaces, workers and networks come from
//! the config, layers/reasons/protocols/directions/flags are fixed enums, top-talker
//! addresses are at most `metrics.top_talkers` per role, recomputed every window, and
//! firing alerts (whose labels carry their victim or source) at most
//! [`firing_board::MAX_FIRING_SERIES`], each value cut to a bounded length.

pub mod firing_board;
mod metrics;
mod top_talkers;

pub use firing_board::{FiringBoard, FiringSeries};
pub use metrics::{AlertMetrics, AlertSinkMetrics};
pub use metrics::{DetectionMetricVecs, DetectionMetrics, RuleMetrics};
pub use metrics::{
    HealthSeries, HttpMetrics, InterfaceMetrics, Metrics, Protocol, ReloadMetrics, TCP_FLAG_NAMES,
    WorkerMetrics,
};
pub use top_talkers::{Rate, Talker, TopTalkerBoard, TopTalkers};
