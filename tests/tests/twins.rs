//! Kernel twins end to end: a tailend-like ispmux (a core port and a hand-off port, each with
//! an address) on net_af_packet over veth pairs in a namespace of its own; a core neighbour
//! and an ISP router, each a namespace with a plain kernel interface, ping the gateway's
//! addresses. The fast path punts those pings, the slow path writes them to the ports' TAP
//! twins, the gateway namespace's kernel answers (ARP and ICMP), and the answers leave by the
//! ports; the kernel learns its neighbours from the ARP it now sees.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ispmux_tests::netns::{veth, End, Netns};
use ispmux_tests::{ispmux_bin, Daemon, TempDir};

/// The port MACs differ from their veths' own (`…:77:…` against `…:76:…`): frames for a
/// port are then not for the veth, so the gateway namespace's kernel sees them only through
/// the twin and never answers twice (see `gateway`).
fn config(d: &TempDir) -> String {
    config_with(d, "", "")
}

/// [`config`] with lines added to the core port and to the tables.
fn config_with(d: &TempDir, core_port: &str, tables: &str) -> String {
    format!(
        r#"
[eal]
lcores = [0, 1]
memory_mb = 256
hugepages = "off"
file_prefix = "twin-e2e-{pid}"

[dataplane]
pipeline = "node"
idle_sleep = "on"

[control]
socket = "{sock}"

[[port]]
name = "core0"
device = "net_af_packet0,iface=core0"
role = "core"
mtu = 1600
mac = "02:00:00:77:00:01"
address = "198.18.9.1/30"
{core_port}

[[port]]
name = "h0"
device = "net_af_packet1,iface=h0"
role = "handoff"
mac = "02:00:00:77:00:02"
address = "198.18.200.1/24"
twin = "twin-h0"

[[tables.isps]]
id = 1
name = "isp-a"
downstream = {{ label = 3001, port = "core0", next_hop = "02:00:00:02:00:02" }}
handoff = [{{ port = "h0" }}]
{tables}
"#,
        pid = std::process::id(),
        sock = d.join("ctl.sock").display(),
    )
}

/// The gateway's namespace: its veths carry no address and answer no ARP for the twins'
/// addresses (arp_ignore, as on a host whose af_packet ports are also kernel interfaces).
fn gateway(gw: &Netns) {
    for dev in ["core0", "h0"] {
        let out = gw
            .command("sysctl")
            .args(["-qw", &format!("net.ipv4.conf.{dev}.arp_ignore=1")])
            .output()
            .expect("sysctl");
        assert!(out.status.success(), "{out:?}");
    }
}

fn ping(ns: &Netns, dst: &str, count: u32) -> Output {
    ns.command("ping")
        .args(["-c", &count.to_string(), "-i", "0.05", "-W", "2", dst])
        .output()
        .expect("ping")
}

/// `n packets transmitted, m received`: (n, m), and whether ping saw duplicates.
fn ping_counts(out: &Output) -> (u32, u32, bool) {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no summary in {text}"));
    let num = |word: &str| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words
            .iter()
            .position(|w| w.trim_end_matches(',') == word)
            .and_then(|i| words.get(i - 1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (
        num("packets"),
        num("received"),
        line.contains("duplicates") || text.contains("DUP!"),
    )
}

/// A counter of the exit report's `slowpath` line.
fn slowpath_counter(report: &str, name: &str) -> u64 {
    let line = report
        .lines()
        .find(|l| l.starts_with("slowpath "))
        .unwrap_or_else(|| panic!("no slowpath line in:\n{report}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .iter()
        .position(|w| *w == name)
        .and_then(|i| words.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

fn wait_for_link(ns: &Netns, dev: &str) {
    let start = Instant::now();
    loop {
        // A TAP's operational state is UNKNOWN: the flags say whether it is up.
        let out = Command::new("ip")
            .args(["-n", &ns.name, "addr", "show", "dev", dev])
            .output()
            .expect("ip");
        let text = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && text.contains(",UP") && text.contains("inet ") {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "twin {dev} never came up: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The gateway's, the core neighbour's and the ISP router's namespaces, joined by veths.
fn topology(tag: &str) -> (Netns, Netns, Netns) {
    let gw = Netns::new(&format!("{tag}-gw"));
    let core = Netns::new(&format!("{tag}-core"));
    let isp = Netns::new(&format!("{tag}-isp"));
    veth(
        End {
            ns: &gw,
            dev: "core0",
            mac: "02:00:00:76:00:01",
        },
        End {
            ns: &core,
            dev: "eth0",
            mac: "02:00:00:02:00:02",
        },
    );
    veth(
        End {
            ns: &gw,
            dev: "h0",
            mac: "02:00:00:76:00:02",
        },
        End {
            ns: &isp,
            dev: "eth0",
            mac: "02:00:00:0a:00:01",
        },
    );
    core.addr("eth0", "198.18.9.2/30");
    isp.addr("eth0", "198.18.200.2/24");
    gateway(&gw);
    (gw, core, isp)
}

/// Runs the gateway of `conf` in `gw` until both twins are up.
fn run_gateway(d: &TempDir, gw: &Netns, conf: String) -> Daemon {
    let f = d.join("gw.toml");
    std::fs::write(&f, conf).expect("write config");
    let daemon = Daemon::new(
        gw.command(ispmux_bin().to_str().expect("path"))
            .args(["run", "-c"])
            .arg(&f)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ispmux"),
    );
    wait_for_link(gw, "ispmux-core0");
    wait_for_link(gw, "twin-h0");
    daemon
}

#[test]
fn neighbours_ping_the_gateway_through_its_kernel_twins() {
    let d = TempDir::new("twins");
    let (gw, core, isp) = topology("twin");
    let daemon = run_gateway(&d, &gw, config(&d));

    let from_core = ping(&core, "198.18.9.1", 5);
    let from_isp = ping(&isp, "198.18.200.1", 5);
    // Neighbours the kernel learned from the ARP it answered (and its own requests).
    let neigh = gw.ip(&["neigh", "show"]);
    let neigh = String::from_utf8_lossy(&neigh.stdout).into_owned();
    let out = daemon.stop();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let ctx = format!(
        "core ping: {}\nisp ping: {}\nneigh: {neigh}\nreport:\n{report}\nstderr:\n{}",
        String::from_utf8_lossy(&from_core.stdout),
        String::from_utf8_lossy(&from_isp.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        ping_counts(&from_core),
        (5, 5, false),
        "every ping to the core address answered, once: {ctx}"
    );
    assert_eq!(
        ping_counts(&from_isp),
        (5, 5, false),
        "every ping to the hand-off address answered, once: {ctx}"
    );
    for (addr, mac, dev) in [
        ("198.18.9.2", "02:00:00:02:00:02", "ispmux-core0"),
        ("198.18.200.2", "02:00:00:0a:00:01", "twin-h0"),
    ] {
        assert!(
            neigh
                .lines()
                .any(|l| l.starts_with(&format!("{addr} dev {dev} lladdr {mac}"))),
            "the kernel knows {addr} on {dev}: {ctx}"
        );
    }
    // Ten echo requests and at least their ARP went in; ten replies and at least one ARP
    // each way came out; nothing was dropped.
    assert!(slowpath_counter(&report, "to_twin") >= 12, "{ctx}");
    assert!(slowpath_counter(&report, "from_twin") >= 12, "{ctx}");
    assert_eq!(slowpath_counter(&report, "to_twin_drops"), 0, "{ctx}");
    assert_eq!(slowpath_counter(&report, "from_twin_drops"), 0, "{ctx}");
    // The responder answered nothing: the twins' kernel did (no proxy_arp here).
    assert_eq!(slowpath_counter(&report, "arp_replies"), 0, "{ctx}");
    // Gone with the gateway.
    let links = gw.ip(&["-br", "link"]);
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(
        !links.contains("ispmux-core0") && !links.contains("twin-h0"),
        "{links}"
    );
}

/// Echo requests the ISP router's kernel took (`Icmp: InEchos` of its /proc/net/snmp).
fn in_echos(ns: &Netns) -> u64 {
    let out = ns
        .command("cat")
        .arg("/proc/net/snmp")
        .output()
        .expect("snmp");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut icmp = text.lines().filter(|l| l.starts_with("Icmp: "));
    let (names, values) = (icmp.next().unwrap_or(""), icmp.next().unwrap_or(""));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "InEchos")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no InEchos in {text}"))
}

/// A number of `ispmux ctl --json stats` of the gateway behind `d`'s `ctl.sock`.
fn stat(d: &TempDir, pointer: &str) -> u64 {
    let out = Command::new(ispmux_bin())
        .args(["ctl", "--json", "-s"])
        .arg(d.join("ctl.sock"))
        .arg("stats")
        .output()
        .expect("ctl");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v.pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("no {pointer} in {v}"))
}

/// Penultimate-hop popping: a core neighbour that popped the last label sends plain IPv4.
/// With `implicit_null_label` the tailend's core port takes it as that label (pop and hand
/// off to ISP A's router, counted for ISP A); without, it is `not_mpls`. The core neighbour
/// is a kernel routing toward the ISP's network through the tailend's core address, which is
/// what a PHP router puts on the wire.
#[test]
fn a_core_neighbour_that_popped_the_label_reaches_the_isp_with_implicit_null() {
    let d = TempDir::new("twins-php");
    let (gw, core, isp) = topology("php");
    // IPv6 chatter (router solicitations, MLD) on a core port is `not_mpls` too, and
    // af_packet also takes what the gateway namespace's own veth sends: off, so the counts
    // below are the pings'.
    for (ns, dev) in [(&core, "eth0"), (&isp, "eth0"), (&gw, "core0"), (&gw, "h0")] {
        ns.sysctl("net.ipv6.conf.all.disable_ipv6=1");
        ns.sysctl(&format!("net.ipv6.conf.{dev}.disable_ipv6=1"));
    }
    // The ISP's network behind its router, and its way back toward the tailend.
    assert!(isp
        .ip(&["addr", "add", "203.0.113.1/32", "dev", "lo"])
        .status
        .success());
    assert!(isp
        .ip(&["route", "add", "default", "via", "198.18.200.1"])
        .status
        .success());
    assert!(core
        .ip(&["route", "add", "203.0.113.0/24", "via", "198.18.9.1"])
        .status
        .success());
    let ilm = "\n[[tables.ilm]]\nlabel = 5001\n\
               action = { kind = \"pop_handoff\", isp = 1, port = \"h0\", router = \"198.18.200.2\" }\n";
    let pings = |n: u32| {
        core.command("ping")
            .args(["-c", &n.to_string(), "-i", "0.1", "-W", "1", "203.0.113.1"])
            .output()
            .expect("ping")
    };

    // Counted around the pings.
    let up = "/pipeline/isps/0/tailend_up/packets";
    let not_mpls = "/drops/not_mpls";
    let run = |core_port: &str| {
        let daemon = run_gateway(&d, &gw, config_with(&d, core_port, ilm));
        ispmux_tests::node::wait_resolved(&d, "ctl", 1);
        let before = (in_echos(&isp), stat(&d, up), stat(&d, not_mpls));
        // The replies go back labelled (ISP A's downstream label): the core namespace, a
        // kernel without MPLS, drops them, so only the requests are counted.
        pings(5);
        let after = (in_echos(&isp), stat(&d, up), stat(&d, not_mpls));
        let out = daemon.stop();
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        (
            after.0 - before.0,
            after.1 - before.1,
            after.2 - before.2,
            report,
        )
    };

    let (reached, up, not_mpls, report) = run("implicit_null_label = 5001");
    assert_eq!(
        (reached, up, not_mpls),
        (5, 5, 0),
        "every request reached ISP A's router, counted for ISP A:\n{report}"
    );
    // Without the option the same frames are not for a label switch.
    let (reached, up, not_mpls, report) = run("");
    assert_eq!((reached, up, not_mpls), (0, 0, 5), "{report}");
}
