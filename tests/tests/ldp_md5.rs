//! LDP session security against FRR 8.4's ldpd on a real link: TCP MD5 signatures (RFC
//! 5036 §2.9) and GTSM (RFC 6720).
//!
//! The ispmux node (a core port with an address and its twin, a hand-off port for ISP A,
//! `[ldp]` with `[[ldp.neighbours]]` giving FRR's LSR ID a key) and FRR (`neighbor ID
//! password KEY`) share the core link. FRR's LSR ID is its loopback and its transport
//! address its link address, so ispmux must map the LSR ID its key is configured for to
//! the transport address FRR's Hellos give before FRR's signed connection arrives.
//!
//! - The same key on both sides: the session reaches OPERATIONAL, ispmux's label for ISP
//!   A's FEC reaches FRR; ispmux passive (FRR connects to the listener) and active (ispmux
//!   connects). Both advertise GTSM (FRR's default): every session segment on the wire has
//!   TTL 255 both ways, which FRR sends only when it uses GTSM, and `ctl ldp` says md5 and
//!   gtsm.
//! - A wrong key: the adjacency forms but the session never does, on either side; the
//!   kernel's MD5 drop counters in ispmux's stats show why. FRR without GTSM (`ttl-security
//!   disable`) there: ispmux's `ctl ldp` says the session would not use it.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::Duration;

use ispmux_tests::frr::{wait_until, Frr, FrrConfig, FrrLabel};
use ispmux_tests::netns::{veth, End, Netns};
use ispmux_tests::{ispmux_bin, node, Daemon, TempDir};

const FRR_ID: Ipv4Addr = Ipv4Addr::new(198, 18, 92, 2);
const FRR_LINK: Ipv4Addr = Ipv4Addr::new(198, 18, 91, 2);
const ISP_FEC: &str = "198.18.202.0/24";
const LABELS: (u32, u32) = (300_000, 300_999);
const KEY: &str = "md5-Secret.42";
/// Hellos every second each way, then the TCP setup and Initialization.
const UP: Duration = Duration::from_secs(15);

/// The node's configuration; `tag` keeps its EAL files apart from another test's.
fn config(d: &TempDir, id: Ipv4Addr, key: &str, tag: &str) -> String {
    format!(
        r#"
[eal]
lcores = [0, 1]
memory_mb = 256
hugepages = "off"
file_prefix = "md5-{tag}-{pid}"

[dataplane]
pipeline = "node"
idle_sleep = "on"
{control}
[[port]]
name = "core0"
device = "net_af_packet0,iface=md5-c0"
role = "core"
mtu = 1600
mac = "02:00:00:93:00:01"
address = "{id}/24"
twin = "md5-tc0"

[[port]]
name = "h0"
device = "net_af_packet1,iface=md5-h0"
role = "handoff"
mac = "02:00:00:93:00:02"
address = "198.18.202.1/24"
twin = "md5-th0"

[[tables.isps]]
id = 1
name = "isp-a"
handoff = [{{ port = "h0" }}]
ldp = {{ fec = "{ISP_FEC}", router = "198.18.202.2" }}

[ldp]
router_id = "{id}"
hello_interval_s = 1
hello_hold_s = 10
labels = [{lo}, {hi}]

[[ldp.neighbours]]
router_id = "{FRR_ID}"
password = "{key}"
"#,
        pid = std::process::id(),
        control = node::control(d, "gw"),
        lo = LABELS.0,
        hi = LABELS.1,
    )
}

/// `ispmux ctl --json ldp` of the node, if it answers with a view.
fn ctl_ldp(d: &TempDir) -> Option<serde_json::Value> {
    let out = Command::new(ispmux_bin())
        .args(["ctl", "--json", "-s"])
        .arg(d.join("gw.sock"))
        .arg("ldp")
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v.get("neighbours").is_some().then_some(v)
}

/// ispmux's row for FRR.
fn frr_row(v: &serde_json::Value) -> Option<serde_json::Value> {
    v["neighbours"]
        .as_array()?
        .iter()
        .find(|n| n["lsr_id"] == FRR_ID.to_string())
        .cloned()
}

fn wait_for_link(ns: &Netns, dev: &str) {
    let ok = wait_until(Duration::from_secs(15), || {
        let out = Command::new("ip")
            .args(["-n", &ns.name, "addr", "show", "dev", dev])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && text.contains(",UP") && text.contains("inet ")).then_some(())
    });
    assert!(ok.is_some(), "twin {dev} never came up");
}

/// The link between ispmux (`gw`) and FRR (`fr`) and ISP A's side, addressed.
struct Link {
    gw: Netns,
    fr: Netns,
    _isp: Netns,
}

fn link() -> Link {
    let gw = Netns::new("md5-gw");
    let fr = Netns::new("md5-frr");
    let isp = Netns::new("md5-isp");
    veth(
        End {
            ns: &gw,
            dev: "md5-c0",
            mac: "02:00:00:92:00:01",
        },
        End {
            ns: &fr,
            dev: "md5-f0",
            mac: "02:00:00:94:00:02",
        },
    );
    veth(
        End {
            ns: &gw,
            dev: "md5-h0",
            mac: "02:00:00:92:00:02",
        },
        End {
            ns: &isp,
            dev: "md5-i0",
            mac: "02:00:00:95:00:01",
        },
    );
    for dev in ["md5-c0", "md5-h0"] {
        gw.sysctl(&format!("net.ipv4.conf.{dev}.arp_ignore=1"));
    }
    fr.addr("md5-f0", &format!("{FRR_LINK}/24"));
    fr.addr("lo", &format!("{FRR_ID}/32"));
    isp.addr("md5-i0", "198.18.202.2/24");
    Link { gw, fr, _isp: isp }
}

fn frr(l: &Link, ispmux_id: Ipv4Addr, key: &str, gtsm: bool) -> Frr {
    let mut fc = FrrConfig::new("md5-frr", FRR_ID, &["md5-f0"]);
    fc.transport = FRR_LINK;
    fc.passwords = vec![(ispmux_id, key.to_owned())];
    fc.extra_af_lines = vec![
        "discovery hello interval 1".into(),
        "discovery hello holdtime 10".into(),
    ];
    if !gtsm {
        fc.extra_af_lines.push("ttl-security disable".into());
    }
    Frr::start(&l.fr, &fc).unwrap_or_else(|e| panic!("FRR: {e}"))
}

/// ispmux passive: FRR's transport address is the higher, FRR connects to a listener that
/// must have learned FRR's transport address for the key configured by LSR ID.
#[test]
fn same_key_passive_session_comes_up_signed_with_gtsm() {
    same_key(Ipv4Addr::new(198, 18, 91, 1), "passive");
}

/// ispmux active: its connection is signed and takes FRR's TTL 255 SYN-ACK.
#[test]
fn same_key_active_session_comes_up_signed_with_gtsm() {
    same_key(Ipv4Addr::new(198, 18, 91, 9), "active");
}

fn same_key(ispmux_id: Ipv4Addr, role: &str) {
    let d = TempDir::new("md5-frr");
    let l = link();
    // FRR routes ISP A's FEC via ispmux: it uses ispmux's label for it.
    l.fr.ip(&["route", "add", ISP_FEC, "via", &ispmux_id.to_string()]);
    let frr = frr(&l, ispmux_id, KEY, true);
    // The session's segments on FRR's side of the link, from before ispmux starts.
    let pcap = d.join("md5.pcap");
    let tshark = Daemon::new(
        l.fr.command("tshark")
            .args(["-q", "-i", "md5-f0", "-f", "tcp port 646", "-w"])
            .arg(&pcap)
            .args(["-a", "duration:40"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tshark"),
    );
    // The capture file appears once tshark captures (seconds on a busy machine): the
    // session, up within a second of ispmux's start, must not go by before it.
    assert!(
        wait_until(Duration::from_secs(20), || pcap.exists().then_some(())).is_some(),
        "tshark never started capturing"
    );
    let daemon = node::start(&l.gw, &d, "gw", config(&d, ispmux_id, KEY, role));
    wait_for_link(&l.gw, "md5-tc0");

    let logs = |frr: &Frr| {
        format!(
            "--- FRR ldpd:\n{}\n--- FRR neighbours: {:?}\n--- ispmux: {:?}",
            frr.log("ldpd"),
            frr.vtysh("show mpls ldp neighbor"),
            ctl_ldp(&d),
        )
    };
    let up = wait_until(UP, || {
        let mine = ctl_ldp(&d)
            .and_then(|v| frr_row(&v))
            .is_some_and(|n| n["state"] == "OPERATIONAL");
        (frr.operational(ispmux_id) && mine).then_some(())
    });
    if up.is_none() {
        drop(tshark);
        let out = daemon.stop();
        panic!(
            "no OPERATIONAL session with the same key\n{}\n--- ispmux stderr:\n{}",
            logs(&frr),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let row = ctl_ldp(&d).and_then(|v| frr_row(&v)).expect("FRR's row");
    assert_eq!(row["role"], role, "{row}");
    assert_eq!(row["transport"], FRR_LINK.to_string(), "{row}");
    assert_eq!(row["md5"], true, "{row}");
    assert_eq!(row["gtsm"], true, "FRR advertises GTSM by default: {row}");
    let table = Command::new(ispmux_bin())
        .args(["ctl", "-s"])
        .arg(d.join("gw.sock"))
        .arg("ldp")
        .output()
        .expect("ctl ldp");
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(
        table.lines().any(|l| l.starts_with(&format!("{FRR_ID}:0"))
            && l.contains("OPERATIONAL")
            && l.contains("md5,gtsm")),
        "{table}"
    );

    // Labels flow over the signed session: FRR has ispmux's label for ISP A's FEC.
    let got = wait_until(Duration::from_secs(5), || {
        frr.bindings()
            .ok()?
            .into_iter()
            .find(|b| b.prefix == ISP_FEC && b.neighbor == Some(ispmux_id) && b.remote.is_some())
    })
    .unwrap_or_else(|| panic!("FRR has no label from ispmux for {ISP_FEC}\n{}", logs(&frr)));
    let Some(FrrLabel::Value(label)) = got.remote else {
        panic!("FRR: {got:?}")
    };
    assert!((LABELS.0..=LABELS.1).contains(&label), "{got:?}");
    assert!(got.in_use, "{got:?}");

    // On the wire: every session segment, both ways, left with TTL 255. FRR sends its
    // session with TTL 255 only when it uses GTSM (else the default, 64), and with GTSM it
    // drops ours below 255: the session being up says ours were 255 too.
    // SIGTERM: tshark writes out what it holds (SIGKILL lost a whole short session once).
    tshark.stop();
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args([
            "-T",
            "fields",
            "-e",
            "ip.src",
            "-e",
            "ip.ttl",
            "-e",
            "tcp.option_kind",
        ])
        .output()
        .expect("tshark -r");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let seen: Vec<(String, u32, String)> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((
                f.next()?.to_owned(),
                f.next()?.parse().ok()?,
                f.next().unwrap_or("").to_owned(),
            ))
        })
        .collect();
    for who in [ispmux_id.to_string(), FRR_LINK.to_string()] {
        let mine: Vec<_> = seen.iter().filter(|s| s.0 == who).collect();
        assert!(!mine.is_empty(), "no segment from {who}: {text}");
        assert!(
            mine.iter().all(|s| s.1 == 255),
            "TTL below 255 from {who}: {text}"
        );
        // TCP option 19: the MD5 signature (RFC 2385), on every segment.
        assert!(
            mine.iter().all(|s| s.2.split(',').any(|k| k == "19")),
            "unsigned segment from {who}: {text}"
        );
    }
    drop(daemon);
}

/// Different keys: FRR's signed connection is dropped by ispmux's kernel (or ispmux's by
/// FRR's); no session, on either side, however long. ispmux shows the neighbour without
/// an OPERATIONAL session, and the kernel's MD5 drops in its counters.
#[test]
fn wrong_key_keeps_the_session_down() {
    let ispmux_id = Ipv4Addr::new(198, 18, 91, 1);
    let d = TempDir::new("md5-frr");
    let l = link();
    let frr = frr(&l, ispmux_id, "not-the-key", false);
    let daemon = node::start(&l.gw, &d, "gw", config(&d, ispmux_id, KEY, "wrong"));
    wait_for_link(&l.gw, "md5-tc0");
    // The adjacency forms (Hellos are not signed) and FRR tries to connect.
    let adj = wait_until(UP, || {
        let v = ctl_ldp(&d)?;
        frr_row(&v)?;
        (v["stats"]["md5_kernel_failure"].as_u64()? > 0).then_some(v)
    });
    let Some(v) = adj else {
        panic!(
            "no adjacency with FRR, or no MD5 drop counted: {:?}\n--- FRR ldpd:\n{}",
            ctl_ldp(&d),
            frr.log("ldpd")
        );
    };
    let row = frr_row(&v).expect("row");
    assert_eq!(row["md5"], true, "{row}");
    assert_eq!(
        row["gtsm"], false,
        "FRR with ttl-security disable sends no G flag: {row}"
    );
    // FRR retries; a few of its attempts later there is still no session.
    std::thread::sleep(Duration::from_secs(4));
    let v = ctl_ldp(&d).expect("ctl ldp");
    let row = frr_row(&v).expect("row");
    assert_ne!(row["state"], "OPERATIONAL", "{row}");
    assert_eq!(v["stats"]["sessions_established"], 0, "{v}");
    assert!(!frr.operational(ispmux_id), "FRR has a session");
    let out = daemon.stop();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let ldp_line = report
        .lines()
        .find(|l| l.starts_with("ldp "))
        .unwrap_or_else(|| panic!("no ldp line in the report:\n{report}"));
    assert!(
        ldp_line.contains("sessions_established 0 ") && !ldp_line.contains("md5_kernel_failure 0"),
        "{ldp_line}"
    );
}
