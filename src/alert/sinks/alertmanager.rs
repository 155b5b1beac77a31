//! The Alertmanager API v2 encoding of an [`Alert`].
//!
//! Owns the mapping from an alert transition to a postable alert (`POST /api/v2/alerts`
//! takes a JSON array of them): labels identify the alert (Alertmanager fingerprints on
//! them), annotations describe it, `startsAt`/`endsAt` carry its lifecycle. Does not own:
//! sending, batching or re-sending (`delivery`, `router`).
//!
//! Invariants: label names are always valid Prometheus label names (invalid extra labels
//! from a rule are skipped); the identifying labels set by netwarden win over a rule's
//! extra labels of the same name; `endsAt` of a firing alert lies in the future, so
//! Alertmanager resolves it by itself only if re-sends stop for three intervals.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;

use crate::alert::{Alert, AlertState};

/// How far ahead of a send a firing alert's `endsAt` is set, in re-send intervals.
const ENDS_AT_INTERVALS: u32 = 3;

/// The path appended to a configured Alertmanager base URL.
pub(crate) const API_PATH: &str = "/api/v2/alerts";

/// One element of the `POST /api/v2/alerts` body.
#[derive(Debug, Serialize)]
struct Postable {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "endsAt")]
    ends_at: String,
}

/// `Netwarden` followed by the rule name in CamelCase: `syn_flood` → `NetwardenSynFlood`.
/// Characters other than ASCII letters and digits separate words and are dropped.
pub fn alertname(rule: &str) -> String {
    let mut out = String::from("Netwarden");
    // Self-alert rules are already named `netwarden_…`.
    let rule = rule.strip_prefix("netwarden_").unwrap_or(rule);
    for word in rule.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    out
}

/// The postable alert for `alert`, sent at `now`, JSON-encoded (one array element).
pub(crate) fn encode(alert: &Alert, resend_interval: Duration, now: SystemTime) -> Bytes {
    let ends_at = match alert.state {
        AlertState::Firing => now + resend_interval * ENDS_AT_INTERVALS,
        AlertState::Resolved => epoch_time(alert.time),
    };
    let postable = Postable {
        labels: labels(alert),
        annotations: annotations(alert),
        starts_at: rfc3339(epoch_time(alert.started)),
        ends_at: rfc3339(ends_at),
    };
    // Maps of strings and strings only: serialization cannot fail.
    Bytes::from(serde_json::to_vec(&postable).unwrap_or_default())
}

fn labels(alert: &Alert) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = alert
        .labels
        .iter()
        .filter(|(name, _)| is_label_name(name))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut set = |k: &str, v: String| {
        labels.insert(k.to_owned(), v);
    };
    set("alertname", alertname(&alert.rule));
    set("rule", alert.rule.clone());
    set("kind", alert.kind.as_str().to_owned());
    set("severity", alert.severity.as_str().to_owned());
    if let Some(src) = alert.src {
        set("src", src.to_string());
    }
    if let Some(dst) = alert.dst {
        set("dst", dst.to_string());
    }
    if let Some(network) = &alert.network {
        set("network", network.clone());
    }
    if let Some(domain) = &alert.domain {
        set("domain", domain.clone());
    }
    if let Some(protocol) = &alert.protocol {
        set("protocol", protocol.clone());
    }
    labels
}

fn annotations(alert: &Alert) -> BTreeMap<String, String> {
    let mut out = alert.annotations.clone();
    out.insert("value".to_owned(), alert.value.to_string());
    out.insert("threshold".to_owned(), alert.threshold.to_string());
    if let Some(port) = alert.port {
        out.insert("port".to_owned(), port.to_string());
    }
    if !alert.contributors.is_empty() {
        let mut text = String::new();
        for (i, c) in alert.contributors.iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            let _ = write!(text, "{} {} ({})", c.kind, c.value, c.count);
        }
        out.insert("contributors".to_owned(), text);
    }
    out
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with the reserved `__`.
fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.starts_with("__")
}

/// Seconds since the epoch as a time; non-finite or negative values become the epoch.
fn epoch_time(secs: f64) -> SystemTime {
    UNIX_EPOCH + Duration::try_from_secs_f64(secs).unwrap_or_default()
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::alert::{AlertKind, Contributor, ContributorKind, Severity};
    use crate::vocabulary::RuleKind;

    fn alert(state: AlertState) -> Alert {
        Alert {
            rule: "syn_flood".into(),
            kind: AlertKind::Rule(RuleKind::SynFlood),
            severity: Severity::Critical,
            state,
            time: 1_700_000_100.0,
            started: 1_700_000_000.5,
            last_seen: 1_700_000_090.0,
            value: 12_000.0,
            threshold: 1_000.0,
            src: None,
            dst: Some("192.0.2.10".parse::<IpAddr>().unwrap()),
            network: Some("dmz".into()),
            domain: None,
            protocol: Some("tcp".into()),
            port: Some(443),
            contributors: vec![Contributor {
                kind: ContributorKind::Source,
                value: "198.51.100.7".into(),
                count: 900,
            }],
            labels: BTreeMap::from([
                ("team".into(), "noc".into()),
                ("severity".into(), "low".into()),
                ("bad-name".into(), "x".into()),
            ]),
            annotations: BTreeMap::from([("summary".into(), "SYN flood".into())]),
        }
    }

    #[test]
    fn alertname_is_camel_case_with_prefix() {
        assert_eq!(alertname("syn_flood"), "NetwardenSynFlood");
        assert_eq!(
            alertname("netwarden_interface_silent"),
            "NetwardenInterfaceSilent"
        );
        assert_eq!(alertname("dns-amp.v2"), "NetwardenDnsAmpV2");
        assert_eq!(alertname("portScan"), "NetwardenPortScan");
        assert_eq!(alertname("__x__"), "NetwardenX");
        assert_eq!(alertname(""), "Netwarden");
    }

    #[test]
    fn firing_alert_carries_identity_labels_and_future_ends_at() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let body = encode(&alert(AlertState::Firing), Duration::from_secs(60), now);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["labels"],
            serde_json::json!({
                "alertname": "NetwardenSynFlood", "rule": "syn_flood", "kind": "syn_flood",
                "severity": "critical", "dst": "192.0.2.10", "network": "dmz",
                "protocol": "tcp", "team": "noc"
            })
        );
        assert_eq!(v["annotations"]["summary"], "SYN flood");
        assert_eq!(v["annotations"]["port"], "443");
        assert_eq!(v["annotations"]["value"], "12000");
        assert_eq!(v["annotations"]["threshold"], "1000");
        assert_eq!(
            v["annotations"]["contributors"],
            "source 198.51.100.7 (900)"
        );
        assert_eq!(v["startsAt"], "2023-11-14T22:13:20.500Z");
        assert_eq!(v["endsAt"], "2027-01-15T08:03:00.000Z");
    }

    #[test]
    fn labels_tell_apart_what_the_key_tells_apart_and_nothing_else() {
        let labels = |a: &Alert| {
            let body = encode(a, Duration::from_secs(60), SystemTime::now());
            serde_json::from_slice::<serde_json::Value>(&body).unwrap()["labels"].clone()
        };
        let mut tunnel = alert(AlertState::Firing);
        tunnel.kind = AlertKind::Rule(RuleKind::DnsTunnel);
        tunnel.domain = Some("example.com".into());
        let mut other = tunnel.clone();
        other.domain = Some("example.org".into());
        assert_eq!(labels(&tunnel)["domain"], "example.com");
        assert_ne!(labels(&tunnel), labels(&other));
        // The port a sweep mostly probes describes it and may change while it fires.
        let mut moved = tunnel.clone();
        moved.port = Some(22);
        assert_eq!(labels(&tunnel), labels(&moved));
    }

    #[test]
    fn resolved_alert_ends_at_its_resolve_time() {
        let body = encode(
            &alert(AlertState::Resolved),
            Duration::from_secs(60),
            SystemTime::now(),
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["endsAt"], "2023-11-14T22:15:00.000Z");
    }
}
