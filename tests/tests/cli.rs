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
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (2 port(s), 1 worker lcore(s))"));
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
            .args(["ctl", "-s"])
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

/// A configuration for the registry commands: a headend with the logon proxy, its store in
/// `d` and one ISP.
fn registry_conf(d: &TempDir) -> std::path::PathBuf {
    let f = d.join("registry.toml");
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
device = "net_null0"
role = "access"

[[port]]
name = "core"
device = "net_null1"
role = "core"

[dataplane]
pipeline = "node"
idle_sleep = "on"

[store]
path = "{}"

[dhcp]
relay_address = "127.0.0.1"
server_identifier = "198.18.1.1"

[[dhcp.isps]]
name = "isp-a"
servers = ["127.0.0.2"]

[[tables.isps]]
id = 1
name = "isp-a"
gateway = "198.18.1.1"
upstream = {{ label = 1001, port = 1, next_hop = "02:00:00:02:00:01" }}
"#,
            d.join("ispmux.db").display()
        ),
    )
    .expect("write");
    f
}

fn registry_cmd(conf: &std::path::Path, args: &[&str]) -> std::process::Output {
    let (cmd, rest) = args.split_first().expect("a command");
    let mut c = Command::new(ispmux_bin());
    c.arg(cmd).arg("-c").arg(conf).args(rest);
    c.output().expect("run")
}

/// Runs `ispmux ARGS` with its stdout a pipe that the reader closes after the first line,
/// as `| head -1` does, and returns the first line and how the process ended.
fn read_one_line_and_close(
    conf: &std::path::Path,
    args: &[&str],
) -> (String, std::process::Output) {
    use std::io::BufRead;
    let (cmd, rest) = args.split_first().expect("a command");
    let mut child = Command::new(ispmux_bin())
        .arg(cmd)
        .arg("-c")
        .arg(conf)
        .args(rest)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = String::new();
    let mut rd = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    rd.read_line(&mut first).expect("first line");
    drop(rd);
    (first, child.wait_with_output().expect("wait"))
}

/// More rows than a pipe holds (64 KiB), so the writer meets the closed pipe.
const MANY: u32 = 3000;

fn assert_quiet_end(what: &str, out: &std::process::Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(out.status.success(), "{what}: {out:?}");
}

#[test]
fn subscriber_list_into_a_closed_pipe_ends_quietly() {
    let d = TempDir::new("list-pipe");
    let conf = registry_conf(&d);
    let csv = d.join("subs.csv");
    let mut rows = String::from("mac,isp,customer_id,password\n");
    for i in 0..MANY {
        rows.push_str(&format!(
            "02:00:00:00:{:02x}:{:02x},isp-a,customer-{i},\n",
            i >> 8,
            i & 0xff
        ));
    }
    std::fs::write(&csv, rows).expect("csv");
    let imported = registry_cmd(
        &conf,
        &["subscriber", "import", csv.to_str().expect("path")],
    );
    assert!(imported.status.success(), "{imported:?}");
    let (first, out) = read_one_line_and_close(&conf, &["subscriber", "list"]);
    assert_eq!(first, "mac,isp,customer_id,status,ipv4,expires\n");
    assert_quiet_end("subscriber list", &out);
}

#[test]
fn refusals_into_a_closed_pipe_end_quietly() {
    let d = TempDir::new("refusals-pipe");
    let conf = registry_conf(&d);
    // The first run creates the store; then refusals as the daemon would have logged them.
    let empty = registry_cmd(&conf, &["refusals"]);
    assert!(empty.status.success(), "{empty:?}");
    let mut db = rusqlite::Connection::open(d.join("ispmux.db")).expect("store");
    let tx = db.transaction().expect("tx");
    for i in 0..MANY {
        tx.execute(
            "INSERT INTO refusal (at, mac, isp, reason) VALUES (?1, ?2, 'isp-a', 'bad credential')",
            rusqlite::params![
                1_700_000_000 + i64::from(i),
                format!("02:00:00:00:{:02x}:{:02x}", i >> 8, i & 0xff)
            ],
        )
        .expect("insert");
    }
    tx.commit().expect("commit");
    drop(db);
    let (first, out) = read_one_line_and_close(&conf, &["refusals", "--limit", "100000"]);
    assert_eq!(first, "at,mac,isp,reason\n");
    assert_quiet_end("refusals", &out);
}
