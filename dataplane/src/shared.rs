//! Counters a worker publishes for other threads to read, without locks or locked
//! instructions.
//!
//! A worker's loop and its pipeline each increment plain integers of their own
//! [`Counters`]. Now and then the loop stores their sum into its [`SharedCounters`] with
//! relaxed atomic stores, which on x86 are plain moves; the control side loads them the
//! same way and adds the workers up with [`sum`]. Each value read is one the worker wrote
//! (no torn words); values of different counters may be a publication apart, which totals
//! shown to an operator tolerate.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::counters::Counters;

/// One worker's published counters.
#[derive(Debug)]
pub struct SharedCounters {
    words: Box<[AtomicU64]>,
    isps: usize,
}

impl SharedCounters {
    /// Room for counters of `max_isps` ISPs.
    pub fn new(max_isps: usize) -> Self {
        SharedCounters {
            words: (0..Counters::words(max_isps))
                .map(|_| AtomicU64::new(0))
                .collect(),
            isps: max_isps,
        }
    }

    /// Publishes `own` plus `pipeline` (the worker loop's counters and its pipeline's;
    /// the worker's own thread only). No allocation.
    pub fn publish(&self, own: &Counters, pipeline: Option<&Counters>) {
        let mut w = self.words.iter();
        own.put_sum(pipeline, self.isps, &mut |v| {
            if let Some(a) = w.next() {
                a.store(v, Ordering::Relaxed);
            }
        });
    }

    /// Reads what was last published (any thread).
    pub fn load(&self) -> Counters {
        let mut w = self.words.iter().map(|a| a.load(Ordering::Relaxed));
        Counters::from_words(self.isps, &mut || w.next().unwrap_or(0))
    }
}

/// The counters of all `workers` added up: what `ctl stats` and the exit report show.
pub fn sum<'a>(workers: impl IntoIterator<Item = &'a SharedCounters>) -> Counters {
    let all: Vec<Counters> = workers.into_iter().map(SharedCounters::load).collect();
    let mut total = Counters::new(all.iter().map(Counters::isp_count).max().unwrap_or(0));
    for c in &all {
        total.add(c);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::DropReason;

    #[test]
    fn publish_then_load_gives_the_sum_of_loop_and_pipeline() {
        let mut node = Counters::new(3);
        if let Some(x) = node.isp_mut(2) {
            x.headend_up.count(100);
            x.tailend_down.count(60);
        }
        node.add_drops(DropReason::SourceGuard, 7);
        node.drop(DropReason::NoHeadroom);
        node.worker.punts = 5;
        node.worker.transit_packets = 1;
        node.worker.updates_applied = 9;
        let mut own = Counters::new(0);
        own.worker.rx = 20;
        own.add_drops(DropReason::TxFull, 3);
        let s = SharedCounters::new(3);
        s.publish(&own, Some(&node));
        let mut want = node.clone();
        want.add(&own);
        assert_eq!(s.load(), want);
        assert_eq!(s.load().isp(2).headend_up.bytes, 100);
        s.publish(&own, None);
        assert_eq!(s.load().worker.rx, 20);
        assert_eq!(s.load().isp(2).headend_up.bytes, 0);
    }

    #[test]
    fn sum_adds_workers() {
        let (a, b) = (SharedCounters::new(2), SharedCounters::new(4));
        let mut c = Counters::new(4);
        c.drop(DropReason::UnknownMac);
        c.isp_mut(3).expect("isp").tailend_up.count(10);
        a.publish(&c, None);
        b.publish(&c, None);
        let t = sum([&a, &b]);
        assert_eq!(t.drops(DropReason::UnknownMac), 2);
        assert_eq!(t.isp_count(), 4);
        assert_eq!(t.isp(3).tailend_up.packets, 1, "a has no room for ISP 3");
    }
}
