//! Cache prefetch hints for the hot path.
//!
//! Owns [`prefetch`]: asking the CPU to start loading a cache line that the code will
//! read a little later (the next ring frame, a flow's index slot), so the load overlaps
//! other work instead of stalling it. The only `unsafe` outside the capture ring, because
//! the intrinsic is declared with a target feature.

#![allow(unsafe_code)]

/// Asks the CPU to bring the cache line holding `at` into its caches (a no-op where the
/// architecture has no stable prefetch hint). A hint only: it reads nothing into the
/// program and never faults, so any address is harmless.
#[allow(clippy::inline_always)]
#[inline(always)]
pub(crate) fn prefetch<T>(at: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 neither reads into a register nor faults, whatever the address;
    // SSE, which the intrinsic's target feature names, is part of the x86_64 baseline.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(at.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}
