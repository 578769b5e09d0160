//! `perf/run metrics-scrape`: what a Prometheus scrape costs the fast path. The fwd-headend
//! run (1,000,000 subscribers, scattered MACs and order, label push, one forwarding lcore;
//! see `fwd-headend.rs`) with the provisioning API on loopback, once while `/metrics` is
//! fetched 10 times a second, once not fetched, interleaved (the order alternating by round).
//! The anchor is the run without scrapes: R = scraped / not scraped.
//!
//! A scrape is the API thread asking the control thread (`ControlCommand::Metrics`), which
//! reads the workers' counters and port statistics and encodes them; the worker never waits
//! for it. What it can cost the worker is cache lines and memory bandwidth (and a core, were
//! the API's threads to land on the forwarding lcore's CPU).
//!
//! Needs root (hugepages, about 3 GB). Options: `--subscribers N` (default 1,000,000),
//! `--secs N` (per run, default 8), `--rounds N` (default 3), `--per-second N` (scrapes,
//! default 10).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use ispmux_dataplane::synthetic::Spec;
use ispmux_dataplane::wire::MacAddr;
use ispmux_perf::fwd::{headend_inputs, FwdBench, HeadendInputs};
use ispmux_perf::{ispmux_bin, median, opt, result_line};

const ACCESS_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa0]);
const CORE_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xc1]);
const NEXT_HOP: &str = "02:00:00:00:01:01";
const ISPS: u16 = 16;
const API: &str = "127.0.0.1:18443";

fn main() -> Result<()> {
    let subscribers = opt("--subscribers", 1_000_000.0) as u32;
    let secs = opt("--secs", 8.0).max(4.0);
    let rounds = opt("--rounds", 3.0).max(1.0) as usize;
    let per_second = opt("--per-second", 10.0).max(1.0);
    let spec = Spec {
        subscribers,
        isps: ISPS,
        access_port: 0,
        core_port: 1,
        qinq: false,
    };
    let dir = tempfile::Builder::new()
        .prefix("ispmux-metrics-scrape-")
        .tempdir()?;
    let HeadendInputs { pcap, csv, tables } =
        headend_inputs(dir.path(), &spec, ACCESS_MAC, NEXT_HOP, subscribers)?;
    let (token, token_line) =
        ispmux_tests::operator_token(&ispmux_bin()?).map_err(anyhow::Error::msg)?;
    let store = dir.path().join("store.db");
    let tables = format!(
        "[store]\npath = \"{}\"\n\n[api]\nlisten = \"{API}\"\n{token_line}\n\n{tables}",
        store.display()
    );
    println!(
        "metrics-scrape: fwd-headend ({subscribers} subscribers, {ISPS} ISPs, 64-byte frames, \
         1 forwarding lcore) with the API on {API}, /metrics fetched {per_second}/s vs not, \
         {secs} s x {rounds} rounds"
    );
    let bench = FwdBench {
        name: "metrics-scrape",
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
    let (mut quiet, mut scraped) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        // Alternate which goes first, so a drift over the run weighs on both alike.
        for scrape in [round % 2 == 0, round % 2 == 1] {
            if scrape {
                let (rate, n, bytes) = with_scraper(&token, per_second, || {
                    bench.run_ispmux("-scraped", "").map(|(r, _)| r)
                })?;
                if n == 0 {
                    bail!("round {round}: no scrape answered");
                }
                println!(
                    "round {round}: scraped {rate:.3} Mpps ({n} scrapes, {} bytes each)",
                    bytes / n
                );
                scraped.push(rate);
            } else {
                let (rate, _) = bench.run_ispmux("-quiet", "")?;
                println!("round {round}: not scraped {rate:.3} Mpps");
                quiet.push(rate);
            }
        }
    }
    let (s, q) = (median(&scraped), median(&quiet));
    if s == 0.0 || q == 0.0 {
        bail!("no rate measured (scraped {s}, not scraped {q})");
    }
    println!("{}", result_line("metrics-scrape", s, q, "Mpps"));
    Ok(())
}

/// Runs `f` while another thread fetches `/metrics` `per_second` times a second (a fetch
/// that fails, as while the node starts, is tried again at the next tick); returns `f`'s
/// result, the fetches answered 200 and their bytes.
fn with_scraper(
    token: &str,
    per_second: f64,
    f: impl FnOnce() -> Result<f64>,
) -> Result<(f64, u64, u64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let scraper = {
        let (stop, answered, bytes) = (stop.clone(), answered.clone(), bytes.clone());
        let token = token.to_owned();
        let every = Duration::from_secs_f64(1.0 / per_second);
        std::thread::spawn(move || {
            // A new connection a scrape, as Prometheus makes after an idle interval.
            let agent = ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(2))
                .max_idle_connections(0)
                .build();
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if let Some(n) = scrape(&agent, &token) {
                    answered.fetch_add(1, Ordering::Relaxed);
                    bytes.fetch_add(n, Ordering::Relaxed);
                }
                next += every;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
        })
    };
    let rate = f();
    stop.store(true, Ordering::Relaxed);
    let _ = scraper.join();
    Ok((
        rate?,
        answered.load(Ordering::Relaxed),
        bytes.load(Ordering::Relaxed),
    ))
}

/// One `GET /metrics` as Prometheus sends it (OpenMetrics asked for); the body's length when
/// answered 200.
fn scrape(agent: &ureq::Agent, token: &str) -> Option<u64> {
    let body = agent
        .get(&format!("http://{API}/metrics"))
        .set("Authorization", &format!("Bearer {token}"))
        .set("Accept", "application/openmetrics-text;version=1.0.0")
        .call()
        .ok()?
        .into_string()
        .ok()?;
    Some(body.len() as u64)
}
