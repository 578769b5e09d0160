//! LDP's TCP connections (RFC 5036 §2.5.1, port 646): a nonblocking listener on the
//! transport address, connections accepted and held until the engine keeps or refuses
//! them, connections opened for the active side, and each session's bounded write buffer.
//!
//! Nothing here blocks the slow path: every socket is nonblocking, each connection reads
//! at most [`RX_PER_TURN`] bytes a turn, and a peer that does not read what it is sent (its
//! write buffer past [`TX_MAX`]) is closed and counted, not waited for. Bytes read go to
//! the engine as they are: it frames and parses them (a peer sending garbage is the
//! engine's to answer); a peer closing or resetting is `Closed`.
//!
//! Session security (RFC 5036 §2.9, RFC 6720):
//! - TCP MD5: a neighbour with a key (by LSR ID) has it installed on the listener for its
//!   LSR ID from the start, and for the transport address its Hellos give as soon as one is
//!   heard ([`Tcp::key_transport`]); the kernel then drops its unsigned or badly signed
//!   segments. A connection from that address accepted before the key was there is refused
//!   when the engine wants it as the keyed neighbour's session. A connection opened to a
//!   keyed neighbour has the key before it connects.
//! - GTSM: every LDP segment leaves with TTL 255 (the listener's SYN-ACKs too, so a peer
//!   connecting with GTSM takes them); a session the engine says uses GTSM also drops
//!   segments that arrive with a lower TTL (`IP_MINTTL` 255: only a directly connected
//!   sender can make them arrive with 255).

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

/// LDP's well-known port.
pub const LDP_PORT: u16 = 646;
/// Bytes a session may have waiting to be written: a peer that lets more pile up does not
/// read, and is closed (a label table dump of 1,000 FECs is ~ 30 KiB).
pub const TX_MAX: usize = 1 << 20;
/// Bytes read from one connection per turn at most.
pub const RX_PER_TURN: usize = 64 * 1024;
/// Bytes held from an accepted connection that the engine has not kept yet: the peer's
/// Initialization and perhaps a KeepAlive; more is not a peer waiting for an answer.
pub const HELD_RX_MAX: usize = 16 * 1024;
/// Accepted connections held for the engine's answer at most (each for up to 5 s).
const MAX_HELD: usize = 64;
/// Connections accepted per turn at most.
const ACCEPT_PER_TURN: usize = 16;
/// How long a connection opened for the active side may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closed session's last bytes (its Notification) may take to leave.
const LINGER: Duration = Duration::from_secs(2);
/// Linux errno of a nonblocking connect under way.
const EINPROGRESS: i32 = 115;
/// The TTL every LDP segment leaves with, and the least a GTSM session accepts (RFC 5082
/// §3 for a directly connected peer).
pub const GTSM_TTL: u8 = 255;

/// What happened to the connections, for the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A connection came in from `from`.
    Accepted { from: Ipv4Addr },
    /// The connection opened for the session with `peer` is up.
    Connected { peer: Ipv4Addr },
    /// Bytes read from the session with `peer`.
    Data { peer: Ipv4Addr, data: Vec<u8> },
    /// The session's connection closed, failed or was closed here (write buffer full).
    Closed { peer: Ipv4Addr },
}

/// Counters of the connections.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TcpCounters {
    pub accepted: u64,
    /// Connections that failed: refused, reset, timed out, a read or write error.
    pub errors: u64,
    /// Sessions closed because the peer did not read (write buffer over [`TX_MAX`]).
    pub overflows: u64,
    /// Connections refused as a keyed neighbour's session because they were accepted
    /// before its key was on the listener (so possibly unsigned).
    pub md5_refused: u64,
}

/// How a read ended.
#[derive(Debug, PartialEq, Eq)]
enum ReadEnd {
    /// Nothing more to read now.
    Open,
    /// The peer closed (end of stream).
    Eof,
    /// A read error (reset).
    Error,
}

/// One TCP connection and what waits to be written to it.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    tx: VecDeque<u8>,
    /// The most bytes that may wait in `tx`.
    tx_max: usize,
}

/// The write buffer would pass its bound: the peer does not read.
#[derive(Debug, PartialEq, Eq)]
pub struct Overflow;

impl Conn {
    /// Wraps a connected stream, made nonblocking.
    pub fn new(stream: TcpStream, tx_max: usize) -> io::Result<Conn> {
        stream.set_nonblocking(true)?;
        // PDUs are small and each waits for an answer: no Nagle delay.
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            tx: VecDeque::new(),
            tx_max,
        })
    }

    /// Bytes waiting to be written.
    pub fn pending(&self) -> usize {
        self.tx.len()
    }

    /// Queues `data` and writes what the socket takes now.
    pub fn send(&mut self, data: &[u8]) -> Result<io::Result<()>, Overflow> {
        if self.tx.len() + data.len() > self.tx_max {
            return Err(Overflow);
        }
        self.tx.extend(data);
        Ok(self.flush())
    }

    /// Writes what waits, as far as the socket takes it without blocking.
    pub fn flush(&mut self) -> io::Result<()> {
        while !self.tx.is_empty() {
            let (head, _) = self.tx.as_slices();
            match self.stream.write(head) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.tx.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads up to `max` bytes onto `buf`.
    fn read(&mut self, buf: &mut Vec<u8>, max: usize) -> ReadEnd {
        let mut chunk = [0u8; 4096];
        let mut got = 0;
        while got < max {
            let want = chunk.len().min(max - got);
            match self.stream.read(&mut chunk[..want]) {
                Ok(0) => return ReadEnd::Eof,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    got += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadEnd::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return ReadEnd::Error,
            }
        }
        ReadEnd::Open
    }
}

/// An accepted connection the engine has not kept or refused yet.
struct Held {
    conn: Conn,
    rx: Vec<u8>,
    /// The peer closed it meanwhile: after its bytes, the session gets `Closed`.
    ended: bool,
    /// The neighbour whose MD5 key the listener had for this address when the connection
    /// was accepted: the kernel checked every segment of it against that key.
    signed_by: Option<Ipv4Addr>,
}

/// A connection opened for the active side, not up yet.
struct Connecting {
    sock: Socket,
    since: Instant,
}

/// The TCP side of LDP.
pub struct Tcp {
    listener: TcpListener,
    /// TCP MD5 keys by neighbour LSR ID.
    keys: BTreeMap<Ipv4Addr, Vec<u8>>,
    /// The addresses the listener has a key for, and whose key.
    keyed: BTreeMap<Ipv4Addr, Ipv4Addr>,
    held: BTreeMap<Ipv4Addr, Held>,
    connecting: BTreeMap<Ipv4Addr, Connecting>,
    sessions: BTreeMap<Ipv4Addr, Conn>,
    /// Closed sessions whose last bytes are still leaving, until their deadline.
    closing: Vec<(Conn, Instant)>,
    counters: TcpCounters,
    tx_max: usize,
}

impl Tcp {
    /// Listens on `transport`:646 with the neighbours' MD5 `keys` (by LSR ID). The
    /// address may be added later (`IP_FREEBIND`): a loopback address configured after
    /// start still gets its sessions.
    pub fn listen(transport: Ipv4Addr, keys: BTreeMap<Ipv4Addr, Vec<u8>>) -> io::Result<Tcp> {
        Tcp::listen_at(SocketAddrV4::new(transport, LDP_PORT), TX_MAX, keys)
    }

    /// [`Tcp::listen`] on any address and with any write bound (tests).
    pub fn listen_at(
        at: SocketAddrV4,
        tx_max: usize,
        keys: BTreeMap<Ipv4Addr, Vec<u8>>,
    ) -> io::Result<Tcp> {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        s.set_reuse_address(true)?;
        s.set_freebind(true)?;
        s.set_ttl(u32::from(GTSM_TTL))?;
        // Before listen(): no connection from a keyed neighbour's LSR ID can come in
        // unsigned. Most neighbours' transport address is their LSR ID.
        let mut keyed = BTreeMap::new();
        for (lsr, key) in &keys {
            ispmux_sys::set_tcp_md5sig(&s, *lsr, key)?;
            keyed.insert(*lsr, *lsr);
        }
        s.bind(&SocketAddr::V4(at).into())?;
        s.listen(16)?;
        s.set_nonblocking(true)?;
        Ok(Tcp {
            listener: s.into(),
            keys,
            keyed,
            held: BTreeMap::new(),
            connecting: BTreeMap::new(),
            sessions: BTreeMap::new(),
            closing: Vec::new(),
            counters: TcpCounters::default(),
            tx_max,
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn counters(&self) -> TcpCounters {
        self.counters
    }

    /// Sessions with a connection up.
    pub fn connected(&self) -> usize {
        self.sessions.len()
    }

    /// Whether the neighbour `lsr` has an MD5 key.
    pub fn has_key(&self, lsr: Ipv4Addr) -> bool {
        self.keys.contains_key(&lsr)
    }

    /// The keyed neighbour `lsr` is heard with transport address `addr`: the listener gets
    /// its key for `addr` (once; an address already keyed for another neighbour keeps that
    /// one). Connections from `addr` already accepted or waiting in the kernel's queue came
    /// in before the key: they are taken off the queue now, and marked unsigned.
    pub fn key_transport(&mut self, lsr: Ipv4Addr, addr: Ipv4Addr, ev: &mut Vec<Event>) {
        let Some(key) = self.keys.get(&lsr) else {
            return;
        };
        match self.keyed.get(&addr) {
            Some(owner) if *owner == lsr => return,
            Some(owner) => {
                tracing::warn!(%lsr, %addr, %owner, "ldp: a keyed neighbour's transport address is another keyed neighbour's; keeping the first key");
                return;
            }
            None => {}
        }
        // The address this neighbour was heard with before (not its LSR ID, keyed for
        // good) loses the key: a neighbour has one transport address.
        let old: Vec<Ipv4Addr> = self
            .keyed
            .iter()
            .filter(|(a, o)| **o == lsr && **a != lsr)
            .map(|(a, _)| *a)
            .collect();
        for a in old {
            if ispmux_sys::set_tcp_md5sig(self.listener.as_fd(), a, b"").is_ok() {
                self.keyed.remove(&a);
            }
        }
        if let Err(e) = ispmux_sys::set_tcp_md5sig(self.listener.as_fd(), addr, key) {
            // Without the key on the listener, nothing from `addr` is taken as the
            // neighbour's session (`accept` checks): the session stays down.
            tracing::warn!(%lsr, %addr, error = %e, "ldp: could not install the neighbour's TCP MD5 key");
            self.counters.errors += 1;
            return;
        }
        self.accept_new(ev);
        self.keyed.insert(addr, lsr);
        tracing::debug!(%lsr, %addr, "ldp: TCP MD5 key installed on the listener");
    }

    /// One turn: accepts, finishes connects, reads, and writes what waits.
    pub fn poll(&mut self, now: Instant, ev: &mut Vec<Event>) {
        self.accept_new(ev);
        self.finish_connects(now, ev);
        for (from, h) in &mut self.held {
            if !h.ended {
                let room = HELD_RX_MAX.saturating_sub(h.rx.len());
                if room > 0 && h.conn.read(&mut h.rx, room) != ReadEnd::Open {
                    // Kept until the engine decides: `accept` then says it closed.
                    h.ended = true;
                    tracing::debug!(%from, "ldp: a held connection closed");
                }
            }
        }
        let mut gone = Vec::new();
        for (peer, c) in &mut self.sessions {
            let mut data = Vec::new();
            let end = c.read(&mut data, RX_PER_TURN);
            if !data.is_empty() {
                ev.push(Event::Data { peer: *peer, data });
            }
            let failed = c.flush().is_err();
            if end != ReadEnd::Open || failed {
                if end == ReadEnd::Error || failed {
                    self.counters.errors += 1;
                }
                gone.push(*peer);
            }
        }
        for peer in gone {
            self.sessions.remove(&peer);
            tracing::debug!(%peer, "ldp: session connection closed");
            ev.push(Event::Closed { peer });
        }
        self.closing
            .retain_mut(|(c, until)| now < *until && c.pending() > 0 && c.flush().is_ok());
    }

    fn accept_new(&mut self, ev: &mut Vec<Event>) {
        for _ in 0..ACCEPT_PER_TURN {
            let (stream, addr) = match self.listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.counters.errors += 1;
                    tracing::debug!(error = %e, "ldp: accept");
                    return;
                }
            };
            let SocketAddr::V4(addr) = addr else {
                continue;
            };
            let Ok(conn) = Conn::new(stream, self.tx_max) else {
                self.counters.errors += 1;
                continue;
            };
            let from = *addr.ip();
            if self.held.len() >= MAX_HELD && !self.held.contains_key(&from) {
                // Connections from many addresses at once are not LDP peers coming up.
                self.counters.errors += 1;
                continue;
            }
            self.counters.accepted += 1;
            // A second connection from the same address replaces the first (the peer gave
            // up on it); the engine hears of each.
            self.held.insert(
                from,
                Held {
                    conn,
                    rx: Vec::new(),
                    ended: false,
                    signed_by: self.keyed.get(&from).copied(),
                },
            );
            ev.push(Event::Accepted { from });
        }
    }

    fn finish_connects(&mut self, now: Instant, ev: &mut Vec<Event>) {
        let mut done = Vec::new();
        for (peer, c) in &self.connecting {
            let failed = match c.sock.take_error() {
                Ok(Some(_)) | Err(_) => true,
                Ok(None) => false,
            };
            if failed || now.saturating_duration_since(c.since) >= CONNECT_TIMEOUT {
                done.push((*peer, false));
            } else if c.sock.peer_addr().is_ok() {
                done.push((*peer, true));
            }
        }
        for (peer, up) in done {
            let Some(c) = self.connecting.remove(&peer) else {
                continue;
            };
            match up.then(|| Conn::new(c.sock.into(), self.tx_max)) {
                Some(Ok(conn)) => {
                    self.sessions.insert(peer, conn);
                    ev.push(Event::Connected { peer });
                }
                _ => {
                    self.counters.errors += 1;
                    ev.push(Event::Closed { peer });
                }
            }
        }
    }

    /// Opens a connection from `local` to `remote`:646 for the session with `peer`, signed
    /// with `peer`'s MD5 key if it has one, with GTSM if `gtsm`; a failure at once is
    /// `Closed`.
    pub fn connect(
        &mut self,
        now: Instant,
        peer: Ipv4Addr,
        local: Ipv4Addr,
        remote: Ipv4Addr,
        gtsm: bool,
        ev: &mut Vec<Event>,
    ) {
        self.drop_conn(peer);
        let key = self.keys.get(&peer).map(Vec::as_slice);
        match start_connect(local, SocketAddrV4::new(remote, LDP_PORT), key, gtsm) {
            Ok(sock) => {
                self.connecting
                    .insert(peer, Connecting { sock, since: now });
            }
            Err(e) => {
                tracing::debug!(%peer, %remote, error = %e, "ldp: connect");
                self.counters.errors += 1;
                ev.push(Event::Closed { peer });
            }
        }
    }

    /// Keeps the connection accepted from `from` as the session with `peer`, with GTSM if
    /// `gtsm`: what it read meanwhile follows as `Data` (and `Closed` if it ended). A keyed
    /// neighbour's session must have come in with the listener checking its key; one that
    /// did not is closed instead (`Closed`), and the neighbour's next attempt is signed.
    pub fn accept(&mut self, from: Ipv4Addr, peer: Ipv4Addr, gtsm: bool, ev: &mut Vec<Event>) {
        let Some(h) = self.held.remove(&from) else {
            ev.push(Event::Closed { peer });
            return;
        };
        if self.keys.contains_key(&peer) && h.signed_by != Some(peer) {
            tracing::warn!(%peer, %from, "ldp: refusing a connection accepted before the neighbour's TCP MD5 key was installed");
            self.counters.md5_refused += 1;
            ev.push(Event::Closed { peer });
            return;
        }
        if gtsm {
            if let Err(e) = ispmux_sys::set_ip_minttl(h.conn.stream.as_fd(), GTSM_TTL) {
                tracing::warn!(%peer, error = %e, "ldp: could not set GTSM on the session");
                self.counters.errors += 1;
                ev.push(Event::Closed { peer });
                return;
            }
        }
        self.drop_conn(peer);
        if !h.rx.is_empty() {
            ev.push(Event::Data { peer, data: h.rx });
        }
        if h.ended {
            ev.push(Event::Closed { peer });
        } else {
            self.sessions.insert(peer, h.conn);
        }
    }

    /// Closes the connection accepted from `from`.
    pub fn refuse(&mut self, from: Ipv4Addr) {
        self.held.remove(&from);
    }

    /// Writes `data` to the session with `peer`; a peer that does not read, a write error
    /// or no connection is `Closed`.
    pub fn send(&mut self, peer: Ipv4Addr, data: &[u8], ev: &mut Vec<Event>) {
        let Some(c) = self.sessions.get_mut(&peer) else {
            // The connection went (and its `Closed` is on its way) or never came up.
            return;
        };
        match c.send(data) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "ldp: write");
                self.counters.errors += 1;
                self.sessions.remove(&peer);
                ev.push(Event::Closed { peer });
            }
            Err(Overflow) => {
                tracing::warn!(%peer, bytes = c.pending(), "ldp: the peer does not read; closing its session");
                self.counters.overflows += 1;
                self.sessions.remove(&peer);
                ev.push(Event::Closed { peer });
            }
        }
    }

    /// Closes the session's connection once what was sent has left (within [`LINGER`]).
    pub fn close(&mut self, now: Instant, peer: Ipv4Addr) {
        self.connecting.remove(&peer);
        if let Some(c) = self.sessions.remove(&peer) {
            if c.pending() > 0 {
                self.closing.push((c, now + LINGER));
            }
        }
    }

    /// Writes what closed sessions still have, once, without waiting (at shutdown).
    pub fn flush_closing(&mut self) {
        for (c, _) in &mut self.closing {
            let _ = c.flush();
        }
        self.closing.clear();
    }

    fn drop_conn(&mut self, peer: Ipv4Addr) {
        self.connecting.remove(&peer);
        self.sessions.remove(&peer);
    }
}

/// A nonblocking connect from `local` (any port) to `remote`, under way, signed with `key`
/// and with GTSM if asked.
fn start_connect(
    local: Ipv4Addr,
    remote: SocketAddrV4,
    key: Option<&[u8]>,
    gtsm: bool,
) -> io::Result<Socket> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    s.set_freebind(true)?;
    s.set_ttl(u32::from(GTSM_TTL))?;
    if gtsm {
        ispmux_sys::set_ip_minttl(&s, GTSM_TTL)?;
    }
    if let Some(key) = key {
        ispmux_sys::set_tcp_md5sig(&s, *remote.ip(), key)?;
    }
    s.bind(&SocketAddr::V4(SocketAddrV4::new(local, 0)).into())?;
    s.set_nonblocking(true)?;
    match s.connect(&SocketAddr::V4(remote).into()) {
        Ok(()) => Ok(s),
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) => Ok(s),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(s),
        Err(e) => Err(e),
    }
}

/// What the kernel counted of TCP MD5 (`TcpExt` of `/proc/net/netstat`, for the whole
/// network namespace): segments dropped because a key was expected and missing, was
/// present and not expected, or did not match. A neighbour with a wrong key shows here:
/// its connection attempts never reach the listener.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KernelMd5 {
    pub not_found: u64,
    pub unexpected: u64,
    pub failure: u64,
}

impl KernelMd5 {
    /// Reads the counters of the calling thread's network namespace; zeros if unreadable.
    pub fn read() -> KernelMd5 {
        std::fs::read_to_string("/proc/net/netstat")
            .map(|t| KernelMd5::parse(&t))
            .unwrap_or_default()
    }

    /// The counters from the text of `/proc/net/netstat`: a `TcpExt:` line of names, then
    /// one of values.
    pub fn parse(text: &str) -> KernelMd5 {
        let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
        let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
            return KernelMd5::default();
        };
        let mut m = KernelMd5::default();
        for (n, v) in names
            .split_whitespace()
            .zip(values.split_whitespace())
            .skip(1)
        {
            let v = v.parse().unwrap_or(0);
            match n {
                "TCPMD5NotFound" => m.not_found = v,
                "TCPMD5Unexpected" => m.unexpected = v,
                "TCPMD5Failure" => m.failure = v,
                _ => {}
            }
        }
        m
    }
}

#[cfg(test)]
mod tests;
