//! Side-by-side forwarding runs on one capture file: `dpdk-testpmd` io (the anchor) and
//! `ispmux run` with a node pipeline, both reading the same frames through
//! `net_pcap0,rx_pcap=FILE,infinite_rx=1` and sending to `net_null0,no-rx=1`, interleaved,
//! on the same two lcores (one forwarding), with hugepages.
//!
//! Both are measured the same way: the per-second transmit rate of the sink port, the first
//! second with traffic (partial) left out, the median of the rest per run; the result is
//! the median of runs.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Result};
use ispmux_dataplane::synthetic::{self, Spec};
use ispmux_dataplane::table::IspId;
use ispmux_dataplane::wire::MacAddr;

use crate::{ensure_hugepages, ispmux_bin, median, run_then_interrupt, run_to_end};

/// Bytes of hugepage memory one stored frame costs in a pool of 2176-byte mbufs, with
/// headroom for the mempool's own objects.
const MB_PER_MILLION_FRAMES: u64 = 2_700;

/// One benchmark's input and node.
pub struct FwdBench<'a> {
    /// Benchmark name (for messages).
    pub name: &'a str,
    /// The capture file both read.
    pub pcap: PathBuf,
    /// Frames in it (sizes the mbuf pools: `infinite_rx` keeps every frame in an mbuf).
    pub frames: u64,
    /// The `[tables]` part of the ispmux config; the ports are named "in" and "out".
    pub tables: String,
    /// Subscribers to preload from a CSV file (absolute path).
    pub subscribers_csv: Option<PathBuf>,
    /// Role and MAC of the input port (port 0) and the sink port (port 1).
    pub ports: [(&'a str, &'a str); 2],
    /// Seconds per run.
    pub secs: f64,
    /// Runs of each.
    pub rounds: usize,
    /// Directory for the config and the subscribers file.
    pub dir: &'a Path,
}

/// Median testpmd and ispmux rates (Mpps, frames sent on the sink port).
pub struct FwdResult {
    /// testpmd io.
    pub anchor: f64,
    /// ispmux.
    pub ispmux: f64,
    /// ispmux's last exit report (JSON), for drop counts.
    pub last_report: String,
}

impl FwdBench<'_> {
    /// Hugepage MiB both need.
    pub fn hugepage_mb(&self) -> u64 {
        (self.frames * MB_PER_MILLION_FRAMES).div_ceil(1_000_000) + 512
    }

    /// Writes the ispmux config to `dir` and returns its path.
    fn write_config(&self, memory_mb: u64, tag: &str, dataplane_extra: &str) -> Result<PathBuf> {
        let conf = self.dir.join(format!("{}{tag}.toml", self.name));
        let mut s = format!(
            "[eal]\nlcores = [0, 1]\nmemory_mb = {memory_mb}\nhugepages = \"on\"\n\n\
             [[port]]\nname = \"in\"\ndevice = \"net_pcap0,rx_pcap={},infinite_rx=1\"\n\
             role = \"{}\"\nmac = \"{}\"\n\n\
             [[port]]\nname = \"out\"\ndevice = \"net_null0,no-rx=1\"\nrole = \"{}\"\nmac = \"{}\"\n\n",
            self.pcap.display(),
            self.ports[0].0,
            self.ports[0].1,
            self.ports[1].0,
            self.ports[1].1,
        );
        s += &format!(
            "[dataplane]\npipeline = \"node\"\nburst = 32\nidle_sleep = \"off\"\nmbufs = {}\n",
            self.frames + 16_384
        );
        if let Some(csv) = &self.subscribers_csv {
            s += &format!("subscribers_csv = \"{}\"\n", csv.display());
        }
        s += dataplane_extra;
        s += "\n[control]\nstats_interval_s = 1\n\n";
        s += &self.tables;
        std::fs::write(&conf, s)?;
        Ok(conf)
    }

    /// Runs both `rounds` times, interleaved, printing each round.
    pub fn run(&self) -> Result<FwdResult> {
        self.run_with_peer(|_| Ok(()))
    }

    /// Like [`FwdBench::run`], calling `peer(round)` after each round's testpmd and ispmux
    /// runs, so a third forwarder measures in the same interleaving (it must leave the
    /// forwarding lcore idle outside its call).
    pub fn run_with_peer(&self, mut peer: impl FnMut(usize) -> Result<()>) -> Result<FwdResult> {
        let mb = self.hugepage_mb();
        if !ensure_hugepages(mb + 256) {
            bail!(
                "{}: {mb} MiB of hugepages are needed (run as root, or free some)",
                self.name
            );
        }
        let conf = self.write_config(mb, "", "")?;
        let ispmux = ispmux_bin()?;
        // Loading the capture into mbufs takes a while before forwarding starts.
        let load_s = 4.0 + self.frames as f64 / 250_000.0;
        let mut anchor = Vec::new();
        let mut ours = Vec::new();
        let mut last_report = String::new();
        for round in 1..=self.rounds {
            let out = run_then_interrupt(
                Command::new("dpdk-testpmd")
                    .args(["-l", "0,1", "--no-pci", "--in-memory", "--vdev"])
                    .arg(format!(
                        "net_pcap0,rx_pcap={},infinite_rx=1",
                        self.pcap.display()
                    ))
                    .args(["--vdev", "net_null0,no-rx=1"])
                    .args(["--log-level=lib.*:error", "--"])
                    .args(["--forward-mode=io", "--burst=32", "--nb-cores=1"])
                    .arg("--no-flush-rx")
                    .arg(format!("--total-num-mbufs={}", self.frames + 16_384))
                    .args(["--stats-period", "1"]),
                self.secs + load_s,
            )?;
            let t = testpmd_tx_mpps(&out);
            let out = run_to_end(
                Command::new(&ispmux)
                    .args(["run", "--duration", &format!("{}", self.secs), "-c"])
                    .arg(&conf)
                    .env("ISPMUX_LOG", "warn"),
            )?;
            let i = ispmux_tx_mpps(&out, "out");
            if t == 0.0 || i == 0.0 {
                bail!(
                    "{} round {round}: no rate measured (testpmd {t}, ispmux {i})\n{out}",
                    self.name
                );
            }
            println!(
                "round {round}: testpmd io {t:.3} Mpps, ispmux {i:.3} Mpps, ratio {:.3}",
                i / t
            );
            anchor.push(t);
            ours.push(i);
            peer(round)?;
            last_report = out
                .lines()
                .filter(|l| !l.starts_with("port "))
                .collect::<Vec<_>>()
                .join("\n");
        }
        Ok(FwdResult {
            anchor: median(&anchor),
            ispmux: median(&ours),
            last_report,
        })
    }
}

impl FwdBench<'_> {
    /// Runs `ispmux run` alone, once, with `dataplane_extra` lines added to `[dataplane]`;
    /// returns its median sink rate (Mpps) and its output.
    pub fn run_ispmux(&self, tag: &str, dataplane_extra: &str) -> Result<(f64, String)> {
        let mb = self.hugepage_mb();
        if !ensure_hugepages(mb + 256) {
            bail!(
                "{}: {mb} MiB of hugepages are needed (run as root, or free some)",
                self.name
            );
        }
        let conf = self.write_config(mb, tag, dataplane_extra)?;
        let out = run_to_end(
            Command::new(ispmux_bin()?)
                .args(["run", "--duration", &format!("{}", self.secs), "-c"])
                .arg(&conf)
                .env("ISPMUX_LOG", "warn"),
        )?;
        Ok((ispmux_tx_mpps(&out, "out"), out))
    }
}

/// Per-second `Tx-pps` of port 1 (the sink) from testpmd's periodic statistics, median of
/// the intervals with traffic after the first.
pub fn testpmd_tx_mpps(out: &str) -> f64 {
    let pps: Vec<f64> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Tx-pps:"))
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .collect();
    let per_second: Vec<f64> = pps
        .chunks_exact(2)
        .map(|c| c[1] / 1e6)
        // On a busy machine testpmd's stats loop sometimes reports an interval as 0 while
        // forwarding: only intervals that saw traffic count, the first (partial) left out.
        .filter(|r| *r > 0.0)
        .skip(1)
        .collect();
    median(&per_second)
}

/// Per-second transmit rate of port `name` from `ispmux run`'s periodic lines
/// "port NAME rx X Mpps tx Y Mpps", the first with traffic left out, median.
pub fn ispmux_tx_mpps(out: &str, name: &str) -> f64 {
    let per_second: Vec<f64> = out
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(name) && l.starts_with("port "))
        .filter_map(|l| l.split_whitespace().nth(6)?.parse().ok())
        .skip_while(|r| *r == 0.0)
        .skip(1)
        .collect();
    median(&per_second)
}

/// The MAC of the node's input port in the labelled benchmarks, and of the LSR before it.
pub const CORE_IN_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xc0]);
/// The previous hop's MAC.
pub const UPSTREAM_LSR_MAC: MacAddr = MacAddr([2, 0, 0, 0, 1, 0xc0]);

/// Writes `frames` labelled 64-byte frames (68 on the wire with the label) of synthetic
/// subscribers in scattered order to `path`, frame i carrying `label(i)`, addressed to
/// [`CORE_IN_MAC`].
pub fn write_labelled_pcap(path: &Path, frames: u32, label: impl Fn(u32) -> u32) -> Result<()> {
    let spec = Spec {
        subscribers: frames,
        isps: 1,
        access_port: 0,
        core_port: 1,
        qinq: false,
    };
    let mut w = BufWriter::new(std::fs::File::create(path)?);
    synthetic::write_pcap(
        &mut w,
        synthetic::scattered_order(frames).map(|i| {
            let f = synthetic::upstream_frame(&spec, i, MacAddr::ZERO, 64);
            synthetic::labelled(&f, CORE_IN_MAC, UPSTREAM_LSR_MAC, label(i))
        }),
    )?;
    w.flush()?;
    Ok(())
}

/// The upstream label of ISP `id` in the headend benchmarks' tables.
pub fn isp_label(id: IspId) -> u32 {
    1000 + u32::from(id)
}

/// What a headend benchmark feeds ispmux and its anchor.
pub struct HeadendInputs {
    /// Upstream frames, one per subscriber, in scattered order.
    pub pcap: PathBuf,
    /// The subscribers, for `[dataplane] subscribers_csv`.
    pub csv: PathBuf,
    /// `[tables]`: one upstream FEC per ISP toward `next_hop` on port "out".
    pub tables: String,
}

/// Writes the inputs of a headend benchmark into `dir`: `spec`'s subscribers' frames to the
/// access port's MAC, their CSV, and tables with room for `max_subscribers`.
pub fn headend_inputs(
    dir: &Path,
    spec: &Spec,
    access_mac: MacAddr,
    next_hop: &str,
    max_subscribers: u32,
) -> Result<HeadendInputs> {
    let pcap = dir.join("upstream.pcap");
    let mut w = BufWriter::new(std::fs::File::create(&pcap)?);
    synthetic::write_pcap(
        &mut w,
        synthetic::scattered_order(spec.subscribers)
            .map(|i| synthetic::upstream_frame(spec, i, access_mac, 64)),
    )?;
    w.flush()?;
    let csv = dir.join("subscribers.csv");
    let mut w = BufWriter::new(std::fs::File::create(&csv)?);
    // The access port is the config's port 0, "in" (see `FwdBench::write_config`).
    synthetic::write_subscribers_csv(&mut w, spec, "in")?;
    w.flush()?;
    let mut tables = format!(
        "[tables.limits]\nmax_subscribers = {max_subscribers}\nmax_isps = {}\n\n",
        spec.isps + 1
    );
    for id in 1..=spec.isps {
        tables += &format!(
            "[[tables.isps]]\nid = {id}\nname = \"isp{id}\"\n\
             upstream = {{ label = {}, port = \"out\", next_hop = \"{next_hop}\" }}\n\n",
            isp_label(id)
        );
    }
    Ok(HeadendInputs { pcap, csv, tables })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_rate_formats() {
        let t = "  Rx-pps: 5 Rx-bps: 1\n  Tx-pps: 0 Tx-bps: 0\n  Rx-pps: 0\n  Tx-pps: 3000000 Tx-bps: 1\n"
            .repeat(5);
        assert_eq!(testpmd_tx_mpps(&t), 3.0);
        let i = "port in rx 9.0 Mpps  tx 0.0 Mpps\nport out rx 0.0 Mpps  tx 8.5 Mpps\n".repeat(4);
        assert_eq!(ispmux_tx_mpps(&i, "out"), 8.5);
    }
}
