//! Checks that need more than types: references between tables, ranges, the lcore plan.

use std::collections::{HashMap, HashSet};

use crate::model::{Config, Port, Purpose};

/// A problem before it is placed in the file: the key path and the message.
pub type Issue = (String, String);

/// EAL's lcore limit (`RTE_MAX_LCORE` in Debian's build).
pub const MAX_LCORE: u32 = 128;
/// Largest burst the workers handle (`ispmux_sys::MAX_BURST`).
pub const MAX_BURST: u16 = 256;

const LOG_LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
];

/// Every problem of `cfg` for `purpose`, in no particular order.
pub fn validate_for(cfg: &Config, purpose: Purpose) -> Vec<Issue> {
    let mut out = Vec::new();
    if purpose == Purpose::Gateway {
        eal(cfg, &mut out);
        ports(cfg, &mut out);
        dataplane(cfg, &mut out);
        workers(cfg, &mut out);
        tables(cfg, &mut out);
        dhcp(cfg, &mut out);
    }
    store(cfg, &mut out);
    match &cfg.radius {
        // Its key paths (`radius.client_sp[1].realms`) are the main file's, so they resolve
        // to a line and column like every other problem.
        Some(r) => out.extend(r.validate()),
        None if purpose == Purpose::RadiusProxy => issue(
            &mut out,
            "radius",
            "no [radius] table: the RADIUS proxy has nothing to run",
        ),
        None => {}
    }
    out
}

fn store(cfg: &Config, out: &mut Vec<Issue>) {
    if cfg.store.path.trim().is_empty() {
        issue(out, "store.path", "must name the database file");
    }
}

fn dhcp(cfg: &Config, out: &mut Vec<Issue>) {
    let Some(d) = &cfg.dhcp else { return };
    out.extend(d.validate());
    if cfg.dataplane.pipeline != crate::PipelineKind::Node {
        issue(
            out,
            "dhcp",
            "the logon proxy needs pipeline = \"node\" (it installs bindings in the fast path)",
        );
    }
    // Bindings are installed under the ISP's id in the tables: the names must meet.
    for (i, isp) in d.isps.iter().enumerate() {
        if !cfg.tables.isps.iter().any(|t| t.name == isp.name) {
            issue(
                out,
                format!("dhcp.isps[{i}].name"),
                format!(
                    "ISP {:?} has no [[tables.isps]] entry (its id and labels)",
                    isp.name
                ),
            );
        }
    }
    if !cfg
        .ports
        .iter()
        .any(|p| p.role == Some(ispmux_dataplane::PortRole::Access))
    {
        issue(out, "dhcp", "the logon proxy needs an access port");
    }
}

fn issue(out: &mut Vec<Issue>, key: impl Into<String>, msg: impl Into<String>) {
    out.push((key.into(), msg.into()));
}

fn eal(cfg: &Config, out: &mut Vec<Issue>) {
    let e = &cfg.eal;
    let mut seen = HashSet::new();
    for (i, &l) in e.lcores.iter().enumerate() {
        if l >= MAX_LCORE {
            issue(
                out,
                format!("eal.lcores[{i}]"),
                format!("lcore {l} is beyond EAL's limit of {}", MAX_LCORE - 1),
            );
        }
        if !seen.insert(l) {
            issue(
                out,
                format!("eal.lcores[{i}]"),
                format!("lcore {l} is listed twice"),
            );
        }
    }
    match e.main_lcore {
        Some(m) if !e.lcores.contains(&m) => issue(
            out,
            "eal.main_lcore",
            format!("main lcore {m} is not in eal.lcores {:?}", e.lcores),
        ),
        _ => {}
    }
    if e.lcores.len() < 2 {
        issue(
            out,
            "eal.lcores",
            "needs at least two lcores: the main (control) lcore and one worker",
        );
    }
    if e.memory_mb < 64 {
        issue(
            out,
            "eal.memory_mb",
            format!("{} MiB is too little for EAL; use at least 64", e.memory_mb),
        );
    }
    if !LOG_LEVELS.contains(&e.log_level.as_str()) {
        issue(
            out,
            "eal.log_level",
            format!(
                "unknown level {:?}; one of {}",
                e.log_level,
                LOG_LEVELS.join(", ")
            ),
        );
    }
    if let Some(p) = &e.file_prefix {
        if p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            issue(
                out,
                "eal.file_prefix",
                "use letters, digits, '-' and '_' only",
            );
        }
    }
}

fn ports(cfg: &Config, out: &mut Vec<Issue>) {
    let mut names = HashMap::new();
    let mut devices = HashMap::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        if p.name.is_empty() {
            issue(out, format!("port[{i}].name"), "a port needs a name");
        } else if let Some(j) = names.insert(p.name.as_str(), i) {
            issue(
                out,
                format!("port[{i}].name"),
                format!("name {:?} is already used by port[{j}]", p.name),
            );
        }
        let dev = p.dpdk_name();
        if p.device.trim().is_empty() {
            issue(
                out,
                format!("port[{i}].device"),
                "a port needs a DPDK device, e.g. \"net_null0\" or a PCI address",
            );
        } else if !p.is_pci() && !is_vdev_name(&dev) {
            issue(
                out,
                format!("port[{i}].device"),
                format!(
                    "{:?} is neither a PCI address nor a virtual device (net_<driver><n>[,args])",
                    p.device
                ),
            );
        } else if let Some(j) = devices.insert(dev.clone(), i) {
            issue(
                out,
                format!("port[{i}].device"),
                format!("device {dev:?} is already used by port[{j}]"),
            );
        }
        for (key, v) in [("rx_desc", p.rx_desc), ("tx_desc", p.tx_desc)] {
            if !(32..=32768).contains(&v) {
                issue(
                    out,
                    format!("port[{i}].{key}"),
                    format!("{v} descriptors is out of range 32..=32768"),
                );
            }
        }
        for (j, pfx) in p.proxy_arp.iter().enumerate() {
            let ok = pfx.split_once('/').is_some_and(|(a, l)| {
                a.parse::<std::net::Ipv4Addr>().is_ok() && l.parse::<u8>().is_ok_and(|l| l <= 32)
            });
            if !ok {
                issue(
                    out,
                    format!("port[{i}].proxy_arp[{j}]"),
                    format!("{pfx:?} is not an IPv4 prefix like \"198.18.1.0/24\""),
                );
            }
        }
        if p.rx_queues == Some(0) {
            issue(
                out,
                format!("port[{i}].rx_queues"),
                "a port needs at least one receive queue",
            );
        }
        if let Some(m) = p.mtu {
            if !(68..=9600).contains(&m) {
                issue(
                    out,
                    format!("port[{i}].mtu"),
                    format!("MTU {m} is out of range 68..=9600"),
                );
            }
        }
    }
}

fn is_vdev_name(name: &str) -> bool {
    name.starts_with("net_")
        && name.len() > 4
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn dataplane(cfg: &Config, out: &mut Vec<Issue>) {
    let d = &cfg.dataplane;
    if d.burst == 0 || d.burst > MAX_BURST {
        issue(
            out,
            "dataplane.burst",
            format!("burst {} is out of range 1..={MAX_BURST}", d.burst),
        );
    }
    if d.idle_sleep_us > 100_000 {
        issue(
            out,
            "dataplane.idle_sleep_us",
            "more than 100 ms of idle sleep would stall traffic",
        );
    }
    if cfg.ports.is_empty() {
        issue(
            out,
            "port",
            "no ports configured: add at least one [[port]] table",
        );
    }
}

fn workers(cfg: &Config, out: &mut Vec<Issue>) {
    let main = cfg.main_lcore();
    let mut lcores = HashSet::new();
    let mut polled: HashMap<(&str, u16), usize> = HashMap::new();
    for (i, w) in cfg.workers.iter().enumerate() {
        if !cfg.eal.lcores.contains(&w.lcore) {
            issue(
                out,
                format!("worker[{i}].lcore"),
                format!(
                    "lcore {} is not in eal.lcores {:?}",
                    w.lcore, cfg.eal.lcores
                ),
            );
        } else if Some(w.lcore) == main {
            issue(
                out,
                format!("worker[{i}].lcore"),
                format!("lcore {} is the main (control) lcore", w.lcore),
            );
        }
        if !lcores.insert(w.lcore) {
            issue(
                out,
                format!("worker[{i}].lcore"),
                format!("lcore {} has two [[worker]] tables", w.lcore),
            );
        }
        if w.rx.is_empty() {
            issue(
                out,
                format!("worker[{i}].rx"),
                "a worker must poll at least one receive queue",
            );
        }
        for (j, rx) in w.rx.iter().enumerate() {
            let Some(port) = cfg.ports.iter().find(|p| p.name == rx.port) else {
                issue(
                    out,
                    format!("worker[{i}].rx[{j}].port"),
                    format!("no port named {:?}", rx.port),
                );
                continue;
            };
            let queues = port_rx_queues(cfg, port);
            if rx.queue >= queues {
                issue(
                    out,
                    format!("worker[{i}].rx[{j}].queue"),
                    format!(
                        "port {:?} has {queues} receive queue(s); queue {} does not exist",
                        rx.port, rx.queue
                    ),
                );
            }
            if let Some(k) = polled.insert((rx.port.as_str(), rx.queue), i) {
                issue(
                    out,
                    format!("worker[{i}].rx[{j}]"),
                    format!(
                        "port {:?} queue {} is already polled by worker[{k}]",
                        rx.port, rx.queue
                    ),
                );
            }
        }
    }
    if !cfg.workers.is_empty() {
        for (i, p) in cfg.ports.iter().enumerate() {
            for q in 0..port_rx_queues(cfg, p) {
                if !polled.contains_key(&(p.name.as_str(), q)) {
                    issue(
                        out,
                        format!("port[{i}]"),
                        format!(
                            "receive queue {q} of port {:?} is polled by no worker",
                            p.name
                        ),
                    );
                }
            }
        }
    }
}

/// Receive queues of a port once defaults are applied.
pub(crate) fn port_rx_queues(cfg: &Config, p: &Port) -> u16 {
    p.rx_queues.unwrap_or_else(|| {
        if cfg.workers.is_empty() {
            cfg.worker_lcores().len().max(1) as u16
        } else {
            cfg.workers
                .iter()
                .flat_map(|w| &w.rx)
                .filter(|r| r.port == p.name)
                .map(|r| r.queue + 1)
                .max()
                .unwrap_or(1)
        }
    })
}

fn tables(cfg: &Config, out: &mut Vec<Issue>) {
    use ispmux_dataplane::table::preload::IlmActionPreload as A;
    use ispmux_dataplane::PortRole;
    let node = cfg.dataplane.pipeline == crate::PipelineKind::Node;
    if node {
        for (i, p) in cfg.ports.iter().enumerate() {
            if p.role.is_none() {
                issue(
                    out,
                    format!("port[{i}]"),
                    "pipeline \"node\" needs a role for every port: access, core or handoff",
                );
            }
        }
    }
    if cfg.dataplane.punt_ring < 64 || !cfg.dataplane.punt_ring.is_power_of_two() {
        issue(
            out,
            "dataplane.punt_ring",
            "the punt ring needs a power of two of at least 64 slots",
        );
    }
    // A table entry must name a configured port of the role it is used in.
    let mut port = |key: String, p: u16, want: PortRole| match cfg.ports.get(usize::from(p)) {
        None => issue(
            out,
            key,
            format!(
                "port {p} does not exist: there are {} [[port]] tables",
                cfg.ports.len()
            ),
        ),
        Some(c) if node && c.role.is_some_and(|r| r != want) => issue(
            out,
            key,
            format!("port {p} ({:?}) is not a {want:?} port", c.name),
        ),
        _ => {}
    };
    let t = &cfg.tables;
    for (i, isp) in t.isps.iter().enumerate() {
        if let Some(f) = &isp.upstream {
            port(
                format!("tables.isps[{i}].upstream.port"),
                f.port,
                PortRole::Core,
            );
        }
        if let Some(f) = &isp.downstream {
            port(
                format!("tables.isps[{i}].downstream.port"),
                f.port,
                PortRole::Core,
            );
        }
        for (j, h) in isp.handoff.iter().enumerate() {
            port(
                format!("tables.isps[{i}].handoff[{j}].port"),
                h.port,
                PortRole::Handoff,
            );
        }
    }
    for (i, e) in t.ilm.iter().enumerate() {
        let key = format!("tables.ilm[{i}].action.port");
        match e.action {
            A::Swap { port: p, .. } => port(key, p, PortRole::Core),
            A::PopHandoff { port: p, .. } => port(key, p, PortRole::Handoff),
            A::PopDeliver { .. } => {}
        }
    }
    entries(cfg, out);
}

/// What the tables would refuse or silently overwrite, at the entry's own key: ids and
/// labels in range, no id, label or subscriber given twice (a later entry would replace an
/// earlier one without a word), room for every entry.
fn entries(cfg: &Config, out: &mut Vec<Issue>) {
    let t = &cfg.tables;
    use ispmux_dataplane::table::preload::IlmActionPreload as A;
    use ispmux_dataplane::table::MAX_ISPS;
    use ispmux_dataplane::wire::mpls::{LABEL_MAX, LABEL_RESERVED_MAX};
    let max_isps = t.limits.max_isps.min(MAX_ISPS);
    let isp = |out: &mut Vec<Issue>, key: String, id: u16| {
        if usize::from(id) >= max_isps {
            issue(
                out,
                key,
                format!("ISP id {id} is not below tables.limits.max_isps ({max_isps})"),
            );
        }
    };
    let label = |out: &mut Vec<Issue>, key: String, l: u32| {
        if l <= LABEL_RESERVED_MAX || l > LABEL_MAX {
            issue(
                out,
                key,
                format!(
                    "label {l} is out of range {}..={LABEL_MAX}",
                    LABEL_RESERVED_MAX + 1
                ),
            );
        }
    };
    let vlan = |out: &mut Vec<Issue>, key: String, v: u16| {
        if v > 4095 {
            issue(out, key, format!("VLAN ID {v} is out of range 0..=4095"));
        }
    };
    let mut ids = HashMap::new();
    let mut pushed: [HashMap<u32, usize>; 2] = Default::default();
    let mut handoffs = HashMap::new();
    for (i, e) in t.isps.iter().enumerate() {
        isp(out, format!("tables.isps[{i}].id"), e.id);
        if let Some(j) = ids.insert(e.id, i) {
            issue(
                out,
                format!("tables.isps[{i}].id"),
                format!("ISP id {} is already used by tables.isps[{j}]", e.id),
            );
        }
        for (d, (dir, fec)) in [("upstream", e.upstream), ("downstream", e.downstream)]
            .into_iter()
            .enumerate()
        {
            let Some(f) = fec else { continue };
            let key = format!("tables.isps[{i}].{dir}.label");
            label(out, key.clone(), f.label);
            // The far end tells ISPs apart by this label alone.
            if let Some(j) = pushed[d].insert(f.label, i) {
                issue(
                    out,
                    key,
                    format!(
                        "label {} is already pushed {dir} by tables.isps[{j}]",
                        f.label
                    ),
                );
            }
        }
        for (j, h) in e.handoff.iter().enumerate() {
            let key = format!("tables.isps[{i}].handoff[{j}]");
            vlan(out, format!("{key}.vlan"), h.vlan);
            if let Some((k, l)) = handoffs.insert((h.port, h.vlan), (i, j)) {
                issue(
                    out,
                    key,
                    format!(
                        "port {} VLAN {} is already the hand-off of tables.isps[{k}].handoff[{l}]",
                        h.port, h.vlan
                    ),
                );
            }
        }
    }
    let mut labels = HashMap::new();
    for (i, e) in t.ilm.iter().enumerate() {
        let key = format!("tables.ilm[{i}]");
        label(out, format!("{key}.label"), e.label);
        if let Some(j) = labels.insert(e.label, i) {
            issue(
                out,
                format!("{key}.label"),
                format!("label {} is already in tables.ilm[{j}]", e.label),
            );
        }
        match e.action {
            A::Swap { out_label, .. } => label(out, format!("{key}.action.out_label"), out_label),
            A::PopHandoff {
                isp: id, vlan: v, ..
            } => {
                isp(out, format!("{key}.action.isp"), id);
                vlan(out, format!("{key}.action.vlan"), v);
            }
            A::PopDeliver { isp: id } => isp(out, format!("{key}.action.isp"), id),
        }
    }
    let mut subs = SubscriberCheck::new(cfg);
    for (i, s) in t.subscribers.iter().enumerate() {
        let key = format!("tables.subscribers[{i}]");
        for (field, msg) in subs.check(s, &key) {
            let at = if field.is_empty() {
                key.clone()
            } else {
                format!("{key}.{field}")
            };
            issue(out, at, msg);
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
            issue(out, key, format!("{n} entries do not fit in {max}"));
        }
    }
}

/// The checks of one subscriber entry, from `[tables]` or `subscribers_csv`, against the
/// configuration and the entries before it: a configured access port, ids and VLANs in
/// range, no second entry for a subscriber key (port, VLANs, MAC) or a second holder of an
/// address within an ISP (the tables would replace the first silently), room in the table.
pub(crate) struct SubscriberCheck<'a> {
    cfg: &'a Config,
    keys: HashMap<(u16, u16, u16, ispmux_dataplane::wire::MacAddr), String>,
    addrs: HashMap<(u16, std::net::Ipv4Addr), String>,
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
        s: &ispmux_dataplane::table::preload::SubscriberPreload,
        place: &str,
    ) -> Vec<(&'static str, String)> {
        use ispmux_dataplane::PortRole;
        let mut out = Vec::new();
        let cfg = self.cfg;
        let node = cfg.dataplane.pipeline == crate::PipelineKind::Node;
        match cfg.ports.get(usize::from(s.port)) {
            None => out.push((
                "port",
                format!(
                    "port {} does not exist: there are {} [[port]] tables",
                    s.port,
                    cfg.ports.len()
                ),
            )),
            Some(c) if node && c.role.is_some_and(|r| r != PortRole::Access) => out.push((
                "port",
                format!("port {} ({:?}) is not an access port", s.port, c.name),
            )),
            _ => {}
        }
        let max_isps = cfg
            .tables
            .limits
            .max_isps
            .min(ispmux_dataplane::table::MAX_ISPS);
        if usize::from(s.isp) >= max_isps {
            out.push((
                "isp",
                format!(
                    "ISP id {} is not below tables.limits.max_isps ({max_isps})",
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
            out.push((
                "mac",
                format!(
                    "MAC {} on port {} VLAN {}/{} is already {first}",
                    s.mac, s.port, s.vlan, s.inner_vlan
                ),
            ));
        }
        if let Some(first) = s.ipv4.and_then(|a| self.addrs.get(&(s.isp, a))) {
            out.push((
                "ipv4",
                format!(
                    "address {} of ISP {} is already bound to {first}",
                    s.ipv4.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
                    s.isp
                ),
            ));
        }
        let max = cfg.tables.limits.max_subscribers;
        if self.keys.len() >= max {
            out.push((
                "",
                format!("no room: tables.limits.max_subscribers is {max}"),
            ));
        }
        if out.is_empty() {
            self.keys.insert(key, place.to_owned());
            if let Some(a) = s.ipv4 {
                self.addrs.insert((s.isp, a), place.to_owned());
            }
        }
        out
    }
}
