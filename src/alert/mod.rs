//! Alerts: what detection reports and what the sinks deliver.
//!
//! Owns the [`Alert`] record (one state transition of one alert: firing or resolved) and
//! its [`Contributor`]s. Its vocabulary ([`Severity`], [`AlertState`], [`AlertKind`]) lives
//! in the leaf `crate::vocabulary`, shared with the config, and is re-exported here.
//! Detection (`crate::detect`) produces alerts from rules and packet-clock windows; sinks
//! deliver them off the hot path.
//!
//! The pending → firing → resolved state machine that detection rules and self-alerts
//! share is [`lifecycle`]; delivery is [`sinks`], which first adds each alert's
//! [`links`] (runbook and dashboard).
//!
//! Does not own: judging when a condition holds (that is `detect` and `health`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

pub mod lifecycle;
pub mod links;
pub mod sinks;

pub use crate::vocabulary::{AlertKind, AlertState, Severity};

/// What a [`Contributor`] of an alert is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContributorKind {
    /// A source address (of a flood).
    Source,
    /// A service, `tcp/80` (of a flood, a scan, a blocklisted address).
    Port,
    /// A host probed (by a sweep).
    Host,
    /// An address a blocklisted address talked with.
    Peer,
    /// The list a blocklisted address is in.
    List,
    /// A server reflecting responses (amplification).
    Reflector,
    /// A registered domain (of a tunnel).
    Domain,
    /// An outside address a protected host sent data to (exfiltration).
    Destination,
    /// An address an abused server reflected responses to (outbound amplification).
    Victim,
}

impl ContributorKind {
    /// The word written in alerts (`source`).
    pub fn as_str(self) -> &'static str {
        match self {
            ContributorKind::Source => "source",
            ContributorKind::Port => "port",
            ContributorKind::Host => "host",
            ContributorKind::Peer => "peer",
            ContributorKind::List => "list",
            ContributorKind::Reflector => "reflector",
            ContributorKind::Domain => "domain",
            ContributorKind::Destination => "destination",
            ContributorKind::Victim => "victim",
        }
    }
}

impl std::fmt::Display for ContributorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing that contributed to an alert: a source of a flood, a port probed by a scan…
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Contributor {
    /// What `value` is.
    pub kind: ContributorKind,
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
    pub kind: AlertKind,
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
    /// The registered domain a `dns_tunnel` alert is about (its key holds it with the
    /// source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
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

impl Alert {
    /// A firing `warning` transition of `rule` at time 0 with a value and threshold of 0,
    /// and no identity, contributors, labels or annotations: the base that a self-alert,
    /// a test or an example fills in with struct update syntax.
    pub fn new(rule: &str, kind: AlertKind) -> Alert {
        Alert {
            rule: rule.to_owned(),
            kind,
            severity: Severity::Warning,
            state: AlertState::Firing,
            time: 0.0,
            started: 0.0,
            last_seen: 0.0,
            value: 0.0,
            threshold: 0.0,
            src: None,
            dst: None,
            network: None,
            domain: None,
            protocol: None,
            port: None,
            contributors: Vec::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        }
    }
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

/// A list shared with whoever reads it afterwards (replay collects its alerts so). The
/// lock is taken once per transition, never per packet.
impl AlertOutput for Arc<Mutex<Vec<Alert>>> {
    fn emit(&mut self, alert: Alert) {
        self.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(alert);
    }
}
