//! `ispmux run` with two worker lcores: a headend whose ports have two receive queues each,
//! one per worker, fed frame by frame on each queue. Every frame is forwarded exactly once,
//! by the worker that polls its queue; per-ISP counters sum both workers; and the table
//! updates the slow path sends reach both workers: add and bind (a binding restored from the
//! store at start, and a DHCP logon at run time through the relay to an ISP server the test
//! plays), unbind (`ispmux ctl revoke`). Label changes have no run-time path yet: an ISP's
//! label comes from `[tables]` at start.
//!
//! Why net_pcap and not net_ring: a `net_ring` port made from the configuration is a loop
//! inside the ispmux process, which nothing outside can feed. net_pcap opens one interface
//! per queue (`rx_iface_in=A,rx_iface_in=B`): the test puts each frame on the queue it
//! chooses, where RSS (none on software ports) or the kernel's fanout would choose for it.

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use ispmux_tests::netns::{veth, End, Netns};
use ispmux_tests::{ispmux_bin, Daemon, TempDir};
use pnet_datalink::{Channel, DataLinkReceiver, DataLinkSender};

/// ISP A's subscriber: bound by DHCP earlier, its binding restored from the store at start.
const DYNAMIC: [u8; 6] = [0x02, 0, 0, 0xaa, 0, 0x01];
const DYNAMIC_IP: [u8; 4] = [198, 18, 1, 10];
/// ISP A's subscriber that logs on by DHCP while ispmux runs.
const NEW: [u8; 6] = [0x02, 0, 0, 0xaa, 0, 0x02];
const NEW_IP: [u8; 4] = [198, 18, 1, 20];
/// ISP B's subscriber: a static entry in `[tables]`.
const STATIC: [u8; 6] = [0x02, 0, 0, 0xbb, 0, 0x01];
const STATIC_IP: [u8; 4] = [198, 18, 2, 10];
const GATEWAY_MAC: [u8; 6] = [0x02, 0, 0, 0x01, 0, 0x01];
const MAGIC: &[u8; 8] = b"ISPMUXW!";
/// Frames per subscriber per queue and round.
const N: u32 = 200;

/// The headend's configuration: ports `acc` and `core` on `devices`, then `workers`.
fn config(d: &TempDir, devices: [&str; 2], workers: &str) -> String {
    format!(
        r#"
# Two workers beside the main lcore on a 2-core machine: lcore 2 shares CPU 1 with lcore 1.
[eal]
lcores = [0, 1, 2]
extra_args = ["--lcores", "0@0,1@1,2@1"]
memory_mb = 256
hugepages = "off"

[[port]]
name = "acc"
device = "{acc}"
role = "access"
mac = "02:00:00:01:00:01"

[[port]]
name = "core"
device = "{core}"
role = "core"
mac = "02:00:00:01:00:02"

{workers}

[dataplane]
pipeline = "node"
idle_sleep = "on"

[control]
socket = "{sock}"

[store]
path = "{db}"

[dhcp]
relay_address = "127.0.0.1"
server_identifier = "198.18.1.1"

[[dhcp.isps]]
name = "isp-a"
servers = ["127.0.0.2"]

[[tables.isps]]
id = 1
name = "isp-a"
gateway = "198.18.1.1"
upstream = {{ label = 1001, port = "core", next_hop = "02:00:00:02:00:01" }}

[[tables.isps]]
id = 2
name = "isp-b"
gateway = "198.18.2.1"
upstream = {{ label = 1002, port = "core", next_hop = "02:00:00:02:00:01" }}

[[tables.subscribers]]
port = "acc"
mac = "02:00:00:bb:00:01"
isp = 2
ipv4 = "198.18.2.10"
"#,
        acc = devices[0],
        core = devices[1],
        sock = d.join("ctl.sock").display(),
        db = d.join("ispmux.db").display(),
    )
}

/// An IPv4/UDP frame from a subscriber to the outside, carrying `seq`.
fn frame(mac: [u8; 6], ip: [u8; 4], seq: u32) -> Vec<u8> {
    frame_from_port(mac, ip, 40000, seq)
}

/// As [`frame`], from UDP port `sport` (another flow for the kernel's fanout hash).
fn frame_from_port(mac: [u8; 6], ip: [u8; 4], sport: u16, seq: u32) -> Vec<u8> {
    let mut payload = MAGIC.to_vec();
    payload.extend_from_slice(&seq.to_be_bytes());
    payload.extend_from_slice(&[0u8; 10]);
    udp_frame(
        (GATEWAY_MAC, mac),
        (ip, [203, 0, 113, 7]),
        (sport, 9),
        &payload,
    )
}

/// Ethernet (dst, src), IPv4 (src, dst), UDP (sport, dport) around `payload`; the UDP
/// checksum left out (zero), as IPv4 allows.
fn udp_frame(
    (dst_mac, src_mac): ([u8; 6], [u8; 6]),
    (src, dst): ([u8; 4], [u8; 4]),
    (sport, dport): (u16, u16),
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(42 + payload.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip_hdr = [0u8; 20];
    ip_hdr[0] = 0x45;
    ip_hdr[2..4].copy_from_slice(&total.to_be_bytes());
    ip_hdr[8] = 64;
    ip_hdr[9] = 17;
    ip_hdr[12..16].copy_from_slice(&src);
    ip_hdr[16..20].copy_from_slice(&dst);
    let sum = ip_hdr
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    ip_hdr[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip_hdr);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

const DHCP_COOKIE: [u8; 4] = [99, 130, 83, 99];

/// A client's DHCP message (RFC 2131): BOOTREQUEST, broadcast flag, `options` after the
/// message type, in a broadcast frame from `mac`.
fn dhcp_request_frame(mac: [u8; 6], xid: u32, kind: u8, options: &[u8]) -> Vec<u8> {
    let mut m = vec![0u8; 236];
    m[0] = 1; // BOOTREQUEST
    m[1] = 1; // Ethernet
    m[2] = 6;
    m[4..8].copy_from_slice(&xid.to_be_bytes());
    m[10] = 0x80; // broadcast: the client has no address yet
    m[28..34].copy_from_slice(&mac);
    m.extend_from_slice(&DHCP_COOKIE);
    m.extend_from_slice(&[53, 1, kind]);
    m.extend_from_slice(options);
    m.push(255);
    udp_frame(([0xff; 6], mac), ([0; 4], [255; 4]), (68, 67), &m)
}

/// Waits for the gateway's DHCP reply of type `kind` to `xid` on the subscriber's side.
fn wait_for_reply(client: &mut dyn DataLinkReceiver, xid: u32, kind: u8) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let Ok(f) = client.next() else { continue };
        // Ethernet, IPv4 (no options), UDP to port 68, then the DHCP message.
        let is_reply = f.len() > 42 + 243
            && f[12..14] == [0x08, 0x00]
            && f[23] == 17
            && f[36..38] == 68u16.to_be_bytes()
            && f[42] == 2
            && f[46..50] == xid.to_be_bytes()
            && f[42 + 236..42 + 240] == DHCP_COOKIE;
        if is_reply && f[42 + 240..].windows(3).any(|w| w == [53, 1, kind]) {
            return;
        }
    }
    panic!("no DHCP reply of type {kind} to the subscriber");
}

/// The ISP's DHCP server: answers each relayed DISCOVER with an OFFER and each REQUEST
/// with an ACK of `addr`, to the relay (giaddr), as a server behind a relay does.
fn serve_dhcp(server: &std::net::UdpSocket, addr: [u8; 4], kinds: &[(u8, u8)]) {
    let mut buf = [0u8; 1500];
    for &(want, reply) in kinds {
        let (n, from) = server.recv_from(&mut buf).expect("relayed request");
        let req = &buf[..n];
        assert_eq!(req.get(236..240), Some(&DHCP_COOKIE[..]), "a DHCP message");
        let kind = req[240..]
            .windows(3)
            .find(|w| w[0] == 53 && w[1] == 1)
            .map(|w| w[2]);
        assert_eq!(kind, Some(want), "relayed message type");
        let mut m = req[..236].to_vec();
        m[0] = 2; // BOOTREPLY
        m[16..20].copy_from_slice(&addr);
        m.extend_from_slice(&DHCP_COOKIE);
        m.extend_from_slice(&[53, 1, reply]);
        m.extend_from_slice(&[54, 4, 127, 0, 0, 2]);
        m.extend_from_slice(&[51, 4, 0, 0, 0x0e, 0x10]);
        m.extend_from_slice(&[1, 4, 255, 255, 255, 0]);
        m.extend_from_slice(&[3, 4, 198, 18, 1, 1]);
        m.push(255);
        let giaddr = std::net::Ipv4Addr::new(req[24], req[25], req[26], req[27]);
        assert_eq!(giaddr, std::net::Ipv4Addr::LOCALHOST, "relayed with giaddr");
        server.send_to(&m, (giaddr, 67)).expect("reply");
        assert_eq!(from.port(), 67, "relayed from the relay's server port");
    }
}

/// The label and sequence number of a forwarded test frame (MPLS over Ethernet).
fn parse_forwarded(f: &[u8]) -> Option<(u32, u32)> {
    if f.get(12..14)? != [0x88, 0x47] {
        return None;
    }
    let label = u32::from_be_bytes(f.get(14..18)?.try_into().ok()?) >> 12;
    let at = f.windows(MAGIC.len()).position(|w| w == MAGIC)? + MAGIC.len();
    let seq = u32::from_be_bytes(f.get(at..at + 4)?.try_into().ok()?);
    Some((label, seq))
}

fn channel(name: &str) -> (Box<dyn DataLinkSender>, Box<dyn DataLinkReceiver>) {
    let iface = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("{name} in the namespace"));
    let config = pnet_datalink::Config {
        read_timeout: Some(Duration::from_millis(2)),
        read_buffer_size: 1 << 20,
        ..Default::default()
    };
    match pnet_datalink::channel(&iface, config) {
        Ok(Channel::Ethernet(tx, rx)) => (tx, rx),
        _ => panic!("AF_PACKET channel on {name}"),
    }
}

/// The host side: one sender per access queue, one receiver per core queue.
struct Wires {
    inject: [Box<dyn DataLinkSender>; 2],
    capture: [Box<dyn DataLinkReceiver>; 2],
}

impl Wires {
    fn send(&mut self, queue: usize, f: &[u8]) {
        match self.inject[queue].send_to(f, None) {
            Some(Ok(())) => {}
            other => panic!("send on queue {queue}: {other:?}"),
        }
    }

    /// Takes what arrived on each core queue's interface into `got`.
    fn drain(&mut self, got: &mut [Vec<(u32, u32)>; 2]) {
        for (q, rx) in self.capture.iter_mut().enumerate() {
            while let Ok(f) = rx.next() {
                if let Some(x) = parse_forwarded(f) {
                    got[q].push(x);
                }
            }
        }
    }

    /// Sends `frames(queue, i)` for i in 0..N on both queues, a few at a time so the
    /// capturing sockets' buffers never overflow, then collects forwarded test frames per
    /// core queue until `want` in all or `settle` passed after the last send.
    fn round(
        &mut self,
        frames: impl Fn(usize, u32) -> Vec<Vec<u8>>,
        want: usize,
        settle: Duration,
    ) -> [Vec<(u32, u32)>; 2] {
        let mut got: [Vec<(u32, u32)>; 2] = [Vec::new(), Vec::new()];
        for i in 0..N {
            for q in 0..2 {
                for f in frames(q, i) {
                    self.send(q, &f);
                }
            }
            if i % 8 == 7 {
                self.drain(&mut got);
            }
        }
        let deadline = Instant::now() + settle;
        while got[0].len() + got[1].len() < want && Instant::now() < deadline {
            self.drain(&mut got);
        }
        // A little longer: a frame that should not be forwarded must not go unseen.
        let quiet = Instant::now() + Duration::from_millis(300);
        while Instant::now() < quiet {
            self.drain(&mut got);
        }
        got
    }
}

fn stats(sock: &std::path::Path) -> Option<serde_json::Value> {
    let out = Command::new(ispmux_bin())
        .args(["ctl", "--json", "-s"])
        .arg(sock)
        .arg("stats")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

fn wait_for(sock: &std::path::Path, what: &str, ok: impl Fn(&serde_json::Value) -> bool) {
    // Generous: the store's commit behind an unbind waited over 10 s for the disk once, the
    // full suite running beside a release build.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = stats(sock);
        if s.as_ref().is_some_and(&ok) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {s:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Table writes applied by the workers together, once no more arrive (each worker replays
/// every write; the exit report shows both replayed the same number).
fn settled(sock: &std::path::Path) -> u64 {
    let mut last = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = stats(sock).map(|s| updates_applied(&s));
        if now.is_some() && now == last {
            return now.unwrap_or(0);
        }
        assert!(Instant::now() < deadline, "table writes still arriving");
        last = now;
        std::thread::sleep(Duration::from_millis(150));
    }
}

fn isp_up(s: &serde_json::Value, name: &str) -> u64 {
    s["pipeline"]["isps"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["name"] == name))
        .and_then(|i| i["headend_up"]["packets"].as_u64())
        .unwrap_or_else(|| panic!("no {name} in {s:#}"))
}

fn updates_applied(s: &serde_json::Value) -> u64 {
    s["pipeline"]["updates_applied"]
        .as_u64()
        .expect("updates_applied")
}

fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A running headend in its own namespace, joined to its hosts by veth pairs; the test
/// thread moves into that namespace.
struct Headend {
    gw: Netns,
    d: TempDir,
    conf: std::path::PathBuf,
    daemon: Daemon,
    sock: std::path::PathBuf,
    /// Table writes applied once the restored binding settled.
    after_bind: u64,
}

/// Starts the headend on `devices` with `workers`; `links` are the veth pairs (ispmux's
/// end, the host's end). ISP A's subscriber is bound before the start (restored).
fn headend(tag: &str, links: &[(&str, &str)], devices: [&str; 2], workers: &str) -> Headend {
    let gw = Netns::new(tag);
    for &(a, b) in links {
        veth(
            End {
                ns: &gw,
                dev: a,
                mac: "02:00:00:01:01:01",
            },
            End {
                ns: &gw,
                dev: b,
                mac: "02:00:00:01:01:02",
            },
        );
    }
    let d = TempDir::new(tag);
    let conf = d.join("gw.toml");
    std::fs::write(&conf, config(&d, devices, workers)).expect("write config");
    let check = Command::new(ispmux_bin())
        .args(["check", "-c"])
        .arg(&conf)
        .output()
        .expect("check");
    assert!(check.status.success(), "{check:?}");

    // ISP A's subscriber logged on before this start: registered, its binding in the store.
    let added = Command::new(ispmux_bin())
        .args(["subscriber", "-c"])
        .arg(&conf)
        .args(["add", "--mac", &mac_text(DYNAMIC), "--isp", "isp-a"])
        .args(["--customer-id", "C1"])
        .output()
        .expect("add");
    assert!(added.status.success(), "{added:?}");
    ispmux_slowpath::registry::Registry::open(&d.join("ispmux.db"))
        .expect("store")
        .upsert_binding(&ispmux_slowpath::registry::Binding {
            mac: mac_text(DYNAMIC).parse().expect("mac"),
            isp: "isp-a".into(),
            ipv4: DYNAMIC_IP.into(),
            expires: SystemTime::now() + Duration::from_secs(3600),
            server: "127.0.0.2".parse().expect("ip"),
            port: 0,
            vlan: 0,
            inner_vlan: 0,
        })
        .expect("binding");

    let daemon = Daemon::new(
        gw.command(ispmux_bin().to_str().expect("path"))
            .args(["run", "-c"])
            .arg(&conf)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn"),
    );
    let sock = d.join("ctl.sock");
    // The restored binding is in both workers' tables before they poll their first frame
    // (built into every copy at start, not sent through the update queues).
    wait_for(&sock, "restored binding installed", |s| {
        s["slowpath"]["bindings_installed"] == 1
    });
    let after_bind = settled(&sock);
    let f = File::open(format!("/var/run/netns/{}", gw.name)).expect("netns file");
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
    Headend {
        gw,
        d,
        conf,
        daemon,
        sock,
        after_bind,
    }
}

impl Headend {
    /// `ispmux ctl revoke`: unbinds at run time; returns once both workers settled.
    fn revoke(&self, m: [u8; 6]) {
        let revoked = Command::new(ispmux_bin())
            .args(["ctl", "--json", "-s"])
            .arg(&self.sock)
            .args(["revoke", &mac_text(m)])
            .output()
            .expect("revoke");
        assert!(revoked.status.success(), "{revoked:?}");
        wait_for(&self.sock, "unbind sent to the workers", |s| {
            s["slowpath"]["bindings_removed"] == 1 && updates_applied(s) > self.after_bind
        });
        settled(&self.sock);
    }

    /// Stops ispmux; checks both workers ran and replayed the same table writes.
    fn stop(self) {
        let out = self.daemon.stop();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        for lcore in [1, 2] {
            assert!(
                text.contains(&format!("worker lcore {lcore} on-cpu")),
                "{text}"
            );
        }
        // "worker replayed N table writes in ...": one line per worker, the same N.
        let replayed: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("worker replayed "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(replayed.len(), 2, "{text}");
        assert_eq!(replayed[0], replayed[1], "{text}");
        drop(self.d);
        drop(self.gw);
    }
}

#[test]
fn two_workers_forward_each_queue_once_and_both_see_table_updates() {
    let pcap = |n: u8, a: &str, b: &str| {
        format!("net_pcap{n},rx_iface_in={a},rx_iface_in={b},tx_iface={a},tx_iface={b}")
    };
    let h = headend(
        "w2pcap",
        &[
            ("accA", "hostA"),
            ("accB", "hostB"),
            ("coreA", "coreA-peer"),
            ("coreB", "coreB-peer"),
        ],
        [&pcap(0, "accA", "accB"), &pcap(1, "coreA", "coreB")],
        // Each queue to its own worker, explicitly: worker i sends on transmit queue i.
        r#"
[[worker]]
lcore = 1
rx = [{ port = "acc", queue = 0 }, { port = "core", queue = 0 }]

[[worker]]
lcore = 2
rx = [{ port = "acc", queue = 1 }, { port = "core", queue = 1 }]
"#,
    );
    let sock = h.sock.clone();
    let (a, mut client) = channel("hostA");
    let (b, _) = channel("hostB");
    let (_, ca) = channel("coreA-peer");
    let (_, cb) = channel("coreB-peer");
    let mut w = Wires {
        inject: [a, b],
        capture: [ca, cb],
    };

    // Round 1: both subscribers on both queues; sequence numbers say subscriber and queue.
    let seq = |sub: u32, queue: u32, i: u32| (sub << 24) | (queue << 16) | i;
    let got = w.round(
        |q, i| {
            vec![
                frame(DYNAMIC, DYNAMIC_IP, seq(0, q as u32, i)),
                frame(STATIC, STATIC_IP, seq(1, q as u32, i)),
            ]
        },
        4 * N as usize,
        Duration::from_secs(10),
    );
    for (q, frames) in got.iter().enumerate() {
        let mut seqs: Vec<u32> = frames.iter().map(|&(_, s)| s).collect();
        seqs.sort_unstable();
        let mut want: Vec<u32> = (0..N)
            .flat_map(|i| [seq(0, q as u32, i), seq(1, q as u32, i)])
            .collect();
        want.sort_unstable();
        // Exactly once, and out of the transmit queue of the worker that polls this
        // receive queue: each worker forwarded its own queue's frames.
        assert_eq!(seqs, want, "queue {q}: frames out of core queue {q}");
        for &(label, s) in frames {
            let want = if s >> 24 == 0 { 1001 } else { 1002 };
            assert_eq!(label, want, "frame {s:#x}: its ISP's label");
        }
    }
    wait_for(&sock, "per-ISP counters of both workers summed", |s| {
        isp_up(s, "isp-a") == 2 * u64::from(N) && isp_up(s, "isp-b") == 2 * u64::from(N)
    });

    // Add and bind at run time: a subscriber registered now logs on by DHCP on queue 0;
    // the ISP's server (this test) offers and acknowledges its address.
    let added = Command::new(ispmux_bin())
        .args(["subscriber", "-c"])
        .arg(&h.conf)
        .args(["add", "--mac", &mac_text(NEW), "--isp", "isp-a"])
        .args(["--customer-id", "C2"])
        .output()
        .expect("add");
    assert!(added.status.success(), "{added:?}");
    let server = std::net::UdpSocket::bind("127.0.0.2:67").expect("the ISP's server");
    server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let xid = 0x2026_0015;
    w.send(0, &dhcp_request_frame(NEW, xid, 1, &[]));
    serve_dhcp(&server, NEW_IP, &[(1, 2)]);
    // As a client does, REQUEST only once the OFFER is here (the gateway may not have read
    // the ISP's OFFER yet when a REQUEST would arrive).
    wait_for_reply(&mut *client, xid, 2);
    let [a, b, c, d] = NEW_IP;
    w.send(
        0,
        &dhcp_request_frame(NEW, xid, 3, &[50, 4, a, b, c, d, 54, 4, 198, 18, 1, 1]),
    );
    serve_dhcp(&server, NEW_IP, &[(3, 5)]);
    wait_for(&sock, "the new binding sent to the workers", |s| {
        s["slowpath"]["bindings_installed"] == 2
    });
    // The logon proxy's own counters are published too: two installs (the restored
    // binding and this one), two requests relayed (DISCOVER, REQUEST), two replies.
    wait_for(&sock, "the logon proxy's counters", |s| {
        let d = &s["dhcp"];
        d["installs"] == 2 && d["relayed"] == 2 && d["replies"] == 2
    });
    settled(&sock);
    let got = w.round(
        |q, i| vec![frame(NEW, NEW_IP, seq(4, q as u32, i))],
        2 * N as usize,
        Duration::from_secs(10),
    );
    for (q, frames) in got.iter().enumerate() {
        let mut seqs: Vec<(u32, u32)> = frames.clone();
        seqs.sort_unstable();
        let want: Vec<(u32, u32)> = (0..N).map(|i| (1001, seq(4, q as u32, i))).collect();
        assert_eq!(seqs, want, "queue {q}: the new subscriber's frames");
    }

    // Unbind at run time: the binding goes from both workers' tables.
    h.revoke(DYNAMIC);
    let before = stats(&sock).expect("stats");
    let got = w.round(
        |q, i| {
            vec![
                frame(DYNAMIC, DYNAMIC_IP, seq(2, q as u32, i)),
                frame(STATIC, STATIC_IP, seq(3, q as u32, i)),
            ]
        },
        2 * N as usize,
        Duration::from_secs(10),
    );
    for (q, frames) in got.iter().enumerate() {
        let all: Vec<u32> = frames.iter().map(|&(_, s)| s).collect();
        assert!(
            all.iter().all(|s| s >> 24 == 3),
            "queue {q}: a revoked subscriber's frame was forwarded"
        );
        assert_eq!(
            all.len(),
            N as usize,
            "queue {q}: the static subscriber's frames"
        );
    }
    wait_for(
        &sock,
        "the revoked subscriber's frames counted as drops, each once",
        |s| {
            let drops = |s: &serde_json::Value| {
                ["unknown_mac", "not_bound"]
                    .iter()
                    .map(|r| s["drops"][r].as_u64().unwrap_or(0))
                    .sum::<u64>()
            };
            isp_up(s, "isp-b") == 4 * u64::from(N) && drops(s) == drops(&before) + 2 * u64::from(N)
        },
    );
    assert_eq!(
        isp_up(&stats(&sock).expect("stats"), "isp-a"),
        4 * u64::from(N)
    );

    h.stop();
}

/// The same over net_af_packet, `qpairs=2`: DPDK 22.11's af_packet PMD opens one socket per
/// queue pair and joins them in one PACKET_FANOUT group (hash, with rollover and defrag; the
/// mode cannot be chosen in 22.11), so the kernel spreads flows over the two receive queues,
/// and queue q goes to worker q (the automatic plan). Which queue a frame took cannot be seen
/// from outside (both queues are one interface), so this checks what must hold whatever the
/// spread: every frame once, exact per-ISP counters, and the unbind on both workers.
#[test]
fn two_workers_on_af_packet_with_kernel_fanout() {
    let h = headend(
        "w2afp",
        &[("acc", "host"), ("core", "core-peer")],
        [
            "net_af_packet0,iface=acc,qpairs=2",
            "net_af_packet1,iface=core,qpairs=2",
        ],
        "",
    );
    let (mut host, _) = channel("host");
    let (_, mut core) = channel("core-peer");
    let mut send_round = |round: u32, want_n: usize| -> Vec<(u32, u32)> {
        let mut got = Vec::new();
        let mut drain = |got: &mut Vec<(u32, u32)>| {
            while let Ok(f) = core.next() {
                got.extend(parse_forwarded(f));
            }
        };
        for i in 0..2 * N {
            // A new flow for every frame: the fanout hash sends them to both queues.
            let sport = 1024 + i as u16;
            for (sub, (mac, ip)) in [(DYNAMIC, DYNAMIC_IP), (STATIC, STATIC_IP)]
                .into_iter()
                .enumerate()
            {
                let f = frame_from_port(mac, ip, sport, (round + sub as u32) << 24 | i);
                match host.send_to(&f, None) {
                    Some(Ok(())) => {}
                    other => panic!("send: {other:?}"),
                }
            }
            if i % 8 == 7 {
                drain(&mut got);
            }
        }
        // Until all came (a loaded machine may take its time), then a little longer: a
        // frame that should not be forwarded must not go unseen.
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < want_n && Instant::now() < deadline {
            drain(&mut got);
        }
        let quiet = Instant::now() + Duration::from_millis(300);
        while Instant::now() < quiet {
            drain(&mut got);
        }
        got.sort_unstable_by_key(|&(_, s)| s);
        got
    };

    let got = send_round(0, 4 * N as usize);
    let want: Vec<(u32, u32)> = (0..2)
        .flat_map(|sub| (0..2 * N).map(move |i| (1001 + sub, sub << 24 | i)))
        .collect();
    assert_eq!(got, want, "every frame once, with its ISP's label");
    wait_for(&h.sock, "per-ISP counters of both workers summed", |s| {
        isp_up(s, "isp-a") == 2 * u64::from(N) && isp_up(s, "isp-b") == 2 * u64::from(N)
    });

    h.revoke(DYNAMIC);
    let got = send_round(2, 2 * N as usize);
    let want: Vec<(u32, u32)> = (0..2 * N).map(|i| (1002, 3 << 24 | i)).collect();
    assert_eq!(got, want, "only the static subscriber's frames, each once");
    wait_for(&h.sock, "counters after the unbind", |s| {
        isp_up(s, "isp-a") == 2 * u64::from(N) && isp_up(s, "isp-b") == 4 * u64::from(N)
    });
    h.stop();
}
