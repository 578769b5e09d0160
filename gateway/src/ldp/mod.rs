//! LDP (RFC 5036) for real: the sans-IO engine ([`ispmux_slowpath::ldp::Engine`]) run by
//! the slow-path loop on kernel sockets bound to the routed ports' twins.
//!
//! - [`hello`]: UDP 646, one socket per LDP interface, Link Hellos to 224.0.0.2;
//! - [`transport`]: TCP 646, the listener on the transport address, the sessions'
//!   connections and their bounded write buffers;
//! - [`fecs`]: the FECs from the configuration (egress) and the route toward each, from
//!   the route follower ([`crate::routes`]);
//! - [`view`]: counters and what `ispmux ctl ldp` shows.
//!
//! [`Ldp::turn`] is called once per slow-path turn: it polls the sockets, feeds the engine,
//! runs its timers and carries out what it asks; the FEC states it gives out are handed
//! to the caller (the fast-path mapping turns them into table updates).

pub mod fecs;
pub mod hello;
pub mod transport;
pub mod view;

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ispmux_conf::Config;
use ispmux_dataplane::PortRole;
use ispmux_slowpath::ldp::{
    Binding, Config as EngineConfig, Engine, FecChange, FecState, Input, Neighbour, Output,
};
use ispmux_slowpath::routes::RouteChange;
use ispmux_slowpath::time::Now;

use crate::error::{GatewayError, Step};
use crate::routes::Routes;
use hello::HelloSocket;
use transport::{Event, KernelMd5, Tcp};
pub use view::{BindingRow, LdpStats, LdpView, NeighbourRow, RemoteLabel};

/// LDP of one gateway: the engine, its sockets, the route follower and the FECs.
pub struct Ldp {
    lsr_id: Ipv4Addr,
    engine: Engine,
    hellos: Vec<HelloSocket>,
    tcp: Tcp,
    routes: Routes,
    followed: fecs::Followed,
    /// FECs this node is the egress of, told to the engine on the first turn.
    egress: Vec<Fec0>,
    /// Configured FECs, followed from the first turn.
    configured: Vec<Fec0>,
    started: bool,
    /// The engine's label message count when its bindings were last looked at for FECs
    /// learned from peers.
    label_messages_seen: u64,
    /// A session went down: the FECs its labels were for are looked at again.
    rescan: bool,
    stats: LdpStats,
    outs: Vec<Output>,
    events: Vec<Event>,
    route_changes: Vec<RouteChange>,
}

type Fec0 = ispmux_slowpath::ldp::Fec;

/// The engine's view of time at `mono`.
fn now_at(mono: Instant) -> Now {
    Now {
        mono,
        unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    }
}

impl Ldp {
    /// LDP as `[ldp]` says, on `twins` ((port index, interface name), the routed ports'
    /// twins, up): None without `[ldp]`.
    pub fn open(
        cfg: &Config,
        twins: &[(u16, String)],
        now: Instant,
    ) -> Result<Option<Ldp>, GatewayError> {
        let Some(l) = &cfg.ldp else {
            return Ok(None);
        };
        // The ports LDP runs on: those named, or every core port.
        let ports: Vec<usize> = match &l.interfaces {
            Some(names) => names
                .iter()
                .filter_map(|n| cfg.ports.iter().position(|p| p.name == n.0))
                .collect(),
            None => cfg
                .ports
                .iter()
                .enumerate()
                .filter(|(_, p)| p.role == Some(PortRole::Core))
                .map(|(i, _)| i)
                .collect(),
        };
        let mut hellos = Vec::new();
        for i in ports {
            let Some((_, name)) = twins.iter().find(|(p, _)| usize::from(*p) == i) else {
                return Err(GatewayError::Other(format!(
                    "ldp: port {:?} has no kernel twin",
                    cfg.ports[i].name
                )));
            };
            let ifindex = crate::neighbour::link_index(name)
                .step(|| format!("ldp: looking up twin {name:?}"))?
                .ok_or_else(|| GatewayError::Other(format!("ldp: no twin {name:?}")))?;
            let addr = cfg.ports[i].address.map(|a| a.addr());
            let ttl = if l.gtsm { transport::GTSM_TTL } else { 1 };
            hellos.push(
                HelloSocket::open(name, ifindex, addr, ttl)
                    .step(|| format!("ldp: opening UDP 646 on twin {name:?}"))?,
            );
        }
        let mut addresses: Vec<Ipv4Addr> = cfg
            .ports
            .iter()
            .filter(|p| p.is_routed())
            .filter_map(|p| p.address.map(|a| a.addr()))
            .collect();
        addresses.sort();
        addresses.dedup();
        let transport = l.transport_address.unwrap_or(l.router_id);
        let ecfg = EngineConfig {
            transport,
            interfaces: hellos.iter().map(|h| h.ifindex).collect(),
            addresses,
            hello_hold: l.hello_hold_s,
            hello_interval: Duration::from_secs(u64::from(l.hello_interval_s)),
            keepalive_time: l.keepalive_s,
            labels: (l.labels[0], l.labels[1]),
            gtsm: l.gtsm,
            ..EngineConfig::new(l.router_id)
        };
        let engine = Engine::new(ecfg, now_at(now)).step(|| "ldp: [ldp]".into())?;
        let keys: BTreeMap<Ipv4Addr, Vec<u8>> = l
            .neighbours
            .iter()
            .map(|n| (n.router_id, n.password.as_bytes().to_vec()))
            .collect();
        let tcp = Tcp::listen(transport, keys).step(|| {
            format!("ldp: listening on TCP {transport}:646 (with the neighbours' TCP MD5 keys)")
        })?;
        let routes = Routes::open(twins.to_vec(), now)
            .step(|| "ldp: opening the netlink socket that follows routes".into())?;
        let (egress, configured) = fecs::configured(cfg);
        tracing::info!(lsr_id = %l.router_id, %transport, interfaces = ?hellos.iter().map(|h| &h.name).collect::<Vec<_>>(), egress = egress.len(), "ldp: running");
        Ok(Some(Ldp {
            lsr_id: l.router_id,
            engine,
            hellos,
            tcp,
            routes,
            followed: fecs::Followed::default(),
            egress,
            configured,
            started: false,
            label_messages_seen: 0,
            rescan: false,
            stats: LdpStats::default(),
            outs: Vec::new(),
            events: Vec::new(),
            route_changes: Vec::new(),
        }))
    }

    /// One slow-path turn: reads the sockets and the route follower, feeds the engine, runs
    /// its timers and carries out its outputs; FEC states that changed go to `fec_out`.
    pub fn turn(&mut self, now: Instant, fec_out: &mut Vec<FecState>) {
        let t = now_at(now);
        if !self.started {
            self.started = true;
            let mut changes: Vec<FecChange> = self
                .egress
                .iter()
                .map(|fec| FecChange::Egress {
                    fec: *fec,
                    egress: true,
                })
                .collect();
            self.follow_configured(&mut changes);
            self.feed_changes(t, &changes, fec_out);
        }
        // Hellos.
        let mut datagrams = Vec::new();
        for h in &self.hellos {
            self.stats.hello_errors += h.receive(|src, data| {
                datagrams.push((h.ifindex, src, data.to_vec()));
            });
        }
        let heard = !datagrams.is_empty();
        for (iface, src, data) in datagrams {
            self.stats.hellos_in += 1;
            self.handle(
                t,
                Input::Hello {
                    iface,
                    src,
                    data: &data,
                },
                fec_out,
            );
        }
        // Connections.
        let mut events = std::mem::take(&mut self.events);
        if heard {
            self.key_transports(&mut events);
        }
        self.tcp.poll(now, &mut events);
        self.feed_events(t, &mut events, fec_out);
        self.events = events;
        // Routes, and FECs peers advertised that are not followed yet.
        let mut rc = std::mem::take(&mut self.route_changes);
        rc.clear();
        self.routes.turn(now, &mut rc);
        let mut changes = Vec::new();
        if !rc.is_empty() {
            self.followed.changed(&self.routes, &rc, &mut changes);
        }
        self.route_changes = rc;
        let seen = self.engine.counters().label_messages;
        if seen != self.label_messages_seen || self.rescan {
            self.label_messages_seen = seen;
            self.rescan = false;
            for b in self.engine.bindings() {
                self.followed.binding(&b, &self.routes, &mut changes);
            }
        }
        if !changes.is_empty() {
            self.feed_changes(t, &changes, fec_out);
        }
        if self.engine.next_timeout().is_some_and(|at| at <= now) {
            self.handle(t, Input::Timer, fec_out);
        }
    }

    /// Keyed neighbours' transport addresses, as their Hellos give them, get their keys on
    /// the listener before they connect from there (RFC 5036 §2.9 keys sessions by the
    /// neighbour; TCP by address).
    fn key_transports(&mut self, events: &mut Vec<Event>) {
        let heard: Vec<(Ipv4Addr, Ipv4Addr)> = self
            .engine
            .discovery()
            .iter()
            .map(|(_, a)| (a.peer.lsr_id, a.transport))
            .filter(|(lsr, _)| self.tcp.has_key(*lsr))
            .collect();
        for (lsr, addr) in heard {
            self.tcp.key_transport(lsr, addr, events);
        }
    }

    /// Takes the ISP FECs of `cfg` (a reload; `[ldp]` itself is the same): FECs this node
    /// stops being the egress of are withdrawn from every peer (their traffic upstream is
    /// then dropped as `no_fec` where it was pushed), new ones are advertised, new
    /// configured FECs are followed. Returns (egress FECs added, withdrawn).
    pub fn reconfigure(
        &mut self,
        now: Instant,
        cfg: &Config,
        fec_out: &mut Vec<FecState>,
    ) -> (usize, usize) {
        let (egress, configured) = fecs::configured(cfg);
        let added: Vec<Fec0> = egress
            .iter()
            .filter(|f| !self.egress.contains(f))
            .copied()
            .collect();
        let withdrawn: Vec<Fec0> = self
            .egress
            .iter()
            .filter(|f| !egress.contains(f))
            .copied()
            .collect();
        let counts = (added.len(), withdrawn.len());
        let unconfigured: Vec<Fec0> = self
            .configured
            .iter()
            .filter(|f| !configured.contains(f))
            .copied()
            .collect();
        self.egress = egress;
        self.configured = configured;
        if !self.started {
            // The first turn tells the engine all of it.
            return counts;
        }
        for f in unconfigured {
            self.followed.unconfigure(f);
        }
        let mut changes: Vec<FecChange> = withdrawn
            .iter()
            .map(|fec| FecChange::Egress {
                fec: *fec,
                egress: false,
            })
            .chain(added.iter().map(|fec| FecChange::Egress {
                fec: *fec,
                egress: true,
            }))
            .collect();
        self.follow_configured(&mut changes);
        if !changes.is_empty() {
            self.feed_changes(now_at(now), &changes, fec_out);
        }
        // FECs no peer has a label for any more are let go on the next look.
        self.rescan = true;
        counts
    }

    /// Ends every session with a Shutdown Notification (the slow path is stopping) and
    /// writes what that leaves, without waiting.
    pub fn shutdown(&mut self, now: Instant, fec_out: &mut Vec<FecState>) {
        self.handle(now_at(now), Input::Shutdown, fec_out);
        self.tcp.flush_closing();
    }

    /// The neighbours, as the engine knows them.
    pub fn neighbours(&self, now: Instant) -> Vec<Neighbour> {
        self.engine.neighbours(now_at(now))
    }

    /// The label bindings.
    pub fn bindings(&self) -> Vec<Binding> {
        self.engine.bindings()
    }

    /// Counters.
    pub fn stats(&self) -> LdpStats {
        let c = self.engine.counters();
        let tc = self.tcp.counters();
        let k = KernelMd5::read();
        LdpStats {
            sessions_up: self
                .engine
                .sessions()
                .filter(|s| s.state == ispmux_slowpath::ldp::State::Operational)
                .count() as u64,
            pdus_in: c.pdus_received,
            connection_errors: tc.errors,
            slow_readers_closed: tc.overflows,
            md5_refused: tc.md5_refused,
            md5_kernel_not_found: k.not_found,
            md5_kernel_unexpected: k.unexpected,
            md5_kernel_failure: k.failure,
            fecs_followed: self.followed.count() as u64,
            ..self.stats
        }
    }

    /// What `ctl ldp` shows.
    pub fn view(&self, now: Instant) -> LdpView {
        let name = |i: u32| {
            self.hellos
                .iter()
                .find(|h| h.ifindex == i)
                .map_or_else(|| i.to_string(), |h| h.name.clone())
        };
        LdpView {
            lsr_id: Some(self.lsr_id),
            neighbours: self
                .neighbours(now)
                .iter()
                .map(|n| NeighbourRow::of(n, name, self.tcp.has_key(n.peer.lsr_id)))
                .collect(),
            bindings: self.bindings().iter().map(BindingRow::from).collect(),
            stats: self.stats(),
        }
    }

    fn follow_configured(&mut self, changes: &mut Vec<FecChange>) {
        for fec in &self.configured {
            self.followed.configure(*fec, &self.routes, changes);
        }
    }

    fn feed_changes(&mut self, t: Now, changes: &[FecChange], fec_out: &mut Vec<FecState>) {
        self.handle(t, Input::Changes(changes), fec_out);
    }

    /// Feeds connection events until none is left (carrying out outputs makes more).
    fn feed_events(&mut self, t: Now, events: &mut Vec<Event>, fec_out: &mut Vec<FecState>) {
        let mut q: VecDeque<Event> = events.drain(..).collect();
        while let Some(e) = q.pop_front() {
            let input = match &e {
                Event::Accepted { from } => Input::Accepted { from: *from },
                Event::Connected { peer } => Input::Connected { peer: *peer },
                Event::Data { peer, data } => Input::Data { peer: *peer, data },
                Event::Closed { peer } => Input::Closed { peer: *peer },
            };
            let mut outs = std::mem::take(&mut self.outs);
            outs.clear();
            self.engine.handle(t, input, &mut outs);
            let mut more = Vec::new();
            self.carry_out(t.mono, &mut outs, &mut more, fec_out);
            self.outs = outs;
            q.extend(more);
        }
    }

    /// Gives the engine `input` and carries out what it asks, with what that causes.
    fn handle(&mut self, t: Now, input: Input<'_>, fec_out: &mut Vec<FecState>) {
        let mut outs = std::mem::take(&mut self.outs);
        outs.clear();
        self.engine.handle(t, input, &mut outs);
        let mut more = Vec::new();
        self.carry_out(t.mono, &mut outs, &mut more, fec_out);
        self.outs = outs;
        if !more.is_empty() {
            self.feed_events(t, &mut more, fec_out);
        }
    }

    fn carry_out(
        &mut self,
        now: Instant,
        outs: &mut Vec<Output>,
        ev: &mut Vec<Event>,
        fec_out: &mut Vec<FecState>,
    ) {
        for o in outs.drain(..) {
            match o {
                Output::Hello { iface, data } => {
                    match self.hellos.iter().find(|h| h.ifindex == iface) {
                        Some(h) => match h.send(&data) {
                            Ok(()) => self.stats.hellos_out += 1,
                            Err(e) => {
                                self.stats.hello_errors += 1;
                                tracing::debug!(twin = %h.name, error = %e, "ldp: hello not sent");
                            }
                        },
                        None => self.stats.hello_errors += 1,
                    }
                }
                Output::Connect {
                    peer,
                    local,
                    remote,
                    gtsm,
                } => self.tcp.connect(now, peer, local, remote, gtsm, ev),
                Output::Accept { from, peer, gtsm } => self.tcp.accept(from, peer, gtsm, ev),
                Output::Refuse { from } => self.tcp.refuse(from),
                Output::Send { peer, data } => {
                    self.stats.pdus_out += view::count_pdus(&data);
                    self.tcp.send(peer, &data, ev);
                }
                Output::Close { peer } => self.tcp.close(now, peer),
                Output::SessionUp { peer } => {
                    self.stats.sessions_established += 1;
                    tracing::info!(%peer, "ldp: session OPERATIONAL");
                }
                Output::SessionDown {
                    peer,
                    reason,
                    was_up,
                } => {
                    if was_up {
                        self.rescan = true;
                        self.stats.sessions_lost += 1;
                        tracing::info!(%peer, ?reason, "ldp: session down");
                    } else {
                        tracing::debug!(%peer, ?reason, "ldp: session attempt ended");
                    }
                }
                Output::Fec(s) => {
                    self.stats.fec_changes += 1;
                    fec_out.push(s);
                }
            }
        }
    }
}
