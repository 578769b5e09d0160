//! The kernel's IPv4 routes on the twins, followed over netlink: the I/O around
//! [`ispmux_slowpath::routes::RouteTable`], which LDP asks for the next hop toward a FEC.
//!
//! Routes on the twins come from whatever runs on the host: static routes (`ip route`),
//! FRR's zebra for an IGP such as ospfd on the twins, the kernel's own connected routes.
//! This module reads them all the same way:
//! - one `NETLINK_ROUTE` socket, nonblocking, polled once per slow-path turn (no thread, no
//!   async runtime), member of `RTNLGRP_IPV4_ROUTE` (every `RTM_NEWROUTE`/`RTM_DELROUTE`),
//!   `RTNLGRP_LINK` and `RTNLGRP_IPV4_IFADDR`;
//! - a dump of the IPv4 routes at start, whenever a twin is found, when events were lost
//!   (`ENOBUFS`), and when a twin's link or addresses change: the kernel removes the routes
//!   through an interface that goes down or loses its address without any `RTM_DELROUTE`,
//!   so only a fresh dump (whose end sweeps what it no longer lists) notices;
//! - of each route only what LDP needs: IPv4, unicast, the main table (254), TOS 0, not a
//!   cache clone; its prefix, metric (`RTA_PRIORITY`) and next hops (`RTA_OIF` and
//!   `RTA_GATEWAY`, or each `RTA_MULTIPATH` entry) whose interface is a twin and which the
//!   kernel has not marked dead. A route with no such next hop is ignored, unless it
//!   replaced one (`NLM_F_REPLACE`): then the route held for its prefix and metric moved off
//!   the twins and is removed. Several routes of one prefix and metric (`ip route append`)
//!   are not told apart: the latest via a twin is held.
//! - Routes that use nexthop objects (`RTA_NH_ID`, as FRR's zebra installs them) carry
//!   their next hops in the message as well while `net.ipv4.nexthop_compat_mode` is 1, the
//!   kernel's default; with it 0 they arrive without next hops and count as skipped
//!   ([`Skip::NexthopObjectOnly`]).
//!
//! API for the LDP engine's owner (the gateway's slow-path loop): [`Routes::open`] with the
//! twins (port index, interface name: [`crate::neighbour::twin_interfaces`]), then each turn
//! [`Routes::turn`], which appends the [`RouteChange`]s (prefix, new best next hop or none)
//! to the caller's vector; [`Routes::next_hop_for`] answers a FEC by longest prefix match.
//! For every change, re-ask `next_hop_for` for the FECs it [covers](RouteChange::covers).

use std::io;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ispmux_conf::{Ipv4Net, Ipv4NetError};
use ispmux_slowpath::routes::{NextHop, RouteChange, RouteInput, RouteStats, RouteTable};
use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REPLACE,
    NLM_F_REQUEST,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHopFlags,
    RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};

use crate::neighbour::link_index;

/// Multicast groups (`linux/rtnetlink.h`): link changes, IPv4 address changes, IPv4 routes.
const RTNLGRP_LINK: u32 = 1;
const RTNLGRP_IPV4_IFADDR: u32 = 5;
const RTNLGRP_IPV4_ROUTE: u32 = 7;
/// The main routing table (`RT_TABLE_MAIN`).
pub const RT_TABLE_MAIN: u32 = 254;
/// How often twins not found yet are looked for again.
const LOOKUP_EVERY: Duration = Duration::from_secs(1);
/// Receive buffer: a dump arrives in datagrams of up to a page or so each; 64 KiB holds any.
const RX_BUF: usize = 64 * 1024;
/// Datagrams read per turn at most, so a large dump or a flood of route changes elsewhere on
/// the host cannot hold up the slow path's other work; the rest wait in the socket.
const RX_PER_TURN: usize = 256;
/// Linux errno: the socket's receive buffer overflowed and messages were lost.
const ENOBUFS: i32 = 105;

/// Why a route message is not one this module keeps.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// Not IPv4.
    #[error("not an IPv4 route")]
    NotIpv4,
    /// Another table than main (local, a VRF's, a policy table).
    #[error("route of table {0}, not main")]
    OtherTable(u32),
    /// Not unicast (local, broadcast, blackhole, unreachable, ...): no next hop to follow.
    #[error("route of type {0:?}, not unicast")]
    NotUnicast(RouteType),
    /// A routing cache clone (`RTM_F_CLONED`), not a route.
    #[error("cloned (cache) route")]
    Cloned,
    /// A TOS-specific route: LDP's FECs have no TOS.
    #[error("route for TOS {0}")]
    Tos(u8),
    /// Destination and length do not make a prefix (length over 32, host bits set).
    #[error("destination: {0}")]
    Prefix(Ipv4NetError),
    /// The destination attribute is not an IPv4 address.
    #[error("destination is not an IPv4 address")]
    Destination,
    /// Only a nexthop object id, no next hop (`nexthop_compat_mode` 0).
    #[error("next hops only as nexthop object {0} (net.ipv4.nexthop_compat_mode is 0)")]
    NexthopObjectOnly(u32),
}

/// A route as the kernel reports it, reduced to what LDP needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelRoute {
    /// `RTM_DELROUTE`.
    pub deleted: bool,
    /// The route replaced another of the same prefix and metric (`NLM_F_REPLACE` in the
    /// notification), rather than being created beside any.
    pub replace: bool,
    /// Destination.
    pub prefix: Ipv4Net,
    /// `RTA_PRIORITY` (0 when absent).
    pub metric: u32,
    /// Next hops as (interface index, gateway), dead ones left out; several for multipath.
    pub next_hops: Vec<(u32, Option<Ipv4Addr>)>,
}

/// One netlink message as this module reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A route of the main table.
    Route(KernelRoute),
    /// A route message this module does not keep, and why.
    Skipped(Skip),
    /// A link appeared, changed or (`true`) was deleted: its index.
    Link(u32, bool),
    /// An IPv4 address was added to or removed from the interface of this index.
    Address(u32),
    /// The end of a dump (`NLMSG_DONE`).
    DumpDone,
    /// The kernel refused a request (errno).
    Error(i32),
    /// A message that does not parse (skipped).
    Unreadable,
    /// Anything else: acknowledgements, other families' addresses, ...
    Other,
}

/// The messages of one datagram, in order. Never panics, whatever the bytes.
pub fn messages(mut buf: &[u8]) -> Vec<Parsed> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let Ok(len) = NetlinkBuffer::new_checked(buf).map(|b| b.length() as usize) else {
            out.push(Parsed::Unreadable);
            break;
        };
        // `new_checked` ensures 16 ≤ len ≤ buf.len(); messages are 4-byte aligned.
        let (this, rest) = buf.split_at(len.min(buf.len()));
        buf = rest
            .get((len.next_multiple_of(4) - len).min(rest.len())..)
            .unwrap_or(&[]);
        out.push(
            match NetlinkMessage::<RouteNetlinkMessage>::deserialize(this) {
                Ok(m) => parse(m),
                Err(_) => Parsed::Unreadable,
            },
        );
    }
    out
}

/// Whether reading `buf` as a datagram behaves: no panic, at most one item per 16-byte
/// netlink header plus one for trailing garbage (the reader always advances), and every
/// route read is a valid IPv4 prefix with only IPv4 gateways. The property the fuzz target
/// `route_messages` and the proptests check on any input.
pub fn reads_sanely(buf: &[u8]) -> bool {
    let m = messages(buf);
    m.len() <= buf.len() / 16 + 1
        && m.iter().all(|p| match p {
            Parsed::Route(r) => {
                Ipv4Net::new(r.prefix.addr(), r.prefix.prefix_len()).as_ref() == Ok(&r.prefix)
            }
            _ => true,
        })
}

fn parse(m: NetlinkMessage<RouteNetlinkMessage>) -> Parsed {
    let replace = m.header.flags & NLM_F_REPLACE != 0;
    match m.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) => route(&r, false, replace),
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelRoute(r)) => route(&r, true, false),
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
            Parsed::Link(l.header.index, false)
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(l)) => {
            Parsed::Link(l.header.index, true)
        }
        NetlinkPayload::InnerMessage(
            RouteNetlinkMessage::NewAddress(a) | RouteNetlinkMessage::DelAddress(a),
        ) if a.header.family == AddressFamily::Inet => Parsed::Address(a.header.index),
        NetlinkPayload::Done(_) => Parsed::DumpDone,
        NetlinkPayload::Error(e) => match e.code {
            Some(c) => Parsed::Error(c.get()),
            None => Parsed::Other,
        },
        _ => Parsed::Other,
    }
}

/// The route of a route message, or why it is skipped.
fn route(r: &RouteMessage, deleted: bool, replace: bool) -> Parsed {
    match read_route(r, deleted, replace) {
        Ok(k) => Parsed::Route(k),
        Err(s) => Parsed::Skipped(s),
    }
}

fn read_route(r: &RouteMessage, deleted: bool, replace: bool) -> Result<KernelRoute, Skip> {
    let h = &r.header;
    if h.address_family != AddressFamily::Inet {
        return Err(Skip::NotIpv4);
    }
    // The header's table is 8 bits; RTA_TABLE, when present, is the real one.
    let mut table = u32::from(h.table);
    let mut dst = Ipv4Addr::UNSPECIFIED;
    let mut metric = 0;
    let mut oif = None;
    let mut gateway = None;
    let mut multipath = None;
    let mut nh_id = None;
    for a in &r.attributes {
        match a {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = *d,
            RouteAttribute::Destination(_) => return Err(Skip::Destination),
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => gateway = Some(*g),
            RouteAttribute::MultiPath(hops) => multipath = Some(hops),
            RouteAttribute::NhId(id) => nh_id = Some(*id),
            _ => {}
        }
    }
    if table != RT_TABLE_MAIN {
        return Err(Skip::OtherTable(table));
    }
    if h.flags.contains(RouteFlags::Cloned) {
        return Err(Skip::Cloned);
    }
    if h.kind != RouteType::Unicast {
        return Err(Skip::NotUnicast(h.kind));
    }
    if h.tos != 0 {
        return Err(Skip::Tos(h.tos));
    }
    let prefix = Ipv4Net::new(dst, h.destination_prefix_length).map_err(Skip::Prefix)?;
    let mut next_hops = Vec::new();
    if let Some(hops) = multipath {
        for nh in hops {
            if nh.flags.contains(RouteNextHopFlags::Dead) {
                continue;
            }
            let gw = nh.attributes.iter().find_map(|a| match a {
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => Some(*g),
                _ => None,
            });
            next_hops.push((nh.interface_index, gw));
        }
    } else if let Some(i) = oif {
        next_hops.push((i, gateway));
    } else if let Some(id) = nh_id {
        return Err(Skip::NexthopObjectOnly(id));
    }
    Ok(KernelRoute {
        deleted,
        replace,
        prefix,
        metric,
        next_hops,
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

/// `RTM_GETROUTE` dump of the IPv4 routes (all tables: the kernel ignores the table asked
/// for in a plain dump; the main table's are picked out when read).
pub fn route_dump(seq: u32) -> Vec<u8> {
    let mut r = RouteMessage::default();
    r.header.address_family = AddressFamily::Inet;
    r.header.table = RouteHeader::RT_TABLE_UNSPEC;
    request(NLM_F_DUMP, seq, RouteNetlinkMessage::GetRoute(r))
}

/// One twin: its port, its name and, once found, its interface index.
struct Twin {
    port: u16,
    name: String,
    index: Option<u32>,
}

/// What the route follower's I/O counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouteIoStats {
    /// The table's counters.
    pub table: RouteStats,
    /// Route messages read (events and dumps) about the main table.
    pub routes: u64,
    /// Route messages skipped (other tables, families, types; see [`Skip`]).
    pub skipped: u64,
    /// Dumps requested.
    pub dumps: u64,
    /// Netlink errors: requests the kernel refused, unreadable messages, socket errors.
    pub errors: u64,
    /// Twins found (interface index known).
    pub twins_found: u64,
}

/// The route table with its netlink socket and twins.
pub struct Routes {
    table: RouteTable,
    sock: Socket,
    twins: Vec<Twin>,
    seq: u32,
    /// A dump is under way (its `NLMSG_DONE` not read yet): a socket runs one at a time.
    dumping: bool,
    /// Another dump is wanted once this one is done.
    dump_wanted: bool,
    next_lookup: Instant,
    rx: Vec<u8>,
    stats: RouteIoStats,
}

impl Routes {
    /// Opens the netlink socket and looks for `twins` ((port index, interface name)); the
    /// first dump is requested as soon as one is found. With no twin at all the table stays
    /// empty.
    pub fn open(twins: Vec<(u16, String)>, now: Instant) -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        for g in [RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV4_ROUTE] {
            sock.add_membership(g)?;
        }
        sock.set_non_blocking(true)?;
        let mut r = Routes {
            table: RouteTable::new(),
            sock,
            twins: twins
                .into_iter()
                .map(|(port, name)| Twin {
                    port,
                    name,
                    index: None,
                })
                .collect(),
            seq: 0,
            dumping: false,
            dump_wanted: false,
            next_lookup: now,
            rx: Vec::with_capacity(RX_BUF),
            stats: RouteIoStats::default(),
        };
        r.find_twins(now);
        Ok(r)
    }

    /// The routes held.
    pub fn table(&self) -> &RouteTable {
        &self.table
    }

    /// The next hop toward `fec` by longest prefix match, as (route prefix, next hop).
    pub fn next_hop_for(&self, fec: Ipv4Net) -> Option<(Ipv4Net, NextHop)> {
        self.table.next_hop_for(fec)
    }

    /// Counters.
    pub fn stats(&self) -> RouteIoStats {
        RouteIoStats {
            table: self.table.stats(),
            ..self.stats
        }
    }

    /// Whether a dump is under way or wanted (the table may be behind the kernel).
    pub fn syncing(&self) -> bool {
        self.dumping || self.dump_wanted
    }

    /// One turn of the slow path: reads what the kernel said and appends the route changes
    /// to `out`. Waits for nothing but the kernel's immediate answer when it looks for a
    /// twin not found yet (once a second).
    pub fn turn(&mut self, now: Instant, out: &mut Vec<RouteChange>) {
        if now >= self.next_lookup {
            self.find_twins(now);
        }
        self.receive(out);
        if self.dump_wanted && !self.dumping {
            self.dump(out);
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn port_of(&self, index: u32) -> Option<u16> {
        Some(self.twins.iter().find(|t| t.index == Some(index))?.port)
    }

    /// Looks up the twins not found yet; a twin found asks for a dump.
    fn find_twins(&mut self, now: Instant) {
        self.next_lookup = now + LOOKUP_EVERY;
        for t in self.twins.iter_mut().filter(|t| t.index.is_none()) {
            match link_index(&t.name) {
                Ok(Some(index)) => {
                    t.index = Some(index);
                    self.dump_wanted = true;
                    self.stats.twins_found += 1;
                    tracing::info!(twin = %t.name, index, "routes: following the twin's routes");
                }
                Ok(None) => {}
                Err(e) => {
                    self.stats.errors += 1;
                    tracing::debug!(twin = %t.name, error = %e, "routes: interface lookup");
                }
            }
        }
    }

    /// Asks for the whole IPv4 route table; its end sweeps the routes it no longer has.
    fn dump(&mut self, out: &mut Vec<RouteChange>) {
        let req = route_dump(self.next_seq());
        match self.sock.send(&req, 0) {
            Ok(_) => {
                self.stats.dumps += 1;
                self.dumping = true;
                self.dump_wanted = false;
                self.table.input(RouteInput::DumpStart, out);
            }
            Err(e) => {
                self.stats.errors += 1;
                tracing::warn!(error = %e, "routes: table dump not requested, trying again next turn");
            }
        }
    }

    /// Reads every datagram waiting (up to [`RX_PER_TURN`]) and acts on its messages.
    fn receive(&mut self, out: &mut Vec<RouteChange>) {
        for _ in 0..RX_PER_TURN {
            self.rx.clear();
            match self.sock.recv(&mut self.rx, 0) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.raw_os_error() == Some(ENOBUFS) => {
                    // Events were lost to a full socket buffer: read the table again (after
                    // the dump under way, if any: one at a time per socket).
                    self.stats.errors += 1;
                    tracing::warn!("routes: events lost (socket buffer full), dumping again");
                    self.dump_wanted = true;
                    continue;
                }
                Err(e) => {
                    self.stats.errors += 1;
                    tracing::warn!(error = %e, "routes: netlink receive");
                    return;
                }
            }
            let rx = std::mem::take(&mut self.rx);
            for m in messages(&rx) {
                self.take(m, out);
            }
            self.rx = rx;
        }
    }

    fn take(&mut self, m: Parsed, out: &mut Vec<RouteChange>) {
        match m {
            Parsed::Route(r) => {
                self.stats.routes += 1;
                let on_twin = r.next_hops.iter().any(|&(i, _)| self.port_of(i).is_some());
                let concerns_held = on_twin || r.replace || (r.deleted && r.next_hops.is_empty());
                if !concerns_held {
                    // A route out of another interface, created or deleted beside any twin
                    // route of the same prefix and metric (`ip route append`), or a dump's
                    // entry: nothing held changes. Only a replacement moves a held route
                    // off the twins.
                    return;
                }
                let input = if r.deleted {
                    RouteInput::Remove {
                        prefix: r.prefix,
                        metric: r.metric,
                    }
                } else {
                    let mut next_hops: Vec<NextHop> = r
                        .next_hops
                        .iter()
                        .filter_map(|&(index, gateway)| {
                            Some(NextHop {
                                port: self.port_of(index)?,
                                gateway,
                            })
                        })
                        .collect();
                    next_hops.dedup();
                    RouteInput::Add {
                        prefix: r.prefix,
                        metric: r.metric,
                        next_hops,
                    }
                };
                let before = out.len();
                self.table.input(input, out);
                for c in out.iter().skip(before) {
                    tracing::debug!(prefix = %c.prefix, next_hop = ?c.next_hop, "routes: route changed");
                }
            }
            Parsed::Skipped(_) => self.stats.skipped += 1,
            Parsed::Link(index, deleted) => {
                if let Some(t) = self.twins.iter_mut().find(|t| t.index == Some(index)) {
                    if deleted {
                        // Found again (with its new index) by the lookup, if recreated.
                        t.index = None;
                    }
                    self.dump_wanted = true;
                }
            }
            Parsed::Address(index) => {
                if self.port_of(index).is_some() {
                    self.dump_wanted = true;
                }
            }
            Parsed::DumpDone => {
                if self.dumping {
                    self.dumping = false;
                    self.table.input(RouteInput::DumpEnd, out);
                }
            }
            Parsed::Error(code) => {
                self.stats.errors += 1;
                tracing::debug!(code, "routes: the kernel refused a request");
                if self.dumping {
                    // The dump failed (EBUSY, ...): no sweep on its partial content; again.
                    self.dumping = false;
                    self.dump_wanted = true;
                }
            }
            Parsed::Unreadable => self.stats.errors += 1,
            Parsed::Other => {}
        }
    }
}

/// Test vectors and property helpers shared by the unit tests, the corpus test and the
/// fuzz target's seeds.
pub mod vectors {
    /// `RTM_NEWROUTE` as Linux 6.18 sent it to an `RTMGRP_IPV4_ROUTE` member (captured with
    /// a Python AF_NETLINK socket in a namespace) after `ip route add 198.18.90.0/24 via
    /// 10.88.0.2 dev frr-r0 metric 7`, frr-r0 being ifindex 3: RTA_TABLE 254, RTA_DST,
    /// RTA_PRIORITY 7, RTA_GATEWAY, RTA_OIF 3.
    pub const NEWROUTE: &str = "440000001800000665ca166b0752000002180000fe0300010000000008000f00\
                                fe00000008000100c6125a000800060007000000080005000a58000208000400\
                                03000000";
    /// The same after `ip route add 198.18.91.0/24 nexthop via 10.88.0.3 dev frr-r0 nexthop
    /// via 10.88.0.2 dev frr-r0`: RTA_MULTIPATH with two next hops (ifindex 3 each).
    pub const MULTIPATH: &str = "500000001800000665ca166b0852000002180000fe0300010000000008000f00\
                                 fe00000008000100c6125b00240009001000000003000000080005000a580003\
                                 1000000003000000080005000a580002";
    /// `RTM_DELROUTE` after `ip route del 198.18.90.0/24 via 10.88.0.2 dev frr-r0 metric 7`.
    pub const DELROUTE: &str = "440000001900000065ca166b0952000002180000fe0300010000000008000f00\
                                fe00000008000100c6125a000800060007000000080005000a58000208000400\
                                03000000";

    /// Bytes of a hex string (whitespace ignored).
    pub fn bytes(hex: &str) -> Vec<u8> {
        let h: Vec<u8> = hex.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
        h.chunks(2)
            .filter_map(|c| u8::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::vectors::{bytes, DELROUTE, MULTIPATH, NEWROUTE};
    use super::*;
    use netlink_packet_core::{DoneMessage, ErrorMessage, NLM_F_MULTIPART};
    use netlink_packet_route::route::{RouteNextHop, RouteScope};
    use std::num::NonZeroI32;

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("prefix")
    }

    fn a(s: &str) -> Ipv4Addr {
        s.parse().expect("address")
    }

    #[test]
    fn kernel_route_messages_are_read() {
        assert_eq!(
            messages(&bytes(NEWROUTE)),
            [Parsed::Route(KernelRoute {
                deleted: false,
                replace: false,
                prefix: net("198.18.90.0/24"),
                metric: 7,
                next_hops: vec![(3, Some(a("10.88.0.2")))],
            })]
        );
        assert_eq!(
            messages(&bytes(MULTIPATH)),
            [Parsed::Route(KernelRoute {
                deleted: false,
                replace: false,
                prefix: net("198.18.91.0/24"),
                metric: 0,
                next_hops: vec![(3, Some(a("10.88.0.3"))), (3, Some(a("10.88.0.2")))],
            })]
        );
        assert!(matches!(
            &messages(&bytes(DELROUTE))[..],
            [Parsed::Route(KernelRoute {
                deleted: true,
                metric: 7,
                ..
            })]
        ));
    }

    /// A route message built by the crate's emitter, as the kernel would send it.
    fn kernel_route(f: impl FnOnce(&mut RouteMessage)) -> Vec<u8> {
        let mut r = RouteMessage::default();
        r.header.address_family = AddressFamily::Inet;
        r.header.table = RouteHeader::RT_TABLE_MAIN;
        r.header.kind = RouteType::Unicast;
        r.header.scope = RouteScope::Universe;
        r.header.destination_prefix_length = 24;
        r.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet(a(
                "198.18.1.0",
            ))));
        r.attributes.push(RouteAttribute::Oif(4));
        f(&mut r);
        let mut h = NetlinkHeader::default();
        h.flags = NLM_F_MULTIPART;
        let mut m = NetlinkMessage::new(
            h,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)),
        );
        m.finalize();
        let mut buf = vec![0; m.buffer_len()];
        m.serialize(&mut buf);
        buf
    }

    /// A change made to a kernel route message.
    type Mangle = Box<dyn Fn(&mut RouteMessage)>;

    #[test]
    fn only_main_table_unicast_ipv4_routes_are_kept() {
        let on_link = kernel_route(|_| {});
        assert_eq!(
            messages(&on_link),
            [Parsed::Route(KernelRoute {
                deleted: false,
                replace: false,
                prefix: net("198.18.1.0/24"),
                metric: 0,
                next_hops: vec![(4, None)],
            })]
        );
        let cases: [(Mangle, Skip); 6] = [
            (Box::new(|r| r.header.table = 255), Skip::OtherTable(255)),
            (
                Box::new(|r| r.attributes.push(RouteAttribute::Table(1000))),
                Skip::OtherTable(1000),
            ),
            (
                Box::new(|r| r.header.kind = RouteType::BlackHole),
                Skip::NotUnicast(RouteType::BlackHole),
            ),
            (
                Box::new(|r| r.header.flags = RouteFlags::Cloned),
                Skip::Cloned,
            ),
            (Box::new(|r| r.header.tos = 4), Skip::Tos(4)),
            (
                Box::new(|r| r.header.destination_prefix_length = 16),
                Skip::Prefix(Ipv4NetError::HostBits {
                    addr: a("198.18.1.0"),
                    len: 16,
                }),
            ),
        ];
        for (f, want) in cases {
            assert_eq!(messages(&kernel_route(f)), [Parsed::Skipped(want)]);
        }
        let nh_only = kernel_route(|r| {
            r.attributes
                .retain(|x| !matches!(x, RouteAttribute::Oif(_)));
            r.attributes.push(RouteAttribute::NhId(12));
        });
        assert_eq!(
            messages(&nh_only),
            [Parsed::Skipped(Skip::NexthopObjectOnly(12))]
        );
    }

    #[test]
    fn a_replacement_is_told_from_a_creation() {
        let mut b = bytes(NEWROUTE);
        assert!(matches!(
            &messages(&b)[..],
            [Parsed::Route(KernelRoute { replace: false, .. })]
        ));
        // nlmsg_flags: NLM_F_CREATE | NLM_F_REPLACE, as `ip route replace` makes the kernel
        // report it.
        b[6..8].copy_from_slice(&(0x400u16 | NLM_F_REPLACE).to_ne_bytes());
        assert!(matches!(
            &messages(&b)[..],
            [Parsed::Route(KernelRoute { replace: true, .. })]
        ));
    }

    #[test]
    fn dead_multipath_next_hops_are_left_out() {
        let b = kernel_route(|r| {
            let hop = |i, g: &str, dead| {
                let mut nh = RouteNextHop::default();
                nh.interface_index = i;
                if dead {
                    nh.flags = RouteNextHopFlags::Dead;
                }
                nh.attributes
                    .push(RouteAttribute::Gateway(RouteAddress::Inet(a(g))));
                nh
            };
            r.attributes
                .retain(|x| !matches!(x, RouteAttribute::Oif(_)));
            r.attributes.push(RouteAttribute::MultiPath(vec![
                hop(4, "10.0.0.2", true),
                hop(5, "10.0.1.2", false),
            ]));
        });
        assert!(matches!(
            &messages(&b)[..],
            [Parsed::Route(KernelRoute { next_hops, .. })] if next_hops == &[(5, Some(a("10.0.1.2")))]
        ));
    }

    #[test]
    fn a_datagram_of_routes_done_and_errors_is_read_in_order() {
        let mut b = bytes(NEWROUTE);
        b.extend(bytes(MULTIPATH));
        let mut m = NetlinkMessage::<RouteNetlinkMessage>::new(
            NetlinkHeader::default(),
            NetlinkPayload::Done(DoneMessage::default()),
        );
        m.finalize();
        let mut done = vec![0; m.buffer_len()];
        m.serialize(&mut done);
        b.extend(done);
        let mut e = ErrorMessage::default();
        e.code = NonZeroI32::new(-16);
        let mut m = NetlinkMessage::<RouteNetlinkMessage>::new(
            NetlinkHeader::default(),
            NetlinkPayload::Error(e),
        );
        m.finalize();
        let mut err = vec![0; m.buffer_len()];
        m.serialize(&mut err);
        b.extend(err);
        let p = messages(&b);
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(matches!(p[1], Parsed::Route(_)));
        assert_eq!(p[2], Parsed::DumpDone);
        assert_eq!(p[3], Parsed::Error(-16));
    }

    #[test]
    fn garbage_is_unreadable_never_a_panic() {
        assert_eq!(messages(&[1, 2, 3]), [Parsed::Unreadable]);
        let b = bytes(MULTIPATH);
        for cut in 0..b.len() {
            assert!(reads_sanely(&b[..cut]));
        }
    }

    #[test]
    fn the_dump_request_is_what_the_kernel_expects() {
        let d = route_dump(6);
        assert_eq!(
            u32::from_ne_bytes([d[0], d[1], d[2], d[3]]) as usize,
            d.len()
        );
        assert_eq!(u16::from_ne_bytes([d[4], d[5]]), 26, "RTM_GETROUTE");
        assert_eq!(u16::from_ne_bytes([d[6], d[7]]), NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(u32::from_ne_bytes([d[8], d[9], d[10], d[11]]), 6);
        assert_eq!(d[16], 2, "AF_INET");
    }

    proptest::proptest! {
        #[test]
        fn any_datagram_is_read_sanely(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)
        ) {
            proptest::prop_assert!(reads_sanely(&bytes));
        }

        /// The real messages with any byte changed.
        #[test]
        fn a_mangled_kernel_message_is_read_sanely(
            which in 0usize..3, at in 0usize..80, to in proptest::num::u8::ANY
        ) {
            let mut b = bytes([NEWROUTE, MULTIPATH, DELROUTE][which]);
            if let Some(x) = b.get_mut(at) {
                *x = to;
            }
            proptest::prop_assert!(reads_sanely(&b));
        }
    }
}
