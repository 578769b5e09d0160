//! `ispmux radius-proxy` as an operator runs it, between a NAS and real FreeRADIUS servers:
//! a client-SP logon accepted and a logon rejected through the binary, accounting committed,
//! the operator suspending and resuming the client SP over the control socket (`ispmux ctl`,
//! a Disconnect-Request to the NAS), a clean stop on SIGTERM, then `ispmux usage` showing the
//! record from the store.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ispmux_slowpath::radius::attr;
use ispmux_slowpath::radius::client::Client;
use ispmux_slowpath::radius::{crypto, Code, Packet};
use ispmux_tests::radius_peers::{free_port, FreeRadius};
use ispmux_tests::{ispmux_bin, Daemon};

const NAS_SECRET: &str = "nas-secret";

/// `ispmux ctl -s SOCK ARGS...`, which must succeed; its JSON answer.
fn ctl(sock: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(ispmux_bin())
        .args(["ctl", "--json", "-s"])
        .arg(sock)
        .args(args)
        .output()
        .expect("ispmux ctl");
    assert!(out.status.success(), "ctl {args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).expect("ctl answers JSON")
}

#[test]
fn radius_proxy_binary_logons_sigterm_and_usage_csv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut master = FreeRadius::start(
        dir.path(),
        "master",
        "master-secret",
        "vs-csp1 Cleartext-Password := \"vs1-pass\"\n\
         bob@msp.example Cleartext-Password := \"bobpw\"\n",
    );
    let mut csp1 = FreeRadius::start(
        dir.path(),
        "csp1",
        "csp1-secret",
        "alice Cleartext-Password := \"alicepw\"\n",
    );
    master.wait_ready();
    csp1.wait_ready();

    // The binary logs, but prints no bound address: it gets fixed free ports.
    let auth: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let acct: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    // The store's directory does not exist yet: the proxy creates it.
    let db = dir.path().join("state/ispmux.db");
    let sock = dir.path().join("ctl.sock");
    // The NAS's Dynamic Authorization Server (RFC 5176), where Disconnect-Requests arrive.
    let das = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind DAS");
    das.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let conf = dir.path().join("ispmux.toml");
    std::fs::write(
        &conf,
        format!(
            r#"
[store]
path = "{db}"

[control]
socket = "{sock}"

[radius]
listen_auth = "{auth}"
listen_acct = "{acct}"
timeouts = {{ response_ms = 500, retries = 2 }}

[[radius.nas]]
name = "pop1"
address = "127.0.0.0/8"
secret = "{NAS_SECRET}"
coa_port = {das_port}

[radius.master]
name = "msp"
realms = ["msp.example"]
home_servers = [{master}]

[[radius.client_sp]]
name = "csp1"
realms = ["csp1.example"]
strip_realm = true
virtual_user = "vs-csp1"
virtual_password = "vs1-pass"
home_servers = [{csp1}]
capacity = {{ ports = 1 }}
"#,
            db = db.display(),
            sock = sock.display(),
            das_port = das.local_addr().expect("DAS addr").port(),
            master = master.home_server_toml(""),
            csp1 = csp1.home_server_toml(""),
        ),
    )
    .expect("write config");

    let check = Command::new(ispmux_bin())
        .args(["usage", "--db"])
        .arg(&db)
        .output()
        .expect("ispmux usage");
    assert!(!check.status.success(), "no store yet: usage must say so");

    let proxy = Daemon::new(
        Command::new(ispmux_bin())
            .args(["radius-proxy", "-c"])
            .arg(&conf)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ispmux radius-proxy"),
    );
    let mut nas = Client::new(
        "127.0.0.1:0".parse().expect("addr"),
        auth,
        acct,
        NAS_SECRET.as_bytes(),
        Duration::from_millis(1000),
        2,
    )
    .expect("client");

    // The first answer also tells that the proxy is up: until it binds, the NAS's requests
    // meet a closed port.
    let deadline = Instant::now() + Duration::from_secs(10);
    let rejected = loop {
        match nas.authenticate("bob@msp.example", "wrong") {
            Ok(p) => break p,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for the proxy: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("the proxy never answered: {e}"),
        }
    };
    assert_eq!(rejected.code, Code::ACCESS_REJECT, "master rejects bob");

    let accepted = nas
        .authenticate("alice@csp1.example", "alicepw")
        .expect("answer");
    assert_eq!(
        accepted.code,
        Code::ACCESS_ACCEPT,
        "virtual subscriber at master, then alice at csp1"
    );
    let r = nas
        .account("alice@csp1.example", attr::ACCT_START, "alice-cli-1", 0)
        .expect("accounting answer");
    assert_eq!(r.code, Code::ACCOUNTING_RESPONSE);

    // The operator suspends the CSP: its open session is disconnected at the NAS.
    let v = ctl(&sock, &["suspend", "csp1"]);
    assert_eq!(v["suspended"], true, "{v}");
    assert_eq!(v["was_suspended"], false, "{v}");
    assert_eq!(v["disconnect_requests"], 1, "{v}");
    let mut buf = [0u8; 4096];
    let (n, from) = das.recv_from(&mut buf).expect("a Disconnect-Request");
    assert!(crypto::check_request_authenticator(
        &buf[..n],
        NAS_SECRET.as_bytes()
    ));
    let d = Packet::parse(&buf[..n]).expect("parse");
    assert_eq!(d.code, Code::DISCONNECT_REQUEST);
    assert_eq!(
        d.get_string(attr::ACCT_SESSION_ID).as_deref(),
        Some("alice-cli-1")
    );
    let ack = Packet::new(Code::DISCONNECT_ACK, d.identifier, [0; 16]);
    let b = crypto::encode_response(&ack, NAS_SECRET.as_bytes(), &d.authenticator).expect("ack");
    das.send_to(&b, from).expect("send the ACK");
    // Suspended: the next logon is refused by the proxy.
    let r = nas
        .authenticate("zoe@csp1.example", "x")
        .expect("an answer");
    assert_eq!(
        r.code,
        Code::ACCESS_REJECT,
        "a suspended CSP takes no logon"
    );
    // Neither an unknown CSP nor a missing name is taken for one.
    for bad in [&["suspend", "nosuch"][..], &["resume"][..]] {
        let out = Command::new(ispmux_bin())
            .args(["ctl", "--json", "-s"])
            .arg(&sock)
            .args(bad)
            .output()
            .expect("ctl");
        assert!(!out.status.success(), "{bad:?}: {out:?}");
    }
    let v = ctl(&sock, &["resume", "csp1"]);
    assert_eq!(v["suspended"], false, "{v}");
    assert_eq!(v["was_suspended"], true, "{v}");
    assert_eq!(v["disconnect_requests"], 0, "{v}");

    let r = nas
        .account("alice@csp1.example", attr::ACCT_STOP, "alice-cli-1", 42)
        .expect("accounting answer");
    assert_eq!(r.code, Code::ACCOUNTING_RESPONSE);
    // Resumed, and the Stop freed the CSP's one port: logons are taken again.
    let again = nas
        .authenticate("alice@csp1.example", "alicepw")
        .expect("answer");
    assert_eq!(again.code, Code::ACCESS_ACCEPT, "resumed");
    let stats = ctl(&sock, &["stats"]);
    assert_eq!(stats["radius"]["event.disconnect_ack"], 1, "{stats}");

    let out = proxy.stop();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SIGTERM stops it cleanly: {:?}\n{stdout}\n{stderr}",
        out.status
    );
    // The exit report: the counters as one JSON line.
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("radius "))
        .unwrap_or_else(|| panic!("no radius line in {stdout}"));
    let counters: serde_json::Value = serde_json::from_str(line).expect("counters are JSON");
    assert_eq!(counters["event.access_accept"], 2, "{line}");
    assert_eq!(counters["reject.csp_suspended"], 1, "{line}");

    let usage = Command::new(ispmux_bin())
        .args(["usage", "--csv", "-c"])
        .arg(&conf)
        .output()
        .expect("ispmux usage");
    assert!(
        usage.status.success(),
        "{}",
        String::from_utf8_lossy(&usage.stderr)
    );
    let csv = String::from_utf8_lossy(&usage.stdout);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("csp,period,connections,connection_secs,input_octets,output_octets"),
        "{csv}"
    );
    assert_eq!(lines.len(), 2, "{csv}");
    let fields: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(fields[0], "csp1", "{csv}");
    assert_eq!(&fields[2..4], ["1", "42"], "one connection of 42 s: {csv}");

    // The table form, by --db.
    let table = Command::new(ispmux_bin())
        .args(["usage", "--db"])
        .arg(&db)
        .output()
        .expect("ispmux usage");
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.lines().nth(1).is_some_and(|l| l.starts_with("csp1 ")),
        "{table}"
    );
}

/// `ispmux run` with `[radius]`: the proxy runs beside the data plane, its counters are in
/// the control socket's `stats` and in the exit report, and its ports are released at exit.
#[test]
fn run_starts_the_proxy_beside_the_data_plane() {
    let dir = tempfile::tempdir().expect("tempdir");
    let auth: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let acct: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let sock = dir.path().join("ctl.sock");
    let db = dir.path().join("ispmux.db");
    let conf = dir.path().join("ispmux.toml");
    std::fs::write(
        &conf,
        format!(
            r#"
[eal]
lcores = [0, 1]
memory_mb = 256
hugepages = "off"
file_prefix = "radius-run"

[[port]]
name = "p0"
device = "net_null0"

[[port]]
name = "p1"
device = "net_null1"

[dataplane]
idle_sleep = "on"

[control]
socket = "{sock}"

[store]
path = "{db}"

[radius]
listen_auth = "{auth}"
listen_acct = "{acct}"

[[radius.nas]]
name = "pop1"
address = "127.0.0.1"
secret = "{NAS_SECRET}"

[radius.master]
name = "msp"
home_servers = [{{ address = "127.0.0.1", auth_port = {dead}, secret = "m" }}]
"#,
            sock = sock.display(),
            db = db.display(),
            dead = free_port(),
        ),
    )
    .expect("write config");
    let run = Daemon::new(
        Command::new(ispmux_bin())
            .args(["run", "-c"])
            .arg(&conf)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ispmux run"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        std::net::UdpSocket::bind(auth).is_err(),
        "the proxy holds its auth port while ispmux runs"
    );
    let stats = Command::new(ispmux_bin())
        .args(["ctl", "--json", "-s"])
        .arg(&sock)
        .arg("stats")
        .output()
        .expect("ctl");
    assert!(stats.status.success(), "{stats:?}");
    let v: serde_json::Value = serde_json::from_slice(&stats.stdout).expect("json");
    assert!(
        v["radius"].is_object(),
        "stats carry the proxy's counters: {v}"
    );
    assert!(v["ports"].is_array(), "and the data plane's: {v}");
    // The proxy's operator commands are served by `ispmux run` too.
    let out = Command::new(ispmux_bin())
        .args(["ctl", "--json", "-s"])
        .arg(&sock)
        .args(["suspend", "nosuch"])
        .output()
        .expect("ctl");
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no client SP named \"nosuch\""),
        "{out:?}"
    );

    let out = run.stop();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("ispmux ran"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("radius {")),
        "exit report: {stdout}"
    );
    assert!(db.exists(), "the store is created");
    assert!(
        std::net::UdpSocket::bind(auth).is_ok(),
        "the proxy's port is released at exit"
    );
}
