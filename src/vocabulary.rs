//! The words configuration, detection, self-monitoring and alert delivery share.
//!
//! Owns [`Severity`] (how urgent an alert is), [`AlertState`] (the transition an alert
//! record reports), [`RuleKind`] (what a detection rule detects: the `kind` of a
//! `[[rules]]` table) and [`AlertKind`] (the `kind` of an alert: a rule's kind, or `self`
//! for netwarden's alerts about itself), and the words of graded protection:
//! [`ProtectionLevel`] (how much an asset matters, 1 to 5) and [`DataGrade`] (what its data
//! is worth). Each serialises as the lower-case word (or number) users write in the config
//! and read in alerts.
//!
//! A leaf: it depends on nothing else in the crate, so `config` (which names severities
//! and kinds) and `alert` (which carries them) both use it without depending on each
//! other.

use std::fmt;

use serde::de::IntoDeserializer as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

/// How much an asset matters under graded protection: 1 (lowest) to 5 (highest). Always
/// within 1..=5: it is only made by [`ProtectionLevel::new`] or read from the config,
/// which refuses other numbers where they are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "u8")]
pub struct ProtectionLevel(u8);

impl ProtectionLevel {
    /// The lowest level.
    pub const MIN: u8 = 1;
    /// The highest level.
    pub const MAX: u8 = 5;
    /// Every level, lowest first.
    pub const ALL: [ProtectionLevel; 5] = [
        ProtectionLevel(1),
        ProtectionLevel(2),
        ProtectionLevel(3),
        ProtectionLevel(4),
        ProtectionLevel(5),
    ];

    /// The level `n`, if it is 1 to 5.
    pub const fn new(n: u8) -> Option<ProtectionLevel> {
        if n >= Self::MIN && n <= Self::MAX {
            Some(ProtectionLevel(n))
        } else {
            None
        }
    }

    /// The number, 1 to 5.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Index into [`ProtectionLevel::ALL`] (the level minus one).
    pub const fn index(self) -> usize {
        (self.0 - Self::MIN) as usize
    }

    /// The `protection_level` label value (`"1"` to `"5"`).
    pub fn as_str(self) -> &'static str {
        match self.0 {
            1 => "1",
            2 => "2",
            3 => "3",
            4 => "4",
            _ => "5",
        }
    }
}

impl From<ProtectionLevel> for u8 {
    fn from(level: ProtectionLevel) -> u8 {
        level.0
    }
}

impl fmt::Display for ProtectionLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProtectionLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        u8::try_from(n)
            .ok()
            .and_then(ProtectionLevel::new)
            .ok_or_else(|| {
                serde::de::Error::custom(format!("protection level must be 1 to 5, got {n}"))
            })
    }
}

/// What an asset's data is worth under data classification, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataGrade {
    /// Ordinary data.
    General,
    /// Important data.
    Important,
    /// Core data.
    Core,
}

impl DataGrade {
    /// Every grade, lowest first.
    pub const ALL: [DataGrade; 3] = [DataGrade::General, DataGrade::Important, DataGrade::Core];

    /// The `data_grade` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DataGrade::General => "general",
            DataGrade::Important => "important",
            DataGrade::Core => "core",
        }
    }
}

impl fmt::Display for DataGrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transition an alert record reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition held for the rule's `for` duration.
    Firing,
    /// The condition stayed clear for the rule's resolve delay.
    Resolved,
}

/// What a rule detects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Packets, bits or new flows per second to one destination host.
    Volume,
    /// SYNs per second to a destination with few completed handshakes.
    SynFlood,
    /// One source probing many ports (or IP protocols) of one host, mostly unanswered.
    PortScan,
    /// One source probing many hosts, mostly unanswered.
    HostSweep,
    /// Unsolicited large DNS responses per second to one host.
    DnsAmplification,
    /// Queries with long, high-entropy labels from one source under one domain.
    DnsTunnel,
    /// A rate per destination host above its learned baseline (EWMA of level and
    /// variance) by `k` standard deviations and above `threshold`.
    Baseline,
    /// Traffic to or from an address or CIDR listed in files or inline.
    Blocklist,
    /// Bytes sent out of the protected networks by one protected source, above its data
    /// grade's floor and its learned usual volume.
    Exfiltration,
    /// Responses of UDP reflector services (DNS, NTP, SSDP, memcached…) far larger than
    /// the requests they answer, per victim or per abused server.
    Reflection,
}

impl RuleKind {
    /// Every kind, in declaration order.
    pub const ALL: [RuleKind; 10] = [
        RuleKind::Volume,
        RuleKind::SynFlood,
        RuleKind::PortScan,
        RuleKind::HostSweep,
        RuleKind::DnsAmplification,
        RuleKind::DnsTunnel,
        RuleKind::Baseline,
        RuleKind::Blocklist,
        RuleKind::Exfiltration,
        RuleKind::Reflection,
    ];

    /// The word written in the config and in alerts (`syn_flood`).
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Volume => "volume",
            RuleKind::SynFlood => "syn_flood",
            RuleKind::PortScan => "port_scan",
            RuleKind::HostSweep => "host_sweep",
            RuleKind::DnsAmplification => "dns_amplification",
            RuleKind::DnsTunnel => "dns_tunnel",
            RuleKind::Baseline => "baseline",
            RuleKind::Blocklist => "blocklist",
            RuleKind::Exfiltration => "exfiltration",
            RuleKind::Reflection => "reflection",
        }
    }
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `kind` of an alert: the kind of the rule that raised it, or `self` for an alert
/// netwarden raises about itself (`crate::health`). Serialised as that one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// Raised by a detection rule of this kind.
    Rule(RuleKind),
    /// Raised by netwarden's self-monitoring.
    SelfMonitoring,
}

impl AlertKind {
    /// The word of [`AlertKind::SelfMonitoring`].
    const SELF: &'static str = "self";

    /// The word written in alerts (`syn_flood`, `self`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Rule(kind) => kind.as_str(),
            AlertKind::SelfMonitoring => AlertKind::SELF,
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AlertKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AlertKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let word = String::deserialize(d)?;
        if word == AlertKind::SELF {
            return Ok(AlertKind::SelfMonitoring);
        }
        RuleKind::deserialize(word.as_str().into_deserializer())
            .map(AlertKind::Rule)
            .map_err(|_: serde::de::value::Error| {
                serde::de::Error::custom(format!(
                    "unknown alert kind `{word}`: expected a rule kind or `self`"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_kind_is_in_all_once() {
        for (i, kind) in RuleKind::ALL.into_iter().enumerate() {
            // A new kind fails to compile here until it is added to `ALL`.
            let place = match kind {
                RuleKind::Volume => 0,
                RuleKind::SynFlood => 1,
                RuleKind::PortScan => 2,
                RuleKind::HostSweep => 3,
                RuleKind::DnsAmplification => 4,
                RuleKind::DnsTunnel => 5,
                RuleKind::Baseline => 6,
                RuleKind::Blocklist => 7,
                RuleKind::Exfiltration => 8,
                RuleKind::Reflection => 9,
            };
            assert_eq!(i, place);
        }
    }

    #[test]
    fn names_are_the_words_serde_writes() {
        for kind in RuleKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.as_str());
            let alert = AlertKind::Rule(kind);
            assert_eq!(serde_json::to_value(alert).unwrap(), kind.as_str());
            let back: AlertKind = serde_json::from_value(json).unwrap();
            assert_eq!(back, alert);
        }
        for severity in Severity::ALL {
            assert_eq!(serde_json::to_value(severity).unwrap(), severity.as_str());
        }
    }

    #[test]
    fn protection_levels_are_one_to_five_and_grades_lowercase_words() {
        for (i, level) in ProtectionLevel::ALL.into_iter().enumerate() {
            assert_eq!(level.index(), i);
            assert_eq!(level.as_str(), (i + 1).to_string());
            let back: ProtectionLevel = serde_json::from_value(serde_json::json!(i + 1)).unwrap();
            assert_eq!(back, level);
        }
        for n in [0, 6, -1, 300] {
            let err = serde_json::from_value::<ProtectionLevel>(serde_json::json!(n)).unwrap_err();
            assert!(err.to_string().contains("must be 1 to 5"), "{err}");
        }
        for grade in DataGrade::ALL {
            assert_eq!(serde_json::to_value(grade).unwrap(), grade.as_str());
        }
    }

    #[test]
    fn self_alerts_are_of_kind_self_and_unknown_kinds_are_refused() {
        let json = serde_json::to_value(AlertKind::SelfMonitoring).unwrap();
        assert_eq!(json, "self");
        let back: AlertKind = serde_json::from_value(json).unwrap();
        assert_eq!(back, AlertKind::SelfMonitoring);
        let err = serde_json::from_value::<AlertKind>("flood".into()).unwrap_err();
        assert!(
            err.to_string().contains("unknown alert kind `flood`"),
            "{err}"
        );
    }
}
