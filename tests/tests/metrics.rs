//! Prometheus metrics end to end: a headend (ispmux on net_af_packet in a namespace) forwards
//! a subscriber's pings to its ISP; `ispmux ctl metrics` shows the ISP's headend upstream
//! counters equal to what was sent, and Debian's `promtool check metrics` finds no problem
//! in the Prometheus text format and nothing but its OpenMetrics blind spot in OpenMetrics.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ispmux_tests::netns::{veth, End, Netns};
use ispmux_tests::node::{control, start};
use ispmux_tests::{ispmux_bin, TempDir};

/// Echo requests the subscriber sends.
const PINGS: u64 = 25;
/// IPv4 total length of one: 20 header + 8 ICMP + 56 data (ping's default).
const PING_BYTES: u64 = 84;

fn config(d: &TempDir) -> String {
    format!(
        r#"
[eal]
lcores = [0, 1]
memory_mb = 256
hugepages = "off"
file_prefix = "mx-metrics-{pid}"

[dataplane]
pipeline = "node"
idle_sleep = "on"

[[port]]
name = "acc"
device = "net_af_packet0,iface=acc"
role = "access"

[[port]]
name = "core"
device = "net_af_packet1,iface=core"
role = "core"
mtu = 1600

[[tables.isps]]
id = 1
name = "isp-a"
gateway = "198.18.1.1"
upstream = {{ label = 1001, port = "core", next_hop = "02:00:00:02:00:01" }}

[[tables.isps]]
id = 2
name = "isp-b"
gateway = "198.18.2.1"
upstream = {{ label = 1002, port = "core", next_hop = "02:00:00:02:00:01" }}

[[tables.subscribers]]
port = "acc"
mac = "02:00:00:bb:00:01"
isp = 2
ipv4 = "198.18.2.10"
{control}"#,
        pid = std::process::id(),
        control = control(d, "mxhead"),
    )
}

fn ctl(sock: &Path, args: &[&str]) -> Output {
    Command::new(ispmux_bin())
        .args(["ctl", "-s"])
        .arg(sock)
        .args(args)
        .output()
        .expect("ispmux ctl")
}

/// The value of the sample `series` (name and labels as written) in `text`.
fn sample(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

/// Runs `promtool check metrics` on `text`; its exit status and what it printed.
fn promtool(text: &str) -> (Option<i32>, String) {
    use std::io::Write;
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; scripts/deps installs it)");
    p.stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = p.wait_with_output().expect("promtool");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), said)
}

#[test]
fn per_isp_counters_match_the_traffic_and_pass_promtool() {
    let d = TempDir::new("mx-metrics");
    let (sub, head, core) = (
        Netns::new("mxsub"),
        Netns::new("mxhd"),
        Netns::new("mxcore"),
    );
    veth(
        End {
            ns: &sub,
            dev: "eth0",
            mac: "02:00:00:bb:00:01",
        },
        End {
            ns: &head,
            dev: "acc",
            mac: "02:00:00:01:00:01",
        },
    );
    veth(
        End {
            ns: &head,
            dev: "core",
            mac: "02:00:00:01:00:02",
        },
        End {
            ns: &core,
            dev: "eth0",
            mac: "02:00:00:02:00:01",
        },
    );
    sub.addr("eth0", "198.18.2.10/24");
    sub.ip(&["route", "add", "default", "via", "198.18.2.1"]);
    let daemon = start(&head, &d, "mxhead", config(&d));
    let sock = d.join("mxhead.sock");

    let deadline = Instant::now() + Duration::from_secs(20);
    let up = r#"ispmux_isp_packets_total{isp="isp-b",role="headend",dir="up"}"#;
    let up_bytes = r#"ispmux_isp_bytes_total{isp="isp-b",role="headend",dir="up"}"#;
    // Up when it answers, with the ISP's counters at zero before any traffic.
    loop {
        let out = ctl(&sock, &["metrics"]);
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(sample(&text, up), Some(0), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "ispmux never answered: {out:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The headend answers ARP for the ISP's gateway, then pushes ISP B's label on each
    // echo request toward the core; nothing answers them.
    let ping = sub
        .command("ping")
        .args([
            "-c",
            &PINGS.to_string(),
            "-i",
            "0.02",
            "-W",
            "1",
            "203.0.113.7",
        ])
        .output()
        .expect("ping");
    assert!(
        String::from_utf8_lossy(&ping.stdout).contains(&format!("{PINGS} packets transmitted")),
        "{ping:?}"
    );

    // Workers publish their counters within milliseconds; wait for them, not longer.
    let text = loop {
        let out = ctl(&sock, &["metrics"]);
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if sample(&text, up) == Some(PINGS) || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(sample(&text, up), Some(PINGS), "{text}");
    assert_eq!(sample(&text, up_bytes), Some(PINGS * PING_BYTES), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"ispmux_isp_packets_total{isp="isp-a",role="headend",dir="up"}"#
        ),
        Some(0),
        "nothing for ISP A"
    );
    assert!(
        sample(&text, r#"ispmux_port_receive_packets_total{port="acc"}"#)
            .is_some_and(|n| n >= PINGS),
        "{text}"
    );
    assert!(
        sample(&text, r#"ispmux_port_transmit_packets_total{port="core"}"#)
            .is_some_and(|n| n >= PINGS),
        "{text}"
    );
    assert!(
        text.contains(r#"ispmux_worker_busy_seconds_total{lcore="1"} "#),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"ispmux_table_entries{table="subscribers"}"#),
        Some(1),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with EOF");

    // The Prometheus text format: no problem at all, lint included.
    let prom = ctl(&sock, &["metrics", "prometheus"]);
    assert!(prom.status.success(), "{prom:?}");
    let prom = String::from_utf8_lossy(&prom.stdout).into_owned();
    assert!(sample(&prom, up).is_some_and(|n| n >= PINGS), "{prom}");
    let (code, said) = promtool(&prom);
    assert_eq!((code, said.as_str()), (Some(0), ""), "promtool on:\n{prom}");

    // OpenMetrics: promtool reads it with the 0.0.4 parser, which takes a counter family's
    // `_total` samples for another family without help (lint, exit 3); anything else, a
    // parse error above all (exit 1), is a problem.
    let (code, said) = promtool(&text);
    assert!(matches!(code, Some(0) | Some(3)), "{code:?}: {said}");
    for l in said.lines() {
        assert!(l.ends_with("_total no help text"), "promtool: {l}");
    }

    // A bad argument is refused with the reason.
    let bad = ctl(&sock, &["metrics", "json"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("metrics: give nothing, openmetrics or prometheus"),
        "{bad:?}"
    );
    daemon.stop();
}
