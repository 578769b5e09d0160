//! The proxy's sockets without FreeRADIUS: a burst of 300 requests (beyond a default socket
//! buffer) all outstanding to one home server (a second upstream socket opens), answered
//! exactly once each.

use std::collections::HashSet;
use std::net::UdpSocket;
use std::time::Duration;

use ispmux_conf::radius::RadiusConfig;
use ispmux_slowpath::radius::transport::ProxyHandle;
use ispmux_slowpath::radius::{attr, crypto, Code, Packet};
use ispmux_slowpath::udp_batch::enlarge_buffers;

#[test]
fn more_than_256_outstanding_to_one_home_server() {
    // The home server holds every answer until it has 300 requests: all are outstanding at
    // once, so the proxy needs more than one Identifier space toward it.
    let home = UdpSocket::bind("127.0.0.1:0").expect("bind");
    // The proxy sends all 300 in one round: a default buffer (about 256 datagrams) overflows
    // whenever the collector is kept off the CPU for that long.
    enlarge_buffers(&home, 4 << 20);
    home.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let home_addr = home.local_addr().expect("addr");
    let cfg = RadiusConfig::from_toml_file_text(&format!(
        r#"
[radius]
listen_auth = "127.0.0.1:0"
listen_acct = "127.0.0.1:0"
timeouts = {{ response_ms = 20000 }}
[[radius.nas]]
name = "n"
address = "127.0.0.1"
secret = "nas"
[radius.master]
name = "m"
home_servers = [{{ address = "127.0.0.1", auth_port = {}, secret = "home" }}]
"#,
        home_addr.port()
    ))
    .expect("config");
    let proxy = ProxyHandle::spawn(&cfg, None).expect("proxy");

    // The home server reads in its own thread.
    let collector = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut held = Vec::new();
        let mut sources = HashSet::new();
        let mut keys = HashSet::new();
        while held.len() < 300 {
            let (n, from) = home
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("{e}: {} requests reached the home server", held.len()));
            let req = Packet::parse(&buf[..n]).expect("parse");
            assert!(
                keys.insert((from, req.identifier)),
                "(socket, Identifier) reused while outstanding"
            );
            sources.insert(from);
            held.push((req, from));
        }
        (held, sources, home)
    });

    let nases: Vec<UdpSocket> = (0..2)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
            enlarge_buffers(&s, 4 << 20);
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            s
        })
        .collect();
    let mut sent = Vec::new();
    for i in 0..300u32 {
        let mut p = Packet::new(Code::ACCESS_REQUEST, (i / 2) as u8, [0; 16]);
        p.authenticator[..4].copy_from_slice(&i.to_be_bytes());
        p.push(attr::USER_NAME, format!("user{i}").into_bytes());
        let b = crypto::encode_request(&p, b"nas").expect("encode");
        nases[(i % 2) as usize]
            .send_to(&b, proxy.auth_addr)
            .expect("send");
        sent.push(p);
    }
    let (held, sources, home) = collector.join().expect("home server");
    assert!(
        sources.len() >= 2,
        "a second upstream socket carried the overflow"
    );
    for (req, from) in &held {
        let mut r = Packet::new(Code::ACCESS_ACCEPT, req.identifier, [0; 16]);
        r.push(
            attr::USER_NAME,
            req.get(attr::USER_NAME).expect("name").to_vec(),
        );
        let b = crypto::encode_response(&r, b"home", &req.authenticator).expect("encode");
        home.send_to(&b, from).expect("answer");
    }
    let mut buf = [0u8; 4096];
    let mut answered = HashSet::new();
    for s in &nases {
        for _ in 0..150 {
            let (n, _) = s.recv_from(&mut buf).expect("an answer");
            let r = Packet::parse(&buf[..n]).expect("parse");
            assert_eq!(r.code, Code::ACCESS_ACCEPT);
            let name = r.get_string(attr::USER_NAME).expect("name");
            let i: usize = name.trim_start_matches("user").parse().expect("index");
            assert!(crypto::check_response_authenticator(
                &buf[..n],
                b"nas",
                &sent[i].authenticator
            ));
            assert!(answered.insert(i));
        }
    }
    assert_eq!(answered.len(), 300);
    assert_eq!(
        proxy
            .counters()
            .expect("counters")
            .get("drop.unexpected_response"),
        None
    );
}

/// An operator's `suspend` outlives a restart of the proxy on the same store, and overrides
/// the configuration's flag until `resume`, which outlives a restart in turn.
#[test]
fn a_suspension_outlives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("usage.db");
    let cfg = RadiusConfig::from_toml_file_text(
        r#"
[radius]
listen_auth = "127.0.0.1:0"
listen_acct = "127.0.0.1:0"
[[radius.nas]]
name = "n"
address = "127.0.0.1"
secret = "nas"
[radius.master]
name = "m"
home_servers = [{ address = "127.0.0.1", auth_port = 9, secret = "home" }]
[[radius.client_sp]]
name = "csp1"
realms = ["csp1.example"]
virtual_user = "vs"
virtual_password = "vp"
home_servers = [{ address = "127.0.0.1", auth_port = 9, secret = "csp" }]
capacity = { ports = 1 }
"#,
    )
    .expect("config");
    let proxy = ProxyHandle::spawn(&cfg, Some(&db)).expect("proxy");
    let s = proxy.suspend("csp1", true).expect("suspend");
    assert!(!s.was_suspended);
    proxy.stop().expect("stop");

    let proxy = ProxyHandle::spawn(&cfg, Some(&db)).expect("proxy");
    let s = proxy.suspend("csp1", false).expect("resume");
    assert!(s.was_suspended, "suspended again after the restart");
    proxy.stop().expect("stop");

    let proxy = ProxyHandle::spawn(&cfg, Some(&db)).expect("proxy");
    let s = proxy.suspend("csp1", false).expect("resume");
    assert!(!s.was_suspended, "the resumption outlived the restart too");
    proxy.stop().expect("stop");
}
