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
        ldp(cfg, &mut out);
        out.extend(cfg.icmp.validate());
    }
    store(cfg, &mut out);
    if let Some(a) = &cfg.api {
        let mut lcores = cfg.eal.lcores.clone();
        lcores.extend(cfg.main_lcore());
        lcores.extend(cfg.workers.iter().map(|w| w.lcore));
        out.extend(a.validate(&lcores));
    }
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
    for (i, name) in d.trusted_relay_ports.iter().enumerate() {
        let key = format!("dhcp.trusted_relay_ports[{i}]");
        match cfg.ports.iter().find(|p| &p.name == name) {
            None => issue(out, key, format!("no port named {name:?}")),
            Some(p) if p.role != Some(ispmux_dataplane::PortRole::Access) => issue(
                out,
                key,
                format!("port {name:?} is not an access port: no subscriber relays come there"),
            ),
            Some(_) => {}
        }
    }
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

/// `[ldp]` and the ISPs' `ldp` FECs: ports that run it, a transport address a twin has, no
/// static label in LDP's range, and for each ISP either static FECs or LDP's, not both.
fn ldp(cfg: &Config, out: &mut Vec<Issue>) {
    use ispmux_dataplane::PortRole;
    let port = |n: &str| cfg.ports.iter().find(|p| p.name == n);
    let Some(l) = &cfg.ldp else {
        for (i, isp) in cfg.tables.isps.iter().enumerate() {
            if isp.ldp.is_some() {
                issue(out, format!("tables.isps[{i}].ldp"), "needs an [ldp] table");
            }
        }
        return;
    };
    out.extend(l.validate());
    if cfg.dataplane.pipeline != crate::PipelineKind::Node {
        issue(
            out,
            "ldp",
            "LDP programs the node pipeline's tables: needs pipeline = \"node\"",
        );
    }
    for (i, name) in l.interfaces.iter().flatten().enumerate() {
        match port(&name.0) {
            None => issue(
                out,
                format!("ldp.interfaces[{i}]"),
                format!("no port named {name:?}"),
            ),
            Some(p) if p.role != Some(PortRole::Core) => issue(
                out,
                format!("ldp.interfaces[{i}]"),
                format!("port {name:?} is not a core port"),
            ),
            Some(_) => {}
        }
    }
    let transport = l.transport_address.unwrap_or(l.router_id);
    if !cfg
        .ports
        .iter()
        .any(|p| p.address.is_some_and(|a| a.addr() == transport))
    {
        issue(
            out,
            if l.transport_address.is_some() {
                "ldp.transport_address"
            } else {
                "ldp.router_id"
            },
            format!(
                "{transport} (the transport address) must be a [[port]] address: the sessions' \
                 TCP connections are made from a twin's address"
            ),
        );
    }
    for (i, ilm) in cfg.tables.ilm.iter().enumerate() {
        if l.allocates(ilm.label) {
            issue(
                out,
                format!("tables.ilm[{i}].label"),
                format!(
                    "label {} is in [ldp] labels {:?}: static labels must lie outside",
                    ilm.label, l.labels
                ),
            );
        }
    }
    for (i, isp) in cfg.tables.isps.iter().enumerate() {
        let Some(x) = &isp.ldp else { continue };
        if x.fec.is_some() && isp.upstream.is_some() {
            issue(
                out,
                format!("tables.isps[{i}].ldp.fec"),
                "the ISP's upstream FEC is static (upstream) or by LDP (ldp.fec), not both",
            );
        }
        if x.subscribers.is_some() && isp.downstream.is_some() {
            issue(
                out,
                format!("tables.isps[{i}].ldp.subscribers"),
                "the ISP's downstream FEC is static (downstream) or by LDP (ldp.subscribers), \
                 not both",
            );
        }
        if x.fec.is_some() && !isp.handoff.is_empty() && x.router.is_none() {
            issue(
                out,
                format!("tables.isps[{i}].ldp"),
                "this node hands the ISP off, so it is the egress of ldp.fec: give ldp.router, \
                 the ISP's router on the first hand-off",
            );
        }
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
    let mut twins = HashMap::new();
    let mut routes = HashMap::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        twin(cfg, i, p, &mut twins, out);
        static_routes(cfg, i, p, &mut routes, out);
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
        if p.rx_queues == Some(0) {
            issue(
                out,
                format!("port[{i}].rx_queues"),
                "a port needs at least one receive queue",
            );
        }
        if let Some(l) = p.implicit_null_label {
            if p.role != Some(ispmux_dataplane::PortRole::Core) {
                issue(
                    out,
                    format!("port[{i}].implicit_null_label"),
                    "only a core port receives what a neighbour popped",
                );
            } else if !(16..=0xf_ffff).contains(&l) {
                issue(
                    out,
                    format!("port[{i}].implicit_null_label"),
                    format!("label {l} is out of range 16..=1048575 (0-15 are reserved)"),
                );
            }
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

/// The twin's name must be one Linux takes, and unique: twins of two ports of one gateway
/// share its network namespace.
fn twin(cfg: &Config, i: usize, p: &Port, seen: &mut HashMap<String, usize>, out: &mut Vec<Issue>) {
    let has_twin = cfg.dataplane.pipeline == crate::PipelineKind::Node && p.is_routed();
    // Located at `twin` when given, else at the port's name the default is made of.
    let key = if p.twin.is_some() {
        format!("port[{i}].twin")
    } else {
        format!("port[{i}].name")
    };
    if !has_twin {
        if p.twin.is_some() {
            issue(
                out,
                key,
                "only core and hand-off ports of a node pipeline have a kernel twin",
            );
        }
        return;
    }
    let name = p.twin_name();
    if name.is_empty() || name.len() > IFNAME_MAX {
        issue(
            out,
            key,
            format!(
                "twin interface name {name:?} is {} characters; Linux takes 1..={IFNAME_MAX} \
                 (set `twin = \"...\"` on the port)",
                name.len()
            ),
        );
    } else if name == "."
        || name == ".."
        || name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
    {
        issue(
            out,
            key,
            format!("{name:?} is not an interface name (no '/', ':' or spaces)"),
        );
    } else if let Some(j) = seen.insert(name.clone(), i) {
        issue(
            out,
            key,
            format!("twin interface name {name:?} is already port[{j}]'s"),
        );
    }
}

/// A port's static routes go on its twin, so the port needs one with an address; each next
/// hop is a neighbour on the port's link; a prefix is routed once in the gateway (the kernel
/// would take a second route to it as a replacement or refuse it: never both).
fn static_routes(
    cfg: &Config,
    i: usize,
    p: &Port,
    seen: &mut HashMap<crate::Ipv4Net, (usize, usize)>,
    out: &mut Vec<Issue>,
) {
    if p.routes.is_empty() {
        return;
    }
    let has_twin = cfg.dataplane.pipeline == crate::PipelineKind::Node && p.is_routed();
    let Some(addr) = p.address.filter(|_| has_twin) else {
        issue(
            out,
            format!("port[{i}].routes"),
            "static routes go on a kernel twin: only core and hand-off ports of a node \
             pipeline with an `address` have one",
        );
        return;
    };
    for (k, r) in p.routes.iter().enumerate() {
        if !addr.network().contains(r.via) || r.via == addr.addr() {
            issue(
                out,
                format!("port[{i}].routes[{k}].via"),
                format!(
                    "next hop {} is not a neighbour on the port's link {}",
                    r.via,
                    addr.network()
                ),
            );
        }
        if let Some((j, l)) = seen.insert(r.to, (i, k)) {
            issue(
                out,
                format!("port[{i}].routes[{k}].to"),
                format!("a route to {} is already port[{j}].routes[{l}]", r.to),
            );
        }
    }
}

/// Longest interface name Linux takes (IFNAMSIZ less the terminating zero).
const IFNAME_MAX: usize = 15;

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
    out.extend(crate::tables::plan(cfg).issues);
}
