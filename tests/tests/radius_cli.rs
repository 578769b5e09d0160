//! `ispmux radius-proxy` as an operator runs it, between a NAS and real FreeRADIUS servers:
//! a client-SP logon accepted and a logon rejected through the binary, accounting committed,
//! the operator suspending and resuming the client SP over the control socket (`ispmux ctl`,
//! a Disconnect-Request to the NAS), a clean stop on SIGTERM, then `ispmux usage` showing the
//! record from the store; its Prometheus metrics per home server against what radclient sent;
//! its reload on SIGHUP.

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

/// An `ispmux radius-proxy` of one client SP, `csp1` (realms `csp1_realms`, a TOML list),
/// between the NASes of 127.0.0.0/8 and `master` and `csp1`, with a control socket.
struct Standalone {
    dir: tempfile::TempDir,
    master: FreeRadius,
    csp1: FreeRadius,
    auth: SocketAddr,
    acct: SocketAddr,
    sock: std::path::PathBuf,
    conf: std::path::PathBuf,
    proxy: Option<Daemon>,
}

impl Standalone {
    fn start(csp1_realms: &str) -> Standalone {
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
        let mut s = Standalone {
            auth: ([127, 0, 0, 1], free_port()).into(),
            acct: ([127, 0, 0, 1], free_port()).into(),
            sock: dir.path().join("ctl.sock"),
            conf: dir.path().join("ispmux.toml"),
            dir,
            master,
            csp1,
            proxy: None,
        };
        s.write_config(csp1_realms, "");
        s.proxy = Some(Daemon::new(
            Command::new(ispmux_bin())
                .args(["radius-proxy", "-c"])
                .arg(&s.conf)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("ispmux radius-proxy"),
        ));
        // The control socket is bound once the proxy's sockets are.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ctl_answers(&s.sock) {
            assert!(Instant::now() < deadline, "the proxy never came up");
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    /// Writes the configuration file, `extra` appended to csp1's table.
    fn write_config(&self, csp1_realms: &str, extra: &str) {
        std::fs::write(
            &self.conf,
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

[radius.master]
name = "msp"
realms = ["msp.example"]
home_servers = [{master}]

[[radius.client_sp]]
name = "csp1"
realms = {csp1_realms}
strip_realm = true
virtual_user = "vs-csp1"
virtual_password = "vs1-pass"
home_servers = [{csp1}]
capacity = {{ ports = 10 }}
{extra}
"#,
                db = self.dir.path().join("ispmux.db").display(),
                sock = self.sock.display(),
                auth = self.auth,
                acct = self.acct,
                master = self.master.home_server_toml(""),
                csp1 = self.csp1.home_server_toml(""),
            ),
        )
        .expect("write config");
    }

    fn nas(&self) -> Client {
        Client::new(
            "127.0.0.1:0".parse().expect("addr"),
            self.auth,
            self.acct,
            NAS_SECRET.as_bytes(),
            Duration::from_millis(1000),
            2,
        )
        .expect("client")
    }

    /// Stops the proxy with SIGTERM; what it printed, after checking it stopped cleanly.
    fn stop(&mut self) -> (String, String) {
        let out = self.proxy.take().expect("running").stop();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);
        (stdout, stderr)
    }
}

/// Whether the control socket at `sock` answers `stats`.
fn ctl_answers(sock: &std::path::Path) -> bool {
    Command::new(ispmux_bin())
        .args(["ctl", "-s"])
        .arg(sock)
        .arg("stats")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The value of the sample `series` (name and labels as written) in `text`.
fn sample(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

/// Debian's `promtool check metrics` on `text`: its exit status and what it printed.
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

/// radclient sends logons of master and client-SP subscribers through `ispmux radius-proxy`;
/// its Prometheus metrics count, per home server, the requests each server was sent (a
/// client SP's subscriber goes to the master's server and then to the CSP's), and per
/// client SP its requests and answers; `promtool` finds nothing wrong with the text.
#[test]
fn radius_proxy_metrics_count_per_home_server_what_radclient_sent() {
    let mut s = Standalone::start(r#"["csp1.example"]"#);
    const BOBS: u64 = 5;
    const ALICES: u64 = 3;
    // One packet a paragraph: radclient sends each once (distinct identifiers).
    let mut packets = String::new();
    for _ in 0..BOBS {
        packets.push_str("User-Name = \"bob@msp.example\", User-Password = \"bobpw\"\n\n");
    }
    for _ in 0..ALICES {
        packets.push_str("User-Name = \"alice@csp1.example\", User-Password = \"alicepw\"\n\n");
    }
    let out = ispmux_tests::radius_peers::radclient(s.auth, "auth", NAS_SECRET, &packets);
    assert_eq!(
        out.matches("Received Access-Accept").count() as u64,
        BOBS + ALICES,
        "{out}"
    );

    let m = Command::new(ispmux_bin())
        .args(["ctl", "-s"])
        .arg(&s.sock)
        .args(["metrics", "prometheus"])
        .output()
        .expect("ispmux ctl metrics");
    assert!(m.status.success(), "{m:?}");
    let text = String::from_utf8_lossy(&m.stdout).into_owned();
    let master = format!("server=\"{}\"", s.master.auth);
    let csp1 = format!("server=\"{}\"", s.csp1.auth);
    let at = |family: &str, labels: &str| sample(&text, &format!("{family}{{{labels}}}"));
    assert_eq!(
        at("ispmux_radius_home_requests_total", &master),
        Some(BOBS + ALICES),
        "every logon asks the master's server first:\n{text}"
    );
    assert_eq!(at("ispmux_radius_home_requests_total", &csp1), Some(ALICES));
    assert_eq!(
        at("ispmux_radius_home_answers_total", &master),
        Some(BOBS + ALICES)
    );
    assert_eq!(at("ispmux_radius_home_timeouts_total", &csp1), Some(0));
    assert_eq!(
        at("ispmux_radius_home_response_seconds_count", &master),
        Some(BOBS + ALICES)
    );
    // The answers that left the proxy: bob's from the master's server, alice's from csp1's.
    assert_eq!(
        at("ispmux_radius_added_latency_seconds_count", &master),
        Some(BOBS)
    );
    assert_eq!(
        at(
            "ispmux_radius_added_latency_seconds_bucket",
            &format!("{csp1},le=\"+Inf\"")
        ),
        Some(ALICES)
    );
    assert_eq!(
        at(
            "ispmux_radius_csp_requests_total",
            "csp=\"csp1\",code=\"access_request\""
        ),
        Some(ALICES)
    );
    assert_eq!(
        at(
            "ispmux_radius_csp_answers_total",
            "csp=\"csp1\",code=\"access_accept\""
        ),
        Some(ALICES)
    );
    let (code, said) = promtool(&text);
    assert_eq!((code, said.as_str()), (Some(0), ""), "promtool on:\n{text}");
    s.stop();
}

/// `kill -HUP` of the daemon.
fn sighup(d: &Daemon) {
    let st = Command::new("kill")
        .args(["-HUP", &d.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
}

/// `ispmux radius-proxy` reloads its file on SIGHUP: a realm added to a client SP takes
/// logons, a client SP added is identified; a file that fails validation, and one that
/// changes what cannot change live, are refused with the reason and the running
/// configuration stays.
#[test]
fn radius_proxy_reloads_its_file_on_sighup() {
    let mut s = Standalone::start(r#"["csp1.example"]"#);
    let mut nas = s.nas();
    let code =
        |nas: &mut Client, user: &str| nas.authenticate(user, "alicepw").expect("answer").code;
    assert_eq!(
        code(&mut nas, "alice@csp1.net"),
        Code::ACCESS_REJECT,
        "unknown realm"
    );
    assert_eq!(code(&mut nas, "alice@csp1.example"), Code::ACCESS_ACCEPT);

    // A second realm for csp1, and a second client SP (its servers those of csp1).
    let csp2 = format!(
        "\n[[radius.client_sp]]\nname = \"csp2\"\nrealms = [\"csp2.example\"]\n\
         strip_realm = true\nvirtual_user = \"vs-csp1\"\nvirtual_password = \"vs1-pass\"\n\
         home_servers = [{}]\ncapacity = {{ ports = 1 }}\n",
        s.csp1.home_server_toml("")
    );
    s.write_config(r#"["csp1.example", "csp1.net"]"#, &csp2);
    sighup(s.proxy.as_ref().expect("running"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while code(&mut nas, "alice@csp1.net") != Code::ACCESS_ACCEPT {
        assert!(Instant::now() < deadline, "the new realm never took logons");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(code(&mut nas, "alice@csp2.example"), Code::ACCESS_ACCEPT);
    let stats = ctl(&s.sock, &["stats"]);
    assert_eq!(stats["radius"]["ports_in_use.csp2"], 1, "{stats}");

    // Invalid: csp1 claims the master's realm. Refused, the running one stays.
    s.write_config(r#"["csp1.example", "msp.example"]"#, "");
    sighup(s.proxy.as_ref().expect("running"));
    // The same refusal, answered, through the control socket.
    let out = Command::new(ispmux_bin())
        .args(["ctl", "-s"])
        .arg(&s.sock)
        .arg("reload")
        .output()
        .expect("ctl reload");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("reload refused"), "{said}");
    assert!(
        said.contains(&s.conf.display().to_string()),
        "the file is named: {said}"
    );
    assert!(
        said.contains("radius.client_sp[0].realms[1]"),
        "the key is named: {said}"
    );
    assert_eq!(
        code(&mut nas, "alice@csp1.net"),
        Code::ACCESS_ACCEPT,
        "still running"
    );

    // What cannot change live (the listening address) is named in the refusal.
    s.write_config(r#"["csp1.example", "csp1.net"]"#, &csp2);
    let before = std::fs::read_to_string(&s.conf).expect("read");
    let moved = before.replace(
        &format!("listen_auth = \"{}\"", s.auth),
        &format!("listen_auth = \"127.0.0.1:{}\"", free_port()),
    );
    assert_ne!(moved, before);
    std::fs::write(&s.conf, moved).expect("write");
    let v = Command::new(ispmux_bin())
        .args(["ctl", "-s"])
        .arg(&s.sock)
        .arg("reload")
        .output()
        .expect("ctl reload");
    let said =
        String::from_utf8_lossy(&v.stdout).into_owned() + &String::from_utf8_lossy(&v.stderr);
    assert!(
        !v.status.success() && said.contains("radius.listen_auth"),
        "{said}"
    );
    assert_eq!(
        code(&mut nas, "alice@csp1.net"),
        Code::ACCESS_ACCEPT,
        "still running"
    );

    let (_, stderr) = s.stop();
    assert!(stderr.contains("SIGHUP: reload refused"), "{stderr}");
}
