//! Detection: rules evaluated on the packet clock, turning traffic into alerts.
//!
//! Owns the runtime rule set ([`RuleSet`], built from the config, reading `blocklist`
//! files, and shared as an `Arc`, so a reload can swap it), the per-worker [`Detector`]
//! (one state per rule, kept by rule name across reloads), the per-packet [`PacketView`]
//! the pipeline hands it, and the alert keys. Each rule family lives in `rules/`; bounded
//! sketches in [`sketch`]; the blocklist's address ranges in [`addr_set`]; the pending →
//! firing → resolved state machine in [`lifecycle`].
//!
//! Does not own: decoding, flows (the pipeline passes their outcome in the view), or
//! delivering alerts (an [`AlertOutput`] given by the caller; sinks live in `crate::alert`).
//!
//! # How it runs
//! - [`Detector::observe`] runs per packet: synchronous, lock-free, allocation-free. Each
//!   rule adds the packet to fixed-size per-key accumulators ([`sketch::KeyTable`],
//!   `HyperLogLog` for distinct counts, space-saving for top contributors), so millions of
//!   spoofed sources cost a fixed, configured amount of memory.
//! - [`Detector::tick`] runs once per second of packet time: every rule computes its value
//!   per key over its window, the lifecycle turns crossings into transitions, and windows
//!   that are complete restart (a `baseline` rule first folds them into its learned level). Allocation happens here only (alert records).
//! - Time is only the packet clock, so a replay at any speed gives the same alerts.
//! - Warm-up: alerts of a rule are held for its `warmup` after the first packet, after
//!   a gap in the capture longer than [`CAPTURE_GAP`] (accumulators restart) and after a
//!   reload that added or changed the rule.
//!
//! # Hot reload
//! A new rule set reaches a worker's detector through the channel given to
//! [`Detector::with_updates`]; [`Detector::tick`] applies the newest one waiting
//! ([`Detector::reload`]), matching rules by name:
//! - same config: everything is kept (accumulators, pending and firing alerts, metric
//!   handles); the state takes the new rule, so a blocklist whose file changed sees the
//!   new addresses at once;
//! - same kind, other parameters: fresh accumulators, alerts kept (a firing alert goes
//!   on, and resolves as usual if the new condition no longer holds), held for `warmup`;
//! - new rule (or same name, other kind or shadow mode switched): fresh, held for
//!   `warmup`;
//! - removed rule (or the old rule of another kind or shadow mode): its firing alerts
//!   resolve now and its share of the firing gauge goes.
//!
//! # Limitation: several workers
//! With `workers_per_interface > 1` each worker sees a share of the traffic (PACKET_FANOUT
//! hashes flows, so both directions of a flow meet on one worker) and evaluates its rules
//! on that share alone. A flood spread over many flows is split across workers and each
//! sees only part of its rate, so thresholds act per worker. Merging worker summaries
//! centrally is left to a later issue.

pub mod addr_set;
pub mod lifecycle;
mod rules;
pub mod sketch;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::alert::{Alert, AlertKind, AlertOutput, AlertState, Contributor, Severity};
use crate::config::{
    Config, ConfigError, ConfigErrors, RuleConfig, RuleKind, RuleParams, RuleScope, VolumeKey,
    VolumeProtocol,
};
use crate::decode::{
    ArpRepr, Decoded, DnsRepr, IcmpRepr, IpRepr, TcpFlags, Transport, ip_protocol,
};
use crate::flow::FlowUpdate;
use crate::networks::{Direction, Placement};
use crate::telemetry::{DetectionMetricVecs, RuleMetrics};
use crate::timestamp::Timestamp;
use addr_set::AddrSet;
use lifecycle::Lifecycle;
use rules::RuleState;

/// A silence in the packet clock longer than this restarts windows and warm-up.
pub const CAPTURE_GAP: Duration = Duration::from_secs(60);

/// What a probe-like packet says about a (scanner, target) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The scanner opened something new toward the target.
    Attempt,
    /// The target answered (SYN-ACK, data, echo or ARP reply).
    Answered,
    /// The target refused (TCP RST, ICMP unreachable quoting the probe).
    Failed,
}

/// One packet seen as a connection attempt, answer or refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Who probes.
    pub scanner: IpAddr,
    /// Who is probed.
    pub target: IpAddr,
    /// `protocol << 16 | port`: the service probed (port 0 for protocols without ports).
    pub service: u32,
    /// What the packet says.
    pub outcome: Outcome,
}

/// Everything detection needs from one packet: small, `Copy`, built without allocation.
#[derive(Clone, Copy, Debug)]
pub struct PacketView<'a> {
    /// Packet time.
    pub ts: Timestamp,
    /// Source address (ARP: sender).
    pub src: IpAddr,
    /// Destination address (ARP: target).
    pub dst: IpAddr,
    /// Wire length.
    pub wire_len: u32,
    /// IP protocol number (0 for ARP).
    pub protocol: u8,
    /// Transport source port (0 when none).
    pub src_port: u16,
    /// Transport destination port (0 when none).
    pub dst_port: u16,
    /// TCP flags, for TCP.
    pub tcp_flags: Option<TcpFlags>,
    /// An IP fragment (first or later).
    pub is_fragment: bool,
    /// Direction relative to the protected networks.
    pub direction: Direction,
    /// Protected-network membership of each end.
    pub placement: Placement,
    /// What the flow table did with the packet (none for ARP and later fragments).
    pub flow: Option<FlowUpdate>,
    /// The packet as a probe, answer or refusal, if it is one.
    pub probe: Option<Probe>,
    /// DNS header and question.
    pub dns: Option<DnsRepr<'a>>,
}

impl<'a> PacketView<'a> {
    /// The view of an IP packet.
    // Inlined so the view is built where the pipeline observes it; as a call it was built
    // on the callee's stack and copied out, ~50 instructions per packet.
    #[inline]
    pub fn ip(
        d: &Decoded<'a>,
        ip: &IpRepr,
        placement: Placement,
        flow: Option<FlowUpdate>,
        ts: Timestamp,
        wire_len: u32,
    ) -> PacketView<'a> {
        let (src_port, dst_port, tcp_flags) = match d.transport {
            Transport::Tcp(t) => (t.src_port, t.dst_port, Some(t.flags)),
            Transport::Udp(u) => (u.src_port, u.dst_port, None),
            _ => (0, 0, None),
        };
        let mut view = PacketView {
            ts,
            src: ip.src,
            dst: ip.dst,
            wire_len,
            protocol: ip.protocol,
            src_port,
            dst_port,
            tcp_flags,
            is_fragment: ip.fragment.is_fragment,
            direction: placement.direction(),
            placement,
            flow,
            probe: None,
            dns: d.dns,
        };
        view.probe = match d.transport {
            Transport::Icmp(icmp) | Transport::Icmpv6(icmp) => icmp_probe(&view, &icmp),
            _ => flow_probe(&view),
        };
        view
    }

    /// The view of an ARP packet: requests are probes of their target, replies answers.
    pub fn arp(arp: &ArpRepr, ts: Timestamp, wire_len: u32) -> PacketView<'static> {
        let sender = IpAddr::from(arp.sender_ip);
        let target = IpAddr::from(arp.target_ip);
        let probe = match arp.operation {
            // A gratuitous ARP announces the sender; it probes nobody.
            1 if sender != target && !sender.is_unspecified() => Some(Probe {
                scanner: sender,
                target,
                service: 0,
                outcome: Outcome::Attempt,
            }),
            2 => Some(Probe {
                scanner: target,
                target: sender,
                service: 0,
                outcome: Outcome::Answered,
            }),
            _ => None,
        };
        PacketView {
            ts,
            src: sender,
            dst: target,
            wire_len,
            protocol: 0,
            src_port: 0,
            dst_port: 0,
            tcp_flags: None,
            is_fragment: false,
            direction: Direction::None,
            placement: Placement {
                src: None,
                dst: None,
            },
            flow: None,
            probe,
            dns: None,
        }
    }
}

/// ICMP: an echo request opening a flow is an attempt, its first reply an answer, and an
/// unreachable error quoting a probe refuses that probe.
fn icmp_probe(v: &PacketView<'_>, icmp: &IcmpRepr) -> Option<Probe> {
    let unreachable = match v.protocol {
        ip_protocol::ICMP => icmp.icmp_type == IcmpRepr::V4_DEST_UNREACHABLE,
        _ => icmp.icmp_type == IcmpRepr::V6_DEST_UNREACHABLE,
    };
    if unreachable {
        let q = icmp.quoted?;
        // Protocol and port unreachable (codes 2 and 3) come from the probed host itself.
        let from_target = matches!(icmp.code, 2 | 3) && v.protocol == ip_protocol::ICMP;
        let (scanner, target) = if v.dst == q.src {
            // The error goes back to the sender of the packet it quotes.
            (q.src, if from_target { v.src } else { q.dst })
        } else if from_target && v.src != q.dst {
            // Neither outer address is in the quote: the probe went through NAT both
            // ways, and the outer addresses are the ones seen here.
            (v.dst, v.src)
        } else {
            // An error addressed to someone other than the sender it quotes (backscatter
            // of a spoofed source, as amplification victims receive) says nothing about
            // who probed whom.
            return None;
        };
        return Some(Probe {
            scanner,
            target,
            service: u32::from(q.protocol) << 16 | u32::from(q.dst_port),
            outcome: Outcome::Failed,
        });
    }
    let request = matches!(
        icmp.icmp_type,
        IcmpRepr::V4_ECHO_REQUEST | IcmpRepr::V6_ECHO_REQUEST
    );
    let reply = matches!(
        icmp.icmp_type,
        IcmpRepr::V4_ECHO_REPLY | IcmpRepr::V6_ECHO_REPLY
    );
    let f = v.flow?;
    let service = u32::from(v.protocol) << 16;
    if request && f.created && f.is_initiator_side {
        Some(Probe {
            scanner: v.src,
            target: v.dst,
            service,
            outcome: Outcome::Attempt,
        })
    } else if reply && f.is_first_reply {
        Some(Probe {
            scanner: v.dst,
            target: v.src,
            service,
            outcome: Outcome::Answered,
        })
    } else {
        None
    }
}

/// TCP, UDP and other IP protocols: the first packet of a flow is an attempt (unless it
/// is itself a reply: SYN-ACK or RST backscatter), the first packet back an answer, or a
/// refusal if it is a RST.
fn flow_probe(v: &PacketView<'_>) -> Option<Probe> {
    let f = v.flow?;
    let flags = v.tcp_flags.unwrap_or_default();
    if f.created && f.is_initiator_side {
        if flags.is_syn_ack() || flags.has(TcpFlags::RST) {
            return None;
        }
        return Some(Probe {
            scanner: v.src,
            target: v.dst,
            service: u32::from(v.protocol) << 16 | u32::from(v.dst_port),
            outcome: Outcome::Attempt,
        });
    }
    if f.is_first_reply {
        let outcome = if flags.has(TcpFlags::RST) {
            Outcome::Failed
        } else {
            Outcome::Answered
        };
        return Some(Probe {
            scanner: v.dst,
            target: v.src,
            service: u32::from(v.protocol) << 16 | u32::from(v.src_port),
            outcome,
        });
    }
    None
}

/// What one alert is about: its key within its rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlertKey {
    /// The attacker, for rules keyed by source.
    pub src: Option<IpAddr>,
    /// The victim, or a scan's single target.
    pub dst: Option<IpAddr>,
    /// A rule-specific discriminator (a tunnel's domain hash, a network-keyed volume
    /// rule's network index + 1), 0 when unused.
    pub aux: u64,
}

/// A key whose condition holds in one evaluation.
pub struct Observation {
    /// The key.
    pub key: AlertKey,
    /// The measured value.
    pub value: f64,
    /// Top contributors, heaviest first.
    pub contributors: Vec<Contributor>,
    /// A port the alert concerns, if one dominates.
    pub port: Option<u16>,
}

/// Which traffic a rule looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Everything.
    All,
    /// Packets with at least one end in a protected network.
    Protected,
    /// Packets with at least one end in this host group (name, prefixes).
    Group(String, Vec<IpNet>),
}

impl Scope {
    #[inline]
    fn admits(&self, p: &PacketView<'_>) -> bool {
        match self {
            Scope::All => true,
            Scope::Protected => p.placement.src.is_some() || p.placement.dst.is_some(),
            Scope::Group(_, nets) => nets
                .iter()
                .any(|n| n.contains(&p.src) || n.contains(&p.dst)),
        }
    }

    fn network(&self) -> Option<String> {
        match self {
            Scope::Group(name, _) => Some(name.clone()),
            _ => None,
        }
    }
}

/// One rule, ready to run.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// Kind.
    pub kind: RuleKind,
    /// Traffic looked at.
    pub scope: Scope,
    /// Severity of its alerts.
    pub severity: Severity,
    /// The value at or above which the condition holds.
    pub threshold: f64,
    /// Measurement window.
    pub window: Duration,
    /// Pending time before firing.
    pub for_: Duration,
    /// Clear time before resolving.
    pub resolve_delay: Duration,
    /// Hold after start or a capture gap.
    pub warmup: Duration,
    /// Count, do not send.
    pub shadow: bool,
    /// Keys tracked per worker.
    pub max_keys: usize,
    /// Extra labels.
    pub labels: BTreeMap<String, String>,
    /// Annotation templates.
    pub annotations: BTreeMap<String, String>,
    /// The config it came from: its kind's parameters build the rule's state, and a
    /// reload compares it to tell an unchanged rule.
    config: RuleConfig,
    /// The `protocol` of its alerts: a `volume` rule's protocol, unless `any`.
    protocol: Option<&'static str>,
    /// `blocklist`: the addresses of its files and entries.
    blocklist: Option<Arc<AddrSet>>,
    /// Protected network names, by index, for a rule keyed by network (else empty).
    network_names: Vec<String>,
}

impl Rule {
    /// The runtime rule of `c`; a `blocklist` rule reads its files. Problems (an
    /// unreadable file, a scope naming no host group) go to `errors`, and then there is no
    /// rule.
    fn from_config(
        c: &RuleConfig,
        groups: &[(String, Vec<IpNet>)],
        networks: &[String],
        errors: &mut Vec<ConfigError>,
    ) -> Option<Rule> {
        let common = &c.common;
        let scope = match &common.scope {
            RuleScope::All => Scope::All,
            RuleScope::Protected => Scope::Protected,
            RuleScope::Group(name) => {
                let Some((name, nets)) = groups.iter().find(|(n, _)| n == name) else {
                    errors.push(ConfigError {
                        path: "<config>".into(),
                        line: None,
                        column: None,
                        key: Some("rules.scope".to_owned()),
                        message: format!(
                            "rule `{}`: scope `{name}` is not `all`, `protected` or a host group",
                            common.name
                        ),
                    });
                    return None;
                };
                Scope::Group(name.clone(), nets.clone())
            }
        };
        let (by_network, protocol) = match &c.params {
            RuleParams::Volume(p) => (
                p.key == VolumeKey::Network,
                (p.protocol != VolumeProtocol::Any).then(|| p.protocol.as_str()),
            ),
            RuleParams::Baseline(p) => (p.key == VolumeKey::Network, None),
            _ => (false, None),
        };
        let blocklist = match c.blocklist() {
            Some(b) => {
                let before = errors.len();
                let set = rules::load_blocklist(&common.name, b, errors);
                if errors.len() > before {
                    return None;
                }
                Some(Arc::new(set))
            }
            None => None,
        };
        Some(Rule {
            name: common.name.clone(),
            kind: c.kind(),
            scope,
            severity: common.severity,
            threshold: c.params.threshold(),
            window: common.window.0,
            for_: common.for_.0,
            resolve_delay: common.resolve_delay.0,
            warmup: common.warmup.0,
            shadow: common.shadow,
            max_keys: common.max_keys,
            labels: common.labels.clone(),
            annotations: common.annotations.clone(),
            config: c.clone(),
            protocol,
            blocklist,
            network_names: if by_network {
                networks.to_vec()
            } else {
                Vec::new()
            },
        })
    }

    /// The `network` of an alert: the rule's host group, or the protected network a
    /// network-keyed rule's key names.
    fn network(&self, key: &AlertKey) -> Option<String> {
        self.scope.network().or_else(|| {
            let index = usize::try_from(key.aux.checked_sub(1)?).ok()?;
            self.network_names.get(index).cloned()
        })
    }

    /// The alert record of a transition of `key`.
    #[allow(clippy::too_many_arguments)]
    fn alert(
        &self,
        key: &AlertKey,
        state: AlertState,
        now: Timestamp,
        since: Timestamp,
        last_seen: Timestamp,
        value: f64,
        contributors: Vec<Contributor>,
        port: Option<u16>,
    ) -> Alert {
        let mut alert = Alert {
            rule: self.name.clone(),
            kind: AlertKind::Rule(self.kind),
            severity: self.severity,
            state,
            time: now.as_secs_f64(),
            started: since.as_secs_f64(),
            last_seen: last_seen.as_secs_f64(),
            value,
            threshold: self.threshold,
            src: key.src,
            dst: key.dst,
            network: self.network(key),
            protocol: self.protocol.map(str::to_owned),
            port,
            contributors,
            labels: self.labels.clone(),
            annotations: BTreeMap::new(),
        };
        alert.annotations = self
            .annotations
            .iter()
            .map(|(k, t)| (k.clone(), render(t, &alert)))
            .collect();
        alert
    }
}

/// Replaces `{{ field }}` in `template` by the alert's field (empty when absent); unknown
/// fields are left as written.
fn render(template: &str, a: &Alert) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let (before, after) = rest.split_at(open);
        out.push_str(before);
        let Some(close) = after.find("}}") else {
            out.push_str(after);
            return out;
        };
        let (inner, tail) = after.split_at(close);
        let field = inner.trim_start_matches('{').trim();
        let opt = |v: Option<String>| v.unwrap_or_default();
        let value = match field {
            "rule" => Some(a.rule.clone()),
            "kind" => Some(a.kind.as_str().to_owned()),
            "severity" => Some(a.severity.as_str().to_owned()),
            "src" => Some(opt(a.src.map(|s| s.to_string()))),
            "dst" => Some(opt(a.dst.map(|s| s.to_string()))),
            "port" => Some(opt(a.port.map(|s| s.to_string()))),
            "network" => Some(opt(a.network.clone())),
            "value" => Some(format!("{:.1}", a.value)),
            "threshold" => Some(format!("{:.1}", a.threshold)),
            _ => None,
        };
        if let Some(v) = value {
            out.push_str(&v);
        } else {
            out.push_str(inner);
            out.push_str("}}");
        }
        rest = tail.get(2..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

/// Every rule of a config, built once and shared by the workers.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    /// Builds the rules of a validated config, reading every `blocklist` file.
    ///
    /// # Errors
    /// Every unreadable blocklist file and every bad line in one, each naming its file
    /// (and line); a scope naming no host group (which validation refuses).
    pub fn build(config: &Config) -> Result<RuleSet, ConfigErrors> {
        let groups: Vec<(String, Vec<IpNet>)> = config
            .host_groups
            .iter()
            .map(|g| (g.name.clone(), g.cidrs.iter().map(|c| c.0).collect()))
            .collect();
        let networks: Vec<String> = config.networks.iter().map(|n| n.name.clone()).collect();
        let mut errors = Vec::new();
        let rules = config
            .rules
            .iter()
            .filter_map(|r| Rule::from_config(r, &groups, &networks, &mut errors))
            .collect();
        if errors.is_empty() {
            Ok(RuleSet { rules })
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// The rules, in config order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Every file the rules read (blocklists), sorted and without duplicates: what a
    /// reloader watches besides the config.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self
            .rules
            .iter()
            .filter_map(|r| r.config.blocklist())
            .flat_map(|b| b.files.iter().cloned())
            .collect();
        files.sort();
        files.dedup();
        files
    }
}

/// One rule's running state in one worker.
struct Running {
    rule: Rule,
    state: RuleState,
    lifecycle: Lifecycle,
    window_start: Option<Timestamp>,
    hold_until: Timestamp,
    /// This rule's metric handles in this detector (with [`Detector::with_metrics`]).
    metrics: Option<RuleMetrics>,
    /// The packet features (`rules::need` bits) without which neither the scope nor the
    /// state would take a packet: checked first, so most rules skip most packets at the
    /// cost of one mask test.
    needs: u32,
    /// The scope is a host group, whose prefixes are checked per packet after `needs`.
    grouped: bool,
}

impl Running {
    /// Fresh state for `rule` (tables allocated now).
    fn new(rule: &Rule) -> Running {
        let mut r = Running {
            state: RuleState::new(rule),
            rule: rule.clone(),
            lifecycle: Lifecycle::default(),
            window_start: None,
            hold_until: Timestamp::ZERO,
            metrics: None,
            needs: 0,
            grouped: false,
        };
        r.refresh_needs();
        r
    }

    /// Recomputes `needs` and `grouped` from the rule and its state.
    fn refresh_needs(&mut self) {
        let scope = match self.rule.scope {
            Scope::Protected => rules::need::PROTECTED,
            Scope::All | Scope::Group(..) => 0,
        };
        self.needs = scope | self.state.needs();
        self.grouped = matches!(self.rule.scope, Scope::Group(..));
    }
}

/// One worker's detection state.
pub struct Detector {
    rules: Arc<RuleSet>,
    running: Vec<Running>,
    alerts: Box<dyn AlertOutput>,
    metrics: Option<DetectionMetricVecs>,
    updates: Option<Receiver<Arc<RuleSet>>>,
    last_packet: Option<Timestamp>,
}

impl Detector {
    /// A detector for `rules`, sending transitions to `alerts`. Allocates every rule's
    /// tables now.
    pub fn new(rules: Arc<RuleSet>, alerts: Box<dyn AlertOutput>) -> Detector {
        let running = rules.rules.iter().map(Running::new).collect();
        Detector {
            rules,
            running,
            alerts,
            metrics: None,
            updates: None,
            last_packet: None,
        }
    }

    /// Exports per-rule figures to `metrics`: handles of every rule are resolved now, and
    /// for the rules a reload adds or changes when it applies.
    #[must_use]
    pub fn with_metrics(mut self, metrics: DetectionMetricVecs) -> Detector {
        for r in &mut self.running {
            r.metrics = Some(metrics.rule(&r.rule.name, r.rule.severity.as_str()));
        }
        self.metrics = Some(metrics);
        self
    }

    /// Takes new rule sets from `updates`: [`Detector::tick`] applies the newest one
    /// waiting. A closed channel just stops updates.
    #[must_use]
    pub fn with_updates(mut self, updates: Receiver<Arc<RuleSet>>) -> Detector {
        self.updates = Some(updates);
        self
    }

    /// Runs `rules` from `now` on (packet clock), keeping the state of unchanged rules
    /// (see the module doc, "Hot reload"). Resolved transitions of removed rules go out
    /// now.
    pub fn reload(&mut self, rules: Arc<RuleSet>, now: Timestamp) {
        let mut old: Vec<Option<Running>> = std::mem::take(&mut self.running)
            .into_iter()
            .map(Some)
            .collect();
        // Before the first packet, `observe` starts windows and warm-up of every rule.
        let started = self.last_packet.is_some();
        let fresh = |rule: &Rule| {
            let mut r = Running::new(rule);
            if started {
                r.window_start = Some(now);
                r.hold_until = now.saturating_add(rule.warmup);
            }
            r
        };
        let mut running = Vec::with_capacity(rules.rules.len());
        for rule in &rules.rules {
            let previous = old
                .iter_mut()
                .find(|o| o.as_ref().is_some_and(|o| o.rule.name == rule.name))
                .and_then(Option::take);
            let r = match previous {
                Some(mut r) if r.rule.config == rule.config => {
                    r.state.adopt(rule);
                    r.rule = rule.clone();
                    r.refresh_needs();
                    r
                }
                // A shadow rule's alerts were never sent, a live rule's were: switching
                // between the two ends the old alerts as a removal does. So does a new
                // severity or new labels: receivers tell alerts apart by their labels, so
                // the old alert must end rather than linger under its old labels.
                Some(r)
                    if r.rule.kind == rule.kind
                        && r.rule.shadow == rule.shadow
                        && r.rule.severity == rule.severity
                        && r.rule.labels == rule.labels =>
                {
                    let mut changed = fresh(rule);
                    changed.lifecycle = r.lifecycle;
                    changed.metrics = r.metrics;
                    changed
                }
                other => {
                    if let Some(gone) = other {
                        self.retire(gone, now);
                    }
                    let mut added = fresh(rule);
                    self.swap_metrics(&mut added);
                    added
                }
            };
            running.push(r);
        }
        for gone in old.into_iter().flatten() {
            self.retire(gone, now);
        }
        self.running = running;
        self.rules = rules;
    }

    /// Gives a new rule its own metric handles, giving back the old ones' share of the
    /// gauges.
    fn swap_metrics(&self, r: &mut Running) {
        if let Some(old) = r.metrics.take() {
            old.retire();
        }
        r.metrics = self
            .metrics
            .as_ref()
            .map(|m| m.rule(&r.rule.name, r.rule.severity.as_str()));
    }

    /// Ends a rule that a reload removed: its firing alerts resolve at `now`.
    fn retire(&mut self, mut gone: Running, now: Timestamp) {
        let alerts = &mut self.alerts;
        gone.lifecycle
            .resolve_all(now, &gone.rule, &mut |a| alerts.emit(a));
        if let Some(m) = gone.metrics {
            m.retire();
        }
    }

    /// Applies the newest rule set waiting in the updates channel, if any.
    fn apply_updates(&mut self, now: Timestamp) {
        let Some(updates) = &self.updates else {
            return;
        };
        let mut newest = None;
        loop {
            match updates.try_recv() {
                Ok(rules) => newest = Some(rules),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.updates = None;
                    break;
                }
            }
        }
        if let Some(rules) = newest {
            self.reload(rules, now);
        }
    }

    /// The rule set this detector runs.
    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// Whether any rule is running: without one, [`Detector::observe`] has nothing to do
    /// and the pipeline skips building the packet's view.
    #[inline]
    pub fn has_rules(&self) -> bool {
        !self.running.is_empty()
    }

    /// Adds one packet to every rule whose scope admits it.
    #[inline]
    pub fn observe(&mut self, p: &PacketView<'_>) {
        let gap = self
            .last_packet
            .is_some_and(|last| p.ts.saturating_since(last) > CAPTURE_GAP);
        if self.last_packet.is_none() || gap {
            for r in &mut self.running {
                r.hold_until = p.ts.saturating_add(r.rule.warmup);
                if gap {
                    r.state.reset();
                }
                r.window_start = Some(p.ts);
            }
        }
        self.last_packet = Some(self.last_packet.map_or(p.ts, |l| l.max(p.ts)));
        let features = rules::features(p);
        let mut hashes = rules::Hashes::default();
        for r in &mut self.running {
            if features & r.needs == r.needs && (!r.grouped || r.rule.scope.admits(p)) {
                r.state.observe(p, &mut hashes);
            }
        }
    }

    /// Applies a rule set waiting in the updates channel, then evaluates every rule at
    /// `now` (packet clock); complete windows restart.
    pub fn tick(&mut self, now: Timestamp) {
        self.apply_updates(now);
        self.evaluate(now, false);
    }

    /// Evaluates the partial windows at the end of input (a capture file ended).
    pub fn finish(&mut self, now: Timestamp) {
        self.evaluate(now, true);
    }

    fn evaluate(&mut self, now: Timestamp, last: bool) {
        let alerts = &mut self.alerts;
        let mut emit = |a: Alert| alerts.emit(a);
        for r in &mut self.running {
            let started = Instant::now();
            let start = *r.window_start.get_or_insert(now);
            let elapsed = now.saturating_since(start);
            let lifecycle = &mut r.lifecycle;
            lifecycle.begin();
            r.state
                .evaluate(&r.rule, elapsed, &mut |obs| lifecycle.hold(now, obs));
            let held = now < r.hold_until;
            let outcome = lifecycle.end(now, &r.rule, held, &mut emit);
            if elapsed >= r.rule.window && !last {
                r.state.roll(elapsed, r.rule.window);
                r.window_start = Some(now);
            }
            if let Some(m) = r.metrics.as_mut() {
                m.record(
                    outcome.fired,
                    r.rule.shadow,
                    lifecycle.firing(),
                    r.state.keys(),
                    r.state.take_evictions() + lifecycle.take_dropped(),
                    started.elapsed().as_secs_f64(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
