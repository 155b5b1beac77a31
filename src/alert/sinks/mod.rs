//! Alert delivery, off the hot path: the router thread and its sinks.
//!
//! Workers hand each transition to a [`RouterHandle`] (a bounded, non-blocking inbox);
//! the `nw-alert` thread ([`AlertRouter`]) logs it through tracing and feeds the sinks:
//! Alertmanager API v2 (every configured URL, re-sent while firing), a generic JSON
//! webhook, and a JSON-lines log file. HTTP sinks each have a bounded queue and retry with
//! capped, jittered exponential backoff; every alert is counted as sent or dropped with a
//! reason (`netwarden_alerts_*` metrics). Firing alerts are kept in the state directory
//! (`alerts.json`) so a restart neither loses nor repeats them. Does not own: deciding
//! when alerts fire (`crate::detect`) or the Prometheus alert gauges.

mod alertmanager;
mod client;
mod delivery;
mod firing;
mod http;
mod log_file;
mod retry;
mod router;
mod settings;
mod state;
mod state_dir;
mod webhook;

pub use alertmanager::alertname;
pub use retry::Backoff;
pub use router::{AlertRouter, RouterHandle, UNTRACKED_ANNOTATION};
pub use settings::{RouterError, RouterSettings};
pub use state::state_directory;
pub use state_dir::{StateDir, StateDirError};
