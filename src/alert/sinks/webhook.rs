//! The generic webhook encoding: the [`Alert`] record itself, as JSON.
//!
//! Owns only the body; the webhook gets the same queue, retry and drop accounting as an
//! Alertmanager (`delivery`), one POST per transition, so a receiver sees each firing and
//! each resolve exactly once when it acknowledges with a 2xx.

use bytes::Bytes;

use crate::alert::Alert;

/// The JSON body for one transition (the serde form of [`Alert`]).
pub(crate) fn encode(alert: &Alert) -> Bytes {
    // Strings, numbers (non-finite ones become null) and maps: serialization cannot fail.
    Bytes::from(serde_json::to_vec(alert).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::alert::{AlertKind, AlertState, Contributor, ContributorKind, Severity};
    use crate::vocabulary::RuleKind;

    #[test]
    fn contributors_and_domain_travel_as_structured_json() {
        let alert = Alert {
            rule: "dns_tunnel".into(),
            kind: AlertKind::Rule(RuleKind::DnsTunnel),
            severity: Severity::Warning,
            state: AlertState::Firing,
            time: 2.0,
            started: 1.0,
            last_seen: 2.0,
            value: 40.0,
            threshold: 3.0,
            src: Some("10.0.0.7".parse().unwrap()),
            dst: None,
            network: None,
            domain: Some("x\\010y.com".into()),
            protocol: None,
            port: None,
            contributors: vec![Contributor {
                kind: ContributorKind::Domain,
                value: "x\\010y.com".into(),
                count: 40,
            }],
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        };
        let v: serde_json::Value = serde_json::from_slice(&encode(&alert)).unwrap();
        assert_eq!(v["domain"], "x\\010y.com");
        assert_eq!(
            v["contributors"],
            serde_json::json!([{"kind": "domain", "value": "x\\010y.com", "count": 40}])
        );
    }
}
