//! The retry schedule: capped exponential backoff with jitter.
//!
//! Owns [`Backoff`] (the delay before attempt n+1 after n consecutive failures) and the
//! small random source for its jitter. Does not own: deciding when to give up (that is the
//! delivery loop's `max_attempts`).
//!
//! Invariant: every delay lies in `[d/2, d]` where `d = min(initial × 2^(failures-1), max)`,
//! so receivers that come back are retried within `max`, and many netwarden instances that
//! lost the same receiver do not retry in lockstep.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;
use std::time::Duration;

/// Capped exponential backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure (before jitter).
    pub initial: Duration,
    /// Largest delay (before jitter).
    pub max: Duration,
}

impl Backoff {
    /// The un-jittered delay after `failures` consecutive failures (at least 1).
    pub fn ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1 << doublings)
            .map_or(self.max, |d| d.min(self.max))
    }

    /// The delay after `failures` consecutive failures, with `unit` in `[0, 1)` choosing
    /// where in `[ceiling/2, ceiling]` it falls.
    pub fn delay(&self, failures: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(failures);
        let half = ceiling / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// A tiny non-cryptographic random source (`SplitMix64`) for jitter, seeded per process.
#[derive(Clone, Debug)]
pub(crate) struct Jitter(u64);

impl Jitter {
    /// A source seeded from the process's random hasher keys.
    pub(crate) fn new() -> Jitter {
        Jitter(RandomState::new().hash_one(0x6e77_6a69_7474_6572_u64))
    }

    /// The next value in `[0, 1)`.
    pub(crate) fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // The top 53 bits fill an f64 mantissa exactly.
        #[allow(clippy::cast_precision_loss)]
        let unit = (z >> 11) as f64 / (1_u64 << 53) as f64;
        unit
    }
}

impl Default for Jitter {
    fn default() -> Self {
        Jitter::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        initial: Duration::from_millis(500),
        max: Duration::from_secs(30),
    };

    #[test]
    fn ceiling_doubles_from_initial_and_caps_at_max() {
        let got: Vec<u128> = (1..=9).map(|n| B.ceiling(n).as_millis()).collect();
        assert_eq!(
            got,
            [
                500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000
            ]
        );
        assert_eq!(B.ceiling(0), B.initial);
        assert_eq!(B.ceiling(u32::MAX), B.max);
    }

    #[test]
    fn jittered_delay_stays_between_half_and_ceiling() {
        let mut j = Jitter::new();
        for n in 1..40 {
            let c = B.ceiling(n);
            for _ in 0..50 {
                let d = B.delay(n, j.next_unit());
                assert!(
                    d >= c / 2 && d <= c,
                    "failure {n}: {d:?} outside [{:?}, {c:?}]",
                    c / 2
                );
            }
        }
        assert_eq!(B.delay(3, 0.0), Duration::from_secs(1));
        assert_eq!(B.delay(3, 1.0), Duration::from_secs(2));
    }

    #[test]
    fn jitter_units_are_in_range_and_vary() {
        let mut j = Jitter::new();
        let units: Vec<f64> = (0..1000).map(|_| j.next_unit()).collect();
        assert!(units.iter().all(|u| (0.0..1.0).contains(u)));
        let low = units.iter().filter(|u| **u < 0.5).count();
        assert!((400..600).contains(&low), "{low} of 1000 below 0.5");
    }
}
