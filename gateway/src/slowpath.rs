//! The slow-path thread: takes what the workers punt, lets [`ispmux_slowpath::punt`] sort
//! it and answer ARP, runs the logon engine on DHCP, hands frames to send to the inject
//! ring and changes the fast-path tables through the one update sender.
//!
//! It may block and allocate (it is not a worker); it sleeps briefly when there is nothing
//! to do. Its counters sit behind a mutex that the control side reads.
//!
//! A reply that follows a binding (a DHCP ACK) waits until every worker has applied the
//! binding's table writes ([`UpdateSender::applied`]): sent earlier, the subscriber's first
//! frame after it could meet a worker that does not know it yet and be dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use ispmux_dataplane::table::updates::UpdateSender;
use ispmux_dataplane::table::IspId;
use ispmux_slowpath::dhcp::service::{Effects, Inject, LogonService};
use ispmux_slowpath::dhcp::{BindingChange, MacAddr};
use ispmux_slowpath::punt::{self, ArpResponder, Punted};
use ispmux_sys::{Burst, Mempool, Ring};
use serde::{Deserialize, Serialize};

/// What the slow path saw, for the exit report and the control socket.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Frames waiting for room in the inject ring, or for the workers to apply the
    /// bindings they follow (now).
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

/// Slots of the inject ring.
pub const INJECT_RING_SLOTS: u32 = 1024;

/// Frames held for the inject ring at most. A group commit releases all its replies at
/// once, and after a slow fsync that is more than the ring holds: they wait here (as bytes,
/// not mbufs, so the receive side never runs short of buffers) instead of being dropped.
const INJECT_BACKLOG_MAX: usize = 65_536;

/// A frame to inject once every worker has reached `fence` in its update queue.
struct Held {
    fence: u64,
    inject: Inject,
}

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
    /// Counters, shared with the control side.
    pub stats: Arc<Mutex<SlowPathStats>>,
    /// ARP answered on hand-off and core ports.
    pub arp: ArpResponder,
    /// Subscribers removed or suspended by the operator: their bindings are withdrawn.
    pub revoke: mpsc::Receiver<MacAddr>,
}

/// The slow path once built: the backlog in front of the inject ring is its own.
struct Running {
    sp: SlowPath,
    backlog: VecDeque<Held>,
    updates_buf: Vec<ispmux_dataplane::TableUpdate>,
}

impl SlowPath {
    /// Runs the slow path on its own thread until `stop` is set; `restored` bindings were
    /// put in the tables at start and count as installed.
    pub fn spawn(self, restored: u64, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
        let r = Running {
            sp: self,
            backlog: VecDeque::new(),
            updates_buf: Vec::new(),
        };
        let st = SlowPathStats {
            bindings_installed: restored,
            ..SlowPathStats::default()
        };
        r.publish(&st);
        std::thread::Builder::new()
            .name("ispmux-slowpath".into())
            .spawn(move || r.run(&stop, st))
    }
}

impl Running {
    fn run(mut self, stop: &AtomicBool, mut st: SlowPathStats) {
        let mut b = Burst::new();
        while !stop.load(Ordering::Relaxed) {
            let now = SystemTime::now();
            let n = self.sp.punt.dequeue_burst(&mut b, PUNT_BURST);
            let mut arp_replies = Vec::new();
            for m in b.drain() {
                st.punted += 1;
                let port = self.sp.port_index.get(&m.port()).copied();
                match punt::classify(m.data()) {
                    Punted::Arp => {
                        st.arp += 1;
                        if let Some((port, frame)) =
                            port.and_then(|p| Some((p, self.sp.arp.answer(p, m.data())?)))
                        {
                            arp_replies.push(Inject { port, frame });
                        }
                    }
                    Punted::Dhcp => {
                        st.dhcp += 1;
                        if let (Some(svc), Some(port)) = (self.sp.dhcp.as_mut(), port) {
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
            if let Some(svc) = self.sp.dhcp.as_mut() {
                while let Ok(mac) = self.sp.revoke.try_recv() {
                    tracing::info!(%mac, "revoking the subscriber's binding");
                    svc.revoke(now, mac);
                }
                if let Err(e) = svc.poll_isp(now) {
                    tracing::warn!(error = %e, "dhcp: ISP-side socket");
                }
                if svc.next_deadline().is_some_and(|d| d <= now) {
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
        if let Some(svc) = self.sp.dhcp.as_mut() {
            // Commit what is pending so no acknowledged binding is lost.
            let fx = svc.drain();
            self.apply(fx, &mut st);
        }
        self.publish(&st);
    }

    fn publish(&self, st: &SlowPathStats) {
        if let Ok(mut s) = self.sp.stats.lock() {
            *s = *st;
        }
    }

    /// Moves what may go from the backlog into the inject ring, in order: as much as the
    /// ring has room for, and only frames whose bindings every worker has applied.
    fn drain_backlog(&mut self, st: &mut SlowPathStats) {
        let applied = self.sp.updates.as_ref().map_or(u64::MAX, |u| u.applied());
        // The slow path is the ring's only producer: its room can only grow meanwhile.
        let mut room = (INJECT_RING_SLOTS - 1).saturating_sub(self.sp.inject.count()) as usize;
        let mut out = Burst::new();
        while room > 0 && !self.backlog.is_empty() {
            while room > 0 && !out.is_full() {
                let Some(h) = self.backlog.front().filter(|h| h.fence <= applied) else {
                    room = 0;
                    break;
                };
                // No mbuf free now: leave the rest for the next turn.
                let Some(mut m) = self.sp.pool.alloc_from(&h.inject.frame) else {
                    room = 0;
                    break;
                };
                m.set_port(h.inject.port);
                if out.push(m).is_err() {
                    break;
                }
                self.backlog.pop_front();
                room -= 1;
            }
            st.injected += self.sp.inject.enqueue_burst(&mut out) as u64;
            st.inject_drops += out.clear() as u64;
        }
        st.inject_backlog = self.backlog.len() as u64;
    }

    /// Bindings to table updates, then frames to the inject ring behind them: the frames of
    /// an effects batch that changed bindings wait for the workers to apply the changes.
    fn apply(&mut self, fx: Effects, st: &mut SlowPathStats) {
        for change in &fx.bindings {
            self.apply_binding(change, st);
        }
        if let Some(tx) = self.sp.updates.as_mut() {
            tx.flush();
        }
        let fence = match &self.sp.updates {
            Some(u) if !fx.bindings.is_empty() => u.position(),
            _ => 0,
        };
        for inject in fx.inject {
            if self.backlog.len() >= INJECT_BACKLOG_MAX {
                st.inject_drops += 1;
            } else {
                self.backlog.push_back(Held { fence, inject });
            }
        }
        self.drain_backlog(st);
    }

    fn apply_binding(&mut self, change: &BindingChange, st: &mut SlowPathStats) {
        self.updates_buf.clear();
        if let Err(e) = punt::binding_updates(change, &self.sp.isp_ids, &mut self.updates_buf) {
            tracing::warn!(error = %e, "dhcp: binding not installed");
            st.update_errors += 1;
            return;
        }
        if let Some(tx) = self.sp.updates.as_mut() {
            for u in &self.updates_buf {
                if let Err(e) = tx.send(*u) {
                    tracing::warn!(update = ?u, error = %e, "table update refused");
                    st.update_errors += 1;
                }
            }
        }
        // Debug, not info: one line per logon is thousands of writes a second in a logon
        // storm; the counters and `ispmux subscriber list` show bindings.
        match change {
            BindingChange::Install(b) => {
                st.bindings_installed += 1;
                tracing::debug!(mac = %b.mac, isp = %b.isp, ipv4 = %b.ipv4, port = b.port, vlan = b.vlan, "binding installed");
            }
            BindingChange::Remove(b) => {
                st.bindings_removed += 1;
                tracing::debug!(mac = %b.mac, isp = %b.isp, ipv4 = %b.ipv4, "binding removed");
            }
        }
    }
}
