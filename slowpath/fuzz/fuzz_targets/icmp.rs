//! Any punted frame, on any port of a node with every role, through the punt sorting and
//! the ICMP error builder: no panic, and every error built is a well-formed frame of at
//! most 576 bytes of IPv4 leaving on a node port (`icmp::fuzzing::exercise`).
//!
//! `cargo +nightly fuzz run icmp fuzz/seeds/icmp` (from `slowpath/`); the seeds (the
//! known-answer tests' inputs, each behind its selector byte) are committed, and
//! `tests/icmp_corpus.rs` runs the same checks over them and their mutations on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ispmux_slowpath::icmp::fuzzing::exercise(data);
});
