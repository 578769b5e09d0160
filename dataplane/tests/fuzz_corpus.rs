//! Replays the `classify` fuzz target's seed corpus on stable, plus every truncation and a
//! sweep of single-bit flips of each seed, so CI exercises the classifier's invariants
//! without libFuzzer.

use ispmux_dataplane::roles::harness::ClassifyHarness;
use ispmux_dataplane::{DropReason, Verdict};
use std::path::Path;

fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/classify");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.expect("dir entry").path();
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read seed"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn seed_corpus_runs_clean_and_reaches_every_role() {
    let seeds = seeds();
    assert!(seeds.len() >= 20, "corpus has {} seeds", seeds.len());
    let mut h = ClassifyHarness::new();
    let mut forwarded_to = [false; 4];
    let mut punts = 0;
    for (name, s) in &seeds {
        match h.run(s) {
            Some(Verdict::Forward(p)) => forwarded_to[usize::from(p)] = true,
            Some(Verdict::Punt) => punts += 1,
            Some(Verdict::Drop(_)) => {}
            None => panic!("empty seed {name}"),
        }
    }
    // Access (deliver, proxy ARP), core (push, swap), hand-off (pop) and the QinQ port.
    assert_eq!(forwarded_to, [true, true, true, true]);
    assert!(punts >= 3, "DHCP, gateway and ARP seeds punt");
    let c = h.node().counters();
    assert!(c.drops(DropReason::SourceGuard) >= 1 && c.drops(DropReason::UnknownLabel) >= 1);
}

#[test]
fn truncations_and_bit_flips_of_seeds_hold_the_invariants() {
    let mut h = ClassifyHarness::new();
    for (_, s) in seeds() {
        for n in 0..=s.len() {
            h.run(&s[..n]);
        }
        for bit in (0..s.len() * 8).step_by(3) {
            let mut m = s.clone();
            m[bit / 8] ^= 1 << (bit % 8);
            h.run(&m);
        }
    }
}

mod random {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Arbitrary bytes on every port.
        #[test]
        fn arbitrary_frames(input in proptest::collection::vec(any::<u8>(), 0..200)) {
            ClassifyHarness::new().run(&input);
        }

        /// Seeds with random bytes overwritten: stays near valid frames, where the deep paths are.
        #[test]
        fn mutated_seeds(pick in any::<prop::sample::Index>(), edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), cut in any::<prop::sample::Index>()) {
            let seeds = seeds();
            let (_, s) = &seeds[pick.index(seeds.len())];
            let mut m = s.clone();
            for (at, b) in edits {
                let i = at.index(m.len());
                m[i] = b;
            }
            let n = 1 + cut.index(m.len());
            ClassifyHarness::new().run(&m[..n.max(m.len() / 2)]);
        }
    }
}
