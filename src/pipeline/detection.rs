//! A worker's detector with where its results go: transitions to the alert output,
//! figures to the detection metrics.
//!
//! Owns [`Detection`]: it drives a [`Detector`] (packets in, packet-clock ticks), takes
//! each [`Evaluation`] it reports, hands the alert transitions to the worker's
//! [`AlertOutput`] and records each rule's figures in its metric series (resolved once
//! per rule instance: at start, and when a reload adds or replaces a rule; a retired
//! instance gives its share of the shared gauges back), and each alert that starts
//! firing under its asset's labels.
//!
//! Does not own: detection itself (`crate::detect`, which counts nothing) or the metric
//! definitions (`crate::telemetry`).

use std::collections::BTreeMap;

use crate::alert::{AlertOutput, AlertState};
use crate::detect::{Detector, Evaluation, PacketView, Partial, Rule, RuleInstance};
use crate::telemetry::{DetectionMetricVecs, RuleMetrics};
use crate::timestamp::Timestamp;

/// One worker's detector, its alert output and its metric series.
pub struct Detection {
    detector: Detector,
    alerts: Box<dyn AlertOutput>,
    metrics: Option<RuleSeries>,
    /// Reused by every evaluation, so ticks do not allocate once warm.
    out: Evaluation,
}

/// The metric handles of each running rule instance.
struct RuleSeries {
    vecs: DetectionMetricVecs,
    handles: BTreeMap<RuleInstance, RuleMetrics>,
}

impl RuleSeries {
    fn handles(vecs: &DetectionMetricVecs, rule: &Rule) -> RuleMetrics {
        vecs.rule(&rule.name, rule.severity.as_str())
    }

    /// Records `out`'s figures of `rules` (the detector's rules, in order) and retires
    /// the handles of ended instances.
    fn record(&mut self, out: &Evaluation, rules: &[Rule]) {
        for gone in &out.retired {
            if let Some(handles) = self.handles.remove(gone) {
                handles.retire();
            }
        }
        for (figures, rule) in out.rules.iter().zip(rules) {
            let handles = self
                .handles
                .entry(figures.instance)
                .or_insert_with(|| RuleSeries::handles(&self.vecs, rule));
            handles.record(
                figures.fired,
                rule.shadow,
                figures.firing,
                figures.keys,
                figures.evicted,
                figures.elapsed.as_secs_f64(),
            );
        }
    }
}

impl Detection {
    /// Runs `detector`, its transitions going to `alerts`.
    pub fn new(detector: Detector, alerts: Box<dyn AlertOutput>) -> Detection {
        Detection {
            detector,
            alerts,
            metrics: None,
            out: Evaluation::default(),
        }
    }

    /// Exports per-rule figures to `metrics`: handles of every rule are resolved now, and
    /// for the rules a reload adds or replaces when it applies.
    #[must_use]
    pub fn with_metrics(mut self, metrics: DetectionMetricVecs) -> Detection {
        let handles = self
            .detector
            .instances()
            .map(|(instance, rule)| (instance, RuleSeries::handles(&metrics, rule)))
            .collect();
        self.metrics = Some(RuleSeries {
            vecs: metrics,
            handles,
        });
        self
    }

    /// Whether any rule is running (see [`Detector::has_rules`]).
    #[inline]
    pub fn has_rules(&self) -> bool {
        self.detector.has_rules()
    }

    /// Adds one packet (see [`Detector::observe`]).
    #[inline]
    pub fn observe(&mut self, p: &PacketView<'_>) {
        self.detector.observe(p);
    }

    /// Empty partial counts for this detector's rules, for a worker to fill (see
    /// [`Partial`]).
    pub fn partial(&self) -> Partial {
        Partial::for_detector(&self.detector)
    }

    /// Whether `partial` counts for the rules this detector runs now.
    pub fn counts_for(&self, partial: &Partial) -> bool {
        partial.is_for(&self.detector)
    }

    /// Adds a worker's partial counts (see [`Detector::absorb`]).
    pub fn absorb(&mut self, partial: &mut Partial) {
        self.detector.absorb(partial);
    }

    /// Evaluates the rules at `now` (see [`Detector::tick`]) and hands on the result.
    pub fn tick(&mut self, now: Timestamp) {
        self.detector.tick(now, &mut self.out);
        self.hand_on();
    }

    /// Evaluates the last partial windows (see [`Detector::finish`]) and hands on the
    /// result.
    pub fn finish(&mut self, now: Timestamp) {
        self.detector.finish(now, &mut self.out);
        self.hand_on();
    }

    /// Counts the evaluation's figures and sends its transitions, in order.
    fn hand_on(&mut self) {
        if let Some(m) = self.metrics.as_mut() {
            m.record(&self.out, self.detector.rules().rules());
        }
        for alert in self.out.alerts.drain(..) {
            if let Some(m) = &self.metrics
                && alert.state == AlertState::Firing
            {
                let label = |name| alert.labels.get(name).map_or("", String::as_str);
                let asset = ["host_group", "protection_level", "data_grade"].map(label);
                m.vecs.asset_alert_raised(asset, alert.severity.as_str());
            }
            self.alerts.emit(alert);
        }
        self.out.retired.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::alert::Alert;
    use crate::detect::RuleSet;
    use crate::telemetry::Metrics;

    fn rules(name: &str) -> Arc<RuleSet> {
        let text = format!(
            "[[networks]]\nname = \"lan\"\ncidrs = [\"10.0.0.0/16\"]\n\
             [[rules]]\nname = \"{name}\"\nkind = \"volume\"\nseverity = \"critical\"\n\
             threshold = 100\n"
        );
        let config = crate::config::parse(&text, std::path::Path::new("t.toml")).unwrap();
        Arc::new(RuleSet::build(&config).unwrap())
    }

    /// 200 packets a second to 10.0.0.1 for seconds `from..to`, ticking every second.
    fn flood(d: &mut Detection, from: u64, to: u64) {
        let (src, dst) = ("198.51.100.1".parse().unwrap(), "10.0.0.1".parse().unwrap());
        for s in from..to {
            for i in 0..200 {
                let ts = Timestamp::from_nanos(s * 1_000_000_000 + i * 5_000_000);
                d.observe(&PacketView::test_udp(ts, src, dst));
            }
            d.tick(Timestamp::from_nanos((s + 1) * 1_000_000_000));
        }
    }

    #[test]
    fn transitions_reach_the_output_and_a_replaced_rule_gives_its_gauge_back() {
        let metrics = Metrics::new(&[], 10).unwrap();
        let (tx, updates) = std::sync::mpsc::channel();
        let out = Arc::new(Mutex::new(Vec::<Alert>::new()));
        let detector = Detector::new(rules("udp_flood")).with_updates(updates);
        let mut d =
            Detection::new(detector, Box::new(out.clone())).with_metrics(metrics.detection.clone());
        let firing = |rule: &str, n: u8| {
            format!("netwarden_alerts_firing{{rule=\"{rule}\",severity=\"critical\"}} {n}")
        };
        let text = metrics.render();
        assert!(
            text.contains(&firing("udp_flood", 0)),
            "series exist at start: {text}"
        );
        flood(&mut d, 0, 2);
        assert!(metrics.render().contains(&firing("udp_flood", 1)));
        tx.send(rules("other_flood")).unwrap();
        flood(&mut d, 2, 4);
        let text = metrics.render();
        assert!(text.contains(&firing("udp_flood", 0)), "{text}");
        assert!(text.contains(&firing("other_flood", 1)), "{text}");
        let states: Vec<(String, AlertState)> = (out.lock().unwrap().iter())
            .map(|a| (a.rule.clone(), a.state))
            .collect();
        assert!(
            text.contains(
                "netwarden_asset_alerts_raised_total{data_grade=\"general\",host_group=\"ungrouped\",protection_level=\"2\",severity=\"critical\"} 2"
            ),
            "{text}"
        );
        assert_eq!(
            states,
            [
                ("udp_flood".to_owned(), AlertState::Firing),
                ("udp_flood".to_owned(), AlertState::Resolved),
                ("other_flood".to_owned(), AlertState::Firing),
            ]
        );
    }
}
