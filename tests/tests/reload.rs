//! `ispmux ctl reload` and SIGHUP on the three-node chain of `mpls_chain` (static labels)
//! and of `ldp_chain` (labels by LDP): a changed file applied while traffic flows, a bad one
//! refused with its located error, an ISP removed (its traffic counted as drops), and at an
//! LDP tailend an ISP removed whose label is withdrawn hop by hop within a second.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ispmux_tests::chain::{headend_ports, tailend_ports, topology, transit_ports, Topology, EAL};
use ispmux_tests::netns::Netns;
use ispmux_tests::node::{control, start};
use ispmux_tests::{ispmux_bin, Daemon, TempDir};

const HEADEND_ISPS: &str = r#"
[tables.limits]
max_subscribers = 1024
max_isps = 4

[[tables.isps]]
id = 1
name = "isp-a"
gateway = "198.18.1.1"
upstream = { label = 1001, port = "core0", next_hop = "10.0.12.2" }

[[tables.ilm]]
label = 4001
action = { kind = "pop_deliver", isp = 1 }

[[tables.subscribers]]
port = "acc0"
mac = "02:00:00:aa:00:01"
isp = 1
ipv4 = "198.18.1.10"
"#;

const HEADEND_ISP_B: &str = r#"
[[tables.isps]]
id = 2
name = "isp-b"
gateway = "198.18.2.1"
upstream = { label = 1002, port = "core0", next_hop = "10.0.12.2" }
"#;

const HEADEND_ISP_B_ROWS: &str = r#"
[[tables.ilm]]
label = 4002
action = { kind = "pop_deliver", isp = 2 }

[[tables.subscribers]]
port = "acc1"
mac = "02:00:00:bb:00:01"
isp = 2
ipv4 = "198.18.2.10"
"#;

/// The transit's swaps: `b_labels` are ISP B's incoming upstream labels.
fn transit_tables(b_labels: &[u32]) -> String {
    let mut s = String::from(
        "\n[[tables.ilm]]\nlabel = 1001\naction = { kind = \"swap\", out_label = 2001, port = \"c1\", next_hop = \"10.0.23.2\" }\n\
         \n[[tables.ilm]]\nlabel = 3001\naction = { kind = \"swap\", out_label = 4001, port = \"c0\", next_hop = \"10.0.12.1\" }\n\
         \n[[tables.ilm]]\nlabel = 3002\naction = { kind = \"swap\", out_label = 4002, port = \"c0\", next_hop = \"10.0.12.1\" }\n",
    );
    for l in b_labels {
        s += &format!(
            "\n[[tables.ilm]]\nlabel = {l}\naction = {{ kind = \"swap\", out_label = 2002, port = \"c1\", next_hop = \"10.0.23.2\" }}\n"
        );
    }
    s
}

const TAILEND_TABLES: &str = r#"
[tables.limits]
max_isps = 4

[[tables.isps]]
id = 1
name = "isp-a"
downstream = { label = 3001, port = "core0", next_hop = "10.0.23.1" }
handoff = [{ port = "h0" }]

[[tables.isps]]
id = 2
name = "isp-b"
downstream = { label = 3002, port = "core0", next_hop = "10.0.23.1" }
handoff = [{ port = "h1" }]

[[tables.ilm]]
label = 2001
action = { kind = "pop_handoff", isp = 1, port = "h0", router = "198.18.1.2" }

[[tables.ilm]]
label = 2002
action = { kind = "pop_handoff", isp = 2, port = "h1", router = "198.18.2.2" }
"#;

fn headend_conf(d: &TempDir, tables: &str) -> String {
    format!("{EAL}{}{tables}{}", headend_ports(), control(d, "headend"))
}

fn transit_conf(d: &TempDir, b_labels: &[u32]) -> String {
    format!(
        "{EAL}{}{}{}",
        transit_ports(),
        transit_tables(b_labels),
        control(d, "transit")
    )
}

/// Writes `conf` as the node's file (the one it started from) and asks it to reload.
fn reload(d: &TempDir, name: &str, conf: &str) -> Output {
    std::fs::write(d.join(&format!("{name}.toml")), conf).expect("write config");
    ctl(d, name, "reload")
}

fn ctl(d: &TempDir, name: &str, cmd: &str) -> Output {
    Command::new(ispmux_bin())
        .args(["ctl", "--json", "-s"])
        .arg(d.join(&format!("{name}.sock")))
        .arg(cmd)
        .output()
        .expect("ctl")
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{o:?}");
    serde_json::from_slice(&o.stdout).expect("json answer")
}

/// A drop counter of the node's `stats`.
fn drops(d: &TempDir, name: &str, reason: &str) -> u64 {
    json(&ctl(d, name, "stats"))["drops"][reason]
        .as_u64()
        .unwrap_or(0)
}

fn ping(ns: &Netns, dst: &str, count: u32) -> Output {
    ns.command("ping")
        .args(["-c", &count.to_string(), "-i", "0.02", "-W", "1", dst])
        .output()
        .expect("ping")
}

/// A ping running in the background, 50 a second for `secs` seconds.
fn ping_flow(ns: &Netns, dst: &str, secs: u32) -> Child {
    ns.command("ping")
        .args(["-c", &(secs * 50).to_string(), "-i", "0.02", "-W", "1", dst])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ping")
}

fn received(o: &Output) -> u32 {
    let s = String::from_utf8_lossy(&o.stdout);
    s.split(',')
        .find_map(|p| p.trim().strip_suffix(" received")?.parse().ok())
        .unwrap_or(0)
}

/// Waits until both subscribers reach their ISP's server (next hops resolved).
fn until_both_answer(t: &Topology) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for (sub, server) in [(&t.sub_a, "198.18.1.2"), (&t.sub_b, "198.18.2.2")] {
        while received(&ping(sub, server, 1)) == 0 {
            assert!(Instant::now() < deadline, "{server} never answered");
        }
    }
}

/// The static chain, both ISPs everywhere.
fn static_chain(t: &Topology, d: &TempDir) -> [Daemon; 3] {
    let head = start(
        &t.head,
        d,
        "headend",
        headend_conf(
            d,
            &format!("{HEADEND_ISPS}{HEADEND_ISP_B}{HEADEND_ISP_B_ROWS}"),
        ),
    );
    let transit = start(&t.transit, d, "transit", transit_conf(d, &[1002]));
    let tail = start(
        &t.tail,
        d,
        "tailend",
        format!(
            "{EAL}{}{TAILEND_TABLES}{}",
            tailend_ports(),
            control(d, "tailend")
        ),
    );
    until_both_answer(t);
    [head, transit, tail]
}

/// (a) ISP B's label changes at the headend while ISP A's traffic flows: A loses nothing,
/// B's traffic rides the new label (the transit, which then forgets the old one, still
/// carries it).
#[test]
fn a_label_change_moves_one_isp_and_spares_the_other() {
    let t = topology(true);
    let d = TempDir::new("rl-label");
    let _nodes = static_chain(&t, &d);
    // The transit learns the new label first (make before break).
    let r = json(&reload(&d, "transit", &transit_conf(&d, &[1002, 1012])));
    assert_eq!(r["changes"]["labels"], 1, "{r}");

    let flow = ping_flow(&t.sub_a, "198.18.1.2", 3);
    std::thread::sleep(Duration::from_millis(500));
    let b_before = drops(&d, "transit", "unknown_label");
    let new_b = HEADEND_ISP_B.replace("label = 1002", "label = 1012");
    let r = json(&reload(
        &d,
        "headend",
        &headend_conf(&d, &format!("{HEADEND_ISPS}{new_b}{HEADEND_ISP_B_ROWS}")),
    ));
    assert_eq!(r["changes"]["isps_changed"], serde_json::json!([2]), "{r}");
    assert_eq!(r["changes"]["fecs"], 1, "{r}");
    assert_eq!(r["table_updates_refused"], 0, "{r}");
    // The old label leaves the transit: B's traffic reaches its server only on the new one.
    json(&reload(&d, "transit", &transit_conf(&d, &[1012])));
    let b = ping(&t.sub_b, "198.18.2.2", 20);
    let a = flow.wait_with_output().expect("ping A");
    assert_eq!(
        received(&a),
        150,
        "ISP A lost pings across the reloads: {a:?}"
    );
    assert_eq!(received(&b), 20, "ISP B on its new label: {b:?}");
    assert_eq!(
        drops(&d, "transit", "unknown_label"),
        b_before,
        "nothing arrived on the old label"
    );
}

/// (b) ISP B and its subscriber leave the headend's file: B's upstream traffic is counted
/// as `unknown_mac`, the traffic toward its released address as `unknown_destination`;
/// ISP A goes on.
#[test]
fn removing_an_isp_drops_its_traffic_counted_and_releases_its_bindings() {
    let t = topology(true);
    let d = TempDir::new("rl-remove");
    let _nodes = static_chain(&t, &d);
    // The incoming label stays: what arrives on it finds no binding any more.
    let ilm_only = HEADEND_ISP_B_ROWS
        .split("[[tables.subscribers]]")
        .next()
        .expect("rows");
    let r = json(&reload(
        &d,
        "headend",
        &headend_conf(&d, &format!("{HEADEND_ISPS}{ilm_only}")),
    ));
    assert_eq!(r["changes"]["isps_removed"], serde_json::json!([2]), "{r}");
    assert_eq!(r["changes"]["subscribers_removed"], 1, "{r}");
    let (up0, down0) = (
        drops(&d, "headend", "unknown_mac"),
        drops(&d, "headend", "unknown_destination"),
    );
    let b = ping(&t.sub_b, "198.18.2.2", 10);
    let toward_b = ping(&t.isp_b, "198.18.2.10", 10);
    let a = ping(&t.sub_a, "198.18.1.2", 10);
    assert_eq!(received(&b), 0, "{b:?}");
    assert_eq!(received(&toward_b), 0, "{toward_b:?}");
    assert_eq!(received(&a), 10, "ISP A untouched: {a:?}");
    assert!(
        drops(&d, "headend", "unknown_mac") >= up0 + 10,
        "B's pings counted"
    );
    assert!(
        drops(&d, "headend", "unknown_destination") >= down0 + 10,
        "the pings toward B's released address counted"
    );
}

/// (c) A file that fails validation is refused with its located error, one that changes
/// what cannot change live with the keys named; the running configuration stays and
/// forwarding goes on. SIGHUP reloads as `ctl reload` does.
#[test]
fn a_bad_config_is_refused_with_its_located_error_and_forwarding_goes_on() {
    let t = topology(true);
    let d = TempDir::new("rl-refuse");
    let nodes = static_chain(&t, &d);
    let good = headend_conf(
        &d,
        &format!("{HEADEND_ISPS}{HEADEND_ISP_B}{HEADEND_ISP_B_ROWS}"),
    );
    let flow = ping_flow(&t.sub_a, "198.18.1.2", 2);
    let bad = good.replace("label = 1002", "label = 2000000");
    let r = reload(&d, "headend", &bad);
    assert!(!r.status.success(), "{r:?}");
    let err = String::from_utf8_lossy(&r.stderr);
    let line = bad
        .lines()
        .position(|l| l.contains("2000000"))
        .expect("line")
        + 1;
    assert!(
        err.contains(&format!("headend.toml:{line}:"))
            && err.contains("tables.isps[1].upstream.label"),
        "{err}"
    );
    let fixed = good.replace("memory_mb = 256", "memory_mb = 512");
    let r = reload(&d, "headend", &fixed);
    assert!(!r.status.success(), "{r:?}");
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("cannot change while ispmux runs") && err.contains("eal"),
        "{err}"
    );
    let a = flow.wait_with_output().expect("ping A");
    assert_eq!(received(&a), 100, "forwarding went on: {a:?}");
    // SIGHUP with a good file that drops subscriber B's row: applied, B's pings now
    // counted as `unknown_mac`.
    let without_b = good.replace(
        "[[tables.subscribers]]\nport = \"acc1\"\nmac = \"02:00:00:bb:00:01\"\nisp = 2\nipv4 = \"198.18.2.10\"\n",
        "",
    );
    assert_ne!(without_b, good);
    std::fs::write(d.join("headend.toml"), &without_b).expect("write");
    let before = drops(&d, "headend", "unknown_mac");
    assert!(Command::new("kill")
        .args(["-HUP", &nodes[0].id().to_string()])
        .status()
        .expect("kill")
        .success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while drops(&d, "headend", "unknown_mac") == before {
        assert!(Instant::now() < deadline, "SIGHUP never reloaded");
        ping(&t.sub_b, "198.18.2.2", 1);
    }
    let a = ping(&t.sub_a, "198.18.1.2", 10);
    assert_eq!(received(&a), 10, "ISP A after the SIGHUP: {a:?}");
}

/// `[ldp]` of one node: fast Hellos so the chain converges in seconds.
fn ldp(router_id: &str) -> String {
    format!("\n[ldp]\nrouter_id = \"{router_id}\"\nhello_interval_s = 1\nhello_hold_s = 3\n")
}

/// ISP `n` (1: A, 2: B) with its LDP FECs, as `ldp_chain` has it.
fn ldp_isp(n: u8, extra: &str) -> String {
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
    while !ns
        .command("ip")
        .args(["route", "replace", dst, "via", via, "dev", dev])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(Instant::now() < deadline, "no route {dst} via {via}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ldp_routes(t: &Topology) {
    for n in [1, 2] {
        let fec = format!("198.18.{n}.254/32");
        let subs = format!("198.18.{n}.8/29");
        route(&t.head, &fec, "10.0.12.2", "ispmux-core0");
        route(&t.transit, &fec, "10.0.23.2", "ispmux-c1");
        route(&t.transit, &subs, "10.0.12.1", "ispmux-c0");
        route(&t.tail, &subs, "10.0.23.1", "ispmux-core0");
    }
    route(&t.tail, "10.0.12.0/30", "10.0.23.1", "ispmux-core0");
}

/// (d) ISP B removed at an LDP tailend by reload: its label is withdrawn toward the
/// headend, which within a second drops B's traffic as `no_fec` instead of pushing the
/// stale label; ISP A's traffic is unaffected. Added back, it is advertised again.
#[test]
fn an_isp_removed_at_the_ldp_tailend_is_no_fec_at_the_headend_within_a_second() {
    let t = topology(true);
    let d = TempDir::new("rl-ldp");
    let head = format!(
        "{EAL}{}\n[tables.limits]\nmax_subscribers = 1024\nmax_isps = 4\n{}{}\
         \n[[tables.subscribers]]\nport = \"acc0\"\nmac = \"02:00:00:aa:00:01\"\nisp = 1\nipv4 = \"198.18.1.10\"\n\
         \n[[tables.subscribers]]\nport = \"acc1\"\nmac = \"02:00:00:bb:00:01\"\nisp = 2\nipv4 = \"198.18.2.10\"\n{}{}",
        headend_ports(),
        ldp_isp(1, "gateway = \"198.18.1.1\"\n"),
        ldp_isp(2, "gateway = \"198.18.2.1\"\n"),
        ldp("10.0.12.1"),
        control(&d, "headend"),
    );
    let transit = format!(
        "{EAL}{}{}{}",
        transit_ports(),
        ldp("10.0.12.2"),
        control(&d, "transit")
    );
    let tail = |isps: &str| {
        format!(
            "{EAL}{}\n[tables.limits]\nmax_isps = 4\n{isps}{}{}",
            tailend_ports(),
            ldp("10.0.23.2"),
            control(&d, "tailend"),
        )
    };
    let a_isp = ldp_isp(1, "handoff = [{ port = \"h0\" }]\n");
    let b_isp = ldp_isp(2, "handoff = [{ port = \"h1\" }]\n");
    let _head = start(&t.head, &d, "headend", head);
    let _transit = start(&t.transit, &d, "transit", transit);
    let _tail = start(&t.tail, &d, "tailend", tail(&format!("{a_isp}{b_isp}")));
    ldp_routes(&t);
    until_both_answer(&t);

    let flow_a = ping_flow(&t.sub_a, "198.18.1.2", 3);
    // B's flow outlasts the wait below: what the headend counts is its traffic.
    let flow_b = ping_flow(&t.sub_b, "198.18.2.2", 6);
    std::thread::sleep(Duration::from_millis(300));
    let no_fec0 = drops(&d, "headend", "no_fec");
    let r = json(&reload(&d, "tailend", &tail(&a_isp)));
    let reloaded = Instant::now();
    assert_eq!(r["changes"]["isps_removed"], serde_json::json!([2]), "{r}");
    assert_eq!(r["changes"]["ldp_isps"], serde_json::json!([2]), "{r}");
    let counted = loop {
        if drops(&d, "headend", "no_fec") > no_fec0 {
            break reloaded.elapsed();
        }
        assert!(
            reloaded.elapsed() < Duration::from_secs(5),
            "the headend never counted ISP B as no_fec: {}\ntailend: {}\ntransit: {}",
            json(&ctl(&d, "headend", "ldp")),
            json(&ctl(&d, "tailend", "ldp")),
            json(&ctl(&d, "transit", "ldp")),
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!("ISP B counted as no_fec at the headend {counted:?} after the reload");
    assert!(
        counted < Duration::from_secs(1),
        "ISP B's traffic counted as no_fec only after {counted:?}"
    );
    let a = flow_a.wait_with_output().expect("ping A");
    let b = flow_b.wait_with_output().expect("ping B");
    assert_eq!(received(&a), 150, "ISP A unaffected: {a:?}");
    assert!(received(&b) < 250, "ISP B's traffic stopped: {b:?}");
    // Back in the tailend's file: its FEC is advertised again and B's traffic resumes.
    let r = json(&reload(&d, "tailend", &tail(&format!("{a_isp}{b_isp}"))));
    assert_eq!(r["changes"]["isps_added"], serde_json::json!([2]), "{r}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while received(&ping(&t.sub_b, "198.18.2.2", 1)) == 0 {
        assert!(
            Instant::now() < deadline,
            "ISP B never came back: {}",
            json(&ctl(&d, "headend", "ldp"))
        );
    }
}
