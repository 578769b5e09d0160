//! The logon engine wired to its surroundings: punted frames in, the ISP-side socket, the
//! registry as store, and frames to inject plus binding changes out. What the slow-path
//! thread calls; the DPDK punt/inject rings and the table-update mechanism stay outside.
//!
//! Group commit: [`LogonService::punt`], [`LogonService::poll_isp`], [`LogonService::tick`]
//! and [`LogonService::revoke`] only stage the engine's outputs; [`LogonService::flush`]
//! writes every staged store write in one transaction (one fsync per burst rather than per
//! logon, which at ~1k fsync/s would cap logons below what one Kea server does), and only
//! then hands out the binding changes and replies of the messages that wrote the store (an
//! ACK's binding, a release); with the writer thread, the replies of messages that wrote
//! nothing (OFFERs) go out at once. A failed commit drops the batch's installs and
//! replies: nothing reaches the fast path or the subscriber that the store does not have.
//! Datagrams to ISP servers acknowledge nothing and are sent either way.

use std::io;
use std::net::SocketAddrV4;

use ispmux_conf::dhcp::DhcpConfig;

use std::collections::{HashSet, VecDeque};
use std::path::Path;

use super::engine::{BindingChange, DropReason, Engine, Input, Output, Reply};
use super::frame;
use super::transport::IspSocket;
use super::verifier::{VerifierPool, VerifyRequest, VERIFY_QUEUE};
use super::writer::StoreWriter;

/// Argon2 threads: one, so a storm of wrong passwords takes at most one core from the
/// forwarding workers and the slow-path loop.
const VERIFY_THREADS: usize = 1;
use super::MacAddr;
use crate::registry::{Registry, RegistryError};
use crate::time::Now;

/// A frame for the inject path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inject {
    /// Access port to send on.
    pub port: u16,
    /// The Ethernet frame.
    pub frame: Vec<u8>,
}

/// What the caller must carry out after a flush.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Effects {
    /// Frames to inject towards subscribers.
    pub inject: Vec<Inject>,
    /// Changes for the fast-path tables (already durable in the store).
    pub bindings: Vec<BindingChange>,
}

/// Failures around the engine, counted.
#[derive(Debug, Clone, Default)]
pub struct ServiceCounters {
    /// Punted frames that were not DHCP to port 67.
    pub bad_frames: u64,
    /// Messages from subscribers carrying option 82 or giaddr on a port that is not a
    /// trusted relay port (dropped; logged once per source MAC a minute).
    pub relay_info_from_client: u64,
    /// Store commits that failed (their batch's installs and replies were dropped).
    pub store_errors: u64,
    /// Datagrams the socket refused to send.
    pub send_errors: u64,
    /// Store commits made.
    pub commits: u64,
    /// Logons dropped because the password verifications in flight were at their bound.
    pub credential_queue_full: u64,
    /// Replies that could not be framed (dropped): no MAC known for their port, or a VID
    /// out of range.
    pub unframed_replies: u64,
}

/// The logon service.
pub struct LogonService {
    engine: Engine<Registry>,
    sock: IspSocket,
    /// The MAC of each port by configuration port index: a reply leaves from the MAC of
    /// the access port it is sent on.
    port_macs: Vec<MacAddr>,
    staged: Vec<Output>,
    /// Where each engine call's outputs end in `staged` (what follows the last end is one
    /// more group): a call's replies wait for a commit only if that call wrote the store.
    group_ends: Vec<usize>,
    /// With a writer thread: batches waiting for their commit, in order, by the batch id
    /// they wait for and whether that commit holds their own writes (a batch without writes
    /// only keeps its place behind it).
    writer: Option<StoreWriter>,
    waiting: VecDeque<(u64, bool, Vec<Output>)>,
    /// Argon2 verifications, off this thread.
    verifier: VerifierPool,
    /// Tickets the pool could not take, answered "not verified" on the next poll.
    unverified: Vec<u64>,
    /// The writer reports batches in submission order: every id up to this one is done.
    done_through: u64,
    /// Done ids whose commit failed (rare; pruned as batches are released).
    failed: HashSet<u64>,
    counters: ServiceCounters,
}

/// Starting the service failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Binding the ISP-side socket failed.
    #[error("binding the ISP-side DHCP socket: {0}")]
    Bind(#[from] io::Error),
    /// Reading bindings from the registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The password verification thread could not be started.
    #[error("starting the password verification thread: {0}")]
    Verifier(io::Error),
}

impl LogonService {
    /// Binds `relay_address`:67, reloads the bindings in the registry and returns the
    /// installs for the fast path (bindings survive a restart). `port_macs` holds the MAC
    /// of every port by configuration port index (the `port` of [`LogonService::punt`]).
    pub fn start(
        cfg: &DhcpConfig,
        registry: Registry,
        port_macs: Vec<MacAddr>,
        now: Now,
    ) -> Result<(LogonService, Effects), StartError> {
        let sock = IspSocket::bind(cfg.relay_address)?;
        Self::with_socket(cfg, registry, port_macs, sock, now)
    }

    /// As [`LogonService::start`] with a socket already bound.
    pub fn with_socket(
        cfg: &DhcpConfig,
        registry: Registry,
        port_macs: Vec<MacAddr>,
        sock: IspSocket,
        now: Now,
    ) -> Result<(LogonService, Effects), StartError> {
        let stored = registry.bindings()?;
        let mut engine = Engine::new(cfg, registry);
        let staged = engine.restore(now, stored);
        let mut svc = LogonService {
            engine,
            sock,
            port_macs,
            staged,
            group_ends: Vec::new(),
            writer: None,
            waiting: VecDeque::new(),
            verifier: VerifierPool::spawn(VERIFY_THREADS, VERIFY_QUEUE)
                .map_err(StartError::Verifier)?,
            unverified: Vec::new(),
            done_through: 0,
            failed: HashSet::new(),
            counters: ServiceCounters::default(),
        };
        let fx = svc.flush();
        Ok((svc, fx))
    }

    /// As [`LogonService::start`] for a registry file, committing in a writer thread (see
    /// [`super::writer`]): [`LogonService::flush`] then returns the effects of batches whose
    /// commit has completed, so call it on every turn of the loop.
    pub fn start_with_writer(
        cfg: &DhcpConfig,
        path: &Path,
        port_macs: Vec<MacAddr>,
        now: Now,
    ) -> Result<(LogonService, Effects), StartError> {
        let (mut svc, mut fx) = Self::start(cfg, Registry::open(path)?, port_macs, now)?;
        let more = svc.use_writer(path)?;
        fx.inject.extend(more.inject);
        fx.bindings.extend(more.bindings);
        Ok((svc, fx))
    }

    /// Moves commits to a writer thread with its own connection to the registry at `path`
    /// (the file this service's registry reads); returns what was still staged, committed.
    pub fn use_writer(&mut self, path: &Path) -> Result<Effects, StartError> {
        let fx = self.drain();
        self.writer = Some(StoreWriter::spawn(path)?);
        Ok(fx)
    }

    /// Waits until every submitted batch is committed and returns their effects.
    pub fn drain(&mut self) -> Effects {
        let mut fx = self.flush();
        while !self.waiting.is_empty() {
            let Some((id, ok)) = self.writer.as_mut().and_then(StoreWriter::wait) else {
                break;
            };
            self.record(id, ok);
            let more = self.release();
            fx.inject.extend(more.inject);
            fx.bindings.extend(more.bindings);
        }
        fx
    }

    /// Stages a frame from the punt ring that arrived on access `port`.
    pub fn punt(&mut self, now: Now, port: u16, frame: &[u8]) {
        let Ok(p) = frame::parse_punt(frame) else {
            self.counters.bad_frames += 1;
            return;
        };
        self.engine.handle_into(
            now,
            Input::FromSubscriber {
                port,
                vlan: p.vlan,
                inner_vlan: p.inner_vlan,
                src_mac: p.src_mac,
                payload: p.payload,
            },
            &mut self.staged,
        );
        self.group_ends.push(self.staged.len());
        self.mirror_counters();
    }

    /// The engine's drops the service reports as counters of its own.
    fn mirror_counters(&mut self) {
        let c = self.engine.counters();
        self.counters.relay_info_from_client = c.dropped(DropReason::RelayInfoFromClient);
        self.counters.credential_queue_full = c.dropped(DropReason::CredentialQueueFull);
    }

    /// Takes in what arrived from outside the loop: finished password verifications, then
    /// the datagrams on the ISP-side socket. Call on every turn (not only when the socket
    /// is readable: verifications finish on their own threads).
    pub fn poll_isp(&mut self, now: Now) -> io::Result<()> {
        self.poll_verifier(now);
        while let Some((src, payload)) = self.sock.recv()? {
            // Straight from the socket's buffer: no copy per datagram.
            self.engine
                .handle_into(now, Input::FromServer { src, payload }, &mut self.staged);
            self.group_ends.push(self.staged.len());
        }
        Ok(())
    }

    /// Timer: call at or after [`LogonService::next_deadline`].
    pub fn tick(&mut self, now: Now) {
        self.engine.handle_into(now, Input::Tick, &mut self.staged);
        self.group_ends.push(self.staged.len());
        self.mirror_counters();
    }

    /// The control side removed or suspended a subscriber.
    pub fn revoke(&mut self, now: Now, mac: MacAddr) {
        self.engine
            .handle_into(now, Input::Revoke { mac }, &mut self.staged);
        self.group_ends.push(self.staged.len());
    }

    /// Takes `cfg`'s ISPs and their servers (a reload, [`Engine::set_isps`]); the bindings
    /// of ISPs that are gone are released like revocations. Returns how many.
    pub fn set_isps(&mut self, cfg: &DhcpConfig) -> usize {
        let n = self.engine.set_isps(cfg, &mut self.staged);
        self.group_ends.push(self.staged.len());
        n
    }

    /// When [`LogonService::tick`] is next needed.
    pub fn next_deadline(&self) -> Option<std::time::Instant> {
        self.engine.next_deadline()
    }

    /// The ISP-side socket, to register with a `mio::Poll`.
    pub fn socket(&mut self) -> &mut mio::net::UdpSocket {
        self.sock.source()
    }

    /// The engine (counters, bindings).
    pub fn engine(&self) -> &Engine<Registry> {
        &self.engine
    }

    /// The registry (CLI-style reads in tests and the control socket).
    pub fn registry(&mut self) -> &mut Registry {
        self.engine.directory_mut()
    }

    /// Hands a password verification to the pool; one the pool cannot take is answered
    /// "not verified" on the next poll (the logon is dropped and counted).
    fn verify(&mut self, r: VerifyRequest) {
        if let Err(r) = self.verifier.submit(r) {
            self.unverified.push(r.ticket);
        }
    }

    /// Feeds finished verifications back to the engine.
    fn poll_verifier(&mut self, now: Now) {
        let done = self.verifier.completed();
        let unverified = std::mem::take(&mut self.unverified);
        let results = done
            .into_iter()
            .map(|(t, ok)| (t, Some(ok)))
            .chain(unverified.into_iter().map(|t| (t, None)));
        for (ticket, valid) in results {
            self.engine
                .handle_into(now, Input::Verified { ticket, valid }, &mut self.staged);
            self.group_ends.push(self.staged.len());
        }
        self.mirror_counters();
    }

    /// Every counter of the logon proxy by name, for the control side: the service's,
    /// the engine's, and the engine's drops as `drop_<reason>` (zeros included, so the set
    /// of names is fixed).
    pub fn counter_values(&self) -> Vec<(String, u64)> {
        let s = &self.counters;
        let e = self.engine.counters();
        let mut v: Vec<(String, u64)> = [
            ("bad_frames", s.bad_frames),
            ("relay_info_from_client", s.relay_info_from_client),
            ("store_errors", s.store_errors),
            ("send_errors", s.send_errors),
            ("commits", s.commits),
            ("credential_queue_full", s.credential_queue_full),
            ("unframed_replies", s.unframed_replies),
            ("from_subscribers", e.from_subscribers),
            ("from_servers", e.from_servers),
            ("relayed", e.relayed),
            ("replies", e.replies),
            ("failovers", e.failovers),
            ("installs", e.installs),
            ("removals", e.removals),
            ("refusals", e.refusals),
            ("refusals_unlogged", e.refusals_unlogged),
            ("relay_info_logged", e.relay_info_logged),
            ("credential_verifications", e.credential_verifications),
            ("credential_cache_hits", e.credential_cache_hits),
        ]
        .into_iter()
        .map(|(n, c)| (n.to_owned(), c))
        .collect();
        v.extend(
            super::engine::RefusalReason::NAMES
                .iter()
                .zip(e.refusals_by_reason)
                .map(|(r, n)| (format!("refused_{r}"), n)),
        );
        v.extend(
            super::engine::DropReason::ALL
                .iter()
                .map(|r| (format!("drop_{}", r.name()), e.dropped(*r))),
        );
        v
    }

    /// Failures around the engine.
    pub fn counters(&self) -> &ServiceCounters {
        &self.counters
    }

    /// The reply as a frame for its access port, from that port's MAC; `None` (counted)
    /// when it cannot be framed.
    fn frame_reply(&mut self, r: &Reply) -> Option<Inject> {
        let Some(&src) = self.port_macs.get(usize::from(r.port)) else {
            self.counters.unframed_replies += 1;
            tracing::warn!(port = r.port, "dhcp: reply for a port with no known MAC");
            return None;
        };
        match frame::build_reply(src, r) {
            Ok(frame) => Some(Inject {
                port: r.port,
                frame,
            }),
            Err(e) => {
                self.counters.unframed_replies += 1;
                tracing::warn!(port = r.port, vlan = r.vlan, error = %e, "dhcp: reply not framed");
                None
            }
        }
    }

    fn send(&mut self, dst: SocketAddrV4, payload: &[u8]) {
        if let Err(e) = self.sock.send(dst, payload) {
            self.counters.send_errors += 1;
            tracing::warn!(%dst, error = %e, "dhcp: send to ISP server failed");
        }
    }

    /// Commits the staged store writes, then sends, and returns what the fast path and the
    /// inject path must do, in the engine's order. With a writer thread, submits them and
    /// returns what earlier commits released.
    pub fn flush(&mut self) -> Effects {
        if self.writer.is_some() {
            return self.flush_via_writer();
        }
        self.group_ends.clear();
        let staged = std::mem::take(&mut self.staged);
        let mut writes = staged
            .iter()
            .filter_map(|o| match o {
                Output::Store(w) => Some(w),
                _ => None,
            })
            .peekable();
        let durable = if writes.peek().is_none() {
            true
        } else {
            match self.engine.directory_mut().apply_all(writes) {
                Ok(()) => {
                    self.counters.commits += 1;
                    true
                }
                Err(e) => {
                    self.counters.store_errors += 1;
                    tracing::error!(error = %e, "dhcp: store commit failed; batch dropped");
                    false
                }
            }
        };
        let mut fx = Effects::default();
        for o in staged {
            match o {
                Output::Store(_) => {}
                Output::ToServer { dst, payload } => self.send(dst, &payload),
                Output::Verify(r) => self.verify(r),
                Output::Binding(c) if durable => fx.bindings.push(c),
                Output::ToSubscriber(r) if durable => fx.inject.extend(self.frame_reply(&r)),
                Output::Binding(_) | Output::ToSubscriber(_) => {}
            }
        }
        fx
    }

    fn flush_via_writer(&mut self) -> Effects {
        let staged = std::mem::take(&mut self.staged);
        let mut ends = std::mem::take(&mut self.group_ends);
        ends.push(staged.len());
        // Per engine call: did it write the store? Only then do its replies and binding
        // changes wait for the commit. An OFFER (no write) goes out at once instead of
        // waiting behind other subscribers' commits: under a slow disk that wait made
        // OFFERs late enough for clients to give up on them (dhcp-logon).
        let mut writes_in_group = Vec::with_capacity(ends.len());
        let mut start = 0;
        for &end in &ends {
            let end = end.clamp(start, staged.len());
            let group = staged.get(start..end).unwrap_or_default();
            writes_in_group.push((end, group.iter().any(|o| matches!(o, Output::Store(_)))));
            start = end;
        }
        let mut writes = Vec::new();
        let mut held = Vec::new();
        let mut fx = Effects::default();
        let mut groups = writes_in_group.into_iter();
        let mut current = groups.next();
        for (i, o) in staged.into_iter().enumerate() {
            while current.is_some_and(|(end, _)| i >= end) {
                current = groups.next();
            }
            let wrote = current.is_some_and(|(_, w)| w);
            match o {
                Output::Store(w) => writes.push(w),
                // Sends acknowledge nothing: no need to wait for the commit.
                Output::ToServer { dst, payload } => self.send(dst, &payload),
                Output::Verify(r) => self.verify(r),
                other if wrote => held.push(other),
                Output::Binding(c) => fx.bindings.push(c),
                Output::ToSubscriber(r) => fx.inject.extend(self.frame_reply(&r)),
            }
        }
        if !writes.is_empty() {
            match self.writer.as_mut().and_then(|w| w.submit(writes)) {
                Some(id) => {
                    if !held.is_empty() {
                        self.waiting.push_back((id, true, held));
                    }
                }
                None => {
                    self.counters.store_errors += 1;
                    tracing::error!("dhcp: store writer gone; batch dropped");
                }
            }
        }
        let done = self.writer.as_mut().map(StoreWriter::completed);
        for (id, ok) in done.into_iter().flatten() {
            self.record(id, ok);
        }
        let released = self.release();
        fx.inject.extend(released.inject);
        fx.bindings.extend(released.bindings);
        fx
    }

    fn record(&mut self, id: u64, ok: bool) {
        self.done_through = self.done_through.max(id);
        if !ok {
            self.failed.insert(id);
        }
    }

    /// Releases waiting batches, in order, whose commit is known.
    fn release(&mut self) -> Effects {
        let mut fx = Effects::default();
        while self
            .waiting
            .front()
            .is_some_and(|(id, _, _)| *id <= self.done_through)
        {
            let Some((id, own_writes, held)) = self.waiting.pop_front() else {
                break;
            };
            let ok = !own_writes || !self.failed.contains(&id);
            if ok {
                self.counters.commits += 1;
            } else {
                self.counters.store_errors += 1;
            }
            for o in held {
                match o {
                    Output::Binding(c) if ok => fx.bindings.push(c),
                    Output::ToSubscriber(r) if ok => fx.inject.extend(self.frame_reply(&r)),
                    _ => {}
                }
            }
        }
        let oldest = self.waiting.front().map(|(id, _, _)| *id);
        self.failed.retain(|id| oldest.is_some_and(|o| *id >= o));
        fx
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::{Duration, UNIX_EPOCH};

    use ispmux_conf::dhcp::{IspDhcpConfig, RateLimitConfig};

    use super::*;
    use crate::dhcp::engine::{Reply, StoreWrite};
    use crate::dhcp::{Message, MessageType};
    use crate::registry::Binding;

    fn svc() -> LogonService {
        let cfg = DhcpConfig {
            relay_address: Ipv4Addr::LOCALHOST,
            server_identifier: Ipv4Addr::new(198, 18, 64, 1),
            require_credential: false,
            trusted_relay_ports: vec![],
            trusted_relay_port_ids: vec![],
            server_timeout_ms: 100,
            rate_limit: RateLimitConfig::default(),
            unregistered_per_s: 50,

            isps: vec![IspDhcpConfig {
                name: "isp-a".into(),
                servers: vec![Ipv4Addr::new(127, 0, 0, 2)],
                link_selection: None,
                refusal_webhook: None,
                refusal_webhook_secret: None,
            }],
        };
        let sock = IspSocket::bind_port(Ipv4Addr::LOCALHOST, 0).expect("socket");
        let reg = Registry::open_in_memory().expect("registry");
        let (s, fx) = LogonService::with_socket(
            &cfg,
            reg,
            vec![MacAddr([2, 0, 0, 0, 0, 0xfe]); 8],
            sock,
            Now::system(),
        )
        .expect("start");
        assert_eq!(fx, Effects::default());
        s
    }

    #[test]
    fn each_reply_leaves_from_its_own_ports_mac() {
        let mut s = svc();
        let macs = [
            MacAddr([2, 0, 0, 0, 0xa0, 0]),
            MacAddr([2, 0, 0, 0, 0xa1, 0]),
            MacAddr([2, 0, 0, 0, 0xa2, 0]),
        ];
        s.port_macs = macs.to_vec();
        let reply = |port| Reply {
            port,
            vlan: 0,
            inner_vlan: 0,
            dst_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_ip: Ipv4Addr::BROADCAST,
            dst_port: 68,
            src_ip: Ipv4Addr::new(198, 18, 64, 1),
            broadcast: true,
            payload: vec![port as u8],
        };
        s.staged = [1, 2, 7]
            .into_iter()
            .map(|p| Output::ToSubscriber(reply(p)))
            .collect();
        let fx = s.flush();
        let sent: Vec<(u16, MacAddr)> = fx
            .inject
            .iter()
            .map(|i| (i.port, MacAddr::from_bytes(&i.frame[6..]).expect("src")))
            .collect();
        assert_eq!(sent, vec![(1, macs[1]), (2, macs[2])]);
        assert_eq!(s.counters().unframed_replies, 1, "port 7 has no MAC");
    }

    #[test]
    fn relay_info_from_a_client_is_a_service_counter() {
        let mut s = svc();
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        let mut m = Message::new_request(mac, 1, MessageType::Discover);
        m.giaddr = Ipv4Addr::new(10, 0, 0, 1);
        let f = frame::build_udp(
            MacAddr::BROADCAST,
            mac,
            (0, 0),
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::BROADCAST,
            67,
            67,
            &m.encode(),
        )
        .expect("frame");
        s.punt(Now::system(), 4, &f);
        s.punt(Now::system(), 4, &f);
        assert_eq!(s.flush(), Effects::default());
        assert_eq!(s.counters().relay_info_from_client, 2);
        assert_eq!(s.engine().counters().relay_info_logged, 1);
    }

    #[test]
    fn punted_frame_from_unknown_mac_is_refused_in_the_store() {
        let mut s = svc();
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        let m = Message::new_request(mac, 1, MessageType::Discover);
        let f = frame::build_udp(
            MacAddr::BROADCAST,
            mac,
            (100, 0),
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            68,
            67,
            &m.encode(),
        )
        .expect("frame");
        s.punt(Now::system(), 4, &f);
        assert_eq!(s.flush(), Effects::default());
        let r = s.registry().refusals(5).expect("refusals");
        assert_eq!((r.len(), r[0].mac), (1, mac));
        s.punt(Now::system(), 4, &f[..20]);
        assert_eq!(s.flush(), Effects::default());
        assert_eq!(s.counters().bad_frames, 1);
    }

    #[test]
    fn a_failed_store_write_stops_install_and_reply() {
        let mut s = svc();
        // The binding's subscriber is not registered: the foreign key refuses the write.
        let b = Binding {
            mac: MacAddr([2, 0, 0, 0, 0, 9]),
            isp: "isp-a".into(),
            ipv4: Ipv4Addr::new(198, 18, 100, 5),
            expires: UNIX_EPOCH + Duration::from_secs(600),
            server: Ipv4Addr::new(127, 0, 0, 2),
            port: 1,
            vlan: 0,
            inner_vlan: 0,
        };
        let reply = Reply {
            port: 1,
            vlan: 0,
            inner_vlan: 0,
            dst_mac: b.mac,
            dst_ip: b.ipv4,
            dst_port: 68,
            src_ip: Ipv4Addr::new(198, 18, 64, 1),
            broadcast: false,
            payload: vec![0; 300],
        };
        s.staged = vec![
            Output::Store(StoreWrite::Refusal(crate::registry::Refusal {
                at: UNIX_EPOCH,
                mac: b.mac,
                isp: None,
                reason: "earlier in the batch".into(),
            })),
            Output::Store(StoreWrite::UpsertBinding(b.clone())),
            Output::Binding(BindingChange::Install(b)),
            Output::ToSubscriber(reply.clone()),
        ];
        assert_eq!(s.flush(), Effects::default());
        assert_eq!(s.counters().store_errors, 1);
        assert!(
            s.registry().refusals(5).expect("read").is_empty(),
            "the whole batch rolled back"
        );
        s.staged = vec![Output::ToSubscriber(reply)];
        assert_eq!(
            s.flush().inject.len(),
            1,
            "without a store write the reply goes out"
        );
    }
}

#[cfg(test)]
mod writer_tests {
    use std::net::Ipv4Addr;
    use std::time::{Duration, UNIX_EPOCH};

    use ispmux_conf::dhcp::RateLimitConfig;

    use super::*;
    use crate::dhcp::engine::{Reply, StoreWrite};
    use crate::registry::{Binding, Isp, NewSubscriber, PasswordCost, Status};

    fn binding(n: u8) -> Binding {
        Binding {
            mac: MacAddr([2, 0, 0, 0, 0, n]),
            isp: "isp-a".into(),
            ipv4: Ipv4Addr::new(198, 18, 100, n),
            expires: UNIX_EPOCH + Duration::from_secs(600),
            server: Ipv4Addr::new(127, 0, 0, 2),
            port: 1,
            vlan: 0,
            inner_vlan: 0,
        }
    }

    fn reply(b: &Binding) -> Reply {
        Reply {
            port: 1,
            vlan: 0,
            inner_vlan: 0,
            dst_mac: b.mac,
            dst_ip: b.ipv4,
            dst_port: 68,
            src_ip: Ipv4Addr::new(198, 18, 64, 1),
            broadcast: false,
            payload: vec![b.mac.0[5]; 300],
        }
    }

    fn ack(b: &Binding) -> Vec<Output> {
        vec![
            Output::Store(StoreWrite::UpsertBinding(b.clone())),
            Output::Binding(BindingChange::Install(b.clone())),
            Output::ToSubscriber(reply(b)),
        ]
    }

    #[test]
    fn writer_thread_releases_in_order_after_commit() {
        let dir = std::env::temp_dir().join(format!("ispmux-svc-writer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("r.db");
        let mut reg = Registry::open(&path)
            .expect("open")
            .with_password_cost(PasswordCost::TEST);
        reg.upsert_isp(&Isp {
            name: "isp-a".into(),
            label: None,
            dhcp_servers: vec![],
        })
        .expect("isp");
        reg.add_subscriber(&NewSubscriber {
            mac: binding(1).mac,
            isp: "isp-a".into(),
            customer_id: "C1".into(),
            password: None,
            status: Status::Active,
        })
        .expect("sub");
        let cfg = DhcpConfig {
            relay_address: Ipv4Addr::LOCALHOST,
            server_identifier: Ipv4Addr::new(198, 18, 64, 1),
            require_credential: false,
            trusted_relay_ports: vec![],
            trusted_relay_port_ids: vec![],
            server_timeout_ms: 100,
            rate_limit: RateLimitConfig::default(),
            unregistered_per_s: 50,

            isps: vec![],
        };
        let sock = IspSocket::bind_port(Ipv4Addr::LOCALHOST, 0).expect("socket");
        let (mut svc, _) = LogonService::with_socket(
            &cfg,
            reg,
            vec![MacAddr([2, 0, 0, 0, 0, 0xfe]); 8],
            sock,
            Now::system(),
        )
        .expect("start");
        svc.use_writer(&path).expect("writer");

        // Batch 1 commits; batch 2 fails (binding 9 has no subscriber); batch 3 has no
        // writes: its reply goes out with the very flush that staged it, without waiting for
        // the commits in flight.
        let (b1, b9) = (binding(1), binding(9));
        svc.staged = ack(&b1);
        let mut fx = svc.flush();
        svc.staged = ack(&b9);
        let more = svc.flush();
        fx.inject.extend(more.inject);
        fx.bindings.extend(more.bindings);
        svc.staged = vec![Output::ToSubscriber(reply(&binding(3)))];
        let now = svc.flush();
        assert!(
            now.inject.iter().any(|i| i.frame.last() == Some(&3)),
            "a reply without store writes is not held behind commits"
        );
        fx.inject.extend(now.inject);
        fx.bindings.extend(now.bindings);
        let more = svc.drain();
        fx.inject.extend(more.inject);
        fx.bindings.extend(more.bindings);
        assert_eq!(fx.bindings, vec![BindingChange::Install(b1.clone())]);
        let mut last_octets: Vec<u8> = fx
            .inject
            .iter()
            .map(|i| i.frame[i.frame.len() - 1])
            .collect();
        last_octets.sort_unstable();
        assert_eq!(last_octets, vec![1, 3], "batch 2's reply dropped");
        assert_eq!(svc.counters().store_errors, 1);
        assert_eq!(
            svc.registry().bindings().expect("read"),
            vec![b1],
            "durable, visible"
        );
        drop(svc);
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[cfg(test)]
mod no_write_tests {
    use std::net::Ipv4Addr;
    use std::time::{Duration, UNIX_EPOCH};

    use ispmux_conf::dhcp::RateLimitConfig;

    use super::*;
    use crate::dhcp::engine::{Reply, StoreWrite};
    use crate::registry::{Binding, Isp, NewSubscriber, PasswordCost, Status};

    #[test]
    fn a_reply_without_store_writes_is_not_held_behind_a_commit() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("r.db");
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let mut reg = Registry::open(&path)
            .expect("open")
            .with_password_cost(PasswordCost::TEST);
        reg.upsert_isp(&Isp {
            name: "isp-a".into(),
            label: None,
            dhcp_servers: vec![],
        })
        .expect("isp");
        reg.add_subscriber(&NewSubscriber {
            mac,
            isp: "isp-a".into(),
            customer_id: "C1".into(),
            password: None,
            status: Status::Active,
        })
        .expect("sub");
        let cfg = DhcpConfig {
            relay_address: Ipv4Addr::LOCALHOST,
            server_identifier: Ipv4Addr::new(198, 18, 64, 1),
            require_credential: false,
            trusted_relay_ports: vec![],
            trusted_relay_port_ids: vec![],
            server_timeout_ms: 100,
            rate_limit: RateLimitConfig::default(),
            unregistered_per_s: 50,

            isps: vec![],
        };
        let sock = IspSocket::bind_port(Ipv4Addr::LOCALHOST, 0).expect("socket");
        let (mut svc, _) = LogonService::with_socket(
            &cfg,
            reg,
            vec![MacAddr([2, 0, 0, 0, 0, 0xfe]); 8],
            sock,
            Now::system(),
        )
        .expect("start");
        svc.use_writer(&path).expect("writer");
        // Another connection holds the write lock: the writer's commit waits for it.
        let mut lock = Registry::open(&path).expect("second connection");
        lock.conn_mut()
            .execute_batch("BEGIN IMMEDIATE")
            .expect("lock");
        let b = Binding {
            mac,
            isp: "isp-a".into(),
            ipv4: Ipv4Addr::new(198, 18, 100, 1),
            expires: UNIX_EPOCH + Duration::from_secs(600),
            server: Ipv4Addr::new(127, 0, 0, 2),
            port: 1,
            vlan: 0,
            inner_vlan: 0,
        };
        let reply = |n: u8| Reply {
            port: 1,
            vlan: 0,
            inner_vlan: 0,
            dst_mac: mac,
            dst_ip: b.ipv4,
            dst_port: 68,
            src_ip: Ipv4Addr::new(198, 18, 64, 1),
            broadcast: false,
            payload: vec![n; 300],
        };
        svc.staged = vec![
            Output::Store(StoreWrite::UpsertBinding(b.clone())),
            Output::Binding(BindingChange::Install(b.clone())),
            Output::ToSubscriber(reply(1)),
        ];
        assert_eq!(
            svc.flush(),
            Effects::default(),
            "the ACK waits for its commit"
        );
        svc.staged = vec![Output::ToSubscriber(reply(2))];
        let fx = svc.flush();
        let last: Vec<u8> = fx
            .inject
            .iter()
            .filter_map(|i| i.frame.last().copied())
            .collect();
        assert_eq!(
            last,
            vec![2],
            "the OFFER goes out while the commit is blocked"
        );
        lock.conn_mut().execute_batch("COMMIT").expect("unlock");
        let fx = svc.drain();
        let last: Vec<u8> = fx
            .inject
            .iter()
            .filter_map(|i| i.frame.last().copied())
            .collect();
        assert_eq!(
            (last, fx.bindings),
            (vec![1], vec![BindingChange::Install(b)])
        );
    }
}

#[cfg(test)]
mod restart_tests {
    use std::net::Ipv4Addr;
    use std::time::{Duration, UNIX_EPOCH};

    use ispmux_conf::dhcp::RateLimitConfig;

    use super::*;
    use crate::registry::{Binding, Isp, NewSubscriber, PasswordCost, Status};

    #[test]
    fn bindings_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("ispmux-svc-restart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("r.db");
        let mac = MacAddr([2, 0, 0, 0, 0, 7]);
        let b = Binding {
            mac,
            isp: "isp-a".into(),
            ipv4: Ipv4Addr::new(198, 18, 100, 7),
            expires: UNIX_EPOCH + Duration::from_secs(1000),
            server: Ipv4Addr::new(127, 0, 0, 2),
            port: 2,
            vlan: 100,
            inner_vlan: 0,
        };
        {
            let mut r = Registry::open(&path)
                .expect("open")
                .with_password_cost(PasswordCost::TEST);
            r.upsert_isp(&Isp {
                name: "isp-a".into(),
                label: None,
                dhcp_servers: vec![],
            })
            .expect("isp");
            r.add_subscriber(&NewSubscriber {
                mac,
                isp: "isp-a".into(),
                customer_id: "C7".into(),
                password: None,
                status: Status::Active,
            })
            .expect("sub");
            r.upsert_binding(&b).expect("binding");
        }
        let cfg = DhcpConfig {
            relay_address: Ipv4Addr::LOCALHOST,
            server_identifier: Ipv4Addr::new(198, 18, 64, 1),
            require_credential: false,
            trusted_relay_ports: vec![],
            trusted_relay_port_ids: vec![],
            server_timeout_ms: 100,
            rate_limit: RateLimitConfig::default(),
            unregistered_per_s: 50,

            isps: vec![],
        };
        let start = |now| {
            let sock = IspSocket::bind_port(Ipv4Addr::LOCALHOST, 0).expect("socket");
            let reg = Registry::open(&path).expect("reopen");
            LogonService::with_socket(
                &cfg,
                reg,
                vec![MacAddr([2, 0, 0, 0, 0, 0xfe]); 8],
                sock,
                now,
            )
            .expect("start")
        };
        let at = |unix| Now {
            mono: std::time::Instant::now(),
            unix,
        };
        let (_, fx) = start(at(10));
        assert_eq!(fx.bindings, vec![BindingChange::Install(b)]);
        // Started after the lease ended: nothing installed, the stale row deleted.
        let (mut svc, fx) = start(at(2000));
        assert!(fx.bindings.is_empty());
        assert!(svc.registry().bindings().expect("bindings").is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }
}
