//! The detection part of the configuration: `[[rules]]`, `[[host_groups]]` and rule files.
//!
//! Owns the schema of a rule ([`RuleConfig`]: the fields every rule has, [`RuleCommon`],
//! and its kind's parameters, [`RuleParams`], in `params`), of its scope
//! ([`RuleScope`], parsed once from the `scope` string), of a host group
//! ([`HostGroupConfig`]) and of a file in the `rules_dir` folder ([`RulesFile`]); the
//! semantic checks ([`validate_rules`], [`validate_host_groups`], [`duplicates`]), which
//! report every problem with its key and the rule's place in its file; and the resolution of `blocklist` file
//! paths against the config's folder ([`resolve_rule_paths`]).
//!
//! A `[[rules]]` table is flat (`kind`, common keys and the kind's keys side by side), and
//! every key is checked: [`read`] splits a table into the two structs with the TOML
//! parser's spans kept, so a bad key is reported where it is written.
//!
//! Does not own: the runtime rule set (`crate::detect::RuleSet` is built from these, and
//! reads the blocklist files) or reading the files (`super::load`).

mod params;
pub(super) mod read;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Cidr, HumanDuration, is_label_safe};
pub use crate::vocabulary::RuleKind;
use crate::vocabulary::{DataGrade, ProtectionLevel, Severity};
pub use params::{
    BaselineParams, BlocklistParams, DnsAmplificationParams, DnsTunnelParams, ExfiltrationParams,
    MAX_EXFILTRATION_WINDOWS, ReflectionKey, ReflectionParams, RuleParams, ScanParams,
    SynFloodParams, VolumeDirection, VolumeKey, VolumeMetric, VolumeParams, VolumeProtocol,
    VolumeTraffic,
};

/// Most rules in a config (each is a `rule` label value).
pub(super) const MAX_RULES: usize = 256;
/// Most host groups.
pub(super) const MAX_HOST_GROUPS: usize = 64;
/// Most keys (victims, sources…) one rule tracks per worker.
pub(super) const MAX_KEYS: usize = 1 << 20;

/// One detection rule: what every rule has, and its kind's parameters. Written as one flat
/// `[[rules]]` table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleConfig {
    /// Name, scope, severity, timing, labels…
    #[serde(flatten)]
    pub common: RuleCommon,
    /// `kind` and that kind's parameters.
    #[serde(flatten)]
    pub params: RuleParams,
}

impl RuleConfig {
    /// The rule's kind.
    pub fn kind(&self) -> RuleKind {
        self.params.kind()
    }

    /// The `blocklist` parameters, for a blocklist rule.
    pub fn blocklist(&self) -> Option<&BlocklistParams> {
        match &self.params {
            RuleParams::Blocklist(p) => Some(p),
            _ => None,
        }
    }
}

/// Reads a rule from any serde format, splitting its table as `read` does for TOML (but
/// without positions in its errors: loading a config file goes through `read`).
impl<'de> Deserialize<'de> for RuleConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let common_keys = read::field_names::<RuleCommon>();
        let (common, params): (toml::Table, toml::Table) = toml::Table::deserialize(d)?
            .into_iter()
            .partition(|(k, _)| common_keys.contains(&k.as_str()));
        let err = serde::de::Error::custom;
        Ok(RuleConfig {
            common: RuleCommon::deserialize(toml::Value::Table(common)).map_err(err)?,
            params: RuleParams::deserialize(toml::Value::Table(params)).map_err(err)?,
        })
    }
}

/// The fields every rule has, whatever its kind.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleCommon {
    /// Unique name, the `rule` label: 1-64 of `[a-z0-9_.:/-]`.
    pub name: String,
    /// Which traffic: `all`, `protected` (a packet with at least one end in a protected
    /// network) or the name of a `[[host_groups]]` entry (an end in the group).
    #[serde(default)]
    pub scope: RuleScope,
    /// `info`, `warning`, `critical` or `emergency`.
    pub severity: Severity,
    /// Packet-time window the value is measured over. Rates are divided by at least the
    /// whole window, so a partly filled window under-estimates rather than spikes.
    #[serde(default = "default_window")]
    pub window: HumanDuration,
    /// How long the condition must hold before the alert fires (pending until then).
    #[serde(default = "zero", rename = "for")]
    pub for_: HumanDuration,
    /// How long the condition must stay clear before a firing alert resolves; a
    /// condition that comes back within it continues the same alert.
    #[serde(default = "default_resolve_delay")]
    pub resolve_delay: HumanDuration,
    /// Alerts are held for this long after start and after a gap in the capture.
    #[serde(default = "zero")]
    pub warmup: HumanDuration,
    /// Evaluate and count would-have-fired alerts, but send nothing.
    #[serde(default)]
    pub shadow: bool,
    /// Most keys tracked per worker; a full table evicts its lightest key.
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
    /// Extra labels copied into every alert of the rule.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `summary`, `description`, `runbook_url`…: templates where `{{ field }}` is replaced
    /// by the alert's `rule`, `kind`, `severity`, `src`, `dst`, `port`, `value`,
    /// `threshold`, `network`, or its asset's `host_group`, `protection_level` or
    /// `data_grade`.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

fn default_window() -> HumanDuration {
    HumanDuration::secs(1)
}
fn zero() -> HumanDuration {
    HumanDuration::secs(0)
}
fn default_resolve_delay() -> HumanDuration {
    HumanDuration::secs(30)
}
fn default_max_keys() -> usize {
    4096
}

/// Which traffic a rule looks at: the `scope` string, parsed once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum RuleScope {
    /// `all`: every packet.
    All,
    /// `protected` (the default): a packet with at least one end in a protected network.
    #[default]
    Protected,
    /// The name of a `[[host_groups]]` entry: a packet with an end in the group. Whether
    /// the group exists is checked when the config is loaded.
    Group(String),
}

impl RuleScope {
    fn parse(s: &str) -> RuleScope {
        match s {
            "all" => RuleScope::All,
            "protected" => RuleScope::Protected,
            group => RuleScope::Group(group.to_owned()),
        }
    }
}

impl fmt::Display for RuleScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuleScope::All => "all",
            RuleScope::Protected => "protected",
            RuleScope::Group(name) => name,
        })
    }
}

impl<'de> Deserialize<'de> for RuleScope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(RuleScope::parse(&String::deserialize(d)?))
    }
}

impl Serialize for RuleScope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A named set of CIDRs: an asset class under graded protection, and a scope rules can
/// use to give those hosts their own thresholds (as `FastNetMon`'s host groups do).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HostGroupConfig {
    /// Name used as a rule's `scope` and as the `host_group` label: 1-64 of
    /// `[a-z0-9_.:/-]`, not `all` or `protected`.
    pub name: String,
    /// IPv4 and IPv6 CIDRs. An address in several groups belongs to the one with the most
    /// specific prefix (the first group listed, for the same prefix twice).
    pub cidrs: Vec<Cidr>,
    /// Protection level of the group's hosts, 1 (lowest) to 5 (highest): it escalates
    /// their alerts' severity through `[protection.severity_matrix]`. Unset:
    /// `protection.default_level`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protection_level: Option<ProtectionLevel>,
    /// Grade of the group's data: `general`, `important` or `core`. Unset:
    /// `protection.default_data_grade`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_grade: Option<DataGrade>,
}

/// One file of the `rules_dir` folder.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesFile {
    /// Rules.
    pub rules: Vec<RuleConfig>,
    /// Host groups.
    pub host_groups: Vec<HostGroupConfig>,
}

/// Labels every asset alert carries, set from its host group: a rule may not set them.
pub(super) const ASSET_LABELS: [&str; 3] = ["host_group", "protection_level", "data_grade"];

/// Checks host groups; `default_group` is the `host_group` label of hosts in no group,
/// which no group may be named. Problems go to `bad` as (dotted key, index of the group,
/// message).
pub(super) fn validate_host_groups(
    host_groups: &[HostGroupConfig],
    default_group: &str,
    bad: &mut impl FnMut(&str, usize, String),
) {
    for (i, g) in host_groups.iter().enumerate() {
        if g.name == default_group {
            bad(
                "host_groups.name",
                i,
                format!(
                    "host group name `{}` is `protection.default_host_group`, the label of hosts in no group",
                    g.name
                ),
            );
        }
        if !is_label_safe(&g.name) || g.name == "all" || g.name == "protected" {
            bad(
                "host_groups.name",
                i,
                format!(
                    "host group name `{}` must be 1-64 of [a-z0-9_.:/-], not `all` or `protected`",
                    g.name
                ),
            );
        }
        if g.cidrs.is_empty() {
            bad(
                "host_groups.cidrs",
                i,
                format!("host group `{}` lists no CIDRs", g.name),
            );
        }
    }
}

/// Checks rules; `groups` are every host group name of the config (rule files may use
/// groups defined elsewhere). Problems go to `bad` as (dotted key, index of the rule,
/// message).
pub(super) fn validate_rules(
    rules: &[RuleConfig],
    groups: &HashSet<&str>,
    bad: &mut impl FnMut(&str, usize, String),
) {
    for (i, r) in rules.iter().enumerate() {
        validate_rule(r, groups, &mut |key, message| {
            bad(&format!("rules.{key}"), i, message);
        });
    }
}

/// Checks one rule; problems go to `bad` as (key within the rule, message naming the
/// rule).
fn validate_rule(r: &RuleConfig, groups: &HashSet<&str>, bad: &mut dyn FnMut(&str, String)) {
    let c = &r.common;
    let name = &c.name;
    if !is_label_safe(name) {
        bad(
            "name",
            format!("rule name `{name}` must be 1-64 of [a-z0-9_.:/-]"),
        );
    }
    if let RuleScope::Group(group) = &c.scope
        && !groups.contains(group.as_str())
    {
        bad(
            "scope",
            format!("rule `{name}`: scope `{group}` is not `all`, `protected` or a host group"),
        );
    }
    if c.window.0.as_millis() < 1000 || c.window.0.as_secs() > 3600 {
        bad("window", format!("rule `{name}`: window must be 1s to 1h"));
    }
    if !(1..=MAX_KEYS).contains(&c.max_keys) {
        bad(
            "max_keys",
            format!("rule `{name}`: max_keys must be 1 to {MAX_KEYS}"),
        );
    }
    for key in c.labels.keys() {
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            bad(
                "labels",
                format!("rule `{name}`: label name `{key}` must be [a-zA-Z0-9_]+"),
            );
        }
        if ASSET_LABELS.contains(&key.as_str()) {
            bad(
                "labels",
                format!(
                    "rule `{name}`: label `{key}` is set from the host group of the alert's asset"
                ),
            );
        }
    }
    r.params
        .check(&mut |key, message| bad(key, format!("rule `{name}`: {message}")));
}

/// The positions in `names` of every name that an earlier position already has.
pub(super) fn duplicates<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<usize> {
    let mut seen = HashSet::new();
    names
        .into_iter()
        .enumerate()
        .filter(|&(_, name)| !seen.insert(name))
        .map(|(i, _)| i)
        .collect()
}

/// Makes every relative `blocklist` file path absolute, relative to `base` (the main
/// config file's folder; made absolute against the working directory first).
pub(super) fn resolve_rule_paths(rules: &mut [RuleConfig], base: &Path) {
    // `Path::parent` of a bare file name is the empty path, which `absolute` refuses.
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let base = std::path::absolute(base).unwrap_or_else(|_| base.to_owned());
    for r in rules {
        if let RuleParams::Blocklist(p) = &mut r.params {
            for f in &mut p.files {
                if f.is_relative() {
                    *f = base.join(&*f);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
