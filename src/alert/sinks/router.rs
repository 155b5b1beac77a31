//! The alert router: the `nw-alert` thread that takes alerts from the workers and feeds
//! every sink.
//!
//! Owns [`AlertRouter`] (the thread, its current-thread tokio runtime, start-up and
//! draining shutdown), [`RouterHandle`] (the workers' non-blocking [`AlertOutput`]) and
//! [`RouterSettings`] (the runtime form of `[alerting]`). For each transition the router
//! logs one tracing line (warn when firing, info when resolved), appends it to the log
//! file, and queues it for the webhook and for every Alertmanager; it keeps firing alerts
//! to re-send them to Alertmanager every `resend_interval` until they resolve.
//!
//! Invariants: workers never wait on the router (a full inbox drops and counts, `sink=
//! "router"`); the firing table holds at most `queue_size` alerts; shutdown ends within
//! the grace period plus one request timeout at most, counting whatever was left.

use std::collections::HashMap;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use prometheus::IntCounter;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::alertmanager::{self, API_PATH};
use super::delivery::{self, Framing, Inlet, Settings};
use super::http::Target;
use super::log_file::LogFile;
use super::retry::Backoff;
use super::webhook;
use crate::alert::{Alert, AlertOutput, AlertState};
use crate::config::AlertingConfig;
use crate::telemetry::AlertMetrics;

/// Most alerts in one Alertmanager request, as Prometheus batches them.
const ALERTMANAGER_BATCH: usize = 64;

/// Why the router could not start.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// A configured URL cannot be used (validation normally catches this first).
    #[error("alerting URL `{url}` is not a usable http:// URL")]
    Url {
        /// The URL as configured.
        url: String,
    },
    /// The thread or its runtime could not be created.
    #[error("starting the alert router thread")]
    Start(#[source] std::io::Error),
}

/// The runtime form of `[alerting]`.
#[derive(Clone, Debug)]
pub struct RouterSettings {
    /// Alertmanager endpoints (`…/api/v2/alerts`), in config order.
    alertmanagers: Vec<Target>,
    /// The webhook, if any.
    webhook: Option<Target>,
    /// The JSON-lines log, if any.
    log_file: Option<PathBuf>,
    /// Re-send period of firing alerts to Alertmanager.
    resend_interval: Duration,
    /// Capacity of the inbox from the workers.
    inbox_size: usize,
    /// Capacity of each sink queue, and of the firing table.
    queue_size: usize,
    /// Time limit of one request.
    timeout: Duration,
    /// Retry delays.
    backoff: Backoff,
    /// Attempts per batch.
    max_attempts: u32,
    /// How long queued alerts may still be delivered at shutdown.
    shutdown_grace: Duration,
}

impl RouterSettings {
    /// Builds the runtime settings from a validated config.
    ///
    /// # Errors
    /// A URL that is not a usable `http://` URL.
    pub fn from_config(c: &AlertingConfig) -> Result<RouterSettings, RouterError> {
        let target = |url: &str| -> Result<Target, RouterError> {
            let bad = || RouterError::Url {
                url: url.to_owned(),
            };
            let uri: hyper::Uri = url.parse().map_err(|_| bad())?;
            Target::new(&uri).ok_or_else(bad)
        };
        let alertmanagers = c
            .alertmanager_urls
            .iter()
            .map(|u| target(&format!("{}{API_PATH}", u.trim_end_matches('/'))))
            .collect::<Result<_, _>>()?;
        let webhook = match c.webhook.url.as_str() {
            "" => None,
            url => Some(target(url)?),
        };
        Ok(RouterSettings {
            alertmanagers,
            webhook,
            log_file: (!c.log_file.as_os_str().is_empty()).then(|| c.log_file.clone()),
            resend_interval: c.resend_interval.0,
            inbox_size: c.inbox_size,
            queue_size: c.queue_size,
            timeout: c.timeout.0,
            backoff: Backoff {
                initial: c.initial_backoff.0,
                max: c.max_backoff.0,
            },
            max_attempts: c.max_attempts,
            shutdown_grace: c.shutdown_grace.0,
        })
    }

    fn delivery(&self, target: &Target, framing: Framing) -> Settings {
        Settings {
            target: target.clone(),
            framing,
            capacity: self.queue_size,
            timeout: self.timeout,
            backoff: self.backoff,
            max_attempts: self.max_attempts,
        }
    }
}

/// The workers' end of the router: cheap to clone, never blocks.
#[derive(Clone)]
pub struct RouterHandle {
    inbox: mpsc::Sender<Alert>,
    full: IntCounter,
    closed: IntCounter,
}

impl RouterHandle {
    /// A boxed [`AlertOutput`] for one pipeline.
    pub fn alert_output(&self) -> Box<dyn AlertOutput> {
        Box::new(self.clone())
    }
}

impl AlertOutput for RouterHandle {
    fn emit(&mut self, alert: Alert) {
        match self.inbox.try_send(alert) {
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
        let router = Router {
            alertmanagers,
            webhook,
            log_file: settings
                .log_file
                .as_ref()
                .map(|p| LogFile::new(p, metrics.sink("log_file"))),
            firing: HashMap::new(),
            settings,
        };
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
    firing: HashMap<String, Alert>,
    settings: RouterSettings,
}

impl Router {
    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<Alert>,
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
        loop {
            tokio::select! {
                alert = inbox.recv() => match alert {
                    Some(alert) => self.route(alert),
                    None => break,
                },
                _ = resend.tick() => self.resend(),
                _ = &mut stopped => break,
            }
        }
        inbox.close();
        while let Ok(alert) = inbox.try_recv() {
            self.route(alert);
        }
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

    fn route(&mut self, alert: Alert) {
        log(&alert);
        if let Some(log_file) = &mut self.log_file {
            log_file.write(&alert);
        }
        if let Some(webhook) = &self.webhook {
            webhook.push(None, webhook::encode(&alert));
        }
        if self.alertmanagers.is_empty() {
            return;
        }
        let key = identity(&alert);
        let body = alertmanager::encode(&alert, self.settings.resend_interval, SystemTime::now());
        for am in &self.alertmanagers {
            am.push(Some(key.clone()), body.clone());
        }
        match alert.state {
            AlertState::Resolved => {
                self.firing.remove(&key);
            }
            AlertState::Firing => {
                if self.firing.len() < self.settings.queue_size || self.firing.contains_key(&key) {
                    self.firing.insert(key, alert);
                } else {
                    tracing::warn!(
                        rule = %alert.rule,
                        "Too many firing alerts to re-send them all; this one is sent once."
                    );
                }
            }
        }
    }

    fn resend(&self) {
        let now = SystemTime::now();
        for (key, alert) in &self.firing {
            let body = alertmanager::encode(alert, self.settings.resend_interval, now);
            for am in &self.alertmanagers {
                am.push(Some(key.clone()), body.clone());
            }
        }
    }
}

/// The identity of an alert: rule and key fields (what Alertmanager's labels fingerprint).
fn identity(a: &Alert) -> String {
    format!(
        "{}|{:?}|{:?}|{:?}|{:?}|{:?}",
        a.rule, a.src, a.dst, a.network, a.protocol, a.port
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
    use std::collections::BTreeMap;

    use super::*;
    use crate::alert::Severity;
    use crate::telemetry::Metrics;

    fn alert(rule: &str) -> Alert {
        Alert {
            rule: rule.into(),
            kind: "volume".into(),
            severity: Severity::Warning,
            state: AlertState::Firing,
            time: 1.0,
            started: 1.0,
            last_seen: 1.0,
            value: 2.0,
            threshold: 1.0,
            src: None,
            dst: None,
            network: None,
            protocol: None,
            port: None,
            contributors: Vec::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn a_full_inbox_drops_and_counts_without_waiting() {
        let metrics = Metrics::new(&[], 10).unwrap();
        let (tx, mut rx) = mpsc::channel(2);
        let handle = RouterHandle {
            inbox: tx,
            full: metrics.alerts.dropped("router", "queue_full"),
            closed: metrics.alerts.dropped("router", "shutdown"),
        };
        let mut out = handle.alert_output();
        for i in 0..5 {
            out.emit(alert(&format!("r{i}")));
        }
        assert_eq!(handle.full.get(), 3);
        assert_eq!(rx.try_recv().unwrap().rule, "r0");
        assert_eq!(rx.try_recv().unwrap().rule, "r1");
        rx.close();
        out.emit(alert("late"));
        assert_eq!(handle.closed.get(), 1);
    }

    #[test]
    fn identity_tells_keys_apart_and_ignores_values() {
        let a = alert("syn_flood");
        let mut b = a.clone();
        b.value = 99.0;
        b.state = AlertState::Resolved;
        assert_eq!(identity(&a), identity(&b));
        b.dst = Some("192.0.2.1".parse().unwrap());
        assert_ne!(identity(&a), identity(&b));
    }
}
