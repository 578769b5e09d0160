//! DHCP from MACs no ISP registered is dropped in the worker beyond a small allowance
//! (`[dhcp] unregistered_per_s`), so a DISCOVER storm never reaches the slow path; DHCP
//! from registered MACs always does; a subscriber registered while the gateway runs enters
//! the workers' filter.

use std::process::Command;
use std::time::{Duration, Instant};

use ispmux_dataplane::synthetic;
use ispmux_slowpath::dhcp::frame::build_udp;
use ispmux_slowpath::dhcp::{MacAddr, Message, MessageType};
use ispmux_tests::{ispmux_bin, Daemon, TempDir};

const REGISTERED: &str = "02:00:00:aa:00:01";
const LATE: &str = "02:00:00:aa:00:02";
const STRANGERS: u32 = 120;
const ALLOWANCE: u64 = 20;

fn conf(d: &TempDir, access_device: &str) -> std::path::PathBuf {
    let f = d.join("filter.toml");
    std::fs::write(
        &f,
        format!(
            r#"
[eal]
lcores = [0, 1]
memory_mb = 256
hugepages = "off"

[[port]]
name = "acc"
device = "{access_device}"
role = "access"

[[port]]
name = "core"
device = "net_null1"
role = "core"
twin = "ispmux-f{pid}"

[dataplane]
pipeline = "node"
idle_sleep = "on"

[store]
path = "{db}"

[control]
socket = "{sock}"

[dhcp]
relay_address = "{relay}"
server_identifier = "198.18.1.1"
unregistered_per_s = {ALLOWANCE}

[[dhcp.isps]]
name = "isp-a"
servers = ["127.0.0.2"]

[[tables.isps]]
id = 1
name = "isp-a"
gateway = "198.18.1.1"
upstream = {{ label = 1001, port = "core", next_hop = "02:00:00:02:00:01" }}
"#,
            pid = std::process::id() % 100_000,
            db = d.join("ispmux.db").display(),
            sock = d.join("ctl.sock").display(),
            // The ISP-side socket binds this:67; one loopback address per test process.
            relay = std::net::Ipv4Addr::from(0x7f00_0001 | (std::process::id() & 0xffff) << 8),
        ),
    )
    .expect("write");
    f
}

fn ispmux(conf: &std::path::Path, args: &[&str]) -> String {
    let (cmd, rest) = args.split_first().expect("a command");
    let out = Command::new(ispmux_bin())
        .arg(cmd)
        .arg("-c")
        .arg(conf)
        .args(rest)
        .output()
        .expect("run");
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn register(conf: &std::path::Path, mac: &str) {
    ispmux(
        conf,
        &[
            "subscriber",
            "add",
            "--mac",
            mac,
            "--isp",
            "isp-a",
            "--customer-id",
            mac,
        ],
    );
}

fn discover(mac: MacAddr, xid: u32) -> Vec<u8> {
    let payload = Message::new_request(mac, xid, MessageType::Discover).encode();
    build_udp(
        MacAddr::BROADCAST,
        mac,
        (0, 0),
        "0.0.0.0".parse().expect("ip"),
        "255.255.255.255".parse().expect("ip"),
        68,
        67,
        &payload,
    )
    .expect("frame")
}

/// The number after `key` on the report line starting with `line`.
fn field(out: &str, line: &str, key: &str) -> u64 {
    let l = out
        .lines()
        .find(|l| l.starts_with(line))
        .unwrap_or_else(|| panic!("no {line:?} line in:\n{out}"));
    let w: Vec<&str> = l.split_whitespace().collect();
    w.iter()
        .position(|x| *x == key)
        .and_then(|i| w.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {l}"))
}

#[test]
fn dhcp_from_unregistered_macs_is_dropped_in_the_worker_beyond_the_allowance() {
    let d = TempDir::new("dhcp-filter");
    // A capture read once, at once: strangers' DISCOVERs with the registered MAC's among them.
    let registered: MacAddr = REGISTERED.parse().expect("mac");
    let mut frames = Vec::new();
    for i in 0..STRANGERS {
        frames.push(discover(
            MacAddr::from_u64(0x0600_0000_0000 | u64::from(i)),
            i,
        ));
        if i % 30 == 29 {
            frames.push(discover(registered, 1000 + i));
        }
    }
    let pcap = d.join("storm.pcap");
    let mut w = std::fs::File::create(&pcap).expect("pcap");
    synthetic::write_pcap(&mut w, frames).expect("write");
    let f = conf(&d, &format!("net_pcap0,rx_pcap={}", pcap.display()));
    register(&f, REGISTERED);

    let out = ispmux(&f, &["run", "--duration", "2"]);
    let allowed = field(&out, "registered ", "punts_unregistered");
    let dropped = field(&out, "drops ", "unregistered");
    // The bucket starts with one second's allowance, and the capture arrives within a
    // fraction of one (a token more each 1/ALLOWANCE s it takes).
    assert!((ALLOWANCE..ALLOWANCE + 10).contains(&allowed), "{out}");
    assert_eq!(dropped, u64::from(STRANGERS) - allowed, "{out}");
    assert_eq!(field(&out, "registered ", "registered"), 1, "{out}");
    // What reached the logon engine: the allowance and every registered DISCOVER.
    let registered_sent = u64::from(STRANGERS / 30);
    assert_eq!(
        field(&out, "slowpath ", "dhcp"),
        allowed + registered_sent,
        "{out}"
    );
    // The strangers let through were refused and recorded.
    let refusals = ispmux(&f, &["refusals"]);
    let strangers = refusals
        .lines()
        .filter(|l| l.contains("06:00:00:00"))
        .count();
    assert!(strangers >= 1 && strangers as u64 <= allowed, "{refusals}");
    // The registered MAC's DISCOVERs were relayed (its ISP's server is not there).
    assert!(
        refusals
            .lines()
            .filter(|l| l.contains(REGISTERED))
            .all(|l| !l.contains("unknown subscriber")),
        "{refusals}"
    );
}

#[test]
fn a_subscriber_registered_while_running_enters_the_filter() {
    let d = TempDir::new("dhcp-filter-live");
    let f = conf(&d, "net_null0");
    register(&f, REGISTERED);
    let daemon = Daemon::new(
        Command::new(ispmux_bin())
            .args(["run", "-c"])
            .arg(&f)
            .spawn()
            .expect("run"),
    );
    let sock = d.join("ctl.sock");
    let stat = |key: &str| -> Option<u64> {
        let out = Command::new(ispmux_bin())
            .args(["ctl", "--json", "-s"])
            .arg(&sock)
            .arg("stats")
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["slowpath"][key].as_u64()
    };
    let wait_for = |key: &str, want: u64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while stat(key) != Some(want) {
            assert!(
                Instant::now() < deadline,
                "{key} never reached {want}: {:?}",
                stat(key)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("registered", 1);
    register(&f, LATE);
    wait_for("registered", 2);
    assert_eq!(stat("registered_updates"), Some(1));
    ispmux(&f, &["subscriber", "remove", "--mac", REGISTERED]);
    wait_for("registered", 1);
    assert_eq!(stat("registered_updates"), Some(2));
    let out = daemon.stop();
    assert!(out.status.success(), "{out:?}");
}
