//! `ispmux run`: EAL, ports, pinned workers, the slow path, signals, counters.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ispmux_conf::{Config, PipelineKind, Plan};
use ispmux_dataplane::shared::{self, SharedCounters};
use ispmux_dataplane::table::updates::{self, UpdateReceiver};
use ispmux_dataplane::worker::{self, WorkerConfig, WorkerIo};
use ispmux_dataplane::{
    Counters, DropReason, IoForward, MacSwap, Node, PortRole, PreloadTables, Tables,
};
use ispmux_sys::{Eal, EthStats, Mempool, Port, PortConfig, Ring, RingMode};

use crate::arp_responder::{parse_prefix, ArpResponder, PortArp};
use crate::slowpath::{SlowPath, SlowPathStats};

/// Room per mbuf: 2 KiB of data plus DPDK's default 128 bytes of headroom.
const MBUF_DATA_ROOM: u16 = 2048 + 128;
/// Pending table writes per worker queue.
const UPDATE_QUEUE_DEPTH: usize = 65_536;

pub fn run(path: &Path, duration: Option<f64>) -> Result<()> {
    let cfg = ispmux_conf::load(path)?;
    let preload = preload(&cfg, path)?;
    // Before EAL, so a bad [radius] or a busy port stops the start cleanly.
    let radius = crate::radius::start(&cfg, None)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let plan = cfg.plan(cores);
    let eal_plan = cfg
        .eal_plan(free_hugepage_mb())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    tracing::info!(args = ?eal_plan.args, hugepages = eal_plan.hugepages, "starting EAL");
    let eal = Eal::init(&eal_plan.args).context("EAL initialisation")?;
    tracing::info!(version = %ispmux_sys::version(), "EAL up");

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }

    let pool = Arc::new(
        Mempool::pktmbuf("ispmux_mbufs", plan.mbufs, 256, MBUF_DATA_ROOM, 0)
            .context("creating the mbuf pool (raise eal.memory_mb?)")?,
    );
    let ports = start_ports(&cfg, &plan, &pool)?;
    let mut node_ports = Vec::with_capacity(ports.len());
    for (p, c) in ports.iter().zip(&cfg.ports) {
        let link = p.link()?;
        let mac = c
            .mac
            .unwrap_or(ispmux_dataplane::wire::MacAddr(p.mac_addr()?.0));
        tracing::info!(port = %c.name, device = %c.device, %mac, role = ?c.role, up = link.up, speed_mbps = link.speed_mbps, "port started");
        node_ports.push(ispmux_dataplane::PortConfig {
            role: c.role.unwrap_or(PortRole::Unused),
            mac,
            mtu: c.mtu.unwrap_or(1500),
        });
    }
    let punt = Arc::new(
        Ring::new(
            "ispmux_punt",
            cfg.dataplane.punt_ring,
            RingMode::MultiProducerSingleConsumer,
        )
        .context("creating the punt ring")?,
    );

    // The first worker sends what the slow path injects: it owns a transmit queue on every
    // port, so the slow path needs none (PMDs such as af_packet have few).
    let inject = Arc::new(
        Ring::new(
            "ispmux_inject",
            crate::slowpath::INJECT_RING_SLOTS,
            RingMode::SingleProducerSingleConsumer,
        )
        .context("creating the inject ring")?,
    );
    let node_mode = cfg.dataplane.pipeline == PipelineKind::Node;
    let (sender, mut receivers) = if node_mode {
        let master = build_tables(&preload)?;
        tracing::info!(
            subscribers = preload.subscribers.len(),
            bytes_per_copy = master.memory_bytes(),
            "tables built"
        );
        let (s, r) = updates::channel(master, plan.workers.len(), UPDATE_QUEUE_DEPTH);
        (Some(s), r.into_iter().map(Some).collect())
    } else {
        (None, Vec::new())
    };
    let max_isps = preload.limits.max_isps;
    let shared: Vec<Arc<SharedCounters>> = plan
        .workers
        .iter()
        .map(|_| Arc::new(SharedCounters::new(max_isps)))
        .collect();

    let started = Instant::now();
    let before: Vec<EthStats> = ports
        .iter()
        .map(|p| p.stats().unwrap_or_default())
        .collect();
    let mut launched = Vec::new();
    let mut launch_error = None;
    for (i, w) in plan.workers.iter().enumerate() {
        let io = WorkerIo {
            rx: w
                .rx
                .iter()
                .map(|&(pi, q)| Ok((pi as u16, ports[pi].rx_queue(q)?)))
                .collect::<Result<_>>()?,
            tx: ports
                .iter()
                .map(|p| p.tx_queue(w.tx_queue))
                .collect::<std::result::Result<_, _>>()?,
            punt: Some(punt.clone()),
            inject: (i == 0).then(|| inject.clone()),
            trace: Arc::new(ispmux_dataplane::trace::TraceControl::new(i as u16)),
        };
        let wc = WorkerConfig {
            burst: usize::from(cfg.dataplane.burst),
            idle_sleep: plan
                .idle_sleep
                .then(|| Duration::from_micros(u64::from(cfg.dataplane.idle_sleep_us))),
            idle_polls: cfg.dataplane.idle_polls,
        };
        let nports = cfg.ports.len() as u16;
        let pipeline = match cfg.dataplane.pipeline {
            PipelineKind::Io => WorkerPipeline::Io(IoForward::paired(nports)),
            PipelineKind::Macswap => WorkerPipeline::MacSwap(MacSwap::paired(nports)),
            PipelineKind::Node => {
                let node = Node::new(node_ports.clone(), build_tables(&preload)?);
                if let Some(s) = &sender {
                    if !node.tables().same_layout(s.tables()) {
                        bail!("worker {i}: tables differ in layout from the slow path's copy");
                    }
                }
                let rx = receivers.get_mut(i).and_then(Option::take);
                WorkerPipeline::Node(Box::new(node), rx)
            }
        };
        let (sh, stop2) = (shared[i].clone(), stop.clone());
        let lcore = w.lcore;
        let job = move || {
            pipeline.run(io, wc, &sh, &stop2);
            print_core_share(lcore);
            0
        };
        match ispmux_sys::launch(w.lcore, job) {
            Ok(()) => launched.push(w.lcore),
            Err(e) => {
                launch_error = Some(
                    anyhow::Error::new(e).context(format!("launching worker on lcore {}", w.lcore)),
                );
                stop.store(true, Ordering::SeqCst);
                break;
            }
        }
    }
    let (sender, update_gen) = match sender {
        Some(s) if cfg.dataplane.bench_updates_per_s > 0 => {
            let isp = preload.isps.first().map_or(1, |i| i.id);
            let g =
                crate::update_gen::spawn(s, cfg.dataplane.bench_updates_per_s, isp, stop.clone());
            (None, Some(g.context("starting the update generator")?))
        }
        s => (s, None),
    };
    let slow_stats = Arc::new(std::sync::Mutex::new(SlowPathStats::default()));
    // `ispmux ctl revoke MAC` (sent by `ispmux subscriber remove`) reaches the logon engine.
    let (revoke_tx, revoke_rx) = std::sync::mpsc::channel();
    let mut slow = SlowPath {
        punt: punt.clone(),
        inject: inject.clone(),
        pool: pool.clone(),
        updates: sender,
        dhcp: None,
        isp_ids: preload
            .isps
            .iter()
            .map(|i| (i.name.clone(), i.id))
            .collect(),
        port_index: ports
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id(), i as u16))
            .collect(),
        stats: slow_stats.clone(),
        revoke: revoke_rx,
        backlog: std::collections::VecDeque::new(),
        arp: ArpResponder {
            ports: cfg
                .ports
                .iter()
                .zip(&node_ports)
                .map(|(c, n)| PortArp {
                    mac: n.mac,
                    address: c.address,
                    prefixes: c.proxy_arp.iter().filter_map(|p| parse_prefix(p)).collect(),
                })
                .collect(),
        },
    };
    if let Some(d) = &cfg.dhcp {
        let gateway_mac = node_ports
            .iter()
            .find(|p| p.role == PortRole::Access)
            .map_or(ispmux_dataplane::wire::MacAddr::ZERO, |p| p.mac);
        let (svc, restored) = crate::logon::start(&cfg, d, gateway_mac)?;
        slow.dhcp = Some(svc);
        slow.apply_now(restored);
    }
    let slow = slow
        .spawn(stop.clone())
        .context("starting the slow-path thread")?;
    tracing::info!(workers = launched.len(), idle_sleep = plan.idle_sleep, pipeline = ?cfg.dataplane.pipeline, "forwarding");

    let names: Vec<(u16, String)> = preload
        .isp_names()
        .into_iter()
        .map(|(id, n)| (id, n.to_owned()))
        .collect();
    let report = |elapsed: Duration| {
        let cur: Vec<EthStats> = ports
            .iter()
            .map(|p| p.stats().unwrap_or_default())
            .collect();
        let slow = slow_stats.lock().map(|s| *s).unwrap_or_default();
        snapshot(&cfg, &before, &cur, &shared, &names, slow, elapsed)
    };

    let deadline = duration.map(|d| started + Duration::from_secs_f64(d));
    let interval = (cfg.control.stats_interval_s > 0)
        .then(|| Duration::from_secs(u64::from(cfg.control.stats_interval_s)));
    let mut next_report = interval.map(|i| started + i);
    let control = match &cfg.control.socket {
        Some(p) => Some(crate::control::ControlServer::bind(Path::new(p))?),
        None => None,
    };
    let mut last: Vec<EthStats> = before.clone();
    let mut last_at = started;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        if let Some(c) = &control {
            c.serve_pending(&mut |cmd| {
                if let Some(v) = crate::radius::control_command(radius.as_ref(), cmd) {
                    return v;
                }
                let mut words = cmd.split_whitespace();
                match (words.next(), words.next()) {
                    (Some("stats"), None) => crate::radius::with_counters(
                        serde_json::to_value(report(now - started)).unwrap_or_default(),
                        radius.as_ref(),
                    ),
                    (Some("version"), None) => serde_json::json!({
                        "ispmux": env!("CARGO_PKG_VERSION"),
                        "dpdk": ispmux_sys::version()
                    }),
                    (Some("revoke"), Some(mac)) => match mac.parse() {
                        Ok(mac) if cfg.dhcp.is_some() => {
                            let sent = revoke_tx.send(mac).is_ok();
                            serde_json::json!({ "revoked": mac.to_string(), "queued": sent })
                        }
                        Ok(_) => serde_json::json!({ "error": "no [dhcp] logon proxy runs here" }),
                        Err(e) => serde_json::json!({ "error": format!("revoke {mac:?}: {e}") }),
                    },
                    _ => serde_json::json!({
                        "error": format!("unknown command {cmd:?}; try stats, version, revoke MAC, suspend CSP or resume CSP")
                    }),
                }
            });
        }
        if let (Some(at), Some(i)) = (next_report, interval) {
            if now >= at {
                let cur: Vec<EthStats> = ports
                    .iter()
                    .map(|p| p.stats().unwrap_or_default())
                    .collect();
                print_rates(&cfg, &last, &cur, now - last_at);
                last = cur;
                last_at = now;
                next_report = Some(at + i);
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    let mut failed = Vec::new();
    for l in &launched {
        if ispmux_sys::wait(*l) != 0 {
            failed.push(*l);
        }
    }
    if slow.join().is_err() {
        tracing::error!("the slow-path thread panicked");
    }
    if let Some(g) = update_gen {
        let _ = g.join();
    }
    print_final(&report(started.elapsed()));
    if let Err(e) = crate::radius::finish(radius) {
        tracing::error!(error = %format!("{e:#}"), "radius proxy");
    }
    drop(control);
    drop(punt);
    drop(inject);
    drop(ports);
    let in_use = pool.in_use();
    if in_use != 0 {
        tracing::warn!(in_use, "mbufs still in use at exit");
    }
    drop(pool);
    drop(eal);
    if let Some(e) = launch_error {
        return Err(e);
    }
    if !failed.is_empty() {
        bail!("worker(s) on lcore(s) {failed:?} failed");
    }
    Ok(())
}

/// What a worker runs, chosen once at start so the loop is monomorphic.
enum WorkerPipeline {
    Io(IoForward),
    MacSwap(MacSwap),
    Node(Box<Node>, Option<UpdateReceiver>),
}

impl WorkerPipeline {
    fn run(self, io: WorkerIo, wc: WorkerConfig, shared: &SharedCounters, stop: &AtomicBool) {
        match self {
            WorkerPipeline::Io(mut p) => worker::run(&mut p, io, wc, shared, stop, &mut |_| {}),
            WorkerPipeline::MacSwap(mut p) => {
                worker::run(&mut p, io, wc, shared, stop, &mut |_| {})
            }
            WorkerPipeline::Node(mut node, rx) => {
                // Time spent replaying table writes, for the exit report: what updates cost
                // the worker, apart from what the updating slow path costs the machine.
                let (mut cycles, mut writes) = (0u64, 0u64);
                worker::run(&mut *node, io, wc, shared, stop, &mut |n: &mut Node| {
                    if let Some(rx) = &rx {
                        let t0 = ispmux_sys::tsc();
                        let d = n.apply_updates(rx, UPDATE_QUEUE_DEPTH);
                        if d.applied > 0 {
                            cycles += ispmux_sys::tsc().wrapping_sub(t0);
                            writes += d.applied;
                        }
                    }
                });
                if writes > 0 {
                    let ms = cycles as f64 * 1e3 / ispmux_sys::tsc_hz().max(1) as f64;
                    println!(
                        "worker replayed {writes} table writes in {ms:.1} ms ({:.1} ns a write)",
                        ms * 1e6 / writes as f64
                    );
                }
            }
        }
    }
}

/// The configured tables plus the subscribers CSV (a path relative to the config file).
fn preload(cfg: &Config, path: &Path) -> Result<PreloadTables> {
    let mut p = cfg.tables.clone();
    if let Some(csv) = &cfg.dataplane.subscribers_csv {
        let csv = path
            .parent()
            .map_or_else(|| PathBuf::from(csv), |d| d.join(csv));
        p.subscribers
            .extend(ispmux_conf::load_subscribers_csv(&csv)?);
    }
    Ok(p)
}

/// One copy of the tables, backed by transparent huge pages where the kernel allows (they
/// prefetch with an inline instruction; see `dataplane::table::cuckoo::PrefetchFn`).
fn build_tables(p: &PreloadTables) -> Result<Tables> {
    p.build_with(|t| {
        for (ptr, len) in t.memory_regions() {
            ispmux_sys::advise_hugepages(ptr, len);
        }
    })
    .context("building the fast-path tables from [tables]")
}

fn start_ports(cfg: &Config, plan: &Plan, pool: &Arc<Mempool>) -> Result<Vec<Port>> {
    let mut ports = Vec::with_capacity(cfg.ports.len());
    for (c, pp) in cfg.ports.iter().zip(&plan.ports) {
        let id = Port::id_by_name(&c.dpdk_name())
            .with_context(|| format!("port {:?} ({})", c.name, c.device))?;
        let pc = PortConfig {
            rx_queues: pp.rx_queues,
            tx_queues: pp.tx_queues,
            rx_desc: c.rx_desc,
            tx_desc: c.tx_desc,
            promiscuous: c.promiscuous,
            rss: true,
        };
        let port = Port::start(id, &pc, pool.clone())
            .with_context(|| format!("starting port {:?} ({})", c.name, c.device))?;
        if let Some(mtu) = c.mtu {
            if let Err(e) = port.set_mtu(mtu) {
                tracing::warn!(port = %c.name, mtu, error = %e, "the device keeps its MTU; the pipeline still sends up to this MTU");
            }
        }
        ports.push(port);
    }
    Ok(ports)
}

fn free_hugepage_mb() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let free = field("HugePages_Free:")?;
    let size_kb = field("Hugepagesize:")?;
    (free > 0).then_some(free * size_kb / 1024)
}

fn mpps(pkts: u64, d: Duration) -> f64 {
    pkts as f64 / d.as_secs_f64().max(1e-9) / 1e6
}

fn print_rates(cfg: &Config, a: &[EthStats], b: &[EthStats], d: Duration) {
    for ((c, x), y) in cfg.ports.iter().zip(a).zip(b) {
        println!(
            "port {:<12} rx {:>8.3} Mpps  tx {:>8.3} Mpps",
            c.name,
            mpps(y.ipackets - x.ipackets, d),
            mpps(y.opackets - x.opackets, d)
        );
    }
}

/// Counters of one port over the run.
#[derive(serde::Serialize)]
struct PortSnapshot {
    name: String,
    device: String,
    rx_packets: u64,
    tx_packets: u64,
    rx_bytes: u64,
    tx_bytes: u64,
    rx_mpps: f64,
    tx_mpps: f64,
    rx_missed: u64,
    rx_nombuf: u64,
    tx_errors: u64,
}

/// What `ispmux ctl stats` answers and `ispmux run` prints at exit.
#[derive(serde::Serialize)]
struct Snapshot {
    seconds: f64,
    ports: Vec<PortSnapshot>,
    rx: u64,
    tx: u64,
    punted: u64,
    idle_sleeps: u64,
    drops: std::collections::BTreeMap<&'static str, u64>,
    pipeline: serde_json::Value,
    slowpath: SlowPathStats,
}

#[allow(clippy::too_many_arguments)]
fn snapshot(
    cfg: &Config,
    a: &[EthStats],
    b: &[EthStats],
    shared: &[Arc<SharedCounters>],
    names: &[(u16, String)],
    slowpath: SlowPathStats,
    d: Duration,
) -> Snapshot {
    let total = shared::sum(shared.iter().map(|s| &**s));
    Snapshot {
        seconds: d.as_secs_f64(),
        ports: cfg
            .ports
            .iter()
            .zip(a)
            .zip(b)
            .map(|((c, x), y)| PortSnapshot {
                name: c.name.clone(),
                device: c.device.clone(),
                rx_packets: y.ipackets - x.ipackets,
                tx_packets: y.opackets - x.opackets,
                rx_bytes: y.ibytes - x.ibytes,
                tx_bytes: y.obytes - x.obytes,
                rx_mpps: mpps(y.ipackets - x.ipackets, d),
                tx_mpps: mpps(y.opackets - x.opackets, d),
                rx_missed: y.imissed - x.imissed,
                rx_nombuf: y.rx_nombuf - x.rx_nombuf,
                tx_errors: y.oerrors - x.oerrors,
            })
            .collect(),
        rx: total.worker.rx,
        tx: total.worker.tx,
        punted: total.worker.punted,
        idle_sleeps: total.worker.idle_sleeps,
        // The loop's own drops (full queues and rings) plus the pipeline's, each once.
        drops: total
            .drops_by_reason()
            .map(|(r, n)| (r.name(), n))
            .collect(),
        pipeline: pipeline_json(&total, names),
        slowpath,
    }
}

/// The pipeline counters as `ctl stats` has shown them: ISPs named or active with their
/// counters by name, drops by name, and the worker-wide counters by name.
fn pipeline_json(c: &Counters, names: &[(u16, String)]) -> serde_json::Value {
    let name = |id: u16| {
        names
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| n.as_str())
    };
    let isps: Vec<serde_json::Value> = c
        .isp_lines(name)
        .map(|l| {
            let mut o = serde_json::Map::new();
            o.insert("id".into(), l.id.into());
            o.insert("name".into(), l.name.into());
            for (n, pb) in l.counters.iter() {
                o.insert(
                    n.into(),
                    serde_json::json!({ "packets": pb.packets, "bytes": pb.bytes }),
                );
            }
            o.into()
        })
        .collect();
    let mut o = serde_json::Map::new();
    o.insert("isps".into(), isps.into());
    let drops: serde_json::Map<String, serde_json::Value> = c
        .drops_by_reason()
        .map(|(r, n)| (r.name().to_owned(), n.into()))
        .collect();
    o.insert("drops".into(), drops.into());
    for (n, v) in c.worker.iter() {
        o.insert(n.into(), v.into());
    }
    o.into()
}

/// Prints how long the calling worker thread ran on its core and how long it waited for it
/// (`/proc/thread-self/schedstat`), once, after its loop. Why: on a machine shared with
/// other work, a busy-polling worker's rate follows the share of its core it got, and
/// anything busy on the other cores (a slow path applying updates, say) pushes other
/// processes onto the worker's core; benchmarks compare runs with this share beside the
/// rate (`perf/run table-updates`).
fn print_core_share(lcore: u32) {
    let Ok(s) = std::fs::read_to_string("/proc/thread-self/schedstat") else {
        return;
    };
    let mut ns = s.split_whitespace().map(|v| v.parse::<u64>().ok());
    if let (Some(Some(on)), Some(Some(waited))) = (ns.next(), ns.next()) {
        println!(
            "worker lcore {lcore} on-cpu {:.3} s waited {:.3} s",
            on as f64 / 1e9,
            waited as f64 / 1e9
        );
    }
}

fn print_final(s: &Snapshot) {
    println!("ispmux ran {:.3} s", s.seconds);
    for p in &s.ports {
        println!(
            "port {:<12} rx {:>14} pkts {:>8.3} Mpps  tx {:>14} pkts {:>8.3} Mpps  missed {} rx_nombuf {} oerrors {}",
            p.name, p.rx_packets, p.rx_mpps, p.tx_packets, p.tx_mpps, p.rx_missed, p.rx_nombuf, p.tx_errors,
        );
    }
    println!(
        "workers rx {} tx {} punted {} idle_sleeps {}",
        s.rx, s.tx, s.punted, s.idle_sleeps
    );
    let drops: Vec<String> = DropReason::ALL
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.name(),
                s.drops.get(r.name()).copied().unwrap_or(0)
            )
        })
        .collect();
    println!("drops {}", drops.join(" "));
    for isp in s.pipeline["isps"].as_array().into_iter().flatten() {
        println!("{isp}");
    }
    let sp = &s.slowpath;
    println!(
        "slowpath punted {} arp {} arp_replies {} dhcp {} other {} injected {} inject_drops {} bindings_installed {} bindings_removed {} update_errors {}",
        sp.punted, sp.arp, sp.arp_replies, sp.dhcp, sp.other, sp.injected, sp.inject_drops, sp.bindings_installed, sp.bindings_removed, sp.update_errors
    );
}
