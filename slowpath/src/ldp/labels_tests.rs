//! The label procedures across several engines wired together in memory: a headend H, two
//! transits T and U, and a tailend E that is the egress of an ISP's FEC.
//!
//! ```text
//!        .1 192.0.2.0/30 .2       .5 192.0.2.4/30 .6
//!     H ------------------- T -------------------- E
//!      \ .9 192.0.2.8/30 .10   .13 192.0.2.12/30 .14 /
//!       ---------------------- U ------------------
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::discovery::IfIndex;
use super::engine::{Config, Engine, FecChange, Input, Now, Output};
use super::labels::{Fec, FecState};
use super::session::State;

const H: usize = 0;
const T: usize = 1;
const U: usize = 2;
const E: usize = 3;

fn ip(d: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, d)
}

fn lsr(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n as u8 + 1)
}

fn isp() -> Fec {
    Fec::new(Ipv4Addr::new(198, 18, 100, 0), 24).expect("fec")
}

enum Ev {
    Hello(IfIndex, Ipv4Addr, Vec<u8>),
    Accepted(Ipv4Addr),
    Connected(Ipv4Addr),
    Data(Ipv4Addr, Vec<u8>),
    Closed(Ipv4Addr),
}

/// One end of a link: node, interface, its address on the link.
type End = (usize, IfIndex, Ipv4Addr);

struct Mesh {
    now: Now,
    nodes: Vec<Engine>,
    alive: Vec<bool>,
    /// (node, iface) ↔ (node, iface, its address on the link)
    links: Vec<(End, End)>,
    queue: VecDeque<(usize, Ev)>,
    /// TCP events for a paused node: its kernel holds them until it runs again.
    held: Vec<(usize, Ev)>,
    /// A route change for H made while it was paused.
    route_while_paused: Option<Ipv4Addr>,
    /// The last FecState each node emitted, per FEC.
    fib: Vec<BTreeMap<Fec, FecState>>,
}

fn config(n: usize) -> Config {
    let mut c = Config::new(lsr(n));
    let (ifs, addrs): (Vec<IfIndex>, Vec<Ipv4Addr>) = match n {
        H => (vec![1, 2], vec![ip(1), ip(9)]),
        T => (vec![1, 2], vec![ip(2), ip(5)]),
        U => (vec![1, 2], vec![ip(10), ip(13)]),
        _ => (vec![1, 2], vec![ip(6), ip(14)]),
    };
    c.interfaces = ifs;
    c.addresses = addrs;
    c.addresses.push(lsr(n));
    // Distinct ranges make the labels in the assertions tell whose they are.
    let base = 1000 * (n as u32 + 1);
    c.labels = (base, base + 999);
    c
}

impl Mesh {
    fn new() -> Mesh {
        let now = Now {
            mono: Instant::now(),
            unix: 1_800_000_000,
        };
        Mesh {
            now,
            nodes: (0..4)
                .map(|n| Engine::new(config(n), now).expect("config"))
                .collect(),
            alive: vec![true; 4],
            links: vec![
                ((H, 1, ip(1)), (T, 1, ip(2))),
                ((T, 2, ip(5)), (E, 1, ip(6))),
                ((H, 2, ip(9)), (U, 1, ip(10))),
                ((U, 2, ip(13)), (E, 2, ip(14))),
            ],
            queue: VecDeque::new(),
            held: Vec::new(),
            route_while_paused: None,
            fib: vec![BTreeMap::new(); 4],
        }
    }

    fn index(a: Ipv4Addr) -> usize {
        usize::from(a.octets()[3]) - 1
    }

    fn feed(&mut self, n: usize, input: Input<'_>) {
        if !self.alive[n] {
            return;
        }
        let mut out = Vec::new();
        self.nodes[n].handle(self.now, input, &mut out);
        let me = lsr(n);
        for o in out {
            match o {
                Output::Hello { iface, data } => {
                    for (a, b) in self.links.clone() {
                        for (x, y) in [(a, b), (b, a)] {
                            if x.0 == n && x.1 == iface {
                                self.queue
                                    .push_back((y.0, Ev::Hello(y.1, x.2, data.clone())));
                            }
                        }
                    }
                }
                Output::Connect { peer, local, .. } => self
                    .queue
                    .push_back((Self::index(peer), Ev::Accepted(local))),
                Output::Accept { peer, .. } => {
                    self.queue.push_back((Self::index(peer), Ev::Connected(me)))
                }
                Output::Refuse { from } => {
                    self.queue.push_back((Self::index(from), Ev::Closed(me)))
                }
                Output::Send { peer, data } => self
                    .queue
                    .push_back((Self::index(peer), Ev::Data(me, data))),
                Output::Close { peer } => self.queue.push_back((Self::index(peer), Ev::Closed(me))),
                Output::Fec(s) => {
                    self.fib[n].insert(s.fec, s);
                }
                Output::SessionUp { .. } | Output::SessionDown { .. } => {}
            }
        }
    }

    fn drain(&mut self) {
        while let Some((n, ev)) = self.queue.pop_front() {
            if !self.alive[n] {
                // A paused node loses Hellos (UDP) but not what TCP has accepted.
                if !matches!(ev, Ev::Hello(..)) {
                    self.held.push((n, ev));
                }
                continue;
            }
            match ev {
                Ev::Hello(iface, src, d) => self.feed(
                    n,
                    Input::Hello {
                        iface,
                        src,
                        data: &d,
                    },
                ),
                Ev::Accepted(from) => self.feed(n, Input::Accepted { from }),
                Ev::Connected(peer) => self.feed(n, Input::Connected { peer }),
                Ev::Data(peer, d) => {
                    if self.alive[n] && self.nodes[n].session(peer).is_none() {
                        // No connection there any more: TCP answers with a reset.
                        self.queue
                            .push_back((Self::index(peer), Ev::Closed(lsr(n))));
                    } else {
                        self.feed(n, Input::Data { peer, data: &d })
                    }
                }
                Ev::Closed(peer) => self.feed(n, Input::Closed { peer }),
            }
        }
    }

    fn run(&mut self, d: Duration) {
        let end = self.now.mono + d;
        loop {
            self.drain();
            let next = (0..4)
                .filter(|n| self.alive[*n])
                .filter_map(|n| self.nodes[n].next_timeout())
                .min();
            match next {
                Some(t) if t <= end => {
                    if t > self.now.mono {
                        self.now = self.now + (t - self.now.mono);
                    }
                    for n in 0..4 {
                        if self.alive[n]
                            && self.nodes[n]
                                .next_timeout()
                                .is_some_and(|x| x <= self.now.mono)
                        {
                            self.feed(n, Input::Timer);
                            // A timer just handled is never due again at once (that would
                            // spin a transport).
                            assert!(self.nodes[n]
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

    /// A paused node runs again and reads what its connections hold.
    fn resume(&mut self, n: usize) {
        self.alive[n] = true;
        if n == H {
            if let Some(nh) = self.route_while_paused.take() {
                self.feed(
                    H,
                    Input::Route {
                        fec: isp(),
                        next_hop: Some(nh),
                    },
                );
            }
        }
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(k, _)| *k == n);
        self.held = rest;
        self.queue.extend(mine);
    }

    /// The node's process starts afresh: its old connections are closed by its kernel, so
    /// its peers see them close.
    fn restart(&mut self, n: usize) {
        self.held.retain(|(k, _)| *k != n);
        if n == H {
            self.route_while_paused = None;
        }
        self.alive[n] = true;
        self.nodes[n] = Engine::new(config(n), self.now).expect("config");
        self.fib[n].clear();
        for k in 0..4 {
            if k != n && self.nodes[k].session(lsr(n)).is_some() {
                self.queue.push_back((k, Ev::Closed(lsr(n))));
            }
        }
    }

    fn input(&mut self, n: usize, i: Input<'_>) {
        self.feed(n, i);
        self.drain();
    }

    fn state(&self, n: usize) -> Option<FecState> {
        self.fib[n].get(&isp()).copied()
    }

    fn remote(&self, n: usize) -> Option<(Ipv4Addr, u32)> {
        self.state(n).and_then(|s| s.remote)
    }

    fn local(&self, n: usize) -> Option<u32> {
        self.state(n).and_then(|s| s.local)
    }
}

/// The mesh up, routes toward the ISP FEC in place (H via T, T and U via E), no egress yet.
fn converged() -> Mesh {
    let mut m = Mesh::new();
    m.run(Duration::from_secs(1));
    for (a, b) in [(H, T), (T, E), (H, U), (U, E)] {
        let s = m.nodes[a].session(lsr(b)).map(|s| s.state);
        assert_eq!(s, Some(State::Operational), "{a}-{b}");
    }
    let fec = isp();
    m.input(
        H,
        Input::Route {
            fec,
            next_hop: Some(ip(2)),
        },
    );
    m.input(
        T,
        Input::Route {
            fec,
            next_hop: Some(ip(6)),
        },
    );
    m.input(
        U,
        Input::Route {
            fec,
            next_hop: Some(ip(14)),
        },
    );
    m
}

#[test]
fn ordered_control_builds_the_path_from_the_egress() {
    let mut m = converged();
    // Ordered control: routes alone advertise nothing.
    for n in 0..4 {
        assert_eq!(m.state(n), None, "node {n}");
    }
    m.input(
        E,
        Input::Egress {
            fec: isp(),
            egress: true,
        },
    );
    assert_eq!(
        m.state(E),
        Some(FecState {
            fec: isp(),
            local: Some(4000),
            egress: true,
            remote: None
        })
    );
    assert_eq!(
        m.state(T),
        Some(FecState {
            fec: isp(),
            local: Some(2000),
            egress: false,
            remote: Some((ip(6), 4000))
        })
    );
    assert_eq!(
        m.state(U),
        Some(FecState {
            fec: isp(),
            local: Some(3000),
            egress: false,
            remote: Some((ip(14), 4000))
        })
    );
    assert_eq!(m.remote(H), Some((ip(2), 2000)));
    assert_eq!(m.local(H), Some(1000));

    // Liberal retention: H holds U's label too, not in use.
    let b = m.nodes[H].bindings();
    let b = b.iter().find(|b| b.fec == isp()).expect("binding");
    assert_eq!(b.remote, vec![(lsr(T), 2000, true), (lsr(U), 3000, false)]);

    // A route change at H moves the FEC to U's label at once.
    m.input(
        H,
        Input::Route {
            fec: isp(),
            next_hop: Some(ip(10)),
        },
    );
    assert_eq!(m.remote(H), Some((ip(10), 3000)));
    assert_eq!(m.local(H), Some(1000));
    // And the route gone: H keeps no path, so it withdraws its own label upstream.
    m.input(
        H,
        Input::Route {
            fec: isp(),
            next_hop: None,
        },
    );
    assert_eq!(
        m.state(H),
        Some(FecState {
            fec: isp(),
            local: None,
            egress: false,
            remote: None
        })
    );
}

#[test]
fn withdrawal_at_the_egress_reaches_the_headend_and_labels_are_reused() {
    let mut m = converged();
    m.input(
        E,
        Input::Egress {
            fec: isp(),
            egress: true,
        },
    );
    assert_eq!(m.remote(H), Some((ip(2), 2000)));
    // The ISP is removed at the tailend: withdrawn hop by hop within the same exchange.
    m.input(
        E,
        Input::Egress {
            fec: isp(),
            egress: false,
        },
    );
    assert_eq!(m.state(E).and_then(|s| s.local), None);
    assert_eq!(m.state(T).map(|s| (s.local, s.remote)), Some((None, None)));
    assert_eq!(m.remote(H), None);
    // Every withdrawn label was released, so each node can hand it out again.
    for n in 0..4 {
        assert_eq!(m.nodes[n].labels_in_use(), 0, "node {n}");
    }
    m.input(
        E,
        Input::Egress {
            fec: isp(),
            egress: true,
        },
    );
    assert_eq!(m.local(E), Some(4000));
    assert_eq!(m.remote(H), Some((ip(2), 2000)));
}

#[test]
fn a_dead_transit_takes_its_labels_and_a_restart_brings_them_back() {
    let mut m = converged();
    m.input(
        E,
        Input::Egress {
            fec: isp(),
            egress: true,
        },
    );
    assert_eq!(m.remote(H), Some((ip(2), 2000)));
    // T dies half a second after its Hello of 5 s.
    m.run(Duration::from_millis(4500));
    m.alive[T] = false;
    m.run(Duration::from_secs(14));
    assert_eq!(
        m.remote(H),
        Some((ip(2), 2000)),
        "kept within the hold time"
    );
    m.run(Duration::from_secs(2));
    assert_eq!(m.remote(H), None, "gone after the hold time");
    assert_eq!(m.local(H), None);
    // The operator's IGP would move H's route to U; here it stays on T, and T restarts.
    m.alive[T] = true;
    m.nodes[T] = Engine::new(config(T), m.now).expect("config");
    m.input(
        T,
        Input::Route {
            fec: isp(),
            next_hop: Some(ip(6)),
        },
    );
    m.run(Duration::from_secs(30));
    assert_eq!(m.remote(H), Some((ip(2), 2000)));
    assert_eq!(m.state(T).and_then(|s| s.remote), Some((ip(6), 4000)));
}

#[test]
fn label_request_is_answered_from_the_table() {
    use super::wire::{self, Body, FecElement, LabelRequest, LdpId, Message, Pdu};
    let mut m = converged();
    m.input(
        E,
        Input::Egress {
            fec: isp(),
            egress: true,
        },
    );
    // T asks E (already knowing the answer): E answers with its label and the request ID.
    let req = Pdu::one(
        LdpId {
            lsr_id: lsr(T),
            label_space: 0,
        },
        Message::new(
            77,
            Body::LabelRequest(LabelRequest {
                fec: vec![FecElement::prefix(isp().addr, 24).expect("prefix")],
                hop_count: None,
                path_vector: None,
            }),
        ),
    )
    .to_bytes()
    .expect("encodes");
    let mut out = Vec::new();
    let now = m.now;
    m.nodes[E].handle(
        now,
        Input::Data {
            peer: lsr(T),
            data: &req,
        },
        &mut out,
    );
    let answers: Vec<Body> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send { data, .. } => {
                Some(wire::decode(data, u16::MAX).expect("pdu").pdu.messages)
            }
            _ => None,
        })
        .flatten()
        .map(|m| m.body)
        .collect();
    assert!(
        matches!(&answers[..], [Body::LabelMapping(mp)] if mp.label == 4000 && mp.request_id == Some(77)),
        "{answers:?}"
    );
}

/// What the label path toward the ISP FEC must be once everything is up: every hop's
/// next-hop label is the local label of the node its route goes to, and with no egress
/// nobody has one.
fn assert_consistent(m: &Mesh, egress: bool, h_via_u: bool) {
    let h = if h_via_u {
        (H, U, ip(10))
    } else {
        (H, T, ip(2))
    };
    let via = [h, (T, E, ip(6)), (U, E, ip(14))];
    for (n, next, addr) in via {
        let want = if egress {
            m.local(next).map(|l| (addr, l))
        } else {
            None
        };
        assert_eq!(m.remote(n), want, "node {n} via {next}");
        assert_eq!(m.local(n).is_some(), egress, "node {n}");
    }
    assert_eq!(m.local(E).is_some(), egress);
}

#[derive(Debug, Clone)]
enum Disruption {
    Run(u16),
    Pause(usize),
    Resume(usize),
    Restart(usize),
    /// A clean stop (Shutdown to its peers) and start of the node.
    Stop(usize),
    Egress(bool),
    /// H's route toward the FEC moves to U (true) or back to T.
    Reroute(bool),
}

fn disruption() -> impl proptest::strategy::Strategy<Value = Disruption> {
    use proptest::prelude::*;
    prop_oneof![
        (0u16..40_000).prop_map(Disruption::Run),
        (0usize..4).prop_map(Disruption::Pause),
        (0usize..4).prop_map(Disruption::Resume),
        (0usize..4).prop_map(Disruption::Restart),
        (0usize..4).prop_map(Disruption::Stop),
        proptest::bool::ANY.prop_map(Disruption::Egress),
        proptest::bool::ANY.prop_map(Disruption::Reroute),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Nodes paused (a hung process: nothing in or out, its timers stopped) and resumed,
    /// restarted with a fresh engine, the egress toggled, at random moments: once all run
    /// again for long enough, every session is back and the label path is whole.
    #[test]
    fn the_mesh_recovers_from_any_disruption(steps in proptest::collection::vec(disruption(), 1..12)) {
        let mut m = converged();
        let mut egress = false;
        let mut h_via_u = false;
        for step in steps {
            match step.clone() {
                Disruption::Run(ms) => m.run(Duration::from_millis(u64::from(ms))),
                Disruption::Pause(n) => m.alive[n] = false,
                Disruption::Resume(n) => m.resume(n),
                Disruption::Restart(n) | Disruption::Stop(n) => {
                    if matches!(step, Disruption::Stop(_)) && m.alive[n] {
                        m.input(n, Input::Shutdown);
                    }
                    m.restart(n);
                    let fec = isp();
                    let h = if h_via_u { ip(10) } else { ip(2) };
                    let nh = match n { H => Some(h), T => Some(ip(6)), U => Some(ip(14)), _ => None };
                    if nh.is_some() {
                        m.input(n, Input::Route { fec, next_hop: nh });
                    }
                    if n == E && egress {
                        m.input(E, Input::Egress { fec, egress: true });
                    }
                }
                Disruption::Reroute(via_u) => {
                    // Routes follow the kernel even while LDP is hung.
                    h_via_u = via_u;
                    let nh = if via_u { ip(10) } else { ip(2) };
                    if m.alive[H] {
                        m.input(H, Input::Route { fec: isp(), next_hop: Some(nh) });
                    } else {
                        // Hung: it reads the route change when it runs again.
                        m.route_while_paused = Some(nh);
                    }
                }
                Disruption::Egress(on) => {
                    egress = on;
                    if m.alive[E] {
                        m.input(E, Input::Egress { fec: isp(), egress: on });
                    } else {
                        // A paused node does not hear the operator: restart it with it.
                        m.restart(E);
                        if on {
                            m.input(E, Input::Egress { fec: isp(), egress: true });
                        }
                    }
                }
            }
        }
        for n in 0..4 {
            m.resume(n);
        }
        // Long enough for a stale session to time out (KeepAlive 180 s) and the longest
        // backoff (120 s) to pass.
        m.run(Duration::from_secs(400));
        for (a, b) in [(H, T), (T, E), (H, U), (U, E)] {
            proptest::prop_assert_eq!(m.nodes[a].session(lsr(b)).map(|s| s.state), Some(State::Operational), "{}-{}", a, b);
        }
        assert_consistent(&m, egress, h_via_u);
    }
}

#[test]
fn a_thousand_fecs_converge_and_withdraw_in_one_exchange() {
    let mut m = converged();
    let fecs: Vec<Fec> = (0..1000u32)
        .map(|i| Fec::new(Ipv4Addr::from(0xc612_0000 + (i << 8)), 24).expect("fec"))
        .collect();
    for (n, nh) in [(H, ip(2)), (T, ip(6)), (U, ip(14))] {
        let routes: Vec<FecChange> = fecs
            .iter()
            .map(|f| FecChange::Route {
                fec: *f,
                next_hop: Some(nh),
            })
            .collect();
        m.input(n, Input::Changes(&routes));
    }
    let at_h = |m: &Mesh| {
        fecs.iter()
            .filter(|f| m.fib[H].get(f).and_then(|s| s.remote).is_some())
            .count()
    };
    // The egress's 1,000 mappings go out in a few full PDUs per peer, not one each.
    let on: Vec<FecChange> = fecs
        .iter()
        .map(|f| FecChange::Egress {
            fec: *f,
            egress: true,
        })
        .collect();
    m.feed(E, Input::Changes(&on));
    let pdus = m
        .queue
        .iter()
        .filter(|(_, ev)| matches!(ev, Ev::Data(from, _) if *from == lsr(E)))
        .count();
    assert!(
        (2..=20).contains(&pdus),
        "{pdus} PDUs for 1,000 mappings to 2 peers"
    );
    m.drain();
    assert_eq!(at_h(&m), 1000);
    let off: Vec<FecChange> = fecs
        .iter()
        .map(|f| FecChange::Egress {
            fec: *f,
            egress: false,
        })
        .collect();
    m.input(E, Input::Changes(&off));
    assert_eq!(at_h(&m), 0);
    for n in 0..4 {
        assert_eq!(m.nodes[n].labels_in_use(), 0, "node {n}");
    }
}
