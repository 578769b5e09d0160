//! `perf/run table-memory`: bytes per subscriber of one copy of the fast-path tables at
//! 4,000,000 subscribers (subscriber table and per-ISP downstream bindings, plus the small
//! ISP, label and hand-off tables), against DPDK's `rte_hash` holding the same entries: one
//! table keyed by (port, outer VLAN, inner VLAN, MAC) (12 bytes) and one keyed by (ISP,
//! IPv4) (6 bytes), each value a 64-bit word in the data pointer (DPDK's cheapest way to hold
//! a value), measured as the growth of the EAL heap while they are built.
//!
//! Options: `--subscribers N` (default 4,000,000). Uses about 1.5 GB of hugepages when it can
//! reserve them (else `--no-huge`).

use anyhow::{Context, Result};
use ispmux_dataplane::synthetic::{self, Spec};
use ispmux_dataplane::wire::MacAddr;
use ispmux_perf::{ensure_hugepages, opt, result_line};
use ispmux_sys::{heap_allocated_bytes, Eal, RteHash};

const HUGE_MB: u64 = 1_536;

fn main() -> Result<()> {
    let n = opt("--subscribers", 4_000_000.0) as u32;
    let spec = Spec {
        subscribers: n,
        isps: 16,
        access_port: 0,
        core_port: 1,
        qinq: true,
    };
    let huge = ensure_hugepages(HUGE_MB + 128);
    println!(
        "table-memory: {n} subscribers (QinQ, bound IPv4), 16 ISPs; rte_hash on {}",
        if huge { "hugepages" } else { "--no-huge" }
    );

    let preload = synthetic::preload(&spec, MacAddr([2, 0, 0, 0, 1, 1]));
    let tables = preload.build().context("building the ispmux tables")?;
    let ours = tables.memory_bytes() as f64 / f64::from(n);
    println!(
        "ispmux: {} bytes in one table copy ({:.1} B/subscriber)",
        tables.memory_bytes(),
        ours
    );
    drop(tables);

    let mut args = vec!["-l", "0", "--no-pci", "--log-level=lib.*:error"];
    if huge {
        args.push("--in-memory");
    } else {
        args.extend(["--no-huge", "--no-shconf", "-m", "2048"]);
    }
    let _eal = Eal::init(&args).context("EAL initialisation")?;
    let before = heap_allocated_bytes()?;
    let mut subs = RteHash::new("subscribers", n, 12)?;
    let mut down = RteHash::new("downstream", n, 6)?;
    for s in &preload.subscribers {
        let mut key = [0u8; 12];
        key[..2].copy_from_slice(&s.port.to_be_bytes());
        key[2..4].copy_from_slice(&s.vlan.to_be_bytes());
        key[4..6].copy_from_slice(&s.inner_vlan.to_be_bytes());
        key[6..].copy_from_slice(&s.mac.0);
        let ip = s.ipv4.map_or(0, u32::from);
        // ISP, address and state packed into the value word.
        subs.add(&key, u64::from(s.isp) << 48 | u64::from(ip))?;
        let mut dkey = [0u8; 6];
        dkey[..2].copy_from_slice(&s.isp.to_be_bytes());
        dkey[2..].copy_from_slice(&ip.to_be_bytes());
        down.add(&dkey, s.mac.to_u64())?;
    }
    let anchor_bytes = heap_allocated_bytes()? - before;
    let anchor = anchor_bytes as f64 / f64::from(n);
    println!("rte_hash: {anchor_bytes} bytes for both tables ({anchor:.1} B/subscriber)");
    drop((subs, down));
    println!(
        "{}",
        result_line("table-memory", ours, anchor, "B/subscriber")
    );
    Ok(())
}
