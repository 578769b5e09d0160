//! ICMP errors end to end: headend, transit and tailend (three ispmux processes on
//! net_af_packet over veth pairs in namespaces, as in `mpls_chain.rs`) between a subscriber
//! and its ISP's router. `traceroute` from the subscriber sees each node answer Time
//! Exceeded (the transit's error rides on along the LSP, the ISP router routes it back);
//! over a 1,500-byte core, a 1,500-byte DF ping gets Fragmentation Needed with MTU 1496,
//! Linux's path MTU discovery then fits its pings, and a TCP transfer from the ISP's server
//! (1,460-byte segments, no MSS clamping) completes after the tailend's Fragmentation Needed.
//!
//! Next hops and the ISP router are addresses, resolved through the routed ports' twins; each
//! routed port has its own MAC, another than its veth's, so only the twin's kernel takes the
//! port's frames in the gateway's namespace.

use std::process::Output;
use std::time::{Duration, Instant};

use ispmux_tests::netns::{veth, End, Netns};
use ispmux_tests::node::{control, start, wait_resolved};
use ispmux_tests::TempDir;

fn eal(prefix: &str) -> String {
    format!(
        "[eal]\nlcores = [0, 1]\nmemory_mb = 256\nhugepages = \"off\"\nfile_prefix = \"icmp-{prefix}\"\n\n\
         [dataplane]\npipeline = \"node\"\nidle_sleep = \"on\"\n\n"
    )
}

/// A port on `iface`; a routed one with its own MAC and address.
fn port(name: &str, n: usize, role: &str, routed: Option<(&str, &str)>) -> String {
    let addr = routed.map_or(String::new(), |(mac, a)| {
        format!("mac = \"{mac}\"\naddress = \"{a}\"\n")
    });
    format!(
        "[[port]]\nname = \"{name}\"\ndevice = \"net_af_packet{n},iface={name}\"\nrole = \"{role}\"\nmtu = 1500\n{addr}\n"
    )
}

const HEADEND_TABLES: &str = r#"
[tables.limits]
max_subscribers = 64
max_isps = 2

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

const TRANSIT_TABLES: &str = r#"
[[tables.ilm]]
label = 1001
action = { kind = "swap", out_label = 2001, port = "c1", next_hop = "10.0.23.2" }

[[tables.ilm]]
label = 3001
action = { kind = "swap", out_label = 4001, port = "c0", next_hop = "10.0.12.1" }
"#;

const TAILEND_TABLES: &str = r#"
[tables.limits]
max_isps = 2

[[tables.isps]]
id = 1
name = "isp-a"
downstream = { label = 3001, port = "core0", next_hop = "10.0.23.1" }
handoff = [{ port = "h0" }]

[[tables.ilm]]
label = 2001
action = { kind = "pop_handoff", isp = 1, port = "h0", router = "198.18.1.2" }
"#;

struct Chain {
    sub: Netns,
    head: Netns,
    transit: Netns,
    tail: Netns,
    isp: Netns,
}

fn chain() -> Chain {
    let t = Chain {
        sub: Netns::new("icmp-sa"),
        head: Netns::new("icmp-hd"),
        transit: Netns::new("icmp-tr"),
        tail: Netns::new("icmp-tl"),
        isp: Netns::new("icmp-ia"),
    };
    let e = |ns, dev, mac| End { ns, dev, mac };
    veth(
        e(&t.sub, "eth0", "02:00:00:aa:00:01"),
        e(&t.head, "acc0", "02:00:00:01:00:01"),
    );
    // The routed ports' veths: the ports' MACs (below) with 8 in the last byte's top nibble.
    veth(
        e(&t.head, "core0", "02:00:00:01:00:83"),
        e(&t.transit, "c0", "02:00:00:02:00:81"),
    );
    veth(
        e(&t.transit, "c1", "02:00:00:02:00:82"),
        e(&t.tail, "core0", "02:00:00:03:00:81"),
    );
    veth(
        e(&t.tail, "h0", "02:00:00:03:00:82"),
        e(&t.isp, "eth0", "02:00:00:0a:00:01"),
    );
    // Those veths carry no address and leave ARP for the twins' addresses to the twins.
    for (ns, dev) in [
        (&t.head, "core0"),
        (&t.transit, "c0"),
        (&t.transit, "c1"),
        (&t.tail, "core0"),
        (&t.tail, "h0"),
    ] {
        let key = format!("net.ipv4.conf.{dev}.arp_ignore=1");
        let out = ns
            .command("sysctl")
            .args(["-qw", &key])
            .output()
            .expect("sysctl");
        assert!(out.status.success(), "{key}: {out:?}");
    }
    // Every link keeps the default 1,500 bytes: a full-size packet does not fit behind a label.
    t.sub.addr("eth0", "198.18.1.10/24");
    t.sub.ip(&["route", "add", "default", "via", "198.18.1.1"]);
    // The ISP's router: its server address on the hand-off link, and it routes. The errors
    // from inside the LSP come to it from core addresses it has no route for, and go back out
    // the link they came in on: no reverse-path filter, no redirects.
    t.isp.addr("eth0", "198.18.1.2/24");
    for key in [
        "net.ipv4.ip_forward=1",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.eth0.rp_filter=0",
        "net.ipv4.conf.all.send_redirects=0",
        "net.ipv4.conf.eth0.send_redirects=0",
    ] {
        let out = t
            .isp
            .command("sysctl")
            .args(["-qw", key])
            .output()
            .expect("sysctl");
        assert!(out.status.success(), "{key}: {out:?}");
    }
    t
}

fn run(ns: &Netns, program: &str, args: &[&str]) -> Output {
    ns.command(program).args(args).output().expect(program)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The number after `key` on the exit report's `icmp` line.
fn icmp_counter(report: &str, key: &str) -> u64 {
    report
        .lines()
        .find(|l| l.starts_with("icmp "))
        .and_then(|l| {
            l.split_whitespace()
                .skip_while(|w| *w != key)
                .nth(1)
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or_else(|| panic!("no icmp {key} in:\n{report}"))
}

#[test]
fn traceroute_sees_every_hop_and_pmtu_discovery_fits_the_label() {
    let t = chain();
    let d = TempDir::new("icmp-errors");
    let head = start(
        &t.head,
        &d,
        "headend",
        format!(
            "{}{}{}{HEADEND_TABLES}{}",
            eal("head"),
            port("acc0", 0, "access", None),
            port(
                "core0",
                1,
                "core",
                Some(("02:00:00:01:00:03", "10.0.12.1/30"))
            ),
            control(&d, "headend")
        ),
    );
    let transit = start(
        &t.transit,
        &d,
        "transit",
        format!(
            "{}{}{}{TRANSIT_TABLES}{}",
            eal("transit"),
            port("c0", 0, "core", Some(("02:00:00:02:00:01", "10.0.12.2/30"))),
            port("c1", 1, "core", Some(("02:00:00:02:00:02", "10.0.23.1/30"))),
            control(&d, "transit")
        ),
    );
    let tail = start(
        &t.tail,
        &d,
        "tailend",
        format!(
            "{}{}{}proxy_arp = [\"198.18.1.0/25\"]\n\n{TAILEND_TABLES}{}",
            eal("tail"),
            port(
                "core0",
                0,
                "core",
                Some(("02:00:00:03:00:01", "10.0.23.2/30"))
            ),
            port(
                "h0",
                1,
                "handoff",
                Some(("02:00:00:03:00:02", "198.18.1.254/24"))
            ),
            control(&d, "tailend")
        ),
    );

    // The nodes take a moment to start (a few seconds here, more on a slow CI machine).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !run(&t.sub, "ping", &["-c", "1", "-W", "1", "198.18.1.2"])
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "the subscriber never reached its ISP"
        );
    }

    // Hop 1 the headend (from the ISP's gateway address), hop 2 the transit (its receiving
    // core port's address, the error carried on to the tailend and back through the ISP),
    // hop 3 the tailend (its hand-off address), hop 4 the ISP's server.
    let tr = run(
        &t.sub,
        "traceroute",
        &["-n", "-q", "1", "-w", "2", "-m", "6", "198.18.1.2"],
    );
    let out = text(&tr);
    let hops: Vec<String> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect();
    assert_eq!(
        hops,
        ["198.18.1.1", "10.0.12.2", "198.18.1.254", "198.18.1.2"],
        "{out}"
    );

    // Fragmentation Needed from the headend, 1496 = 1500 less the label.
    let big = run(
        &t.sub,
        "ping",
        &["-M", "do", "-s", "1472", "-c", "1", "-W", "2", "198.18.1.2"],
    );
    let out = text(&big);
    assert!(
        !big.status.success(),
        "1500 bytes fit behind a label: {out}"
    );
    assert!(
        out.contains("From 198.18.1.1") && out.contains("mtu = 1496"),
        "{out}"
    );
    // Linux keeps the path's MTU: the next big DF ping fails locally, smaller ones pass.
    let again = text(&run(
        &t.sub,
        "ping",
        &["-M", "do", "-s", "1472", "-c", "1", "-W", "1", "198.18.1.2"],
    ));
    assert!(again.contains("mtu=1496"), "{again}");
    let fits = run(
        &t.sub,
        "ping",
        &[
            "-M",
            "do",
            "-s",
            "1468",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            "198.18.1.2",
        ],
    );
    assert!(text(&fits).contains("3 received"), "{}", text(&fits));

    // 1 MiB from the ISP's server, whose first full-size segments do not fit at the tailend:
    // its Fragmentation Needed lets the server's TCP fit them, without MSS clamping. The
    // subscriber forgets the path MTU it learned first, or it would offer a smaller MSS.
    t.sub.ip(&["route", "flush", "cache"]);
    let server = t
        .isp
        .command("python3")
        .args([
            "-c",
            "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('198.18.1.2',5001))\ns.listen(1)\nc,_=s.accept()\n\
             c.sendall(bytes(i%251 for i in range(1<<20)))\nc.close()",
        ])
        .spawn()
        .expect("server");
    let client = t
        .sub
        .command("python3")
        .args([
            "-c",
            "import socket,time\nfor n in range(100):\n try:\n  s=socket.create_connection(('198.18.1.2',5001),timeout=10)\n  break\n except ConnectionRefusedError:\n  if n==99: raise\n  time.sleep(0.1)\n\
             print('mss',s.getsockopt(socket.IPPROTO_TCP,socket.TCP_MAXSEG))\nb=b''\n\
             while True:\n d=s.recv(65536)\n if not d: break\n b+=d\n\
             assert b==bytes(i%251 for i in range(1<<20)), len(b)\nprint('ok',len(b))",
        ])
        .output()
        .expect("client");
    let _ = server.wait_with_output();
    assert!(
        String::from_utf8_lossy(&client.stdout).contains("ok 1048576"),
        "{client:?}"
    );
    let server_route = text(&run(&t.isp, "ip", &["route", "get", "198.18.1.10"]));
    assert!(
        server_route.contains("mtu 1496"),
        "the server learned the path MTU: {server_route}"
    );

    // Every next hop and the ISP router were resolved through the twins (asked while all run:
    // a node stopping leaves its neighbours' probes unanswered).
    for (node, n) in [("headend", 1), ("transit", 2), ("tailend", 2)] {
        wait_resolved(&d, node, n);
    }

    let (ho, to, lo) = (head.stop(), transit.stop(), tail.stop());
    let (ho, to, lo) = (text(&ho), text(&to), text(&lo));
    // Each node counted what it punted and answered.
    assert!(icmp_counter(&ho, "punts_ttl_expired") >= 1, "{ho}");
    assert!(icmp_counter(&ho, "punts_frag_needed") >= 1, "{ho}");
    assert!(icmp_counter(&ho, "sent") >= 2, "{ho}");
    assert!(icmp_counter(&to, "punts_ttl_expired") >= 1, "{to}");
    assert!(icmp_counter(&to, "sent") >= 1, "{to}");
    assert!(icmp_counter(&lo, "punts_ttl_expired") >= 1, "{lo}");
    assert!(icmp_counter(&lo, "punts_frag_needed") >= 1, "{lo}");
    assert!(icmp_counter(&lo, "sent") >= 2, "{lo}");
}
