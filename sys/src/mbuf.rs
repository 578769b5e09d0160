//! Owned mbuf handles and fixed-size bursts of them.

use std::mem::MaybeUninit;
use std::ptr::NonNull;

use crate::ffi;

/// The most mbufs a [`Burst`] holds (DPDK's usual maximum burst is 32 or 64).
pub const MAX_BURST: usize = 256;

/// An owned single-segment packet mbuf; freed back to its pool on drop.
///
/// `repr(transparent)` over the pointer, so a slice of `Mbuf` is a `struct rte_mbuf **`.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf(NonNull<ffi::rte_mbuf>);

// SAFETY: an Mbuf is the unique owner of its rte_mbuf; moving it to another thread moves
// ownership, and freeing from any thread is allowed by DPDK.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `p` must point to a valid mbuf that nothing else owns or will free.
    pub unsafe fn from_raw(p: NonNull<ffi::rte_mbuf>) -> Self {
        Mbuf(p)
    }

    /// Gives up ownership without freeing.
    pub fn into_raw(self) -> NonNull<ffi::rte_mbuf> {
        let p = self.0;
        std::mem::forget(self);
        p
    }

    #[inline]
    fn raw(&self) -> &ffi::rte_mbuf {
        // SAFETY: we own a valid mbuf for our lifetime.
        unsafe { self.0.as_ref() }
    }

    #[inline]
    fn raw_mut(&mut self) -> &mut ffi::rte_mbuf {
        // SAFETY: we own a valid mbuf exclusively for our lifetime.
        unsafe { self.0.as_mut() }
    }

    /// Bytes of the first segment, from the first byte of packet data.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: buf_addr + data_off is the start of data_len initialised bytes inside the
        // mbuf's buffer, which we own.
        unsafe {
            std::slice::from_raw_parts(
                (m.buf_addr as *const u8).add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// Bytes of the first segment, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw_mut();
        // SAFETY: as in `data`, and we hold the mbuf exclusively.
        unsafe {
            std::slice::from_raw_parts_mut(
                (m.buf_addr as *mut u8).add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// Free bytes before the data.
    #[inline]
    pub fn headroom(&self) -> usize {
        usize::from(self.raw().data_off)
    }

    /// Free bytes after the data in the first segment.
    #[inline]
    pub fn tailroom(&self) -> usize {
        let m = self.raw();
        usize::from(m.buf_len)
            .saturating_sub(usize::from(m.data_off))
            .saturating_sub(usize::from(m.data_len))
    }

    /// Grows the data by `n` bytes at the front (as `rte_pktmbuf_prepend`, on the fields
    /// directly: that function is a static inline, which Rust reaches only through a call
    /// into the C shim, and the headend prepends a label to every frame).
    #[inline]
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        let m = self.raw_mut();
        if n16 > m.data_off {
            return None;
        }
        m.data_off -= n16;
        m.data_len += n16;
        m.pkt_len += u32::from(n16);
        Some(self.data_mut())
    }

    /// Removes `n` bytes from the front (as `rte_pktmbuf_adj`).
    #[inline]
    pub fn adj(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        let m = self.raw_mut();
        if n16 > m.data_len {
            return false;
        }
        m.data_off += n16;
        m.data_len -= n16;
        m.pkt_len -= u32::from(n16);
        true
    }

    /// Grows the data by `n` bytes at the end and returns them (as `rte_pktmbuf_append`).
    pub fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.tailroom() {
            return None;
        }
        let n16 = u16::try_from(n).ok()?;
        let m = self.raw_mut();
        let old = usize::from(m.data_len);
        m.data_len += n16;
        m.pkt_len += u32::from(n16);
        Some(&mut self.data_mut()[old..])
    }

    /// Shortens the data by `n` bytes at the end (as `rte_pktmbuf_trim`).
    pub fn trim(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        let m = self.raw_mut();
        if n16 > m.data_len {
            return false;
        }
        m.data_len -= n16;
        m.pkt_len -= u32::from(n16);
        true
    }

    /// Total packet length over all segments.
    #[inline]
    pub fn pkt_len(&self) -> u32 {
        self.raw().pkt_len
    }

    /// Number of segments; frames of more than one are not handled by the pipelines.
    #[inline]
    pub fn nb_segs(&self) -> u16 {
        self.raw().nb_segs
    }

    /// The port the mbuf was received on.
    #[inline]
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// Sets the port field: on the inject path, the port the frame is to leave on.
    #[inline]
    pub fn set_port(&mut self, port: u16) {
        self.raw_mut().port = port;
    }

    /// Address of the packet data, for prefetching.
    #[inline]
    pub fn data_ptr(&self) -> *const u8 {
        let m = self.raw();
        (m.buf_addr as *const u8).wrapping_add(usize::from(m.data_off))
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; it is freed exactly once here.
        unsafe { ffi::ispmux_pktmbuf_free(self.0.as_ptr()) }
    }
}

/// A fixed-capacity burst of owned mbufs, the unit of rx, tx and ring transfers.
///
/// Never allocates after construction; mbufs left in it are bulk-freed on clear or drop.
pub struct Burst {
    len: usize,
    bufs: [MaybeUninit<Mbuf>; MAX_BURST],
}

impl Default for Burst {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Burst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Burst").field("len", &self.len).finish()
    }
}

impl Burst {
    /// An empty burst.
    pub fn new() -> Self {
        Burst {
            len: 0,
            bufs: [const { MaybeUninit::uninit() }; MAX_BURST],
        }
    }

    /// Number of mbufs held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when no more mbufs fit.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == MAX_BURST
    }

    /// The held mbufs.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: the first `len` slots are initialised.
        unsafe { std::slice::from_raw_parts_mut(self.bufs.as_mut_ptr() as *mut Mbuf, self.len) }
    }

    /// The held mbufs, read-only.
    #[inline]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: the first `len` slots are initialised.
        unsafe { std::slice::from_raw_parts(self.bufs.as_ptr() as *const Mbuf, self.len) }
    }

    /// Appends an mbuf; gives it back when the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == MAX_BURST {
            return Err(m);
        }
        self.bufs[self.len].write(m);
        self.len += 1;
        Ok(())
    }

    /// Moves every mbuf out, in order, leaving the burst empty.
    pub fn drain(&mut self) -> Drain<'_> {
        let len = self.len;
        self.len = 0;
        Drain {
            burst: self,
            next: 0,
            end: len,
        }
    }

    /// Bulk-frees every mbuf held; returns how many were freed.
    pub fn clear(&mut self) -> usize {
        let n = self.len;
        if n > 0 {
            self.len = 0;
            // SAFETY: the first n slots hold owned mbufs; after the bulk free they are
            // considered uninitialised (len is 0), so none is freed twice.
            unsafe { ffi::ispmux_pktmbuf_free_bulk(self.raw_ptr(), n as u32) }
        }
        n
    }

    /// Pointer to the slot array, as DPDK's `struct rte_mbuf **`.
    #[inline]
    pub(crate) fn raw_ptr(&mut self) -> *mut *mut ffi::rte_mbuf {
        self.bufs.as_mut_ptr() as *mut *mut ffi::rte_mbuf
    }

    /// Free slots after the held mbufs, as a raw pointer and their count.
    #[inline]
    pub(crate) fn spare(&mut self, want: usize) -> (*mut *mut ffi::rte_mbuf, u16) {
        let room = (MAX_BURST - self.len).min(want).min(usize::from(u16::MAX));
        // SAFETY: len <= MAX_BURST, so the offset stays inside (or one past) the array.
        (unsafe { self.raw_ptr().add(self.len) }, room as u16)
    }

    /// Records that DPDK filled `n` more slots after the held ones.
    ///
    /// # Safety
    /// The `n` slots after the held ones must now hold owned, valid mbufs.
    #[inline]
    pub(crate) unsafe fn grow(&mut self, n: usize) {
        debug_assert!(self.len + n <= MAX_BURST);
        self.len += n;
    }

    /// Forgets the first `n` mbufs, which DPDK has taken (tx or enqueue), and moves the
    /// rest to the front.
    ///
    /// # Safety
    /// The first `n` held mbufs must have been handed to DPDK, which now owns them.
    #[inline]
    pub(crate) unsafe fn consumed(&mut self, n: usize) {
        let n = n.min(self.len);
        let rest = self.len - n;
        if rest > 0 && n > 0 {
            let base = self.bufs.as_mut_ptr();
            // SAFETY: both ranges lie in the array; copy handles the overlap.
            unsafe { std::ptr::copy(base.add(n), base, rest) };
        }
        self.len = rest;
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Iterator moving mbufs out of a [`Burst`]; mbufs not taken are freed when it drops.
pub struct Drain<'a> {
    burst: &'a mut Burst,
    next: usize,
    end: usize,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;

    #[inline]
    fn next(&mut self) -> Option<Mbuf> {
        if self.next == self.end {
            return None;
        }
        // SAFETY: slots next..end were initialised and are read out exactly once.
        let m = unsafe { self.burst.bufs[self.next].assume_init_read() };
        self.next += 1;
        Some(m)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Drain<'_> {}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        for m in self.by_ref() {
            drop(m);
        }
    }
}
