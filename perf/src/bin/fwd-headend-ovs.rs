//! `perf/run fwd-headend-ovs`: ispmux's headend against the peer an operator would otherwise
//! pick, OVS-DPDK 3.1 with one OpenFlow rule per subscriber (match the access port and the
//! source MAC, push the ISP's label, output to the core port), fed the same frames.
//!
//! All three forwarders read the same `net_pcap rx_pcap=FILE,infinite_rx=1` capture (one
//! frame per subscriber, scattered MACs in scattered order, from `fwd::headend_inputs`) and
//! send to `net_null no-rx=1`, one forwarding lcore each on core 1. OVS is started once and
//! warmed up first (its datapath flow limit ramps about 2,000 flows/s, so minutes for
//! 250,000 flows); each round then runs testpmd io, ispmux and an OVS window of the same
//! length, OVS paused outside its window (input port down, PMD sleeping, no periodic
//! revalidation: see `Ovs::pause`), with its datapath flows checked before each window and
//! re-warmed if OVS dropped some. Result: the median ispmux rate over the median OVS rate
//! (target >= 5); testpmd io is printed as a reference. The run ends by showing that OVS's
//! datapath flows push the ISPs' labels and its rules count what it sent, and that ispmux's
//! per-ISP counters add up to what its worker sent.
//!
//! Needs root, hugepages (about 3 GB) and `apt-get install -y openvswitch-switch-dpdk` (not a
//! test dependency). OVS 3.1 refuses a capture with more frames than its 262,144-mbuf pool,
//! hence 250,000 subscribers at most. Options: `--subscribers N` (default 250,000),
//! `--secs N` (per window, default 8), `--rounds N` (default 3), `--warmup-timeout S`,
//! `--same-job` (OVS rules also check the source address and rewrite the Ethernet header, as
//! ispmux does), `--keep` (keep the inputs and OVS's logs, and print where).

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ispmux_dataplane::synthetic::{self, Spec};
use ispmux_dataplane::wire::MacAddr;
use ispmux_perf::fwd::{headend_inputs, isp_label, FwdBench, HeadendInputs};
use ispmux_perf::ovs::{self, Ovs, OvsConfig, Window, IN_PORT, OUT_PORT};
use ispmux_perf::{ensure_hugepages, median, opt, result_line};

const NAME: &str = "fwd-headend-ovs";
const ACCESS_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa0]);
const CORE_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xc1]);
const NEXT_HOP: MacAddr = MacAddr([2, 0, 0, 0, 1, 1]);
const ISPS: u16 = 16;
/// OVS 3.1 keeps a pcap port's frames in its shared pool of 262,144 mbufs (MTU 1500), which
/// also fills the ports' descriptor rings: a larger capture is refused.
const OVS_MAX_SUBSCRIBERS: u32 = 250_000;
/// Hugepage MiB OVS takes beside testpmd's or ispmux's (its mbuf pool and DPDK's own).
const OVS_HUGEPAGE_MB: u64 = 1_536;

struct Options {
    subscribers: u32,
    secs: f64,
    rounds: usize,
    warmup_timeout: Duration,
    same_job: bool,
    keep: bool,
}

impl Options {
    fn from_args() -> Result<Self> {
        let subscribers = opt("--subscribers", f64::from(OVS_MAX_SUBSCRIBERS)) as u32;
        if subscribers == 0 || subscribers > OVS_MAX_SUBSCRIBERS {
            bail!(
                "--subscribers must be 1..={OVS_MAX_SUBSCRIBERS}: OVS 3.1 refuses a capture \
                 with more frames than its 262,144-mbuf pool"
            );
        }
        // At ~2,000 new datapath flows/s, three times the expected ramp.
        let default_timeout = (f64::from(subscribers) / 2_000.0 * 3.0).max(120.0);
        let has = |flag: &str| std::env::args().any(|a| a == flag);
        Ok(Options {
            subscribers,
            secs: opt("--secs", 8.0).max(4.0),
            rounds: opt("--rounds", 3.0).max(1.0) as usize,
            warmup_timeout: Duration::from_secs_f64(opt("--warmup-timeout", default_timeout)),
            same_job: has("--same-job"),
            keep: has("--keep"),
        })
    }
}

fn main() -> Result<()> {
    let o = Options::from_args()?;
    ovs::check_installed()?;
    let spec = Spec {
        subscribers: o.subscribers,
        isps: ISPS,
        access_port: 0,
        core_port: 1,
        qinq: false,
    };
    let dir = tempfile::Builder::new()
        .prefix("ispmux-fwd-headend-ovs-")
        .tempdir()?;
    let HeadendInputs { pcap, csv, tables } = headend_inputs(
        dir.path(),
        &spec,
        ACCESS_MAC,
        &NEXT_HOP.to_string(),
        o.subscribers,
    )?;
    println!(
        "{NAME}: {} subscribers (scattered MACs, scattered order, untagged, 64-byte frames), \
         {ISPS} ISPs, net_pcap infinite_rx -> net_null, 1 forwarding lcore, hugepages, \
         {} s x {} rounds; OVS rules: {}",
        o.subscribers,
        o.secs,
        o.rounds,
        if o.same_job {
            "source MAC + source address, Ethernet rewrite, push label (--same-job)"
        } else {
            "source MAC, push label"
        }
    );
    let bench = FwdBench {
        name: NAME,
        pcap: pcap.clone(),
        frames: u64::from(o.subscribers),
        tables,
        subscribers_csv: Some(csv),
        ports: [
            ("access", &ACCESS_MAC.to_string()),
            ("core", &CORE_MAC.to_string()),
        ],
        secs: o.secs,
        rounds: o.rounds,
        dir: dir.path(),
    };
    let need = bench.hugepage_mb() + 256 + OVS_HUGEPAGE_MB;
    if !ensure_hugepages(need) {
        bail!("{NAME}: {need} MiB of hugepages are needed (run as root, or free some)");
    }
    let ovs = start_ovs(dir.path(), &spec, &pcap, &o)?;
    let mut windows = Vec::new();
    let mut paused = Paused::now(&ovs)?;
    let r = bench.run_with_peer(|round| {
        paused.report(&ovs)?;
        windows.push(ovs_round(&ovs, &o, round)?);
        paused = Paused::now(&ovs)?;
        Ok(())
    })?;
    verify_ovs(&ovs, &spec)?;
    drop(ovs);
    verify_ispmux(&r.last_report)?;
    if o.keep {
        println!("kept {}", dir.keep().display());
    }
    let ovs_mpps = median(&windows.iter().map(|w| w.mpps).collect::<Vec<_>>());
    println!(
        "reference: testpmd io {:.3} Mpps on the same input (median of {} rounds; not the anchor)",
        r.anchor, o.rounds
    );
    println!("{}", result_line(NAME, r.ispmux, ovs_mpps, "Mpps"));
    Ok(())
}

/// Starts OVS with one rule per subscriber and both ports, warms its datapath flows up and
/// pauses it until its first window.
fn start_ovs(dir: &Path, spec: &Spec, pcap: &Path, o: &Options) -> Result<Ovs> {
    let ovs_dir = dir.join("ovs");
    std::fs::create_dir_all(&ovs_dir)?;
    let rules = dir.join("ovs-rules.txt");
    write_rules(&rules, spec, o.same_job)?;
    let ovs = Ovs::start(&ovs_dir, &OvsConfig::for_flows(u64::from(spec.subscribers)))?;
    let t = std::time::Instant::now();
    ovs.add_flows(&rules)?;
    println!(
        "OVS: {} rules added in {:.1} s ({})",
        spec.subscribers,
        t.elapsed().as_secs_f64(),
        ovs.dir().display()
    );
    ovs.add_dpdk_port("out", "net_null0,no-rx=1", OUT_PORT)?;
    let devargs = format!("net_pcap0,rx_pcap={},infinite_rx=1", pcap.display());
    ovs.add_dpdk_port("in", &devargs, IN_PORT)?;
    let t = std::time::Instant::now();
    let f = ovs.warm_up(warm(spec.subscribers), o.warmup_timeout)?;
    println!(
        "OVS: warm after {:.0} s: {} datapath flows (limit {}, dump {} ms)",
        t.elapsed().as_secs_f64(),
        f.current,
        f.limit,
        f.dump_ms
    );
    ovs.pause()?;
    Ok(ovs)
}

/// Datapath flows that count as warm: all but a thousandth of the subscribers (one flow
/// each), so a few flows in flux do not stall the benchmark.
fn warm(subscribers: u32) -> u64 {
    let n = u64::from(subscribers);
    n - n / 1000
}

/// One rule per subscriber, pushing its ISP's label (the same labels as ispmux's tables).
fn write_rules(path: &Path, spec: &Spec, same_job: bool) -> Result<()> {
    let mut w = BufWriter::new(std::fs::File::create(path)?);
    let rewrite = same_job.then_some((CORE_MAC, NEXT_HOP));
    for i in 0..spec.subscribers {
        let s = synthetic::subscriber(spec, i);
        writeln!(w, "{}", ovs::subscriber_rule(&s, isp_label(s.isp), rewrite))?;
    }
    w.flush()?;
    Ok(())
}

/// When OVS was paused and the CPU time it had used by then.
struct Paused {
    at: std::time::Instant,
    cpu_s: f64,
}

impl Paused {
    fn now(ovs: &Ovs) -> Result<Self> {
        Ok(Paused {
            at: std::time::Instant::now(),
            cpu_s: ovs.vswitchd_cpu_seconds()?,
        })
    }

    /// Shows what the paused OVS took from the testpmd and ispmux runs.
    fn report(&self, ovs: &Ovs) -> Result<()> {
        println!(
            "  OVS used {:.2} CPU-s while paused for {:.0} s",
            ovs.vswitchd_cpu_seconds()? - self.cpu_s,
            self.at.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

/// OVS's window of one round: resumed, still warm (re-warmed if the pause cost flows),
/// measured like ispmux, paused again.
fn ovs_round(ovs: &Ovs, o: &Options, round: usize) -> Result<Window> {
    let kept = ovs.datapath_flows()?;
    ovs.resume()?;
    ovs.warm_up(warm(o.subscribers), o.warmup_timeout)?;
    ovs.clear_pmd_stats()?;
    let w = ovs.measure(o.secs)?;
    let stats = ovs.pmd_stats()?;
    let after = ovs.datapath_flows()?;
    ovs.pause()?;
    println!(
        "round {round}: OVS {:.3} Mpps (datapath flows {} after the pause, {} after the window, \
         limit {}; window: in rx {} out tx {} tx drops {}; PMD: {stats})",
        w.mpps, kept.current, after.current, after.limit, w.rx, w.tx, w.tx_drop
    );
    // Everything received must leave with its label, give or take what is in flight
    // between the two counters.
    if w.tx_drop > 0 || w.rx.abs_diff(w.tx) > w.rx / 1000 + 1024 {
        bail!("round {round}: OVS did not forward what it received: {w:?}");
    }
    Ok(w)
}

/// Shows that OVS pushed the ISPs' labels: its datapath flows' actions per label, and the
/// rules' packet counts per label against what left the core port.
fn verify_ovs(ovs: &Ovs, spec: &Spec) -> Result<()> {
    let (flows, example) = ovs.datapath_labels()?;
    println!(
        "OVS datapath flows pushing a label: {} over {} labels {}; e.g. {}",
        flows.values().sum::<u64>(),
        flows.len(),
        label_range(&flows),
        example.trim()
    );
    if flows.len() != usize::from(spec.isps) {
        bail!(
            "OVS's datapath flows push {} labels, not {}",
            flows.len(),
            spec.isps
        );
    }
    // The revalidators credit the rules about twice a second.
    std::thread::sleep(Duration::from_secs(2));
    let per_label = ovs.rule_packets_per_label()?;
    let by_rules: u64 = per_label.values().sum();
    let ports = ovs.port_counters()?;
    let sent = ports.get(&OUT_PORT.to_string()).map_or(0, |p| p.tx);
    let received = ports.get(&IN_PORT.to_string()).map_or(0, |p| p.rx);
    println!(
        "OVS rules: packets per label min {} max {}, sum {by_rules}; port {OUT_PORT} sent {sent}, \
         port {IN_PORT} received {received} (the difference: upcalls lost while warming up)",
        per_label.values().min().unwrap_or(&0),
        per_label.values().max().unwrap_or(&0),
    );
    if by_rules.abs_diff(sent) > sent / 1000 {
        bail!("OVS's rules counted {by_rules} packets but port {OUT_PORT} sent {sent}");
    }
    Ok(())
}

fn label_range(flows: &BTreeMap<u32, u64>) -> String {
    match (flows.keys().next(), flows.keys().last()) {
        (Some(a), Some(b)) => format!("{a}..={b}"),
        _ => String::new(),
    }
}

/// Shows that ispmux's per-ISP counters account for every packet its workers sent, from its
/// last run's exit report.
fn verify_ispmux(report: &str) -> Result<()> {
    let mut per_isp = Vec::new();
    for line in report.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        per_isp.push(v["headend_up"]["packets"].as_u64().unwrap_or(0));
    }
    let workers_tx: u64 = report
        .lines()
        .find_map(|l| l.strip_prefix("workers rx "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .context("no workers line in ispmux's report")?;
    let sum: u64 = per_isp.iter().sum();
    println!(
        "ispmux per-ISP headend upstream packets (last round): {} ISPs, min {} max {}, \
         sum {sum}; workers sent {workers_tx}",
        per_isp.len(),
        per_isp.iter().min().unwrap_or(&0),
        per_isp.iter().max().unwrap_or(&0),
    );
    if sum != workers_tx || per_isp.len() != usize::from(ISPS) {
        bail!("ispmux's per-ISP counters do not add up:\n{report}");
    }
    Ok(())
}
