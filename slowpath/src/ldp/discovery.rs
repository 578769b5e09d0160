//! Basic discovery (RFC 5036 §2.4.1, §3.5.2): Link Hellos sent to 224.0.0.2 on UDP 646 on
//! every LDP interface, and the Hello adjacencies they make, each kept while Hellos keep
//! arriving within the hold time both sides agreed on.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::wire::{Body, Hello, LdpId};

/// The "all routers on this subnet" group Link Hellos go to.
pub const ALL_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 2);
/// The LDP port, UDP for discovery and TCP for sessions (RFC 5036 §3.10).
pub const LDP_PORT: u16 = 646;
/// The Link Hello hold time a Hold Time of 0 stands for (RFC 5036 §3.5.2).
pub const DEFAULT_LINK_HOLD: u16 = 15;

/// Which interface a Hello came in on or goes out of, as the transport numbers them.
pub type IfIndex = u32;

/// A Hello adjacency: one neighbour heard on one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjacency {
    /// The neighbour's LDP Identifier, from the Hello's PDU header.
    pub peer: LdpId,
    /// Where its session's TCP connection goes: its IPv4 Transport Address TLV, else the
    /// Hello's source address (RFC 5036 §2.5.2).
    pub transport: Ipv4Addr,
    /// The hold time both sides agreed on: the smaller of the two proposals.
    pub hold: Duration,
    /// Its last Hello had the GTSM flag (RFC 6720 §3): it supports GTSM.
    pub gtsm: bool,
    /// When the adjacency lapses unless another Hello arrives.
    pub expires: Instant,
}

/// Why a Hello did not make or refresh an adjacency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloDrop {
    /// Not a PDU holding a Hello.
    NotHello,
    /// Our own Hello, looped back.
    Own,
    /// A Targeted Hello on the multicast discovery path.
    Targeted,
}

/// The adjacencies, keyed by interface and the neighbour's LSR ID.
#[derive(Debug)]
pub struct Discovery {
    /// Our LSR ID: Hellos carrying it are our own, looped back.
    lsr_id: Ipv4Addr,
    /// The hold time we propose, seconds.
    hold: u16,
    adjacencies: BTreeMap<(IfIndex, Ipv4Addr), Adjacency>,
}

/// The hold time proposed as the Hello carries it, in seconds (0 means the default).
fn proposed(hold: u16) -> u16 {
    if hold == 0 {
        DEFAULT_LINK_HOLD
    } else {
        hold
    }
}

impl Discovery {
    /// Discovery for the LSR `lsr_id` proposing a hold time of `hold` seconds.
    pub fn new(lsr_id: Ipv4Addr, hold: u16) -> Discovery {
        Discovery {
            lsr_id,
            hold,
            adjacencies: BTreeMap::new(),
        }
    }

    /// Takes a received Link Hello from `src` on `iface`; returns the adjacency it made or
    /// refreshed, and whether it is new.
    pub fn receive(
        &mut self,
        now: Instant,
        iface: IfIndex,
        src: Ipv4Addr,
        from: LdpId,
        hello: &Hello,
    ) -> Result<(&Adjacency, bool), HelloDrop> {
        if from.lsr_id == self.lsr_id {
            return Err(HelloDrop::Own);
        }
        if hello.targeted {
            return Err(HelloDrop::Targeted);
        }
        // 0xffff (infinite) is larger than any finite proposal, so the minimum is right.
        let hold = Duration::from_secs(proposed(hello.hold_time).min(proposed(self.hold)).into());
        let adj = Adjacency {
            peer: from,
            transport: hello.transport_v4.unwrap_or(src),
            hold,
            gtsm: hello.gtsm,
            expires: now + hold,
        };
        let key = (iface, from.lsr_id);
        let new = self.adjacencies.insert(key, adj).is_none();
        self.adjacencies
            .get(&key)
            .map(|a| (a, new))
            .ok_or(HelloDrop::NotHello)
    }

    /// Removes lapsed adjacencies; returns the LSR IDs of the neighbours that lost one.
    pub fn expire(&mut self, now: Instant) -> Vec<Ipv4Addr> {
        let mut gone = Vec::new();
        self.adjacencies.retain(|(_, lsr), a| {
            let keep = a.expires > now;
            if !keep {
                gone.push(*lsr);
            }
            keep
        });
        gone
    }

    /// Removes the adjacencies on an interface that stopped running LDP.
    pub fn drop_interface(&mut self, iface: IfIndex) -> Vec<Ipv4Addr> {
        let mut gone = Vec::new();
        self.adjacencies.retain(|(i, lsr), _| {
            let keep = *i != iface;
            if !keep {
                gone.push(*lsr);
            }
            keep
        });
        gone
    }

    /// An adjacency with the neighbour `lsr`, if there is one on any interface.
    pub fn of_peer(&self, lsr: Ipv4Addr) -> Option<&Adjacency> {
        self.adjacencies
            .iter()
            .find(|((_, l), _)| *l == lsr)
            .map(|(_, a)| a)
    }

    /// Whether a session with `lsr` uses GTSM as far as the neighbour goes (RFC 6720 §3):
    /// it has an adjacency and the last Hello of every one advertised GTSM.
    pub fn gtsm(&self, lsr: Ipv4Addr) -> bool {
        let mut any = false;
        for ((_, l), a) in &self.adjacencies {
            if *l == lsr {
                if !a.gtsm {
                    return false;
                }
                any = true;
            }
        }
        any
    }

    /// The neighbour whose transport address is `addr`.
    pub fn by_transport(&self, addr: Ipv4Addr) -> Option<&Adjacency> {
        self.adjacencies.values().find(|a| a.transport == addr)
    }

    /// The earliest expiry.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.adjacencies.values().map(|a| a.expires).min()
    }

    /// All adjacencies with their interface.
    pub fn iter(&self) -> impl Iterator<Item = (IfIndex, &Adjacency)> {
        self.adjacencies.iter().map(|((i, _), a)| (*i, a))
    }
}

/// The Link Hello this LSR sends: hold time proposal, transport address, and whether it
/// supports GTSM.
pub fn hello_body(hold: u16, transport: Ipv4Addr, gtsm: bool) -> Body {
    Body::Hello(Hello {
        hold_time: hold,
        targeted: false,
        request_targeted: false,
        gtsm,
        transport_v4: Some(transport),
        config_seqno: None,
        transport_v6: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(hold: u16, transport: Option<Ipv4Addr>) -> Hello {
        Hello {
            hold_time: hold,
            targeted: false,
            request_targeted: false,
            gtsm: false,
            transport_v4: transport,
            config_seqno: None,
            transport_v6: None,
        }
    }

    #[test]
    fn hold_is_the_smaller_proposal_and_lapses() {
        let t0 = Instant::now();
        let me = Ipv4Addr::new(10, 0, 0, 1);
        let peer = LdpId {
            lsr_id: Ipv4Addr::new(10, 0, 0, 2),
            label_space: 0,
        };
        let src = Ipv4Addr::new(192, 0, 2, 2);
        let mut d = Discovery::new(me, 15);
        let (a, new) = d
            .receive(t0, 1, src, peer, &hello(0, None))
            .expect("adjacency");
        assert!(new);
        assert_eq!(a.hold, Duration::from_secs(15));
        assert_eq!(a.transport, src);
        let (a, new) = d
            .receive(t0, 1, src, peer, &hello(9, Some(peer.lsr_id)))
            .expect("adjacency");
        assert!(!new);
        assert_eq!(a.hold, Duration::from_secs(9));
        assert_eq!(a.transport, peer.lsr_id);
        assert!(d.expire(t0 + Duration::from_secs(8)).is_empty());
        assert_eq!(d.expire(t0 + Duration::from_secs(9)), vec![peer.lsr_id]);
        assert!(d.of_peer(peer.lsr_id).is_none());
        // Our own Hellos and Targeted Hellos make no adjacency.
        let own = LdpId {
            lsr_id: me,
            label_space: 0,
        };
        assert_eq!(
            d.receive(t0, 1, src, own, &hello(0, None)).err(),
            Some(HelloDrop::Own)
        );
        let mut t = hello(0, None);
        t.targeted = true;
        assert_eq!(
            d.receive(t0, 1, src, peer, &t).err(),
            Some(HelloDrop::Targeted)
        );
    }

    /// GTSM holds for a neighbour only while every link's last Hello advertises it.
    #[test]
    fn gtsm_needs_the_flag_on_every_adjacency() {
        let t0 = Instant::now();
        let peer = LdpId {
            lsr_id: Ipv4Addr::new(10, 0, 0, 2),
            label_space: 0,
        };
        let src = Ipv4Addr::new(192, 0, 2, 2);
        let mut d = Discovery::new(Ipv4Addr::new(10, 0, 0, 1), 15);
        assert!(!d.gtsm(peer.lsr_id), "no adjacency");
        let g = Hello {
            gtsm: true,
            ..hello(0, None)
        };
        d.receive(t0, 1, src, peer, &g).expect("adjacency");
        assert!(d.gtsm(peer.lsr_id));
        d.receive(t0, 2, src, peer, &hello(0, None))
            .expect("adjacency");
        assert!(!d.gtsm(peer.lsr_id), "a second link without G");
        d.receive(t0, 2, src, peer, &g).expect("adjacency");
        assert!(d.gtsm(peer.lsr_id), "the second link's next Hello has G");
        d.receive(t0, 1, src, peer, &hello(0, None))
            .expect("adjacency");
        assert!(!d.gtsm(peer.lsr_id), "G withdrawn on the first link");
    }
}
