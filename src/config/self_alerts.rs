//! The `[self_alerts]` section: when netwarden alerts about itself.
//!
//! Owns the serde schema of the six self-alert conditions (an interface gone silent,
//! kernel drops above a ratio, the flow table at its cap, detection key tables evicting,
//! a blocklist file older than its rule's `max_age`, alert delivery failing), each with its
//! enable flag, severity, `for` hold and resolve delay, and the checks on them.
//!
//! Does not own: evaluating the conditions or sending the alerts (`crate::health` does
//! both, reading the daemon's own metrics once a second).
//!
//! Invariant after [`SelfAlertsConfig::validate`] reports nothing: every window is 1 s to
//! 1 h (so the per-second history a condition keeps is bounded), every hold is at most a
//! day, the drop ratio lies in (0, 1], and `instance` is a short printable label value.

use serde::{Deserialize, Serialize};

use super::HumanDuration;
use crate::vocabulary::Severity;

/// Bounds on the section's values, whatever the config says.
pub(crate) mod limits {
    use std::time::Duration;

    /// Longest measurement window (the history kept per key is one sample a second).
    pub(crate) const MAX_WINDOW: Duration = Duration::from_secs(3_600);
    /// Longest `for`, resolve delay, silence or age threshold.
    pub(crate) const MAX_HOLD: Duration = Duration::from_secs(86_400);
    /// Longest `instance` label value, in bytes.
    pub(crate) const MAX_INSTANCE_LEN: usize = 128;
}

/// Self-alerts: netwarden tells on-call, through its own alert path, when it goes blind or
/// its accuracy degrades.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelfAlertsConfig {
    /// Evaluate the conditions below once a second and send their alerts.
    pub enabled: bool,
    /// The `instance` label of every self-alert, telling gateways apart in Alertmanager.
    /// Empty: the host name.
    pub instance: String,
    /// An interface (or capture file) delivered no packet for `silent_after`.
    pub interface_silent: InterfaceSilentConfig,
    /// The kernel dropped more than `max_ratio` of an interface's frames over `window`.
    pub capture_drops: CaptureDropsConfig,
    /// A worker's flow table holds as many flows as it can (new flows evict old ones).
    pub flow_table: FlowTableFullConfig,
    /// Detection rules gave up tracked keys within `window` (their key tables are full):
    /// one alert naming them all.
    pub detection_state: DetectionStateConfig,
    /// A blocklist rule's file is older than the rule's `max_age`, or cannot be read.
    pub blocklist_age: BlocklistAgeConfig,
    /// An alert sink is failing now: three failed attempts or drops since it last
    /// delivered, the latest within `window`; or its queue stayed non-empty for the whole
    /// `window`. A sink that delivers again stops failing at once.
    pub alert_delivery: AlertDeliveryConfig,
}

impl Default for SelfAlertsConfig {
    fn default() -> Self {
        SelfAlertsConfig {
            enabled: true,
            instance: String::new(),
            interface_silent: InterfaceSilentConfig::default(),
            capture_drops: CaptureDropsConfig::default(),
            flow_table: FlowTableFullConfig::default(),
            detection_state: DetectionStateConfig::default(),
            blocklist_age: BlocklistAgeConfig::default(),
            alert_delivery: AlertDeliveryConfig::default(),
        }
    }
}

/// What every condition has: whether it runs, how urgent it is, and its hysteresis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelfAlertHold {
    /// Whether the condition is evaluated.
    pub enabled: bool,
    /// The `severity` of its alerts.
    pub severity: Severity,
    /// How long the condition must hold before the alert fires.
    pub for_: HumanDuration,
    /// How long the condition must stay clear before a firing alert resolves.
    pub resolve_delay: HumanDuration,
}

/// [`SelfAlertsConfig::interface_silent`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct InterfaceSilentConfig {
    /// Evaluate this condition.
    pub enabled: bool,
    /// Severity of its alerts (blind: `critical`).
    pub severity: Severity,
    /// How long the condition must hold before the alert fires.
    #[serde(rename = "for")]
    pub for_: HumanDuration,
    /// How long the condition must stay clear before the alert resolves.
    pub resolve_delay: HumanDuration,
    /// No packet for this long makes an interface silent.
    pub silent_after: HumanDuration,
}

impl Default for InterfaceSilentConfig {
    fn default() -> Self {
        InterfaceSilentConfig {
            enabled: true,
            severity: Severity::Critical,
            for_: HumanDuration::secs(0),
            resolve_delay: HumanDuration::secs(60),
            silent_after: HumanDuration::secs(300),
        }
    }
}

/// [`SelfAlertsConfig::capture_drops`].
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureDropsConfig {
    /// Evaluate this condition.
    pub enabled: bool,
    /// Severity of its alerts (degraded: `warning`).
    pub severity: Severity,
    /// How long the condition must hold before the alert fires.
    #[serde(rename = "for")]
    pub for_: HumanDuration,
    /// How long the condition must stay clear before the alert resolves.
    pub resolve_delay: HumanDuration,
    /// Dropped / (received + dropped) above this share fires (0.01 is 1%).
    pub max_ratio: f64,
    /// Window the ratio is measured over.
    pub window: HumanDuration,
}

impl Default for CaptureDropsConfig {
    fn default() -> Self {
        CaptureDropsConfig {
            enabled: true,
            severity: Severity::Warning,
            for_: HumanDuration::secs(60),
            resolve_delay: HumanDuration::secs(300),
            max_ratio: 0.01,
            window: HumanDuration::secs(60),
        }
    }
}

/// [`SelfAlertsConfig::flow_table`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowTableFullConfig {
    /// Evaluate this condition.
    pub enabled: bool,
    /// Severity of its alerts (degraded: `warning`).
    pub severity: Severity,
    /// How long the condition must hold before the alert fires.
    #[serde(rename = "for")]
    pub for_: HumanDuration,
    /// How long the condition must stay clear before the alert resolves.
    pub resolve_delay: HumanDuration,
}

impl Default for FlowTableFullConfig {
    fn default() -> Self {
        FlowTableFullConfig {
            enabled: true,
            severity: Severity::Warning,
            for_: HumanDuration::secs(60),
            resolve_delay: HumanDuration::secs(300),
        }
    }
}

/// [`SelfAlertsConfig::detection_state`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionStateConfig {
    /// Evaluate this condition.
    pub enabled: bool,
    /// Severity of its alerts (degraded: `warning`).
    pub severity: Severity,
    /// How long the condition must hold before the alert fires.
    #[serde(rename = "for")]
    pub for_: HumanDuration,
    /// How long the condition must stay clear before the alert resolves.
    pub resolve_delay: HumanDuration,
    /// Any key eviction within this window makes the condition hold.
    pub window: HumanDuration,
}

impl Default for DetectionStateConfig {
    fn default() -> Self {
        DetectionStateConfig {
            enabled: true,
            severity: Severity::Warning,
            for_: HumanDuration::secs(60),
            resolve_delay: HumanDuration::secs(300),
            window: HumanDuration::secs(60),
        }
    }
}

/// [`SelfAlertsConfig::blocklist_age`]. The age limit itself is each blocklist rule's
/// `max_age`; rules without one are not checked.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlocklistAgeConfig {
    /// Evaluate this condition.
    pub enabled: bool,
    /// Severity of its alerts (degraded: `warning`).
    pub severity: Severity,
    /// How long the condition must hold before the alert fires.
    #[serde(rename = "for")]
    pub for_: HumanDuration,
    /// How long the condition must stay clear before the alert resolves.
    pub resolve_delay: HumanDuration,
}

impl Default for BlocklistAgeConfig {
    fn default() -> Self {
        BlocklistAgeConfig {
            enabled: true,
            severity: Severity::Warning,
            for_: HumanDuration::secs(0),
            resolve_delay: HumanDuration::secs(60),
        }
    }
}

/// [`SelfAlertsConfig::alert_delivery`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertDeliveryConfig {
    /// Evaluate this condition.
    pub enabled: bool,
    /// Severity of its alerts (on-call is not told: `critical`).
    pub severity: Severity,
    /// How long the condition must hold before the alert fires.
    #[serde(rename = "for")]
    pub for_: HumanDuration,
    /// How long the condition must stay clear before the alert resolves.
    pub resolve_delay: HumanDuration,
    /// Failures since the last delivery count only while the latest is within this
    /// window; a queue non-empty at every reading of it makes the condition hold too.
    pub window: HumanDuration,
}

impl Default for AlertDeliveryConfig {
    fn default() -> Self {
        AlertDeliveryConfig {
            enabled: true,
            severity: Severity::Critical,
            for_: HumanDuration::secs(60),
            resolve_delay: HumanDuration::secs(300),
            window: HumanDuration::secs(60),
        }
    }
}

/// Builds a [`SelfAlertHold`] from a condition table.
macro_rules! hold {
    ($c:expr) => {
        SelfAlertHold {
            enabled: $c.enabled,
            severity: $c.severity,
            for_: $c.for_,
            resolve_delay: $c.resolve_delay,
        }
    };
}

impl SelfAlertsConfig {
    /// The hold settings of every condition, with its table name, in a fixed order.
    pub fn holds(&self) -> [(&'static str, SelfAlertHold); 6] {
        [
            ("interface_silent", hold!(self.interface_silent)),
            ("capture_drops", hold!(self.capture_drops)),
            ("flow_table", hold!(self.flow_table)),
            ("detection_state", hold!(self.detection_state)),
            ("blocklist_age", hold!(self.blocklist_age)),
            ("alert_delivery", hold!(self.alert_delivery)),
        ]
    }

    /// Adds every problem of this section to `bad` as (dotted key, message).
    pub fn validate(&self, bad: &mut impl FnMut(&str, String)) {
        if self.instance.len() > limits::MAX_INSTANCE_LEN
            || self.instance.chars().any(char::is_control)
        {
            bad(
                "self_alerts.instance",
                format!(
                    "must be at most {} bytes without control characters",
                    limits::MAX_INSTANCE_LEN
                ),
            );
        }
        for (table, hold) in self.holds() {
            for (key, d) in [("for", hold.for_), ("resolve_delay", hold.resolve_delay)] {
                if d.0 > limits::MAX_HOLD {
                    bad(
                        &format!("self_alerts.{table}.{key}"),
                        "must be at most 1 day".to_owned(),
                    );
                }
            }
        }
        let silent = self.interface_silent.silent_after.0;
        if silent.as_secs() < 1 || silent > limits::MAX_HOLD {
            bad(
                "self_alerts.interface_silent.silent_after",
                "must be between 1s and 1 day".to_owned(),
            );
        }
        let ratio = self.capture_drops.max_ratio;
        if !(ratio > 0.0 && ratio <= 1.0) {
            bad(
                "self_alerts.capture_drops.max_ratio",
                format!("must be above 0 and at most 1, got {ratio}"),
            );
        }
        for (table, window) in [
            ("capture_drops", self.capture_drops.window),
            ("detection_state", self.detection_state.window),
            ("alert_delivery", self.alert_delivery.window),
        ] {
            if window.0.as_secs() < 1 || window.0 > limits::MAX_WINDOW {
                bad(
                    &format!("self_alerts.{table}.window"),
                    "must be between 1s and 1h".to_owned(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::parse;

    fn problems(c: &SelfAlertsConfig) -> Vec<String> {
        let mut out = Vec::new();
        c.validate(&mut |k: &str, _m: String| out.push(k.to_owned()));
        out
    }

    #[test]
    fn defaults_are_valid_and_blind_conditions_are_critical() {
        let c = SelfAlertsConfig::default();
        assert!(problems(&c).is_empty());
        assert_eq!(c.interface_silent.severity, Severity::Critical);
        assert_eq!(c.alert_delivery.severity, Severity::Critical);
        assert_eq!(c.flow_table.severity, Severity::Warning);
        assert_eq!(c.capture_drops.severity, Severity::Warning);
        assert!(c.holds().iter().all(|(_, h)| h.enabled));
    }

    #[test]
    fn bad_values_are_reported_together() {
        let c = SelfAlertsConfig {
            instance: "gw\n1".to_owned(),
            capture_drops: CaptureDropsConfig {
                max_ratio: 0.0,
                window: HumanDuration::secs(7_200),
                ..CaptureDropsConfig::default()
            },
            interface_silent: InterfaceSilentConfig {
                silent_after: HumanDuration::millis(10),
                ..InterfaceSilentConfig::default()
            },
            flow_table: FlowTableFullConfig {
                for_: HumanDuration::secs(90_000),
                ..FlowTableFullConfig::default()
            },
            ..SelfAlertsConfig::default()
        };
        assert_eq!(
            problems(&c),
            [
                "self_alerts.instance",
                "self_alerts.flow_table.for",
                "self_alerts.interface_silent.silent_after",
                "self_alerts.capture_drops.max_ratio",
                "self_alerts.capture_drops.window",
            ]
        );
        let nan = SelfAlertsConfig {
            capture_drops: CaptureDropsConfig {
                max_ratio: f64::NAN,
                ..CaptureDropsConfig::default()
            },
            ..SelfAlertsConfig::default()
        };
        assert_eq!(problems(&nan), ["self_alerts.capture_drops.max_ratio"]);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let src = "[self_alerts]\nenabled = true\n\n[self_alerts.capture_drops]\nmax_ratio = 2.0\n";
        let err = parse(src, Path::new("nw.toml")).unwrap_err().to_string();
        assert!(
            err.starts_with("nw.toml:5:1: key `self_alerts.capture_drops.max_ratio`: must be"),
            "{err}"
        );
        let src = "[self_alerts.flow_table]\nseverity = \"loud\"\n";
        let err = parse(src, Path::new("nw.toml")).unwrap_err().to_string();
        assert!(
            err.starts_with("nw.toml:2:12: key `self_alerts.flow_table.severity`"),
            "{err}"
        );
        let src = "[self_alerts.interface_silent]\nsilent = \"1m\"\n";
        let err = parse(src, Path::new("nw.toml")).unwrap_err().to_string();
        assert!(err.contains("unknown field `silent`"), "{err}");
    }

    #[test]
    fn for_is_spelled_for_in_the_file() {
        let src = "[self_alerts.alert_delivery]\nfor = \"5m\"\nwindow = \"2m\"\n";
        let c = parse(src, Path::new("nw.toml")).unwrap();
        assert_eq!(c.self_alerts.alert_delivery.for_, HumanDuration::secs(300));
        assert_eq!(
            c.self_alerts.alert_delivery.window,
            HumanDuration::secs(120)
        );
    }
}
