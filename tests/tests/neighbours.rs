//! Next hops given by address (issue 16): a headend whose upstream FEC names its next hop by
//! IPv4 address, resolved through the kernel's neighbour table of the core port's twin.
//!
//! The core port (net_af_packet on a veth) has its kernel twin `ispmux-core0` with the
//! port's address: the kernel ARPs from the twin, the slow path carries the requests out of
//! the port and the replies back. The peer is a namespace at the far end of that link. The test walks
//! a next hop through its life while a subscriber pings through the headend:
//! - no neighbour yet (the peer has no address): every frame is a `no_neighbour` drop;
//! - the peer takes the address: the resolver learns its MAC (retried every second) and
//!   the frames reach the peer;
//! - the peer changes its MAC and announces it (gratuitous ARP, `arp_notify`): one table
//!   update per entry, the frames follow the new MAC within a second, none to the old one
//!   after that;
//! - the peer loses its address (stops answering ARP): the entry goes FAILED within
//!   seconds and the frames are `no_neighbour` drops again.
//!
//! No frame ever leaves toward 00:00:00:00:00:00 (tshark on the peer's side).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ispmux_tests::netns::{veth, End, Netns};
use ispmux_tests::{ispmux_bin, Daemon, TempDir};

const GW_CORE_MAC: &str = "02:00:00:01:00:03";
/// The veth under the core port: another MAC than the port's, so the gateway namespace's
/// kernel never takes the port's frames itself (only its twin does).
const GW_VETH_MAC: &str = "02:00:00:01:00:83";
const PEER_MAC: &str = "02:00:00:09:00:02";
const PEER_MAC_NEW: &str = "02:00:00:09:00:22";

fn config(sock: &std::path::Path) -> String {
    format!(
        r#"
[eal]
lcores = [0, 1]
memory_mb = 256
hugepages = "off"
file_prefix = "neigh-e2e"

[dataplane]
pipeline = "node"
idle_sleep = "on"

[control]
socket = "{sock}"

[[port]]
name = "acc0"
device = "net_af_packet0,iface=acc0"
role = "access"
mtu = 1500

[[port]]
name = "core0"
device = "net_af_packet1,iface=neigh-c0"
role = "core"
mtu = 1600
mac = "{GW_CORE_MAC}"
address = "10.9.0.1/24"

[[tables.isps]]
id = 1
name = "isp-a"
gateway = "198.18.1.1"
upstream = {{ label = 1001, port = "core0", next_hop = "10.9.0.2" }}

[[tables.subscribers]]
port = "acc0"
mac = "02:00:00:aa:00:01"
isp = 1
ipv4 = "198.18.1.10"
"#,
        sock = sock.display()
    )
}

fn stats(sock: &std::path::Path) -> Option<serde_json::Value> {
    let out = Command::new(ispmux_bin())
        .args(["ctl", "--json", "-s"])
        .arg(sock)
        .arg("stats")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

/// The number at JSON pointer-like `path` (array indexes as numbers).
fn num(s: &serde_json::Value, path: &[&str]) -> u64 {
    s.pointer(&format!("/{}", path.join("/")))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("no {path:?} in {s:#}"))
}

/// Waits until `ok` holds of the stats; returns the time it took.
fn wait_for(
    sock: &std::path::Path,
    what: &str,
    within: Duration,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> Duration {
    let t0 = Instant::now();
    loop {
        let s = stats(sock);
        if s.as_ref().is_some_and(&ok) {
            return t0.elapsed();
        }
        assert!(t0.elapsed() < within, "{what}: {s:#?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[test]
fn next_hop_by_address_is_resolved_followed_and_lost() {
    let (sub, gw, peer) = (
        Netns::new("neigh-sub"),
        Netns::new("neigh-gw"),
        Netns::new("neigh-pe"),
    );
    let e = |ns, dev, mac| End { ns, dev, mac };
    veth(
        e(&sub, "eth0", "02:00:00:aa:00:01"),
        e(&gw, "acc0", "02:00:00:01:00:01"),
    );
    veth(e(&gw, "neigh-c0", GW_VETH_MAC), e(&peer, "eth0", PEER_MAC));
    for (ns, dev) in [(&gw, "neigh-c0"), (&peer, "eth0")] {
        ns.ip(&["link", "set", dev, "mtu", "1600"]);
    }
    sub.addr("eth0", "198.18.1.10/24");
    sub.ip(&["route", "add", "default", "via", "198.18.1.1"]);
    // The peer announces a new MAC by itself (gratuitous ARP on a change of address).
    let sysctl = |ns: &Netns, kv: &str| {
        let out = ns
            .command("sysctl")
            .args(["-qw", kv])
            .output()
            .expect("sysctl");
        assert!(out.status.success(), "{kv}: {out:?}");
    };
    sysctl(&peer, "net.ipv4.conf.eth0.arp_notify=1");

    let d = TempDir::new("neigh-e2e");
    let sock = d.join("ctl.sock");
    let conf = d.join("headend.toml");
    std::fs::write(&conf, config(&sock)).expect("write config");
    let check = Command::new(ispmux_bin())
        .args(["check", "-c"])
        .arg(&conf)
        .output()
        .expect("check");
    assert!(check.status.success(), "{check:?}");
    let cap_file = d.join("peer.pcap");
    let cap = Daemon::new(
        peer.command("dumpcap")
            .args(["-q", "-i", "eth0", "-w"])
            .arg(&cap_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dumpcap"),
    );
    let head = Daemon::new(
        gw.command(ispmux_bin().to_str().expect("path"))
            .args(["run", "-c"])
            .arg(&conf)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ispmux"),
    );
    // Upstream traffic, 50 frames a second; nobody answers, the frames are what is counted.
    let pinger = Daemon::new(
        sub.command("ping")
            .args(["-i", "0.02", "-W", "1", "198.18.1.2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ping"),
    );

    // 1. No neighbour: counted drops, nothing sent.
    wait_for(&sock, "no_neighbour drops", Duration::from_secs(15), |s| {
        num(s, &["drops", "no_neighbour"]) >= 10
    });
    let s = stats(&sock).expect("stats");
    assert_eq!(num(&s, &["slowpath", "next_hops"]), 1, "{s:#}");
    assert_eq!(num(&s, &["slowpath", "next_hops_resolved"]), 0, "{s:#}");
    let sent_before = num(&s, &["pipeline", "isps", "0", "headend_up", "packets"]);

    // 2. The peer appears: resolved by the next retry (every second), traffic flows.
    peer.addr("eth0", "10.9.0.2/24");
    let took = wait_for(&sock, "resolution", Duration::from_secs(5), |s| {
        num(s, &["slowpath", "next_hops_resolved"]) == 1
    });
    eprintln!("resolved {took:?} after the peer took its address");
    wait_for(
        &sock,
        "traffic after resolution",
        Duration::from_secs(3),
        |s| num(s, &["pipeline", "isps", "0", "headend_up", "packets"]) > sent_before + 10,
    );

    // 3. A new MAC, announced: one update (one entry), within a second. The kernel takes a
    // gratuitous ARP over an entry only a second (locktime) after its last update.
    std::thread::sleep(Duration::from_millis(1200));
    let updates = num(
        &stats(&sock).expect("stats"),
        &["slowpath", "neighbour_updates"],
    );
    let changed_at = now_s();
    peer.ip(&["link", "set", "eth0", "address", PEER_MAC_NEW]);
    let took = wait_for(&sock, "MAC change", Duration::from_secs(1), |s| {
        num(s, &["slowpath", "neighbour_updates"]) == updates + 1
    });
    eprintln!("new MAC in the tables {took:?} after the change");
    std::thread::sleep(Duration::from_millis(500));
    let s = stats(&sock).expect("stats");
    assert_eq!(
        num(&s, &["slowpath", "neighbour_updates"]),
        updates + 1,
        "{s:#}"
    );

    // 4. The peer stops answering: FAILED, zero MAC, no_neighbour drops.
    let drops_before = num(&s, &["drops", "no_neighbour"]);
    let lost_at = now_s();
    peer.ip(&["addr", "del", "10.9.0.2/24", "dev", "eth0"]);
    let took = wait_for(&sock, "loss", Duration::from_secs(12), |s| {
        num(s, &["slowpath", "next_hops_resolved"]) == 0
    });
    let detected_at = now_s();
    eprintln!("loss noticed {took:?} after the peer stopped answering");
    wait_for(&sock, "drops after loss", Duration::from_secs(2), |s| {
        num(s, &["drops", "no_neighbour"]) > drops_before + 10
    });

    drop(pinger);
    let out = head.stop();
    let _ = cap.stop();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("next_hops 1 resolved 0"), "{stdout}");

    // What the peer's link carried: every labelled frame, its time and destination.
    let tshark = Command::new("tshark")
        .arg("-r")
        .arg(&cap_file)
        .args([
            "-Y",
            "mpls",
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
            "-e",
            "eth.dst",
        ])
        .output()
        .expect("tshark");
    let frames: Vec<(f64, String)> = String::from_utf8_lossy(&tshark.stdout)
        .lines()
        .filter_map(|l| {
            let (t, dst) = l.split_once('\t')?;
            Some((t.parse().ok()?, dst.trim().to_owned()))
        })
        .collect();
    assert!(frames.len() > 50, "{tshark:?}");
    assert!(
        frames
            .iter()
            .all(|(_, dst)| dst == PEER_MAC || dst == PEER_MAC_NEW),
        "a frame to another MAC: {frames:?}"
    );
    let to_old_after = frames
        .iter()
        .filter(|(t, dst)| dst == PEER_MAC && *t > changed_at + 1.0)
        .count();
    assert_eq!(
        to_old_after, 0,
        "frames to the old MAC a second after the change"
    );
    let first_new = frames
        .iter()
        .find(|(_, dst)| dst == PEER_MAC_NEW)
        .map(|(t, _)| *t)
        .expect("frames to the new MAC");
    assert!(
        first_new - changed_at < 1.0,
        "traffic moved {:.3} s after the change",
        first_new - changed_at
    );
    let last = frames.last().map_or(0.0, |(t, _)| *t);
    assert!(
        last < detected_at + 0.5,
        "frames sent {:.3} s after the loss was noticed",
        last - detected_at
    );
    eprintln!(
        "traffic moved to the new MAC {:.3} s after the change; last frame {:.3} s after the \
         peer stopped answering",
        first_new - changed_at,
        last - lost_at
    );
}
