//! The label procedures of RFC 5036 Appendix A as this LSR runs them: downstream
//! unsolicited advertisement, liberal label retention, ordered control.
//!
//! Ordered control (§2.6.1.2): a label is advertised for a FEC only by its egress (a FEC
//! configured here) or once the next hop toward the FEC has advertised one, so a label
//! path exists end to end before traffic is put on it, and it is withdrawn upstream as soon
//! as the downstream label goes. Liberal retention (§2.6.2.2): every peer's label is kept,
//! so a route change to another neighbour switches at once without asking it.
//!
//! The table is sans-IO like the engine: peers' messages, routes and sessions going up and
//! down come in; messages to peers and per-FEC changes come out.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use super::label_space::LabelSpace;
use super::wire::{
    Body, FecElement, LabelMapping, LabelRequest, LabelWithdraw, Message, StatusCode,
};

/// An IPv4 prefix FEC, host bits clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fec {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Fec {
    /// The FEC of `addr/len`, host bits cleared; None if `len` > 32.
    pub fn new(addr: Ipv4Addr, len: u8) -> Option<Fec> {
        match FecElement::prefix(addr, len)? {
            FecElement::Prefix { addr, len } => Some(Fec { addr, len }),
            FecElement::Wildcard => None,
        }
    }

    fn element(self) -> FecElement {
        FecElement::Prefix {
            addr: self.addr,
            len: self.len,
        }
    }
}

impl std::fmt::Display for Fec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// What forwarding needs to know about one FEC, emitted whenever it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FecState {
    pub fec: Fec,
    /// The label this LSR advertised for the FEC (the incoming label of its traffic).
    pub local: Option<u32>,
    /// This LSR is the FEC's egress: traffic with the local label is popped here.
    pub egress: bool,
    /// The next hop toward the FEC and the label its LSR advertised (the outgoing label),
    /// when both are known.
    pub remote: Option<(Ipv4Addr, u32)>,
}

/// The peers as the label procedures see them.
#[derive(Debug, Default, Clone)]
pub struct Peers {
    /// LSR IDs of OPERATIONAL sessions.
    pub up: BTreeSet<Ipv4Addr>,
    /// Interface address → LSR ID, from the peers' Address messages.
    pub by_addr: BTreeMap<Ipv4Addr, Ipv4Addr>,
}

/// What the procedures ask for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LabelOut {
    /// Messages to peers (by LSR ID), in order.
    pub send: Vec<(Ipv4Addr, Body)>,
    /// FECs whose forwarding state changed.
    pub changed: Vec<FecState>,
}

#[derive(Debug, Default, Clone)]
struct Entry {
    egress: bool,
    /// The route's next hop toward the FEC.
    next_hop: Option<Ipv4Addr>,
    /// Liberal retention: every peer's label for the FEC.
    remote: BTreeMap<Ipv4Addr, u32>,
    local: Option<u32>,
    /// Peers the local label was advertised to.
    advertised: BTreeSet<Ipv4Addr>,
    /// Peers that released the local label unasked: not offered it again until it changes.
    declined: BTreeSet<Ipv4Addr>,
    /// What was last emitted.
    last: Option<FecState>,
}

/// A withdrawn local label waiting for the peers' Label Release before reuse.
#[derive(Debug, Clone)]
struct Pending {
    fec: Fec,
    waiting: BTreeSet<Ipv4Addr>,
}

/// A binding as `ctl ldp` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub fec: Fec,
    pub local: Option<u32>,
    pub egress: bool,
    pub next_hop: Option<Ipv4Addr>,
    /// Each peer's label, and whether it is the one in use (the next hop's).
    pub remote: Vec<(Ipv4Addr, u32, bool)>,
}

/// The FEC table of one LSR.
#[derive(Debug)]
pub struct Labels {
    space: LabelSpace,
    fecs: BTreeMap<Fec, Entry>,
    pending: BTreeMap<u32, Pending>,
    /// FECs that wanted a label when the space was exhausted, retried when one is freed.
    starved: BTreeSet<Fec>,
    /// A label went back to the space since the starved FECs were last retried.
    freed: bool,
}

impl Labels {
    pub fn new(space: LabelSpace) -> Labels {
        Labels {
            space,
            fecs: BTreeMap::new(),
            pending: BTreeMap::new(),
            starved: BTreeSet::new(),
            freed: false,
        }
    }

    /// Labels allocated and not yet reusable.
    pub fn labels_in_use(&self) -> usize {
        self.space.in_use()
    }

    /// Makes this LSR the egress of `fec` (or no longer).
    pub fn set_egress(&mut self, fec: Fec, egress: bool, peers: &Peers, out: &mut LabelOut) {
        self.fecs.entry(fec).or_default().egress = egress;
        self.reconcile(fec, peers, out);
        self.feed_starved(peers, out);
    }

    /// The route toward `fec` now goes via `next_hop` (None: no route).
    pub fn set_route(
        &mut self,
        fec: Fec,
        next_hop: Option<Ipv4Addr>,
        peers: &Peers,
        out: &mut LabelOut,
    ) {
        self.fecs.entry(fec).or_default().next_hop = next_hop;
        self.reconcile(fec, peers, out);
        self.feed_starved(peers, out);
    }

    /// Sessions or addresses changed: every FEC is looked at again. A peer no longer up
    /// loses its labels and owes no releases.
    pub fn peers_changed(&mut self, peers: &Peers, out: &mut LabelOut) {
        for e in self.fecs.values_mut() {
            e.remote.retain(|p, _| peers.up.contains(p));
            e.advertised.retain(|p| peers.up.contains(p));
            e.declined.retain(|p| peers.up.contains(p));
        }
        let done: Vec<u32> = self
            .pending
            .iter_mut()
            .filter_map(|(l, p)| {
                p.waiting.retain(|x| peers.up.contains(x));
                p.waiting.is_empty().then_some(*l)
            })
            .collect();
        for l in done {
            self.pending.remove(&l);
            self.free(l);
        }
        let all: Vec<Fec> = self.fecs.keys().copied().collect();
        for fec in all {
            self.reconcile(fec, peers, out);
        }
        self.feed_starved(peers, out);
    }

    /// A label message from the OPERATIONAL peer `peer` (Appendix A.1).
    pub fn receive(&mut self, peer: Ipv4Addr, m: &Message, peers: &Peers, out: &mut LabelOut) {
        match &m.body {
            Body::LabelMapping(map) => {
                for fec in prefixes(&map.fec) {
                    let old = self
                        .fecs
                        .entry(fec)
                        .or_default()
                        .remote
                        .insert(peer, map.label);
                    // A new label for the same FEC replaces the old one, which goes back
                    // to its owner (A.1.3, LMp.10a).
                    if let Some(old) = old.filter(|o| *o != map.label) {
                        out.send.push((
                            peer,
                            Body::LabelRelease(LabelWithdraw {
                                fec: vec![fec.element()],
                                label: Some(old),
                            }),
                        ));
                    }
                    self.reconcile(fec, peers, out);
                }
            }
            Body::LabelWithdraw(w) => {
                // Every withdrawn label is released back (A.1.5), whether or not it was
                // in use; the FECs that used it lose their path downstream.
                let fecs = self.matching(&w.fec, |e| e.remote.contains_key(&peer));
                for fec in fecs {
                    if let Some(e) = self.fecs.get_mut(&fec) {
                        let held = e.remote.get(&peer).copied();
                        if w.label.is_none() || w.label == held {
                            e.remote.remove(&peer);
                        }
                    }
                    self.reconcile(fec, peers, out);
                }
                out.send.push((
                    peer,
                    Body::LabelRelease(LabelWithdraw {
                        fec: w.fec.clone(),
                        label: w.label,
                    }),
                ));
            }
            Body::LabelRelease(r) => {
                let fecs = self.matching(&r.fec, |_| true);
                for fec in fecs {
                    self.released(fec, peer, r.label, peers, out);
                }
            }
            Body::LabelRequest(LabelRequest { fec, .. }) => {
                // Downstream unsolicited peers may still ask (A.1.1): answer with the
                // label already advertised, or say there is no route yet.
                for f in prefixes(fec) {
                    match self.fecs.get_mut(&f).and_then(|e| e.local.map(|l| (e, l))) {
                        Some((e, label)) => {
                            e.advertised.insert(peer);
                            e.declined.remove(&peer);
                            out.send.push((peer, mapping(f, label, Some(m.id))));
                        }
                        None => out.send.push((
                            peer,
                            super::session::notification(
                                StatusCode::NoRoute.status(m.id, m.body.msg_type()),
                            ),
                        )),
                    }
                }
            }
            // Requests are answered at once, so there is never one left to abort (A.1.6).
            _ => {}
        }
        self.feed_starved(peers, out);
    }

    /// The FECs a received FEC TLV names (a wildcard: those `pick` keeps).
    fn matching(&self, elements: &[FecElement], pick: impl Fn(&Entry) -> bool) -> Vec<Fec> {
        if elements.contains(&FecElement::Wildcard) {
            self.fecs
                .iter()
                .filter(|(_, e)| pick(e))
                .map(|(f, _)| *f)
                .collect()
        } else {
            prefixes(elements).collect()
        }
    }

    fn released(
        &mut self,
        fec: Fec,
        peer: Ipv4Addr,
        label: Option<u32>,
        peers: &Peers,
        out: &mut LabelOut,
    ) {
        // A release of a label we withdrew: one fewer peer to wait for.
        let pend: Vec<u32> = self
            .pending
            .iter()
            .filter(|(l, p)| p.fec == fec && label.is_none_or(|x| x == **l))
            .map(|(l, _)| *l)
            .collect();
        for l in pend {
            if let Some(p) = self.pending.get_mut(&l) {
                p.waiting.remove(&peer);
                if p.waiting.is_empty() {
                    self.pending.remove(&l);
                    self.free(l);
                }
            }
        }
        // A release of the label in force (the peer does not want it): stop offering it.
        if let Some(e) = self.fecs.get_mut(&fec) {
            if e.local.is_some()
                && (label.is_none() || label == e.local)
                && e.advertised.remove(&peer)
            {
                e.declined.insert(peer);
            }
        }
        self.reconcile(fec, peers, out);
    }

    fn free(&mut self, label: u32) {
        self.space.release(label);
        self.freed = true;
    }

    /// Gives freed labels to FECs that went without one.
    fn feed_starved(&mut self, peers: &Peers, out: &mut LabelOut) {
        if std::mem::take(&mut self.freed) && !self.starved.is_empty() {
            for fec in std::mem::take(&mut self.starved) {
                self.reconcile(fec, peers, out);
            }
        }
    }

    /// Brings one FEC's local label and advertisements in line with ordered control, and
    /// emits its state if it changed.
    fn reconcile(&mut self, fec: Fec, peers: &Peers, out: &mut LabelOut) {
        let Some(e) = self.fecs.get_mut(&fec) else {
            return;
        };
        let downstream = e
            .next_hop
            .and_then(|nh| peers.by_addr.get(&nh).map(|p| (nh, *p)))
            .filter(|(_, p)| peers.up.contains(p))
            .and_then(|(nh, p)| e.remote.get(&p).map(|l| (nh, *l)));
        let want = e.egress || downstream.is_some();
        match (want, e.local) {
            (true, None) => match self.space.allocate() {
                Some(l) => {
                    e.local = Some(l);
                    e.declined.clear();
                }
                None => {
                    self.starved.insert(fec);
                }
            },
            (false, Some(l)) => {
                // Withdraw upstream; the label is reused once every peer released it.
                for p in &e.advertised {
                    out.send.push((
                        *p,
                        Body::LabelWithdraw(LabelWithdraw {
                            fec: vec![fec.element()],
                            label: Some(l),
                        }),
                    ));
                }
                let waiting = std::mem::take(&mut e.advertised);
                if waiting.is_empty() {
                    self.space.release(l);
                    self.freed = true;
                } else {
                    self.pending.insert(l, Pending { fec, waiting });
                }
                e.local = None;
                e.declined.clear();
            }
            _ => {}
        }
        if let Some(l) = e.local {
            // Downstream unsolicited: every peer gets the mapping, once.
            for p in &peers.up {
                if !e.advertised.contains(p) && !e.declined.contains(p) {
                    e.advertised.insert(*p);
                    out.send.push((*p, mapping(fec, l, None)));
                }
            }
        }
        let state = FecState {
            fec,
            local: e.local,
            egress: e.egress,
            remote: downstream,
        };
        if e.last != Some(state) {
            // A FEC first seen with nothing to forward is not news.
            let news = e.last.is_some() || state.local.is_some() || state.remote.is_some();
            e.last = Some(state);
            if news {
                out.changed.push(state);
            }
        }
        if !e.egress && e.next_hop.is_none() && e.remote.is_empty() && e.local.is_none() {
            self.fecs.remove(&fec);
        }
    }

    /// The bindings, for `ctl ldp`.
    pub fn bindings(&self, peers: &Peers) -> Vec<Binding> {
        self.fecs
            .iter()
            .map(|(fec, e)| {
                let nh_peer = e.next_hop.and_then(|nh| peers.by_addr.get(&nh).copied());
                Binding {
                    fec: *fec,
                    local: e.local,
                    egress: e.egress,
                    next_hop: e.next_hop,
                    remote: e
                        .remote
                        .iter()
                        .map(|(p, l)| (*p, *l, Some(*p) == nh_peer))
                        .collect(),
                }
            })
            .collect()
    }
}

fn prefixes(elements: &[FecElement]) -> impl Iterator<Item = Fec> + '_ {
    elements.iter().filter_map(|e| match *e {
        FecElement::Prefix { addr, len } => Some(Fec { addr, len }),
        FecElement::Wildcard => None,
    })
}

fn mapping(fec: Fec, label: u32, request_id: Option<u32>) -> Body {
    Body::LabelMapping(LabelMapping {
        fec: vec![fec.element()],
        label,
        request_id,
        hop_count: None,
        path_vector: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fec_starved_of_labels_gets_one_when_a_label_is_freed() {
        let mut l = Labels::new(LabelSpace::new(16, 16));
        let peers = Peers::default();
        let mut out = LabelOut::default();
        let a = Fec::new(Ipv4Addr::new(198, 18, 1, 0), 24).expect("fec");
        let b = Fec::new(Ipv4Addr::new(198, 18, 2, 0), 24).expect("fec");
        l.set_egress(a, true, &peers, &mut out);
        l.set_egress(b, true, &peers, &mut out);
        assert_eq!(
            out.changed
                .iter()
                .map(|s| (s.fec, s.local))
                .collect::<Vec<_>>(),
            vec![(a, Some(16))]
        );
        out.changed.clear();
        // No peer holds a's label: it is free at once, and b takes it.
        l.set_egress(a, false, &peers, &mut out);
        assert_eq!(
            out.changed
                .iter()
                .map(|s| (s.fec, s.local))
                .collect::<Vec<_>>(),
            vec![(a, None), (b, Some(16))]
        );
    }

    #[test]
    fn a_changed_mapping_releases_the_old_label() {
        let mut l = Labels::new(LabelSpace::new(16, 99));
        let p = Ipv4Addr::new(10, 0, 0, 9);
        let peers = Peers {
            up: [p].into(),
            by_addr: [(p, p)].into(),
        };
        let fec = Fec::new(Ipv4Addr::new(198, 18, 1, 0), 24).expect("fec");
        let map = |label| {
            Message::new(
                1,
                Body::LabelMapping(LabelMapping {
                    fec: vec![fec.element()],
                    label,
                    request_id: None,
                    hop_count: None,
                    path_vector: None,
                }),
            )
        };
        let mut out = LabelOut::default();
        l.set_route(fec, Some(p), &peers, &mut out);
        l.receive(p, &map(30), &peers, &mut out);
        l.receive(p, &map(30), &peers, &mut out);
        assert!(!out
            .send
            .iter()
            .any(|(_, b)| matches!(b, Body::LabelRelease(_))));
        out = LabelOut::default();
        l.receive(p, &map(31), &peers, &mut out);
        let release = Body::LabelRelease(LabelWithdraw {
            fec: vec![fec.element()],
            label: Some(30),
        });
        assert_eq!(out.send, vec![(p, release)]);
        assert_eq!(out.changed.last().and_then(|s| s.remote), Some((p, 31)));
    }
}
