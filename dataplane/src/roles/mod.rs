//! The per-role pipelines over a burst, and the [`Node`] that combines them by port.
//!
//! A node's ports each have a role ([`PortRole`]), and each role's pipeline is the module of
//! that name: frames from an access port run the headend upstream pipeline ([`access`]),
//! frames from a core port run the ILM ([`core`]: transit swap, tailend pop and hand-off,
//! headend pop and delivery), frames from a hand-off port run the tailend downstream
//! pipeline ([`handoff`]). A node may have ports of all three roles: headend, transit and
//! tailend at once. [`classify`] (header parsing) and [`link`] (link headers, label push)
//! are shared by the roles.
//!
//! Every pipeline works in passes over the burst: first parse headers and compute (and
//! prefetch) the table buckets of every frame, then resolve them, so the cache misses of a
//! burst overlap instead of queueing one after another.
//!
//! Proxy ARP is answered in the fast path ([`access::arp`]): hosts refresh ARP every minute or so,
//! and at millions of subscribers that would be the bulk of the slow path's work; the reply
//! is a stateless rewrite in place. Everything else ARP goes to the slow path.

pub mod access;
pub mod budget;
pub mod classify;
pub mod core;
pub mod handoff;
pub mod harness;
pub mod link;
pub mod node;

pub use node::Node;

use crate::counters::{Counters, DropReason};
use crate::pipeline::Verdict;
use crate::table::Tables;
use crate::wire::MacAddr;

/// Frames handled per pass; bursts longer than this are handled in chunks.
pub const BURST: usize = 64;

/// What a port faces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortRole {
    /// Toward subscribers (headend).
    Access,
    /// Toward the label-switched backbone.
    Core,
    /// Toward ISP routers (tailend).
    Handoff,
    /// Not forwarding: every frame is dropped as `NoRoute`.
    Unused,
}

/// A port as the pipelines see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortConfig {
    /// Role.
    pub role: PortRole,
    /// The port's own MAC address: source of frames sent, target of proxy ARP replies.
    pub mac: MacAddr,
    /// Largest Ethernet payload (label stack plus IPv4) the port sends, 1500 on most links.
    pub mtu: u16,
    /// The port's own IPv4 address (core and hand-off ports): what arrives for it is the
    /// kernel twin's, punted.
    pub address: PortAddr,
    /// Core ports: the label unlabelled IPv4 (not for the gateway) is handled as, when the
    /// neighbour pops the last label (penultimate-hop popping); `None`: dropped, `not_mpls`.
    pub implicit_null: Option<u32>,
}

/// The IPv4 destinations of a routed port that are the gateway's own: unlabelled IPv4 to
/// them is punted to the port's kernel twin rather than forwarded or dropped. The slow path
/// sorts punted frames with the same test ([`PortAddr::is_for`]), so both agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortAddr {
    /// The address, host order.
    addr: u32,
    /// The subnet's directed broadcast (RFC 919), host order; the limited broadcast when the
    /// subnet has none (/31, RFC 3021; /32).
    broadcast: u32,
}

impl PortAddr {
    /// No address: only broadcast and link-local multicast are the twin's.
    pub const NONE: PortAddr = PortAddr {
        addr: u32::MAX,
        broadcast: u32::MAX,
    };

    /// The port's address `addr` in a subnet of `prefix_len` bits.
    pub fn new(addr: std::net::Ipv4Addr, prefix_len: u8) -> Self {
        let addr = u32::from(addr);
        let host = u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
        let broadcast = if prefix_len <= 30 {
            addr | host
        } else {
            u32::MAX
        };
        PortAddr { addr, broadcast }
    }

    /// The address, if the port has one.
    pub fn addr(&self) -> Option<std::net::Ipv4Addr> {
        (self.addr != u32::MAX).then(|| self.addr.into())
    }

    /// Whether IPv4 to `dst` (host order) is for the gateway itself: its address, the
    /// subnet's or the limited broadcast, or the link-local multicast block 224.0.0.0/24
    /// (RFC 5771: routing protocols' hellos, LDP's to 224.0.0.2, are never forwarded).
    #[inline(always)]
    pub fn is_for(&self, dst: u32) -> bool {
        dst == self.addr || dst == self.broadcast || dst == u32::MAX || dst >> 8 == 0xe0_0000
    }
}

impl Default for PortAddr {
    fn default() -> Self {
        PortAddr::NONE
    }
}

/// What a pipeline reads and counts into.
pub struct Cx<'a> {
    /// The worker's table copy.
    pub tables: &'a Tables,
    /// The node's ports.
    pub ports: &'a [PortConfig],
    /// The headend's push plans by ISP id, worked out from `tables` and `ports`
    /// ([`access::PushPlan`]).
    pub pushes: &'a [access::PushPlan],
    /// The worker's counters.
    pub counters: &'a mut Counters,
    /// Punts left for DHCP from unregistered MACs ([`crate::table::DhcpFilter`]).
    pub unregistered: &'a mut budget::PuntBudget,
}

impl Cx<'_> {
    /// The port `p`, if configured.
    #[inline(always)]
    pub fn port(&self, p: u16) -> Option<&PortConfig> {
        self.ports.get(usize::from(p))
    }

    /// The verdict of a frame that failed with `r`: a TTL expiry, and a packet with DF set
    /// (the DF bit of the IPv4 header at `l3` in `d`; unlabelled frames only, `None` for a
    /// labelled one) that does not fit, are punted so the slow path can answer them with
    /// ICMP (RFC 792 Time Exceeded, RFC 1191 Fragmentation Needed), and counted by why;
    /// anything else is dropped as `r`. Only failing frames come here: forwarding never
    /// pays for it.
    #[cold]
    #[inline(never)]
    pub fn icmp_punt(&mut self, r: DropReason, d: &[u8], l3: Option<usize>) -> Verdict {
        match r {
            DropReason::TtlExpired => {
                self.counters.worker.punts_ttl_expired += 1;
                Verdict::Punt
            }
            DropReason::Oversized
                if l3.and_then(|o| d.get(o + 6)).is_some_and(|f| f & 0x40 != 0) =>
            {
                self.counters.worker.punts_frag_needed += 1;
                Verdict::Punt
            }
            r => Verdict::Drop(r),
        }
    }
}

#[cfg(test)]
mod tests;
