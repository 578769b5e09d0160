//! `[tables]`: what the fast-path tables start with, ports by `[[port]]` name; and the plan
//! that turns it into the dataplane's [`PreloadTables`] (ports by index), checking every
//! entry at its own key on the way.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ispmux_dataplane::table::preload::{
    FecPreload, HandoffPreload, IlmActionPreload, IlmPreload, IspPreload, SubscriberPreload,
};
use ispmux_dataplane::table::{Direction, IlmAction, IspId, Limits, MAX_ISPS};
use ispmux_dataplane::wire::mpls::{LABEL_MAX, LABEL_RESERVED_MAX};
use ispmux_dataplane::wire::MacAddr;
use ispmux_dataplane::{PortRole, PreloadTables};
use serde::Deserialize;

use crate::de::PortName;
use crate::model::{Config, PipelineKind};
use crate::next_hop::{NextHop, NextHopEntry, ToResolve, Wanted};
use crate::validate::Issue;

/// `[tables]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TablesConfig {
    /// Table sizes.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// ISPs with their FECs, gateway and hand-off attachment.
    #[serde(default)]
    pub isps: Vec<IspConfig>,
    /// Incoming label map.
    #[serde(default)]
    pub ilm: Vec<IlmConfig>,
    /// Subscribers, optionally already bound.
    #[serde(default)]
    pub subscribers: Vec<SubscriberConfig>,
}

/// `[tables.limits]`: table sizes, fixed at start-up; see [`Limits`].
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Subscribers (and downstream bindings).
    pub max_subscribers: usize,
    /// ISP ids are `0..max_isps`, at most 4096.
    pub max_isps: usize,
    /// ILM entries.
    pub max_labels: usize,
    /// Hand-off (port, VLAN) attachments.
    pub max_handoffs: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Limits::default().into()
    }
}

impl From<Limits> for LimitsConfig {
    fn from(l: Limits) -> Self {
        LimitsConfig {
            max_subscribers: l.max_subscribers,
            max_isps: l.max_isps,
            max_labels: l.max_labels,
            max_handoffs: l.max_handoffs,
        }
    }
}

impl From<LimitsConfig> for Limits {
    fn from(l: LimitsConfig) -> Self {
        Limits {
            max_subscribers: l.max_subscribers,
            max_isps: l.max_isps,
            max_labels: l.max_labels,
            max_handoffs: l.max_handoffs,
        }
    }
}

/// `[[tables.isps]]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IspConfig {
    /// ISP id (index in tables and counters).
    pub id: IspId,
    /// Human name, for counters output and `[[dhcp.isps]]`.
    #[serde(default)]
    pub name: String,
    /// Gateway address its subscribers use.
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// FEC pushed at the headend.
    #[serde(default)]
    pub upstream: Option<FecConfig>,
    /// FEC pushed at the tailend for traffic from the ISP.
    #[serde(default)]
    pub downstream: Option<FecConfig>,
    /// Where the ISP attaches at the tailend.
    #[serde(default)]
    pub handoff: Vec<HandoffConfig>,
    /// The ISP's FECs for LDP (`[ldp]`).
    #[serde(default)]
    pub ldp: Option<crate::ldp::IspLdp>,
}

/// A label to push and where it leads.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FecConfig {
    /// Label to push.
    pub label: u32,
    /// Traffic class.
    #[serde(default)]
    pub tc: u8,
    /// Core port, by name.
    pub port: PortName,
    /// Next hop: the neighbour's IPv4 address (resolved by ARP) or its MAC (static).
    pub next_hop: NextHop,
}

/// A hand-off port and VLAN.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HandoffConfig {
    /// Hand-off port, by name.
    pub port: PortName,
    /// VLAN ID, 0 or absent = untagged.
    #[serde(default)]
    pub vlan: u16,
}

/// `[[tables.ilm]]`: one incoming label.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IlmConfig {
    /// Incoming label.
    pub label: u32,
    /// What to do.
    pub action: IlmActionConfig,
}

/// The action of an incoming label.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum IlmActionConfig {
    /// Transit swap.
    Swap {
        /// Outgoing label.
        out_label: u32,
        /// Core port, by name.
        port: PortName,
        /// Next hop: an IPv4 address (resolved by ARP) or a MAC (static).
        next_hop: NextHop,
    },
    /// Tailend pop and hand-off.
    PopHandoff {
        /// ISP (accounting).
        isp: IspId,
        /// Hand-off port, by name.
        port: PortName,
        /// VLAN (0 = untagged).
        #[serde(default)]
        vlan: u16,
        /// The ISP's router: an IPv4 address (resolved by ARP) or a MAC (static).
        #[serde(default)]
        router: Option<NextHop>,
        /// The ISP's router MAC: the older spelling of `router`, a MAC only.
        #[serde(default, deserialize_with = "crate::next_hop::opt_static_mac")]
        router_mac: Option<NextHop>,
    },
    /// Headend pop and deliver.
    PopDeliver {
        /// ISP.
        isp: IspId,
    },
}

/// `[[tables.subscribers]]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SubscriberConfig {
    /// Access port, by name.
    pub port: PortName,
    /// Outer (or only) VLAN, 0 = untagged.
    #[serde(default)]
    pub vlan: u16,
    /// Inner VLAN of QinQ, 0 = none.
    #[serde(default)]
    pub inner_vlan: u16,
    /// MAC address.
    #[serde(deserialize_with = "crate::de::mac")]
    pub mac: MacAddr,
    /// ISP id.
    pub isp: IspId,
    /// A static binding, if any.
    #[serde(default)]
    pub ipv4: Option<Ipv4Addr>,
}

impl Config {
    /// `[tables]` as the dataplane's preload, ports by index into `ports`. Of a valid
    /// configuration; entries a check refuses are left out.
    pub fn preload_tables(&self) -> PreloadTables {
        plan(self).preload
    }

    /// The next hops of `[tables]` given by address, with the entries waiting for each
    /// (they start with MAC 00:00:00:00:00:00 in [`Config::preload_tables`]). Of a valid
    /// configuration.
    pub fn next_hops_to_resolve(&self) -> Vec<ToResolve> {
        plan(self).resolve
    }
}

/// What [`plan`] makes of `[tables]`.
pub(crate) struct Planned {
    /// The preload, next hops given by address at MAC zero.
    pub(crate) preload: PreloadTables,
    /// Next hops to resolve and the entries that use them.
    pub(crate) resolve: Vec<ToResolve>,
    /// Every problem found.
    pub(crate) issues: Vec<Issue>,
}

/// The preload and every problem of `[tables]`, at the entry's own key: ports that exist
/// and have the role the entry needs, ids and labels in range, no id, label, hand-off or
/// subscriber given twice (a later entry would replace an earlier one without a word), room
/// for every entry.
pub(crate) fn plan(cfg: &Config) -> Planned {
    let mut p = Plan {
        cfg,
        out: Vec::new(),
    };
    let t = &cfg.tables;
    let mut preload = PreloadTables {
        limits: t.limits.into(),
        ..PreloadTables::default()
    };
    let mut ids = HashMap::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut pushed: [HashMap<u32, usize>; 2] = Default::default();
    let mut handoffs = HashMap::new();
    let mut wanted = Wanted::default();
    for (i, e) in t.isps.iter().enumerate() {
        let key = format!("tables.isps[{i}]");
        p.isp(format!("{key}.id"), e.id);
        if let Some(j) = ids.insert(e.id, i) {
            p.issue(
                format!("{key}.id"),
                format!("ISP id {} is already used by tables.isps[{j}]", e.id),
            );
        }
        // `[[dhcp.isps]]`, the store and the API find an ISP by its name.
        if !e.name.is_empty() {
            if let Some(j) = names.insert(e.name.as_str(), i) {
                p.issue(
                    format!("{key}.name"),
                    format!("ISP name {:?} is already used by tables.isps[{j}]", e.name),
                );
            }
        }
        let mut fecs = [None, None];
        for (d, (dir, fec)) in [("upstream", &e.upstream), ("downstream", &e.downstream)]
            .into_iter()
            .enumerate()
        {
            let Some(f) = fec else { continue };
            let at = format!("{key}.{dir}");
            p.label(format!("{at}.label"), f.label);
            // The far end tells ISPs apart by this label alone.
            if let Some(j) = pushed[d].insert(f.label, i) {
                p.issue(
                    format!("{at}.label"),
                    format!(
                        "label {} is already pushed {dir} by tables.isps[{j}]",
                        f.label
                    ),
                );
            }
            fecs[d] = p
                .port(format!("{at}.port"), &f.port, PortRole::Core)
                .map(|port| FecPreload {
                    label: f.label,
                    tc: f.tc,
                    port,
                    next_hop: f.next_hop.initial_mac(),
                });
            if let Some(fec) = fecs[d] {
                let direction = [Direction::Upstream, Direction::Downstream][d];
                let fec: ispmux_dataplane::table::Fec = fec.into();
                wanted.add(
                    fec.port,
                    f.next_hop,
                    NextHopEntry::Fec {
                        isp: e.id,
                        direction,
                        fec,
                    },
                );
            }
        }
        let mut handoff = Vec::new();
        for (j, h) in e.handoff.iter().enumerate() {
            let at = format!("{key}.handoff[{j}]");
            p.vlan(format!("{at}.vlan"), h.vlan);
            let Some(port) = p.port(format!("{at}.port"), &h.port, PortRole::Handoff) else {
                continue;
            };
            if let Some((k, l)) = handoffs.insert((port, h.vlan), (i, j)) {
                p.issue(
                    at,
                    format!(
                        "port {} VLAN {} is already the hand-off of tables.isps[{k}].handoff[{l}]",
                        h.port, h.vlan
                    ),
                );
            }
            handoff.push(HandoffPreload { port, vlan: h.vlan });
        }
        let [upstream, downstream] = fecs;
        preload.isps.push(IspPreload {
            id: e.id,
            name: e.name.clone(),
            gateway: e.gateway,
            upstream,
            downstream,
            handoff,
        });
    }
    let mut labels = HashMap::new();
    for (i, e) in t.ilm.iter().enumerate() {
        let key = format!("tables.ilm[{i}]");
        p.label(format!("{key}.label"), e.label);
        if let Some(j) = labels.insert(e.label, i) {
            p.issue(
                format!("{key}.label"),
                format!("label {} is already in tables.ilm[{j}]", e.label),
            );
        }
        let action = match &e.action {
            IlmActionConfig::Swap {
                out_label,
                port,
                next_hop,
            } => {
                p.label(format!("{key}.action.out_label"), *out_label);
                p.port(format!("{key}.action.port"), port, PortRole::Core)
                    .map(|port| {
                        (
                            Some((port, *next_hop)),
                            IlmActionPreload::Swap {
                                out_label: *out_label,
                                port,
                                next_hop: next_hop.initial_mac(),
                            },
                        )
                    })
            }
            IlmActionConfig::PopHandoff {
                isp,
                port,
                vlan,
                router,
                router_mac,
            } => {
                p.isp(format!("{key}.action.isp"), *isp);
                p.vlan(format!("{key}.action.vlan"), *vlan);
                let router = p.router(&key, *router, *router_mac);
                p.port(format!("{key}.action.port"), port, PortRole::Handoff)
                    .zip(router)
                    .map(|(port, router)| {
                        (
                            Some((port, router)),
                            IlmActionPreload::PopHandoff {
                                isp: *isp,
                                port,
                                vlan: *vlan,
                                router_mac: router.initial_mac(),
                            },
                        )
                    })
            }
            IlmActionConfig::PopDeliver { isp } => {
                p.isp(format!("{key}.action.isp"), *isp);
                Some((None, IlmActionPreload::PopDeliver { isp: *isp }))
            }
        };
        if let Some((via, action)) = action {
            preload.ilm.push(IlmPreload {
                label: e.label,
                action,
            });
            if let Some((port, hop)) = via {
                wanted.add(
                    port,
                    hop,
                    NextHopEntry::Ilm {
                        label: e.label,
                        action: IlmAction::from(action),
                    },
                );
            }
        }
    }
    let mut subs = SubscriberCheck::new(cfg);
    for (i, s) in t.subscribers.iter().enumerate() {
        let key = format!("tables.subscribers[{i}]");
        let Some(port) = p.port(format!("{key}.port"), &s.port, PortRole::Access) else {
            continue;
        };
        let entry = SubscriberPreload {
            port,
            vlan: s.vlan,
            inner_vlan: s.inner_vlan,
            mac: s.mac,
            isp: s.isp,
            ipv4: s.ipv4,
        };
        let found = subs.check(&entry, Place::Table(i));
        if found.is_empty() {
            preload.subscribers.push(entry);
        }
        for (field, msg) in found {
            let at = if field.is_empty() {
                key.clone()
            } else {
                format!("{key}.{field}")
            };
            p.issue(at, msg);
        }
    }
    for (key, n, max) in [
        ("tables.limits.max_labels", t.ilm.len(), t.limits.max_labels),
        (
            "tables.limits.max_handoffs",
            handoffs.len(),
            t.limits.max_handoffs,
        ),
    ] {
        if n > max {
            p.issue(key.to_owned(), format!("{n} entries do not fit in {max}"));
        }
    }
    Planned {
        preload,
        resolve: wanted.into_list(),
        issues: p.out,
    }
}

/// The checks shared by the entries of `[tables]`.
struct Plan<'a> {
    cfg: &'a Config,
    out: Vec<Issue>,
}

impl Plan<'_> {
    fn issue(&mut self, key: String, msg: String) {
        self.out.push((key, msg));
    }

    /// The index of the port named `name`, if there is one of the role `want` (any role when
    /// the pipeline has none).
    fn port(&mut self, key: String, name: &PortName, want: PortRole) -> Option<u16> {
        let cfg = self.cfg;
        let Some(i) = cfg.ports.iter().position(|p| p.name == name.0) else {
            self.issue(key, format!("no port named {name}"));
            return None;
        };
        let role = cfg.ports[i].role;
        if cfg.dataplane.pipeline == PipelineKind::Node && role.is_some_and(|r| r != want) {
            self.issue(
                key,
                format!("port {name} is not a {} port", role_name(want)),
            );
            return None;
        }
        u16::try_from(i).ok()
    }

    /// The router of a hand-off at `key`: `router` or its older spelling `router_mac`,
    /// exactly one of them.
    fn router(
        &mut self,
        key: &str,
        router: Option<NextHop>,
        router_mac: Option<NextHop>,
    ) -> Option<NextHop> {
        match (router, router_mac) {
            (Some(r), None) | (None, Some(r)) => Some(r),
            (Some(_), Some(_)) => {
                self.issue(
                    format!("{key}.action.router_mac"),
                    "give router or router_mac, not both (router_mac is its older spelling)"
                        .to_owned(),
                );
                None
            }
            (None, None) => {
                self.issue(
                    format!("{key}.action"),
                    "a pop_handoff needs router: the ISP router's IPv4 address or MAC".to_owned(),
                );
                None
            }
        }
    }

    fn isp(&mut self, key: String, id: IspId) {
        let max = max_isps(self.cfg);
        if usize::from(id) >= max {
            self.issue(
                key,
                format!("ISP id {id} is not below tables.limits.max_isps ({max})"),
            );
        }
    }

    fn label(&mut self, key: String, l: u32) {
        if l <= LABEL_RESERVED_MAX || l > LABEL_MAX {
            self.issue(
                key,
                format!(
                    "label {l} is out of range {}..={LABEL_MAX}",
                    LABEL_RESERVED_MAX + 1
                ),
            );
        }
    }

    fn vlan(&mut self, key: String, v: u16) {
        if v > 4095 {
            self.issue(key, format!("VLAN ID {v} is out of range 0..=4095"));
        }
    }
}

fn max_isps(cfg: &Config) -> usize {
    cfg.tables.limits.max_isps.min(MAX_ISPS)
}

fn role_name(r: PortRole) -> &'static str {
    match r {
        PortRole::Access => "access",
        PortRole::Core => "core",
        PortRole::Handoff => "handoff",
        PortRole::Unused => "unused",
    }
}

/// The checks of one subscriber entry, from `[tables]` or `subscribers_csv`, against the
/// configuration and the entries before it: an access port, ids and VLANs in range, no
/// second entry for a subscriber key (port, VLANs, MAC) or a second holder of an address
/// within an ISP (the tables would replace the first silently), room in the table.
pub(crate) struct SubscriberCheck<'a> {
    cfg: &'a Config,
    keys: HashMap<(u16, u16, u16, MacAddr), Place>,
    addrs: HashMap<(IspId, Ipv4Addr), Place>,
}

/// Where a subscriber entry is, for the message about a later one that repeats it (small:
/// a CSV may hold millions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// `[[tables.subscribers]]` entry, from 0.
    Table(usize),
    /// Line of the subscribers CSV, from 1.
    Line(usize),
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Table(i) => write!(f, "tables.subscribers[{i}]"),
            Place::Line(n) => write!(f, "line {n}"),
        }
    }
}

impl<'a> SubscriberCheck<'a> {
    pub(crate) fn new(cfg: &'a Config) -> Self {
        SubscriberCheck {
            cfg,
            keys: HashMap::new(),
            addrs: HashMap::new(),
        }
    }

    /// Problems of `s`, found at `place`, as (field at fault, or "" for the entry; message);
    /// records `s` when there are none.
    pub(crate) fn check(
        &mut self,
        s: &SubscriberPreload,
        place: Place,
    ) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let cfg = self.cfg;
        let node = cfg.dataplane.pipeline == PipelineKind::Node;
        match cfg.ports.get(usize::from(s.port)) {
            None => out.push(("port", format!("port {} does not exist", s.port))),
            Some(c) if node && c.role.is_some_and(|r| r != PortRole::Access) => {
                out.push(("port", format!("port {:?} is not an access port", c.name)))
            }
            _ => {}
        }
        let max = max_isps(cfg);
        if usize::from(s.isp) >= max {
            out.push((
                "isp",
                format!(
                    "ISP id {} is not below tables.limits.max_isps ({max})",
                    s.isp
                ),
            ));
        }
        for (field, v) in [("vlan", s.vlan), ("inner_vlan", s.inner_vlan)] {
            if v > 4095 {
                out.push((field, format!("VLAN ID {v} is out of range 0..=4095")));
            }
        }
        let key = (s.port, s.vlan, s.inner_vlan, s.mac);
        if let Some(first) = self.keys.get(&key) {
            let name = cfg
                .ports
                .get(usize::from(s.port))
                .map_or("?", |p| p.name.as_str());
            out.push((
                "mac",
                format!(
                    "MAC {} on port {name:?} VLAN {}/{} is already {first}",
                    s.mac, s.vlan, s.inner_vlan
                ),
            ));
        }
        if let Some(a) = s.ipv4 {
            if let Some(first) = self.addrs.get(&(s.isp, a)) {
                out.push((
                    "ipv4",
                    format!("address {a} of ISP {} is already bound to {first}", s.isp),
                ));
            }
        }
        let max = cfg.tables.limits.max_subscribers;
        if self.keys.len() >= max {
            out.push((
                "",
                format!("no room: tables.limits.max_subscribers is {max}"),
            ));
        }
        if out.is_empty() {
            self.keys.insert(key, place);
            if let Some(a) = s.ipv4 {
                self.addrs.insert((s.isp, a), place);
            }
        }
        out
    }
}
