//! A single-producer single-consumer ring of fixed-size messages, safe Rust on atomics.
//!
//! Why not crossbeam's `ArrayQueue`: its pop is a compare-and-swap per element, a full
//! barrier on x86, so a worker draining N updates waits for N cross-core cache-line
//! transfers one after another. Here the consumer reads the producer's index once per
//! batch, then the messages with plain loads that overlap (and that the hardware prefetcher
//! follows, the ring being sequential), then publishes its index once.
//!
//! Messages are four `u64` words (32 bytes, two per cache line), each word an `AtomicU64`
//! accessed with relaxed ordering; the index stores and loads carry release/acquire, which
//! orders the words. Safe Rust only, no allocation after construction, no lock.

use crossbeam::utils::CachePadded;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// One message.
pub type Message = [u64; 4];

/// The shared ring; producer and consumer each hold an `Arc` of it.
pub struct Ring {
    slots: Box<[[AtomicU64; 4]]>,
    mask: usize,
    /// Next message the consumer will read; written by the consumer only.
    head: CachePadded<AtomicUsize>,
    /// Next message the producer will write; written by the producer only.
    tail: CachePadded<AtomicUsize>,
}

impl Ring {
    /// A ring of at least `capacity` messages (rounded up to a power of two).
    pub fn new(capacity: usize) -> Self {
        let n = capacity.max(2).next_power_of_two();
        let slots = (0..n)
            .map(|_| {
                [
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                ]
            })
            .collect();
        Self {
            slots,
            mask: n - 1,
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// Messages the ring holds when full.
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Messages waiting (a snapshot).
    pub fn len(&self) -> usize {
        self.tail
            .load(Ordering::Acquire)
            .wrapping_sub(self.head.load(Ordering::Acquire))
    }

    /// True when no message waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Free room as the producer sees it. Producer only.
    pub fn room(&self) -> usize {
        let t = self.tail.load(Ordering::Relaxed);
        self.capacity() - t.wrapping_sub(self.head.load(Ordering::Acquire))
    }

    /// Writes one message; the caller (the only producer) has checked [`Ring::room`].
    /// Returns `false`, writing nothing, when the ring is full after all.
    pub fn push(&self, m: &Message) -> bool {
        let t = self.tail.load(Ordering::Relaxed);
        if t.wrapping_sub(self.head.load(Ordering::Acquire)) >= self.capacity() {
            return false;
        }
        self.write(t, m);
        self.tail.store(t.wrapping_add(1), Ordering::Release);
        true
    }

    /// Writes one message without reading the consumer's index: the caller (the only
    /// producer) knows from an earlier [`Ring::room`] that there is room. Wrong knowledge
    /// overwrites unread messages (a logic error, never memory unsafety).
    pub fn push_known_room(&self, m: &Message) {
        let t = self.tail.load(Ordering::Relaxed);
        self.write(t, m);
        self.tail.store(t.wrapping_add(1), Ordering::Release);
    }

    fn write(&self, t: usize, m: &Message) {
        if let Some(slot) = self.slots.get(t & self.mask) {
            for (w, v) in slot.iter().zip(m) {
                w.store(*v, Ordering::Relaxed);
            }
        }
    }

    /// Reads up to `max` messages, oldest first, handing each to `f`. Consumer only.
    pub fn pop_batch(&self, max: usize, f: impl FnMut(&Message)) -> usize {
        let h = self.head.load(Ordering::Relaxed);
        let n = self.peek_batch(max, f);
        self.head.store(h.wrapping_add(n), Ordering::Release);
        n
    }

    /// Reads up to `max` messages, oldest first, handing each to `f`, and leaves them in
    /// the ring: a [`Ring::pop_batch`] of as many then reads the same ones. Consumer only.
    pub fn peek_batch(&self, max: usize, mut f: impl FnMut(&Message)) -> usize {
        let h = self.head.load(Ordering::Relaxed);
        let n = self.tail.load(Ordering::Acquire).wrapping_sub(h).min(max);
        for i in 0..n {
            if let Some(slot) = self.slots.get(h.wrapping_add(i) & self.mask) {
                let m = [
                    slot[0].load(Ordering::Relaxed),
                    slot[1].load(Ordering::Relaxed),
                    slot[2].load(Ordering::Relaxed),
                    slot[3].load(Ordering::Relaxed),
                ];
                f(&m);
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn fifo_full_and_wrap() {
        let r = Ring::new(3);
        assert_eq!(r.capacity(), 4);
        for i in 0..4u64 {
            assert!(r.push(&[i, i + 1, i + 2, i + 3]));
        }
        assert!(!r.push(&[9; 4]));
        assert_eq!(r.room(), 0);
        let mut got = Vec::new();
        assert_eq!(r.peek_batch(2, |m| got.push(m[0])), 2);
        assert_eq!(got, [0, 1]);
        got.clear();
        assert_eq!(r.pop_batch(3, |m| got.push(m[0])), 3);
        assert_eq!(got, [0, 1, 2]);
        for i in 10..13u64 {
            assert!(r.push(&[i; 4]));
        }
        got.clear();
        assert_eq!(r.pop_batch(usize::MAX, |m| got.push(m[3])), 4);
        assert_eq!(got, [6, 10, 11, 12]);
        assert!(r.is_empty());
    }

    #[test]
    fn two_threads_see_every_message_in_order() {
        let r = Arc::new(Ring::new(64));
        let c = Arc::clone(&r);
        let n = 30_000u64;
        let consumer = std::thread::spawn(move || {
            let mut next = 0u64;
            while next < n {
                c.pop_batch(17, |m| {
                    assert_eq!(*m, [next, !next, next * 3, next ^ 0x5555]);
                    next += 1;
                });
            }
        });
        let mut i = 0u64;
        while i < n {
            if r.push(&[i, !i, i * 3, i ^ 0x5555]) {
                i += 1;
            } else {
                std::thread::yield_now();
            }
        }
        consumer.join().expect("consumer");
    }
}
