//! Log output through `tracing-subscriber`: text or JSON lines on stderr.
//!
//! Stderr, so that `replay --json` keeps stdout for its one JSON object; under systemd
//! stderr goes to the journal.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. A second call (tests) is a no-op.
pub(super) fn init(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    // Already initialised (only happens when tests call into the app twice).
    drop(result);
}
