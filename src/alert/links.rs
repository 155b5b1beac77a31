//! The links every delivered alert carries: `runbook_url` and `dashboard_url`.
//!
//! Owns [`AlertLinks`] (built from `[alerting] runbook_base_url` and `grafana_url`) and
//! [`runbook_name`], the name of the runbook that answers an alert: the alertname of a
//! self-alert (`NetwardenInterfaceSilent`), and for a detection the alertname its *kind*
//! would have (`NetwardenSynFlood` for any `syn_flood` rule, whatever the rule is called:
//! rule names are the operator's, kinds are netwarden's). The runbooks themselves are
//! docs/runbooks/<name>.md, installed under /usr/share/doc/netwarden/runbooks/.
//!
//! Does not own: delivery (the router annotates each transition once, before any sink
//! sees it), or the Prometheus rules' links (written in their YAML).
//!
//! Invariants: an annotation the rule already sets is never replaced; an empty base
//! leaves its annotation out.

use super::{Alert, AlertKind};
use crate::alert::sinks::alertname;
use crate::config::AlertingConfig;

/// The Grafana dashboard (uid) a detection links to: the one on-call opens first.
pub const INCIDENT_DASHBOARD: &str = "netwarden-incident";
/// The Grafana dashboard (uid) a self-alert links to.
pub const HEALTH_DASHBOARD: &str = "netwarden-health";

/// The name of the runbook for `alert` (see the module doc).
pub fn runbook_name(alert: &Alert) -> String {
    match alert.kind {
        AlertKind::SelfMonitoring => alertname(&alert.rule),
        AlertKind::Rule(kind) => alertname(kind.as_str()),
    }
}

/// Where runbooks and dashboards are published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertLinks {
    runbook_base: String,
    grafana: String,
}

impl AlertLinks {
    /// The links of `[alerting]`.
    pub fn from_config(c: &AlertingConfig) -> AlertLinks {
        AlertLinks {
            runbook_base: c.runbook_base_url.clone(),
            grafana: c.grafana_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Adds `runbook_url` and `dashboard_url` to `alert` unless it has them already.
    pub fn annotate(&self, alert: &mut Alert) {
        if !self.runbook_base.is_empty() && !alert.annotations.contains_key("runbook_url") {
            let sep = if self.runbook_base.ends_with('/') {
                ""
            } else {
                "/"
            };
            let url = format!("{}{sep}{}.md", self.runbook_base, runbook_name(alert));
            alert.annotations.insert("runbook_url".to_owned(), url);
        }
        if !self.grafana.is_empty() && !alert.annotations.contains_key("dashboard_url") {
            let uid = match alert.kind {
                AlertKind::SelfMonitoring => HEALTH_DASHBOARD,
                AlertKind::Rule(_) => INCIDENT_DASHBOARD,
            };
            let url = format!("{}/d/{uid}", self.grafana);
            alert.annotations.insert("dashboard_url".to_owned(), url);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::RuleKind;

    fn alert(rule: &str, kind: AlertKind) -> Alert {
        Alert {
            value: 1.0,
            ..Alert::new(rule, kind)
        }
    }

    #[test]
    fn detections_link_their_kind_runbook_and_the_incident_dashboard() {
        let links = AlertLinks::from_config(&AlertingConfig::default());
        let mut a = alert("udp_flood", AlertKind::Rule(RuleKind::Volume));
        links.annotate(&mut a);
        assert_eq!(
            a.annotations["runbook_url"],
            "file:///usr/share/doc/netwarden/runbooks/NetwardenVolume.md"
        );
        assert_eq!(
            a.annotations["dashboard_url"],
            "http://localhost:3000/d/netwarden-incident"
        );
    }

    #[test]
    fn self_alerts_link_their_own_runbook_and_the_health_dashboard() {
        let config = AlertingConfig {
            runbook_base_url: "https://wiki.example/runbooks".into(),
            grafana_url: "https://grafana.example/".into(),
            ..AlertingConfig::default()
        };
        let links = AlertLinks::from_config(&config);
        let mut a = alert("netwarden_interface_silent", AlertKind::SelfMonitoring);
        links.annotate(&mut a);
        assert_eq!(
            a.annotations["runbook_url"],
            "https://wiki.example/runbooks/NetwardenInterfaceSilent.md"
        );
        assert_eq!(
            a.annotations["dashboard_url"],
            "https://grafana.example/d/netwarden-health"
        );
    }

    #[test]
    fn a_rule_own_link_wins_and_an_empty_base_adds_none() {
        let config = AlertingConfig {
            grafana_url: String::new(),
            ..AlertingConfig::default()
        };
        let links = AlertLinks::from_config(&config);
        let mut a = alert("scan", AlertKind::Rule(RuleKind::PortScan));
        a.annotations
            .insert("runbook_url".into(), "https://wiki.example/scan".into());
        links.annotate(&mut a);
        assert_eq!(a.annotations["runbook_url"], "https://wiki.example/scan");
        assert!(!a.annotations.contains_key("dashboard_url"));
    }
}
