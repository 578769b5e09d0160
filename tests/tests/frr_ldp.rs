//! FRR's ldpd against itself: the harness in `ispmux_tests::frr` proven with real peers.
//!
//! Two namespaces joined by a veth pair, each node's LDP identity a /32 on its loopback:
//! A reaches B's /32 by a static route in FRR's configuration (staticd), B reaches A's by a
//! kernel route (`ip route`). Within the test's time the two reach an OPERATIONAL session,
//! and each shows the other's label for the prefix the other owns (implicit null, since
//! the owner is the egress) as in use (it routes via the other), plus the label the other
//! allocated for its own prefix (the other has a route to it, so it advertises a label
//! from 16 up). A session that never comes up fails the test, with both nodes' logs.

use std::net::Ipv4Addr;
use std::time::Duration;

use ispmux_tests::frr::{wait_until, Frr, FrrConfig, FrrLabel, LdpBinding};
use ispmux_tests::netns::{veth, End, Netns};

const A_ID: Ipv4Addr = Ipv4Addr::new(198, 18, 78, 1);
const B_ID: Ipv4Addr = Ipv4Addr::new(198, 18, 78, 2);
/// The session needs a Hello each way (every 5 s) and the TCP setup: ~5 s; 20 s is ample.
const UP: Duration = Duration::from_secs(20);

fn binding(node: &Frr, prefix: &str, from: Ipv4Addr) -> Option<LdpBinding> {
    node.bindings()
        .ok()?
        .into_iter()
        .find(|b| b.prefix == prefix && b.neighbor == Some(from) && b.remote.is_some())
}

fn logs(a: &Frr, b: &Frr) -> String {
    format!(
        "--- A ldpd:\n{}\n--- B ldpd:\n{}\n--- A neighbours: {:?}\n--- B neighbours: {:?}",
        a.log("ldpd"),
        b.log("ldpd"),
        a.vtysh("show mpls ldp neighbor"),
        b.vtysh("show mpls ldp neighbor"),
    )
}

#[test]
fn two_frr_nodes_exchange_labels_for_their_prefixes() {
    let na = Netns::new("frr-a");
    let nb = Netns::new("frr-b");
    veth(
        End {
            ns: &na,
            dev: "frr-a0",
            mac: "02:00:00:78:00:01",
        },
        End {
            ns: &nb,
            dev: "frr-b0",
            mac: "02:00:00:78:00:02",
        },
    );
    na.addr("frr-a0", "198.18.77.1/24");
    nb.addr("frr-b0", "198.18.77.2/24");
    na.addr("lo", "198.18.78.1/32");
    nb.addr("lo", "198.18.78.2/32");
    nb.ip(&["route", "add", "198.18.78.1/32", "via", "198.18.77.1"]);

    let mut ca = FrrConfig::new("frr-a", A_ID, &["frr-a0"]);
    ca.static_routes
        .push(("198.18.78.2/32".into(), Ipv4Addr::new(198, 18, 77, 2)));
    let cb = FrrConfig::new("frr-b", B_ID, &["frr-b0"]);
    let a = Frr::start(&na, &ca).unwrap_or_else(|e| panic!("FRR A: {e}"));
    let b = Frr::start(&nb, &cb).unwrap_or_else(|e| panic!("FRR B: {e}"));

    // staticd put A's route into the kernel through zebra.
    let route = wait_until(Duration::from_secs(5), || {
        let out = na.ip(&["route", "show", "198.18.78.2/32"]);
        let s = String::from_utf8_lossy(&out.stdout).into_owned();
        s.contains("via 198.18.77.2").then_some(s)
    });
    assert!(route.is_some(), "staticd's route is not in A's kernel");

    let up = wait_until(UP, || {
        (a.operational(B_ID) && b.operational(A_ID)).then_some(())
    });
    assert!(up.is_some(), "no OPERATIONAL session\n{}", logs(&a, &b));

    // Each node learns the owner's implicit null for the owner's /32 and uses it (its
    // route to the prefix goes via the owner) ...
    for (node, prefix, owner, name) in [
        (&a, "198.18.78.2/32", B_ID, "A"),
        (&b, "198.18.78.1/32", A_ID, "B"),
    ] {
        let got = wait_until(Duration::from_secs(5), || binding(node, prefix, owner));
        let got = got.unwrap_or_else(|| {
            panic!(
                "{name} has no label from {owner} for {prefix}: {:?}\n{}",
                node.bindings(),
                logs(&a, &b)
            )
        });
        assert_eq!(got.remote, Some(FrrLabel::ImplicitNull), "{name}: {got:?}");
        assert!(
            got.in_use,
            "{name} does not route {prefix} via {owner}: {got:?}"
        );
        // ... and advertises a label of its own for it (it has a route to it).
        assert!(
            matches!(got.local, Some(FrrLabel::Value(l)) if l >= 16),
            "{name}: {got:?}"
        );
    }
    // The label each allocated for the other's prefix is what the other learned from it.
    let a_for_b = binding(&a, "198.18.78.2/32", B_ID).and_then(|x| x.local);
    let b_learned = binding(&b, "198.18.78.2/32", A_ID).and_then(|x| x.remote);
    assert_eq!(a_for_b, b_learned, "{}", logs(&a, &b));
    assert!(
        !binding(&b, "198.18.78.2/32", A_ID).is_some_and(|x| x.in_use),
        "B does not route its own prefix via A"
    );

    // A live change: A advertises explicit null for its own prefix from now on, and B
    // learns it without the session going down.
    a.configure(&[
        "mpls ldp",
        "address-family ipv4",
        "label local advertise explicit-null",
    ])
    .unwrap_or_else(|e| panic!("configure A: {e}"));
    let exp = wait_until(Duration::from_secs(5), || {
        binding(&b, "198.18.78.1/32", A_ID).filter(|x| x.remote == Some(FrrLabel::ExplicitNull))
    });
    assert!(
        exp.is_some(),
        "B did not learn A's explicit null: {:?}",
        binding(&b, "198.18.78.1/32", A_ID)
    );
    assert!(a.operational(B_ID), "{}", logs(&a, &b));
}

/// Two FRR nodes on a veth pair with their /32s routed to each other; `key_a` and `key_b`
/// the TCP MD5 passwords each uses for the other (RFC 5036 §2.9), if any.
fn pair(tag: &str, key_a: Option<&str>, key_b: Option<&str>) -> (Netns, Netns, Frr, Frr) {
    let na = Netns::new(&format!("frr-{tag}a"));
    let nb = Netns::new(&format!("frr-{tag}b"));
    veth(
        End {
            ns: &na,
            dev: "frr-a0",
            mac: "02:00:00:78:00:01",
        },
        End {
            ns: &nb,
            dev: "frr-b0",
            mac: "02:00:00:78:00:02",
        },
    );
    na.addr("frr-a0", "198.18.77.1/24");
    nb.addr("frr-b0", "198.18.77.2/24");
    na.addr("lo", "198.18.78.1/32");
    nb.addr("lo", "198.18.78.2/32");
    na.ip(&["route", "add", "198.18.78.2/32", "via", "198.18.77.2"]);
    nb.ip(&["route", "add", "198.18.78.1/32", "via", "198.18.77.1"]);
    let mut ca = FrrConfig::new("frr-a", A_ID, &["frr-a0"]);
    let mut cb = FrrConfig::new("frr-b", B_ID, &["frr-b0"]);
    if let Some(k) = key_a {
        ca.passwords.push((B_ID, k.to_owned()));
    }
    if let Some(k) = key_b {
        cb.passwords.push((A_ID, k.to_owned()));
    }
    let a = Frr::start(&na, &ca).unwrap_or_else(|e| panic!("FRR A: {e}"));
    let b = Frr::start(&nb, &cb).unwrap_or_else(|e| panic!("FRR B: {e}"));
    (na, nb, a, b)
}

#[test]
fn frr_sessions_with_the_same_md5_key_come_up() {
    let (_na, _nb, a, b) = pair("md5", Some("ispmux-ldp"), Some("ispmux-ldp"));
    let up = wait_until(UP, || {
        (a.operational(B_ID) && b.operational(A_ID)).then_some(())
    });
    assert!(up.is_some(), "no OPERATIONAL session\n{}", logs(&a, &b));
    let detail = a
        .json("show mpls ldp neighbor detail json")
        .expect("detail");
    assert_eq!(
        detail[B_ID.to_string()]["authentication"],
        "TCP MD5 Signature",
        "{detail}"
    );
}

#[test]
fn frr_sessions_with_different_md5_keys_stay_down() {
    let (_na, _nb, a, b) = pair("md5x", Some("ispmux-ldp"), Some("wrong"));
    // Hellos (UDP, unsigned) still find the neighbour ...
    let adjacent = wait_until(UP, || {
        let d = a.json("show mpls ldp discovery json").ok()?;
        let adj = d["adjacencies"].as_array()?;
        adj.iter()
            .any(|x| x["neighborId"] == B_ID.to_string())
            .then_some(())
    });
    assert!(adjacent.is_some(), "no Hello adjacency\n{}", logs(&a, &b));
    // ... but the TCP session never forms: two Hello rounds and more.
    let up = wait_until(Duration::from_secs(12), || {
        (a.operational(B_ID) || b.operational(A_ID)).then_some(())
    });
    assert!(
        up.is_none(),
        "a session came up with different MD5 keys\n{}",
        logs(&a, &b)
    );
}

/// OSPF on the link instead of static routes: the LDP session forms over the routes ospfd
/// learned, and the route follower in A's namespace reports B's /32 via B's link address
/// (the input LDP needs to pick B as next hop toward B's FECs).
#[test]
fn ospf_routes_carry_the_session_and_reach_the_route_follower() {
    use ispmux_gateway::routes::Routes;
    use ispmux_slowpath::routes::NextHop;
    use std::time::Instant;

    let na = Netns::new("frr-oa");
    let nb = Netns::new("frr-ob");
    veth(
        End {
            ns: &na,
            dev: "frr-a0",
            mac: "02:00:00:78:00:01",
        },
        End {
            ns: &nb,
            dev: "frr-b0",
            mac: "02:00:00:78:00:02",
        },
    );
    na.addr("frr-a0", "198.18.77.1/24");
    nb.addr("frr-b0", "198.18.77.2/24");
    na.addr("lo", "198.18.78.1/32");
    nb.addr("lo", "198.18.78.2/32");
    let mut ca = FrrConfig::new("frr-a", A_ID, &["frr-a0"]);
    let mut cb = FrrConfig::new("frr-b", B_ID, &["frr-b0"]);
    ca.ospf_networks = vec!["198.18.77.0/24".into(), "198.18.78.1/32".into()];
    cb.ospf_networks = vec!["198.18.77.0/24".into(), "198.18.78.2/32".into()];

    // The follower opens its socket in A's namespace (this thread only moves there).
    let f = std::fs::File::open(format!("/var/run/netns/{}", na.name)).expect("netns file");
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
    let mut routes = Routes::open(vec![(0, "frr-a0".to_owned())], Instant::now()).expect("open");

    let a = Frr::start(&na, &ca).unwrap_or_else(|e| panic!("FRR A: {e}"));
    let b = Frr::start(&nb, &cb).unwrap_or_else(|e| panic!("FRR B: {e}"));

    let b_lo: ispmux_conf::Ipv4Net = "198.18.78.2/32".parse().expect("prefix");
    let mut changes = Vec::new();
    let learned = wait_until(UP, || {
        routes.turn(Instant::now(), &mut changes);
        routes.table().get(b_lo)
    });
    assert_eq!(
        learned,
        Some(NextHop {
            port: 0,
            gateway: Some(Ipv4Addr::new(198, 18, 77, 2)),
        }),
        "no OSPF route to B's /32 followed; changes {changes:?}\nA ospfd:\n{}",
        a.log("ospfd")
    );
    assert!(
        changes.iter().any(|c| c.prefix == b_lo),
        "the route came as a change: {changes:?}"
    );
    let up = wait_until(UP, || {
        (a.operational(B_ID) && b.operational(A_ID)).then_some(())
    });
    assert!(up.is_some(), "no OPERATIONAL session\n{}", logs(&a, &b));
    let got = wait_until(Duration::from_secs(5), || {
        binding(&a, "198.18.78.2/32", B_ID)
    });
    assert!(
        got.as_ref().is_some_and(|g| g.in_use),
        "A does not use B's label for B's /32: {got:?}"
    );
}
