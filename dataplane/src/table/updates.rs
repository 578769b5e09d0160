//! Broadcast of [`TableUpdate`]s from the slow path to every worker's table copy.
//!
//! One bounded lock-free queue per worker (crossbeam's `ArrayQueue`: preallocated ring, no
//! allocation or lock on push or pop). [`UpdateSender`] is the single producer: it is not
//! `Clone`, and `send` takes `&mut self`, so several slow-path engines share it behind their
//! own mutex (the slow path may lock; the workers never do).

use super::{TableError, TableUpdate, Tables};
use crossbeam::queue::ArrayQueue;
use std::sync::Arc;

/// Some worker's queue has no room; nothing was sent. Retry after the workers drain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("update queue full")]
pub struct QueueFull(pub TableUpdate);

/// The slow path's end: broadcasts each update to every worker, all or none.
pub struct UpdateSender {
    queues: Vec<Arc<ArrayQueue<TableUpdate>>>,
    /// Room known to be free in every queue. Reading a queue's length touches cache lines
    /// the worker writes, so it is re-read only when this runs out.
    room: usize,
}

/// One worker's end.
pub struct UpdateReceiver {
    queue: Arc<ArrayQueue<TableUpdate>>,
}

/// Queues for `workers` workers, each holding up to `depth` pending updates.
pub fn channel(workers: usize, depth: usize) -> (UpdateSender, Vec<UpdateReceiver>) {
    let queues: Vec<_> = (0..workers)
        .map(|_| Arc::new(ArrayQueue::new(depth.max(1))))
        .collect();
    let rx = queues
        .iter()
        .map(|q| UpdateReceiver {
            queue: Arc::clone(q),
        })
        .collect();
    (UpdateSender { queues, room: 0 }, rx)
}

impl UpdateSender {
    /// Updates every queue can still take: room is only ever freed by the workers, so a
    /// check here guarantees the pushes below succeed.
    pub fn room(&self) -> usize {
        self.queues
            .iter()
            .map(|q| q.capacity() - q.len())
            .min()
            .unwrap_or(usize::MAX)
    }

    /// Sends `u` to every worker, or to none when any queue is full.
    pub fn send(&mut self, u: TableUpdate) -> Result<(), QueueFull> {
        if self.room == 0 {
            self.room = self.room();
            if self.room == 0 {
                return Err(QueueFull(u));
            }
        }
        for q in &self.queues {
            // Cannot fail: this is the only producer and room was checked above.
            let _ = q.push(u);
        }
        self.room -= 1;
        Ok(())
    }

    /// Number of workers fed.
    pub fn workers(&self) -> usize {
        self.queues.len()
    }
}

/// What one drain did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Updates applied.
    pub applied: u64,
    /// Updates refused by the tables (each changed nothing).
    pub refused: u64,
    /// The last refusal, for the worker to report.
    pub last_error: Option<TableError>,
}

impl UpdateReceiver {
    /// Applies at most `max` pending updates to this worker's tables: call between bursts.
    /// Never blocks or allocates; bounding `max` bounds the pause in forwarding.
    pub fn apply_pending(&self, tables: &mut Tables, max: usize) -> Drained {
        let mut d = Drained::default();
        for _ in 0..max {
            let Some(u) = self.queue.pop() else { break };
            match tables.apply(&u) {
                Ok(()) => d.applied += 1,
                Err(e) => {
                    d.refused += 1;
                    d.last_error = Some(e);
                }
            }
        }
        d
    }

    /// Updates waiting.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }
}
