//! The alert router: the `nw-alert` thread that takes alerts from the workers and feeds
//! every sink.
//!
//! Owns [`AlertRouter`] (the thread, its current-thread tokio runtime, start-up and
//! draining shutdown) and [`RouterHandle`] (the workers' non-blocking [`AlertOutput`]),
//! run by [`RouterSettings`] (`settings`). For each transition the router adds its
//! runbook and dashboard links (`crate::alert::links`), logs one tracing line (warn when firing, info when resolved), appends it to the log
//! file (reopened on SIGHUP), and queues it for the webhook and for every Alertmanager;
//! it keeps firing alerts (`firing`) to re-send them to Alertmanager every
//! `resend_interval` until they resolve, and publishes them as `netwarden_alert_firing`
//! (`crate::telemetry::FiringBoard`) once a second when they changed.
//!
//! Restarts: with a state directory, the firing table is saved to
//! `alerts.json` (`state`) at most once a second when it changed, and at shutdown. At
//! start the saved alerts are restored: re-sent to Alertmanager at once with their
//! original `startsAt`, then adopted silently when a worker reports them firing again, or
//! resolved (to every sink) if none does within `restore_grace`.
//!
//! Invariants: workers never wait on the router (a full inbox drops and counts, `sink=
//! "router"`); the firing table holds at most `queue_size` alerts; a restored alert never
//! produces a second `firing` in the log, the log file or the webhook; shutdown ends within
//! the grace period plus one request timeout at most, counting whatever was left.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use prometheus::IntCounter;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::alertmanager;
use super::delivery::{self, Framing, Inlet};
use super::firing::{FiringTable, Source, Verdict};
use super::log_file::LogFile;
use super::settings::{RouterError, RouterSettings};
use super::state::StateFile;
use super::webhook;
use crate::alert::{Alert, AlertOutput, AlertState};
use crate::telemetry::{AlertMetrics, FiringBoard};
use crate::timestamp::Timestamp;

/// Most alerts in one Alertmanager request, as Prometheus batches them.
const ALERTMANAGER_BATCH: usize = 64;

/// The annotation of a firing alert the full firing table could not keep.
pub const UNTRACKED_ANNOTATION: &str = "not_resent";

/// How often restored alerts are checked against their grace and the firing table is
/// saved when it changed: a bound on state-file writes, and on how late a restored alert
/// may resolve after its grace.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(1);

/// The workers' end of the router: cheap to clone, never blocks.
#[derive(Clone)]
pub struct RouterHandle {
    inbox: mpsc::Sender<(Source, Alert)>,
    /// Who sends through this handle: each [`Self::alert_output`] is a source of its own,
    /// so an alert several of them fire resolves only when all of them resolved it.
    source: Source,
    /// The last source handed out.
    sources: Arc<AtomicU32>,
    full: IntCounter,
    closed: IntCounter,
}

impl RouterHandle {
    /// A boxed [`AlertOutput`] for one pipeline (or the self-alert monitor): a new source.
    pub fn alert_output(&self) -> Box<dyn AlertOutput> {
        let mut output = self.clone();
        output.source = self.sources.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        Box::new(output)
    }
}

impl AlertOutput for RouterHandle {
    fn emit(&mut self, alert: Alert) {
        match self.inbox.try_send((self.source, alert)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.full.inc(),
            Err(mpsc::error::TrySendError::Closed(_)) => self.closed.inc(),
        }
    }
}

/// The running router thread. Dropping it shuts it down (draining, see [`Self::shutdown`]).
pub struct AlertRouter {
    handle: RouterHandle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<u64>>,
}

impl AlertRouter {
    /// Starts the `nw-alert` thread with a sink per configured destination.
    ///
    /// # Errors
    /// The runtime or the thread cannot be created.
    pub fn start(
        settings: RouterSettings,
        metrics: &AlertMetrics,
    ) -> Result<AlertRouter, RouterError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(RouterError::Start)?;
        let (tx, inbox) = mpsc::channel(settings.inbox_size);
        let (stop, stopped) = oneshot::channel();
        let handle = RouterHandle {
            inbox: tx,
            source: 0,
            sources: Arc::new(AtomicU32::new(0)),
            full: metrics.dropped("router", "queue_full"),
            closed: metrics.dropped("router", "shutdown"),
        };
        let mut senders = Vec::new();
        let mut alertmanagers = Vec::new();
        for (i, target) in settings.alertmanagers.iter().enumerate() {
            let (inlet, sender) = delivery::channel(
                settings.delivery(target, Framing::Array(ALERTMANAGER_BATCH)),
                metrics.sink(&format!("alertmanager-{i}")),
            );
            alertmanagers.push(inlet);
            senders.push(sender);
        }
        let webhook = settings.webhook.as_ref().map(|target| {
            let (inlet, sender) = delivery::channel(
                settings.delivery(target, Framing::Single),
                metrics.sink("webhook"),
            );
            senders.push(sender);
            inlet
        });
        let (firing, state) = restore(&settings);
        let router = Router {
            alertmanagers,
            webhook,
            log_file: settings
                .log_file
                .as_ref()
                .map(|p| LogFile::new(p, metrics.sink("log_file"))),
            firing,
            state,
            settings,
            board: Arc::clone(&metrics.firing),
            // Restored alerts are firing too.
            board_stale: true,
            untracked: metrics.dropped("router", "firing_table_full"),
        };
        // Restored alerts reach Alertmanager before their previous endsAt can pass.
        router.resend();
        let thread = std::thread::Builder::new()
            .name("nw-alert".to_owned())
            .spawn(move || runtime.block_on(router.run(inbox, stopped, senders)))
            .map_err(RouterError::Start)?;
        Ok(AlertRouter {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The handle to give each pipeline.
    pub fn handle(&self) -> RouterHandle {
        self.handle.clone()
    }

    /// Stops taking alerts, handles those already in the inbox, lets the sinks deliver
    /// for up to the grace period, and returns how many alerts were dropped at the end.
    pub fn shutdown(mut self) -> u64 {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> u64 {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.thread.take().map_or(0, |t| {
            t.join().unwrap_or_else(|_| {
                tracing::error!("The alert router thread panicked.");
                0
            })
        })
    }
}

impl Drop for AlertRouter {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// The state of the `nw-alert` thread.
struct Router {
    alertmanagers: Vec<Inlet>,
    webhook: Option<Inlet>,
    log_file: Option<LogFile>,
    /// Firing alerts by identity, re-sent to Alertmanager until resolved.
    firing: FiringTable,
    /// Where the firing table is saved; `None`: not saved.
    state: Option<StateFile>,
    settings: RouterSettings,
    /// Where the firing table is exported as `netwarden_alert_firing`.
    board: Arc<FiringBoard>,
    /// The firing table changed since it was last published on the board.
    board_stale: bool,
    /// Firing alerts the full table could not keep
    /// (`netwarden_alerts_dropped_total{sink="router",reason="firing_table_full"}`).
    untracked: IntCounter,
}

impl Router {
    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<(Source, Alert)>,
        mut stopped: oneshot::Receiver<()>,
        senders: Vec<delivery::Sender>,
    ) -> u64 {
        let (drain_tx, drain_rx) = watch::channel(None);
        let tasks: Vec<_> = senders
            .into_iter()
            .map(|s| tokio::spawn(s.run(drain_rx.clone())))
            .collect();
        let period = self.settings.resend_interval;
        let mut resend = tokio::time::interval_at(Instant::now() + period, period);
        resend.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut housekeeping = tokio::time::interval_at(
            Instant::now() + HOUSEKEEPING_INTERVAL,
            HOUSEKEEPING_INTERVAL,
        );
        housekeeping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // SIGHUP reopens the log file (logrotate's postrotate); the daemon's reloader
        // hears the same signal. Only listened for when there is a file to reopen.
        let mut hangup = self.log_file.as_ref().and_then(|_| {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
        });
        loop {
            tokio::select! {
                alert = inbox.recv() => match alert {
                    Some((source, alert)) => self.route(source, alert),
                    None => break,
                },
                _ = resend.tick() => self.resend(),
                _ = housekeeping.tick() => self.housekeeping(),
                () = next_hangup(&mut hangup) => {
                    if let Some(log_file) = &mut self.log_file {
                        log_file.reopen();
                    }
                }
                _ = &mut stopped => break,
            }
        }
        inbox.close();
        while let Ok((source, alert)) = inbox.try_recv() {
            self.route(source, alert);
        }
        self.persist();
        let grace = self.settings.shutdown_grace;
        let _ = drain_tx.send(Some(Instant::now() + grace));
        let mut dropped = 0_u64;
        for task in tasks {
            dropped = dropped.saturating_add(task.await.unwrap_or(0));
        }
        if dropped == 0 {
            tracing::info!("Alert queues drained.");
        } else {
            tracing::warn!(
                dropped,
                ?grace,
                "Alerts still queued after the grace period were dropped."
            );
        }
        dropped
    }

    fn route(&mut self, source: Source, mut alert: Alert) {
        self.settings.links.annotate(&mut alert);
        let key = identity(&alert);
        self.board_stale = true;
        match self.firing.record(&key, source, &mut alert) {
            Verdict::Held => return,
            Verdict::Adopted => tracing::debug!(
                rule = %alert.rule,
                "Detection confirmed an alert restored from the last run."
            ),
            verdict @ (Verdict::Deliver | Verdict::Untracked) => {
                if verdict == Verdict::Untracked {
                    self.untrack(&mut alert);
                }
                log(&alert);
                if let Some(log_file) = &mut self.log_file {
                    log_file.write(&alert);
                }
                if let Some(webhook) = &self.webhook {
                    webhook.push(None, webhook::encode(&alert));
                }
            }
        }
        if !self.alertmanagers.is_empty() {
            let body =
                alertmanager::encode(&alert, self.settings.resend_interval, SystemTime::now());
            self.push_alertmanagers(&key, &body);
        }
    }

    /// Counts a firing alert the full table cannot keep and says so in it: Alertmanager
    /// will show it resolved at its `endsAt` even if it still fires.
    fn untrack(&self, alert: &mut Alert) {
        self.untracked.inc();
        let capacity = self.firing.capacity();
        tracing::warn!(
            rule = %alert.rule, capacity,
            "Too many firing alerts to re-send and keep them all; this one is sent once."
        );
        alert.annotations.insert(
            UNTRACKED_ANNOTATION.to_owned(),
            format!(
                "netwarden already keeps {capacity} firing alerts ([alerting] queue_size): \
                 this one is sent once and not re-sent, so Alertmanager will show it \
                 resolved after its endsAt even if the attack goes on"
            ),
        );
    }

    fn push_alertmanagers(&self, key: &str, body: &bytes::Bytes) {
        for am in &self.alertmanagers {
            am.push(Some(key.to_owned()), body.clone());
        }
    }

    fn resend(&self) {
        if self.alertmanagers.is_empty() {
            return;
        }
        let now = SystemTime::now();
        for (key, alert) in self.firing.iter() {
            let body = alertmanager::encode(alert, self.settings.resend_interval, now);
            self.push_alertmanagers(key, &body);
        }
    }

    /// Resolves restored alerts whose grace ended unconfirmed, then saves the table and
    /// publishes it on the board if it changed: once a second at most, however many
    /// transitions a flood of alerts brings.
    fn housekeeping(&mut self) {
        let wall = Timestamp::now().as_secs_f64();
        for alert in self.firing.expire(std::time::Instant::now(), wall) {
            tracing::info!(
                rule = %alert.rule,
                "An alert restored from the last run was not reported again within restore_grace; resolving it."
            );
            // Already out of the table: no holder to wait for.
            self.route(0, alert);
        }
        self.persist();
        if self.board_stale {
            let networks = self.settings.networks.as_deref();
            let network_of = |ip| {
                let networks = networks?;
                let index = networks.lookup(ip)?;
                networks.names().get(usize::from(index)).cloned()
            };
            self.board.publish(self.firing.series(network_of));
            self.board_stale = false;
        }
    }

    /// Saves the firing table if it changed since the last successful save.
    fn persist(&mut self) {
        if let Some(state) = &mut self.state
            && self.firing.is_dirty()
            && state.save(&self.firing.alerts())
        {
            self.firing.mark_saved();
        }
    }
}

/// Resolves at the next SIGHUP; never when not listening.
async fn next_hangup(hangup: &mut Option<tokio::signal::unix::Signal>) {
    let heard = match hangup {
        Some(signal) => signal.recv().await,
        None => None,
    };
    if heard.is_none() {
        std::future::pending::<()>().await;
    }
}

/// The firing table with the last run's alerts restored, and the state file to keep it in
/// (`None` when persistence is off or the directory is unusable).
fn restore(settings: &RouterSettings) -> (FiringTable, Option<StateFile>) {
    let mut firing = FiringTable::new(settings.queue_size);
    let state = settings.state_directory.clone().and_then(StateFile::open);
    if let Some(state) = &state {
        let confirm_by = std::time::Instant::now() + settings.restore_grace;
        let restored = firing.restore(state.load(), confirm_by, identity);
        if restored > 0 {
            tracing::info!(
                restored, grace = ?settings.restore_grace,
                "Restored firing alerts from the last run; each resolves unless detection reports it again within the grace."
            );
        }
    }
    (firing, state)
}

/// The identity of an alert: rule, every key field and extra labels, exactly what
/// Alertmanager's labels fingerprint (self-alerts carry their key, e.g. the interface, as
/// a label). Not the port: it describes the alert (the port a sweep mostly probes), it
/// does not tell two alerts apart, and it may change while the alert fires.
fn identity(a: &Alert) -> String {
    format!(
        "{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        a.rule, a.src, a.dst, a.network, a.domain, a.protocol, a.labels
    )
}

/// The tracing line of one transition.
fn log(a: &Alert) {
    let src = a.src.map(tracing::field::display);
    let dst = a.dst.map(tracing::field::display);
    match a.state {
        AlertState::Firing => tracing::warn!(
            rule = %a.rule, kind = %a.kind, severity = %a.severity.as_str(), src, dst,
            value = a.value, threshold = a.threshold, "Alert firing."
        ),
        AlertState::Resolved => tracing::info!(
            rule = %a.rule, kind = %a.kind, severity = %a.severity.as_str(), src, dst,
            value = a.value, threshold = a.threshold, "Alert resolved."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertKind;
    use crate::alert::sinks::StateDir;
    use crate::config::AlertingConfig;
    use crate::telemetry::Metrics;
    use crate::telemetry::firing_board::without_empty_labels;
    use crate::vocabulary::RuleKind;

    fn alert(rule: &str) -> Alert {
        Alert {
            time: 1.0,
            started: 1.0,
            last_seen: 1.0,
            value: 2.0,
            threshold: 1.0,
            ..Alert::new(rule, AlertKind::Rule(RuleKind::Volume))
        }
    }

    #[test]
    fn a_full_inbox_drops_and_counts_without_waiting() {
        let metrics = Metrics::new(&[], 10).unwrap();
        let (tx, mut rx) = mpsc::channel(2);
        let handle = RouterHandle {
            inbox: tx,
            source: 0,
            sources: Arc::new(AtomicU32::new(0)),
            full: metrics.alerts.dropped("router", "queue_full"),
            closed: metrics.alerts.dropped("router", "shutdown"),
        };
        let mut out = handle.alert_output();
        for i in 0..5 {
            out.emit(alert(&format!("r{i}")));
        }
        assert_eq!(handle.full.get(), 3);
        assert_eq!(rx.try_recv().unwrap().1.rule, "r0");
        assert_eq!(rx.try_recv().unwrap().1.rule, "r1");
        rx.close();
        out.emit(alert("late"));
        assert_eq!(handle.closed.get(), 1);
    }

    /// A router logging to `dir/alerts.jsonl` and keeping state in `dir/state`, adding no
    /// links (so alerts are saved and logged as emitted).
    fn router_in(dir: &std::path::Path, grace: Duration) -> AlertRouter {
        router_exporting(dir, grace, &Metrics::new(&[], 10).unwrap(), None)
    }

    /// The same, exporting its firing alerts to `metrics`, naming their protected
    /// networks from `networks`.
    fn router_exporting(
        dir: &std::path::Path,
        grace: Duration,
        metrics: &Metrics,
        networks: Option<Arc<crate::networks::NetworkSet>>,
    ) -> AlertRouter {
        let config = AlertingConfig {
            log_file: dir.join("alerts.jsonl"),
            restore_grace: crate::config::HumanDuration(grace),
            runbook_base_url: String::new(),
            grafana_url: String::new(),
            ..AlertingConfig::default()
        };
        let settings = RouterSettings::from_config(&config)
            .unwrap()
            .with_state_directory(Some(StateDir::open(&dir.join("state"), None).unwrap()));
        let settings = match networks {
            Some(networks) => settings.with_networks(networks),
            None => settings,
        };
        AlertRouter::start(settings, &metrics.alerts).unwrap()
    }

    /// The log file's lines as (state, started).
    fn logged(dir: &std::path::Path) -> Vec<(AlertState, f64)> {
        std::fs::read_to_string(dir.join("alerts.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Alert>(l).unwrap())
            .map(|a| (a.state, a.started))
            .collect()
    }

    /// The alerts in the state file.
    fn saved(dir: &std::path::Path) -> Vec<Alert> {
        let text = std::fs::read_to_string(dir.join("state/alerts.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        serde_json::from_value(v["alerts"].clone()).unwrap()
    }

    fn flood(started: f64) -> Alert {
        let mut a = alert("syn_flood");
        a.dst = Some("192.0.2.10".parse().unwrap());
        a.started = started;
        a.time = started + 1.0;
        a
    }

    #[test]
    fn firing_alert_survives_a_restart_without_firing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let first = router_in(dir.path(), Duration::from_secs(60));
        first.handle().alert_output().emit(flood(100.0));
        assert_eq!(first.shutdown(), 0);
        assert_eq!(saved(dir.path()), [flood(100.0)]);

        let second = router_in(dir.path(), Duration::from_secs(60));
        let mut worker = second.handle().alert_output();
        worker.emit(flood(500.0));
        let mut resolved = flood(500.0);
        resolved.state = AlertState::Resolved;
        resolved.time = 600.0;
        worker.emit(resolved);
        assert_eq!(second.shutdown(), 0);
        // One firing across both runs; the resolve keeps the first run's start.
        assert_eq!(
            logged(dir.path()),
            [(AlertState::Firing, 100.0), (AlertState::Resolved, 100.0)]
        );
        assert!(saved(dir.path()).is_empty());
    }

    #[test]
    fn restored_alert_not_confirmed_within_the_grace_resolves_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let first = router_in(dir.path(), Duration::from_secs(60));
        first.handle().alert_output().emit(flood(100.0));
        assert_eq!(first.shutdown(), 0);

        let second = router_in(dir.path(), Duration::from_millis(100));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while logged(dir.path()).len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(second.shutdown(), 0);
        assert_eq!(
            logged(dir.path()),
            [(AlertState::Firing, 100.0), (AlertState::Resolved, 100.0)]
        );
        assert!(saved(dir.path()).is_empty());
    }

    #[test]
    fn an_alert_two_workers_fire_resolves_only_when_both_resolved_it() {
        let dir = tempfile::tempdir().unwrap();
        let router = router_in(dir.path(), Duration::from_secs(60));
        let (mut one, mut two) = (
            router.handle().alert_output(),
            router.handle().alert_output(),
        );
        let resolved = |started: f64| {
            let mut a = flood(started);
            a.state = AlertState::Resolved;
            a
        };
        one.emit(flood(100.0));
        two.emit(flood(101.0));
        one.emit(resolved(100.0));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while logged(dir.path()).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Give the router the time to (wrongly) log more.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(logged(dir.path()), [(AlertState::Firing, 100.0)]);
        two.emit(resolved(101.0));
        assert_eq!(router.shutdown(), 0);
        assert_eq!(
            logged(dir.path()),
            [(AlertState::Firing, 100.0), (AlertState::Resolved, 100.0)]
        );
        assert!(saved(dir.path()).is_empty());
    }

    #[test]
    fn an_alert_two_workers_fire_is_one_firing_series_in_its_victims_network_until_both_resolved_it()
     {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new(&[], 10).unwrap();
        let config = "[[networks]]\nname = \"dmz\"\ncidrs = [\"192.0.2.0/24\"]\n";
        let config = crate::config::parse(config, std::path::Path::new("t.toml")).unwrap();
        let networks = Arc::new(crate::networks::NetworkSet::new(&config.networks));
        let router = router_exporting(
            dir.path(),
            Duration::from_secs(60),
            &metrics,
            Some(networks),
        );
        let (mut one, mut two) = (
            router.handle().alert_output(),
            router.handle().alert_output(),
        );
        let series = |metrics: &Metrics| -> Vec<String> {
            (metrics.render().lines())
                .filter(|l| l.starts_with("netwarden_alert_firing{"))
                .map(without_empty_labels)
                .collect()
        };
        let wait_until = |done: &dyn Fn() -> bool| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !done() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        one.emit(flood(100.0));
        two.emit(flood(101.0));
        wait_until(&|| !series(&metrics).is_empty());
        assert_eq!(
            series(&metrics),
            [
                "netwarden_alert_firing{alertname=\"NetwardenSynFlood\",dst=\"192.0.2.10\",kind=\"volume\",network=\"dmz\",rule=\"syn_flood\",severity=\"warning\"} 1"
            ]
        );
        let text = metrics.render();
        assert!(
            text.lines().map(without_empty_labels).any(|l| l == "netwarden_alert_started_timestamp_seconds{alertname=\"NetwardenSynFlood\",dst=\"192.0.2.10\",kind=\"volume\",network=\"dmz\",rule=\"syn_flood\",severity=\"warning\"} 100"),
            "the first start: {text}"
        );
        let mut resolved = flood(100.0);
        resolved.state = AlertState::Resolved;
        one.emit(resolved.clone());
        // Two housekeeping rounds: the one worker's resolve leaves the alert firing.
        std::thread::sleep(Duration::from_millis(2_200));
        assert_eq!(series(&metrics).len(), 1);
        two.emit(resolved);
        wait_until(&|| series(&metrics).is_empty());
        assert_eq!(series(&metrics), Vec::<String>::new());
        assert_eq!(router.shutdown(), 0);
    }

    #[test]
    fn a_firing_alert_the_full_table_cannot_keep_is_counted_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let config = AlertingConfig {
            log_file: dir.path().join("alerts.jsonl"),
            queue_size: 1,
            ..AlertingConfig::default()
        };
        let settings = RouterSettings::from_config(&config).unwrap();
        let metrics = Metrics::new(&[], 10).unwrap();
        let router = AlertRouter::start(settings, &metrics.alerts).unwrap();
        let mut worker = router.handle().alert_output();
        let mut other = flood(100.0);
        other.dst = Some("192.0.2.99".parse().unwrap());
        worker.emit(flood(100.0));
        worker.emit(other);
        assert_eq!(router.shutdown(), 0);
        let lines: Vec<Alert> = std::fs::read_to_string(dir.path().join("alerts.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert!(!lines[0].annotations.contains_key(UNTRACKED_ANNOTATION));
        let note = &lines[1].annotations[UNTRACKED_ANNOTATION];
        assert!(note.contains("not re-sent"), "{note}");
        let counted = metrics.alerts.dropped("router", "firing_table_full").get();
        assert_eq!(counted, 1);
    }

    #[test]
    fn delivered_alerts_carry_their_runbook_and_dashboard_links() {
        let dir = tempfile::tempdir().unwrap();
        let config = AlertingConfig {
            log_file: dir.path().join("alerts.jsonl"),
            ..AlertingConfig::default()
        };
        let metrics = Metrics::new(&[], 10).unwrap();
        let router = AlertRouter::start(
            RouterSettings::from_config(&config).unwrap(),
            &metrics.alerts,
        )
        .unwrap();
        router.handle().alert_output().emit(flood(100.0));
        assert_eq!(router.shutdown(), 0);
        let text = std::fs::read_to_string(dir.path().join("alerts.jsonl")).unwrap();
        let logged: Alert = serde_json::from_str(text.trim()).unwrap();
        // A detection links the runbook of its kind (volume), whatever the rule is called.
        assert!(logged.annotations["runbook_url"].ends_with("/runbooks/NetwardenVolume.md"));
        assert!(logged.annotations["dashboard_url"].ends_with("/d/netwarden-incident"));
    }

    #[test]
    fn corrupt_state_file_is_ignored_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("state")).unwrap();
        std::fs::write(dir.path().join("state/alerts.json"), "{not json").unwrap();
        let router = router_in(dir.path(), Duration::from_secs(60));
        router.handle().alert_output().emit(flood(100.0));
        assert_eq!(router.shutdown(), 0);
        assert_eq!(logged(dir.path()), [(AlertState::Firing, 100.0)]);
        assert_eq!(saved(dir.path()), [flood(100.0)]);
    }

    #[test]
    fn identity_tells_keys_apart_and_ignores_values() {
        let a = alert("syn_flood");
        let mut b = a.clone();
        b.value = 99.0;
        b.state = AlertState::Resolved;
        assert_eq!(identity(&a), identity(&b));
        // The port a sweep mostly probes may change while it fires: not part of it.
        b.port = Some(22);
        assert_eq!(identity(&a), identity(&b));
        b.dst = Some("192.0.2.1".parse().unwrap());
        assert_ne!(identity(&a), identity(&b));
        // One client tunnelling to two domains: two alerts.
        let mut tunnel = alert("dns_tunnel");
        tunnel.src = Some("10.0.0.7".parse().unwrap());
        tunnel.domain = Some("example.com".to_owned());
        let mut other = tunnel.clone();
        other.domain = Some("example.org".to_owned());
        assert_ne!(identity(&tunnel), identity(&other));
        // Two self-alerts of one rule differ only in their key label.
        let mut eth0 = alert("netwarden_interface_silent");
        eth0.labels
            .insert("interface".to_owned(), "eth0".to_owned());
        let mut eth1 = eth0.clone();
        eth1.labels
            .insert("interface".to_owned(), "eth1".to_owned());
        assert_ne!(identity(&eth0), identity(&eth1));
    }
}
