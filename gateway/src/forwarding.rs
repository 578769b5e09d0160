//! The fast path and the slow path of a gateway: EAL, the mbuf pool, the ports, the punt
//! and inject rings, the pinned workers with their tables, counters and traces, and the
//! slow-path thread; started in an order that lets no frame meet a table without the
//! bindings restored from the store, stopped in the reverse.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ispmux_conf::{Config, PipelineKind, Plan};
use ispmux_dataplane::shared::SharedCounters;
use ispmux_dataplane::table::updates::{self, UpdateReceiver, UpdateSender};
use ispmux_dataplane::trace::TraceControl;
use ispmux_dataplane::worker::{self, WorkerConfig, WorkerIo};
use ispmux_dataplane::{
    Counters, IoForward, MacSwap, Node, PortAddr, PortRole, PreloadTables, TableUpdate, Tables,
};
use ispmux_slowpath::dhcp::MacAddr;
use ispmux_slowpath::punt::{self, ArpResponder, PortArp};
use ispmux_sys::{Eal, EthStats, Mempool, Port, PortConfig, Ring, RingMode};

use crate::command::{TraceLine, Traced};
use crate::error::{GatewayError, Step};
use crate::gateway::PortRate;
use crate::report::{
    IspStats, PacketBytes, PipelineStats, PortStats, Report, Stats, UpdateGenReport, WorkerExit,
    WorkerStats,
};
use crate::slowpath::{SlowPath, SlowPathStats, INJECT_RING_SLOTS};
use crate::twin::Twins;

/// Room per mbuf: 2 KiB of data plus DPDK's default 128 bytes of headroom.
const MBUF_DATA_ROOM: u16 = 2048 + 128;
/// How long the slow path and workers run on after LDP ends its sessions at shutdown.
const LDP_FAREWELL: std::time::Duration = std::time::Duration::from_millis(200);
/// Pending table writes per worker queue.
const UPDATE_QUEUE_DEPTH: usize = 65_536;

/// The fast path and the slow path: what `ispmux run` adds to the RADIUS proxy.
pub(crate) struct Forwarding {
    /// Stops the workers, the slow path and the update generator.
    stop: Arc<AtomicBool>,
    launched: Vec<u32>,
    /// Each worker's lcore, by worker index (kept after the stop, for the exit report).
    lcores: Vec<u32>,
    shared: Vec<Arc<SharedCounters>>,
    traces: Vec<Arc<TraceControl>>,
    exits: Vec<Arc<Mutex<WorkerExit>>>,
    slow: Option<JoinHandle<()>>,
    slow_stats: Arc<Mutex<SlowPathStats>>,
    /// LDP's neighbours and bindings as the slow path last published them.
    ldp_view: Arc<Mutex<Option<crate::ldp::LdpView>>>,
    /// Tells the slow path to end LDP's sessions before the stop; None without LDP.
    ldp_farewell: Option<Arc<AtomicBool>>,
    dhcp_stats: Option<Arc<Mutex<BTreeMap<String, u64>>>>,
    revoke: Option<mpsc::Sender<MacAddr>>,
    /// Reloads for the slow path to carry out.
    reload: Option<mpsc::Sender<crate::reload::Job>>,
    /// The slow path follows next hops given by address (a reload may add some).
    follows_neighbours: bool,
    update_gen: Option<JoinHandle<UpdateGenReport>>,
    names: Vec<(u16, String)>,
    before: Vec<EthStats>,
    last: (Vec<EthStats>, Instant),
    punt: Arc<Ring>,
    inject: Arc<Ring>,
    ports: Vec<Port>,
    pool: Arc<Mempool>,
    /// Last: EAL goes after everything that uses it.
    _eal: Eal,
}

impl Forwarding {
    pub(crate) fn start(cfg: &Config, preload: PreloadTables) -> Result<Forwarding, GatewayError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let plan = cfg.plan(cores);
        let eal_plan = cfg
            .eal_plan(free_hugepage_mb())
            .map_err(GatewayError::Other)?;
        tracing::info!(args = ?eal_plan.args, hugepages = eal_plan.hugepages, "starting EAL");
        let eal = Eal::init(&eal_plan.args).step(|| "EAL initialisation".into())?;
        tracing::info!(version = %ispmux_sys::version(), "EAL up");

        let pool = Arc::new(
            Mempool::pktmbuf("ispmux_mbufs", plan.mbufs, 256, MBUF_DATA_ROOM, 0)
                .step(|| "creating the mbuf pool (raise eal.memory_mb?)".into())?,
        );
        let ports = start_ports(cfg, &plan, &pool)?;
        let node_ports = node_ports(cfg, &ports)?;
        let punt = Arc::new(
            Ring::new(
                "ispmux_punt",
                cfg.dataplane.punt_ring,
                RingMode::MultiProducerSingleConsumer,
            )
            .step(|| "creating the punt ring".into())?,
        );
        // The first worker sends what the slow path injects: it owns a transmit queue on
        // every port, so the slow path needs none (PMDs such as af_packet have few).
        let inject = Arc::new(
            Ring::new(
                "ispmux_inject",
                INJECT_RING_SLOTS,
                RingMode::SingleProducerSingleConsumer,
            )
            .step(|| "creating the inject ring".into())?,
        );
        let isp_ids: HashMap<String, u16> = preload
            .isps
            .iter()
            .map(|i| (i.name.clone(), i.id))
            .collect();

        // The logon proxy first: the bindings it restores go into every table copy.
        let (dhcp, restored) = match &cfg.dhcp {
            Some(d) => {
                // Each reply leaves from the MAC of its own access port (by port index).
                let port_macs = node_ports.iter().map(|p| p.mac).collect();
                let (svc, fx) = crate::logon::start(cfg, d, port_macs)?;
                (Some(svc), fx)
            }
            None => Default::default(),
        };
        let mut restore = Vec::new();
        for change in &restored.bindings {
            if let Err(e) = punt::binding_updates(change, &isp_ids, &mut restore) {
                tracing::warn!(error = %e, "dhcp: restored binding not installed");
            }
        }
        let tables = || build_tables(&preload, &restore);
        let node_mode = cfg.dataplane.pipeline == PipelineKind::Node;
        // The registry's MACs, for the workers to tell a logon from a stranger's DHCP.
        let registry = match (&cfg.dhcp, node_mode) {
            (Some(d), true) => Some(crate::registered::RegistrySync::open(
                cfg,
                d,
                Instant::now(),
            )?),
            _ => None,
        };
        let (sender, mut receivers) = if node_mode {
            let mut master = tables()?;
            if let Some(r) = &registry {
                r.load(&mut master);
            }
            tracing::info!(
                subscribers = preload.subscribers.len(),
                restored = restored.bindings.len(),
                registered = registry.as_ref().map_or(0, |r| r.len()),
                bytes_per_copy = master.memory_bytes(),
                "tables built"
            );
            let (s, r) = updates::channel(master, plan.workers.len(), UPDATE_QUEUE_DEPTH);
            (Some(s), r.into_iter().map(Some).collect())
        } else {
            (None, Vec::new())
        };

        let max_isps = preload.limits.max_isps;
        let stop = Arc::new(AtomicBool::new(false));
        let mut f = Forwarding {
            stop: stop.clone(),
            launched: Vec::new(),
            lcores: Vec::new(),
            traces: (0..plan.workers.len())
                .map(|i| Arc::new(TraceControl::new(i as u16)))
                .collect(),
            shared: plan
                .workers
                .iter()
                .map(|_| Arc::new(SharedCounters::new(max_isps)))
                .collect(),
            exits: plan.workers.iter().map(|_| Arc::default()).collect(),
            slow: None,
            slow_stats: Arc::default(),
            ldp_view: Arc::default(),
            ldp_farewell: None,
            dhcp_stats: None,
            revoke: None,
            reload: None,
            follows_neighbours: false,
            update_gen: None,
            names: preload
                .isp_names()
                .into_iter()
                .map(|(id, n)| (id, n.to_owned()))
                .collect(),
            before: Vec::new(),
            last: (Vec::new(), Instant::now()),
            punt,
            inject,
            ports,
            pool,
            _eal: eal,
        };
        f.before = f.port_stats();
        f.last = (f.before.clone(), Instant::now());
        for i in 0..plan.workers.len() {
            let pipeline = match cfg.dataplane.pipeline {
                PipelineKind::Io => WorkerPipeline::Io(IoForward::paired(cfg.ports.len() as u16)),
                PipelineKind::Macswap => {
                    WorkerPipeline::MacSwap(MacSwap::paired(cfg.ports.len() as u16))
                }
                PipelineKind::Node => {
                    let mut t = tables()?;
                    let copied = sender
                        .as_ref()
                        .is_none_or(|s| t.copy_registered_from(s.tables()));
                    let node = Node::new(node_ports.clone(), t);
                    if let Some(s) = &sender {
                        if !copied || !node.tables().same_layout(s.tables()) {
                            f.abort();
                            return Err(GatewayError::Other(format!(
                                "worker {i}: tables differ in layout from the slow path's copy"
                            )));
                        }
                    }
                    let rx = receivers.get_mut(i).and_then(Option::take);
                    WorkerPipeline::Node(Box::new(node), rx)
                }
            };
            if let Err(e) = f.launch(cfg, &plan, i, pipeline) {
                f.abort();
                return Err(e);
            }
        }
        let sender = match sender {
            Some(s) if cfg.dataplane.bench_updates_per_s > 0 => {
                let isp = preload.isps.first().map_or(1, |i| i.id);
                let g = crate::update_gen::spawn(
                    s,
                    cfg.dataplane.bench_updates_per_s,
                    isp,
                    stop.clone(),
                );
                match g {
                    Ok(g) => f.update_gen = Some(g),
                    Err(e) => {
                        f.abort();
                        return Err(e).step(|| "starting the update generator".into());
                    }
                }
                None
            }
            s => s,
        };
        let slow = SlowPathParts {
            updates: sender,
            isp_ids,
            dhcp,
            registry,
        };
        if let Err(e) = f.start_slow_path(cfg, &node_ports, slow, &restored) {
            f.abort();
            return Err(e);
        }
        Ok(f)
    }

    fn launch(
        &mut self,
        cfg: &Config,
        plan: &Plan,
        i: usize,
        pipeline: WorkerPipeline,
    ) -> Result<(), GatewayError> {
        let w = &plan.workers[i];
        let io = WorkerIo {
            rx: w
                .rx
                .iter()
                .map(|&(pi, q)| Ok((pi as u16, self.ports[pi].rx_queue(q)?)))
                .collect::<Result<_, ispmux_sys::Error>>()
                .step(|| format!("worker {i}: receive queues"))?,
            tx: self
                .ports
                .iter()
                .map(|p| p.tx_queue(w.tx_queue))
                .collect::<Result<_, _>>()
                .step(|| format!("worker {i}: transmit queues"))?,
            punt: Some(self.punt.clone()),
            inject: (i == 0).then(|| self.inject.clone()),
            trace: self.traces[i].clone(),
        };
        let wc = WorkerConfig {
            burst: usize::from(cfg.dataplane.burst),
            idle_sleep: plan
                .idle_sleep
                .then(|| Duration::from_micros(u64::from(cfg.dataplane.idle_sleep_us))),
            idle_polls: cfg.dataplane.idle_polls,
        };
        let (sh, ex, stop) = (
            self.shared[i].clone(),
            self.exits[i].clone(),
            self.stop.clone(),
        );
        let lcore = w.lcore;
        let job = move || {
            if wc.idle_sleep.is_some() {
                // Its idle sleeps end when asked, not up to 50 µs later (the first frame
                // after a pause waits for them).
                ispmux_sys::set_timer_slack(1_000);
            }
            let mut exit = pipeline.run(io, wc, &sh, &stop);
            exit.lcore = lcore;
            (exit.on_cpu_s, exit.waited_s) = core_share().unzip();
            if let Ok(mut e) = ex.lock() {
                *e = exit;
            }
            0
        };
        ispmux_sys::launch(lcore, job).step(|| format!("launching worker on lcore {lcore}"))?;
        self.launched.push(lcore);
        self.lcores.push(lcore);
        Ok(())
    }

    fn start_slow_path(
        &mut self,
        cfg: &Config,
        node_ports: &[ispmux_dataplane::PortConfig],
        parts: SlowPathParts,
        restored: &ispmux_slowpath::dhcp::service::Effects,
    ) -> Result<(), GatewayError> {
        let SlowPathParts {
            updates,
            isp_ids,
            dhcp,
            registry,
        } = parts;
        let (revoke_tx, revoke_rx) = mpsc::channel();
        let dhcp_stats = Arc::new(Mutex::new(BTreeMap::new()));
        if dhcp.is_some() {
            self.revoke = Some(revoke_tx);
            self.dhcp_stats = Some(dhcp_stats.clone());
        }
        // The twins first: the ARP responder leaves their ports' own addresses to them.
        let twins = Twins::create(cfg, node_ports)?;
        let arp = ArpResponder {
            ports: cfg
                .ports
                .iter()
                .zip(node_ports)
                .enumerate()
                .map(|(i, (c, n))| PortArp {
                    mac: n.mac,
                    address: c.address.map(|a| a.addr()),
                    prefixes: c.proxy_arp.clone(),
                    twin: twins.has(i as u16).then_some(n.address),
                })
                .collect(),
        };
        // Next hops given by address, resolved on the routed ports' kernel twins; only a
        // node's tables have next hops.
        let neighbours = match updates {
            Some(_) => crate::neighbour::Neighbours::open(
                crate::neighbour::twin_interfaces(cfg),
                cfg.next_hops_to_resolve(),
                cfg.ldp.is_some(),
                std::time::Instant::now(),
            )
            .step(|| "opening the netlink socket that follows next hops".into())?,
            None => None,
        };
        // LDP on the twins, beside them (a node's tables are what its labels program).
        let ldp = match updates {
            Some(_) => crate::ldp::Ldp::open(
                cfg,
                &crate::neighbour::twin_interfaces(cfg),
                std::time::Instant::now(),
            )?,
            None => None,
        };
        self.follows_neighbours = neighbours.is_some();
        let (reload_tx, reload_rx) = mpsc::channel();
        self.reload = Some(reload_tx);
        let slow = SlowPath {
            reload: reload_rx,
            punt: self.punt.clone(),
            inject: self.inject.clone(),
            pool: self.pool.clone(),
            updates,
            dhcp,
            isp_ids,
            port_index: self
                .ports
                .iter()
                .enumerate()
                .map(|(i, p)| (p.id(), i as u16))
                .collect(),
            stats: self.slow_stats.clone(),
            dhcp_stats,
            arp,
            revoke: revoke_rx,
            icmp: crate::icmp::IcmpErrors::new(&cfg.icmp, node_ports.to_vec()),
            neighbours,
            twins,
            registry,
            ldp_farewell: match ldp {
                Some(_) => self
                    .ldp_farewell
                    .insert(Arc::new(AtomicBool::new(false)))
                    .clone(),
                None => Arc::default(),
            },
            label_map: ldp.as_ref().map(|_| crate::label_map::LabelMap::new(cfg)),
            ldp,
            ldp_view: self.ldp_view.clone(),
        };
        // Restored bindings are in the tables already; they count as installed.
        let h = slow
            .spawn(restored.bindings.len() as u64, self.stop.clone())
            .step(|| "starting the slow-path thread".into())?;
        self.slow = Some(h);
        Ok(())
    }

    /// Whether the slow path follows next hops given by address.
    pub(crate) fn follows_neighbours(&self) -> bool {
        self.follows_neighbours
    }

    /// Hands `job` to the slow path and waits up to `wait` for it to be carried out (None:
    /// not yet, it will be); the counters name `preload`'s ISPs from then on. An error: the
    /// job was not handed over.
    pub(crate) fn reload(
        &mut self,
        job: crate::reload::Job,
        done: mpsc::Receiver<crate::reload::Done>,
        preload: &PreloadTables,
        wait: Duration,
    ) -> Result<Option<crate::reload::Done>, String> {
        let tx = self
            .reload
            .as_ref()
            .ok_or("reload refused: the slow path has not started")?;
        tx.send(job)
            .map_err(|_| "reload refused: the slow path has stopped".to_owned())?;
        let d = done.recv_timeout(wait).ok();
        self.names = preload
            .isp_names()
            .into_iter()
            .map(|(id, n)| (id, n.to_owned()))
            .collect();
        Ok(d)
    }

    /// Workers launched.
    pub(crate) fn workers(&self) -> usize {
        self.launched.len()
    }

    /// Hands `mac` to the logon proxy to withdraw its binding: `None` without a proxy,
    /// else whether the proxy took it.
    pub(crate) fn revoke(&self, mac: MacAddr) -> Option<bool> {
        self.revoke.as_ref().map(|tx| tx.send(mac).is_ok())
    }

    /// Arms every worker's trace for its next `n` frames, dropping older records.
    pub(crate) fn arm_trace(&self, n: u32) -> Traced {
        for t in &self.traces {
            drop(t.take());
            t.arm(n as usize);
        }
        Traced {
            remaining: self.trace_remaining(),
            records: Vec::new(),
        }
    }

    /// The records every worker holds now, taken from their buffers.
    pub(crate) fn take_trace(&self, cfg: &Config) -> Traced {
        let records = self
            .traces
            .iter()
            .flat_map(|t| t.take())
            .map(|r| TraceLine {
                worker: r.worker,
                port: cfg
                    .ports
                    .get(usize::from(r.rx_port))
                    .map_or_else(|| r.rx_port.to_string(), |p| p.name.clone()),
                line: r.to_string(),
            })
            .collect();
        Traced {
            remaining: self.trace_remaining(),
            records,
        }
    }

    fn trace_remaining(&self) -> u64 {
        self.traces.iter().map(|t| t.remaining() as u64).sum()
    }

    fn port_stats(&self) -> Vec<EthStats> {
        self.ports
            .iter()
            .map(|p| p.stats().unwrap_or_default())
            .collect()
    }

    /// Per-port rates since the last call. A counter below its earlier reading (a device
    /// that reset its statistics) counts as zero, never as a wrapped difference.
    pub(crate) fn rates(&mut self, cfg: &Config, now: Instant) -> Vec<PortRate> {
        let cur = self.port_stats();
        let d = now - self.last.1;
        let rates = cfg
            .ports
            .iter()
            .zip(&self.last.0)
            .zip(&cur)
            .map(|((c, x), y)| PortRate {
                name: c.name.clone(),
                rx_mpps: mpps(y.ipackets.saturating_sub(x.ipackets), d),
                tx_mpps: mpps(y.opackets.saturating_sub(x.opackets), d),
            })
            .collect();
        self.last = (cur, now);
        rates
    }

    pub(crate) fn stats(&self, cfg: &Config, d: Duration) -> Stats {
        let cur = self.port_stats();
        // Each worker's block read once: its loop counters shown alone, all of them summed.
        let each: Vec<Counters> = self.shared.iter().map(|s| s.load()).collect();
        let mut total = Counters::new(each.iter().map(Counters::isp_count).max().unwrap_or(0));
        each.iter().for_each(|c| total.add(c));
        let tsc_hz = ispmux_sys::tsc_hz().max(1) as f64;
        let w = &total.worker;
        Stats {
            seconds: d.as_secs_f64(),
            ports: cfg
                .ports
                .iter()
                .zip(&self.before)
                .zip(&cur)
                .map(|((c, x), y)| PortStats {
                    name: c.name.clone(),
                    device: c.device.clone(),
                    rx_packets: y.ipackets.saturating_sub(x.ipackets),
                    tx_packets: y.opackets.saturating_sub(x.opackets),
                    rx_bytes: y.ibytes.saturating_sub(x.ibytes),
                    tx_bytes: y.obytes.saturating_sub(x.obytes),
                    rx_mpps: mpps(y.ipackets.saturating_sub(x.ipackets), d),
                    tx_mpps: mpps(y.opackets.saturating_sub(x.opackets), d),
                    rx_missed: y.imissed.saturating_sub(x.imissed),
                    rx_nombuf: y.rx_nombuf.saturating_sub(x.rx_nombuf),
                    tx_errors: y.oerrors.saturating_sub(x.oerrors),
                    rx_errors: y.ierrors.saturating_sub(x.ierrors),
                })
                .collect(),
            rx: w.rx,
            tx: w.tx,
            punted: w.punted,
            idle_sleeps: w.idle_sleeps,
            // The loop's own drops (full queues and rings) and the pipeline's, each once.
            drops: total
                .drops_by_reason()
                .map(|(r, n)| (r.name().to_owned(), n))
                .collect(),
            pipeline: pipeline_stats(&total, &self.names),
            slowpath: self.slow_stats.lock().map(|s| *s).unwrap_or_default(),
            dhcp: self
                .dhcp_stats
                .as_ref()
                .and_then(|d| d.lock().ok().map(|d| d.clone())),
            radius: None,
            notices: None,
            workers: each
                .iter()
                .zip(&self.lcores)
                .map(|(c, &lcore)| WorkerStats {
                    lcore,
                    rx: c.worker.rx,
                    tx: c.worker.tx,
                    polls: c.worker.polls,
                    busy_polls: c.worker.busy_polls,
                    busy_s: c.worker.busy_cycles as f64 / tsc_hz,
                    idle_sleeps: c.worker.idle_sleeps,
                })
                .collect(),
        }
    }

    /// LDP's neighbours and bindings: None when LDP does not run here, Some(None) until
    /// the slow path first publishes them.
    pub(crate) fn ldp_view(&self) -> Option<Option<crate::ldp::LdpView>> {
        self.ldp_farewell.as_ref()?;
        Some(self.ldp_view.lock().ok().and_then(|v| v.clone()))
    }

    /// Stops and joins every thread this started; what failed goes into `report`.
    pub(crate) fn stop_threads(&mut self, report: &mut Report) {
        if let Some(f) = self.ldp_farewell.take() {
            // LDP's Shutdown Notifications leave through the twins, the slow path and a
            // worker: all of them still run for this while.
            f.store(true, Ordering::SeqCst);
            std::thread::sleep(LDP_FAREWELL);
        }
        self.stop.store(true, Ordering::SeqCst);
        for l in std::mem::take(&mut self.launched) {
            if ispmux_sys::wait(l) != 0 {
                report.failures.push(format!("worker on lcore {l} failed"));
            }
        }
        report.workers = self
            .exits
            .iter()
            .map(|e| e.lock().map(|e| e.clone()).unwrap_or_default())
            .filter(|e| e.on_cpu_s.is_some() || e.replayed_writes > 0)
            .collect();
        if let Some(h) = self.slow.take() {
            if h.join().is_err() {
                report.failures.push("the slow-path thread panicked".into());
            }
        }
        if let Some(g) = self.update_gen.take() {
            report.update_generator = g.join().ok();
        }
    }

    /// A start that failed half-way: stop what runs.
    fn abort(&mut self) {
        let mut r = Report::default();
        self.stop_threads(&mut r);
    }

    /// Frees the rings, ports and pool before EAL, saying if mbufs leaked.
    pub(crate) fn release(self) {
        let Forwarding {
            punt,
            inject,
            ports,
            pool,
            _eal,
            ..
        } = self;
        drop((punt, inject, ports));
        let in_use = pool.in_use();
        if in_use != 0 {
            tracing::warn!(in_use, "mbufs still in use at exit");
        }
        drop(pool);
        drop(_eal);
    }
}

/// What a worker runs, chosen once at start so the loop is monomorphic.
enum WorkerPipeline {
    Io(IoForward),
    MacSwap(MacSwap),
    Node(Box<Node>, Option<UpdateReceiver>),
}

impl WorkerPipeline {
    fn run(
        self,
        io: WorkerIo,
        wc: WorkerConfig,
        shared: &SharedCounters,
        stop: &AtomicBool,
    ) -> WorkerExit {
        let mut exit = WorkerExit::default();
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
                exit.replayed_writes = writes;
                exit.replay_ms = cycles as f64 * 1e3 / ispmux_sys::tsc_hz().max(1) as f64;
            }
        }
        exit
    }
}

/// What the start hands the slow path to own.
struct SlowPathParts {
    /// The only writer of the tables (node pipelines only; not while the update generator
    /// has it).
    updates: Option<UpdateSender>,
    isp_ids: HashMap<String, u16>,
    dhcp: Option<ispmux_slowpath::dhcp::service::LogonService>,
    registry: Option<crate::registered::RegistrySync>,
}

/// One copy of the tables: the preload plus the restored bindings' updates, backed by
/// transparent huge pages where the kernel allows (they prefetch with an inline
/// instruction; see `dataplane::table::cuckoo::PrefetchFn`). Deterministic, so every copy
/// has the same layout.
fn build_tables(p: &PreloadTables, restore: &[TableUpdate]) -> Result<Tables, GatewayError> {
    let mut t = p
        .build_with(|t| {
            for (ptr, len) in t.memory_regions() {
                ispmux_sys::advise_hugepages(ptr, len);
            }
        })
        .step(|| "building the fast-path tables from [tables]".into())?;
    for u in restore {
        if let Err(e) = t.apply(u) {
            tracing::warn!(update = ?u, error = %e, "restored binding refused by the tables");
        }
    }
    Ok(t)
}

fn start_ports(cfg: &Config, plan: &Plan, pool: &Arc<Mempool>) -> Result<Vec<Port>, GatewayError> {
    let mut ports = Vec::with_capacity(cfg.ports.len());
    for (c, pp) in cfg.ports.iter().zip(&plan.ports) {
        let id = Port::id_by_name(&c.dpdk_name())
            .step(|| format!("port {:?} ({})", c.name, c.device))?;
        let pc = PortConfig {
            rx_queues: pp.rx_queues,
            tx_queues: pp.tx_queues,
            rx_desc: c.rx_desc,
            tx_desc: c.tx_desc,
            promiscuous: c.promiscuous,
            rss: true,
        };
        let port = Port::start(id, &pc, pool.clone())
            .step(|| format!("starting port {:?} ({})", c.name, c.device))?;
        if let Some(mtu) = c.mtu {
            if let Err(e) = port.set_mtu(mtu) {
                tracing::warn!(port = %c.name, mtu, error = %e, "the device keeps its MTU; the pipeline still sends up to this MTU");
            }
        }
        ports.push(port);
    }
    Ok(ports)
}

/// The pipeline's view of each port: role, MAC (configured, else the device's), MTU.
fn node_ports(
    cfg: &Config,
    ports: &[Port],
) -> Result<Vec<ispmux_dataplane::PortConfig>, GatewayError> {
    let mut out = Vec::with_capacity(ports.len());
    for (p, c) in ports.iter().zip(&cfg.ports) {
        let link = p.link().step(|| format!("port {:?}: link", c.name))?;
        let mac = match c.mac {
            Some(m) => m,
            None => MacAddr(p.mac_addr().step(|| format!("port {:?}: MAC", c.name))?.0),
        };
        tracing::info!(port = %c.name, device = %c.device, %mac, role = ?c.role, up = link.up, speed_mbps = link.speed_mbps, "port started");
        out.push(ispmux_dataplane::PortConfig {
            role: c.role.unwrap_or(PortRole::Unused),
            mac,
            mtu: c.mtu.unwrap_or(1500),
            address: {
                let a = c
                    .address
                    .map_or(PortAddr::NONE, |a| PortAddr::new(a.addr(), a.prefix_len()));
                // LDP sessions from every core link reach its one transport address.
                match (&cfg.ldp, c.role) {
                    (Some(l), Some(PortRole::Core)) => {
                        a.with_node(l.transport_address.unwrap_or(l.router_id))
                    }
                    _ => a,
                }
            },
            implicit_null: c.implicit_null_label,
        });
    }
    Ok(out)
}

/// The pipelines' counters summed over the workers: ISPs named or active, and the
/// worker-wide counters of the fast path.
fn pipeline_stats(c: &Counters, names: &[(u16, String)]) -> PipelineStats {
    let name = |id: u16| {
        names
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| n.as_str())
    };
    let pb = |p: ispmux_dataplane::PacketBytes| PacketBytes {
        packets: p.packets,
        bytes: p.bytes,
    };
    let w = &c.worker;
    PipelineStats {
        isps: c
            .isp_lines(name)
            .map(|l| IspStats {
                id: l.id,
                name: l.name.to_owned(),
                headend_up: pb(l.counters.headend_up),
                headend_down: pb(l.counters.headend_down),
                tailend_up: pb(l.counters.tailend_up),
                tailend_down: pb(l.counters.tailend_down),
            })
            .collect(),
        punts: w.punts,
        punts_ttl_expired: w.punts_ttl_expired,
        punts_frag_needed: w.punts_frag_needed,
        punts_unregistered: w.punts_unregistered,
        arp_replies: w.arp_replies,
        transit: PacketBytes {
            packets: w.transit_packets,
            bytes: w.transit_bytes,
        },
        updates_applied: w.updates_applied,
        updates_refused: w.updates_refused,
    }
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

/// How long the calling thread ran on its core and how long it waited for it, in seconds
/// (`/proc/thread-self/schedstat`). Why: on a machine shared with other work, a
/// busy-polling worker's rate follows the share of its core it got, and anything busy on
/// the other cores pushes other processes onto the worker's core; benchmarks compare runs
/// with this share beside the rate (`perf/run table-updates`).
fn core_share() -> Option<(f64, f64)> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut ns = s.split_whitespace().map(|v| v.parse::<u64>().ok());
    match (ns.next(), ns.next()) {
        (Some(Some(on)), Some(Some(waited))) => Some((on as f64 / 1e9, waited as f64 / 1e9)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use ispmux_dataplane::synthetic::{self, Spec};
    use ispmux_dataplane::{DropReason, Pipeline, PortConfig as NodePort, VecFrame, Verdict};
    use ispmux_slowpath::dhcp::BindingChange;
    use ispmux_slowpath::registry::Binding;

    use super::*;

    const ACCESS_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa0]);

    /// Defect 2 of issue 15, after a restart: a worker's tables hold the bindings restored
    /// from the store before it polls its first frame, so that frame is forwarded, not
    /// dropped as `unknown_mac`.
    #[test]
    fn a_workers_first_frame_meets_the_restored_bindings() {
        let spec = Spec {
            subscribers: 4,
            isps: 2,
            access_port: 0,
            core_port: 1,
            qinq: false,
        };
        let mut preload = synthetic::preload(&spec, MacAddr([2, 0, 0, 0, 1, 1]));
        // Subscriber 0 is known only to the store (a DHCP binding), not to the file.
        let sub = preload.subscribers.remove(0);
        let isp_ids: HashMap<String, u16> = preload
            .isps
            .iter()
            .map(|i| (i.name.clone(), i.id))
            .collect();
        let restored = BindingChange::Install(Binding {
            mac: sub.mac,
            isp: format!("isp{}", sub.isp),
            ipv4: sub.ipv4.expect("synthetic subscribers are bound"),
            expires: SystemTime::UNIX_EPOCH,
            server: std::net::Ipv4Addr::new(198, 18, 100, 2),
            port: 0,
            vlan: 0,
            inner_vlan: 0,
        });
        let mut restore = Vec::new();
        punt::binding_updates(&restored, &isp_ids, &mut restore).expect("known ISP");
        let ports = vec![
            NodePort {
                role: PortRole::Access,
                mac: ACCESS_MAC,
                mtu: 1500,
                address: PortAddr::NONE,
                implicit_null: None,
            },
            NodePort {
                role: PortRole::Core,
                mac: MacAddr([2, 0, 0, 0, 0, 0xc1]),
                mtu: 1600,
                address: PortAddr::NONE,
                implicit_null: None,
            },
        ];
        let first = |restore: &[TableUpdate]| {
            let mut node = Node::new(
                ports.clone(),
                build_tables(&preload, restore).expect("tables"),
            );
            let frame = synthetic::upstream_frame(&spec, 0, ACCESS_MAC, 64);
            let mut frames = [VecFrame::new(&frame)];
            let mut verdicts = [Verdict::Punt];
            node.process(0, &mut frames, &mut verdicts);
            verdicts[0]
        };
        assert_eq!(first(&restore), Verdict::Forward(1));
        assert_eq!(
            first(&[]),
            Verdict::Drop(DropReason::UnknownMac),
            "without the restore the frame is dropped: the test sees the difference"
        );
    }
}
