//! Any line through the control command parser: no panic, and a command that parses reads
//! back from its own line form.
//!
//! `cargo +nightly fuzz run control_command` (from `gateway/`); the same property runs in CI
//! as a proptest (`command::tests::any_line_parses_or_is_refused`).
#![no_main]

use ispmux_gateway::command::round_trips;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert!(round_trips(&String::from_utf8_lossy(data)));
});
