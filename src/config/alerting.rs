//! The `[alerting]` section: where alert transitions are delivered and how hard to try.
//!
//! Owns the serde schema of the delivery sinks (Alertmanager URLs, a generic webhook, a
//! JSON-lines log file), their queue and retry bounds, and the checks on them. Does not
//! own: the rules that raise alerts, or the runtime sinks (`crate::alert::sinks` builds
//! those from this section).
//!
//! Receivers are reached over `http://` or `https://`; the client settings follow
//! Prometheus's `alertmanager_config` (`tls_config`, `basic_auth`, `authorization`), once
//! for the Alertmanager URLs and once for the webhook. Secrets are only ever read from
//! files, never written in this file.
//!
//! Invariant after [`AlertingConfig::validate`] reports nothing: every receiver URL is an
//! `http://` or `https://` URL with a host and no credentials in it (they would travel in
//! the `Host` header); the link bases (`runbook_base_url`, `grafana_url`) are empty or a
//! `scheme://` URL of printable characters; each receiver has at most one of `basic_auth` and
//! `authorization`, each complete; every bound is within its `limits` range.

use std::path::{Path, PathBuf};

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
    /// TLS for `https://` Alertmanager URLs.
    pub tls_config: TlsClientConfig,
    /// HTTP basic authentication to the Alertmanagers.
    pub basic_auth: BasicAuthConfig,
    /// An `Authorization` header (e.g. a bearer token) to the Alertmanagers.
    pub authorization: AuthorizationConfig,
    /// A generic webhook receiving each transition as one JSON object.
    pub webhook: WebhookConfig,
    /// Where the runbooks are published: every delivered alert gets the annotation
    /// `runbook_url` = this base followed by `<alertname>.md` (a detection's alertname
    /// for its kind, see `crate::alert::links`). Empty: no `runbook_url`.
    pub runbook_base_url: String,
    /// Grafana's base URL: every delivered alert gets the annotation `dashboard_url`, the
    /// incident dashboard for detections, the daemon-health dashboard for self-alerts.
    /// Empty: no `dashboard_url`.
    pub grafana_url: String,
}

/// Default [`AlertingConfig::runbook_base_url`]: where the packages install the runbooks.
pub const DEFAULT_RUNBOOK_BASE_URL: &str = "file:///usr/share/doc/netwarden/runbooks/";

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
            tls_config: TlsClientConfig::default(),
            basic_auth: BasicAuthConfig::default(),
            authorization: AuthorizationConfig::default(),
            webhook: WebhookConfig::default(),
            runbook_base_url: DEFAULT_RUNBOOK_BASE_URL.to_owned(),
            grafana_url: "http://localhost:3000".to_owned(),
        }
    }
}

/// The generic webhook.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL receiving a POST per transition. Empty: no webhook.
    pub url: String,
    /// TLS for an `https://` webhook.
    pub tls_config: TlsClientConfig,
    /// HTTP basic authentication to the webhook.
    pub basic_auth: BasicAuthConfig,
    /// An `Authorization` header to the webhook.
    pub authorization: AuthorizationConfig,
}

/// How an `https://` receiver is trusted and how netwarden proves who it is (Prometheus's
/// `tls_config`). Relative paths are relative to the config file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsClientConfig {
    /// PEM file of the CA certificates the receiver's certificate must chain to. Empty:
    /// the system's CA certificates.
    pub ca_file: PathBuf,
    /// PEM file of a client certificate (mutual TLS); needs `key_file`.
    pub cert_file: PathBuf,
    /// PEM file of the client certificate's private key.
    pub key_file: PathBuf,
    /// Name the receiver's certificate must be valid for. Empty: the URL's host.
    pub server_name: String,
    /// Accept any certificate. Only for tests: anyone on the path can then read and
    /// change the alerts.
    pub insecure_skip_verify: bool,
}

/// HTTP basic authentication (Prometheus's `basic_auth`). The password is only ever read
/// from `password_file`, at every request (so it can be rotated without a restart).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuthConfig {
    /// User name. Empty: no basic authentication.
    pub username: String,
    /// File holding the password (surrounding whitespace is ignored), readable by the
    /// user netwarden runs as.
    pub password_file: PathBuf,
}

/// An `Authorization: <type> <credentials>` header (Prometheus's `authorization`). The
/// credentials are only ever read from `credentials_file`, at every request.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthorizationConfig {
    /// The scheme, `Bearer` unless another is needed (`Basic` is `basic_auth`'s job).
    #[serde(rename = "type")]
    pub kind: String,
    /// File holding the credentials (e.g. the bearer token). Empty: no header.
    pub credentials_file: PathBuf,
}

impl Default for AuthorizationConfig {
    fn default() -> Self {
        AuthorizationConfig {
            kind: "Bearer".to_owned(),
            credentials_file: PathBuf::new(),
        }
    }
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
        validate_client(
            "alerting",
            &self.tls_config,
            &self.basic_auth,
            &self.authorization,
            bad,
        );
        let w = &self.webhook;
        validate_client(
            "alerting.webhook",
            &w.tls_config,
            &w.basic_auth,
            &w.authorization,
            bad,
        );
        for (key, url) in [
            ("runbook_base_url", &self.runbook_base_url),
            ("grafana_url", &self.grafana_url),
        ] {
            if !url.is_empty() && !is_link(url) {
                bad(
                    &format!("alerting.{key}"),
                    "must be empty or a URL (scheme://…) of at most 512 printable characters"
                        .to_owned(),
                );
            }
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

    /// Makes the client files relative to `base` (the config file's folder).
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        for tls in [&mut self.tls_config, &mut self.webhook.tls_config] {
            for file in [&mut tls.ca_file, &mut tls.cert_file, &mut tls.key_file] {
                resolve(file, base);
            }
        }
        resolve(&mut self.basic_auth.password_file, base);
        resolve(&mut self.authorization.credentials_file, base);
        resolve(&mut self.webhook.basic_auth.password_file, base);
        resolve(&mut self.webhook.authorization.credentials_file, base);
    }
}

/// A URL fit for an annotation: `scheme://` then printable ASCII without spaces, short.
fn is_link(url: &str) -> bool {
    let scheme_ok = url.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    });
    scheme_ok && url.len() <= 512 && url.bytes().all(|b| b.is_ascii_graphic())
}

fn resolve(file: &mut PathBuf, base: &Path) {
    if !file.as_os_str().is_empty() {
        *file = base.join(&*file);
    }
}

/// Checks one receiver's client settings; `section` is the dotted table they are in.
fn validate_client(
    section: &str,
    tls: &TlsClientConfig,
    basic: &BasicAuthConfig,
    authorization: &AuthorizationConfig,
    bad: &mut impl FnMut(&str, String),
) {
    let empty = |p: &Path| p.as_os_str().is_empty();
    if !tls.server_name.is_empty()
        && rustls::pki_types::ServerName::try_from(tls.server_name.as_str()).is_err()
    {
        bad(
            &format!("{section}.tls_config.server_name"),
            format!("`{}` is not a DNS name or IP address", tls.server_name),
        );
    }
    if empty(&tls.cert_file) != empty(&tls.key_file) {
        bad(
            &format!("{section}.tls_config.cert_file"),
            "cert_file and key_file go together".to_owned(),
        );
    }
    if basic.username.is_empty() != empty(&basic.password_file) {
        bad(
            &format!("{section}.basic_auth.password_file"),
            "username and password_file go together (the password is never written inline)"
                .to_owned(),
        );
    }
    if basic.username.contains(':') {
        bad(
            &format!("{section}.basic_auth.username"),
            "must not contain `:`".to_owned(),
        );
    }
    let has_authorization = !empty(&authorization.credentials_file);
    if has_authorization && !basic.username.is_empty() {
        bad(
            &format!("{section}.authorization"),
            "set basic_auth or authorization, not both".to_owned(),
        );
    }
    let kind = &authorization.kind;
    if kind.is_empty()
        || kind.eq_ignore_ascii_case("basic")
        || !kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        bad(
            &format!("{section}.authorization.type"),
            format!(
                "`{kind}` is not an authorization scheme such as Bearer (for Basic use basic_auth)"
            ),
        );
    }
}

/// Checks that `url` is an `http://` or `https://` URL with a host and no credentials.
fn check_http_url(url: &str) -> Result<(), String> {
    let parsed: hyper::Uri = url
        .parse()
        .map_err(|e| format!("`{url}` is not a valid URL ({e})"))?;
    if !matches!(parsed.scheme_str(), Some("http" | "https")) {
        return Err(format!(
            "`{url}`: only http:// and https:// URLs are supported"
        ));
    }
    if parsed.host().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    if parsed.authority().is_some_and(|a| a.as_str().contains('@')) {
        // Shown without the URL: it holds a secret.
        return Err(
            "a URL holds credentials (`user:password@`): they would be sent in the Host header; \
             use basic_auth with password_file (or authorization) instead"
                .to_owned(),
        );
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
    fn link_bases_are_urls_or_empty() {
        let ok = AlertingConfig {
            runbook_base_url: "https://wiki.example/runbooks/".to_owned(),
            grafana_url: String::new(),
            ..AlertingConfig::default()
        };
        assert!(problems(&ok).is_empty());
        let bad = AlertingConfig {
            runbook_base_url: "docs/runbooks".to_owned(),
            grafana_url: "http://grafana example".to_owned(),
            ..AlertingConfig::default()
        };
        let keys: Vec<String> = problems(&bad).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["alerting.runbook_base_url", "alerting.grafana_url"]);
    }

    #[test]
    fn other_schemes_hostless_urls_and_urls_with_credentials_are_refused() {
        let c = AlertingConfig {
            alertmanager_urls: vec![
                "https://am:9093".to_owned(),
                "http://127.0.0.1:9093".to_owned(),
                "/api".to_owned(),
                "https://alice:s3cret@am:9093".to_owned(),
            ],
            webhook: WebhookConfig {
                url: "ftp://x".to_owned(),
                ..WebhookConfig::default()
            },
            ..AlertingConfig::default()
        };
        let found = problems(&c);
        let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "alerting.alertmanager_urls",
                "alerting.alertmanager_urls",
                "alerting.webhook.url"
            ]
        );
        assert!(found[1].1.contains("Host header"), "{found:?}");
        assert!(!found[1].1.contains("s3cret"), "the secret is not echoed");
    }

    #[test]
    fn client_settings_must_be_complete_and_not_both_kinds_of_auth() {
        let mut c = AlertingConfig::default();
        c.tls_config.cert_file = PathBuf::from("client.pem");
        c.basic_auth.username = "netwarden".to_owned();
        c.webhook.basic_auth = BasicAuthConfig {
            username: "hook".to_owned(),
            password_file: PathBuf::from("pw"),
        };
        c.webhook.authorization.credentials_file = PathBuf::from("token");
        c.webhook.authorization.kind = "Basic".to_owned();
        c.webhook.tls_config.server_name = "not a name".to_owned();
        let keys: Vec<String> = problems(&c).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "alerting.tls_config.cert_file",
                "alerting.basic_auth.password_file",
                "alerting.webhook.tls_config.server_name",
                "alerting.webhook.authorization",
                "alerting.webhook.authorization.type",
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
