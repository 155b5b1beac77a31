//! How many connections the metrics endpoint may hold without starving the daemon of file
//! descriptors.
//!
//! Every socket and file counts against one per-process limit (`RLIMIT_NOFILE`, 1024 by
//! default outside systemd's `LimitNOFILE=`). Scrapers are the only users an outsider
//! controls, so the endpoint's cap is what keeps the others working: alert delivery opens
//! a connection per receiver (plus name resolution), the state file needs a file and its
//! temporary twin, the log file one, a reload reads the config, rule files and
//! blocklists. The cap is therefore at most the limit, minus what is open when the
//! endpoint starts (capture sockets are open by then), minus [`RESERVED_FDS`] and
//! [`FDS_PER_SINK`] per HTTP sink, minus one for the connection accepted while the oldest
//! idle one is being closed.
//!
//! Does not own: enforcing the cap (`server`).

use nix::sys::resource::{Resource, getrlimit};

/// Descriptors kept for everything but the endpoint and the HTTP sinks: the state and log
/// files, reload's reads, the file watcher, `sd_notify`, the runtimes' own.
pub(super) const RESERVED_FDS: u64 = 64;

/// Descriptors kept per HTTP sink (Alertmanager or webhook): its connection and the
/// sockets and files name resolution opens.
pub(super) const FDS_PER_SINK: u64 = 4;

/// The connection cap: `configured`, lowered (with a warning) to what the file limit can
/// spare beside `sinks` HTTP sinks; at least 1.
pub(super) fn connection_cap(configured: usize, sinks: usize) -> usize {
    let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return configured;
    };
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count);
    let spare = spare_fds(soft, open as u64, sinks as u64);
    let cap = usize::try_from(spare)
        .unwrap_or(usize::MAX)
        .min(configured)
        .max(1);
    if cap < configured {
        tracing::warn!(
            configured,
            allowed = cap,
            file_limit = soft,
            open,
            "Lowering metrics.max_connections to keep file descriptors for alert delivery and state; raise the file limit (LimitNOFILE) to allow more."
        );
    }
    cap
}

/// Descriptors the endpoint may use under a limit of `soft` with `open` already in use.
fn spare_fds(soft: u64, open: u64, sinks: u64) -> u64 {
    soft.saturating_sub(open)
        .saturating_sub(RESERVED_FDS)
        .saturating_sub(FDS_PER_SINK.saturating_mul(sinks))
        .saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spare_descriptors_leave_the_reserve_and_the_sinks_theirs() {
        // systemd's default soft limit, 20 open, two Alertmanagers and a webhook.
        assert_eq!(spare_fds(1024, 20, 3), 1024 - 20 - 64 - 12 - 1);
        assert_eq!(spare_fds(64, 20, 3), 0);
    }

    #[test]
    fn the_cap_is_the_configured_value_when_the_limit_allows_it() {
        // The test process's limit is far above 64 + what it has open.
        assert_eq!(connection_cap(1, 0), 1);
        assert!(connection_cap(usize::MAX, 0) < usize::MAX);
    }
}
