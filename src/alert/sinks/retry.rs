//! The retry schedule: capped exponential backoff with jitter.
//!
//! Owns [`Backoff`] (the delay before attempt n+1 after n consecutive failures) and
//! `Jitter`, the random source of its jitter: the crate's generator ([`crate::rng`]) seeded
//! from the process's randomness. Does not own: deciding when to give up (that is the
//! delivery loop's `max_attempts`), or the generator itself.
//!
//! Invariant: every delay lies in `[d/2, d]` where `d = min(initial × 2^(failures-1), max)`,
//! so receivers that come back are retried within `max`, and many netwarden instances that
//! lost the same receiver do not retry in lockstep.

use std::time::Duration;

use crate::rng::Rng;

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

/// The jitter source: [`Rng`] seeded differently in every process (and every sink).
#[derive(Clone, Debug)]
pub(crate) struct Jitter(Rng);

impl Jitter {
    /// A source seeded from the process's randomness.
    pub(crate) fn new() -> Jitter {
        Jitter(Rng::from_entropy())
    }

    /// The next value in `[0, 1)`.
    pub(crate) fn next_unit(&mut self) -> f64 {
        self.0.next_unit()
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
}
