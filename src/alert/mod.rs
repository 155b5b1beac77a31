//! Alerts: what detection reports and what the sinks deliver.
//!
//! Owns the [`Alert`] record (one state transition of one alert: firing or resolved), its
//! [`Severity`] scale and [`AlertState`]. Detection (`crate::detect`) produces alerts from
//! rules and packet-clock windows; sinks deliver them off the hot path.
//!
//! Does not own: deciding when an alert fires (that is `detect`). Delivery is [`sinks`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub mod sinks;

/// How urgently a responder must act.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; no action expected.
    Info,
    /// Look at it during working hours.
    Warning,
    /// Page on-call.
    Critical,
    /// Page on-call and escalate: service or network at risk now.
    Emergency,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Info,
        Severity::Warning,
        Severity::Critical,
        Severity::Emergency,
    ];

    /// The `severity` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
            Severity::Emergency => "emergency",
        }
    }
}

/// The transition an [`Alert`] record reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition held for the rule's `for` duration.
    Firing,
    /// The condition stayed clear for the rule's resolve delay.
    Resolved,
}

/// One thing that contributed to an alert: a source of a flood, a port probed by a scan…
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Contributor {
    /// What `value` is: `source`, `destination`, `port`, `host`, `domain`, `reflector`.
    pub kind: String,
    /// The address, port or name.
    pub value: String,
    /// Its share: packets, probes or queries, as the rule counts them.
    pub count: u64,
}

/// One alert transition, as every sink receives it.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct Alert {
    /// The rule's name (unique in the config).
    pub rule: String,
    /// The rule's kind (`volume`, `syn_flood`, `port_scan`, `host_sweep`,
    /// `dns_amplification`, `dns_tunnel`, `blocklist`, `baseline`), or `self` for
    /// netwarden's alerts about itself (`crate::health`).
    pub kind: String,
    /// How urgent.
    pub severity: Severity,
    /// Firing or resolved.
    pub state: AlertState,
    /// When this transition happened, packet clock, seconds since the epoch.
    pub time: f64,
    /// When the alert started firing (its first crossing), seconds since the epoch.
    pub started: f64,
    /// When the condition was last seen true, seconds since the epoch.
    pub last_seen: f64,
    /// The observed value that crossed the threshold (peak while firing).
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// Source address, for alerts keyed by the attacker (scans, sweeps, tunnels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<IpAddr>,
    /// Destination address, for alerts keyed by the victim (floods, amplification).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<IpAddr>,
    /// Protected network or host group the alert concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Protocol the rule counts (`tcp`, `udp`, `icmp`…), where it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Port, where the alert concerns one (a host sweep's port).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The top contributors, heaviest first (bounded).
    pub contributors: Vec<Contributor>,
    /// Extra labels from the rule.
    pub labels: BTreeMap<String, String>,
    /// Rendered annotations (summary, description, `runbook_url`…).
    pub annotations: BTreeMap<String, String>,
}

/// Where a pipeline hands its alert transitions. Implementations never block: the daemon's
/// sends to the bounded delivery queue (dropping and counting when full), replay's collects.
pub trait AlertOutput: Send {
    /// Takes one transition.
    fn emit(&mut self, alert: Alert);
}

impl AlertOutput for Vec<Alert> {
    fn emit(&mut self, alert: Alert) {
        self.push(alert);
    }
}
