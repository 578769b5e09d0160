//! The `ispmux` binary as an operator meets it: `check` and `run` on net_null ports.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ispmux_tests::{ispmux_bin, terminate, TempDir};

const NULL_PAIR: &str = r#"
[eal]
lcores = [0, 1]
memory_mb = 256
hugepages = "off"

[[port]]
name = "p0"
device = "net_null0"

[[port]]
name = "p1"
device = "net_null1"

[dataplane]
idle_sleep = "on"
"#;

#[test]
fn check_accepts_a_good_file() {
    let d = TempDir::new("check-ok");
    let f = d.join("ok.toml");
    std::fs::write(&f, NULL_PAIR).expect("write");
    let out = Command::new(ispmux_bin())
        .args(["check", "-c"])
        .arg(&f)
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok, gateway (2 port(s), 1 worker lcore(s)")
    );
}

/// `check` validated the file alone, so a subscribers CSV that `run` refuses passed.
#[test]
fn check_refuses_a_subscribers_csv_that_run_would_refuse() {
    let d = TempDir::new("check-csv");
    let f = d.join("csv.toml");
    std::fs::write(
        &f,
        NULL_PAIR.replace(
            "idle_sleep = \"on\"",
            "idle_sleep = \"on\"\nsubscribers_csv = \"subs.csv\"",
        ),
    )
    .expect("write");
    std::fs::write(
        d.join("subs.csv"),
        "port,vlan,mac,isp\np0,0,02:00:00:00:00:01,1\np0,0,02:00:00:00:00:0g,1\n",
    )
    .expect("write csv");
    let out = Command::new(ispmux_bin())
        .args(["check", "-c"])
        .arg(&f)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "{}:3:6: `mac`: not a MAC address",
        d.join("subs.csv").display()
    );
    assert!(err.contains(&want), "{err}");
}

/// The README's standalone RADIUS proxy files have only `[radius]` (and `[store]`).
#[test]
fn check_validates_a_radius_only_file_as_the_proxy_s() {
    let f =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/examples/radius-proxy.toml");
    let out = Command::new(ispmux_bin())
        .args(["check", "-c"])
        .arg(&f)
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok, radius proxy alone"),
        "{out:?}"
    );
}

#[test]
fn check_names_file_line_and_key_of_a_broken_file() {
    let d = TempDir::new("check-bad");
    let f = d.join("bad.toml");
    std::fs::write(
        &f,
        NULL_PAIR.replace("device = \"net_null1\"", "device = \"net_null0\""),
    )
    .expect("write");
    let out = Command::new(ispmux_bin())
        .args(["check", "-c"])
        .arg(&f)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "{}:13:10: `port[1].device`: device \"net_null0\" is already used by port[0]",
        f.display()
    );
    assert!(err.contains(&want), "{err}");
}

#[test]
fn check_reports_a_missing_file() {
    let out = Command::new(ispmux_bin())
        .args(["check", "-c", "/nonexistent/ispmux.toml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ispmux.toml: cannot read"));
}

fn port_line<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    out.lines()
        .find(|l| l.starts_with(&format!("port {name} ")))
        .unwrap_or_else(|| panic!("no line for port {name} in:\n{out}"))
        .split_whitespace()
        .collect()
}

#[test]
fn run_forwards_between_null_ports_and_prints_counters() {
    let d = TempDir::new("run-null");
    let f = d.join("null.toml");
    std::fs::write(&f, NULL_PAIR).expect("write");
    let out = Command::new(ispmux_bin())
        .args(["run", "--duration", "1", "-c"])
        .arg(&f)
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let s = String::from_utf8_lossy(&out.stdout);
    for p in ["p0", "p1"] {
        // port p0 rx N pkts X Mpps tx N pkts X Mpps ...
        let w = port_line(&s, p);
        let rx: u64 = w[3].parse().expect("rx count");
        let tx: u64 = w[8].parse().expect("tx count");
        let mpps: f64 = w[5].parse().expect("Mpps");
        assert!(rx > 100_000, "{s}");
        assert_eq!(rx, tx, "io forwarding sends what it receives: {s}");
        assert!(mpps > 0.1, "{s}");
    }
    assert!(
        s.contains("drops truncated 0 no_route 0 tx_full 0 punt_ring_full 0"),
        "{s}"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("still in use"));
}

#[test]
fn sigterm_stops_run_cleanly() {
    let d = TempDir::new("run-term");
    let f = d.join("null.toml");
    std::fs::write(&f, NULL_PAIR).expect("write");
    let child = Command::new(ispmux_bin())
        .args(["run", "-c"])
        .arg(&f)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(1500));
    let start = Instant::now();
    let out = terminate(child);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(out.status.success(), "{out:?}");
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("ispmux ran"), "{s}");
    port_line(&s, "p0");
}

#[test]
fn ctl_reads_counters_from_a_running_daemon() {
    let d = TempDir::new("ctl");
    let f = d.join("null.toml");
    let sock = d.join("ctl.sock");
    std::fs::write(
        &f,
        format!("{NULL_PAIR}\n[control]\nsocket = \"{}\"\n", sock.display()),
    )
    .expect("write");
    let child = Command::new(ispmux_bin())
        .args(["run", "--duration", "3", "-c"])
        .arg(&f)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let ask = |cmd: &str| {
        Command::new(ispmux_bin())
            .args(["ctl", "--json", "-s"])
            .arg(&sock)
            .arg(cmd)
            .output()
            .expect("ctl")
    };
    let first = ask("stats");
    assert!(first.status.success(), "{first:?}");
    let text = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(text.contains("\"name\": \"p0\""), "{text}");
    let rx_of = |t: &str| -> u64 {
        let i = t.find("\"rx_packets\": ").expect("rx_packets") + 14;
        t[i..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .expect("number")
    };
    std::thread::sleep(Duration::from_millis(300));
    let second = String::from_utf8_lossy(&ask("stats").stdout).to_string();
    assert!(rx_of(&second) > rx_of(&text), "counters move while running");
    let table = Command::new(ispmux_bin())
        .args(["ctl", "-s"])
        .arg(&sock)
        .arg("stats")
        .output()
        .expect("ctl");
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(
        table.contains("PORT") && table.lines().any(|l| l.starts_with("p0 ")),
        "without --json, a table: {table}"
    );
    let bad = ask("frobnicate");
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown command \"frobnicate\""));
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    assert!(!sock.exists(), "socket file removed at exit");
}

#[test]
fn every_example_configuration_is_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files = vec![root.join("demo.toml")];
    for e in std::fs::read_dir(root.join("topology")).expect("examples/topology") {
        files.push(e.expect("entry").path());
    }
    assert!(files.len() >= 4);
    for f in files {
        let out = Command::new(ispmux_bin())
            .args(["check", "-c"])
            .arg(&f)
            .output()
            .expect("check");
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
