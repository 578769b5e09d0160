//! Launching work on EAL lcores, and per-lcore helpers.

use std::ffi::c_void;

use crate::error::{check, Error, Result};
use crate::ffi;

/// An EAL lcore id.
pub type LcoreId = u32;

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

extern "C" fn trampoline(arg: *mut c_void) -> i32 {
    // SAFETY: `arg` is the Box<Job> leaked by `launch` for exactly this call.
    let job: Box<Job> = unsafe { Box::from_raw(arg as *mut Job) };
    // A panic must not unwind into DPDK's C frames.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or(-1)
}

/// Runs `job` on worker lcore `lcore`; its return value is collected by [`wait`].
pub fn launch<F>(lcore: LcoreId, job: F) -> Result<()>
where
    F: FnOnce() -> i32 + Send + 'static,
{
    let boxed: Box<Job> = Box::new(Box::new(job));
    let arg = Box::into_raw(boxed) as *mut c_void;
    // SAFETY: trampoline has the lcore_function_t ABI and takes ownership of `arg`.
    let rc = unsafe { ffi::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
    if rc < 0 {
        // SAFETY: the launch failed, so the job was not handed over; reclaim it.
        drop(unsafe { Box::from_raw(arg as *mut Job) });
        return Err(if rc == -libc::EINVAL {
            Error::BadLcore(lcore)
        } else {
            Error::from_errno("rte_eal_remote_launch", rc)
        });
    }
    check("rte_eal_remote_launch", rc).map(|_| ())
}

/// Waits for the job on `lcore` to finish and returns what it returned.
pub fn wait(lcore: LcoreId) -> i32 {
    // SAFETY: waiting on any lcore id is allowed; an idle lcore returns 0 at once.
    unsafe { ffi::rte_eal_wait_lcore(lcore) }
}

/// The lcore id of the calling thread (`u32::MAX` for a non-EAL thread).
#[inline]
pub fn current_lcore() -> LcoreId {
    // SAFETY: reads a thread-local; no preconditions.
    unsafe { ffi::ispmux_lcore_id() }
}

/// Hints the CPU to load the cache line holding `p` into all cache levels.
#[inline]
pub fn prefetch0<T>(p: *const T) {
    // SAFETY: prefetch is a hint; it never faults, whatever the address.
    unsafe { ffi::ispmux_prefetch0(p as *const c_void) }
}

/// [`prefetch0`] as one instruction in the caller rather than a call into the shim: the
/// fast path's tables prefetch a line or two per frame.
#[inline(always)]
pub fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint that never faults, whatever the address, and SSE is part
    // of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    }
    #[cfg(not(target_arch = "x86_64"))]
    prefetch0(p)
}

/// The time stamp counter.
#[inline]
pub fn tsc() -> u64 {
    // SAFETY: rdtsc has no preconditions.
    unsafe { ffi::ispmux_rdtsc() }
}

/// Ticks of [`tsc`] per second (EAL must be initialised).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value EAL computed at init.
    unsafe { ffi::ispmux_tsc_hz() }
}

/// Sets the calling thread's timer slack (PR_SET_TIMERSLACK): how much later than asked the
/// kernel may end its sleeps and waits, to batch wake-ups. The default is 50 µs, as long as
/// the short waits of a poll loop themselves: a worker sleeping 50 µs when idle, or the slow
/// path waiting on its twins, would wake up to twice as late as asked. Returns whether the
/// kernel accepted it.
pub fn set_timer_slack(ns: u64) -> bool {
    // c_ulong is 64 bits on the 64-bit Linux targets DPDK 22.11 supports.
    let ns = ns.max(1) as libc::c_ulong;
    // SAFETY: PR_SET_TIMERSLACK takes one integer and changes only the calling thread's
    // timer slack; the unused arguments are zero as prctl(2) asks.
    unsafe {
        libc::prctl(
            libc::PR_SET_TIMERSLACK,
            ns,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        ) == 0
    }
}

/// Asks the kernel to back `[ptr, ptr + len)` with transparent huge pages (THP is in
/// `madvise` mode on Debian): large tables then miss the TLB far less. Only whole pages
/// inside the range are advised. Returns whether the kernel accepted the advice.
pub fn advise_hugepages(ptr: *const u8, len: usize) -> bool {
    const PAGE: usize = 4096;
    let start = (ptr as usize).div_ceil(PAGE) * PAGE;
    let end = (ptr as usize).saturating_add(len) / PAGE * PAGE;
    if end <= start {
        return false;
    }
    // SAFETY: madvise with MADV_HUGEPAGE only changes how the kernel backs pages of this
    // process's own mapping (whole pages inside the caller's allocation); it never changes
    // their contents or validity.
    unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) == 0 }
}

/// Pins the calling thread to `cpus` (a thread outside EAL's, such as the provisioning
/// API's, kept off the lcores of the workers and the slow path).
pub fn pin_current_thread(cpus: &[u32]) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set CPU_ZERO makes.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        let c = c as usize;
        if c >= libc::CPU_SETSIZE as usize {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: c is below CPU_SETSIZE, the set's size in bits.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: pid 0 is the calling thread; the set is initialised and its size is given.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
