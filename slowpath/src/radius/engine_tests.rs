//! The engine fed with recorded-style inputs: every flow of figures 6 to 9, each reject reason,
//! and the protocol duties (authenticators, duplicates, failover, probes, disconnects).

use std::net::SocketAddr;
use std::time::Duration;

use ispmux_conf::radius::RadiusConfig;

use super::attr;
use super::crypto::{self, MessageAuth};
use super::engine::{Engine, Input, Listener, Now, Output};
use super::packet::{Code, Packet};
use super::usage::UsageEvent;

const CFG: &str = r#"
[radius]
listen_auth = "127.0.0.1:1812"
listen_acct = "127.0.0.1:1813"
timeouts = { response_ms = 100, retries = 1, probe_interval_ms = 500, reservation_ms = 10000 }

[[radius.nas]]
name = "pop1"
address = "127.0.0.0/24"
secret = "nas"
coa_port = 3799

[radius.master]
name = "msp"
realms = ["msp.example"]
home_servers = [{ address = "127.0.1.1", auth_port = 1812, acct_port = 1813, secret = "msec" }]

[[radius.client_sp]]
name = "csp1"
realms = ["csp1.example"]
called_station_id = ["555-0101"]
strip_realm = true
virtual_user = "vs-csp1"
virtual_password = "vs-pass"
home_servers = [
  { address = "127.0.2.1", secret = "c1sec", require_message_authenticator = true },
  { address = "127.0.2.2", secret = "c1sec" },
]
capacity = { ports = 1, connection_time_s = 3600 }

[[radius.client_sp]]
name = "csp2"
realms = ["csp2.example"]
virtual_user = "vs-csp2"
virtual_password = "vs2"
home_servers = [{ address = "127.0.3.1", secret = "c2sec" }]
capacity = { ports = 5, suspended = true }
"#;

const NAS: &str = "127.0.0.9:40000";
const MASTER: &str = "127.0.1.1:1812";
const MASTER_ACCT: &str = "127.0.1.1:1813";
const CSP1: &str = "127.0.2.1:1812";
const CSP1B: &str = "127.0.2.2:1812";
const CSP1_ACCT: &str = "127.0.2.1:1813";

fn a(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

struct H {
    e: Engine,
    now: Now,
    next_id: u8,
}

fn harness() -> H {
    let cfg = RadiusConfig::from_toml_file_text(CFG).expect("cfg");
    let now = Now::system();
    H {
        e: Engine::new(&cfg, now.mono).expect("engine"),
        now,
        next_id: 0,
    }
}

/// What a home server saw, and how to answer it.
struct Seen {
    slot: u16,
    to: SocketAddr,
    p: Packet,
}

impl H {
    fn feed(&mut self, input: Input<'_>) -> Vec<Output> {
        let mut out = Vec::new();
        self.e.handle(self.now, input, &mut out);
        out
    }

    fn advance(&mut self, ms: u64) -> Vec<Output> {
        self.now.mono += Duration::from_millis(ms);
        self.feed(Input::Timer)
    }

    fn access(&mut self, user: &str, pw: &str) -> (Packet, Vec<u8>) {
        self.next_id = self.next_id.wrapping_add(1);
        let mut p = Packet::new(Code::ACCESS_REQUEST, self.next_id, [self.next_id; 16]);
        p.push(attr::USER_NAME, user.as_bytes().to_vec());
        p.push(
            attr::USER_PASSWORD,
            crypto::hide_password(pw.as_bytes(), b"nas", &p.authenticator).expect("hide"),
        );
        p.push(attr::PROXY_STATE, b"nas-state".to_vec());
        crypto::add_message_authenticator(&mut p);
        let b = crypto::encode_request(&p, b"nas").expect("encode");
        (p, b)
    }

    fn acct(&mut self, user: &str, status: u32, sid: &str, secs: u32) -> (Packet, Vec<u8>) {
        self.next_id = self.next_id.wrapping_add(1);
        let mut p = Packet::new(Code::ACCOUNTING_REQUEST, self.next_id, [0; 16]);
        p.push(attr::USER_NAME, user.as_bytes().to_vec());
        p.push(attr::ACCT_STATUS_TYPE, status.to_be_bytes().to_vec());
        p.push(attr::ACCT_SESSION_ID, sid.as_bytes().to_vec());
        p.push(attr::ACCT_SESSION_TIME, secs.to_be_bytes().to_vec());
        p.push(attr::ACCT_INPUT_OCTETS, 1000u32.to_be_bytes().to_vec());
        let b = crypto::encode_request(&p, b"nas").expect("encode");
        p.authenticator.copy_from_slice(&b[4..20]);
        (p, b)
    }

    fn nas_sends(&mut self, listener: Listener, data: &[u8]) -> Vec<Output> {
        self.feed(Input::Nas {
            listener,
            from: a(NAS),
            data,
        })
    }

    /// The single request sent upstream, checked for its authenticators with `secret`.
    fn upstream(out: &[Output], to: &str, secret: &[u8]) -> Seen {
        let [Output::ToPeer {
            slot,
            to: dst,
            data,
        }] = out
        else {
            panic!("expected one upstream datagram, got {out:?}");
        };
        assert_eq!(*dst, a(to));
        let p = Packet::parse(data).expect("parse");
        if p.code.has_random_authenticator() {
            assert_eq!(
                crypto::check_message_authenticator(data, secret, None),
                MessageAuth::Valid
            );
            assert_eq!(p.attributes[0].typ, attr::MESSAGE_AUTHENTICATOR);
        } else {
            assert!(crypto::check_request_authenticator(data, secret));
        }
        Seen {
            slot: *slot,
            to: *dst,
            p,
        }
    }

    fn answer(&mut self, s: &Seen, code: Code, secret: &[u8], with_ma: bool) -> Vec<Output> {
        let mut r = Packet::new(code, s.p.identifier, [0; 16]);
        if with_ma {
            crypto::add_message_authenticator(&mut r);
        }
        if let Some(u) = s.p.get(attr::USER_NAME) {
            r.push(attr::USER_NAME, u.to_vec());
        }
        for ps in s.p.attributes.iter().filter(|a| a.typ == attr::PROXY_STATE) {
            r.attributes.push(ps.clone());
        }
        let b = crypto::encode_response(&r, secret, &s.p.authenticator).expect("encode");
        self.feed(Input::Peer {
            slot: s.slot,
            from: s.to,
            data: &b,
        })
    }
}

fn password(s: &Seen, secret: &[u8]) -> String {
    let h = s.p.get(attr::USER_PASSWORD).expect("password");
    String::from_utf8(crypto::reveal_password(h, secret, &s.p.authenticator).expect("reveal"))
        .expect("utf8")
}

/// The single answer to the NAS, checked against the NAS request.
fn to_nas(out: &[Output], req: &Packet) -> (Packet, Option<UsageEvent>) {
    let [Output::ToNas {
        to, data, commit, ..
    }] = out
    else {
        panic!("expected one answer to the NAS, got {out:?}");
    };
    assert_eq!(*to, a(NAS));
    assert!(crypto::check_response_authenticator(
        data,
        b"nas",
        &req.authenticator
    ));
    let p = Packet::parse(data).expect("parse");
    if p.code != Code::ACCOUNTING_RESPONSE {
        assert_eq!(p.attributes[0].typ, attr::MESSAGE_AUTHENTICATOR);
        assert_eq!(
            crypto::check_message_authenticator(data, b"nas", Some(&req.authenticator)),
            MessageAuth::Valid
        );
    }
    assert_eq!(
        p.get(attr::PROXY_STATE),
        req.get(attr::PROXY_STATE),
        "Proxy-State returned"
    );
    assert!(commit.len() <= 1);
    (p, commit.first().cloned())
}

#[test]
fn figure6_master_subscriber_access_and_accounting() {
    let mut h = harness();
    let (req, b) = h.access("bob@msp.example", "bobpw");
    let out = h.nas_sends(Listener::Auth, &b);
    let s = H::upstream(&out, MASTER, b"msec");
    assert_eq!(
        s.p.get_string(attr::USER_NAME).as_deref(),
        Some("bob@msp.example")
    );
    assert_eq!(password(&s, b"msec"), "bobpw");
    assert_eq!(s.p.get(attr::PROXY_STATE), Some(&b"nas-state"[..]));
    let out = h.answer(&s, Code::ACCESS_ACCEPT, b"msec", true);
    let (p, _) = to_nas(&out, &req);
    assert_eq!(p.code, Code::ACCESS_ACCEPT);

    let (req, b) = h.acct("bob@msp.example", attr::ACCT_START, "s-bob", 0);
    let out = h.nas_sends(Listener::Acct, &b);
    let s = H::upstream(&out, MASTER_ACCT, b"msec");
    let out = h.answer(&s, Code::ACCOUNTING_RESPONSE, b"msec", false);
    let (p, commit) = to_nas(&out, &req);
    assert_eq!(p.code, Code::ACCOUNTING_RESPONSE);
    assert_eq!(commit, None, "master subscribers are not billed to a CSP");
}

#[test]
fn realmless_and_prefix_realm_routing() {
    let mut h = harness();
    let (_, b) = h.access("carol", "x");
    H::upstream(&h.nas_sends(Listener::Auth, &b), MASTER, b"msec");
    let (_, b) = h.access("csp1.example/dave", "x");
    let s = H::upstream(&h.nas_sends(Listener::Auth, &b), MASTER, b"msec");
    assert_eq!(s.p.get_string(attr::USER_NAME).as_deref(), Some("vs-csp1"));
}

#[test]
fn figure7_master_rejects_virtual_subscriber() {
    let mut h = harness();
    let (req, b) = h.access("alice@csp1.example", "alicepw");
    let s = H::upstream(&h.nas_sends(Listener::Auth, &b), MASTER, b"msec");
    assert_eq!(s.p.get_string(attr::USER_NAME).as_deref(), Some("vs-csp1"));
    assert_eq!(password(&s, b"msec"), "vs-pass");
    let out = h.answer(&s, Code::ACCESS_REJECT, b"msec", true);
    let (p, _) = to_nas(&out, &req);
    assert_eq!(p.code, Code::ACCESS_REJECT);
    assert_eq!(
        p.get_string(attr::USER_NAME).as_deref(),
        Some("alice@csp1.example"),
        "real identity back"
    );
    assert_eq!(h.e.counter("reject", "master_reject"), 1);
}

#[test]
fn figure8_csp_rejects_subscriber() {
    let mut h = harness();
    let (req, b) = h.access("alice@csp1.example", "wrong");
    let s = H::upstream(&h.nas_sends(Listener::Auth, &b), MASTER, b"msec");
    let out = h.answer(&s, Code::ACCESS_ACCEPT, b"msec", true);
    let s = H::upstream(&out, CSP1, b"c1sec");
    assert_eq!(
        s.p.get_string(attr::USER_NAME).as_deref(),
        Some("alice"),
        "stripped"
    );
    assert_eq!(password(&s, b"c1sec"), "wrong");
    let out = h.answer(&s, Code::ACCESS_REJECT, b"c1sec", true);
    let (p, _) = to_nas(&out, &req);
    assert_eq!(p.code, Code::ACCESS_REJECT);
    assert_eq!(
        p.get_string(attr::USER_NAME).as_deref(),
        Some("alice@csp1.example")
    );
    assert_eq!(h.e.counter("reject", "csp_reject"), 1);
    assert_eq!(
        h.e.ports_in_use("csp1", h.now.mono),
        Some(0),
        "port given back"
    );
}

/// Logs alice on through both servers; returns the NAS's view.
fn logon(h: &mut H, user: &str) -> Packet {
    let (req, b) = h.access(user, "pw");
    let s = H::upstream(&h.nas_sends(Listener::Auth, &b), MASTER, b"msec");
    let out = h.answer(&s, Code::ACCESS_ACCEPT, b"msec", true);
    if let [Output::ToPeer { .. }] = out.as_slice() {
        let s = H::upstream(&out, CSP1, b"c1sec");
        let out = h.answer(&s, Code::ACCESS_ACCEPT, b"c1sec", true);
        to_nas(&out, &req).0
    } else {
        to_nas(&out, &req).0
    }
}

fn account(h: &mut H, user: &str, status: u32, sid: &str, secs: u32) -> Option<UsageEvent> {
    let (req, b) = h.acct(user, status, sid, secs);
    let s = H::upstream(&h.nas_sends(Listener::Acct, &b), MASTER_ACCT, b"msec");
    assert_eq!(s.p.get_string(attr::USER_NAME).as_deref(), Some("vs-csp1"));
    let out = h.answer(&s, Code::ACCOUNTING_RESPONSE, b"msec", false);
    let s = H::upstream(&out, CSP1_ACCT, b"c1sec");
    assert_eq!(s.p.get_string(attr::USER_NAME).as_deref(), Some("alice"));
    let out = h.answer(&s, Code::ACCOUNTING_RESPONSE, b"c1sec", false);
    to_nas(&out, &req).1
}

#[test]
fn figure9_csp_accepted_and_dual_accounting_with_port_limit() {
    let mut h = harness();
    let p = logon(&mut h, "alice@csp1.example");
    assert_eq!(p.code, Code::ACCESS_ACCEPT);
    assert_eq!(
        p.get_string(attr::USER_NAME).as_deref(),
        Some("alice@csp1.example")
    );
    // One port rented: the next logon is refused while the first holds it.
    let p = logon(&mut h, "zed@csp1.example");
    assert_eq!(p.code, Code::ACCESS_REJECT);
    assert_eq!(h.e.counter("reject", "no_free_port"), 1);

    let start = account(&mut h, "alice@csp1.example", attr::ACCT_START, "s1", 0);
    assert!(
        matches!(start, Some(UsageEvent::Start { ref csp, ref session_id, .. }) if csp == "csp1" && session_id == "s1")
    );
    assert_eq!(h.e.ports_in_use("csp1", h.now.mono), Some(1));
    let stop = account(&mut h, "alice@csp1.example", attr::ACCT_STOP, "s1", 42);
    assert!(matches!(
        stop,
        Some(UsageEvent::Stop {
            session_secs: 42,
            input_octets: 1000,
            ..
        })
    ));
    assert_eq!(
        h.e.ports_in_use("csp1", h.now.mono),
        Some(0),
        "a Stop frees the port"
    );
    assert_eq!(logon(&mut h, "zed@csp1.example").code, Code::ACCESS_ACCEPT);
}

#[test]
fn reject_reasons_unknown_realm_suspended_time() {
    let mut h = harness();
    let (req, b) = h.access("eve@nowhere.example", "x");
    let (p, _) = to_nas(&h.nas_sends(Listener::Auth, &b), &req);
    assert_eq!(p.code, Code::ACCESS_REJECT);
    assert_eq!(h.e.counter("reject", "unknown_realm"), 1);

    let (req, b) = h.access("sam@csp2.example", "x");
    let s = H::upstream(&h.nas_sends(Listener::Auth, &b), MASTER, b"msec");
    assert_eq!(s.p.get_string(attr::USER_NAME).as_deref(), Some("vs-csp2"));
    let (p, _) = to_nas(&h.answer(&s, Code::ACCESS_ACCEPT, b"msec", true), &req);
    assert_eq!(p.code, Code::ACCESS_REJECT);
    assert_eq!(h.e.counter("reject", "csp_suspended"), 1);

    // csp1 allows 3600 s per month: a closed session of an hour exhausts it.
    h.e.restore(
        &[],
        &[super::usage::UsageRecord {
            csp: "csp1".into(),
            period: super::capacity::period_key(Default::default(), h.now.unix),
            connections: 1,
            connection_secs: 3600,
            input_octets: 0,
            output_octets: 0,
        }],
        h.now.unix,
    );
    assert_eq!(
        logon(&mut h, "alice@csp1.example").code,
        Code::ACCESS_REJECT
    );
    assert_eq!(h.e.counter("reject", "time_threshold"), 1);
}

#[test]
fn called_station_id_identifies_csp() {
    let mut h = harness();
    h.next_id += 1;
    let mut p = Packet::new(Code::ACCESS_REQUEST, 77, [3; 16]);
    p.push(attr::USER_NAME, b"frank".to_vec());
    p.push(attr::CALLED_STATION_ID, b"555-0101".to_vec());
    let b = crypto::encode_request(&p, b"nas").expect("encode");
    let s = H::upstream(&h.nas_sends(Listener::Auth, &b), MASTER, b"msec");
    assert_eq!(s.p.get_string(attr::USER_NAME).as_deref(), Some("vs-csp1"));
}

#[test]
fn duplicates_are_not_proxied_twice() {
    let mut h = harness();
    let (req, b) = h.access("bob@msp.example", "pw");
    let out = h.nas_sends(Listener::Auth, &b);
    let s = H::upstream(&out, MASTER, b"msec");
    assert!(
        h.nas_sends(Listener::Auth, &b).is_empty(),
        "in progress: dropped"
    );
    let first = h.answer(&s, Code::ACCESS_ACCEPT, b"msec", true);
    to_nas(&first, &req);
    let again = h.nas_sends(Listener::Auth, &b);
    assert_eq!(again, first, "cached answer replayed");
    assert_eq!(h.e.counter("event", "duplicate_answered"), 1);
}

#[test]
fn forged_and_unsigned_responses_are_dropped() {
    let mut h = harness();
    let (req, b) = h.access("alice@csp1.example", "pw");
    let s = H::upstream(&h.nas_sends(Listener::Auth, &b), MASTER, b"msec");
    assert!(h
        .answer(&s, Code::ACCESS_ACCEPT, b"forger", true)
        .is_empty());
    assert_eq!(h.e.counter("drop", "bad_response_authenticator"), 1);
    let out = h.answer(&s, Code::ACCESS_ACCEPT, b"msec", true);
    let s = H::upstream(&out, CSP1, b"c1sec");
    // The first CSP server is configured to require Message-Authenticator.
    assert!(h
        .answer(&s, Code::ACCESS_ACCEPT, b"c1sec", false)
        .is_empty());
    assert_eq!(h.e.counter("drop", "missing_message_authenticator"), 1);
    let (p, _) = to_nas(&h.answer(&s, Code::ACCESS_ACCEPT, b"c1sec", true), &req);
    assert_eq!(p.code, Code::ACCESS_ACCEPT);
}

#[test]
fn wrong_secret_nas_and_garbage_are_counted_drops() {
    let mut h = harness();
    let mut p = Packet::new(Code::ACCOUNTING_REQUEST, 1, [0; 16]);
    p.push(attr::USER_NAME, b"bob@msp.example".to_vec());
    let b = crypto::encode_request(&p, b"not-the-secret").expect("encode");
    assert!(h.nas_sends(Listener::Acct, &b).is_empty());
    assert_eq!(h.e.counter("drop", "bad_request_authenticator"), 1);
    let mut p = Packet::new(Code::ACCESS_REQUEST, 1, [1; 16]);
    crypto::add_message_authenticator(&mut p);
    let b = crypto::encode_request(&p, b"not-the-secret").expect("encode");
    assert!(h.nas_sends(Listener::Auth, &b).is_empty());
    assert_eq!(h.e.counter("drop", "bad_message_authenticator"), 1);
    assert!(h.nas_sends(Listener::Auth, &[1, 2, 3]).is_empty());
    assert_eq!(h.e.counter("drop", "malformed"), 1);
    let out = h.feed(Input::Nas {
        listener: Listener::Auth,
        from: a("127.0.9.9:1"),
        data: &b,
    });
    assert!(out.is_empty());
    assert_eq!(h.e.counter("drop", "unknown_nas"), 1);
}

#[test]
fn failover_then_status_server_revival() {
    let mut h = harness();
    let (req, b) = h.access("alice@csp1.example", "pw");
    let s = H::upstream(&h.nas_sends(Listener::Auth, &b), MASTER, b"msec");
    let out = h.answer(&s, Code::ACCESS_ACCEPT, b"msec", true);
    let first = H::upstream(&out, CSP1, b"c1sec");
    // No answer: one retransmission (same octets), then failover to the second server.
    let out = h.advance(100);
    let again = H::upstream(&out, CSP1, b"c1sec");
    assert_eq!(again.p, first.p);
    let out = h.advance(100);
    let s = H::upstream(&out, CSP1B, b"c1sec");
    assert_eq!(
        password(&s, b"c1sec"),
        "pw",
        "re-hidden for the new authenticator"
    );
    let (p, _) = to_nas(&h.answer(&s, Code::ACCESS_ACCEPT, b"c1sec", false), &req);
    assert_eq!(p.code, Code::ACCESS_ACCEPT);
    assert_eq!(h.e.counter("event", "server_dead"), 1);
    // The dead server is probed with Status-Server and revived when it answers.
    let out = h.advance(500);
    let probe = H::upstream(&out, CSP1, b"c1sec");
    assert_eq!(probe.p.code, Code::STATUS_SERVER);
    assert!(h
        .answer(&probe, Code::ACCESS_ACCEPT, b"c1sec", true)
        .is_empty());
    assert_eq!(h.e.counter("event", "server_revived"), 1);
    assert!(h.e.servers_alive().iter().all(|(_, alive)| *alive));
}

#[test]
fn no_live_server_abandons_and_nas_retransmission_retries() {
    let mut h = harness();
    let (req, b) = h.access("bob@msp.example", "pw");
    H::upstream(&h.nas_sends(Listener::Auth, &b), MASTER, b"msec");
    h.advance(100);
    assert!(h.advance(100).is_empty(), "the only master server is dead");
    assert_eq!(h.e.counter("drop", "no_live_home_server"), 1);
    assert_eq!(h.e.in_flight(), 0);
    // The NAS retransmits: the dead server is tried rather than nothing, and its answer
    // revives it before any probe.
    let s = H::upstream(&h.nas_sends(Listener::Auth, &b), MASTER, b"msec");
    assert_eq!(h.e.counter("event", "tried_dead_server"), 1);
    let (p, _) = to_nas(&h.answer(&s, Code::ACCESS_ACCEPT, b"msec", true), &req);
    assert_eq!(p.code, Code::ACCESS_ACCEPT);
    assert_eq!(h.e.counter("event", "server_revived"), 1);
}

#[test]
fn more_than_256_outstanding_to_one_server() {
    let mut h = harness();
    let mut keys = std::collections::HashSet::new();
    for i in 0..300u32 {
        let mut p = Packet::new(Code::ACCESS_REQUEST, i as u8, [0; 16]);
        p.authenticator[..4].copy_from_slice(&i.to_be_bytes());
        p.push(attr::USER_NAME, format!("u{i}@msp.example").into_bytes());
        let b = crypto::encode_request(&p, b"nas").expect("encode");
        let out = h.nas_sends(Listener::Auth, &b);
        let s = H::upstream(&out, MASTER, b"msec");
        assert!(keys.insert((s.slot, s.p.identifier)));
    }
    assert_eq!(h.e.in_flight(), 300);
}

#[test]
fn suspension_disconnects_sessions() {
    let mut h = harness();
    logon(&mut h, "alice@csp1.example");
    account(&mut h, "alice@csp1.example", attr::ACCT_START, "s9", 0);
    let out = h.feed(Input::Suspend {
        csp: "csp1",
        suspended: true,
    });
    let [Output::ToPeer { slot, to, data }] = out.as_slice() else {
        panic!("expected a Disconnect-Request, got {out:?}");
    };
    assert_eq!(*to, a("127.0.0.9:3799"));
    assert!(crypto::check_request_authenticator(data, b"nas"));
    let d = Packet::parse(data).expect("parse");
    assert_eq!(d.code, Code::DISCONNECT_REQUEST);
    assert_eq!(d.get_string(attr::ACCT_SESSION_ID).as_deref(), Some("s9"));
    let ack = Packet::new(Code::DISCONNECT_ACK, d.identifier, [0; 16]);
    let ab = crypto::encode_response(&ack, b"nas", &d.authenticator).expect("encode");
    let (slot, to) = (*slot, *to);
    assert!(h
        .feed(Input::Peer {
            slot,
            from: to,
            data: &ab
        })
        .is_empty());
    assert_eq!(h.e.counter("event", "disconnect_ack"), 1);
    assert_eq!(logon(&mut h, "bea@csp1.example").code, Code::ACCESS_REJECT);
}

#[test]
fn status_server_from_nas_is_answered() {
    let mut h = harness();
    let mut p = Packet::new(Code::STATUS_SERVER, 5, [8; 16]);
    crypto::add_message_authenticator(&mut p);
    let b = crypto::encode_request(&p, b"nas").expect("encode");
    let out = h.nas_sends(Listener::Auth, &b);
    let (r, _) = to_nas(&out, &p);
    assert_eq!(r.code, Code::ACCESS_ACCEPT);
}

#[test]
fn stop_without_user_name_follows_the_session_and_accounting_on_closes_sessions() {
    let mut h = harness();
    logon(&mut h, "alice@csp1.example");
    account(&mut h, "alice@csp1.example", attr::ACCT_START, "s1", 0);
    // Interim without User-Name: found by (NAS, Acct-Session-Id), still goes both ways.
    let (req, mut b) = {
        let (mut p, _) = h.acct("x", attr::ACCT_INTERIM, "s1", 10);
        p.remove(attr::USER_NAME);
        let b = crypto::encode_request(&p, b"nas").expect("encode");
        p.authenticator.copy_from_slice(&b[4..20]);
        (p, b)
    };
    let s = H::upstream(&h.nas_sends(Listener::Acct, &b), MASTER_ACCT, b"msec");
    assert_eq!(s.p.get_string(attr::USER_NAME).as_deref(), Some("vs-csp1"));
    let out = h.answer(&s, Code::ACCOUNTING_RESPONSE, b"msec", false);
    let s = H::upstream(&out, CSP1_ACCT, b"c1sec");
    let out = h.answer(&s, Code::ACCOUNTING_RESPONSE, b"c1sec", false);
    assert!(matches!(
        to_nas(&out, &req).1,
        Some(UsageEvent::Interim {
            session_secs: 10,
            ..
        })
    ));
    // Accounting-On: the NAS restarted; the master is told, csp1's session is closed.
    h.now.unix += 25;
    let (mut p, _) = h.acct("x", attr::ACCT_ON, "", 0);
    p.attributes.clear();
    p.push(attr::ACCT_STATUS_TYPE, attr::ACCT_ON.to_be_bytes().to_vec());
    b = crypto::encode_request(&p, b"nas").expect("encode");
    p.authenticator.copy_from_slice(&b[4..20]);
    let s = H::upstream(&h.nas_sends(Listener::Acct, &b), MASTER_ACCT, b"msec");
    let out = h.answer(&s, Code::ACCOUNTING_RESPONSE, b"msec", false);
    let [Output::ToNas { commit, .. }] = out.as_slice() else {
        panic!("expected the NAS's answer, got {out:?}");
    };
    assert!(
        matches!(commit.as_slice(), [UsageEvent::Stop { session_id, session_secs: 25, .. }] if session_id == "s1"),
        "{commit:?}"
    );
    assert_eq!(h.e.ports_in_use("csp1", h.now.mono), Some(0));
}

#[test]
fn answer_of_the_wrong_kind_is_dropped() {
    let mut h = harness();
    let (_, b) = h.access("bob@msp.example", "pw");
    let s = H::upstream(&h.nas_sends(Listener::Auth, &b), MASTER, b"msec");
    assert!(h
        .answer(&s, Code::ACCOUNTING_RESPONSE, b"msec", true)
        .is_empty());
    assert_eq!(h.e.counter("drop", "unexpected_response_code"), 1);
}

#[test]
fn master_challenge_for_virtual_subscriber_is_a_reject() {
    let mut h = harness();
    let (req, b) = h.access("alice@csp1.example", "pw");
    let s = H::upstream(&h.nas_sends(Listener::Auth, &b), MASTER, b"msec");
    let (p, _) = to_nas(&h.answer(&s, Code::ACCESS_CHALLENGE, b"msec", true), &req);
    assert_eq!(p.code, Code::ACCESS_REJECT);
    assert_eq!(h.e.counter("reject", "master_reject"), 1);
}

#[test]
fn virtual_copy_carries_no_subscriber_credentials_or_conversation() {
    let mut h = harness();
    let mut p = Packet::new(Code::ACCESS_REQUEST, 9, [4; 16]);
    p.push(attr::USER_NAME, b"alice@csp1.example".to_vec());
    p.push(attr::EAP_MESSAGE, vec![2, 1, 0, 5, 1]);
    p.push(attr::STATE, b"csp-state".to_vec());
    p.push(attr::CHAP_PASSWORD, vec![1; 17]);
    crypto::add_message_authenticator(&mut p);
    let b = crypto::encode_request(&p, b"nas").expect("encode");
    let s = H::upstream(&h.nas_sends(Listener::Auth, &b), MASTER, b"msec");
    for t in [
        attr::EAP_MESSAGE,
        attr::STATE,
        attr::CHAP_PASSWORD,
        attr::CHAP_CHALLENGE,
    ] {
        assert_eq!(s.p.get(t), None, "attribute {t} reached the master");
    }
    assert_eq!(password(&s, b"msec"), "vs-pass");
    let out = h.answer(&s, Code::ACCESS_ACCEPT, b"msec", true);
    let s = H::upstream(&out, CSP1, b"c1sec");
    assert_eq!(s.p.get(attr::EAP_MESSAGE), Some(&[2u8, 1, 0, 5, 1][..]));
    assert_eq!(s.p.get(attr::STATE), Some(&b"csp-state"[..]));
    assert_eq!(
        s.p.get(attr::CHAP_CHALLENGE),
        Some(&[4u8; 16][..]),
        "the NAS's authenticator was the challenge"
    );
}

/// A reply's Tunnel-Password and MPPE keys, as a home server hides them for `s`.
fn hidden_reply(s: &Seen, secret: &[u8], tunnel: &[u8], key: &[u8]) -> Vec<u8> {
    use super::salted::{hide, MS_MPPE_RECV_KEY, VENDOR_MICROSOFT};
    let mut r = Packet::new(Code::ACCESS_ACCEPT, s.p.identifier, [0; 16]);
    crypto::add_message_authenticator(&mut r);
    let mut tp = vec![0];
    tp.extend(hide(tunnel, secret, &s.p.authenticator, [0x80, 1]).expect("hide"));
    r.push(attr::TUNNEL_PASSWORD, tp);
    let hk = hide(key, secret, &s.p.authenticator, [0x80, 2]).expect("hide");
    let mut vsa = VENDOR_MICROSOFT.to_be_bytes().to_vec();
    vsa.extend([MS_MPPE_RECV_KEY, (hk.len() + 2) as u8]);
    vsa.extend(hk);
    r.push(attr::VENDOR_SPECIFIC, vsa);
    for ps in s.p.attributes.iter().filter(|a| a.typ == attr::PROXY_STATE) {
        r.attributes.push(ps.clone());
    }
    crypto::encode_response(&r, secret, &s.p.authenticator).expect("encode")
}

#[test]
fn hidden_reply_attributes_are_rehidden_for_the_nas() {
    use super::salted::reveal;
    let mut h = harness();
    // A CSP subscriber: the values come from the CSP's server on the second hop.
    let (req, b) = h.access("alice@csp1.example", "alicepw");
    let s = H::upstream(&h.nas_sends(Listener::Auth, &b), MASTER, b"msec");
    let out = h.answer(&s, Code::ACCESS_ACCEPT, b"msec", true);
    let s = H::upstream(&out, CSP1, b"c1sec");
    let data = hidden_reply(&s, b"c1sec", b"tunnel-pw", &[0xab; 16]);
    let out = h.feed(Input::Peer {
        slot: s.slot,
        from: s.to,
        data: &data,
    });
    let (p, _) = to_nas(&out, &req);
    assert_eq!(p.code, Code::ACCESS_ACCEPT);
    let tp = p.get(attr::TUNNEL_PASSWORD).expect("Tunnel-Password");
    assert_eq!(
        reveal(&tp[1..], b"nas", &req.authenticator).expect("reveal"),
        b"tunnel-pw"
    );
    let vsa = p.get(attr::VENDOR_SPECIFIC).expect("MS-MPPE-Recv-Key");
    assert_eq!(
        reveal(&vsa[6..], b"nas", &req.authenticator).expect("reveal"),
        [0xab; 16]
    );
    assert_eq!(h.e.counter("drop", "bad_tunnel_password"), 0);

    // A master subscriber whose server hid its values with another secret: dropped, counted,
    // and the accept still reaches the NAS.
    let (req, b) = h.access("bob@msp.example", "bobpw");
    let s = H::upstream(&h.nas_sends(Listener::Auth, &b), MASTER, b"msec");
    let mut data = hidden_reply(&s, b"msec", b"x", &[1; 16]);
    // The hidden Tunnel-Password's first block, flipped: its length octet is then garbage.
    let at = data
        .windows(3)
        .position(|w| w == [attr::TUNNEL_PASSWORD, 21, 0])
        .expect("Tunnel-Password")
        + 5;
    data[at] ^= 0xf0;
    let fixed = Packet::parse(&data).expect("parse");
    let data = crypto::encode_response(&fixed, b"msec", &s.p.authenticator).expect("encode");
    let out = h.feed(Input::Peer {
        slot: s.slot,
        from: s.to,
        data: &data,
    });
    let (p, _) = to_nas(&out, &req);
    assert_eq!(p.code, Code::ACCESS_ACCEPT);
    assert_eq!(p.get(attr::TUNNEL_PASSWORD), None);
    assert_eq!(h.e.counter("drop", "bad_tunnel_password"), 1);
    let vsa = p.get(attr::VENDOR_SPECIFIC).expect("MS-MPPE-Recv-Key");
    assert_eq!(
        reveal(&vsa[6..], b"nas", &req.authenticator).expect("reveal"),
        [1; 16]
    );
}

/// A reload: csp1's capacity grows with its session kept (the port it holds still counts),
/// csp2's configured suspension is lifted, and a realm moves to a new CSP; a CSP gone takes
/// no new logon.
#[test]
fn a_reload_changes_capacity_and_realms_keeping_sessions() {
    let mut h = harness();
    assert_eq!(
        logon(&mut h, "alice@csp1.example").code,
        Code::ACCESS_ACCEPT
    );
    account(&mut h, "alice@csp1.example", attr::ACCT_START, "s1", 0);
    assert_eq!(logon(&mut h, "zed@csp1.example").code, Code::ACCESS_REJECT);

    let grown = CFG
        .replace("capacity = { ports = 1,", "capacity = { ports = 2,")
        .replace("capacity = { ports = 5, suspended = true }", "capacity = { ports = 5 }")
        + "\n[[radius.client_sp]]\nname = \"csp3\"\nrealms = [\"csp3.example\"]\nvirtual_user = \"vs-csp3\"\n\
           virtual_password = \"vs3\"\nhome_servers = [{ address = \"127.0.4.1\", secret = \"c3sec\" }]\n\
           capacity = { ports = 1 }\n";
    let cfg = RadiusConfig::from_toml_file_text(&grown).expect("cfg");
    h.e.reconfigure(&cfg, h.now.mono).expect("reload");
    assert_eq!(
        h.e.ports_in_use("csp1", h.now.mono),
        Some(1),
        "session kept"
    );
    assert_eq!(logon(&mut h, "zed@csp1.example").code, Code::ACCESS_ACCEPT);
    assert_eq!(h.e.csp_suspended("csp2"), Some(false));
    let (_, b) = h.access("carl@csp3.example", "x");
    let s = H::upstream(&h.nas_sends(Listener::Auth, &b), MASTER, b"msec");
    assert_eq!(s.p.get_string(attr::USER_NAME).as_deref(), Some("vs-csp3"));

    // csp2 gone: its realm is unknown from now on.
    let without = RadiusConfig::from_toml_file_text(
        &grown
            .replace("realms = [\"csp2.example\"]", "realms = [\"csp2.gone\"]")
            .replace("name = \"csp2\"", "name = \"csp2-renamed\""),
    )
    .expect("cfg");
    h.e.reconfigure(&without, h.now.mono).expect("reload");
    let before = h.e.counter("reject", "unknown_realm");
    let (req, b) = h.access("sam@csp2.example", "x");
    let (p, _) = to_nas(&h.nas_sends(Listener::Auth, &b), &req);
    assert_eq!(p.code, Code::ACCESS_REJECT);
    assert_eq!(h.e.counter("reject", "unknown_realm"), before + 1);
}

/// The counters of the home server at `addr`.
fn home(h: &H, addr: &str) -> super::stats::HomeServerStats {
    h.e.home_server_stats()
        .into_iter()
        .find(|s| s.server == addr)
        .unwrap_or_else(|| panic!("no home server {addr}"))
}

#[test]
fn per_server_counters_and_latency_follow_the_clock() {
    let mut h = harness();
    let (req, b) = h.access("alice@csp1.example", "pw");
    let s = H::upstream(&h.nas_sends(Listener::Auth, &b), MASTER, b"msec");
    h.now.mono += Duration::from_millis(3);
    let out = h.answer(&s, Code::ACCESS_ACCEPT, b"msec", true);
    H::upstream(&out, CSP1, b"c1sec");
    // CSP1 is silent: a retransmission, then failover to CSP1B, which answers in 7 ms.
    H::upstream(&h.advance(100), CSP1, b"c1sec");
    let s = H::upstream(&h.advance(100), CSP1B, b"c1sec");
    h.now.mono += Duration::from_millis(7);
    let (p, _) = to_nas(&h.answer(&s, Code::ACCESS_ACCEPT, b"c1sec", false), &req);
    assert_eq!(p.code, Code::ACCESS_ACCEPT);

    let m = home(&h, MASTER);
    assert_eq!(
        (m.requests, m.answers, m.timeouts, m.retransmits),
        (1, 1, 0, 0)
    );
    assert_eq!(m.response.count, 1);
    assert_eq!(m.response.buckets[3], 1, "3 ms: le=0.005");
    assert_eq!(m.response.sum_ns, 3_000_000);
    assert_eq!(
        m.added.count, 0,
        "the master's answer did not end the request"
    );
    let c = home(&h, CSP1);
    assert_eq!(
        (c.requests, c.answers, c.timeouts, c.retransmits),
        (1, 0, 1, 1)
    );
    assert_eq!(c.response.count, 0);
    let b2 = home(&h, CSP1B);
    assert_eq!((b2.requests, b2.answers, b2.timeouts), (1, 1, 0));
    assert_eq!(b2.response.sum_ns, 7_000_000);
    // Held 3 + 200 + 7 ms: le=0.25.
    assert_eq!(b2.added.sum_ns, 210_000_000);
    assert_eq!(b2.added.buckets[8], 1);
    let csp = &h.e.csp_stats()[0];
    assert_eq!(csp.csp, "csp1");
    assert_eq!((csp.access_requests, csp.accepts, csp.rejects), (1, 1, 0));

    // A master subscriber answered at once: the master's own held time, no CSP counted.
    let (req, b) = h.access("bob@msp.example", "pw");
    let s = H::upstream(&h.nas_sends(Listener::Auth, &b), MASTER, b"msec");
    let (p, _) = to_nas(&h.answer(&s, Code::ACCESS_REJECT, b"msec", true), &req);
    assert_eq!(p.code, Code::ACCESS_REJECT);
    let m = home(&h, MASTER);
    assert_eq!((m.requests, m.answers), (2, 2));
    assert_eq!((m.added.count, m.added.buckets[0]), (1, 1));
    let all = h.e.csp_stats();
    assert_eq!(all.iter().map(|c| c.access_requests).sum::<u64>(), 1);
    assert_eq!(all.iter().map(|c| c.rejects).sum::<u64>(), 0);
}

#[test]
fn per_csp_counters_count_the_proxys_own_rejects_and_accounting() {
    let mut h = harness();
    assert_eq!(
        logon(&mut h, "alice@csp1.example").code,
        Code::ACCESS_ACCEPT
    );
    // One port: refused by the proxy after the master's accept.
    assert_eq!(logon(&mut h, "zed@csp1.example").code, Code::ACCESS_REJECT);
    account(&mut h, "alice@csp1.example", attr::ACCT_START, "s1", 0);
    account(&mut h, "alice@csp1.example", attr::ACCT_STOP, "s1", 5);
    let c = &h.e.csp_stats()[0];
    assert_eq!(
        (c.access_requests, c.accepts, c.rejects, c.challenges),
        (2, 1, 1, 0)
    );
    assert_eq!((c.accounting_requests, c.accounting_responses), (2, 2));
    // The capacity reject ended on the master's answer; the other three on CSP1's.
    assert_eq!(home(&h, MASTER).added.count, 1);
    assert_eq!(home(&h, CSP1).added.count, 3);
    // Accounting went to both servers' accounting ports; they are named by their
    // authentication address.
    assert_eq!(home(&h, MASTER).requests, 4);
    assert_eq!(home(&h, CSP1).requests, 3);
    assert_eq!(home(&h, "127.0.3.1:1812").requests, 0);
}

/// A reload that gives a client SP new server entries (here a new secret) keeps the
/// server's series: one address, its counts carried on.
#[test]
fn a_reload_keeps_a_home_server_one_series() {
    let mut h = harness();
    assert_eq!(
        logon(&mut h, "alice@csp1.example").code,
        Code::ACCESS_ACCEPT
    );
    assert_eq!(home(&h, CSP1).requests, 1);
    // Room for zed beside alice's reserved port.
    let resecreted = CFG
        .replace("capacity = { ports = 1,", "capacity = { ports = 2,")
        .replace(
            "{ address = \"127.0.2.1\", secret = \"c1sec\", require_message_authenticator = true }",
            "{ address = \"127.0.2.1\", secret = \"c1new\", require_message_authenticator = true }",
        );
    assert_ne!(resecreted, CFG);
    let cfg = RadiusConfig::from_toml_file_text(&resecreted).expect("cfg");
    h.e.reconfigure(&cfg, h.now.mono).expect("reload");
    let (req, b) = h.access("zed@csp1.example", "pw");
    let s = H::upstream(&h.nas_sends(Listener::Auth, &b), MASTER, b"msec");
    let s = H::upstream(
        &h.answer(&s, Code::ACCESS_ACCEPT, b"msec", true),
        CSP1,
        b"c1new",
    );
    let (p, _) = to_nas(&h.answer(&s, Code::ACCESS_REJECT, b"c1new", true), &req);
    assert_eq!(p.code, Code::ACCESS_REJECT);
    let all = h.e.home_server_stats();
    assert_eq!(all.iter().filter(|s| s.server == CSP1).count(), 1);
    let c = home(&h, CSP1);
    assert_eq!((c.requests, c.answers, c.added.count), (2, 2, 2));
    assert_eq!(h.e.csp_stats()[0].rejects, 1);
}
