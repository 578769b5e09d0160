//! Password verification off the slow-path loop: a thread (or a few) with a bounded queue.
//!
//! Why: an Argon2id verification is memory-hard on purpose (tens of milliseconds in a
//! release build), and a wrong password is never cached, so wrong passwords from many MACs
//! each cost one. Run on the loop's thread they stalled every other logon and the ARP
//! answers behind them. The engine now asks for a verification
//! ([`super::Output::Verify`]), parks the message, and goes on with other work; the answer
//! comes back as [`super::Input::Verified`]. The engine bounds how many it has asked for
//! ([`VERIFY_QUEUE`]); beyond, logons are dropped and counted, never queued without end.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::registry::password;

/// Verifications waiting or running at once: the engine's bound, and the pool's queue.
/// At ~30 ms each on one core this is about a second of work, the time a client waits
/// before retransmitting; more would only answer clients that have given up.
pub const VERIFY_QUEUE: usize = 32;

/// A password to check against a stored PHC string.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyRequest {
    /// Which parked message this answers.
    pub ticket: u64,
    /// The stored Argon2 PHC string.
    pub phc: String,
    /// The password presented.
    pub password: Vec<u8>,
}

impl std::fmt::Debug for VerifyRequest {
    // Never print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyRequest")
            .field("ticket", &self.ticket)
            .finish_non_exhaustive()
    }
}

impl VerifyRequest {
    /// Runs the Argon2 verification here (for drivers without a pool, and the pool itself).
    pub fn run(&self) -> bool {
        password::verify(&self.phc, &self.password)
    }
}

/// How a request is checked: Argon2, or a stand-in in tests.
pub type VerifyFn = fn(&VerifyRequest) -> bool;

/// Verification threads fed through a bounded queue.
pub struct VerifierPool {
    jobs: Option<SyncSender<VerifyRequest>>,
    results: Receiver<(u64, bool)>,
    threads: Vec<JoinHandle<()>>,
}

impl VerifierPool {
    /// `threads` threads running Argon2, with room for `queue` requests waiting.
    pub fn spawn(threads: usize, queue: usize) -> std::io::Result<Self> {
        Self::spawn_with(threads, queue, VerifyRequest::run)
    }

    /// As [`VerifierPool::spawn`] with another check (tests: a slow one).
    pub fn spawn_with(threads: usize, queue: usize, verify: VerifyFn) -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::sync_channel::<VerifyRequest>(queue);
        let (done, results) = mpsc::channel();
        let rx = Arc::new(Mutex::new(rx));
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            let done = done.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("ispmux-verify{i}"))
                    .spawn(move || loop {
                        // The lock is held only to take one job, not while verifying.
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        if done.send((job.ticket, verify(&job))).is_err() {
                            return;
                        }
                    })?,
            );
        }
        Ok(VerifierPool {
            jobs: Some(jobs),
            results,
            threads: handles,
        })
    }

    /// Queues a request; gives it back when the queue is full or the threads are gone.
    pub fn submit(&self, r: VerifyRequest) -> Result<(), VerifyRequest> {
        match self.jobs.as_ref() {
            Some(j) => j.try_send(r).map_err(|e| match e {
                TrySendError::Full(r) | TrySendError::Disconnected(r) => r,
            }),
            None => Err(r),
        }
    }

    /// Verifications finished since the last call: (ticket, password valid).
    pub fn completed(&self) -> Vec<(u64, bool)> {
        self.results.try_iter().collect()
    }
}

impl Drop for VerifierPool {
    fn drop(&mut self) {
        // Closing the queue ends the threads once they finish what they hold.
        self.jobs.take();
        for t in self.threads.drain(..) {
            t.join().ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::registry::PasswordCost;

    fn req(ticket: u64, phc: &str, pw: &[u8]) -> VerifyRequest {
        VerifyRequest {
            ticket,
            phc: phc.into(),
            password: pw.to_vec(),
        }
    }

    fn wait(pool: &VerifierPool, n: usize) -> Vec<(u64, bool)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got.len() < n {
            assert!(Instant::now() < deadline, "verifications did not finish");
            got.extend(pool.completed());
            std::thread::sleep(Duration::from_millis(1));
        }
        got.sort();
        got
    }

    #[test]
    fn verifies_off_the_callers_thread() {
        let phc = password::hash(b"s3cret", PasswordCost::TEST).expect("hash");
        let pool = VerifierPool::spawn(2, 4).expect("spawn");
        pool.submit(req(1, &phc, b"s3cret")).expect("queued");
        pool.submit(req(2, &phc, b"guess")).expect("queued");
        assert_eq!(wait(&pool, 2), vec![(1, true), (2, false)]);
    }

    #[test]
    fn a_full_queue_gives_the_request_back() {
        // A verification that never finishes while the test holds the lock: one taken by
        // the thread, one waiting in the queue of one, the third refused.
        static GATE: Mutex<()> = Mutex::new(());
        fn stuck(_: &VerifyRequest) -> bool {
            drop(GATE.lock());
            true
        }
        let held = GATE.lock().expect("gate");
        let pool = VerifierPool::spawn_with(1, 1, stuck).expect("spawn");
        pool.submit(req(1, "", b"")).expect("taken by the thread");
        let deadline = Instant::now() + Duration::from_secs(5);
        // Until the thread has taken the first, the queue holds it.
        while pool.submit(req(2, "", b"")).is_err() {
            assert!(Instant::now() < deadline, "thread never took a job");
            std::thread::sleep(Duration::from_millis(1));
        }
        let back = pool.submit(req(3, "", b"")).expect_err("full");
        assert_eq!(back.ticket, 3);
        drop(held);
        assert_eq!(wait(&pool, 2), vec![(1, true), (2, true)]);
    }
}
