//! Counters a worker publishes for other threads to read, without locks or locked
//! instructions.
//!
//! A worker owns its [`Counters`] and increments plain integers. Now and then it stores a
//! copy into a [`SharedCounters`] with relaxed atomic stores, which on x86 are plain moves;
//! the control side loads them the same way. Each value read is one the worker wrote (no
//! torn words); values of different counters may be a publication apart, which totals
//! shown to an operator tolerate.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::counters::{Counters, DropReason, IspCounters, PacketBytes};

const PER_ISP: usize = 8;
const SCALARS: usize = 6;

/// One worker's published counters.
#[derive(Debug)]
pub struct SharedCounters {
    words: Box<[AtomicU64]>,
    isps: usize,
}

impl SharedCounters {
    /// Room for counters of `max_isps` ISPs.
    pub fn new(max_isps: usize) -> Self {
        let n = max_isps * PER_ISP + DropReason::COUNT + SCALARS;
        SharedCounters {
            words: (0..n).map(|_| AtomicU64::new(0)).collect(),
            isps: max_isps,
        }
    }

    /// Publishes `c` (the worker's own thread only).
    pub fn store(&self, c: &Counters) {
        let mut w = self.words.iter();
        let mut put = |v: u64| {
            if let Some(a) = w.next() {
                a.store(v, Ordering::Relaxed);
            }
        };
        for i in 0..self.isps {
            let x = u16::try_from(i).map(|i| c.isp(i)).unwrap_or_default();
            for pb in [x.headend_up, x.headend_down, x.tailend_up, x.tailend_down] {
                put(pb.packets);
                put(pb.bytes);
            }
        }
        for r in DropReason::ALL {
            put(c.drops(r));
        }
        for v in [
            c.punts,
            c.arp_replies,
            c.transit.packets,
            c.transit.bytes,
            c.updates_applied,
            c.updates_refused,
        ] {
            put(v);
        }
    }

    /// Reads what was last published (any thread).
    pub fn load(&self) -> Counters {
        let mut w = self.words.iter().map(|a| a.load(Ordering::Relaxed));
        let mut get = || w.next().unwrap_or(0);
        let mut c = Counters::new(self.isps);
        for i in 0..self.isps {
            let mut pb = || PacketBytes {
                packets: get(),
                bytes: get(),
            };
            let x = IspCounters {
                headend_up: pb(),
                headend_down: pb(),
                tailend_up: pb(),
                tailend_down: pb(),
            };
            if let Some(slot) = u16::try_from(i).ok().and_then(|i| c.isp_mut(i)) {
                *slot = x;
            }
        }
        for r in DropReason::ALL {
            c.add_drops(r, get());
        }
        c.punts = get();
        c.arp_replies = get();
        c.transit = PacketBytes {
            packets: get(),
            bytes: get(),
        };
        c.updates_applied = get();
        c.updates_refused = get();
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_then_load_gives_the_same_counters() {
        let mut c = Counters::new(3);
        if let Some(x) = c.isp_mut(2) {
            x.headend_up.count(100);
            x.tailend_down.count(60);
        }
        c.add_drops(DropReason::SourceGuard, 7);
        c.drop(DropReason::NoHeadroom);
        c.punts = 5;
        c.transit.count(1500);
        c.updates_applied = 9;
        let s = SharedCounters::new(3);
        s.store(&c);
        assert_eq!(s.load(), c);
        assert_eq!(s.load().isp(2).headend_up.bytes, 100);
    }
}
