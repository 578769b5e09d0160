//! `cargo +nightly fuzz run dhcp_codec` (from slowpath/fuzz-dhcp): arbitrary bytes through the
//! DHCP decoder, option 82 parser and logon-option extraction; see `dhcp::fuzzing::exercise`
//! for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ispmux_slowpath::dhcp::fuzzing::exercise(data);
});
