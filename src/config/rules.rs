//! The detection part of the configuration: `[[rules]]`, `[[host_groups]]` and rule files.
//!
//! Owns the serde schema of a rule ([`RuleConfig`]: common fields plus the parameters of
//! each kind, flat so `deny_unknown_fields` still catches typos), of a host group
//! ([`HostGroupConfig`]) and of a file in the `rules_dir` folder ([`RulesFile`]), and the
//! semantic checks ([`validate_rules`]), which report every problem with its key, and
//! the resolution of `blocklist` file paths against the config's folder
//! ([`resolve_rule_paths`]).
//!
//! Does not own: the runtime rule set (`crate::detect::RuleSet` is built from these, and
//! reads the blocklist files) or reading the rule files (`super::load`).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Cidr, HumanDuration, is_label_safe};
pub use crate::vocabulary::RuleKind;
use crate::vocabulary::Severity;

/// Most rules in a config (each is a `rule` label value).
pub(super) const MAX_RULES: usize = 256;
/// Most host groups.
pub(super) const MAX_HOST_GROUPS: usize = 64;
/// Most keys (victims, sources…) one rule tracks per worker.
pub(super) const MAX_KEYS: usize = 1 << 20;

/// What a `volume` rule counts.
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

/// Which packets a `volume` rule counts.
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

/// Which direction of traffic a `volume` rule counts, relative to the protected networks.
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
}

/// One detection rule.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique name, the `rule` label: 1-64 of `[a-z0-9_.:/-]`.
    pub name: String,
    /// What the rule detects.
    pub kind: RuleKind,
    /// Which traffic: `all`, `protected` (a packet with at least one end in a protected
    /// network) or the name of a `[[host_groups]]` entry (an end in the group).
    #[serde(default = "default_scope")]
    pub scope: String,
    /// `info`, `warning`, `critical` or `emergency`.
    pub severity: Severity,
    /// The value at or above which the condition holds. Its unit depends on the kind:
    /// per second for `volume`, `syn_flood`, `dns_amplification` and `baseline` (where it
    /// is the absolute floor under the learned bound); distinct ports or
    /// hosts in the window for `port_scan` and `host_sweep`; suspicious queries in the
    /// window for `dns_tunnel`; packets in the window for `blocklist`. Required for every
    /// kind but `blocklist` (default 1: any packet).
    pub threshold: Option<f64>,
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
    /// `threshold` or `network`.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// `volume`, `baseline`: `packets`, `bits` or `flows` (default `packets`).
    pub metric: Option<VolumeMetric>,
    /// `volume`, `baseline`: `any`, `tcp`, `tcp_syn`, `udp`, `icmp` or `fragment`
    /// (default `any`).
    pub protocol: Option<VolumeProtocol>,
    /// `volume`, `baseline`: `any`, `inbound`, `outbound` or `internal` (default `any`).
    pub direction: Option<VolumeDirection>,
    /// `volume`, `baseline`: `host` (one alert per destination host) or `network` (one
    /// per protected network or host group; default `host`).
    pub key: Option<VolumeKey>,
    /// `baseline`: standard deviations above the learned level (default 3).
    pub k: Option<f64>,
    /// `baseline`: EWMA weight of each new window, 0 to 1 (default 0.1).
    pub alpha: Option<f64>,
    /// `baseline`: windows a host must be seen before it can alert (its warm-up,
    /// default 10).
    pub min_windows: Option<u32>,
    /// `syn_flood`: most completed handshakes per SYN still called a flood (default 0.2).
    pub max_completion_ratio: Option<f64>,
    /// `syn_flood`: most distinct destination ports still called a flood (default 64);
    /// SYNs spread over more ports are a port scan, left to `port_scan` (and a flood to
    /// random ports is still caught by a `volume` rule).
    pub max_ports: Option<u64>,
    /// `port_scan`, `host_sweep`: most answered probes per probe still called a scan
    /// (default 0.5).
    pub max_answered_ratio: Option<f64>,
    /// `port_scan`, `host_sweep`: largest mean wire size, in bytes, of the probes still
    /// called a scan (default 256). Scanners send small probes (nmap and masscan about
    /// 60 bytes); a flood of large packets to random ports or hosts is a flood, left to
    /// the `volume` rules.
    pub max_probe_bytes: Option<u32>,
    /// `dns_amplification`: fewest distinct reflectors (default 2).
    pub min_reflectors: Option<u64>,
    /// `dns_amplification`: smallest DNS message counted, bytes (default 512).
    pub min_response_bytes: Option<u32>,
    /// `dns_tunnel`: shortest label below the registered domain that makes a query
    /// suspicious (default 20).
    pub min_label_len: Option<usize>,
    /// `dns_tunnel`: lowest character entropy (bits per character) of the labels below
    /// the registered domain that makes a query suspicious (default 3.0).
    pub min_entropy: Option<f64>,
    /// `blocklist`: files of addresses and CIDRs, one per line, `#` comments. Relative
    /// paths are relative to the main config file's folder; loading makes them absolute.
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// `blocklist`: addresses and CIDRs listed inline.
    #[serde(default)]
    pub entries: Vec<Cidr>,
    /// `blocklist`: the age beyond which a list file counts as stale (read by the
    /// self-monitoring, not by the rule).
    pub max_age: Option<HumanDuration>,
}

impl RuleConfig {
    /// The threshold, with the `blocklist` default of 1 (validation makes it present for
    /// every other kind).
    pub fn threshold(&self) -> f64 {
        self.threshold.unwrap_or(1.0)
    }
}

fn default_scope() -> String {
    "protected".to_owned()
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

/// A named set of CIDRs that rules can use as their scope, to give those hosts their own
/// thresholds (as `FastNetMon`'s host groups do).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HostGroupConfig {
    /// Name used as a rule's `scope`: 1-64 of `[a-z0-9_.:/-]`, not `all` or `protected`.
    pub name: String,
    /// IPv4 and IPv6 CIDRs.
    pub cidrs: Vec<Cidr>,
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

/// Checks host groups and rules; `groups` are every host group name of the config (rule
/// files may use groups defined elsewhere). Problems go to `bad` as (key, message).
pub(super) fn validate_rules(
    rules: &[RuleConfig],
    host_groups: &[HostGroupConfig],
    groups: &HashSet<&str>,
    bad: &mut impl FnMut(&str, String),
) {
    for g in host_groups {
        if !is_label_safe(&g.name) || g.name == "all" || g.name == "protected" {
            bad(
                "host_groups.name",
                format!(
                    "host group name `{}` must be 1-64 of [a-z0-9_.:/-], not `all` or `protected`",
                    g.name
                ),
            );
        }
        if g.cidrs.is_empty() {
            bad(
                "host_groups.cidrs",
                format!("host group `{}` lists no CIDRs", g.name),
            );
        }
    }
    for r in rules {
        validate_rule(r, groups, bad);
    }
}

fn validate_rule(r: &RuleConfig, groups: &HashSet<&str>, bad: &mut impl FnMut(&str, String)) {
    let name = &r.name;
    if !is_label_safe(name) {
        bad(
            "rules.name",
            format!("rule name `{name}` must be 1-64 of [a-z0-9_.:/-]"),
        );
    }
    if r.scope != "all" && r.scope != "protected" && !groups.contains(r.scope.as_str()) {
        bad(
            "rules.scope",
            format!(
                "rule `{name}`: scope `{}` is not `all`, `protected` or a host group",
                r.scope
            ),
        );
    }
    match r.threshold {
        None if r.kind != RuleKind::Blocklist => bad(
            "rules.threshold",
            format!(
                "rule `{name}`: threshold is required for kind `{}`",
                r.kind.as_str()
            ),
        ),
        Some(t) if !(t.is_finite() && t > 0.0) => bad(
            "rules.threshold",
            format!("rule `{name}`: threshold must be a positive number"),
        ),
        _ => {}
    }
    if r.kind == RuleKind::Blocklist && r.files.is_empty() && r.entries.is_empty() {
        bad(
            "rules.files",
            format!("rule `{name}`: a blocklist needs `files` or `entries`"),
        );
    }
    if r.window.0.as_millis() < 1000 || r.window.0.as_secs() > 3600 {
        bad(
            "rules.window",
            format!("rule `{name}`: window must be 1s to 1h"),
        );
    }
    if !(1..=MAX_KEYS).contains(&r.max_keys) {
        bad(
            "rules.max_keys",
            format!("rule `{name}`: max_keys must be 1 to {MAX_KEYS}"),
        );
    }
    for key in r.labels.keys() {
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            bad(
                "rules.labels",
                format!("rule `{name}`: label name `{key}` must be [a-zA-Z0-9_]+"),
            );
        }
    }
    validate_parameters(r, bad);
}

/// Checks the kind-specific parameters of `r`: values in range, and none of another kind.
fn validate_parameters(r: &RuleConfig, bad: &mut impl FnMut(&str, String)) {
    let name = &r.name;
    let ratio_ok = |v: Option<f64>| v.is_none_or(|v| (0.0..=1.0).contains(&v));
    if !ratio_ok(r.max_completion_ratio) || !ratio_ok(r.max_answered_ratio) {
        bad(
            "rules.max_completion_ratio",
            format!("rule `{name}`: ratios must be between 0 and 1"),
        );
    }
    let allowed: &[&str] = match r.kind {
        RuleKind::Volume => &["metric", "protocol", "direction", "key"],
        RuleKind::SynFlood => &["max_completion_ratio", "max_ports"],
        RuleKind::PortScan | RuleKind::HostSweep => &["max_answered_ratio", "max_probe_bytes"],
        RuleKind::DnsAmplification => &["min_reflectors", "min_response_bytes"],
        RuleKind::DnsTunnel => &["min_label_len", "min_entropy"],
        RuleKind::Baseline => &[
            "metric",
            "protocol",
            "direction",
            "key",
            "k",
            "alpha",
            "min_windows",
        ],
        RuleKind::Blocklist => &["files", "entries", "max_age"],
    };
    let bad_alpha = r.alpha.is_some_and(|a| a.is_nan() || a <= 0.0 || a > 1.0);
    if bad_alpha || r.k.is_some_and(|k| k.is_nan() || k <= 0.0) {
        bad(
            "rules.alpha",
            format!("rule `{name}`: alpha must be in (0, 1] and k positive"),
        );
    }
    let present = [
        ("metric", r.metric.is_some()),
        ("protocol", r.protocol.is_some()),
        ("direction", r.direction.is_some()),
        ("max_completion_ratio", r.max_completion_ratio.is_some()),
        ("max_ports", r.max_ports.is_some()),
        ("max_answered_ratio", r.max_answered_ratio.is_some()),
        ("max_probe_bytes", r.max_probe_bytes.is_some()),
        ("min_reflectors", r.min_reflectors.is_some()),
        ("min_response_bytes", r.min_response_bytes.is_some()),
        ("min_label_len", r.min_label_len.is_some()),
        ("min_entropy", r.min_entropy.is_some()),
        ("k", r.k.is_some()),
        ("alpha", r.alpha.is_some()),
        ("min_windows", r.min_windows.is_some()),
        ("key", r.key.is_some()),
        ("files", !r.files.is_empty()),
        ("entries", !r.entries.is_empty()),
        ("max_age", r.max_age.is_some()),
    ];
    for (field, set) in present {
        if set && !allowed.contains(&field) {
            bad(
                &format!("rules.{field}"),
                format!(
                    "rule `{name}`: `{field}` does not apply to kind `{}`",
                    r.kind.as_str()
                ),
            );
        }
    }
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
        for f in &mut r.files {
            if f.is_relative() {
                *f = base.join(&*f);
            }
        }
    }
}

/// Problems with names across the whole config: duplicate rules or host groups, too many.
pub(super) fn validate_names(
    rules: &[RuleConfig],
    host_groups: &[HostGroupConfig],
    bad: &mut impl FnMut(&str, String),
) {
    if rules.len() > MAX_RULES {
        bad("rules", format!("at most {MAX_RULES} rules"));
    }
    if host_groups.len() > MAX_HOST_GROUPS {
        bad(
            "host_groups",
            format!("at most {MAX_HOST_GROUPS} host groups"),
        );
    }
    let mut seen = HashSet::new();
    for r in rules {
        if !seen.insert(r.name.as_str()) {
            bad(
                "rules.name",
                format!("rule name `{}` is used twice", r.name),
            );
        }
    }
    let mut seen = HashSet::new();
    for g in host_groups {
        if !seen.insert(g.name.as_str()) {
            bad(
                "host_groups.name",
                format!("host group name `{}` is used twice", g.name),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(src: &str) -> Vec<(String, String)> {
        let file: RulesFile = toml::from_str(src).unwrap();
        let groups: HashSet<&str> = file.host_groups.iter().map(|g| g.name.as_str()).collect();
        let mut out = Vec::new();
        validate_rules(&file.rules, &file.host_groups, &groups, &mut |k, m| {
            out.push((k.to_owned(), m));
        });
        validate_names(&file.rules, &file.host_groups, &mut |k, m| {
            out.push((k.to_owned(), m));
        });
        out
    }

    #[test]
    fn a_valid_rule_file_has_no_problems() {
        let src = r#"
[[host_groups]]
name = "dmz"
cidrs = ["192.0.2.0/24"]

[[rules]]
name = "udp_flood_dmz"
kind = "volume"
scope = "dmz"
severity = "critical"
threshold = 5000
protocol = "udp"
"for" = "2s"
labels = { team = "noc" }
"#;
        assert_eq!(problems(src), Vec::new());
    }

    #[test]
    fn rule_files_are_loaded_from_rules_dir_and_errors_name_their_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("netwarden.toml");
        std::fs::write(&config, "").unwrap();
        std::fs::create_dir(dir.path().join("rules.d")).unwrap();
        let rules = dir.path().join("rules.d/a.toml");
        std::fs::write(
            &rules,
            "[[rules]]\nname = \"a\"\nkind = \"volume\"\nseverity = \"info\"\nthreshold = 5\n",
        )
        .unwrap();
        let loaded = super::super::load(Some(&config)).unwrap();
        assert_eq!(loaded.config.rules.len(), 1);
        std::fs::write(
            &rules,
            "[[rules]]\nname = \"a\"\nkind = \"volume\"\nseverity = \"info\"\nthreshold = 0\n",
        )
        .unwrap();
        let errors = super::super::load(Some(&config)).unwrap_err().to_string();
        assert!(
            errors.contains("rules.d/a.toml:5:") && errors.contains("threshold must be"),
            "{errors}"
        );
    }

    #[test]
    fn the_built_in_config_carries_the_shipped_rules() {
        let loaded = super::super::load(None).unwrap();
        let kinds: HashSet<&str> = loaded
            .config
            .rules
            .iter()
            .map(|r| r.kind.as_str())
            .collect();
        assert_eq!(kinds.len(), 7, "{kinds:?}");
    }

    #[test]
    fn threshold_is_required_except_for_blocklists_which_need_a_list() {
        let src = r#"
[[rules]]
name = "flood"
kind = "volume"
severity = "warning"

[[rules]]
name = "listed"
kind = "blocklist"
severity = "warning"

[[rules]]
name = "listed_inline"
kind = "blocklist"
severity = "warning"
entries = ["203.0.113.0/24", "2001:db8::1"]
max_age = "7d"
"#;
        let got = problems(src);
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["rules.threshold", "rules.files"], "{got:?}");
        assert!(got[0].1.contains("required for kind `volume`"), "{got:?}");
        let file: RulesFile = toml::from_str(src).unwrap();
        assert!((file.rules[1].threshold() - 1.0).abs() < f64::EPSILON);
        assert_eq!(
            file.rules[2].max_age,
            Some(HumanDuration::secs(7 * 24 * 3600))
        );
    }

    #[test]
    fn key_applies_to_volume_and_baseline_and_list_fields_to_blocklists() {
        let src = r#"
[[rules]]
name = "net_flood"
kind = "volume"
severity = "warning"
threshold = 5
key = "network"

[[rules]]
name = "scan"
kind = "port_scan"
severity = "warning"
threshold = 5
key = "host"
files = ["x.txt"]
"#;
        let keys: Vec<String> = problems(src).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["rules.key", "rules.files"]);
        let bad_entry = "[[rules]]\nname = \"l\"\nkind = \"blocklist\"\nseverity = \"info\"\nentries = [\"300.1.1.1\"]\n";
        let err = toml::from_str::<RulesFile>(bad_entry)
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid CIDR `300.1.1.1`"), "{err}");
    }

    #[test]
    fn blocklist_files_are_made_absolute_relative_to_the_config_folder() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("netwarden.toml");
        std::fs::write(
            &config,
            "[[rules]]\nname = \"a\"\nkind = \"blocklist\"\nseverity = \"info\"\nfiles = [\"blocklist.txt\", \"/srv/lists/b.txt\"]\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("rules.d")).unwrap();
        std::fs::write(
            dir.path().join("rules.d/b.toml"),
            "[[rules]]\nname = \"b\"\nkind = \"blocklist\"\nseverity = \"info\"\nfiles = [\"lists/c.txt\"]\n",
        )
        .unwrap();
        let loaded = super::super::load(Some(&config)).unwrap();
        let files: Vec<&Path> = loaded
            .config
            .rules
            .iter()
            .flat_map(|r| r.files.iter().map(PathBuf::as_path))
            .collect();
        assert_eq!(
            files,
            [
                dir.path().join("blocklist.txt").as_path(),
                Path::new("/srv/lists/b.txt"),
                dir.path().join("lists/c.txt").as_path(),
            ]
        );
        let mut rules = loaded.config.rules.clone();
        rules[0].files = vec![PathBuf::from("x.txt")];
        resolve_rule_paths(&mut rules, Path::new(""));
        assert!(rules[0].files[0].is_absolute(), "{:?}", rules[0].files);
    }

    #[test]
    fn unknown_fields_and_kinds_are_refused() {
        let typo = "[[rules]]\nname = \"a\"\nkind = \"volume\"\nseverity = \"info\"\nthreshold = 1\ntreshold = 2\n";
        assert!(toml::from_str::<RulesFile>(typo).is_err());
        let kind =
            "[[rules]]\nname = \"a\"\nkind = \"flood\"\nseverity = \"info\"\nthreshold = 1\n";
        assert!(toml::from_str::<RulesFile>(kind).is_err());
    }

    #[test]
    fn parameters_of_another_kind_and_bad_values_are_reported_together() {
        let src = r#"
[[rules]]
name = "Scan"
kind = "port_scan"
scope = "nowhere"
severity = "warning"
threshold = -1
protocol = "udp"

[[rules]]
name = "Scan"
kind = "port_scan"
severity = "warning"
threshold = 1
"#;
        let keys: Vec<String> = problems(src).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "rules.name",
                "rules.scope",
                "rules.threshold",
                "rules.protocol",
                "rules.name",
                "rules.name"
            ]
        );
    }
}
