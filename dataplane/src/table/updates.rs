//! Carrying [`TableUpdate`]s from the slow path to every worker's table copy.
//!
//! The slow path owns a master copy of the tables. [`UpdateSender::send`] applies an update
//! to it (refusals are reported right there, synchronously) and records the physical slot
//! writes it made; those writes ([`TableOp`]s) are broadcast into one bounded lock-free
//! queue per worker (crossbeam's `ArrayQueue`: preallocated ring, no lock or allocation on
//! push or pop). A worker replays them between bursts ([`UpdateReceiver::apply_pending`]).
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

use super::{TableError, TableOp, TableUpdate, Tables};
use crossbeam::queue::ArrayQueue;
use std::collections::VecDeque;
use std::sync::Arc;

/// The slow path's end: the master copy and the queues to every worker.
///
/// The single producer: not `Clone`, and `send` takes `&mut self`, so several slow-path
/// engines share it behind their own mutex (the slow path may lock; the workers never do).
pub struct UpdateSender {
    master: Tables,
    queues: Vec<Arc<ArrayQueue<TableOp>>>,
    /// Room known to be free in every queue. Reading a queue's length touches cache lines
    /// the worker writes, so it is re-read only when this runs out.
    room: usize,
    /// Writes applied to the master but not yet in every queue.
    backlog: VecDeque<TableOp>,
}

/// One worker's end.
pub struct UpdateReceiver {
    queue: Arc<ArrayQueue<TableOp>>,
}

/// Queues for `workers` workers, each holding up to `depth` pending writes, fed from
/// `master`, which must have the layout of every worker's tables (same preload and limits).
pub fn channel(
    mut master: Tables,
    workers: usize,
    depth: usize,
) -> (UpdateSender, Vec<UpdateReceiver>) {
    master.enable_journal();
    let queues: Vec<_> = (0..workers)
        .map(|_| Arc::new(ArrayQueue::new(depth.max(1))))
        .collect();
    let rx = queues
        .iter()
        .map(|q| UpdateReceiver {
            queue: Arc::clone(q),
        })
        .collect();
    let tx = UpdateSender {
        master,
        queues,
        room: 0,
        backlog: VecDeque::new(),
    };
    (tx, rx)
}

impl UpdateSender {
    fn room(&self) -> usize {
        self.queues
            .iter()
            .map(|q| q.capacity() - q.len())
            .min()
            .unwrap_or(usize::MAX)
    }

    /// Applies `u` to the master copy and queues its writes for every worker. A refused
    /// update changes nothing anywhere. Writes that do not fit the queues wait in a backlog
    /// that every later `send` or [`UpdateSender::flush`] pushes on; watch
    /// [`UpdateSender::backlog`] to slow down when workers fall behind.
    pub fn send(&mut self, u: TableUpdate) -> Result<(), TableError> {
        self.master.apply(&u)?;
        let backlog = &mut self.backlog;
        self.master.drain_ops(|op| backlog.push_back(op));
        self.flush();
        Ok(())
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
            for q in &self.queues {
                // Cannot fail: this is the only producer and room was checked above.
                let _ = q.push(op);
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
        let mut d = Drained::default();
        for _ in 0..max {
            let Some(op) = self.queue.pop() else { break };
            if tables.apply_op(&op) {
                d.applied += 1;
            } else {
                d.refused += 1;
            }
        }
        d
    }

    /// Writes waiting.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }
}
