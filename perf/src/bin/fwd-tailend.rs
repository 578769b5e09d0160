//! `perf/run fwd-tailend`: the tailend's upstream path: pop the ISP's label and hand the
//! IPv4 packet to the ISP's router on the hand-off port, per-ISP counters; 16 ISPs, frames of
//! 250,000 subscribers in scattered order, one forwarding lcore, against dpdk-testpmd io on
//! the same input (see `ispmux_perf::fwd`). Needs root (hugepages, about 1.2 GB). Options:
//! `--frames N` (default 250,000), `--secs N` (default 8), `--rounds N` (default 3),
//! `--keep` (keep the capture and config, and print where).

use anyhow::Result;
use ispmux_perf::fwd::{write_labelled_pcap, FwdBench, CORE_IN_MAC};
use ispmux_perf::{opt, result_line};

const HANDOFF_MAC: &str = "02:00:00:00:00:d1";
const ISPS: u32 = 16;

fn main() -> Result<()> {
    let frames = opt("--frames", 250_000.0) as u32;
    let secs = opt("--secs", 8.0).max(4.0);
    let rounds = opt("--rounds", 3.0).max(1.0) as usize;
    let dir = tempfile::Builder::new()
        .prefix("ispmux-fwd-tailend-")
        .tempdir()?;
    let pcap = dir.path().join("labelled.pcap");
    // ISP n's upstream label at the tailend is 2000 + n.
    write_labelled_pcap(&pcap, frames, |i| 2001 + i % ISPS)?;
    let mut tables = format!("[tables.limits]\nmax_isps = {}\n\n", ISPS + 1);
    for id in 1..=ISPS {
        tables += &format!(
            "[[tables.isps]]\nid = {id}\nname = \"isp{id}\"\n\n\
             [[tables.ilm]]\nlabel = {}\n\
             action = {{ kind = \"pop_handoff\", isp = {id}, port = \"out\", router_mac = \"02:00:00:0a:00:{id:02x}\" }}\n\n",
            2000 + id
        );
    }
    println!(
        "fwd-tailend: {ISPS} ISPs popped and handed off, {frames} frames (64-byte IPv4 + 1 label) in scattered \
         order, net_pcap infinite_rx -> net_null, 1 forwarding lcore, burst 32, hugepages, {secs} s x {rounds} rounds"
    );
    let bench = FwdBench {
        name: "fwd-tailend",
        pcap,
        frames: u64::from(frames),
        tables,
        subscribers_csv: None,
        ports: [("core", &CORE_IN_MAC.to_string()), ("handoff", HANDOFF_MAC)],
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
    println!("{}", result_line("fwd-tailend", r.ispmux, r.anchor, "Mpps"));
    Ok(())
}
