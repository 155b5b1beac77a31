//! A min-heap of pending events, so many concurrent sessions interleave in time order.
//!
//! Owns [`Scheduler`]. Events with equal times come out in insertion order, which keeps
//! the generated trace independent of heap internals (and so deterministic).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One pending event.
struct Entry<S> {
    at_ns: u64,
    seq: u64,
    item: S,
}

impl<S> PartialEq for Entry<S> {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ns, self.seq) == (other.at_ns, other.seq)
    }
}

impl<S> Eq for Entry<S> {}

impl<S> PartialOrd for Entry<S> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<S> Ord for Entry<S> {
    /// Reversed, so the max-heap `BinaryHeap` pops the earliest (then oldest) entry first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_ns, other.seq).cmp(&(self.at_ns, self.seq))
    }
}

/// Pending events ordered by time, then by insertion.
pub(super) struct Scheduler<S> {
    heap: BinaryHeap<Entry<S>>,
    next_seq: u64,
}

impl<S> Scheduler<S> {
    pub(super) fn new() -> Scheduler<S> {
        Scheduler {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }

    /// Schedules `item` at `at_ns`.
    pub(super) fn push(&mut self, at_ns: u64, item: S) {
        self.heap.push(Entry {
            at_ns,
            seq: self.next_seq,
            item,
        });
        self.next_seq += 1;
    }

    /// Time of the earliest pending event.
    pub(super) fn peek_ns(&self) -> Option<u64> {
        self.heap.peek().map(|e| e.at_ns)
    }

    /// Removes and returns the earliest pending event.
    pub(super) fn pop(&mut self) -> Option<(u64, S)> {
        self.heap.pop().map(|e| (e.at_ns, e.item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut s = Scheduler::new();
        s.push(30, 'c');
        s.push(10, 'a');
        s.push(30, 'd');
        s.push(10, 'b');
        assert_eq!(s.peek_ns(), Some(10));
        let order: Vec<char> = std::iter::from_fn(|| s.pop().map(|(_, c)| c)).collect();
        assert_eq!(order, ['a', 'b', 'c', 'd']);
    }
}
