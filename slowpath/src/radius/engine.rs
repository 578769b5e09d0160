//! The sans-IO proxy engine: figure 5 of the capacity-sharing design.
//!
//! A master SP subscriber's request goes to the master SP's servers as is. A client SP
//! subscriber's request is first sent, as a copy carrying the CSP's virtual subscriber, to the
//! master server (which holds the CSP's contract); on its Access-Accept and the proxy's own
//! capacity check, the original goes to the CSP's servers, and the answer reaches the NAS with
//! the subscriber's own identity. Accounting goes the same two ways, and the NAS is
//! acknowledged once both servers have acknowledged, with the usage record committed first.
//!
//! Datagrams and time go in through [`Engine::handle`]; datagrams (each tagged with the socket
//! to use) and usage records come out. No sockets, no clock, no store inside.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ispmux_conf::radius::{parse_prefix, Capacity, HomeServer, RadiusConfig};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use tracing::{debug, info, warn};

use super::attr;
use super::capacity::{period_key, CspLoad, Session};
use super::crypto::{self, MessageAuth};
use super::dedup::{DuplicateCache, RequestKey, Seen};
use super::ids::IdSpace;
use super::packet::{self, Code, Packet};
use super::realm;
use super::usage::{OpenSession, UsageEvent, UsageRecord};

/// The time, as the engine needs it: monotonic for timers, wall clock for billing periods.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub mono: Instant,
    pub unix: u64,
}

impl Now {
    /// The current time from the system clocks.
    pub fn system() -> Now {
        Now {
            mono: Instant::now(),
            unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }
}

/// Which NAS-facing socket a datagram came in on or goes out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listener {
    Auth,
    Acct,
}

/// What the engine is told.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A datagram from a NAS on one of the listening sockets.
    Nas {
        listener: Listener,
        from: SocketAddr,
        data: &'a [u8],
    },
    /// A datagram on upstream socket `slot` (answers of home servers and NAS DASes).
    Peer {
        slot: u16,
        from: SocketAddr,
        data: &'a [u8],
    },
    /// Time passed; due retransmissions, failovers and probes run.
    Timer,
    /// The master SP suspends (or resumes) business with a CSP.
    Suspend { csp: &'a str, suspended: bool },
}

/// What the engine asks for, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send to a NAS; apply `commit` to the usage store first (one transaction) and send
    /// only once it is durable.
    ToNas {
        listener: Listener,
        to: SocketAddr,
        data: Vec<u8>,
        commit: Vec<UsageEvent>,
    },
    /// Send from upstream socket `slot` (created on first use) to a home server or a NAS DAS.
    ToPeer {
        slot: u16,
        to: SocketAddr,
        data: Vec<u8>,
    },
}

/// A configuration the engine cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid radius configuration: {0}: {1}")]
    Invalid(String, String),
}

struct Nas {
    name: String,
    net: IpAddr,
    len: u8,
    secret: Vec<u8>,
    require_ma: bool,
    coa_port: u16,
}

struct Server {
    auth: SocketAddr,
    acct: SocketAddr,
    secret: Vec<u8>,
    require_ma: bool,
    alive: bool,
    next_probe: Instant,
    probe: Option<(PeerKey, [u8; 16])>,
}

struct Csp {
    name: String,
    called_station_id: Vec<String>,
    nas_identifier: Vec<String>,
    strip_realm: bool,
    virtual_user: Vec<u8>,
    virtual_password: Vec<u8>,
    pool: Vec<usize>,
    cap: Capacity,
    suspended: bool,
    load: CspLoad,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Master,
    Csp(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    Master,
    Csp,
}

type PeerKey = (SocketAddr, u16, u8);

struct Outstanding {
    key: PeerKey,
    server: usize,
    auth: [u8; 16],
    bytes: Vec<u8>,
    tries: u32,
    deadline: Instant,
}

struct Txn {
    key: RequestKey,
    nas: usize,
    listener: Listener,
    from: SocketAddr,
    req: Packet,
    password: Option<Vec<u8>>,
    route: Route,
    hop: Hop,
    tried: Vec<usize>,
    out: Option<Outstanding>,
    reservation: Option<u64>,
}

struct Disconnect {
    nas: usize,
    key: PeerKey,
    auth: [u8; 16],
    bytes: Vec<u8>,
    tries: u32,
    deadline: Instant,
}

#[derive(Clone, Copy)]
enum Waiter {
    Txn(u64),
    Probe(usize),
    Disconnect(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerOf {
    Txn(u64),
    Disconnect(u64),
}

/// Timers of the engine.
#[derive(Debug, Clone)]
struct Timing {
    response: Duration,
    retries: u32,
    probe: Duration,
    reservation: Duration,
    disconnect: Duration,
}

/// The proxy engine.
pub struct Engine {
    nases: Vec<Nas>,
    servers: Vec<Server>,
    master_pool: Vec<usize>,
    master_realms: HashSet<String>,
    unrealmed_is_master: bool,
    csps: Vec<Csp>,
    realm_to_csp: HashMap<String, usize>,
    timing: Timing,
    txns: HashMap<u64, Txn>,
    next_txn: u64,
    waiting: HashMap<PeerKey, Waiter>,
    timers: BinaryHeap<Reverse<(Instant, TimerOf)>>,
    disconnects: HashMap<u64, Disconnect>,
    ids: IdSpace,
    dedup: DuplicateCache,
    counters: BTreeMap<(&'static str, &'static str), u64>,
    rng: StdRng,
}

fn server(h: &HomeServer, now: Instant) -> Server {
    Server {
        auth: SocketAddr::new(h.address, h.auth_port),
        acct: SocketAddr::new(h.address, h.acct_port),
        secret: h.secret.as_bytes().to_vec(),
        require_ma: h.require_message_authenticator,
        alive: true,
        next_probe: now,
        probe: None,
    }
}

fn in_prefix(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    }
}

fn is_access_reply(c: Code) -> bool {
    matches!(
        c,
        Code::ACCESS_ACCEPT | Code::ACCESS_REJECT | Code::ACCESS_CHALLENGE
    )
}

impl Engine {
    /// Builds an engine from a validated configuration.
    pub fn new(cfg: &RadiusConfig, now: Instant) -> Result<Engine, ConfigError> {
        if let Some((k, m)) = cfg.validate().into_iter().next() {
            return Err(ConfigError::Invalid(k, m));
        }
        let mut nases = Vec::new();
        for (i, n) in cfg.nas.iter().enumerate() {
            let (net, len) = parse_prefix(&n.address).ok_or_else(|| {
                ConfigError::Invalid(format!("radius.nas[{i}].address"), "bad prefix".into())
            })?;
            nases.push(Nas {
                name: n.name.clone(),
                net,
                len,
                secret: n.secret.as_bytes().to_vec(),
                require_ma: n.require_message_authenticator,
                coa_port: n.coa_port,
            });
        }
        let mut servers: Vec<Server> = Vec::new();
        let master_pool = cfg
            .master
            .home_servers
            .iter()
            .map(|h| {
                servers.push(server(h, now));
                servers.len() - 1
            })
            .collect();
        let mut csps = Vec::new();
        let mut realm_to_csp = HashMap::new();
        for (i, c) in cfg.client_sp.iter().enumerate() {
            for r in &c.realms {
                realm_to_csp.insert(r.to_ascii_lowercase(), i);
            }
            let pool = c
                .home_servers
                .iter()
                .map(|h| {
                    servers.push(server(h, now));
                    servers.len() - 1
                })
                .collect();
            csps.push(Csp {
                name: c.name.clone(),
                called_station_id: c.called_station_id.clone(),
                nas_identifier: c.nas_identifier.clone(),
                strip_realm: c.strip_realm,
                virtual_user: c.virtual_user.as_bytes().to_vec(),
                virtual_password: c.virtual_password.as_bytes().to_vec(),
                pool,
                cap: c.capacity.clone(),
                suspended: c.capacity.suspended,
                load: CspLoad::default(),
            });
        }
        let t = &cfg.timeouts;
        Ok(Engine {
            nases,
            servers,
            master_pool,
            master_realms: cfg
                .master
                .realms
                .iter()
                .map(|r| r.to_ascii_lowercase())
                .collect(),
            unrealmed_is_master: cfg.master.unrealmed_is_master,
            csps,
            realm_to_csp,
            timing: Timing {
                response: Duration::from_millis(t.response_ms),
                retries: t.retries,
                probe: Duration::from_millis(t.probe_interval_ms),
                reservation: Duration::from_millis(t.reservation_ms),
                disconnect: Duration::from_millis(t.disconnect_ms),
            },
            txns: HashMap::new(),
            next_txn: 0,
            waiting: HashMap::new(),
            timers: BinaryHeap::new(),
            disconnects: HashMap::new(),
            ids: IdSpace::default(),
            dedup: DuplicateCache::new(Duration::from_millis(t.duplicate_cache_ms)),
            counters: BTreeMap::new(),
            rng: StdRng::from_entropy(),
        })
    }

    /// Restores open sessions and the period's connection time from the usage store.
    pub fn restore(&mut self, sessions: &[OpenSession], records: &[UsageRecord], unix: u64) {
        for s in sessions {
            let (Some(c), Ok(ip)) = (
                self.csps.iter_mut().find(|c| c.name == s.csp),
                s.nas.parse::<IpAddr>(),
            ) else {
                continue;
            };
            c.load.start(
                (ip, s.session_id.clone()),
                Session {
                    nas_ip: ip,
                    user: s.user.clone(),
                    started: s.started,
                    session_secs: 0,
                },
            );
        }
        for r in records {
            if let Some(c) = self.csps.iter_mut().find(|c| c.name == r.csp) {
                if r.period == period_key(c.cap.period, unix) {
                    c.load.add_closed(&r.period, r.connection_secs);
                }
            }
        }
    }

    /// Counters: (group, name) -> count; groups are `drop`, `reject`, `event`.
    pub fn counters(&self) -> &BTreeMap<(&'static str, &'static str), u64> {
        &self.counters
    }

    /// One counter.
    pub fn counter(&self, group: &str, name: &str) -> u64 {
        self.counters
            .iter()
            .find(|((g, n), _)| *g == group && *n == name)
            .map_or(0, |(_, v)| *v)
    }

    /// Ports a CSP uses now (sessions and pending logons).
    pub fn ports_in_use(&mut self, csp: &str, now: Instant) -> Option<usize> {
        self.csps
            .iter_mut()
            .find(|c| c.name == csp)
            .map(|c| c.load.ports_in_use(now))
    }

    /// Whether each home server is considered alive, in configuration order (master first).
    pub fn servers_alive(&self) -> Vec<(SocketAddr, bool)> {
        self.servers.iter().map(|s| (s.auth, s.alive)).collect()
    }

    /// When [`Input::Timer`] should next be given.
    pub fn next_timeout(&self) -> Option<Instant> {
        let t = self.timers.peek().map(|Reverse((t, _))| *t);
        let p = self
            .servers
            .iter()
            .filter(|s| !s.alive)
            .map(|s| s.next_probe)
            .min();
        match (t, p) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn count(&mut self, group: &'static str, name: &'static str) {
        *self.counters.entry((group, name)).or_insert(0) += 1;
    }

    fn drop_with(&mut self, reason: &'static str, from: SocketAddr) {
        debug!(%from, reason, "radius: dropped");
        self.count("drop", reason);
    }

    /// Feeds one input; outputs are appended to `out` in the order they must be carried out.
    pub fn handle(&mut self, now: Now, input: Input<'_>, out: &mut Vec<Output>) {
        match input {
            Input::Nas {
                listener,
                from,
                data,
            } => self.on_nas(now, listener, from, data, out),
            Input::Peer { slot, from, data } => self.on_peer(now, slot, from, data, out),
            Input::Timer => self.on_timer(now, out),
            Input::Suspend { csp, suspended } => self.on_suspend(now, csp, suspended, out),
        }
    }

    fn on_nas(
        &mut self,
        now: Now,
        listener: Listener,
        from: SocketAddr,
        data: &[u8],
        out: &mut Vec<Output>,
    ) {
        let Some(ni) = self
            .nases
            .iter()
            .position(|n| in_prefix(from.ip(), n.net, n.len))
        else {
            return self.drop_with("unknown_nas", from);
        };
        let raw = match packet::frame(data) {
            Ok(r) => r,
            Err(e) => {
                debug!(%from, error = %e, "radius: malformed request");
                return self.drop_with("malformed", from);
            }
        };
        let code = Code(raw.first().copied().unwrap_or(0));
        let nas = &self.nases[ni];
        match (listener, code) {
            (Listener::Auth, Code::ACCESS_REQUEST) => {
                match crypto::check_message_authenticator(raw, &nas.secret, None) {
                    MessageAuth::Invalid => {
                        return self.drop_with("bad_message_authenticator", from)
                    }
                    MessageAuth::Absent if nas.require_ma => {
                        return self.drop_with("missing_message_authenticator", from)
                    }
                    _ => {}
                }
            }
            (Listener::Acct, Code::ACCOUNTING_REQUEST) => {
                if !crypto::check_request_authenticator(raw, &nas.secret) {
                    // The usual sign of a NAS configured with the wrong secret.
                    return self.drop_with("bad_request_authenticator", from);
                }
                if crypto::check_message_authenticator(raw, &nas.secret, Some(&[0; 16]))
                    == MessageAuth::Invalid
                {
                    return self.drop_with("bad_message_authenticator", from);
                }
            }
            (_, Code::STATUS_SERVER) => {
                if crypto::check_message_authenticator(raw, &nas.secret, None) != MessageAuth::Valid
                {
                    return self.drop_with("bad_message_authenticator", from);
                }
                return self.answer_status_server(ni, listener, from, raw, out);
            }
            _ => return self.drop_with("unexpected_code", from),
        }
        let Ok(req) = Packet::parse(raw) else {
            return self.drop_with("malformed", from);
        };
        let key = RequestKey {
            from,
            acct: listener == Listener::Acct,
            id: req.identifier,
            authenticator: req.authenticator,
        };
        match self.dedup.check(now.mono, &key) {
            Some(Seen::Answered(data, commit)) => {
                self.count("event", "duplicate_answered");
                out.push(Output::ToNas {
                    listener,
                    to: from,
                    data,
                    commit,
                });
                return;
            }
            Some(Seen::InProgress) => {
                self.count("event", "duplicate_in_progress");
                return;
            }
            None => {}
        }
        let password = match req.get(attr::USER_PASSWORD) {
            Some(h) if listener == Listener::Auth => {
                match crypto::reveal_password(h, &self.nases[ni].secret, &req.authenticator) {
                    Ok(p) => Some(p),
                    Err(_) => {
                        self.dedup.forget(&key);
                        return self.drop_with("bad_user_password", from);
                    }
                }
            }
            _ => None,
        };
        let route = match self
            .session_owner(listener, from.ip(), &req)
            .or_else(|| self.classify(&req))
        {
            Some(r) => r,
            None if listener == Listener::Auth => {
                return self.reject(now, ni, key, listener, &req, "unknown_realm", out)
            }
            None => {
                self.dedup.forget(&key);
                return self.drop_with("acct_unknown_realm", from);
            }
        };
        self.next_txn += 1;
        let tid = self.next_txn;
        self.txns.insert(
            tid,
            Txn {
                key,
                nas: ni,
                listener,
                from,
                req,
                password,
                route,
                hop: Hop::Master,
                tried: Vec::new(),
                out: None,
                reservation: None,
            },
        );
        self.send_hop(now, tid, out);
    }

    /// RFC 5997: the proxy itself answers a NAS's Status-Server.
    fn answer_status_server(
        &mut self,
        ni: usize,
        listener: Listener,
        from: SocketAddr,
        raw: &[u8],
        out: &mut Vec<Output>,
    ) {
        let Ok(req) = Packet::parse(raw) else {
            return self.drop_with("malformed", from);
        };
        let code = match listener {
            Listener::Auth => Code::ACCESS_ACCEPT,
            Listener::Acct => Code::ACCOUNTING_RESPONSE,
        };
        let mut r = Packet::new(code, req.identifier, [0; 16]);
        crypto::add_message_authenticator(&mut r);
        if let Ok(data) = crypto::encode_response(&r, &self.nases[ni].secret, &req.authenticator) {
            self.count("event", "status_server_answered");
            out.push(Output::ToNas {
                listener,
                to: from,
                data,
                commit: Vec::new(),
            });
        }
    }

    /// The CSP whose open session an accounting request is about (a NAS may leave User-Name
    /// out of Interim and Stop).
    fn session_owner(&self, listener: Listener, nas: IpAddr, req: &Packet) -> Option<Route> {
        if listener != Listener::Acct {
            return None;
        }
        let key = (nas, req.get_string(attr::ACCT_SESSION_ID)?);
        self.csps
            .iter()
            .position(|c| c.load.sessions.contains_key(&key))
            .map(Route::Csp)
    }

    /// Accounting-On/Off: the NAS restarted, so its sessions are over; their time is billed
    /// up to now and their ports freed.
    fn nas_reset(&mut self, now: Now, ip: IpAddr) -> Vec<UsageEvent> {
        let mut events = Vec::new();
        for c in &mut self.csps {
            let period = period_key(c.cap.period, now.unix);
            let keys: Vec<_> = c
                .load
                .sessions
                .keys()
                .filter(|(i, _)| *i == ip)
                .cloned()
                .collect();
            for k in keys {
                let Some(s) = c.load.sessions.get(&k) else {
                    continue;
                };
                let secs = now.unix.saturating_sub(s.started).max(s.session_secs);
                c.load.stop(&k, &period, secs);
                events.push(UsageEvent::Stop {
                    csp: c.name.clone(),
                    period: period.clone(),
                    nas: ip.to_string(),
                    session_id: k.1,
                    session_secs: secs,
                    input_octets: 0,
                    output_octets: 0,
                    at: now.unix,
                });
            }
        }
        if !events.is_empty() {
            info!(nas = %ip, sessions = events.len(), "radius: NAS restarted, its sessions closed");
            self.count("event", "nas_reset");
        }
        events
    }

    /// Boxes 500/520 of figure 5: whose subscriber is this?
    fn classify(&self, req: &Packet) -> Option<Route> {
        let name = req.get_string(attr::USER_NAME).unwrap_or_default();
        let nai = realm::split(&name);
        if let Some(r) = nai.realm {
            let r = r.to_ascii_lowercase();
            if self.master_realms.contains(&r) {
                return Some(Route::Master);
            }
            if let Some(&i) = self.realm_to_csp.get(&r) {
                return Some(Route::Csp(i));
            }
        }
        // A called number or NAS dedicated to one CSP identifies it without a realm.
        let csi = req.get_string(attr::CALLED_STATION_ID);
        let nid = req.get_string(attr::NAS_IDENTIFIER);
        for (i, c) in self.csps.iter().enumerate() {
            if csi
                .as_ref()
                .is_some_and(|v| c.called_station_id.contains(v))
                || nid.as_ref().is_some_and(|v| c.nas_identifier.contains(v))
            {
                return Some(Route::Csp(i));
            }
        }
        (nai.realm.is_none() && self.unrealmed_is_master).then_some(Route::Master)
    }

    /// Sends the current hop of `tid` to the first live server of its pool not yet tried.
    fn send_hop(&mut self, now: Now, tid: u64, out: &mut Vec<Output>) {
        let Some(txn) = self.txns.get(&tid) else {
            return;
        };
        let pool = match (txn.route, txn.hop) {
            (Route::Csp(i), Hop::Csp) => self.csps.get(i).map(|c| c.pool.as_slice()),
            _ => Some(self.master_pool.as_slice()),
        }
        .unwrap_or(&[]);
        let Some(si) = pool
            .iter()
            .copied()
            .find(|s| !txn.tried.contains(s) && self.servers.get(*s).is_some_and(|s| s.alive))
        else {
            return self.give_up(tid, "no_live_home_server");
        };
        let acct = txn.listener == Listener::Acct;
        let srv = &self.servers[si];
        let peer = if acct { srv.acct } else { srv.auth };
        let Some((slot, id)) = self.ids.allocate(peer) else {
            return self.give_up(tid, "identifiers_exhausted");
        };
        let mut auth = [0u8; 16];
        if !acct {
            self.rng.fill_bytes(&mut auth);
        }
        let p = match self.hop_packet(tid, si, id, auth) {
            Some(p) => p,
            None => {
                self.ids.release(peer, slot, id);
                return self.give_up(tid, "encode_error");
            }
        };
        let bytes = match crypto::encode_request(&p, &self.servers[si].secret) {
            Ok(b) => b,
            Err(_) => {
                self.ids.release(peer, slot, id);
                return self.give_up(tid, "encode_error");
            }
        };
        if acct {
            if let Some(a) = bytes.get(4..20).and_then(|a| <[u8; 16]>::try_from(a).ok()) {
                auth = a;
            }
        }
        let deadline = now.mono + self.timing.response;
        out.push(Output::ToPeer {
            slot,
            to: peer,
            data: bytes.clone(),
        });
        let key = (peer, slot, id);
        self.waiting.insert(key, Waiter::Txn(tid));
        self.timers.push(Reverse((deadline, TimerOf::Txn(tid))));
        if let Some(txn) = self.txns.get_mut(&tid) {
            txn.tried.push(si);
            txn.out = Some(Outstanding {
                key,
                server: si,
                auth,
                bytes,
                tries: 0,
                deadline,
            });
        }
    }

    /// The request of the current hop toward server `si` (box 530 of figure 5 for the
    /// virtual-subscriber copy).
    fn hop_packet(&self, tid: u64, si: usize, id: u8, auth: [u8; 16]) -> Option<Packet> {
        let txn = self.txns.get(&tid)?;
        let secret = &self.servers.get(si)?.secret;
        let access = txn.listener == Listener::Auth;
        let mut p = txn.req.clone();
        p.identifier = id;
        p.authenticator = auth;
        p.remove(attr::MESSAGE_AUTHENTICATOR);
        let mut password = txn.password.clone();
        match (txn.route, txn.hop) {
            (Route::Csp(i), Hop::Master) => {
                let c = self.csps.get(i)?;
                p.set(attr::USER_NAME, c.virtual_user.clone());
                if access {
                    password = Some(c.virtual_password.clone());
                    p.remove(attr::CHAP_PASSWORD);
                    p.remove(attr::CHAP_CHALLENGE);
                }
            }
            (Route::Csp(i), Hop::Csp) => {
                let c = self.csps.get(i)?;
                if c.strip_realm {
                    if let Some(name) = txn.req.get_string(attr::USER_NAME) {
                        let user = realm::split(&name).user.to_owned();
                        p.set(attr::USER_NAME, user.into_bytes());
                    }
                }
            }
            (Route::Master, _) => {}
        }
        if access {
            if let Some(pw) = password {
                let hidden = crypto::hide_password(&pw, secret, &auth).ok()?;
                p.set(attr::USER_PASSWORD, hidden);
            }
            // Without CHAP-Challenge the NAS's Request Authenticator was the challenge; it
            // changes on this hop, so it must travel as an attribute.
            if p.get(attr::CHAP_PASSWORD).is_some() && p.get(attr::CHAP_CHALLENGE).is_none() {
                p.push(attr::CHAP_CHALLENGE, txn.req.authenticator.to_vec());
            }
            crypto::add_message_authenticator(&mut p);
        }
        Some(p)
    }

    /// Abandons a request (no server can answer); the NAS's retransmission starts afresh.
    fn give_up(&mut self, tid: u64, reason: &'static str) {
        if let Some(txn) = self.txns.remove(&tid) {
            if let Some(o) = txn.out {
                self.waiting.remove(&o.key);
                self.ids.release(o.key.0, o.key.1, o.key.2);
            }
            self.release_reservation(txn.route, txn.reservation);
            self.dedup.forget(&txn.key);
            warn!(from = %txn.from, reason, "radius: request abandoned");
            self.count("drop", reason);
        }
    }

    fn release_reservation(&mut self, route: Route, token: Option<u64>) {
        if let (Route::Csp(i), Some(t)) = (route, token) {
            if let Some(c) = self.csps.get_mut(i) {
                c.load.release(t);
            }
        }
    }

    fn on_peer(
        &mut self,
        now: Now,
        slot: u16,
        from: SocketAddr,
        data: &[u8],
        out: &mut Vec<Output>,
    ) {
        let raw = match packet::frame(data) {
            Ok(r) => r,
            Err(_) => return self.drop_with("malformed_response", from),
        };
        let key = (from, slot, raw.get(1).copied().unwrap_or(0));
        let Some(&w) = self.waiting.get(&key) else {
            return self.drop_with("unexpected_response", from);
        };
        let code = Code(raw.first().copied().unwrap_or(0));
        let (secret, auth, require_ma) = match w {
            Waiter::Txn(tid) => {
                let Some(t) = self.txns.get(&tid) else {
                    return self.drop_with("unexpected_response", from);
                };
                let Some(o) = t.out.as_ref() else {
                    return self.drop_with("unexpected_response", from);
                };
                let fits = match t.listener {
                    Listener::Auth => is_access_reply(code),
                    Listener::Acct => code == Code::ACCOUNTING_RESPONSE,
                };
                if !fits {
                    return self.drop_with("unexpected_response_code", from);
                }
                let s = &self.servers[o.server];
                (&s.secret, o.auth, s.require_ma)
            }
            Waiter::Probe(si) => {
                let s = &self.servers[si];
                let Some((_, a)) = s.probe else {
                    return self.drop_with("unexpected_response", from);
                };
                (&s.secret, a, s.require_ma)
            }
            Waiter::Disconnect(d) => {
                let Some(dc) = self.disconnects.get(&d) else {
                    return self.drop_with("unexpected_response", from);
                };
                (&self.nases[dc.nas].secret, dc.auth, false)
            }
        };
        if !crypto::check_response_authenticator(raw, secret, &auth) {
            // A forged answer, or a server with another secret: keep waiting for the real one.
            return self.drop_with("bad_response_authenticator", from);
        }
        match crypto::check_message_authenticator(raw, secret, Some(&auth)) {
            MessageAuth::Invalid => return self.drop_with("bad_message_authenticator", from),
            MessageAuth::Absent if require_ma && is_access_reply(code) => {
                return self.drop_with("missing_message_authenticator", from)
            }
            _ => {}
        }
        let Ok(reply) = Packet::parse(raw) else {
            return self.drop_with("malformed_response", from);
        };
        self.waiting.remove(&key);
        self.ids.release(key.0, key.1, key.2);
        match w {
            Waiter::Txn(tid) => {
                let Some(o) = self.txns.get_mut(&tid).and_then(|t| t.out.take()) else {
                    return;
                };
                self.revive(o.server);
                self.on_reply(now, tid, reply, out);
            }
            Waiter::Probe(si) => {
                if let Some(s) = self.servers.get_mut(si) {
                    s.probe = None;
                }
                self.revive(si);
            }
            Waiter::Disconnect(d) => {
                self.disconnects.remove(&d);
                if reply.code == Code::DISCONNECT_ACK {
                    self.count("event", "disconnect_ack");
                } else {
                    self.count("event", "disconnect_nak");
                }
            }
        }
    }

    fn revive(&mut self, si: usize) {
        if let Some(s) = self.servers.get_mut(si) {
            if !s.alive {
                s.alive = true;
                info!(server = %s.auth, "radius: home server alive again");
                self.count("event", "server_revived");
            }
        }
    }

    /// Boxes 510-550 of figure 5: a server answered the current hop.
    fn on_reply(&mut self, now: Now, tid: u64, reply: Packet, out: &mut Vec<Output>) {
        let Some(mut txn) = self.txns.remove(&tid) else {
            return;
        };
        match (txn.listener, txn.route, txn.hop) {
            (Listener::Auth, Route::Master, _) => {
                let reason = (reply.code == Code::ACCESS_REJECT).then_some("master_reject");
                self.answer(now, &txn, &reply, Vec::new(), reason, out);
            }
            (Listener::Auth, Route::Csp(i), Hop::Master) => {
                if reply.code == Code::ACCESS_REJECT {
                    // Figure 7: the master refuses the virtual subscriber (no contract or no
                    // capacity left at the master); the NAS sees the real identity.
                    return self.answer(now, &txn, &reply, Vec::new(), Some("master_reject"), out);
                }
                if reply.code != Code::ACCESS_ACCEPT {
                    // A challenge for the virtual subscriber cannot be answered by the NAS.
                    let key = txn.key.clone();
                    return self.reject(
                        now,
                        txn.nas,
                        key,
                        txn.listener,
                        &txn.req,
                        "master_reject",
                        out,
                    );
                }
                let Some(c) = self.csps.get_mut(i) else {
                    return;
                };
                if let Err(r) = c.load.check(&c.cap, c.suspended, now.mono, now.unix) {
                    return self.reject(
                        now,
                        txn.nas,
                        txn.key.clone(),
                        txn.listener,
                        &txn.req,
                        r.reason(),
                        out,
                    );
                }
                txn.reservation = Some(c.load.reserve(now.mono + self.timing.reservation));
                txn.hop = Hop::Csp;
                txn.tried.clear();
                self.txns.insert(tid, txn);
                self.send_hop(now, tid, out);
            }
            (Listener::Auth, Route::Csp(_), Hop::Csp) => {
                if reply.code == Code::ACCESS_ACCEPT {
                    // Figure 9: the reservation holds the port until the Accounting Start.
                    self.answer(now, &txn, &reply, Vec::new(), None, out);
                } else {
                    self.release_reservation(txn.route, txn.reservation.take());
                    let reason = (reply.code == Code::ACCESS_REJECT).then_some("csp_reject");
                    self.answer(now, &txn, &reply, Vec::new(), reason, out);
                }
            }
            (Listener::Acct, Route::Master, _) => {
                let commit = match txn.req.get_u32(attr::ACCT_STATUS_TYPE) {
                    Some(attr::ACCT_ON | attr::ACCT_OFF) => self.nas_reset(now, txn.from.ip()),
                    _ => Vec::new(),
                };
                self.answer(now, &txn, &reply, commit, None, out)
            }
            (Listener::Acct, Route::Csp(_), Hop::Master) => {
                if reply.code != Code::ACCOUNTING_RESPONSE {
                    self.txns.insert(tid, txn);
                    return self.give_up(tid, "unexpected_response_code");
                }
                txn.hop = Hop::Csp;
                txn.tried.clear();
                self.txns.insert(tid, txn);
                self.send_hop(now, tid, out);
            }
            (Listener::Acct, Route::Csp(i), Hop::Csp) => {
                if reply.code != Code::ACCOUNTING_RESPONSE {
                    self.txns.insert(tid, txn);
                    return self.give_up(tid, "unexpected_response_code");
                }
                let commit = self.account(now, i, &txn).into_iter().collect();
                self.answer(now, &txn, &reply, commit, None, out);
            }
        }
    }

    /// Both servers acknowledged a CSP accounting request: the session table and the usage
    /// record follow it.
    fn account(&mut self, now: Now, i: usize, txn: &Txn) -> Option<UsageEvent> {
        let c = self.csps.get_mut(i)?;
        let req = &txn.req;
        let status = req.get_u32(attr::ACCT_STATUS_TYPE)?;
        let sid = req.get_string(attr::ACCT_SESSION_ID).unwrap_or_default();
        let nas_ip = txn.from.ip();
        let nas = nas_ip.to_string();
        let key = (nas_ip, sid.clone());
        let period = period_key(c.cap.period, now.unix);
        let user = req.get_string(attr::USER_NAME).unwrap_or_default();
        let secs = u64::from(req.get_u32(attr::ACCT_SESSION_TIME).unwrap_or(0));
        let octets = |lo, hi| {
            u64::from(req.get_u32(hi).unwrap_or(0)) << 32 | u64::from(req.get_u32(lo).unwrap_or(0))
        };
        match status {
            attr::ACCT_START => {
                c.load.start(
                    key,
                    Session {
                        nas_ip,
                        user: user.clone(),
                        started: now.unix,
                        session_secs: 0,
                    },
                );
                Some(UsageEvent::Start {
                    csp: c.name.clone(),
                    period,
                    nas,
                    session_id: sid,
                    user,
                    at: now.unix,
                })
            }
            attr::ACCT_INTERIM => {
                if let Some(s) = c.load.sessions.get_mut(&key) {
                    s.session_secs = secs;
                }
                Some(UsageEvent::Interim {
                    nas,
                    session_id: sid,
                    session_secs: secs,
                })
            }
            attr::ACCT_STOP => {
                c.load.stop(&key, &period, secs);
                Some(UsageEvent::Stop {
                    csp: c.name.clone(),
                    period,
                    nas,
                    session_id: sid,
                    session_secs: secs,
                    input_octets: octets(attr::ACCT_INPUT_OCTETS, attr::ACCT_INPUT_GIGAWORDS),
                    output_octets: octets(attr::ACCT_OUTPUT_OCTETS, attr::ACCT_OUTPUT_GIGAWORDS),
                    at: now.unix,
                })
            }
            _ => None,
        }
    }

    /// Relays a server's answer to the NAS: real identity back in User-Name, the NAS's
    /// Proxy-State returned, Message-Authenticator first, authenticators for the NAS's secret.
    fn answer(
        &mut self,
        now: Now,
        txn: &Txn,
        reply: &Packet,
        commit: Vec<UsageEvent>,
        reject_reason: Option<&'static str>,
        out: &mut Vec<Output>,
    ) {
        let mut r = Packet::new(reply.code, txn.req.identifier, [0; 16]);
        let user = txn.req.get(attr::USER_NAME);
        for a in &reply.attributes {
            match a.typ {
                attr::PROXY_STATE | attr::MESSAGE_AUTHENTICATOR => {}
                attr::USER_NAME => {
                    if let Some(u) = user {
                        r.push(attr::USER_NAME, u.to_vec());
                    }
                }
                _ => r.attributes.push(a.clone()),
            }
        }
        // Figures 7 and 8: the reject carries the subscriber's own identity, as the proxy's
        // own rejects do, whatever the server put in it.
        if reply.code == Code::ACCESS_REJECT && r.get(attr::USER_NAME).is_none() {
            if let Some(u) = user {
                r.push(attr::USER_NAME, u.to_vec());
            }
        }
        match reject_reason {
            Some(reason) => {
                info!(nas = %self.nases[txn.nas].name, user = %String::from_utf8_lossy(user.unwrap_or_default()), reason, "radius: Access-Reject");
                self.count("reject", reason);
            }
            None if reply.code == Code::ACCESS_ACCEPT => self.count("event", "access_accept"),
            None => self.count("event", "answered"),
        }
        self.send_to_nas(
            now,
            txn.nas,
            txn.key.clone(),
            txn.listener,
            &txn.req,
            r,
            commit,
            out,
        );
    }

    /// The proxy's own Access-Reject (unknown realm, capacity refusals).
    #[allow(clippy::too_many_arguments)]
    fn reject(
        &mut self,
        now: Now,
        ni: usize,
        key: RequestKey,
        listener: Listener,
        req: &Packet,
        reason: &'static str,
        out: &mut Vec<Output>,
    ) {
        let mut r = Packet::new(Code::ACCESS_REJECT, req.identifier, [0; 16]);
        if let Some(u) = req.get(attr::USER_NAME) {
            r.push(attr::USER_NAME, u.to_vec());
        }
        info!(nas = %self.nases[ni].name, user = %req.get_string(attr::USER_NAME).unwrap_or_default(), reason, "radius: Access-Reject");
        self.count("reject", reason);
        self.send_to_nas(now, ni, key, listener, req, r, Vec::new(), out);
    }

    #[allow(clippy::too_many_arguments)]
    fn send_to_nas(
        &mut self,
        now: Now,
        ni: usize,
        key: RequestKey,
        listener: Listener,
        req: &Packet,
        mut r: Packet,
        commit: Vec<UsageEvent>,
        out: &mut Vec<Output>,
    ) {
        if is_access_reply(r.code) {
            crypto::add_message_authenticator(&mut r);
        }
        for ps in req.attributes.iter().filter(|a| a.typ == attr::PROXY_STATE) {
            r.attributes.push(ps.clone());
        }
        let Ok(data) = crypto::encode_response(&r, &self.nases[ni].secret, &req.authenticator)
        else {
            self.dedup.forget(&key);
            return self.drop_with("encode_error", key.from);
        };
        let to = key.from;
        self.dedup
            .answered(now.mono, key, data.clone(), commit.clone());
        out.push(Output::ToNas {
            listener,
            to,
            data,
            commit,
        });
    }

    fn on_timer(&mut self, now: Now, out: &mut Vec<Output>) {
        while let Some(&Reverse((t, of))) = self.timers.peek() {
            if t > now.mono {
                break;
            }
            self.timers.pop();
            match of {
                TimerOf::Txn(tid) => self.txn_timeout(now, tid, t, out),
                TimerOf::Disconnect(d) => self.disconnect_timeout(now, d, t, out),
            }
        }
        let due: Vec<usize> = (0..self.servers.len())
            .filter(|&i| !self.servers[i].alive && self.servers[i].next_probe <= now.mono)
            .collect();
        for si in due {
            self.probe(now, si, out);
        }
    }

    fn txn_timeout(&mut self, now: Now, tid: u64, t: Instant, out: &mut Vec<Output>) {
        let retries = self.timing.retries;
        let Some(o) = self.txns.get_mut(&tid).and_then(|x| x.out.as_mut()) else {
            return;
        };
        if o.deadline != t {
            return;
        }
        if o.tries < retries {
            o.tries += 1;
            o.deadline = now.mono + self.timing.response;
            out.push(Output::ToPeer {
                slot: o.key.1,
                to: o.key.0,
                data: o.bytes.clone(),
            });
            self.timers.push(Reverse((o.deadline, TimerOf::Txn(tid))));
            self.count("event", "retransmit");
            return;
        }
        let Some(o) = self.txns.get_mut(&tid).and_then(|x| x.out.take()) else {
            return;
        };
        self.waiting.remove(&o.key);
        self.ids.release(o.key.0, o.key.1, o.key.2);
        self.mark_dead(now, o.server);
        self.count("event", "failover");
        self.send_hop(now, tid, out);
    }

    fn mark_dead(&mut self, now: Now, si: usize) {
        if let Some(s) = self.servers.get_mut(si) {
            if s.alive {
                s.alive = false;
                s.next_probe = now.mono + self.timing.probe;
                warn!(server = %s.auth, "radius: home server dead, failing over");
                self.count("event", "server_dead");
            }
        }
    }

    /// RFC 5997: a dead server is probed with Status-Server until it answers.
    fn probe(&mut self, now: Now, si: usize, out: &mut Vec<Output>) {
        let Some(s) = self.servers.get_mut(si) else {
            return;
        };
        s.next_probe = now.mono + self.timing.probe;
        if let Some((k, _)) = s.probe.take() {
            self.waiting.remove(&k);
            self.ids.release(k.0, k.1, k.2);
        }
        let peer = self.servers[si].auth;
        let Some((slot, id)) = self.ids.allocate(peer) else {
            return;
        };
        let mut auth = [0u8; 16];
        self.rng.fill_bytes(&mut auth);
        let mut p = Packet::new(Code::STATUS_SERVER, id, auth);
        crypto::add_message_authenticator(&mut p);
        let Ok(data) = crypto::encode_request(&p, &self.servers[si].secret) else {
            self.ids.release(peer, slot, id);
            return;
        };
        self.servers[si].probe = Some(((peer, slot, id), auth));
        self.waiting.insert((peer, slot, id), Waiter::Probe(si));
        self.count("event", "status_server_probe");
        out.push(Output::ToPeer {
            slot,
            to: peer,
            data,
        });
    }

    /// RFC 5176: a suspended CSP's sessions are disconnected at their NAS.
    fn on_suspend(&mut self, now: Now, csp: &str, suspended: bool, out: &mut Vec<Output>) {
        let Some(c) = self.csps.iter_mut().find(|c| c.name == csp) else {
            return;
        };
        c.suspended = suspended;
        info!(csp, suspended, "radius: client SP suspension changed");
        if !suspended {
            return;
        }
        let sessions: Vec<(IpAddr, String, String)> = c
            .load
            .sessions
            .iter()
            .map(|((ip, sid), s)| (*ip, sid.clone(), s.user.clone()))
            .collect();
        for (ip, sid, user) in sessions {
            let Some(ni) = self.nases.iter().position(|n| in_prefix(ip, n.net, n.len)) else {
                continue;
            };
            let peer = SocketAddr::new(ip, self.nases[ni].coa_port);
            let Some((slot, id)) = self.ids.allocate(peer) else {
                continue;
            };
            let mut p = Packet::new(Code::DISCONNECT_REQUEST, id, [0; 16]);
            p.push(attr::USER_NAME, user.into_bytes());
            p.push(attr::ACCT_SESSION_ID, sid.into_bytes());
            if let IpAddr::V4(v4) = ip {
                p.push(attr::NAS_IP_ADDRESS, v4.octets().to_vec());
            }
            crypto::add_message_authenticator(&mut p);
            let Ok(bytes) = crypto::encode_request(&p, &self.nases[ni].secret) else {
                self.ids.release(peer, slot, id);
                continue;
            };
            let mut auth = [0u8; 16];
            if let Some(a) = bytes.get(4..20) {
                auth.copy_from_slice(a);
            }
            self.next_txn += 1;
            let d = self.next_txn;
            let deadline = now.mono + self.timing.disconnect;
            out.push(Output::ToPeer {
                slot,
                to: peer,
                data: bytes.clone(),
            });
            self.waiting.insert((peer, slot, id), Waiter::Disconnect(d));
            self.timers
                .push(Reverse((deadline, TimerOf::Disconnect(d))));
            self.disconnects.insert(
                d,
                Disconnect {
                    nas: ni,
                    key: (peer, slot, id),
                    auth,
                    bytes,
                    tries: 0,
                    deadline,
                },
            );
            self.count("event", "disconnect_sent");
        }
    }

    fn disconnect_timeout(&mut self, now: Now, d: u64, t: Instant, out: &mut Vec<Output>) {
        let retries = self.timing.retries;
        let Some(dc) = self.disconnects.get_mut(&d) else {
            return;
        };
        if dc.deadline != t {
            return;
        }
        if dc.tries < retries {
            dc.tries += 1;
            dc.deadline = now.mono + self.timing.disconnect;
            out.push(Output::ToPeer {
                slot: dc.key.1,
                to: dc.key.0,
                data: dc.bytes.clone(),
            });
            self.timers
                .push(Reverse((dc.deadline, TimerOf::Disconnect(d))));
            return;
        }
        let k = dc.key;
        self.disconnects.remove(&d);
        self.waiting.remove(&k);
        self.ids.release(k.0, k.1, k.2);
        self.count("drop", "disconnect_unanswered");
    }

    /// Requests being proxied (for tests and metrics).
    pub fn in_flight(&self) -> usize {
        self.txns.len()
    }
}
