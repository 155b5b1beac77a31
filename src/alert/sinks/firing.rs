//! The router's table of firing alerts: what is re-sent to Alertmanager, what is kept in
//! the state file, and which restored alerts still wait for detection to confirm them.
//!
//! Owns [`FiringTable`]: firing alerts by identity (rule and key fields), each either
//! confirmed (a worker reported it firing in this process) or restored (read from the
//! state file at start, with a deadline). When a worker reports a restored alert firing,
//! the table adopts it ([`Verdict::Adopted`]: no second `firing` anywhere); a restored
//! alert still unconfirmed at its deadline is taken out as a `resolved` transition for the
//! router to deliver ([`FiringTable::expire`]). Several sources (the workers, the
//! self-alert monitor) may report one alert: each is a holder, the first firing is the
//! one delivered, and the alert resolves only when the last holder has resolved it
//! ([`Verdict::Held`] for the others). A new alert that finds the table full is
//! [`Verdict::Untracked`]: delivered once, not kept. It also turns its alerts into the
//! `netwarden_alert_firing` series ([`FiringTable::series`]). Does not own: delivery
//! (`router`, which counts and marks untracked alerts), the file (`state`) or exporting
//! the series (`crate::telemetry`).
//!
//! Invariants: at most `capacity` alerts; an alert keeps the `started` of its first entry
//! through adoption and resolve, so Alertmanager sees one continuing alert; a tracked
//! alert is resolved only once no source holds it; every change sets the dirty flag,
//! which only a successful save clears.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use super::alertmanager::alertname;
use crate::alert::{Alert, AlertState};
use crate::telemetry::FiringSeries;
use crate::telemetry::firing_board::LABELS;

/// What the router does with a transition once the table has recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A transition to deliver to every sink.
    Deliver,
    /// Detection confirmed a restored alert: it already fired before the restart, so only
    /// Alertmanager gets the fresh record.
    Adopted,
    /// Another source still holds the alert: its firing was already delivered, and it is
    /// not resolved yet. Nothing to deliver.
    Held,
    /// A new firing alert the full table cannot keep: delivered once, never re-sent or
    /// saved. The router counts it and says so in the alert.
    Untracked,
}

/// Which reporter (a worker's or the self-alert monitor's output) sent a transition.
pub(crate) type Source = u32;

/// One firing alert.
#[derive(Debug)]
struct Entry {
    alert: Alert,
    /// Restored and not yet confirmed: resolved at this instant unless confirmed first.
    confirm_by: Option<Instant>,
    /// The sources that report it firing (empty for a restored one).
    holders: Vec<Source>,
}

/// Firing alerts by identity.
#[derive(Debug)]
pub(crate) struct FiringTable {
    entries: HashMap<String, Entry>,
    capacity: usize,
    dirty: bool,
}

impl FiringTable {
    /// An empty table of at most `capacity` alerts.
    pub(crate) fn new(capacity: usize) -> FiringTable {
        FiringTable {
            entries: HashMap::new(),
            capacity,
            dirty: false,
        }
    }

    /// Adds the alerts of the last run as restored, unconfirmed until `confirm_by`;
    /// returns how many were taken (firing ones, within capacity, first of each identity).
    pub(crate) fn restore(
        &mut self,
        alerts: Vec<Alert>,
        confirm_by: Instant,
        identity: impl Fn(&Alert) -> String,
    ) -> usize {
        let mut taken = 0;
        for alert in alerts {
            if alert.state != AlertState::Firing || self.entries.len() >= self.capacity {
                continue;
            }
            let key = identity(&alert);
            if self.entries.contains_key(&key) {
                continue;
            }
            self.entries.insert(
                key,
                Entry {
                    alert,
                    confirm_by: Some(confirm_by),
                    holders: Vec::new(),
                },
            );
            taken += 1;
        }
        taken
    }

    /// Records a transition from `source`, giving it the `started` of the alert already
    /// firing under `key`, if any.
    pub(crate) fn record(&mut self, key: &str, source: Source, alert: &mut Alert) -> Verdict {
        match alert.state {
            AlertState::Firing => self.record_firing(key, source, alert),
            AlertState::Resolved => {
                let Some(entry) = self.entries.get_mut(key) else {
                    return Verdict::Deliver;
                };
                entry.holders.retain(|&h| h != source);
                if !entry.holders.is_empty() {
                    return Verdict::Held;
                }
                alert.started = entry.alert.started;
                self.entries.remove(key);
                self.dirty = true;
                Verdict::Deliver
            }
        }
    }

    fn record_firing(&mut self, key: &str, source: Source, alert: &mut Alert) -> Verdict {
        if let Some(entry) = self.entries.get_mut(key) {
            alert.started = entry.alert.started;
            let restored = entry.confirm_by.take().is_some();
            let joined = !restored && !entry.holders.contains(&source);
            if !entry.holders.contains(&source) {
                entry.holders.push(source);
            }
            entry.alert = alert.clone();
            self.dirty = true;
            return if restored {
                Verdict::Adopted
            } else if joined {
                Verdict::Held
            } else {
                Verdict::Deliver
            };
        }
        if self.entries.len() < self.capacity {
            let entry = Entry {
                alert: alert.clone(),
                confirm_by: None,
                holders: vec![source],
            };
            self.entries.insert(key.to_owned(), entry);
            self.dirty = true;
            Verdict::Deliver
        } else {
            Verdict::Untracked
        }
    }

    /// Most alerts the table keeps.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Takes out the restored alerts not confirmed by `now`, as `resolved` transitions at
    /// `wall` (seconds since the epoch: detection's packet clock is not known here), in
    /// identity order.
    pub(crate) fn expire(&mut self, now: Instant, wall: f64) -> Vec<Alert> {
        let mut due: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.confirm_by.is_some_and(|by| by <= now))
            .map(|(k, _)| k.clone())
            .collect();
        due.sort_unstable();
        self.dirty |= !due.is_empty();
        due.into_iter()
            .filter_map(|key| self.entries.remove(&key))
            .map(|entry| {
                let mut alert = entry.alert;
                alert.state = AlertState::Resolved;
                alert.time = wall;
                alert
            })
            .collect()
    }

    /// Every firing alert with its identity, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Alert)> {
        self.entries.iter().map(|(k, e)| (k, &e.alert))
    }

    /// Every firing alert as a `netwarden_alert_firing` series, in no particular order;
    /// `network_of` names the protected network of an address.
    pub(crate) fn series(
        &self,
        network_of: impl Fn(IpAddr) -> Option<String>,
    ) -> Vec<FiringSeries> {
        (self.entries.values())
            .map(|e| series(&e.alert, &network_of))
            .collect()
    }

    /// Every firing alert, in identity order (what the state file holds).
    pub(crate) fn alerts(&self) -> Vec<&Alert> {
        let mut entries: Vec<_> = self.entries.iter().collect();
        entries.sort_unstable_by_key(|(k, _)| *k);
        entries.into_iter().map(|(_, e)| &e.alert).collect()
    }

    /// Whether the table changed since the last [`Self::mark_saved`].
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The current table has been saved.
    pub(crate) fn mark_saved(&mut self) {
        self.dirty = false;
    }
}

/// The series of one firing alert: its fields, then the [`LABELS`] it carries as extra
/// labels (asset labels, a self-alert's subject). Its `network` is the protected network
/// of its victim, else of its source (as `netwarden_network_packets_total` names it, so
/// one dashboard variable selects both), else the alert's own (a network-keyed alert).
fn series(a: &Alert, network_of: &dyn Fn(IpAddr) -> Option<String>) -> FiringSeries {
    let network = (a.dst.and_then(network_of))
        .or_else(|| a.src.and_then(network_of))
        .or_else(|| a.network.clone());
    let fields = [
        Some(alertname(&a.rule)),
        Some(a.rule.clone()),
        Some(a.kind.as_str().to_owned()),
        Some(a.severity.as_str().to_owned()),
        a.src.map(|ip| ip.to_string()),
        a.dst.map(|ip| ip.to_string()),
        network,
        a.domain.clone(),
        a.protocol.clone(),
    ];
    let labels = std::array::from_fn(|i| match fields.get(i) {
        Some(field) => field.clone().unwrap_or_default(),
        None => LABELS
            .get(i)
            .and_then(|name| a.labels.get(*name))
            .cloned()
            .unwrap_or_default(),
    });
    FiringSeries {
        labels,
        severity: a.severity,
        started: a.started,
        value: a.value,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::alert::{AlertKind, Severity};
    use crate::vocabulary::RuleKind;

    fn alert(dst: &str, state: AlertState, started: f64) -> Alert {
        Alert {
            severity: Severity::Critical,
            state,
            time: started + 1.0,
            started,
            last_seen: started + 1.0,
            value: 5_000.0,
            threshold: 1_000.0,
            dst: Some(dst.parse().unwrap()),
            ..Alert::new("syn_flood", AlertKind::Rule(RuleKind::SynFlood))
        }
    }

    fn key(a: &Alert) -> String {
        format!("{}|{:?}", a.rule, a.dst)
    }

    #[test]
    fn confirmed_restored_alert_is_adopted_once_with_its_original_start() {
        let mut t = FiringTable::new(10);
        let now = Instant::now();
        let old = alert("192.0.2.1", AlertState::Firing, 100.0);
        assert_eq!(t.restore(vec![old.clone()], now, key), 1);
        assert!(!t.is_dirty(), "restoring changes nothing on disk");

        let mut again = alert("192.0.2.1", AlertState::Firing, 500.0);
        assert_eq!(t.record(&key(&again), 1, &mut again), Verdict::Adopted);
        assert!((again.started - 100.0).abs() < f64::EPSILON);
        assert!(t.is_dirty());
        // Confirmed: nothing expires.
        assert!(t.expire(now + Duration::from_secs(3600), 9e9).is_empty());
        let mut resolved = alert("192.0.2.1", AlertState::Resolved, 500.0);
        assert_eq!(
            t.record(&key(&resolved), 1, &mut resolved),
            Verdict::Deliver
        );
        assert!((resolved.started - 100.0).abs() < f64::EPSILON);
        assert_eq!(t.iter().count(), 0);
    }

    #[test]
    fn an_alert_several_sources_fire_resolves_when_the_last_one_resolves_it() {
        let mut t = FiringTable::new(10);
        let mut first = alert("192.0.2.1", AlertState::Firing, 100.0);
        assert_eq!(t.record(&key(&first), 1, &mut first), Verdict::Deliver);
        // A second worker sees the same flood: no second firing.
        let mut second = alert("192.0.2.1", AlertState::Firing, 104.0);
        assert_eq!(t.record(&key(&second), 2, &mut second), Verdict::Held);
        assert!((second.started - 100.0).abs() < f64::EPSILON);
        // The first resolves while the second still fires: the alert stays firing.
        let mut gone = alert("192.0.2.1", AlertState::Resolved, 100.0);
        assert_eq!(t.record(&key(&gone), 1, &mut gone), Verdict::Held);
        assert_eq!(t.alerts().len(), 1);
        // The first fires again: it joins, nothing is delivered twice.
        let mut back = alert("192.0.2.1", AlertState::Firing, 120.0);
        assert_eq!(t.record(&key(&back), 1, &mut back), Verdict::Held);
        for source in [2, 1] {
            let mut resolved = alert("192.0.2.1", AlertState::Resolved, 100.0);
            let last = source == 1;
            let verdict = t.record(&key(&resolved), source, &mut resolved);
            assert_eq!(verdict == Verdict::Deliver, last, "source {source}");
        }
        assert_eq!(t.iter().count(), 0);
    }

    #[test]
    fn unconfirmed_restored_alert_resolves_at_its_deadline_only() {
        let mut t = FiringTable::new(10);
        let now = Instant::now();
        let grace = Duration::from_secs(300);
        t.restore(
            vec![
                alert("192.0.2.2", AlertState::Firing, 100.0),
                alert("192.0.2.1", AlertState::Firing, 100.0),
            ],
            now + grace,
            key,
        );
        assert!(t.expire(now + grace / 2, 1e9).is_empty());
        let gone = t.expire(now + grace, 2e9);
        let dsts: Vec<String> = gone.iter().map(|a| a.dst.unwrap().to_string()).collect();
        assert_eq!(dsts, ["192.0.2.1", "192.0.2.2"]);
        for a in &gone {
            assert_eq!(a.state, AlertState::Resolved);
            assert!((a.time - 2e9).abs() < 1.0);
            assert!((a.started - 100.0).abs() < f64::EPSILON);
        }
        assert_eq!(t.iter().count(), 0);
        assert!(t.is_dirty());
    }

    #[test]
    fn restore_skips_resolved_duplicates_and_overflow() {
        let mut t = FiringTable::new(2);
        let now = Instant::now();
        let taken = t.restore(
            vec![
                alert("192.0.2.1", AlertState::Resolved, 1.0),
                alert("192.0.2.2", AlertState::Firing, 1.0),
                alert("192.0.2.2", AlertState::Firing, 2.0),
                alert("192.0.2.3", AlertState::Firing, 1.0),
                alert("192.0.2.4", AlertState::Firing, 1.0),
            ],
            now,
            key,
        );
        assert_eq!(taken, 2);
        let mut extra = alert("192.0.2.5", AlertState::Firing, 1.0);
        assert_eq!(t.record(&key(&extra), 1, &mut extra), Verdict::Untracked);
        assert_eq!(t.alerts().len(), 2, "full: delivered, not kept");
    }

    #[test]
    fn new_alerts_are_tracked_in_identity_order_and_saving_clears_dirty() {
        let mut t = FiringTable::new(10);
        for dst in ["192.0.2.9", "192.0.2.3"] {
            let mut a = alert(dst, AlertState::Firing, 1.0);
            assert_eq!(t.record(&key(&a), 1, &mut a), Verdict::Deliver);
        }
        assert!(t.is_dirty());
        let dsts: Vec<String> = t
            .alerts()
            .iter()
            .map(|a| a.dst.unwrap().to_string())
            .collect();
        assert_eq!(dsts, ["192.0.2.3", "192.0.2.9"]);
        t.mark_saved();
        assert!(!t.is_dirty());
        let mut unknown = alert("192.0.2.7", AlertState::Resolved, 1.0);
        t.record(&key(&unknown), 1, &mut unknown);
        assert!(!t.is_dirty(), "resolving an unknown alert changes nothing");
    }
}
