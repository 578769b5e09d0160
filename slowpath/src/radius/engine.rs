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

use std::borrow::Cow;
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
use super::dedup::{DuplicateCache, RequestKey, Retired, Seen};
use super::ids::IdSpace;
use super::packet::{self, Code, Packet};
use super::realm;
use super::salted;
use super::stats::{self, CspStats, HomeServerStats};
use super::usage::{OpenSession, UsageEvent, UsageRecord};

mod disconnect;
mod flows;
mod liveness;
mod upstream;

/// The time, as the engine needs it: monotonic for timers, wall clock for billing periods.
pub use crate::time::Now;

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
    stats: HomeServerStats,
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
    stats: CspStats,
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

/// Whom a reply came from and for which request: what its hidden attributes were hidden with.
#[derive(Debug, Clone, Copy)]
struct Origin {
    server: usize,
    auth: [u8; 16],
}

struct Outstanding {
    key: PeerKey,
    server: usize,
    auth: [u8; 16],
    bytes: Vec<u8>,
    tries: u32,
    deadline: Instant,
    /// When it was first sent (the server's round trip is counted from then).
    sent: Instant,
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
    /// When the NAS's request came in.
    received: Instant,
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
    txns: super::FastMap<u64, Txn>,
    next_txn: u64,
    waiting: super::FastMap<PeerKey, Waiter>,
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
        stats: HomeServerStats {
            server: SocketAddr::new(h.address, h.auth_port).to_string(),
            ..HomeServerStats::default()
        },
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
                stats: CspStats {
                    csp: c.name.clone(),
                    ..CspStats::default()
                },
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
            txns: super::FastMap::default(),
            next_txn: 0,
            waiting: super::FastMap::default(),
            timers: BinaryHeap::new(),
            disconnects: HashMap::new(),
            ids: IdSpace::default(),
            dedup: DuplicateCache::new(Duration::from_millis(t.duplicate_cache_ms)),
            counters: BTreeMap::new(),
            rng: StdRng::from_entropy(),
        })
    }

    /// Takes the realms, client SPs and capacities of `cfg` (a reload; its NASes, master
    /// home servers and timers are the running ones, which the caller checks). A CSP keeps
    /// its sessions, usage and operator suspension across it (the configured `suspended`
    /// counts only when it changed); one whose home servers changed gets them fresh. A CSP
    /// gone from `cfg` is no longer identified (its realms and numbers go), so it takes no
    /// new logon; its open sessions are still accounted until they end.
    pub fn reconfigure(&mut self, cfg: &RadiusConfig, now: Instant) -> Result<(), ConfigError> {
        if let Some((k, m)) = cfg.validate().into_iter().next() {
            return Err(ConfigError::Invalid(k, m));
        }
        self.master_realms = cfg
            .master
            .realms
            .iter()
            .map(|r| r.to_ascii_lowercase())
            .collect();
        self.unrealmed_is_master = cfg.master.unrealmed_is_master;
        self.realm_to_csp.clear();
        for c in &mut self.csps {
            if !cfg.client_sp.iter().any(|n| n.name == c.name) {
                c.called_station_id.clear();
                c.nas_identifier.clear();
            }
        }
        for n in &cfg.client_sp {
            let i = match self.csps.iter().position(|c| c.name == n.name) {
                Some(i) => i,
                None => {
                    self.csps.push(Csp {
                        name: n.name.clone(),
                        called_station_id: Vec::new(),
                        nas_identifier: Vec::new(),
                        strip_realm: false,
                        virtual_user: Vec::new(),
                        virtual_password: Vec::new(),
                        pool: Vec::new(),
                        cap: n.capacity.clone(),
                        suspended: n.capacity.suspended,
                        load: CspLoad::default(),
                        stats: CspStats {
                            csp: n.name.clone(),
                            ..CspStats::default()
                        },
                    });
                    self.csps.len() - 1
                }
            };
            let same_servers = {
                let c = &self.csps[i];
                c.pool.len() == n.home_servers.len()
                    && c.pool.iter().zip(&n.home_servers).all(|(&s, h)| {
                        let want = server(h, now);
                        self.servers.get(s).is_some_and(|s| {
                            (s.auth, s.acct, &s.secret, s.require_ma)
                                == (want.auth, want.acct, &want.secret, want.require_ma)
                        })
                    })
            };
            if !same_servers {
                // Appended, never reused: requests in flight name servers by index.
                let pool = n
                    .home_servers
                    .iter()
                    .map(|h| {
                        self.servers.push(server(h, now));
                        self.servers.len() - 1
                    })
                    .collect();
                self.csps[i].pool = pool;
            }
            let c = &mut self.csps[i];
            if c.cap.suspended != n.capacity.suspended {
                c.suspended = n.capacity.suspended;
            }
            c.cap = n.capacity.clone();
            c.called_station_id = n.called_station_id.clone();
            c.nas_identifier = n.nas_identifier.clone();
            c.strip_realm = n.strip_realm;
            c.virtual_user = n.virtual_user.as_bytes().to_vec();
            c.virtual_password = n.virtual_password.as_bytes().to_vec();
            for r in &n.realms {
                self.realm_to_csp.insert(r.to_ascii_lowercase(), i);
            }
        }
        Ok(())
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

    /// Applies the operator's suspensions and resumptions kept in the store (they override
    /// the configuration's flags); no Disconnect-Request is sent for them.
    pub fn restore_suspensions(&mut self, states: &[(String, bool)]) {
        for (csp, suspended) in states {
            if let Some(c) = self.csps.iter_mut().find(|c| &c.name == csp) {
                c.suspended = *suspended;
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

    /// Ports every CSP uses now (sessions and pending logons), in configuration order.
    pub fn csp_ports_in_use(&mut self, now: Instant) -> Vec<(String, usize)> {
        self.csps
            .iter_mut()
            .map(|c| (c.name.clone(), c.load.ports_in_use(now)))
            .collect()
    }

    /// Counters per home server (those of one address summed), master SP's first.
    pub fn home_server_stats(&self) -> Vec<HomeServerStats> {
        stats::merge_by_server(self.servers.iter().map(|s| &s.stats))
    }

    /// Counters per client SP, in configuration order (then those a reload added).
    pub fn csp_stats(&self) -> Vec<CspStats> {
        self.csps.iter().map(|c| c.stats.clone()).collect()
    }

    /// Whether client SP `csp` is suspended; `None` when no CSP has that name.
    pub fn csp_suspended(&self, csp: &str) -> Option<bool> {
        self.csps
            .iter()
            .find(|c| c.name == csp)
            .map(|c| c.suspended)
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
        [t, p, self.dedup.next_tick()].into_iter().flatten().min()
    }

    /// Duplicate-cache answers that have expired, retired whole: the caller drops them, off
    /// its event loop if it can (freeing a burst's worth of answers takes milliseconds).
    pub fn take_retired(&mut self) -> Option<Retired> {
        self.dedup.take_retired()
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
        if let Route::Csp(i) = route {
            if let Some(c) = self.csps.get_mut(i) {
                match listener {
                    Listener::Auth => c.stats.access_requests += 1,
                    Listener::Acct => c.stats.accounting_requests += 1,
                }
            }
        }
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
                received: now.mono,
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

    /// Boxes 500/520 of figure 5: whose subscriber is this? Allocates nothing for the usual
    /// UTF-8, lower-case realm (this runs for every request).
    fn classify(&self, req: &Packet) -> Option<Route> {
        let name = String::from_utf8_lossy(req.get(attr::USER_NAME).unwrap_or_default());
        let nai = realm::split(&name);
        if let Some(r) = nai.realm {
            let r: Cow<'_, str> = if r.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(r.to_ascii_lowercase())
            } else {
                Cow::Borrowed(r)
            };
            if self.master_realms.contains(r.as_ref()) {
                return Some(Route::Master);
            }
            if let Some(&i) = self.realm_to_csp.get(r.as_ref()) {
                return Some(Route::Csp(i));
            }
        }
        // A called number or NAS dedicated to one CSP identifies it without a realm.
        let text = |t| req.get(t).map(String::from_utf8_lossy);
        let (csi, nid) = (text(attr::CALLED_STATION_ID), text(attr::NAS_IDENTIFIER));
        for (i, c) in self.csps.iter().enumerate() {
            let has = |list: &[String], v: &Option<Cow<'_, str>>| {
                v.as_ref().is_some_and(|v| list.iter().any(|x| x == v))
            };
            if has(&c.called_station_id, &csi) || has(&c.nas_identifier, &nid) {
                return Some(Route::Csp(i));
            }
        }
        (nai.realm.is_none() && self.unrealmed_is_master).then_some(Route::Master)
    }

    /// Requests being proxied (for tests and metrics).
    pub fn in_flight(&self) -> usize {
        self.txns.len()
    }
}
