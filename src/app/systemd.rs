//! systemd integration: readiness, status and the watchdog (`sd_notify(3)` protocol).
//!
//! Owns the notification datagrams sent to `$NOTIFY_SOCKET` (`READY=1`, `STATUS=…`,
//! `RELOADING=1`, `STOPPING=1`, `WATCHDOG=1`) and the watchdog thread that pings systemd
//! only while every capture worker's heartbeat keeps advancing, so a stuck capture
//! thread gets the service restarted instead of hidden behind a live process.
//!
//! The protocol is one `AF_UNIX` datagram of `KEY=VALUE` lines; it is written here with
//! [`UnixDatagram`] (about thirty lines, no `unsafe`, abstract `@` sockets included)
//! rather than pulling in a crate for it.
//!
//! Does not own: deciding *when* the daemon is ready or stopping (`daemon` calls in), or
//! the heartbeats themselves (workers set `netwarden_worker_heartbeat_timestamp_seconds`;
//! the watchdog only reads those gauges).
//!
//! Invariants: without `$NOTIFY_SOCKET` every call is a no-op; a failed send is logged at
//! debug level and never stops the daemon (systemd may simply not be listening).

use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus::IntGauge;

/// Sends `sd_notify` messages to the service manager, if there is one.
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// A notifier for `$NOTIFY_SOCKET`; disabled when it is unset, empty or unusable.
    pub fn from_env() -> Notifier {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let path = path.to_str()?;
            let addr = match path.strip_prefix('@') {
                Some(name) => SocketAddr::from_abstract_name(name.as_bytes()).ok()?,
                None if path.starts_with('/') => SocketAddr::from_pathname(path).ok()?,
                None => return None,
            };
            Some((UnixDatagram::unbound().ok()?, addr))
        });
        Notifier { target }
    }

    /// Whether a service manager is listening (`$NOTIFY_SOCKET` was usable).
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends `state` (newline-separated `KEY=VALUE` assignments) as one datagram.
    pub fn notify(&self, state: &str) {
        if let Some((socket, addr)) = &self.target
            && let Err(e) = socket.send_to_addr(state.as_bytes(), addr)
        {
            tracing::debug!(error = %e, "Could not notify the service manager.");
        }
    }

    /// Start-up done: capture sockets open and `/metrics` bound.
    pub fn ready(&self, status: &str) {
        self.notify(&format!("READY=1\nSTATUS={status}"));
    }

    /// A free-form status line shown by `systemctl status`.
    pub fn status(&self, status: &str) {
        self.notify(&format!("STATUS={status}"));
    }

    /// A configuration reload has started; follow with [`Notifier::ready`] when done.
    pub fn reloading(&self) {
        self.notify("RELOADING=1\nSTATUS=Reloading configuration.");
    }

    /// Shutdown has started.
    pub fn stopping(&self) {
        self.notify("STOPPING=1\nSTATUS=Shutting down.");
    }
}

/// The watchdog ping interval: half of `$WATCHDOG_USEC`, when the watchdog is enabled for
/// this process (`$WATCHDOG_PID`, when set, must be ours).
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var_os("WATCHDOG_PID")
        && pid.to_str()?.parse::<u32>().ok()? != std::process::id()
    {
        return None;
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// Tracks worker heartbeats between pings: a ping is due only when every worker's
/// heartbeat moved forward since the previous ping.
pub struct HeartbeatCheck {
    heartbeats: Vec<IntGauge>,
    last: Vec<i64>,
}

impl HeartbeatCheck {
    /// Starts from the heartbeats' current values.
    pub fn new(heartbeats: Vec<IntGauge>) -> HeartbeatCheck {
        let last = heartbeats.iter().map(IntGauge::get).collect();
        HeartbeatCheck { heartbeats, last }
    }

    /// Whether every heartbeat advanced since the last call (or since [`HeartbeatCheck::new`]);
    /// records the current values either way. With no workers there is nothing to be
    /// stuck, so the answer is true.
    pub fn all_advanced(&mut self) -> bool {
        let mut all = true;
        for (gauge, last) in self.heartbeats.iter().zip(self.last.iter_mut()) {
            let now = gauge.get();
            all &= now > *last;
            *last = now;
        }
        all
    }
}

/// The watchdog thread. Dropping it stops and joins the thread.
pub struct Watchdog {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts pinging every `interval` while `check` reports progress. A missed ping is
    /// logged; systemd restarts the service after `WatchdogSec` without one.
    ///
    /// Heartbeats have one-second resolution, so `interval` should be at least 2 s
    /// (`WatchdogSec=` at least 4 s) for a healthy worker never to miss a ping.
    ///
    /// # Errors
    /// The thread cannot be spawned.
    pub fn start(
        notifier: Notifier,
        interval: Duration,
        mut check: HeartbeatCheck,
    ) -> std::io::Result<Watchdog> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("nw-watchdog".to_owned())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    if check.all_advanced() {
                        notifier.notify("WATCHDOG=1");
                    } else {
                        tracing::error!(
                            "A capture worker's heartbeat did not advance; withholding the watchdog ping."
                        );
                    }
                }
            })?;
        Ok(Watchdog {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            drop(thread.join());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver() -> (tempfile::TempDir, UnixDatagram, Notifier) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let notifier = Notifier {
            target: Some((
                UnixDatagram::unbound().unwrap(),
                SocketAddr::from_pathname(&path).unwrap(),
            )),
        };
        (dir, socket, notifier)
    }

    fn recv(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8_lossy(buf.get(..n).unwrap()).into_owned()
    }

    #[test]
    fn messages_arrive_as_single_datagrams() {
        let (_dir, socket, notifier) = receiver();
        assert!(notifier.is_enabled());
        notifier.ready("Capturing on eth0.");
        assert_eq!(recv(&socket), "READY=1\nSTATUS=Capturing on eth0.");
        notifier.reloading();
        assert_eq!(
            recv(&socket),
            "RELOADING=1\nSTATUS=Reloading configuration."
        );
        notifier.status("x");
        assert_eq!(recv(&socket), "STATUS=x");
        notifier.stopping();
        assert_eq!(recv(&socket), "STOPPING=1\nSTATUS=Shutting down.");
    }

    #[test]
    fn disabled_notifier_sends_nothing_and_does_not_fail() {
        let notifier = Notifier { target: None };
        assert!(!notifier.is_enabled());
        notifier.ready("x");
        notifier.stopping();
    }

    #[test]
    fn heartbeat_check_requires_every_worker_to_advance() {
        let a = IntGauge::new("a", "a").unwrap();
        let b = IntGauge::new("b", "b").unwrap();
        a.set(10);
        b.set(10);
        let mut check = HeartbeatCheck::new(vec![a.clone(), b.clone()]);
        assert!(!check.all_advanced(), "nothing moved yet");
        a.set(11);
        b.set(11);
        assert!(check.all_advanced());
        a.set(12);
        assert!(!check.all_advanced(), "b is stuck");
        a.set(13);
        b.set(12);
        assert!(check.all_advanced(), "b recovered");
    }

    #[test]
    fn watchdog_pings_only_while_heartbeats_advance() {
        let (_dir, socket, notifier) = receiver();
        socket
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let beat = IntGauge::new("beat", "beat").unwrap();
        let watchdog = Watchdog::start(
            notifier,
            Duration::from_millis(50),
            HeartbeatCheck::new(vec![beat.clone()]),
        )
        .unwrap();
        let mut buf = [0u8; 64];
        assert!(socket.recv(&mut buf).is_err(), "pinged while stuck");
        beat.set(1);
        assert_eq!(recv(&socket), "WATCHDOG=1");
        drop(watchdog);
    }
}
