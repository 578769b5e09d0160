//! Prometheus metrics end to end: a headend (ispmux on net_af_packet in a namespace) forwards
//! a subscriber's pings to its ISP; `ispmux ctl metrics` shows the ISP's headend upstream
//! counters equal to what was sent, and Debian's `promtool check metrics` finds no problem
//! in the Prometheus text format and nothing but its OpenMetrics blind spot in OpenMetrics;
//! Debian's Prometheus server scrapes `/metrics` of the provisioning API with the operator's
//! token and answers a PromQL query with the same count.

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
/// The operator's token, and where the API and Prometheus listen in the headend's namespace.
const OPERATOR_TOKEN: &str = "ispmux_metrics_test_operator";
const API: &str = "127.0.0.1:18443";
const PROMETHEUS: &str = "127.0.0.1:19090";

fn sha256_hex(s: &str) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(s.as_bytes())?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("digest")
        .to_owned()
}

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

[store]
path = "{store}"

[api]
listen = "{API}"
operator_token_sha256 = "{token}"
threads = 1
{control}"#,
        pid = std::process::id(),
        store = d.join("ispmux.db").display(),
        token = sha256_hex(OPERATOR_TOKEN),
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

    // Prometheus scrapes the API's /metrics (OpenMetrics, by its Accept header) with the
    // operator's token, and its PromQL answer is the count sent.
    let prom_dir = d.join("prometheus");
    std::fs::create_dir_all(&prom_dir).expect("prometheus dir");
    let prom_cfg = prom_dir.join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ispmux\n    \
             authorization:\n      credentials: {OPERATOR_TOKEN}\n    static_configs:\n      \
             - targets: [\"{API}\"]\n"
        ),
    )
    .expect("prometheus.yml");
    let server = ispmux_tests::Daemon::new(
        head.command("prometheus")
            .arg(format!("--config.file={}", prom_cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                prom_dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={PROMETHEUS}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("prometheus (Debian's prometheus package; scripts/deps installs it)"),
    );
    let query = |q: &str| -> Option<serde_json::Value> {
        let out = head
            .command("curl")
            .args(["-s", "-m", "2", "-G"])
            .arg(format!("http://{PROMETHEUS}/api/v1/query"))
            .args(["--data-urlencode", &format!("query={q}")])
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    };
    let promql = r#"ispmux_isp_packets_total{isp="isp-b",role="headend",dir="up"}"#;
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        let v = query(promql);
        let n = v
            .as_ref()
            .and_then(|v| v.pointer("/data/result/0/value/1"))
            .and_then(|n| n.as_str())
            .and_then(|n| n.parse::<u64>().ok());
        if n.is_some() || Instant::now() > deadline {
            break (n, v);
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let up_targets = query("up");
    drop(server);
    assert_eq!(answer.0, Some(PINGS), "{:?}\nup: {up_targets:?}", answer.1);

    // Without the token, /metrics is refused.
    let anon = head
        .command("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://{API}/metrics"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&anon.stdout), "401");

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
