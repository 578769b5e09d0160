//! Runs the node pipeline over synthetic bursts without DPDK, for counting its instructions
//! per frame under callgrind, which is repeatable whatever else the machine is doing:
//!
//! `valgrind --tool=callgrind --toggle-collect='*pipeline_cost::decide*' \
//!     target/release/examples/pipeline_cost headend 1000 100000`
//!
//! counts the decision pass; `'*pipeline_cost::look_ahead*'` counts the look-ahead (keys and
//! prefetches) the worker runs one poll earlier. Divide "Collected" by the frame count.
//!
//! Arguments: role (`headend`: upstream push, `transit`: swap, `tailend`: pop and
//! hand-off), subscribers (or labels), frames, and modes, comma-separated: `io` (the same
//! loop with io forwarding instead, the floor to subtract), `ahead` (each burst's look-ahead
//! one burst before its decisions, as the worker means it to run), `noprefetch` (table
//! lines not prefetched, to see what the look-ahead saves).
//!
//! Run natively it also prints the time a frame in the two passes, with every frame in L1
//! and no NIC: compare two builds by the minimum of alternating runs under `chrt -f 10` (the
//! median wanders by a few percent from run to run, the minimum by about one).
//! Not a benchmark (see `perf/run`): instruction counts and these times guide the work, the
//! benchmarks decide.

use anyhow::{bail, Result};
use ispmux_dataplane::frame::Frame;
use ispmux_dataplane::pipeline::{Pipeline, Verdict};
use ispmux_dataplane::roles::{Node, PortAddr, PortConfig, PortRole};
use ispmux_dataplane::synthetic::{self, Spec};
use ispmux_dataplane::table::preload::{IlmActionPreload, IlmPreload};
use ispmux_dataplane::wire::MacAddr;

const BURST: usize = 32;

/// An mbuf-like frame: fixed buffer, headroom, reset by one copy.
struct Buf {
    buf: [u8; 256],
    start: usize,
    len: usize,
}

impl Buf {
    fn load(&mut self, bytes: &[u8]) {
        self.start = 128;
        self.len = bytes.len();
        self.buf[128..128 + bytes.len()].copy_from_slice(bytes);
    }
}

impl Frame for Buf {
    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.start {
            return None;
        }
        self.start -= n;
        self.len += n;
        Some(self.data_mut())
    }
    fn adj(&mut self, n: usize) -> bool {
        if n > self.len {
            return false;
        }
        self.start += n;
        self.len -= n;
        true
    }
}

/// The look-ahead pass, out of line so callgrind can count it: `--toggle-collect='*look_ahead*'`.
#[inline(never)]
fn look_ahead(node: &mut Node, bufs: &[Buf]) {
    node.prefetch(0, bufs);
}

/// The decision pass, out of line so callgrind can count it: `--toggle-collect='*decide*'`.
#[inline(never)]
fn decide(node: &mut Node, bufs: &mut [Buf], verdicts: &mut [Verdict]) {
    node.process(0, bufs, verdicts);
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let role = args.get(1).map_or("headend", String::as_str);
    let n: u32 = args.get(2).map_or(Ok(1000), |s| s.parse())?;
    let frames_total: usize = args.get(3).map_or(Ok(100_000), |s| s.parse())?;
    let spec = Spec {
        subscribers: n,
        isps: 16,
        access_port: 0,
        core_port: 1,
        qinq: false,
    };
    let port_mac = MacAddr([2, 0, 0, 0, 0, 0xa0]);
    let nh = MacAddr([2, 0, 0, 0, 1, 1]);
    let mut preload = synthetic::preload(&spec, nh);
    let (roles, frames): ([PortRole; 2], Vec<Vec<u8>>) = match role {
        "headend" => (
            [PortRole::Access, PortRole::Core],
            synthetic::scattered_order(n)
                .map(|i| synthetic::upstream_frame(&spec, i, port_mac, 64))
                .collect(),
        ),
        "transit" => {
            preload.limits.max_labels = n as usize + 16;
            preload.ilm = (16..16 + n)
                .map(|l| IlmPreload {
                    label: l,
                    action: IlmActionPreload::Swap {
                        out_label: l + 100_000,
                        port: 1,
                        next_hop: nh,
                    },
                })
                .collect();
            (
                [PortRole::Core, PortRole::Core],
                synthetic::scattered_order(n)
                    .map(|i| {
                        let f = synthetic::upstream_frame(&spec, i, MacAddr::ZERO, 64);
                        synthetic::labelled(&f, port_mac, nh, 16 + i)
                    })
                    .collect(),
            )
        }
        "tailend" => {
            // As fwd-tailend: 16 ISPs' labels popped and handed off untagged.
            preload.ilm = (1..=16u16)
                .map(|isp| IlmPreload {
                    label: 2000 + u32::from(isp),
                    action: IlmActionPreload::PopHandoff {
                        isp,
                        port: 1,
                        vlan: 0,
                        router_mac: MacAddr([2, 0, 0, 0x0a, 0, isp as u8]),
                    },
                })
                .collect();
            (
                [PortRole::Core, PortRole::Handoff],
                synthetic::scattered_order(n)
                    .map(|i| {
                        let f = synthetic::upstream_frame(&spec, i, MacAddr::ZERO, 64);
                        synthetic::labelled(&f, port_mac, nh, 2001 + i % 16)
                    })
                    .collect(),
            )
        }
        other => bail!("unknown role {other} (headend, transit, tailend)"),
    };
    let ports = roles
        .iter()
        .map(|&role| PortConfig {
            role,
            mac: port_mac,
            mtu: 1500,
            address: PortAddr::NONE,
            implicit_null: None,
        })
        .collect();
    let mut node = Node::from_preload(ports, &preload)?;
    // Modes, as a comma-separated fourth argument: `io` (testpmd's io forwarding instead,
    // the floor), `ahead` (each burst's look-ahead one burst before its decisions, as the
    // worker means it to run), `noprefetch` (table lines are not prefetched: what the
    // look-ahead saves).
    let modes: Vec<&str> = args.get(4).map_or(vec![], |a| a.split(',').collect());
    if modes.contains(&"noprefetch") {
        fn no_prefetch(_: *const u8) {}
        node.set_prefetch(Some(no_prefetch));
    }
    let io_only = modes.contains(&"io");
    let mut io = ispmux_dataplane::pipeline::IoForward::paired(2);
    let one_ahead = modes.contains(&"ahead");
    let new_burst = || -> Vec<Buf> {
        (0..BURST)
            .map(|_| Buf {
                buf: [0; 256],
                start: 128,
                len: 0,
            })
            .collect()
    };
    let (mut bufs, mut held) = (new_burst(), new_burst());
    let mut verdicts = [Verdict::Punt; BURST];
    let mut forwarded = 0usize;
    let mut busy = std::time::Duration::ZERO;
    let mut next = frames.iter().cycle();
    let bursts = frames_total / BURST;
    for burst in 0..=bursts {
        if burst < bursts {
            for b in &mut bufs {
                if let Some(f) = next.next() {
                    b.load(f);
                }
            }
        }
        let t0 = std::time::Instant::now();
        if io_only {
            if burst < bursts {
                io.process(0, &mut bufs, &mut verdicts);
            }
        } else if one_ahead {
            if burst < bursts {
                look_ahead(&mut node, &bufs);
            }
            if burst > 0 {
                decide(&mut node, &mut held, &mut verdicts);
            }
            std::mem::swap(&mut bufs, &mut held);
        } else if burst < bursts {
            // As the worker: the burst's buckets prefetched (and its keys kept) first.
            look_ahead(&mut node, &bufs);
            decide(&mut node, &mut bufs, &mut verdicts);
        }
        busy += t0.elapsed();
        let decided = if one_ahead && !io_only {
            burst > 0
        } else {
            burst < bursts
        };
        if decided {
            forwarded += verdicts
                .iter()
                .filter(|v| matches!(v, Verdict::Forward(_)))
                .count();
        }
    }
    println!(
        "{role}: {forwarded} of {} frames forwarded, {:.2} ns a frame in the passes (a guide \
         only: frames in L1, no NIC)",
        frames_total / BURST * BURST,
        busy.as_secs_f64() * 1e9 / (frames_total / BURST * BURST) as f64
    );
    for (r, n) in node.counters().drops_by_reason().filter(|(_, n)| *n > 0) {
        println!("  dropped {n} as {}", r.name());
    }
    Ok(())
}
