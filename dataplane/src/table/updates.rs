//! Carrying [`TableUpdate`]s from the slow path to every worker's table copy.
//!
//! The slow path owns a master copy of the tables. [`UpdateSender::send`] applies an update
//! to it (refusals are reported right there, synchronously) and records the physical slot
//! writes it made; those writes ([`TableOp`]s, 32 bytes each) are broadcast into one
//! single-producer single-consumer ring per worker ([`super::ring`]: preallocated, no lock,
//! no allocation, no compare-and-swap). A worker replays them between bursts
//! ([`UpdateReceiver::apply_pending`]); draining every few tens of microseconds rather than
//! every burst lets one drain's cache misses overlap.
//!
//! Why replay writes rather than re-run the update on each worker: the cuckoo search, the
//! lookups of the old state and their cache misses are paid once, on the slow path's core;
//! a worker only stores one to a few 16-byte slots per update (a store miss does not stall
//! the pipeline the way a load miss does), which keeps forwarding near full rate at
//! 500 k updates/s. Replay needs identical layouts: build every worker's tables and the
//! master from the same preload and limits (the tables are deterministic, the cuckoo
//! displacement uses a fixed-seed generator), and check with [`Tables::same_layout`].
//!
//! Every prefix of an update's writes is a consistent table (see `cuckoo::SlotWrite`), so a
//! worker may stop mid-update at its per-burst limit.
//!
//! What replay costs the worker, measured (Instant around each drain in `ispmux run` with
//! `perf/run table-updates`' configuration, 1M subscribers, 600k updates/s = 1.2 M writes/s,
//! median per drain): about 16-21 ns a write, half reading and decoding the ring, half
//! storing, so about 2 % of the worker. Tried and measured worse or no better: prefetching
//! the ring's lines a batch ahead (no change: the hardware prefetcher already streams it),
//! and a lookahead drain that stores one drain later what it decoded and prefetched
//! (23-26 ns: the lines do not survive the 64 bursts between drains). `ispmux run` prints
//! the worker's replay time at exit (18.5 ns a write in the same configuration, measured
//! with the TSC around each drain). The rest of the benchmark's loss on the 2-vCPU machine
//! is not replay, and not preemption either (the worker kept 99.5-100 % of its core): work
//! on the other vCPU slows the worker (a busy loop there cost it 10-30 % in alternating
//! runs), so the slow path's own cost of applying updates to the master shows up in the
//! worker's rate; the benchmark's generator therefore applies in prefetched batches.

use super::cuckoo::SlotWrite;
use super::isp::{Fec, IspEntry};
use super::ring::{Message, Ring};
use super::{DhcpFilter, TableError, TableOp, TableUpdate, Tables};
use crate::wire::MacAddr;
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// The slow path's end: the master copy and the queues to every worker.
///
/// The single producer: not `Clone`, and `send` takes `&mut self`, so several slow-path
/// engines share it behind their own mutex (the slow path may lock; the workers never do).
pub struct UpdateSender {
    master: Tables,
    queues: Vec<Arc<Ring>>,
    /// Room known to be free in every queue. Reading a queue's length touches cache lines
    /// the worker writes, so it is re-read only when this runs out.
    room: usize,
    /// Writes applied to the master but not yet in every queue.
    backlog: VecDeque<TableOp>,
    /// Writes made to the master since the channel opened: the position of the next.
    produced: u64,
    /// Per worker, the writes it has taken from its queue (see [`UpdateSender::applied`]).
    consumed: Vec<Arc<AtomicU64>>,
}

/// One worker's end.
pub struct UpdateReceiver {
    queue: Arc<Ring>,
    /// Writes taken from the queue so far; only this worker stores it.
    consumed: Arc<AtomicU64>,
}

/// Queues for `workers` workers, each holding up to `depth` pending writes, fed from
/// `master`, which must have the layout of every worker's tables (same preload and limits).
pub fn channel(
    mut master: Tables,
    workers: usize,
    depth: usize,
) -> (UpdateSender, Vec<UpdateReceiver>) {
    master.enable_journal();
    let queues: Vec<_> = (0..workers).map(|_| Arc::new(Ring::new(depth))).collect();
    let consumed: Vec<_> = (0..workers).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let rx = queues
        .iter()
        .zip(&consumed)
        .map(|(q, c)| UpdateReceiver {
            queue: Arc::clone(q),
            consumed: Arc::clone(c),
        })
        .collect();
    let tx = UpdateSender {
        master,
        queues,
        room: 0,
        backlog: VecDeque::new(),
        produced: 0,
        consumed,
    };
    (tx, rx)
}

impl UpdateSender {
    fn room(&self) -> usize {
        self.queues
            .iter()
            .map(|q| q.room())
            .min()
            .unwrap_or(usize::MAX)
    }

    /// Applies `u` to the master copy and queues its writes for every worker. A refused
    /// update changes nothing anywhere. Writes that do not fit the queues wait in a backlog
    /// that every later `send` or [`UpdateSender::flush`] pushes on; watch
    /// [`UpdateSender::backlog`] to slow down when workers fall behind.
    pub fn send(&mut self, u: TableUpdate) -> Result<(), TableError> {
        self.master.apply(&u)?;
        let (backlog, produced) = (&mut self.backlog, &mut self.produced);
        self.master.drain_ops(|op| {
            backlog.push_back(op);
            *produced += 1;
        });
        self.flush();
        Ok(())
    }

    /// The position after every write sent so far. Once [`UpdateSender::applied`] reaches
    /// it, every worker forwards by the tables as they are now: what a DHCP ACK waits for,
    /// so a subscriber's first frame after it never meets a table without its binding.
    pub fn position(&self) -> u64 {
        self.produced
    }

    /// The position every worker has reached: the least of the writes each has taken from
    /// its queue and applied (refused writes included: they are done with). Without
    /// workers, every write is applied.
    pub fn applied(&self) -> u64 {
        self.consumed
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .min()
            .unwrap_or(self.produced)
    }

    /// Starts loading what applying `u` to the master copy will read (see
    /// [`Tables::prefetch_update`]); for a batch, call it for every update before sending.
    pub fn prefetch(&self, u: &TableUpdate) {
        self.master.prefetch_update(u);
    }

    /// Pushes backlogged writes into the queues, as far as every queue has room; returns
    /// the writes still waiting.
    pub fn flush(&mut self) -> usize {
        while let Some(op) = self.backlog.front().copied() {
            if self.room == 0 {
                self.room = self.room();
                if self.room == 0 {
                    break;
                }
            }
            let m = op.encode();
            for q in &self.queues {
                // This is the only producer and room was checked above.
                q.push_known_room(&m);
            }
            self.room -= 1;
            self.backlog.pop_front();
        }
        self.backlog.len()
    }

    /// Writes applied to the master but not yet queued for every worker.
    pub fn backlog(&self) -> usize {
        self.backlog.len()
    }

    /// The master copy: what workers will see once they drained their queues. The slow
    /// path may read it (for example to answer who holds an address).
    pub fn tables(&self) -> &Tables {
        &self.master
    }

    /// Number of workers fed.
    pub fn workers(&self) -> usize {
        self.queues.len()
    }
}

/// What one drain did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Writes replayed.
    pub applied: u64,
    /// Writes that did not fit this worker's layout (configuration error; see
    /// [`Tables::same_layout`]).
    pub refused: u64,
}

impl UpdateReceiver {
    /// Replays at most `max` pending writes onto this worker's tables: call between bursts.
    /// Never blocks or allocates; bounding `max` bounds the pause in forwarding.
    pub fn apply_pending(&self, tables: &mut Tables, max: usize) -> Drained {
        // 256 rather than 64: a worker drains about 190 writes every 64 bursts at the
        // benchmark's 600k updates/s, and one batch exposes the table misses once rather
        // than three times (median drain cost 19.2-19.6 against 20.7-21.5 ns a write,
        // alternating runs of `perf/run table-updates`' configuration).
        const BATCH: usize = 256;
        let mut d = Drained::default();
        let mut left = max;
        while left > 0 {
            // Two reads of a batch in the ring, no copy: the first prefetches the lines the
            // writes store to, the second stores (a decoded copy was a 12 KB array set up on
            // every call, drain or not).
            let n = self
                .queue
                .peek_batch(left.min(BATCH), |m| prefetch_target(tables, m));
            if n == 0 {
                break;
            }
            self.queue.pop_batch(n, |m| {
                match TableOp::decode(m).map(|op| tables.apply_op(&op)) {
                    Some(true) => d.applied += 1,
                    _ => d.refused += 1,
                }
            });
            left -= n;
            // One writer: a plain store, no locked instruction. Release: the sender that
            // sees the count also sees the tables it describes as written.
            let done = self.consumed.load(Ordering::Relaxed) + n as u64;
            self.consumed.store(done, Ordering::Release);
        }
        d
    }

    /// Writes waiting.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }
}

const TAG_SUBSCRIBER: u64 = 1;
const TAG_DOWNSTREAM: u64 = 2;
const TAG_ILM: u64 = 3;
const TAG_HANDOFF: u64 = 4;
const TAG_ISP: u64 = 5;
const TAG_REGISTERED: u64 = 6;
const TAG_DHCP_FILTER: u64 = 7;

/// Starts loading the table line a message's write stores to (stores to missing lines would
/// each wait at commit; loads started together overlap).
#[inline]
fn prefetch_target(tables: &Tables, m: &Message) {
    let bucket = core::iter::once((m[0] >> 32) as u32);
    match m[0] & 0xff {
        TAG_SUBSCRIBER => tables.subscribers.prefetch_buckets(bucket),
        TAG_DOWNSTREAM => tables.downstream.prefetch_buckets(bucket),
        _ => {}
    }
}

fn slot_words<S: IntoBytes + Immutable>(v: &S) -> [u64; 2] {
    let mut b = [0u8; 16];
    let src = v.as_bytes();
    let n = src.len().min(16);
    b[..n].copy_from_slice(&src[..n]);
    let (lo, hi) = b.split_at(8);
    [
        u64::from_le_bytes(lo.try_into().unwrap_or_default()),
        u64::from_le_bytes(hi.try_into().unwrap_or_default()),
    ]
}

fn words_slot<S: FromBytes>(w: [u64; 2]) -> Option<S> {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&w[0].to_le_bytes());
    b[8..].copy_from_slice(&w[1].to_le_bytes());
    S::read_from_bytes(b.get(..core::mem::size_of::<S>())?).ok()
}

fn encode_write<S: IntoBytes + Immutable>(tag: u64, w: &SlotWrite<S>) -> Message {
    let [a, b] = slot_words(&w.value);
    let head = tag
        | (u64::from(w.slot) << 8)
        | (u64::from(w.len_delta as u8) << 16)
        | (u64::from(w.bucket) << 32);
    [head, a, b, 0]
}

fn decode_write<S: FromBytes>(m: &Message) -> Option<SlotWrite<S>> {
    Some(SlotWrite {
        bucket: (m[0] >> 32) as u32,
        slot: (m[0] >> 8) as u8,
        len_delta: (m[0] >> 16) as u8 as i8,
        value: words_slot([m[1], m[2]])?,
    })
}

fn fec_words(f: &Option<Fec>) -> (u64, u64) {
    match f {
        Some(f) => (
            f.next_hop.to_u64() | (u64::from(f.port) << 48),
            u64::from(f.label & 0xf_ffff) | (u64::from(f.tc & 7) << 20) | (1 << 23),
        ),
        None => (0, 0),
    }
}

fn words_fec(addr: u64, label: u64) -> Option<Fec> {
    (label & (1 << 23) != 0).then(|| Fec {
        label: (label & 0xf_ffff) as u32,
        tc: ((label >> 20) & 7) as u8,
        port: (addr >> 48) as u16,
        next_hop: MacAddr::from_u64(addr),
    })
}

impl TableOp {
    /// The op as a ring message: a tag and position word, then the slot's bytes (ISP
    /// entries: gateway, both FECs' next hops and ports, both labels).
    pub fn encode(&self) -> Message {
        match self {
            TableOp::Subscriber(w) => encode_write(TAG_SUBSCRIBER, w),
            TableOp::Downstream(w) => encode_write(TAG_DOWNSTREAM, w),
            TableOp::Ilm(w) => encode_write(TAG_ILM, w),
            TableOp::Handoff(w) => encode_write(TAG_HANDOFF, w),
            TableOp::Registered { index, word } => {
                [TAG_REGISTERED | (u64::from(*index) << 32), *word, 0, 0]
            }
            TableOp::DhcpFilter(f) => [
                TAG_DHCP_FILTER | (u64::from(f.complete) << 8) | (u64::from(f.punts_per_s) << 32),
                0,
                0,
                0,
            ],
            TableOp::Isp { isp, entry } => {
                let (up_addr, up_label) = fec_words(&entry.upstream);
                let (down_addr, down_label) = fec_words(&entry.downstream);
                [
                    TAG_ISP | (u64::from(*isp) << 8) | (u64::from(u32::from(entry.gateway)) << 32),
                    up_addr,
                    down_addr,
                    up_label | (down_label << 32),
                ]
            }
        }
    }

    /// The op of a ring message; `None` for a message no `encode` makes.
    pub fn decode(m: &Message) -> Option<TableOp> {
        Some(match m[0] & 0xff {
            TAG_SUBSCRIBER => TableOp::Subscriber(decode_write(m)?),
            TAG_DOWNSTREAM => TableOp::Downstream(decode_write(m)?),
            TAG_ILM => TableOp::Ilm(decode_write(m)?),
            TAG_HANDOFF => TableOp::Handoff(decode_write(m)?),
            TAG_REGISTERED => TableOp::Registered {
                index: (m[0] >> 32) as u32,
                word: m[1],
            },
            TAG_DHCP_FILTER => TableOp::DhcpFilter(DhcpFilter {
                complete: (m[0] >> 8) & 1 == 1,
                punts_per_s: (m[0] >> 32) as u32,
            }),
            TAG_ISP => TableOp::Isp {
                isp: (m[0] >> 8) as u16,
                entry: IspEntry {
                    upstream: words_fec(m[1], m[3] & 0xffff_ffff),
                    downstream: words_fec(m[2], m[3] >> 32),
                    gateway: Ipv4Addr::from((m[0] >> 32) as u32),
                },
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::handoff::{handoff_key, HandoffSlot};
    use crate::table::{
        Attachment, DownstreamKey, DownstreamSlot, IlmAction, IlmSlot, SubscriberKey,
        SubscriberSlot, SubscriberState,
    };

    #[test]
    fn every_op_round_trips_through_a_message() {
        let mac = MacAddr([2, 0xab, 0xcd, 0xef, 1, 2]);
        let key = SubscriberKey {
            port: 255,
            outer_vid: 4095,
            inner_vid: 1,
            mac,
        }
        .pack()
        .expect("key");
        let at = Attachment::new(3, 4, 5).expect("at");
        let fec = Fec {
            label: 0xf_ffff,
            tc: 7,
            port: 0xffff,
            next_hop: mac,
        };
        let ops = [
            TableOp::Subscriber(SlotWrite {
                bucket: u32::MAX,
                slot: 3,
                len_delta: -1,
                value: SubscriberSlot::new(
                    key,
                    4095,
                    SubscriberState::Bound,
                    Ipv4Addr::new(1, 2, 3, 4),
                ),
            }),
            TableOp::Downstream(SlotWrite {
                bucket: 7,
                slot: 0,
                len_delta: 1,
                value: DownstreamSlot::new(
                    DownstreamKey {
                        isp: 9,
                        ipv4: 0xffff_ffff,
                    },
                    at,
                    mac,
                ),
            }),
            TableOp::Ilm(SlotWrite {
                bucket: 1,
                slot: 2,
                len_delta: 0,
                value: IlmSlot::new(
                    99,
                    IlmAction::PopHandoff {
                        isp: 3,
                        port: 4,
                        vid: 5,
                        router_mac: mac,
                    },
                ),
            }),
            TableOp::Handoff(SlotWrite {
                bucket: 0,
                slot: 1,
                len_delta: 1,
                value: HandoffSlot::new(handoff_key(2, 101).expect("k"), 6),
            }),
            TableOp::Registered {
                index: u32::MAX,
                word: u64::MAX,
            },
            TableOp::DhcpFilter(DhcpFilter {
                complete: true,
                punts_per_s: u32::MAX,
            }),
            TableOp::DhcpFilter(DhcpFilter::default()),
            TableOp::Isp {
                isp: 4095,
                entry: IspEntry {
                    upstream: Some(fec),
                    downstream: None,
                    gateway: Ipv4Addr::new(100, 64, 0, 1),
                },
            },
            TableOp::Isp {
                isp: 0,
                entry: IspEntry {
                    upstream: None,
                    downstream: Some(Fec {
                        label: 16,
                        tc: 0,
                        port: 0,
                        next_hop: MacAddr::ZERO,
                    }),
                    gateway: Ipv4Addr::UNSPECIFIED,
                },
            },
        ];
        for op in ops {
            assert_eq!(TableOp::decode(&op.encode()), Some(op));
        }
        assert_eq!(TableOp::decode(&[0, 1, 2, 3]), None);
        assert_eq!(TableOp::decode(&[99, 1, 2, 3]), None);
    }

    /// The fence a DHCP ACK waits on: reached only once every worker has taken every write
    /// of the binding, however far apart the workers drain.
    #[test]
    fn applied_reaches_the_position_only_when_every_worker_drained() {
        let limits = crate::table::Limits {
            max_subscribers: 64,
            max_isps: 4,
            max_labels: 4,
            max_handoffs: 4,
        };
        let (mut tx, rx) = channel(Tables::new(limits), 2, 64);
        let mut copies = [Tables::new(limits), Tables::new(limits)];
        assert_eq!((tx.position(), tx.applied()), (0, 0));
        let key = SubscriberKey {
            port: 0,
            outer_vid: 0,
            inner_vid: 0,
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
        };
        tx.send(TableUpdate::AddSubscriber { key, isp: 1 })
            .expect("add");
        tx.send(TableUpdate::Bind {
            key,
            addr: Ipv4Addr::new(198, 18, 1, 10),
        })
        .expect("bind");
        let fence = tx.position();
        assert!(fence >= 2, "each update writes at least one slot");
        assert_eq!(tx.applied(), 0);
        rx[0].apply_pending(&mut copies[0], 1);
        rx[1].apply_pending(&mut copies[1], usize::MAX);
        assert_eq!(tx.applied(), 1, "the slower worker holds the fence");
        rx[0].apply_pending(&mut copies[0], usize::MAX);
        assert_eq!(tx.applied(), fence);
        let (_, none) = channel(Tables::new(limits), 0, 64);
        assert!(none.is_empty());
    }
}
