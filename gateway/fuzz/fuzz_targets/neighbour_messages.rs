//! Any datagram through the reader of the kernel's neighbour messages: no panic, and every
//! neighbour entry read has an IPv4 address and, if any, a unicast MAC.
//!
//! `cargo +nightly fuzz run neighbour_messages` (from `gateway/`); the same property runs
//! in CI as a proptest (`neighbour::tests::any_datagram_is_read_without_panic`).
#![no_main]

use ispmux_gateway::neighbour::reads_sanely;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert!(reads_sanely(data));
});
