//! The checks of the `ldp_pdu` fuzz target, shared with a corpus test and a proptest so the
//! normal test suite runs them on stable Rust. A panic is a finding.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::engine::{Config, Engine, Input, Output};
use super::framer::Framer;
use super::labels::Fec;
use super::session::State;
use super::wire::{self, Body, Initialization, LdpId, Message, Pdu};
use crate::time::Now;

/// Any bytes as one PDU: a decode that succeeds encodes, and the encoding decodes to the
/// same PDU with nothing rejected or ignored (what was rejected or ignored is not encoded),
/// in no more bytes than it came in. The same bytes through the framer, in two pieces, give
/// PDUs that are each a prefix of the stream. Then the engine takes them (`exercise_engine`).
pub fn exercise(data: &[u8]) {
    if let Ok(d) = wire::decode(data, u16::MAX) {
        let bytes = match d.pdu.to_bytes() {
            Ok(b) => b,
            Err(e) => panic!("decoded PDU does not encode: {e}"),
        };
        assert!(bytes.len() <= data.len(), "encoding grew");
        match wire::decode(&bytes, u16::MAX) {
            Ok(again) => {
                assert_eq!(again.pdu, d.pdu, "round trip changed the PDU");
                assert!(again.rejected.is_empty() && again.ignored == 0);
            }
            Err(e) => panic!("re-encoded PDU does not decode: {e}"),
        }
    }
    let mut f = Framer::default();
    let cut = data.len() / 2;
    f.push(&data[..cut]);
    let mut seen = 0;
    let drain = |f: &mut Framer, seen: &mut usize| {
        while let Some(r) = f.next_pdu() {
            match r {
                Ok(p) => {
                    assert_eq!(data.get(*seen..*seen + p.len()), Some(&p[..]));
                    *seen += p.len();
                }
                Err(_) => break,
            }
        }
    };
    drain(&mut f, &mut seen);
    f.push(&data[cut..]);
    drain(&mut f, &mut seen);
    assert!(seen <= data.len());
    exercise_engine(data);
}

const ME: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);

fn peer_pdu(bodies: Vec<Body>) -> Vec<u8> {
    let id = LdpId {
        lsr_id: PEER,
        label_space: 0,
    };
    let msgs = bodies
        .into_iter()
        .enumerate()
        .map(|(i, b)| Message::new(i as u32 + 1, b))
        .collect();
    Pdu {
        ldp_id: id,
        messages: msgs,
    }
    .to_bytes()
    .unwrap_or_default()
}

/// The same bytes as a Hello datagram and, with the sender's LDP Identifier set to the
/// peer's, as PDUs on an OPERATIONAL session with label state (then an hour of timers): no
/// panic, every PDU the engine sends decodes, and a session that ends is closed.
fn exercise_engine(data: &[u8]) {
    let now = Now {
        mono: Instant::now(),
        unix: 0,
    };
    let mut cfg = Config::new(ME);
    cfg.interfaces = vec![1];
    cfg.addresses = vec![ME];
    let mut e = Engine::new(cfg, now).expect("config");
    let mut out = Vec::new();
    let hello = peer_pdu(vec![super::discovery::hello_body(15, PEER, true)]);
    e.handle(
        now,
        Input::Hello {
            iface: 1,
            src: PEER,
            data: &hello,
        },
        &mut out,
    );
    e.handle(now, Input::Accepted { from: PEER }, &mut out);
    let init = Body::Initialization(Initialization {
        version: 1,
        keepalive_time: 30,
        downstream_on_demand: false,
        loop_detection: false,
        pv_limit: 0,
        max_pdu_len: 4096,
        receiver: LdpId {
            lsr_id: ME,
            label_space: 0,
        },
    });
    let up = peer_pdu(vec![init, Body::KeepAlive, Body::Address(vec![PEER])]);
    e.handle(
        now,
        Input::Data {
            peer: PEER,
            data: &up,
        },
        &mut out,
    );
    assert_eq!(e.session(PEER).map(|s| s.state), Some(State::Operational));
    e.handle(
        now,
        Input::Hello {
            iface: 1,
            src: PEER,
            data,
        },
        &mut out,
    );
    for (f, len) in [([198, 18, 7, 0], 24), ([198, 18, 7, 1], 32)] {
        if let Some(fec) = Fec::new(Ipv4Addr::from(f), len) {
            e.handle(
                now,
                Input::Route {
                    fec,
                    next_hop: Some(PEER),
                },
                &mut out,
            );
        }
    }
    if let Some(fec) = Fec::new(Ipv4Addr::new(198, 18, 9, 0), 24) {
        e.handle(now, Input::Egress { fec, egress: true }, &mut out);
    }
    out.clear();
    let mut d = data.to_vec();
    if let Some(id) = d.get_mut(4..8) {
        id.copy_from_slice(&PEER.octets());
    }
    let cut = d.len() / 3;
    e.handle(
        now,
        Input::Data {
            peer: PEER,
            data: &d[..cut],
        },
        &mut out,
    );
    e.handle(
        now,
        Input::Data {
            peer: PEER,
            data: &d[cut..],
        },
        &mut out,
    );
    let mut t = now;
    for _ in 0..40 {
        t = t + Duration::from_secs(90);
        e.handle(t, Input::Timer, &mut out);
        assert!(
            e.next_timeout().is_none_or(|x| x > t.mono),
            "a timer is still due right after Timer"
        );
    }
    for o in &out {
        if let Output::Send { data, .. } = o {
            match wire::decode(data, u16::MAX) {
                Ok(p) => assert!(p.rejected.is_empty() && p.ignored == 0),
                Err(err) => panic!("engine sent a PDU that does not decode: {err}"),
            }
        }
    }
    if e.session(PEER).is_none() {
        assert!(
            out.contains(&Output::Close { peer: PEER }),
            "session gone without Close"
        );
    }
    let _ = e.bindings();
}
