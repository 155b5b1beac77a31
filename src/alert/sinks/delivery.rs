//! Reliable delivery to one HTTP receiver: a bounded queue and a retrying sender task.
//!
//! Owns [`Queue`] (bounded, FIFO, optionally coalescing entries that share a key so only
//! the latest state of an alert waits), the router-side [`Inlet`], and [`run`], the task
//! that takes batches off the queue and POSTs them, retrying with [`Backoff`] until success,
//! a 4xx answer, `max_attempts`, or the end of the shutdown grace period. Does not own:
//! what the bodies contain (`alertmanager`, `webhook`) or the HTTP exchange (`http`).
//!
//! Invariants: the queue never holds more than its capacity; every item that enters is,
//! exactly once, either counted as sent or counted under one drop reason.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::http::{Target, post};
use super::retry::{Backoff, Jitter};
use crate::telemetry::AlertSinkMetrics;

/// One queued body, with the alert identity it may be coalesced on.
#[derive(Debug)]
struct Item {
    seq: u64,
    key: Option<String>,
    body: Bytes,
}

/// A bounded FIFO of bodies. With a key, a new body replaces a queued one of the same key
/// (keeping its place), so a receiver that is down does not collect stale re-sends.
#[derive(Debug)]
pub(crate) struct Queue {
    items: VecDeque<Item>,
    by_key: HashMap<String, u64>,
    capacity: usize,
    next_seq: u64,
}

impl Queue {
    /// An empty queue holding at most `capacity` bodies.
    pub(crate) fn new(capacity: usize) -> Queue {
        Queue {
            items: VecDeque::new(),
            by_key: HashMap::new(),
            capacity,
            next_seq: 0,
        }
    }

    /// Queues `body`; returns false (and keeps nothing) when full.
    pub(crate) fn push(&mut self, key: Option<String>, body: Bytes) -> bool {
        if let Some(k) = &key
            && let Some(&seq) = self.by_key.get(k)
            && let Ok(at) = self.items.binary_search_by_key(&seq, |i| i.seq)
            && let Some(item) = self.items.get_mut(at)
        {
            item.body = body;
            return true;
        }
        if self.items.len() >= self.capacity {
            return false;
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        if let Some(k) = &key {
            self.by_key.insert(k.clone(), seq);
        }
        self.items.push_back(Item { seq, key, body });
        true
    }

    /// Removes up to `max` bodies from the front.
    pub(crate) fn take(&mut self, max: usize) -> Vec<Bytes> {
        let n = max.min(self.items.len());
        self.items
            .drain(..n)
            .map(|item| {
                if let Some(k) = item.key {
                    self.by_key.remove(&k);
                }
                item.body
            })
            .collect()
    }

    /// Bodies waiting.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

/// How a batch of bodies becomes one request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Up to this many bodies joined into one JSON array (Alertmanager).
    Array(usize),
    /// One body per request (webhook).
    Single,
}

impl Framing {
    fn batch(self) -> usize {
        match self {
            Framing::Array(n) => n.max(1),
            Framing::Single => 1,
        }
    }

    fn frame(self, bodies: &[Bytes]) -> Bytes {
        if let (Framing::Single, [one]) = (self, bodies) {
            return one.clone();
        }
        let len = bodies.iter().map(Bytes::len).sum::<usize>() + bodies.len() + 2;
        let mut out = BytesMut::with_capacity(len);
        out.put_u8(b'[');
        for (i, b) in bodies.iter().enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            out.put_slice(b);
        }
        out.put_u8(b']');
        out.freeze()
    }
}

/// State shared by the router (pushing) and the sender task (taking).
#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding this lock is a bug that already stops the process; the
        // queue itself stays consistent, so keep delivering.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The router's end of one receiver's queue.
#[derive(Clone)]
pub(crate) struct Inlet {
    shared: Arc<Shared>,
    metrics: AlertSinkMetrics,
}

impl Inlet {
    /// Queues one body (coalescing on `key`), counting a drop when full.
    pub(crate) fn push(&self, key: Option<String>, body: Bytes) {
        let (accepted, len) = {
            let mut q = self.shared.lock();
            (q.push(key, body), q.len())
        };
        if accepted {
            self.metrics.queue_length.set(gauge(len));
            self.shared.wake.notify_one();
        } else {
            self.metrics.queue_full.inc();
            tracing::warn!(sink = %self.name(), "Alert queue full; alert dropped.");
        }
    }

    fn name(&self) -> &str {
        self.metrics.sink()
    }
}

/// How one receiver is reached and retried.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Where to POST.
    pub(crate) target: Target,
    /// Array or single bodies.
    pub(crate) framing: Framing,
    /// Queue capacity in bodies.
    pub(crate) capacity: usize,
    /// Time limit of one request.
    pub(crate) timeout: Duration,
    /// Delay between attempts.
    pub(crate) backoff: Backoff,
    /// Attempts per batch before it is dropped.
    pub(crate) max_attempts: u32,
}

/// A receiver's sender task before it is spawned, with its inlet.
pub(crate) struct Sender {
    settings: Settings,
    shared: Arc<Shared>,
    metrics: AlertSinkMetrics,
}

/// Makes the queue of one receiver: the inlet for the router and the sender to spawn.
pub(crate) fn channel(settings: Settings, metrics: AlertSinkMetrics) -> (Inlet, Sender) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue::new(settings.capacity)),
        wake: Notify::new(),
    });
    let inlet = Inlet {
        shared: Arc::clone(&shared),
        metrics: metrics.clone(),
    };
    (
        inlet,
        Sender {
            settings,
            shared,
            metrics,
        },
    )
}

/// The shutdown signal: `Some(deadline)` once draining has begun.
pub(crate) type Drain = watch::Receiver<Option<Instant>>;

impl Sender {
    /// Delivers until draining has emptied the queue or the grace period ended; returns
    /// how many bodies were dropped at shutdown.
    pub(crate) async fn run(self, mut drain: Drain) -> u64 {
        let mut failures = 0_u32;
        let mut jitter = Jitter::new();
        let batch_max = self.settings.framing.batch();
        loop {
            let batch = self.take(batch_max);
            if batch.is_empty() {
                if drain.borrow_and_update().is_some() {
                    return 0;
                }
                tokio::select! {
                    () = self.shared.wake.notified() => {}
                    r = drain.changed() => if r.is_err() {
                        // The router is gone without draining: nothing more will come.
                        return 0;
                    },
                }
                continue;
            }
            if !self
                .deliver(&batch, &mut failures, &mut jitter, drain.clone())
                .await
            {
                let dropped =
                    u64::try_from(batch.len() + self.take(usize::MAX).len()).unwrap_or(u64::MAX);
                self.metrics.shutdown.inc_by(dropped);
                return dropped;
            }
        }
    }

    fn take(&self, max: usize) -> Vec<Bytes> {
        let (batch, len) = {
            let mut q = self.shared.lock();
            (q.take(max), q.len())
        };
        self.metrics.queue_length.set(gauge(len));
        batch
    }

    /// Tries `batch` until it is sent or given up; false if the grace period ended first.
    async fn deliver(
        &self,
        batch: &[Bytes],
        failures: &mut u32,
        jitter: &mut Jitter,
        drain: Drain,
    ) -> bool {
        let s = &self.settings;
        let body = s.framing.frame(batch);
        let n = u64::try_from(batch.len()).unwrap_or(u64::MAX);
        let sink = self.metrics.sink();
        for attempt in 1..=s.max_attempts {
            let started = Instant::now();
            let result = tokio::select! {
                r = post(&s.target, body.clone(), s.timeout) => r,
                () = grace_over(drain.clone()) => return false,
            };
            self.metrics
                .duration
                .observe(started.elapsed().as_secs_f64());
            let error = match result {
                Ok(()) => {
                    self.metrics.sent.inc_by(n);
                    *failures = 0;
                    return true;
                }
                Err(e) => e,
            };
            self.metrics.error(error.as_str());
            if !error.is_retryable() {
                self.metrics.rejected.inc_by(n);
                tracing::error!(
                    sink, error = ?error, alerts = n,
                    "Receiver refused alerts; dropped."
                );
                return true;
            }
            *failures = failures.saturating_add(1);
            if attempt == s.max_attempts {
                break;
            }
            let delay = s.backoff.delay(*failures, jitter.next_unit());
            tracing::debug!(
                sink, error = ?error, attempt, ?delay,
                "Alert delivery failed; retrying."
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = grace_over(drain.clone()) => return false,
            }
        }
        self.metrics.retries_exhausted.inc_by(n);
        tracing::error!(
            sink,
            attempts = s.max_attempts,
            alerts = n,
            "Alert delivery failed; dropped."
        );
        true
    }
}

/// Resolves once draining has begun and its deadline has passed (or the router is gone).
async fn grace_over(mut drain: Drain) {
    loop {
        let deadline = *drain.borrow_and_update();
        if let Some(deadline) = deadline {
            tokio::time::sleep_until(deadline).await;
            return;
        }
        if drain.changed().await.is_err() {
            return;
        }
    }
}

fn gauge(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn queue_is_bounded_and_fifo() {
        let mut q = Queue::new(2);
        assert!(q.push(None, b("1")));
        assert!(q.push(None, b("2")));
        assert!(!q.push(None, b("3")));
        assert_eq!(q.take(10), [b("1"), b("2")]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn queue_coalesces_same_key_in_place_even_when_full() {
        let mut q = Queue::new(2);
        assert!(q.push(Some("a".into()), b("a1")));
        assert!(q.push(Some("b".into()), b("b1")));
        assert!(q.push(Some("a".into()), b("a2")));
        assert_eq!(q.len(), 2);
        assert_eq!(q.take(1), [b("a2")]);
        // Once taken (in flight), a new state of `a` queues anew.
        assert!(q.push(Some("a".into()), b("a3")));
        assert_eq!(q.take(10), [b("b1"), b("a3")]);
    }

    #[test]
    fn framing_joins_bodies_into_a_json_array() {
        let bodies = [b("{\"a\":1}"), b("{\"b\":2}")];
        let framed = Framing::Array(64).frame(&bodies);
        let v: serde_json::Value = serde_json::from_slice(&framed).unwrap();
        assert_eq!(v, serde_json::json!([{"a": 1}, {"b": 2}]));
        assert_eq!(Framing::Single.frame(&bodies[..1]), bodies[0]);
    }
}
