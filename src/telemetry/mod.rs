//! Prometheus telemetry: every metric definition, its registry, and the top-talker board.
//!
//! Owns the names, help texts and label sets of all `netwarden_*` metrics ([`Metrics`]),
//! the per-worker handle bundles resolved once at start-up ([`WorkerMetrics`], so the hot
//! path never looks up a labelled series), the typed reads of the series the self-alerts
//! judge ([`HealthSeries`]), and [`TopTalkers`], the bounded space-saving sketch behind the only
//! address-valued labels.
//!
//! Label values are bounded by construction: interfaces, workers and networks come from
//! the config, layers/reasons/protocols/directions/flags are fixed enums, and top-talker
//! addresses are at most `metrics.top_talkers` per role, recomputed every window.

mod metrics;
mod top_talkers;

pub use metrics::{AlertMetrics, AlertSinkMetrics};
pub use metrics::{DetectionMetricVecs, DetectionMetrics, RuleMetrics};
pub use metrics::{
    HealthSeries, HttpMetrics, InterfaceMetrics, Metrics, Protocol, ReloadMetrics, TCP_FLAG_NAMES,
    WorkerMetrics,
};
pub use top_talkers::{Rate, Talker, TopTalkerBoard, TopTalkers};
