//! A global allocator that gives large blocks their own huge-page-aligned mappings.
//!
//! The fast-path tables are tens or hundreds of MiB read at random: on 4 KiB pages nearly
//! every lookup also misses the TLB. Transparent huge pages fix that, but only for memory
//! that is advised before its first touch and aligned to 2 MiB. The system allocator gives
//! neither for the tables' 64-byte-aligned buckets: Rust zeroes over-aligned blocks by
//! writing them (touching every page), and glibc serves large blocks from its heap once its
//! mmap threshold has risen. So every block of [`LARGE`] bytes or more gets a fresh
//! anonymous mapping, 2 MiB aligned and advised `MADV_HUGEPAGE` while still untouched
//! (fresh mappings read as zero, so zeroed allocation costs nothing); smaller blocks go to
//! the system allocator.
//!
//! Install it in a binary with
//! `#[global_allocator] static ALLOC: ispmux_sys::HugeAlloc = ispmux_sys::HugeAlloc;`.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks at least this large get their own mapping.
pub const LARGE: usize = 2 << 20;
const HUGE_PAGE: usize = 2 << 20;

/// See the module documentation.
#[derive(Clone, Copy, Debug, Default)]
pub struct HugeAlloc;

fn is_large(layout: &Layout) -> bool {
    layout.size() >= LARGE && layout.align() <= HUGE_PAGE
}

fn mapped_len(size: usize) -> usize {
    size.div_ceil(HUGE_PAGE) * HUGE_PAGE
}

/// Maps `size` bytes (rounded up to whole huge pages) at a 2 MiB boundary.
fn map(size: usize) -> *mut u8 {
    let len = mapped_len(size);
    let Some(span) = len.checked_add(HUGE_PAGE) else {
        return std::ptr::null_mut();
    };
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches
    // no existing memory.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            span,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return std::ptr::null_mut();
    }
    let base = base as usize;
    let start = base.div_ceil(HUGE_PAGE) * HUGE_PAGE;
    let (head, tail) = (start - base, span - len - (start - base));
    // SAFETY: both ranges lie inside the mapping just made and outside [start, start+len),
    // which is what the caller gets; nothing refers to them yet.
    unsafe {
        if head > 0 {
            libc::munmap(base as *mut libc::c_void, head);
        }
        if tail > 0 {
            libc::munmap((start + len) as *mut libc::c_void, tail);
        }
        // Advice only: without it the block is still valid, on small pages.
        libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
    start as *mut u8
}

// SAFETY: large blocks are whole mappings, valid and zero until unmapped, aligned to 2 MiB
// (which satisfies every alignment they are used for), and unmapped only by `dealloc` with
// the layout they were made for, which `is_large` classifies the same way; everything else
// is the system allocator's.
unsafe impl GlobalAlloc for HugeAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            map(layout.size())
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            map(layout.size())
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(&layout) {
            // SAFETY: `ptr` came from `map` for this size (see the impl's safety note).
            unsafe { libc::munmap(ptr.cast(), mapped_len(layout.size())) };
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        if !is_large(&layout) && !is_large(&new) {
            // SAFETY: forwarded with the caller's guarantees; both blocks are the system's.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        if is_large(&layout) && is_large(&new) && mapped_len(new_size) == mapped_len(layout.size())
        {
            return ptr;
        }
        // SAFETY: `new` is a valid non-zero layout (new_size ≥ LARGE or the old block's
        // size class); the copy covers the smaller of the two sizes, inside both blocks.
        unsafe {
            let fresh = self.alloc(new);
            if !fresh.is_null() {
                std::ptr::copy_nonoverlapping(ptr, fresh, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            fresh
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_blocks_are_aligned_zeroed_and_survive_growth() {
        let a = HugeAlloc;
        let layout = Layout::from_size_align(LARGE + 12_345, 64).expect("layout");
        // SAFETY: a valid layout; the block is written inside its size and freed once.
        unsafe {
            let p = a.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % HUGE_PAGE, 0);
            let s = std::slice::from_raw_parts_mut(p, layout.size());
            assert!(s.iter().all(|&b| b == 0));
            s[layout.size() - 1] = 7;
            let q = a.realloc(p, layout, 3 * LARGE);
            assert!(!q.is_null());
            assert_eq!(*q.add(layout.size() - 1), 7);
            let big = Layout::from_size_align(3 * LARGE, 64).expect("layout");
            let r = a.realloc(q, big, 100);
            assert_eq!(*r, 0);
            a.dealloc(r, Layout::from_size_align(100, 64).expect("layout"));
        }
    }

    #[test]
    fn only_blocks_of_two_mib_or_more_are_mapped() {
        assert!(!is_large(
            &Layout::from_size_align(LARGE - 1, 8).expect("layout")
        ));
        assert!(is_large(
            &Layout::from_size_align(LARGE, 8).expect("layout")
        ));
    }
}
