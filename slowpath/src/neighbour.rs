//! Next hops given by address, followed through the kernel's neighbour table: a sans-IO
//! resolver. The glue around it (`gateway/src/neighbour.rs`) reads the kernel's neighbour
//! events over netlink and asks the kernel to resolve; this module decides what the tables
//! say.
//!
//! In: the next hops the configuration gives by address, each with the table entries that
//! leave toward it ([`ToResolve`]); neighbour events (port, address, `Some(mac)` when the
//! kernel knows a usable MAC, `None` when the entry failed or was deleted); the time.
//! Out: table updates (each dependent entry written again with the new MAC, or with MAC
//! zero, which the fast path drops as `no_neighbour`, when the neighbour is lost) and the
//! next hops to ask the kernel about now: unresolved ones every [`RETRY`], resolved ones every
//! [`CONFIRM`] (asking keeps the kernel probing, so a neighbour that disappears goes FAILED
//! instead of sitting STALE with its old MAC).
//!
//! The resolver also remembers the MAC of every neighbour the kernel reported on the ports,
//! wanted or not ([`SEEN_MAX`] of them), so a next hop attached later (LDP's) starts with what
//! the kernel already knows. Asking cannot replace this: a kernel entry kept REACHABLE by
//! other traffic (the LDP session's own TCP confirms it) changes state no more, so the
//! kernel would never report it again.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ispmux_conf::{NextHopEntry, ToResolve};
use ispmux_dataplane::table::TableUpdate;
use ispmux_dataplane::wire::MacAddr;

/// How often an unresolved next hop is asked for again.
pub const RETRY: Duration = Duration::from_secs(1);
/// How often a resolved next hop is asked to be confirmed.
pub const CONFIRM: Duration = Duration::from_secs(1);
/// Neighbours remembered beyond the wanted next hops; past it, one not wanted yet waits
/// for the kernel's next report about it. A twin's neighbours are its link's routers.
pub const SEEN_MAX: usize = 4096;

/// What the kernel says about one neighbour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighbourEvent {
    /// Port index of the interface it was seen on.
    pub port: u16,
    /// The neighbour's address.
    pub addr: Ipv4Addr,
    /// Its MAC when the kernel has a usable one (REACHABLE, STALE, DELAY, PROBE,
    /// PERMANENT); `None` when the entry failed, is incomplete or was deleted.
    pub mac: Option<MacAddr>,
}

/// Counters of the resolver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeighbourStats {
    /// Next hops wanted.
    pub wanted: u64,
    /// Of those, resolved now.
    pub resolved: u64,
    /// Times a next hop got a MAC it did not have (first resolution or a change).
    pub mac_changes: u64,
    /// Times a resolved next hop was lost (failed or deleted).
    pub losses: u64,
    /// Resolution requests made.
    pub asked: u64,
}

struct Hop {
    port: u16,
    addr: Ipv4Addr,
    entries: Vec<NextHopEntry>,
    mac: Option<MacAddr>,
    next_ask: Instant,
}

/// The next hops wanted and what the tables say about each.
pub struct Resolver {
    hops: Vec<Hop>,
    by_key: HashMap<(u16, Ipv4Addr), usize>,
    /// Usable MACs the kernel reported for neighbours no next hop wants (yet).
    seen: HashMap<(u16, Ipv4Addr), MacAddr>,
    stats: NeighbourStats,
}

impl Resolver {
    /// A resolver for `wanted`, every next hop unresolved (as the preload has them) and due
    /// to be asked for at `now`.
    pub fn new(wanted: Vec<ToResolve>, now: Instant) -> Self {
        let mut r = Resolver {
            hops: Vec::with_capacity(wanted.len()),
            by_key: HashMap::new(),
            seen: HashMap::new(),
            stats: NeighbourStats::default(),
        };
        for w in wanted {
            if let Some(&i) = r.by_key.get(&(w.port, w.addr)) {
                // Merged, should the list name a next hop twice.
                if let Some(h) = r.hops.get_mut(i) {
                    h.entries.extend(w.entries);
                }
                continue;
            }
            r.by_key.insert((w.port, w.addr), r.hops.len());
            r.hops.push(Hop {
                port: w.port,
                addr: w.addr,
                entries: w.entries,
                mac: None,
                next_ask: now,
            });
        }
        r.stats.wanted = r.hops.len() as u64;
        r
    }

    /// True when no next hop is wanted (the glue then opens no socket).
    pub fn is_empty(&self) -> bool {
        self.hops.is_empty()
    }

    /// The ports the wanted next hops are on, each once.
    pub fn ports(&self) -> Vec<u16> {
        let mut p: Vec<u16> = self.hops.iter().map(|h| h.port).collect();
        p.sort_unstable();
        p.dedup();
        p
    }

    /// The MAC the tables have for a next hop: `None` when unresolved or not wanted.
    pub fn mac(&self, port: u16, addr: Ipv4Addr) -> Option<MacAddr> {
        let i = *self.by_key.get(&(port, addr))?;
        self.hops.get(i)?.mac
    }

    /// Counters.
    pub fn stats(&self) -> NeighbourStats {
        self.stats
    }

    /// Makes `entry` follow the neighbour `addr` on `port` from now on (LDP's next hops come
    /// and go as it runs): writes it at once with the MAC known now (the kernel may have
    /// reported it before anything wanted it), or zero (its traffic is then `no_neighbour`)
    /// while the neighbour is asked for. An entry follows one neighbour: it leaves the one
    /// it followed before.
    pub fn attach(
        &mut self,
        now: Instant,
        port: u16,
        addr: Ipv4Addr,
        entry: NextHopEntry,
        out: &mut Vec<TableUpdate>,
    ) {
        self.detach(&entry);
        let i = match self.by_key.get(&(port, addr)) {
            Some(&i) => i,
            None => {
                let mac = self.seen.remove(&(port, addr));
                self.by_key.insert((port, addr), self.hops.len());
                self.hops.push(Hop {
                    port,
                    addr,
                    entries: Vec::new(),
                    mac,
                    next_ask: now,
                });
                self.stats.wanted += 1;
                if mac.is_some() {
                    self.stats.resolved += 1;
                }
                self.hops.len() - 1
            }
        };
        if let Some(h) = self.hops.get_mut(i) {
            if h.entries.is_empty() {
                // Followed again after a pause: confirm at once.
                h.next_ask = now;
            }
            h.entries.push(entry);
            out.push(entry.update(h.mac.unwrap_or(MacAddr::ZERO)));
        }
    }

    /// Stops `entry` (the table entry it writes) following its neighbour. A neighbour left
    /// with no entry is no longer asked for.
    pub fn detach(&mut self, entry: &NextHopEntry) {
        for h in &mut self.hops {
            h.entries.retain(|e| !e.same_entry(entry));
        }
    }

    /// Takes what the kernel says about a neighbour: when it is a wanted next hop whose
    /// MAC differs from the tables', every entry that leaves toward it is written again
    /// (into `out`, one update each); any other is remembered for [`Resolver::attach`].
    /// Returns whether it was a wanted next hop.
    pub fn event(&mut self, now: Instant, ev: NeighbourEvent, out: &mut Vec<TableUpdate>) -> bool {
        // A zero or group MAC is no station to send to: the same as none.
        let mac = ev.mac.filter(|m| *m != MacAddr::ZERO && !m.is_multicast());
        let key = (ev.port, ev.addr);
        let Some(h) = self.by_key.get(&key).and_then(|&i| self.hops.get_mut(i)) else {
            match mac {
                Some(m) if self.seen.len() < SEEN_MAX || self.seen.contains_key(&key) => {
                    self.seen.insert(key, m);
                }
                Some(_) => {}
                None => {
                    self.seen.remove(&key);
                }
            }
            return false;
        };
        if mac == h.mac {
            return true;
        }
        match (h.mac, mac) {
            (_, Some(_)) => {
                self.stats.mac_changes += 1;
                if h.mac.is_none() {
                    self.stats.resolved += 1;
                }
                h.next_ask = now + CONFIRM;
            }
            (Some(_), None) => {
                self.stats.losses += 1;
                self.stats.resolved = self.stats.resolved.saturating_sub(1);
                // Lost: resolve afresh at once (the neighbour may be back with another MAC).
                h.next_ask = now;
            }
            (None, None) => {}
        }
        h.mac = mac;
        let write = mac.unwrap_or(MacAddr::ZERO);
        out.extend(h.entries.iter().map(|e| e.update(write)));
        true
    }

    /// The next hops to ask the kernel about at `now` (into `ask`, as (port, address)):
    /// unresolved ones every [`RETRY`], resolved ones every [`CONFIRM`].
    pub fn poll(&mut self, now: Instant, ask: &mut Vec<(u16, Ipv4Addr)>) {
        for h in &mut self.hops {
            if h.next_ask > now || h.entries.is_empty() {
                continue;
            }
            ask.push((h.port, h.addr));
            self.stats.asked += 1;
            h.next_ask = now + if h.mac.is_some() { CONFIRM } else { RETRY };
        }
    }

    /// When [`Resolver::poll`] has something to ask next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.hops
            .iter()
            .filter(|h| !h.entries.is_empty())
            .map(|h| h.next_ask)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ispmux_dataplane::table::{Direction, Fec, IlmAction};

    const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    const M1: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const M2: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    fn fec_entry(isp: u16) -> NextHopEntry {
        NextHopEntry::Fec {
            isp,
            direction: Direction::Upstream,
            fec: Fec {
                label: 1000 + u32::from(isp),
                tc: 0,
                port: 1,
                next_hop: MacAddr::ZERO,
            },
        }
    }

    fn swap_entry(label: u32) -> NextHopEntry {
        NextHopEntry::Ilm {
            label,
            action: IlmAction::Swap {
                out_label: label + 1,
                port: 1,
                next_hop: MacAddr::ZERO,
            },
        }
    }

    /// A on port 1 with two FECs and a swap; B on port 2 with a hand-off.
    fn resolver(now: Instant) -> Resolver {
        Resolver::new(
            vec![
                ToResolve {
                    port: 1,
                    addr: A,
                    entries: vec![fec_entry(1), fec_entry(2), swap_entry(4001)],
                },
                ToResolve {
                    port: 2,
                    addr: B,
                    entries: vec![NextHopEntry::Ilm {
                        label: 5001,
                        action: IlmAction::PopHandoff {
                            isp: 1,
                            port: 2,
                            vid: 0,
                            router_mac: MacAddr::ZERO,
                        },
                    }],
                },
            ],
            now,
        )
    }

    fn ev(port: u16, addr: Ipv4Addr, mac: Option<MacAddr>) -> NeighbourEvent {
        NeighbourEvent { port, addr, mac }
    }

    /// The MAC every update in `out` writes.
    fn macs(out: &[TableUpdate]) -> Vec<MacAddr> {
        out.iter()
            .map(|u| match u {
                TableUpdate::SetFec { fec: Some(f), .. } => f.next_hop,
                TableUpdate::SetIlm {
                    action: Some(IlmAction::Swap { next_hop, .. }),
                    ..
                } => *next_hop,
                TableUpdate::SetIlm {
                    action: Some(IlmAction::PopHandoff { router_mac, .. }),
                    ..
                } => *router_mac,
                other => panic!("unexpected update {other:?}"),
            })
            .collect()
    }

    /// LDP's next hops come and go: an entry attached follows its neighbour (written at once
    /// with what is known), moves when attached elsewhere, and a neighbour left without
    /// entries is no longer asked for.
    #[test]
    fn entries_attached_at_run_time_follow_their_neighbour() {
        let t0 = Instant::now();
        let mut r = Resolver::new(Vec::new(), t0);
        let mut out = Vec::new();
        r.attach(t0, 1, A, fec_entry(7), &mut out);
        assert_eq!(macs(&out), [MacAddr::ZERO], "unresolved: written with zero");
        let mut ask = Vec::new();
        r.poll(t0, &mut ask);
        assert_eq!(ask, [(1, A)]);
        out.clear();
        assert!(r.event(t0, ev(1, A, Some(M1)), &mut out));
        assert_eq!(macs(&out), [M1]);
        // A second entry toward the same neighbour gets its MAC at once.
        out.clear();
        r.attach(t0, 1, A, fec_entry(8), &mut out);
        assert_eq!(macs(&out), [M1]);
        // The first moves to another neighbour: A's change no longer writes it.
        out.clear();
        r.attach(t0, 2, B, fec_entry(7), &mut out);
        assert_eq!(macs(&out), [MacAddr::ZERO]);
        out.clear();
        r.event(t0, ev(1, A, Some(M2)), &mut out);
        assert_eq!(out.len(), 1, "only entry 8 follows A: {out:?}");
        // Detached from B, which nothing follows any more: not asked for.
        r.detach(&fec_entry(7));
        ask.clear();
        r.poll(t0 + RETRY * 5, &mut ask);
        assert_eq!(ask, [(1, A)]);
    }

    /// The kernel resolved a neighbour before anything wanted it (LDP's own TCP session to
    /// the peer does): an entry attached later starts with that MAC, since the kernel, its
    /// entry kept REACHABLE, may never report it again. A neighbour lost meanwhile is not.
    #[test]
    fn a_neighbour_the_kernel_reported_before_it_was_wanted_resolves_at_attach() {
        let t0 = Instant::now();
        let mut r = Resolver::new(Vec::new(), t0);
        let mut out = Vec::new();
        assert!(!r.event(t0, ev(1, A, Some(M1)), &mut out));
        assert!(!r.event(t0, ev(2, B, Some(M2)), &mut out));
        assert!(!r.event(t0, ev(2, B, None), &mut out), "B failed since");
        assert!(out.is_empty(), "nothing follows them yet");
        r.attach(t0, 1, A, fec_entry(7), &mut out);
        r.attach(t0, 2, B, fec_entry(8), &mut out);
        assert_eq!(macs(&out), [M1, MacAddr::ZERO]);
        assert_eq!(r.mac(1, A), Some(M1));
        assert_eq!(r.stats().resolved, 1);
        // Only what the kernel said on the same port counts.
        out.clear();
        r.event(t0, ev(3, A, Some(M2)), &mut out);
        r.attach(t0, 1, A, fec_entry(9), &mut out);
        assert_eq!(macs(&out), [M1]);
    }

    #[test]
    fn everything_is_asked_for_at_once_then_every_second() {
        let t0 = Instant::now();
        let mut r = resolver(t0);
        let mut ask = Vec::new();
        r.poll(t0, &mut ask);
        assert_eq!(ask, [(1, A), (2, B)]);
        ask.clear();
        r.poll(t0 + Duration::from_millis(999), &mut ask);
        assert!(ask.is_empty());
        assert_eq!(r.next_deadline(), Some(t0 + RETRY));
        r.poll(t0 + RETRY, &mut ask);
        assert_eq!(ask.len(), 2, "unresolved: retried");
        assert_eq!(r.stats().asked, 4);
    }

    #[test]
    fn resolution_writes_every_dependent_entry_once() {
        let t0 = Instant::now();
        let mut r = resolver(t0);
        let mut out = Vec::new();
        assert!(r.event(t0, ev(1, A, Some(M1)), &mut out));
        assert_eq!(macs(&out), [M1, M1, M1]);
        assert!(matches!(out[0], TableUpdate::SetFec { isp: 1, .. }));
        assert!(matches!(out[2], TableUpdate::SetIlm { label: 4001, .. }));
        assert_eq!(r.mac(1, A), Some(M1));
        // The same MAC again (STALE → REACHABLE, a confirmation): nothing to write.
        out.clear();
        assert!(r.event(t0, ev(1, A, Some(M1)), &mut out));
        assert!(out.is_empty());
        // A change: one update per entry, with the new MAC.
        assert!(r.event(t0, ev(1, A, Some(M2)), &mut out));
        assert_eq!(macs(&out), [M2, M2, M2]);
        let s = r.stats();
        assert_eq!((s.wanted, s.resolved, s.mac_changes), (2, 1, 2));
    }

    #[test]
    fn a_lost_neighbour_is_zero_and_asked_for_again_at_once() {
        let t0 = Instant::now();
        let mut r = resolver(t0);
        let (mut out, mut ask) = (Vec::new(), Vec::new());
        r.poll(t0, &mut ask);
        r.event(t0, ev(2, B, Some(M1)), &mut out);
        out.clear();
        let t1 = t0 + Duration::from_millis(300);
        assert!(r.event(t1, ev(2, B, None), &mut out));
        assert_eq!(macs(&out), [MacAddr::ZERO]);
        assert_eq!(r.mac(2, B), None);
        ask.clear();
        r.poll(t1, &mut ask);
        assert_eq!(ask, [(2, B)], "asked again at once");
        // Failing again changes nothing in the tables.
        out.clear();
        r.event(t1, ev(2, B, None), &mut out);
        assert!(out.is_empty());
        let s = r.stats();
        assert_eq!((s.resolved, s.losses), (0, 1));
    }

    #[test]
    fn resolved_next_hops_are_confirmed_every_second() {
        let t0 = Instant::now();
        let mut r = resolver(t0);
        let (mut out, mut ask) = (Vec::new(), Vec::new());
        r.poll(t0, &mut ask);
        let t1 = t0 + Duration::from_millis(500);
        r.event(t1, ev(1, A, Some(M1)), &mut out);
        ask.clear();
        r.poll(t0 + RETRY, &mut ask);
        assert_eq!(ask, [(2, B)], "A was resolved half a second ago");
        ask.clear();
        r.poll(t1 + CONFIRM, &mut ask);
        assert_eq!(ask, [(1, A)]);
    }

    #[test]
    fn other_neighbours_ports_and_zero_macs_are_not_next_hops() {
        let t0 = Instant::now();
        let mut r = resolver(t0);
        let mut out = Vec::new();
        assert!(!r.event(t0, ev(1, B, Some(M1)), &mut out), "B is on port 2");
        assert!(!r.event(t0, ev(1, Ipv4Addr::new(192, 0, 2, 9), Some(M1)), &mut out));
        assert!(out.is_empty());
        r.event(t0, ev(1, A, Some(M1)), &mut out);
        out.clear();
        // A zero MAC from the kernel is no MAC: the neighbour is lost, never written as is.
        r.event(t0, ev(1, A, Some(MacAddr::ZERO)), &mut out);
        assert_eq!(macs(&out), [MacAddr::ZERO; 3]);
        assert_eq!(r.stats().losses, 1);
    }

    #[test]
    fn a_next_hop_named_twice_is_one() {
        let t0 = Instant::now();
        let r = Resolver::new(
            vec![
                ToResolve {
                    port: 1,
                    addr: A,
                    entries: vec![fec_entry(1)],
                },
                ToResolve {
                    port: 1,
                    addr: A,
                    entries: vec![fec_entry(2)],
                },
            ],
            t0,
        );
        assert_eq!(r.stats().wanted, 1);
        assert_eq!(r.ports(), [1]);
        assert!(Resolver::new(Vec::new(), t0).is_empty());
    }
}
