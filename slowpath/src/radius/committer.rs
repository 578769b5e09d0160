//! The usage committer: a thread that makes usage records durable, several answers' worth per
//! transaction, and only then sends the answers that waited for them. The proxy's loop hands
//! batches over and never waits on the disk.

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::thread::JoinHandle;

use tracing::{error, warn};

use super::engine::Listener;
use super::usage::{UsageEvent, UsageStore};

/// Answers to NASes and the records they wait for.
#[derive(Default)]
pub struct Batch {
    pub events: Vec<UsageEvent>,
    pub answers: Vec<(Listener, SocketAddr, Vec<u8>)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty() && self.events.is_empty()
    }
}

/// The committer thread.
pub struct Committer {
    tx: Option<mpsc::Sender<Batch>>,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    /// Starts the thread; it owns the store and sends on clones of the NAS-facing sockets.
    pub fn start(
        mut store: UsageStore,
        auth: UdpSocket,
        acct: UdpSocket,
    ) -> std::io::Result<Committer> {
        let (tx, rx) = mpsc::channel::<Batch>();
        let thread = std::thread::Builder::new()
            .name("radius-usage".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    // Everything queued meanwhile shares the transaction (group commit).
                    let mut batch = first;
                    for b in rx.try_iter() {
                        batch.events.extend(b.events);
                        batch.answers.extend(b.answers);
                    }
                    // Durable before acknowledged: if the commit fails no answer goes out;
                    // the NAS retransmits and the cached answer replays the idempotent
                    // records.
                    if let Err(e) = store.apply_all(&batch.events) {
                        error!(error = %e, records = batch.events.len(), "radius: usage records not committed; NASes not acknowledged");
                        continue;
                    }
                    for (listener, to, data) in batch.answers {
                        let sock = match listener {
                            Listener::Auth => &auth,
                            Listener::Acct => &acct,
                        };
                        if let Err(e) = sock.send_to(&data, to) {
                            warn!(%to, error = %e, "radius: send to NAS failed");
                        }
                    }
                }
            })?;
        Ok(Committer {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands a batch over; false if the thread is gone.
    pub fn submit(&self, batch: Batch) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(batch).is_ok())
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        // Closing the channel lets the thread finish what it holds, then stop.
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
