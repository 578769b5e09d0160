use std::ffi::CStr;

use crate::ffi;

/// An error from DPDK, with the call that failed and DPDK's own words for it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A DPDK call returned an error code (negative errno or `rte_errno`).
    #[error("{call} failed: {reason} (errno {errno})")]
    Dpdk {
        /// The DPDK function that failed.
        call: &'static str,
        /// Positive errno value.
        errno: i32,
        /// `rte_strerror` of it.
        reason: String,
    },
    /// EAL was already initialised in this process; DPDK cannot initialise it twice.
    #[error("EAL is already initialised in this process")]
    EalAlreadyInitialised,
    /// A DPDK object was made before EAL was initialised or after it was cleaned up.
    #[error("EAL is not initialised")]
    EalNotInitialised,
    /// A name passed to DPDK contained a NUL byte.
    #[error("name {0:?} contains a NUL byte")]
    BadName(String),
    /// No ethdev port has this name.
    #[error("no DPDK port named {0:?} (is the device in the EAL arguments?)")]
    NoSuchPort(String),
    /// The lcore is not enabled in the EAL core list, or is the main lcore.
    #[error("lcore {0} is not an enabled worker lcore")]
    BadLcore(u32),
    /// A queue index beyond what the port was configured with.
    #[error("port {port} has no queue {queue}")]
    NoSuchQueue {
        /// Port id.
        port: u16,
        /// Queue index.
        queue: u16,
    },
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Builds an error from a positive or negative errno value.
    pub(crate) fn from_errno(call: &'static str, errno: i32) -> Self {
        let errno = errno.abs();
        // SAFETY: rte_strerror accepts any int and returns a pointer to a static or
        // thread-local NUL-terminated string.
        let reason = unsafe { CStr::from_ptr(ffi::rte_strerror(errno)) }
            .to_string_lossy()
            .into_owned();
        Error::Dpdk {
            call,
            errno,
            reason,
        }
    }

    /// Builds an error from the current `rte_errno`.
    pub(crate) fn last(call: &'static str) -> Self {
        // SAFETY: reads the thread-local rte_errno; no preconditions.
        let errno = unsafe { ffi::ispmux_errno() };
        Self::from_errno(call, errno)
    }
}

/// Turns a DPDK return code (negative errno on failure) into a result.
pub(crate) fn check(call: &'static str, rc: i32) -> Result<i32> {
    if rc < 0 {
        Err(Error::from_errno(call, rc))
    } else {
        Ok(rc)
    }
}

pub(crate) fn cstring(s: &str) -> Result<std::ffi::CString> {
    std::ffi::CString::new(s).map_err(|_| Error::BadName(s.to_owned()))
}
