//! A load generator for the update channel (`[dataplane] bench_updates_per_s`, used by
//! `perf/run table-updates`): adds, binds and removes subscribers that no traffic uses,
//! at a fixed rate, while the workers forward; reports what it achieved when stopped.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ispmux_dataplane::table::updates::UpdateSender;
use ispmux_dataplane::table::{SubscriberKey, TableUpdate};
use ispmux_dataplane::wire::MacAddr;

use crate::report::UpdateGenReport;

/// Distinct subscribers the generator cycles through; their MACs (06:…, locally
/// administered) never collide with synthetic subscribers (02:…). The table needs this much
/// room beyond its preload.
pub const KEYS: u32 = 4096;

/// Steps (three updates each) applied per batch at most.
const BATCH: u32 = 512;
/// The shortest sleep between batches.
const MIN_SLEEP: Duration = Duration::from_micros(200);

/// Starts the generator on its own thread; it owns the sender until `stop` is set.
pub fn spawn(
    mut tx: UpdateSender,
    per_s: u32,
    isp: u16,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<UpdateGenReport>> {
    std::thread::Builder::new()
        .name("ispmux-updategen".into())
        .spawn(move || {
            let started = Instant::now();
            let (mut sent, mut refused) = (0u64, 0u64);
            let mut i = 0u32;
            // Each step is three updates: add, bind, remove one subscriber.
            let step = Duration::from_secs_f64(3.0 / f64::from(per_s.max(1)));
            let mut next = started;
            let key = |i: u32| SubscriberKey {
                port: 0,
                outer_vid: 0,
                inner_vid: 0,
                mac: MacAddr::from_u64(0x0600_0000_0000 | u64::from(i % KEYS)),
            };
            while !stop.load(Ordering::Relaxed) {
                // The steps due now, at most a batch: their subscribers' buckets are
                // prefetched together, then applied, as a slow path with a batch of bindings
                // would (one miss after another made the generator the busiest thread on
                // its core, and on this 2-vCPU machine work on one vCPU slows the other).
                let now = Instant::now();
                let due = if next <= now {
                    ((now - next).as_secs_f64() / step.as_secs_f64()) as u32 + 1
                } else {
                    0
                };
                let n = due.min(BATCH);
                for j in 0..n {
                    tx.prefetch(&TableUpdate::AddSubscriber {
                        key: key(i.wrapping_add(j)),
                        isp,
                    });
                }
                for _ in 0..n {
                    let key = key(i);
                    let addr = Ipv4Addr::from(0xac10_0000 | (i % KEYS));
                    for u in [
                        TableUpdate::AddSubscriber { key, isp },
                        TableUpdate::Bind { key, addr },
                        TableUpdate::RemoveSubscriber { key },
                    ] {
                        match tx.send(u) {
                            Ok(()) => sent += 1,
                            Err(_) => refused += 1,
                        }
                    }
                    i = i.wrapping_add(1);
                    next += step;
                }
                tx.flush();
                // Sleep at least a little: a wake-up per few steps cost a third of the
                // generator's time in the scheduler; the steps missed are caught up in the
                // next batch.
                if let Some(d) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d.max(MIN_SLEEP));
                }
            }
            UpdateGenReport {
                sent,
                refused,
                backlog: tx.backlog(),
                seconds: started.elapsed().as_secs_f64(),
            }
        })
}
