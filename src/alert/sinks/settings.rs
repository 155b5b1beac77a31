//! The runtime form of `[alerting]` and why the router cannot start.
//!
//! Owns [`RouterSettings`], built once from a validated [`AlertingConfig`] (URLs parsed
//! into targets, TLS and credentials set up per receiver kind, durations unwrapped) plus
//! the state directory the daemon resolved and its protected networks, and [`RouterError`]. Does not own: validating
//! the config (`crate::config`) or using the settings (`router`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::alertmanager::API_PATH;
use super::client::Client;
use super::delivery::{Framing, Settings};
use super::http::Target;
use super::retry::Backoff;
use super::state_dir::StateDir;
use crate::alert::links::AlertLinks;
use crate::config::{AlertingConfig, ConfigError, ConfigErrors};
use crate::networks::NetworkSet;

/// Why the router could not start.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The thread or its runtime could not be created.
    #[error("starting the alert router thread")]
    Start(#[source] std::io::Error),
}

/// The runtime form of `[alerting]`.
#[derive(Clone, Debug)]
pub struct RouterSettings {
    /// Alertmanager endpoints (`…/api/v2/alerts`), in config order.
    pub(super) alertmanagers: Vec<Target>,
    /// The webhook, if any.
    pub(super) webhook: Option<Target>,
    /// The JSON-lines log, if any.
    pub(super) log_file: Option<PathBuf>,
    /// Re-send period of firing alerts to Alertmanager.
    pub(super) resend_interval: Duration,
    /// Capacity of the inbox from the workers.
    pub(super) inbox_size: usize,
    /// Capacity of each sink queue, and of the firing table.
    pub(super) queue_size: usize,
    /// Time limit of one request.
    pub(super) timeout: Duration,
    /// Retry delays.
    pub(super) backoff: Backoff,
    /// Attempts per batch.
    pub(super) max_attempts: u32,
    /// How long queued alerts may still be delivered at shutdown.
    pub(super) shutdown_grace: Duration,
    /// Where the firing table is kept across restarts; `None`: not kept.
    pub(super) state_directory: Option<StateDir>,
    /// How long a restored alert waits for detection to confirm it.
    pub(super) restore_grace: Duration,
    /// The protected networks, to name the network of a firing alert's victim or source
    /// on `netwarden_alert_firing`; `None`: only the alert's own `network`.
    pub(super) networks: Option<Arc<NetworkSet>>,
    /// The runbook and dashboard links added to every alert.
    pub(super) links: AlertLinks,
}

impl RouterSettings {
    /// Builds the runtime settings from a validated config, reading the TLS files and
    /// checking that the secret files can be read.
    ///
    /// # Errors
    /// Every file that cannot be read or used (and a URL validation would have refused),
    /// each naming the file and the config key.
    pub fn from_config(c: &AlertingConfig) -> Result<RouterSettings, ConfigErrors> {
        let is_https = |u: &String| u.starts_with("https://");
        let mut errors = Vec::new();
        let mut client = |section: &str, tls, basic, auth, https| {
            Client::build(section, tls, basic, auth, https)
                .map(Arc::new)
                .map_err(|e| errors.extend(e))
                .ok()
        };
        let am_client = client(
            "alerting",
            &c.tls_config,
            &c.basic_auth,
            &c.authorization,
            c.alertmanager_urls.iter().any(is_https),
        );
        let w = &c.webhook;
        let webhook_client = client(
            "alerting.webhook",
            &w.tls_config,
            &w.basic_auth,
            &w.authorization,
            is_https(&w.url),
        );
        let (Some(am_client), Some(webhook_client)) = (am_client, webhook_client) else {
            return Err(ConfigErrors(errors));
        };
        let target = |key: &str, url: &str, client: &Arc<Client>| -> Result<Target, ConfigErrors> {
            let bad = || {
                ConfigErrors(vec![ConfigError {
                    path: Path::new("<config>").to_owned(),
                    line: None,
                    column: None,
                    key: Some(key.to_owned()),
                    message: "not a usable http:// or https:// URL".to_owned(),
                }])
            };
            let uri: hyper::Uri = url.parse().map_err(|_| bad())?;
            Target::new(&uri, Arc::clone(client)).ok_or_else(bad)
        };
        let alertmanagers = c
            .alertmanager_urls
            .iter()
            .map(|u| {
                target(
                    "alerting.alertmanager_urls",
                    &format!("{}{API_PATH}", u.trim_end_matches('/')),
                    &am_client,
                )
            })
            .collect::<Result<_, _>>()?;
        let webhook = match w.url.as_str() {
            "" => None,
            url => Some(target("alerting.webhook.url", url, &webhook_client)?),
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
            state_directory: None,
            restore_grace: c.restore_grace.0,
            networks: None,
            links: AlertLinks::from_config(c),
        })
    }

    /// Keeps firing alerts in `dir` across restarts (see [`super::state_directory`]);
    /// `None` turns persistence off (the default).
    #[must_use]
    pub fn with_state_directory(mut self, dir: Option<StateDir>) -> RouterSettings {
        self.state_directory = dir;
        self
    }

    /// Names the protected network of each firing alert's victim (else source) on
    /// `netwarden_alert_firing` from `networks`.
    #[must_use]
    pub fn with_networks(mut self, networks: Arc<NetworkSet>) -> RouterSettings {
        self.networks = Some(networks);
        self
    }

    /// How one receiver is reached and retried.
    pub(super) fn delivery(&self, target: &Target, framing: Framing) -> Settings {
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
