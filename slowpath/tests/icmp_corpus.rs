//! Runs the `icmp` fuzz target's checks over its seeds and byte-wise mutations of them, so
//! CI exercises them without a nightly toolchain.

use std::path::PathBuf;

use ispmux_slowpath::icmp::fuzzing::exercise;

#[test]
fn seeds_and_their_mutations_pass_the_fuzz_checks() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/icmp");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("seed directory") {
        let seed = std::fs::read(entry.expect("entry").path()).expect("seed");
        exercise(&seed);
        // Every byte of the headers flipped, every port and trigger, every cut.
        for i in 0..seed.len().min(96) {
            let mut m = seed.clone();
            m[i] ^= 0xff;
            exercise(&m);
            exercise(&seed[..i]);
        }
        for sel in 0..16u8 {
            let mut m = seed.clone();
            m[0] = sel;
            exercise(&m);
        }
        n += 1;
    }
    assert!(n >= 7, "expected the seeds in {}", dir.display());
}
