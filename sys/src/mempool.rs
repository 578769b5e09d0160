//! Packet mbuf pools.

use std::ptr::NonNull;
use std::sync::Arc;

use crate::eal::{guard, EalGuard};
use crate::error::{cstring, Error, Result};
use crate::ffi;
use crate::mbuf::Mbuf;

/// A pool of packet mbufs (`rte_pktmbuf_pool_create`).
#[derive(Debug)]
pub struct Mempool {
    ptr: NonNull<ffi::rte_mempool>,
    _eal: Arc<EalGuard>,
}

// SAFETY: DPDK mempools are safe for concurrent use from several threads (per-lcore caches
// plus a lock-free ring); the handle is just a pointer.
unsafe impl Send for Mempool {}
// SAFETY: as above, every operation we expose is thread-safe in DPDK.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a packet mbuf pool of `n` mbufs with a per-lcore cache of `cache` and
    /// `data_room` bytes of buffer (headroom included) each.
    pub fn pktmbuf(name: &str, n: u32, cache: u32, data_room: u16, socket: i32) -> Result<Self> {
        let eal = guard()?;
        let cname = cstring(name)?;
        // SAFETY: EAL is initialised (we hold a guard); `cname` outlives the call.
        let p =
            unsafe { ffi::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, data_room, socket) };
        NonNull::new(p)
            .map(|ptr| Mempool { ptr, _eal: eal })
            .ok_or_else(|| Error::last("rte_pktmbuf_pool_create"))
    }

    /// Mbufs currently allocated from the pool (caches count as free).
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool pointer is valid for our lifetime.
        unsafe { ffi::rte_mempool_in_use_count(self.ptr.as_ptr()) }
    }

    /// Mbufs currently free in the pool.
    pub fn available(&self) -> u32 {
        // SAFETY: the pool pointer is valid for our lifetime.
        unsafe { ffi::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    /// Allocates one mbuf (slow path, tests and generators); `None` when the pool is empty.
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool pointer is valid; a non-null result is a fresh mbuf we now own.
        let m = unsafe { ffi::ispmux_pktmbuf_alloc(self.ptr.as_ptr()) };
        NonNull::new(m).map(|p| {
            // SAFETY: freshly allocated, exclusively ours.
            unsafe { Mbuf::from_raw(p) }
        })
    }

    /// Allocates one mbuf holding a copy of `bytes`; `None` when empty or too long.
    pub fn alloc_from(&self, bytes: &[u8]) -> Option<Mbuf> {
        let mut m = self.alloc()?;
        m.append(bytes.len())?.copy_from_slice(bytes);
        Some(m)
    }

    pub(crate) fn as_ptr(&self) -> *mut ffi::rte_mempool {
        self.ptr.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // Freeing a pool whose mbufs are still referenced (by a port's rings or a handle)
        // would leave dangling pointers: keep it allocated in that case.
        if self.in_use() == 0 {
            // SAFETY: no mbuf of the pool is in use, so nothing points into it any more.
            unsafe { ffi::rte_mempool_free(self.ptr.as_ptr()) }
        } else {
            // Mbufs still out there will be freed into this pool later: EAL must stay up.
            std::mem::forget(self._eal.clone());
        }
    }
}
