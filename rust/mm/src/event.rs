//! The virtual clock and the discrete-event queue. Events at equal times run in the order
//! they were scheduled (a sequence number breaks ties), which keeps runs deterministic.
//!
//! The queue is a priority queue on `(at, seq)`. Few events are pending at a time (a step per
//! workload, the sampler, the flusher, kswapd, writeback completions, pin releases, a
//! `cma_alloc` in progress: a dozen or two), and most are scheduled a little ahead of the
//! clock (a workload's next operation), so they live in a short vector kept sorted, latest
//! first: popping the earliest is `Vec::pop`, scheduling is a short scan from the end and a
//! small move, with no sift through a heap. Beyond `NEAR_CAP` pending events the rest go to
//! a binary heap, and popping takes the earlier of the two heads. Since `seq` is unique the
//! order on `(at, seq)` is total, so which of the two holds an event does not change the
//! order in which events run.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Advance a `cma_alloc` job by one step.
    CmaJob(u32),
    /// Drop a reference or pin taken for a fixed time.
    ReleaseHold(u64),
    /// Drop a group of holds taken together (the pages of one I/O, unpinned at completion).
    ReleaseHolds(u64),
    /// A write request completes (`folio_end_writeback` on its pages).
    WritebackDone(u32),
    /// kswapd runs one balancing pass.
    Kswapd,
    /// A background workload runs its next step.
    Workload(u32),
    /// Flusher thread: write back pages dirty for longer than `dirty_expire`.
    Flusher,
    /// Sample the time series.
    Sample,
}

#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub at: u64,
    seq: u64,
    pub kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    /// Reversed so that `BinaryHeap` (a max-heap) pops the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Pending events kept in the sorted vector before the heap takes the rest.
const NEAR_CAP: usize = 48;

#[derive(Clone, Debug, Default)]
pub struct EventQueue {
    /// Up to `NEAR_CAP` events sorted by `(at, seq)`, latest first: the earliest is last.
    near: Vec<Event>,
    /// Events scheduled while `near` was full.
    heap: BinaryHeap<Event>,
    seq: u64,
}

impl EventQueue {
    /// Always inlined: called out of line, the caller's `kind` reached it through memory,
    /// written in pieces and read back whole, a store-forwarding stall on every event
    /// (`perf`: 3% of `tv_evening`).
    #[inline(always)]
    pub fn schedule(&mut self, at: u64, kind: EventKind) {
        self.seq += 1;
        let ev = Event {
            at,
            seq: self.seq,
            kind,
        };
        if self.near.len() >= NEAR_CAP {
            self.heap.push(ev);
            return;
        }
        // `ev` has the highest `seq` so far: it goes before (in this latest-first order)
        // every event due at or before `at`. Insertion sort from the end: events are mostly
        // scheduled a little ahead of the clock, so few move.
        self.near.push(ev);
        let near = &mut self.near[..];
        let mut i = near.len() - 1;
        while i > 0 && near[i - 1].at <= at {
            near[i] = near[i - 1];
            i -= 1;
        }
        near[i] = ev;
    }

    /// The earlier head: `Some(true)` if it is the vector's, `Some(false)` the heap's.
    #[inline]
    fn head_is_near(&self) -> Option<bool> {
        match (self.near.last(), self.heap.peek()) {
            (Some(n), Some(h)) => Some((n.at, n.seq) < (h.at, h.seq)),
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            (None, None) => None,
        }
    }

    #[inline]
    pub fn peek_time(&self) -> Option<u64> {
        match (self.near.last(), self.heap.peek()) {
            (Some(n), Some(h)) => Some(n.at.min(h.at)),
            (Some(n), None) => Some(n.at),
            (None, h) => h.map(|e| e.at),
        }
    }

    /// The next event if it is due at or before `limit`.
    #[inline]
    pub fn pop_due(&mut self, limit: u64) -> Option<Event> {
        if self.peek_time()? > limit {
            return None;
        }
        if self.head_is_near()? {
            self.near.pop()
        } else {
            self.heap.pop()
        }
    }

    pub fn len(&self) -> usize {
        self.near.len() + self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.near.is_empty() && self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_then_fifo() {
        let mut q = EventQueue::default();
        q.schedule(20, EventKind::Kswapd);
        q.schedule(10, EventKind::CmaJob(1));
        q.schedule(10, EventKind::CmaJob(2));
        assert_eq!(q.pop_due(100).unwrap().kind, EventKind::CmaJob(1));
        assert_eq!(q.pop_due(100).unwrap().kind, EventKind::CmaJob(2));
        assert!(q.pop_due(15).is_none());
        assert_eq!(q.pop_due(20).unwrap().kind, EventKind::Kswapd);
    }

    /// The vector-and-heap queue pops in exactly the order of a plain heap on `(at, seq)`,
    /// whether it holds a few events or more than the vector takes.
    #[test]
    fn same_order_as_a_heap() {
        let mut rng = crate::rng::Rng::new(11);
        for pending in [3usize, 20, NEAR_CAP + 40] {
            let mut q = EventQueue::default();
            let mut reference: BinaryHeap<Event> = BinaryHeap::new();
            let mut seq = 0;
            let mut now = 0u64;
            let mut popped = 0;
            while popped < 20_000 {
                while q.len() < pending {
                    // Ties are frequent: times on a coarse grid.
                    let at = now + rng.below(8) * 10;
                    let id = rng.below(1000) as u32;
                    q.schedule(at, EventKind::Workload(id));
                    seq += 1;
                    reference.push(Event {
                        at,
                        seq,
                        kind: EventKind::Workload(id),
                    });
                }
                assert_eq!(q.peek_time(), reference.peek().map(|e| e.at));
                let limit = now + rng.below(30);
                let got = q.pop_due(limit);
                let want = match reference.peek() {
                    Some(e) if e.at <= limit => reference.pop(),
                    _ => None,
                };
                assert_eq!(got.map(|e| (e.at, e.seq)), want.map(|e| (e.at, e.seq)));
                match got {
                    Some(e) => {
                        now = e.at;
                        popped += 1;
                    }
                    None => now = limit,
                }
                assert_eq!(q.len(), reference.len());
            }
        }
    }
}
