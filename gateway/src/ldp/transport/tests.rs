//! The TCP side on real loopback sockets: held connections, partial writes, a peer that
//! does not read, resets and refusals.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

use super::{Event, Tcp};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn listener(tx_max: usize) -> (Tcp, SocketAddr) {
    let t = Tcp::listen_at(SocketAddrV4::new(LO, 0), tx_max).expect("listen");
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
    t.accept(LO, lsr, &mut ev);
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
    t.accept(LO, lsr, &mut ev);
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
    t.accept(LO, lsr, &mut ev);
    assert_eq!(ev, vec![Event::Closed { peer: lsr }]);
}

#[test]
fn partial_writes_wait_and_leave_in_order() {
    let (mut t, at) = listener(64 << 20);
    let mut peer = TcpStream::connect(at).expect("connect");
    poll_until(&mut t, |e| e.contains(&Event::Accepted { from: LO }));
    let lsr = Ipv4Addr::new(10, 0, 0, 9);
    t.accept(LO, lsr, &mut Vec::new());
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
    t.accept(LO, lsr, &mut Vec::new());
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
    t.accept(LO, lsr, &mut Vec::new());
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
    match super::start_connect(LO, at) {
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
    t.connect(Instant::now(), nobody, LO, nobody, &mut ev);
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
