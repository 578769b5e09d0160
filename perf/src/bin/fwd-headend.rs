//! `perf/run fwd-headend`: the headend's upstream path (subscriber lookup by access port,
//! VLAN and MAC, source guard, label push, per-ISP counters) for 1,000,000 subscribers with
//! scattered MACs arriving in scattered order, one frame each, on one forwarding lcore,
//! against dpdk-testpmd io on the same input (see `ispmux_perf::fwd`).
//!
//! The frames and the tables come from `ispmux_dataplane::synthetic`, so every frame is from
//! a known subscriber with its bound address and is forwarded. Needs root (hugepages: about
//! 3 GB for the million stored frames). Options: `--subscribers N` (default 1,000,000),
//! `--secs N` (per run, default 8), `--rounds N` (default 3),
//! `--keep` (keep the capture, CSV and config, and print where).

use anyhow::Result;
use ispmux_dataplane::synthetic::Spec;
use ispmux_dataplane::wire::MacAddr;
use ispmux_perf::fwd::{headend_inputs, FwdBench, HeadendInputs};
use ispmux_perf::{opt, result_line};

const ACCESS_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa0]);
const CORE_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xc1]);
const NEXT_HOP: &str = "02:00:00:00:01:01";
const ISPS: u16 = 16;

fn main() -> Result<()> {
    let subscribers = opt("--subscribers", 1_000_000.0) as u32;
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
        .prefix("ispmux-fwd-headend-")
        .tempdir()?;
    let HeadendInputs { pcap, csv, tables } =
        headend_inputs(dir.path(), &spec, ACCESS_MAC, NEXT_HOP, subscribers)?;
    println!(
        "fwd-headend: {subscribers} subscribers (scattered MACs, scattered order, untagged, 64-byte frames), \
         {ISPS} ISPs, net_pcap infinite_rx -> net_null, 1 forwarding lcore, burst 32, hugepages, \
         {secs} s x {rounds} rounds"
    );
    let bench = FwdBench {
        name: "fwd-headend",
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
    let r = bench.run()?;
    if std::env::args().any(|a| a == "--keep") {
        // For profiling `ispmux run` by hand on the same input afterwards.
        println!("kept {}", dir.keep().display());
    }
    println!("{}", r.last_report);
    println!("{}", result_line("fwd-headend", r.ispmux, r.anchor, "Mpps"));
    Ok(())
}
