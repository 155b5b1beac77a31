//! The TOML configuration: schema, defaults, loading and validation.
//!
//! Owns the serde structs (every one `deny_unknown_fields`, because a typo in a security
//! tool must fail loudly), their defaults (which `config/netwarden.toml` documents key by
//! key; a test keeps the two in step), and [`load`], which parses and then runs every
//! semantic check, collecting *all* problems as [`ConfigError`]s that name the file, line
//! and key (and, for a rule, the rule). Module map: `rules` (the detection schema and how
//! a `[[rules]]` table is read), `load` (files and checks), `locate` and `error` (where a
//! problem is written), `alerting`, `self_alerts`, `protection` (graded protection:
//! defaults and the severity matrix), `values`.
//!
//! A leaf: it depends only on `crate::vocabulary`.
//!
//! Does not own: turning the config into runtime objects (that happens where each object
//! is built: `app`, `pipeline`, `detect`), or watching files.

mod alerting;
mod capture_filter;
mod error;
mod file;
mod load;
mod locate;
mod protection;
mod rules;
mod self_alerts;
mod values;
pub mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use alerting::{
    AlertingConfig, AuthorizationConfig, BasicAuthConfig, DEFAULT_RUNBOOK_BASE_URL,
    TlsClientConfig, WebhookConfig,
};
pub use capture_filter::{CaptureFilter, FilterInstruction};
pub use error::{ConfigError, ConfigErrors};
pub use file::{MAX_BLOCKLIST_BYTES, MAX_CONFIG_BYTES, ReadError, read_text};
pub use load::{load, parse};
pub use protection::{ProtectionConfig, SeverityMatrix};
pub use rules::{
    BaselineParams, BlocklistParams, DnsAmplificationParams, DnsTunnelParams, ExfiltrationParams,
    HostGroupConfig, MAX_EXFILTRATION_WINDOWS, ReflectionKey, ReflectionParams, RuleCommon,
    RuleConfig, RuleKind, RuleParams, RuleScope, RulesFile, ScanParams, SynFloodParams,
    VolumeDirection, VolumeKey, VolumeMetric, VolumeParams, VolumeProtocol, VolumeTraffic,
};
pub use self_alerts::{
    AlertDeliveryConfig, BlocklistAgeConfig, CaptureDropsConfig, DetectionStateConfig,
    FlowTableFullConfig, InterfaceSilentConfig, SelfAlertHold, SelfAlertsConfig,
};
pub use values::{Cidr, HumanDuration};

/// The shipped default configuration, embedded so `netwarden run` works without a file.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../../config/netwarden.toml");

/// Path shown in errors for the embedded default.
pub const BUILT_IN_PATH: &str = "<built-in config/netwarden.toml>";

/// The shipped default rule set (`config/rules.d/default.toml`), used with the embedded
/// default config.
pub const DEFAULT_RULES_TOML: &str = include_str!("../../config/rules.d/default.toml");

/// Path shown in errors for the embedded default rules.
pub const BUILT_IN_RULES_PATH: &str = "<built-in config/rules.d/default.toml>";

/// Caps that bound label cardinality and memory, whatever the config says.
pub mod limits {
    /// Most protected networks (each is a `network` label value).
    pub const MAX_NETWORKS: usize = 64;
    /// Most interfaces captured at once.
    pub const MAX_INTERFACES: usize = 64;
    /// Most capture workers per interface.
    pub const MAX_WORKERS_PER_INTERFACE: usize = 64;
    /// Largest capture ring block (the kernel allocates each block contiguously).
    pub const MAX_RING_BLOCK_BYTES: usize = 16 << 20;
    /// Most blocks per capture ring.
    pub const MAX_RING_BLOCKS: usize = 4096;
    /// Most top talkers exported per role.
    pub const MAX_TOP_TALKERS: usize = 100;
    /// Smallest allowed flow-table cap.
    pub const MIN_FLOWS: usize = 1_024;
    /// Largest allowed flow-table cap (about 160 bytes each).
    pub const MAX_FLOWS: usize = 64 * 1024 * 1024;
    /// Largest allowed `metrics.max_connections`.
    pub const MAX_HTTP_CONNECTIONS: usize = 65_536;
}

/// The whole configuration file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Logging.
    pub log: LogConfig,
    /// Packet capture from interfaces.
    pub capture: CaptureConfig,
    /// The flow table.
    pub flows: FlowsConfig,
    /// Protected networks: the address ranges this gateway defends. Traffic direction
    /// (inbound, outbound, internal, external) is judged against them.
    pub networks: Vec<NetworkConfig>,
    /// The Prometheus endpoint and what it exports.
    pub metrics: MetricsConfig,
    /// Process identity when started as root outside systemd.
    pub daemon: DaemonConfig,
    /// Alert delivery: Alertmanager, webhook, log file.
    pub alerting: AlertingConfig,
    /// Folder of rule files (`*.toml`, each with `[[rules]]` and `[[host_groups]]`), read in
    /// name order; relative to the config file. Set in the file, it must exist and be
    /// readable (a configuration error otherwise); left at its default, a missing folder
    /// means no rule files.
    pub rules_dir: RulesDir,
    /// Whether a reload may leave no rule that can alert (none at all, or only shadow
    /// ones). Off, such a reload is refused and the running rules stay, so an emptied
    /// rules folder cannot switch detection off unnoticed.
    pub allow_no_rules: bool,
    /// Named sets of CIDRs: asset classes (protection level, data grade) and rule scopes.
    pub host_groups: Vec<HostGroupConfig>,
    /// Graded protection: defaults of hosts in no host group, and the severity matrix.
    pub protection: ProtectionConfig,
    /// Detection rules (more come from `rules_dir`). [`load`] and [`parse`] read them
    /// apart from the rest, keeping each key's position (see `rules::read`).
    pub rules: Vec<RuleConfig>,
    /// Alerts about netwarden itself, sent through `[alerting]`.
    pub self_alerts: SelfAlertsConfig,
}

/// [`Config::daemon`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// User to switch to (with its primary group) once the capture sockets are open and
    /// the metrics endpoint is bound, when started as root; only `CAP_NET_RAW` is kept.
    /// Empty: keep the starting identity (under systemd the unit sets the user).
    pub user: String,
    /// Where firing alerts are kept across restarts (`alerts.json`). The environment
    /// variable `STATE_DIRECTORY` (set by systemd's `StateDirectory=`) overrides it. Empty:
    /// no persistence. A directory that cannot be created or written is warned about once
    /// and netwarden runs without persistence; one that others than the service user can
    /// write to, or that belongs to another account, stops start-up.
    pub state_directory: PathBuf,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            user: String::new(),
            state_directory: PathBuf::from("/var/lib/netwarden"),
        }
    }
}

/// [`Config::rules_dir`]: a path whose default is `rules.d`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct RulesDir(pub PathBuf);

impl Default for RulesDir {
    fn default() -> RulesDir {
        RulesDir(PathBuf::from("rules.d"))
    }
}

/// Log output.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Default level filter (`error`, `warn`, `info`, `debug`, `trace`, or a full
    /// `tracing-subscriber` directive). `RUST_LOG`, when set, wins.
    pub level: String,
    /// `text` (human-readable) or `json` (one JSON object per line).
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// JSON lines.
    Json,
}

/// Live capture.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Interfaces to capture on. Empty means every interface that is up and not loopback.
    pub interfaces: Vec<String>,
    /// Put interfaces in promiscuous mode (needed on a SPAN/mirror port).
    pub promiscuous: bool,
    /// Bytes kept of each frame. The decoders read headers and a DNS question, which 512
    /// bytes hold behind any usual encapsulation; longer frames are cut, and byte counters
    /// still count their length on the wire.
    pub snap_length_bytes: usize,
    /// Bytes per block of each capture socket's receive ring (`TPACKET_V3`): a power of two,
    /// at least the snap length plus 4 KiB.
    pub ring_block_bytes: usize,
    /// Blocks per ring. The ring (`ring_block_bytes × ring_blocks` per worker) absorbs a
    /// burst while a worker is busy; when it is full the kernel drops
    /// (`netwarden_capture_dropped_packets_total{reason="kernel"}`).
    pub ring_blocks: usize,
    /// The kernel hands over a block that holds frames after this long even when it is not
    /// full, so a quiet link is seen promptly.
    pub ring_block_timeout: HumanDuration,
    /// Worker threads per interface, spread by PACKET_FANOUT.
    pub workers_per_interface: usize,
    /// How PACKET_FANOUT spreads frames over an interface's workers: `hash` (by flow, both
    /// directions of a flow to one worker; IP fragments reassembled first), `cpu` (by the
    /// CPU that received the frame) or `qm` (by the NIC's receive queue, for multi-queue
    /// NICs whose RSS already keeps a flow on one queue).
    pub fanout: FanoutMode,
    /// How long a capture read waits before the worker checks for shutdown and flushes
    /// its counters.
    pub read_timeout: HumanDuration,
    /// A classic BPF program (`tcpdump -ddd` output) the kernel runs on every frame:
    /// frames it returns 0 for are never captured. None captures everything.
    pub filter: Option<CaptureFilter>,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            interfaces: Vec::new(),
            promiscuous: true,
            snap_length_bytes: 512,
            ring_block_bytes: 4 << 20,
            ring_blocks: 8,
            ring_block_timeout: HumanDuration::millis(100),
            workers_per_interface: 1,
            fanout: FanoutMode::Hash,
            read_timeout: HumanDuration::millis(100),
            filter: None,
        }
    }
}

/// How PACKET_FANOUT spreads an interface's frames over its workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FanoutMode {
    /// By flow hash.
    #[default]
    Hash,
    /// By receiving CPU.
    Cpu,
    /// By NIC receive queue.
    Qm,
}

/// The flow table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowsConfig {
    /// Most flows tracked at once, across all workers (split evenly). When full, the
    /// least-recently-seen half-open or unanswered flow is evicted first.
    pub max_flows: usize,
    /// Idle timeouts by protocol and TCP state, and the active timeout.
    pub timeouts: FlowTimeoutsConfig,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        FlowsConfig {
            max_flows: 262_144,
            timeouts: FlowTimeoutsConfig::default(),
        }
    }
}

/// Flow timeouts. A flow ends when it has been idle for its class's timeout, or has lived
/// for `active` (then the next packet starts a new flow record, as NetFlow does).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowTimeoutsConfig {
    /// TCP flows that have not completed the handshake.
    pub tcp_half_open: HumanDuration,
    /// Established TCP flows.
    pub tcp_established: HumanDuration,
    /// TCP flows after the first FIN.
    pub tcp_closing: HumanDuration,
    /// TCP flows after FIN from both sides or a RST.
    pub tcp_closed: HumanDuration,
    /// UDP flows.
    pub udp: HumanDuration,
    /// ICMP and ICMPv6 flows.
    pub icmp: HumanDuration,
    /// Any other IP protocol.
    pub other: HumanDuration,
    /// Longest a flow record lives before it is ended and restarted.
    pub active: HumanDuration,
}

impl Default for FlowTimeoutsConfig {
    fn default() -> Self {
        FlowTimeoutsConfig {
            tcp_half_open: HumanDuration::secs(30),
            tcp_established: HumanDuration::secs(300),
            tcp_closing: HumanDuration::secs(60),
            tcp_closed: HumanDuration::secs(10),
            udp: HumanDuration::secs(60),
            icmp: HumanDuration::secs(30),
            other: HumanDuration::secs(60),
            active: HumanDuration::secs(1800),
        }
    }
}

/// One protected network: a name (the `network` label) and its address ranges.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Label value: lowercase letters, digits, `_`, `-`, `.`, `/`, `:`.
    pub name: String,
    /// IPv4 and IPv6 CIDRs.
    pub cidrs: Vec<Cidr>,
}

/// The metrics endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of the HTTP endpoint serving `/metrics`, `/healthz` and `/readyz`.
    pub listen: SocketAddr,
    /// How many top talkers (by bytes) to export per role (source, destination).
    pub top_talkers: usize,
    /// Window of packet time over which top talkers are ranked. The gauges show the last
    /// finished window, so it must be at least the scrape interval (a shorter window is
    /// never scraped); each window can bring at most `2 × top_talkers` new address series
    /// (both roles).
    pub top_talkers_window: HumanDuration,
    /// How long a client has to send a whole request head: from the connection's start
    /// (TLS handshake included) for its first request, from the first byte for later ones.
    /// A client that is slower is disconnected unanswered.
    pub header_read_timeout: HumanDuration,
    /// How long a kept-alive connection may wait for its next request, or stall while its
    /// answer is written, before it is closed.
    pub idle_timeout: HumanDuration,
    /// Most connections open at once. At the cap, the connection idle the longest (no
    /// request in progress) is closed to admit the new one. It is also lowered at start so
    /// that the endpoint never takes the file descriptors alert delivery and the state
    /// file need (see the README's Security section).
    pub max_connections: usize,
    /// TLS and basic authentication for the endpoint: a YAML file in the Prometheus
    /// exporter-toolkit format (the `--web.config.file` of `node_exporter`), relative to
    /// this file. `netwarden run --web-config-file` overrides it. Empty: plain HTTP, no
    /// authentication.
    pub web_config_file: PathBuf,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9847)),
            top_talkers: 10,
            top_talkers_window: HumanDuration::secs(60),
            header_read_timeout: HumanDuration::secs(10),
            idle_timeout: HumanDuration::secs(120),
            max_connections: 64,
            web_config_file: PathBuf::new(),
        }
    }
}

/// A config together with where it came from.
#[derive(Clone, Debug)]
pub struct LoadedConfig {
    /// The validated config.
    pub config: Config,
    /// The file it was read from (`None` for the embedded default).
    pub path: Option<PathBuf>,
}

impl Config {
    /// Every semantic problem, as (dotted key, message). Empty means valid. [`load`] and
    /// [`parse`] run the same checks and also say where each problem is written.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = self.validate_settings();
        let groups: std::collections::HashSet<&str> =
            self.host_groups.iter().map(|g| g.name.as_str()).collect();
        let mut bad = |key: &str, _, msg| problems.push((key.to_owned(), msg));
        let default_group = &self.protection.default_host_group;
        rules::validate_host_groups(&self.host_groups, default_group, &mut bad);
        rules::validate_rules(&self.rules, &groups, &mut bad);
        let rule_names = self.rules.iter().map(|r| r.common.name.as_str());
        for d in rules::duplicates(rule_names) {
            if let Some(r) = self.rules.get(d) {
                let msg = format!("rule name `{}` is used twice", r.common.name);
                problems.push(("rules.name".to_owned(), msg));
            }
        }
        for d in rules::duplicates(self.host_groups.iter().map(|g| g.name.as_str())) {
            if let Some(g) = self.host_groups.get(d) {
                let msg = format!("host group name `{}` is used twice", g.name);
                problems.push(("host_groups.name".to_owned(), msg));
            }
        }
        problems
    }

    /// The problems of every setting but the rules and host groups, as (dotted key,
    /// message).
    // One flat list of checks, section by section: splitting it would only scatter them.
    #[allow(clippy::too_many_lines)]
    fn validate_settings(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut bad = |key: &str, msg: String| problems.push((key.to_owned(), msg));

        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            bad(
                "log.level",
                format!(
                    "`{}` is not a valid level or filter directive",
                    self.log.level
                ),
            );
        }
        let c = &self.capture;
        if c.interfaces.len() > limits::MAX_INTERFACES {
            bad(
                "capture.interfaces",
                format!("at most {} interfaces", limits::MAX_INTERFACES),
            );
        }
        if c.interfaces.iter().any(|i| i.is_empty() || i.len() > 15) {
            bad(
                "capture.interfaces",
                "interface names are 1 to 15 characters".to_owned(),
            );
        }
        if !(1..=limits::MAX_WORKERS_PER_INTERFACE).contains(&c.workers_per_interface) {
            bad(
                "capture.workers_per_interface",
                format!(
                    "must be 1 to {}, got {}",
                    limits::MAX_WORKERS_PER_INTERFACE,
                    c.workers_per_interface
                ),
            );
        }
        if !(64..=262_144).contains(&c.snap_length_bytes) {
            bad(
                "capture.snap_length_bytes",
                format!("must be 64 to 262144, got {}", c.snap_length_bytes),
            );
        }
        let min_block = c.snap_length_bytes.saturating_add(4096);
        if !c.ring_block_bytes.is_power_of_two()
            || !(min_block..=limits::MAX_RING_BLOCK_BYTES).contains(&c.ring_block_bytes)
        {
            bad(
                "capture.ring_block_bytes",
                format!(
                    "must be a power of two from snap_length_bytes + 4096 ({min_block}) to {}, got {}",
                    limits::MAX_RING_BLOCK_BYTES,
                    c.ring_block_bytes
                ),
            );
        }
        if !(2..=limits::MAX_RING_BLOCKS).contains(&c.ring_blocks) {
            bad(
                "capture.ring_blocks",
                format!(
                    "must be 2 to {}, got {}",
                    limits::MAX_RING_BLOCKS,
                    c.ring_blocks
                ),
            );
        }
        let timeout = c.ring_block_timeout.0;
        if timeout < Duration::from_millis(1) || timeout > Duration::from_secs(1) {
            bad(
                "capture.ring_block_timeout",
                "must be between 1ms and 1s".to_owned(),
            );
        }
        if c.read_timeout.0.is_zero() || c.read_timeout.0.as_secs() > 5 {
            bad(
                "capture.read_timeout",
                "must be between 1ms and 5s".to_owned(),
            );
        }
        if !(limits::MIN_FLOWS..=limits::MAX_FLOWS).contains(&self.flows.max_flows) {
            bad(
                "flows.max_flows",
                format!(
                    "must be {} to {}, got {}",
                    limits::MIN_FLOWS,
                    limits::MAX_FLOWS,
                    self.flows.max_flows
                ),
            );
        }
        let t = &self.flows.timeouts;
        for (name, d) in [
            ("tcp_half_open", t.tcp_half_open),
            ("tcp_established", t.tcp_established),
            ("tcp_closing", t.tcp_closing),
            ("tcp_closed", t.tcp_closed),
            ("udp", t.udp),
            ("icmp", t.icmp),
            ("other", t.other),
            ("active", t.active),
        ] {
            if d.0.is_zero() {
                bad(
                    &format!("flows.timeouts.{name}"),
                    "must be greater than zero".to_owned(),
                );
            }
        }
        self.validate_networks(&mut bad);
        let m = &self.metrics;
        if !(1..=limits::MAX_TOP_TALKERS).contains(&m.top_talkers) {
            bad(
                "metrics.top_talkers",
                format!("must be 1 to {}", limits::MAX_TOP_TALKERS),
            );
        }
        if m.top_talkers_window.0.as_secs() < 1 {
            bad(
                "metrics.top_talkers_window",
                "must be at least 1s".to_owned(),
            );
        }
        m.validate_limits(&mut bad);
        self.alerting.validate(&mut bad);
        self.self_alerts.validate(&mut bad);
        self.protection.validate(&mut bad);
        problems
    }

    fn validate_networks(&self, bad: &mut impl FnMut(&str, String)) {
        if self.networks.len() > limits::MAX_NETWORKS {
            bad(
                "networks",
                format!("at most {} protected networks", limits::MAX_NETWORKS),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for n in &self.networks {
            if !is_label_safe(&n.name) {
                bad(
                    "networks.name",
                    format!("network name `{}` must be 1-64 of [a-z0-9_.:/-]", n.name),
                );
            }
            if !seen.insert(n.name.as_str()) {
                bad(
                    "networks.name",
                    format!("network name `{}` is used twice", n.name),
                );
            }
            if n.cidrs.is_empty() {
                bad(
                    "networks.cidrs",
                    format!("network `{}` lists no CIDRs", n.name),
                );
            }
        }
    }
}

impl MetricsConfig {
    /// Checks the endpoint's timeouts and connection cap.
    fn validate_limits(&self, bad: &mut impl FnMut(&str, String)) {
        let within = |d: HumanDuration, low: Duration, high: Duration| (low..=high).contains(&d.0);
        if !within(
            self.header_read_timeout,
            Duration::from_millis(100),
            Duration::from_secs(300),
        ) {
            bad(
                "metrics.header_read_timeout",
                "must be between 100ms and 5m".to_owned(),
            );
        }
        if !within(
            self.idle_timeout,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        ) {
            bad(
                "metrics.idle_timeout",
                "must be between 1s and 1h".to_owned(),
            );
        }
        if !(1..=limits::MAX_HTTP_CONNECTIONS).contains(&self.max_connections) {
            bad(
                "metrics.max_connections",
                format!(
                    "must be 1 to {}, got {}",
                    limits::MAX_HTTP_CONNECTIONS,
                    self.max_connections
                ),
            );
        }
    }
}

/// Whether `s` is a short, bounded-alphabet label value.
fn is_label_safe(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'_' | b'-' | b'.' | b'/' | b':')
        })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn errors_of(src: &str) -> Vec<String> {
        match parse(src, Path::new("test.toml")) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_bad_capture_filter_names_its_line_key_and_reason() {
        let text = "[capture]\nfilter = \"\"\"\n2\n6 0 0 0\n\"\"\"\n";
        let err = parse(text, Path::new("f.toml")).unwrap_err().to_string();
        assert!(
            err.contains("f.toml:2:10: key `capture.filter`: the first line announces 2"),
            "{err}"
        );
    }

    #[test]
    fn shipped_config_equals_the_defaults() {
        let shipped = parse(DEFAULT_CONFIG_TOML, Path::new(BUILT_IN_PATH)).unwrap();
        let expected = Config {
            networks: shipped.networks.clone(),
            ..Config::default()
        };
        assert_eq!(
            shipped, expected,
            "config/netwarden.toml must document the defaults"
        );
        assert!(!shipped.networks.is_empty());
    }

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(parse("", Path::new("x")).unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_are_refused_with_line_and_key() {
        let errs = errors_of("[flows]\nmax_flows = 5000\nmax_flowz = 3\n");
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("test.toml:3:1: key `flows.max_flowz`: unknown field"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn bad_values_name_their_line() {
        let errs = errors_of("[flows.timeouts]\nudp = \"soon\"\n");
        assert!(
            errs[0].starts_with("test.toml:2:7: key `flows.timeouts.udp`: invalid duration"),
            "{}",
            errs[0]
        );
        let errs = errors_of("[[networks]]\nname = \"lan\"\ncidrs = [\"10.0.0.0/40\"]\n");
        assert!(
            errs[0].contains(":3:") && errs[0].contains("invalid CIDR"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn validation_collects_every_problem() {
        let errs = errors_of(
            "[capture]\nworkers_per_interface = 0\n[flows]\nmax_flows = 10\n[metrics]\ntop_talkers = 0\n",
        );
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].starts_with("test.toml:2:1: key `capture.workers_per_interface`"),
            "{}",
            errs[0]
        );
        assert!(
            errs[1].starts_with("test.toml:4:1: key `flows.max_flows`"),
            "{}",
            errs[1]
        );
        assert!(
            errs[2].starts_with("test.toml:6:1: key `metrics.top_talkers`"),
            "{}",
            errs[2]
        );
    }

    #[test]
    fn endpoint_limits_are_checked_with_their_lines() {
        let errs = errors_of(
            "[metrics]\nheader_read_timeout = \"1ms\"\nidle_timeout = \"2h\"\nmax_connections = 0\n",
        );
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].starts_with("test.toml:2:1: key `metrics.header_read_timeout`"),
            "{}",
            errs[0]
        );
        assert!(
            errs[1].starts_with("test.toml:3:1: key `metrics.idle_timeout`"),
            "{}",
            errs[1]
        );
        assert!(
            errs[2].starts_with("test.toml:4:1: key `metrics.max_connections`"),
            "{}",
            errs[2]
        );
    }

    #[test]
    fn network_names_must_be_unique_and_label_safe() {
        let src = "[[networks]]\nname = \"LAN\"\ncidrs = [\"10.0.0.0/8\"]\n[[networks]]\nname = \"LAN\"\ncidrs = []\n";
        let errs = errors_of(src);
        assert_eq!(errs.len(), 4, "{errs:?}");
    }
}
