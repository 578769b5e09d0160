//! Which FECs the engine is told about, and the route toward each.
//!
//! - Egress (from the configuration): an ISP's upstream FEC (`ldp.fec`) on the node that
//!   hands the ISP off (the ISP has `handoff` entries), and its subscriber prefix
//!   (`ldp.subscribers`) on a node with access ports.
//! - Routes (from the kernel's routing table on the twins, [`crate::routes`]): for every
//!   FEC followed, the gateway of the best route covering it is its next hop (none for a
//!   route without a gateway, or no route). The FECs followed are the configured ones (the
//!   headend needs the next hop toward an ISP's FEC) and every FEC a peer has advertised a
//!   label for: under ordered control a transit advertises a FEC upstream only once it
//!   knows the route toward it, and a transit has no ISP of its own in its configuration.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ispmux_conf::Config;
use ispmux_conf::Ipv4Net;
use ispmux_dataplane::PortRole;
use ispmux_slowpath::ldp::{Binding, Fec, FecChange};
use ispmux_slowpath::routes::RouteChange;

use crate::routes::Routes;

/// The FEC of a configured prefix.
pub fn fec_of(net: Ipv4Net) -> Option<Fec> {
    Fec::new(net.addr(), net.prefix_len())
}

fn net_of(fec: Fec) -> Option<Ipv4Net> {
    Ipv4Net::new(fec.addr, fec.len).ok()
}

/// The FECs this node is the egress of, and every FEC its configuration names.
pub fn configured(cfg: &Config) -> (Vec<Fec>, Vec<Fec>) {
    let has_access = cfg.ports.iter().any(|p| p.role == Some(PortRole::Access));
    let mut egress = Vec::new();
    let mut all = Vec::new();
    for isp in &cfg.tables.isps {
        let Some(l) = &isp.ldp else { continue };
        if let Some(f) = l.fec.and_then(fec_of) {
            all.push(f);
            if !isp.handoff.is_empty() {
                egress.push(f);
            }
        }
        if let Some(f) = l.subscribers.and_then(fec_of) {
            all.push(f);
            if has_access {
                egress.push(f);
            }
        }
    }
    egress.sort();
    egress.dedup();
    all.sort();
    all.dedup();
    (egress, all)
}

/// The next hop the engine was last told for each FEC followed.
#[derive(Debug, Default)]
pub struct Followed {
    next_hop: BTreeMap<Fec, Option<Ipv4Addr>>,
    /// FECs of the configuration: followed for good.
    configured: BTreeSet<Fec>,
}

impl Followed {
    /// FECs followed.
    pub fn count(&self) -> usize {
        self.next_hop.len()
    }

    /// Follows the configured `fec` for good.
    pub fn configure(&mut self, fec: Fec, routes: &Routes, out: &mut Vec<FecChange>) {
        self.configured.insert(fec);
        self.follow(fec, routes, out);
    }

    /// `fec` is no longer of the configuration (a reload): it is followed from now on only
    /// while some peer has a label for it.
    pub fn unconfigure(&mut self, fec: Fec) {
        self.configured.remove(&fec);
    }

    /// A FEC of the engine's bindings: followed while some peer has a label for it. One no
    /// peer has a label for any more (and not ours to advertise) is let go: the engine is
    /// told it has no route, and forgets it.
    pub fn binding(&mut self, b: &Binding, routes: &Routes, out: &mut Vec<FecChange>) {
        let unlabelled = b.remote.is_empty() && b.local.is_none() && !b.egress;
        if !unlabelled {
            self.follow(b.fec, routes, out);
        } else if !self.configured.contains(&b.fec) {
            if let Some(Some(_)) = self.next_hop.remove(&b.fec) {
                out.push(FecChange::Route {
                    fec: b.fec,
                    next_hop: None,
                });
            }
        }
    }

    /// Follows `fec` from now on: its route now, if it was not followed yet.
    pub fn follow(&mut self, fec: Fec, routes: &Routes, out: &mut Vec<FecChange>) {
        if self.next_hop.contains_key(&fec) {
            return;
        }
        let nh = next_hop(routes, fec);
        self.next_hop.insert(fec, nh);
        if nh.is_some() {
            out.push(FecChange::Route { fec, next_hop: nh });
        }
    }

    /// The FECs whose next hop the route changes moved.
    pub fn changed(&mut self, routes: &Routes, changes: &[RouteChange], out: &mut Vec<FecChange>) {
        for (fec, was) in &mut self.next_hop {
            let Some(net) = net_of(*fec) else { continue };
            if !changes.iter().any(|c| c.covers(net)) {
                continue;
            }
            let nh = next_hop(routes, *fec);
            if nh != *was {
                *was = nh;
                out.push(FecChange::Route {
                    fec: *fec,
                    next_hop: nh,
                });
            }
        }
    }
}

/// The gateway of the best route covering `fec`.
fn next_hop(routes: &Routes, fec: Fec) -> Option<Ipv4Addr> {
    routes.next_hop_for(net_of(fec)?)?.1.gateway
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const NODE: &str = r#"[eal]
lcores = [0, 1]

[dataplane]
pipeline = "node"

[[port]]
name = "access"
device = "net_null0"
role = "access"

[[port]]
name = "core"
device = "net_null1"
role = "core"
address = "10.0.12.1/30"

[[port]]
name = "isp"
device = "net_null2"
role = "handoff"
address = "198.18.2.1/24"

[[tables.isps]]
id = 1
handoff = [{ port = "isp" }]
ldp = { fec = "198.18.2.0/24", router = "198.18.2.2", subscribers = "100.64.1.0/24" }

[[tables.isps]]
id = 2
ldp = { fec = "198.18.3.0/24", subscribers = "100.64.2.0/24" }

[ldp]
router_id = "10.0.12.1"
"#;

    fn fec(s: &str) -> Fec {
        let (a, l) = s.split_once('/').expect("prefix");
        Fec::new(a.parse().expect("addr"), l.parse().expect("len")).expect("fec")
    }

    #[test]
    fn egress_is_the_handed_off_isps_fec_and_every_subscriber_prefix_with_access_ports() {
        let cfg = ispmux_conf::parse(NODE, Path::new("t.toml")).expect("valid");
        let (egress, all) = configured(&cfg);
        assert_eq!(
            egress,
            vec![
                fec("100.64.1.0/24"),
                fec("100.64.2.0/24"),
                fec("198.18.2.0/24")
            ],
            "ISP 2 is not handed off here: its FEC is followed, not advertised"
        );
        assert_eq!(all.len(), 4);
        assert!(all.contains(&fec("198.18.3.0/24")));
        // Without access ports, no subscriber prefix is this node's.
        let tailend = NODE.replace(
            "name = \"access\"\ndevice = \"net_null0\"\nrole = \"access\"",
            "name = \"access\"\ndevice = \"net_null0\"\nrole = \"core\"\naddress = \"10.0.13.1/30\"",
        );
        let cfg = ispmux_conf::parse(&tailend, Path::new("t.toml")).expect("valid tailend");
        assert_eq!(configured(&cfg).0, vec![fec("198.18.2.0/24")]);
    }
}
