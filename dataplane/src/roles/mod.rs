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
