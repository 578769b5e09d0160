//! The provisioning API of a running `ispmux run`: an ISP's token issued with
//! `ispmux token`, a subscriber added with curl over TLS and seen by `ispmux subscriber
//! list`, then suspended through the API, its binding withdrawn from the running gateway.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ispmux_tests::{ispmux_bin, operator_token, TempDir};

const SUB: &str = "02:00:00:ab:00:01";

fn conf(d: &TempDir, port: u16) -> std::path::PathBuf {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("certificate");
    std::fs::write(d.join("cert.pem"), ck.cert.pem()).expect("write");
    std::fs::write(d.join("key.pem"), ck.key_pair.serialize_pem()).expect("write");
    let (_, hash_line) = operator_token(&ispmux_bin()).expect("operator token");
    let f = d.join("api.toml");
    std::fs::write(
        &f,
        format!(
            r#"
[eal]
lcores = [0, 1]
memory_mb = 256
hugepages = "off"
file_prefix = "api-{pid}"

[[port]]
name = "acc"
device = "net_null0"
role = "access"

[[port]]
name = "core"
device = "net_null1"
role = "core"
twin = "api-c{pid}"

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

[[dhcp.isps]]
name = "isp-a"
servers = ["127.0.0.2"]

[[tables.isps]]
id = 1
name = "isp-a"
gateway = "198.18.1.1"
upstream = {{ label = 1001, port = "core", next_hop = "02:00:00:02:00:01" }}

[api]
listen = "127.0.0.1:{port}"
tls_cert = "{cert}"
tls_key = "{key}"
threads = 1
argon2_m_kib = 1024
argon2_t = 1
{hash_line}
"#,
            pid = std::process::id(),
            db = d.join("ispmux.db").display(),
            sock = d.join("ctl.sock").display(),
            relay = std::net::Ipv4Addr::from(0x7f00_0001 | (std::process::id() & 0xffff) << 8),
            cert = d.join("cert.pem").display(),
            key = d.join("key.pem").display(),
        ),
    )
    .expect("write");
    f
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn cli(conf: &std::path::Path, args: &[&str]) -> String {
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

#[test]
fn an_isp_provisions_and_suspends_over_tls_on_a_running_gateway() {
    let d = TempDir::new("api-e2e");
    let port = free_port();
    let conf = conf(&d, port);
    let issued = cli(
        &conf,
        &["token", "issue", "--isp", "isp-a", "--label", "e2e"],
    );
    let token = issued
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .expect("the token")
        .to_owned();
    let listed = cli(&conf, &["token", "list"]);
    assert!(
        listed.contains(",isp-a,e2e,") && !listed.contains(&token),
        "{listed}"
    );

    let daemon = ispmux_tests::Daemon::new(
        Command::new(ispmux_bin())
            .args(["run", "-c"])
            .arg(&conf)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn"),
    );
    let url = format!("https://localhost:{port}/v1/isps/isp-a/subscribers");
    let curl = |method: &str, url: &str, body: Option<&str>| {
        let mut c = Command::new("curl");
        c.args(["-sS", "--max-time", "20", "-X", method, "--cacert"])
            .arg(d.join("cert.pem"))
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .args(["-w", "\n%{http_code}"]);
        if let Some(b) = body {
            c.args(["-H", "content-type: application/json", "--data-binary", b]);
        }
        let out = c.arg(url).output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
        (code.to_owned(), body.to_owned())
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the API never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, body) = curl(
        "POST",
        &url,
        Some(&format!(
            r#"{{"mac":"{SUB}","customer_id":"E1","password":"pw"}}"#
        )),
    );
    assert_eq!(code, "201", "{body}");
    let list = cli(&conf, &["subscriber", "list"]);
    assert!(list.contains(&format!("{SUB},isp-a,E1,active")), "{list}");

    // A binding as a logon would have left it, then the suspension through the API.
    ispmux_slowpath::registry::Registry::open(&d.join("ispmux.db"))
        .expect("store")
        .upsert_binding(&ispmux_slowpath::registry::Binding {
            mac: SUB.parse().expect("mac"),
            isp: "isp-a".into(),
            ipv4: "198.18.1.20".parse().expect("ip"),
            expires: std::time::SystemTime::now() + Duration::from_secs(3600),
            server: "127.0.0.2".parse().expect("ip"),
            port: 0,
            vlan: 0,
            inner_vlan: 0,
        })
        .expect("binding");
    let (code, body) = curl("POST", &format!("{url}/{SUB}/suspend"), None);
    assert_eq!(code, "200", "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["binding_withdrawn"]["withdrawn"], true, "{v}");
    let list = cli(&conf, &["subscriber", "list"]);
    assert!(
        list.contains(&format!("{SUB},isp-a,E1,suspended,,")),
        "{list}"
    );

    // An ISP not its own answers 404, as one that does not exist.
    let (code, _) = curl(
        "GET",
        &format!("https://localhost:{port}/v1/isps/isp-z/subscribers"),
        None,
    );
    assert_eq!(code, "404");
    let out = daemon.stop();
    assert!(out.status.success(), "{out:?}");
}
