//! Any datagram through the RADIUS codec, the authenticator checks and the proxy engine: no
//! panic, and what parses re-encodes to the same octets.
//!
//! `cargo +nightly fuzz run radius_codec fuzz/seeds/radius_codec` (from `slowpath/`); the
//! seeds are committed, the growing corpus is not.
#![no_main]

use ispmux_slowpath::radius::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = fuzzing::codec_one(data) {
        panic!("{e}");
    }
});
