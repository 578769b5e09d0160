//! `perf/run meter-cost`: colour-blind trTCM checks per second, the ispmux meter
//! (`ispmux_dataplane::meter`, 24 bytes a meter) against DPDK's `rte_meter` (32 bytes a
//! meter, its static inline check inlined into a C loop, as a DPDK application has it).
//!
//! Both run the same series: check `i` on a random one of `--meters` meters (default 2^22,
//! rounded up to a power of two; 96 and 128 MiB, more than the 32 MiB L3 here, so each check
//! misses like a subscriber's meter would), a random 64..1518-byte frame, at TSC time
//! `t0 + i * step`, the step chosen so each meter sees a frame every 100 * 2^20 cycles
//! whatever the count (about 20 kB/s at 2.6 GHz). Against that the profile (100/200 kbit/s, 6/12 KB bursts)
//! gives a mix of all three colours, so the colour branches are not predictable.
//! The colour counts of both must agree, else the run fails. `--checks` (default 16 M)
//! checks per round, five rounds each, alternating; the figures are the medians.
//! Meters live in ordinary (4 KiB-page) memory for both. The result is the ispmux meter
//! in 32-byte aligned slots, never across two cache lines, as it will be inside a
//! subscriber entry; packed at 24 bytes a quarter of them straddle two lines, and that
//! figure is printed beside it.

use anyhow::{bail, Context, Result};
use ispmux_dataplane::meter::{Trtcm, TrtcmParams, TrtcmProfile};
use ispmux_perf::{median, opt, result_line};
use ispmux_sys::{trtcm_run, Eal, RteTrtcm, RteTrtcmProfile};
use rand::{Rng, SeedableRng};
use std::time::Instant;

const ROUNDS: usize = 5;

/// An ispmux meter alone in an aligned 32-byte slot.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Aligned(Trtcm);

trait Slot {
    fn meter(&mut self) -> &mut Trtcm;
}

impl Slot for Trtcm {
    fn meter(&mut self) -> &mut Trtcm {
        self
    }
}

impl Slot for Aligned {
    fn meter(&mut self) -> &mut Trtcm {
        &mut self.0
    }
}

fn run_ours<S: Slot>(
    meters: &mut [S],
    p: &TrtcmProfile,
    idx: &[u32],
    lens: &[u32],
    t0: u64,
    step: u64,
) -> [u64; 3] {
    let mask = meters.len() - 1;
    let mut counts = [0u64; 3];
    let mut now = t0;
    for (&k, &len) in idx.iter().zip(lens) {
        let c = meters[k as usize & mask].meter().check(p, now, len);
        counts[c as usize] += 1;
        now += step;
    }
    counts
}

fn main() -> Result<()> {
    let n_meters = (opt("--meters", 4_194_304.0) as usize).next_power_of_two();
    let checks = opt("--checks", 16_000_000.0) as usize;
    let _eal = Eal::init(&[
        "-l",
        "0",
        "--no-huge",
        "--no-shconf",
        "--no-pci",
        "-m",
        "64",
        "--log-level=lib.*:error",
    ])
    .context("EAL initialisation")?;
    let hz = ispmux_sys::tsc_hz();
    let step = (100 * (1 << 20) / n_meters as u64).max(1);
    let params = TrtcmParams {
        cir: 12_500,
        pir: 25_000,
        cbs: 6_000,
        pbs: 12_000,
    };
    let ours_p = TrtcmProfile::new(params, hz)?;
    let rte_p = RteTrtcmProfile::new(params.cir, params.pir, params.cbs, params.pbs)?;
    println!(
        "meter-cost: {n_meters} meters, {checks} checks a round, {ROUNDS} rounds, \
         {step} TSC cycles a check at {hz} Hz; state {} B (ispmux) vs {} B (rte_meter)",
        std::mem::size_of::<Trtcm>(),
        std::mem::size_of::<RteTrtcm>()
    );

    let mut rng = rand::rngs::StdRng::seed_from_u64(2698);
    let idx: Vec<u32> = (0..checks)
        .map(|_| rng.gen_range(0..n_meters as u32))
        .collect();
    let lens: Vec<u32> = (0..checks).map(|_| rng.gen_range(64..1519)).collect();
    let t_start = 1u64 << 40;
    let mut ours = vec![Aligned(Trtcm::new(&ours_p, t_start)); n_meters];
    let mut packed = vec![Trtcm::new(&ours_p, t_start); n_meters];
    let mut rte = vec![RteTrtcm::new(&rte_p, t_start); n_meters];

    let (mut ours_rates, mut rte_rates, mut packed_rates) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..=ROUNDS {
        // Round 0 warms both up (page faults, caches) and is not counted.
        let t0 = t_start + (round * checks) as u64 * step;
        let s = Instant::now();
        let a = trtcm_run(&mut rte, &rte_p, &idx, &lens, t0, step)
            .context("rte_meter run: meters not a power of two")?;
        let rte_s = s.elapsed().as_secs_f64();
        let s = Instant::now();
        let b = run_ours(&mut ours, &ours_p, &idx, &lens, t0, step);
        let ours_s = s.elapsed().as_secs_f64();
        let s = Instant::now();
        let c = run_ours(&mut packed, &ours_p, &idx, &lens, t0, step);
        let packed_s = s.elapsed().as_secs_f64();
        if a != b || a != c {
            bail!("round {round}: colours differ: rte_meter {a:?}, ispmux {b:?}, packed {c:?}");
        }
        let rate = |secs: f64| checks as f64 / secs / 1e6;
        let (r, o, k) = (rate(rte_s), rate(ours_s), rate(packed_s));
        println!(
            "round {round}: green/yellow/red {a:?}; rte_meter {r:.1} Mchecks/s, ispmux {o:.1} \
             Mchecks/s (packed {k:.1}){}",
            if round == 0 { " (warm-up)" } else { "" }
        );
        if round > 0 {
            rte_rates.push(r);
            ours_rates.push(o);
            packed_rates.push(k);
        }
    }
    println!(
        "ispmux packed at 24 bytes: {:.3} Mchecks/s",
        median(&packed_rates)
    );
    println!(
        "{}",
        result_line(
            "meter-cost",
            median(&ours_rates),
            median(&rte_rates),
            "Mchecks/s"
        )
    );
    Ok(())
}
