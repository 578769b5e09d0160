//! Fuzzes the trTCM meter with any profile and any frame series, time going backwards
//! included. From `dataplane/`, on nightly: `cargo +nightly fuzz run meter`. Input: CIR, PIR,
//! CBS, PBS and TSC Hz as five little-endian u64s, then frames of 13 bytes each (TSC time
//! u64, length u32, pre-colour u8). A refused profile ends the input. Checks: no panic,
//! buckets within their sizes, a green pre-colour gives the colour-blind result.

#![no_main]

use ispmux_dataplane::meter::{Color, Trtcm, TrtcmParams, TrtcmProfile};
use libfuzzer_sys::fuzz_target;

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 40 {
        return;
    }
    let params = TrtcmParams {
        cir: u64_at(data, 0),
        pir: u64_at(data, 8),
        cbs: u64_at(data, 16),
        pbs: u64_at(data, 24),
    };
    let Ok(profile) = TrtcmProfile::new(params, u64_at(data, 32)) else {
        return;
    };
    let mut m = Trtcm::new(&profile, 0);
    for f in data[40..].chunks_exact(13) {
        let now = u64_at(f, 0);
        let len = u32::from_le_bytes([f[8], f[9], f[10], f[11]]);
        let pre = [Color::Green, Color::Yellow, Color::Red][usize::from(f[12] % 3)];
        let mut blind = m;
        let c = m.check_aware(&profile, now, len, pre);
        if pre == Color::Green {
            assert_eq!(blind.check(&profile, now, len), c);
            assert_eq!(blind, m);
        }
        let (tc, tp) = m.tokens();
        assert!(u64::from(tc) <= params.cbs && u64::from(tp) <= params.pbs);
    }
});
