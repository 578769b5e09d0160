//! `perf/run table-updates`: table updates applied per second while one worker forwards the
//! headend's upstream traffic at full rate (1,000,000 subscribers, as `fwd-headend`), and
//! what they cost in forwarding rate: `ispmux run` without updates (the anchor, Mpps) and
//! with `[dataplane] bench_updates_per_s` (a generator thread adding, binding and removing
//! subscribers no frame uses, through the same update channel as the slow path), interleaved.
//! R is the rate with updates over the rate without; X the updates per second the generator
//! got applied (to the master copy and queued to the worker; the worker drains its queue
//! between bursts). Needs root (about 3 GB of hugepages). Options: `--subscribers N`
//! (default 1,000,000), `--rate N` (updates/s asked for, default 600,000), `--secs N`
//! (default 8), `--rounds N` (default 3).

use anyhow::{bail, Result};
use ispmux_dataplane::synthetic::Spec;
use ispmux_dataplane::wire::MacAddr;
use ispmux_perf::fwd::{headend_inputs, FwdBench, HeadendInputs};
use ispmux_perf::{median, opt};

const ACCESS_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa0]);
const CORE_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xc1]);
const NEXT_HOP: &str = "02:00:00:00:01:01";
const ISPS: u16 = 16;
/// Room for the generator's own subscribers (ispmux's update_gen::KEYS, and some).
const GENERATOR_ROOM: u32 = 8_192;

fn main() -> Result<()> {
    let subscribers = opt("--subscribers", 1_000_000.0) as u32;
    let rate = opt("--rate", 600_000.0) as u32;
    let secs = opt("--secs", 8.0).max(4.0);
    let rounds = opt("--rounds", 3.0).max(1.0) as usize;
    let spec = Spec {
        subscribers,
        isps: ISPS,
        access_port: 0,
        core_port: 1,
        qinq: false,
    };
    let dir = tempfile::Builder::new()
        .prefix("ispmux-table-updates-")
        .tempdir()?;
    let HeadendInputs { pcap, csv, tables } = headend_inputs(
        dir.path(),
        &spec,
        ACCESS_MAC,
        NEXT_HOP,
        subscribers + GENERATOR_ROOM,
    )?;
    println!(
        "table-updates: headend, {subscribers} subscribers, {rate} updates/s asked for \
         (add, bind, remove), 1 forwarding lcore, {secs} s x {rounds} rounds"
    );
    let bench = FwdBench {
        name: "table-updates",
        pcap,
        frames: u64::from(subscribers),
        tables,
        subscribers_csv: Some(csv),
        ports: [
            ("access", &ACCESS_MAC.to_string()),
            ("core", &CORE_MAC.to_string()),
        ],
        secs,
        rounds,
        dir: dir.path(),
    };
    let (mut without, mut with, mut applied) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let (a, quiet) = bench.run_ispmux("-quiet", "")?;
        let (b, out) = bench.run_ispmux("-updates", &format!("bench_updates_per_s = {rate}\n"))?;
        let gen_line = out.lines().find(|l| l.starts_with("update-generator"));
        if let Some(l) = gen_line {
            println!("{l}");
        }
        let Some(u) = gen_line.and_then(|l| l.split_whitespace().rev().nth(1)?.parse::<f64>().ok())
        else {
            bail!("round {round}: no update-generator line in ispmux's output\n{out}");
        };
        if a == 0.0 || b == 0.0 {
            bail!("round {round}: no rate measured (without {a}, with {b})");
        }
        // The share of its core the worker got in each run: on a machine shared with other
        // work, the generator's thread on the other core pushes that work onto the worker's.
        let share =
            |out: &str| core_share(out).map_or("?".to_owned(), |s| format!("{:.1} %", 100.0 * s));
        println!(
            "round {round}: without updates {a:.3} Mpps, with {u:.0} updates/s {b:.3} Mpps, ratio {:.3} \
             (worker on its core {} / {})",
            b / a,
            share(&quiet),
            share(&out)
        );
        without.push(a);
        with.push(b);
        applied.push(u);
    }
    let (y, b, x) = (median(&without), median(&with), median(&applied));
    let r = if y > 0.0 { b / y } else { 0.0 };
    println!("table-updates ratio={r:.3} ispmux={x:.0} updates/s anchor={y:.3} Mpps");
    Ok(())
}

/// The share of its core the forwarding worker ran for, from ispmux's line
/// `worker lcore L on-cpu X s waited Y s`.
fn core_share(out: &str) -> Option<f64> {
    let w: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("worker lcore "))?
        .split_whitespace()
        .collect();
    let on: f64 = w.get(4)?.parse().ok()?;
    let waited: f64 = w.get(7)?.parse().ok()?;
    (on + waited > 0.0).then(|| on / (on + waited))
}

#[cfg(test)]
mod tests {
    use super::core_share;

    #[test]
    fn reads_the_workers_core_share() {
        let out =
            "port out rx 0 Mpps\nworker lcore 1 on-cpu 4.500 s waited 0.500 s\nispmux ran 5 s\n";
        assert_eq!(core_share(out), Some(0.9));
        assert_eq!(core_share("ispmux ran 5 s\n"), None);
    }
}
