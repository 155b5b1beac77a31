//! One detector for several capture workers: workers count, one evaluator judges.
//!
//! Owns [`Collector`] (a worker's side: it observes packets into a [`Partial`] and hands
//! it over once per packet-clock second) and [`Evaluator`] (the thread that absorbs every
//! worker's partials into one [`Detection`] and evaluates the rules), built together by
//! [`share`]. A rule's threshold so applies to the traffic of all the workers together,
//! however many there are.
//!
//! # How partials travel
//! Each worker owns two partials: it counts into one while the other is with the
//! evaluator. On its packet-clock tick a worker swaps them if the evaluator has given the
//! other back, and sends the full one with its clock; if the evaluator is behind, the
//! worker simply keeps counting into the same partial until the next tick. Nothing blocks
//! a worker and nothing is dropped: with two partials per worker in existence, the
//! channel (sized for them) is never full. Partials are emptied by the merge and reused,
//! so steady state allocates nothing.
//!
//! # The evaluator's clock
//! The evaluator runs the rules when the *slowest* worker's clock has passed the next
//! second: every packet up to that instant has been absorbed. A quiet worker still
//! advances (live sources tick it on read timeouts); a worker that has finished or gone
//! no longer holds the clock back. When every worker has finished, the evaluator judges
//! the last partial windows and ends.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use super::Detection;
use super::EXPIRY_INTERVAL;
use crate::detect::{PacketView, Partial};
use crate::timestamp::Timestamp;

/// Partials per worker: one counting, one with the evaluator.
const PARTIALS_PER_WORKER: usize = 2;

/// A worker's partial counts on their way to the evaluator.
struct Handover {
    worker: usize,
    /// The worker's packet clock when it handed over.
    now: Timestamp,
    partial: Partial,
    /// The worker has finished: this is its last partial.
    last: bool,
}

/// A worker's side of a shared detector.
pub struct Collector {
    worker: usize,
    counting: Partial,
    spare: Option<Partial>,
    to_evaluator: SyncSender<Handover>,
    returned: Receiver<Partial>,
    clock: Timestamp,
    finished: bool,
    /// Wait for the evaluator rather than count on (see [`Collector::in_lockstep`]).
    lockstep: bool,
}

/// The thread that judges every worker's packets (see the module doc).
pub struct Evaluator {
    detection: Detection,
    inbox: Receiver<Handover>,
    returns: Vec<SyncSender<Partial>>,
    /// Each worker's clock, `None` before its first hand-over.
    clocks: Vec<Option<Timestamp>>,
    /// Workers that have not finished.
    open: Vec<bool>,
    next_tick: Timestamp,
    latest: Option<Timestamp>,
}

/// Shares `detection` among `workers` collectors: one per worker, and the evaluator to
/// run on its own thread ([`Evaluator::run`]).
pub fn share(detection: Detection, workers: usize) -> (Evaluator, Vec<Collector>) {
    let (to_evaluator, inbox) = std::sync::mpsc::sync_channel(workers * PARTIALS_PER_WORKER);
    let mut returns = Vec::with_capacity(workers);
    let collectors = (0..workers)
        .map(|worker| {
            let (give_back, returned) = std::sync::mpsc::sync_channel(PARTIALS_PER_WORKER);
            returns.push(give_back);
            Collector {
                worker,
                counting: detection.partial(),
                spare: Some(detection.partial()),
                to_evaluator: to_evaluator.clone(),
                returned,
                clock: Timestamp::ZERO,
                finished: false,
                lockstep: false,
            }
        })
        .collect();
    let evaluator = Evaluator {
        detection,
        inbox,
        returns,
        clocks: vec![None; workers],
        open: vec![true; workers],
        next_tick: Timestamp::ZERO,
        latest: None,
    };
    (evaluator, collectors)
}

impl Collector {
    /// Makes every tick hand over, waiting for the evaluator to give a partial back if
    /// it has not yet: for a replay, where packets of every worker come from one thread
    /// and the evaluator then sees the same partials in the same order on every run. A
    /// live worker never waits.
    #[must_use]
    pub fn in_lockstep(mut self) -> Collector {
        self.lockstep = true;
        self
    }

    /// Whether any rule counts (see [`Partial::has_rules`]).
    #[inline]
    pub fn has_rules(&self) -> bool {
        self.counting.has_rules()
    }

    /// Counts one packet.
    #[inline]
    pub fn observe(&mut self, p: &PacketView<'_>) {
        self.counting.observe(p);
    }

    /// Hands the counts so far to the evaluator with the clock `now`, if the evaluator
    /// has given the other partial back; otherwise counting goes on into this one.
    pub fn tick(&mut self, now: Timestamp) {
        self.clock = self.clock.max(now);
        if self.spare.is_none() {
            let returned = if self.lockstep {
                self.returned.recv().ok()
            } else {
                self.returned.try_recv().ok()
            };
            match returned {
                Some(partial) => self.spare = Some(partial),
                None => return,
            }
        }
        let Some(spare) = self.spare.take() else {
            return;
        };
        let full = std::mem::replace(&mut self.counting, spare);
        let handover = Handover {
            worker: self.worker,
            now: self.clock,
            partial: full,
            last: false,
        };
        if let Err(TrySendError::Full(h) | TrySendError::Disconnected(h)) =
            self.to_evaluator.try_send(handover)
        {
            // Not sent (the evaluator has gone): keep counting where we were.
            self.spare = Some(std::mem::replace(&mut self.counting, h.partial));
        }
    }

    /// Hands over the last counts: this worker has finished at `now` (its last packet's
    /// time, if it saw any).
    pub fn finish(&mut self, now: Option<Timestamp>) {
        if let Some(now) = now {
            self.clock = self.clock.max(now);
        }
        self.hand_over_last();
    }

    fn hand_over_last(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let partial = std::mem::replace(&mut self.counting, Partial::empty());
        // Blocking is fine here: the worker is done, and the evaluator takes every
        // hand-over until the last worker has finished.
        drop(self.to_evaluator.send(Handover {
            worker: self.worker,
            now: self.clock,
            partial,
            last: true,
        }));
    }
}

impl Drop for Collector {
    /// A worker that stops without finishing (its capture failed) no longer holds the
    /// evaluator's clock back.
    fn drop(&mut self) {
        self.hand_over_last();
    }
}

impl Evaluator {
    /// Absorbs hand-overs and evaluates the rules until every worker has finished (or
    /// gone), then judges the last partial windows.
    pub fn run(mut self) {
        while self.open.iter().any(|&open| open) {
            let Ok(handover) = self.inbox.recv() else {
                break;
            };
            self.take(handover);
        }
        if let Some(last) = self.latest {
            self.detection.finish(last);
        }
    }

    /// Absorbs one hand-over, evaluates if every worker is past the next second, and
    /// gives the emptied partial back (rebuilt if a reload changed the rules).
    fn take(&mut self, handover: Handover) {
        let Handover {
            worker,
            now,
            mut partial,
            last,
        } = handover;
        self.detection.absorb(&mut partial);
        if let Some(clock) = self.clocks.get_mut(worker) {
            *clock = Some(clock.map_or(now, |c| c.max(now)));
        }
        self.latest = Some(self.latest.map_or(now, |l| l.max(now)));
        if last && let Some(open) = self.open.get_mut(worker) {
            *open = false;
        }
        if let Some(watermark) = self.watermark()
            && watermark >= self.next_tick
        {
            self.detection.tick(watermark);
            self.next_tick = watermark.saturating_add(EXPIRY_INTERVAL);
        }
        if last {
            return;
        }
        if !self.detection.counts_for(&partial) {
            partial = self.detection.partial();
        }
        if let Some(give_back) = self.returns.get(worker) {
            // Only a finished worker has stopped taking partials back.
            drop(give_back.try_send(partial));
        }
    }

    /// The clock of the slowest worker still running: every packet before it has been
    /// absorbed. `None` until each of them has handed over once.
    fn watermark(&self) -> Option<Timestamp> {
        let mut slowest: Option<Timestamp> = None;
        for (clock, _) in self
            .clocks
            .iter()
            .zip(&self.open)
            .filter(|(_, open)| **open)
        {
            let clock = (*clock)?;
            slowest = Some(slowest.map_or(clock, |s| s.min(clock)));
        }
        slowest
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::alert::{Alert, AlertState};
    use crate::detect::{Detector, RuleSet};

    /// A detection with one `volume` rule: 100 packets a second to one host over 1 s.
    fn detection(out: &Arc<Mutex<Vec<Alert>>>) -> Detection {
        detection_with(out, "threshold = 100\n")
    }

    /// A detection with one `volume` rule whose threshold and window are `settings`.
    fn detection_with(out: &Arc<Mutex<Vec<Alert>>>, settings: &str) -> Detection {
        let text = format!(
            "[[networks]]\nname = \"lan\"\ncidrs = [\"10.0.0.0/16\"]\n\
             [[rules]]\nname = \"udp_flood\"\nkind = \"volume\"\nseverity = \"critical\"\n\
             {settings}"
        );
        let config = crate::config::parse(&text, std::path::Path::new("t.toml")).unwrap();
        let rules = Arc::new(RuleSet::build(&config).unwrap());
        Detection::new(Detector::new(rules), Box::new(Arc::clone(out)))
    }

    /// Packets to 10.0.0.1 at `pps` for seconds `from..to`, dealt round-robin to
    /// `collectors`, each ticked every second.
    fn flood(collectors: &mut [Collector], pps: u64, from: u64, to: u64) {
        let (src, dst): (IpAddr, IpAddr) =
            ("198.51.100.1".parse().unwrap(), "10.0.0.1".parse().unwrap());
        let n = collectors.len() as u64;
        for s in from..to {
            for i in 0..pps {
                let ts = Timestamp::from_nanos(s * 1_000_000_000 + i * (1_000_000_000 / pps));
                if let Some(c) = collectors.get_mut(usize::try_from(i % n).unwrap()) {
                    c.observe(&PacketView::test_udp(ts, src, dst));
                }
            }
            let now = Timestamp::from_nanos((s + 1) * 1_000_000_000);
            for c in collectors.iter_mut() {
                c.tick(now);
            }
        }
    }

    fn states(out: &Arc<Mutex<Vec<Alert>>>) -> Vec<AlertState> {
        out.lock().unwrap().iter().map(|a| a.state).collect()
    }

    #[test]
    fn a_flood_split_over_four_workers_alerts_as_one_worker_sees_it() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let (evaluator, collectors) = share(detection(&out), 4);
        let evaluator = std::thread::spawn(move || evaluator.run());
        let mut collectors: Vec<Collector> =
            collectors.into_iter().map(Collector::in_lockstep).collect();
        // 200 packets a second: 50 per worker, half the threshold each.
        flood(&mut collectors, 200, 0, 3);
        for c in &mut collectors {
            c.finish(None);
        }
        drop(collectors);
        evaluator.join().unwrap();
        assert_eq!(states(&out), [AlertState::Firing]);
    }

    #[test]
    fn a_worker_whose_partial_is_not_back_keeps_counting_and_loses_nothing() {
        let out = Arc::new(Mutex::new(Vec::new()));
        // 600 packets in a 10 s window reach 60 a second only if none is lost.
        let settings = "threshold = 60\nwindow = \"10s\"\n";
        let (evaluator, mut collectors) = share(detection_with(&out, settings), 1);
        // No evaluator running yet: the first tick hands a partial over, the following
        // ones find none given back and count on into the same partial.
        flood(&mut collectors, 150, 0, 4);
        let evaluator = std::thread::spawn(move || evaluator.run());
        for c in &mut collectors {
            c.finish(None);
        }
        drop(collectors);
        evaluator.join().unwrap();
        let alerts = out.lock().unwrap();
        let firing = alerts.iter().find(|a| a.state == AlertState::Firing);
        assert!(
            firing.is_some(),
            "every packet reached the evaluator: {alerts:?}"
        );
    }

    #[test]
    fn a_worker_gone_without_finishing_no_longer_holds_the_clock_back() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let (evaluator, collectors) = share(detection(&out), 2);
        let evaluator = std::thread::spawn(move || evaluator.run());
        let mut collectors: Vec<Collector> =
            collectors.into_iter().map(Collector::in_lockstep).collect();
        // The second worker fails at once; the first alone carries the flood.
        drop(collectors.pop());
        flood(&mut collectors, 300, 0, 3);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while states(&out).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(
            !states(&out).is_empty(),
            "the evaluator evaluates on the remaining worker's clock"
        );
        drop(collectors);
        evaluator.join().unwrap();
        assert_eq!(states(&out), [AlertState::Firing]);
    }
}
