//! The label map on a tailend and a headend, with a real resolver.

use std::path::Path;

use super::*;
use ispmux_slowpath::neighbour::NeighbourEvent;

const EAL: &str = "[eal]\nlcores = [0, 1]\n\n[dataplane]\npipeline = \"node\"\n";
const ROUTER: MacAddr = MacAddr([2, 0, 0, 0x0a, 0, 2]);
const PEER: MacAddr = MacAddr([2, 0, 0, 0, 0x23, 1]);

fn tailend() -> Config {
    let text = format!(
        "{EAL}\n[[port]]\nname = \"core0\"\ndevice = \"net_null0\"\nrole = \"core\"\n\
         address = \"10.0.23.2/30\"\n\n[[port]]\nname = \"h0\"\ndevice = \"net_null1\"\n\
         role = \"handoff\"\naddress = \"198.18.1.254/24\"\n\n[ldp]\nrouter_id = \"10.0.23.2\"\n\n\
         [[tables.isps]]\nid = 1\nname = \"isp-a\"\nhandoff = [{{ port = \"h0\" }}]\n\
         ldp = {{ fec = \"198.18.1.0/24\", router = \"198.18.1.2\", subscribers = \"100.64.1.0/24\" }}\n"
    );
    ispmux_conf::parse(&text, Path::new("tailend.toml")).expect("tailend config")
}

fn headend() -> Config {
    let text = format!(
        "{EAL}\n[[port]]\nname = \"acc0\"\ndevice = \"net_null0\"\nrole = \"access\"\n\n\
         [[port]]\nname = \"core0\"\ndevice = \"net_null1\"\nrole = \"core\"\n\
         address = \"10.0.12.1/30\"\n\n[ldp]\nrouter_id = \"10.0.12.1\"\n\n\
         [[tables.isps]]\nid = 1\nname = \"isp-a\"\n\
         ldp = {{ fec = \"198.18.1.0/24\", subscribers = \"100.64.1.0/24\" }}\n"
    );
    ispmux_conf::parse(&text, Path::new("headend.toml")).expect("headend config")
}

fn fec(s: &str) -> Fec {
    let (a, l) = s.split_once('/').expect("prefix");
    Fec::new(a.parse().expect("addr"), l.parse().expect("len")).expect("fec")
}

fn state(f: &str, local: Option<u32>, egress: bool, remote: Option<(&str, u32)>) -> FecState {
    FecState {
        fec: fec(f),
        local,
        egress,
        remote: remote.map(|(a, l)| (a.parse().expect("addr"), l)),
    }
}

struct Run {
    map: LabelMap,
    resolver: Resolver,
    now: Instant,
}

impl Run {
    fn new(cfg: &Config) -> Run {
        let now = Instant::now();
        Run {
            map: LabelMap::new(cfg),
            resolver: Resolver::new(Vec::new(), now),
            now,
        }
    }

    fn apply(&mut self, s: FecState) -> Vec<TableUpdate> {
        let mut out = Vec::new();
        self.map.apply(self.now, &[s], &mut self.resolver, &mut out);
        out
    }

    fn neighbour(&mut self, port: u16, addr: &str, mac: MacAddr) -> Vec<TableUpdate> {
        let mut out = Vec::new();
        let ev = NeighbourEvent {
            port,
            addr: addr.parse().expect("addr"),
            mac: Some(mac),
        };
        self.resolver.event(self.now, ev, &mut out);
        out
    }
}

fn pop_handoff(label: u32, router_mac: MacAddr) -> TableUpdate {
    TableUpdate::SetIlm {
        label,
        action: Some(IlmAction::PopHandoff {
            isp: 1,
            port: 1,
            vid: 0,
            router_mac,
        }),
    }
}

#[test]
fn the_tailend_pops_the_isps_fec_toward_its_router() {
    let cfg = tailend();
    let mut r = Run::new(&cfg);
    assert_eq!(r.map.egress_fecs(), vec![fec("198.18.1.0/24")]);
    let out = r.apply(state("198.18.1.0/24", Some(100_000), true, None));
    assert_eq!(
        out,
        vec![pop_handoff(100_000, MacAddr::ZERO)],
        "unresolved router"
    );
    assert_eq!(
        r.neighbour(1, "198.18.1.2", ROUTER),
        vec![pop_handoff(100_000, ROUTER)]
    );
    // A new local label replaces the old one: the old label goes.
    let out = r.apply(state("198.18.1.0/24", Some(100_002), true, None));
    assert_eq!(
        out,
        vec![
            TableUpdate::SetIlm {
                label: 100_000,
                action: None
            },
            pop_handoff(100_002, ROUTER),
        ]
    );
    // Withdrawn: nothing left, and the router's next change writes nothing.
    let out = r.apply(state("198.18.1.0/24", None, false, None));
    assert_eq!(
        out,
        vec![TableUpdate::SetIlm {
            label: 100_002,
            action: None
        }]
    );
    assert!(r.neighbour(1, "198.18.1.2", PEER).is_empty());
}

#[test]
fn the_tailend_pushes_what_it_learns_for_the_subscriber_prefix_and_swaps_its_own() {
    let cfg = tailend();
    let mut r = Run::new(&cfg);
    let out = r.apply(state(
        "100.64.1.0/24",
        Some(100_001),
        false,
        Some(("10.0.23.1", 100_500)),
    ));
    let push = |mac| TableUpdate::SetFec {
        isp: 1,
        direction: Direction::Downstream,
        fec: Some(FecEntry {
            label: 100_500,
            tc: 0,
            port: 0,
            next_hop: mac,
        }),
    };
    let swap = |mac| TableUpdate::SetIlm {
        label: 100_001,
        action: Some(IlmAction::Swap {
            out_label: 100_500,
            port: 0,
            next_hop: mac,
        }),
    };
    assert_eq!(out, vec![swap(MacAddr::ZERO), push(MacAddr::ZERO)]);
    let mut moved = r.neighbour(0, "10.0.23.1", PEER);
    moved.sort_by_key(|u| format!("{u:?}"));
    let mut want = vec![swap(PEER), push(PEER)];
    want.sort_by_key(|u| format!("{u:?}"));
    assert_eq!(moved, want, "both follow the next hop");
    // The next hop's label goes: no FEC, no swap.
    let out = r.apply(state("100.64.1.0/24", Some(100_001), false, None));
    assert_eq!(
        out,
        vec![
            TableUpdate::SetIlm {
                label: 100_001,
                action: None
            },
            TableUpdate::SetFec {
                isp: 1,
                direction: Direction::Downstream,
                fec: None
            },
        ]
    );
}

#[test]
fn the_headend_pushes_the_isps_label_and_delivers_its_own() {
    let cfg = headend();
    let mut r = Run::new(&cfg);
    assert_eq!(r.map.egress_fecs(), vec![fec("100.64.1.0/24")]);
    let out = r.apply(state(
        "198.18.1.0/24",
        None,
        false,
        Some(("10.0.12.2", 100_007)),
    ));
    assert_eq!(
        out,
        vec![TableUpdate::SetFec {
            isp: 1,
            direction: Direction::Upstream,
            fec: Some(FecEntry {
                label: 100_007,
                tc: 0,
                port: 1,
                next_hop: MacAddr::ZERO
            }),
        }]
    );
    let out = r.apply(state("100.64.1.0/24", Some(100_003), true, None));
    assert_eq!(
        out,
        vec![TableUpdate::SetIlm {
            label: 100_003,
            action: Some(IlmAction::PopDeliver { isp: 1 })
        }]
    );
    // Implicit null from the next hop cannot say the ISP: the FEC goes, counted.
    let out = r.apply(state("198.18.1.0/24", None, false, Some(("10.0.12.2", 3))));
    assert_eq!(
        out,
        vec![TableUpdate::SetFec {
            isp: 1,
            direction: Direction::Upstream,
            fec: None
        }]
    );
    assert_eq!(r.map.stats().reserved_label, 1);
}

#[test]
fn a_fec_of_no_isp_is_swapped_and_a_next_hop_off_link_is_counted() {
    let cfg = headend();
    let mut r = Run::new(&cfg);
    // Another LSR's loopback: this node is a transit for it.
    let out = r.apply(state(
        "10.255.0.9/32",
        Some(100_010),
        false,
        Some(("10.0.12.2", 100_020)),
    ));
    assert_eq!(
        out,
        vec![TableUpdate::SetIlm {
            label: 100_010,
            action: Some(IlmAction::Swap {
                out_label: 100_020,
                port: 1,
                next_hop: MacAddr::ZERO
            })
        }]
    );
    let out = r.apply(state(
        "10.255.0.9/32",
        Some(100_010),
        false,
        Some(("192.0.2.1", 100_020)),
    ));
    assert_eq!(
        out,
        vec![TableUpdate::SetIlm {
            label: 100_010,
            action: None
        }]
    );
    assert_eq!(r.map.stats().next_hop_off_link, 1);
}

/// A reload that removes the ISP at its tailend: its pop entry goes at once (before LDP's
/// withdrawal), and so does the downstream push toward its subscribers; the router's next
/// change writes nothing. The ISP added back is written again from the last state.
#[test]
fn a_reload_without_the_isp_undoes_what_its_fecs_wrote() {
    let cfg = tailend();
    let mut r = Run::new(&cfg);
    r.apply(state("198.18.1.0/24", Some(100_000), true, None));
    r.neighbour(1, "198.18.1.2", ROUTER);
    let push = r.apply(state(
        "100.64.1.0/24",
        Some(100_001),
        false,
        Some(("10.0.23.1", 200)),
    ));
    assert!(
        push.iter().any(|u| matches!(
            u,
            TableUpdate::SetFec {
                isp: 1,
                direction: Direction::Downstream,
                fec: Some(_)
            }
        )),
        "{push:?}"
    );
    let text = "[eal]\nlcores = [0, 1]\n\n[dataplane]\npipeline = \"node\"\n\n[[port]]\nname = \"core0\"\n\
                device = \"net_null0\"\nrole = \"core\"\naddress = \"10.0.23.2/30\"\n\n[[port]]\nname = \"h0\"\n\
                device = \"net_null1\"\nrole = \"handoff\"\naddress = \"198.18.1.254/24\"\n\n[ldp]\n\
                router_id = \"10.0.23.2\"\n";
    let without = ispmux_conf::parse(text, Path::new("tailend.toml")).expect("config");
    let mut out = Vec::new();
    let changed = r
        .map
        .reconfigure(r.now, &without, &mut r.resolver, &mut out);
    assert_eq!(changed, 2);
    assert!(r.map.egress_fecs().is_empty());
    assert!(
        out.contains(&TableUpdate::SetIlm {
            label: 100_000,
            action: None
        }),
        "{out:?}"
    );
    assert!(
        out.contains(&TableUpdate::SetFec {
            isp: 1,
            direction: Direction::Downstream,
            fec: None
        }),
        "{out:?}"
    );
    assert!(r.neighbour(1, "198.18.1.2", PEER).is_empty());
    // Back again: the pop entry is written from the FEC's last state.
    let mut out = Vec::new();
    r.map.reconfigure(r.now, &cfg, &mut r.resolver, &mut out);
    assert!(out.contains(&pop_handoff(100_000, PEER)), "{out:?}");
}
