//! Metric definitions and the handles the pipeline updates.
//!
//! Naming follows the Prometheus conventions: `netwarden_` prefix, base units, counters
//! ending in `_total`. All series are registered on an explicit [`Registry`] (no global
//! registry), so tests can build as many independent instances as they like.

mod snapshot;

use std::sync::Arc;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

pub use self::snapshot::HealthSeries;
use super::firing_board::{FiringBoard, SharedFiringBoard};
use super::top_talkers::{SharedBoard, TopTalkerBoard};
use crate::decode::DecodeError;
use crate::flow::EndReason;
use crate::networks::{Direction, Segment};
use crate::vocabulary::RuleKind;
use crate::vocabulary::Severity;

/// Protocol label of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    /// IP with another protocol number (or a fragment whose header could not be read).
    OtherIp,
    Arp,
    /// Neither IP nor ARP.
    Other,
}

impl Protocol {
    /// Every protocol, in label order.
    pub const ALL: [Protocol; 7] = [
        Protocol::Tcp,
        Protocol::Udp,
        Protocol::Icmp,
        Protocol::Icmpv6,
        Protocol::OtherIp,
        Protocol::Arp,
        Protocol::Other,
    ];

    /// The `protocol` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::Icmpv6 => "icmpv6",
            Protocol::OtherIp => "other_ip",
            Protocol::Arp => "arp",
            Protocol::Other => "other",
        }
    }

    /// Index into [`Protocol::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// `flag` label values of `netwarden_tcp_flags_total`, in bit order (FIN = bit 0).
pub const TCP_FLAG_NAMES: [&str; 8] = ["fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr"];

/// Histogram buckets for per-batch processing time: 1 µs to ~1 s.
const BATCH_BUCKETS: [f64; 14] = [
    1e-6, 4e-6, 16e-6, 64e-6, 128e-6, 256e-6, 512e-6, 1e-3, 2e-3, 4e-3, 16e-3, 64e-3, 256e-3, 1.0,
];

/// Every netwarden metric, registered on one registry.
pub struct Metrics {
    registry: Registry,
    traffic: TrafficVecs,
    capture: CaptureVecs,
    flows: FlowVecs,
    workers: WorkerVecs,
    /// Top talkers, published by workers and read at scrape time.
    pub top_talkers: Arc<TopTalkerBoard>,
    /// Alert delivery series.
    pub alerts: AlertMetrics,
    /// Detection series, per rule.
    pub detection: DetectionMetricVecs,
    /// Config reload series.
    pub reload: ReloadMetrics,
    /// Self-alerts firing now, by rule and severity (set by `crate::health`).
    pub self_alerts_firing: IntGaugeVec,
    /// The metrics endpoint's own connections.
    pub http: HttpMetrics,
    /// Network segments (network and host group), by segment index.
    segments: Vec<Segment>,
}

fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let v = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(v.clone()))?;
    Ok(v)
}

fn gauge_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let v = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(v.clone()))?;
    Ok(v)
}

fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
    labels: &[&str],
) -> prometheus::Result<HistogramVec> {
    let v = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )?;
    registry.register(Box::new(v.clone()))?;
    Ok(v)
}

fn float_counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<prometheus::CounterVec> {
    let v = prometheus::CounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(v.clone()))?;
    Ok(v)
}

/// `interface`: a capture interface, or `pcap` for files.
const INTERFACE: &str = "interface";
/// `worker`: one pipeline worker.
const WORKER: &str = "worker";
/// `sink`: an alert sink, or `router` for the inbox in front of them.
const SINK: &str = "sink";
/// `rule`: a detection rule's name.
const RULE: &str = "rule";
/// `reason` of `netwarden_capture_dropped_packets_total` for the kernel's drops.
const KERNEL_DROPS: &str = "kernel";

/// Traffic as the pipeline classifies it.
struct TrafficVecs {
    packets: IntCounterVec,
    bytes: IntCounterVec,
    decode_errors: IntCounterVec,
    tcp_flags: IntCounterVec,
    network_packets: IntCounterVec,
    network_bytes: IntCounterVec,
}

impl TrafficVecs {
    fn new(r: &Registry) -> prometheus::Result<TrafficVecs> {
        let traffic = [INTERFACE, "direction", "protocol"];
        let per_network = [
            "network",
            "host_group",
            "protection_level",
            "data_grade",
            "direction",
        ];
        let vecs = TrafficVecs {
            packets: counter_vec(
                r,
                "netwarden_packets_total",
                "Packets seen, by interface, direction and protocol.",
                &traffic,
            )?,
            bytes: counter_vec(
                r,
                "netwarden_bytes_total",
                "Bytes seen on the wire, by interface, direction and protocol.",
                &traffic,
            )?,
            decode_errors: counter_vec(
                r,
                "netwarden_decode_errors_total",
                "Frames whose decoding stopped early, by interface, layer and reason (only the pairs a decoder can report).",
                &[INTERFACE, "layer", "reason"],
            )?,
            tcp_flags: counter_vec(
                r,
                "netwarden_tcp_flags_total",
                "TCP segments with each flag set.",
                &["flag"],
            )?,
            network_packets: counter_vec(
                r,
                "netwarden_network_packets_total",
                "Packets to, from or within each protected network, by the host group of the protected end (the destination's, within a network).",
                &per_network,
            )?,
            network_bytes: counter_vec(
                r,
                "netwarden_network_bytes_total",
                "Bytes to, from or within each protected network, by the host group of the protected end (the destination's, within a network).",
                &per_network,
            )?,
        };
        Ok(vecs)
    }
}

/// What capture sources deliver and lose.
struct CaptureVecs {
    received_packets: IntCounterVec,
    received_bytes: IntCounterVec,
    dropped: IntCounterVec,
    ring_freezes: IntCounterVec,
    up: IntGaugeVec,
    ring_bytes: IntGaugeVec,
}

impl CaptureVecs {
    fn new(r: &Registry) -> prometheus::Result<CaptureVecs> {
        Ok(CaptureVecs {
            received_packets: counter_vec(
                r,
                "netwarden_capture_received_packets_total",
                "Frames delivered by the capture source.",
                &[INTERFACE],
            )?,
            received_bytes: counter_vec(
                r,
                "netwarden_capture_received_bytes_total",
                "Bytes of frames delivered by the capture source (wire length).",
                &[INTERFACE],
            )?,
            dropped: counter_vec(
                r,
                "netwarden_capture_dropped_packets_total",
                "Frames lost before netwarden saw them (reason=kernel: capture ring full, from PACKET_STATISTICS).",
                &[INTERFACE, "reason"],
            )?,
            ring_freezes: counter_vec(
                r,
                "netwarden_capture_ring_freezes_total",
                "Times a capture ring filled up and the kernel froze its queue (PACKET_STATISTICS).",
                &[INTERFACE],
            )?,
            up: gauge_vec(
                r,
                "netwarden_capture_up",
                "1 while a worker's capture socket is attached to its interface and the link is up.",
                &[INTERFACE, "worker"],
            )?,
            ring_bytes: gauge_vec(
                r,
                "netwarden_capture_ring_bytes",
                "Bytes of a worker's capture ring mapped now: resident (in process_resident_memory_bytes) but allocated by the kernel, not charged to the service's memory cgroup (MemoryHigh, MemoryMax).",
                &[INTERFACE, "worker"],
            )?,
        })
    }
}

/// The flow tables.
struct FlowVecs {
    active: IntGaugeVec,
    capacity: IntGaugeVec,
    created: IntCounterVec,
    ended: IntCounterVec,
    evicted: IntCounterVec,
}

impl FlowVecs {
    fn new(r: &Registry) -> prometheus::Result<FlowVecs> {
        Ok(FlowVecs {
            active: gauge_vec(
                r,
                "netwarden_flows_active",
                "Flows in the flow table.",
                &[WORKER],
            )?,
            capacity: gauge_vec(
                r,
                "netwarden_flows_capacity",
                "Most flows each worker's flow table holds; at netwarden_flows_active it evicts.",
                &[WORKER],
            )?,
            created: counter_vec(
                r,
                "netwarden_flows_created_total",
                "Flows started.",
                &[WORKER],
            )?,
            ended: counter_vec(
                r,
                "netwarden_flows_expired_total",
                "Flows ended by a timeout or at shutdown, by reason (idle, active_timeout, tcp_closed, shutdown).",
                &[WORKER, "reason"],
            )?,
            evicted: counter_vec(
                r,
                "netwarden_flows_evicted_total",
                "Flows evicted because the flow table was full.",
                &[WORKER],
            )?,
        })
    }
}

/// The worker loops themselves.
struct WorkerVecs {
    packets: IntCounterVec,
    busy: prometheus::CounterVec,
    batch: HistogramVec,
    heartbeat: IntGaugeVec,
}

impl WorkerVecs {
    fn new(r: &Registry) -> prometheus::Result<WorkerVecs> {
        Ok(WorkerVecs {
            packets: counter_vec(
                r,
                "netwarden_worker_packets_total",
                "Frames processed by each pipeline worker.",
                &[WORKER],
            )?,
            busy: float_counter_vec(
                r,
                "netwarden_worker_busy_seconds_total",
                "Time each worker spent processing frames (not waiting for them).",
                &[WORKER],
            )?,
            batch: histogram_vec(
                r,
                "netwarden_worker_batch_duration_seconds",
                "Processing time of one batch of frames (up to 1024).",
                &BATCH_BUCKETS,
                &[WORKER],
            )?,
            heartbeat: gauge_vec(
                r,
                "netwarden_worker_heartbeat_timestamp_seconds",
                "Wall-clock time of each worker's last loop iteration.",
                &[WORKER],
            )?,
        })
    }
}

/// Registers `netwarden_build_info`.
fn register_build_info(r: &Registry) -> prometheus::Result<()> {
    let build = IntGaugeVec::new(
        Opts::new("netwarden_build_info", "Build information; always 1."),
        &["version", "revision"],
    )?;
    // build.rs sets NETWARDEN_REVISION: the env override, else the git commit.
    build
        .with_label_values(&[env!("CARGO_PKG_VERSION"), env!("NETWARDEN_REVISION")])
        .set(1);
    r.register(Box::new(build))
}

impl Metrics {
    /// Defines and registers every metric. `segments` are the protected networks' segments
    /// (`NetworkSet::segments`); `top_talkers` the number of talkers exported per role.
    ///
    /// # Errors
    /// Only on a programming error (duplicate or invalid metric definition).
    pub fn new(segments: &[Segment], top_talkers: usize) -> prometheus::Result<Metrics> {
        let r = Registry::new();
        let m = Metrics {
            traffic: TrafficVecs::new(&r)?,
            capture: CaptureVecs::new(&r)?,
            flows: FlowVecs::new(&r)?,
            workers: WorkerVecs::new(&r)?,
            top_talkers: Arc::new(TopTalkerBoard::new(top_talkers)?),
            alerts: AlertMetrics::new(&r)?,
            detection: DetectionMetricVecs::new(&r)?,
            reload: ReloadMetrics::new(&r)?,
            self_alerts_firing: gauge_vec(
                &r,
                "netwarden_self_alerts_firing",
                "Self-alerts (netwarden about itself) firing now, by rule and severity.",
                &["rule", "severity"],
            )?,
            http: HttpMetrics::new(&r)?,
            segments: segments.to_vec(),
            registry: r,
        };
        m.registry
            .register(Box::new(SharedBoard(Arc::clone(&m.top_talkers))))?;
        m.registry
            .register(Box::new(SharedFiringBoard(Arc::clone(&m.alerts.firing))))?;
        register_build_info(&m.registry)?;
        // The standard process_* series (CPU, resident memory, open files, start time):
        // restart and memory alerts, and what systemd's MemoryMax is measured against.
        m.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        // Alerts by asset exist from start-up for every host group with protected
        // addresses, so `increase()` sees the first one and dashboards show zeros.
        for segment in &m.segments {
            let [(_, group), (_, level), (_, grade)] = segment.asset.labels();
            for severity in Severity::ALL {
                m.detection.raised_on_asset.with_label_values(&[
                    group,
                    level,
                    grade,
                    severity.as_str(),
                ]);
            }
        }
        Ok(m)
    }

    /// The registry to gather from.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let families = self.registry.gather();
        prometheus::TextEncoder::new()
            .encode_to_string(&families)
            .unwrap_or_default()
    }

    /// Handles for the counters of one capture interface (or file).
    pub fn interface(&self, interface: &str) -> InterfaceMetrics {
        let c = &self.capture;
        InterfaceMetrics {
            received_packets: c.received_packets.with_label_values(&[interface]),
            received_bytes: c.received_bytes.with_label_values(&[interface]),
            kernel_dropped: c.dropped.with_label_values(&[interface, KERNEL_DROPS]),
            ring_freezes: c.ring_freezes.with_label_values(&[interface]),
        }
    }

    /// Resolves every handle one worker needs, so the hot path never looks up a label.
    pub fn worker(&self, interface: &str, worker: &str) -> WorkerMetrics {
        let (t, f, w) = (&self.traffic, &self.flows, &self.workers);
        let traffic = |v: &IntCounterVec| -> Vec<IntCounter> {
            Direction::ALL
                .iter()
                .flat_map(|d| Protocol::ALL.iter().map(move |p| (d, p)))
                .map(|(d, p)| v.with_label_values(&[interface, d.as_str(), p.as_str()]))
                .collect()
        };
        let per_network = |v: &IntCounterVec| -> Vec<[IntCounter; 3]> {
            self.segments
                .iter()
                .map(|s| {
                    let [(_, group), (_, level), (_, grade)] = s.asset.labels();
                    ["inbound", "outbound", "internal"]
                        .map(|d| v.with_label_values(&[&s.network, group, level, grade, d]))
                })
                .collect()
        };
        WorkerMetrics {
            interface: self.interface(interface),
            packets: traffic(&t.packets),
            bytes: traffic(&t.bytes),
            // Created with the worker, so `rate()` sees an interface's first error.
            decode_errors: DecodeError::POSSIBLE
                .iter()
                .map(|e| {
                    t.decode_errors.with_label_values(&[
                        interface,
                        e.layer.as_str(),
                        e.reason.as_str(),
                    ])
                })
                .collect(),
            tcp_flags: TCP_FLAG_NAMES.map(|flag| t.tcp_flags.with_label_values(&[flag])),
            network_packets: per_network(&t.network_packets),
            network_bytes: per_network(&t.network_bytes),
            flows_active: f.active.with_label_values(&[worker]),
            flows_capacity: f.capacity.with_label_values(&[worker]),
            flows_created: f.created.with_label_values(&[worker]),
            flows_ended: EndReason::ALL
                .iter()
                .map(|r| match r {
                    // Evictions have their own counter; `expired` is for timeouts and shutdown.
                    EndReason::Evicted => f.evicted.with_label_values(&[worker]),
                    r => f.ended.with_label_values(&[worker, r.as_str()]),
                })
                .collect(),
            flows_evicted: f.evicted.with_label_values(&[worker]),
            worker_packets: w.packets.with_label_values(&[worker]),
            busy_seconds: w.busy.with_label_values(&[worker]),
            batch_seconds: w.batch.with_label_values(&[worker]),
            heartbeat: w.heartbeat.with_label_values(&[worker]),
            capture_up: self.capture.up.with_label_values(&[interface, worker]),
            capture_ring_bytes: self
                .capture
                .ring_bytes
                .with_label_values(&[interface, worker]),
        }
    }
}

/// Counters of one capture source.
#[derive(Clone)]
pub struct InterfaceMetrics {
    /// Frames delivered.
    pub received_packets: IntCounter,
    /// Bytes delivered.
    pub received_bytes: IntCounter,
    /// Kernel drops.
    pub kernel_dropped: IntCounter,
    /// Ring freezes (PACKET_STATISTICS).
    pub ring_freezes: IntCounter,
}

/// The series one worker updates, resolved once.
#[derive(Clone)]
pub struct WorkerMetrics {
    /// Its capture source's counters.
    pub interface: InterfaceMetrics,
    /// Packets by `Direction::index() * Protocol::ALL.len() + Protocol::index()`.
    pub packets: Vec<IntCounter>,
    /// Bytes, same indexing.
    pub bytes: Vec<IntCounter>,
    /// Decode errors in [`DecodeError::POSSIBLE`] order.
    pub decode_errors: Vec<IntCounter>,
    /// TCP flags by bit.
    pub tcp_flags: [IntCounter; 8],
    /// Per network segment (`NetworkSet::segments`): inbound, outbound, internal.
    pub network_packets: Vec<[IntCounter; 3]>,
    /// Same for bytes.
    pub network_bytes: Vec<[IntCounter; 3]>,
    /// Flow-table occupancy.
    pub flows_active: IntGauge,
    /// Flow-table capacity, set once when the worker starts.
    pub flows_capacity: IntGauge,
    /// Flows started.
    pub flows_created: IntCounter,
    /// Flows ended, by `EndReason::ALL` order (the `Evicted` slot is `flows_evicted`).
    pub flows_ended: Vec<IntCounter>,
    /// Flows evicted for room.
    pub flows_evicted: IntCounter,
    /// Frames processed.
    pub worker_packets: IntCounter,
    /// Processing time.
    pub busy_seconds: prometheus::Counter,
    /// Per-batch processing time.
    pub batch_seconds: Histogram,
    /// Liveness.
    pub heartbeat: IntGauge,
    /// Whether its capture source captures (1) or waits for its interface (0).
    pub capture_up: IntGauge,
    /// Bytes of its capture ring mapped now (see `Source::kernel_mapped_bytes`).
    pub capture_ring_bytes: IntGauge,
}

/// Histogram buckets for one alert delivery request: 1 ms to ~30 s.
const SEND_BUCKETS: [f64; 12] = [
    1e-3, 4e-3, 16e-3, 64e-3, 0.128, 0.256, 0.512, 1.0, 2.0, 4.0, 10.0, 30.0,
];

/// `error_type` values of `netwarden_alert_send_errors_total`.
const SEND_ERROR_TYPES: [&str; 6] = [
    "connect",
    "timeout",
    "protocol",
    "status_4xx",
    "status_5xx",
    "io",
];

/// Alert delivery series. The `sink` label is bounded: `router` (the inbox between workers
/// and the delivery thread), `alertmanager-<index>`, `webhook`, `log_file`.
#[derive(Clone)]
pub struct AlertMetrics {
    sent: IntCounterVec,
    errors: IntCounterVec,
    dropped: IntCounterVec,
    duration: HistogramVec,
    queue_length: IntGaugeVec,
    /// The alerts firing now, published by the router (`netwarden_alert_firing`).
    pub firing: Arc<FiringBoard>,
}

impl AlertMetrics {
    fn new(r: &Registry) -> prometheus::Result<AlertMetrics> {
        Ok(AlertMetrics {
            sent: counter_vec(
                r,
                "netwarden_alerts_sent_total",
                "Alert transitions delivered, by sink.",
                &[SINK],
            )?,
            errors: counter_vec(
                r,
                "netwarden_alert_send_errors_total",
                "Failed delivery attempts, by sink and error type (connect, timeout, protocol, status_4xx, status_5xx, io).",
                &[SINK, "error_type"],
            )?,
            dropped: counter_vec(
                r,
                "netwarden_alerts_dropped_total",
                "Alert transitions given up, by sink and reason (queue_full, retries_exhausted, rejected, shutdown; firing_table_full: a firing alert sent once but not kept to re-send).",
                &[SINK, "reason"],
            )?,
            duration: histogram_vec(
                r,
                "netwarden_alert_send_duration_seconds",
                "Time of one alert delivery request, by sink.",
                &SEND_BUCKETS,
                &[SINK],
            )?,
            queue_length: gauge_vec(
                r,
                "netwarden_alert_queue_length",
                "Alert transitions waiting in each sink's queue.",
                &[SINK],
            )?,
            firing: Arc::new(FiringBoard::new()?),
        })
    }

    /// The drop counter of `sink` for `reason` (for the inbox, which has only drops).
    pub fn dropped(&self, sink: &str, reason: &str) -> IntCounter {
        self.dropped.with_label_values(&[sink, reason])
    }

    /// Handles of one sink, resolved once.
    pub fn sink(&self, sink: &str) -> AlertSinkMetrics {
        let dropped = |reason: &str| self.dropped.with_label_values(&[sink, reason]);
        // Error series exist from start-up, so `rate()` sees the first failure.
        for error_type in SEND_ERROR_TYPES {
            self.errors.with_label_values(&[sink, error_type]);
        }
        AlertSinkMetrics {
            sent: self.sent.with_label_values(&[sink]),
            errors: self.errors.clone(),
            sink: sink.to_owned(),
            queue_full: dropped("queue_full"),
            retries_exhausted: dropped("retries_exhausted"),
            rejected: dropped("rejected"),
            shutdown: dropped("shutdown"),
            duration: self.duration.with_label_values(&[sink]),
            queue_length: self.queue_length.with_label_values(&[sink]),
        }
    }
}

/// The series of one alert sink.
#[derive(Clone)]
pub struct AlertSinkMetrics {
    sink: String,
    errors: IntCounterVec,
    /// Transitions delivered.
    pub sent: IntCounter,
    /// Dropped because the queue was full.
    pub queue_full: IntCounter,
    /// Dropped after the last attempt failed.
    pub retries_exhausted: IntCounter,
    /// Dropped because the receiver refused them (4xx).
    pub rejected: IntCounter,
    /// Still queued when the shutdown grace period ended.
    pub shutdown: IntCounter,
    /// Request time.
    pub duration: Histogram,
    /// Queue occupancy.
    pub queue_length: IntGauge,
}

impl AlertSinkMetrics {
    /// The `sink` label value.
    pub fn sink(&self) -> &str {
        &self.sink
    }

    /// Counts one failed attempt. `error_type` is one of a fixed set of names (off the hot
    /// path, so the label lookup per failure is fine).
    pub fn error(&self, error_type: &'static str) {
        self.errors
            .with_label_values(&[self.sink.as_str(), error_type])
            .inc();
    }
}

/// Detection series. Labels are bounded: `rule` names come from the config (at most
/// `config::rules::MAX_RULES`), `severity` is one of four, `host_group` one of the
/// config's host groups or the default one (its level and grade follow from it).
#[derive(Clone)]
pub struct DetectionMetricVecs {
    firing: IntGaugeVec,
    raised: IntCounterVec,
    raised_on_asset: IntCounterVec,
    shadow: IntCounterVec,
    keys: IntGaugeVec,
    evictions: IntCounterVec,
    evaluation: prometheus::CounterVec,
}

impl DetectionMetricVecs {
    fn new(r: &Registry) -> prometheus::Result<DetectionMetricVecs> {
        Ok(DetectionMetricVecs {
            firing: gauge_vec(
                r,
                "netwarden_alerts_firing",
                "Alerts firing now, by rule and severity.",
                &[RULE, "severity"],
            )?,
            raised: counter_vec(
                r,
                "netwarden_alerts_raised_total",
                "Alerts that started firing, by rule and severity.",
                &[RULE, "severity"],
            )?,
            raised_on_asset: counter_vec(
                r,
                "netwarden_asset_alerts_raised_total",
                "Alerts that started firing, by the host group, protection level and data grade of their asset and their severity (after the severity matrix).",
                &["host_group", "protection_level", "data_grade", "severity"],
            )?,
            shadow: counter_vec(
                r,
                "netwarden_alerts_shadow_total",
                "Alerts a shadow-mode rule would have fired (none was sent), by rule.",
                &[RULE],
            )?,
            keys: gauge_vec(
                r,
                "netwarden_rule_keys_tracked",
                "Keys (victims, sources…) each rule tracks in its current window.",
                &[RULE],
            )?,
            evictions: counter_vec(
                r,
                "netwarden_rule_keys_evicted_total",
                "Keys a rule gave up because its table was full (evicted for a new key, or a new key turned away), or refused because it already tracked 10000 alerts.",
                &[RULE],
            )?,
            evaluation: float_counter_vec(
                r,
                "netwarden_rule_evaluation_seconds_total",
                "Time spent evaluating each rule on packet-clock ticks.",
                &[RULE],
            )?,
        })
    }

    /// Handles for a detector running `rules` (name, severity label), resolved once.
    pub fn for_rules(&self, rules: &[(String, &str)]) -> DetectionMetrics {
        DetectionMetrics {
            rules: rules
                .iter()
                .map(|(name, severity)| self.rule(name, severity))
                .collect(),
        }
    }

    /// Counts one alert that started firing about an asset, by its asset labels
    /// (`host_group`, `protection_level`, `data_grade`) and its `severity`. Called per
    /// alert transition, never per packet, so the label lookup is fine.
    pub fn asset_alert_raised(&self, asset: [&str; 3], severity: &str) {
        let [group, level, grade] = asset;
        self.raised_on_asset
            .with_label_values(&[group, level, grade, severity])
            .inc();
    }

    /// Handles of one rule (`name`, `severity` label), resolved once: a detector calls
    /// this at start and for each rule a reload adds or changes.
    pub fn rule(&self, name: &str, severity: &str) -> RuleMetrics {
        RuleMetrics {
            firing: self.firing.with_label_values(&[name, severity]),
            raised: self.raised.with_label_values(&[name, severity]),
            shadow: self.shadow.with_label_values(&[name]),
            keys: self.keys.with_label_values(&[name]),
            evictions: self.evictions.with_label_values(&[name]),
            evaluation: self.evaluation.with_label_values(&[name]),
            last_firing: 0,
            last_keys: 0,
        }
    }
}

/// One detector's metric handles, in rule order.
pub struct DetectionMetrics {
    rules: Vec<RuleMetrics>,
}

impl DetectionMetrics {
    /// The handles of rule `index`.
    pub fn rule(&mut self, index: usize) -> Option<&mut RuleMetrics> {
        self.rules.get_mut(index)
    }
}

/// One rule's handles in one detector. Gauges are shared by every worker, so each
/// detector adds the change of its own figure.
pub struct RuleMetrics {
    firing: IntGauge,
    raised: IntCounter,
    shadow: IntCounter,
    keys: IntGauge,
    evictions: IntCounter,
    evaluation: prometheus::Counter,
    last_firing: i64,
    last_keys: i64,
}

impl RuleMetrics {
    /// Records one evaluation: alerts that started firing (counted as shadow when
    /// `shadow`), alerts firing now, keys tracked, keys evicted, evaluation time.
    pub fn record(
        &mut self,
        fired: u64,
        shadow: bool,
        firing: usize,
        keys: usize,
        evicted: u64,
        seconds: f64,
    ) {
        if shadow {
            self.shadow.inc_by(fired);
        } else {
            self.raised.inc_by(fired);
            let firing = i64::try_from(firing).unwrap_or(i64::MAX);
            self.firing.add(firing - self.last_firing);
            self.last_firing = firing;
        }
        let keys = i64::try_from(keys).unwrap_or(i64::MAX);
        self.keys.add(keys - self.last_keys);
        self.last_keys = keys;
        self.evictions.inc_by(evicted);
        self.evaluation.inc_by(seconds);
    }

    /// Takes this detector's share back out of the shared gauges (firing alerts, keys
    /// tracked): its rule was removed or its handles replaced by a reload.
    pub fn retire(self) {
        self.firing.sub(self.last_firing);
        self.keys.sub(self.last_keys);
    }
}

/// The metrics endpoint's connections: how many are open, and what it turned away.
#[derive(Clone)]
pub struct HttpMetrics {
    /// Connections open now.
    pub open: IntGauge,
    rejections: IntCounterVec,
}

impl HttpMetrics {
    fn new(r: &Registry) -> prometheus::Result<HttpMetrics> {
        let open = IntGauge::new(
            "netwarden_http_connections_open",
            "Connections open to the metrics endpoint.",
        )?;
        r.register(Box::new(open.clone()))?;
        Ok(HttpMetrics {
            open,
            rejections: counter_vec(
                r,
                "netwarden_http_rejections_total",
                "Connections or requests the metrics endpoint turned away, by reason.",
                &["reason"],
            )?,
        })
    }

    /// Counts one connection or request turned away for `reason` (`header_timeout`,
    /// `idle_timeout`, `evicted`, `over_capacity`, `tls_handshake`, `unauthorized`,
    /// `rate_limited`).
    pub fn reject(&self, reason: &'static str) {
        self.rejections.with_label_values(&[reason]).inc();
    }
}

/// Config reload outcomes (`netwarden_config_*`), as Prometheus itself exports them.
#[derive(Clone)]
pub struct ReloadMetrics {
    /// Reloads that took effect.
    pub succeeded: IntCounter,
    /// Reloads refused (the previous config kept running).
    pub failed: IntCounter,
    /// 1 when the last reload attempt succeeded (or none was tried), 0 when it failed.
    pub last_successful: IntGauge,
    /// Wall-clock time of the last config that took effect (start-up counts).
    pub last_success_time: IntGauge,
    /// Rules that can alert (not shadow) in the running config, by kind; every kind has a
    /// series, so zero is visible.
    pub rules_loaded: IntGaugeVec,
}

impl ReloadMetrics {
    fn new(r: &Registry) -> prometheus::Result<ReloadMetrics> {
        let reloads = counter_vec(
            r,
            "netwarden_config_reloads_total",
            "Config reloads (SIGHUP or a watched file changed), by result.",
            &["result"],
        )?;
        let last_successful = IntGauge::new(
            "netwarden_config_last_reload_successful",
            "Whether the last config reload succeeded (1) or was refused (0).",
        )?;
        r.register(Box::new(last_successful.clone()))?;
        last_successful.set(1);
        let last_success_time = IntGauge::new(
            "netwarden_config_last_reload_success_timestamp_seconds",
            "When the running config took effect, seconds since the epoch.",
        )?;
        r.register(Box::new(last_success_time.clone()))?;
        let rules_loaded = gauge_vec(
            r,
            "netwarden_rules_loaded",
            "Detection rules in effect that can alert (shadow rules excluded), by kind.",
            &["kind"],
        )?;
        let m = ReloadMetrics {
            succeeded: reloads.with_label_values(&["success"]),
            failed: reloads.with_label_values(&["failure"]),
            last_successful,
            last_success_time,
            rules_loaded,
        };
        m.mark_loaded();
        m.count_rules(std::iter::empty());
        Ok(m)
    }

    /// Sets [`Self::rules_loaded`] to the running rules that can alert, given by kind.
    pub fn count_rules(&self, alerting: impl IntoIterator<Item = RuleKind>) {
        let mut counts = [0_i64; RuleKind::ALL.len()];
        for kind in alerting {
            if let Some(n) = RuleKind::ALL
                .iter()
                .position(|&k| k == kind)
                .and_then(|i| counts.get_mut(i))
            {
                *n = n.saturating_add(1);
            }
        }
        for (kind, n) in RuleKind::ALL.iter().zip(counts) {
            self.rules_loaded.with_label_values(&[kind.as_str()]).set(n);
        }
    }

    /// Records that a config took effect now.
    pub fn mark_loaded(&self) {
        let now = crate::timestamp::Timestamp::now().as_nanos() / 1_000_000_000;
        self.last_success_time
            .set(i64::try_from(now).unwrap_or(i64::MAX));
        self.last_successful.set(1);
    }
}
