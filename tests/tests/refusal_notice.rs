//! The ISP is told of its subscribers' refused logons (seed 001, claim 17): a running gateway
//! POSTs each new refusal to the ISP's `refusal_webhook`, signed with its key, and sends it
//! again after a failure.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::mpsc;

use ispmux_dataplane::synthetic;
use ispmux_slowpath::dhcp::frame::build_udp;
use ispmux_slowpath::dhcp::{MacAddr, Message, MessageType};
use ispmux_tests::{ispmux_bin, TempDir};

const SUSPENDED: &str = "02:00:00:aa:00:07";
const KEY: &str = "isp-a's webhook key";

/// One request the webhook received: its headers (lowercased names) and body.
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A webhook on loopback answering `answers` in turn (then 200), one request per
/// connection; what it received arrives on the channel.
fn webhook(answers: Vec<u16>) -> (u16, mpsc::Receiver<Received>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut answers = answers.into_iter();
        for conn in l.incoming() {
            let Ok(mut c) = conn else { return };
            let mut r = BufReader::new(c.try_clone().expect("clone"));
            let mut headers = Vec::new();
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some((k, v)) = line.trim_end().split_once(':') {
                    headers.push((k.to_ascii_lowercase(), v.trim().to_owned()));
                }
                line.clear();
            }
            let len = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            if r.read_exact(&mut body).is_err() {
                continue;
            }
            let status = answers.next().unwrap_or(200);
            let _ = write!(
                c,
                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            if tx.send(Received { headers, body }).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

fn discover(mac: MacAddr, xid: u32) -> Vec<u8> {
    let payload = Message::new_request(mac, xid, MessageType::Discover).encode();
    build_udp(
        MacAddr::BROADCAST,
        mac,
        (0, 0),
        "0.0.0.0".parse().expect("ip"),
        "255.255.255.255".parse().expect("ip"),
        68,
        67,
        &payload,
    )
    .expect("frame")
}

fn conf(d: &TempDir, pcap: &std::path::Path, hook_port: u16) -> std::path::PathBuf {
    let f = d.join("notice.toml");
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
device = "net_pcap0,rx_pcap={pcap}"
role = "access"

[[port]]
name = "core"
device = "net_null1"
role = "core"
twin = "ispmux-n{pid}"

[dataplane]
pipeline = "node"
idle_sleep = "on"

[store]
path = "{db}"

[dhcp]
relay_address = "{relay}"
server_identifier = "198.18.1.1"

[[dhcp.isps]]
name = "isp-a"
servers = ["127.0.0.2"]
refusal_webhook = "http://127.0.0.1:{hook_port}/refusals"
refusal_webhook_secret = "{KEY}"

[[tables.isps]]
id = 1
name = "isp-a"
gateway = "198.18.1.1"
upstream = {{ label = 1001, port = "core", next_hop = "02:00:00:02:00:01" }}
"#,
            pcap = pcap.display(),
            pid = std::process::id() % 100_000,
            db = d.join("ispmux.db").display(),
            // The ISP-side socket binds this:67; one loopback address per test process.
            relay = std::net::Ipv4Addr::from(0x7f00_0001 | (std::process::id() & 0xffff) << 8),
        ),
    )
    .expect("write");
    f
}

fn ispmux(conf: &std::path::Path, args: &[&str]) -> String {
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

/// HMAC-SHA256 of `body` under [`KEY`] by OpenSSL, an implementation other than the
/// gateway's.
fn openssl_hmac(d: &TempDir, body: &[u8]) -> String {
    let f = d.join("body.json");
    std::fs::write(&f, body).expect("write");
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", KEY, "-r"])
        .arg(&f)
        .output()
        .expect("openssl");
    let s = String::from_utf8_lossy(&out.stdout);
    s.split_whitespace().next().expect("digest").to_owned()
}

#[test]
fn a_refused_logon_is_posted_to_its_isps_webhook_signed_and_retried() {
    let d = TempDir::new("refusal-notice");
    let mac: MacAddr = SUSPENDED.parse().expect("mac");
    let pcap = d.join("discover.pcap");
    let mut w = std::fs::File::create(&pcap).expect("pcap");
    synthetic::write_pcap(&mut w, (0..3).map(|i| discover(mac, 100 + i))).expect("write");
    let (port, got) = webhook(vec![503]);
    let f = conf(&d, &pcap, port);
    ispmux(
        &f,
        &[
            "subscriber",
            "add",
            "--mac",
            SUSPENDED,
            "--isp",
            "isp-a",
            "--customer-id",
            "c-7",
            "--suspended",
        ],
    );
    // The first POST is answered 503; the same refusals go again a second later.
    let out = ispmux(&f, &["run", "--duration", "3"]);
    let first = got.try_recv().unwrap_or_else(|_| panic!("no POST:\n{out}"));
    let second = got
        .try_recv()
        .unwrap_or_else(|_| panic!("no retry:\n{out}"));
    assert_eq!(first.body, second.body);
    let body: serde_json::Value = serde_json::from_slice(&second.body).expect("json");
    assert_eq!(body["isp"], "isp-a", "{body}");
    let refusals = body["refusals"].as_array().expect("refusals");
    assert!(!refusals.is_empty(), "{body}");
    for r in refusals {
        assert_eq!(r["mac"], SUSPENDED, "{body}");
        assert_eq!(r["reason"], "subscriber suspended", "{body}");
    }
    // As many as the log holds for the ISP.
    let logged = ispmux(&f, &["refusals"])
        .lines()
        .filter(|l| l.contains(SUSPENDED))
        .count();
    assert_eq!(refusals.len(), logged, "{body}");
    let header = |r: &Received, k: &str| {
        r.headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(header(&second, "content-type"), "application/json");
    assert_eq!(
        header(&second, "x-ispmux-signature"),
        format!("sha256={}", openssl_hmac(&d, &second.body))
    );
    assert!(got.try_recv().is_err(), "sent again after a 200");

    // Delivered is delivered: the next run (which replays the capture) sends only the
    // refusals it logs itself.
    let last = refusals.iter().filter_map(|r| r["id"].as_i64()).max();
    let out = ispmux(&f, &["run", "--duration", "3"]);
    let again = got
        .try_recv()
        .unwrap_or_else(|_| panic!("no POST for the second run:\n{out}"));
    let body: serde_json::Value = serde_json::from_slice(&again.body).expect("json");
    let ids: Vec<i64> = body["refusals"]
        .as_array()
        .expect("refusals")
        .iter()
        .filter_map(|r| r["id"].as_i64())
        .collect();
    assert!(
        !ids.is_empty() && ids.iter().all(|id| Some(*id) > last),
        "{body}"
    );
}
