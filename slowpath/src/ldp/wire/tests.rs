//! Known answers: PDUs built by scapy's LDP layer (an implementation independent of this
//! codec) or, where scapy cannot express them, laid out by hand from the RFC 5036 figures.
//! The vectors are the output of `python3 slowpath/src/ldp/kat_gen.py` (scapy 2.8 from
//! PyPI); `_hand` names are the hand-built ones (the script says why for each).

use std::net::Ipv4Addr;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn id(lsr_id: Ipv4Addr) -> LdpId {
    LdpId {
        lsr_id,
        label_space: 0,
    }
}

fn p32(a: [u8; 4]) -> FecElement {
    FecElement::Prefix {
        addr: Ipv4Addr::from(a),
        len: 32,
    }
}

/// Decodes `vector` to exactly `want` with nothing rejected, and encodes `want` to exactly
/// `vector`.
fn both_ways(vector: &str, want: Pdu) {
    let bytes = hex(vector);
    let d = decode(&bytes, DEFAULT_MAX_PDU_LEN).expect("decodes");
    assert_eq!(d.pdu, want);
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    assert_eq!(d.ignored, 0);
    assert_eq!(want.to_bytes().expect("encodes"), bytes);
}

fn one(lsr: Ipv4Addr, msg_id: u32, body: Body) -> Pdu {
    Pdu::one(id(lsr), Message::new(msg_id, body))
}

#[test]
fn hello() {
    let h = Hello {
        hold_time: 15,
        targeted: false,
        request_targeted: false,
        gtsm: false,
        transport_v4: None,
        config_seqno: None,
        transport_v6: None,
    };
    both_ways(
        "000100160a00000100000100000c0000000104000004000f0000",
        one(A, 1, Body::Hello(h)),
    );
    both_ways(
        "000100260a00000100000100001c0000001404000004000f0000040100040a0000010402000400000003",
        one(
            A,
            20,
            Body::Hello(Hello {
                transport_v4: Some(A),
                config_seqno: Some(3),
                ..h
            }),
        ),
    );
    // RFC 6720 §3: G is the third flag bit of Common Hello Parameters, after T and R
    // (0x2000 of the 16 bits, as FRR sends it: `slowpath/tests/ldp_frr_replay.rs`).
    both_ways(
        "000100160a00000100000100000c0000000104000004000f2000",
        one(A, 1, Body::Hello(Hello { gtsm: true, ..h })),
    );
    both_ways(
        "000100160a00000100000100000c0000000104000004002de000",
        one(
            A,
            1,
            Body::Hello(Hello {
                hold_time: 45,
                targeted: true,
                request_targeted: true,
                gtsm: true,
                ..h
            }),
        ),
    );
}

#[test]
fn initialization() {
    both_ways(
        "000100200a000002000002000016000000020500000e000100b4000010000a0000010000",
        one(
            B,
            2,
            Body::Initialization(Initialization {
                version: 1,
                keepalive_time: 180,
                downstream_on_demand: false,
                loop_detection: false,
                pv_limit: 0,
                max_pdu_len: 4096,
                receiver: id(A),
            }),
        ),
    );
}

#[test]
fn keepalive_and_notifications() {
    both_ways(
        "0001000e0a00000100000201000400000003",
        one(A, 3, Body::KeepAlive),
    );
    both_ways(
        "0001001c0a000002000000010012000000040300000a8000000a000000000000",
        one(
            B,
            4,
            Body::Notification(Notification::new(StatusCode::Shutdown.status(0, 0))),
        ),
    );
    let n = StatusCode::UnknownMessageType.status(77, 0x3f00);
    assert!(!n.fatal);
    both_ways(
        "0001001c0a000002000000010012000000050300000a000000040000004d3f00",
        one(B, 5, Body::Notification(Notification::new(n))),
    );
}

#[test]
fn addresses() {
    both_ways(
        "0001001c0a000001000003000012000000060101000a00010a000c01c6120001",
        one(
            A,
            6,
            Body::Address(vec![
                Ipv4Addr::new(10, 0, 12, 1),
                Ipv4Addr::new(198, 18, 0, 1),
            ]),
        ),
    );
    both_ways(
        "000100180a00000100000301000e00000007010100060001c6120001",
        one(
            A,
            7,
            Body::AddressWithdraw(vec![Ipv4Addr::new(198, 18, 0, 1)]),
        ),
    );
}

#[test]
fn label_messages() {
    let fec = vec![p32([198, 18, 7, 1])];
    let mapping = |fec, label| LabelMapping {
        fec,
        label,
        request_id: None,
        hop_count: None,
        path_vector: None,
    };
    both_ways(
        "000100220a000002000004000018000000080100000802000120c61207010200000400000010",
        one(B, 8, Body::LabelMapping(mapping(fec.clone(), 16))),
    );
    both_ways(
        "0001002a0a000002000004000020000000090100001002000120c612070102000120c612070202000004000fffff",
        one(
            B,
            9,
            Body::LabelMapping(mapping(vec![p32([198, 18, 7, 1]), p32([198, 18, 7, 2])], LABEL_MAX)),
        ),
    );
    both_ways(
        "0001001a0a0000010000040100100000000a0100000802000120c6120701",
        one(
            A,
            10,
            Body::LabelRequest(LabelRequest {
                fec: fec.clone(),
                hop_count: None,
                path_vector: None,
            }),
        ),
    );
    let w = LabelWithdraw {
        fec: fec.clone(),
        label: Some(16),
    };
    both_ways(
        "000100220a0000020000040200180000000b0100000802000120c61207010200000400000010",
        one(B, 11, Body::LabelWithdraw(w.clone())),
    );
    both_ways(
        "000100220a0000010000040300180000000c0100000802000120c61207010200000400000010",
        one(A, 12, Body::LabelRelease(w)),
    );
    both_ways(
        "000100220a000001000004040018000000180100000802000120c6120701060000040000000a",
        one(
            A,
            24,
            Body::LabelAbortRequest(LabelAbortRequest {
                fec: fec.clone(),
                request_id: 10,
            }),
        ),
    );
    both_ways(
        "000100210a000002000004000017000000150100000702000118c61207020000040000012b",
        one(
            B,
            21,
            Body::LabelMapping(mapping(
                vec![FecElement::Prefix {
                    addr: Ipv4Addr::new(198, 18, 7, 0),
                    len: 24,
                }],
                299,
            )),
        ),
    );
    both_ways(
        "0001001e0a000002000004000014000000160100000402000100020000040000012c",
        one(
            B,
            22,
            Body::LabelMapping(mapping(
                vec![FecElement::Prefix {
                    addr: Ipv4Addr::UNSPECIFIED,
                    len: 0,
                }],
                300,
            )),
        ),
    );
    both_ways(
        "000100130a000002000004020009000000170100000101",
        one(
            B,
            23,
            Body::LabelWithdraw(LabelWithdraw {
                fec: vec![FecElement::Wildcard],
                label: None,
            }),
        ),
    );
}

#[test]
fn stacked_messages() {
    both_ways(
        "0001003c0a0000010000020100040000000d0300000e0000000e0101000600010a000c01040000180000000f0100000802000120c61207010200000400000011",
        Pdu {
            ldp_id: id(A),
            messages: vec![
                Message::new(13, Body::KeepAlive),
                Message::new(14, Body::Address(vec![Ipv4Addr::new(10, 0, 12, 1)])),
                Message::new(
                    15,
                    Body::LabelMapping(LabelMapping {
                        fec: vec![p32([198, 18, 7, 1])],
                        label: 17,
                        request_id: None,
                        hop_count: None,
                        path_vector: None,
                    }),
                ),
            ],
        },
    );
}

#[test]
fn unknown_tlvs_follow_the_u_bit() {
    // U = 1: ignored and kept with its bits; the mapping stands.
    let mut m = Message::new(
        25,
        Body::LabelMapping(LabelMapping {
            fec: vec![p32([198, 18, 7, 1])],
            label: 16,
            request_id: None,
            hop_count: None,
            path_vector: None,
        }),
    );
    m.extra.push(RawTlv {
        unknown: true,
        forward: true,
        tlv_type: 0x3e01,
        value: vec![0, 0, 0, 9, 0xaa, 0xbb],
    });
    both_ways(
        "0001002c0a000002000004000022000000190100000802000120c61207010200000400000010fe01000600000009aabb",
        Pdu::one(id(B), m),
    );
    // U = 0: the mapping alone is rejected with Unknown TLV (not fatal).
    let d = decode(
        &hex("000100340a0000020000040000220000001a0100000802000120c612070102000004000000103e01000600000009aabb020100040000001b"),
        DEFAULT_MAX_PDU_LEN,
    )
    .expect("PDU decodes");
    assert_eq!(d.pdu.messages, vec![Message::new(27, Body::KeepAlive)]);
    let r = Located {
        msg_id: 26,
        msg_type: msg_type::LABEL_MAPPING,
        error: DecodeError::UnknownTlv(0x3e01),
    };
    assert_eq!(d.rejected, vec![r]);
    assert!(!r.error.fatal());
    assert_eq!(r.status(), StatusCode::UnknownTlv.status(26, 0x0400));
}

#[test]
fn unknown_messages_follow_the_u_bit() {
    let d = decode(
        &hex("000100280a0000010000bf00000a0000001c0000000101023f0000080000001d00000001020100040000001e"),
        DEFAULT_MAX_PDU_LEN,
    )
    .expect("PDU decodes");
    assert_eq!(d.ignored, 1);
    assert_eq!(
        d.rejected,
        vec![Located {
            msg_id: 29,
            msg_type: 0x3f00,
            error: DecodeError::UnknownMessageType(0x3f00),
        }]
    );
    assert_eq!(d.pdu.messages, vec![Message::new(30, Body::KeepAlive)]);
}

#[test]
fn framing_errors_are_fatal_with_their_status() {
    let e = decode(
        &hex("000100180a00000100000300000e0000001f0101002800010a000001"),
        DEFAULT_MAX_PDU_LEN,
    )
    .expect_err("TLV overruns its message");
    assert_eq!(
        e.error,
        DecodeError::BadTlvLength {
            tlv_type: 0x0101,
            len: 40
        }
    );
    assert!(e.error.fatal());
    assert_eq!(e.error.status_code(), StatusCode::BadTlvLength);
    assert_eq!((e.msg_id, e.msg_type), (31, 0x0300));

    let ka = hex("0001000e0a00000100000201000400000003");
    let mut v2 = ka.clone();
    v2[1] = 2;
    let e = decode(&v2, DEFAULT_MAX_PDU_LEN).expect_err("version 2");
    assert_eq!(e.error, DecodeError::BadProtocolVersion(2));
    assert_eq!(e.status(), StatusCode::BadProtocolVersion.status(0, 0));
    assert!(e.status().fatal);

    let e = decode(&ka, 13).expect_err("over the maximum");
    assert_eq!(e.error.status_code(), StatusCode::BadPduLength);
    let e = decode(&ka[..ka.len() - 1], DEFAULT_MAX_PDU_LEN).expect_err("short");
    assert_eq!(e.error.status_code(), StatusCode::BadPduLength);
    let mut long = ka.clone();
    long.push(0);
    assert!(decode(&long, DEFAULT_MAX_PDU_LEN).is_err());

    // Message Length past the PDU.
    let mut bad = ka.clone();
    bad[13] = 5;
    let e = decode(&bad, DEFAULT_MAX_PDU_LEN).expect_err("message overruns");
    assert_eq!(e.error.status_code(), StatusCode::BadMessageLength);
    assert!(e.error.fatal());
}

#[test]
fn value_errors_map_to_their_status() {
    let pdu = |msg_type: u16, tlvs: &[u8]| {
        let mut m = msg_type.to_be_bytes().to_vec();
        m.extend_from_slice(&(4 + tlvs.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 9]);
        m.extend_from_slice(tlvs);
        let mut p = vec![0, 1];
        p.extend_from_slice(&(6 + m.len() as u16).to_be_bytes());
        p.extend_from_slice(&[10, 0, 0, 1, 0, 0]);
        p.extend_from_slice(&m);
        decode(&p, DEFAULT_MAX_PDU_LEN)
    };
    let rejected = |r: Result<Decoded, Located>| r.expect("PDU decodes").rejected[0].error;
    // Mapping without its label.
    assert_eq!(
        rejected(pdu(0x0400, &hex("0100000802000120c6120701"))),
        DecodeError::MissingMessageParameters(0x0200)
    );
    // IPv6 Prefix FEC element.
    assert_eq!(
        rejected(pdu(0x0400, &hex("01000004020002000200000400000010"))),
        DecodeError::UnsupportedAddressFamily(2)
    );
    // Host Address FEC element (RFC 3036, gone from RFC 5036).
    assert_eq!(
        rejected(pdu(0x0402, &hex("01000001030200000400000010"))),
        DecodeError::UnknownFec(3)
    );
    // IPv6 Address List.
    assert_eq!(
        rejected(pdu(0x0300, &hex("010100020002"))),
        DecodeError::UnsupportedAddressFamily(2)
    );
    // Prefix length 33: malformed, fatal.
    let e = pdu(0x0400, &hex("0100000902000121c6120701000200000400000010")).expect_err("fatal");
    assert_eq!(e.error, DecodeError::MalformedTlvValue(0x0100));
    // A label over 20 bits.
    let e = pdu(0x0400, &hex("0100000802000120c61207010200000400100000")).expect_err("fatal");
    assert_eq!(e.error, DecodeError::MalformedTlvValue(0x0200));
    // Wildcard with another element.
    let e = pdu(0x0402, &hex("010000090102000120c6120701")).expect_err("fatal");
    assert_eq!(e.error, DecodeError::MalformedTlvValue(0x0100));
    // Common Hello Parameters of 3 octets.
    let e = pdu(0x0100, &hex("04000003000f00")).expect_err("fatal");
    assert_eq!(e.error.status_code(), StatusCode::BadTlvLength);
}

#[test]
fn emit_into_a_slice() {
    let p = one(A, 3, Body::KeepAlive);
    let mut buf = [0u8; 18];
    assert_eq!(p.emit_into(&mut buf), Ok(18));
    assert_eq!(buf.to_vec(), hex("0001000e0a00000100000201000400000003"));
    let mut small = [0u8; 17];
    assert_eq!(
        p.emit_into(&mut small),
        Err(EncodeError::BufferTooSmall { have: 17, need: 18 })
    );
    // An address list past 64 KiB does not fit its length field.
    let big = one(A, 1, Body::Address(vec![A; 20_000]));
    assert!(matches!(big.to_bytes(), Err(EncodeError::TooLong(_))));
}

proptest::proptest! {
    #[test]
    fn any_bytes_pass_the_fuzz_checks(
        data in proptest::collection::vec(proptest::num::u8::ANY, 0..120)
    ) {
        crate::ldp::fuzzing::exercise(&data);
    }

    /// Random message sequences built from the typed bodies survive the round trip.
    #[test]
    fn structured_pdus_round_trip(
        labels in proptest::collection::vec(0u32..=LABEL_MAX, 1..6),
        lens in proptest::collection::vec(0u8..=32, 1..6),
        addr in proptest::num::u32::ANY,
    ) {
        let messages = labels.iter().zip(lens.iter()).enumerate().map(|(i, (&label, &len))| {
            let fec = vec![FecElement::prefix(Ipv4Addr::from(addr), len).expect("len <= 32")];
            let body = if i % 2 == 0 {
                Body::LabelMapping(LabelMapping { fec, label, request_id: None, hop_count: Some(1), path_vector: None })
            } else {
                Body::LabelRelease(LabelWithdraw { fec, label: Some(label) })
            };
            Message::new(i as u32, body)
        }).collect();
        let p = Pdu { ldp_id: id(A), messages };
        let bytes = p.to_bytes().expect("encodes");
        let d = decode(&bytes, u16::MAX).expect("decodes");
        proptest::prop_assert_eq!(d.pdu, p);
        crate::ldp::fuzzing::exercise(&bytes);
    }
}

#[test]
fn pack_fills_pdus_up_to_the_maximum() {
    let msgs: Vec<Message> = (0..100)
        .map(|i| Message::new(i, Body::Address(vec![A])))
        .collect();
    // Each Address message is 18 octets; a PDU of maximum length 100 holds 5 of them.
    let pdus = pack(id(A), &msgs, 100).expect("packs");
    assert_eq!(pdus.len(), 20);
    let mut got = Vec::new();
    for p in &pdus {
        assert!(p.len() <= 104);
        got.extend(decode(p, 100).expect("decodes").pdu.messages);
    }
    assert_eq!(got, msgs);
    assert!(pack(id(A), &msgs, 20).is_err());
    assert_eq!(pack(id(A), &[], 100), Ok(Vec::new()));
}
