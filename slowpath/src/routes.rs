//! The kernel's IPv4 routes on the twins: a sans-IO route table, so LDP knows which neighbour
//! is the next hop toward a FEC. The glue (`gateway/src/routes.rs`) dumps and follows the
//! kernel's main routing table over netlink and feeds it here; this module keeps the routes
//! and says when the route to a prefix changed.
//!
//! In ([`RouteInput`]): a route of the main table (prefix, metric, its next hops on twins),
//! a route removed, and the start and end of a full dump (after which routes not seen in it
//! are gone: how the glue recovers from lost events and from the kernel's silent removals).
//! Out ([`RouteChange`]): for a prefix, its new best next hop, or `None` when no route via a
//! twin is left for it. Lookup: [`RouteTable::next_hop_for`], longest prefix match of a FEC.
//!
//! Choices:
//! - Only routes via twins are held (the glue drops the next hops on other interfaces):
//!   LDP's peers are only reachable through the twins. A more specific route out of another
//!   interface (or a blackhole) does therefore not hide a twin route that covers the FEC.
//! - A prefix may have several routes of different metrics (priorities); the lowest metric
//!   is the one the kernel uses, and so the one that counts here. A route added again with
//!   the same prefix and metric replaces the old one (`NLM_F_REPLACE`, or a dump).
//! - ECMP (`RTA_MULTIPATH`): LDP here follows one next hop per FEC, so of a route's next hops
//!   the lowest is taken: by gateway address (an on-link next hop, without gateway, first),
//!   then by port. Deterministic: the same kernel state gives the same choice on every
//!   node and every restart, whatever order the kernel lists the next hops in.
//! - A FEC is matched by the longest route prefix that contains all of it (the route's
//!   length ≤ the FEC's, the FEC's address inside the route's prefix): an exact match when
//!   there is one (RFC 5036 §2.1 / FRR's behaviour), else the covering route (RFC 5283).
//! - The events are per route prefix; a consumer holding FECs re-runs `next_hop_for` for each
//!   FEC the changed prefix contains ([`RouteChange::covers`]).

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use ispmux_conf::Ipv4Net;

/// Routes held at most; beyond that new prefixes are counted ([`RouteStats::refused`]) and
/// not held (a twin does not carry a full Internet table; this bounds memory if one does).
pub const MAX_ROUTES: usize = 1 << 20;

/// One next hop of a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NextHop {
    /// Port index of the twin the route leaves by.
    pub port: u16,
    /// The gateway (`via`); `None` for an on-link route (the destination itself is the next
    /// hop, as for the twin's own subnet).
    pub gateway: Option<Ipv4Addr>,
}

impl NextHop {
    /// The order among a multipath route's next hops: gateway, then port.
    fn rank(&self) -> (Option<Ipv4Addr>, u16) {
        (self.gateway, self.port)
    }
}

/// What the glue read from the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteInput {
    /// A route of the main table (`RTM_NEWROUTE`, event or dump), with its next hops on twins
    /// (several for `RTA_MULTIPATH`). Replaces the route of the same prefix and metric; with
    /// no next hop left (the route leaves by another interface) it removes that route.
    Add {
        /// Destination.
        prefix: Ipv4Net,
        /// Priority (`RTA_PRIORITY`, `metric` in `ip route`); lower wins.
        metric: u32,
        /// Its next hops on twins.
        next_hops: Vec<NextHop>,
    },
    /// A route deleted (`RTM_DELROUTE`).
    Remove {
        /// Destination.
        prefix: Ipv4Net,
        /// Priority.
        metric: u32,
    },
    /// A full dump starts: routes not seen (added) before [`RouteInput::DumpEnd`] are gone.
    DumpStart,
    /// The dump is complete.
    DumpEnd,
}

/// The route to a prefix changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteChange {
    /// The route's prefix.
    pub prefix: Ipv4Net,
    /// Its best next hop now; `None` when no route via a twin is left.
    pub next_hop: Option<NextHop>,
}

impl RouteChange {
    /// Whether a FEC's next hop may have changed with this route: the route's prefix
    /// contains the whole FEC.
    pub fn covers(&self, fec: Ipv4Net) -> bool {
        covers(self.prefix, fec)
    }
}

/// Whether `route` contains all of `fec`.
fn covers(route: Ipv4Net, fec: Ipv4Net) -> bool {
    route.prefix_len() <= fec.prefix_len() && route.contains(fec.addr())
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouteStats {
    /// Routes held (prefix and metric).
    pub routes: u64,
    /// Changes of a prefix's best next hop reported.
    pub changes: u64,
    /// Multipath routes of which one next hop was taken.
    pub multipath: u64,
    /// Routes not held because [`MAX_ROUTES`] were.
    pub refused: u64,
    /// Routes removed because a full dump no longer had them.
    pub swept: u64,
}

/// One route: its chosen next hop and whether the dump in progress has seen it.
#[derive(Clone, Copy, Debug)]
struct Held {
    next_hop: NextHop,
    seen: bool,
}

/// The routes via twins, by prefix length, address and metric.
pub struct RouteTable {
    /// Index = prefix length; key = network address; value = routes by metric.
    by_len: Vec<HashMap<u32, BTreeMap<u32, Held>>>,
    held: usize,
    dumping: bool,
    stats: RouteStats,
}

impl Default for RouteTable {
    fn default() -> Self {
        Self::new()
    }
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        RouteTable {
            by_len: (0..=32).map(|_| HashMap::new()).collect(),
            held: 0,
            dumping: false,
            stats: RouteStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> RouteStats {
        RouteStats {
            routes: self.held as u64,
            ..self.stats
        }
    }

    /// Routes held (prefix and metric).
    pub fn len(&self) -> usize {
        self.held
    }

    /// True when no route is held.
    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    /// The best next hop of the route to exactly `prefix`.
    pub fn get(&self, prefix: Ipv4Net) -> Option<NextHop> {
        self.routes(prefix)?.values().next().map(|h| h.next_hop)
    }

    /// Longest prefix match: the route that contains all of `fec` with the longest prefix,
    /// as (its prefix, its best next hop).
    pub fn next_hop_for(&self, fec: Ipv4Net) -> Option<(Ipv4Net, NextHop)> {
        let fec_addr = u32::from(fec.addr());
        for len in (0..=fec.prefix_len()).rev() {
            let net = Ipv4Net::new(Ipv4Addr::from(fec_addr & mask(len)), len).ok()?;
            if let Some(nh) = self.get(net) {
                return Some((net, nh));
            }
        }
        None
    }

    /// Takes one input; a change of a prefix's best next hop goes into `out`.
    pub fn input(&mut self, input: RouteInput, out: &mut Vec<RouteChange>) {
        match input {
            RouteInput::Add {
                prefix,
                metric,
                next_hops,
            } => {
                if next_hops.len() > 1 {
                    self.stats.multipath += 1;
                }
                match next_hops.iter().min_by_key(|n| n.rank()) {
                    Some(&nh) => self.add(prefix, metric, nh, out),
                    None => self.remove(prefix, metric, out),
                }
            }
            RouteInput::Remove { prefix, metric } => self.remove(prefix, metric, out),
            RouteInput::DumpStart => {
                self.dumping = true;
                for m in self.by_len.iter_mut() {
                    for routes in m.values_mut() {
                        for h in routes.values_mut() {
                            h.seen = false;
                        }
                    }
                }
            }
            RouteInput::DumpEnd => {
                if self.dumping {
                    self.dumping = false;
                    self.sweep(out);
                }
            }
        }
    }

    fn routes(&self, prefix: Ipv4Net) -> Option<&BTreeMap<u32, Held>> {
        self.by_len
            .get(usize::from(prefix.prefix_len()))?
            .get(&u32::from(prefix.addr()))
    }

    fn add(&mut self, prefix: Ipv4Net, metric: u32, nh: NextHop, out: &mut Vec<RouteChange>) {
        let before = self.get(prefix);
        let Some(m) = self.by_len.get_mut(usize::from(prefix.prefix_len())) else {
            return;
        };
        let key = u32::from(prefix.addr());
        let known = m.get(&key).is_some_and(|r| r.contains_key(&metric));
        if !known && self.held >= MAX_ROUTES {
            self.stats.refused += 1;
            return;
        }
        let held = Held {
            next_hop: nh,
            seen: true,
        };
        if m.entry(key).or_default().insert(metric, held).is_none() {
            self.held += 1;
        }
        self.report(prefix, before, out);
    }

    fn remove(&mut self, prefix: Ipv4Net, metric: u32, out: &mut Vec<RouteChange>) {
        let before = self.get(prefix);
        let Some(m) = self.by_len.get_mut(usize::from(prefix.prefix_len())) else {
            return;
        };
        let key = u32::from(prefix.addr());
        let Some(routes) = m.get_mut(&key) else {
            return;
        };
        if routes.remove(&metric).is_some() {
            self.held = self.held.saturating_sub(1);
        }
        if routes.is_empty() {
            m.remove(&key);
        }
        self.report(prefix, before, out);
    }

    /// Removes every route the dump did not see.
    fn sweep(&mut self, out: &mut Vec<RouteChange>) {
        let mut gone = Vec::new();
        for (len, m) in self.by_len.iter().enumerate() {
            for (addr, routes) in m {
                for (metric, h) in routes {
                    if !h.seen {
                        let len = u8::try_from(len).unwrap_or(32);
                        if let Ok(p) = Ipv4Net::new(Ipv4Addr::from(*addr), len) {
                            gone.push((p, *metric));
                        }
                    }
                }
            }
        }
        // Sorted so the changes come out in the same order every time.
        gone.sort_by_key(|(p, m)| (p.prefix_len(), u32::from(p.addr()), *m));
        self.stats.swept += gone.len() as u64;
        for (p, metric) in gone {
            self.remove(p, metric, out);
        }
    }

    fn report(&mut self, prefix: Ipv4Net, before: Option<NextHop>, out: &mut Vec<RouteChange>) {
        let after = self.get(prefix);
        if after != before {
            self.stats.changes += 1;
            out.push(RouteChange {
                prefix,
                next_hop: after,
            });
        }
    }
}

/// The netmask of a prefix length as a host-order word.
fn mask(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("prefix")
    }

    fn via(port: u16, gw: [u8; 4]) -> NextHop {
        NextHop {
            port,
            gateway: Some(Ipv4Addr::from(gw)),
        }
    }

    fn add(t: &mut RouteTable, p: &str, metric: u32, nhs: &[NextHop]) -> Vec<RouteChange> {
        let mut out = Vec::new();
        t.input(
            RouteInput::Add {
                prefix: net(p),
                metric,
                next_hops: nhs.to_vec(),
            },
            &mut out,
        );
        out
    }

    fn remove(t: &mut RouteTable, p: &str, metric: u32) -> Vec<RouteChange> {
        let mut out = Vec::new();
        t.input(
            RouteInput::Remove {
                prefix: net(p),
                metric,
            },
            &mut out,
        );
        out
    }

    #[test]
    fn a_route_added_changed_and_removed_is_reported_each_time() {
        let mut t = RouteTable::new();
        let a = via(1, [10, 0, 0, 2]);
        let b = via(2, [10, 0, 1, 2]);
        assert_eq!(
            add(&mut t, "198.18.5.0/24", 0, &[a]),
            [RouteChange {
                prefix: net("198.18.5.0/24"),
                next_hop: Some(a)
            }]
        );
        // The same again: nothing changed, nothing reported.
        assert_eq!(add(&mut t, "198.18.5.0/24", 0, &[a]), []);
        // Replaced (NLM_F_REPLACE): the new next hop.
        assert_eq!(
            add(&mut t, "198.18.5.0/24", 0, &[b]),
            [RouteChange {
                prefix: net("198.18.5.0/24"),
                next_hop: Some(b)
            }]
        );
        assert_eq!(t.len(), 1);
        assert_eq!(
            remove(&mut t, "198.18.5.0/24", 0),
            [RouteChange {
                prefix: net("198.18.5.0/24"),
                next_hop: None
            }]
        );
        assert!(t.is_empty());
        // Removing what is not there says nothing.
        assert_eq!(remove(&mut t, "198.18.5.0/24", 0), []);
        assert_eq!(t.stats().changes, 3);
    }

    #[test]
    fn the_lowest_metric_wins_and_the_next_takes_over() {
        let mut t = RouteTable::new();
        let a = via(1, [10, 0, 0, 2]);
        let b = via(2, [10, 0, 1, 2]);
        add(&mut t, "198.18.5.1/32", 20, &[b]);
        assert_eq!(add(&mut t, "198.18.5.1/32", 10, &[a]).len(), 1);
        // A worse route changes nothing.
        assert_eq!(
            add(&mut t, "198.18.5.1/32", 30, &[via(3, [10, 0, 2, 2])]),
            []
        );
        assert_eq!(t.get(net("198.18.5.1/32")), Some(a));
        assert_eq!(
            remove(&mut t, "198.18.5.1/32", 10),
            [RouteChange {
                prefix: net("198.18.5.1/32"),
                next_hop: Some(b)
            }]
        );
        assert_eq!(remove(&mut t, "198.18.5.1/32", 30), []);
    }

    #[test]
    fn multipath_takes_the_lowest_next_hop_in_any_order() {
        let hops = [
            via(2, [10, 0, 1, 2]),
            via(1, [10, 0, 0, 9]),
            via(3, [10, 0, 0, 2]),
        ];
        let want = via(3, [10, 0, 0, 2]);
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
            let mut t = RouteTable::new();
            let nhs: Vec<NextHop> = order.iter().map(|&i| hops[i]).collect();
            add(&mut t, "198.18.6.0/24", 0, &nhs);
            assert_eq!(t.get(net("198.18.6.0/24")), Some(want), "{order:?}");
            assert_eq!(t.stats().multipath, 1);
        }
        // An on-link next hop ranks before any gateway.
        let mut t = RouteTable::new();
        let on_link = NextHop {
            port: 9,
            gateway: None,
        };
        add(&mut t, "198.18.6.0/24", 0, &[hops[2], on_link]);
        assert_eq!(t.get(net("198.18.6.0/24")), Some(on_link));
    }

    #[test]
    fn losing_one_path_of_a_multipath_route_moves_only_if_it_was_the_chosen() {
        let mut t = RouteTable::new();
        let low = via(1, [10, 0, 0, 2]);
        let high = via(2, [10, 0, 1, 2]);
        add(&mut t, "198.18.6.0/24", 0, &[low, high]);
        // The kernel reports the route again with one path left.
        assert_eq!(add(&mut t, "198.18.6.0/24", 0, &[low]), []);
        assert_eq!(add(&mut t, "198.18.6.0/24", 0, &[low, high]), []);
        assert_eq!(
            add(&mut t, "198.18.6.0/24", 0, &[high]),
            [RouteChange {
                prefix: net("198.18.6.0/24"),
                next_hop: Some(high)
            }]
        );
        // No path on a twin left: the route is gone.
        assert_eq!(
            add(&mut t, "198.18.6.0/24", 0, &[]),
            [RouteChange {
                prefix: net("198.18.6.0/24"),
                next_hop: None
            }]
        );
        assert!(t.is_empty());
    }

    #[test]
    fn longest_prefix_match_covers_the_whole_fec() {
        let mut t = RouteTable::new();
        let d = via(1, [10, 0, 0, 1]);
        let m = via(2, [10, 0, 0, 2]);
        let h = via(3, [10, 0, 0, 3]);
        add(&mut t, "0.0.0.0/0", 0, &[d]);
        add(&mut t, "198.18.0.0/16", 0, &[m]);
        add(&mut t, "198.18.7.7/32", 0, &[h]);
        assert_eq!(
            t.next_hop_for(net("198.18.7.7/32")),
            Some((net("198.18.7.7/32"), h))
        );
        assert_eq!(
            t.next_hop_for(net("198.18.7.8/32")),
            Some((net("198.18.0.0/16"), m))
        );
        assert_eq!(
            t.next_hop_for(net("198.18.7.0/24")),
            Some((net("198.18.0.0/16"), m))
        );
        // A FEC wider than the /16 is matched only by the default route.
        assert_eq!(
            t.next_hop_for(net("198.16.0.0/14")),
            Some((net("0.0.0.0/0"), d))
        );
        assert_eq!(
            t.next_hop_for(net("0.0.0.0/0")),
            Some((net("0.0.0.0/0"), d))
        );
        let mut out = Vec::new();
        t.input(
            RouteInput::Remove {
                prefix: net("0.0.0.0/0"),
                metric: 0,
            },
            &mut out,
        );
        assert!(out[0].covers(net("203.0.113.0/24")));
        assert_eq!(t.next_hop_for(net("203.0.113.0/24")), None);
        let c = RouteChange {
            prefix: net("198.18.0.0/16"),
            next_hop: None,
        };
        assert!(c.covers(net("198.18.7.7/32")));
        assert!(!c.covers(net("198.16.0.0/14")));
        assert!(!c.covers(net("198.19.0.1/32")));
    }

    #[test]
    fn a_dump_sweeps_what_the_kernel_no_longer_has() {
        let mut t = RouteTable::new();
        let a = via(1, [10, 0, 0, 2]);
        add(&mut t, "198.18.8.0/24", 0, &[a]);
        add(&mut t, "198.18.9.0/24", 0, &[a]);
        add(&mut t, "198.18.9.0/24", 100, &[a]);
        let mut out = Vec::new();
        t.input(RouteInput::DumpStart, &mut out);
        t.input(
            RouteInput::Add {
                prefix: net("198.18.9.0/24"),
                metric: 100,
                next_hops: vec![a],
            },
            &mut out,
        );
        assert_eq!(out, []);
        t.input(RouteInput::DumpEnd, &mut out);
        // 198.18.8.0/24 is gone; 198.18.9.0/24 keeps its metric-100 route (same next hop).
        assert_eq!(
            out,
            [RouteChange {
                prefix: net("198.18.8.0/24"),
                next_hop: None
            }]
        );
        assert_eq!(t.len(), 1);
        assert_eq!(t.stats().swept, 2);
        // A DumpEnd without a DumpStart sweeps nothing.
        out.clear();
        t.input(RouteInput::DumpEnd, &mut out);
        assert_eq!((out.len(), t.len()), (0, 1));
    }

    proptest::proptest! {
        /// Any sequence of inputs: the table agrees with a plain list of routes (the lowest
        /// metric's lowest next hop per prefix), and the changes reported replay to it.
        #[test]
        fn the_table_matches_a_plain_model(
            ops in proptest::collection::vec(
                (0u8..4, 0u32..4, 0u8..3, proptest::collection::vec((0u16..3, 0u8..3), 0..3)),
                0..64,
            )
        ) {
            let prefixes = [net("198.18.0.0/16"), net("198.18.1.0/24"), net("198.18.1.1/32"), net("0.0.0.0/0")];
            let mut t = RouteTable::new();
            let mut model: HashMap<(Ipv4Net, u32), NextHop> = HashMap::new();
            let mut seen: HashMap<Ipv4Net, Option<NextHop>> = HashMap::new();
            for (p, metric, op, nhs) in ops {
                let prefix = prefixes[usize::from(p)];
                let nhs: Vec<NextHop> = nhs.iter().map(|&(port, g)| via(port, [10, 0, 0, g])).collect();
                let mut out = Vec::new();
                if op == 0 {
                    t.input(RouteInput::Remove { prefix, metric }, &mut out);
                    model.remove(&(prefix, metric));
                } else {
                    match nhs.iter().min_by_key(|n| n.rank()) {
                        Some(&n) => { model.insert((prefix, metric), n); }
                        None => { model.remove(&(prefix, metric)); }
                    }
                    t.input(RouteInput::Add { prefix, metric, next_hops: nhs }, &mut out);
                }
                for c in out {
                    seen.insert(c.prefix, c.next_hop);
                }
                for q in prefixes {
                    let want = model.iter().filter(|((p, _), _)| *p == q).min_by_key(|((_, m), _)| *m).map(|(_, n)| *n);
                    proptest::prop_assert_eq!(t.get(q), want);
                    proptest::prop_assert_eq!(seen.get(&q).copied().flatten(), want);
                }
                proptest::prop_assert_eq!(t.len(), model.len());
            }
        }
    }
}
