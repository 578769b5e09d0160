//! FRR's own bytes through the LDP codec and engine: the PDUs of a session between two FRR
//! 8.4.4 ldpd nodes A (10.77.255.1) and B (10.77.255.2), recorded by the "frr" helper's
//! `tests/scripts/ldp_capture.sh` (see its README for the topology and steps), extracted
//! with
//!
//! ```text
//! tshark -r frr_session.pcap -T fields -e frame.number -e ip.src -e udp.payload -e tcp.payload
//! ```
//!
//! The engine plays A (the passive side) against B's recorded PDUs, and what it sends is
//! compared with what FRR's A sent in the same places.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ispmux_slowpath::ldp::wire::{self, Body, FecElement, LdpId, Message, StatusCode};
use ispmux_slowpath::ldp::{Config, Down, Engine, Fec, FecState, Input, Output};
use ispmux_slowpath::time::Now;

/// B's Hello (frame 2): hold 15 s, GTSM flag (RFC 6720), transport address, sequence 2.
const B_HELLO: &str =
    "000100260a4dff0200000100001c0000000104000004000f2000040100040a4dff020402000400000002";
/// Frame 8: B's Initialization, with three capability TLVs (U = 1) of RFC 5561.
const B_INIT: &str = "0001002f0a4dff02000002000025000000030500000e000100b4000000000a4dff0100008506000180850b0001808603000180";
/// Frame 10: A's Initialization and KeepAlive, two PDUs in one segment.
const A_INIT_KA: &str = "0001002f0a4dff01000002000025000000030500000e000100b4000000000a4dff0200008506000180850b00018086030001800001000e0a4dff0100000201000400000004";
/// Frame 12: B's KeepAlive and Address.
const B_KA_ADDR: &str = "0001000e0a4dff0200000201000400000004000100200a4dff02000003000016000000050101000e00010a4d00020a4dff020a4dfe02";
/// Frame 14: B's four Label Mappings in one PDU.
const B_MAPPINGS: &str = "000100750a4dff020000040000170000000601000007020001180a4d000200000400000003040000180000000701000008020001200a4dfe020200000400000003040000180000000801000008020001200a4dff010200000400000010040000180000000901000008020001200a4dff020200000400000003";
/// Frame 18: B's Address Withdraw of 10.77.254.2.
const B_ADDR_WITHDRAW: &str = "000100180a4dff0200000301000e0000000b0101000600010a4dfe02";
/// Frame 20: B's two Label Withdraws of 10.77.254.2/32 and a Label Mapping, three PDUs.
const B_WITHDRAWS: &str = "000100220a4dff020000040200180000000c01000008020001200a4dfe020200000400000003000100220a4dff020000040200180000000d01000008020001200a4dfe020200000400000003000100220a4dff020000040000180000000e01000008020001200a4dff010200000400000010";
/// Frame 22: A's two Label Releases.
const A_RELEASES: &str = "000100220a4dff010000040300180000000a01000008020001200a4dfe020200000400000003000100220a4dff010000040300180000000b01000008020001200a4dfe020200000400000003";
/// Frame 24: B's Notification, Shutdown.
const B_SHUTDOWN: &str = "0001001c0a4dff020000000100120000000f0300000a8000000a000000000000";

const A: Ipv4Addr = Ipv4Addr::new(10, 77, 255, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 77, 255, 2);
const B_LINK: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The PDUs of a TCP segment, each decoded.
fn pdus(segment: &[u8]) -> Vec<wire::Decoded> {
    let mut f = ispmux_slowpath::ldp::framer::Framer::default();
    f.push(segment);
    let mut out = Vec::new();
    while let Some(p) = f.next_pdu() {
        let p = p.expect("frames");
        out.push(wire::decode(&p, 4096).expect("decodes"));
    }
    assert_eq!(f.pending(), 0);
    out
}

fn fec(a: [u8; 4], len: u8) -> Fec {
    Fec::new(Ipv4Addr::from(a), len).expect("fec")
}

#[test]
fn frr_pdus_decode_and_encode_back_to_the_same_bytes() {
    for seg in [
        B_HELLO,
        B_INIT,
        A_INIT_KA,
        B_KA_ADDR,
        B_MAPPINGS,
        B_ADDR_WITHDRAW,
        B_WITHDRAWS,
        A_RELEASES,
        B_SHUTDOWN,
    ] {
        let bytes = hex(seg);
        let mut again = Vec::new();
        for d in pdus(&bytes) {
            assert!(d.rejected.is_empty() && d.ignored == 0, "{d:?}");
            d.pdu.emit(&mut again).expect("encodes");
        }
        assert_eq!(again, bytes, "{seg}");
    }
    let hello = &pdus(&hex(B_HELLO))[0].pdu.messages[0];
    let Body::Hello(h) = &hello.body else {
        panic!("{hello:?}")
    };
    assert!(h.gtsm && !h.targeted && !h.request_targeted, "{h:?}");
    let init = &pdus(&hex(B_INIT))[0].pdu.messages[0];
    let Body::Initialization(i) = &init.body else {
        panic!("{init:?}")
    };
    assert_eq!((i.version, i.keepalive_time, i.max_pdu_len), (1, 180, 0));
    assert_eq!(
        i.receiver,
        LdpId {
            lsr_id: A,
            label_space: 0
        }
    );
    let caps: Vec<(u16, bool)> = init.extra.iter().map(|t| (t.tlv_type, t.unknown)).collect();
    assert_eq!(caps, vec![(0x0506, true), (0x050b, true), (0x0603, true)]);
    let maps = &pdus(&hex(B_MAPPINGS))[0].pdu.messages;
    let got: Vec<(Vec<FecElement>, u32)> = maps
        .iter()
        .map(|m| match &m.body {
            Body::LabelMapping(l) => (l.fec.clone(), l.label),
            other => panic!("{other:?}"),
        })
        .collect();
    let p = |a: [u8; 4], len| FecElement::prefix(Ipv4Addr::from(a), len).expect("prefix");
    assert_eq!(
        got,
        vec![
            (vec![p([10, 77, 0, 0], 24)], 3),
            (vec![p([10, 77, 254, 2], 32)], 3),
            (vec![p([10, 77, 255, 1], 32)], 16),
            (vec![p([10, 77, 255, 2], 32)], 3),
        ]
    );
    let n = &pdus(&hex(B_SHUTDOWN))[0].pdu.messages[0];
    assert!(
        matches!(&n.body, Body::Notification(x) if x.status == StatusCode::Shutdown.status(0, 0))
    );
}

/// The message types in the PDUs the engine sent.
fn sent(out: &[Output]) -> Vec<Body> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { peer, data } => {
                assert_eq!(*peer, B);
                Some(pdus(data).into_iter().flat_map(|d| d.pdu.messages))
            }
            _ => None,
        })
        .flatten()
        .map(|m: Message| m.body)
        .collect()
}

fn kinds(bodies: &[Body]) -> Vec<u16> {
    bodies.iter().map(Body::msg_type).collect()
}

#[test]
fn the_engine_as_a_against_frr_b() {
    let mut now = Now {
        mono: Instant::now(),
        unix: 1_800_000_000,
    };
    let mut cfg = Config::new(A);
    cfg.interfaces = vec![1];
    cfg.addresses = vec![Ipv4Addr::new(10, 77, 0, 1), A];
    let mut e = Engine::new(cfg, now).expect("config");
    let mut out = Vec::new();
    let mut feed = |e: &mut Engine, now: Now, i: Input<'_>| {
        out.clear();
        e.handle(now, i, &mut out);
        out.clone()
    };
    // A's own FECs: its loopback and the link (connected: A is their egress); routes to B's
    // loopbacks via B's link address, as the kernel routes of the recording.
    for (f, egress) in [
        (fec([10, 77, 255, 1], 32), true),
        (fec([10, 77, 0, 0], 24), true),
    ] {
        feed(&mut e, now, Input::Egress { fec: f, egress });
    }
    for f in [fec([10, 77, 255, 2], 32), fec([10, 77, 254, 2], 32)] {
        feed(
            &mut e,
            now,
            Input::Route {
                fec: f,
                next_hop: Some(B_LINK),
            },
        );
    }

    let h = hex(B_HELLO);
    feed(
        &mut e,
        now,
        Input::Hello {
            iface: 1,
            src: B_LINK,
            data: &h,
        },
    );
    // B has the higher transport address: B connects, A accepts; B's Hello has the GTSM
    // flag, and so do A's: the session uses GTSM (RFC 6720).
    let o = feed(&mut e, now, Input::Accepted { from: B });
    assert_eq!(
        o,
        vec![Output::Accept {
            from: B,
            peer: B,
            gtsm: true
        }]
    );

    // Frame 8 → like frame 10: Initialization and KeepAlive.
    let o = feed(
        &mut e,
        now,
        Input::Data {
            peer: B,
            data: &hex(B_INIT),
        },
    );
    let frr: Vec<Body> = pdus(&hex(A_INIT_KA))
        .into_iter()
        .flat_map(|d| d.pdu.messages)
        .map(|m| m.body)
        .collect();
    let ours = sent(&o);
    assert_eq!(kinds(&ours), kinds(&frr));
    // The same Initialization FRR sent, but for its capability TLVs and Max PDU Length.
    match (&ours[0], &frr[0]) {
        (Body::Initialization(x), Body::Initialization(y)) => {
            assert_eq!(
                (x.version, x.keepalive_time, x.receiver),
                (y.version, y.keepalive_time, y.receiver)
            );
            assert_eq!((x.downstream_on_demand, x.loop_detection), (false, false));
        }
        other => panic!("{other:?}"),
    }

    // Frame 12 → OPERATIONAL; our Address and mappings for the FECs A is the egress of.
    now = now + Duration::from_millis(4);
    let o = feed(
        &mut e,
        now,
        Input::Data {
            peer: B,
            data: &hex(B_KA_ADDR),
        },
    );
    assert!(o.contains(&Output::SessionUp {
        peer: LdpId {
            lsr_id: B,
            label_space: 0
        }
    }));
    assert_eq!(kinds(&sent(&o)), vec![0x0300, 0x0400, 0x0400]);
    assert_eq!(
        e.peer_by_address(B_LINK),
        Some(LdpId {
            lsr_id: B,
            label_space: 0
        })
    );

    // Frame 14: B's labels (implicit null for its own prefixes) become A's next-hop labels,
    // and by ordered control A now advertises labels for B's prefixes too: four mappings
    // in all, as FRR's A sent in frame 15.
    let o = feed(
        &mut e,
        now,
        Input::Data {
            peer: B,
            data: &hex(B_MAPPINGS),
        },
    );
    assert_eq!(kinds(&sent(&o)), vec![0x0400, 0x0400]);
    // The answers to one PDU's label messages go out together, in one PDU.
    let sends = o
        .iter()
        .filter(|x| matches!(x, Output::Send { .. }))
        .count();
    assert_eq!(sends, 1);
    let fecs: Vec<FecState> = o
        .iter()
        .filter_map(|x| match x {
            Output::Fec(s) => Some(*s),
            _ => None,
        })
        .collect();
    assert!(fecs.iter().any(|s| s.fec == fec([10, 77, 254, 2], 32)
        && s.remote == Some((B_LINK, 3))
        && s.local.is_some()));
    assert!(fecs
        .iter()
        .any(|s| s.fec == fec([10, 77, 255, 2], 32) && s.remote == Some((B_LINK, 3))));

    // Frame 18: B withdraws an address.
    let o = feed(
        &mut e,
        now,
        Input::Data {
            peer: B,
            data: &hex(B_ADDR_WITHDRAW),
        },
    );
    assert!(sent(&o).is_empty());
    assert_eq!(e.peer_by_address(Ipv4Addr::new(10, 77, 254, 2)), None);

    // Frame 20: two Label Withdraws → two Label Releases, as FRR's frame 22; and, ordered
    // control, A withdraws its own label for the FEC (FRR, independent, keeps it).
    let o = feed(
        &mut e,
        now,
        Input::Data {
            peer: B,
            data: &hex(B_WITHDRAWS),
        },
    );
    let ours = sent(&o);
    let releases: Vec<&Body> = ours.iter().filter(|b| b.msg_type() == 0x0403).collect();
    let frr: Vec<Body> = pdus(&hex(A_RELEASES))
        .into_iter()
        .flat_map(|d| d.pdu.messages)
        .map(|m| m.body)
        .collect();
    assert_eq!(releases, frr.iter().collect::<Vec<_>>());
    assert_eq!(kinds(&ours), vec![0x0402, 0x0403, 0x0403]);
    assert!(o.iter().any(|x| matches!(x, Output::Fec(s) if s.fec == fec([10, 77, 254, 2], 32) && s.remote.is_none() && s.local.is_none())));

    // Frame 24: B's Shutdown closes the session without an answer; B's labels go.
    let o = feed(
        &mut e,
        now,
        Input::Data {
            peer: B,
            data: &hex(B_SHUTDOWN),
        },
    );
    assert!(sent(&o).is_empty());
    assert!(o.contains(&Output::Close { peer: B }));
    assert!(o.iter().any(|x| matches!(
        x,
        Output::SessionDown {
            reason: Down::Received,
            was_up: true,
            ..
        }
    )));
    assert!(o.iter().any(
        |x| matches!(x, Output::Fec(s) if s.fec == fec([10, 77, 255, 2], 32) && s.remote.is_none())
    ));
    assert!(e.session(B).is_none());
}
