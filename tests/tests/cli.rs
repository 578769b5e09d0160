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
    // The trace: the next frames' path, one line each (io forwarding: to the peer port).
    let trace = Command::new(ispmux_bin())
        .args(["ctl", "-s"])
        .arg(&sock)
        .args(["trace", "3"])
        .output()
        .expect("ctl trace");
    let trace = String::from_utf8_lossy(&trace.stdout).to_string();
    let lines: Vec<&str> = trace.lines().collect();
    assert_eq!(lines.len(), 3, "{trace}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("p0 ") || l.starts_with("p1 ")),
        "{trace}"
    );
    assert!(
        lines.iter().all(|l| l.contains(": forward port")),
        "{trace}"
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

/// A configuration for the registry commands: a headend with the logon proxy, its store and
/// control socket in `d`, and one ISP.
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
# Its kernel twin, in the host's namespace: a name of this process's own.
twin = "ispmux-c{}"

[dataplane]
pipeline = "node"
idle_sleep = "on"

[store]
path = "{}"

[control]
socket = "{}"

[dhcp]
relay_address = "{}"
server_identifier = "198.18.1.1"

[[dhcp.isps]]
name = "isp-a"
servers = ["127.0.0.2"]

[[tables.isps]]
id = 1
name = "isp-a"
gateway = "198.18.1.1"
upstream = {{ label = 1001, port = "core", next_hop = "02:00:00:02:00:01" }}
"#,
            std::process::id(),
            d.join("ispmux.db").display(),
            d.join("ctl.sock").display(),
            // The ISP-side socket binds this:67; one loopback address per test process.
            std::net::Ipv4Addr::from(0x7f00_0001 | (std::process::id() & 0xffff) << 8),
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

const SUB: &str = "02:00:00:aa:00:01";

fn sub_mac() -> ispmux_slowpath::dhcp::MacAddr {
    SUB.parse().expect("mac")
}

/// The registry as the logon path reads it, on the test's store.
fn registry(d: &TempDir) -> ispmux_slowpath::registry::Registry {
    ispmux_slowpath::registry::Registry::open(&d.join("ispmux.db")).expect("store")
}

/// Registers [`SUB`] with password `old` and gives it a binding, as a logon would have.
fn registered_and_bound(d: &TempDir, conf: &std::path::Path) {
    let added = registry_cmd(
        conf,
        &[
            "subscriber",
            "add",
            "--mac",
            SUB,
            "--isp",
            "isp-a",
            "--customer-id",
            "C1",
            "--password",
            "old",
        ],
    );
    assert!(added.status.success(), "{added:?}");
    registry(d)
        .upsert_binding(&ispmux_slowpath::registry::Binding {
            mac: sub_mac(),
            isp: "isp-a".into(),
            ipv4: "198.18.1.10".parse().expect("ip"),
            expires: std::time::SystemTime::now() + Duration::from_secs(3600),
            server: "127.0.0.2".parse().expect("ip"),
            port: 0,
            vlan: 0,
            inner_vlan: 0,
        })
        .expect("binding");
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn suspend_resume_and_passwd_change_what_a_logon_is_checked_against() {
    use ispmux_slowpath::registry::{password, Status};
    let d = TempDir::new("suspend");
    let conf = registry_conf(&d);
    registered_and_bound(&d, &conf);

    let out = registry_cmd(&conf, &["subscriber", "suspend", SUB]);
    assert!(out.status.success(), "{out:?}");
    let said = stdout(&out);
    assert!(said.contains(&format!("suspended {SUB}")), "{said}");
    // No daemon runs: the binding is gone from the store, so no start reinstalls it.
    assert!(
        said.contains("binding 198.18.1.10 not withdrawn now"),
        "{said}"
    );
    let reg = registry(&d);
    let sub = reg
        .subscriber(sub_mac())
        .expect("read")
        .expect("registered");
    // What the logon engine refuses (RefusalReason::Suspended).
    assert_eq!(sub.status, Status::Suspended);
    assert_eq!(reg.binding(sub_mac()).expect("read"), None);
    let listed = stdout(&registry_cmd(&conf, &["subscriber", "list"]));
    assert!(
        listed.contains(&format!("{SUB},isp-a,C1,suspended,,")),
        "{listed}"
    );

    let out = registry_cmd(&conf, &["subscriber", "resume", SUB]);
    assert!(out.status.success(), "{out:?}");
    let sub = reg
        .subscriber(sub_mac())
        .expect("read")
        .expect("registered");
    assert_eq!(sub.status, Status::Active);
    let old_hash = sub.password_hash.expect("hash");

    // The new password from stdin, as an operator types it (or a script pipes it).
    let mut child = Command::new(ispmux_bin())
        .args(["subscriber", "-c"])
        .arg(&conf)
        .args(["passwd", SUB])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"n3w secret\n").expect("write");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{out:?}");
    let new_hash = reg
        .subscriber(sub_mac())
        .expect("read")
        .and_then(|s| s.password_hash)
        .expect("hash");
    // A new hash: the running gateway's credential cache, keyed on it, no longer matches.
    assert_ne!(new_hash, old_hash);
    assert!(password::verify(&new_hash, b"n3w secret"));
    assert!(!password::verify(&new_hash, b"old"));

    let out = registry_cmd(&conf, &["subscriber", "passwd", SUB, "--password", "third"]);
    assert!(out.status.success(), "{out:?}");
    let hash = reg
        .subscriber(sub_mac())
        .expect("read")
        .and_then(|s| s.password_hash)
        .expect("hash");
    // Argon2 at the production cost is slow in a debug build: one verification is enough.
    assert_ne!(hash, new_hash);

    for cmd in ["suspend", "resume"] {
        let out = registry_cmd(&conf, &["subscriber", cmd, "02:00:00:aa:00:99"]);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("no subscriber 02:00:00:aa:00:99"),
            "{cmd}: {err}"
        );
    }
}

fn slowpath_counter(stats: &str, name: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(stats).expect("stats JSON");
    v["slowpath"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no slowpath.{name} in {stats}"))
}

#[test]
fn suspending_withdraws_the_binding_from_a_running_gateway() {
    let d = TempDir::new("suspend-live");
    let conf = registry_conf(&d);
    registered_and_bound(&d, &conf);
    let daemon = ispmux_tests::Daemon::new(
        Command::new(ispmux_bin())
            .args(["run", "-c"])
            .arg(&conf)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn"),
    );
    let sock = d.join("ctl.sock");
    let stats = || {
        let out = Command::new(ispmux_bin())
            .args(["ctl", "--json", "-s"])
            .arg(&sock)
            .arg("stats")
            .output()
            .expect("ctl");
        out.status.success().then(|| stdout(&out))
    };
    let wait_for = |name: &str, want: u64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = stats().map(|s| slowpath_counter(&s, name));
            if got == Some(want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "slowpath.{name} is {got:?}, not {want}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Restored from the store at start.
    wait_for("bindings_installed", 1);
    let out = registry_cmd(&conf, &["subscriber", "suspend", SUB]);
    assert!(out.status.success(), "{out:?}");
    let said = stdout(&out);
    assert!(
        said.contains("binding 198.18.1.10 withdrawn from the running gateway"),
        "{said}"
    );
    wait_for("bindings_removed", 1);
    let out = daemon.stop();
    assert!(out.status.success(), "{out:?}");
}
