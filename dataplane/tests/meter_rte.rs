//! The ispmux trTCM meter against DPDK's `rte_meter`: the same profiles, the same frames at
//! the same TSC times, the same colours and token counts frame by frame, colour-blind and
//! colour-aware. One test: EAL (which `rte_meter` needs for the TSC frequency) initialises
//! once per process.

use ispmux_dataplane::meter::{Color, Trtcm, TrtcmParams, TrtcmProfile};
use ispmux_sys::{Eal, RteColor, RteTrtcm, RteTrtcmProfile};

/// xorshift64*: reproducible series without another dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Gaps between frames: mostly back-to-back bursts and line-rate spacing, sometimes idle
/// periods long enough to refill any bucket.
fn gap(r: &mut Rng) -> u64 {
    match r.below(100) {
        0..=39 => 0,
        40..=79 => r.below(2_000),
        80..=94 => r.below(2_000_000),
        95..=98 => r.below(2_000_000_000),
        _ => r.below(1 << 40),
    }
}

fn len(r: &mut Rng) -> u32 {
    match r.below(100) {
        0 => 0,
        1 => 1,
        2 => 9_000,
        3 => u32::MAX,
        4 => r.next() as u32,
        _ => 64 + r.below(1_455) as u32,
    }
}

fn colour(c: Color) -> RteColor {
    match c {
        Color::Green => RteColor::Green,
        Color::Yellow => RteColor::Yellow,
        Color::Red => RteColor::Red,
    }
}

fn profiles(hz: u64) -> Vec<TrtcmParams> {
    let p = |cir, pir, cbs, pbs| TrtcmParams { cir, pir, cbs, pbs };
    vec![
        // 100/200 Mbit/s with 64/128 KiB bursts: a typical subscriber plan.
        p(12_500_000, 25_000_000, 65_536, 131_072),
        // 1 and 10 Gbit/s: periods under 100 cycles, several bytes per period.
        p(125_000_000, 1_250_000_000, 1_000_000, 2_000_000),
        // 40/100 Gbit/s, bursts of one frame.
        p(5_000_000_000, 12_500_000_000, 1_518, 1_518),
        // The slowest rates and the smallest bursts.
        p(1, 1, 1, 1),
        p(3, 7, 2, 3),
        // CIR = PIR, bursts at the 32-bit limit.
        p(
            1_000_000,
            1_000_000,
            u64::from(u32::MAX),
            u64::from(u32::MAX),
        ),
        // Around the 100-cycle period threshold, where the rounding changes.
        p(hz / 100, hz / 100 + 1, 10_000, 10_000),
        p(hz / 99, hz / 101 + hz / 99, 3_000, 9_000),
        p(hz / 3 + 1, hz / 7 * 3, 1_000, 1_000_000),
    ]
}

#[test]
fn same_colours_as_rte_meter_frame_by_frame() {
    let _eal = Eal::init(&[
        "-l",
        "0",
        "--no-huge",
        "--no-shconf",
        "--no-pci",
        "-m",
        "64",
        "--log-level",
        "lib.*:warning",
    ])
    .expect("EAL init");
    let hz = ispmux_sys::tsc_hz();
    assert!(hz > 0);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut blind_seen = [0usize; 3];
    for params in profiles(hz) {
        let ours = TrtcmProfile::new(params, hz).expect("ispmux profile");
        let rte = RteTrtcmProfile::new(params.cir, params.pir, params.cbs, params.pbs)
            .expect("rte_meter profile");
        assert_eq!(
            ours.committed_period(),
            rte.committed_period(),
            "{params:?}"
        );
        assert_eq!(ours.peak_period(), rte.peak_period(), "{params:?}");
        for aware in [false, true] {
            let mut now = rng.below(1 << 50);
            let (mut a, mut b) = (Trtcm::new(&ours, now), RteTrtcm::new(&rte, now));
            let mut seen = [0usize; 3];
            for i in 0..100_000 {
                now += gap(&mut rng);
                let len = len(&mut rng);
                let (x, y) = if aware {
                    let pre = [Color::Green, Color::Yellow, Color::Red][rng.below(3) as usize];
                    (
                        a.check_aware(&ours, now, len, pre),
                        b.check_aware(&rte, now, len, colour(pre)),
                    )
                } else {
                    (a.check(&ours, now, len), b.check(&rte, now, len))
                };
                let (tc, tp) = a.tokens();
                assert_eq!(
                    (colour(x), (u64::from(tc), u64::from(tp))),
                    (y, b.tokens()),
                    "{params:?} aware={aware} frame {i}: {len} bytes at {now}"
                );
                seen[x as usize] += 1;
            }
            // Each series ends up on more than one colour, or the comparison proves little
            // (CIR = PIR with CBS = PBS cannot be yellow colour-blind).
            assert!(
                seen.iter().filter(|&&n| n > 0).count() >= 2,
                "{params:?} aware={aware}: {seen:?}"
            );
            if !aware {
                for (total, n) in blind_seen.iter_mut().zip(seen) {
                    *total += n;
                }
            }
        }
    }
    assert!(
        blind_seen.iter().all(|&n| n > 0),
        "colour-blind: {blind_seen:?}"
    );
}
