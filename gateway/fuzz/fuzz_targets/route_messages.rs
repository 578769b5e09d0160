//! Any datagram through the reader of the kernel's route messages: no panic, the reader
//! always advances, and every route read is a valid IPv4 prefix.
//!
//! `cargo +nightly fuzz run route_messages` (from `gateway/`); the same property runs in CI
//! as proptests (`routes::tests::any_datagram_is_read_sanely` and
//! `a_mangled_kernel_message_is_read_sanely`, seeded by real kernel messages).
#![no_main]

use ispmux_gateway::routes::reads_sanely;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert!(reads_sanely(data));
});
