//! The virtual clock and the discrete-event queue. Events at equal times run in the order
//! they were scheduled (a sequence number breaks ties), which keeps runs deterministic.

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

#[derive(Clone, Debug, Default)]
pub struct EventQueue {
    heap: BinaryHeap<Event>,
    seq: u64,
}

impl EventQueue {
    pub fn schedule(&mut self, at: u64, kind: EventKind) {
        self.seq += 1;
        self.heap.push(Event {
            at,
            seq: self.seq,
            kind,
        });
    }

    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|e| e.at)
    }

    /// The next event if it is due at or before `limit`.
    pub fn pop_due(&mut self, limit: u64) -> Option<Event> {
        if self.heap.peek()?.at <= limit {
            self.heap.pop()
        } else {
            None
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
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
}
