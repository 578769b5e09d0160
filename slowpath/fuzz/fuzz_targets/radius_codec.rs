//! Any datagram through the RADIUS codec and authenticator checks: no panic, and what parses
//! re-encodes to the same octets.
#![no_main]

use ispmux_slowpath::radius::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fuzzing::codec_one(data);
});
