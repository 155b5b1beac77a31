//! The worker loop: pull frames from a [`Source`], run them through a [`Pipeline`], flush
//! counters once per batch.
//!
//! One loop serves live interfaces, `run --pcap` and `replay`, so all three count alike.
//! Live sources report [`Next::Idle`] on read timeouts, which advances the packet clock to
//! the wall clock (so flows still expire on a quiet link) and lets the loop see shutdown.
//! File sources can be paced by their timestamps ([`Pace`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::Stage;
use crate::capture::{CaptureError, Next, Source};
use crate::telemetry::WorkerMetrics;
use crate::timestamp::Timestamp;

/// Frames per batch: the unit of counter flushing and of the batch-time histogram.
pub const BATCH_FRAMES: usize = 1024;

/// How often kernel drop statistics are read.
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// Longest single sleep while pacing, so shutdown is noticed promptly.
const MAX_PACING_SLEEP: Duration = Duration::from_millis(100);

/// Replay pacing: packet time runs `speed` times faster than wall time.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    speed: f64,
    origin: Option<(Timestamp, Instant)>,
}

impl Pace {
    /// Pacing at `speed` × real time; `None` when `speed` is not a positive finite number.
    pub fn new(speed: f64) -> Option<Pace> {
        (speed.is_finite() && speed > 0.0).then_some(Pace {
            speed,
            origin: None,
        })
    }

    /// Sleeps until the frame stamped `ts` is due. Returns early if `shutdown` is set.
    fn wait(&mut self, ts: Timestamp, shutdown: &AtomicBool) {
        let (first, start) = *self.origin.get_or_insert((ts, Instant::now()));
        let due = start + ts.saturating_since(first).div_f64(self.speed);
        loop {
            let now = Instant::now();
            if now >= due || shutdown.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep((due - now).min(MAX_PACING_SLEEP));
        }
    }
}

/// How to drive one source.
pub struct Drive<'a> {
    /// Set to stop the loop at the next frame or timeout.
    pub shutdown: &'a AtomicBool,
    /// Pace file replay by timestamps; `None` runs as fast as possible.
    pub pace: Option<Pace>,
    /// Called after each batch with the frames processed so far and the fraction of the
    /// source consumed, if known.
    pub progress: Option<&'a mut dyn FnMut(u64, Option<f64>)>,
}

/// Why [`drive`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// The source ended.
    EndOfSource,
    /// Shutdown was requested.
    Shutdown,
}

/// Runs `source` through `pipeline` until the source ends or shutdown is requested.
/// Counters are flushed to `metrics` after every batch and at the end; flows are not
/// drained (call [`Pipeline::finish`] when the worker is done for good).
///
/// # Errors
/// A capture error from the source; counters are flushed first.
// Generic over the source (`dyn Source` included) so that a file replay calls its reader
// directly, with no virtual call per packet.
pub fn drive<S: Source + ?Sized, P: Stage>(
    source: &mut S,
    pipeline: &mut P,
    metrics: &WorkerMetrics,
    mut drive: Drive<'_>,
) -> Result<Stopped, CaptureError> {
    let mut last_stats = Instant::now();
    loop {
        let started = Instant::now();
        let mut busy_until = started;
        let mut frames = 0;
        let mut stopped = None;
        while frames < BATCH_FRAMES {
            if drive.shutdown.load(Ordering::Relaxed) {
                stopped = Some(Stopped::Shutdown);
                break;
            }
            let next = match source.next() {
                Ok(next) => next,
                Err(e) => {
                    pipeline.flush(metrics);
                    return Err(e);
                }
            };
            match next {
                Next::Frame(frame) => {
                    if let Some(pace) = drive.pace.as_mut() {
                        pace.wait(frame.ts, drive.shutdown);
                    }
                    pipeline.process(&frame);
                    frames += 1;
                }
                Next::Idle => {
                    busy_until = Instant::now();
                    pipeline.tick(Timestamp::now());
                    break;
                }
                Next::End => {
                    stopped = Some(Stopped::EndOfSource);
                    break;
                }
            }
        }
        if frames > 0 && busy_until == started {
            busy_until = Instant::now();
        }
        let busy = busy_until.saturating_duration_since(started);
        if frames > 0 {
            metrics.busy_seconds.inc_by(busy.as_secs_f64());
            metrics.batch_seconds.observe(busy.as_secs_f64());
        }
        pipeline.flush(metrics);
        metrics
            .heartbeat
            .set(i64::try_from(Timestamp::now().as_nanos() / 1_000_000_000).unwrap_or(i64::MAX));
        if last_stats.elapsed() >= STATS_INTERVAL {
            last_stats = Instant::now();
            if let Some(stats) = source.kernel_stats() {
                metrics.interface.kernel_dropped.inc_by(stats.dropped);
                metrics.interface.ring_freezes.inc_by(stats.freezes);
            }
            metrics
                .capture_up
                .set(i64::from(source.is_up().unwrap_or(true)));
            metrics
                .capture_ring_bytes
                .set(i64::try_from(source.kernel_mapped_bytes()).unwrap_or(i64::MAX));
        }
        if let Some(progress) = drive.progress.as_mut() {
            progress(pipeline.packets(), source.progress());
        }
        if let Some(stopped) = stopped {
            return Ok(stopped);
        }
    }
}
