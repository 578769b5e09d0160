//! The sans-IO LDP engine: discovery and sessions (RFC 5036 §2.4, §2.5) for one LSR with
//! one platform-wide label space.
//!
//! Hello datagrams, TCP events and bytes, and time go in through [`Engine::handle`]; Hellos
//! to multicast, TCP connects, accepts and closes, PDU bytes, and session events come out.
//! No sockets, no clock: the transport around it does the I/O and calls back when
//! [`Engine::next_timeout`] comes.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use tracing::{debug, info};

pub use crate::time::Now;

use super::discovery::{self, Discovery, IfIndex};
use super::label_space::{LabelSpace, FIRST_UNRESERVED};
use super::labels::{Binding, Fec, FecState, LabelOut, Labels, Peers};
use super::session::{self, Local, Role, Session, State, Step};
use super::wire::{self, Body, LdpId, Message, Status, DEFAULT_MAX_PDU_LEN, LABEL_MAX};

/// What the engine runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub lsr_id: Ipv4Addr,
    /// The address sessions' TCP connections use, advertised in Hellos.
    pub transport: Ipv4Addr,
    /// The interfaces Link Hellos go out of.
    pub interfaces: Vec<IfIndex>,
    /// Our interface addresses, advertised in an Address message to each peer.
    pub addresses: Vec<Ipv4Addr>,
    /// The Link Hello hold time we propose, seconds.
    pub hello_hold: u16,
    /// How often Hellos go out; a third of the hold time by default.
    pub hello_interval: Duration,
    /// The KeepAlive Time we propose, seconds.
    pub keepalive_time: u16,
    pub max_pdu_len: u16,
    /// The local labels this LSR allocates from, inclusive.
    pub labels: (u32, u32),
    /// GTSM (RFC 6720): Link Hellos carry the G flag, and a session with a neighbour
    /// whose Link Hellos carry it too uses GTSM (`Connect`/`Accept` say so).
    pub gtsm: bool,
}

impl Config {
    /// Defaults of RFC 5036 and common practice: hold 15 s, Hellos every 5 s, KeepAlive
    /// 180 s, PDUs up to 4096 octets, the LSR ID as the transport address, GTSM supported
    /// (as FRR's ldpd does by default).
    pub fn new(lsr_id: Ipv4Addr) -> Config {
        Config {
            lsr_id,
            transport: lsr_id,
            interfaces: Vec::new(),
            addresses: Vec::new(),
            hello_hold: discovery::DEFAULT_LINK_HOLD,
            hello_interval: Duration::from_secs(5),
            keepalive_time: 180,
            max_pdu_len: DEFAULT_MAX_PDU_LEN,
            labels: (FIRST_UNRESERVED, LABEL_MAX),
            gtsm: true,
        }
    }
}

/// A configuration the engine cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Hellos must go out at some interval (and within the hold time to keep adjacencies).
    #[error("ldp: hello interval must be above zero and below the hold time")]
    HelloInterval,
    /// RFC 5036 §3.5.3: a KeepAlive Time of 0 is rejected by every peer.
    #[error("ldp: keepalive time must be at least 1 s")]
    KeepAlive,
    /// 255 or less in an Initialization means 4096 to the peer (RFC 5036 §3.5.3).
    #[error("ldp: max PDU length must be at least 256")]
    MaxPduLength,
    /// No label to allocate.
    #[error("ldp: label range {0}..={1} holds no unreserved label")]
    LabelRange(u32, u32),
}

impl Config {
    /// Checks what RFC 5036 and the engine need of the values.
    pub fn check(&self) -> Result<(), ConfigError> {
        let hold = Duration::from_secs(u64::from(if self.hello_hold == 0 {
            discovery::DEFAULT_LINK_HOLD
        } else {
            self.hello_hold
        }));
        if self.hello_interval.is_zero() || self.hello_interval >= hold {
            return Err(ConfigError::HelloInterval);
        }
        if self.keepalive_time == 0 {
            return Err(ConfigError::KeepAlive);
        }
        if self.max_pdu_len < 256 {
            return Err(ConfigError::MaxPduLength);
        }
        let (a, b) = self.labels;
        if a.max(FIRST_UNRESERVED) > b.min(LABEL_MAX) {
            return Err(ConfigError::LabelRange(a, b));
        }
        Ok(())
    }
}

/// What the engine is told.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A UDP datagram to port 646 from `src` on `iface`.
    Hello {
        iface: IfIndex,
        src: Ipv4Addr,
        data: &'a [u8],
    },
    /// The TCP connection asked for by [`Output::Connect`] is up.
    Connected { peer: Ipv4Addr },
    /// A TCP connection to port 646 came in from `from`.
    Accepted { from: Ipv4Addr },
    /// Bytes read from the session with `peer` (its LSR ID).
    Data { peer: Ipv4Addr, data: &'a [u8] },
    /// The session's TCP connection closed or could not be opened.
    Closed { peer: Ipv4Addr },
    /// This LSR is (or stops being) the egress of `fec`: it advertises a label for it
    /// without a downstream one (an ISP's FEC at the tailend).
    Egress { fec: Fec, egress: bool },
    /// The route toward `fec` goes via `next_hop` (None: no route any more).
    Route {
        fec: Fec,
        next_hop: Option<Ipv4Addr>,
    },
    /// Many of the two above at once (a reload, a routing table dump): the messages they
    /// cause go out together, packed into as few PDUs as fit.
    Changes(&'a [FecChange]),
    /// Time passed.
    Timer,
    /// The LSR stops: every session ends with a Shutdown Notification (the transport then
    /// drops the engine).
    Shutdown,
    /// The interfaces LDP runs on are now these (a reload): new ones get Hellos at once;
    /// adjacencies on removed ones end, and with them sessions left without one.
    Interfaces(&'a [IfIndex]),
    /// Our interface addresses are now these: peers are told in Address and Address
    /// Withdraw messages.
    Addresses(&'a [Ipv4Addr]),
}

/// One change of [`Input::Changes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FecChange {
    /// As [`Input::Egress`].
    Egress { fec: Fec, egress: bool },
    /// As [`Input::Route`].
    Route {
        fec: Fec,
        next_hop: Option<Ipv4Addr>,
    },
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Down {
    /// We sent a fatal Notification with this status.
    Sent(Status),
    /// The peer sent a fatal Notification.
    Received,
    /// The TCP connection closed.
    Closed,
    /// The Initialization exchange did not finish in time.
    InitTimeout,
}

/// What the engine asks for, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send a datagram from port 646 to 224.0.0.2:646 out of `iface`.
    Hello { iface: IfIndex, data: Vec<u8> },
    /// Open a TCP connection from `local` to `remote`:646 for the session with `peer`.
    /// With `gtsm` (RFC 6720), the connection sends with TTL 255 and takes only segments
    /// that arrive with TTL 255, from the SYN-ACK on.
    Connect {
        peer: Ipv4Addr,
        local: Ipv4Addr,
        remote: Ipv4Addr,
        gtsm: bool,
    },
    /// Keep the connection accepted from `from`: it is the session with `peer`. Until this
    /// or `Refuse` comes (at most [`PENDING_TIMEOUT`] later), the transport holds the
    /// connection and what it reads. `gtsm` as for `Connect`, from now on.
    Accept {
        from: Ipv4Addr,
        peer: Ipv4Addr,
        gtsm: bool,
    },
    /// Close the connection accepted from `from`: no session is wanted from there.
    Refuse { from: Ipv4Addr },
    /// Write bytes to the session's connection.
    Send { peer: Ipv4Addr, data: Vec<u8> },
    /// Close the session's connection (after writing what was sent before).
    Close { peer: Ipv4Addr },
    /// The session reached OPERATIONAL.
    SessionUp { peer: LdpId },
    /// The session ended; `was_up` if it had been OPERATIONAL.
    SessionDown {
        peer: LdpId,
        reason: Down,
        was_up: bool,
    },
    /// A FEC's labels or next hop changed: what forwarding should now do for it.
    Fec(FecState),
}

/// Counted events, for `ctl` and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub hellos_sent: u64,
    pub hellos_received: u64,
    /// Datagrams that were not a well-formed Hello of another LSR.
    pub hellos_dropped: u64,
    pub pdus_received: u64,
    pub notifications_sent: u64,
    pub notifications_received: u64,
    /// Label messages of an OPERATIONAL session (the label procedures take them).
    pub label_messages: u64,
}

/// The first wait before an active LSR tries a session again, doubled per failure up to
/// the maximum (RFC 5036 §2.5.3 asks for exponential backoff).
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(15);
pub const BACKOFF_MAX: Duration = Duration::from_secs(120);

/// A neighbour as `ctl ldp` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub peer: LdpId,
    /// The address its session's connection goes to.
    pub transport: Option<Ipv4Addr>,
    /// None while there is an adjacency but no session.
    pub state: Option<State>,
    pub role: Role,
    /// How long the session has been OPERATIONAL.
    pub uptime: Option<Duration>,
    /// The interfaces it is heard on.
    pub interfaces: Vec<IfIndex>,
    /// Its addresses from its Address messages.
    pub addresses: Vec<Ipv4Addr>,
    /// A session with it uses GTSM ([`Engine::gtsm`]).
    pub gtsm: bool,
}

/// How long a connection accepted before any Hello from its address waits for one.
pub const PENDING_TIMEOUT: Duration = Duration::from_secs(5);
/// The least time between a Hello sent and one triggered by a new adjacency. A neighbour
/// that has just come up hears our Hello at once (or this long after our last) instead of
/// up to a Hello interval later: the passive side of the session accepts only from a
/// neighbour whose Hello it has, and the active side connects only once it has ours. The
/// gap bounds what Hellos from ever new neighbours (forged ones) can make us send.
pub const TRIGGERED_HELLO_GAP: Duration = Duration::from_millis(100);

/// The LDP engine of one LSR.
pub struct Engine {
    cfg: Config,
    local: Local,
    discovery: Discovery,
    sessions: BTreeMap<Ipv4Addr, Session>,
    /// Active side: when the next attempt at a session may start, and the current backoff.
    retry: BTreeMap<Ipv4Addr, (Instant, Duration)>,
    /// Connections accepted before a Hello from their address: kept until one comes, or
    /// refused at the deadline (the active side may hear our Hello before we hear its).
    pending: BTreeMap<Ipv4Addr, Instant>,
    next_hello: Instant,
    /// When Hellos were last sent (a triggered one waits [`TRIGGERED_HELLO_GAP`] after).
    hello_sent: Option<Instant>,
    next_id: u32,
    counters: Counters,
    labels: Labels,
}

impl Engine {
    /// An engine whose first Hellos are due at `now`.
    pub fn new(cfg: Config, now: Now) -> Result<Engine, ConfigError> {
        cfg.check()?;
        let local = Local {
            ldp_id: LdpId {
                lsr_id: cfg.lsr_id,
                label_space: 0,
            },
            keepalive_time: cfg.keepalive_time,
            max_pdu_len: cfg.max_pdu_len,
        };
        let labels = Labels::new(LabelSpace::new(cfg.labels.0, cfg.labels.1));
        Ok(Engine {
            labels,
            discovery: Discovery::new(cfg.lsr_id, cfg.hello_hold),
            cfg,
            local,
            sessions: BTreeMap::new(),
            retry: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_hello: now.mono,
            hello_sent: None,
            next_id: 1,
            counters: Counters::default(),
        })
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The session with the LSR `peer`, in whatever state.
    pub fn session(&self, peer: Ipv4Addr) -> Option<&Session> {
        self.sessions.get(&peer)
    }

    /// All sessions.
    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    /// The Hello adjacencies.
    pub fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    /// Whether a session with `peer` uses GTSM (RFC 6720 §3): both sides advertise it in
    /// their Link Hellos, we because `Config::gtsm` says so, the neighbour on every link it
    /// is heard on. Only Link Hellos make adjacencies here, so every session is between
    /// directly connected LSRs, which is what GTSM's TTL 255 check needs.
    pub fn gtsm(&self, peer: Ipv4Addr) -> bool {
        self.cfg.gtsm && self.discovery.gtsm(peer)
    }

    /// The OPERATIONAL peer that advertised `addr` as one of its addresses: the session a
    /// route via next hop `addr` takes its labels from.
    pub fn peer_by_address(&self, addr: Ipv4Addr) -> Option<LdpId> {
        self.sessions
            .values()
            .find(|s| s.state == State::Operational && s.addresses.contains(&addr))
            .map(|s| s.peer)
    }

    /// Every neighbour heard in a Hello or with a session, for `ctl ldp`.
    pub fn neighbours(&self, now: Now) -> Vec<Neighbour> {
        let mut by: BTreeMap<Ipv4Addr, Neighbour> = BTreeMap::new();
        for (iface, a) in self.discovery.iter() {
            let n = by.entry(a.peer.lsr_id).or_insert_with(|| Neighbour {
                peer: a.peer,
                transport: Some(a.transport),
                state: None,
                role: Role::of(self.cfg.transport, a.transport),
                uptime: None,
                interfaces: Vec::new(),
                addresses: Vec::new(),
                gtsm: self.gtsm(a.peer.lsr_id),
            });
            n.interfaces.push(iface);
        }
        for s in self.sessions.values() {
            let n = by.entry(s.peer.lsr_id).or_insert_with(|| Neighbour {
                peer: s.peer,
                transport: None,
                state: None,
                role: s.role,
                uptime: None,
                interfaces: Vec::new(),
                addresses: Vec::new(),
                gtsm: false,
            });
            n.state = Some(s.state);
            n.role = s.role;
            n.uptime = s.up_since.map(|t| now.mono.saturating_duration_since(t));
            n.addresses = s.addresses.iter().copied().collect();
        }
        by.into_values().collect()
    }

    /// The label bindings, for `ctl ldp`.
    pub fn bindings(&self) -> Vec<Binding> {
        self.labels.bindings(&self.peers())
    }

    /// Local labels allocated and not yet free for reuse.
    pub fn labels_in_use(&self) -> usize {
        self.labels.labels_in_use()
    }

    /// The peers as the label procedures see them.
    fn peers(&self) -> Peers {
        let mut p = Peers::default();
        for s in self.sessions.values() {
            if s.state == State::Operational {
                p.up.insert(s.peer.lsr_id);
                for a in &s.addresses {
                    p.by_addr.insert(*a, s.peer.lsr_id);
                }
            }
        }
        p
    }

    /// Sends what the label procedures asked for, grouped per peer in order.
    fn flush_labels(&mut self, lo: LabelOut, out: &mut Vec<Output>) {
        let mut per: BTreeMap<Ipv4Addr, Vec<Body>> = BTreeMap::new();
        for (peer, body) in lo.send {
            per.entry(peer).or_default().push(body);
        }
        for (peer, bodies) in per {
            self.send(peer, bodies, out);
        }
        out.extend(lo.changed.into_iter().map(Output::Fec));
    }

    /// When [`Input::Timer`] is next needed.
    pub fn next_timeout(&self) -> Option<Instant> {
        let retries =
            self.retry
                .iter()
                // Only attempts `consider` would make: otherwise a passed instant would be due
                // for ever (a neighbour whose new transport address made us passive).
                .filter(|(p, _)| {
                    !self.sessions.contains_key(p)
                        && self.discovery.of_peer(**p).is_some_and(|a| {
                            Role::of(self.cfg.transport, a.transport) == Role::Active
                        })
                })
                .map(|(_, (at, _))| *at);
        std::iter::once(self.next_hello)
            .chain(self.discovery.next_expiry())
            .chain(self.sessions.values().map(Session::next_timeout))
            .chain(retries)
            .chain(self.pending.values().copied())
            .min()
    }

    pub fn handle(&mut self, now: Now, input: Input<'_>, out: &mut Vec<Output>) {
        let t = now.mono;
        match input {
            Input::Hello { iface, src, data } => self.on_hello(t, iface, src, data, out),
            Input::Accepted { from } => self.on_accept(t, from, out),
            Input::Connected { peer } => match self.sessions.get_mut(&peer) {
                Some(s) if s.state == State::NonExistent => {
                    let bodies = s.connected(t, &self.local);
                    self.send(peer, bodies, out);
                }
                Some(_) => {}
                // The attempt was given up meanwhile: the connection is not wanted.
                None => out.push(Output::Close { peer }),
            },
            Input::Data { peer, data } => self.on_data(t, peer, data, out),
            Input::Closed { peer } => {
                if self.sessions.contains_key(&peer) {
                    self.close(t, peer, None, Down::Closed, out);
                }
            }
            Input::Egress { fec, egress } => {
                self.fec_changes(&[FecChange::Egress { fec, egress }], out)
            }
            Input::Route { fec, next_hop } => {
                self.fec_changes(&[FecChange::Route { fec, next_hop }], out)
            }
            Input::Changes(changes) => self.fec_changes(changes, out),
            Input::Timer => self.on_timer(t, out),
            Input::Shutdown => {
                let peers: Vec<Ipv4Addr> = self.sessions.keys().copied().collect();
                let st = wire::StatusCode::Shutdown.status(0, 0);
                for peer in peers {
                    self.close(t, peer, Some(st), Down::Sent(st), out);
                }
            }
            Input::Interfaces(ifaces) => self.set_interfaces(t, ifaces, out),
            Input::Addresses(addrs) => self.set_addresses(addrs, out),
        }
    }

    fn fec_changes(&mut self, changes: &[FecChange], out: &mut Vec<Output>) {
        let mut lo = LabelOut::default();
        let peers = self.peers();
        for c in changes {
            match *c {
                FecChange::Egress { fec, egress } => {
                    self.labels.set_egress(fec, egress, &peers, &mut lo)
                }
                FecChange::Route { fec, next_hop } => {
                    self.labels.set_route(fec, next_hop, &peers, &mut lo)
                }
            }
        }
        self.flush_labels(lo, out);
    }

    fn set_interfaces(&mut self, now: Instant, ifaces: &[IfIndex], out: &mut Vec<Output>) {
        let gone: Vec<IfIndex> = self
            .cfg
            .interfaces
            .iter()
            .copied()
            .filter(|i| !ifaces.contains(i))
            .collect();
        let new = ifaces.iter().any(|i| !self.cfg.interfaces.contains(i));
        self.cfg.interfaces = ifaces.to_vec();
        for iface in gone {
            for lsr in self.discovery.drop_interface(iface) {
                if self.discovery.of_peer(lsr).is_none() && self.sessions.contains_key(&lsr) {
                    // Taken out of LDP by the operator: the session ends as at shutdown.
                    let st = wire::StatusCode::Shutdown.status(0, 0);
                    self.close(now, lsr, Some(st), Down::Sent(st), out);
                }
            }
        }
        if new {
            self.next_hello = now;
            self.on_timer(now, out);
        }
    }

    fn set_addresses(&mut self, addrs: &[Ipv4Addr], out: &mut Vec<Output>) {
        let old = std::mem::replace(&mut self.cfg.addresses, addrs.to_vec());
        let added: Vec<Ipv4Addr> = addrs.iter().copied().filter(|a| !old.contains(a)).collect();
        let removed: Vec<Ipv4Addr> = old.into_iter().filter(|a| !addrs.contains(a)).collect();
        let up: Vec<Ipv4Addr> = self
            .sessions
            .values()
            .filter(|s| s.state == State::Operational)
            .map(|s| s.peer.lsr_id)
            .collect();
        for peer in up {
            let mut b = Vec::new();
            if !removed.is_empty() {
                b.push(Body::AddressWithdraw(removed.clone()));
            }
            if !added.is_empty() {
                b.push(Body::Address(added.clone()));
            }
            self.send(peer, b, out);
        }
    }

    fn on_hello(
        &mut self,
        now: Instant,
        iface: IfIndex,
        src: Ipv4Addr,
        data: &[u8],
        out: &mut Vec<Output>,
    ) {
        let hello = match wire::decode(data, DEFAULT_MAX_PDU_LEN) {
            Ok(d) => match d.pdu.messages.as_slice() {
                [Message {
                    body: Body::Hello(h),
                    ..
                }] => Some((d.pdu.ldp_id, *h)),
                _ => None,
            },
            Err(_) => None,
        };
        // Only interfaces LDP runs on make adjacencies.
        let Some((from, hello)) = hello.filter(|_| self.cfg.interfaces.contains(&iface)) else {
            self.counters.hellos_dropped += 1;
            return;
        };
        match self.discovery.receive(now, iface, src, from, &hello) {
            Ok((adj, new)) => {
                self.counters.hellos_received += 1;
                if new {
                    debug!(peer = %adj.peer, transport = %adj.transport, iface, "ldp: adjacency up");
                    // Our Hello may have gone out just before the neighbour listened (it came
                    // up a moment after us): a new neighbour gets one at most the gap later.
                    let due = self.hello_sent.map_or(now, |at| at + TRIGGERED_HELLO_GAP);
                    self.next_hello = self.next_hello.min(due);
                }
                let peer = adj.peer.lsr_id;
                let transport = adj.transport;
                if self.pending.remove(&transport).is_some() {
                    self.on_accept(now, transport, out);
                }
                self.consider(now, peer, out);
                if new && self.next_hello <= now {
                    self.on_timer(now, out);
                }
            }
            Err(_) => self.counters.hellos_dropped += 1,
        }
    }

    /// Starts a session with `peer` if there is an adjacency, none is running, we are the
    /// active side and the backoff allows.
    fn consider(&mut self, now: Instant, peer: Ipv4Addr, out: &mut Vec<Output>) {
        if self.sessions.contains_key(&peer) {
            return;
        }
        let Some(adj) = self.discovery.of_peer(peer) else {
            return;
        };
        if Role::of(self.cfg.transport, adj.transport) != Role::Active {
            return;
        }
        if matches!(self.retry.get(&peer), Some((at, _)) if *at > now) {
            return;
        }
        let remote = adj.transport;
        let s = Session::new(now, adj.peer, Role::Active, State::NonExistent);
        self.sessions.insert(peer, s);
        out.push(Output::Connect {
            peer,
            local: self.cfg.transport,
            remote,
            gtsm: self.gtsm(peer),
        });
    }

    fn on_accept(&mut self, now: Instant, from: Ipv4Addr, out: &mut Vec<Output>) {
        let Some(adj) = self.discovery.by_transport(from) else {
            // No Hello from there yet: wait a little for one.
            self.pending.insert(from, now + PENDING_TIMEOUT);
            return;
        };
        let peer = adj.peer;
        if Role::of(self.cfg.transport, adj.transport) != Role::Passive
            || self.sessions.contains_key(&peer.lsr_id)
        {
            out.push(Output::Refuse { from });
            return;
        }
        self.sessions.insert(
            peer.lsr_id,
            Session::new(now, peer, Role::Passive, State::Initialized),
        );
        out.push(Output::Accept {
            from,
            peer: peer.lsr_id,
            gtsm: self.gtsm(peer.lsr_id),
        });
    }

    fn on_data(&mut self, now: Instant, peer: Ipv4Addr, data: &[u8], out: &mut Vec<Output>) {
        let Some(s) = self.sessions.get_mut(&peer) else {
            return;
        };
        s.framer.push(data);
        loop {
            let Some(s) = self.sessions.get_mut(&peer) else {
                return;
            };
            let max = s.framer_max();
            let Some(frame) = s.framer.next_pdu() else {
                return;
            };
            let decoded = frame.map_err(|error| wire::Located {
                msg_id: 0,
                msg_type: 0,
                error,
            });
            let decoded = decoded.and_then(|f| wire::decode(&f, max));
            self.counters.pdus_received += 1;
            let d = match decoded {
                Ok(d) => d,
                Err(e) => {
                    let st = e.status();
                    self.close(now, peer, Some(st), Down::Sent(st), out);
                    return;
                }
            };
            s.heard(now);
            // Before the Initialization is accepted, the passive side checks the sender
            // against the adjacency itself (Session Rejected/No Hello); after, every PDU
            // must come from the peer.
            if s.state != State::Initialized && d.pdu.ldp_id != s.peer {
                let st = wire::StatusCode::BadLdpIdentifier.status(0, 0);
                self.close(now, peer, Some(st), Down::Sent(st), out);
                return;
            }
            let notes: Vec<Body> = d
                .rejected
                .iter()
                .map(|r| session::notification(r.status()))
                .collect();
            self.counters.notifications_sent += notes.len() as u64;
            self.send(peer, notes, out);
            // Label messages of one PDU are answered together: their mappings, withdraws
            // and releases go out in as few PDUs as fit, not one PDU each.
            let mut lo = LabelOut::default();
            let mut peers: Option<Peers> = None;
            for m in d.pdu.messages {
                let Some(s) = self.sessions.get_mut(&peer) else {
                    break;
                };
                if matches!(m.body, Body::Notification(_)) {
                    self.counters.notifications_received += 1;
                }
                let step = s.receive(now, &self.local, d.pdu.ldp_id, m);
                if !matches!(step, Step::Label(_)) {
                    self.flush_labels(std::mem::take(&mut lo), out);
                    peers = None;
                }
                match step {
                    Step::Send(b) => self.send(peer, b, out),
                    Step::Up(mut b) => {
                        let id = self.sessions.get(&peer).map(|s| s.peer);
                        info!(%peer, "ldp: session operational");
                        self.retry.remove(&peer);
                        if !self.cfg.addresses.is_empty() {
                            b.push(Body::Address(self.cfg.addresses.clone()));
                        }
                        self.send(peer, b, out);
                        if let Some(id) = id {
                            out.push(Output::SessionUp { peer: id });
                        }
                        self.peers_changed(out);
                    }
                    Step::Addresses => self.peers_changed(out),
                    Step::Label(m) => {
                        self.counters.label_messages += 1;
                        let p = peers.get_or_insert_with(|| self.peers());
                        self.labels.receive(peer, &m, p, &mut lo);
                    }
                    Step::Close(Some(st)) => {
                        self.close(now, peer, Some(st), Down::Sent(st), out);
                        return;
                    }
                    Step::Close(None) => {
                        self.close(now, peer, None, Down::Received, out);
                        return;
                    }
                }
            }
            self.flush_labels(lo, out);
        }
    }

    fn on_timer(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.next_hello <= now {
            let data = wire::Pdu::one(
                self.local.ldp_id,
                Message::new(
                    0,
                    discovery::hello_body(self.cfg.hello_hold, self.cfg.transport, self.cfg.gtsm),
                ),
            )
            .to_bytes();
            if let Ok(data) = data {
                for &iface in &self.cfg.interfaces {
                    self.counters.hellos_sent += 1;
                    out.push(Output::Hello {
                        iface,
                        data: data.clone(),
                    });
                }
            }
            self.next_hello = now + self.cfg.hello_interval;
            self.hello_sent = Some(now);
        }
        for lsr in self.discovery.expire(now) {
            if self.discovery.of_peer(lsr).is_none() && self.sessions.contains_key(&lsr) {
                // The last adjacency of the session is gone (RFC 5036 §2.5.6).
                let st = wire::StatusCode::HoldTimerExpired.status(0, 0);
                self.close(now, lsr, Some(st), Down::Sent(st), out);
            }
        }
        let peers: Vec<Ipv4Addr> = self.sessions.keys().copied().collect();
        for peer in peers {
            let Some(s) = self.sessions.get_mut(&peer) else {
                continue;
            };
            if s.expires <= now {
                match s.expiry_status() {
                    Some(st) => self.close(now, peer, Some(st), Down::Sent(st), out),
                    None => self.close(now, peer, None, Down::InitTimeout, out),
                }
            } else if s.keepalive_tick(now) {
                self.send(peer, vec![Body::KeepAlive], out);
            }
        }
        let late: Vec<Ipv4Addr> = self
            .pending
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(a, _)| *a)
            .collect();
        for from in late {
            self.pending.remove(&from);
            out.push(Output::Refuse { from });
        }
        // Backoff state is kept only for neighbours still heard or in session.
        let (disc, sessions) = (&self.discovery, &self.sessions);
        self.retry
            .retain(|p, _| disc.of_peer(*p).is_some() || sessions.contains_key(p));
        let waiting: Vec<Ipv4Addr> = self.discovery.iter().map(|(_, a)| a.peer.lsr_id).collect();
        for peer in waiting {
            self.consider(now, peer, out);
        }
    }

    /// Sends messages on the session with `peer`, in PDUs of at most its maximum length.
    fn send(&mut self, peer: Ipv4Addr, bodies: Vec<Body>, out: &mut Vec<Output>) {
        let Some(s) = self.sessions.get(&peer) else {
            return;
        };
        if bodies.is_empty() {
            return;
        }
        let max = s.framer_max();
        let msgs: Vec<Message> = bodies
            .into_iter()
            .map(|b| {
                let id = self.next_id;
                self.next_id = self.next_id.wrapping_add(1).max(1);
                Message::new(id, b)
            })
            .collect();
        match wire::pack(self.local.ldp_id, &msgs, max) {
            Ok(pdus) => out.extend(pdus.into_iter().map(|data| Output::Send { peer, data })),
            Err(e) => debug!(%peer, error = %e, "ldp: message too large, not sent"),
        }
    }

    /// Sessions or their addresses changed: the label procedures look at every FEC again.
    fn peers_changed(&mut self, out: &mut Vec<Output>) {
        let mut lo = LabelOut::default();
        let peers = self.peers();
        self.labels.peers_changed(&peers, &mut lo);
        self.flush_labels(lo, out);
    }

    /// Ends the session with `peer`, first sending a fatal Notification with `status`.
    fn close(
        &mut self,
        now: Instant,
        peer: Ipv4Addr,
        status: Option<Status>,
        reason: Down,
        out: &mut Vec<Output>,
    ) {
        let connected = self
            .sessions
            .get(&peer)
            .is_some_and(|s| s.state != State::NonExistent);
        if let (Some(st), true) = (status, connected) {
            self.counters.notifications_sent += 1;
            self.send(peer, vec![session::notification(st)], out);
        }
        let Some(s) = self.sessions.remove(&peer) else {
            return;
        };
        info!(peer = %s.peer, ?reason, "ldp: session closed");
        out.push(Output::Close { peer });
        let was_up = s.state == State::Operational;
        out.push(Output::SessionDown {
            peer: s.peer,
            reason,
            was_up,
        });
        if was_up {
            self.peers_changed(out);
        }
        if s.role == Role::Active {
            let backoff = match self.retry.get(&peer) {
                Some((_, b)) => (*b * 2).min(BACKOFF_MAX),
                None => BACKOFF_INITIAL,
            };
            self.retry.insert(peer, (now + backoff, backoff));
        }
    }
}
