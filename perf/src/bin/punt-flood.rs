//! `perf/run punt-flood`: the headend's bound subscribers forwarding (as `fwd-headend`:
//! guard, label push, per-ISP counters; net_pcap `infinite_rx` -> net_null, one forwarding
//! lcore) while a DHCP DISCOVER flood from unknown MACs arrives on the same access port at
//! about 1 Mpps, with the logon proxy (`[dhcp]`) running on the slow path.
//!
//! The flood is in the capture: one frame in every k is a DISCOVER from one of the
//! capture's flood MACs (06:00:…, none registered), k chosen from the rate the worker takes
//! a mixed capture at, measured first (k = 15 for 15 Mpps), so the flood arrives at
//! `--flood-mpps` (default 1). A saturated worker takes the flood frames out of
//! the same receive budget as the subscribers' (net_pcap hands it frames as fast as it
//! asks), so the subscribers' rate with the flood can at best be (k-1)/k of their rate
//! alone whatever the slow path does. The anchor therefore is the same capture with each
//! DISCOVER replaced by its twin: the same frame from the same MAC to UDP port 9, which the
//! worker drops as `unknown_mac` (`ispmux_perf::flood`). Per frame the worker receives,
//! parses and looks up the same bytes; the difference between the two is what the storm
//! costs the fast path. No flood MAC is registered, so the workers drop the DISCOVERs as
//! `unregistered` after one look at the registered filter, beyond `[dhcp]
//! unregistered_per_s` a second that they punt for the logon proxy to refuse (before the
//! filter every DISCOVER was punted: 0.889).
//!
//! Three runs a round, interleaved (subscribers alone, twins, flood; the order reversed
//! every other round); medians over rounds. X is the subscribers' forwarded rate (the core
//! port's transmit rate; flood frames are never transmitted) with the flood, Y with the
//! twins. The subscribers' rate alone is printed too, beside (k-1)/k of it. The flood's
//! fate comes from ispmux's exit report: punted, dropped as `punt_ring_full`, refused or
//! dropped by the logon engine.
//!
//! 100,000 subscribers by default rather than `fwd-headend`'s million: the per-frame cost
//! of the subscriber lookup is then the cache's, not the TLB's, so the worker is faster and
//! any cost the storm adds per frame shows more, and three runs a round load in seconds
//! (the capture is held in mbufs). Needs root (about 1 GB of hugepages). Options:
//! `--subscribers N`, `--secs N` (per run, default 6), `--rounds N` (default 5),
//! `--flood-mpps F` (default 1), `--every K` (skip the calibration: one frame in K is the
//! flood's), `--unregistered-per-s N` (the workers' allowance, default 10 as the product's:
//! 0 leaves the logon proxy and the store out of the flood entirely), `--keep` (keep captures
//! and configs, and print where).
//!
//! Last line: `punt-flood ratio=R ispmux=X Mpps anchor=Y Mpps`.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Result};
use ispmux_dataplane::synthetic::{self, Spec};
use ispmux_dataplane::wire::MacAddr;
use ispmux_perf::flood::{
    dhcp_refused_and_dropped, discard_twin, discover, flood_every, flood_mac, interleave,
    report_counter,
};
use ispmux_perf::fwd::{headend_inputs, ispmux_tx_mpps, HeadendInputs};
use ispmux_perf::{ensure_hugepages, ispmux_bin, median, opt, result_line, run_to_end};

const ACCESS_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa0]);
const CORE_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xc1]);
const NEXT_HOP: &str = "02:00:00:00:01:01";
const ISPS: u16 = 16;
/// The default punt ring (`[dataplane] punt_ring`): mbufs it may hold beyond the capture's.
const PUNT_RING: u64 = 4096;

/// What one run feeds the worker.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Input {
    /// The subscribers' frames alone.
    Alone,
    /// One frame in k a twin (UDP port 9 from a flood MAC): dropped in the worker.
    Twins,
    /// One frame in k a DISCOVER from a flood MAC: dropped as `unregistered` but for the
    /// workers' allowance of punts.
    Flood,
}

impl Input {
    fn name(self) -> &'static str {
        match self {
            Input::Alone => "alone",
            Input::Twins => "twins",
            Input::Flood => "flood",
        }
    }
}

struct Bench {
    dir: PathBuf,
    csv: PathBuf,
    tables: String,
    secs: f64,
    /// `[dhcp] unregistered_per_s`: the workers' allowance of punts for unknown MACs.
    unregistered_per_s: u32,
}

impl Bench {
    /// Runs `ispmux run` on `pcap` (`frames` frames) once; returns the core port's and the
    /// access port's median rates (Mpps) and ispmux's output.
    fn run(&self, tag: &str, pcap: &Path, frames: u64, secs: f64) -> Result<(f64, f64, String)> {
        let mb = (frames * 2_700).div_ceil(1_000_000) + 512;
        if !ensure_hugepages(mb + 256) {
            bail!("punt-flood: {mb} MiB of hugepages are needed (run as root, or free some)");
        }
        let conf = self.dir.join(format!("{tag}.toml"));
        std::fs::write(&conf, self.config(pcap, frames, mb))?;
        // Its own network namespace: the logon proxy binds its ISP-side address
        // (127.0.0.1:67) there, whatever the machine's namespace has bound.
        let out = run_to_end(
            Command::new("unshare")
                .args(["--net", "--", "sh", "-c"])
                .arg(r#"ip link set lo up && exec "$0" "$@""#)
                .arg(ispmux_bin()?)
                .args(["run", "--duration", &format!("{secs}"), "-c"])
                .arg(&conf)
                .env("ISPMUX_LOG", "warn"),
        )?;
        Ok((ispmux_tx_mpps(&out, "out"), rx_mpps(&out, "in"), out))
    }

    fn config(&self, pcap: &Path, frames: u64, memory_mb: u64) -> String {
        let dir = self.dir.display();
        format!(
            "[eal]\nlcores = [0, 1]\nmemory_mb = {memory_mb}\nhugepages = \"on\"\n\
             file_prefix = \"ispmux-punt-flood-{pid}\"\n\n\
             [[port]]\nname = \"in\"\ndevice = \"net_pcap0,rx_pcap={pcap},infinite_rx=1\"\n\
             role = \"access\"\nmac = \"{ACCESS_MAC}\"\n\n\
             [[port]]\nname = \"out\"\ndevice = \"net_null0,no-rx=1\"\nrole = \"core\"\n\
             mac = \"{CORE_MAC}\"\n\n\
             [dataplane]\npipeline = \"node\"\nburst = 32\nidle_sleep = \"off\"\n\
             mbufs = {mbufs}\npunt_ring = {PUNT_RING}\nsubscribers_csv = \"{csv}\"\n\n\
             [control]\nstats_interval_s = 1\nsocket = \"{dir}/ctl.sock\"\n\n\
             [store]\npath = \"{dir}/registry.db\"\n\n\
             # No subscriber is registered: every DISCOVER is refused before it is relayed,\n\
             # so the ISP's server is never asked and may be unreachable.\n\
             [dhcp]\nrelay_address = \"127.0.0.1\"\nserver_identifier = \"198.18.0.1\"\n\
             unregistered_per_s = {unregistered}\n\n\
             [[dhcp.isps]]\nname = \"isp1\"\nservers = [\"192.0.2.1\"]\n\n{tables}",
            pid = std::process::id(),
            pcap = pcap.display(),
            mbufs = frames + 16_384 + PUNT_RING,
            csv = self.csv.display(),
            tables = self.tables,
            unregistered = self.unregistered_per_s,
        )
    }
}

/// Per-second receive rate of port `name` from `ispmux run`'s lines
/// "port NAME rx X Mpps tx Y Mpps", the first with traffic left out, median.
fn rx_mpps(out: &str, name: &str) -> f64 {
    let per_second: Vec<f64> = out
        .lines()
        .filter(|l| l.starts_with("port ") && l.split_whitespace().nth(1) == Some(name))
        .filter_map(|l| l.split_whitespace().nth(3)?.parse().ok())
        .skip_while(|r| *r == 0.0)
        .skip(1)
        .collect();
    median(&per_second)
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

fn write_pcap(path: &Path, frames: impl IntoIterator<Item = Vec<u8>>) -> Result<()> {
    let mut w = BufWriter::new(std::fs::File::create(path)?);
    synthetic::write_pcap(&mut w, frames)?;
    w.flush()?;
    Ok(())
}

fn main() -> Result<()> {
    let subscribers = opt("--subscribers", 100_000.0) as u32;
    let secs = opt("--secs", 6.0).max(4.0);
    let rounds = opt("--rounds", 5.0).max(1.0) as usize;
    let flood_mpps = opt("--flood-mpps", 1.0);
    let unregistered_per_s = opt("--unregistered-per-s", 10.0) as u32;
    let spec = Spec {
        subscribers,
        isps: ISPS,
        access_port: 0,
        core_port: 1,
        qinq: false,
    };
    let dir = tempfile::Builder::new()
        .prefix("ispmux-punt-flood-")
        .tempdir()?;
    let HeadendInputs { pcap, csv, tables } =
        headend_inputs(dir.path(), &spec, ACCESS_MAC, NEXT_HOP, subscribers)?;
    let bench = Bench {
        dir: dir.path().to_owned(),
        csv,
        tables,
        secs,
        unregistered_per_s,
    };
    let alone_frames = u64::from(subscribers);
    let mixed_frames = |every: u32| alone_frames + alone_frames / u64::from(every - 1);
    let subscriber_frames = || {
        synthetic::scattered_order(subscribers)
            .map(move |i| synthetic::upstream_frame(&spec, i, ACCESS_MAC, 64))
    };
    let write_mix = |path: &Path, every: u32, input: Input| {
        write_pcap(
            path,
            interleave(subscriber_frames(), every, |j| match input {
                Input::Flood => discover(flood_mac(j), j),
                _ => discard_twin(flood_mac(j), j),
            }),
        )
    };
    let flood_pcap = dir.path().join("flood.pcap");
    let twins_pcap = dir.path().join("twins.pcap");
    let every = match opt("--every", 0.0) as u32 {
        k if k >= 2 => k,
        _ => {
            // The worker's rate on a mixed capture (its frames in all), first guessing the
            // mix: the flood's share of that rate is what arrives.
            const GUESS: u32 = 15;
            write_mix(&twins_pcap, GUESS, Input::Twins)?;
            let (_, all, _) = bench.run("calibrate", &twins_pcap, mixed_frames(GUESS), 4.0)?;
            if all == 0.0 {
                bail!("punt-flood: calibration measured no traffic");
            }
            println!("calibration: the worker takes {all:.3} Mpps of a mixed capture");
            flood_every(all, flood_mpps)
        }
    };
    write_mix(&flood_pcap, every, Input::Flood)?;
    write_mix(&twins_pcap, every, Input::Twins)?;
    let flood_frames = alone_frames / u64::from(every - 1);
    println!(
        "punt-flood: {subscribers} bound subscribers (as fwd-headend: scattered MACs and order, \
         64-byte frames, {ISPS} ISPs) on the access port, 1 frame in {every} a DHCPDISCOVER \
         (342 bytes) from {flood_frames} unknown MACs (anchor: the same frames to UDP port 9), \
         [dhcp] logon proxy on; net_pcap infinite_rx -> net_null, 1 forwarding lcore, burst 32, \
         {secs} s x {rounds} rounds"
    );

    let mut rates: [Vec<f64>; 3] = Default::default();
    let mut ratios = Vec::new();
    let mut flood_in = Vec::new();
    let mut last_flood = String::new();
    for round in 1..=rounds {
        let mut order = [Input::Alone, Input::Twins, Input::Flood];
        if round % 2 == 0 {
            order.reverse();
        }
        let mut line = format!("round {round}:");
        for input in order {
            let (pcap, frames) = match input {
                Input::Alone => (&pcap, alone_frames),
                Input::Twins => (&twins_pcap, mixed_frames(every)),
                Input::Flood => (&flood_pcap, mixed_frames(every)),
            };
            let (fwd, rx, out) = bench.run(input.name(), pcap, frames, bench.secs)?;
            if fwd == 0.0 {
                bail!(
                    "round {round}: {} measured no forwarding\n{out}",
                    input.name()
                );
            }
            let share = core_share(&out).map_or("?".to_owned(), |s| format!("{:.1} %", 100.0 * s));
            line += &format!(" {} {fwd:.3} Mpps (core {share})", input.name());
            if input == Input::Flood {
                let f = rx / f64::from(every);
                line += &format!(" with {f:.3} Mpps of flood");
                flood_in.push(f);
                last_flood = out;
            }
            rates[input as usize].push(fwd);
        }
        // The round's own ratio: runs next to each other share the machine's state, which
        // on a shared machine drifts by more than the effect measured.
        let ratio =
            rates[Input::Flood as usize][round - 1] / rates[Input::Twins as usize][round - 1];
        ratios.push(ratio);
        println!("{line}; flood/twins {ratio:.3}");
    }
    let [z, y, x] = rates.map(|r| median(&r));
    let k = f64::from(every);
    println!(
        "subscribers alone {z:.3} Mpps; (k-1)/k of that, the best a saturated worker can do \
         with 1 frame in {every} not theirs: {:.3} Mpps; with the flood {x:.3} Mpps ({:.3} of alone)",
        z * (k - 1.0) / k,
        if z > 0.0 { x / z } else { 0.0 }
    );
    println!(
        "median of the rounds' own flood/twins ratios: {:.3}",
        median(&ratios)
    );
    let c = |line: &str, name: &str| report_counter(&last_flood, line, name).unwrap_or(0);
    let (refused, dropped) = dhcp_refused_and_dropped(&last_flood).unwrap_or_default();
    let ran = last_flood
        .lines()
        .find_map(|l| l.strip_prefix("ispmux ran "))
        .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    println!(
        "flood (last round, {ran:.1} s, median {:.3} Mpps arriving): workers punted {} \
         punt_ring_full {} unknown_mac {}; slow path took {} dhcp, logon engine refused {} \
         dropped {} (rate limit, …)",
        median(&flood_in),
        c("workers", "punted"),
        c("drops", "punt_ring_full"),
        c("drops", "unknown_mac"),
        c("slowpath", "dhcp"),
        refused,
        dropped,
    );
    for l in last_flood.lines().filter(|l| {
        l.starts_with("drops ")
            || l.starts_with("slowpath ")
            || l.starts_with("dhcp ")
            || l.starts_with("workers ")
    }) {
        println!("{l}");
    }
    if std::env::args().any(|a| a == "--keep") {
        println!("kept {}", dir.keep().display());
    }
    println!("{}", result_line("punt-flood", x, y, "Mpps"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{core_share, rx_mpps};

    #[test]
    fn reads_the_access_ports_rate_and_the_workers_core_share() {
        let out = "port in rx 0.0 Mpps tx 0.0 Mpps\nport in rx 9.0 Mpps tx 0.0 Mpps\n\
                   port in rx 16.0 Mpps tx 0.0 Mpps\nport in rx 16.2 Mpps tx 0.0 Mpps\n\
                   port out rx 0.0 Mpps tx 15.0 Mpps\n\
                   worker lcore 1 on-cpu 4.500 s waited 0.500 s\n";
        assert_eq!(
            rx_mpps(out, "in"),
            16.1,
            "the first second with traffic left out"
        );
        assert_eq!(core_share(out), Some(0.9));
        assert_eq!(core_share("ispmux ran 5 s\n"), None);
    }
}
