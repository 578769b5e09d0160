//! `perf/run fwd-transit`: a label switching router: 1,000 incoming labels, each swapped to
//! its own outgoing label (TTL decremented, Ethernet rewritten), frames of 250,000 flows in
//! scattered order on one forwarding lcore, against dpdk-testpmd io on the same input (see
//! `ispmux_perf::fwd`). Needs root (hugepages, about 1.2 GB). Options: `--frames N`
//! (default 250,000), `--labels N` (default 1,000), `--secs N` (default 8), `--rounds N`
//! (default 3), `--keep` (keep the capture and config, and print where).

use anyhow::Result;
use ispmux_perf::fwd::{write_labelled_pcap, FwdBench, CORE_IN_MAC};
use ispmux_perf::{opt, result_line};

const OUT_MAC: &str = "02:00:00:00:00:c1";
const NEXT_HOP: &str = "02:00:00:00:02:01";

fn main() -> Result<()> {
    let frames = opt("--frames", 250_000.0) as u32;
    let labels = (opt("--labels", 1_000.0) as u32).clamp(1, 4_000);
    let secs = opt("--secs", 8.0).max(4.0);
    let rounds = opt("--rounds", 3.0).max(1.0) as usize;
    let dir = tempfile::Builder::new()
        .prefix("ispmux-fwd-transit-")
        .tempdir()?;
    let pcap = dir.path().join("labelled.pcap");
    // Labels 16.. (0-15 are reserved), spread over the frames.
    write_labelled_pcap(&pcap, frames, |i| 16 + i % labels)?;
    let mut tables = format!("[tables.limits]\nmax_labels = {}\n\n", labels + 16);
    for l in 16..16 + labels {
        tables += &format!(
            "[[tables.ilm]]\nlabel = {l}\n\
             action = {{ kind = \"swap\", out_label = {}, port = \"out\", next_hop = \"{NEXT_HOP}\" }}\n\n",
            l + 100_000
        );
    }
    println!(
        "fwd-transit: {labels} labels swapped, {frames} frames (64-byte IPv4 + 1 label) in scattered order, \
         net_pcap infinite_rx -> net_null, 1 forwarding lcore, burst 32, hugepages, {secs} s x {rounds} rounds"
    );
    let bench = FwdBench {
        name: "fwd-transit",
        pcap,
        frames: u64::from(frames),
        tables,
        subscribers_csv: None,
        ports: [("core", &CORE_IN_MAC.to_string()), ("core", OUT_MAC)],
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
    println!("{}", result_line("fwd-transit", r.ispmux, r.anchor, "Mpps"));
    Ok(())
}
