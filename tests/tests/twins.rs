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

#[test]
fn neighbours_ping_the_gateway_through_its_kernel_twins() {
    let d = TempDir::new("twins");
    let gw = Netns::new("twin-gw");
    let core = Netns::new("twin-core");
    let isp = Netns::new("twin-isp");
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

    let f = d.join("gw.toml");
    std::fs::write(&f, config(&d)).expect("write config");
    let daemon = Daemon::new(
        gw.command(ispmux_bin().to_str().expect("path"))
            .args(["run", "-c"])
            .arg(&f)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ispmux"),
    );
    wait_for_link(&gw, "ispmux-core0");
    wait_for_link(&gw, "twin-h0");

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
