//! Packet-clock time.
//!
//! Owns [`Timestamp`], the only notion of "now" that `flow` and `detect` see. Offline it
//! comes from the capture file's per-packet timestamps; live it is taken once per received
//! frame from the system clock. Nothing below the capture layer reads a clock, so a replay
//! produces the same timeouts and alerts at any speed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch on the packet clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The epoch itself; used as "never" for state that has not yet seen a packet.
    pub const ZERO: Timestamp = Timestamp(0);

    /// Builds a timestamp from whole seconds and a sub-second part in nanoseconds.
    ///
    /// Saturates instead of overflowing, so hostile capture headers cannot panic.
    pub fn from_secs_nanos(secs: u64, nanos: u64) -> Timestamp {
        Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }

    /// Builds a timestamp from nanoseconds since the epoch.
    pub const fn from_nanos(nanos: u64) -> Timestamp {
        Timestamp(nanos)
    }

    /// The current wall-clock time (used only by live capture).
    pub fn now() -> Timestamp {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Seconds since the epoch as a float (for JSON output and gauges).
    #[allow(clippy::cast_precision_loss)]
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating at the end of representable time.
    #[must_use]
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_secs_nanos(u64::MAX, 5);
        assert_eq!(t.as_nanos(), u64::MAX);
        assert_eq!(Timestamp::ZERO.saturating_since(t), Duration::ZERO);
        assert_eq!(
            t.saturating_add(Duration::from_secs(1)).as_nanos(),
            u64::MAX
        );
    }

    #[test]
    fn since_measures_gaps() {
        let a = Timestamp::from_secs_nanos(10, 500);
        let b = Timestamp::from_secs_nanos(12, 400);
        assert_eq!(b.saturating_since(a), Duration::from_nanos(1_999_999_900));
    }
}
