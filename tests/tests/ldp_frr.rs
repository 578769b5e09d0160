//! ispmux's LDP against FRR's ldpd on a real link: a tailend-like ispmux node (a core
//! port with an address and its kernel twin, a hand-off port for ISP A, `[ldp]`, ISP A's
//! upstream FEC by LDP) and FRR next to it on the core link.
//!
//! - The session reaches OPERATIONAL on both sides (FRR's `show mpls ldp neighbor json`,
//!   ispmux's `ctl --json ldp`); it must, or the test fails with both sides' views.
//! - FRR learns ispmux's label for ISP A's FEC, from `[ldp] labels`, and uses it (FRR
//!   routes the FEC via ispmux).
//! - ispmux learns FRR's label for FRR's loopback (implicit null: FRR is its egress) and
//!   uses it once a route to it via FRR exists on the twin.
//! - ispmux stopped, FRR sees the session end at once (the Shutdown Notification), well
//!   before the Hello hold time (10 s) would have ended it.
//!
//! ispmux's address on the link is its LSR ID and transport address, FRR's transport
//! address is its own on the link: the TCP session needs no route. The higher transport
//! address opens the connection (RFC 5036 §2.5.2): one test each way, ispmux passive
//! (FRR connects) and active (ispmux connects).

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use ispmux_tests::frr::{wait_until, Frr, FrrConfig, FrrLabel, LdpBinding};
use ispmux_tests::netns::{veth, End, Netns};
use ispmux_tests::{ispmux_bin, node, TempDir};

const FRR_ID: Ipv4Addr = Ipv4Addr::new(198, 18, 82, 2);
const FRR_LINK: Ipv4Addr = Ipv4Addr::new(198, 18, 81, 2);
const ISP_FEC: &str = "198.18.201.0/24";
const FRR_LO: &str = "198.18.82.2/32";
const LABELS: (u32, u32) = (200_000, 200_999);
/// Hellos every second each way, then the TCP setup and Initialization: a few seconds.
const UP: Duration = Duration::from_secs(15);

fn config(d: &TempDir, id: Ipv4Addr) -> String {
    format!(
        r#"
[eal]
lcores = [0, 1]
memory_mb = 256
hugepages = "off"
file_prefix = "ldpio-{pid}"

[dataplane]
pipeline = "node"
idle_sleep = "on"
{control}
[[port]]
name = "core0"
device = "net_af_packet0,iface=ldpio-c0"
role = "core"
mtu = 1600
mac = "02:00:00:83:00:01"
address = "{id}/24"
twin = "ldpio-tc0"

[[port]]
name = "h0"
device = "net_af_packet1,iface=ldpio-h0"
role = "handoff"
mac = "02:00:00:83:00:02"
address = "198.18.201.1/24"
twin = "ldpio-th0"

[[tables.isps]]
id = 1
name = "isp-a"
handoff = [{{ port = "h0" }}]
ldp = {{ fec = "{ISP_FEC}", router = "198.18.201.2" }}

[ldp]
router_id = "{id}"
hello_interval_s = 1
# Long enough that only the Shutdown Notification can end FRR's session at once.
hello_hold_s = 10
labels = [{lo}, {hi}]
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

fn ispmux_operational(v: &serde_json::Value) -> bool {
    v["neighbours"].as_array().is_some_and(|ns| {
        ns.iter()
            .any(|n| n["lsr_id"] == FRR_ID.to_string() && n["state"] == "OPERATIONAL")
    })
}

/// ispmux's binding of `fec`: (local label, FRR's label, in use).
fn ispmux_binding(v: &serde_json::Value, fec: &str) -> Option<(Option<u64>, u64, bool)> {
    let b = v["bindings"].as_array()?.iter().find(|b| b["fec"] == fec)?;
    let r = b["remote"]
        .as_array()?
        .iter()
        .find(|r| r["peer"] == FRR_ID.to_string())?;
    Some((
        b["local"].as_u64(),
        r["label"].as_u64()?,
        r["in_use"].as_bool()?,
    ))
}

fn frr_binding(frr: &Frr, prefix: &str, ispmux_id: Ipv4Addr) -> Option<LdpBinding> {
    frr.bindings()
        .ok()?
        .into_iter()
        .find(|b| b.prefix == prefix && b.neighbor == Some(ispmux_id) && b.remote.is_some())
}

fn wait_for_link(ns: &Netns, dev: &str) {
    let ok = wait_until(Duration::from_secs(15), || {
        // Not `Netns::ip`: the twin may not exist yet, and that is no failure.
        let out = Command::new("ip")
            .args(["-n", &ns.name, "addr", "show", "dev", dev])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && text.contains(",UP") && text.contains("inet ")).then_some(())
    });
    assert!(ok.is_some(), "twin {dev} never came up");
}

/// ispmux's transport address is the lower: FRR connects.
#[test]
fn ispmux_passive_and_frr_exchange_labels_over_a_real_session() {
    exchange(Ipv4Addr::new(198, 18, 81, 1), "passive");
}

/// ispmux's transport address is the higher: ispmux connects.
#[test]
fn ispmux_active_and_frr_exchange_labels_over_a_real_session() {
    exchange(Ipv4Addr::new(198, 18, 81, 9), "active");
}

/// The session between ispmux at `ispmux_id` (its LSR ID and address on the link) and
/// FRR, ispmux in `role`, its labels both ways, and its end by ispmux's Shutdown.
fn exchange(ispmux_id: Ipv4Addr, role: &str) {
    let d = TempDir::new("ldpio-frr");
    let gw = Netns::new("ldpio-gw");
    let fr = Netns::new("ldpio-frr");
    let isp = Netns::new("ldpio-isp");
    // The veths' own MACs differ from the ports': the gateway namespace's kernel sees the
    // ports' traffic only through the twins.
    veth(
        End {
            ns: &gw,
            dev: "ldpio-c0",
            mac: "02:00:00:82:00:01",
        },
        End {
            ns: &fr,
            dev: "ldpio-f0",
            mac: "02:00:00:84:00:02",
        },
    );
    veth(
        End {
            ns: &gw,
            dev: "ldpio-h0",
            mac: "02:00:00:82:00:02",
        },
        End {
            ns: &isp,
            dev: "ldpio-i0",
            mac: "02:00:00:85:00:01",
        },
    );
    for dev in ["ldpio-c0", "ldpio-h0"] {
        gw.sysctl(&format!("net.ipv4.conf.{dev}.arp_ignore=1"));
    }
    fr.addr("ldpio-f0", "198.18.81.2/24");
    fr.addr("lo", FRR_LO);
    isp.addr("ldpio-i0", "198.18.201.2/24");
    // FRR routes ISP A's FEC via ispmux: it uses ispmux's label for it.
    fr.ip(&["route", "add", ISP_FEC, "via", &ispmux_id.to_string()]);

    let mut fc = FrrConfig::new("ldpio-frr", FRR_ID, &["ldpio-f0"]);
    fc.transport = FRR_LINK;
    fc.extra_af_lines = vec![
        "discovery hello interval 1".into(),
        "discovery hello holdtime 10".into(),
    ];
    let frr = Frr::start(&fr, &fc).unwrap_or_else(|e| panic!("FRR: {e}"));
    // ldpd logs each Notification it receives: how the Shutdown is seen below.
    frr.configure(&["log stdout debugging", "debug mpls ldp messages recv"])
        .unwrap_or_else(|e| panic!("FRR debug: {e}"));
    let daemon = node::start(&gw, &d, "gw", config(&d, ispmux_id));
    wait_for_link(&gw, "ldpio-tc0");
    // ispmux's kernel routes FRR's loopback via FRR, on the twin.
    let r = gw.ip(&[
        "route",
        "add",
        FRR_LO,
        "via",
        "198.18.81.2",
        "dev",
        "ldpio-tc0",
    ]);
    assert!(r.status.success(), "{r:?}");

    let logs = |frr: &Frr| {
        format!(
            "--- FRR ldpd:\n{}\n--- FRR neighbours: {:?}\n--- FRR bindings: {:?}\n--- ispmux: {:?}",
            frr.log("ldpd"),
            frr.vtysh("show mpls ldp neighbor"),
            frr.vtysh("show mpls ldp binding"),
            ctl_ldp(&d),
        )
    };
    let up = wait_until(UP, || {
        (frr.operational(ispmux_id) && ctl_ldp(&d).is_some_and(|v| ispmux_operational(&v)))
            .then_some(())
    });
    if up.is_none() {
        let out = daemon.stop();
        panic!(
            "no OPERATIONAL session\n{}\n--- ispmux stderr:\n{}",
            logs(&frr),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let v = ctl_ldp(&d).expect("ctl ldp");
    let n = v["neighbours"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["lsr_id"] == FRR_ID.to_string()))
        .unwrap_or_else(|| panic!("no FRR neighbour: {v}"));
    assert_eq!(n["role"], role, "{n}");
    assert_eq!(n["transport"], FRR_LINK.to_string(), "{n}");

    // The operator's table says the same.
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
            && l.contains(role)),
        "{table}"
    );

    // FRR has ispmux's label for ISP A's FEC, from ispmux's range, in use.
    let got = wait_until(Duration::from_secs(5), || {
        frr_binding(&frr, ISP_FEC, ispmux_id)
    })
    .unwrap_or_else(|| panic!("FRR has no label from ispmux for {ISP_FEC}\n{}", logs(&frr)));
    let Some(FrrLabel::Value(label)) = got.remote else {
        panic!("FRR: {got:?}\n{}", logs(&frr));
    };
    assert!(
        (LABELS.0..=LABELS.1).contains(&label),
        "label {label} not in [ldp] labels: {got:?}"
    );
    assert!(got.in_use, "FRR routes {ISP_FEC} via ispmux: {got:?}");
    // ... the label ispmux says it advertised, as the FEC's egress.
    let v = ctl_ldp(&d).expect("ctl ldp");
    let own = v["bindings"]
        .as_array()
        .and_then(|bs| bs.iter().find(|b| b["fec"] == ISP_FEC))
        .unwrap_or_else(|| panic!("ispmux has no binding for {ISP_FEC}: {v}"));
    assert_eq!(own["local"].as_u64(), Some(u64::from(label)), "{own}");
    assert_eq!(own["egress"], true, "{own}");

    // ispmux has FRR's implicit null for FRR's loopback, in use via the route on the twin.
    let frr_lo = wait_until(Duration::from_secs(5), || {
        ctl_ldp(&d)
            .and_then(|v| ispmux_binding(&v, FRR_LO))
            .filter(|b| b.2)
    });
    let (_, frr_label, _) = frr_lo.unwrap_or_else(|| {
        panic!(
            "ispmux does not use FRR's label for {FRR_LO}\n{}",
            logs(&frr)
        )
    });
    assert_eq!(
        frr_label, 3,
        "FRR is the egress of its loopback: implicit null"
    );
    // With the next hop's label in, ispmux advertises its own for FRR's loopback
    // (ordered control); FRR does not use it (it owns the prefix).
    let relayed = wait_until(Duration::from_secs(5), || {
        frr_binding(&frr, FRR_LO, ispmux_id)
    });
    assert!(
        relayed.is_some_and(|b| !b.in_use),
        "FRR has no (unused) label from ispmux for {FRR_LO}\n{}",
        logs(&frr)
    );
    // The route on the twin goes: ispmux withdraws its label; FRR's is kept (liberal
    // retention) but no longer in use.
    let r = gw.ip(&["route", "del", FRR_LO, "via", "198.18.81.2"]);
    assert!(r.status.success(), "{r:?}");
    let unused = wait_until(Duration::from_secs(5), || {
        ctl_ldp(&d)
            .and_then(|v| ispmux_binding(&v, FRR_LO))
            .filter(|b| !b.2 && b.0.is_none())
    });
    assert!(
        unused.is_some(),
        "ispmux still uses FRR's label for {FRR_LO} without a route: {:?}",
        ctl_ldp(&d)
    );
    let withdrawn = wait_until(Duration::from_secs(5), || {
        frr_binding(&frr, FRR_LO, ispmux_id).is_none().then_some(())
    });
    assert!(
        withdrawn.is_some(),
        "FRR still has ispmux's label for {FRR_LO}\n{}",
        logs(&frr)
    );
    // The route back: ispmux advertises again, from FRR's label it kept.
    let r = gw.ip(&[
        "route",
        "add",
        FRR_LO,
        "via",
        "198.18.81.2",
        "dev",
        "ldpio-tc0",
    ]);
    assert!(r.status.success(), "{r:?}");
    let again = wait_until(Duration::from_secs(5), || {
        frr_binding(&frr, FRR_LO, ispmux_id)
    });
    assert!(
        again.is_some(),
        "ispmux did not advertise {FRR_LO} again\n{}",
        logs(&frr)
    );
    // FRR's loopback goes: FRR withdraws its label, and ispmux (its route still there)
    // withdraws its own and forgets the FEC.
    fr.ip(&["addr", "del", FRR_LO, "dev", "lo"]);
    let forgotten = wait_until(Duration::from_secs(5), || {
        let v = ctl_ldp(&d)?;
        let gone = v["bindings"].as_array()?.iter().all(|b| b["fec"] != FRR_LO);
        gone.then_some(())
    });
    assert!(
        forgotten.is_some(),
        "ispmux still has a binding for {FRR_LO}: {:?}",
        ctl_ldp(&d)
    );
    let withdrawn = wait_until(Duration::from_secs(5), || {
        frr_binding(&frr, FRR_LO, ispmux_id).is_none().then_some(())
    });
    assert!(
        withdrawn.is_some(),
        "FRR still has ispmux's label for {FRR_LO}\n{}",
        logs(&frr)
    );

    // ispmux stops: FRR hears the Shutdown Notification and ends the session at once.
    let stopped = Instant::now();
    let out = daemon.stop();
    let down = wait_until(Duration::from_secs(4), || {
        (!frr.operational(ispmux_id)).then_some(stopped.elapsed())
    });
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    match down {
        Some(t) => assert!(
            t < Duration::from_secs(5),
            "FRR saw the session end only after {t:?}"
        ),
        None => panic!(
            "FRR still has the session after ispmux stopped\n{}\n--- report:\n{report}",
            logs(&frr)
        ),
    }
    // ispmux counted the session it had, and its end.
    let ldp_line = report
        .lines()
        .find(|l| l.starts_with("ldp "))
        .unwrap_or_else(|| panic!("no ldp line in the report:\n{report}"));
    assert!(
        ldp_line.contains("sessions_established 1 ") && ldp_line.contains("sessions_lost 1 "),
        "{ldp_line}"
    );
    let ldpd = frr.log("ldpd");
    assert!(
        ldpd.lines().any(|l| l.contains("notification")
            && l.contains(&ispmux_id.to_string())
            && l.contains("Shutdown")),
        "FRR did not log ispmux's Shutdown Notification:\n{ldpd}"
    );
}
