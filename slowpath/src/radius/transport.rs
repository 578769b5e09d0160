//! Runs the engine on kernel UDP sockets with mio: two NAS-facing listeners, upstream sockets
//! created per identifier slot, the usage store committed before a NAS is acknowledged.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ispmux_conf::radius::RadiusConfig;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use tracing::{error, info, warn};

use super::committer::{Batch, Committer};
use super::dedup::Retired;
use super::engine::{ConfigError, Engine, Input, Listener, Now, Output};
use super::stats::RadiusStats;
use super::usage::{UsageEvent, UsageStore};
use crate::store::StoreError;
use crate::udp_batch::{RecvBatch, SendBatch};

/// Why the proxy cannot run.
#[derive(Debug, thiserror::Error)]
pub enum RadiusError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("radius: usage store: {0}")]
    Store(#[from] StoreError),
    #[error("radius: socket {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("radius: poll: {0}")]
    Poll(std::io::Error),
    #[error("radius: the proxy thread stopped")]
    Gone,
    #[error("radius: no client SP named {0:?}")]
    UnknownCsp(String),
    #[error("radius: reload refused: {0}")]
    Reload(String),
}

/// What suspending or resuming a client SP did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suspension {
    /// Whether the CSP was suspended before.
    pub was_suspended: bool,
    /// Disconnect-Requests sent to the NASes of its sessions (RFC 5176).
    pub disconnect_requests: u64,
}

/// Requests to a running proxy.
pub enum Control {
    /// `None` back when no CSP has that name.
    Suspend {
        csp: String,
        suspended: bool,
        reply: mpsc::Sender<Option<Suspension>>,
    },
    Counters(mpsc::Sender<RadiusStats>),
    /// A reload: the realms, client SPs and capacities of this configuration.
    Reload {
        cfg: Box<RadiusConfig>,
        reply: mpsc::Sender<Result<(), String>>,
    },
}

const AUTH: Token = Token(0);
const ACCT: Token = Token(1);
const WAKE: Token = Token(2);
const SLOT0: usize = 3;
/// Datagrams read from one socket per poll round, so that timers, control and the usage
/// commit of a round are not starved by a flood on one socket.
const ROUND: usize = 256;
/// Datagrams per recvmmsg and sendmmsg call.
const BATCH: usize = 64;

/// Datagrams of one poll round, per socket: sent when every readable socket has been read,
/// so that one sendmmsg carries all of a round's datagrams to a socket.
#[derive(Default)]
struct Outbox {
    auth: Vec<(Vec<u8>, SocketAddr)>,
    acct: Vec<(Vec<u8>, SocketAddr)>,
    slots: Vec<Vec<(Vec<u8>, SocketAddr)>>,
    /// Slots with datagrams waiting, each once.
    dirty: Vec<u16>,
}

/// A proxy bound to its sockets, ready to run.
pub struct Proxy {
    poll: Poll,
    auth: UdpSocket,
    acct: UdpSocket,
    slots: Vec<UdpSocket>,
    source: Option<IpAddr>,
    engine: Engine,
    committer: Committer,
    control: Option<mpsc::Receiver<Control>>,
    outbox: Outbox,
    out: Vec<Output>,
    /// Answers of this poll round that wait for usage records, handed to the committer at
    /// the end of the round.
    pending: Batch,
    /// Sockets left with datagrams at the end of the last round.
    unfinished: Vec<Token>,
    /// To the thread that drops expired duplicate-cache answers (`None`: none could be
    /// started; they are then dropped in the loop).
    reaper: Option<mpsc::Sender<Retired>>,
    /// See `busy_poll_us` of the configuration.
    busy_poll: Duration,
    /// Datagrams read in the current poll round.
    round_read: usize,
}

/// The reaper's pause between the generations it drops.
const REAP_PAUSE: Duration = Duration::from_micros(500);

/// A thread that drops what it is sent: unmapping a generation of cached answers after a
/// burst (tens of megabytes) takes milliseconds that the event loop would otherwise spend
/// with requests waiting.
fn start_reaper() -> Option<mpsc::Sender<Retired>> {
    let (tx, rx) = mpsc::channel::<Retired>();
    let spawned = std::thread::Builder::new()
        .name("radius-reaper".into())
        .spawn(move || {
            for retired in rx {
                retired.free_gently(REAP_PAUSE);
            }
        });
    match spawned {
        Ok(_) => Some(tx),
        Err(e) => {
            warn!(error = %e, "radius: no reaper thread; expired answers freed in the loop");
            None
        }
    }
}

/// Socket buffers asked for: a burst of logons after an outage must not overflow the default
/// ~200 KiB, about 256 datagrams.
const SOCKET_BUFFER: usize = 4 << 20;

fn bind(addr: SocketAddr) -> Result<UdpSocket, RadiusError> {
    Ok(UdpSocket::from_std(bind_socket(addr)?.into()))
}

fn bind_socket(addr: SocketAddr) -> Result<socket2::Socket, RadiusError> {
    let err = |source| RadiusError::Bind { addr, source };
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .map_err(err)?;
    // Best effort: a smaller buffer still works.
    crate::udp_batch::enlarge_buffers(&s, SOCKET_BUFFER);
    s.set_nonblocking(true).map_err(err)?;
    s.bind(&addr.into()).map_err(err)?;
    Ok(s)
}

/// A listener for the loop and a clone of it for the committer's answers.
fn bind_listener(addr: SocketAddr) -> Result<(UdpSocket, std::net::UdpSocket), RadiusError> {
    let s = bind_socket(addr)?;
    let clone = s
        .try_clone()
        .map_err(|source| RadiusError::Bind { addr, source })?;
    Ok((UdpSocket::from_std(s.into()), clone.into()))
}

impl Proxy {
    /// Binds the listeners and opens the usage store (`None`: records kept in memory only).
    pub fn bind(cfg: &RadiusConfig, db_path: Option<&Path>) -> Result<Proxy, RadiusError> {
        let now = Now::system();
        let mut engine = Engine::new(cfg, now.mono)?;
        let store = match db_path {
            Some(p) => UsageStore::open(p)?,
            None => UsageStore::in_memory()?,
        };
        engine.restore(&store.open_sessions()?, &store.records()?, now.unix);
        engine.restore_suspensions(&store.suspensions()?);
        let poll = Poll::new().map_err(RadiusError::Poll)?;
        let (mut auth, auth_clone) = bind_listener(cfg.listen_auth)?;
        let (mut acct, acct_clone) = bind_listener(cfg.listen_acct)?;
        let committer =
            Committer::start(store, auth_clone, acct_clone).map_err(RadiusError::Poll)?;
        poll.registry()
            .register(&mut auth, AUTH, Interest::READABLE)
            .map_err(RadiusError::Poll)?;
        poll.registry()
            .register(&mut acct, ACCT, Interest::READABLE)
            .map_err(RadiusError::Poll)?;
        Ok(Proxy {
            poll,
            auth,
            acct,
            slots: Vec::new(),
            source: cfg.source_address,
            engine,
            committer,
            control: None,
            outbox: Outbox::default(),
            out: Vec::new(),
            pending: Batch::default(),
            unfinished: Vec::new(),
            reaper: start_reaper(),
            busy_poll: Duration::from_micros(cfg.timeouts.busy_poll_us),
            round_read: 0,
        })
    }

    /// The bound listener addresses (auth, acct).
    pub fn local_addrs(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        (self.auth.local_addr().ok(), self.acct.local_addr().ok())
    }

    /// Runs until `stop` is set.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<(), RadiusError> {
        let mut events = Events::with_capacity(256);
        // Made here, in the proxy's thread: the kernel's message headers are not Send.
        let mut rx = RecvBatch::new(BATCH);
        let mut tx = SendBatch::new(BATCH);
        info!(auth = ?self.auth.local_addr().ok(), acct = ?self.acct.local_addr().ok(), "radius proxy running");
        // Until when the sockets are polled without sleeping (busy poll).
        let mut spin_until: Option<Instant> = None;
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let wait = self
                .engine
                .next_timeout()
                .map_or(Duration::from_millis(100), |t| {
                    t.saturating_duration_since(now)
                })
                .min(Duration::from_millis(100));
            let spinning = spin_until.is_some_and(|t| now < t);
            let wait = if self.unfinished.is_empty() && !spinning {
                wait
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(RadiusError::Poll(e));
            }
            self.round_read = 0;
            let mut ready: Vec<Token> = std::mem::take(&mut self.unfinished);
            for ev in events.iter() {
                if !ready.contains(&ev.token()) {
                    ready.push(ev.token());
                }
            }
            for token in ready {
                let more = match token {
                    AUTH => self.drain(&mut rx, Some(Listener::Auth), 0),
                    ACCT => self.drain(&mut rx, Some(Listener::Acct), 0),
                    WAKE => false,
                    Token(t) => self.drain(&mut rx, None, (t - SLOT0) as u16),
                };
                if more {
                    self.unfinished.push(token);
                }
            }
            if self
                .engine
                .next_timeout()
                .is_some_and(|t| t <= Instant::now())
            {
                self.step(Input::Timer);
            }
            self.serve_control();
            self.flush_sends(&mut tx);
            self.flush_committed();
            self.reap();
            if self.round_read > 0 && !self.busy_poll.is_zero() {
                // Requests went to home servers: their answers are due within tens of
                // microseconds; with none in flight the next datagram is a NAS's, whenever.
                spin_until = (self.engine.in_flight() > 0).then(|| Instant::now() + self.busy_poll);
            }
        }
        Ok(())
    }

    fn serve_control(&mut self) {
        let Some(rx) = &self.control else {
            return;
        };
        let msgs: Vec<Control> = rx.try_iter().collect();
        for m in msgs {
            match m {
                Control::Suspend {
                    csp,
                    suspended,
                    reply,
                } => {
                    let was = self.engine.csp_suspended(&csp);
                    let before = self.engine.counter("event", "disconnect_sent");
                    if was.is_some() {
                        self.step(Input::Suspend {
                            csp: &csp,
                            suspended,
                        });
                        // Committed with the round's usage records: it outlives a restart.
                        self.pending.events.push(UsageEvent::Suspension {
                            csp: csp.clone(),
                            suspended,
                            at: Now::system().unix,
                        });
                    }
                    let after = self.engine.counter("event", "disconnect_sent");
                    let _ = reply.send(was.map(|was_suspended| Suspension {
                        was_suspended,
                        disconnect_requests: after - before,
                    }));
                }
                Control::Reload { cfg, reply } => {
                    let r = self
                        .engine
                        .reconfigure(&cfg, Instant::now())
                        .map_err(|e| e.to_string());
                    if r.is_ok() {
                        info!(client_sps = cfg.client_sp.len(), "radius: reloaded");
                    }
                    let _ = reply.send(r);
                }
                Control::Counters(reply) => {
                    let mut c: BTreeMap<String, u64> = self
                        .engine
                        .counters()
                        .iter()
                        .map(|((g, n), v)| (format!("{g}.{n}"), *v))
                        .collect();
                    // A level, not a count: `ports_in_use.CSP` (a gauge in the metrics).
                    for (csp, n) in self.engine.csp_ports_in_use(Instant::now()) {
                        c.insert(format!("ports_in_use.{csp}"), n as u64);
                    }
                    let _ = reply.send(RadiusStats {
                        counters: c,
                        home_servers: self.engine.home_server_stats(),
                        client_sps: self.engine.csp_stats(),
                    });
                }
            }
        }
    }

    /// Reads up to a round's worth of datagrams, a batch per system call; true if the socket
    /// may hold more (it is then read again next round, as edge-triggered polling will not
    /// say so again).
    fn drain(&mut self, rx: &mut RecvBatch, listener: Option<Listener>, slot: u16) -> bool {
        let mut read = 0;
        let more = loop {
            if read >= ROUND {
                break true;
            }
            let sock = match listener {
                Some(Listener::Auth) => &self.auth,
                Some(Listener::Acct) => &self.acct,
                None => match self.slots.get(usize::from(slot)) {
                    Some(s) => s,
                    None => break false,
                },
            };
            let n = match rx.recv(sock, false) {
                Ok(0) => break false,
                Ok(n) => n,
                // ICMP port unreachable from a dead server may show up here; the timers
                // handle it. Counted as a read so that a stream of errors ends the round.
                Err(_) => {
                    read += 1;
                    continue;
                }
            };
            read += n;
            self.round_read += n;
            let now = Now::system();
            for i in 0..n {
                let Some((data, Some(from))) = rx.get(i) else {
                    continue;
                };
                let input = match listener {
                    Some(listener) => Input::Nas {
                        listener,
                        from,
                        data,
                    },
                    None => Input::Peer { slot, from, data },
                };
                self.step_at(now, input);
            }
            // Fewer than a batch: the socket is empty now, and a datagram arriving later is a
            // new readiness event.
            if n < BATCH {
                break false;
            }
        };
        more
    }

    fn step(&mut self, input: Input<'_>) {
        self.step_at(Now::system(), input);
    }

    fn step_at(&mut self, now: Now, input: Input<'_>) {
        let mut out = std::mem::take(&mut self.out);
        self.engine.handle(now, input, &mut out);
        for o in out.drain(..) {
            self.carry_out(o);
        }
        self.out = out;
    }

    fn carry_out(&mut self, o: Output) {
        match o {
            Output::ToNas {
                listener,
                to,
                data,
                commit,
            } => {
                if !commit.is_empty() {
                    self.pending.events.extend(commit);
                    self.pending.answers.push((listener, to, data));
                    return;
                }
                match listener {
                    Listener::Auth => self.outbox.auth.push((data, to)),
                    Listener::Acct => self.outbox.acct.push((data, to)),
                }
            }
            Output::ToPeer { slot, to, data } => {
                // Opened now, so that the answer finds it registered.
                if self.slot(slot, to).is_none() {
                    return;
                }
                let i = usize::from(slot);
                if self.outbox.slots.len() <= i {
                    self.outbox.slots.resize_with(i + 1, Vec::new);
                }
                if self.outbox.slots[i].is_empty() {
                    self.outbox.dirty.push(slot);
                }
                self.outbox.slots[i].push((data, to));
            }
        }
    }

    /// Sends the round's datagrams, one sendmmsg per socket and batch.
    fn flush_sends(&mut self, tx: &mut SendBatch) {
        let warn_nas = &mut |to: SocketAddr, e: std::io::Error| {
            warn!(%to, error = %e, "radius: send to NAS failed");
        };
        for (sock, q) in [
            (&self.auth, &mut self.outbox.auth),
            (&self.acct, &mut self.outbox.acct),
        ] {
            if !q.is_empty() {
                tx.send(sock, q, warn_nas);
                q.clear();
            }
        }
        let warn_up = &mut |to: SocketAddr, e: std::io::Error| {
            warn!(%to, error = %e, "radius: send upstream failed");
        };
        for slot in self.outbox.dirty.drain(..) {
            let i = usize::from(slot);
            if let (Some(sock), Some(q)) = (self.slots.get(i), self.outbox.slots.get_mut(i)) {
                tx.send(sock, q, warn_up);
                q.clear();
            }
        }
    }

    /// Hands expired duplicate-cache answers to the reaper, after the round's sends.
    fn reap(&mut self) {
        let Some(retired) = self.engine.take_retired() else {
            return;
        };
        if let Some(reaper) = &self.reaper {
            // A reaper that stopped hands the generation back, and it is dropped here.
            let _ = reaper.send(retired);
        }
    }

    /// Hands the round's answers that wait for usage records to the committer.
    fn flush_committed(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        if !self.committer.submit(batch) {
            error!("radius: the usage committer stopped; NASes not acknowledged");
        }
    }

    /// Upstream socket `slot`, opening sockets up to it on first use.
    fn slot(&mut self, slot: u16, to: SocketAddr) -> Option<&UdpSocket> {
        while self.slots.len() <= usize::from(slot) {
            let ip = self.source.unwrap_or(match to {
                SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            });
            let mut s = match bind(SocketAddr::new(ip, 0)) {
                Ok(s) => s,
                Err(e) => {
                    error!(error = %e, "radius: cannot open an upstream socket");
                    return None;
                }
            };
            let token = Token(SLOT0 + self.slots.len());
            if let Err(e) = self
                .poll
                .registry()
                .register(&mut s, token, Interest::READABLE)
            {
                error!(error = %e, "radius: cannot poll an upstream socket");
                return None;
            }
            self.slots.push(s);
        }
        self.slots.get(usize::from(slot))
    }
}

/// Runs a proxy in the calling thread until `stop` is set (`ispmux radius-proxy -c FILE`).
pub fn run_standalone(
    cfg: &RadiusConfig,
    db_path: Option<&Path>,
    stop: Arc<AtomicBool>,
) -> Result<(), RadiusError> {
    Proxy::bind(cfg, db_path)?.run(&stop)
}

/// A proxy running in its own thread (`ispmux run`, tests).
pub struct ProxyHandle {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    control: mpsc::Sender<Control>,
    thread: Option<JoinHandle<Result<(), RadiusError>>>,
    pub auth_addr: SocketAddr,
    pub acct_addr: SocketAddr,
}

impl ProxyHandle {
    /// Binds (so the addresses are known and in use on return) and starts the proxy thread.
    pub fn spawn(cfg: &RadiusConfig, db_path: Option<&Path>) -> Result<ProxyHandle, RadiusError> {
        let mut p = Proxy::bind(cfg, db_path)?;
        let (auth, acct) = p.local_addrs();
        let waker = Arc::new(Waker::new(p.poll.registry(), WAKE).map_err(RadiusError::Poll)?);
        let (tx, rx) = mpsc::channel();
        p.control = Some(rx);
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("radius-proxy".into())
            .spawn(move || p.run(&s2))
            .map_err(RadiusError::Poll)?;
        Ok(ProxyHandle {
            stop,
            waker,
            control: tx,
            thread: Some(thread),
            auth_addr: auth.unwrap_or(cfg.listen_auth),
            acct_addr: acct.unwrap_or(cfg.listen_acct),
        })
    }

    /// Suspends or resumes a CSP (sessions are disconnected at their NAS on suspension);
    /// returns once the proxy has done it.
    pub fn suspend(&self, csp: &str, suspended: bool) -> Result<Suspension, RadiusError> {
        let (tx, rx) = mpsc::channel();
        self.control
            .send(Control::Suspend {
                csp: csp.to_owned(),
                suspended,
                reply: tx,
            })
            .map_err(|_| RadiusError::Gone)?;
        self.waker.wake().map_err(RadiusError::Poll)?;
        rx.recv_timeout(Duration::from_secs(5))
            .map_err(|_| RadiusError::Gone)?
            .ok_or_else(|| RadiusError::UnknownCsp(csp.to_owned()))
    }

    /// Takes the realms, client SPs and capacities of `cfg` (a reload, see
    /// [`Engine::reconfigure`](super::engine::Engine::reconfigure)); returns once the
    /// proxy has.
    pub fn reload(&self, cfg: &RadiusConfig) -> Result<(), RadiusError> {
        let (tx, rx) = mpsc::channel();
        self.control
            .send(Control::Reload {
                cfg: Box::new(cfg.clone()),
                reply: tx,
            })
            .map_err(|_| RadiusError::Gone)?;
        self.waker.wake().map_err(RadiusError::Poll)?;
        rx.recv_timeout(Duration::from_secs(5))
            .map_err(|_| RadiusError::Gone)?
            .map_err(RadiusError::Reload)
    }

    /// The engine's counters, as `group.name` -> count.
    pub fn counters(&self) -> Result<BTreeMap<String, u64>, RadiusError> {
        self.stats().map(|s| s.counters)
    }

    /// Everything the engine counts: its counters by name, per home server, per client SP.
    pub fn stats(&self) -> Result<RadiusStats, RadiusError> {
        let (tx, rx) = mpsc::channel();
        self.control
            .send(Control::Counters(tx))
            .map_err(|_| RadiusError::Gone)?;
        self.waker.wake().map_err(RadiusError::Poll)?;
        rx.recv_timeout(Duration::from_secs(5))
            .map_err(|_| RadiusError::Gone)
    }

    /// False once the proxy thread has ended (stopped, or failed: `stop` then says why).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the proxy and waits for its thread.
    pub fn stop(mut self) -> Result<(), RadiusError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), RadiusError> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| RadiusError::Gone)?,
            None => Ok(()),
        }
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
