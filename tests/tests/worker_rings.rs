//! The worker loop on EAL with net_ring ports: exact frames in and out, punts, counted drops,
//! and every mbuf back in its pool after shutdown. One EAL per process: run under nextest.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ispmux_dataplane::shared::SharedCounters;
use ispmux_dataplane::trace::TraceControl;
use ispmux_dataplane::worker::{self, WorkerConfig, WorkerIo};
use ispmux_dataplane::{DropReason, Frame, MacSwap, Pipeline, Verdict};
use ispmux_sys::{Burst, Eal, Mempool, Port, PortConfig, Ring, RingMode};

struct Rig {
    _eal: Eal,
    pool: Arc<Mempool>,
    rx: Vec<Ring>,
    tx: Vec<Ring>,
    ports: Vec<Port>,
}

fn rig(nports: usize, tx_ring_size: u32) -> Rig {
    let eal = Eal::init(&[
        "-l",
        "0,1",
        "--no-huge",
        "--no-shconf",
        "--no-pci",
        "-m",
        "256",
        "--log-level=lib.*:warning",
    ])
    .expect("EAL");
    let pool = Arc::new(Mempool::pktmbuf("pool", 8191, 64, 2176, 0).expect("pool"));
    let rx: Vec<Ring> = (0..nports)
        .map(|i| {
            Ring::new(
                &format!("rx{i}"),
                4096,
                RingMode::SingleProducerSingleConsumer,
            )
            .expect("ring")
        })
        .collect();
    let tx: Vec<Ring> = (0..nports)
        .map(|i| {
            Ring::new(
                &format!("tx{i}"),
                tx_ring_size,
                RingMode::SingleProducerSingleConsumer,
            )
            .expect("ring")
        })
        .collect();
    let ports = (0..nports)
        .map(|i| {
            let id = Ring::eth_port(&format!("net_ring_w{i}"), &[&rx[i]], &[&tx[i]]).expect("port");
            let cfg = PortConfig {
                rx_desc: 512,
                tx_desc: 512,
                ..PortConfig::default()
            };
            Port::start(id, &cfg, pool.clone()).expect("start")
        })
        .collect();
    Rig {
        _eal: eal,
        pool,
        rx,
        tx,
        ports,
    }
}

fn frame(i: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0x02, 0xaa, 0, 0, 0, 1]);
    f[6..10].copy_from_slice(&[0x02, 0xbb, 0, 0]);
    f[10..12].copy_from_slice(&(i as u16).to_be_bytes());
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14..18].copy_from_slice(&i.to_be_bytes());
    f
}

fn inject(rig: &Rig, port: usize, frames: &[Vec<u8>]) {
    for chunk in frames.chunks(64) {
        let mut b = Burst::new();
        for f in chunk {
            b.push(rig.pool.alloc_from(f).expect("mbuf")).expect("room");
        }
        assert_eq!(rig.rx[port].enqueue_burst(&mut b), chunk.len());
    }
}

fn collect(ring: &Ring, want: usize, timeout: Duration) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut b = Burst::new();
    while out.len() < want && Instant::now() < deadline {
        if ring.dequeue_burst(&mut b, 64) == 0 {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        out.extend(b.as_slice().iter().map(|m| m.data().to_vec()));
        b.clear();
    }
    out
}

fn start<P: Pipeline + 'static>(
    rig: &Rig,
    p: P,
    punt: Option<Arc<Ring>>,
) -> (Arc<SharedCounters>, Arc<AtomicBool>) {
    start_traced(rig, p, punt, Arc::new(TraceControl::new(0)))
}

fn start_traced<P: Pipeline + 'static>(
    rig: &Rig,
    mut p: P,
    punt: Option<Arc<Ring>>,
    trace: Arc<TraceControl>,
) -> (Arc<SharedCounters>, Arc<AtomicBool>) {
    let io = WorkerIo {
        rx: rig
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u16, p.rx_queue(0).expect("rxq")))
            .collect(),
        tx: rig
            .ports
            .iter()
            .map(|p| p.tx_queue(0).expect("txq"))
            .collect(),
        punt,
        inject: None,
        trace,
    };
    let stats = Arc::new(SharedCounters::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (s, st) = (stats.clone(), stop.clone());
    let cfg = WorkerConfig {
        burst: 32,
        idle_sleep: Some(Duration::from_micros(50)),
        idle_polls: 64,
    };
    ispmux_sys::launch(1, move || {
        worker::run(&mut p, io, cfg, &s, &st, &mut |_| {});
        0
    })
    .expect("launch");
    (stats, stop)
}

fn stop_and_wait(stop: &AtomicBool) {
    stop.store(true, Ordering::SeqCst);
    assert_eq!(ispmux_sys::wait(1), 0);
}

#[test]
fn macswap_forwards_every_frame_exactly_and_frees_every_mbuf() {
    let rig = rig(2, 4096);
    let (stats, stop) = start(&rig, MacSwap::paired(2), None);
    let frames: Vec<Vec<u8>> = (0..2000)
        .map(|i| frame(i, 60 + (i as usize % 1400)))
        .collect();
    inject(&rig, 0, &frames);
    let out = collect(&rig.tx[1], frames.len(), Duration::from_secs(10));
    assert_eq!(out.len(), frames.len());
    for (i, (o, f)) in out.iter().zip(&frames).enumerate() {
        let mut want = f.clone();
        want[..6].copy_from_slice(&f[6..12]);
        want[6..12].copy_from_slice(&f[..6]);
        assert_eq!(o, &want, "frame {i}");
    }
    stop_and_wait(&stop);
    assert_eq!(stats.load().worker.rx, 2000);
    assert_eq!(stats.load().worker.tx, 2000);
    assert!(stats.load().worker.idle_sleeps > 0, "idle worker sleeps");
    drop(rig.ports);
    assert_eq!(rig.pool.in_use(), 0, "every mbuf back in the pool");
}

/// Punts frames whose first byte is odd and drops runts; forwards the rest to port 1.
struct Sorter;

impl Pipeline for Sorter {
    fn process<F: Frame>(&mut self, _rx: u16, frames: &mut [F], v: &mut [Verdict]) {
        for (f, v) in frames.iter().zip(v.iter_mut()) {
            *v = match f.data() {
                d if d.len() < 60 => Verdict::Drop(DropReason::Truncated),
                d if d[17] % 2 == 1 => Verdict::Punt,
                _ => Verdict::Forward(1),
            };
        }
    }
}

#[test]
fn punts_reach_the_ring_and_a_full_ring_is_a_counted_drop() {
    let rig = rig(2, 4096);
    // 64 slots: 63 usable, so some of the 500 punts overflow while nobody reads the ring.
    let punt =
        Arc::new(Ring::new("punt", 64, RingMode::MultiProducerSingleConsumer).expect("ring"));
    let (stats, stop) = start(&rig, Sorter, Some(punt.clone()));
    let mut frames: Vec<Vec<u8>> = (0..1000).map(|i| frame(i, 64)).collect();
    frames.extend((0..10).map(|i| frame(i, 20)));
    inject(&rig, 0, &frames);
    let fwd = collect(&rig.tx[1], 500, Duration::from_secs(10));
    assert_eq!(fwd.len(), 500);
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats.load().worker.rx < 1010 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop_and_wait(&stop);
    assert_eq!(stats.load().worker.rx, 1010);
    assert_eq!(stats.load().drops(DropReason::Truncated), 10);
    assert_eq!(punt.count(), 63);
    assert_eq!(stats.load().worker.punted, 63);
    assert_eq!(stats.load().drops(DropReason::PuntRingFull), 500 - 63);
    let punted = collect(&punt, 63, Duration::from_secs(1));
    assert!(punted.iter().all(|f| f[17] % 2 == 1));
    drop(punt);
    drop(rig.ports);
    assert_eq!(rig.pool.in_use(), 0);
}

#[test]
fn a_full_transmit_queue_is_a_counted_drop_not_a_leak() {
    // The tx ring holds 127 frames; nobody drains it.
    let rig = rig(2, 128);
    let (stats, stop) = start(&rig, MacSwap::paired(2), None);
    let frames: Vec<Vec<u8>> = (0..1000).map(|i| frame(i, 64)).collect();
    inject(&rig, 0, &frames);
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.load().worker.rx < 1000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop_and_wait(&stop);
    assert_eq!(stats.load().worker.tx, 127);
    assert_eq!(stats.load().drops(DropReason::TxFull), 1000 - 127);
    drop(rig.ports);
    drop(rig.tx);
    assert_eq!(rig.pool.in_use(), 0);
}

/// Defect 1 of issue 15: a frame the node drops was counted twice, once by the node's
/// counters and once by the worker loop's, which the daemon adds up.
#[test]
fn a_frame_the_node_drops_is_counted_once() {
    use ispmux_dataplane::shared;
    use ispmux_dataplane::table::Limits;
    use ispmux_dataplane::{Node, PortConfig as Role, PortRole, PreloadTables, VecFrame};

    let rig = rig(2, 4096);
    let preload = PreloadTables {
        limits: Limits::default(),
        ..Default::default()
    };
    let role = |role, mac: &str| Role {
        role,
        mac: mac.parse().expect("mac"),
        mtu: 1500,
        address: ispmux_dataplane::PortAddr::NONE,
        implicit_null: None,
    };
    let ports = vec![
        role(PortRole::Access, "02:00:00:00:00:01"),
        role(PortRole::Core, "02:00:00:00:00:02"),
    ];
    // IPv6 from a subscriber: the node drops it whatever its tables hold.
    let mut ipv6 = frame(0, 80);
    ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
    let reason = {
        let mut n = Node::new(ports.clone(), preload.build().expect("tables"));
        let mut v = [Verdict::Punt];
        n.process(0, &mut [VecFrame::new(&ipv6)], &mut v);
        match v[0] {
            Verdict::Drop(r) => r,
            other => panic!("IPv6 from a subscriber: {other:?}"),
        }
    };
    let mut node = Node::new(ports, preload.build().expect("tables"));
    let io = WorkerIo {
        rx: vec![(0, rig.ports[0].rx_queue(0).expect("rxq"))],
        tx: rig
            .ports
            .iter()
            .map(|p| p.tx_queue(0).expect("txq"))
            .collect(),
        punt: None,
        inject: None,
        trace: Arc::new(TraceControl::new(0)),
    };
    let published = Arc::new(SharedCounters::new(preload.limits.max_isps));
    let stop = Arc::new(AtomicBool::new(false));
    let (sh, st) = (published.clone(), stop.clone());
    let cfg = WorkerConfig {
        burst: 32,
        idle_sleep: Some(Duration::from_micros(50)),
        idle_polls: 64,
    };
    ispmux_sys::launch(1, move || {
        worker::run(&mut node, io, cfg, &sh, &st, &mut |_| {});
        0
    })
    .expect("launch");
    let sent = 7u64;
    inject(&rig, 0, &vec![ipv6; sent as usize]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while published.load().worker.rx < sent && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop_and_wait(&stop);
    // Summed as `ctl stats` and the exit report sum them.
    let sum = shared::sum([&*published]);
    let total = |r: DropReason| sum.drops(r);
    assert_eq!(sum.worker.rx, sent);
    assert_eq!(total(reason), sent, "{}", reason.name());
    assert_eq!(DropReason::ALL.iter().map(|r| total(*r)).sum::<u64>(), sent);
    drop(rig.ports);
    assert_eq!(rig.pool.in_use(), 0);
}

#[test]
fn an_armed_trace_records_the_next_frames_through_the_loop() {
    let rig = rig(2, 4096);
    let trace = Arc::new(TraceControl::new(3));
    trace.arm(3);
    let (stats, stop) = start_traced(&rig, Sorter, None, trace.clone());
    // A runt the sorter drops, then frames it forwards.
    let mut frames = vec![frame(0, 20)];
    frames.extend((0..4).map(|i| frame(2 * i, 64)));
    inject(&rig, 0, &frames);
    let fwd = collect(&rig.tx[1], 4, Duration::from_secs(10));
    assert_eq!(fwd.len(), 4);
    stop_and_wait(&stop);
    assert_eq!(stats.load().worker.rx, 5);
    let r = trace.take();
    let verdicts: Vec<_> = r.iter().map(|r| r.verdict).collect();
    assert_eq!(
        verdicts,
        [
            Verdict::Drop(DropReason::Truncated),
            Verdict::Forward(1),
            Verdict::Forward(1)
        ]
    );
    assert!(r.iter().all(|r| r.worker == 3 && r.rx_port == 0));
    assert_eq!(r[0].len, 20);
    assert_eq!(trace.remaining(), 0);
    drop(rig.ports);
    assert_eq!(rig.pool.in_use(), 0);
}
