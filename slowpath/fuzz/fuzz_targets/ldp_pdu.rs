//! Any bytes as an LDP PDU: no panic; what decodes encodes and decodes again to the same
//! PDU; the stream framer cuts only prefixes of its input; the engine, given the bytes as a
//! Hello and on an OPERATIONAL session, sends only PDUs that decode and closes what it ends
//! (`ldp::fuzzing::exercise`).
//!
//! `cargo +nightly fuzz run ldp_pdu fuzz/seeds/ldp_pdu` (from `slowpath/`); the seeds are the
//! known-answer vectors of `src/ldp/kat_gen.py`, and `tests/ldp_corpus.rs` runs the same
//! checks over them and their mutations on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ispmux_slowpath::ldp::fuzzing::exercise(data);
});
