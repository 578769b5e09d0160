//! The Environment Abstraction Layer: initialised once per process.

use std::ffi::{c_char, CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};
use crate::ffi;

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// Proof that EAL is initialised; dropping it runs `rte_eal_cleanup`.
///
/// DPDK cannot initialise EAL again after cleanup, so a process holds one `Eal` for its life.
#[derive(Debug)]
pub struct Eal {
    _private: (),
}

impl Eal {
    /// Initialises EAL with `args` (without the program name, which is added).
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(Error::EalAlreadyInitialised);
        }
        let mut owned: Vec<CString> = Vec::with_capacity(args.len() + 1);
        owned.push(crate::error::cstring("ispmux")?);
        for a in args {
            owned.push(crate::error::cstring(a.as_ref())?);
        }
        let mut argv: Vec<*mut c_char> = owned.iter().map(|c| c.as_ptr() as *mut c_char).collect();
        let argc = argv.len() as i32;
        // SAFETY: argv points to `argc` valid NUL-terminated strings that outlive the call
        // (`owned` lives until the end of this function; EAL copies what it keeps).
        let rc = unsafe { ffi::rte_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            INITIALISED.store(false, Ordering::SeqCst);
            return Err(Error::last("rte_eal_init"));
        }
        Ok(Eal { _private: () })
    }

    /// The lcore id of the main (control) lcore.
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: EAL is initialised (we hold an Eal).
        unsafe { ffi::rte_get_main_lcore() }
    }

    /// The enabled lcores other than the main one, in id order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let mut id = u32::MAX;
        loop {
            // SAFETY: EAL is initialised; rte_get_next_lcore iterates its lcore table.
            id = unsafe { ffi::rte_get_next_lcore(id, 1, 0) };
            if id >= ffi::RTE_MAX_LCORE {
                return out;
            }
            out.push(id);
        }
    }

    /// Number of ethdev ports probed.
    pub fn port_count(&self) -> u16 {
        // SAFETY: EAL is initialised.
        unsafe { ffi::rte_eth_dev_count_avail() }
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: EAL was initialised by this value and workers have been waited for by the
        // owner (lcore::wait) before it drops the Eal.
        unsafe {
            ffi::rte_eal_mp_wait_lcore();
            ffi::rte_eal_cleanup();
        }
    }
}

/// The DPDK version string, e.g. "DPDK 22.11.11".
pub fn version() -> String {
    // SAFETY: rte_version returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(ffi::rte_version()) }
        .to_string_lossy()
        .into_owned()
}
