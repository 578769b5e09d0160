//! The logon engine: a sans-IO state machine that turns a subscriber's DHCP messages into
//! extended DHCP requests to its chosen ISP (claims 1, 6, 13) and the ISP's answers into
//! bindings and emulated-server replies (claims 11, 15).
//!
//! `handle(now, input) -> outputs`. Inputs: a DHCP payload punted from an access port, a
//! datagram from an ISP server, a timer tick, a finished password verification, a
//! revocation from the control side. Outputs, to be carried out **in order** by the driver:
//! store writes (durable first), binding changes for the fast-path tables, datagrams to ISP
//! servers, replies to subscribers, password verifications to run off the loop.
//! Subscriber lookups go through [`Directory`] (the registry, or
//! [`crate::registry::MemoryDirectory`]); the engine holds only transactions in flight,
//! bindings, parked messages and rate-limit state. Deadlines are on [`Now::mono`], what is
//! recorded on the wall clock.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use ispmux_conf::dhcp::DhcpConfig;

use super::codec::{code, Message, MessageType, OP_BOOTREPLY, OP_BOOTREQUEST};
use super::credential_cache::{self, CredentialCache};
use super::ratelimit::RateLimiter;
use super::relay_info::{self, RelayAgentInfo};
use super::timers::{Timer, Timers};
use super::verifier::{VerifyRequest, VERIFY_QUEUE};
use super::{credential, MacAddr};
use crate::registry::{Binding, Refusal, Registry, RegistryError, Status, Subscriber};
use crate::time::Now;

/// The DHCP server port (RFC 2131 §4.1); relays and servers both use it.
pub const SERVER_PORT: u16 = 67;
/// The DHCP client port (RFC 2131 §4.1).
pub const CLIENT_PORT: u16 = 68;
/// RFC 1542 §4.1.1: discard requests that have crossed this many relays.
const MAX_HOPS: u8 = 16;
/// How long an OFFER's server is remembered for the client's REQUEST.
const OFFER_MEMORY: Duration = Duration::from_secs(120);
/// Transactions in flight at once; beyond this new ones are dropped.
const MAX_PENDING: usize = 65_536;
/// Refusals written to the store and the log per second, and at once.
const REFUSALS_PER_SECOND: f64 = 100.0;
const REFUSAL_BURST: u32 = 1000;
/// A lease without option 51 (RFC 2131 requires it in an ACK) is held this long.
const DEFAULT_LEASE: Duration = Duration::from_secs(3600);
/// How often remembered offers and rate-limit buckets are pruned (each a full scan).
const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// Option 82 or giaddr from an untrusted client is logged once per source MAC this often.
const RELAY_INFO_LOG_EVERY: Duration = Duration::from_secs(60);
/// A parked message whose verification has not come back by then is dropped (a verifier
/// thread that died must not hold the bound on verifications in flight for ever).
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// Source MACs whose last such log line is remembered; beyond, new ones are only counted.
const RELAY_INFO_LOG_KEYS: usize = 65_536;

/// Where subscribers are looked up.
pub trait Directory {
    /// The subscriber registered with `mac`, if any.
    fn lookup(&self, mac: MacAddr) -> Result<Option<Subscriber>, RegistryError>;
}

impl Directory for Registry {
    fn lookup(&self, mac: MacAddr) -> Result<Option<Subscriber>, RegistryError> {
        self.subscriber(mac)
    }
}

/// Something that happened.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A DHCP message (UDP payload to port 67) punted from an access port.
    FromSubscriber {
        /// Access port it arrived on.
        port: u16,
        /// Outer (or only) VLAN id (0 = untagged).
        vlan: u16,
        /// Inner VLAN id of QinQ (0 = at most one tag).
        inner_vlan: u16,
        /// Ethernet source address.
        src_mac: MacAddr,
        /// UDP payload.
        payload: &'a [u8],
    },
    /// A datagram that arrived on the ISP-side socket.
    FromServer {
        /// Its source.
        src: SocketAddrV4,
        /// UDP payload.
        payload: &'a [u8],
    },
    /// Time passed: retry or fail over transactions, expire leases.
    Tick,
    /// A credential verification asked for by [`Output::Verify`] finished: `Some(valid)`,
    /// or `None` when it could not be run (the verifier's queue was full or it is gone).
    Verified {
        /// The request's ticket.
        ticket: u64,
        /// Whether the password matched.
        valid: Option<bool>,
    },
    /// The control side removed or suspended a subscriber: drop its binding now.
    Revoke {
        /// The subscriber.
        mac: MacAddr,
    },
}

/// A DHCP reply for the inject path: UDP from `src_ip`:67 to `dst_ip`:`dst_port`, Ethernet
/// to `dst_mac` on `port`/`vlan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Access port.
    pub port: u16,
    /// Outer (or only) VLAN (0 = untagged).
    pub vlan: u16,
    /// Inner VLAN of QinQ (0 = at most one tag).
    pub inner_vlan: u16,
    /// Ethernet destination (broadcast when the client asked for it, or on a NAK).
    pub dst_mac: MacAddr,
    /// IP destination (255.255.255.255 when broadcast).
    pub dst_ip: Ipv4Addr,
    /// UDP destination: 68 to a client, 67 to a relay agent below the gateway.
    pub dst_port: u16,
    /// IP source: the gateway's server identifier.
    pub src_ip: Ipv4Addr,
    /// True when sent to the broadcast addresses.
    pub broadcast: bool,
    /// The DHCP message.
    pub payload: Vec<u8>,
}

/// A change the fast path must apply (through the table-update mechanism).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingChange {
    /// Admit `ipv4` from `mac` on `port`/`vlan` onto `isp`'s label path (new or renewed).
    Install(Binding),
    /// Stop admitting this binding.
    Remove(Binding),
}

/// A write the driver applies to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreWrite {
    /// Insert or refresh a binding.
    UpsertBinding(Binding),
    /// Delete a binding.
    RemoveBinding(MacAddr),
    /// Append to the refusal log.
    Refusal(Refusal),
}

impl Registry {
    /// Applies one engine store write.
    pub fn apply(&mut self, w: &StoreWrite) -> Result<(), RegistryError> {
        match w {
            StoreWrite::UpsertBinding(b) => self.upsert_binding(b),
            StoreWrite::RemoveBinding(m) => self.remove_binding(*m).map(|_| ()),
            StoreWrite::Refusal(r) => self.record_refusal(r),
        }
    }

    /// Applies several writes in one transaction: one durable commit (one fsync) for a
    /// whole burst of logons instead of one each. All or none are applied.
    pub fn apply_all<'a>(
        &mut self,
        writes: impl IntoIterator<Item = &'a StoreWrite>,
    ) -> Result<(), RegistryError> {
        self.begin_immediate()?;
        for w in writes {
            if let Err(e) = self.apply(w) {
                self.rollback();
                return Err(e);
            }
        }
        self.commit().inspect_err(|_| self.rollback())
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write to the store (before the outputs that follow it).
    Store(StoreWrite),
    /// Apply to the fast-path tables.
    Binding(BindingChange),
    /// Send a datagram from the relay address:67 to an ISP server.
    ToServer {
        /// Destination (the server, port 67).
        dst: SocketAddrV4,
        /// The extended DHCP message.
        payload: Vec<u8>,
    },
    /// Inject a reply towards a subscriber.
    ToSubscriber(Reply),
    /// Verify a password off the loop (see [`super::verifier`]) and hand the answer back as
    /// [`Input::Verified`]; the message waits for it.
    Verify(VerifyRequest),
}

/// Why a logon was refused (the refusal log's `reason`, claim 17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusalReason {
    /// The MAC is not registered.
    UnknownSubscriber,
    /// Registered but suspended.
    Suspended,
    /// Customer id or password wrong.
    BadCredential,
    /// `require_credential` and the logon carried none.
    MissingCredential,
    /// The subscriber's ISP has no DHCP servers configured here.
    IspNotConfigured,
    /// The ISP's server answered DHCPNAK (with its message, if any).
    Nak(String),
    /// None of the ISP's servers answered.
    NoAnswer,
}

impl RefusalReason {
    /// Every reason's [`RefusalReason::name`], in declaration order.
    pub const NAMES: [&'static str; 7] = [
        "unknown_subscriber",
        "suspended",
        "bad_credential",
        "missing_credential",
        "isp_not_configured",
        "nak",
        "no_answer",
    ];

    /// The reason as a counter label: its kind, without a DHCPNAK's message.
    pub fn name(&self) -> &'static str {
        Self::NAMES[self.index()]
    }

    fn index(&self) -> usize {
        match self {
            Self::UnknownSubscriber => 0,
            Self::Suspended => 1,
            Self::BadCredential => 2,
            Self::MissingCredential => 3,
            Self::IspNotConfigured => 4,
            Self::Nak(_) => 5,
            Self::NoAnswer => 6,
        }
    }
}

impl std::fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownSubscriber => f.write_str("unknown subscriber"),
            Self::Suspended => f.write_str("subscriber suspended"),
            Self::BadCredential => f.write_str("bad credential"),
            Self::MissingCredential => f.write_str("no credential"),
            Self::IspNotConfigured => f.write_str("ISP not configured for DHCP"),
            Self::Nak(m) if m.is_empty() => f.write_str("ISP sent DHCPNAK"),
            Self::Nak(m) => write!(f, "ISP sent DHCPNAK: {m}"),
            Self::NoAnswer => f.write_str("no answer from the ISP's DHCP servers"),
        }
    }
}

/// Why an input was dropped without a refusal record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Not a DHCP message.
    Malformed,
    /// Wrong op for the direction.
    WrongOp,
    /// No or unknown option 53.
    NoMessageType,
    /// Not an Ethernet chaddr, or chaddr differs from the frame's source MAC.
    ChaddrMismatch,
    /// A subscriber sent giaddr or option 82 (RFC 3046 §2.1: untrusted circuit).
    RelayInfoFromClient,
    /// Hop count exceeded.
    TooManyHops,
    /// Over the subscriber's rate limit.
    RateLimited,
    /// Too many transactions in flight.
    Overloaded,
    /// A server reply matching no transaction (late, duplicate, or forged).
    NoTransaction,
    /// A reply from an address that is not a server of the transaction's ISP.
    UnexpectedServer,
    /// A message type the proxy does not relay in that direction.
    UnexpectedType,
    /// RELEASE/DECLINE/RENEW with no binding and no remembered server.
    NoBinding,
    /// The registry failed.
    Directory,
    /// Option 82 could not be built (sub-option too long).
    RelayInfo,
    /// The password verifications in flight are at their bound: a logon storm with
    /// passwords (wrong ones are never cached) is dropped here, not queued.
    CredentialQueueFull,
    /// The subscriber's previous message still waits for its verification (a client
    /// retransmission): one verification per MAC at a time.
    VerificationPending,
}

impl DropReason {
    /// Every reason, in declaration order (a new reason must be added here too:
    /// `every_reason_is_listed_once` checks the list against `name`, which the compiler
    /// checks against the enum).
    pub const ALL: [DropReason; 16] = [
        DropReason::Malformed,
        DropReason::WrongOp,
        DropReason::NoMessageType,
        DropReason::ChaddrMismatch,
        DropReason::RelayInfoFromClient,
        DropReason::TooManyHops,
        DropReason::RateLimited,
        DropReason::Overloaded,
        DropReason::NoTransaction,
        DropReason::UnexpectedServer,
        DropReason::UnexpectedType,
        DropReason::NoBinding,
        DropReason::Directory,
        DropReason::RelayInfo,
        DropReason::CredentialQueueFull,
        DropReason::VerificationPending,
    ];

    /// The reason as counters name it (snake case).
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::WrongOp => "wrong_op",
            DropReason::NoMessageType => "no_message_type",
            DropReason::ChaddrMismatch => "chaddr_mismatch",
            DropReason::RelayInfoFromClient => "relay_info_from_client",
            DropReason::TooManyHops => "too_many_hops",
            DropReason::RateLimited => "rate_limited",
            DropReason::Overloaded => "overloaded",
            DropReason::NoTransaction => "no_transaction",
            DropReason::UnexpectedServer => "unexpected_server",
            DropReason::UnexpectedType => "unexpected_type",
            DropReason::NoBinding => "no_binding",
            DropReason::Directory => "directory",
            DropReason::RelayInfo => "relay_info",
            DropReason::CredentialQueueFull => "credential_queue_full",
            DropReason::VerificationPending => "verification_pending",
        }
    }
}

/// Engine counters (the control side sums and exports them).
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Messages from subscribers.
    pub from_subscribers: u64,
    /// Datagrams from servers.
    pub from_servers: u64,
    /// Extended requests sent to ISP servers (including retries).
    pub relayed: u64,
    /// Replies injected to subscribers.
    pub replies: u64,
    /// Retries sent to an ISP's next server after a timeout.
    pub failovers: u64,
    /// Bindings installed (ACKs, renewals).
    pub installs: u64,
    /// Bindings removed.
    pub removals: u64,
    /// Refusals (recorded or not).
    pub refusals: u64,
    /// Of those, by reason, indexed as [`RefusalReason::NAMES`].
    pub refusals_by_reason: [u64; RefusalReason::NAMES.len()],
    /// Refusals over the logging budget: counted, not written to the store or the log.
    pub refusals_unlogged: u64,
    /// Option 82 or giaddr from an untrusted client logged (at most once per source MAC a
    /// minute; every such message is counted in `drops`).
    pub relay_info_logged: u64,
    /// Passwords checked by a full Argon2 verification.
    pub credential_verifications: u64,
    /// Passwords accepted from the credential cache (the same credential verified before).
    pub credential_cache_hits: u64,
    /// Drops by reason.
    pub drops: HashMap<DropReason, u64>,
}

impl Counters {
    /// Drops for one reason.
    pub fn dropped(&self, r: DropReason) -> u64 {
        self.drops.get(&r).copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
struct IspRoute {
    servers: Vec<Ipv4Addr>,
    link_selection: Option<Ipv4Addr>,
    /// Index of the server that answered last: new transactions start there.
    preferred: usize,
}

/// A relay agent between the subscriber and the gateway, and what it put in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Downstream {
    giaddr: Ipv4Addr,
    mac: MacAddr,
    relay_info: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
struct Pending {
    port: u16,
    vlan: u16,
    inner_vlan: u16,
    downstream: Option<Downstream>,
    isp: String,
    kind: MessageType,
    relayed: Vec<u8>,
    candidates: Vec<Ipv4Addr>,
    tried: usize,
    deadline: Instant,
    /// A DHCPINFORM's own ciaddr and flags, cleared in what was relayed (see
    /// [`Engine::relay_inform`]) and put back in the answer.
    inform: Option<(Ipv4Addr, u16)>,
}

#[derive(Debug, Clone, Copy)]
struct Offer {
    server: Ipv4Addr,
    server_id: Ipv4Addr,
    at: Instant,
}

/// A binding in force and when its lease ends on the monotonic clock (its `expires`, on the
/// wall clock, is what the store records).
#[derive(Debug, Clone)]
struct Bound {
    binding: Binding,
    until: Instant,
}

/// Where a subscriber's message came from, and what it is.
#[derive(Debug, Clone)]
struct Arrival {
    port: u16,
    vlan: u16,
    inner_vlan: u16,
    mac: MacAddr,
    downstream: Option<Downstream>,
    kind: MessageType,
    /// DISCOVER, REQUEST or INFORM: refusals are recorded for these.
    logon: bool,
}

/// A message waiting for its password verification.
#[derive(Debug, Clone)]
struct Parked {
    /// When it was parked.
    since: Instant,
    at: Arrival,
    msg: Message,
    sub: Subscriber,
    phc: String,
    password: Vec<u8>,
}

/// The registry checks' verdict on a logon.
enum Check {
    Pass,
    Refuse(RefusalReason),
    /// The password must be verified: (stored PHC string, presented password).
    Verify(String, Vec<u8>),
}

/// The logon engine.
pub struct Engine<D> {
    relay_address: Ipv4Addr,
    server_identifier: Ipv4Addr,
    require_credential: bool,
    trusted_relay_ports: Vec<u16>,
    timeout: Duration,
    isps: HashMap<String, IspRoute>,
    dir: D,
    pending: HashMap<(MacAddr, u32), Pending>,
    offers: HashMap<MacAddr, Offer>,
    bindings: HashMap<MacAddr, Bound>,
    limiter: RateLimiter<MacAddr>,
    refusal_budget: RateLimiter<()>,
    /// Who was last logged for option 82 or giaddr from an untrusted client, and when.
    relay_info_log: RateLimiter<MacAddr>,
    /// Transaction timeouts and lease ends.
    timers: Timers,
    /// When offers and rate-limit buckets are next pruned.
    housekeeping: Option<Instant>,
    /// Credentials that verified, so the same one again skips Argon2.
    credentials: CredentialCache,
    /// Messages waiting for a password verification, by ticket.
    verifying: HashMap<u64, Parked>,
    next_ticket: u64,
    /// Verifications in flight at most.
    verify_queue: usize,
    counters: Counters,
}

impl<D: Directory> Engine<D> {
    /// An engine for `cfg` (validated) looking subscribers up in `dir`.
    pub fn new(cfg: &DhcpConfig, dir: D) -> Self {
        let isps = cfg
            .isps
            .iter()
            .map(|i| {
                (
                    i.name.clone(),
                    IspRoute {
                        servers: i.servers.clone(),
                        link_selection: i.link_selection,
                        preferred: 0,
                    },
                )
            })
            .collect();
        Engine {
            relay_address: cfg.relay_address,
            server_identifier: cfg.server_identifier,
            require_credential: cfg.require_credential,
            trusted_relay_ports: cfg.trusted_relay_port_ids.clone(),
            timeout: Duration::from_millis(cfg.server_timeout_ms),
            isps,
            dir,
            pending: HashMap::new(),
            offers: HashMap::new(),
            bindings: HashMap::new(),
            limiter: RateLimiter::new(
                cfg.rate_limit.per_second,
                cfg.rate_limit.burst,
                cfg.rate_limit.max_tracked,
            ),
            refusal_budget: RateLimiter::new(REFUSALS_PER_SECOND, REFUSAL_BURST, 1),
            relay_info_log: RateLimiter::new(
                1.0 / RELAY_INFO_LOG_EVERY.as_secs_f64(),
                1,
                RELAY_INFO_LOG_KEYS,
            ),
            timers: Timers::default(),
            housekeeping: None,
            credentials: CredentialCache::new(credential_cache::DEFAULT_CAPACITY),
            verifying: HashMap::new(),
            next_ticket: 0,
            verify_queue: VERIFY_QUEUE,
            counters: Counters::default(),
        }
    }

    /// Takes `cfg`'s ISPs (a reload): new and changed ones are routed to from now on (a
    /// changed one starts again at its first server). Subscribers of an ISP that is gone
    /// lose their bindings (a store write and a binding removal each, into `out`) and their
    /// transactions in flight. Returns the bindings released.
    pub fn set_isps(&mut self, cfg: &DhcpConfig, out: &mut Vec<Output>) -> usize {
        for i in &cfg.isps {
            let route = IspRoute {
                servers: i.servers.clone(),
                link_selection: i.link_selection,
                preferred: 0,
            };
            match self.isps.get_mut(&i.name) {
                Some(r)
                    if r.servers == route.servers && r.link_selection == route.link_selection => {}
                Some(r) => *r = route,
                None => {
                    self.isps.insert(i.name.clone(), route);
                }
            }
        }
        let gone: Vec<String> = self
            .isps
            .keys()
            .filter(|n| !cfg.isps.iter().any(|i| &i.name == *n))
            .cloned()
            .collect();
        if gone.is_empty() {
            return 0;
        }
        for n in &gone {
            self.isps.remove(n);
        }
        self.pending.retain(|_, p| !gone.contains(&p.isp));
        let mut macs: Vec<MacAddr> = self
            .bindings
            .iter()
            .filter(|(_, b)| gone.contains(&b.binding.isp))
            .map(|(m, _)| *m)
            .collect();
        macs.sort_unstable_by_key(|m| m.0);
        for mac in &macs {
            self.credentials.forget(*mac);
            self.offers.remove(mac);
            self.unbind(*mac, out);
        }
        macs.len()
    }

    /// The directory (the driver applies [`StoreWrite`]s through it).
    pub fn directory_mut(&mut self) -> &mut D {
        &mut self.dir
    }

    /// Counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Bindings in force.
    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.bindings.values().map(|b| &b.binding)
    }

    /// When the engine next needs a [`Input::Tick`], if anything is waiting.
    /// May be early (a deadline since moved): the tick then finds nothing due.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.timers.next(), self.housekeeping) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A binding in force from now on (new, renewed or restored), with its expiry timer.
    fn keep_binding(&mut self, binding: Binding, until: Instant) {
        self.timers.push(until, Timer::Lease(binding.mac));
        self.bindings.insert(binding.mac, Bound { binding, until });
    }

    /// A transaction waiting for its server, with its timeout (pushed only when the
    /// deadline is new: a retransmission keeps the one it had).
    fn keep_pending(&mut self, key: (MacAddr, u32), p: Pending) {
        let deadline = p.deadline;
        if self.pending.insert(key, p).map(|old| old.deadline) != Some(deadline) {
            self.timers.push(deadline, Timer::Transaction(key.0, key.1));
        }
    }

    /// Offers and rate-limit buckets need pruning from `now` on.
    fn schedule_housekeeping(&mut self, now: Now) {
        if self.housekeeping.is_none() {
            self.housekeeping = Some(now.mono + HOUSEKEEPING);
        }
    }

    /// Reinstalls bindings read from the store at start; expired ones are deleted instead.
    /// The time left of each lease is read on the wall clock (all the store has) and its end
    /// then kept on the monotonic one.
    pub fn restore(&mut self, now: Now, bindings: Vec<Binding>) -> Vec<Output> {
        let mut out = Vec::new();
        let wall = now.wall();
        for b in bindings {
            if let Some(left) = b.expires.duration_since(wall).ok().filter(|d| !d.is_zero()) {
                let until = now
                    .mono
                    .checked_add(left)
                    .unwrap_or(now.mono + DEFAULT_LEASE);
                self.keep_binding(b.clone(), until);
                self.counters.installs += 1;
                out.push(Output::Binding(BindingChange::Install(b)));
            } else {
                out.push(Output::Store(StoreWrite::RemoveBinding(b.mac)));
            }
        }
        out
    }

    /// Handles one input.
    pub fn handle(&mut self, now: Now, input: Input<'_>) -> Vec<Output> {
        let mut out = Vec::new();
        self.handle_into(now, input, &mut out);
        out
    }

    /// Handles one input, appending its outputs to `out` (no vector per message).
    pub fn handle_into(&mut self, now: Now, input: Input<'_>, out: &mut Vec<Output>) {
        let r = match input {
            Input::FromSubscriber {
                port,
                vlan,
                inner_vlan,
                src_mac,
                payload,
            } => {
                self.counters.from_subscribers += 1;
                let at = (port, vlan, inner_vlan);
                self.on_subscriber(now, at, src_mac, payload, out)
            }
            Input::FromServer { src, payload } => {
                self.counters.from_servers += 1;
                self.on_server(now, src, payload, out)
            }
            Input::Tick => {
                self.tick(now, out);
                Ok(())
            }
            Input::Verified { ticket, valid } => self.on_verified(now, ticket, valid, out),
            Input::Revoke { mac } => {
                self.credentials.forget(mac);
                self.verifying.retain(|_, p| p.at.mac != mac);
                self.pending.retain(|(m, _), _| *m != mac);
                self.offers.remove(&mac);
                self.unbind(mac, out);
                Ok(())
            }
        };
        if let Err(reason) = r {
            *self.counters.drops.entry(reason).or_insert(0) += 1;
            tracing::debug!(?reason, "dhcp: dropped");
        }
    }

    fn refuse(
        &mut self,
        now: Now,
        mac: MacAddr,
        isp: Option<&str>,
        reason: RefusalReason,
        out: &mut Vec<Output>,
    ) {
        self.counters.refusals += 1;
        self.counters.refusals_by_reason[reason.index()] += 1;
        // A flood from ever-new MACs passes the per-MAC limit; it must not turn into a
        // flood of store writes and log lines. Past this budget refusals are only counted.
        if !self.refusal_budget.allow(&(), now.mono) {
            self.counters.refusals_unlogged += 1;
            return;
        }
        tracing::warn!(%mac, isp = isp.unwrap_or("-"), %reason, "dhcp: logon refused");
        out.push(Output::Store(StoreWrite::Refusal(Refusal {
            at: now.wall(),
            mac,
            isp: isp.map(str::to_owned),
            reason: reason.to_string(),
        })));
    }

    /// A client on an untrusted port sent option 82 or giaddr (RFC 3046 §2.1: a forgery, or
    /// a relay on a port not configured as trusted). Dropped and counted; logged once per
    /// source MAC a minute, so the operator sees a misconfigured relay without a flood of
    /// lines from a forger.
    fn relay_info_from_client(
        &mut self,
        now: Now,
        port: u16,
        src_mac: MacAddr,
        giaddr: Ipv4Addr,
    ) -> DropReason {
        self.schedule_housekeeping(now);
        if self.relay_info_log.allow(&src_mac, now.mono) {
            self.counters.relay_info_logged += 1;
            tracing::warn!(%src_mac, port, %giaddr, "dhcp: option 82 or giaddr from an untrusted client dropped (is the port a trusted relay port?)");
        }
        DropReason::RelayInfoFromClient
    }

    fn unbind(&mut self, mac: MacAddr, out: &mut Vec<Output>) {
        if let Some(Bound { binding: b, .. }) = self.bindings.remove(&mac) {
            self.counters.removals += 1;
            out.push(Output::Store(StoreWrite::RemoveBinding(mac)));
            out.push(Output::Binding(BindingChange::Remove(b)));
        }
    }

    fn on_subscriber(
        &mut self,
        now: Now,
        (port, vlan, inner_vlan): (u16, u16, u16),
        src_mac: MacAddr,
        payload: &[u8],
        out: &mut Vec<Output>,
    ) -> Result<(), DropReason> {
        let mut msg = Message::decode(payload).map_err(|_| DropReason::Malformed)?;
        if msg.op != OP_BOOTREQUEST {
            return Err(DropReason::WrongOp);
        }
        let mac = msg.client_mac().ok_or(DropReason::ChaddrMismatch)?;
        // A relay agent in the access network (a head end's) is trusted per port (RFC 3046
        // §2.1: "trusted circuit"); its giaddr and option 82 are kept for the way back.
        // Anywhere else giaddr or option 82 from below is a forgery.
        let downstream = if msg.giaddr.is_unspecified() {
            if mac != src_mac {
                return Err(DropReason::ChaddrMismatch);
            }
            if msg.option(code::RELAY_AGENT_INFO).is_some() {
                return Err(self.relay_info_from_client(now, port, src_mac, msg.giaddr));
            }
            None
        } else if self.trusted_relay_ports.contains(&port) {
            Some(Downstream {
                giaddr: msg.giaddr,
                mac: src_mac,
                relay_info: msg.remove_option(code::RELAY_AGENT_INFO),
            })
        } else {
            return Err(self.relay_info_from_client(now, port, src_mac, msg.giaddr));
        };
        if msg.hops >= MAX_HOPS {
            return Err(DropReason::TooManyHops);
        }
        self.schedule_housekeeping(now);
        if !self.limiter.allow(&mac, now.mono) {
            return Err(DropReason::RateLimited);
        }
        let kind = msg.message_type().ok_or(DropReason::NoMessageType)?;
        let presented = credential::take(&mut msg);
        let sub = match self.dir.lookup(mac) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(%mac, error = %e, "dhcp: registry lookup failed");
                return Err(DropReason::Directory);
            }
        };
        let logon = matches!(
            kind,
            MessageType::Discover | MessageType::Request | MessageType::Inform
        );
        let Some(sub) = sub else {
            if logon {
                self.refuse(now, mac, None, RefusalReason::UnknownSubscriber, out);
            }
            return Ok(());
        };
        // A bound subscriber asking for configuration from its bound address logged on
        // already: its INFORM needs no credential (clients that send INFORM, Windows' and
        // dhcping's, do not carry the logon options). Status is still checked.
        let bound_inform = kind == MessageType::Inform
            && self
                .bindings
                .get(&mac)
                .is_some_and(|b| !msg.ciaddr.is_unspecified() && b.binding.ipv4 == msg.ciaddr);
        let at = Arrival {
            port,
            vlan,
            inner_vlan,
            mac,
            downstream,
            kind,
            logon,
        };
        if logon {
            match self.check(&sub, presented.as_ref(), bound_inform) {
                Check::Pass => {}
                Check::Refuse(reason) => {
                    self.refuse(now, mac, Some(&sub.isp), reason, out);
                    return Ok(());
                }
                Check::Verify(phc, password) => {
                    return self.park(
                        Parked {
                            since: now.mono,
                            at,
                            msg,
                            sub,
                            phc,
                            password,
                        },
                        out,
                    );
                }
            }
        }
        self.forward(now, at, msg, sub, out)
    }

    /// Parks a message until its password is verified, within the bound on verifications
    /// in flight.
    fn park(&mut self, p: Parked, out: &mut Vec<Output>) -> Result<(), DropReason> {
        if self.verifying.values().any(|q| q.at.mac == p.at.mac) {
            return Err(DropReason::VerificationPending);
        }
        if self.verifying.len() >= self.verify_queue {
            return Err(DropReason::CredentialQueueFull);
        }
        let ticket = self.next_ticket;
        self.next_ticket = self.next_ticket.wrapping_add(1);
        self.counters.credential_verifications += 1;
        out.push(Output::Verify(VerifyRequest {
            ticket,
            phc: p.phc.clone(),
            password: p.password.clone(),
        }));
        self.verifying.insert(ticket, p);
        Ok(())
    }

    /// A verification came back: the parked message goes on, or is refused.
    fn on_verified(
        &mut self,
        now: Now,
        ticket: u64,
        valid: Option<bool>,
        out: &mut Vec<Output>,
    ) -> Result<(), DropReason> {
        // None: answered already, or the subscriber was revoked meanwhile.
        let Some(p) = self.verifying.remove(&ticket) else {
            return Ok(());
        };
        match valid {
            None => Err(DropReason::CredentialQueueFull),
            Some(false) => {
                self.refuse(
                    now,
                    p.at.mac,
                    Some(&p.sub.isp),
                    RefusalReason::BadCredential,
                    out,
                );
                Ok(())
            }
            Some(true) => {
                self.credentials.remember(p.at.mac, &p.phc, &p.password);
                self.forward(now, p.at, p.msg, p.sub, out)
            }
        }
    }

    /// Relays an admitted subscriber message to its ISP's server(s).
    fn forward(
        &mut self,
        now: Now,
        at: Arrival,
        mut msg: Message,
        sub: Subscriber,
        out: &mut Vec<Output>,
    ) -> Result<(), DropReason> {
        let Arrival {
            port,
            vlan,
            inner_vlan,
            mac,
            downstream,
            kind,
            logon,
        } = at;
        let Some(route) = self.isps.get(&sub.isp).cloned() else {
            if logon {
                self.refuse(
                    now,
                    mac,
                    Some(&sub.isp),
                    RefusalReason::IspNotConfigured,
                    out,
                );
            }
            return Ok(());
        };
        let rotated: Vec<Ipv4Addr> = route
            .servers
            .iter()
            .cycle()
            .skip(route.preferred)
            .take(route.servers.len())
            .copied()
            .collect();
        let server_id = msg.ipv4_option(code::SERVER_ID);
        let binding = self.bindings.get(&mac).map(|b| b.binding.clone());
        // Which server(s) this message is for, and the server identifier it must carry.
        let (candidates, rewrite_id) = match kind {
            MessageType::Discover | MessageType::Inform => (rotated, None),
            MessageType::Request if server_id.is_some() => {
                // SELECTING: the client names the server of the OFFER it took, which is us
                // by emulation; put back the ISP server's own identifier.
                let offer = self
                    .offers
                    .get(&mac)
                    .copied()
                    .or_else(|| {
                        binding.as_ref().map(|b| Offer {
                            server: b.server,
                            server_id: b.server,
                            at: now.mono,
                        })
                    })
                    .ok_or(DropReason::NoBinding)?;
                (vec![offer.server], Some(offer.server_id))
            }
            MessageType::Request => {
                // RENEWING/REBINDING (ciaddr set) or INIT-REBOOT: the server that granted
                // the lease first, then the ISP's others.
                let mut c = Vec::new();
                if let Some(b) = &binding {
                    c.push(b.server);
                }
                for s in rotated {
                    if !c.contains(&s) {
                        c.push(s);
                    }
                }
                (c, None)
            }
            MessageType::Release | MessageType::Decline => {
                let b = binding.as_ref().ok_or(DropReason::NoBinding)?;
                (vec![b.server], Some(b.server))
            }
            _ => return Err(DropReason::UnexpectedType),
        };
        if let (Some(id), Some(_)) = (rewrite_id, server_id) {
            msg.set_option(code::SERVER_ID, id.octets().to_vec());
        }
        let inform = (kind == MessageType::Inform).then(|| Self::relay_inform(&mut msg));
        msg.giaddr = self.relay_address;
        msg.hops = msg.hops.saturating_add(1);
        let mut info = RelayAgentInfo::default()
            .circuit_id(&RelayAgentInfo::circuit_id_for(port, vlan, inner_vlan))
            .remote_id(mac);
        if let Some(link) = route.link_selection {
            info = info.link_selection(link);
        }
        info = info
            .subscriber_id(&sub.customer_id)
            .server_id_override(self.server_identifier);
        relay_info::add(&mut msg, &info).map_err(|_| DropReason::RelayInfo)?;
        let relayed = msg.encode();
        let first = *candidates.first().ok_or(DropReason::NoBinding)?;
        if matches!(kind, MessageType::Release | MessageType::Decline) {
            // No answer comes; the lease ends now (RFC 2131 §4.4.4, §4.4.6).
            self.offers.remove(&mac);
            self.unbind(mac, out);
            self.send(first, relayed, out);
            return Ok(());
        }
        let key = (mac, msg.xid);
        let (tried, deadline) = match self.pending.get(&key) {
            // A client retransmission: keep going where failover had got to, and keep the
            // deadline, or a client retransmitting faster than the timeout would pin the
            // transaction to a dead server forever.
            Some(p) if p.candidates == candidates => (p.tried, p.deadline),
            _ => (0, now.mono + self.timeout),
        };
        if !self.pending.contains_key(&key) && self.pending.len() >= MAX_PENDING {
            return Err(DropReason::Overloaded);
        }
        let target = candidates.get(tried).copied().unwrap_or(first);
        self.keep_pending(
            key,
            Pending {
                port,
                vlan,
                inner_vlan,
                downstream,
                isp: sub.isp,
                kind,
                relayed: relayed.clone(),
                candidates,
                tried,
                deadline,
                inform,
            },
        );
        self.send(target, relayed, out);
        Ok(())
    }

    /// Prepares a DHCPINFORM for the ISP's server so that its answer comes back through the
    /// gateway; returns the client's ciaddr and flags, to be put back in the answer.
    ///
    /// RFC 2131 §4.3.5 has the server unicast the DHCPACK to ciaddr, and Kea does so even
    /// when giaddr is set; from the ISP's network ciaddr need not lead back to the
    /// subscriber (its traffic goes over the label path, not back through the relay
    /// address), so the answer was lost. The gateway is the client's server here (its
    /// server identifier stands in for the ISP's) and the ISP server's client: it asks with
    /// ciaddr 0, so the server answers the relay at giaddr (§4.1, which Kea follows for an
    /// INFORM without ciaddr), and it then answers the client itself as §4.3.5 requires of
    /// a server: unicast to ciaddr (see [`Engine::emulate`]). The ISP still knows the
    /// address: it leased it, and option 82 names the subscriber.
    fn relay_inform(msg: &mut Message) -> (Ipv4Addr, u16) {
        let client = (msg.ciaddr, msg.flags);
        msg.ciaddr = Ipv4Addr::UNSPECIFIED;
        client
    }

    /// The registry checks of a logon. `bound_inform`: a DHCPINFORM from the subscriber's
    /// bound address, which needs no credential. A wrong customer id is refused without
    /// spending a verification; a password not in the cache must be verified.
    fn check(
        &mut self,
        sub: &Subscriber,
        presented: Option<&credential::Credential>,
        bound_inform: bool,
    ) -> Check {
        if sub.status == Status::Suspended {
            self.credentials.forget(sub.mac);
            return Check::Refuse(RefusalReason::Suspended);
        }
        match presented {
            None if bound_inform => Check::Pass,
            None if self.require_credential => Check::Refuse(RefusalReason::MissingCredential),
            None => Check::Pass,
            Some(c) if c.customer_id != sub.customer_id => {
                Check::Refuse(RefusalReason::BadCredential)
            }
            Some(c) => match &sub.password_hash {
                None if c.password.is_empty() => Check::Pass,
                None => Check::Refuse(RefusalReason::BadCredential),
                Some(h) if self.credentials.hit(sub.mac, h, &c.password) => {
                    self.counters.credential_cache_hits = self.credentials.hits();
                    Check::Pass
                }
                Some(h) => Check::Verify(h.clone(), c.password.clone()),
            },
        }
    }

    fn send(&mut self, server: Ipv4Addr, payload: Vec<u8>, out: &mut Vec<Output>) {
        self.counters.relayed += 1;
        out.push(Output::ToServer {
            dst: SocketAddrV4::new(server, SERVER_PORT),
            payload,
        });
    }

    fn on_server(
        &mut self,
        now: Now,
        src: SocketAddrV4,
        payload: &[u8],
        out: &mut Vec<Output>,
    ) -> Result<(), DropReason> {
        let mut msg = Message::decode(payload).map_err(|_| DropReason::Malformed)?;
        if msg.op != OP_BOOTREPLY {
            return Err(DropReason::WrongOp);
        }
        let mac = msg.client_mac().ok_or(DropReason::ChaddrMismatch)?;
        let key = (mac, msg.xid);
        let p = self.pending.get(&key).ok_or(DropReason::NoTransaction)?;
        let server = *src.ip();
        if !p.candidates.contains(&server) {
            return Err(DropReason::UnexpectedServer);
        }
        let kind = msg.message_type().ok_or(DropReason::NoMessageType)?;
        if !matches!(
            kind,
            MessageType::Offer | MessageType::Ack | MessageType::Nak
        ) {
            return Err(DropReason::UnexpectedType);
        }
        // The reply must answer the request pending under this xid (RFC 2131 §3.1: OFFER
        // answers DISCOVER; ACK or NAK answer REQUEST; ACK answers INFORM). A client keeps
        // its xid from DISCOVER to REQUEST, so a late OFFER to a retransmitted DISCOVER
        // would otherwise take the REQUEST's transaction and its ACK would find none.
        let answers = match kind {
            MessageType::Offer => p.kind == MessageType::Discover,
            MessageType::Nak => p.kind == MessageType::Request,
            _ => matches!(p.kind, MessageType::Request | MessageType::Inform),
        };
        if !answers {
            return Err(DropReason::NoTransaction);
        }
        let Some(p) = self.pending.remove(&key) else {
            return Err(DropReason::NoTransaction);
        };
        if let Some(route) = self.isps.get_mut(&p.isp) {
            if let Some(i) = route.servers.iter().position(|s| *s == server) {
                route.preferred = i;
            }
        }
        relay_info::strip(&mut msg);
        let isp_server_id = msg.ipv4_option(code::SERVER_ID).unwrap_or(server);
        match kind {
            MessageType::Offer => {
                self.schedule_housekeeping(now);
                self.offers.insert(
                    mac,
                    Offer {
                        server,
                        server_id: isp_server_id,
                        at: now.mono,
                    },
                );
            }
            MessageType::Ack if p.kind == MessageType::Inform => {
                // Configuration only, no lease (RFC 2131 §3.4), whatever yiaddr says.
                if let Some((ciaddr, flags)) = p.inform {
                    msg.ciaddr = ciaddr;
                    msg.flags = flags;
                }
            }
            MessageType::Ack if !msg.yiaddr.is_unspecified() => {
                let lease = msg
                    .u32_option(code::LEASE_TIME)
                    .map(|s| Duration::from_secs(u64::from(s)))
                    .unwrap_or(DEFAULT_LEASE);
                let b = Binding {
                    mac,
                    isp: p.isp.clone(),
                    ipv4: msg.yiaddr,
                    expires: now
                        .wall()
                        .checked_add(lease)
                        .unwrap_or(now.wall() + DEFAULT_LEASE),
                    server,
                    port: p.port,
                    vlan: p.vlan,
                    inner_vlan: p.inner_vlan,
                };
                if let Some(Bound { binding: old, .. }) = self.bindings.get(&mac) {
                    if (old.ipv4, old.port, old.vlan, &old.isp) != (b.ipv4, b.port, b.vlan, &b.isp)
                    {
                        self.unbind(mac, out);
                    }
                }
                self.offers.remove(&mac);
                let until = now
                    .mono
                    .checked_add(lease)
                    .unwrap_or(now.mono + DEFAULT_LEASE);
                self.keep_binding(b.clone(), until);
                self.counters.installs += 1;
                out.push(Output::Store(StoreWrite::UpsertBinding(b.clone())));
                out.push(Output::Binding(BindingChange::Install(b)));
            }
            MessageType::Ack => {} // An ACK without an address: nothing to install.
            _ => {
                let text = msg
                    .option(code::MESSAGE)
                    .map(|m| String::from_utf8_lossy(m).into_owned())
                    .unwrap_or_default();
                self.offers.remove(&mac);
                self.unbind(mac, out);
                self.refuse(now, mac, Some(&p.isp), RefusalReason::Nak(text), out);
            }
        }
        let reply = self.emulate(&mut msg, kind, mac, &p);
        self.counters.replies += 1;
        out.push(Output::ToSubscriber(reply));
        Ok(())
    }

    /// Turns the ISP's reply into one from the gateway as server (claims 11, 15).
    fn emulate(&self, msg: &mut Message, kind: MessageType, mac: MacAddr, p: &Pending) -> Reply {
        msg.set_option(code::SERVER_ID, self.server_identifier.octets().to_vec());
        if let Some(d) = &p.downstream {
            // Back to the relay below, as a server answers a relay (RFC 2131 §4.1: to
            // giaddr, port 67), with its own option 82 restored for it to strip.
            msg.giaddr = d.giaddr;
            if let Some(ri) = &d.relay_info {
                msg.set_option(code::RELAY_AGENT_INFO, ri.clone());
            }
            return Reply {
                port: p.port,
                vlan: p.vlan,
                inner_vlan: p.inner_vlan,
                dst_mac: d.mac,
                dst_ip: d.giaddr,
                dst_port: SERVER_PORT,
                src_ip: self.server_identifier,
                broadcast: false,
                payload: msg.encode(),
            };
        }
        msg.giaddr = Ipv4Addr::UNSPECIFIED;
        // RFC 2131 §4.1, for a server with giaddr 0: NAK broadcast; ciaddr set → unicast
        // there; BROADCAST bit → broadcast; else unicast to yiaddr at chaddr.
        let (dst_ip, broadcast) = if kind == MessageType::Nak {
            (Ipv4Addr::BROADCAST, true)
        } else if !msg.ciaddr.is_unspecified() {
            (msg.ciaddr, false)
        } else if msg.broadcast() {
            (Ipv4Addr::BROADCAST, true)
        } else {
            (msg.yiaddr, false)
        };
        Reply {
            port: p.port,
            vlan: p.vlan,
            inner_vlan: p.inner_vlan,
            dst_mac: if broadcast { MacAddr::BROADCAST } else { mac },
            dst_ip,
            dst_port: CLIENT_PORT,
            src_ip: self.server_identifier,
            broadcast,
            payload: msg.encode(),
        }
    }

    fn tick(&mut self, now: Now, out: &mut Vec<Output>) {
        while let Some((at, timer)) = self.timers.pop_due(now.mono) {
            match timer {
                Timer::Transaction(mac, xid) => self.transaction_timeout(now, at, (mac, xid), out),
                Timer::Lease(mac) => {
                    // Stale if the lease was renewed (or ended) since this entry was pushed.
                    if self.bindings.get(&mac).is_some_and(|b| b.until == at) {
                        tracing::info!(%mac, "dhcp: lease expired");
                        self.unbind(mac, out);
                    }
                }
            }
        }
        if self
            .timers
            .needs_rebuild(self.pending.len() + self.bindings.len())
        {
            let live = self
                .pending
                .iter()
                .map(|(k, p)| (p.deadline, Timer::Transaction(k.0, k.1)));
            let leases = self
                .bindings
                .values()
                .map(|b| (b.until, Timer::Lease(b.binding.mac)));
            let all: Vec<_> = live.chain(leases).collect();
            self.timers.rebuild(all);
        }
        if self.housekeeping.is_some_and(|h| h <= now.mono) {
            self.offers
                .retain(|_, o| now.mono.saturating_duration_since(o.at) < OFFER_MEMORY);
            self.limiter.prune(now.mono);
            self.relay_info_log.prune(now.mono);
            let parked = self.verifying.len();
            self.verifying
                .retain(|_, p| now.mono.saturating_duration_since(p.since) < VERIFY_TIMEOUT);
            let lost = (parked - self.verifying.len()) as u64;
            if lost > 0 {
                tracing::warn!(lost, "dhcp: password verifications never came back");
                *self
                    .counters
                    .drops
                    .entry(DropReason::CredentialQueueFull)
                    .or_insert(0) += lost;
            }
            self.housekeeping = None;
            if !self.offers.is_empty()
                || !self.limiter.is_empty()
                || !self.relay_info_log.is_empty()
                || !self.verifying.is_empty()
            {
                self.schedule_housekeeping(now);
            }
        }
    }

    /// A relayed request's deadline `at` passed: fail over to the ISP's next server, or
    /// record that none answered.
    fn transaction_timeout(
        &mut self,
        now: Now,
        at: Instant,
        key: (MacAddr, u32),
        out: &mut Vec<Output>,
    ) {
        // Stale if answered, or if a failover moved the deadline, since it was pushed.
        if self.pending.get(&key).is_none_or(|p| p.deadline != at) {
            return;
        }
        let Some(mut p) = self.pending.remove(&key) else {
            return;
        };
        p.tried += 1;
        if let Some(next) = p.candidates.get(p.tried).copied() {
            // Failover: the next server gets the same extended request, and becomes
            // the ISP's preferred one if it answers.
            tracing::warn!(isp = %p.isp, %next, "dhcp: server timeout, failing over");
            self.counters.failovers += 1;
            p.deadline = now.mono + self.timeout;
            let payload = p.relayed.clone();
            self.keep_pending(key, p);
            self.send(next, payload, out);
        } else if p.kind != MessageType::Inform {
            self.refuse(now, key.0, Some(&p.isp), RefusalReason::NoAnswer, out);
        }
    }
}

#[cfg(test)]
mod tests;
