//! The slow-path thread: takes what the workers punt (DHCP, ARP, packets for the gateway),
//! runs the protocol engines on it, sends through its own transmit queue on every port (the
//! inject path) and changes the fast-path tables through the one update sender.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ispmux_dataplane::table::updates::UpdateSender;
use ispmux_sys::{Burst, Mempool, Ring};

/// What the slow path saw, for the exit report and the control socket.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct SlowPathStats {
    /// Frames taken from the punt ring.
    pub punted: u64,
    /// Of those, ARP.
    pub arp: u64,
    /// Of those, DHCP (UDP to port 67).
    pub dhcp: u64,
    /// Of those, anything else (counted and freed).
    pub other: u64,
}

/// The slow path's own resources.
// The inject ring, the pool and the update sender are the DHCP logon engine's outputs (wired in
// with it); until then they are held so no worker can use the slow path's queue.
#[allow(dead_code)]
pub struct SlowPath {
    /// Punted frames from every worker.
    pub punt: Arc<Ring>,
    /// Frames to send, each with its output port in the mbuf's port field; the first
    /// worker transmits them.
    pub inject: Arc<Ring>,
    /// Where frames to inject are allocated.
    pub pool: Arc<Mempool>,
    /// The only writer of the fast-path tables (node pipelines only).
    pub updates: Option<UpdateSender>,
}

impl SlowPath {
    /// Runs the slow path on its own thread until `stop` is set.
    pub fn spawn(self, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<SlowPathStats>> {
        std::thread::Builder::new()
            .name("ispmux-slowpath".into())
            .spawn(move || self.run(&stop))
    }

    fn run(self, stop: &AtomicBool) -> SlowPathStats {
        let mut stats = SlowPathStats::default();
        let mut b = Burst::new();
        while !stop.load(Ordering::Relaxed) {
            let n = self.punt.dequeue_burst(&mut b, 64);
            if n == 0 {
                // Nothing punted: the slow path may wait; the workers never do.
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
            for m in b.drain() {
                stats.punted += 1;
                match classify(m.data()) {
                    Punted::Arp => stats.arp += 1,
                    Punted::Dhcp => stats.dhcp += 1,
                    Punted::Other => stats.other += 1,
                }
            }
        }
        stats
    }
}

enum Punted {
    Arp,
    Dhcp,
    Other,
}

/// Sorts a punted frame by what it carries, under up to two VLAN tags.
fn classify(f: &[u8]) -> Punted {
    let mut off = 12;
    let mut ethertype = [f.get(12).copied(), f.get(13).copied()];
    while matches!(
        ethertype,
        [Some(0x81), Some(0x00)] | [Some(0x88), Some(0xa8)]
    ) && off < 20
    {
        off += 4;
        ethertype = [f.get(off).copied(), f.get(off + 1).copied()];
    }
    match ethertype {
        [Some(0x08), Some(0x06)] => Punted::Arp,
        [Some(0x08), Some(0x00)] => {
            let ip = &f[(off + 2).min(f.len())..];
            let ihl = usize::from(ip.first().map_or(0, |b| b & 0x0f)) * 4;
            let dport = ip.get(ihl + 2..ihl + 4);
            if ip.get(9) == Some(&17) && dport == Some(&[0, 67][..]) {
                Punted::Dhcp
            } else {
                Punted::Other
            }
        }
        _ => Punted::Other,
    }
}
