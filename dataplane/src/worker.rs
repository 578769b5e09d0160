//! The poll-mode worker loop: rx burst → pipeline → tx burst, on one pinned lcore.
//!
//! Never blocks, allocates, locks or makes a syscall while there is traffic; when idle and
//! allowed, it sleeps briefly so several instances can share few cores (by default 50 µs
//! after 64 empty polls: the first frame after a pause waits up to that long).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ispmux_sys::{Burst, Ring, RxQueue, TxQueue, MAX_BURST};

use crate::counters::{Counters, DropReason};
use crate::pipeline::{Pipeline, Verdict};
use crate::shared::SharedCounters;
use crate::trace::TraceControl;

/// The queues one worker owns.
pub struct WorkerIo {
    /// (port index, receive queue) pairs to poll.
    pub rx: Vec<(u16, RxQueue)>,
    /// The worker's transmit queue on every port, indexed by port index.
    pub tx: Vec<TxQueue>,
    /// Where punted frames go (the slow path's ring); `None` drops them as `NoRoute`.
    pub punt: Option<Arc<Ring>>,
    /// Frames the slow path wants sent (its inject path), each with its output port in the
    /// mbuf's port field. Workers own the transmit queues, so the slow path needs none.
    pub inject: Option<Arc<Ring>>,
    /// This worker's packet trace, armed by the control side; the
    /// loop looks at it once per burst.
    pub trace: Arc<TraceControl>,
}

/// How a worker polls.
#[derive(Clone, Copy, Debug)]
pub struct WorkerConfig {
    /// Frames per receive burst (at most `MAX_BURST`).
    pub burst: usize,
    /// Sleep this long after `idle_polls` empty rounds; `None` busy-polls.
    pub idle_sleep: Option<Duration>,
    /// Empty rounds in a row before sleeping.
    pub idle_polls: u32,
}

/// Polls until `stop` is set, then flushes and returns. Every frame received is either
/// transmitted, punted or freed and counted: none leaks.
///
/// `maintain` runs between bursts every 64 rounds and on every idle round: the place to
/// apply table updates (well under a millisecond apart at any load). Just before it, the
/// loop publishes its own counters plus the pipeline's ([`Pipeline::counters`]) into
/// `counters`.
pub fn run<P: Pipeline>(
    pipeline: &mut P,
    io: WorkerIo,
    cfg: WorkerConfig,
    counters: &SharedCounters,
    stop: &AtomicBool,
    maintain: &mut dyn FnMut(&mut P),
) {
    let WorkerIo {
        rx: mut rxqs,
        tx: mut txqs,
        punt: punt_ring,
        inject,
        trace,
    } = io;
    let burst = cfg.burst.clamp(1, MAX_BURST);
    // Two receive bursts: one just received, one held since the previous poll. A burst is
    // processed one poll after it arrives, its table lines prefetched on arrival
    // (`Pipeline::prefetch`): the next receive's copying and descriptor work then covers
    // the memory latency that a burst's own first pass is too short to hide.
    let mut bursts = [Burst::new(), Burst::new()];
    let mut fresh = 0usize;
    let mut held_port: Option<u16> = None;
    let mut rx = Burst::new();
    let mut punt = Burst::new();
    let mut dropped = Burst::new();
    let mut tx: Vec<Burst> = txqs.iter().map(|_| Burst::new()).collect();
    let mut verdicts = vec![Verdict::Punt; MAX_BURST];
    // The loop's own counters; the pipeline's are added when publishing.
    let mut c = Counters::new(0);
    let mut empty_rounds = 0u32;
    let mut rounds = 0u32;
    // One TSC read per round: a round that received frames is busy until the next starts
    // (its bursts, the injects, the table writes it replays), an empty one idle (its sleep
    // included). About 30 cycles a round, under 1 % of a round of a full burst.
    let mut round_start = ispmux_sys::tsc();
    let mut busy = false;

    while !stop.load(Ordering::Relaxed) {
        let now = ispmux_sys::tsc();
        if busy {
            c.worker.busy_cycles += now.wrapping_sub(round_start);
        }
        round_start = now;
        let mut got = 0;
        let mut out = Out {
            txqs: &mut txqs,
            tx: &mut tx,
            punt_ring: punt_ring.as_deref(),
            punt: &mut punt,
            dropped: &mut dropped,
            c: &mut c,
            trace: &trace,
        };
        for (port, q) in rxqs.iter_mut() {
            let (a, b) = bursts.split_at_mut(1);
            let (new, held) = if fresh == 0 {
                (&mut a[0], &mut b[0])
            } else {
                (&mut b[0], &mut a[0])
            };
            let n = q.rx_burst(new, burst);
            got += n;
            out.c.worker.rx += n as u64;
            let hold = n > 0 && pipeline.burst_verdict(*port).is_none();
            if hold {
                pipeline.prefetch(*port, new.as_slice());
            } else {
                handle(pipeline, *port, new, &mut verdicts, &mut out);
            }
            if let Some(p) = held_port.take() {
                handle(pipeline, p, held, &mut verdicts, &mut out);
            }
            if hold {
                held_port = Some(*port);
                fresh ^= 1;
            }
        }
        rounds = rounds.wrapping_add(1);
        let idle = got == 0;
        busy = !idle;
        c.worker.polls += 1;
        c.worker.busy_polls += u64::from(busy);
        if let Some(r) = inject
            .as_deref()
            .filter(|_| idle || rounds.is_multiple_of(64))
        {
            // Drain the ring, not one burst of it: a busy worker comes here every 64
            // rounds, and the slow path releases a whole group commit's replies at once;
            // one burst per visit let the ring overflow under a logon storm.
            for _ in 0..INJECT_BURSTS_PER_VISIT {
                if send_injected(r, &mut rx, &mut tx, &mut dropped, &mut c) == 0 {
                    break;
                }
                flush(&mut txqs, &mut tx, punt_ring.as_deref(), &mut punt, &mut c);
            }
        }
        // Publishing every round would cost more stores than io forwarding does per burst;
        // every 64th round keeps readers within microseconds. Idle, a busy-polling worker
        // does it every round (its core is its own); one that sleeps does it on its first
        // idle round and just before sleeping, not on each of the empty polls between: that
        // ran the counters and the update queue 64 times per wake-up, most of the worker's
        // time under a trickle of punted DHCP (dhcp-logon).
        let sleeps_next = cfg.idle_sleep.is_some() && empty_rounds + 1 >= cfg.idle_polls;
        if rounds.is_multiple_of(64)
            || (idle && (cfg.idle_sleep.is_none() || empty_rounds == 0 || sleeps_next))
        {
            counters.publish(&c, pipeline.counters());
            maintain(pipeline);
        }
        if got == 0 {
            empty_rounds += 1;
            if let Some(d) = cfg.idle_sleep {
                if empty_rounds >= cfg.idle_polls {
                    empty_rounds = 0;
                    c.worker.idle_sleeps += 1;
                    std::thread::sleep(d);
                }
            }
        } else {
            empty_rounds = 0;
        }
    }
    if let Some(p) = held_port {
        let mut out = Out {
            txqs: &mut txqs,
            tx: &mut tx,
            punt_ring: punt_ring.as_deref(),
            punt: &mut punt,
            dropped: &mut dropped,
            c: &mut c,
            trace: &trace,
        };
        handle(pipeline, p, &mut bursts[fresh ^ 1], &mut verdicts, &mut out);
    }
    flush(&mut txqs, &mut tx, punt_ring.as_deref(), &mut punt, &mut c);
    counters.publish(&c, pipeline.counters());
    maintain(pipeline);
}

/// Where a handled burst's frames go.
struct Out<'a> {
    txqs: &'a mut [TxQueue],
    tx: &'a mut [Burst],
    punt_ring: Option<&'a Ring>,
    punt: &'a mut Burst,
    dropped: &'a mut Burst,
    c: &'a mut Counters,
    trace: &'a TraceControl,
}

/// Decides every frame of `rx` (received on `port`) and sends, punts or frees it.
#[inline(always)]
fn handle<P: Pipeline>(
    pipeline: &mut P,
    port: u16,
    rx: &mut Burst,
    verdicts: &mut [Verdict],
    o: &mut Out<'_>,
) {
    let n = rx.len();
    if n == 0 {
        return;
    }
    let c = &mut *o.c;
    // The trace is looked at once per burst; a traced burst takes the general path below.
    let traced = o.trace.armed();
    if let (Some(Verdict::Forward(p)), false) = (pipeline.burst_verdict(port), traced) {
        if let (Some(q), true) = (
            o.txqs.get_mut(usize::from(p)),
            o.tx.get(usize::from(p)).is_some_and(Burst::is_empty),
        ) {
            c.worker.tx += q.tx_burst(rx) as u64;
            c.add_drops(DropReason::TxFull, rx.clear() as u64);
            return;
        }
    }
    let verdicts = &mut verdicts[..n];
    if traced {
        o.trace.process(pipeline, port, rx.as_mut_slice(), verdicts);
    } else {
        pipeline.process(port, rx.as_mut_slice(), verdicts);
    }
    // A pipeline with counters of its own has counted its drop verdicts already.
    let count_verdicts = pipeline.counters().is_none();
    // A burst bound for one port as a whole (the common case: upstream to the core, io
    // forwarding) goes out as it came in, without sorting frame by frame.
    if let Verdict::Forward(p) = verdicts[0] {
        let p = usize::from(p);
        if p < o.txqs.len() && o.tx[p].is_empty() && verdicts[1..].iter().all(|v| *v == verdicts[0])
        {
            c.worker.tx += o.txqs[p].tx_burst(rx) as u64;
            c.add_drops(DropReason::TxFull, rx.clear() as u64);
            return;
        }
    }
    for (m, v) in rx.drain().zip(verdicts.iter()) {
        let out = match *v {
            Verdict::Forward(p) => o.tx.get_mut(usize::from(p)),
            Verdict::Punt => Some(&mut *o.punt),
            Verdict::Drop(r) => {
                if count_verdicts {
                    c.drop(r);
                }
                None
            }
        };
        let m = match out {
            Some(b) => match b.push(m) {
                Ok(()) => continue,
                Err(m) => m,
            },
            None if matches!(v, Verdict::Drop(_)) => m,
            None => {
                c.drop(DropReason::NoRoute);
                m
            }
        };
        if let Err(m) = o.dropped.push(m) {
            drop(m);
        }
    }
    o.dropped.clear();
    flush(o.txqs, o.tx, o.punt_ring, o.punt, c);
}

/// Inject bursts sent per visit at most (a 1024-slot inject ring in full bursts), so a slow path
/// producing without pause cannot hold the worker off its receive queues.
const INJECT_BURSTS_PER_VISIT: usize = 4;

/// Moves one burst from the inject ring to the transmit bursts of their ports; returns how
/// many frames it took.
fn send_injected(
    r: &Ring,
    buf: &mut Burst,
    tx: &mut [Burst],
    dropped: &mut Burst,
    c: &mut Counters,
) -> usize {
    let n = r.dequeue_burst(buf, MAX_BURST);
    if n == 0 {
        return 0;
    }
    c.worker.injected += buf.len() as u64;
    for m in buf.drain() {
        let m = match tx.get_mut(usize::from(m.port())) {
            Some(b) => match b.push(m) {
                Ok(()) => continue,
                Err(m) => m,
            },
            None => m,
        };
        c.drop(DropReason::NoRoute);
        if let Err(m) = dropped.push(m) {
            drop(m);
        }
    }
    dropped.clear();
    n
}

#[inline]
fn flush(
    txqs: &mut [TxQueue],
    tx: &mut [Burst],
    punt_ring: Option<&Ring>,
    punt: &mut Burst,
    c: &mut Counters,
) {
    for (q, b) in txqs.iter_mut().zip(tx.iter_mut()) {
        if b.is_empty() {
            continue;
        }
        c.worker.tx += q.tx_burst(b) as u64;
        c.add_drops(DropReason::TxFull, b.clear() as u64);
    }
    if !punt.is_empty() {
        match punt_ring {
            Some(r) => {
                c.worker.punted += r.enqueue_burst(punt) as u64;
                c.add_drops(DropReason::PuntRingFull, punt.clear() as u64);
            }
            None => c.add_drops(DropReason::NoRoute, punt.clear() as u64),
        }
    }
}
