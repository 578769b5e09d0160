//! The TCP side on real loopback sockets: held connections, partial writes, a peer that
//! does not read, resets and refusals.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

use super::{Event, Tcp};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn listener(tx_max: usize) -> (Tcp, SocketAddr) {
    let t = Tcp::listen_at(SocketAddrV4::new(LO, 0), tx_max, BTreeMap::new()).expect("listen");
    let at = t.local_addr().expect("addr");
    (t, at)
}

/// Polls until `pick` finds what it wants in the events (2 s at most).
fn poll_until(t: &mut Tcp, mut pick: impl FnMut(&[Event]) -> bool) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut all = Vec::new();
    loop {
        t.poll(Instant::now(), &mut all);
        if pick(&all) {
            return all;
        }
        assert!(Instant::now() < deadline, "not seen in {all:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn data_of(ev: &[Event]) -> Vec<u8> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Data { data, .. } => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn an_accepted_connection_is_held_with_its_bytes_until_kept() {
    let (mut t, at) = listener(super::TX_MAX);
    let mut peer = TcpStream::connect(at).expect("connect");
    peer.write_all(b"init").expect("write");
    poll_until(&mut t, |e| e.contains(&Event::Accepted { from: LO }));
    // Read while held, handed over when kept, as the session's.
    std::thread::sleep(Duration::from_millis(20));
    let mut ev = Vec::new();
    t.poll(Instant::now(), &mut ev);
    assert!(ev.is_empty(), "{ev:?}");
    let lsr = Ipv4Addr::new(10, 0, 0, 9);
    t.accept(LO, lsr, false, &mut ev);
    assert_eq!(
        ev,
        vec![Event::Data {
            peer: lsr,
            data: b"init".to_vec()
        }]
    );
    // Both ways now: garbage passes through unparsed (the engine's to judge).
    let mut ev = Vec::new();
    t.send(lsr, b"answer", &mut ev);
    assert!(ev.is_empty());
    let mut buf = [0u8; 6];
    peer.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"answer");
    peer.write_all(&[0xff; 7]).expect("write");
    let ev = poll_until(&mut t, |e| data_of(e).len() == 7);
    assert_eq!(data_of(&ev), vec![0xff; 7]);
    // The peer closes: the session hears it once.
    drop(peer);
    let ev = poll_until(&mut t, |e| e.contains(&Event::Closed { peer: lsr }));
    assert_eq!(ev, vec![Event::Closed { peer: lsr }]);
    assert_eq!(t.connected(), 0);
}

#[test]
fn a_connection_kept_after_its_peer_left_is_closed_at_once() {
    let (mut t, at) = listener(super::TX_MAX);
    let mut peer = TcpStream::connect(at).expect("connect");
    poll_until(&mut t, |e| e.contains(&Event::Accepted { from: LO }));
    peer.write_all(b"x").expect("write");
    drop(peer);
    std::thread::sleep(Duration::from_millis(20));
    let mut ev = Vec::new();
    t.poll(Instant::now(), &mut ev);
    let lsr = Ipv4Addr::new(10, 0, 0, 9);
    t.accept(LO, lsr, false, &mut ev);
    assert_eq!(
        ev,
        vec![
            Event::Data {
                peer: lsr,
                data: b"x".to_vec()
            },
            Event::Closed { peer: lsr }
        ]
    );
    // Refusing or keeping what is not held: nothing breaks.
    t.refuse(LO);
    let mut ev = Vec::new();
    t.accept(LO, lsr, false, &mut ev);
    assert_eq!(ev, vec![Event::Closed { peer: lsr }]);
}

#[test]
fn partial_writes_wait_and_leave_in_order() {
    let (mut t, at) = listener(64 << 20);
    let mut peer = TcpStream::connect(at).expect("connect");
    poll_until(&mut t, |e| e.contains(&Event::Accepted { from: LO }));
    let lsr = Ipv4Addr::new(10, 0, 0, 9);
    t.accept(LO, lsr, false, &mut Vec::new());
    // More than the kernel's buffers take at once: the rest waits here.
    let blob: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
    let mut ev = Vec::new();
    t.send(lsr, &blob, &mut ev);
    assert!(ev.is_empty(), "{ev:?}");
    assert!(
        t.sessions.get(&lsr).is_some_and(|c| c.pending() > 0),
        "the kernel took 16 MiB at once"
    );
    let want = blob.len();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::with_capacity(want);
        let mut buf = vec![0u8; 1 << 16];
        while got.len() < want {
            let n = peer.read(&mut buf).expect("read");
            assert!(n > 0, "closed early");
            got.extend_from_slice(&buf[..n]);
        }
        got
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reader.is_finished() {
        let mut ev = Vec::new();
        t.poll(Instant::now(), &mut ev);
        assert!(ev.is_empty(), "{ev:?}");
        assert!(Instant::now() < deadline, "not all written");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(reader.join().expect("reader") == blob, "bytes in order");
}

#[test]
fn a_peer_that_does_not_read_is_closed_and_counted() {
    let (mut t, at) = listener(256 << 10);
    let _peer = TcpStream::connect(at).expect("connect");
    poll_until(&mut t, |e| e.contains(&Event::Accepted { from: LO }));
    let lsr = Ipv4Addr::new(10, 0, 0, 9);
    t.accept(LO, lsr, false, &mut Vec::new());
    let chunk = vec![0u8; 64 << 10];
    let mut ev = Vec::new();
    // The kernel's buffers fill (a few MB on loopback), then ours.
    for _ in 0..4096 {
        t.send(lsr, &chunk, &mut ev);
        if !ev.is_empty() {
            break;
        }
    }
    assert_eq!(ev, vec![Event::Closed { peer: lsr }]);
    assert_eq!(t.counters().overflows, 1);
    // Sending more to the closed session does nothing.
    let mut ev = Vec::new();
    t.send(lsr, &chunk, &mut ev);
    assert!(ev.is_empty());
}

#[test]
fn a_reset_is_a_close() {
    let (mut t, at) = listener(super::TX_MAX);
    let peer = socket2::Socket::from(TcpStream::connect(at).expect("connect"));
    poll_until(&mut t, |e| e.contains(&Event::Accepted { from: LO }));
    let lsr = Ipv4Addr::new(10, 0, 0, 9);
    t.accept(LO, lsr, false, &mut Vec::new());
    // Linger 0: the close sends a RST.
    peer.set_linger(Some(Duration::ZERO)).expect("linger");
    drop(peer);
    poll_until(&mut t, |e| e.contains(&Event::Closed { peer: lsr }));
}

#[test]
fn connects_come_up_or_are_closed() {
    let (mut t, at) = listener(super::TX_MAX);
    let SocketAddr::V4(at) = at else { panic!("v4") };
    // To the listener itself: up (the transport dials port 646, so the test dials its
    // own listener's by a second Tcp with the same logic).
    let (mut other, _) = listener(super::TX_MAX);
    let peer = Ipv4Addr::new(127, 0, 0, 1);
    let mut ev = Vec::new();
    match super::start_connect(LO, at, None, false) {
        Ok(sock) => {
            other.connecting.insert(
                peer,
                super::Connecting {
                    sock,
                    since: Instant::now(),
                },
            );
        }
        Err(e) => panic!("connect: {e}"),
    }
    poll_until(&mut other, |e| e.contains(&Event::Connected { peer }));
    poll_until(&mut t, |e| e.contains(&Event::Accepted { from: LO }));
    // To a port nobody listens on (646 on a loopback address here): refused, closed.
    let nobody = Ipv4Addr::new(127, 0, 0, 77);
    t.connect(Instant::now(), nobody, LO, nobody, false, &mut ev);
    let ev = poll_until(&mut t, |e| e.contains(&Event::Closed { peer: nobody }));
    assert!(ev.contains(&Event::Closed { peer: nobody }));
    assert!(t.counters().errors >= 1);
}

#[test]
fn held_connections_are_bounded() {
    let (mut t, at) = listener(super::TX_MAX);
    // One address here, so one held connection however many come: each replaces the last.
    let peers: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(at).expect("connect"))
        .collect();
    let ev = poll_until(&mut t, |e| e.len() == 3);
    assert!(
        ev.iter().all(|e| *e == Event::Accepted { from: LO }),
        "{ev:?}"
    );
    assert_eq!(t.held.len(), 1);
    // From many addresses: at most MAX_HELD are held, the rest closed and counted.
    // Accepted as they come: the listener's backlog is short.
    let mut many: Vec<TcpStream> = Vec::new();
    for i in 1..=super::MAX_HELD as u8 + 4 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        s.bind(&SocketAddr::from((Ipv4Addr::new(127, 1, 0, i), 0)).into())
            .expect("bind");
        s.connect(&at.into()).expect("connect");
        many.push(s.into());
        t.poll(Instant::now(), &mut Vec::new());
    }
    assert_eq!(many.len(), super::MAX_HELD + 4);
    let deadline = Instant::now() + Duration::from_secs(2);
    while t.counters().errors < 4 {
        t.poll(Instant::now(), &mut Vec::new());
        assert!(Instant::now() < deadline, "{:?}", t.counters());
    }
    assert_eq!(t.held.len(), super::MAX_HELD);
    drop((peers, many));
}

/// A connection from `from` to `at`, signed with `key`, sending with `ttl`.
fn client(from: Ipv4Addr, at: SocketAddr, key: Option<&[u8]>, ttl: u32) -> TcpStream {
    let s =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    s.bind(&SocketAddr::from((from, 0)).into()).expect("bind");
    s.set_ttl(ttl).expect("ttl");
    if let Some(k) = key {
        let SocketAddr::V4(to) = at else {
            panic!("{at}")
        };
        ispmux_sys::set_tcp_md5sig(&s, *to.ip(), k).expect("key");
    }
    s.set_nonblocking(true).expect("nonblocking");
    let _ = s.connect(&at.into());
    s.into()
}

/// Polls for `wait` and returns every event seen.
fn poll_for(t: &mut Tcp, wait: Duration) -> Vec<Event> {
    let deadline = Instant::now() + wait;
    let mut all = Vec::new();
    while Instant::now() < deadline {
        t.poll(Instant::now(), &mut all);
        std::thread::sleep(Duration::from_millis(5));
    }
    all
}

/// A keyed neighbour whose transport address is its LSR ID: the listener has its key
/// from the start, so the kernel lets only its signed connection in.
#[test]
fn a_keyed_neighbour_gets_in_only_signed() {
    let lsr = Ipv4Addr::new(127, 0, 0, 2);
    let keys = BTreeMap::from([(lsr, b"s3cret".to_vec())]);
    let mut t = Tcp::listen_at(SocketAddrV4::new(LO, 0), super::TX_MAX, keys).expect("listen");
    let at = t.local_addr().expect("addr");
    let _unsigned = client(lsr, at, None, 64);
    let _wrong = client(lsr, at, Some(b"wrong"), 64);
    let ev = poll_for(&mut t, Duration::from_millis(300));
    assert!(
        ev.is_empty(),
        "unsigned or badly signed connections got in: {ev:?}"
    );
    let mut signed = client(lsr, at, Some(b"s3cret"), 64);
    poll_until(&mut t, |e| e.contains(&Event::Accepted { from: lsr }));
    let mut ev = Vec::new();
    t.accept(lsr, lsr, false, &mut ev);
    assert!(ev.is_empty(), "{ev:?}");
    signed.write_all(b"init").expect("write");
    let ev = poll_until(&mut t, |e| !data_of(e).is_empty());
    assert_eq!(data_of(&ev), b"init");
    assert_eq!(t.counters().md5_refused, 0);
}

/// A keyed neighbour heard with another transport address than its LSR ID: its key goes
/// on the listener for that address, and a connection from there accepted before that is
/// not taken as its session.
#[test]
fn a_connection_from_before_the_key_is_refused() {
    let lsr = Ipv4Addr::new(10, 9, 9, 9);
    let addr = Ipv4Addr::new(127, 0, 0, 3);
    let keys = BTreeMap::from([(lsr, b"s3cret".to_vec())]);
    let mut t = Tcp::listen_at(SocketAddrV4::new(LO, 0), super::TX_MAX, keys).expect("listen");
    let at = t.local_addr().expect("addr");
    let _early = client(addr, at, None, 64);
    poll_until(&mut t, |e| e.contains(&Event::Accepted { from: addr }));
    let mut ev = Vec::new();
    t.key_transport(lsr, addr, &mut ev);
    t.accept(addr, lsr, false, &mut ev);
    assert_eq!(ev, vec![Event::Closed { peer: lsr }]);
    assert_eq!(t.counters().md5_refused, 1);
    // Now the kernel checks: unsigned stays out, signed gets in and is kept.
    let _unsigned = client(addr, at, None, 64);
    assert!(poll_for(&mut t, Duration::from_millis(300)).is_empty());
    let _signed = client(addr, at, Some(b"s3cret"), 64);
    poll_until(&mut t, |e| e.contains(&Event::Accepted { from: addr }));
    let mut ev = Vec::new();
    t.accept(addr, lsr, false, &mut ev);
    assert!(ev.is_empty(), "{ev:?}");
    assert_eq!(t.connected(), 1);
    // Heard again with the same address: nothing changes.
    t.key_transport(lsr, addr, &mut ev);
    assert!(ev.is_empty(), "{ev:?}");
}

/// A GTSM session drops what arrives with a TTL below 255; our own connections send with
/// 255 and take the listener's SYN-ACK (also 255).
#[test]
fn gtsm_sessions_take_only_ttl_255() {
    let (mut t, at) = listener(super::TX_MAX);
    let lsr = Ipv4Addr::new(10, 0, 0, 9);
    let mut far = client(LO, at, None, 64);
    poll_until(&mut t, |e| e.contains(&Event::Accepted { from: LO }));
    t.accept(LO, lsr, true, &mut Vec::new());
    far.write_all(b"far").expect("write");
    let ev = poll_for(&mut t, Duration::from_millis(300));
    assert!(data_of(&ev).is_empty(), "TTL 64 got through: {ev:?}");
    let (mut t2, at2) = listener(super::TX_MAX);
    let mut near = client(LO, at2, None, 255);
    poll_until(&mut t2, |e| e.contains(&Event::Accepted { from: LO }));
    t2.accept(LO, lsr, true, &mut Vec::new());
    near.write_all(b"near").expect("write");
    let ev = poll_until(&mut t2, |e| !data_of(e).is_empty());
    assert_eq!(data_of(&ev), b"near");
    // Our connect with GTSM to our listener: both ends send 255, so it comes up.
    let SocketAddr::V4(at2) = at2 else {
        panic!("{at2}")
    };
    let mut c =
        Tcp::listen_at(SocketAddrV4::new(LO, 0), super::TX_MAX, BTreeMap::new()).expect("listen");
    match super::start_connect(LO, at2, None, true) {
        Ok(sock) => {
            c.connecting.insert(
                lsr,
                super::Connecting {
                    sock,
                    since: Instant::now(),
                },
            );
        }
        Err(e) => panic!("connect: {e}"),
    }
    poll_until(&mut c, |e| e.contains(&Event::Connected { peer: lsr }));
}

#[test]
fn kernel_md5_counters_are_read_by_name() {
    let text = "TcpExt: SyncookiesSent TCPMD5NotFound TCPMD5Unexpected TCPMD5Failure\n\
                TcpExt: 0 3 1 7\n\
                IpExt: InNoRoutes\nIpExt: 0\n";
    assert_eq!(
        super::KernelMd5::parse(text),
        super::KernelMd5 {
            not_found: 3,
            unexpected: 1,
            failure: 7
        }
    );
    assert_eq!(super::KernelMd5::parse(""), super::KernelMd5::default());
    assert_eq!(
        super::KernelMd5::parse("TcpExt: TCPMD5Failure\nTcpExt: x\n"),
        super::KernelMd5::default()
    );
}
