//! A reload: what changed between the running configuration and a new file, what of it
//! cannot change while the gateway runs (the reload is then refused as a whole), and the
//! table changes that carry the rest into the fast path.
//!
//! Live: the ISPs of `[tables]` (added, changed, removed) with their FECs, gateways and
//! hand-offs, `[[tables.ilm]]`, the subscribers of `[tables]` and `subscribers_csv`, each
//! ISP's `ldp` FECs, `[[dhcp.isps]]`, and `[radius]`'s realms, client SPs and their
//! capacity. Fixed: whatever sized or bound something at start (EAL, ports, workers, the
//! pipeline and its rings, table limits, the control socket, the store, the sockets and
//! timers of `[dhcp]`, `[ldp]` and `[radius]`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

use ispmux_dataplane::table::preload::{IlmPreload, IspPreload, SubscriberPreload};
use ispmux_dataplane::table::{Direction, IlmAction, IspId, SubscriberKey};
use ispmux_dataplane::wire::MacAddr;
use ispmux_dataplane::TableUpdate;
use serde::{Deserialize, Serialize};

use crate::load::Loaded;
use crate::model::Config;
use crate::next_hop::{NextHopEntry, ToResolve};

/// What a reload changes. Lists name what changed; counts are entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// ISP ids new in `[tables]`.
    pub isps_added: Vec<IspId>,
    /// ISP ids whose FECs, gateway, hand-offs, name or LDP FECs changed.
    pub isps_changed: Vec<IspId>,
    /// ISP ids gone from `[tables]`: their traffic is dropped (`no_fec`, `no_handoff`).
    pub isps_removed: Vec<IspId>,
    /// ISP FECs (push entries) written or removed.
    pub fecs: usize,
    /// Hand-off attachments written or removed.
    pub handoffs: usize,
    /// Incoming labels (`[[tables.ilm]]`) written or removed.
    pub labels: usize,
    /// ISPs whose LDP FECs (`ldp`) changed, by id.
    pub ldp_isps: Vec<IspId>,
    /// Subscriber rows (`[tables]` and `subscribers_csv`) new.
    pub subscribers_added: usize,
    /// Subscriber rows whose ISP or address changed.
    pub subscribers_changed: usize,
    /// Subscriber rows gone.
    pub subscribers_removed: usize,
    /// `[[dhcp.isps]]` new, by name.
    pub dhcp_isps_added: Vec<String>,
    /// `[[dhcp.isps]]` whose servers or link selection changed.
    pub dhcp_isps_changed: Vec<String>,
    /// `[[dhcp.isps]]` gone: their subscribers' bindings are released.
    pub dhcp_isps_removed: Vec<String>,
    /// Realms added or removed (master SP's and client SPs').
    pub radius_realms: Vec<String>,
    /// Client SPs new.
    pub csps_added: Vec<String>,
    /// Client SPs whose realms, servers, identification or capacity changed.
    pub csps_changed: Vec<String>,
    /// Client SPs gone.
    pub csps_removed: Vec<String>,
}

impl Changes {
    /// True when the reload changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }

    /// Whether `[radius]`'s live parts changed.
    pub fn radius(&self) -> bool {
        !(self.radius_realms.is_empty()
            && self.csps_added.is_empty()
            && self.csps_changed.is_empty()
            && self.csps_removed.is_empty())
    }

    /// Whether `[[dhcp.isps]]` changed.
    pub fn dhcp(&self) -> bool {
        !(self.dhcp_isps_added.is_empty()
            && self.dhcp_isps_changed.is_empty()
            && self.dhcp_isps_removed.is_empty())
    }
}

/// One step of carrying a reload into the tables, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableStep {
    /// Send this update as it is.
    Update(TableUpdate),
    /// Write `entry` toward the neighbour `addr` on `port`: it follows the neighbour's MAC
    /// from now on (written with the MAC known, or zero while it is resolved).
    Attach {
        /// Port index.
        port: u16,
        /// The neighbour's address.
        addr: Ipv4Addr,
        /// The entry.
        entry: NextHopEntry,
    },
    /// `entry` stops following its neighbour (it is removed or now has a static MAC).
    Detach(NextHopEntry),
}

/// What a reload does: what changed, and the table steps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reload {
    /// The summary.
    pub changes: Changes,
    /// The fast path's share, in order.
    pub steps: Vec<TableStep>,
}

/// The parts of `new` that differ from `old` and cannot change while the gateway runs, by
/// key; empty when the reload may go ahead.
pub fn fixed_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut fixed = |key: &str, same: bool| {
        if !same {
            out.push(key.to_owned());
        }
    };
    fixed("eal", old.eal == new.eal);
    fixed("port", old.ports == new.ports);
    fixed("worker", old.workers == new.workers);
    let (a, b) = (&old.dataplane, &new.dataplane);
    fixed("dataplane.pipeline", a.pipeline == b.pipeline);
    fixed("dataplane.burst", a.burst == b.burst);
    fixed("dataplane.mbufs", a.mbufs == b.mbufs);
    fixed("dataplane.idle_sleep", a.idle_sleep == b.idle_sleep);
    fixed("dataplane.idle_polls", a.idle_polls == b.idle_polls);
    fixed(
        "dataplane.idle_sleep_us",
        a.idle_sleep_us == b.idle_sleep_us,
    );
    fixed("dataplane.punt_ring", a.punt_ring == b.punt_ring);
    fixed(
        "dataplane.bench_updates_per_s",
        a.bench_updates_per_s == b.bench_updates_per_s,
    );
    fixed("control", old.control == new.control);
    fixed("api", old.api == new.api);
    fixed("tables.limits", old.tables.limits == new.tables.limits);
    fixed("store", old.store == new.store);
    fixed("icmp", old.icmp == new.icmp);
    fixed("ldp", old.ldp == new.ldp);
    match (&old.dhcp, &new.dhcp) {
        (Some(a), Some(b)) => {
            // The live part is `isps`: compare the rest.
            let strip = |d: &crate::dhcp::DhcpConfig| crate::dhcp::DhcpConfig {
                isps: Vec::new(),
                ..d.clone()
            };
            fixed("dhcp (other than dhcp.isps)", strip(a) == strip(b));
        }
        (a, b) => fixed("dhcp (added or removed)", a.is_none() == b.is_none()),
    }
    match (&old.radius, &new.radius) {
        (Some(a), Some(b)) => {
            fixed("radius.listen_auth", a.listen_auth == b.listen_auth);
            fixed("radius.listen_acct", a.listen_acct == b.listen_acct);
            fixed(
                "radius.source_address",
                a.source_address == b.source_address,
            );
            fixed("radius.timeouts", a.timeouts == b.timeouts);
            fixed("radius.nas", a.nas == b.nas);
            fixed(
                "radius.master.home_servers",
                a.master.home_servers == b.master.home_servers,
            );
            fixed("radius.master.name", a.master.name == b.master.name);
        }
        (a, b) => fixed("radius (added or removed)", a.is_none() == b.is_none()),
    }
    out
}

/// The reload from `old` to `new` (both loaded and valid): refused with the keys that
/// cannot change live, else what changes and the table steps that carry it.
pub fn plan(old: &Loaded, new: &Loaded) -> Result<Reload, Vec<String>> {
    let fixed = fixed_changes(&old.config, &new.config);
    if !fixed.is_empty() {
        return Err(fixed);
    }
    let mut r = Reload::default();
    let hops = (
        next_hops(&old.config.next_hops_to_resolve()),
        next_hops(&new.config.next_hops_to_resolve()),
    );
    isps(old, new, &hops, &mut r);
    ilm(&old.preload.ilm, &new.preload.ilm, &hops, &mut r);
    subscribers(&old.preload.subscribers, &new.preload.subscribers, &mut r);
    dhcp(&old.config, &new.config, &mut r.changes);
    radius(&old.config, &new.config, &mut r.changes);
    Ok(r)
}

/// Which table entry a next hop serves: an ISP's FEC in one direction, or a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum EntryKey {
    Fec(IspId, Direction),
    Ilm(u32),
}

fn key_of(e: &NextHopEntry) -> EntryKey {
    match e {
        NextHopEntry::Fec { isp, direction, .. } => EntryKey::Fec(*isp, *direction),
        NextHopEntry::Ilm { label, .. } => EntryKey::Ilm(*label),
    }
}

type Hops = HashMap<EntryKey, (u16, Ipv4Addr)>;

fn next_hops(list: &[ToResolve]) -> Hops {
    list.iter()
        .flat_map(|w| w.entries.iter().map(move |e| (key_of(e), (w.port, w.addr))))
        .collect()
}

/// Writes `entry` (as configured, next hop MAC zero when given by address) toward its next
/// hop: followed when by address, as it is otherwise.
fn write(entry: NextHopEntry, hop: Option<(u16, Ipv4Addr)>, mac: MacAddr, out: &mut Reload) {
    match hop {
        Some((port, addr)) => out.steps.push(TableStep::Attach { port, addr, entry }),
        None => {
            out.steps.push(TableStep::Detach(entry));
            out.steps.push(TableStep::Update(entry.update(mac)));
        }
    }
}

fn isps(old: &Loaded, new: &Loaded, hops: &(Hops, Hops), r: &mut Reload) {
    let by_id = |l: &[IspPreload]| -> BTreeMap<IspId, IspPreload> {
        l.iter().map(|i| (i.id, i.clone())).collect()
    };
    let (a, b) = (by_id(&old.preload.isps), by_id(&new.preload.isps));
    let ldp_of = |c: &Config| -> BTreeMap<IspId, Option<crate::ldp::IspLdp>> {
        c.tables
            .isps
            .iter()
            .map(|i| (i.id, i.ldp.clone()))
            .collect()
    };
    let (la, lb) = (ldp_of(&old.config), ldp_of(&new.config));
    // Hand-offs first: removed ones before added ones, so one may move between ISPs.
    let handoffs = |m: &BTreeMap<IspId, IspPreload>| -> BTreeMap<(u16, u16), IspId> {
        m.values()
            .flat_map(|i| i.handoff.iter().map(move |h| ((h.port, h.vlan), i.id)))
            .collect()
    };
    let (ha, hb) = (handoffs(&a), handoffs(&b));
    for (&(port, vid), _) in ha.iter().filter(|(k, _)| !hb.contains_key(*k)) {
        r.steps.push(TableStep::Update(TableUpdate::SetHandoff {
            port,
            vid,
            isp: None,
        }));
        r.changes.handoffs += 1;
    }
    for (&(port, vid), &isp) in hb.iter().filter(|(k, v)| ha.get(*k) != Some(*v)) {
        r.steps.push(TableStep::Update(TableUpdate::SetHandoff {
            port,
            vid,
            isp: Some(isp),
        }));
        r.changes.handoffs += 1;
    }
    for (id, old_isp) in &a {
        if b.contains_key(id) {
            continue;
        }
        r.changes.isps_removed.push(*id);
        for (direction, fec) in [
            (Direction::Upstream, old_isp.upstream),
            (Direction::Downstream, old_isp.downstream),
        ] {
            if fec.is_some() {
                remove_fec(*id, direction, r);
            }
        }
        if old_isp.gateway.is_some() {
            r.steps.push(TableStep::Update(TableUpdate::SetGateway {
                isp: *id,
                addr: Ipv4Addr::UNSPECIFIED,
            }));
        }
        if la.get(id).is_some_and(Option::is_some) {
            r.changes.ldp_isps.push(*id);
        }
    }
    for (id, n) in &b {
        let o = a.get(id);
        let mut changed = o.is_some_and(|o| o.name != n.name || o.handoff != n.handoff);
        for (direction, was, is) in [
            (Direction::Upstream, o.and_then(|o| o.upstream), n.upstream),
            (
                Direction::Downstream,
                o.and_then(|o| o.downstream),
                n.downstream,
            ),
        ] {
            let key = EntryKey::Fec(*id, direction);
            let (hop_was, hop_is) = (hops.0.get(&key).copied(), hops.1.get(&key).copied());
            if (was, hop_was) == (is, hop_is) {
                continue;
            }
            changed = true;
            match is {
                Some(f) => {
                    let entry = NextHopEntry::Fec {
                        isp: *id,
                        direction,
                        fec: f.into(),
                    };
                    write(entry, hop_is, f.next_hop, r);
                    r.changes.fecs += 1;
                }
                None => remove_fec(*id, direction, r),
            }
        }
        let gateway_was = o.and_then(|o| o.gateway);
        if gateway_was != n.gateway {
            changed = true;
            r.steps.push(TableStep::Update(TableUpdate::SetGateway {
                isp: *id,
                addr: n.gateway.unwrap_or(Ipv4Addr::UNSPECIFIED),
            }));
        }
        let ldp_changed = la.get(id).cloned().flatten() != lb.get(id).cloned().flatten();
        if ldp_changed {
            changed = true;
            r.changes.ldp_isps.push(*id);
        }
        match o {
            None => r.changes.isps_added.push(*id),
            Some(_) if changed => r.changes.isps_changed.push(*id),
            Some(_) => {}
        }
    }
}

fn remove_fec(isp: IspId, direction: Direction, r: &mut Reload) {
    let entry = NextHopEntry::Fec {
        isp,
        direction,
        fec: ispmux_dataplane::table::Fec {
            label: 0,
            tc: 0,
            port: 0,
            next_hop: MacAddr::ZERO,
        },
    };
    r.steps.push(TableStep::Detach(entry));
    r.steps.push(TableStep::Update(TableUpdate::SetFec {
        isp,
        direction,
        fec: None,
    }));
    r.changes.fecs += 1;
}

fn ilm(old: &[IlmPreload], new: &[IlmPreload], hops: &(Hops, Hops), r: &mut Reload) {
    let by_label = |l: &[IlmPreload]| -> BTreeMap<u32, IlmPreload> {
        l.iter().map(|e| (e.label, *e)).collect()
    };
    let (a, b) = (by_label(old), by_label(new));
    for label in a.keys().filter(|l| !b.contains_key(l)) {
        r.steps.push(TableStep::Detach(NextHopEntry::Ilm {
            label: *label,
            action: IlmAction::PopDeliver { isp: 0 },
        }));
        r.steps.push(TableStep::Update(TableUpdate::SetIlm {
            label: *label,
            action: None,
        }));
        r.changes.labels += 1;
    }
    for (label, e) in &b {
        let key = EntryKey::Ilm(*label);
        let (hop_was, hop_is) = (hops.0.get(&key).copied(), hops.1.get(&key).copied());
        if (a.get(label), hop_was) == (Some(e), hop_is) {
            continue;
        }
        let action = IlmAction::from(e.action);
        let entry = NextHopEntry::Ilm {
            label: *label,
            action,
        };
        let mac = match action {
            IlmAction::Swap { next_hop, .. } => next_hop,
            IlmAction::PopHandoff { router_mac, .. } => router_mac,
            IlmAction::PopDeliver { .. } => MacAddr::ZERO,
        };
        write(entry, hop_is, mac, r);
        r.changes.labels += 1;
    }
}

type SubKey = (u16, u16, u16, MacAddr);

fn subscribers(old: &[SubscriberPreload], new: &[SubscriberPreload], r: &mut Reload) {
    let by_key = |l: &[SubscriberPreload]| -> HashMap<SubKey, (IspId, Option<Ipv4Addr>)> {
        l.iter()
            .map(|s| ((s.port, s.vlan, s.inner_vlan, s.mac), (s.isp, s.ipv4)))
            .collect()
    };
    let (a, b) = (by_key(old), by_key(new));
    let key = |k: &SubKey| SubscriberKey {
        port: k.0,
        outer_vid: k.1,
        inner_vid: k.2,
        mac: k.3,
    };
    // Removals and unbinds first: an address may pass from one row to another.
    for k in old
        .iter()
        .map(|s| (s.port, s.vlan, s.inner_vlan, s.mac))
        .filter(|k| !b.contains_key(k))
    {
        r.steps
            .push(TableStep::Update(TableUpdate::RemoveSubscriber {
                key: key(&k),
            }));
        r.changes.subscribers_removed += 1;
    }
    let mut changed = BTreeSet::new();
    for s in new {
        let k = (s.port, s.vlan, s.inner_vlan, s.mac);
        match a.get(&k) {
            Some(&was) if was == (s.isp, s.ipv4) => {}
            Some(&(isp, addr)) => {
                if isp == s.isp && addr.is_some() {
                    r.steps
                        .push(TableStep::Update(TableUpdate::Unbind { key: key(&k) }));
                }
                changed.insert(k);
            }
            None => {}
        }
    }
    for s in new {
        let k = (s.port, s.vlan, s.inner_vlan, s.mac);
        let is_new = !a.contains_key(&k);
        if !is_new && !changed.contains(&k) {
            continue;
        }
        // Re-adding with another ISP unbinds first.
        r.steps.push(TableStep::Update(TableUpdate::AddSubscriber {
            key: key(&k),
            isp: s.isp,
        }));
        if let Some(addr) = s.ipv4 {
            r.steps
                .push(TableStep::Update(TableUpdate::Bind { key: key(&k), addr }));
        }
        if is_new {
            r.changes.subscribers_added += 1;
        } else {
            r.changes.subscribers_changed += 1;
        }
    }
}

fn dhcp(old: &Config, new: &Config, c: &mut Changes) {
    let isps = |cfg: &Config| -> BTreeMap<String, crate::dhcp::IspDhcpConfig> {
        cfg.dhcp
            .iter()
            .flat_map(|d| d.isps.iter().map(|i| (i.name.clone(), i.clone())))
            .collect()
    };
    let (a, b) = (isps(old), isps(new));
    c.dhcp_isps_removed = a.keys().filter(|n| !b.contains_key(*n)).cloned().collect();
    for (name, i) in &b {
        match a.get(name) {
            None => c.dhcp_isps_added.push(name.clone()),
            Some(was) if was != i => c.dhcp_isps_changed.push(name.clone()),
            Some(_) => {}
        }
    }
}

fn radius(old: &Config, new: &Config, c: &mut Changes) {
    let (Some(a), Some(b)) = (&old.radius, &new.radius) else {
        return;
    };
    let realms = |r: &crate::radius::RadiusConfig| -> BTreeSet<String> {
        r.master
            .realms
            .iter()
            .chain(r.client_sp.iter().flat_map(|c| c.realms.iter()))
            .cloned()
            .collect()
    };
    let (ra, rb) = (realms(a), realms(b));
    c.radius_realms = ra.symmetric_difference(&rb).cloned().collect();
    if a.master.realms != b.master.realms
        || a.master.unrealmed_is_master != b.master.unrealmed_is_master
    {
        c.radius_realms.sort();
        c.radius_realms.dedup();
        if c.radius_realms.is_empty() {
            c.radius_realms.push(format!("{} (master)", b.master.name));
        }
    }
    let csps = |r: &crate::radius::RadiusConfig| -> BTreeMap<String, crate::radius::ClientSp> {
        r.client_sp
            .iter()
            .map(|c| (c.name.clone(), c.clone()))
            .collect()
    };
    let (ca, cb) = (csps(a), csps(b));
    c.csps_removed = ca
        .keys()
        .filter(|n| !cb.contains_key(*n))
        .cloned()
        .collect();
    for (name, sp) in &cb {
        match ca.get(name) {
            None => c.csps_added.push(name.clone()),
            Some(was) if was != sp => c.csps_changed.push(name.clone()),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests;
