//! Labels by LDP end to end (seed 003, claims 7-8): the three-node chain of `mpls_chain`
//! with no label typed anywhere. Each ISP's FEC is the tailend's /32 on its hand-off; the
//! tailend advertises a label for it and pops it toward the ISP's router, the transit swaps,
//! the headend pushes what it learned; the downstream direction likewise for the ISPs'
//! subscriber prefixes, owned by the headend. Which neighbour leads to a FEC comes from
//! static routes on the twins, followed over netlink. Subscribers of two ISPs then reach
//! their own ISP's server, counted per ISP at both ends.

use std::time::{Duration, Instant};

use ispmux_tests::chain::{
    bypass, bypass_ports, headend_ports, tailend_ports, topology, transit_ports, Topology, EAL,
};
use ispmux_tests::netns::Netns;
use ispmux_tests::node::{control, start};
use ispmux_tests::{ispmux_bin, TempDir};

/// `[ldp]` of one node: fast Hellos and a 3 s session hold time, so the chain converges, and
/// notices a lost neighbour, in seconds.
fn ldp(router_id: &str) -> String {
    format!(
        "\n[ldp]\nrouter_id = \"{router_id}\"\nhello_interval_s = 1\nhello_hold_s = 3\nkeepalive_s = 3\n"
    )
}

/// ISP `n` (1: A, 2: B): its FEC (the tailend's hand-off address), its subscriber prefix
/// (not its router's address: the tailend's kernel routes the prefix toward the core).
fn isp(n: u8, extra: &str) -> String {
    let name = if n == 1 { "isp-a" } else { "isp-b" };
    format!(
        "\n[[tables.isps]]\nid = {n}\nname = \"{name}\"\n{extra}\
         ldp = {{ fec = \"198.18.{n}.254/32\", subscribers = \"198.18.{n}.8/29\"{router} }}\n",
        router = if extra.contains("handoff") {
            format!(", router = \"198.18.{n}.2\"")
        } else {
            String::new()
        }
    )
}

fn route(ns: &Netns, dst: &str, via: &str, dev: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    // The twin appears once its gateway has started.
    while !ns
        .command("ip")
        .args(["route", "replace", dst, "via", via, "dev", dev])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(
            Instant::now() < deadline,
            "no route {dst} via {via} dev {dev}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn routes(t: &Topology) {
    for n in [1, 2] {
        route(
            &t.head,
            &format!("198.18.{n}.254/32"),
            "10.0.12.2",
            "ispmux-core0",
        );
        route(
            &t.transit,
            &format!("198.18.{n}.254/32"),
            "10.0.23.2",
            "ispmux-c1",
        );
        route(
            &t.transit,
            &format!("198.18.{n}.8/29"),
            "10.0.12.1",
            "ispmux-c0",
        );
        route(
            &t.tail,
            &format!("198.18.{n}.8/29"),
            "10.0.23.1",
            "ispmux-core0",
        );
    }
    // The transit's transport address (its LSR ID, its address on the tailend's link) from
    // the headend. The transit has the higher transport address of both its sessions, so it
    // opens both, each to an address on the link: no session waits for a route (a connect
    // that finds none backs off 15 s, as FRR's does).
    route(&t.head, "10.0.23.1/32", "10.0.12.2", "ispmux-core0");
}

fn ping(ns: &Netns, dst: &str, count: u32) -> std::process::Output {
    ns.command("ping")
        .args(["-c", &count.to_string(), "-i", "0.05", "-W", "1", dst])
        .output()
        .expect("ping")
}

/// The per-ISP JSON line of an exit report.
fn isp_counters(out: &str, name: &str) -> serde_json::Value {
    out.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no counters for {name} in:\n{out}"))
}

/// The three nodes' configs: two ISPs, no label anywhere; with `bypass`, the headend and the
/// tailend also have the direct core link of [`bypass`].
struct Configs {
    head: String,
    transit: String,
    tail: String,
}

fn configs(d: &TempDir, with_bypass: bool) -> Configs {
    let (head_bypass, tail_bypass) = if with_bypass {
        bypass_ports()
    } else {
        Default::default()
    };
    Configs {
        head: format!(
            "{EAL}{}{head_bypass}\n[tables.limits]\nmax_subscribers = 1024\nmax_isps = 4\n{}{}\
             \n[[tables.subscribers]]\nport = \"acc0\"\nmac = \"02:00:00:aa:00:01\"\nisp = 1\nipv4 = \"198.18.1.10\"\n\
             \n[[tables.subscribers]]\nport = \"acc1\"\nmac = \"02:00:00:bb:00:01\"\nisp = 2\nipv4 = \"198.18.2.10\"\n{}{}",
            headend_ports(),
            isp(1, "gateway = \"198.18.1.1\"\n"),
            isp(2, "gateway = \"198.18.2.1\"\n"),
            ldp("10.0.12.1"),
            control(d, "headend"),
        ),
        transit: format!(
            "{EAL}{}{}{}",
            transit_ports(),
            ldp("10.0.23.1"),
            control(d, "transit")
        ),
        tail: format!(
            "{EAL}{}{tail_bypass}\n[tables.limits]\nmax_isps = 4\n{}{}{}{}",
            tailend_ports(),
            isp(1, "handoff = [{ port = \"h0\" }]\n"),
            isp(2, "handoff = [{ port = \"h1\" }]\n"),
            ldp("10.0.23.2"),
            control(d, "tailend"),
        ),
    }
}

/// Waits until both subscribers reach their ISP's server through the chain.
fn converge(t: &Topology, within: Duration) {
    let deadline = Instant::now() + within;
    for (sub, server) in [(&t.sub_a, "198.18.1.2"), (&t.sub_b, "198.18.2.2")] {
        while !ping(sub, server, 1).status.success() {
            assert!(
                Instant::now() < deadline,
                "{server} never answered through the chain"
            );
        }
    }
}

/// `ispmux ctl --json COMMAND` on node `name`.
fn ctl(d: &TempDir, name: &str, command: &str) -> serde_json::Value {
    let out = std::process::Command::new(ispmux_bin())
        .args(["ctl", "--json", "-s"])
        .arg(d.join(&format!("{name}.sock")))
        .arg(command)
        .output()
        .expect("ctl");
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

fn count(v: &serde_json::Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(|n| n.as_u64()).unwrap_or(0)
}

/// The peer whose label the node forwards FEC `fec` with, from `ctl ldp`.
fn in_use_peer(d: &TempDir, name: &str, fec: &str) -> Option<String> {
    let v = ctl(d, name, "ldp");
    let bindings = v.get("bindings")?.as_array()?;
    let b = bindings.iter().find(|b| b["fec"] == fec)?;
    b["remote"]
        .as_array()?
        .iter()
        .find(|r| r["in_use"] == true)
        .and_then(|r| r["peer"].as_str().map(str::to_owned))
}

/// ISP A's subscriber pings until `done` says so or `within` passes.
fn ping_until(t: &Topology, within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        let _ = t
            .sub_a
            .command("ping")
            .args(["-c", "1", "-W", "0.2", "198.18.1.2"])
            .output();
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_lost_transit_takes_its_labels_away_and_a_restarted_one_brings_them_back() {
    let t = topology(true);
    let d = TempDir::new("ldp-loss");
    let c = configs(&d, false);
    let head = start(&t.head, &d, "headend", c.head);
    let transit = start(&t.transit, &d, "transit", c.transit.clone());
    let tail = start(&t.tail, &d, "tailend", c.tail);
    routes(&t);
    converge(&t, Duration::from_secs(30));

    // A crash: no Notification, no FIN (its twins vanish with it). The headend notices
    // when the session's hold time (3 s) passes without a KeepAlive, forgets the labels
    // the transit gave it, and drops ISP A's traffic as `no_fec` rather than pushing a
    // label nobody swaps.
    let killed = Instant::now();
    let _ = transit.kill();
    let no_fec = count(&ctl(&d, "headend", "stats"), "/drops/no_fec");
    ping_until(
        &t,
        Duration::from_secs(10),
        "the headend never dropped ISP A's traffic as no_fec",
        || count(&ctl(&d, "headend", "stats"), "/drops/no_fec") > no_fec,
    );
    let noticed = killed.elapsed();
    let head_stats = ctl(&d, "headend", "stats");
    assert!(
        count(&head_stats, "/slowpath/ldp/sessions_lost") >= 1,
        "{head_stats}"
    );
    assert!(
        noticed >= Duration::from_secs(2),
        "labels went before the hold time: {noticed:?}"
    );
    assert_eq!(in_use_peer(&d, "headend", "198.18.1.254/32"), None);

    // The transit comes back with new twins (their routes went with the old ones); the
    // headend and the tailend relearn without a restart.
    let transit = start(&t.transit, &d, "transit", c.transit);
    routes(&t);
    // Within a minute: a session attempt that failed while the transit came back (its twin
    // not yet answering) waits out LDP's 15 s backoff before the next.
    converge(&t, Duration::from_secs(60));
    let a = ping(&t.sub_a, "198.18.1.2", 10);
    let b = ping(&t.sub_b, "198.18.2.2", 10);
    let head_stats = ctl(&d, "headend", "stats");
    let (ho, to, lo) = (head.stop(), transit.stop(), tail.stop());
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let ctx = format!(
        "headend:\n{}\ntransit:\n{}\ntailend:\n{}",
        text(&ho),
        text(&to),
        text(&lo)
    );
    for p in [&a, &b] {
        assert!(
            String::from_utf8_lossy(&p.stdout).contains("10 received"),
            "{p:?}\n{ctx}"
        );
    }
    assert!(
        count(&head_stats, "/slowpath/ldp/sessions_established") >= 2,
        "{head_stats}\n{ctx}"
    );
}

#[test]
fn a_route_change_moves_a_fec_to_the_new_next_hops_label() {
    let t = topology(true);
    bypass(&t);
    let d = TempDir::new("ldp-reroute");
    let c = configs(&d, true);
    let head = start(&t.head, &d, "headend", c.head);
    let transit = start(&t.transit, &d, "transit", c.transit);
    let tail = start(&t.tail, &d, "tailend", c.tail);
    // The headend's and the tailend's session runs over the bypass: each reaches the
    // other's transport address (its LSR ID) there. First, so the tailend (the active side)
    // finds its route when it first connects, or it backs off 15 s.
    route(&t.tail, "10.0.12.1/32", "10.0.13.1", "ispmux-core1");
    route(&t.head, "10.0.23.2/32", "10.0.13.2", "ispmux-core1");
    routes(&t);
    converge(&t, Duration::from_secs(30));
    let fec = "198.18.1.254/32";
    assert_eq!(
        in_use_peer(&d, "headend", fec).as_deref(),
        Some("10.0.23.1"),
        "{}",
        ctl(&d, "headend", "ldp")
    );

    // Through the transit, it swaps both the requests and the replies.
    let swapped = |f: &dyn Fn() -> std::process::Output| {
        let before = count(&ctl(&d, "transit", "stats"), "/pipeline/transit/packets");
        let p = f();
        let after = count(&ctl(&d, "transit", "stats"), "/pipeline/transit/packets");
        (p, after - before)
    };
    let (p, via_transit) = swapped(&|| ping(&t.sub_a, "198.18.1.2", 10));
    assert!(
        String::from_utf8_lossy(&p.stdout).contains("10 received"),
        "{p:?}"
    );
    assert_eq!(via_transit, 20);

    // The route now leads to the tailend: the headend pushes the tailend's label on the
    // bypass, and the transit carries only the replies.
    route(&t.head, "198.18.1.254/32", "10.0.13.2", "ispmux-core1");
    // The bypass session may still be in its backoff if the tailend tried before its route.
    let deadline = Instant::now() + Duration::from_secs(30);
    while in_use_peer(&d, "headend", fec).as_deref() != Some("10.0.23.2") {
        assert!(Instant::now() < deadline, "{}", ctl(&d, "headend", "ldp"));
        std::thread::sleep(Duration::from_millis(100));
    }
    // On a loaded machine a next hop's ARP may have to be asked again first.
    converge(&t, Duration::from_secs(30));
    let (p, via_transit) = swapped(&|| ping(&t.sub_a, "198.18.1.2", 10));
    let (ho, to, lo) = (head.stop(), transit.stop(), tail.stop());
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let ctx = format!(
        "headend:\n{}\ntransit:\n{}\ntailend:\n{}",
        text(&ho),
        text(&to),
        text(&lo)
    );
    assert!(
        String::from_utf8_lossy(&p.stdout).contains("10 received"),
        "{p:?}\n{ctx}"
    );
    assert_eq!(via_transit, 10, "{ctx}");
}

#[test]
fn labels_learned_by_ldp_carry_two_isps_through_the_chain() {
    let t = topology(true);
    let d = TempDir::new("ldp-chain");
    let c = configs(&d, false);
    let head = start(&t.head, &d, "headend", c.head);
    let transit = start(&t.transit, &d, "transit", c.transit);
    let tail = start(&t.tail, &d, "tailend", c.tail);
    routes(&t);

    // Converged when A's and B's pings come back (Hellos every second, then the mappings).
    converge(&t, Duration::from_secs(30));
    let a = ping(&t.sub_a, "198.18.1.2", 10);
    let own = ping(&t.isp_a, "198.18.1.254", 3);
    let b = ping(&t.sub_b, "198.18.2.2", 10);
    let (ho, to, lo) = (head.stop(), transit.stop(), tail.stop());
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let (ho, to, lo) = (text(&ho), text(&to), text(&lo));
    let ctx = format!("headend:\n{ho}\ntransit:\n{to}\ntailend:\n{lo}");
    // The tailend's own hand-off address still answers its ISP's router (its twin's kernel
    // routes the router's address on the link, not toward the subscribers).
    assert!(
        String::from_utf8_lossy(&own.stdout).contains("3 received"),
        "{own:?}\n{ctx}"
    );
    for p in [&a, &b] {
        assert!(
            String::from_utf8_lossy(&p.stdout).contains("10 received"),
            "{p:?}\n{ctx}"
        );
    }
    for name in ["isp-a", "isp-b"] {
        let (h, l) = (isp_counters(&ho, name), isp_counters(&lo, name));
        let n = |v: &serde_json::Value, k: &str| v[k]["packets"].as_u64().unwrap_or(0);
        // Every answered ping crossed both ends; probes while the chain converged may have
        // left the headend and died on the way (a next hop still resolving).
        assert!(n(&l, "tailend_up") >= 10, "{name} upstream: {ctx}");
        assert!(n(&h, "headend_up") >= n(&l, "tailend_up"), "{name}: {ctx}");
        assert!(n(&h, "headend_down") >= 10, "{name} downstream: {ctx}");
    }
}
