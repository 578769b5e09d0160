//! `perf/run fwd-floor`: io forwarding between two net_null ports on one forwarding lcore,
//! burst 32: dpdk-testpmd (the anchor) and ispmux, interleaved, in one run.
//!
//! Both are sampled the same way: the per-second receive rate of both ports summed, the first
//! second (start-up) left out, the median of the rest per run; the result is the median of
//! runs. Options: `--secs N` (per run, default 6), `--rounds N` (default 3), `--no-huge`.

use std::process::Command;

use anyhow::{bail, Result};
use ispmux_perf::{
    ensure_hugepages, ispmux_bin, median, result_line, run_then_interrupt, run_to_end,
};

const HUGE_MB: u64 = 1024;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str, default: f64| -> f64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let secs = opt("--secs", 6.0).max(3.0);
    let rounds = opt("--rounds", 3.0).max(2.0) as usize;
    let huge = !args.iter().any(|a| a == "--no-huge") && ensure_hugepages(HUGE_MB);
    println!(
        "fwd-floor: 2 x net_null, 1 forwarding lcore, burst 32, {secs} s x {rounds} rounds, {}",
        if huge {
            "hugepages (--in-memory)"
        } else {
            "no hugepages (--no-huge)"
        }
    );
    let mem: Vec<&str> = if huge {
        vec!["--in-memory"]
    } else {
        vec!["--no-huge", "--no-shconf", "-m", "1024"]
    };

    let dir = std::env::temp_dir().join(format!("ispmux-fwd-floor-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let conf = dir.join("fwd-floor.toml");
    std::fs::write(
        &conf,
        format!(
            r#"[eal]
lcores = [0, 1]
memory_mb = 1024
hugepages = "{}"

[[port]]
name = "p0"
device = "net_null0"

[[port]]
name = "p1"
device = "net_null1"

[dataplane]
pipeline = "io"
burst = 32
idle_sleep = "off"

[control]
stats_interval_s = 1
"#,
            if huge { "on" } else { "off" }
        ),
    )?;
    let ispmux = ispmux_bin()?;

    let mut anchor = Vec::new();
    let mut ours = Vec::new();
    for round in 1..=rounds {
        let out = run_then_interrupt(
            Command::new("dpdk-testpmd")
                .args([
                    "-l",
                    "0,1",
                    "--no-pci",
                    "--vdev",
                    "net_null0",
                    "--vdev",
                    "net_null1",
                ])
                .args(&mem)
                .args(["--log-level=lib.*:error", "--"])
                .args(["--forward-mode=io", "--burst=32", "--nb-cores=1"])
                .args(["--total-num-mbufs=16384", "--stats-period", "1"]),
            secs + 0.5,
        )?;
        let t = testpmd_mpps(&out);
        let out = run_to_end(
            Command::new(&ispmux)
                .args(["run", "--duration", &format!("{secs}"), "-c"])
                .arg(&conf)
                .env("ISPMUX_LOG", "warn"),
        )?;
        let i = ispmux_mpps(&out);
        if t == 0.0 || i == 0.0 {
            bail!("round {round}: no rate measured (testpmd {t}, ispmux {i})");
        }
        println!(
            "round {round}: testpmd io {t:.3} Mpps, ispmux io {i:.3} Mpps, ratio {:.3}",
            i / t
        );
        anchor.push(t);
        ours.push(i);
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{}",
        result_line("fwd-floor", median(&ours), median(&anchor), "Mpps")
    );
    Ok(())
}

/// Median over seconds (the first left out) of the summed `Rx-pps` of both ports.
fn testpmd_mpps(out: &str) -> f64 {
    let pps: Vec<f64> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Rx-pps:"))
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .collect();
    let per_second: Vec<f64> = pps
        .chunks_exact(2)
        .map(|c| (c[0] + c[1]) / 1e6)
        .skip(1)
        .collect();
    median(&per_second)
}

/// Median over seconds (the first left out) of the summed rx rate of both ports, from
/// `ispmux run`'s periodic lines "port NAME rx X Mpps tx Y Mpps".
fn ispmux_mpps(out: &str) -> f64 {
    let rx: Vec<f64> = out
        .lines()
        .filter(|l| l.starts_with("port ") && !l.contains("pkts"))
        .filter_map(|l| l.split_whitespace().nth(3)?.parse().ok())
        .collect();
    let per_second: Vec<f64> = rx.chunks_exact(2).map(|c| c[0] + c[1]).skip(1).collect();
    median(&per_second)
}
