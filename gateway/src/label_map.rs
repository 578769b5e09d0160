//! What LDP's FEC states mean for this node's fast-path tables: the one place that turns
//! [`FecState`]s into [`TableUpdate`]s.
//!
//! For a FEC with a local label (the label this node advertised, which its upstream
//! neighbours push or swap to):
//! - this node is the FEC's egress: an ISP's upstream FEC (`ldp.fec`) on the node handing the
//!   ISP off pops and hands off to the ISP's router; an ISP's subscriber prefix
//!   (`ldp.subscribers`) on a node with access ports pops and delivers by (ISP, address);
//! - otherwise, with the next hop's label known: a transit swap toward the next hop.
//!
//! And where this node pushes the FEC's label (an ISP's upstream FEC at a node with access
//! ports, its subscriber prefix at the node handing it off), the label learned from the next
//! hop becomes the ISP's FEC in that direction; none learned: no FEC (`no_fec` drops).
//!
//! Next hops and ISP routers are addresses: their entries follow the kernel's neighbour
//! table ([`Resolver::attach`]), written with MAC zero (`no_neighbour`) until resolved. A next
//! hop's port is the routed port whose subnet holds it (LDP next hops are on the link). A
//! next hop that advertised implicit null (label 3: it wants the packet unlabelled, as FRR
//! does for its own prefixes) cannot carry an ISP's traffic, whose label says the ISP: no
//! entry, counted.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Instant;

use ispmux_conf::{Config, IfAddr, NextHop, NextHopEntry};
use ispmux_dataplane::table::{Direction, Fec as FecEntry, IlmAction, IspId};
use ispmux_dataplane::wire::MacAddr;
use ispmux_dataplane::{PortRole, TableUpdate};
use ispmux_slowpath::ldp::{Fec, FecState};
use ispmux_slowpath::neighbour::Resolver;
use serde::{Deserialize, Serialize};

/// Labels 0-15 are reserved (RFC 3032): none is pushed or swapped to.
const RESERVED_MAX: u32 = 15;

/// What an ISP's FEC is at this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Meaning {
    isp: IspId,
    direction: Direction,
    /// This node pushes the label learned for the FEC.
    ingress: bool,
    /// What this node does with its own label when it is the egress.
    pop: Option<Pop>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pop {
    /// Hand off to the ISP's router.
    Handoff {
        port: u16,
        vid: u16,
        router: NextHop,
    },
    /// Deliver to the subscriber by (ISP, destination).
    Deliver,
}

/// What one FEC has written into the tables, to undo it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Written {
    ilm: Option<u32>,
    /// The ISP and direction whose FEC this node pushes the FEC's learned label as (kept
    /// here, not taken from the meaning: a reload may change or remove the meaning).
    push: Option<(IspId, Direction)>,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelMapStats {
    /// FEC states taken from LDP.
    pub fec_states: u64,
    /// Incoming labels written (pop or swap) and removed.
    pub ilm_written: u64,
    /// ISP FECs written (push) and removed.
    pub push_written: u64,
    /// Next hops with a reserved label (implicit null): no entry.
    pub reserved_label: u64,
    /// Next hops on no routed port's subnet: no entry.
    pub next_hop_off_link: u64,
}

/// The FECs' meanings here and what each has written.
pub struct LabelMap {
    meanings: HashMap<Fec, Meaning>,
    written: HashMap<Fec, Written>,
    /// The last state of every FEC LDP gave out, for a reload to write again under the
    /// FECs' new meanings.
    last: HashMap<Fec, FecState>,
    /// The routed ports' interface addresses, by port index.
    links: Vec<(u16, IfAddr)>,
    stats: LabelMapStats,
}

impl LabelMap {
    /// The meanings of `cfg`'s ISP FECs at this node.
    pub fn new(cfg: &Config) -> Self {
        LabelMap {
            meanings: meanings(cfg),
            written: HashMap::new(),
            last: HashMap::new(),
            links: cfg
                .ports
                .iter()
                .enumerate()
                .filter_map(|(i, p)| Some((i as u16, p.address?)))
                .collect(),
            stats: LabelMapStats::default(),
        }
    }

    /// Takes the meanings of `cfg` (a reload; the ports are the same): every FEC whose
    /// meaning changed is written again from its last state, undoing what the old meaning
    /// wrote (an ISP removed at its tailend loses its pop entry here, before LDP withdraws
    /// its label). Returns the FECs whose meaning changed.
    pub fn reconfigure(
        &mut self,
        now: Instant,
        cfg: &Config,
        resolver: &mut Resolver,
        out: &mut Vec<TableUpdate>,
    ) -> usize {
        let new = meanings(cfg);
        let mut changed: Vec<Fec> = new
            .iter()
            .filter(|(f, m)| self.meanings.get(f) != Some(m))
            .map(|(f, _)| *f)
            .chain(
                self.meanings
                    .keys()
                    .filter(|f| !new.contains_key(f))
                    .copied(),
            )
            .collect();
        changed.sort_unstable_by_key(|f| (f.addr, f.len));
        self.meanings = new;
        let states: Vec<FecState> = changed
            .iter()
            .filter_map(|f| self.last.get(f).copied())
            .collect();
        self.apply(now, &states, resolver, out);
        changed.len()
    }
}

/// What each ISP FEC of `cfg` means at this node.
fn meanings(cfg: &Config) -> HashMap<Fec, Meaning> {
    let index = |name: &str| {
        cfg.ports
            .iter()
            .position(|p| p.name == name)
            .map(|i| i as u16)
    };
    let has_access = cfg.ports.iter().any(|p| p.role == Some(PortRole::Access));
    let mut meanings = HashMap::new();
    for isp in &cfg.tables.isps {
        let Some(l) = &isp.ldp else { continue };
        let handoff = isp
            .handoff
            .first()
            .and_then(|h| Some((index(&h.port.0)?, h.vlan)));
        if let Some(net) = l.fec {
            let pop = match (handoff, l.router) {
                (Some((port, vid)), Some(router)) => Some(Pop::Handoff { port, vid, router }),
                _ => None,
            };
            if let Some(fec) = Fec::new(net.addr(), net.prefix_len()) {
                meanings.insert(
                    fec,
                    Meaning {
                        isp: isp.id,
                        direction: Direction::Upstream,
                        ingress: has_access,
                        pop,
                    },
                );
            }
        }
        if let Some(net) = l.subscribers {
            if let Some(fec) = Fec::new(net.addr(), net.prefix_len()) {
                meanings.insert(
                    fec,
                    Meaning {
                        isp: isp.id,
                        direction: Direction::Downstream,
                        ingress: handoff.is_some(),
                        pop: has_access.then_some(Pop::Deliver),
                    },
                );
            }
        }
    }
    meanings
}

impl LabelMap {
    /// The FECs this node is the egress of, for LDP to advertise.
    pub fn egress_fecs(&self) -> Vec<Fec> {
        let mut v: Vec<Fec> = self
            .meanings
            .iter()
            .filter(|(_, m)| m.pop.is_some())
            .map(|(f, _)| *f)
            .collect();
        v.sort_unstable_by_key(|f| (f.addr, f.len));
        v
    }

    /// Counters.
    pub fn stats(&self) -> LabelMapStats {
        self.stats
    }

    fn port_of(&self, next_hop: Ipv4Addr) -> Option<u16> {
        self.links
            .iter()
            .find(|(_, a)| a.network().contains(next_hop))
            .map(|(p, _)| *p)
    }

    /// The next hop's port and label, when they can carry an entry.
    fn usable(&mut self, remote: Option<(Ipv4Addr, u32)>) -> Option<(u16, Ipv4Addr, u32)> {
        let (nh, label) = remote?;
        if label <= RESERVED_MAX {
            self.stats.reserved_label += 1;
            return None;
        }
        match self.port_of(nh) {
            Some(port) => Some((port, nh, label)),
            None => {
                self.stats.next_hop_off_link += 1;
                None
            }
        }
    }

    /// Writes what `states` mean into `out`, entries toward next hops given by address
    /// following them in `resolver`.
    pub fn apply(
        &mut self,
        now: Instant,
        states: &[FecState],
        resolver: &mut Resolver,
        out: &mut Vec<TableUpdate>,
    ) {
        for s in states {
            self.stats.fec_states += 1;
            self.last.insert(s.fec, *s);
            let meaning = self.meanings.get(&s.fec).copied();
            let before = self.written.get(&s.fec).copied().unwrap_or_default();
            let mut after = Written::default();

            // The incoming label: pop here, or swap toward the next hop.
            let ilm = match (s.local, meaning.and_then(|m| m.pop.map(|p| (m, p)))) {
                (Some(label), Some((m, pop))) if s.egress => Some((label, pop_action(m, pop))),
                (Some(label), _) if !s.egress => self.usable(s.remote).map(|(port, nh, out)| {
                    let swap = IlmAction::Swap {
                        out_label: out,
                        port,
                        next_hop: MacAddr::ZERO,
                    };
                    (label, (swap, Some((port, NextHop::Addr(nh)))))
                }),
                _ => None,
            };
            if let Some(old) = before.ilm {
                if ilm.map(|(l, _)| l) != Some(old) {
                    resolver.detach(&ilm_key(old));
                    out.push(TableUpdate::SetIlm {
                        label: old,
                        action: None,
                    });
                    self.stats.ilm_written += 1;
                }
            }
            if let Some((label, (action, toward))) = ilm {
                write(
                    now,
                    NextHopEntry::Ilm { label, action },
                    toward,
                    resolver,
                    out,
                );
                self.stats.ilm_written += 1;
                after.ilm = Some(label);
            }

            // The ISP's FEC where this node pushes.
            if let Some(m) = meaning.filter(|m| m.ingress) {
                if let Some((port, nh, label)) = self.usable(s.remote) {
                    let fec = FecEntry {
                        label,
                        tc: 0,
                        port,
                        next_hop: MacAddr::ZERO,
                    };
                    let entry = NextHopEntry::Fec {
                        isp: m.isp,
                        direction: m.direction,
                        fec,
                    };
                    write(now, entry, Some((port, NextHop::Addr(nh))), resolver, out);
                    after.push = Some((m.isp, m.direction));
                    self.stats.push_written += 1;
                }
            }
            // What was pushed and is no longer (no label learned, or another meaning).
            if let Some((isp, direction)) = before.push.filter(|p| after.push != Some(*p)) {
                resolver.detach(&fec_key(isp, direction));
                out.push(TableUpdate::SetFec {
                    isp,
                    direction,
                    fec: None,
                });
                self.stats.push_written += 1;
            }
            if after == Written::default() {
                self.written.remove(&s.fec);
            } else {
                self.written.insert(s.fec, after);
            }
        }
    }
}

/// The pop action of an egress and where it sends (the router, when given by address).
fn pop_action(m: Meaning, pop: Pop) -> (IlmAction, Option<(u16, NextHop)>) {
    match pop {
        Pop::Handoff { port, vid, router } => (
            IlmAction::PopHandoff {
                isp: m.isp,
                port,
                vid,
                router_mac: router.initial_mac(),
            },
            Some((port, router)),
        ),
        Pop::Deliver => (IlmAction::PopDeliver { isp: m.isp }, None),
    }
}

/// Writes `entry`: toward a next hop by address it follows the neighbour (written now with
/// the MAC known, or zero); toward a static MAC, or nowhere, it is written as it is.
fn write(
    now: Instant,
    entry: NextHopEntry,
    toward: Option<(u16, NextHop)>,
    resolver: &mut Resolver,
    out: &mut Vec<TableUpdate>,
) {
    match toward {
        Some((port, NextHop::Addr(a))) => resolver.attach(now, port, a, entry, out),
        Some((_, NextHop::Mac(m))) => {
            resolver.detach(&entry);
            out.push(entry.update(m));
        }
        None => {
            resolver.detach(&entry);
            out.push(entry.update(MacAddr::ZERO));
        }
    }
}

fn ilm_key(label: u32) -> NextHopEntry {
    NextHopEntry::Ilm {
        label,
        action: IlmAction::PopDeliver { isp: 0 },
    }
}

fn fec_key(isp: IspId, direction: Direction) -> NextHopEntry {
    NextHopEntry::Fec {
        isp,
        direction,
        fec: FecEntry {
            label: 0,
            tc: 0,
            port: 0,
            next_hop: MacAddr::ZERO,
        },
    }
}

#[cfg(test)]
mod tests;
