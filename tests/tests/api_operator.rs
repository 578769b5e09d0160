//! The operator's routes on a running `ispmux run`: an ISP created through the API is
//! written into the configuration file, reloaded into the running gateway, seen by
//! `GET /v1/isps` and `ispmux ctl stats`, given a token that registers a subscriber; its
//! label changed; then removed, by force since it has a subscriber.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ispmux_tests::{ispmux_bin, operator_token, TempDir};
use serde_json::{json, Value};

fn conf(d: &TempDir, port: u16) -> (PathBuf, String) {
    let (token, hash_line) = operator_token(&ispmux_bin()).expect("operator token");
    let f = d.join("ispmux.toml");
    std::fs::write(
        &f,
        format!(
            r#"# Written by hand; the API keeps this comment.
[eal]
lcores = [0, 1]
memory_mb = 256
hugepages = "off"
file_prefix = "apiop-{pid}"

[[port]]
name = "acc"
device = "net_null0"
role = "access"

[[port]]
name = "core"
device = "net_null1"
role = "core"
twin = "apio-c{pid}"

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
threads = 1
argon2_m_kib = 1024
argon2_t = 1
{hash_line}
"#,
            pid = std::process::id(),
            db = d.join("ispmux.db").display(),
            sock = d.join("ctl.sock").display(),
            relay = std::net::Ipv4Addr::from(0x7f00_0001 | (std::process::id() & 0xffff) << 8),
        ),
    )
    .expect("write");
    (f, token)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One request with curl: the status and the body as JSON.
fn curl(port: u16, token: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "20", "-X", method])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["-w", "\n%{http_code}"]);
    if let Some(b) = body {
        c.args(["-H", "content-type: application/json", "--data-binary"])
            .arg(b.to_string());
    }
    let out = c
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
    (
        code.parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

fn ctl_stats(sock: &Path) -> Value {
    let out = Command::new(ispmux_bin())
        .args(["ctl", "--json", "-s"])
        .arg(sock)
        .arg("stats")
        .output()
        .expect("ctl");
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("json")
}

fn stats_names(sock: &Path) -> Vec<String> {
    ctl_stats(sock)["pipeline"]["isps"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn isp_label(port: u16, token: &str, name: &str) -> Option<Value> {
    let (code, v) = curl(port, token, "GET", "/v1/isps", None);
    assert_eq!(code, 200, "{v}");
    v["isps"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["name"] == name))
        .map(|i| i["label"].clone())
}

#[test]
fn the_operator_creates_relabels_and_removes_an_isp_on_a_running_gateway() {
    let d = TempDir::new("api-operator");
    let port = free_port();
    let (conf, token) = conf(&d, port);
    let sock = d.join("ctl.sock");
    let daemon = ispmux_tests::Daemon::new(
        Command::new(ispmux_bin())
            .args(["run", "-c"])
            .arg(&conf)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn"),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() || !sock.exists() {
        assert!(Instant::now() < deadline, "the API never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!stats_names(&sock).contains(&"isp-b".to_owned()));

    let isp_b = json!({
        "id": 2,
        "name": "isp-b",
        "gateway": "198.18.2.1",
        "upstream": { "label": 1002, "port": "core", "next_hop": "02:00:00:02:00:01" },
        "dhcp": { "servers": ["127.0.0.3"] },
    });
    let (code, v) = curl(port, &token, "POST", "/v1/isps", Some(&isp_b));
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["reload"]["changes"]["isps_added"], json!([2]), "{v}");
    assert_eq!(v["reload"]["changes"]["dhcp_isps_added"], json!(["isp-b"]));
    assert_eq!(isp_label(port, &token, "isp-b"), Some(json!(1002)));
    assert!(stats_names(&sock).contains(&"isp-b".to_owned()));
    // An ISP's token for it is issued as for any other, and registers a subscriber.
    let (code, v) = curl(port, &token, "POST", "/v1/isps/isp-b/tokens", None);
    assert_eq!(code, 201, "{v}");
    let token_b = v["token"].as_str().expect("token").to_owned();
    let (code, v) = curl(
        port,
        &token_b,
        "POST",
        "/v1/isps/isp-b/subscribers",
        Some(&json!({ "mac": "02:00:00:bb:00:01", "customer_id": "B1" })),
    );
    assert_eq!(code, 201, "{v}");
    // ISP B's token may not touch the configuration.
    let (code, _) = curl(port, &token_b, "DELETE", "/v1/isps/isp-b?force=true", None);
    assert_eq!(code, 403);

    let (code, v) = curl(
        port,
        &token,
        "PATCH",
        "/v1/isps/isp-b",
        Some(&json!({ "upstream": { "label": 1012 } })),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["reload"]["changes"]["isps_changed"], json!([2]), "{v}");
    assert_eq!(v["reload"]["changes"]["fecs"], 1, "{v}");
    assert_eq!(isp_label(port, &token, "isp-b"), Some(json!(1012)));
    let text = std::fs::read_to_string(&conf).expect("config");
    assert!(text.starts_with("# Written by hand; the API keeps this comment."));
    assert!(text.contains("label = 1012"), "{text}");
    let check = Command::new(ispmux_bin())
        .args(["check", "-c"])
        .arg(&conf)
        .output()
        .expect("check");
    assert!(check.status.success(), "{check:?}");

    // A change the configuration refuses: the file and the gateway stay as they were.
    let (code, v) = curl(
        port,
        &token,
        "PATCH",
        "/v1/isps/isp-b",
        Some(&json!({ "upstream": { "label": 1001 } })),
    );
    assert_eq!((code, &v["field"]), (422, &json!("upstream.label")), "{v}");
    assert_eq!(std::fs::read_to_string(&conf).expect("config"), text);

    // It has a subscriber: removed only by force, and the subscriber with it.
    let (code, v) = curl(port, &token, "DELETE", "/v1/isps/isp-b", None);
    assert_eq!((code, &v["error"]), (409, &json!("in use")), "{v}");
    let (code, v) = curl(port, &token, "DELETE", "/v1/isps/isp-b?force=true", None);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["subscribers_removed"], 1, "{v}");
    let (code, _) = curl(port, &token_b, "GET", "/v1/isps/isp-b/subscribers", None);
    assert_eq!(code, 401, "its token went with it");
    assert_eq!(v["reload"]["changes"]["isps_removed"], json!([2]), "{v}");
    assert_eq!(isp_label(port, &token, "isp-b"), None);
    assert!(!stats_names(&sock).contains(&"isp-b".to_owned()));
    let (code, _) = curl(port, &token, "GET", "/v1/isps/isp-b", None);
    assert_eq!(code, 404);
    let out = daemon.stop();
    assert!(out.status.success(), "{out:?}");
}
