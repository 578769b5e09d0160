//! DPDK's own hash table (`rte_hash`), only as a reference point for the memory the ispmux
//! tables take (`perf/run table-memory`): create, add, free, and the EAL heap's size.

use std::ptr::NonNull;
use std::sync::Arc;

use crate::eal::{guard, EalGuard};
use crate::error::{check, cstring, Error, Result};
use crate::ffi;

/// `EINVAL`: a key of the wrong length.
const EINVAL: i32 = 22;

/// An `rte_hash` of fixed-length keys, each with a 64-bit value stored in its data pointer.
#[derive(Debug)]
pub struct RteHash {
    ptr: NonNull<ffi::rte_hash>,
    key_len: usize,
    _eal: Arc<EalGuard>,
}

impl RteHash {
    /// Creates a table for `entries` keys of `key_len` bytes on the caller's socket, with
    /// DPDK's default hash function and flags.
    pub fn new(name: &str, entries: u32, key_len: u32) -> Result<RteHash> {
        let eal = guard()?;
        let c = cstring(name)?;
        let params = ffi::rte_hash_parameters {
            name: c.as_ptr(),
            entries,
            reserved: 0,
            key_len,
            hash_func: None,
            hash_func_init_val: 0,
            // SAFETY: no preconditions; EAL is initialised (we hold a guard).
            socket_id: unsafe { ffi::rte_socket_id() } as i32,
            extra_flag: 0,
        };
        // SAFETY: `params` and the name it points to outlive the call, which copies what it
        // keeps; EAL is initialised.
        let p = unsafe { ffi::rte_hash_create(&params) };
        NonNull::new(p)
            .map(|ptr| RteHash {
                ptr,
                key_len: key_len as usize,
                _eal: eal,
            })
            .ok_or_else(|| Error::last("rte_hash_create"))
    }

    /// Adds `key` (exactly the table's key length) with `value`, or updates its value.
    pub fn add(&mut self, key: &[u8], value: u64) -> Result<()> {
        if key.len() != self.key_len {
            return Err(Error::from_errno("rte_hash_add_key_data", EINVAL));
        }
        // SAFETY: the table is live (owned); `key` holds key_len readable bytes, which DPDK
        // copies; the data pointer is only stored, never dereferenced by DPDK.
        let rc = unsafe {
            ffi::rte_hash_add_key_data(
                self.ptr.as_ptr(),
                key.as_ptr().cast(),
                value as usize as *mut std::ffi::c_void,
            )
        };
        check("rte_hash_add_key_data", rc).map(|_| ())
    }
}

impl Drop for RteHash {
    fn drop(&mut self) {
        // SAFETY: created by rte_hash_create, freed once, here.
        unsafe { ffi::rte_hash_free(self.ptr.as_ptr()) }
    }
}

/// Bytes allocated from the EAL heap of the caller's socket (rte_malloc, memzones): the
/// difference around building an `rte_hash` is the memory it takes.
pub fn heap_allocated_bytes() -> Result<u64> {
    let _eal = guard()?;
    let mut s = ffi::rte_malloc_socket_stats::default();
    // SAFETY: `s` is a valid out-parameter for the duration of the call; EAL is initialised.
    let rc = unsafe { ffi::rte_malloc_get_socket_stats(ffi::rte_socket_id() as i32, &mut s) };
    check("rte_malloc_get_socket_stats", rc)?;
    Ok(s.heap_allocsz_bytes as u64)
}
