//! The parameters of each rule kind: one struct per kind, one enum over them.
//!
//! Owns [`RuleParams`] (tagged by `kind`, so a `[[rules]]` table reads `kind = "volume"`
//! next to the kind's own keys), the struct of each kind with its defaults (a
//! `#[serde(default = …)]` on the field, nowhere else) and its range checks
//! ([`RuleParams::check`]), and the small enums the traffic kinds share
//! ([`VolumeMetric`], [`VolumeProtocol`], [`VolumeDirection`], [`VolumeKey`]).
//!
//! Every struct is `deny_unknown_fields`: a key of another kind, or a typo, is a serde
//! error naming the keys the kind takes. `threshold` is a parameter of each kind, because
//! its unit and whether it is required depend on the kind.
//!
//! Does not own: the fields every rule has (`super::RuleCommon`) or reading a rule table
//! (`super::read`, which deserialises the struct of the table's `kind` directly, see
//! [`RuleParams::deserialize_kind`]).

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

use crate::config::{Cidr, HumanDuration};
use crate::vocabulary::RuleKind;

/// The parameters of one rule, by kind.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleParams {
    /// Packets, bits or new flows per second to one destination host or network.
    Volume(VolumeParams),
    /// SYNs per second to a destination with few completed handshakes.
    SynFlood(SynFloodParams),
    /// One source probing many ports (or IP protocols) of one host, mostly unanswered.
    PortScan(ScanParams),
    /// One source probing many hosts, mostly unanswered.
    HostSweep(ScanParams),
    /// Unsolicited large DNS responses per second to one host.
    DnsAmplification(DnsAmplificationParams),
    /// Queries with long, high-entropy labels from one source under one domain.
    DnsTunnel(DnsTunnelParams),
    /// A rate per destination above its learned baseline.
    Baseline(BaselineParams),
    /// Traffic to or from an address or CIDR listed in files or inline.
    Blocklist(BlocklistParams),
    /// Bytes one protected source sends out, above its data grade's floor and its
    /// learned usual volume.
    Exfiltration(ExfiltrationParams),
    /// Responses of UDP reflector services far larger than their requests.
    Reflection(ReflectionParams),
}

impl RuleParams {
    /// Deserialises the parameters of a rule of `kind` (its table without `kind`) straight
    /// into that kind's struct. The derived, `kind`-tagged `Deserialize` buffers the whole
    /// table before it reads the tag, which loses the TOML parser's spans; this keeps them,
    /// so an error points at its key.
    ///
    /// # Errors
    /// The struct's: an unknown key, a wrong type, a missing `threshold`.
    pub fn deserialize_kind<'de, D: Deserializer<'de>>(
        kind: RuleKind,
        d: D,
    ) -> Result<RuleParams, D::Error> {
        Ok(match kind {
            RuleKind::Volume => RuleParams::Volume(VolumeParams::deserialize(d)?),
            RuleKind::SynFlood => RuleParams::SynFlood(SynFloodParams::deserialize(d)?),
            RuleKind::PortScan => RuleParams::PortScan(ScanParams::deserialize(d)?),
            RuleKind::HostSweep => RuleParams::HostSweep(ScanParams::deserialize(d)?),
            RuleKind::DnsAmplification => {
                RuleParams::DnsAmplification(DnsAmplificationParams::deserialize(d)?)
            }
            RuleKind::DnsTunnel => RuleParams::DnsTunnel(DnsTunnelParams::deserialize(d)?),
            RuleKind::Baseline => RuleParams::Baseline(BaselineParams::deserialize(d)?),
            RuleKind::Blocklist => RuleParams::Blocklist(BlocklistParams::deserialize(d)?),
            RuleKind::Exfiltration => RuleParams::Exfiltration(ExfiltrationParams::deserialize(d)?),
            RuleKind::Reflection => RuleParams::Reflection(ReflectionParams::deserialize(d)?),
        })
    }

    /// The kind (the `kind` key).
    pub fn kind(&self) -> RuleKind {
        match self {
            RuleParams::Volume(_) => RuleKind::Volume,
            RuleParams::SynFlood(_) => RuleKind::SynFlood,
            RuleParams::PortScan(_) => RuleKind::PortScan,
            RuleParams::HostSweep(_) => RuleKind::HostSweep,
            RuleParams::DnsAmplification(_) => RuleKind::DnsAmplification,
            RuleParams::DnsTunnel(_) => RuleKind::DnsTunnel,
            RuleParams::Baseline(_) => RuleKind::Baseline,
            RuleParams::Blocklist(_) => RuleKind::Blocklist,
            RuleParams::Exfiltration(_) => RuleKind::Exfiltration,
            RuleParams::Reflection(_) => RuleKind::Reflection,
        }
    }

    /// The value at or above which the condition holds, in the kind's unit.
    pub fn threshold(&self) -> f64 {
        match self {
            RuleParams::Volume(p) => p.threshold,
            RuleParams::SynFlood(p) => p.threshold,
            RuleParams::PortScan(p) | RuleParams::HostSweep(p) => p.threshold,
            RuleParams::DnsAmplification(p) => p.threshold,
            RuleParams::DnsTunnel(p) => p.threshold,
            RuleParams::Baseline(p) => p.threshold,
            RuleParams::Blocklist(p) => p.threshold,
            RuleParams::Exfiltration(p) => p.threshold,
            RuleParams::Reflection(p) => p.threshold,
        }
    }

    /// Checks the values serde cannot: ranges and combinations. Each problem goes to `bad`
    /// as (key, message).
    pub fn check(&self, bad: &mut dyn FnMut(&'static str, String)) {
        let t = self.threshold();
        if !(t.is_finite() && t > 0.0) {
            bad(
                "threshold",
                "threshold must be a positive number".to_owned(),
            );
        }
        let ratio = |key: &'static str, v: f64, bad: &mut dyn FnMut(&'static str, String)| {
            if !(0.0..=1.0).contains(&v) {
                bad(key, format!("{key} must be between 0 and 1"));
            }
        };
        match self {
            RuleParams::SynFlood(p) => ratio("max_completion_ratio", p.max_completion_ratio, bad),
            RuleParams::PortScan(p) | RuleParams::HostSweep(p) => {
                ratio("max_answered_ratio", p.max_answered_ratio, bad);
            }
            RuleParams::Baseline(p) => {
                if p.alpha.is_nan() || p.alpha <= 0.0 || p.alpha > 1.0 {
                    bad("alpha", "alpha must be in (0, 1]".to_owned());
                }
                if p.k.is_nan() || p.k <= 0.0 {
                    bad("k", "k must be positive".to_owned());
                }
            }
            RuleParams::Blocklist(p) if p.files.is_empty() && p.entries.is_empty() => {
                bad("files", "a blocklist needs `files` or `entries`".to_owned());
            }
            RuleParams::Volume(p) => {
                if p.prefix_v4 > 32 {
                    bad("prefix_v4", "prefix_v4 must be at most 32".to_owned());
                }
                if p.prefix_v6 > 128 {
                    bad("prefix_v6", "prefix_v6 must be at most 128".to_owned());
                }
            }
            RuleParams::Exfiltration(p) => p.check(bad),
            RuleParams::Reflection(p) => p.check(bad),
            RuleParams::Blocklist(_)
            | RuleParams::DnsAmplification(_)
            | RuleParams::DnsTunnel(_) => {}
        }
    }
}

/// `volume`: the rate of one kind of traffic to one host or network.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeParams {
    /// Per second (packets, bits or new flows, as `metric` says). Required.
    pub threshold: f64,
    /// What is counted.
    #[serde(default)]
    pub metric: VolumeMetric,
    /// Which packets are counted.
    #[serde(default)]
    pub protocol: VolumeProtocol,
    /// Which direction of traffic is counted.
    #[serde(default)]
    pub direction: VolumeDirection,
    /// What alerts are keyed by: a host, a prefix or a network.
    #[serde(default)]
    pub key: VolumeKey,
    /// Which packets of the admitted ones are counted: all, or only those that belong to
    /// no established, answered flow (a flood rather than a busy conversation).
    #[serde(default)]
    pub traffic: VolumeTraffic,
    /// Fewest distinct destination hosts (estimated) a key's traffic must reach: above
    /// 1, a prefix or network key alerts only for traffic spread over many hosts (carpet
    /// bombing), which a host key would miss.
    #[serde(default = "default_min_hosts")]
    pub min_hosts: u32,
    /// Length of an IPv4 prefix for `key = "prefix"`.
    #[serde(default = "default_prefix_v4")]
    pub prefix_v4: u8,
    /// Length of an IPv6 prefix for `key = "prefix"`.
    #[serde(default = "default_prefix_v6")]
    pub prefix_v6: u8,
}

fn default_min_hosts() -> u32 {
    1
}
fn default_prefix_v4() -> u8 {
    24
}
fn default_prefix_v6() -> u8 {
    64
}

/// `baseline`: a rate above what its key usually sees.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineParams {
    /// Per second: the absolute floor under the learned bound. Required.
    pub threshold: f64,
    /// What is counted.
    #[serde(default)]
    pub metric: VolumeMetric,
    /// Which packets are counted.
    #[serde(default)]
    pub protocol: VolumeProtocol,
    /// Which direction of traffic is counted.
    #[serde(default)]
    pub direction: VolumeDirection,
    /// What alerts are keyed by: a host or a network.
    #[serde(default)]
    pub key: VolumeKey,
    /// Standard deviations above the learned level.
    #[serde(default = "default_k")]
    pub k: f64,
    /// EWMA weight of each new window, in (0, 1].
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Windows a key must be seen before it can alert (its warm-up).
    #[serde(default = "default_min_windows")]
    pub min_windows: u32,
}

fn default_k() -> f64 {
    3.0
}
fn default_alpha() -> f64 {
    0.1
}
fn default_min_windows() -> u32 {
    10
}

/// `syn_flood`: SYNs to a destination that completes few handshakes.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SynFloodParams {
    /// SYNs per second. Required.
    pub threshold: f64,
    /// Most completed handshakes per SYN still called a flood.
    #[serde(default = "default_max_completion_ratio")]
    pub max_completion_ratio: f64,
    /// Most distinct destination ports still called a flood; SYNs spread over more ports
    /// are a port scan, left to `port_scan` (and a flood to random ports is still caught
    /// by a `volume` rule).
    #[serde(default = "default_max_ports")]
    pub max_ports: u64,
}

fn default_max_completion_ratio() -> f64 {
    0.2
}
fn default_max_ports() -> u64 {
    64
}

/// `port_scan` and `host_sweep`: many probes, few answers.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScanParams {
    /// Distinct ports (`port_scan`) or hosts (`host_sweep`) probed in the window.
    /// Required.
    pub threshold: f64,
    /// Most answered probes per probe still called a scan.
    #[serde(default = "default_max_answered_ratio")]
    pub max_answered_ratio: f64,
    /// Largest mean wire size, in bytes, of the probes still called a scan. Scanners send
    /// small probes (nmap and masscan about 60 bytes); a flood of large packets to random
    /// ports or hosts is a flood, left to the `volume` rules.
    #[serde(default = "default_max_probe_bytes")]
    pub max_probe_bytes: u32,
}

fn default_max_answered_ratio() -> f64 {
    0.5
}
fn default_max_probe_bytes() -> u32 {
    256
}

/// `dns_amplification`: large DNS responses nobody asked for.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsAmplificationParams {
    /// Responses per second. Required.
    pub threshold: f64,
    /// Fewest distinct reflectors.
    #[serde(default = "default_min_reflectors")]
    pub min_reflectors: u64,
    /// Smallest DNS message counted, bytes.
    #[serde(default = "default_min_response_bytes")]
    pub min_response_bytes: u32,
}

fn default_min_reflectors() -> u64 {
    2
}
fn default_min_response_bytes() -> u32 {
    512
}

/// Most windows an `exfiltration` rule sums.
pub const MAX_EXFILTRATION_WINDOWS: u32 = 12;

/// `exfiltration`: bytes leaving the protected networks from one protected source.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExfiltrationParams {
    /// Bytes of TCP and UDP payload a source of data grade `general` may send to outside
    /// addresses over the span (`windows` windows) before it alerts: its floor. Required.
    pub threshold: f64,
    /// The floor of a source of data grade `important` (default: `threshold`).
    #[serde(default)]
    pub important_threshold: Option<f64>,
    /// The floor of a source of data grade `core` (default: `threshold`).
    #[serde(default)]
    pub core_threshold: Option<f64>,
    /// Windows summed into the value: the bytes of the last `windows` windows (the one
    /// running included), a span sliding by one window. 1 to 12.
    #[serde(default = "default_exfiltration_windows")]
    pub windows: u32,
    /// Times its usual span volume (the largest it sent in a span, decaying) a source
    /// must send to alert, when that is above its floor.
    #[serde(default = "default_headroom")]
    pub headroom: f64,
    /// Half-life of the learned usual volume.
    #[serde(default = "default_memory")]
    pub memory: HumanDuration,
    /// The bound is divided by this for the bytes to one destination the source has not
    /// sent to before (at least 1; 1 turns the factor off).
    #[serde(default = "default_new_destination_factor")]
    pub new_destination_factor: f64,
}

fn default_exfiltration_windows() -> u32 {
    6
}
fn default_headroom() -> f64 {
    2.0
}
fn default_memory() -> HumanDuration {
    HumanDuration::secs(7 * 24 * 3600)
}
fn default_new_destination_factor() -> f64 {
    2.0
}

impl ExfiltrationParams {
    /// The floor of a source of data grade `grade`.
    pub fn floor(&self, grade: crate::vocabulary::DataGrade) -> f64 {
        use crate::vocabulary::DataGrade;
        match grade {
            DataGrade::General => self.threshold,
            DataGrade::Important => self.important_threshold.unwrap_or(self.threshold),
            DataGrade::Core => self.core_threshold.unwrap_or(self.threshold),
        }
    }

    fn check(&self, bad: &mut dyn FnMut(&'static str, String)) {
        for (key, v) in [
            ("important_threshold", self.important_threshold),
            ("core_threshold", self.core_threshold),
        ] {
            if v.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
                bad(key, format!("{key} must be a positive number"));
            }
        }
        if !(1..=MAX_EXFILTRATION_WINDOWS).contains(&self.windows) {
            bad(
                "windows",
                format!("windows must be 1 to {MAX_EXFILTRATION_WINDOWS}"),
            );
        }
        if !(self.headroom.is_finite() && self.headroom >= 1.0) {
            bad("headroom", "headroom must be at least 1".to_owned());
        }
        if self.memory.0.is_zero() {
            bad("memory", "memory must be longer than 0s".to_owned());
        }
        let f = self.new_destination_factor;
        if !(f.is_finite() && f >= 1.0) {
            bad(
                "new_destination_factor",
                "new_destination_factor must be at least 1".to_owned(),
            );
        }
    }
}

/// What a `reflection` rule keys its alerts by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReflectionKey {
    /// The victim the responses go to (`dst`), with the service (`port`).
    #[default]
    Victim,
    /// The server sending the responses (`src`, an abused reflector), with the service.
    Reflector,
}

/// `reflection`: responses of reflector services far larger than their requests.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReflectionParams {
    /// Response bits per second on one (key, service), wire lengths. Required.
    pub threshold: f64,
    /// Whose alerts: the victim's or the abused server's.
    #[serde(default)]
    pub key: ReflectionKey,
    /// Least amplification: response bytes over the bytes of the requests of the same
    /// (key, service) (the victim's requests, spoofed or not, or the server's requests
    /// received). Responses with no request seen at all are unsolicited: amplified
    /// without bound.
    #[serde(default = "default_min_factor")]
    pub min_factor: f64,
    /// Fewest distinct peers: reflectors answering a victim, or victims an abused server
    /// answers.
    #[serde(default = "default_min_peers")]
    pub min_peers: u64,
    /// UDP ports of the reflector services (responses come from them, requests go to
    /// them).
    #[serde(default = "default_reflector_services")]
    pub services: Vec<u16>,
}

fn default_min_factor() -> f64 {
    5.0
}
fn default_min_peers() -> u64 {
    1
}

/// UDP services abused as reflectors, with published amplification factors (US-CERT
/// TA14-017A, Akamai and Cloudflare reports): QOTD 17, chargen 19, DNS 53, TFTP 69,
/// portmap 111, NTP 123, NBNS 137, SNMP 161, CLDAP 389, ISAKMP 500 and 4500, RIP v1 520,
/// MS-SQL resolution 1434, SSDP 1900, ARMS 3283, WS-Discovery 3702, STUN 3478,
/// mDNS 5353, CoAP 5683, Ubiquiti discovery 10001, memcached 11211, Dahua DVR discovery
/// 37810, BACNET 47808.
fn default_reflector_services() -> Vec<u16> {
    vec![
        17, 19, 53, 69, 111, 123, 137, 161, 389, 500, 520, 1434, 1900, 3283, 3478, 3702, 4500,
        5353, 5683, 10001, 11211, 37810, 47808,
    ]
}

impl ReflectionParams {
    fn check(&self, bad: &mut dyn FnMut(&'static str, String)) {
        if !(self.min_factor.is_finite() && self.min_factor >= 1.0) {
            bad("min_factor", "min_factor must be at least 1".to_owned());
        }
        if self.services.is_empty() || self.services.contains(&0) {
            bad(
                "services",
                "services must list at least one port, none of them 0".to_owned(),
            );
        }
    }
}

/// `dns_tunnel`: queries carrying encoded data under one domain.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsTunnelParams {
    /// Suspicious queries in the window. Required.
    pub threshold: f64,
    /// Shortest label below the registered domain that makes a query suspicious.
    #[serde(default = "default_min_label_len")]
    pub min_label_len: usize,
    /// Lowest character entropy (bits per character) of the labels below the registered
    /// domain that makes a query suspicious.
    #[serde(default = "default_min_entropy")]
    pub min_entropy: f64,
}

fn default_min_label_len() -> usize {
    20
}
fn default_min_entropy() -> f64 {
    3.0
}

/// `blocklist`: traffic with a listed address.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BlocklistParams {
    /// Packets in the window (default 1: any packet).
    #[serde(default = "default_blocklist_threshold")]
    pub threshold: f64,
    /// Files of addresses and CIDRs, one per line, `#` comments. Relative paths are
    /// relative to the main config file's folder; loading makes them absolute.
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// Addresses and CIDRs listed inline.
    #[serde(default)]
    pub entries: Vec<Cidr>,
    /// The age beyond which a list file counts as stale (read by the self-monitoring,
    /// not by the rule); none: never stale.
    #[serde(default)]
    pub max_age: Option<HumanDuration>,
}

fn default_blocklist_threshold() -> f64 {
    1.0
}

/// What a `volume` or `baseline` rule counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeMetric {
    /// Packets per second.
    #[default]
    Packets,
    /// Bits per second (wire length).
    Bits,
    /// New flows per second.
    Flows,
}

/// Which packets a `volume` or `baseline` rule counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeProtocol {
    /// Every IP packet.
    #[default]
    Any,
    /// TCP.
    Tcp,
    /// TCP with SYN and without ACK.
    TcpSyn,
    /// UDP.
    Udp,
    /// ICMP and `ICMPv6`.
    Icmp,
    /// IP fragments.
    Fragment,
}

impl VolumeProtocol {
    /// The `protocol` field of alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeProtocol::Any => "any",
            VolumeProtocol::Tcp => "tcp",
            VolumeProtocol::TcpSyn => "tcp_syn",
            VolumeProtocol::Udp => "udp",
            VolumeProtocol::Icmp => "icmp",
            VolumeProtocol::Fragment => "fragment",
        }
    }
}

/// Which direction of traffic a `volume` or `baseline` rule counts, relative to the
/// protected networks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeDirection {
    /// Every direction.
    #[default]
    Any,
    /// From outside into a protected network.
    Inbound,
    /// From a protected network to outside.
    Outbound,
    /// Between protected addresses.
    Internal,
}

/// What a `volume` or `baseline` rule keys its alerts by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeKey {
    /// One alert per destination host (`dst`).
    #[default]
    Host,
    /// One alert per protected network (`network`): the destination's network for
    /// inbound and internal traffic, the source's for outbound; with a host-group scope,
    /// the group as a whole.
    Network,
    /// One alert per destination prefix (`dst` is its first address; length
    /// `prefix_v4`/`prefix_v6` for `volume`, /24 and /64 for `baseline`), for traffic
    /// spread over the hosts of a subnet. Under scope `protected` or a host group only
    /// destinations inside it are counted.
    Prefix,
}

/// Which of the packets it admits a `volume` rule counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeTraffic {
    /// Every packet.
    #[default]
    All,
    /// Packets of no established, answered flow: the flow has seen no packet from the
    /// other side yet (one-way traffic, spoofed sources, a scan), or a TCP flow is not
    /// in or leaving `established` (handshakes, packets after a reset), or an ICMP
    /// packet is not an answer (echo requests count however many are answered). With
    /// `metric = "packets"` a completed TCP handshake, or the first answer of a UDP
    /// flow, takes its unanswered packets back. A heavy conversation, however fast, or a
    /// busy server's healthy new connections count nothing. Needs both directions of
    /// traffic on the link: with asymmetric routing every packet is unanswered.
    Unanswered,
}
