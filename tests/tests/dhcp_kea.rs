//! The logon engine against a real Kea DHCPv4 server (Debian `kea-dhcp4-server`), through the
//! real ISP-side UDP transport.
//!
//! Each test makes two network namespaces joined by a veth pair: the gateway's (this test
//! thread enters it and binds 198.18.0.1:67) and the ISP's (Kea on 198.18.0.2:67). The
//! subscriber side is scripted: DHCP payloads fed to the engine as if punted from access
//! port 3, VLAN 100. Kea's configuration keys on what the gateway added: a host reservation
//! by circuit-id (`3:100` → 198.18.100.42), client classes on `relay4[6]` (subscriber-id) and
//! `relay4[2]` (remote-id) that add options the subscriber then sees; the subnet is found by
//! RFC 3527 link selection (giaddr 198.18.0.1 is in no subnet of Kea's).
//!
//! Needs root, `ip` and `kea-dhcp4`. Namespace and interface names carry the process id and a
//! counter, so tests run in parallel.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ispmux_conf::dhcp::{DhcpConfig, IspDhcpConfig, RateLimitConfig};
use ispmux_slowpath::dhcp::codec::{code, FLAG_BROADCAST};
use ispmux_slowpath::dhcp::transport::IspSocket;
use ispmux_slowpath::dhcp::{
    BindingChange, Engine, Input, MacAddr, Message, MessageType, Output, Reply,
};
use ispmux_slowpath::registry::{Isp, NewSubscriber, PasswordCost, Registry, Status};
use ispmux_slowpath::time::Now;

const RELAY: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const KEA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const DEAD: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 9);
const GW_ID: Ipv4Addr = Ipv4Addr::new(198, 18, 64, 1);
const RESERVED: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 42);
const RESERVED_UNTAGGED: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 43);
const ALICE: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x01]);
const PORT: u16 = 3;
const VLAN: u16 = 100;

static SEQ: AtomicU32 = AtomicU32::new(0);

fn sh(args: &[&str]) {
    let st = Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(st.success(), "{args:?} failed: {st}");
}

/// Two namespaces and a veth pair; Kea in the ISP one. Torn down on drop.
struct Net {
    gw: String,
    isp: String,
    sub: Option<String>,
    dir: PathBuf,
    kea: Option<Child>,
}

impl Net {
    fn new() -> Net {
        let id = format!(
            "{}x{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let (gw, isp) = (format!("ispmux-dg-{id}"), format!("ispmux-di-{id}"));
        let (vg, vi) = (format!("dg{id}"), format!("di{id}"));
        let dir = std::env::temp_dir().join(format!("ispmux-dhcp-kea-{id}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let net = Net {
            gw: gw.clone(),
            isp: isp.clone(),
            sub: None,
            dir,
            kea: None,
        };
        sh(&["ip", "netns", "add", &gw]);
        sh(&["ip", "netns", "add", &isp]);
        sh(&[
            "ip", "link", "add", &vg, "type", "veth", "peer", "name", &vi,
        ]);
        sh(&["ip", "link", "set", &vg, "netns", &gw]);
        sh(&["ip", "link", "set", &vi, "netns", &isp]);
        sh(&["ip", "-n", &gw, "addr", "add", "198.18.0.1/24", "dev", &vg]);
        sh(&["ip", "-n", &isp, "addr", "add", "198.18.0.2/24", "dev", &vi]);
        for (ns, dev) in [(&gw, &vg), (&isp, &vi)] {
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        net
    }

    /// Moves this thread into the gateway's namespace (sockets made after stay there).
    fn enter_gw(&self) {
        let f = File::open(format!("/var/run/netns/{}", self.gw)).expect("netns file");
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
    }

    /// A subscriber namespace whose `sub0` (MAC = ALICE) is wired to `acc0` in the
    /// gateway's namespace: the access link.
    fn add_subscriber(&mut self) -> String {
        let id = &self.gw["ispmux-dg-".len()..];
        let sub = format!("ispmux-ds-{id}");
        let (va, vs) = (format!("da{id}"), format!("ds{id}"));
        sh(&["ip", "netns", "add", &sub]);
        sh(&[
            "ip", "link", "add", &va, "type", "veth", "peer", "name", &vs,
        ]);
        sh(&["ip", "link", "set", &va, "netns", &self.gw]);
        sh(&["ip", "link", "set", &vs, "netns", &sub]);
        sh(&["ip", "-n", &self.gw, "link", "set", &va, "name", "acc0"]);
        sh(&["ip", "-n", &sub, "link", "set", &vs, "name", "sub0"]);
        sh(&[
            "ip",
            "-n",
            &sub,
            "link",
            "set",
            "sub0",
            "address",
            &ALICE.to_string(),
        ]);
        sh(&["ip", "-n", &self.gw, "link", "set", "acc0", "up"]);
        sh(&["ip", "-n", &sub, "link", "set", "sub0", "up"]);
        sh(&["ip", "-n", &sub, "link", "set", "lo", "up"]);
        self.sub = Some(sub.clone());
        sub
    }

    fn start_kea(&mut self) {
        let dev = format!("di{}", &self.isp["ispmux-di-".len()..]);
        let cfg = serde_json::json!({ "Dhcp4": {
            "interfaces-config": {
                "interfaces": [format!("{dev}/{KEA}")],
                "dhcp-socket-type": "udp"
            },
            "lease-database": { "type": "memfile", "persist": false },
            "authoritative": true,
            "valid-lifetime": 600,
            "host-reservation-identifiers": ["circuit-id", "hw-address"],
            "client-classes": [
                { "name": "subscriber-c1001", "test": "relay4[6].hex == 'C1001'",
                  "option-data": [{ "name": "domain-name", "data": "c1001.isp-a.test",
                                    "always-send": true }] },
                { "name": "remote-alice", "test": "relay4[2].hex == 0x02005e100001",
                  "option-data": [{ "name": "host-name", "data": "alice",
                                    "always-send": true }] }
            ],
            "subnet4": [{
                "id": 1,
                "subnet": "198.18.100.0/24",
                "pools": [{ "pool": "198.18.100.100 - 198.18.100.200" }],
                "reservations": [
                    { "circuit-id": "'3:100'", "ip-address": RESERVED.to_string() },
                    { "circuit-id": "'3:0'", "ip-address": RESERVED_UNTAGGED.to_string() }
                ]
            }],
            "loggers": [{ "name": "kea-dhcp4", "severity": "INFO",
                          "output_options": [{ "output": self.dir.join("kea.log") }] }]
        }});
        let path = self.dir.join("kea.json");
        std::fs::write(&path, cfg.to_string()).expect("kea config");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.isp, "kea-dhcp4", "-c"])
            .arg(&path)
            .env("KEA_LOCKFILE_DIR", &self.dir)
            .env("KEA_PIDFILE_DIR", &self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("kea-dhcp4 (apt-get install kea-dhcp4-server)");
        self.kea = Some(child);
        // Ready when its socket is bound.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ss = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &self.isp,
                    "ss",
                    "-Hlun",
                    "src",
                    &KEA.to_string(),
                ])
                .output()
                .expect("ss");
            if String::from_utf8_lossy(&ss.stdout).contains(":67") {
                return;
            }
            if let Some(Ok(Some(st))) = self.kea.as_mut().map(Child::try_wait) {
                panic!("kea-dhcp4 exited: {st}; see {}", self.dir.display());
            }
            assert!(Instant::now() < deadline, "kea-dhcp4 did not bind {KEA}:67");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Some(mut k) = self.kea.take() {
            k.kill().ok();
            k.wait().ok();
        }
        for ns in [Some(&self.gw), Some(&self.isp), self.sub.as_ref()]
            .into_iter()
            .flatten()
        {
            Command::new("ip").args(["netns", "del", ns]).status().ok();
        }
        if !std::thread::panicking() {
            std::fs::remove_dir_all(&self.dir).ok();
        }
    }
}

/// The engine, its socket, and what it has emitted towards subscribers and the fast path.
struct Gw {
    engine: Engine<Registry>,
    sock: IspSocket,
    replies: Vec<Reply>,
    changes: Vec<BindingChange>,
}

impl Gw {
    fn new(servers: Vec<Ipv4Addr>) -> Gw {
        let cfg = DhcpConfig {
            relay_address: RELAY,
            server_identifier: GW_ID,
            require_credential: false,
            trusted_relay_ports: vec![],
            trusted_relay_port_ids: vec![],
            server_timeout_ms: 300,
            rate_limit: RateLimitConfig::default(),
            unregistered_per_s: 50,
            isps: vec![IspDhcpConfig {
                name: "isp-a".into(),
                servers: servers.clone(),
                link_selection: Some(Ipv4Addr::new(198, 18, 100, 0)),
                refusal_webhook: None,
                refusal_webhook_secret: None,
            }],
        };
        assert_eq!(cfg.validate(), vec![]);
        let mut reg = Registry::open_in_memory()
            .expect("registry")
            .with_password_cost(PasswordCost::TEST);
        reg.upsert_isp(&Isp {
            name: "isp-a".into(),
            label: Some(1001),
            dhcp_servers: servers,
        })
        .expect("isp");
        reg.add_subscriber(&NewSubscriber {
            mac: ALICE,
            isp: "isp-a".into(),
            customer_id: "C1001".into(),
            password: Some("s3cret".into()),
            status: Status::Active,
        })
        .expect("subscriber");
        Gw {
            engine: Engine::new(&cfg, reg),
            sock: IspSocket::bind(RELAY).expect("bind 198.18.0.1:67"),
            replies: Vec::new(),
            changes: Vec::new(),
        }
    }

    fn apply(&mut self, outs: Vec<Output>) {
        for o in outs {
            match o {
                Output::Store(w) => self.engine.directory_mut().apply(&w).expect("store"),
                Output::Binding(c) => self.changes.push(c),
                Output::ToServer { dst, payload } => self.sock.send(dst, &payload).expect("send"),
                Output::ToSubscriber(r) => self.replies.push(r),
                // Verified here and now: this harness has no verification pool.
                Output::Verify(r) => {
                    let out = self.engine.handle(
                        Now::system(),
                        Input::Verified {
                            ticket: r.ticket,
                            valid: Some(r.run()),
                        },
                    );
                    self.apply(out);
                }
            }
        }
    }

    fn subscriber_sends(&mut self, mac: MacAddr, m: &Message) {
        let payload = m.encode();
        let out = self.engine.handle(
            Now::system(),
            Input::FromSubscriber {
                port: PORT,
                vlan: VLAN,
                inner_vlan: 0,
                src_mac: mac,
                payload: &payload,
            },
        );
        self.apply(out);
    }

    /// Pumps the socket and the timer until a reply for the subscriber appears.
    fn reply(&mut self) -> Message {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.replies.is_empty() {
            assert!(Instant::now() < deadline, "no reply within 5 s");
            self.pump();
        }
        let r = self.replies.remove(0);
        assert_eq!((r.port, r.vlan, r.src_ip), (PORT, VLAN, GW_ID));
        Message::decode(&r.payload).expect("reply decodes")
    }

    fn pump(&mut self) {
        while let Some((src, p)) = self.sock.recv().expect("recv") {
            let payload = p.to_vec();
            let out = self.engine.handle(
                Now::system(),
                Input::FromServer {
                    src,
                    payload: &payload,
                },
            );
            self.apply(out);
        }
        let now = Now::system();
        if self.engine.next_deadline().is_some_and(|d| d <= now.mono) {
            let out = self.engine.handle(now, Input::Tick);
            self.apply(out);
        }
        std::thread::sleep(Duration::from_millis(2));
    }

    fn refusals(&mut self) -> Vec<String> {
        self.engine
            .directory_mut()
            .refusals(100)
            .expect("refusals")
            .into_iter()
            .map(|r| r.reason)
            .collect()
    }
}

fn request(t: MessageType, xid: u32) -> Message {
    let mut m = Message::new_request(ALICE, xid, t);
    m.set_option(55, vec![1, 3, 6, 12, 15]);
    m
}

fn with_credential(mut m: Message, pw: &str) -> Message {
    m.set_option(code::LOGON_CUSTOMER_ID, b"C1001".to_vec());
    m.set_option(code::LOGON_PASSWORD, pw.as_bytes().to_vec());
    m
}

fn setup(servers: Vec<Ipv4Addr>, kea: bool) -> (Net, Gw) {
    let mut net = Net::new();
    if kea {
        net.start_kea();
    }
    net.enter_gw();
    let gw = Gw::new(servers);
    (net, gw)
}

#[test]
fn logon_renew_release_through_kea() {
    let (_net, mut gw) = setup(vec![KEA], true);
    let mut d = with_credential(request(MessageType::Discover, 0x51), "s3cret");
    d.flags = FLAG_BROADCAST;
    gw.subscriber_sends(ALICE, &d);
    let offer = gw.reply();
    assert_eq!(offer.message_type(), Some(MessageType::Offer));
    assert_eq!(
        offer.yiaddr, RESERVED,
        "Kea's circuit-id reservation matched"
    );
    assert_eq!(
        offer.ipv4_option(code::SERVER_ID),
        Some(GW_ID),
        "gateway stands in"
    );
    assert_eq!(offer.option(82), None, "option 82 stripped");
    assert_eq!(
        offer.option(15),
        Some(&b"c1001.isp-a.test"[..]),
        "Kea saw subscriber-id"
    );
    assert_eq!(offer.option(12), Some(&b"alice"[..]), "Kea saw remote-id");

    let mut r = with_credential(request(MessageType::Request, 0x51), "s3cret");
    r.set_option(code::SERVER_ID, GW_ID.octets().to_vec());
    r.set_option(code::REQUESTED_IP, RESERVED.octets().to_vec());
    gw.subscriber_sends(ALICE, &r);
    let ack = gw.reply();
    assert_eq!(ack.message_type(), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr, RESERVED);
    let [BindingChange::Install(b)] = &gw.changes[..] else {
        panic!("want one install, got {:?}", gw.changes);
    };
    assert_eq!(
        (b.ipv4, b.port, b.vlan, b.server),
        (RESERVED, PORT, VLAN, KEA)
    );
    let first_expiry = b.expires;
    let stored = gw.engine.directory_mut().bindings().expect("bindings");
    assert_eq!(stored.len(), 1, "binding written to the registry");

    // RENEWING: unicast from the bound client, relayed to the server that granted it.
    std::thread::sleep(Duration::from_millis(1100));
    let mut renew = request(MessageType::Request, 0x52);
    renew.ciaddr = RESERVED;
    gw.subscriber_sends(ALICE, &renew);
    let ack = gw.reply();
    assert_eq!(ack.message_type(), Some(MessageType::Ack));
    let Some(BindingChange::Install(b)) = gw.changes.get(1) else {
        panic!("renewal refreshes the binding: {:?}", gw.changes);
    };
    assert!(b.expires > first_expiry, "expiry moved forward");

    let mut rel = request(MessageType::Release, 0x53);
    rel.ciaddr = RESERVED;
    rel.set_option(code::SERVER_ID, GW_ID.octets().to_vec());
    gw.subscriber_sends(ALICE, &rel);
    assert!(matches!(gw.changes.get(2), Some(BindingChange::Remove(b)) if b.ipv4 == RESERVED));
    assert!(gw
        .engine
        .directory_mut()
        .bindings()
        .expect("bindings")
        .is_empty());
    assert!(gw.refusals().is_empty());
}

#[test]
fn unknown_mac_and_wrong_password_never_reach_kea() {
    let (_net, mut gw) = setup(vec![KEA], true);
    let stranger = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x99]);
    gw.subscriber_sends(
        stranger,
        &Message::new_request(stranger, 1, MessageType::Discover),
    );
    gw.subscriber_sends(
        ALICE,
        &with_credential(request(MessageType::Discover, 2), "guess"),
    );
    for _ in 0..50 {
        gw.pump();
    }
    assert_eq!(gw.engine.counters().relayed, 0);
    assert!(gw.replies.is_empty() && gw.changes.is_empty());
    let mut got = gw.refusals();
    got.sort();
    assert_eq!(got, vec!["bad credential", "unknown subscriber"]);
}

#[test]
fn kea_nak_is_recorded_as_a_refusal() {
    let (_net, mut gw) = setup(vec![KEA], true);
    // INIT-REBOOT for an address Kea will not give this client: authoritative → NAK.
    let mut r = request(MessageType::Request, 0x61);
    r.set_option(code::REQUESTED_IP, vec![198, 18, 100, 7]);
    gw.subscriber_sends(ALICE, &r);
    let nak = gw.reply();
    assert_eq!(nak.message_type(), Some(MessageType::Nak));
    let refusals = gw.refusals();
    assert_eq!(refusals.len(), 1);
    assert!(refusals[0].starts_with("ISP sent DHCPNAK"), "{refusals:?}");
    assert!(gw.changes.is_empty());
}

#[test]
fn dead_first_server_fails_over_to_kea() {
    let (_net, mut gw) = setup(vec![DEAD, KEA], true);
    let started = Instant::now();
    gw.subscriber_sends(ALICE, &request(MessageType::Discover, 0x71));
    let offer = gw.reply();
    assert_eq!(offer.message_type(), Some(MessageType::Offer));
    assert_eq!(offer.yiaddr, RESERVED);
    assert_eq!(gw.engine.counters().failovers, 1);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "waited for the timeout"
    );
    // The answering server is now preferred: the next logon goes straight to Kea.
    gw.subscriber_sends(ALICE, &request(MessageType::Discover, 0x72));
    assert_eq!(gw.reply().yiaddr, RESERVED);
    assert_eq!(gw.engine.counters().failovers, 1);
}

#[test]
fn all_servers_down_is_a_no_answer_refusal() {
    let (_net, mut gw) = setup(vec![DEAD], false);
    gw.subscriber_sends(ALICE, &request(MessageType::Discover, 0x81));
    let deadline = Instant::now() + Duration::from_secs(3);
    while gw.refusals().is_empty() {
        assert!(Instant::now() < deadline, "no refusal");
        gw.pump();
    }
    assert_eq!(gw.refusals(), vec!["no answer from the ISP's DHCP servers"]);
    assert!(gw.replies.is_empty());
}

// ---- Real DHCP clients on the access link ------------------------------------------------
//
// The subscriber is a real udhcpc or ISC dhclient in its own namespace. The test thread
// plays the gateway's punt/inject path with an AF_PACKET socket on `acc0` (what DPDK's
// net_af_packet does) and runs the `LogonService`: frames in, frames out.

use ispmux_slowpath::dhcp::service::{Effects, LogonService};
use pnet_datalink::{Channel, DataLinkSender};

const GW_MAC: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0xff, 0x01]);

fn client_cfg() -> DhcpConfig {
    DhcpConfig {
        relay_address: RELAY,
        server_identifier: GW_ID,
        // The clients must send the logon options, or they are refused.
        require_credential: true,
        trusted_relay_ports: vec![],
        trusted_relay_port_ids: vec![],
        server_timeout_ms: 300,
        rate_limit: RateLimitConfig::default(),
        unregistered_per_s: 50,
        isps: vec![IspDhcpConfig {
            name: "isp-a".into(),
            servers: vec![KEA],
            link_selection: Some(Ipv4Addr::new(198, 18, 100, 0)),
            refusal_webhook: None,
            refusal_webhook_secret: None,
        }],
    }
}

fn inject(tx: &mut Box<dyn DataLinkSender>, fx: Effects) -> Vec<BindingChange> {
    for f in fx.inject {
        match tx.send_to(&f.frame, None) {
            Some(Ok(())) => {}
            other => panic!("inject failed: {other:?}"),
        }
    }
    fx.bindings
}

/// The gateway's side of the access link: the service and an AF_PACKET channel on `acc0`.
struct AccessGw {
    svc: LogonService,
    tx: Box<dyn DataLinkSender>,
    rx: Box<dyn pnet_datalink::DataLinkReceiver>,
    changes: Vec<BindingChange>,
}

impl AccessGw {
    fn start() -> AccessGw {
        let iface = pnet_datalink::interfaces()
            .into_iter()
            .find(|i| i.name == "acc0")
            .expect("acc0 in the gateway namespace");
        let config = pnet_datalink::Config {
            read_timeout: Some(Duration::from_millis(5)),
            ..Default::default()
        };
        let Ok(Channel::Ethernet(mut tx, rx)) = pnet_datalink::channel(&iface, config) else {
            panic!("AF_PACKET channel on acc0");
        };
        let mut reg = Registry::open_in_memory()
            .expect("registry")
            .with_password_cost(PasswordCost::TEST);
        reg.upsert_isp(&Isp {
            name: "isp-a".into(),
            label: Some(1001),
            dhcp_servers: vec![KEA],
        })
        .expect("isp");
        reg.add_subscriber(&NewSubscriber {
            mac: ALICE,
            isp: "isp-a".into(),
            customer_id: "C1001".into(),
            password: Some("s3cret".into()),
            status: Status::Active,
        })
        .expect("subscriber");
        let (svc, fx) = LogonService::start(
            &client_cfg(),
            reg,
            vec![GW_MAC; usize::from(PORT) + 1],
            Now::system(),
        )
        .expect("start");
        let changes = inject(&mut tx, fx);
        AccessGw {
            svc,
            tx,
            rx,
            changes,
        }
    }

    /// Runs the gateway until `client` exits (or `limit`); returns its exit status.
    fn serve(
        &mut self,
        mut client: Child,
        limit: Duration,
        stop_on_install: bool,
    ) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(st)) = client.try_wait() {
                return Some(st);
            }
            if Instant::now() > deadline
                || (stop_on_install
                    && self
                        .changes
                        .iter()
                        .any(|c| matches!(c, BindingChange::Install(_))))
            {
                client.kill().ok();
                client.wait().ok();
                return None;
            }
            if let Ok(frame) = self.rx.next() {
                let frame = frame.to_vec();
                self.svc.punt(Now::system(), PORT, &frame);
            }
            self.svc.poll_isp(Now::system()).expect("isp socket");
            let now = Now::system();
            if self.svc.next_deadline().is_some_and(|d| d <= now.mono) {
                self.svc.tick(now);
            }
            let fx = self.svc.flush();
            let more = inject(&mut self.tx, fx);
            self.changes.extend(more);
        }
    }
}

/// Runs the gateway until `client` exits (or `limit`), returns its exit status, the binding
/// changes seen, and the service.
fn serve_client(
    client: Child,
    limit: Duration,
    stop_on_install: bool,
) -> (
    Option<std::process::ExitStatus>,
    Vec<BindingChange>,
    LogonService,
) {
    let mut gw = AccessGw::start();
    let status = gw.serve(client, limit, stop_on_install);
    (status, gw.changes, gw.svc)
}

/// udhcpc through the shipped logon script.
fn udhcpc(sub: &str, password: &str) -> Child {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../slowpath/logon/udhcpc-ispmux.sh"
    );
    Command::new("ip")
        .args([
            "netns", "exec", sub, "sh", script, "sub0", "C1001", password,
        ])
        .args(["-f", "-q", "-n", "-t", "3", "-T", "1", "-s", "/bin/true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("udhcpc (apt-get install udhcpc)")
}

fn installed(changes: &[BindingChange]) -> Vec<Ipv4Addr> {
    changes
        .iter()
        .filter_map(|c| match c {
            BindingChange::Install(b) => Some(b.ipv4),
            BindingChange::Remove(_) => None,
        })
        .collect()
}

#[test]
fn udhcpc_logs_on_through_the_gateway() {
    let mut net = Net::new();
    let sub = net.add_subscriber();
    net.start_kea();
    net.enter_gw();
    let client = udhcpc(&sub, "s3cret");
    let (status, changes, mut svc) = serve_client(client, Duration::from_secs(10), false);
    assert!(
        status.is_some_and(|s| s.success()),
        "udhcpc got a lease: {status:?}"
    );
    assert_eq!(
        installed(&changes),
        vec![RESERVED_UNTAGGED],
        "circuit-id 3:0 reservation"
    );
    assert!(svc.registry().refusals(10).expect("refusals").is_empty());
    assert_eq!(svc.registry().bindings().expect("bindings").len(), 1);
}

#[test]
fn udhcpc_with_a_wrong_password_gets_no_lease() {
    let mut net = Net::new();
    let sub = net.add_subscriber();
    net.start_kea();
    net.enter_gw();
    let client = udhcpc(&sub, "guess");
    let (status, changes, mut svc) = serve_client(client, Duration::from_secs(10), false);
    assert!(
        status.is_some_and(|s| !s.success()),
        "udhcpc gave up: {status:?}"
    );
    assert!(changes.is_empty());
    assert_eq!(svc.engine().counters().relayed, 0, "Kea never asked");
    let reasons: Vec<String> = svc
        .registry()
        .refusals(10)
        .expect("refusals")
        .into_iter()
        .map(|r| r.reason)
        .collect();
    assert!(
        !reasons.is_empty() && reasons.iter().all(|r| r == "bad credential"),
        "{reasons:?}"
    );
}

#[test]
fn dhclient_with_the_shipped_logon_script_logs_on() {
    let mut net = Net::new();
    let sub = net.add_subscriber();
    net.start_kea();
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../slowpath/logon/dhclient-ispmux.conf"
    ))
    .expect("shipped dhclient config");
    assert!(shipped.contains("\"change-me\""));
    let conf = net.dir.join("dhclient.conf");
    std::fs::write(&conf, shipped.replace("\"change-me\"", "\"s3cret\"")).expect("conf");
    net.enter_gw();
    let client = Command::new("ip")
        .args(["netns", "exec", &sub, "dhclient", "-d", "-1", "-cf"])
        .arg(&conf)
        .arg("-lf")
        .arg(net.dir.join("dhclient.leases"))
        .arg("-pf")
        .arg(net.dir.join("dhclient.pid"))
        .args(["-sf", "/bin/true", "sub0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dhclient (apt-get install isc-dhcp-client)");
    let (_, changes, mut svc) = serve_client(client, Duration::from_secs(15), true);
    assert_eq!(installed(&changes), vec![RESERVED_UNTAGGED]);
    assert!(svc.registry().refusals(10).expect("refusals").is_empty());
}

/// RFC 2131 §4.3.5: a client that has an address asks for configuration only with
/// DHCPINFORM, ciaddr set, and the server unicasts its DHCPACK to ciaddr. Kea does so even
/// for a relayed INFORM, and from the ISP's network ciaddr does not lead back to the
/// subscriber (here: no route at all). The gateway must still get the subscriber its
/// answer. The client is dhcping's INFORM mode (Debian `dhcping`), after a real logon by
/// udhcpc.
#[test]
fn inform_from_a_bound_client_is_answered_through_the_gateway() {
    let mut net = Net::new();
    let sub = net.add_subscriber();
    net.start_kea();
    net.enter_gw();
    let mut gw = AccessGw::start();
    let logon = gw.serve(udhcpc(&sub, "s3cret"), Duration::from_secs(10), false);
    assert!(logon.is_some_and(|s| s.success()), "udhcpc: {logon:?}");
    assert_eq!(installed(&gw.changes), vec![RESERVED_UNTAGGED]);
    // What udhcpc's script would do with the lease (the test's script does nothing), and
    // the gateway's address on the link (the ARP responder answers for it in `ispmux run`).
    let addr = format!("{RESERVED_UNTAGGED}/24");
    sh(&["ip", "-n", &sub, "addr", "add", &addr, "dev", "sub0"]);
    let gw_id = GW_ID.to_string();
    sh(&["ip", "-n", &sub, "route", "add", &gw_id, "dev", "sub0"]);
    let gw_mac = GW_MAC.to_string();
    sh(&[
        "ip", "-n", &sub, "neigh", "replace", &gw_id, "lladdr", &gw_mac, "dev", "sub0",
    ]);
    let relayed_before = gw.svc.engine().counters().relayed;
    let inform = Command::new("ip")
        .args(["netns", "exec", &sub, "dhcping", "-i", "-t", "3"])
        .args(["-c", &RESERVED_UNTAGGED.to_string(), "-s", &gw_id])
        .args(["-h", &ALICE.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dhcping (apt-get install dhcping)");
    let status = gw.serve(inform, Duration::from_secs(6), false);
    assert!(
        gw.svc.engine().counters().relayed > relayed_before,
        "the INFORM reached Kea"
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "dhcping got Kea's answer through the gateway: {status:?}"
    );
    assert!(gw.svc.registry().refusals(10).expect("refusals").is_empty());
}
