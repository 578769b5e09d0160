//! What address translation costs on this machine, apart from the caches: the question
//! behind the headend's 1,000,000-subscriber figure (`perf/run fwd-headend`), whose table is
//! read at random over 32 MiB.
//!
//! A chain of `K` cache lines is followed at random, each load's address coming from the
//! previous one, in two layouts of the same lines:
//! - `packed`: the lines side by side (K × 64 bytes, a few 4 KiB pages);
//! - `spread`: one line in each of K consecutive 4 KiB pages, at offsets that use every
//!   cache set evenly.
//!
//! Both hold the same bytes, resident in the same cache level, inside one buffer that the
//! kernel backs with 2 MiB pages (`ispmux_sys::HugeAlloc`; the run prints how much of it
//! is). Where 2 MiB pages are translated as 2 MiB pages (bare metal, or a hypervisor that
//! backs guest memory with huge pages), `spread` costs about what `packed` costs: a few
//! dozen TLB entries cover the whole buffer. Where the hypervisor backs guest memory with
//! 4 KiB pages, every 4 KiB page needs its own entry and `spread` pays a (two-dimensional)
//! page walk per load once K passes the TLB's reach.
//!
//! `cargo run --release -p ispmux-perf --example translation_reach [MiB] [K,K,...]`
//! (defaults 64 and 2048,4096,8192,16384); run it pinned and alone, e.g. under
//! `chrt -f 10 taskset -c 1`. A guide for reading the benchmarks, not a benchmark.

use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::hint::black_box;
use std::time::Instant;

#[global_allocator]
static ALLOC: ispmux_sys::HugeAlloc = ispmux_sys::HugeAlloc;

const LINE: usize = 64;
const PAGE: usize = 4096;
const STEPS: usize = 20_000_000;

/// Where the chased lines lie in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// Side by side.
    Packed,
    /// One in each 4 KiB page.
    Spread,
}

/// Byte offsets of the `k` lines in `layout`.
fn offsets(k: usize, layout: Layout) -> Vec<usize> {
    (0..k)
        .map(|i| match layout {
            // Page i, line (i / 16) mod 64: with 16 pages per 64 KiB, this walks every set
            // of a cache indexed by address bits 6..16.
            Layout::Spread => i * PAGE + (i / 16 % (PAGE / LINE)) * LINE,
            Layout::Packed => i * LINE,
        })
        .collect()
}

/// Links the lines at `offs` into one random cycle (each line's first word holds the word
/// index of the next) and returns the nanoseconds per load of following it.
fn chase(buf: &mut [u64], offs: &[usize], rng: &mut StdRng) -> f64 {
    let mut order: Vec<usize> = offs.iter().map(|o| o / 8).collect();
    // Random, so the prefetchers cannot guess the next line.
    order.shuffle(rng);
    for (i, &w) in order.iter().enumerate() {
        buf[w] = order[(i + 1) % order.len()] as u64;
    }
    let mut p = order[0];
    // One lap first, so the lines are where the timed laps find them.
    for _ in 0..order.len() * 2 {
        p = buf[p] as usize;
    }
    let t = Instant::now();
    for _ in 0..STEPS {
        p = buf[p] as usize;
    }
    let ns = t.elapsed().as_secs_f64() * 1e9 / STEPS as f64;
    black_box(p);
    ns
}

/// Kilobytes of this process's anonymous memory on huge pages.
fn anon_huge_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("AnonHugePages:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let mib: usize = args.get(1).map_or(Ok(64), |s| s.parse()).context("MiB")?;
    let ks: Vec<usize> = args
        .get(2)
        .map_or("2048,4096,8192,16384", String::as_str)
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .context("K list")?;
    let bytes = mib.checked_mul(1 << 20).context("MiB too large")?;
    if let Some(&k) = ks
        .iter()
        .find(|&&k| k == 0 || k.checked_mul(PAGE).is_none_or(|b| b > bytes))
    {
        bail!(
            "K={k}: spread needs 1..={} lines in {mib} MiB",
            bytes / PAGE
        );
    }
    let mut buf = vec![0u64; bytes / 8];
    // Touch every page, so the kernel backs the buffer now.
    for w in buf.iter_mut().step_by(PAGE / 8) {
        *w = 1;
    }
    println!(
        "{mib} MiB buffer, {} MiB of this process on huge pages; {STEPS} dependent loads a run",
        anon_huge_kb().map_or("?".to_string(), |kb| (kb >> 10).to_string())
    );
    println!(
        "{:>7} {:>9} {:>12} {:>12} {:>10}",
        "lines", "bytes", "packed ns", "spread ns", "pages"
    );
    let mut rng = StdRng::seed_from_u64(1);
    for &k in &ks {
        let packed = chase(&mut buf, &offsets(k, Layout::Packed), &mut rng);
        let spread = chase(&mut buf, &offsets(k, Layout::Spread), &mut rng);
        println!(
            "{k:>7} {:>8}K {packed:>12.2} {spread:>12.2} {:>9}M",
            (k * LINE) >> 10,
            (k * PAGE) >> 20
        );
    }
    println!(
        "spread − packed is what translating one load costs at that span (expected near 0 \
         where 2 MiB pages are translated whole)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_hold_distinct_lines_and_spread_uses_one_page_each() {
        for layout in [Layout::Packed, Layout::Spread] {
            let o = offsets(4096, layout);
            let mut lines: Vec<usize> = o.iter().map(|x| x / LINE).collect();
            lines.sort_unstable();
            lines.dedup();
            assert_eq!(lines.len(), o.len());
            assert!(o.iter().all(|x| x % LINE == 0));
            if layout == Layout::Spread {
                assert!(o.iter().enumerate().all(|(i, x)| x / PAGE == i));
                // Every one of the 1,024 sets of a 64 KiB-indexed cache gets 4 lines.
                let mut sets = [0u32; 1024];
                for x in &o {
                    sets[x / LINE % 1024] += 1;
                }
                assert!(sets.iter().all(|&n| n == 4), "{sets:?}");
            }
        }
    }

    #[test]
    fn the_chase_visits_every_line() {
        let mut buf = vec![0u64; 64 * PAGE / 8];
        let offs = offsets(64, Layout::Spread);
        chase(&mut buf, &offs, &mut StdRng::seed_from_u64(7));
        let mut w = offs[0] / 8;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..offs.len() {
            assert!(seen.insert(w));
            w = buf[w] as usize;
        }
        assert_eq!(w, offs[0] / 8);
    }
}
