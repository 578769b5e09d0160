//! The slow-path thread: takes what the workers punt, lets [`ispmux_slowpath::punt`] sort
//! it and answer ARP, runs the logon engine on DHCP, answers TTL expiries and DF packets too
//! big with ICMP errors ([`crate::icmp`]), moves frames between routed ports and their kernel
//! twins ([`crate::twin`]), hands frames to send to the inject ring and
//! changes the fast-path tables through the one update sender.
//!
//! It may block and allocate (it is not a worker); it sleeps briefly when there is nothing
//! to do. Its counters sit behind a mutex that the control side reads.
//!
//! A reply that follows a binding (a DHCP ACK) waits until every worker has applied the
//! binding's table writes ([`UpdateSender::applied`]): sent earlier, the subscriber's first
//! frame after it could meet a worker that does not know it yet and be dropped.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ispmux_dataplane::table::updates::UpdateSender;
use ispmux_dataplane::table::IspId;
use ispmux_slowpath::dhcp::service::{Effects, Inject, LogonService};
use ispmux_slowpath::dhcp::{BindingChange, MacAddr};
use ispmux_slowpath::punt::{self, ArpResponder, Punted};

use crate::icmp::{IcmpErrors, IcmpStats};
use ispmux_slowpath::time::Now;

use crate::neighbour::Neighbours;
use ispmux_sys::{Burst, Mempool, Ring};
use serde::{Deserialize, Serialize};

use crate::registered::RegistrySync;
use crate::twin::Twins;

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
    /// Of those, for a routed port's kernel twin, and written to it.
    #[serde(default)]
    pub to_twin: u64,
    /// Frames for a twin the kernel did not take (its backlog full) or without a twin.
    #[serde(default)]
    pub to_twin_drops: u64,
    /// Frames the kernel sent out of a twin, to inject on its port.
    #[serde(default)]
    pub from_twin: u64,
    /// Frames the kernel sent out of a twin that were not injected (too long for an mbuf,
    /// shorter than an Ethernet header, a read error).
    #[serde(default)]
    pub from_twin_drops: u64,
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
    /// Frames punted for an ICMP error, and what became of them.
    #[serde(default)]
    pub icmp: IcmpStats,
    /// Next hops given by address ([`crate::neighbour`]).
    pub next_hops: u64,
    /// Of those, resolved now (the rest drop their traffic as `no_neighbour`).
    pub next_hops_resolved: u64,
    /// Table updates made for next hops' MACs (one per dependent entry per change).
    pub neighbour_updates: u64,
    /// MACs in the registry, as the workers' registered filter holds them.
    #[serde(default)]
    pub registered: u64,
    /// Registrations and removals sent to the workers' filter since start.
    #[serde(default)]
    pub registered_updates: u64,
    /// FEC states LDP gave out (each to become the fast path's entries for its FEC).
    #[serde(default)]
    pub ldp_fec_changes: u64,
    /// LDP's counters, when `[ldp]` runs.
    #[serde(default)]
    pub ldp: Option<crate::ldp::LdpStats>,
    /// What LDP's FEC states wrote into the tables, when `[ldp]` runs.
    #[serde(default)]
    pub label_map: Option<crate::label_map::LabelMapStats>,
    /// How full the fast-path tables are (node pipelines only).
    #[serde(default)]
    pub tables: Option<crate::report::TableOccupancy>,
}

/// Punted frames taken per turn at most.
const PUNT_BURST: usize = 64;
/// Frames read from each kernel twin per turn at most.
const TWIN_BURST: usize = 64;
/// How long the slow path waits between turns once the punt ring is drained: a DHCP
/// message waits at most this long at each hop through the slow path.
const IDLE_WAIT: Duration = Duration::from_micros(200);
/// How long after moving twin frames the slow path waits only [`TWIN_BUSY_WAIT`] between
/// turns: a kernel exchange (ping, LDP) goes on for a few round trips.
const TWIN_BUSY_FOR: Duration = Duration::from_millis(2);
/// The wait between turns while a twin exchange is under way.
const TWIN_BUSY_WAIT: Duration = Duration::from_micros(50);

/// How often the logon proxy's named counters are published at most.
const DHCP_PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// How often LDP has its turn at most.
const LDP_EVERY: Duration = Duration::from_millis(1);
/// How often LDP's neighbours and bindings are published for `ctl ldp` at most.
const LDP_PUBLISH_EVERY: Duration = Duration::from_millis(200);
/// Punted frames the slow path takes per second at most, sustained ([`Intake`]): 16,000
/// logons a second (a DISCOVER and a REQUEST each), and at about 350 ns of the worker's
/// time per frame taken, about 1 % of it.
const INTAKE_PER_S: f64 = 32_768.0;
/// Punted frames it takes at once after a quiet spell: a full punt ring's worth.
const INTAKE_BURST: f64 = 4_096.0;

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

/// Frames waiting for the inject ring, oldest first, each behind the table writes it
/// follows. Fences only grow along the queue, so releasing in order is releasing every
/// frame whose fence is reached.
#[derive(Default)]
struct Backlog {
    held: VecDeque<Held>,
}

impl Backlog {
    /// Queues `inject` behind `fence`; false (and dropped) when the backlog is full.
    fn push(&mut self, fence: u64, inject: Inject) -> bool {
        if self.held.len() >= INJECT_BACKLOG_MAX {
            return false;
        }
        self.held.push_back(Held { fence, inject });
        true
    }

    /// The oldest frame, if the workers have reached its fence.
    fn ready(&self, applied: u64) -> Option<&Inject> {
        self.held
            .front()
            .filter(|h| h.fence <= applied)
            .map(|h| &h.inject)
    }

    fn pop(&mut self) {
        self.held.pop_front();
    }

    fn len(&self) -> usize {
        self.held.len()
    }
}

/// The position every worker has reached in its update queue (all, without a fast path to
/// update). Table writes that found the queues full wait in the sender: they are pushed on
/// here, every turn, or a reply behind them would wait for the next binding change.
fn applied_now(updates: Option<&mut UpdateSender>) -> u64 {
    match updates {
        Some(u) => {
            if u.backlog() > 0 {
                u.flush();
            }
            u.applied()
        }
        None => u64::MAX,
    }
}

/// Carries out an effects batch's table side: its binding changes become table updates
/// sent to every worker, then its frames join the backlog behind them (behind nothing
/// when the batch changed no binding: an OFFER or an ARP reply waits for no table).
fn stage(
    fx: Effects,
    updates: Option<&mut UpdateSender>,
    isp_ids: &HashMap<String, IspId>,
    backlog: &mut Backlog,
    st: &mut SlowPathStats,
) {
    let mut buf = Vec::new();
    let mut updates = updates;
    for change in &fx.bindings {
        buf.clear();
        if let Err(e) = punt::binding_updates(change, isp_ids, &mut buf) {
            tracing::warn!(error = %e, "dhcp: binding not installed");
            st.update_errors += 1;
            continue;
        }
        if let Some(tx) = updates.as_deref_mut() {
            for u in &buf {
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
    let fence = match updates {
        Some(tx) => {
            tx.flush();
            if fx.bindings.is_empty() {
                0
            } else {
                tx.position()
            }
        }
        None => 0,
    };
    for inject in fx.inject {
        if !backlog.push(fence, inject) {
            st.inject_drops += 1;
        }
    }
}

/// How many punted frames the slow path may take from the ring: a token bucket.
///
/// Every frame it takes costs the worker that punted it, beyond forwarding: the frame's mbuf
/// returns to the pool from the slow path's core and the worker allocates it again cold
/// (its profile then shows misses resetting mbufs it allocates). Under a 0.7 Mpps DISCOVER
/// flood the slow path took 600,000 frames a second and the bound subscribers lost a fifth
/// of their forwarding rate (punt-flood, against the same frames dropped in the worker:
/// about 350 ns of the worker's time per frame taken). Frames it leaves fill the ring, and
/// the worker frees the rest while they are still in its cache, counted as
/// `punt_ring_full`. The cost is a flood's dilution: a logon's frames reach the slow path
/// at the intake's share of everything punted.
struct Intake {
    per_s: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Intake {
    fn new(per_s: f64, burst: f64, now: Instant) -> Self {
        Self {
            per_s,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Frames that may be taken now, at most `max`; say how many were with [`Intake::took`].
    fn allowed(&mut self, now: Instant, max: usize) -> usize {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.per_s).min(self.burst);
        (self.tokens.max(0.0) as usize).min(max)
    }

    fn took(&mut self, n: usize) {
        self.tokens -= n as f64;
    }
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
    /// The logon proxy's counters by name, shared with the control side.
    pub dhcp_stats: Arc<Mutex<BTreeMap<String, u64>>>,
    /// ARP answered on hand-off and core ports.
    pub arp: ArpResponder,
    /// Subscribers removed or suspended by the operator: their bindings are withdrawn.
    pub revoke: mpsc::Receiver<MacAddr>,
    /// ICMP errors for TTL expiries and DF packets too big.
    pub icmp: IcmpErrors,
    /// Next hops given by address, followed in the kernel's neighbour table.
    pub neighbours: Option<Neighbours>,
    /// The routed ports' kernel twins (removed when the slow path ends).
    pub(crate) twins: Twins,
    /// The registry's MACs in the workers' filter (the logon proxy on a node only).
    pub(crate) registry: Option<RegistrySync>,
    /// LDP on the twins, when `[ldp]` is configured (node pipelines only).
    pub(crate) ldp: Option<crate::ldp::Ldp>,
    /// What LDP's FEC states mean for the tables (with `ldp`).
    pub(crate) label_map: Option<crate::label_map::LabelMap>,
    /// What `ctl ldp` shows, published by the slow path.
    pub(crate) ldp_view: Arc<Mutex<Option<crate::ldp::LdpView>>>,
    /// Set shortly before `stop`: LDP ends its sessions now, while the loop still moves
    /// the twins' frames (the Shutdown Notifications) and the workers still send them.
    pub(crate) ldp_farewell: Arc<AtomicBool>,
    /// Reloads to carry out ([`crate::reload`]), each taken in one turn.
    pub(crate) reload: mpsc::Receiver<crate::reload::Job>,
}

/// The slow path once built: the backlog in front of the inject ring is its own.
struct Running {
    sp: SlowPath,
    backlog: Backlog,
    /// When the logon proxy's counters were last published.
    dhcp_published: Option<Instant>,
    /// When LDP's view for `ctl ldp` was last published.
    ldp_published: Option<Instant>,
    /// When LDP last had its turn.
    ldp_turned: Option<Instant>,
    /// FEC states LDP gave out this turn.
    fec_states: Vec<ispmux_slowpath::ldp::FecState>,
}

impl SlowPath {
    /// Runs the slow path on its own thread until `stop` is set; `restored` bindings were
    /// put in the tables at start and count as installed.
    pub fn spawn(self, restored: u64, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
        let mut r = Running {
            sp: self,
            backlog: Backlog::default(),
            dhcp_published: None,
            ldp_published: None,
            ldp_turned: None,
            fec_states: Vec::new(),
        };
        let st = SlowPathStats {
            bindings_installed: restored,
            ..SlowPathStats::default()
        };
        r.publish_all(&st);
        std::thread::Builder::new()
            .name("ispmux-slowpath".into())
            .spawn(move || r.run(&stop, st))
    }
}

impl Running {
    fn run(mut self, stop: &AtomicBool, mut st: SlowPathStats) {
        // Its waits between turns (50 µs while a twin exchange goes on) end when asked.
        ispmux_sys::set_timer_slack(1_000);
        let mut b = Burst::new();
        let mut intake = Intake::new(INTAKE_PER_S, INTAKE_BURST, Instant::now());
        // When frames last moved between a port and its twin.
        let mut twin_active: Option<Instant> = None;
        while !stop.load(Ordering::Relaxed) {
            let now = Now::system();
            let n = match intake.allowed(Instant::now(), PUNT_BURST) {
                0 => 0,
                max => self.sp.punt.dequeue_burst(&mut b, max),
            };
            intake.took(n);
            let twin_before = st.to_twin + st.from_twin;
            let mut arp_replies = Vec::new();
            let mut icmp_errors = Vec::new();
            for m in b.drain() {
                st.punted += 1;
                let port = self.sp.port_index.get(&m.port()).copied();
                let tables = self.sp.updates.as_ref().map(UpdateSender::tables);
                let arp = port.and_then(|p| self.sp.arp.ports.get(usize::from(p)));
                let ingress = self.sp.icmp.ingress(port, tables, arp);
                match punt::classify(m.data(), &ingress) {
                    Punted::Arp => {
                        st.arp += 1;
                        if let Some((port, frame)) =
                            port.and_then(|p| Some((p, self.sp.arp.answer(p, m.data())?)))
                        {
                            st.arp_replies += 1;
                            arp_replies.push(Inject { port, frame });
                        }
                    }
                    Punted::Dhcp => {
                        st.dhcp += 1;
                        if let (Some(svc), Some(port)) = (self.sp.dhcp.as_mut(), port) {
                            svc.punt(now, port, m.data());
                        }
                    }
                    Punted::Icmp(why) => {
                        let Some(port) = port else {
                            st.other += 1;
                            continue;
                        };
                        let now = Instant::now();
                        let st = &mut st.icmp;
                        if let Some(e) = self.sp.icmp.handle(now, tables, port, m.data(), why, st) {
                            icmp_errors.push(e);
                        }
                    }
                    Punted::Twin => match port {
                        Some(p) if self.sp.twins.write_kernel(p, m.data()) => st.to_twin += 1,
                        _ => st.to_twin_drops += 1,
                    },
                    Punted::Other => {
                        st.other += 1;
                        tracing::debug!(frame = ?&m.data()[..m.data().len().min(64)], "punted frame no engine takes");
                    }
                }
            }
            // What the kernel sent on the twins leaves with the ARP replies.
            self.sp
                .twins
                .read_kernel(TWIN_BURST, &mut arp_replies, &mut st);
            if !arp_replies.is_empty() {
                let fx = Effects {
                    inject: arp_replies,
                    bindings: Vec::new(),
                };
                self.apply(fx, &mut st);
            }
            if !icmp_errors.is_empty() {
                let fx = Effects {
                    inject: icmp_errors,
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
                if svc.next_deadline().is_some_and(|d| d <= now.mono) {
                    svc.tick(now);
                }
                let fx = svc.flush();
                self.apply(fx, &mut st);
            }
            self.take_reloads();
            self.follow_neighbours(&mut st);
            self.run_ldp(&mut st);
            if let (Some(r), Some(tx)) = (self.sp.registry.as_mut(), self.sp.updates.as_mut()) {
                r.turn(Instant::now(), tx, &mut st);
            }
            self.drain_backlog(&mut st);
            self.publish(&st);
            if n < PUNT_BURST {
                // The punt ring is drained, or the intake spent: wait, the workers never do. Waiting also after a
                // partial burst, not only an empty one, lets punts and server replies gather
                // between turns: under a logon storm each turn then carries many messages
                // instead of one, and the per-turn costs (socket polls that find nothing,
                // the commit hand-off, publishing counters) stop dominating (dhcp-logon).
                let now = Instant::now();
                if st.to_twin + st.from_twin != twin_before {
                    // Control traffic through a twin (a ping, an LDP exchange) is answered
                    // in turns, each waiting on the other side: after a turn that moved
                    // some, the next comes at once. The intake still bounds a flood.
                    twin_active = Some(now);
                    self.sp.twins.wait(TWIN_BUSY_WAIT);
                } else if twin_active.is_some_and(|t| now - t < TWIN_BUSY_FOR) {
                    // A twin exchange is under way: its next frame from a worker is waited
                    // for briefly, not for a whole idle wait (twin-echo).
                    self.sp.twins.wait(TWIN_BUSY_WAIT);
                } else {
                    self.sp.twins.wait(IDLE_WAIT);
                }
            }
        }
        if let Some(svc) = self.sp.dhcp.as_mut() {
            // Commit what is pending so no acknowledged binding is lost.
            let fx = svc.drain();
            self.apply(fx, &mut st);
        }
        // Without the farewell (a failed start): the Notifications may not leave.
        self.end_ldp(&mut st);
        self.publish_all(&st);
    }

    /// Carries out the reloads the control side handed over, each whole in this turn.
    fn take_reloads(&mut self) {
        while let Ok(job) = self.sp.reload.try_recv() {
            let sp = &mut self.sp;
            let live = crate::reload::Live {
                updates: sp.updates.as_mut(),
                neighbours: sp.neighbours.as_mut(),
                label_map: sp.label_map.as_mut(),
                ldp: sp.ldp.as_mut(),
                dhcp: sp.dhcp.as_mut(),
                isp_ids: &mut sp.isp_ids,
            };
            let done = crate::reload::carry_out(&job, live, Instant::now());
            let _ = job.reply.send(done);
        }
    }

    /// Ends LDP: peers get a Shutdown Notification rather than waiting out their hold
    /// time. Its sockets close; the kernel sends what they hold through the twins.
    fn end_ldp(&mut self, st: &mut SlowPathStats) {
        if let Some(mut ldp) = self.sp.ldp.take() {
            let mut fecs = Vec::new();
            ldp.shutdown(Instant::now(), &mut fecs);
            st.ldp = Some(ldp.stats());
            tracing::info!("ldp: sessions ended (shutdown)");
        }
    }

    /// One turn of LDP: its sockets, timers and routes; the FEC states it gives out.
    fn run_ldp(&mut self, st: &mut SlowPathStats) {
        if self.sp.ldp.is_some() && self.sp.ldp_farewell.load(Ordering::Relaxed) {
            self.end_ldp(st);
            return;
        }
        let Some(ldp) = self.sp.ldp.as_mut() else {
            return;
        };
        let now = Instant::now();
        // A turn polls a socket per interface and session and the route follower: often
        // enough every millisecond (an LDP exchange waits that much more at most), not at
        // every one of the slow path's much more frequent turns.
        if self
            .ldp_turned
            .is_some_and(|t| now.duration_since(t) < LDP_EVERY)
        {
            return;
        }
        self.ldp_turned = Some(now);
        let mut fecs = std::mem::take(&mut self.fec_states);
        fecs.clear();
        ldp.turn(now, &mut fecs);
        for s in &fecs {
            st.ldp_fec_changes += 1;
            tracing::debug!(fec = %s.fec, local = ?s.local, egress = s.egress, remote = ?s.remote, "ldp: FEC state");
        }
        // The tables follow: pop, swap and push entries, their next hops resolved on the twins.
        if let (Some(map), Some(nb), Some(tx)) = (
            self.sp.label_map.as_mut(),
            self.sp.neighbours.as_mut(),
            self.sp.updates.as_mut(),
        ) {
            let mut updates = Vec::new();
            map.apply(now, &fecs, nb.resolver_mut(), &mut updates);
            for u in &updates {
                if let Err(e) = tx.send(*u) {
                    tracing::warn!(update = ?u, error = %e, "ldp: table update refused");
                    st.update_errors += 1;
                }
            }
            st.label_map = Some(map.stats());
        }
        self.fec_states = fecs;
        st.ldp = Some(ldp.stats());
        if self
            .ldp_published
            .is_none_or(|t| now.duration_since(t) >= LDP_PUBLISH_EVERY)
        {
            self.ldp_published = Some(now);
            if let Ok(mut v) = self.sp.ldp_view.lock() {
                *v = Some(ldp.view(now));
            }
        }
    }

    fn publish(&mut self, st: &SlowPathStats) {
        // Counts kept by the tables, not copied from them: a few loads.
        let tables = self
            .sp
            .updates
            .as_ref()
            .map(|u| crate::report::TableOccupancy::of(u.tables()));
        if let Ok(mut s) = self.sp.stats.lock() {
            *s = SlowPathStats { tables, ..*st };
        }
        // Named counters are built, not copied: a few times a second is enough for readers.
        let now = Instant::now();
        if let Some(svc) = &self.sp.dhcp {
            if self
                .dhcp_published
                .is_none_or(|t| now.duration_since(t) >= DHCP_PUBLISH_EVERY)
            {
                self.dhcp_published = Some(now);
                if let Ok(mut d) = self.sp.dhcp_stats.lock() {
                    d.clear();
                    d.extend(svc.counter_values());
                }
            }
        }
    }

    /// Publishes everything now (at start and at the end).
    fn publish_all(&mut self, st: &SlowPathStats) {
        self.dhcp_published = None;
        self.publish(st);
    }

    /// Moves what may go from the backlog into the inject ring, in order: as much as the
    /// ring has room for, and only frames whose bindings every worker has applied.
    fn drain_backlog(&mut self, st: &mut SlowPathStats) {
        let applied = applied_now(self.sp.updates.as_mut());
        // The slow path is the ring's only producer: its room can only grow meanwhile.
        let mut room = (INJECT_RING_SLOTS - 1).saturating_sub(self.sp.inject.count()) as usize;
        let mut out = Burst::new();
        while room > 0 && self.backlog.len() > 0 {
            while room > 0 && !out.is_full() {
                let Some(inj) = self.backlog.ready(applied) else {
                    room = 0;
                    break;
                };
                // No mbuf free now: leave the rest for the next turn.
                let Some(mut m) = self.sp.pool.alloc_from(&inj.frame) else {
                    room = 0;
                    break;
                };
                m.set_port(inj.port);
                if out.push(m).is_err() {
                    break;
                }
                self.backlog.pop();
                room -= 1;
            }
            st.injected += self.sp.inject.enqueue_burst(&mut out) as u64;
            st.inject_drops += out.clear() as u64;
        }
        st.inject_backlog = self.backlog.len() as u64;
    }

    /// Reads the kernel's neighbour events and sends the table updates they make: a next
    /// hop's new MAC (or zero, lost) in every entry toward it, seen by the workers from
    /// their next burst.
    fn follow_neighbours(&mut self, st: &mut SlowPathStats) {
        let Some(nb) = self.sp.neighbours.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        nb.turn(Instant::now(), &mut out);
        if let Some(tx) = self.sp.updates.as_mut() {
            for u in &out {
                if let Err(e) = tx.send(*u) {
                    tracing::warn!(update = ?u, error = %e, "table update refused");
                    st.update_errors += 1;
                }
            }
            if !out.is_empty() {
                tx.flush();
            }
        }
        let s = nb.stats();
        st.next_hops = s.resolver.wanted;
        st.next_hops_resolved = s.resolver.resolved;
        st.neighbour_updates = s.updates;
    }

    /// Bindings to table updates, then frames to the inject ring behind them.
    fn apply(&mut self, fx: Effects, st: &mut SlowPathStats) {
        stage(
            fx,
            self.sp.updates.as_mut(),
            &self.sp.isp_ids,
            &mut self.backlog,
            st,
        );
        self.drain_backlog(st);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::SystemTime;

    use ispmux_dataplane::table::{updates, Limits, Tables};
    use ispmux_slowpath::registry::Binding;

    use super::*;

    fn ack_batch() -> Effects {
        Effects {
            inject: vec![Inject {
                port: 0,
                frame: b"DHCPACK".to_vec(),
            }],
            bindings: vec![BindingChange::Install(Binding {
                mac: MacAddr([2, 0, 0, 0, 0, 1]),
                isp: "isp-a".into(),
                ipv4: Ipv4Addr::new(198, 18, 1, 10),
                expires: SystemTime::UNIX_EPOCH,
                server: Ipv4Addr::new(198, 18, 100, 2),
                port: 0,
                vlan: 0,
                inner_vlan: 0,
            })],
        }
    }

    /// Defect 2 of issue 15: the ACK may leave only once every worker has applied the
    /// binding it announces; a reply that changed no binding leaves at once.
    #[test]
    fn an_ack_waits_for_every_worker_to_apply_its_binding() {
        let limits = Limits {
            max_subscribers: 64,
            max_isps: 4,
            max_labels: 4,
            max_handoffs: 4,
        };
        let (mut tx, rx) = updates::channel(Tables::new(limits), 2, 64);
        let mut copies = [Tables::new(limits), Tables::new(limits)];
        let ids = HashMap::from([("isp-a".to_owned(), 1)]);
        let (mut backlog, mut st) = (Backlog::default(), SlowPathStats::default());
        stage(ack_batch(), Some(&mut tx), &ids, &mut backlog, &mut st);
        assert_eq!(st.bindings_installed, 1);
        assert!(
            backlog.ready(tx.applied()).is_none(),
            "no worker applied it"
        );
        rx[0].apply_pending(&mut copies[0], usize::MAX);
        assert!(backlog.ready(tx.applied()).is_none(), "one worker has not");
        rx[1].apply_pending(&mut copies[1], usize::MAX);
        assert_eq!(
            backlog.ready(tx.applied()).map(|i| i.frame.as_slice()),
            Some(&b"DHCPACK"[..])
        );
        backlog.pop();

        let offer = Effects {
            inject: vec![Inject {
                port: 0,
                frame: b"DHCPOFFER".to_vec(),
            }],
            bindings: Vec::new(),
        };
        stage(offer, Some(&mut tx), &ids, &mut backlog, &mut st);
        assert!(
            backlog.ready(tx.applied()).is_some(),
            "an OFFER waits for nothing"
        );
    }

    /// An install whose writes do not fit the workers' queues at once: its ACK leaves once
    /// the rest were pushed on (each turn) and applied, with no later binding change.
    #[test]
    fn writes_waiting_for_queue_room_are_pushed_on_each_turn() {
        let limits = Limits {
            max_subscribers: 64,
            max_isps: 4,
            max_labels: 4,
            max_handoffs: 4,
        };
        let (mut tx, rx) = updates::channel(Tables::new(limits), 1, 2);
        let mut copy = Tables::new(limits);
        let ids = HashMap::from([("isp-a".to_owned(), 1)]);
        let (mut backlog, mut st) = (Backlog::default(), SlowPathStats::default());
        stage(ack_batch(), Some(&mut tx), &ids, &mut backlog, &mut st);
        assert!(
            tx.backlog() > 0,
            "the queue holds fewer writes than the install made"
        );
        for _ in 0..16 {
            if backlog.ready(applied_now(Some(&mut tx))).is_some() {
                return;
            }
            rx[0].apply_pending(&mut copy, usize::MAX);
        }
        panic!("the ACK never became ready: backlog {}", tx.backlog());
    }

    /// A flood is taken at the intake's rate, not the ring's: a burst after a quiet spell,
    /// then only what the time since allows.
    #[test]
    fn the_intake_takes_a_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut intake = Intake::new(1_000.0, 100.0, t0);
        let mut taken = 0;
        while let n @ 1.. = intake.allowed(t0, 64) {
            intake.took(n);
            taken += n;
        }
        assert_eq!(taken, 100, "the burst");
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!(intake.allowed(t1, 64), 10, "1,000 a second for 10 ms");
        intake.took(10);
        assert_eq!(intake.allowed(t1, 64), 0);
        let later = t1 + Duration::from_secs(60);
        assert_eq!(intake.allowed(later, 64), 64, "at most a burst asked for");
        assert_eq!(
            intake.allowed(later, 1_000),
            100,
            "never more than the burst"
        );
    }

    /// Without a fast path to update (io pipelines), nothing is held.
    #[test]
    fn without_tables_nothing_waits() {
        let (mut backlog, mut st) = (Backlog::default(), SlowPathStats::default());
        stage(ack_batch(), None, &HashMap::new(), &mut backlog, &mut st);
        assert!(backlog.ready(0).is_some());
    }
}
