//! The route follower (`ispmux_gateway::routes`) against a real kernel: routes added,
//! replaced, made multipath and deleted with `ip route` in a namespace are reported, routes
//! on other interfaces are not, and a twin that goes down loses its routes even though the
//! kernel sends no `RTM_DELROUTE` for them (the follower dumps again and sweeps).
//!
//! Twins here are plain veth ends (no DPDK): `frr-r0` (port 0) and `frr-r1` (port 1);
//! `frr-p0` is an interface that is no twin.

use std::fs::File;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ispmux_conf::Ipv4Net;
use ispmux_gateway::routes::Routes;
use ispmux_slowpath::routes::{NextHop, RouteChange};
use ispmux_tests::netns::Netns;

fn net(s: &str) -> Ipv4Net {
    s.parse().expect("prefix")
}

fn via(port: u16, gw: &str) -> Option<NextHop> {
    Some(NextHop {
        port,
        gateway: Some(gw.parse::<Ipv4Addr>().expect("address")),
    })
}

/// The follower and every change it reported.
struct Follower {
    r: Routes,
    log: Vec<RouteChange>,
    /// Changes up to here were returned by an earlier `expect`.
    mark: usize,
}

impl Follower {
    /// Turns the follower until the latest change reported for `prefix` is `want`, within
    /// 2 s; returns the changes reported since the previous call.
    fn expect(&mut self, prefix: &str, want: Option<NextHop>) -> Vec<RouteChange> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            self.r.turn(Instant::now(), &mut self.log);
            let latest = self.log.iter().rev().find(|c| c.prefix == net(prefix));
            if latest.map(|c| c.next_hop) == Some(want) {
                let new = self.log[self.mark..].to_vec();
                self.mark = self.log.len();
                return new;
            }
            assert!(
                Instant::now() < deadline,
                "{prefix} -> {want:?} not reported; saw {:?}; stats {:?}",
                &self.log[self.mark..],
                self.r.stats()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn static_routes_on_twins_are_followed() {
    let ns = Netns::new("frr-rt");
    for (a, b) in [
        ("frr-r0", "frr-q0"),
        ("frr-r1", "frr-q1"),
        ("frr-p0", "frr-q2"),
    ] {
        ns.ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
        ns.ip(&["link", "set", a, "up"]);
        ns.ip(&["link", "set", b, "up"]);
    }
    ns.addr("frr-r0", "10.88.0.1/24");
    ns.addr("frr-r1", "10.88.1.1/24");
    ns.addr("frr-p0", "10.88.2.1/24");
    // This thread (only) now lives in the namespace: the follower's sockets open there.
    let f = File::open(format!("/var/run/netns/{}", ns.name)).expect("netns file");
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");

    let r = Routes::open(
        vec![(0, "frr-r0".to_owned()), (1, "frr-r1".to_owned())],
        Instant::now(),
    )
    .expect("open");
    let mut f = Follower {
        r,
        log: Vec::new(),
        mark: 0,
    };
    // The first dump: the twins' connected routes, on-link.
    let on_link = |port| {
        Some(NextHop {
            port,
            gateway: None,
        })
    };
    f.expect("10.88.0.0/24", on_link(0));
    f.expect("10.88.1.0/24", on_link(1));
    assert_eq!(
        f.r.table().get(net("10.88.2.0/24")),
        None,
        "frr-p0 is no twin"
    );

    ns.ip(&["route", "add", "198.18.90.0/24", "via", "10.88.0.2"]);
    f.expect("198.18.90.0/24", via(0, "10.88.0.2"));
    assert_eq!(
        f.r.next_hop_for(net("198.18.90.7/32")),
        Some((net("198.18.90.0/24"), via(0, "10.88.0.2").expect("hop")))
    );

    // A route out of another interface is not reported (the marker route after it is).
    ns.ip(&["route", "add", "198.18.92.0/24", "via", "10.88.2.2"]);
    ns.ip(&["route", "add", "198.18.93.0/24", "via", "10.88.0.2"]);
    let seen = f.expect("198.18.93.0/24", via(0, "10.88.0.2"));
    assert!(
        !seen.iter().any(|c| c.prefix == net("198.18.92.0/24")),
        "{seen:?}"
    );

    // A second route of the same prefix and metric out of another interface (`append`)
    // and its deletion leave the twin's route alone.
    ns.ip(&["route", "add", "198.18.94.0/24", "via", "10.88.0.2"]);
    f.expect("198.18.94.0/24", via(0, "10.88.0.2"));
    ns.ip(&["route", "append", "198.18.94.0/24", "via", "10.88.2.2"]);
    ns.ip(&["route", "del", "198.18.94.0/24", "via", "10.88.2.2"]);
    ns.ip(&["route", "add", "198.18.96.0/24", "via", "10.88.0.2"]);
    let seen = f.expect("198.18.96.0/24", via(0, "10.88.0.2"));
    assert!(
        !seen.iter().any(|c| c.prefix == net("198.18.94.0/24")),
        "{seen:?}"
    );
    assert_eq!(f.r.table().get(net("198.18.94.0/24")), via(0, "10.88.0.2"));
    // Replaced by a route out of another interface: no route via a twin is left.
    ns.ip(&["route", "replace", "198.18.96.0/24", "via", "10.88.2.2"]);
    f.expect("198.18.96.0/24", None);

    // Replaced onto the other twin.
    ns.ip(&["route", "replace", "198.18.90.0/24", "via", "10.88.1.2"]);
    f.expect("198.18.90.0/24", via(1, "10.88.1.2"));

    // Multipath: the lowest gateway, whatever the order given.
    ns.ip(&[
        "route",
        "add",
        "198.18.91.0/24",
        "nexthop",
        "via",
        "10.88.1.2",
        "nexthop",
        "via",
        "10.88.0.2",
    ]);
    f.expect("198.18.91.0/24", via(0, "10.88.0.2"));

    // A better metric takes over, and its removal gives the route back.
    ns.ip(&[
        "route",
        "add",
        "198.18.90.0/24",
        "via",
        "10.88.0.2",
        "metric",
        "5",
    ]);
    // The route without metric (0) stays best: nothing to report yet.
    ns.ip(&["route", "del", "198.18.90.0/24", "via", "10.88.1.2"]);
    f.expect("198.18.90.0/24", via(0, "10.88.0.2"));
    ns.ip(&["route", "del", "198.18.90.0/24"]);
    f.expect("198.18.90.0/24", None);

    // A twin goes down: the kernel drops its routes without a word; the follower dumps
    // again on the link event and sweeps them. The multipath route keeps its chosen path.
    ns.ip(&["link", "set", "frr-r1", "down"]);
    let seen = f.expect("10.88.1.0/24", None);
    assert!(
        !seen.iter().any(|c| c.prefix == net("198.18.91.0/24")),
        "{seen:?}"
    );
    assert_eq!(f.r.table().get(net("198.18.91.0/24")), via(0, "10.88.0.2"));
    let s = f.r.stats();
    assert!(s.dumps >= 2, "{s:?}");
    assert_eq!(s.errors, 0, "{s:?}");
}

/// Routes that FRR's zebra installs (here from staticd; ospfd's arrive the same way) use
/// nexthop objects (`RTA_NH_ID`); the kernel still lists their next hops in the messages
/// (`nexthop_compat_mode` 1, its default), so they are followed like any other.
#[test]
fn routes_installed_by_frr_zebra_are_followed() {
    use ispmux_tests::frr::{Frr, FrrConfig};
    let ns = Netns::new("frr-rz");
    ns.ip(&[
        "link", "add", "frr-r0", "type", "veth", "peer", "name", "frr-q0",
    ]);
    ns.ip(&["link", "set", "frr-r0", "up"]);
    ns.ip(&["link", "set", "frr-q0", "up"]);
    ns.addr("frr-r0", "10.88.0.1/24");
    let mut cfg = FrrConfig::new("frr-rz", Ipv4Addr::new(10, 88, 0, 1), &[]);
    cfg.static_routes
        .push(("198.18.95.0/24".into(), Ipv4Addr::new(10, 88, 0, 2)));
    let f = File::open(format!("/var/run/netns/{}", ns.name)).expect("netns file");
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
    let r = Routes::open(vec![(0, "frr-r0".to_owned())], Instant::now()).expect("open");
    let mut f = Follower {
        r,
        log: Vec::new(),
        mark: 0,
    };
    f.expect(
        "10.88.0.0/24",
        Some(NextHop {
            port: 0,
            gateway: None,
        }),
    );
    let frr = Frr::start(&ns, &cfg).unwrap_or_else(|e| panic!("FRR: {e}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.r.table().get(net("198.18.95.0/24")).is_none() && Instant::now() < deadline {
        f.r.turn(Instant::now(), &mut f.log);
        std::thread::sleep(Duration::from_millis(20));
    }
    let shown = ns.ip(&["route", "show", "198.18.95.0/24"]);
    assert_eq!(
        f.r.table().get(net("198.18.95.0/24")),
        via(0, "10.88.0.2"),
        "kernel: {}; follower: {:?}; zebra: {}",
        String::from_utf8_lossy(&shown.stdout),
        f.r.stats(),
        frr.log("zebra")
    );
    // zebra removes its routes when it stops.
    drop(frr);
    f.expect("198.18.95.0/24", None);
}
