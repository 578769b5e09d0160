//! Bandwidth sharing end to end (seed 003): three ispmux processes — headend, transit,
//! tailend — on net_af_packet over veth pairs in network namespaces. Two subscribers of two
//! ISPs ping and transfer over TCP to their ISP's server; tshark on the core links sees each
//! ISP's label on each hop; per-ISP counters at headend and tailend agree; nothing leaks
//! between the ISPs.
//!
//! No FEC, swap or hand-off entry names a MAC: every next hop and ISP router is an address on
//! a link, resolved by ARP through the routed ports' kernel twins. Each routed port has its
//! own `mac`, another than its veth's (`…:0N` against `…:8N`), so in a gateway's namespace
//! only the twin's kernel takes the port's frames (the veths also ignore ARP for the twins'
//! addresses); the peers learn the port MACs from ARP the twins answer.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ispmux_tests::chain::{
    headend_ports, tailend_ports, topology, transit_ports, Topology, EAL, HEAD_CORE0, TAIL_CORE0,
    TAIL_H0, TAIL_H1, TRANSIT_C0, TRANSIT_C1,
};
use ispmux_tests::netns::{veth, End, Netns};
use ispmux_tests::node::{control, start, wait_resolved};
use ispmux_tests::{ispmux_bin, Daemon, TempDir};

const HEADEND_TABLES: &str = r#"
[tables.limits]
max_subscribers = 1024
max_isps = 4

[[tables.isps]]
id = 1
name = "isp-a"
gateway = "198.18.1.1"
upstream = { label = 1001, port = "core0", next_hop = "10.0.12.2" }

[[tables.isps]]
id = 2
name = "isp-b"
gateway = "198.18.2.1"
upstream = { label = 1002, port = "core0", next_hop = "10.0.12.2" }

[[tables.ilm]]
label = 4001
action = { kind = "pop_deliver", isp = 1 }

[[tables.ilm]]
label = 4002
action = { kind = "pop_deliver", isp = 2 }

[[tables.subscribers]]
port = "acc0"
mac = "02:00:00:aa:00:01"
isp = 1
ipv4 = "198.18.1.10"

[[tables.subscribers]]
port = "acc1"
mac = "02:00:00:bb:00:01"
isp = 2
ipv4 = "198.18.2.10"
"#;

const TRANSIT_TABLES: &str = r#"
[[tables.ilm]]
label = 1001
action = { kind = "swap", out_label = 2001, port = "c1", next_hop = "10.0.23.2" }

[[tables.ilm]]
label = 1002
action = { kind = "swap", out_label = 2002, port = "c1", next_hop = "10.0.23.2" }

[[tables.ilm]]
label = 3001
action = { kind = "swap", out_label = 4001, port = "c0", next_hop = "10.0.12.1" }

[[tables.ilm]]
label = 3002
action = { kind = "swap", out_label = 4002, port = "c0", next_hop = "10.0.12.1" }
"#;

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

/// The transit and the tailend, the same in every test.
fn start_core(t: &Topology, d: &TempDir) -> (Daemon, Daemon) {
    let transit = format!(
        "{EAL}{}{TRANSIT_TABLES}{}",
        transit_ports(),
        control(d, "transit")
    );
    let tail = format!(
        "{EAL}{}{TAILEND_TABLES}{}",
        tailend_ports(),
        control(d, "tailend")
    );
    (
        start(&t.transit, d, "transit", transit),
        start(&t.tail, d, "tailend", tail),
    )
}

fn ping(ns: &Netns, dst: &str, count: u32) -> Output {
    ns.command("ping")
        .args(["-c", &count.to_string(), "-i", "0.02", "-W", "1", dst])
        .output()
        .expect("ping")
}

/// The per-ISP JSON lines of an exit report, by ISP name.
fn isp_counters(out: &str, name: &str) -> serde_json::Value {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no counters for {name} in:\n{out}"))
}

fn packets(v: &serde_json::Value, dir: &str) -> u64 {
    v[dir]["packets"].as_u64().expect("packets")
}

#[test]
fn two_isps_ride_their_labels_through_headend_transit_tailend() {
    let t = topology(true);
    let d = TempDir::new("mpls-chain");
    let head = start(
        &t.head,
        &d,
        "headend",
        format!(
            "{EAL}{}{HEADEND_TABLES}{}",
            headend_ports(),
            control(&d, "headend")
        ),
    );
    let (transit, tail) = start_core(&t, &d);

    // Labels on both core hops, captured while the traffic below runs. af_packet sends
    // around the kernel's taps (qdisc bypass), so each end of a link sees only what it
    // receives: capture both ends of each link.
    let capture = |ns: &Netns, dev: &str, file: &str| {
        Daemon::new(
            ns.command("dumpcap")
                .args(["-q", "-i", dev, "-w"])
                .arg(d.join(file))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("dumpcap"),
        )
    };
    let caps = [
        capture(&t.head, "core0", "hop1-head.pcap"),
        capture(&t.transit, "c0", "hop1-transit.pcap"),
        capture(&t.transit, "c1", "hop2-transit.pcap"),
        capture(&t.tail, "core0", "hop2-tail.pcap"),
        capture(&t.isp_a, "eth0", "isp-a.pcap"),
        capture(&t.isp_b, "eth0", "isp-b.pcap"),
    ];

    // First ping: the nodes take a moment to start and resolve each other (about 3 s
    // here; CI machines are slower, and this test measures no start-up time).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ping(&t.sub_a, "198.18.1.2", 1).status.success() {
        assert!(
            Instant::now() < deadline,
            "subscriber A never reached ISP A"
        );
    }
    while !ping(&t.sub_b, "198.18.2.2", 1).status.success() {
        assert!(
            Instant::now() < deadline,
            "subscriber B never reached ISP B"
        );
    }
    let a = ping(&t.sub_a, "198.18.1.2", 20);
    assert!(
        String::from_utf8_lossy(&a.stdout).contains("20 received"),
        "{a:?}"
    );
    let b = ping(&t.sub_b, "198.18.2.2", 10);
    assert!(
        String::from_utf8_lossy(&b.stdout).contains("10 received"),
        "{b:?}"
    );
    // Nothing leaks: A's subscriber cannot reach B's ISP, nor B's subscriber A's.
    assert!(!ping(&t.sub_a, "198.18.2.2", 2).status.success());
    assert!(!ping(&t.sub_b, "198.18.1.2", 2).status.success());

    // A TCP transfer of 1 MiB from ISP A's server to subscriber A, checked byte for byte.
    let server = t
        .isp_a
        .command("python3")
        .args([
            "-c",
            "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('198.18.1.2',5001))\ns.listen(1)\nc,_=s.accept()\n\
             c.sendall(bytes(i%251 for i in range(1<<20)))\nc.close()",
        ])
        .spawn()
        .expect("server");
    // The client retries while the server is still starting (python in a namespace can take
    // longer than any fixed pause on a loaded machine): refused, not lost, is what it waits out.
    let client = t
        .sub_a
        .command("python3")
        .args([
            "-c",
            "import socket,time\nfor n in range(100):\n try:\n  s=socket.create_connection(('198.18.1.2',5001),timeout=10)\n  break\n except ConnectionRefusedError:\n  if n==99: raise\n  time.sleep(0.1)\nb=b''\n\
             while True:\n d=s.recv(65536)\n if not d: break\n b+=d\n\
             assert b==bytes(i%251 for i in range(1<<20)), len(b)\nprint('ok',len(b))",
        ])
        .output()
        .expect("client");
    assert!(
        String::from_utf8_lossy(&client.stdout).contains("ok 1048576"),
        "{client:?}"
    );
    let _ = server.wait_with_output();

    // Every next hop and ISP router was resolved by ARP through the twins: the headend's one
    // (the transit), the transit's two, the tailend's three (the transit's port and the two
    // ISP routers). Asked while all run: a node stopping leaves its neighbours' probes
    // unanswered.
    for (node, n) in [("headend", 1), ("transit", 2), ("tailend", 3)] {
        wait_resolved(&d, node, n);
    }

    // Let the last segments and the connection's close settle before reading counters
    // at both ends: a frame still in flight would be counted at one end only.
    std::thread::sleep(Duration::from_secs(1));
    let head = head.stop();
    let transit = transit.stop();
    let tail = tail.stop();
    for c in caps {
        let _ = c.stop();
    }
    let (ho, to, lo) = (
        String::from_utf8_lossy(&head.stdout).to_string(),
        String::from_utf8_lossy(&transit.stdout).to_string(),
        String::from_utf8_lossy(&tail.stdout).to_string(),
    );
    assert!(
        head.status.success() && transit.status.success() && tail.status.success(),
        "{ho}\n{to}\n{lo}"
    );

    // Per-ISP counters (claims 15-17): what the headend sent upstream for an ISP is what the
    // tailend handed to it, and the reverse; B saw its pings only.
    for isp in ["isp-a", "isp-b"] {
        let (h, l) = (isp_counters(&ho, isp), isp_counters(&lo, isp));
        assert_eq!(
            h["headend_up"], l["tailend_up"],
            "{isp} upstream:\n{ho}\n{lo}"
        );
        assert_eq!(
            h["headend_down"], l["tailend_down"],
            "{isp} downstream:\n{ho}\n{lo}"
        );
    }
    let b_head = isp_counters(&ho, "isp-b");
    // B's subscriber sent 1 + 10 answered echo requests, and 2 toward A's server that ride
    // B's label into B's network (its ISP) and die there; A's 2 toward B's server likewise
    // stay in A. Only B's 11 answers come back.
    assert_eq!(packets(&b_head, "headend_up"), 13, "{ho}");
    assert_eq!(packets(&b_head, "headend_down"), 11, "{ho}");
    assert!(
        packets(&isp_counters(&ho, "isp-a"), "headend_down") > 700,
        "1 MiB in segments: {ho}"
    );

    // tshark: ISP A's labels on each hop, ISP B's too, and each hop only carries its own.
    let labels = |files: &[&str]| -> Vec<u64> {
        let mut v: Vec<u64> = Vec::new();
        for file in files {
            let out = Command::new("tshark")
                .args(["-r"])
                .arg(d.join(file))
                .args(["-Y", "mpls", "-T", "fields", "-e", "mpls.label"])
                .output()
                .expect("tshark -r");
            v.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter_map(|l| l.trim().parse::<u64>().ok()),
            );
        }
        v.sort_unstable();
        v.dedup();
        v
    };
    assert!(
        lo.contains("arp_replies ") && !lo.contains("arp_replies 0 "),
        "the tailend answered the ISPs' ARP: {lo}"
    );
    // Each frame a node sent went to the MAC its twin resolved for the next hop (the peer
    // port's own, never its veth's), and none to 00:00:00:00:00:00.
    let destinations = |file: &str, filter: &str| -> Vec<String> {
        let out = Command::new("tshark")
            .args(["-r"])
            .arg(d.join(file))
            .args(["-Y", filter, "-T", "fields", "-e", "eth.dst"])
            .output()
            .expect("tshark -r");
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    for (file, from, to) in [
        ("hop1-head.pcap", TRANSIT_C0, HEAD_CORE0),
        ("hop1-transit.pcap", HEAD_CORE0, TRANSIT_C0),
        ("hop2-transit.pcap", TAIL_CORE0, TRANSIT_C1),
        ("hop2-tail.pcap", TRANSIT_C1, TAIL_CORE0),
        ("isp-a.pcap", TAIL_H0, "02:00:00:0a:00:01"),
        ("isp-b.pcap", TAIL_H1, "02:00:00:0b:00:01"),
    ] {
        assert_eq!(
            destinations(
                file,
                &format!("eth.src == {from} && (mpls || ip) && !(ip.dst == 224.0.0.0/4)")
            ),
            vec![to],
            "{file}"
        );
        assert!(
            destinations(file, "eth.dst == 00:00:00:00:00:00").is_empty(),
            "{file}: a frame to the zero MAC"
        );
    }
    assert_eq!(
        labels(&["hop1-head.pcap", "hop1-transit.pcap"]),
        vec![1001, 1002, 4001, 4002]
    );
    assert_eq!(
        labels(&["hop2-transit.pcap", "hop2-tail.pcap"]),
        vec![2001, 2002, 3001, 3002]
    );
}

/// Kea for ISP A in its namespace on the control link, with a reservation keyed on the
/// circuit-id the gateway adds (access port 0, untagged: "0:0").
fn start_kea(ns: &Netns, dir: &TempDir) -> Daemon {
    let cfg = serde_json::json!({ "Dhcp4": {
        "interfaces-config": { "interfaces": ["ctl/198.18.100.2"], "dhcp-socket-type": "udp" },
        "lease-database": { "type": "memfile", "persist": false },
        "valid-lifetime": 600,
        "host-reservation-identifiers": ["circuit-id"],
        "subnet4": [{
            "id": 1,
            "subnet": "198.18.1.0/24",
            "pools": [{ "pool": "198.18.1.100 - 198.18.1.150" }],
            "option-data": [{ "name": "routers", "data": "198.18.1.1" }],
            "reservations": [{ "circuit-id": "'0:0'", "ip-address": "198.18.1.77" }]
        }]
    }});
    let path = dir.join("kea.json");
    std::fs::write(&path, cfg.to_string()).expect("kea config");
    let d = Daemon::new(
        ns.command("kea-dhcp4")
            .arg("-c")
            .arg(&path)
            .env("KEA_LOCKFILE_DIR", &dir.0)
            .env("KEA_PIDFILE_DIR", &dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("kea-dhcp4"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(
        &ns.command("ss")
            .args(["-Hlun"])
            .output()
            .expect("ss")
            .stdout,
    )
    .contains("198.18.100.2:67")
    {
        assert!(Instant::now() < deadline, "kea-dhcp4 did not bind");
        std::thread::sleep(Duration::from_millis(50));
    }
    d
}

/// The udhcpc hook of these tests: configures the lease on bound/renew, nothing else.
fn udhcpc_hook(dir: &TempDir) -> std::path::PathBuf {
    let hook = dir.join("udhcpc-hook.sh");
    std::fs::write(
        &hook,
        "#!/bin/sh\ncase \"$1\" in bound|renew)\n ip addr flush dev \"$interface\"\n \
         ip addr add \"$ip/$mask\" dev \"$interface\"\n \
         ip route replace default via \"$router\" dev \"$interface\";;\nesac\n",
    )
    .expect("hook");
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    hook
}

const UDHCPC_LOGON: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../slowpath/logon/udhcpc-ispmux.sh"
);

/// udhcpc through the shipped logon script (customer id and password in options 224/225),
/// with a hook that configures the lease; returns whether it got one.
/// `tries` DISCOVERs a second apart: refusals are silent to the client, so negative cases
/// pass few while positive ones may retry under load.
fn logon(ns: &Netns, dir: &TempDir, customer: &str, password: &str, tries: &str) -> bool {
    let hook = udhcpc_hook(dir);
    let script = UDHCPC_LOGON;
    ns.command("sh")
        .args([
            script, "eth0", customer, password, "-f", "-q", "-n", "-t", tries, "-T", "1", "-s",
        ])
        .arg(&hook)
        .output()
        .expect("udhcpc")
        .status
        .success()
}

/// The logon proxy end to end (seeds 000/001): an unregistered subscriber gets no lease and a
/// refusal is recorded; once its ISP registers it, its real DHCP client logs on through the
/// gateway, ISP A's Kea sees the extended request (its circuit-id reservation answers), the
/// binding is installed in the fast path and the subscriber reaches ISP A over A's labels.
#[test]
fn dhcp_logon_through_the_gateway_then_traffic_rides_the_isps_label() {
    let t = topology(false);
    // The gateway's kernel side toward ISP A's DHCP server (the ISP-side transport).
    veth(
        End {
            ns: &t.head,
            dev: "ctl",
            mac: "02:00:00:01:00:10",
        },
        End {
            ns: &t.isp_a,
            dev: "ctl",
            mac: "02:00:00:0a:00:10",
        },
    );
    t.head.addr("ctl", "198.18.100.1/24");
    t.isp_a.addr("ctl", "198.18.100.2/24");
    let d = TempDir::new("dhcp-chain");
    let _kea = start_kea(&t.isp_a, &d);
    // The per-subscriber rate limit is raised: this test sends refused logons on purpose and
    // then logs on again at once (the limit itself is tested in the engine's tests).
    let dhcp = format!(
        "\n[dhcp]\nrelay_address = \"198.18.100.1\"\nserver_identifier = \"198.18.1.1\"\n\
         require_credential = true\n\n[[dhcp.isps]]\nname = \"isp-a\"\nservers = [\"198.18.100.2\"]\n\
         link_selection = \"198.18.1.1\"\n\n\
         [dhcp.rate_limit]\nper_second = 50.0\nburst = 100\n\n[store]\npath = \"{}\"\n\n[control]\nsocket = \"{}\"\n",
        d.join("ispmux.db").display(),
        d.join("headend.sock").display()
    );
    // A is registered by its ISP (below), not preloaded: the logon installs it.
    let head_tables = HEADEND_TABLES.replace(
        "[[tables.subscribers]]\nport = \"acc0\"\nmac = \"02:00:00:aa:00:01\"\nisp = 1\nipv4 = \"198.18.1.10\"\n",
        "",
    );
    let head_conf = format!("{EAL}{}{head_tables}{dhcp}", headend_ports());
    let head = start(&t.head, &d, "headend", head_conf);
    let _core = start_core(&t, &d);
    let conf = d.join("headend.toml");
    // `ispmux COMMAND -c FILE [ARGS...]`
    let cli = |args: &[&str]| {
        let out = Command::new(ispmux_bin())
            .arg(args[0])
            .arg("-c")
            .arg(&conf)
            .args(&args[1..])
            .output()
            .expect("cli");
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    std::thread::sleep(Duration::from_secs(1));

    // Not registered yet: no lease, and the refusal is on record.
    assert!(
        !logon(&t.sub_a, &d, "C1", "secret", "3"),
        "an unregistered MAC got a lease"
    );
    let refusals = cli(&["refusals"]);
    assert!(refusals.contains("02:00:00:aa:00:01"), "{refusals}");

    // The ISP registers its subscriber; a wrong password is refused, the right one logs on.
    let out = Command::new(ispmux_bin())
        .args(["subscriber", "-c"])
        .arg(&conf)
        .args([
            "add",
            "--mac",
            "02:00:00:aa:00:01",
            "--isp",
            "isp-a",
            "--customer-id",
            "C1",
            "--password",
            "secret",
        ])
        .output()
        .expect("subscriber add");
    assert!(out.status.success(), "{out:?}");
    assert!(
        !logon(&t.sub_a, &d, "C1", "wrong", "3"),
        "a wrong password got a lease"
    );
    assert!(
        logon(&t.sub_a, &d, "C1", "secret", "15"),
        "the registered subscriber got no lease"
    );
    let addr = t.sub_a.ip(&["-4", "-br", "addr", "show", "dev", "eth0"]);
    assert!(
        String::from_utf8_lossy(&addr.stdout).contains("198.18.1.77/24"),
        "Kea's circuit-id reservation answered: {addr:?}"
    );
    let list = cli(&["subscriber", "list"]);
    assert!(
        list.contains("02:00:00:aa:00:01,isp-a,C1,active,198.18.1.77,"),
        "{list}"
    );

    // The binding is in the fast path: A reaches ISP A's server over A's labels.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ping(&t.sub_a, "198.18.1.2", 1).status.success() {
        assert!(
            Instant::now() < deadline,
            "subscriber A never reached ISP A after its logon"
        );
    }
    let a = ping(&t.sub_a, "198.18.1.2", 10);
    assert!(
        String::from_utf8_lossy(&a.stdout).contains("10 received"),
        "{a:?}"
    );

    // Logging on again at once renews the same lease through the gateway. (This failed
    // about 1 run in 3 under full-suite load while every credentialed message cost an Argon2
    // verification on the slow path: most of a second each in a debug build, queued behind
    // each other as the client retransmitted, until udhcpc's three REQUESTs went unanswered;
    // the credential cache answers the same credential again without one.)
    assert!(logon(&t.sub_a, &d, "C1", "secret", "15"), "second logon");
    let a = ping(&t.sub_a, "198.18.1.2", 3);
    assert!(
        String::from_utf8_lossy(&a.stdout).contains("3 received"),
        "{a:?}"
    );

    // A real client's RELEASE through the DPDK path: udhcpc stays bound (no -q: with -q
    // busybox quits without ever sending the RELEASE its -R asks for) and releases on
    // SIGTERM, unicast to the server identifier; the headend punts it, and the binding
    // leaves the registry and the fast path.
    t.sub_a.ip(&["addr", "flush", "dev", "eth0"]);
    let hook = udhcpc_hook(&d);
    let client = Daemon::new(
        t.sub_a
            .command("sh")
            .args([
                UDHCPC_LOGON,
                "eth0",
                "C1",
                "secret",
                "-f",
                "-R",
                "-t",
                "15",
                "-T",
                "1",
                "-s",
            ])
            .arg(&hook)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("udhcpc"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(
        &t.sub_a
            .ip(&["-4", "-br", "addr", "show", "dev", "eth0"])
            .stdout,
    )
    .contains("198.18.1.77/24")
    {
        assert!(Instant::now() < deadline, "udhcpc -R got no lease");
        std::thread::sleep(Duration::from_millis(50));
    }
    let released = client.stop();
    let log = String::from_utf8_lossy(&released.stderr).to_string();
    assert!(log.contains("unicasting a release"), "{log}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list = cli(&["subscriber", "list"]);
        if list.contains("02:00:00:aa:00:01,isp-a,C1,active,,") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the RELEASE did not remove the binding: {list}\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !ping(&t.sub_a, "198.18.1.2", 2).status.success(),
        "traffic after the release"
    );

    // Back on, for the ISP's removal below.
    assert!(
        logon(&t.sub_a, &d, "C1", "secret", "15"),
        "logon after release"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ping(&t.sub_a, "198.18.1.2", 1).status.success() {
        assert!(
            Instant::now() < deadline,
            "no traffic after logging on again"
        );
    }

    // The ISP removes its subscriber: the binding leaves the running gateway at once.
    let removed = cli(&["subscriber", "remove", "--mac", "02:00:00:aa:00:01"]);
    assert!(
        removed.contains("withdrawn from the running gateway"),
        "{removed}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !ping(&t.sub_a, "198.18.1.2", 2).status.success(),
        "traffic after removal"
    );

    let out = head.stop();
    let ho = String::from_utf8_lossy(&out.stdout).to_string();
    // One install per ACK: three logons (a client may retransmit its REQUEST and get a
    // second ACK, which refreshes the same binding); removed by the RELEASE and by the ISP.
    let count = |key: &str| -> u64 {
        ho.split_whitespace()
            .skip_while(|w| *w != key)
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {ho}"))
    };
    assert!(count("bindings_installed") >= 3, "{ho}");
    assert_eq!(count("bindings_removed"), 2, "{ho}");
    assert!(
        packets(&isp_counters(&ho, "isp-a"), "headend_up") >= 11,
        "{ho}"
    );
}
