//! Any bulk-import body, as CSV and as JSON: rows, or a client's refusal with a reason;
//! never a panic.
//!
//! `cargo +nightly fuzz run import_body` (from `api/`); the same property runs in CI as a
//! proptest (`import::tests::any_body_reads_or_is_refused`), and whole requests generated
//! from the OpenAPI document run in `tests/fuzz.rs`.
#![no_main]

use ispmux_api::import::reads_sanely;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert!(reads_sanely(data));
});
