//! The runtime form of `[alerting]` and why the router cannot start.
//!
//! Owns [`RouterSettings`], built once from a validated [`AlertingConfig`] (URLs parsed
//! into targets, durations unwrapped) plus the state directory the daemon resolved, and
//! [`RouterError`]. Does not own: validating the config (`crate::config`) or using the
//! settings (`router`).

use std::path::PathBuf;
use std::time::Duration;

use super::alertmanager::API_PATH;
use super::delivery::{Framing, Settings};
use super::http::Target;
use super::retry::Backoff;
use crate::config::AlertingConfig;

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
    pub(super) state_directory: Option<PathBuf>,
    /// How long a restored alert waits for detection to confirm it.
    pub(super) restore_grace: Duration,
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
            state_directory: None,
            restore_grace: c.restore_grace.0,
        })
    }

    /// Keeps firing alerts in `dir` across restarts (see [`super::state_directory`]);
    /// `None` turns persistence off (the default).
    #[must_use]
    pub fn with_state_directory(mut self, dir: Option<PathBuf>) -> RouterSettings {
        self.state_directory = dir;
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
