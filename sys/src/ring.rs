//! Lockless DPDK rings of mbufs: the punt and inject paths, and `net_ring` test ports.

use std::ptr::NonNull;
use std::sync::Arc;

use crate::eal::{guard, EalGuard};
use crate::error::{check, cstring, Error, Result};
use crate::ffi;
use crate::mbuf::Burst;
use crate::port::PortId;

/// Who may enqueue and dequeue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingMode {
    /// One producer thread and one consumer thread.
    SingleProducerSingleConsumer,
    /// Several producers (workers punting) and one consumer (the slow path).
    MultiProducerSingleConsumer,
    /// Any number of each.
    MultiProducerMultiConsumer,
}

/// A ring of mbuf pointers (`rte_ring`).
#[derive(Debug)]
pub struct Ring {
    ptr: NonNull<ffi::rte_ring>,
    _eal: Arc<EalGuard>,
}

// SAFETY: rte_ring is a lock-free queue designed for concurrent use within its mode; the
// mode chosen at creation states which concurrent uses are allowed, and a Ring used in
// several threads is shared as &Ring only by the owner that chose a multi mode.
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    /// Creates a ring of `count` slots (a power of two; one slot stays empty).
    pub fn new(name: &str, count: u32, mode: RingMode) -> Result<Ring> {
        let flags = match mode {
            RingMode::SingleProducerSingleConsumer => ffi::RING_F_SP_ENQ | ffi::RING_F_SC_DEQ,
            RingMode::MultiProducerSingleConsumer => ffi::RING_F_SC_DEQ,
            RingMode::MultiProducerMultiConsumer => 0,
        };
        let eal = guard()?;
        let c = cstring(name)?;
        // SAFETY: valid C string; EAL is initialised (we hold a guard).
        let p = unsafe { ffi::rte_ring_create(c.as_ptr(), count, 0, flags) };
        NonNull::new(p)
            .map(|ptr| Ring { ptr, _eal: eal })
            .ok_or_else(|| Error::last("rte_ring_create"))
    }

    /// Moves as many mbufs of `burst` into the ring as fit; the rest stay in `burst`.
    #[inline]
    pub fn enqueue_burst(&self, burst: &mut Burst) -> usize {
        let n = burst.len() as u32;
        if n == 0 {
            return 0;
        }
        // SAFETY: burst holds n owned mbufs; the ring takes ownership of those it accepts.
        let done = unsafe {
            ffi::ispmux_ring_enqueue_burst(
                self.ptr.as_ptr(),
                burst.raw_ptr() as *const *mut std::ffi::c_void,
                n,
            )
        } as usize;
        // SAFETY: the ring owns the first `done` mbufs now.
        unsafe { burst.consumed(done) };
        done
    }

    /// Moves up to `max` mbufs from the ring into `burst`.
    #[inline]
    pub fn dequeue_burst(&self, burst: &mut Burst, max: usize) -> usize {
        let (slots, room) = burst.spare(max);
        if room == 0 {
            return 0;
        }
        // SAFETY: `slots` has room for `room` pointers; the ring holds only mbufs put there
        // by enqueue_burst or by a PMD, each owned by the ring until dequeued.
        let n = unsafe {
            ffi::ispmux_ring_dequeue_burst(
                self.ptr.as_ptr(),
                slots as *mut *mut std::ffi::c_void,
                u32::from(room),
            )
        } as usize;
        // SAFETY: n owned mbufs were written after the held ones.
        unsafe { burst.grow(n) };
        n
    }

    /// Entries currently in the ring.
    pub fn count(&self) -> u32 {
        // SAFETY: valid ring.
        unsafe { ffi::ispmux_ring_count(self.ptr.as_ptr()) }
    }

    /// Creates a `net_ring` ethdev port named `name` whose receive queues read `rx` and whose
    /// transmit queues write `tx`: exact frame injection and read-back for tests.
    ///
    /// The rings must outlive the port.
    pub fn eth_port(name: &str, rx: &[&Ring], tx: &[&Ring]) -> Result<PortId> {
        let c = cstring(name)?;
        let mut rxp: Vec<*mut ffi::rte_ring> = rx.iter().map(|r| r.ptr.as_ptr()).collect();
        let mut txp: Vec<*mut ffi::rte_ring> = tx.iter().map(|r| r.ptr.as_ptr()).collect();
        // SAFETY: the arrays hold valid ring pointers for the given counts; the caller keeps
        // the rings alive as long as the port.
        let rc = unsafe {
            ffi::rte_eth_from_rings(
                c.as_ptr(),
                rxp.as_mut_ptr(),
                rxp.len() as u32,
                txp.as_mut_ptr(),
                txp.len() as u32,
                0,
            )
        };
        if rc < 0 {
            return Err(Error::last("rte_eth_from_rings"));
        }
        check("rte_eth_from_rings", rc).map(|id| id as PortId)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let mut b = Burst::new();
        // Free mbufs still queued so none leaks from its pool.
        while self.dequeue_burst(&mut b, crate::mbuf::MAX_BURST) > 0 {
            b.clear();
        }
        // SAFETY: valid ring, emptied, no longer used by anyone (we are its owner).
        unsafe { ffi::rte_ring_free(self.ptr.as_ptr()) }
    }
}
