//! The engine against itself (two LSRs wired together in memory) and against a scripted
//! peer; time is an input, so every run is the same.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::engine::{Config, Down, Engine, Input, Now, Output};
use super::session::State;
use super::wire::{
    self, Body, FecElement, Hello, Initialization, LabelMapping, LdpId, Message, Pdu, Status,
    StatusCode,
};

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn ldp_id(lsr_id: Ipv4Addr) -> LdpId {
    LdpId {
        lsr_id,
        label_space: 0,
    }
}

fn t0() -> Now {
    Now {
        mono: Instant::now(),
        unix: 1_800_000_000,
    }
}

fn config(lsr: Ipv4Addr, keepalive: u16, addrs: &[Ipv4Addr]) -> Config {
    let mut c = Config::new(lsr);
    c.interfaces = vec![1];
    c.keepalive_time = keepalive;
    c.addresses = addrs.to_vec();
    c
}

/// What travels between the two engines.
#[derive(Debug)]
enum Ev {
    Hello(Vec<u8>),
    Accepted(Ipv4Addr),
    Connected(Ipv4Addr),
    Data(Ipv4Addr, Vec<u8>),
    Closed(Ipv4Addr),
}

/// Two LSRs on one link. Side 0 is A, side 1 is B.
struct Net {
    now: Now,
    eng: [Engine; 2],
    lsr: [Ipv4Addr; 2],
    /// Outputs of a silent side are dropped (hellos, TCP, or both).
    mute_tcp: [bool; 2],
    mute_hello: [bool; 2],
    queue: VecDeque<(usize, Ev)>,
    /// Every output, by side.
    log: [Vec<Output>; 2],
}

impl Net {
    fn new(ka: u16, kb: u16) -> Net {
        let now = t0();
        Net {
            now,
            eng: [
                Engine::new(config(A, ka, &[A, Ipv4Addr::new(192, 0, 2, 1)]), now).expect("config"),
                Engine::new(config(B, kb, &[B, Ipv4Addr::new(192, 0, 2, 2)]), now).expect("config"),
            ],
            lsr: [A, B],
            mute_tcp: [false; 2],
            mute_hello: [false; 2],
            queue: VecDeque::new(),
            log: [Vec::new(), Vec::new()],
        }
    }

    fn feed(&mut self, side: usize, input: Input<'_>) {
        let mut out = Vec::new();
        self.eng[side].handle(self.now, input, &mut out);
        let other = 1 - side;
        for o in out {
            match &o {
                Output::Hello { data, .. } if !self.mute_hello[side] => {
                    self.queue.push_back((other, Ev::Hello(data.clone())))
                }
                Output::Connect { local, .. } if !self.mute_tcp[side] => {
                    self.queue.push_back((other, Ev::Accepted(*local)))
                }
                Output::Accept { .. } if !self.mute_tcp[side] => {
                    self.queue.push_back((other, Ev::Connected(self.lsr[side])))
                }
                Output::Refuse { .. } => self.queue.push_back((other, Ev::Closed(self.lsr[side]))),
                Output::Send { data, .. } if !self.mute_tcp[side] => self
                    .queue
                    .push_back((other, Ev::Data(self.lsr[side], data.clone()))),
                Output::Close { .. } if !self.mute_tcp[side] => {
                    self.queue.push_back((other, Ev::Closed(self.lsr[side])))
                }
                _ => {}
            }
            self.log[side].push(o);
        }
    }

    fn drain(&mut self) {
        while let Some((side, ev)) = self.queue.pop_front() {
            let src = self.lsr[1 - side];
            match ev {
                Ev::Hello(d) => self.feed(
                    side,
                    Input::Hello {
                        iface: 1,
                        src,
                        data: &d,
                    },
                ),
                Ev::Accepted(from) => self.feed(side, Input::Accepted { from }),
                Ev::Connected(peer) => self.feed(side, Input::Connected { peer }),
                Ev::Data(peer, d) => self.feed(side, Input::Data { peer, data: &d }),
                Ev::Closed(peer) => self.feed(side, Input::Closed { peer }),
            }
        }
    }

    /// Runs timers and deliveries until `until` after the start.
    fn run_until(&mut self, start: Now, until: Duration) {
        loop {
            self.drain();
            let next = self.eng.iter().filter_map(Engine::next_timeout).min();
            let end = start.mono + until;
            match next {
                Some(t) if t <= end => {
                    if t > self.now.mono {
                        self.now = self.now + (t - self.now.mono);
                    }
                    for side in 0..2 {
                        if self.eng[side]
                            .next_timeout()
                            .is_some_and(|n| n <= self.now.mono)
                        {
                            self.feed(side, Input::Timer);
                            // A timer just handled is never due again at once (that would
                            // spin a transport).
                            assert!(self.eng[side]
                                .next_timeout()
                                .is_none_or(|x| x > self.now.mono));
                        }
                    }
                }
                _ => {
                    self.now = self.now + (end - self.now.mono);
                    return;
                }
            }
        }
    }

    fn state(&self, side: usize) -> Option<State> {
        self.eng[side].session(self.lsr[1 - side]).map(|s| s.state)
    }
}

/// The messages in the PDUs a side sent.
fn sent_messages(log: &[Output]) -> Vec<Message> {
    log.iter()
        .filter_map(|o| match o {
            Output::Send { data, .. } => {
                Some(wire::decode(data, u16::MAX).expect("own PDU").pdu.messages)
            }
            _ => None,
        })
        .flatten()
        .collect()
}

fn notifications(log: &[Output]) -> Vec<Status> {
    sent_messages(log)
        .into_iter()
        .filter_map(|m| match m.body {
            Body::Notification(n) => Some(n.status),
            _ => None,
        })
        .collect()
}

fn count_keepalives(log: &[Output]) -> usize {
    sent_messages(log)
        .iter()
        .filter(|m| m.body == Body::KeepAlive)
        .count()
}

/// A neighbour that comes up after us hears our Hello at once, not a Hello interval later:
/// its first Hello makes a new adjacency here, which triggers ours, so the session (B active)
/// starts within the exchange; a second new neighbour within the gap gets ours the gap after
/// the last.
#[test]
fn a_new_neighbours_first_hello_is_answered_at_once() {
    let mut n = Net::new(30, 30);
    // A has been up a second: its first Hellos reached nobody.
    n.mute_hello[0] = true;
    n.feed(0, Input::Timer);
    n.mute_hello[0] = false;
    n.queue.clear();
    n.now = n.now + Duration::from_secs(1);
    let at = n.now;
    n.run_until(at, Duration::from_millis(1));
    assert_eq!(n.state(1), Some(State::Operational), "A's interval is 5 s");
    assert_eq!(n.state(0), Some(State::Operational));
    assert_eq!(
        n.eng[0].counters().hellos_sent,
        2,
        "its first and the triggered one"
    );
    // A Hello sent within the gap is not sent again at once for another new neighbour.
    let mut out = Vec::new();
    let mut c = Engine::new(config(Ipv4Addr::new(10, 0, 0, 3), 30, &[]), n.now).expect("config");
    c.handle(n.now, Input::Timer, &mut out);
    let hello = out
        .iter()
        .find_map(|o| match o {
            Output::Hello { data, .. } => Some(data.clone()),
            _ => None,
        })
        .expect("C's hello");
    n.eng[0].handle(
        n.now,
        Input::Hello {
            iface: 1,
            src: Ipv4Addr::new(10, 0, 0, 3),
            data: &hello,
        },
        &mut out,
    );
    assert_eq!(
        n.eng[0].counters().hellos_sent,
        2,
        "within {:?}",
        n.now.mono - at.mono
    );
    // It goes the gap after the last.
    assert_eq!(
        n.eng[0].next_timeout(),
        Some(at.mono + super::engine::TRIGGERED_HELLO_GAP)
    );
}

#[test]
fn discovery_to_operational_then_keepalives() {
    let mut n = Net::new(30, 60);
    let start = n.now;
    n.run_until(start, Duration::from_millis(1));
    // B has the higher transport address: it connects, A accepts. Both advertise GTSM
    // (the default): both sides' sockets are told to use it.
    assert!(n.log[1].iter().any(|o| matches!(o,
        Output::Connect { peer, remote, gtsm: true, .. } if *peer == A && *remote == A)));
    assert!(n.log[0].iter().any(|o| matches!(o,
        Output::Accept { from, peer, gtsm: true } if *from == B && *peer == B)));
    assert_eq!(n.state(0), Some(State::Operational));
    assert_eq!(n.state(1), Some(State::Operational));
    for side in 0..2 {
        let ups: Vec<_> = n.log[side]
            .iter()
            .filter(|o| matches!(o, Output::SessionUp { .. }))
            .collect();
        assert_eq!(
            ups,
            vec![&Output::SessionUp {
                peer: ldp_id(n.lsr[1 - side])
            }]
        );
    }
    // The KeepAlive time is the smaller proposal; addresses were learned.
    let s = n.eng[1].session(A).expect("session");
    assert_eq!(
        s.negotiated.map(|x| x.keepalive),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        n.eng[1].peer_by_address(Ipv4Addr::new(192, 0, 2, 1)),
        Some(ldp_id(A))
    );
    assert_eq!(
        n.eng[0].peer_by_address(Ipv4Addr::new(192, 0, 2, 2)),
        Some(ldp_id(B))
    );
    assert_eq!(n.eng[0].peer_by_address(Ipv4Addr::new(192, 0, 2, 3)), None);
    let later = n.now + Duration::from_secs(2);
    let nb = n.eng[0].neighbours(later);
    assert_eq!(nb.len(), 1);
    assert_eq!(
        (nb[0].peer, nb[0].transport, nb[0].state),
        (ldp_id(B), Some(B), Some(State::Operational))
    );
    assert_eq!(nb[0].role, super::session::Role::Passive);
    assert_eq!(nb[0].interfaces, vec![1]);
    assert_eq!(nb[0].addresses, vec![B, Ipv4Addr::new(192, 0, 2, 2)]);
    assert!(nb[0].uptime >= Some(Duration::from_secs(2)));
    assert_eq!(State::Operational.to_string(), "OPERATIONAL");

    // Five minutes on: still up, a KeepAlive every 10 s each way (plus the handshake's).
    let k0 = count_keepalives(&n.log[0]);
    n.run_until(start, Duration::from_secs(300));
    assert_eq!(n.state(0), Some(State::Operational));
    assert_eq!(n.state(1), Some(State::Operational));
    let sent = count_keepalives(&n.log[0]) - k0;
    assert!((29..=31).contains(&sent), "{sent} KeepAlives in 300 s");
    assert!(notifications(&n.log[0]).is_empty() && notifications(&n.log[1]).is_empty());
    assert!(n.eng[0].counters().hellos_sent >= 60);
}

#[test]
fn silent_session_expires_by_keepalive() {
    let mut n = Net::new(30, 30);
    let start = n.now;
    n.run_until(start, Duration::from_secs(1));
    assert_eq!(n.state(1), Some(State::Operational));
    // A's TCP goes silent (Hellos still flow): B gives up 30 s after the last PDU.
    n.mute_tcp[0] = true;
    let quiet = n.now;
    n.run_until(start, Duration::from_secs(25));
    assert_eq!(n.state(1), Some(State::Operational));
    n.run_until(quiet, Duration::from_secs(31));
    let ka = StatusCode::KeepAliveTimerExpired.status(0, 0);
    assert_eq!(notifications(&n.log[1]), vec![ka]);
    assert!(n.log[1].iter().any(|o| *o
        == Output::SessionDown {
            peer: ldp_id(A),
            reason: Down::Sent(ka),
            was_up: true
        }));
    assert!(n.log[1].contains(&Output::Close { peer: A }));
    // B retries after its backoff; A never answers, so no session comes up.
    n.run_until(quiet, Duration::from_secs(60));
    assert!(
        n.log[1]
            .iter()
            .filter(|o| matches!(o, Output::Connect { .. }))
            .count()
            >= 2
    );
    assert_ne!(n.state(1), Some(State::Operational));
}

#[test]
fn silent_peer_loses_its_adjacency_and_session() {
    let mut n = Net::new(180, 180);
    let start = n.now;
    // Half a second after B's Hello of 5 s.
    n.run_until(start, Duration::from_millis(5500));
    assert_eq!(n.state(0), Some(State::Operational));
    // B dies: nothing from it any more. A's adjacency lapses 15 s after its last Hello.
    n.mute_tcp[1] = true;
    n.mute_hello[1] = true;
    let dead = n.now;
    n.run_until(dead, Duration::from_secs(14));
    assert_eq!(n.state(0), Some(State::Operational));
    n.run_until(dead, Duration::from_secs(15));
    assert_eq!(n.state(0), None);
    let hold = StatusCode::HoldTimerExpired.status(0, 0);
    assert_eq!(notifications(&n.log[0]), vec![hold]);
    assert!(n.eng[0].discovery().of_peer(B).is_none());
    assert_eq!(n.eng[0].peer_by_address(Ipv4Addr::new(192, 0, 2, 2)), None);
    // B comes back: the session is relearned without touching A's config.
    n.mute_tcp[1] = false;
    n.mute_hello[1] = false;
    n.eng[1] = Engine::new(config(B, 180, &[B]), n.now).expect("config");
    let back = n.now;
    n.run_until(back, Duration::from_secs(30));
    assert_eq!(n.state(0), Some(State::Operational));
    assert_eq!(n.state(1), Some(State::Operational));
}

/// A scripted peer P (10.0.0.9, above the engine's 10.0.0.1: P is active, the engine
/// passive) or Q (10.0.0.0, below: the engine active).
struct Scripted {
    now: Now,
    eng: Engine,
    peer: Ipv4Addr,
    out: Vec<Output>,
    next_id: u32,
}

const P: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);
const Q: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 0);

fn pdu_from(peer: Ipv4Addr, bodies: Vec<Body>, first_id: u32) -> Vec<u8> {
    let messages = bodies
        .into_iter()
        .enumerate()
        .map(|(i, b)| Message::new(first_id + i as u32, b))
        .collect();
    Pdu {
        ldp_id: ldp_id(peer),
        messages,
    }
    .to_bytes()
    .expect("encodes")
}

fn init_from(receiver: LdpId, keepalive: u16) -> Initialization {
    Initialization {
        version: 1,
        keepalive_time: keepalive,
        downstream_on_demand: false,
        loop_detection: false,
        pv_limit: 0,
        max_pdu_len: 0,
        receiver,
    }
}

impl Scripted {
    /// The engine (A) with an adjacency to `peer`, its session at its first state.
    fn new(peer: Ipv4Addr) -> Scripted {
        let now = t0();
        let mut s = Scripted {
            now,
            eng: Engine::new(config(A, 180, &[A]), now).expect("config"),
            peer,
            out: Vec::new(),
            next_id: 100,
        };
        let hello = Body::Hello(Hello {
            hold_time: 15,
            targeted: false,
            request_targeted: false,
            gtsm: false,
            transport_v4: None,
            config_seqno: None,
            transport_v6: None,
        });
        let h = pdu_from(peer, vec![hello], 1);
        s.input(Input::Hello {
            iface: 1,
            src: peer,
            data: &h,
        });
        if peer > A {
            s.input(Input::Accepted { from: peer });
            assert!(s.out.contains(&Output::Accept {
                from: peer,
                peer,
                gtsm: false
            }));
        } else {
            assert!(s.out.iter().any(|o| matches!(o, Output::Connect { .. })));
            s.input(Input::Connected { peer });
        }
        s
    }

    fn input(&mut self, i: Input<'_>) {
        self.out.clear();
        self.eng.handle(self.now, i, &mut self.out);
    }

    fn send(&mut self, bodies: Vec<Body>) {
        let d = pdu_from(self.peer, bodies, self.next_id);
        self.next_id += 10;
        let peer = self.peer;
        self.input(Input::Data { peer, data: &d });
    }

    fn state(&self) -> Option<State> {
        self.eng.session(self.peer).map(|s| s.state)
    }

    /// Drives the session to `target` by the regular exchange.
    fn to(peer: Ipv4Addr, target: State) -> Scripted {
        let mut s = Scripted::new(peer);
        let init = Body::Initialization(init_from(ldp_id(A), 180));
        match (peer > A, target) {
            (true, State::Initialized) | (false, State::OpenSent) => {}
            (_, State::OpenRec) => s.send(vec![init]),
            (_, State::Operational) => s.send(vec![init, Body::KeepAlive]),
            other => panic!("not reachable here: {other:?}"),
        }
        assert_eq!(s.state(), Some(target));
        s
    }

    fn closed_with(&self) -> Option<Status> {
        let n = notifications(&self.out);
        let closed = self.out.contains(&Output::Close { peer: self.peer });
        assert!(
            closed || n.iter().all(|s| !s.fatal),
            "fatal notification without close"
        );
        if closed {
            assert_eq!(n.len(), 1, "{n:?}");
            n.first().copied()
        } else {
            None
        }
    }
}

#[test]
fn passive_and_active_handshakes_send_what_the_rfc_says() {
    // Passive: Init in → Init + KeepAlive out (OPENREC); KeepAlive in → OPERATIONAL, Address out.
    let mut s = Scripted::to(P, State::Initialized);
    s.send(vec![Body::Initialization(init_from(ldp_id(A), 90))]);
    let m = sent_messages(&s.out);
    assert!(
        matches!(&m[..], [Message { body: Body::Initialization(i), .. }, Message { body: Body::KeepAlive, .. }]
        if i.receiver == ldp_id(P) && i.keepalive_time == 180 && i.version == 1)
    );
    assert_eq!(s.state(), Some(State::OpenRec));
    let neg = s
        .eng
        .session(P)
        .and_then(|x| x.negotiated)
        .expect("negotiated");
    assert_eq!(neg.keepalive, Duration::from_secs(90));
    assert_eq!(neg.max_pdu_len, 4096);
    s.send(vec![Body::KeepAlive]);
    assert_eq!(s.state(), Some(State::Operational));
    assert!(s.out.contains(&Output::SessionUp { peer: ldp_id(P) }));
    assert!(sent_messages(&s.out)
        .iter()
        .any(|m| m.body == Body::Address(vec![A])));

    // Active: connected → Init out (OPENSENT); Init in → KeepAlive out (OPENREC).
    let mut s = Scripted::new(Q);
    let m = sent_messages(&s.out);
    assert!(
        matches!(&m[..], [Message { body: Body::Initialization(i), .. }] if i.receiver == ldp_id(Q))
    );
    assert_eq!(s.state(), Some(State::OpenSent));
    s.send(vec![Body::Initialization(init_from(ldp_id(A), 180))]);
    assert_eq!(
        sent_messages(&s.out)
            .into_iter()
            .map(|m| m.body)
            .collect::<Vec<_>>(),
        vec![Body::KeepAlive]
    );
    assert_eq!(s.state(), Some(State::OpenRec));
}

#[test]
fn bad_initialization_parameters_are_rejected_with_their_status() {
    for peer in [P, Q] {
        let first = if peer > A {
            State::Initialized
        } else {
            State::OpenSent
        };
        let cases: Vec<(Initialization, StatusCode)> = vec![
            (
                init_from(ldp_id(A), 0),
                StatusCode::SessionRejectedBadKeepAliveTime,
            ),
            (
                Initialization {
                    version: 2,
                    ..init_from(ldp_id(A), 180)
                },
                StatusCode::BadProtocolVersion,
            ),
            (
                init_from(ldp_id(Ipv4Addr::new(10, 9, 9, 9)), 180),
                StatusCode::SessionRejectedNoHello,
            ),
            (
                init_from(
                    LdpId {
                        lsr_id: A,
                        label_space: 1,
                    },
                    180,
                ),
                StatusCode::SessionRejectedNoHello,
            ),
        ];
        for (init, code) in cases {
            let mut s = Scripted::to(peer, first);
            let id = s.next_id;
            s.send(vec![Body::Initialization(init)]);
            assert_eq!(
                s.closed_with(),
                Some(code.status(id, wire::msg_type::INITIALIZATION)),
                "{peer} {code:?}"
            );
            assert!(s
                .out
                .iter()
                .any(|o| matches!(o, Output::SessionDown { was_up: false, .. })));
            assert_eq!(s.state(), None);
        }
        // An Initialization in a PDU from another LSR than the adjacency's: no Hello.
        let mut s = Scripted::to(peer, first);
        let d = pdu_from(
            Ipv4Addr::new(10, 9, 9, 9),
            vec![Body::Initialization(init_from(ldp_id(A), 180))],
            5,
        );
        s.input(Input::Data { peer, data: &d });
        let st = s.closed_with().expect("closed");
        let want = if first == State::Initialized {
            StatusCode::SessionRejectedNoHello.data()
        } else {
            StatusCode::BadLdpIdentifier.data()
        };
        assert_eq!(st.data, want, "{peer}");
        assert!(st.fatal);
    }
}

fn mapping() -> Body {
    Body::LabelMapping(LabelMapping {
        fec: vec![FecElement::prefix(Ipv4Addr::new(198, 18, 7, 1), 32).expect("prefix")],
        label: 16,
        request_id: None,
        hop_count: None,
        path_vector: None,
    })
}

#[test]
fn every_state_answers_unexpected_messages_per_the_rfc() {
    let hello = Body::Hello(Hello {
        hold_time: 15,
        targeted: false,
        request_targeted: false,
        gtsm: false,
        transport_v4: None,
        config_seqno: None,
        transport_v6: None,
    });
    let init = Body::Initialization(init_from(ldp_id(A), 180));
    let address = Body::Address(vec![P]);
    let cases: Vec<(Ipv4Addr, State, Vec<Body>)> = vec![
        (
            P,
            State::Initialized,
            vec![hello.clone(), Body::KeepAlive, address.clone(), mapping()],
        ),
        (
            Q,
            State::OpenSent,
            vec![hello.clone(), Body::KeepAlive, address.clone(), mapping()],
        ),
        (
            P,
            State::OpenRec,
            vec![hello.clone(), init.clone(), address.clone(), mapping()],
        ),
        (
            Q,
            State::OpenRec,
            vec![hello.clone(), init.clone(), address.clone(), mapping()],
        ),
        (P, State::Operational, vec![hello.clone(), init.clone()]),
        (Q, State::Operational, vec![hello, init]),
    ];
    for (peer, state, bodies) in cases {
        for body in bodies {
            let mut s = Scripted::to(peer, state);
            let (id, ty) = (s.next_id, body.msg_type());
            s.send(vec![body]);
            // RFC 5036 §2.5.4: any other message → fatal Notification, close.
            assert_eq!(
                s.closed_with(),
                Some(StatusCode::Shutdown.status(id, ty)),
                "{state:?} from {peer} type {ty:#06x}"
            );
            assert_eq!(s.state(), None);
        }
        // A fatal Notification closes without an answer; a non-fatal one is only noted.
        let mut s = Scripted::to(peer, state);
        s.send(vec![super::session::notification(
            StatusCode::UnknownFec.status(1, 0x0400),
        )]);
        assert!(!s.out.contains(&Output::Close { peer }));
        assert_eq!(s.state(), Some(state));
        s.send(vec![super::session::notification(
            StatusCode::Shutdown.status(0, 0),
        )]);
        assert!(s.out.contains(&Output::Close { peer }));
        assert!(notifications(&s.out).is_empty());
        assert_eq!(s.state(), None);
    }
    // In OPERATIONAL, label messages go to the label procedures and Address is learned.
    let mut s = Scripted::to(P, State::Operational);
    s.send(vec![
        mapping(),
        Body::Address(vec![Ipv4Addr::new(192, 0, 2, 9)]),
    ]);
    assert!(s.out.is_empty(), "{:?}", s.out);
    assert_eq!(s.eng.counters().label_messages, 1);
    assert_eq!(
        s.eng.peer_by_address(Ipv4Addr::new(192, 0, 2, 9)),
        Some(ldp_id(P))
    );
    s.send(vec![Body::AddressWithdraw(vec![Ipv4Addr::new(
        192, 0, 2, 9,
    )])]);
    assert_eq!(s.eng.peer_by_address(Ipv4Addr::new(192, 0, 2, 9)), None);
}

#[test]
fn decode_errors_on_a_session() {
    // Unknown message with U = 0: a non-fatal Notification, the session stays.
    let mut s = Scripted::to(P, State::Operational);
    let mut d = pdu_from(P, vec![Body::KeepAlive], 50);
    d[10] = 0x3f; // message type 0x3f01
    s.input(Input::Data { peer: P, data: &d });
    assert_eq!(
        notifications(&s.out),
        vec![StatusCode::UnknownMessageType.status(50, 0x3f01)]
    );
    assert_eq!(s.state(), Some(State::Operational));
    // A bad PDU length: fatal, closed.
    s.input(Input::Data {
        peer: P,
        data: &[0, 1, 0xff, 0xff],
    });
    assert_eq!(s.closed_with(), Some(StatusCode::BadPduLength.status(0, 0)));
    // A bad version.
    let mut s = Scripted::to(P, State::Operational);
    let mut d = pdu_from(P, vec![Body::KeepAlive], 50);
    d[1] = 2;
    s.input(Input::Data { peer: P, data: &d });
    assert_eq!(
        s.closed_with(),
        Some(StatusCode::BadProtocolVersion.status(0, 0))
    );
}

#[test]
fn connections_without_hello_or_from_the_wrong_side_are_refused() {
    let now = t0();
    let mut e = Engine::new(config(A, 180, &[]), now).expect("config");
    let mut out = Vec::new();
    // Before a Hello from there: held for up to 5 s, then refused.
    e.handle(now, Input::Accepted { from: P }, &mut out);
    assert_eq!(out, vec![]);
    e.handle(now + Duration::from_secs(4), Input::Timer, &mut out);
    assert!(!out.iter().any(|o| matches!(o, Output::Refuse { .. })));
    e.handle(now + Duration::from_secs(5), Input::Timer, &mut out);
    assert!(out.contains(&Output::Refuse { from: P }));
    // A Hello arriving while it waits makes it the session.
    let mut out = Vec::new();
    e.handle(now, Input::Accepted { from: P }, &mut out);
    let h = pdu_from(P, vec![super::discovery::hello_body(15, P, true)], 1);
    e.handle(
        now,
        Input::Hello {
            iface: 1,
            src: P,
            data: &h,
        },
        &mut out,
    );
    assert_eq!(
        out,
        vec![Output::Accept {
            from: P,
            peer: P,
            gtsm: true
        }]
    );
    assert_eq!(e.session(P).map(|s| s.state), Some(State::Initialized));
    // Q is below us: we are active, Q must not connect.
    let mut s = Scripted::new(Q);
    s.input(Input::Accepted { from: Q });
    assert_eq!(s.out, vec![Output::Refuse { from: Q }]);
    // The initialization exchange times out.
    let mut s = Scripted::to(P, State::Initialized);
    let hello = pdu_from(P, vec![super::discovery::hello_body(15, P, false)], 7);
    s.now = s.now + Duration::from_secs(10);
    s.input(Input::Hello {
        iface: 1,
        src: P,
        data: &hello,
    });
    s.now = s.now + Duration::from_secs(6);
    s.input(Input::Timer);
    assert!(s.out.contains(&Output::Close { peer: P }));
    assert!(s.out.iter().any(|o| matches!(
        o,
        Output::SessionDown {
            reason: Down::InitTimeout,
            ..
        }
    )));
}

#[test]
fn configurations_the_engine_cannot_run_are_refused() {
    use super::engine::ConfigError;
    let ok = config(A, 180, &[]);
    assert_eq!(ok.check(), Ok(()));
    let bad = |f: fn(&mut Config)| {
        let mut c = ok.clone();
        f(&mut c);
        Engine::new(c, t0()).err()
    };
    assert_eq!(
        bad(|c| c.hello_interval = Duration::ZERO),
        Some(ConfigError::HelloInterval)
    );
    assert_eq!(
        bad(|c| c.hello_interval = Duration::from_secs(15)),
        Some(ConfigError::HelloInterval)
    );
    assert_eq!(bad(|c| c.keepalive_time = 0), Some(ConfigError::KeepAlive));
    assert_eq!(
        bad(|c| c.max_pdu_len = 255),
        Some(ConfigError::MaxPduLength)
    );
    assert_eq!(
        bad(|c| c.labels = (0, 15)),
        Some(ConfigError::LabelRange(0, 15))
    );
    assert_eq!(bad(|c| c.labels = (16, 16)), None);
}

#[test]
fn shutdown_ends_every_session_with_a_notification() {
    let mut n = Net::new(180, 180);
    let start = n.now;
    n.run_until(start, Duration::from_secs(1));
    assert_eq!(n.state(1), Some(State::Operational));
    n.feed(0, Input::Shutdown);
    n.drain();
    let st = StatusCode::Shutdown.status(0, 0);
    assert_eq!(notifications(&n.log[0]), vec![st]);
    assert!(n.log[0].contains(&Output::Close { peer: B }));
    // B got it and closed too, without answering.
    assert_eq!(n.state(1), None);
    assert!(notifications(&n.log[1]).is_empty());
    assert_eq!(n.eng[1].counters().notifications_received, 1);
    assert!(n.log[1].iter().any(|o| matches!(
        o,
        Output::SessionDown {
            reason: Down::Received,
            was_up: true,
            ..
        }
    )));
}

#[test]
fn interfaces_and_addresses_change_at_runtime() {
    let mut n = Net::new(180, 180);
    let start = n.now;
    n.run_until(start, Duration::from_secs(1));
    assert_eq!(n.state(1), Some(State::Operational));
    // A changes its addresses: B learns them at once.
    let new = [A, Ipv4Addr::new(192, 0, 2, 9)];
    n.feed(0, Input::Addresses(&new));
    n.drain();
    assert_eq!(
        n.eng[1].peer_by_address(Ipv4Addr::new(192, 0, 2, 9)),
        Some(ldp_id(A))
    );
    assert_eq!(n.eng[1].peer_by_address(Ipv4Addr::new(192, 0, 2, 1)), None);
    // A adds interface 2 (Hellos there at once) and drops interface 1: the session ends.
    let before = n.eng[0].counters().hellos_sent;
    n.feed(0, Input::Interfaces(&[1, 2]));
    assert_eq!(n.eng[0].counters().hellos_sent, before + 2);
    n.feed(0, Input::Interfaces(&[2]));
    n.drain();
    assert_eq!(n.state(0), None);
    assert_eq!(
        notifications(&n.log[0]),
        vec![StatusCode::Shutdown.status(0, 0)]
    );
    // B's Hellos still arrive on interface 1, which no longer runs LDP: no adjacency.
    let dropped = n.eng[0].counters().hellos_dropped;
    n.run_until(start, Duration::from_secs(12));
    assert!(n.eng[0].counters().hellos_dropped > dropped);
    assert!(n.eng[0].discovery().iter().all(|(i, _)| i == 2));
}

#[test]
fn no_timer_stays_due_after_a_neighbour_becomes_the_active_side() {
    // Q (below us): we are active, connect, and the attempt fails: a retry is scheduled.
    let mut s = Scripted::new(Q);
    s.input(Input::Closed { peer: Q });
    assert!(s
        .out
        .iter()
        .any(|o| matches!(o, Output::SessionDown { .. })));
    // Q's Hellos now carry a transport address above ours: Q is the active side.
    let h = pdu_from(Q, vec![super::discovery::hello_body(15, P, false)], 9);
    s.input(Input::Hello {
        iface: 1,
        src: Q,
        data: &h,
    });
    s.now = s.now + Duration::from_secs(20);
    let h = pdu_from(Q, vec![super::discovery::hello_body(15, P, false)], 10);
    s.input(Input::Hello {
        iface: 1,
        src: Q,
        data: &h,
    });
    s.input(Input::Timer);
    // Nothing to do until the next Hello is due: the retry is not reported as due.
    let next = s.eng.next_timeout().expect("timers");
    assert!(
        next > s.now.mono,
        "a timer stays due: {next:?} <= {:?}",
        s.now.mono
    );
}
