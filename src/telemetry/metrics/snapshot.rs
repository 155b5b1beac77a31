//! Typed reads of the daemon's own state, for self-monitoring (`crate::health`).
//!
//! Owns [`HealthSeries`] (the series the self-alerts judge) and [`Metrics::health_values`],
//! which reads a series from the definition that holds it (a field of [`Metrics`]), not
//! by metric name from a gathered registry: renaming a metric cannot hide it from the
//! self-alerts, and each label is looked up through the constant its definition uses.
//!
//! Does not own: judging the values (`crate::health`, whose reading tests cover every
//! series here). A read takes each series' lock once, off the hot path (the monitor reads
//! once a second).

use std::collections::BTreeMap;

use prometheus::core::Collector;
use prometheus::proto::{MetricFamily, MetricType};

use super::{INTERFACE, KERNEL_DROPS, Metrics, RULE, SINK, WORKER};

/// A series the self-alerts judge, by its key label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthSeries {
    /// Frames delivered, by interface.
    ReceivedPackets,
    /// Frames the kernel dropped before delivery, by interface.
    KernelDropped,
    /// Flows in each worker's table, by worker.
    FlowsActive,
    /// Most flows each worker's table holds (0 until the worker has started), by worker.
    FlowsCapacity,
    /// Keys each detection rule gave up, by rule.
    RuleKeysEvicted,
    /// Failed delivery attempts plus dropped alerts, every type and reason together, by
    /// sink.
    SinkFailures,
    /// Alerts waiting in each sink's queue, by sink.
    SinkQueueLength,
    /// Alert transitions delivered, by sink.
    SinkSent,
}

/// Adds the value of every series of `collector` whose labels include `only` (when given)
/// to `into`, under the series' value of label `key`; a series without that label is
/// skipped.
fn sum_by(
    collector: &dyn Collector,
    key: &str,
    only: Option<(&str, &str)>,
    into: &mut BTreeMap<String, f64>,
) {
    let families: Vec<MetricFamily> = collector.collect();
    for family in &families {
        for m in family.get_metric() {
            let label = |name: &str| {
                m.get_label()
                    .iter()
                    .find(|l| l.name() == name)
                    .map(prometheus::proto::LabelPair::value)
            };
            if only.is_some_and(|(name, value)| label(name) != Some(value)) {
                continue;
            }
            let Some(k) = label(key) else { continue };
            let value = match family.get_field_type() {
                MetricType::GAUGE => m.get_gauge().get_value(),
                _ => m.get_counter().get_value(),
            };
            *into.entry(k.to_owned()).or_default() += value;
        }
    }
}

impl Metrics {
    /// The current values of `series`, by its key label (interface, worker, rule or sink).
    pub fn health_values(&self, series: HealthSeries) -> BTreeMap<String, f64> {
        let mut values = BTreeMap::new();
        let (capture, flows, alerts) = (&self.capture, &self.flows, &self.alerts);
        let into = &mut values;
        match series {
            HealthSeries::ReceivedPackets => {
                sum_by(&capture.received_packets, INTERFACE, None, into);
            }
            HealthSeries::KernelDropped => {
                let kernel = Some(("reason", KERNEL_DROPS));
                sum_by(&capture.dropped, INTERFACE, kernel, into);
            }
            HealthSeries::FlowsActive => sum_by(&flows.active, WORKER, None, into),
            HealthSeries::FlowsCapacity => sum_by(&flows.capacity, WORKER, None, into),
            HealthSeries::RuleKeysEvicted => {
                sum_by(&self.detection.evictions, RULE, None, into);
            }
            HealthSeries::SinkFailures => {
                sum_by(&alerts.errors, SINK, None, into);
                sum_by(&alerts.dropped, SINK, None, into);
            }
            HealthSeries::SinkQueueLength => sum_by(&alerts.queue_length, SINK, None, into),
            HealthSeries::SinkSent => sum_by(&alerts.sent, SINK, None, into),
        }
        values
    }
}
