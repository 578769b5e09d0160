//! Runs the `ldp_pdu` fuzz target's checks over its seeds (the known-answer PDUs) and
//! byte-wise mutations of them, so CI exercises them without a nightly toolchain.

use std::path::PathBuf;

use ispmux_slowpath::ldp::fuzzing::exercise;

#[test]
fn seeds_and_their_mutations_pass_the_fuzz_checks() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/ldp_pdu");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("seed directory") {
        let seed = std::fs::read(entry.expect("entry").path()).expect("seed");
        exercise(&seed);
        // Every byte flipped and set to the values that move lengths, types and U/F bits;
        // every cut; the seed twice in a row (the framer sees two PDUs).
        for i in 0..seed.len() {
            for v in [0x00, 0x01, 0x3f, 0x80, 0xc0, 0xff] {
                let mut m = seed.clone();
                m[i] = v;
                exercise(&m);
            }
            let mut m = seed.clone();
            m[i] ^= 0xff;
            exercise(&m);
            exercise(&seed[..i]);
        }
        let mut twice = seed.clone();
        twice.extend_from_slice(&seed);
        exercise(&twice);
        n += 1;
    }
    assert!(n >= 20, "expected the seeds in {}", dir.display());
}
