//! The Environment Abstraction Layer: initialised once per process.

use std::ffi::{c_char, CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::error::{Error, Result};
use crate::ffi;

static INITIALISED: AtomicBool = AtomicBool::new(false);
static CURRENT: Mutex<Option<Weak<EalGuard>>> = Mutex::new(None);

/// Keeps EAL alive: held by the [`Eal`] handle and by every pool, ring and port, so that
/// `rte_eal_cleanup` runs only after the last DPDK object is gone, whatever the drop order.
#[derive(Debug)]
pub(crate) struct EalGuard(());

impl Drop for EalGuard {
    fn drop(&mut self) {
        // SAFETY: the last holder of EAL is gone: no pool, ring or port remains; lcores are
        // waited for before cleanup.
        unsafe {
            ffi::rte_eal_mp_wait_lcore();
            ffi::rte_eal_cleanup();
        }
    }
}

/// A share in the running EAL, for constructors of DPDK objects.
pub(crate) fn guard() -> Result<Arc<EalGuard>> {
    CURRENT
        .lock()
        .ok()
        .and_then(|g| g.as_ref().and_then(Weak::upgrade))
        .ok_or(Error::EalNotInitialised)
}

/// Proof that EAL is initialised. EAL is cleaned up when this and every DPDK object made
/// under it are dropped; DPDK cannot initialise it again, so a process has one EAL.
#[derive(Debug)]
pub struct Eal {
    _guard: Arc<EalGuard>,
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
        let guard = Arc::new(EalGuard(()));
        if let Ok(mut g) = CURRENT.lock() {
            *g = Some(Arc::downgrade(&guard));
        }
        Ok(Eal { _guard: guard })
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

/// The DPDK version string, e.g. "DPDK 22.11.11".
pub fn version() -> String {
    // SAFETY: rte_version returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(ffi::rte_version()) }
        .to_string_lossy()
        .into_owned()
}
