//! The engine's deadlines: transaction timeouts and lease expiries, in a min-heap.
//!
//! The slow-path loop asks for the next deadline on every turn; with tens of thousands of
//! bindings, scanning them all there cost a fifth of the slow path's time under load. A heap
//! answers in O(1) and pops in O(log n). Entries are never updated in place: a renewal or a
//! failover pushes a new one, and an entry whose deadline no longer matches the live state
//! is stale and skipped when it comes due (lazy deletion). The heap is rebuilt from the live
//! state when stale entries outnumber live ones by far, so memory stays bounded.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::MacAddr;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// A relayed request (client MAC, xid) waiting for its server.
    Transaction(MacAddr, u32),
    /// A binding's lease end.
    Lease(MacAddr),
}

/// Deadlines, earliest first; may hold stale entries (see the module doc).
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Timer)>>,
}

/// Stale entries tolerated per live one before a rebuild (plus a floor for small tables).
const SLACK: usize = 4;
const FLOOR: usize = 1024;

impl Timers {
    /// Adds a deadline.
    pub fn push(&mut self, at: Instant, t: Timer) {
        self.heap.push(Reverse((at, t)));
    }

    /// The earliest deadline, possibly stale (then the tick it causes finds nothing due).
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, Timer)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Entries held, stale ones included.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// True when the heap holds so many stale entries that it should be rebuilt from the
    /// `live` deadlines.
    pub fn needs_rebuild(&self, live: usize) -> bool {
        self.heap.len() > FLOOR + SLACK * live
    }

    /// Replaces every entry with `live` (the deadlines in force).
    pub fn rebuild(&mut self, live: impl IntoIterator<Item = (Instant, Timer)>) {
        self.heap = live.into_iter().map(Reverse).collect();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;
    use std::time::Duration;

    use super::*;

    fn t(s: u64) -> Instant {
        static BASE: OnceLock<Instant> = OnceLock::new();
        *BASE.get_or_init(Instant::now) + Duration::from_secs(s)
    }

    #[test]
    fn earliest_first_and_only_when_due() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let mut ts = Timers::default();
        ts.push(t(30), Timer::Lease(mac));
        ts.push(t(10), Timer::Transaction(mac, 7));
        ts.push(t(20), Timer::Lease(mac));
        assert_eq!(ts.next(), Some(t(10)));
        assert_eq!(ts.pop_due(t(9)), None);
        assert_eq!(ts.pop_due(t(25)), Some((t(10), Timer::Transaction(mac, 7))));
        assert_eq!(ts.pop_due(t(25)), Some((t(20), Timer::Lease(mac))));
        assert_eq!(ts.pop_due(t(25)), None);
        assert_eq!(ts.len(), 1);
    }

    #[test]
    fn rebuild_drops_stale_entries() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let mut ts = Timers::default();
        for s in 0..(FLOOR as u64 + 10) {
            ts.push(t(s), Timer::Lease(mac));
        }
        assert!(ts.needs_rebuild(1));
        ts.rebuild([(t(99), Timer::Lease(mac))]);
        assert_eq!((ts.len(), ts.next()), (1, Some(t(99))));
        assert!(!ts.needs_rebuild(1));
    }
}
