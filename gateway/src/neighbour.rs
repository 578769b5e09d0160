//! Next hops given by address, resolved through the kernel's neighbour table over netlink:
//! the I/O around [`ispmux_slowpath::neighbour::Resolver`].
//!
//! The kernel does ARP on each routed port's kernel twin (the interface that carries the
//! port's address and MAC); this module follows its neighbour table and asks it to resolve:
//! - one `NETLINK_ROUTE` socket, nonblocking, polled once per slow-path turn (no thread, no
//!   async runtime), member of `RTNLGRP_NEIGH`: every change of a neighbour entry arrives as
//!   `RTM_NEWNEIGH`/`RTM_DELNEIGH`;
//! - at start (and whenever a twin appears, or events were lost to a full socket buffer) a
//!   dump of the IPv4 neighbour table, so entries the kernel already has count at once;
//! - to resolve a next hop, `RTM_NEWNEIGH` with `NTF_USE` (and `NLM_F_CREATE`): the kernel
//!   creates the entry if need be and treats it as used by a packet (`neigh_event_send`):
//!   an entry without a MAC (NONE, FAILED) goes INCOMPLETE and is asked for by broadcast
//!   ARP; a STALE one goes DELAY and then PROBE (unicast ARP to the MAC it has) unless
//!   confirmed; a REACHABLE one is left alone. The resolver sends this every second for
//!   unresolved next hops (retry) and every second for resolved ones (confirmation), so a
//!   neighbour that stops answering goes FAILED — and its entries to MAC zero, dropped as
//!   `no_neighbour` — rather than sitting STALE with its old MAC for ever (the fast path's
//!   traffic never goes through the kernel, so nothing else would make the kernel look).
//!
//! The time to notice a lost neighbour is set by the twin's neighbour parameters, which
//! [`tune`] sets (`/proc/sys/net/ipv4/neigh/<twin>/`; see [`TUNING`]): at most about
//! reachable time (≤ 1.5 s) + the confirmation period (1 s) + the first-probe delay (1 s) +
//! 3 unicast probes 1 s apart (3 s) = 6.5 s, against ~ 30 s + 5 s + 3 s with the
//! kernel's defaults. The cost is a unicast ARP probe per next hop about once a second.
//!
//! A MAC change the kernel learns (a gratuitous ARP from the neighbour, a reply with
//! another MAC after a probe) arrives as one event and becomes one table update per
//! dependent entry, sent through the slow path's update sender: the workers use the new
//! MAC from their next burst.
//!
//! The interfaces are given as (port index, interface name): the twins, whoever creates
//! them ([`twin_interfaces`] names them as the configuration does).

use std::io;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ispmux_conf::{Config, ToResolve};
use ispmux_dataplane::table::TableUpdate;
use ispmux_dataplane::wire::MacAddr;
use ispmux_slowpath::neighbour::{NeighbourEvent, NeighbourStats, Resolver};
use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// The multicast group of neighbour changes (`RTNLGRP_NEIGH` in `linux/rtnetlink.h`).
const RTNLGRP_NEIGH: u32 = 3;
/// How often twins not found yet are looked for again.
const LOOKUP_EVERY: Duration = Duration::from_secs(1);
/// Receive buffer: a dump arrives in datagrams of up to a page or so each; 64 KiB holds any.
const RX_BUF: usize = 64 * 1024;
/// Datagrams read per turn at most, so a flood of neighbour events elsewhere on the host
/// (or a large dump) cannot hold up the slow path's other work; the rest wait in the socket.
const RX_PER_TURN: usize = 256;
/// Linux errno: the socket's receive buffer overflowed and messages were lost.
const ENOBUFS: i32 = 105;
/// Linux errno: no such interface.
const ENODEV: i32 = 19;

/// The neighbour parameters set on each twin, as (file under
/// `/proc/sys/net/ipv4/neigh/<twin>/`, value), so a lost neighbour is noticed in seconds.
pub const TUNING: [(&str, &str); 5] = [
    // An entry confirmed by a reply stays REACHABLE 0.5-1.5 s (the kernel draws it around
    // the base), then STALE: the next confirmation request probes it.
    ("base_reachable_time_ms", "1000"),
    // A STALE entry asked for waits this long (s) in DELAY before unicast probes.
    ("delay_first_probe_time", "1"),
    // Between probes: 3 unanswered probes over 3 s. At 500 ms a neighbour that is itself a
    // busy gateway (answering ARP through its slow path and twin) was given up on while up.
    ("retrans_time_ms", "1000"),
    // Unanswered unicast probes before FAILED.
    ("ucast_solicit", "3"),
    // Broadcast requests while INCOMPLETE, before FAILED (then retried every second).
    ("mcast_solicit", "3"),
];

/// The kernel twin of each routed port (core or hand-off), as (port index, interface
/// name): the names [`crate::twin`] creates them under ([`ispmux_conf::Port::twin_name`]).
pub fn twin_interfaces(cfg: &Config) -> Vec<(u16, String)> {
    cfg.ports
        .iter()
        .enumerate()
        .filter(|(_, p)| p.is_routed())
        .filter_map(|(i, p)| Some((u16::try_from(i).ok()?, p.twin_name())))
        .collect()
}

/// Sets the twin `ifname`'s neighbour parameters ([`TUNING`]); the first failure is
/// returned (the rest are still tried).
pub fn tune(ifname: &str) -> io::Result<()> {
    let mut first = Ok(());
    for (knob, value) in TUNING {
        let path = format!("/proc/sys/net/ipv4/neigh/{ifname}/{knob}");
        if let Err(e) = std::fs::write(&path, value) {
            if first.is_ok() {
                first = Err(io::Error::new(e.kind(), format!("{path}: {e}")));
            }
        }
    }
    first
}

/// One twin: its port, its name and, once found, its interface index.
struct Twin {
    port: u16,
    name: String,
    index: Option<u32>,
}

/// What the resolver's I/O counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeighbourIoStats {
    /// The resolver's counters.
    pub resolver: NeighbourStats,
    /// Neighbour messages read from the kernel (events and dumps).
    pub events: u64,
    /// Table updates made (one per dependent entry per MAC change).
    pub updates: u64,
    /// Netlink errors: requests the kernel refused, unreadable messages, socket errors.
    pub errors: u64,
    /// Twins found (interface index known).
    pub twins_found: u64,
}

/// The resolver with its netlink socket and twins.
pub struct Neighbours {
    resolver: Resolver,
    sock: Socket,
    twins: Vec<Twin>,
    seq: u32,
    next_lookup: Instant,
    rx: Vec<u8>,
    ask: Vec<(u16, Ipv4Addr)>,
    stats: NeighbourIoStats,
}

impl Neighbours {
    /// Opens the netlink socket for `wanted` next hops on `twins` ((port index, interface
    /// name)); `None` when no next hop is given by address (no socket then), unless
    /// `dynamic`: next hops are then attached as they come (LDP's), on any twin.
    pub fn open(
        twins: Vec<(u16, String)>,
        wanted: Vec<ToResolve>,
        dynamic: bool,
        now: Instant,
    ) -> io::Result<Option<Self>> {
        let resolver = Resolver::new(wanted, now);
        if resolver.is_empty() && !dynamic {
            return Ok(None);
        }
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.add_membership(RTNLGRP_NEIGH)?;
        sock.set_non_blocking(true)?;
        let ports = resolver.ports();
        for p in &ports {
            if !twins.iter().any(|(tp, _)| tp == p) {
                tracing::warn!(
                    port = p,
                    "neighbour: a next hop is given by address on a port without a twin: it stays unresolved"
                );
            }
        }
        let mut n = Neighbours {
            resolver,
            sock,
            twins: twins
                .into_iter()
                .filter(|(p, _)| dynamic || ports.contains(p))
                .map(|(port, name)| Twin {
                    port,
                    name,
                    index: None,
                })
                .collect(),
            seq: 0,
            next_lookup: now,
            rx: Vec::with_capacity(RX_BUF),
            ask: Vec::new(),
            stats: NeighbourIoStats::default(),
        };
        n.find_twins(now);
        Ok(Some(n))
    }

    /// The resolver, for entries that follow next hops as they come ([`Resolver::attach`]).
    pub fn resolver_mut(&mut self) -> &mut Resolver {
        &mut self.resolver
    }

    /// Counters.
    pub fn stats(&self) -> NeighbourIoStats {
        NeighbourIoStats {
            resolver: self.resolver.stats(),
            ..self.stats
        }
    }

    /// One turn of the slow path: reads what the kernel said, puts the table updates it
    /// makes into `out`, and asks the kernel to resolve what is due. Waits for nothing but
    /// the kernel's immediate answer when it looks for a twin not found yet (once a second).
    pub fn turn(&mut self, now: Instant, out: &mut Vec<TableUpdate>) {
        if now >= self.next_lookup {
            self.find_twins(now);
        }
        self.receive(now, out);
        self.ask.clear();
        self.resolver.poll(now, &mut self.ask);
        for i in 0..self.ask.len() {
            let (port, addr) = self.ask[i];
            let Some(index) = self.index_of(port) else {
                continue;
            };
            let req = neigh_use(self.next_seq(), index, addr);
            if let Err(e) = self.sock.send(&req, 0) {
                self.stats.errors += 1;
                tracing::debug!(error = %e, %addr, "neighbour: resolution request not sent");
            }
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn index_of(&self, port: u16) -> Option<u32> {
        self.twins.iter().find(|t| t.port == port)?.index
    }

    fn port_of(&self, index: u32) -> Option<u16> {
        Some(self.twins.iter().find(|t| t.index == Some(index))?.port)
    }

    /// Looks up the twins not found yet; a twin found is tuned and the table dumped.
    fn find_twins(&mut self, now: Instant) {
        self.next_lookup = now + LOOKUP_EVERY;
        let mut found = false;
        for t in self.twins.iter_mut().filter(|t| t.index.is_none()) {
            match link_index(&t.name) {
                Ok(Some(index)) => {
                    t.index = Some(index);
                    found = true;
                    self.stats.twins_found += 1;
                    match tune(&t.name) {
                        Ok(()) => {
                            tracing::info!(twin = %t.name, index, "neighbour: following the twin's neighbours")
                        }
                        Err(e) => {
                            tracing::warn!(twin = %t.name, error = %e, "neighbour: neighbour parameters not set; losses are noticed later")
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    self.stats.errors += 1;
                    tracing::debug!(twin = %t.name, error = %e, "neighbour: interface lookup");
                }
            }
        }
        if found {
            self.dump();
        }
    }

    /// Asks for the whole IPv4 neighbour table; its entries arrive as events do.
    fn dump(&mut self) {
        let req = neigh_dump(self.next_seq());
        if let Err(e) = self.sock.send(&req, 0) {
            self.stats.errors += 1;
            tracing::warn!(error = %e, "neighbour: table dump not requested");
        }
    }

    /// Reads every datagram waiting and acts on the neighbour messages in them.
    fn receive(&mut self, now: Instant, out: &mut Vec<TableUpdate>) {
        for _ in 0..RX_PER_TURN {
            self.rx.clear();
            match self.sock.recv(&mut self.rx, 0) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.raw_os_error() == Some(ENOBUFS) => {
                    // Events were lost to a full socket buffer: read the table again.
                    self.stats.errors += 1;
                    tracing::warn!(
                        "neighbour: events lost (socket buffer full), dumping the table again"
                    );
                    self.dump();
                    continue;
                }
                Err(e) => {
                    self.stats.errors += 1;
                    tracing::warn!(error = %e, "neighbour: netlink receive");
                    return;
                }
            }
            let rx = std::mem::take(&mut self.rx);
            for m in messages(&rx) {
                match m {
                    Parsed::Neighbour(n) => {
                        self.stats.events += 1;
                        let Some(port) = self.port_of(n.index) else {
                            continue;
                        };
                        let before = out.len();
                        let ev = NeighbourEvent {
                            port,
                            addr: n.addr,
                            mac: n.mac,
                        };
                        if self.resolver.event(now, ev, out) && out.len() > before {
                            tracing::info!(port, addr = %n.addr, mac = ?n.mac, entries = out.len() - before, "neighbour: next hop's MAC changed");
                        }
                        self.stats.updates += (out.len() - before) as u64;
                    }
                    Parsed::Error(code) => {
                        self.stats.errors += 1;
                        tracing::debug!(code, "neighbour: the kernel refused a request");
                    }
                    Parsed::Unreadable => self.stats.errors += 1,
                    Parsed::Other => {}
                }
            }
            self.rx = rx;
        }
    }
}

/// A neighbour entry as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighbourEntry {
    /// Interface index.
    pub index: u32,
    /// Its IPv4 address.
    pub addr: Ipv4Addr,
    /// Its MAC when the entry has a usable one; `None` when FAILED, INCOMPLETE, deleted.
    pub mac: Option<MacAddr>,
}

/// One netlink message as this module reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// An IPv4 neighbour entry (an event or a dump's entry).
    Neighbour(NeighbourEntry),
    /// The kernel refused a request (errno).
    Error(i32),
    /// A message that does not parse (skipped).
    Unreadable,
    /// Anything else: acknowledgements, the end of a dump, other families.
    Other,
}

/// The messages of one datagram, in order. Never panics, whatever the bytes.
pub fn messages(buf: &[u8]) -> Vec<Parsed> {
    crate::rtnl::datagram(buf, parse, || Parsed::Unreadable)
}

/// Whether reading `buf` as a datagram behaves: no panic, and at most one item per
/// 16-byte netlink header plus one for trailing garbage, so the reader always advances.
/// The property the fuzz target `neighbour_messages` and the proptest check on any input.
pub fn reads_sanely(buf: &[u8]) -> bool {
    messages(buf).len() <= buf.len() / 16 + 1
}

fn parse(m: NetlinkMessage<RouteNetlinkMessage>) -> Parsed {
    match m.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(n)) => entry(&n, false),
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelNeighbour(n)) => entry(&n, true),
        NetlinkPayload::Error(e) => match e.code {
            Some(c) => Parsed::Error(c.get()),
            None => Parsed::Other,
        },
        _ => Parsed::Other,
    }
}

/// The entry of a neighbour message: IPv4, not a proxy entry.
fn entry(n: &NeighbourMessage, deleted: bool) -> Parsed {
    let h = &n.header;
    if h.family != AddressFamily::Inet || h.flags.contains(NeighbourFlags::Proxy) {
        return Parsed::Other;
    }
    let mut addr = None;
    let mut lladdr = None;
    for a in &n.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => addr = Some(*ip),
            NeighbourAttribute::LinkLayerAddress(b) => lladdr = MacAddr::from_bytes(b),
            _ => {}
        }
    }
    let Some(addr) = addr else {
        return Parsed::Other;
    };
    // The kernel reports a MAC only for the states that have a usable one (NUD_VALID).
    let usable = !deleted
        && matches!(
            h.state,
            NeighbourState::Reachable
                | NeighbourState::Stale
                | NeighbourState::Delay
                | NeighbourState::Probe
                | NeighbourState::Permanent
                | NeighbourState::Noarp
        );
    Parsed::Neighbour(NeighbourEntry {
        index: h.ifindex,
        addr,
        mac: if usable { lladdr } else { None },
    })
}

fn request(flags: u16, seq: u32, inner: RouteNetlinkMessage) -> Vec<u8> {
    let mut h = NetlinkHeader::default();
    h.flags = NLM_F_REQUEST | flags;
    h.sequence_number = seq;
    let mut m = NetlinkMessage::new(h, NetlinkPayload::InnerMessage(inner));
    m.finalize();
    let mut buf = vec![0; m.buffer_len()];
    m.serialize(&mut buf);
    buf
}

/// `RTM_NEWNEIGH` with `NTF_USE`: resolve (or confirm) `addr` on interface `index`.
pub fn neigh_use(seq: u32, index: u32, addr: Ipv4Addr) -> Vec<u8> {
    let mut n = NeighbourMessage::default();
    n.header.family = AddressFamily::Inet;
    n.header.ifindex = index;
    n.header.flags = NeighbourFlags::Use;
    n.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
            addr,
        )));
    // NLM_F_CREATE: the entry may not exist yet; without NLM_F_REPLACE an existing entry's
    // MAC is never overridden by this request.
    request(NLM_F_CREATE, seq, RouteNetlinkMessage::NewNeighbour(n))
}

/// `RTM_GETNEIGH` dump of the IPv4 neighbour table.
pub fn neigh_dump(seq: u32) -> Vec<u8> {
    let mut n = NeighbourMessage::default();
    n.header.family = AddressFamily::Inet;
    request(NLM_F_DUMP, seq, RouteNetlinkMessage::GetNeighbour(n))
}

/// The interface index of `name` in this network namespace; `None` when there is no such
/// interface (yet). Asks over a short-lived socket of its own: the kernel answers a
/// `RTM_GETLINK` by name at once.
pub fn link_index(name: &str) -> io::Result<Option<u32>> {
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    let mut l = LinkMessage::default();
    l.attributes.push(LinkAttribute::IfName(name.to_owned()));
    sock.send(&request(0, 1, RouteNetlinkMessage::GetLink(l)), 0)?;
    let mut buf = Vec::with_capacity(RX_BUF);
    sock.recv(&mut buf, 0)?;
    let mut rest = &buf[..];
    while !rest.is_empty() {
        let Ok(len) = NetlinkBuffer::new_checked(rest).map(|b| b.length() as usize) else {
            break;
        };
        let (this, next) = rest.split_at(len.min(rest.len()));
        rest = next
            .get((len.next_multiple_of(4) - len).min(next.len())..)
            .unwrap_or(&[]);
        match NetlinkMessage::<RouteNetlinkMessage>::deserialize(this).map(|m| m.payload) {
            Ok(NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l))) => {
                return Ok(Some(l.header.index))
            }
            Ok(NetlinkPayload::Error(e)) => {
                return match e.code.map(|c| -c.get()) {
                    Some(ENODEV) => Ok(None),
                    Some(c) => Err(io::Error::from_raw_os_error(c)),
                    None => Ok(None),
                };
            }
            _ => {}
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{ErrorMessage, NLM_F_MULTIPART};
    use std::num::NonZeroI32;

    /// A neighbour message as the kernel sends it, built by the crate's emitter.
    fn kernel_neigh(
        new: bool,
        index: u32,
        state: NeighbourState,
        addr: Ipv4Addr,
        mac: Option<[u8; 6]>,
    ) -> Vec<u8> {
        let mut n = NeighbourMessage::default();
        n.header.family = AddressFamily::Inet;
        n.header.ifindex = index;
        n.header.state = state;
        n.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                addr,
            )));
        if let Some(m) = mac {
            n.attributes
                .push(NeighbourAttribute::LinkLayerAddress(m.to_vec()));
        }
        let inner = if new {
            RouteNetlinkMessage::NewNeighbour(n)
        } else {
            RouteNetlinkMessage::DelNeighbour(n)
        };
        let mut h = NetlinkHeader::default();
        h.flags = NLM_F_MULTIPART;
        let mut m = NetlinkMessage::new(h, NetlinkPayload::InnerMessage(inner));
        m.finalize();
        let mut buf = vec![0; m.buffer_len()];
        m.serialize(&mut buf);
        buf
    }

    const A: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
    const M: [u8; 6] = [2, 0, 0, 9, 0, 2];

    /// A `RTM_NEWNEIGH` as Linux 6.18 sent it to an `RTMGRP_NEIGH` member (captured with a
    /// Python AF_NETLINK socket) after `ip neigh add 10.9.0.2 lladdr 02:00:00:09:00:02 dev X
    /// nud reachable`, X being ifindex 3: NDA_DST, NDA_LLADDR, NDA_PROBES, NDA_CACHEINFO.
    const REAL_NEWNEIGH: &str = "4c0000001c000000000000002b3a000002000000030000000200000108000100\
                                 0a0900020a000200020000090002000008000400000000001400030000000000\
                                 000000000000000002000000";

    #[test]
    fn a_kernel_neighbour_message_is_read() {
        let b: Vec<u8> = (0..REAL_NEWNEIGH.len() / 2)
            .filter_map(|i| u8::from_str_radix(REAL_NEWNEIGH.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        assert_eq!(
            messages(&b),
            [Parsed::Neighbour(NeighbourEntry {
                index: 3,
                addr: A,
                mac: Some(MacAddr(M)),
            })]
        );
    }

    #[test]
    fn states_with_a_usable_mac_give_it_others_none() {
        for (state, want) in [
            (NeighbourState::Reachable, Some(MacAddr(M))),
            (NeighbourState::Stale, Some(MacAddr(M))),
            (NeighbourState::Delay, Some(MacAddr(M))),
            (NeighbourState::Probe, Some(MacAddr(M))),
            (NeighbourState::Permanent, Some(MacAddr(M))),
            (NeighbourState::Failed, None),
            (NeighbourState::Incomplete, None),
        ] {
            let b = kernel_neigh(true, 7, state, A, Some(M));
            assert_eq!(
                messages(&b),
                [Parsed::Neighbour(NeighbourEntry {
                    index: 7,
                    addr: A,
                    mac: want
                })],
                "{state:?}"
            );
        }
        let deleted = kernel_neigh(false, 7, NeighbourState::Stale, A, Some(M));
        assert!(matches!(
            messages(&deleted)[..],
            [Parsed::Neighbour(NeighbourEntry { mac: None, .. })]
        ));
    }

    #[test]
    fn a_datagram_of_several_messages_and_errors_is_read_in_order() {
        let mut b = kernel_neigh(true, 7, NeighbourState::Reachable, A, Some(M));
        b.extend(kernel_neigh(true, 8, NeighbourState::Failed, A, None));
        let mut h = NetlinkHeader::default();
        h.sequence_number = 3;
        let mut e = ErrorMessage::default();
        e.code = NonZeroI32::new(-22);
        let mut m = NetlinkMessage::<RouteNetlinkMessage>::new(h, NetlinkPayload::Error(e));
        m.finalize();
        let mut err = vec![0; m.buffer_len()];
        m.serialize(&mut err);
        b.extend(err);
        let p = messages(&b);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(matches!(
            p[1],
            Parsed::Neighbour(NeighbourEntry {
                index: 8,
                mac: None,
                ..
            })
        ));
        assert_eq!(p[2], Parsed::Error(-22));
    }

    #[test]
    fn garbage_is_unreadable_never_a_panic() {
        assert_eq!(messages(&[1, 2, 3]), [Parsed::Unreadable]);
        let mut b = kernel_neigh(true, 7, NeighbourState::Reachable, A, Some(M));
        b.truncate(30);
        assert_eq!(messages(&b), [Parsed::Unreadable]);
        for cut in 0..b.len() {
            let _ = messages(&b[..cut]);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_datagram_is_read_without_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)
        ) {
            proptest::prop_assert!(reads_sanely(&bytes));
        }

        /// The real message with any byte changed.
        #[test]
        fn a_mangled_kernel_message_is_read_without_panic(at in 0usize..76, to in proptest::num::u8::ANY) {
            let mut b: Vec<u8> = (0..REAL_NEWNEIGH.len() / 2)
                .filter_map(|i| u8::from_str_radix(REAL_NEWNEIGH.get(2 * i..2 * i + 2)?, 16).ok())
                .collect();
            if let Some(x) = b.get_mut(at) {
                *x = to;
            }
            proptest::prop_assert!(reads_sanely(&b));
        }
    }

    #[test]
    fn requests_are_what_the_kernel_expects() {
        let r = neigh_use(5, 7, A);
        // nlmsghdr: length, RTM_NEWNEIGH (28), NLM_F_REQUEST|NLM_F_CREATE, seq 5.
        assert_eq!(
            u32::from_ne_bytes([r[0], r[1], r[2], r[3]]) as usize,
            r.len()
        );
        assert_eq!(u16::from_ne_bytes([r[4], r[5]]), 28);
        assert_eq!(
            u16::from_ne_bytes([r[6], r[7]]),
            NLM_F_REQUEST | NLM_F_CREATE
        );
        assert_eq!(u32::from_ne_bytes([r[8], r[9], r[10], r[11]]), 5);
        // ndmsg: AF_INET, ifindex 7, state 0, flags NTF_USE; then NDA_DST 10.9.0.2.
        assert_eq!(r[16], 2);
        assert_eq!(u32::from_ne_bytes([r[20], r[21], r[22], r[23]]), 7);
        assert_eq!(r[26], 1, "NTF_USE");
        assert_eq!(&r[28..36], &[8, 0, 1, 0, 10, 9, 0, 2]);
        let d = neigh_dump(6);
        assert_eq!(u16::from_ne_bytes([d[4], d[5]]), 30, "RTM_GETNEIGH");
        assert_eq!(u16::from_ne_bytes([d[6], d[7]]), NLM_F_REQUEST | NLM_F_DUMP);
    }
}
