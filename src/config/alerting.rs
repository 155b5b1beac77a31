//! The `[alerting]` section: where alert transitions are delivered and how hard to try.
//!
//! Owns the serde schema of the delivery sinks (Alertmanager URLs, a generic webhook, a
//! JSON-lines log file), their queue and retry bounds, and the checks on them. Does not
//! own: the rules that raise alerts, or the runtime sinks (`crate::alert::sinks` builds
//! those from this section).
//!
//! Invariant after [`AlertingConfig::validate`] reports nothing: every URL is a plain
//! `http://` URL with a host, every bound is within its `limits` range.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::HumanDuration;

/// Caps on the alerting bounds, whatever the config says.
pub(crate) mod limits {
    /// Most Alertmanager URLs (each is a `sink` label value `alertmanager-<index>`).
    pub(crate) const MAX_ALERTMANAGERS: usize = 16;
    /// Largest queue (inbox or per sink), in alerts.
    pub(crate) const MAX_QUEUE: usize = 1_000_000;
    /// Most delivery attempts of one batch.
    pub(crate) const MAX_ATTEMPTS: u32 = 1_000;
}

/// Alert delivery.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// Alertmanager base URLs (`http://host:9093`, with an optional path prefix). Every
    /// alert goes to every URL, as Prometheus does, so an Alertmanager cluster deduplicates.
    pub alertmanager_urls: Vec<String>,
    /// How often a firing alert is re-sent to Alertmanager until it resolves. Its `endsAt`
    /// is set three intervals ahead, so Alertmanager resolves it if netwarden goes away.
    pub resend_interval: HumanDuration,
    /// Alerts waiting between the capture workers and the delivery thread. When full,
    /// workers drop the alert (never wait) and count it under `sink="router"`.
    pub inbox_size: usize,
    /// Alerts waiting per sink while its receiver is slow or down. When full, the new alert
    /// is dropped (`reason="queue_full"`).
    pub queue_size: usize,
    /// Time limit of one HTTP request, connection included.
    pub timeout: HumanDuration,
    /// Delay before the first retry; it doubles after each failure up to `max_backoff`,
    /// and each delay is drawn between half and all of that value (jitter).
    pub initial_backoff: HumanDuration,
    /// Longest delay between two attempts.
    pub max_backoff: HumanDuration,
    /// Attempts per batch before it is dropped (`reason="retries_exhausted"`).
    pub max_attempts: u32,
    /// On shutdown, how long queued alerts may still be delivered before they are dropped
    /// (`reason="shutdown"`).
    pub shutdown_grace: HumanDuration,
    /// Append-only JSON-lines log of every transition. Empty: no log file. A renamed or
    /// removed file is followed (the next line opens a new file at the path; SIGHUP reopens
    /// at once), and a line that does not fit whole is removed and counted as dropped.
    pub log_file: PathBuf,
    /// How long a restored alert waits for detection to confirm it after a restart; it
    /// must exceed the longest rule warmup + `for`. Firing alerts are kept in the state
    /// directory (`[daemon] state_directory`); after a restart each is re-sent to
    /// Alertmanager with its original `startsAt`, and if no worker reports it firing again
    /// within this time it is resolved.
    pub restore_grace: HumanDuration,
    /// A generic webhook receiving each transition as one JSON object.
    pub webhook: WebhookConfig,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        AlertingConfig {
            alertmanager_urls: Vec::new(),
            resend_interval: HumanDuration::secs(60),
            inbox_size: 4_096,
            queue_size: 10_000,
            timeout: HumanDuration::secs(10),
            initial_backoff: HumanDuration::millis(500),
            max_backoff: HumanDuration::secs(30),
            max_attempts: 20,
            shutdown_grace: HumanDuration::secs(5),
            log_file: PathBuf::new(),
            restore_grace: HumanDuration::secs(300),
            webhook: WebhookConfig::default(),
        }
    }
}

/// The generic webhook.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// `http://` URL receiving a POST per transition. Empty: no webhook.
    pub url: String,
}

impl AlertingConfig {
    /// Adds every problem of this section to `bad` as (dotted key, message).
    pub fn validate(&self, bad: &mut impl FnMut(&str, String)) {
        if self.alertmanager_urls.len() > limits::MAX_ALERTMANAGERS {
            bad(
                "alerting.alertmanager_urls",
                format!("at most {} URLs", limits::MAX_ALERTMANAGERS),
            );
        }
        for url in &self.alertmanager_urls {
            if let Err(msg) = check_http_url(url) {
                bad("alerting.alertmanager_urls", msg);
            }
        }
        if !self.webhook.url.is_empty()
            && let Err(msg) = check_http_url(&self.webhook.url)
        {
            bad("alerting.webhook.url", msg);
        }
        if self.resend_interval.0.as_secs() < 1 {
            bad("alerting.resend_interval", "must be at least 1s".to_owned());
        }
        for (key, size) in [
            ("inbox_size", self.inbox_size),
            ("queue_size", self.queue_size),
        ] {
            if !(1..=limits::MAX_QUEUE).contains(&size) {
                bad(
                    &format!("alerting.{key}"),
                    format!("must be 1 to {}, got {size}", limits::MAX_QUEUE),
                );
            }
        }
        for (key, d) in [
            ("timeout", self.timeout),
            ("initial_backoff", self.initial_backoff),
            ("max_backoff", self.max_backoff),
            ("restore_grace", self.restore_grace),
        ] {
            if d.0.is_zero() {
                bad(
                    &format!("alerting.{key}"),
                    "must be greater than zero".to_owned(),
                );
            }
        }
        if self.max_backoff < self.initial_backoff {
            bad(
                "alerting.max_backoff",
                "must not be shorter than initial_backoff".to_owned(),
            );
        }
        if !(1..=limits::MAX_ATTEMPTS).contains(&self.max_attempts) {
            bad(
                "alerting.max_attempts",
                format!("must be 1 to {}", limits::MAX_ATTEMPTS),
            );
        }
    }
}

/// Checks that `url` is an `http://` URL with a host. TLS is not built in: put a local
/// TLS-terminating proxy in front of a receiver that only speaks HTTPS.
fn check_http_url(url: &str) -> Result<(), String> {
    let parsed: hyper::Uri = url
        .parse()
        .map_err(|e| format!("`{url}` is not a valid URL ({e})"))?;
    if parsed.scheme_str() != Some("http") {
        return Err(format!(
            "`{url}`: only http:// URLs are supported (no TLS in this build)"
        ));
    }
    if parsed.host().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(c: &AlertingConfig) -> Vec<(String, String)> {
        let mut out = Vec::new();
        c.validate(&mut |k: &str, m: String| out.push((k.to_owned(), m)));
        out
    }

    #[test]
    fn defaults_are_valid() {
        assert!(problems(&AlertingConfig::default()).is_empty());
    }

    #[test]
    fn https_and_hostless_urls_are_refused() {
        let c = AlertingConfig {
            alertmanager_urls: vec![
                "https://am:9093".to_owned(),
                "http://127.0.0.1:9093".to_owned(),
                "/api".to_owned(),
            ],
            webhook: WebhookConfig {
                url: "ftp://x".to_owned(),
            },
            ..AlertingConfig::default()
        };
        let keys: Vec<String> = problems(&c).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "alerting.alertmanager_urls",
                "alerting.alertmanager_urls",
                "alerting.webhook.url"
            ]
        );
    }

    #[test]
    fn bounds_are_checked_together() {
        let c = AlertingConfig {
            queue_size: 0,
            max_attempts: 0,
            initial_backoff: HumanDuration::secs(10),
            max_backoff: HumanDuration::secs(1),
            ..AlertingConfig::default()
        };
        let keys: Vec<String> = problems(&c).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "alerting.queue_size",
                "alerting.max_backoff",
                "alerting.max_attempts"
            ]
        );
    }
}
