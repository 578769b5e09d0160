//! The capacity-sharing proxy between real NASes (radclient, the project's client) and real
//! FreeRADIUS servers (master SP, client SPs): the flows of figures 6 to 9, every reject
//! reason, the port limit, durable usage records.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ispmux_conf::radius::RadiusConfig;
use ispmux_slowpath::radius::attr;
use ispmux_slowpath::radius::client::Client;
use ispmux_slowpath::radius::transport::ProxyHandle;
use ispmux_slowpath::radius::usage::{self, UsageRecord};
use ispmux_slowpath::radius::{salted, Code, Packet};
use ispmux_tests::radius_peers::{radclient, FreeRadius};

const NAS_SECRET: &str = "nas-secret";

const MASTER_USERS: &str = r#"
vs-csp1 Cleartext-Password := "vs1-pass"
vs-csp2 Cleartext-Password := "vs2-pass"
vs-csp3 Auth-Type := Reject
vs-csp4 Cleartext-Password := "vs4-pass"
bob@msp.example Cleartext-Password := "bobpw"
tina@msp.example Cleartext-Password := "tinapw"
	Tunnel-Password = "master-tunnel-pw",
	MS-MPPE-Send-Key = 0x000102030405060708090a0b0c0d0e0f,
	MS-MPPE-Recv-Key = 0x101112131415161718191a1b1c1d1e1f
"#;
const CSP1_USERS: &str = r#"
alice Cleartext-Password := "alicepw"
zed Cleartext-Password := "zedpw"
tina Cleartext-Password := "tinapw"
	Tunnel-Password = "csp-tunnel-pw",
	MS-MPPE-Send-Key = 0x202122232425262728292a2b2c2d2e2f,
	MS-MPPE-Recv-Key = 0x303132333435363738393a3b3c3d3e3f
"#;
const CSP2_USERS: &str = r#"
carol@csp2.example Cleartext-Password := "carolpw"
"#;

struct World {
    dir: tempfile::TempDir,
    master: FreeRadius,
    csp1: FreeRadius,
    csp1b: Option<FreeRadius>,
    csp2: FreeRadius,
    proxy: Option<ProxyHandle>,
    cfg: RadiusConfig,
}

fn config(
    master: &FreeRadius,
    csp1: &FreeRadius,
    csp1b: Option<&FreeRadius>,
    csp2: &FreeRadius,
    master_extra: &str,
) -> RadiusConfig {
    let csp1_pool = match csp1b {
        Some(b) => format!("{}, {}", csp1.home_server_toml(""), b.home_server_toml("")),
        None => csp1.home_server_toml(""),
    };
    let text = format!(
        r#"
[radius]
listen_auth = "127.0.0.1:0"
listen_acct = "127.0.0.1:0"
timeouts = {{ response_ms = 500, retries = 2, probe_interval_ms = 300 }}

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
realms = ["csp1.example"]
strip_realm = true
virtual_user = "vs-csp1"
virtual_password = "vs1-pass"
home_servers = [{csp1_pool}]
capacity = {{ ports = 1 }}

[[radius.client_sp]]
name = "csp2"
realms = ["csp2.example"]
virtual_user = "vs-csp2"
virtual_password = "vs2-pass"
home_servers = [{csp2}]
capacity = {{ ports = 5, connection_time_s = 60, period = "day" }}

[[radius.client_sp]]
name = "csp3"
realms = ["csp3.example"]
virtual_user = "vs-csp3"
virtual_password = "vs3-pass"
home_servers = [{csp2}]
capacity = {{ ports = 5 }}

[[radius.client_sp]]
name = "csp4"
realms = ["csp4.example"]
virtual_user = "vs-csp4"
virtual_password = "vs4-pass"
home_servers = [{csp2}]
capacity = {{ ports = 5, suspended = true }}
"#,
        master = master.home_server_toml(master_extra),
        csp2 = csp2.home_server_toml(""),
    );
    let cfg = RadiusConfig::from_toml_file_text(&text).expect("proxy config parses");
    assert_eq!(cfg.validate(), vec![], "proxy config validates");
    cfg
}

fn world_with(master_extra: &str, csp1_backup: bool) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    // Started together, waited for together: each takes about a second to come up.
    let mut master = FreeRadius::start(dir.path(), "master", "master-secret", MASTER_USERS);
    let mut csp1 = FreeRadius::start(dir.path(), "csp1", "csp1-secret", CSP1_USERS);
    let mut csp1b =
        csp1_backup.then(|| FreeRadius::start(dir.path(), "csp1b", "csp1-secret", CSP1_USERS));
    let mut csp2 = FreeRadius::start(dir.path(), "csp2", "csp2-secret", CSP2_USERS);
    master.wait_ready();
    csp1.wait_ready();
    if let Some(b) = csp1b.as_mut() {
        b.wait_ready();
    }
    csp2.wait_ready();
    let cfg = config(&master, &csp1, csp1b.as_ref(), &csp2, master_extra);
    let mut w = World {
        dir,
        master,
        csp1,
        csp1b,
        csp2,
        proxy: None,
        cfg,
    };
    w.start_proxy();
    w
}

fn world() -> World {
    world_with("", false)
}

impl World {
    fn db(&self) -> PathBuf {
        self.dir.path().join("usage.db")
    }

    fn start_proxy(&mut self) {
        let db = self.db();
        self.proxy = Some(ProxyHandle::spawn(&self.cfg, Some(&db)).expect("proxy starts"));
    }

    fn proxy(&self) -> &ProxyHandle {
        self.proxy.as_ref().expect("proxy running")
    }

    fn auth(&self) -> SocketAddr {
        self.proxy().auth_addr
    }

    fn nas(&self) -> Client {
        let p = self.proxy();
        Client::new(
            "127.0.0.1:0".parse().expect("addr"),
            p.auth_addr,
            p.acct_addr,
            NAS_SECRET.as_bytes(),
            Duration::from_millis(3000),
            2,
        )
        .expect("client")
    }

    fn counter(&self, name: &str) -> u64 {
        self.proxy()
            .counters()
            .expect("counters")
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    fn records(&self) -> Vec<UsageRecord> {
        let c = rusqlite::Connection::open(self.db()).expect("open usage db");
        usage::records(&c).expect("records")
    }
}

fn code_of(c: &mut Client, user: &str, pw: &str) -> Code {
    c.authenticate(user, pw).expect("an answer").code
}

#[test]
fn figure6_master_subscriber_via_radclient() {
    let w = world();
    let out = radclient(
        w.auth(),
        "auth",
        NAS_SECRET,
        "User-Name = \"bob@msp.example\", User-Password = \"bobpw\", Message-Authenticator = 0x00, Proxy-State = 0x6e6173\n",
    );
    assert!(out.contains("Received Access-Accept"), "{out}");
    assert!(
        out.contains("Proxy-State = 0x6e6173"),
        "Proxy-State returned: {out}"
    );
    let out = radclient(
        w.proxy().acct_addr,
        "acct",
        NAS_SECRET,
        "User-Name = \"bob@msp.example\", Acct-Status-Type = Start, Acct-Session-Id = \"bob-1\"\n",
    );
    assert!(out.contains("Received Accounting-Response"), "{out}");
    assert!(w.master.detail().contains("\"bob-1\""), "master accounted");
    assert!(w.csp1.detail().is_empty() && w.csp2.detail().is_empty());
    assert_eq!(
        w.records(),
        vec![],
        "master subscribers are not billed to a CSP"
    );
}

#[test]
fn figure7_and_proxy_reject_reasons() {
    let w = world();
    let mut nas = w.nas();
    // Figure 7: the master refuses the CSP's virtual subscriber.
    let r = nas.authenticate("dan@csp3.example", "x").expect("answer");
    assert_eq!(r.code, Code::ACCESS_REJECT);
    assert_eq!(
        r.get_string(attr::USER_NAME).as_deref(),
        Some("dan@csp3.example"),
        "the NAS sees the real identity"
    );
    assert_eq!(w.counter("reject.master_reject"), 1);
    // Unknown realm: refused by the proxy, no server asked.
    assert_eq!(
        code_of(&mut nas, "eve@nowhere.example", "x"),
        Code::ACCESS_REJECT
    );
    assert_eq!(w.counter("reject.unknown_realm"), 1);
    // Suspended CSP: the master accepts the virtual subscriber, the proxy refuses.
    assert_eq!(
        code_of(&mut nas, "erin@csp4.example", "x"),
        Code::ACCESS_REJECT
    );
    assert_eq!(w.counter("reject.csp_suspended"), 1);
    // radclient sees the same.
    let out = radclient(
        w.auth(),
        "auth",
        NAS_SECRET,
        "User-Name = \"dan@csp3.example\", User-Password = \"x\"\n",
    );
    assert!(out.contains("Received Access-Reject"), "{out}");
}

#[test]
fn figure8_csp_rejects_subscriber() {
    let w = world();
    let out = radclient(
        w.auth(),
        "auth",
        NAS_SECRET,
        "User-Name = \"alice@csp1.example\", User-Password = \"wrong\", Message-Authenticator = 0x00\n",
    );
    assert!(out.contains("Received Access-Reject"), "{out}");
    assert_eq!(w.counter("reject.csp_reject"), 1);
    // The right password passes both servers (the realm is stripped toward csp1).
    let out = radclient(
        w.auth(),
        "auth",
        NAS_SECRET,
        "User-Name = \"alice@csp1.example\", User-Password = \"alicepw\"\n",
    );
    assert!(out.contains("Received Access-Accept"), "{out}");
}

#[test]
fn figure9_dual_accounting_port_limit_and_durable_usage() {
    let mut w = world();
    let mut nas = w.nas();
    assert_eq!(
        code_of(&mut nas, "alice@csp1.example", "alicepw"),
        Code::ACCESS_ACCEPT
    );
    // csp1 rents one port: held by alice's logon.
    assert_eq!(
        code_of(&mut nas, "zed@csp1.example", "zedpw"),
        Code::ACCESS_REJECT
    );
    assert_eq!(w.counter("reject.no_free_port"), 1);

    let r = nas
        .account("alice@csp1.example", attr::ACCT_START, "alice-s1", 0)
        .expect("acct answer");
    assert_eq!(r.code, Code::ACCOUNTING_RESPONSE);
    let md = w.master.detail();
    assert!(
        md.contains("User-Name = \"vs-csp1\"") && md.contains("\"alice-s1\""),
        "master accounts the virtual subscriber: {md}"
    );
    let cd = w.csp1.detail();
    assert!(
        cd.contains("User-Name = \"alice\"") && cd.contains("\"alice-s1\""),
        "csp1 accounts its subscriber: {cd}"
    );
    assert_eq!(w.records()[0].connections, 1, "committed before the ack");

    // A crash of the proxy loses nothing: the open session still holds the port.
    w.proxy.take().expect("proxy").stop().expect("stop");
    w.start_proxy();
    let mut nas = w.nas();
    assert_eq!(
        code_of(&mut nas, "zed@csp1.example", "zedpw"),
        Code::ACCESS_REJECT
    );

    let r = nas
        .account("alice@csp1.example", attr::ACCT_STOP, "alice-s1", 30)
        .expect("acct answer");
    assert_eq!(r.code, Code::ACCOUNTING_RESPONSE);
    // The Stop freed the port.
    assert_eq!(
        code_of(&mut nas, "zed@csp1.example", "zedpw"),
        Code::ACCESS_ACCEPT
    );
    let rec = w.records();
    assert_eq!(rec.len(), 1, "{rec:?}");
    assert_eq!(rec[0].csp, "csp1");
    assert_eq!(
        (
            rec[0].connections,
            rec[0].connection_secs,
            rec[0].input_octets,
            rec[0].output_octets
        ),
        (1, 30, 1000, 2000)
    );
    let csv = usage::to_csv(&rec);
    assert!(
        csv.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("csp1,") && l.ends_with(",1,30,1000,2000")),
        "{csv}"
    );
}

#[test]
fn connection_time_threshold_refuses_next_logon() {
    let w = world();
    let mut nas = w.nas();
    assert_eq!(
        code_of(&mut nas, "carol@csp2.example", "carolpw"),
        Code::ACCESS_ACCEPT
    );
    for (st, t) in [(attr::ACCT_START, 0), (attr::ACCT_STOP, 61)] {
        let r = nas
            .account("carol@csp2.example", st, "carol-1", t)
            .expect("acct");
        assert_eq!(r.code, Code::ACCOUNTING_RESPONSE);
    }
    // csp2 has 60 s per day; 61 s are used.
    assert_eq!(
        code_of(&mut nas, "carol@csp2.example", "carolpw"),
        Code::ACCESS_REJECT
    );
    assert_eq!(w.counter("reject.time_threshold"), 1);
}

fn wait_for(w: &World, counter: &str, at_least: u64, within: Duration) -> u64 {
    let end = std::time::Instant::now() + within;
    loop {
        let v = w.counter(counter);
        if v >= at_least || std::time::Instant::now() > end {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn home_server_killed_failover_then_status_server_revival() {
    let mut w = world_with("", true);
    w.csp1.kill();
    let mut nas = w.nas();
    // The first csp1 server does not answer: retransmission, then the second one takes over.
    assert_eq!(
        code_of(&mut nas, "alice@csp1.example", "alicepw"),
        Code::ACCESS_ACCEPT
    );
    assert_eq!(w.counter("event.server_dead"), 1);
    assert!(w.counter("event.failover") >= 1);
    assert!(w
        .csp1b
        .as_ref()
        .is_some_and(|b| b.output().contains("Ready")));
    // Probed with Status-Server while dead; revived once it answers again.
    assert!(wait_for(&w, "event.status_server_probe", 1, Duration::from_secs(3)) >= 1);
    assert_eq!(w.counter("event.server_revived"), 0);
    w.csp1.restart();
    assert_eq!(
        wait_for(&w, "event.server_revived", 1, Duration::from_secs(5)),
        1,
        "dead server revived by Status-Server"
    );
}

#[test]
fn response_without_message_authenticator_is_dropped_when_required() {
    // FreeRADIUS 3.2.1 answers without Message-Authenticator; this master requires one.
    let w = world_with(", require_message_authenticator = true", false);
    let mut nas = Client::new(
        "127.0.0.1:0".parse().expect("addr"),
        w.auth(),
        w.proxy().acct_addr,
        NAS_SECRET.as_bytes(),
        Duration::from_millis(1000),
        1,
    )
    .expect("client");
    assert!(
        nas.authenticate("bob@msp.example", "bobpw").is_err(),
        "no answer reaches the NAS"
    );
    assert!(w.counter("drop.missing_message_authenticator") >= 1);
}

#[test]
fn forged_response_dropped_wrong_secret_nas_dropped_duplicates_answered_once() {
    use ispmux_slowpath::radius::{crypto, Packet};
    let w = world();
    // A master that first answers with a forged authenticator, then correctly.
    let fake = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let fake_addr = fake.local_addr().expect("addr");
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        for k in 0..2 {
            let (n, from) = fake.recv_from(&mut buf).expect("recv");
            let req = Packet::parse(&buf[..n]).expect("request");
            let mut r = Packet::new(Code::ACCESS_ACCEPT, req.identifier, [0; 16]);
            crypto::add_message_authenticator(&mut r);
            let secret: &[u8] = if k == 0 { b"forged" } else { b"fake-master" };
            let b = crypto::encode_response(&r, secret, &req.authenticator).expect("encode");
            fake.send_to(&b, from).expect("send");
        }
    });
    let mut cfg = w.cfg.clone();
    cfg.master.home_servers[0].auth_port = fake_addr.port();
    cfg.master.home_servers[0].secret = "fake-master".into();
    let p2 = ProxyHandle::spawn(&cfg, None).expect("second proxy");
    let mut nas = Client::new(
        "127.0.0.1:0".parse().expect("addr"),
        p2.auth_addr,
        p2.acct_addr,
        NAS_SECRET.as_bytes(),
        Duration::from_millis(2000),
        1,
    )
    .expect("client");
    assert_eq!(
        code_of(&mut nas, "bob@msp.example", "bobpw"),
        Code::ACCESS_ACCEPT
    );
    t.join().expect("fake master");
    let c = p2.counters().expect("counters");
    assert_eq!(c.get("drop.bad_response_authenticator"), Some(&1));
    assert!(c.get("event.retransmit").is_some_and(|&n| n >= 1));
    drop(p2);

    // A NAS with the wrong secret: its accounting and signed access requests are dropped.
    let out = radclient(
        w.proxy().acct_addr,
        "acct",
        "wrong-secret",
        "User-Name = \"bob@msp.example\", Acct-Status-Type = Start, Acct-Session-Id = \"w\"\n",
    );
    assert!(out.contains("No reply"), "{out}");
    assert!(w.counter("drop.bad_request_authenticator") >= 1);
    let out = radclient(
        w.auth(),
        "auth",
        "wrong-secret",
        "User-Name = \"bob@msp.example\", User-Password = \"bobpw\", Message-Authenticator = 0x00\n",
    );
    assert!(out.contains("No reply"), "{out}");
    assert!(w.counter("drop.bad_message_authenticator") >= 1);

    // A retransmitted Accounting-Request gets the cached answer; the server sees it once.
    let mut nas = w.nas();
    let p = nas.accounting_request("bob@msp.example", attr::ACCT_START, "dup-1", 0);
    let bytes = crypto::encode_request(&p, NAS_SECRET.as_bytes()).expect("encode");
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let mut answers = Vec::new();
    for _ in 0..2 {
        s.send_to(&bytes, w.proxy().acct_addr).expect("send");
        let mut buf = [0u8; 4096];
        let (n, _) = s.recv_from(&mut buf).expect("an answer each time");
        answers.push(buf[..n].to_vec());
    }
    assert_eq!(answers[0], answers[1]);
    assert!(crypto::check_response_authenticator(
        &answers[0],
        NAS_SECRET.as_bytes(),
        &bytes[4..20].try_into().expect("16")
    ));
    assert_eq!(w.counter("event.duplicate_answered"), 1);
    assert_eq!(w.master.detail().matches("\"dup-1\"").count(), 1);
}

#[test]
fn suspending_a_csp_disconnects_its_sessions() {
    use ispmux_slowpath::radius::{crypto, Packet};
    let mut w = world();
    let das = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind DAS");
    das.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    w.proxy.take().expect("proxy").stop().expect("stop");
    w.cfg.nas[0].coa_port = das.local_addr().expect("addr").port();
    w.start_proxy();
    let mut nas = w.nas();
    assert_eq!(
        code_of(&mut nas, "alice@csp1.example", "alicepw"),
        Code::ACCESS_ACCEPT
    );
    nas.account("alice@csp1.example", attr::ACCT_START, "alice-d", 0)
        .expect("start");
    w.proxy().suspend("csp1", true).expect("suspend");
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
        Some("alice-d")
    );
    let ack = Packet::new(Code::DISCONNECT_ACK, d.identifier, [0; 16]);
    let b = crypto::encode_response(&ack, NAS_SECRET.as_bytes(), &d.authenticator).expect("ack");
    das.send_to(&b, from).expect("send ack");
    assert_eq!(
        wait_for(&w, "event.disconnect_ack", 1, Duration::from_secs(3)),
        1
    );
}

#[test]
fn no_acknowledgement_before_the_usage_record_is_durable() {
    let w = world();
    let mut nas = w.nas();
    assert_eq!(
        code_of(&mut nas, "carol@csp2.example", "carolpw"),
        Code::ACCESS_ACCEPT
    );
    // Another writer holds the store longer than the proxy waits for it: the commit fails,
    // so the NAS gets no answer; its retransmission after the store frees up is answered and
    // the record is then there, once.
    let db = w.db();
    let locker = std::thread::spawn(move || {
        let c = rusqlite::Connection::open(db).expect("open");
        c.execute_batch("BEGIN EXCLUSIVE").expect("lock");
        std::thread::sleep(Duration::from_secs(6));
        c.execute_batch("COMMIT").expect("unlock");
    });
    std::thread::sleep(Duration::from_millis(200));
    let t0 = std::time::Instant::now();
    let (auth, acct) = (w.auth(), w.proxy().acct_addr);
    let accounting = std::thread::spawn(move || {
        let mut slow_nas = Client::new(
            "127.0.0.1:0".parse().expect("addr"),
            auth,
            acct,
            NAS_SECRET.as_bytes(),
            Duration::from_millis(2000),
            6,
        )
        .expect("client");
        slow_nas
            .account("carol@csp2.example", attr::ACCT_START, "carol-durable", 0)
            .expect("answered once the store is free")
    });
    // Meanwhile logons go on: the proxy's loop does not wait on the disk.
    std::thread::sleep(Duration::from_millis(300));
    let t1 = std::time::Instant::now();
    assert_eq!(
        code_of(&mut nas, "bob@msp.example", "bobpw"),
        Code::ACCESS_ACCEPT
    );
    assert!(
        t1.elapsed() < Duration::from_secs(2),
        "logon took {:?}",
        t1.elapsed()
    );
    let r = accounting.join().expect("accounting");
    assert_eq!(r.code, Code::ACCOUNTING_RESPONSE);
    assert!(
        t0.elapsed() >= Duration::from_secs(5),
        "answered after {:?}, before the store was writable",
        t0.elapsed()
    );
    locker.join().expect("locker");
    let rec = w.records();
    assert_eq!(rec.len(), 1, "{rec:?}");
    assert_eq!(rec[0].connections, 1);
}

#[test]
fn chap_logon_of_a_csp_subscriber() {
    // radclient computes CHAP-Password with its Request Authenticator as the challenge; the
    // proxy's hop to the CSP has another authenticator, so it must carry the challenge.
    let w = world();
    let out = radclient(
        w.auth(),
        "auth",
        NAS_SECRET,
        "User-Name = \"zed@csp1.example\", CHAP-Password = \"not-zeds\"\n",
    );
    assert!(out.contains("Received Access-Reject"), "{out}");
    assert_eq!(
        w.counter("reject.csp_reject"),
        1,
        "refused by csp1, not by the proxy"
    );
    let out = radclient(
        w.auth(),
        "auth",
        NAS_SECRET,
        "User-Name = \"alice@csp1.example\", CHAP-Password = \"alicepw\"\n",
    );
    assert!(out.contains("Received Access-Accept"), "{out}");
}

#[test]
fn interim_then_nas_restart_frees_its_ports() {
    let w = world();
    let mut nas = w.nas();
    assert_eq!(
        code_of(&mut nas, "alice@csp1.example", "alicepw"),
        Code::ACCESS_ACCEPT
    );
    for (st, t) in [(attr::ACCT_START, 0), (attr::ACCT_INTERIM, 20)] {
        let r = nas
            .account("alice@csp1.example", st, "alice-r", t)
            .expect("acct");
        assert_eq!(r.code, Code::ACCOUNTING_RESPONSE);
    }
    assert!(
        w.csp1.detail().contains("Interim-Update"),
        "csp1 got the interim"
    );
    assert_eq!(
        code_of(&mut nas, "zed@csp1.example", "zedpw"),
        Code::ACCESS_REJECT
    );
    // Accounting-On: the NAS restarted, its sessions are gone (RFC 2866 section 5.1).
    let mut on = nas.accounting_request("", attr::ACCT_ON, "", 0);
    on.remove(attr::USER_NAME);
    on.remove(attr::ACCT_SESSION_ID);
    let r = nas.exchange(&on).expect("Accounting-On answered");
    assert_eq!(r.code, Code::ACCOUNTING_RESPONSE);
    assert!(w.master.detail().contains("Accounting-On"));
    assert_eq!(w.counter("event.nas_reset"), 1);
    assert_eq!(
        code_of(&mut nas, "zed@csp1.example", "zedpw"),
        Code::ACCESS_ACCEPT,
        "alice's port was freed"
    );
    let rec = w.records();
    assert_eq!(rec.len(), 1, "{rec:?}");
    assert_eq!(rec[0].connections, 1);
    assert!(rec[0].connection_secs >= 20, "{rec:?}");
}

/// The NAS's view of a hidden reply value: Tunnel-Password, or Microsoft sub-attribute `ms`.
fn revealed(reply: &Packet, req: &Packet, ms: Option<u8>) -> Vec<u8> {
    let salted = match ms {
        None => reply
            .get(attr::TUNNEL_PASSWORD)
            .and_then(|v| v.get(1..))
            .expect("Tunnel-Password relayed"),
        Some(t) => reply
            .attributes
            .iter()
            .filter(|a| a.typ == attr::VENDOR_SPECIFIC && a.value.get(4) == Some(&t))
            .find_map(|a| a.value.get(6..))
            .expect("MS-MPPE key relayed"),
    };
    salted::reveal(salted, NAS_SECRET.as_bytes(), &req.authenticator)
        .expect("revealed with the NAS's own secret and authenticator")
}

/// RFC 2868 and RFC 2548: FreeRADIUS hides Tunnel-Password and the MPPE keys for the proxy;
/// the NAS reveals them with its own secret and gets the values of the users file.
#[test]
fn hidden_reply_attributes_reach_the_nas_hidden_for_it() {
    let w = world();
    let mut nas = w.nas();
    for (user, tunnel, send, recv) in [
        ("tina@msp.example", "master-tunnel-pw", 0x00u8, 0x10u8),
        ("tina@csp1.example", "csp-tunnel-pw", 0x20, 0x30),
    ] {
        let req = nas.access_request(user, "tinapw").expect("request");
        let r = nas.exchange(&req).expect("an answer");
        assert_eq!(r.code, Code::ACCESS_ACCEPT, "{user}");
        assert_eq!(revealed(&r, &req, None), tunnel.as_bytes(), "{user}");
        let key = |first: u8| (first..first + 16).collect::<Vec<u8>>();
        assert_eq!(
            revealed(&r, &req, Some(salted::MS_MPPE_SEND_KEY)),
            key(send),
            "{user}"
        );
        assert_eq!(
            revealed(&r, &req, Some(salted::MS_MPPE_RECV_KEY)),
            key(recv),
            "{user}"
        );
    }
    // radclient, FreeRADIUS's own NAS code, decodes them with the NAS's secret too.
    let out = radclient(
        w.auth(),
        "auth",
        NAS_SECRET,
        "User-Name = \"tina@msp.example\", User-Password = \"tinapw\"\n",
    );
    assert!(out.contains("Received Access-Accept"), "{out}");
    assert!(out.contains("\"master-tunnel-pw\""), "{out}");
    assert!(
        out.contains("MS-MPPE-Recv-Key = 0x101112131415161718191a1b1c1d1e1f"),
        "{out}"
    );
    assert_eq!(w.counter("drop.bad_tunnel_password"), 0);
    assert_eq!(w.counter("drop.bad_mppe_key"), 0);
}
