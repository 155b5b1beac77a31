//! netwarden's one pseudo-random generator: xoshiro256** (Blackman and Vigna, 2018) whose
//! state is filled from the seed by `SplitMix64`, as the authors recommend.
//!
//! Owns [`Rng`] and its seeding: [`Rng::new`] (deterministic), [`Rng::stream`] (independent
//! sub-streams of one seed) and [`Rng::from_entropy`] (different in every process). The
//! daemon draws the jitter of alert retries from it; the traffic generator
//! (`crates/synth`) builds its distributions (bounded integers, exponential variates,
//! Pareto weights) on [`Rng::next_u64`]. Does not own: those distributions, or anything
//! cryptographic (nothing in netwarden needs secret randomness; this is not such a source).
//!
//! # Invariants
//! - A seed gives the same sequence on every platform and in every release: generated
//!   captures, their ground truth and pinned hashes depend on it. Only integer arithmetic
//!   and one exactly rounded integer-to-float conversion are used.
//! - [`Rng::from_entropy`] differs between processes and between calls, so instances that
//!   lost the same receiver do not retry in lockstep.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;

/// xoshiro256** generator. Not cryptographic.
#[derive(Clone, Debug)]
pub struct Rng {
    state: [u64; 4],
}

/// One `SplitMix64` step: advances `state` and returns the next output.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `2^-53`: scales 53 random bits to a float below 1.
const UNIT_SCALE: f64 = 1.0 / 9_007_199_254_740_992.0;

impl Rng {
    /// A generator seeded from `seed`: the same seed gives the same sequence everywhere.
    pub fn new(seed: u64) -> Rng {
        let mut sm = seed;
        let state = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng { state }
    }

    /// An independent generator for sub-stream `stream` of `seed`, so one user can draw,
    /// say, a plan, its timing and its details without the streams shifting each other.
    pub fn stream(seed: u64, stream: u64) -> Rng {
        let mut sm = stream;
        Rng::new(seed ^ splitmix64(&mut sm))
    }

    /// A generator seeded from the process's randomness: the standard library's hasher
    /// keys, which come from the operating system once per thread and change on every call.
    pub fn from_entropy() -> Rng {
        Rng::new(RandomState::new().hash_one(0x6e77_726e_6721_u64))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = &mut self.state;
        let result = s1.wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = *s1 << 17;
        *s2 ^= *s0;
        *s3 ^= *s1;
        *s1 ^= *s2;
        *s0 ^= *s3;
        *s2 ^= t;
        *s3 = s3.rotate_left(45);
        result
    }

    /// A uniform float in `[0, 1)`, from the top 53 bits of [`Rng::next_u64`].
    pub fn next_unit(&mut self) -> f64 {
        // 53 bits fill an f64 mantissa exactly, so the conversion does not round.
        #[allow(clippy::cast_precision_loss)]
        let bits = (self.next_u64() >> 11) as f64;
        bits * UNIT_SCALE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro_matches_reference_vector() {
        // Reference outputs of xoshiro256** for state {1, 2, 3, 4} (as in rand_xoshiro).
        let mut rng = Rng {
            state: [1, 2, 3, 4],
        };
        let got: Vec<u64> = (0..4).map(|_| rng.next_u64()).collect();
        assert_eq!(got, [11520, 0, 1_509_978_240, 1_215_971_899_390_074_240]);
    }

    #[test]
    fn splitmix_matches_reference_vector() {
        // First output of SplitMix64 seeded with 1234567 (Vigna's reference implementation).
        let mut state = 1_234_567;
        assert_eq!(splitmix64(&mut state), 6_457_827_717_110_365_317);
    }

    #[test]
    fn seeded_sequences_are_pinned() {
        // Generated captures depend on these values: a change here changes every pcap.
        let mut rng = Rng::new(42);
        let got: Vec<u64> = (0..2).map(|_| rng.next_u64()).collect();
        assert_eq!(got, [1_546_998_764_402_558_742, 6_990_951_692_964_543_102]);
        assert_eq!(Rng::stream(7, 1).next_u64(), 1_643_048_376_164_816_837);
        assert_ne!(Rng::stream(7, 1).next_u64(), Rng::stream(7, 2).next_u64());
    }

    #[test]
    fn units_are_in_range_and_spread() {
        let mut rng = Rng::from_entropy();
        let units: Vec<f64> = (0..1000).map(|_| rng.next_unit()).collect();
        assert!(units.iter().all(|u| (0.0..1.0).contains(u)));
        let low = units.iter().filter(|u| **u < 0.5).count();
        assert!((400..600).contains(&low), "{low} of 1000 below 0.5");
    }

    #[test]
    fn entropy_seeded_generators_differ() {
        let a = Rng::from_entropy().next_u64();
        let b = Rng::from_entropy().next_u64();
        assert_ne!(a, b);
    }
}
