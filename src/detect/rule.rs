//! One rule, ready to run, and what its evaluation finds.
//!
//! Owns [`Rule`] (a [`RuleConfig`] turned once into typed runtime values: its resolved
//! [`Scope`], durations, the `blocklist` address set, the protected network names a
//! network-keyed rule reports), [`AlertKey`] (what one alert is about) and [`Finding`] (a
//! key whose condition holds in one evaluation), and the alert record of a transition
//! ([`Rule::alert`]).
//!
//! # The asset of an alert
//! An alert is about the asset at its key's `dst` when the key has one (the victim of a
//! flood, amplification or host baseline, the target of a port scan, a blocklisted
//! address one of ours contacted), else at its `src` (the sender of a host sweep or a DNS
//! tunnel, a blocklisted address that contacted us, the protected host data leaves in an
//! exfiltration, a server abused as a reflector). That address's host group gives the
//! alert its `host_group`, `protection_level` and `data_grade` labels and, through the
//! severity matrix, its severity; an address in no group, or no address (a network-keyed
//! rule), takes the rule's host-group scope, else the defaults (`crate::protection`).
//!
//! Does not own: a rule's accumulators (`super::rules`) or when a finding becomes a
//! transition (`crate::alert::lifecycle`, here [`RuleLifecycle`]).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

use super::addr_set::AddrSet;
use super::rules;
use super::scope::Scope;
use super::template::render;
use crate::alert::lifecycle::{ClearFrom, Lifecycle, MAX_ALERTS_PER_RULE, Timing, Transition};
use crate::alert::{Alert, AlertKind, AlertState, Contributor, ContributorKind, Severity};
use crate::cidr_map::CidrMap;
use crate::config::{
    ConfigError, RuleConfig, RuleKind, RuleParams, RuleScope, VolumeKey, VolumeProtocol,
};
use crate::protection::Protection;
use crate::timestamp::Timestamp;

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

/// A key whose condition holds in one evaluation: what a rule's state reports, and
/// its lifecycle turns into transitions.
pub struct Finding {
    /// The key.
    pub key: AlertKey,
    /// The measured value.
    pub value: f64,
    /// Top contributors, heaviest first.
    pub contributors: Vec<Contributor>,
    /// A port the alert concerns, if one dominates.
    pub port: Option<u16>,
    /// How many sources the key's traffic came from, for rules keyed by victim.
    pub sources: Option<SourceCount>,
    /// Values of the evidence a kind reports besides contributors, as annotations
    /// (name, value): an exfiltration's destination and bytes, an amplification factor.
    pub evidence: Vec<(&'static str, String)>,
}

/// The spread of a victim's sources: a distinct-source estimate against the packets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SourceCount {
    /// Distinct source addresses (a `HyperLogLog` estimate, about 13 % standard error).
    pub distinct: f64,
    /// Packets counted.
    pub packets: u64,
}

/// Fewest distinct sources for a [`SourceCount::hint`].
const MIN_SPREAD_SOURCES: f64 = 64.0;

impl SourceCount {
    /// `spoofed` when the distinct sources approach the packets (about one packet per
    /// source, as random spoofing, or a short burst from a huge reflector set, gives);
    /// `distributed` for many sources sending several packets each; none for a few
    /// sources, which the contributors then name. Either hint says blocking single
    /// sources will not help.
    pub fn hint(&self) -> Option<&'static str> {
        #[allow(clippy::cast_precision_loss)]
        let packets = self.packets as f64;
        if self.distinct < MIN_SPREAD_SOURCES {
            None
        } else if self.distinct >= 0.5 * packets {
            Some("spoofed")
        } else {
            Some("distributed")
        }
    }
}

/// What an alert keeps of the finding with its peak value.
#[derive(Debug)]
pub(super) struct Peak {
    /// Top contributors, heaviest first.
    pub(super) contributors: Vec<Contributor>,
    /// A port the alert concerns, if one dominates.
    pub(super) port: Option<u16>,
    /// The spread of the sources.
    pub(super) sources: Option<SourceCount>,
    /// Evidence annotations.
    pub(super) evidence: Vec<(&'static str, String)>,
}

/// The alerts of one rule in one worker, on the packet clock.
pub(super) type RuleLifecycle = Lifecycle<AlertKey, Timestamp, Peak>;

/// A rule's lifecycle with no alerts yet: the resolve delay counts from the last
/// evaluation in which the condition held.
pub(super) fn new_lifecycle() -> RuleLifecycle {
    Lifecycle::new(MAX_ALERTS_PER_RULE, ClearFrom::LastHeld)
}

impl Finding {
    /// The key, value and peak payload a lifecycle holds.
    pub(super) fn into_parts(self) -> (AlertKey, f64, Peak) {
        let peak = Peak {
            contributors: self.contributors,
            port: self.port,
            sources: self.sources,
            evidence: self.evidence,
        };
        (self.key, self.value, peak)
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
    /// Severity of the rule: its alerts' severity before the severity matrix escalates
    /// it by their asset's protection level.
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
    pub(super) config: RuleConfig,
    /// The `protocol` of its alerts: a `volume` rule's protocol, unless `any`.
    protocol: Option<&'static str>,
    /// `blocklist`: the addresses of its files and entries.
    pub(super) blocklist: Option<Arc<AddrSet>>,
    /// Protected network names, by index, for a rule keyed by network (else empty).
    network_names: Vec<String>,
    /// The config's host groups as assets and its severity matrix: the labels and
    /// severity of each alert. A reload that changes them ends the rule's alerts.
    pub(super) protection: Arc<Protection>,
}

impl Rule {
    /// The runtime rule of `c`; a `blocklist` rule reads its files. Problems (an
    /// unreadable file, a scope naming no host group) go to `errors`, and then there is no
    /// rule.
    pub(super) fn from_config(
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
                Scope::Group(name.clone(), CidrMap::from_nets(nets))
            }
        };
        let (by_network, protocol) = match &c.params {
            RuleParams::Volume(p) => (
                p.key != VolumeKey::Host,
                (p.protocol != VolumeProtocol::Any).then(|| p.protocol.as_str()),
            ),
            RuleParams::Baseline(p) => (p.key != VolumeKey::Host, None),
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
            protection: Arc::default(),
        })
    }

    /// The rule judging its alerts' assets by `protection`.
    #[must_use]
    pub(super) fn with_protection(mut self, protection: Arc<Protection>) -> Rule {
        self.protection = protection;
        self
    }

    /// The `network` of an alert: the rule's host group, or the protected network a
    /// network-keyed rule's key names.
    fn network(&self, key: &AlertKey) -> Option<String> {
        self.scope.network().or_else(|| {
            let index = usize::try_from(key.aux.checked_sub(1)?).ok()?;
            self.network_names.get(index).cloned()
        })
    }

    /// The `domain` of an alert: a `dns_tunnel` alert's key is (source, registered
    /// domain), and the domain is its one contributor.
    fn domain(&self, contributors: &[Contributor]) -> Option<String> {
        (self.kind == RuleKind::DnsTunnel)
            .then(|| {
                contributors
                    .iter()
                    .find(|c| c.kind == ContributorKind::Domain)
            })
            .flatten()
            .map(|c| c.value.clone())
    }

    /// The rule's `for` and resolve delay.
    pub(super) fn timing(&self) -> Timing {
        Timing {
            for_: self.for_,
            resolve_delay: self.resolve_delay,
        }
    }

    /// The alert record of transition `t`, or none for a shadow rule (whose transitions
    /// are counted, not sent). A resolved alert's contributors are taken, not copied:
    /// the lifecycle forgets it next.
    pub(super) fn alert(&self, t: &mut Transition<'_, AlertKey, Timestamp, Peak>) -> Option<Alert> {
        if self.shadow {
            return None;
        }
        let contributors = match t.state {
            AlertState::Firing => t.peak.contributors.clone(),
            AlertState::Resolved => std::mem::take(&mut t.peak.contributors),
        };
        let key = t.key;
        let group = match &self.scope {
            Scope::Group(name, _) => Some(name.as_str()),
            _ => None,
        };
        let asset = self.protection.asset(key.dst.or(key.src), group);
        let mut labels = self.labels.clone();
        for (name, value) in asset.labels() {
            labels.insert(name.to_owned(), value.to_owned());
        }
        // A reflection rule keeps one alert per (host, service): the service is part of
        // the alert's identity, so it is a label, not only an annotation.
        if self.kind == RuleKind::Reflection
            && let Ok(port) = u16::try_from(key.aux)
        {
            labels.insert("service".to_owned(), rules::service_label(port));
        }
        let mut alert = Alert {
            rule: self.name.clone(),
            kind: AlertKind::Rule(self.kind),
            severity: self.protection.severity(self.severity, asset),
            state: t.state,
            time: t.now.as_secs_f64(),
            started: t.since.as_secs_f64(),
            last_seen: t.last_seen.as_secs_f64(),
            value: t.value,
            threshold: self.threshold,
            src: key.src,
            dst: key.dst,
            network: self.network(key),
            domain: self.domain(&contributors),
            protocol: self.protocol.map(str::to_owned),
            port: t.peak.port,
            contributors,
            labels,
            annotations: BTreeMap::new(),
        };
        alert.annotations = self
            .annotations
            .iter()
            .map(|(k, t)| (k.clone(), render(t, &alert)))
            .collect();
        for (name, value) in &t.peak.evidence {
            alert.annotations.insert((*name).to_owned(), value.clone());
        }
        if let Some(sources) = t.peak.sources {
            alert.annotations.insert(
                "distinct_sources".to_owned(),
                format!("{:.0}", sources.distinct),
            );
            if let Some(hint) = sources.hint() {
                alert
                    .annotations
                    .insert("source_hint".to_owned(), hint.to_owned());
            }
        }
        Some(alert)
    }
}
