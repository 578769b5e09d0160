//! A store writer thread: commits the engine's store writes off the packet path.
//!
//! A durable commit costs an fsync (about a millisecond on the disks measured); done inline,
//! it caps logons near one thousand a second and stalls the punt path while it waits. The
//! writer commits in its own thread, merging whatever batches queued up meanwhile into one
//! transaction (group commit; if that fails, each batch is retried alone so one bad write
//! does not sink the others), and reports each batch done; the service holds back that
//! batch's installs and replies until then, so durability still comes first.

use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;

use super::engine::StoreWrite;
use crate::registry::{Registry, RegistryError};

/// A batch's outcome: its id and whether it is durable.
pub type Done = (u64, bool);

/// The writer thread's handle.
pub struct StoreWriter {
    tx: Option<Sender<(u64, Vec<StoreWrite>)>>,
    done: Receiver<Done>,
    next_id: u64,
    thread: Option<JoinHandle<()>>,
}

impl StoreWriter {
    /// Opens its own connection to the registry at `path` and starts the thread.
    pub fn spawn(path: &Path) -> Result<StoreWriter, RegistryError> {
        let mut reg = Registry::open(path)?;
        let (tx, rx) = mpsc::channel::<(u64, Vec<StoreWrite>)>();
        let (done_tx, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("ispmux-dhcp-store".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batches = vec![first];
                    while let Ok(more) = rx.try_recv() {
                        batches.push(more);
                    }
                    let all = reg.apply_all(batches.iter().flat_map(|(_, w)| w.iter()));
                    let outcomes: Vec<Done> = match all {
                        Ok(()) => batches.iter().map(|(id, _)| (*id, true)).collect(),
                        // One bad batch must not sink the others merged with it: retry each.
                        Err(e) => {
                            tracing::error!(error = %e, "dhcp: group commit failed; retrying batches one by one");
                            batches
                                .iter()
                                .map(|(id, w)| (*id, reg.apply_all(w.iter()).is_ok()))
                                .collect()
                        }
                    };
                    for d in outcomes {
                        if done_tx.send(d).is_err() {
                            return;
                        }
                    }
                }
            })
            .map_err(|e| RegistryError::Invalid {
                field: "store writer thread",
                message: e.to_string(),
            })?;
        Ok(StoreWriter {
            tx: Some(tx),
            done,
            next_id: 1,
            thread: Some(thread),
        })
    }

    /// Queues a batch; returns its id (ids increase by one), or `None` if the thread died.
    pub fn submit(&mut self, writes: Vec<StoreWrite>) -> Option<u64> {
        let id = self.next_id;
        self.tx.as_ref()?.send((id, writes)).ok()?;
        self.next_id += 1;
        Some(id)
    }

    /// The id the next batch will get (batches below it have been submitted).
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Outcomes reported since the last call, without waiting.
    pub fn completed(&mut self) -> Vec<Done> {
        let mut v = Vec::new();
        loop {
            match self.done.try_recv() {
                Ok(d) => v.push(d),
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => return v,
            }
        }
    }

    /// Waits for the next outcome (tests, shutdown).
    pub fn wait(&mut self) -> Option<Done> {
        self.done.recv().ok()
    }
}

impl Drop for StoreWriter {
    fn drop(&mut self) {
        // Closing the channel ends the thread after it has committed what was queued.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("dhcp: store writer thread panicked");
            }
        }
    }
}
