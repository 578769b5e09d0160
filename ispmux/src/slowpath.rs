//! The slow-path thread: takes what the workers punt (DHCP, ARP, packets for the gateway),
//! runs the protocol engines on it, hands frames to send to the inject ring and changes the
//! fast-path tables through the one update sender.
//!
//! It may block and allocate (it is not a worker); it sleeps briefly when there is nothing
//! to do. Its counters sit behind a mutex that the control socket reads.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ispmux_dataplane::table::updates::UpdateSender;
use ispmux_dataplane::table::{IspId, SubscriberKey};
use ispmux_dataplane::TableUpdate;
use ispmux_slowpath::dhcp::service::{Effects, Inject, LogonService};
use ispmux_slowpath::dhcp::BindingChange;
use ispmux_sys::{Burst, Mempool, Ring};

/// What the slow path saw, for the exit report and the control socket.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct SlowPathStats {
    /// Frames taken from the punt ring.
    pub punted: u64,
    /// Of those, ARP.
    pub arp: u64,
    /// ARP requests answered (hand-off and core ports).
    pub arp_replies: u64,
    /// Of those, DHCP (UDP to port 67).
    pub dhcp: u64,
    /// Of those, anything else (counted and freed).
    pub other: u64,
    /// Frames handed to the inject ring.
    pub injected: u64,
    /// Frames to inject dropped: the backlog in front of the inject ring was full.
    pub inject_drops: u64,
    /// Frames waiting for room in the inject ring (now).
    pub inject_backlog: u64,
    /// Bindings installed in the fast path (logons, renewals, restored at start).
    pub bindings_installed: u64,
    /// Bindings removed (release, decline, expiry, revocation).
    pub bindings_removed: u64,
    /// Table updates the tables refused (full, unknown ISP): logged.
    pub update_errors: u64,
}

/// Punted frames taken per turn at most.
const PUNT_BURST: usize = 64;
/// How long the slow path waits between turns once the punt ring is drained: a DHCP
/// message waits at most this long at each hop through the slow path.
const IDLE_WAIT: Duration = Duration::from_micros(200);

/// Slots of the inject ring (run.rs creates it with this size).
pub const INJECT_RING_SLOTS: u32 = 1024;

/// Frames held for the inject ring at most. A group commit releases all its replies at
/// once, and after a slow fsync that is more than the ring holds: they wait here (as bytes,
/// not mbufs, so the receive side never runs short of buffers) instead of being dropped.
const INJECT_BACKLOG_MAX: usize = 65_536;

/// The slow path's own resources.
pub struct SlowPath {
    /// Punted frames from every worker.
    pub punt: Arc<Ring>,
    /// Frames to send, each with its output port index in the mbuf's port field; the first
    /// worker transmits them.
    pub inject: Arc<Ring>,
    /// Where frames to inject are allocated.
    pub pool: Arc<Mempool>,
    /// The only writer of the fast-path tables (node pipelines only).
    pub updates: Option<UpdateSender>,
    /// The DHCP logon proxy, when configured.
    pub dhcp: Option<LogonService>,
    /// ISP ids of the tables by name (bindings name their ISP).
    pub isp_ids: HashMap<String, IspId>,
    /// Configuration port index by DPDK port id (mbufs carry the DPDK id).
    pub port_index: HashMap<u16, u16>,
    /// Counters, shared with the control socket.
    pub stats: Arc<Mutex<SlowPathStats>>,
    /// ARP answered on hand-off and core ports.
    pub arp: crate::arp_responder::ArpResponder,
    /// Subscribers removed or suspended by the operator: their bindings are withdrawn.
    pub revoke: std::sync::mpsc::Receiver<ispmux_slowpath::dhcp::MacAddr>,
    /// Frames waiting for room in the inject ring, oldest first.
    pub backlog: VecDeque<Inject>,
}

impl SlowPath {
    /// Carries out effects produced before the thread starts (bindings restored from the
    /// store), so workers see them from their first maintenance round.
    pub fn apply_now(&mut self, fx: Effects) {
        let mut st = SlowPathStats::default();
        self.apply(fx, &mut st);
        self.publish(&st);
    }

    /// Runs the slow path on its own thread until `stop` is set.
    pub fn spawn(self, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("ispmux-slowpath".into())
            .spawn(move || self.run(&stop))
    }

    fn run(mut self, stop: &AtomicBool) {
        let mut st = self.stats.lock().map(|s| *s).unwrap_or_default();
        let mut b = Burst::new();
        while !stop.load(Ordering::Relaxed) {
            let now = ispmux_slowpath::time::Now::system();
            let n = self.punt.dequeue_burst(&mut b, PUNT_BURST);
            let mut arp_replies = Vec::new();
            for m in b.drain() {
                st.punted += 1;
                match classify(m.data()) {
                    Punted::Arp => {
                        st.arp += 1;
                        let port = self.port_index.get(&m.port()).copied();
                        if let Some(reply) = port.and_then(|p| self.arp.answer(p, m.data())) {
                            arp_replies.push(Inject {
                                port: port.unwrap_or(0),
                                frame: reply,
                            });
                        }
                    }
                    Punted::Dhcp => {
                        st.dhcp += 1;
                        let port = self.port_index.get(&m.port()).copied();
                        if let (Some(svc), Some(port)) = (self.dhcp.as_mut(), port) {
                            svc.punt(now, port, m.data());
                        }
                    }
                    Punted::Other => {
                        st.other += 1;
                        tracing::debug!(frame = ?&m.data()[..m.data().len().min(64)], "punted frame no engine takes");
                    }
                }
            }
            if !arp_replies.is_empty() {
                st.arp_replies += arp_replies.len() as u64;
                let fx = Effects {
                    inject: arp_replies,
                    bindings: Vec::new(),
                };
                self.apply(fx, &mut st);
            }
            if let Some(svc) = self.dhcp.as_mut() {
                while let Ok(mac) = self.revoke.try_recv() {
                    tracing::info!(%mac, "revoking the subscriber's binding");
                    svc.revoke(now, mac);
                }
                if let Err(e) = svc.poll_isp(now) {
                    tracing::warn!(error = %e, "dhcp: ISP-side socket");
                }
                if svc.next_deadline().is_some_and(|d| d <= now.mono) {
                    svc.tick(now);
                }
                let fx = svc.flush();
                self.apply(fx, &mut st);
            }
            if !self.backlog.is_empty() {
                self.drain_backlog(&mut st);
            }
            self.publish(&st);
            if n < PUNT_BURST {
                // The punt ring is drained: wait, the workers never do. Waiting also after a
                // partial burst, not only an empty one, lets punts and server replies gather
                // between turns: under a logon storm each turn then carries many messages
                // instead of one, and the per-turn costs (socket polls that find nothing,
                // the commit hand-off, publishing counters) stop dominating (dhcp-logon).
                std::thread::sleep(IDLE_WAIT);
            }
        }
        if let Some(svc) = self.dhcp.as_mut() {
            // Commit what is pending so no acknowledged binding is lost.
            let fx = svc.drain();
            self.apply(fx, &mut st);
        }
        self.publish(&st);
    }

    fn publish(&self, st: &SlowPathStats) {
        if let Ok(mut s) = self.stats.lock() {
            *s = *st;
        }
    }

    /// Moves what the inject ring has room for from the backlog into it, in order.
    fn drain_backlog(&mut self, st: &mut SlowPathStats) {
        // The slow path is the ring's only producer: its room can only grow meanwhile.
        let mut room = (INJECT_RING_SLOTS - 1).saturating_sub(self.inject.count()) as usize;
        let mut out = Burst::new();
        while room > 0 && !self.backlog.is_empty() {
            while room > 0 && !out.is_full() {
                let Some(inj) = self.backlog.front() else {
                    break;
                };
                // No mbuf free now: leave the rest for the next turn.
                let Some(mut m) = self.pool.alloc_from(&inj.frame) else {
                    room = 0;
                    break;
                };
                m.set_port(inj.port);
                if out.push(m).is_err() {
                    break;
                }
                self.backlog.pop_front();
                room -= 1;
            }
            st.injected += self.inject.enqueue_burst(&mut out) as u64;
            st.inject_drops += out.clear() as u64;
        }
        st.inject_backlog = self.backlog.len() as u64;
    }

    /// Frames to the inject ring, bindings to table updates, in the engine's order.
    fn apply(&mut self, fx: Effects, st: &mut SlowPathStats) {
        for inj in fx.inject {
            if self.backlog.len() >= INJECT_BACKLOG_MAX {
                st.inject_drops += 1;
            } else {
                self.backlog.push_back(inj);
            }
        }
        self.drain_backlog(st);

        for change in fx.bindings {
            let (b, install) = match change {
                BindingChange::Install(b) => (b, true),
                BindingChange::Remove(b) => (b, false),
            };
            let key = SubscriberKey {
                port: b.port,
                outer_vid: b.vlan,
                inner_vid: b.inner_vlan,
                mac: b.mac,
            };
            let updates = match (install, self.isp_ids.get(&b.isp)) {
                (true, Some(&isp)) => vec![
                    TableUpdate::AddSubscriber { key, isp },
                    TableUpdate::Bind { key, addr: b.ipv4 },
                ],
                (true, None) => {
                    tracing::warn!(isp = %b.isp, "dhcp: binding for an ISP without tables");
                    st.update_errors += 1;
                    continue;
                }
                (false, _) => vec![TableUpdate::Unbind { key }],
            };
            let Some(tx) = self.updates.as_mut() else {
                continue;
            };
            for u in updates {
                if let Err(e) = tx.send(u) {
                    tracing::warn!(update = ?u, error = %e, "table update refused");
                    st.update_errors += 1;
                }
            }
            if install {
                st.bindings_installed += 1;
                // Debug, not info: one line per logon is thousands of writes a second in a
                // logon storm; the counters and `ispmux subscriber list` show bindings.
                tracing::debug!(mac = %key.mac, isp = %b.isp, ipv4 = %b.ipv4, port = b.port, vlan = b.vlan, "binding installed");
            } else {
                st.bindings_removed += 1;
                tracing::debug!(mac = %key.mac, isp = %b.isp, ipv4 = %b.ipv4, "binding removed");
            }
        }
        if let Some(tx) = self.updates.as_mut() {
            tx.flush();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn udp_frame(tags: &[[u8; 4]], dport: u16) -> Vec<u8> {
        let mut f = vec![0xff; 12];
        for t in tags {
            f.extend_from_slice(t);
        }
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]);
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&[0, 68]);
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&[0, 8, 0, 0]);
        f
    }

    #[test]
    fn classify_finds_dhcp_under_vlan_tags() {
        assert!(matches!(classify(&udp_frame(&[], 67)), Punted::Dhcp));
        assert!(matches!(
            classify(&udp_frame(&[[0x88, 0xa8, 0, 10], [0x81, 0, 0, 20]], 67)),
            Punted::Dhcp
        ));
        assert!(matches!(classify(&udp_frame(&[], 53)), Punted::Other));
        let mut arp = vec![0xff; 12];
        arp.extend_from_slice(&[0x08, 0x06]);
        assert!(matches!(classify(&arp), Punted::Arp));
        assert!(matches!(classify(&[0x08]), Punted::Other));
    }
}
