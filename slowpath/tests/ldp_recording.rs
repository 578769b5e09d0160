//! The FRR recording in `tests/data/ldp/frr_session.pcap` holds what its README says: the
//! conformance and known-answer tests rely on it, and a re-recording
//! (`tests/scripts/ldp_capture.sh`) must keep the same sequence of LDP messages.

mod support;

use std::net::Ipv4Addr;

use support::pcap::{ldp_pdus, Transport};

const A: Ipv4Addr = Ipv4Addr::new(10, 77, 255, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 77, 255, 2);

const HELLO: u16 = 0x0100;
const INIT: u16 = 0x0200;
const KEEPALIVE: u16 = 0x0201;
const ADDRESS: u16 = 0x0300;
const ADDRESS_WITHDRAW: u16 = 0x0301;
const MAPPING: u16 = 0x0400;
const WITHDRAW: u16 = 0x0402;
const RELEASE: u16 = 0x0403;
const NOTIFICATION: u16 = 0x0001;

#[test]
fn the_frr_recording_has_a_whole_session() {
    let file = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/ldp/frr_session.pcap"
    ))
    .expect("recording");
    let pdus = ldp_pdus(&file).expect("pcap");
    // Discovery: link Hellos from both sides' interface addresses to 224.0.0.2.
    let hellos: Vec<_> = pdus
        .iter()
        .filter(|p| p.transport == Transport::Udp)
        .collect();
    assert!(hellos.len() >= 4, "{hellos:?}");
    for h in &hellos {
        assert_eq!(h.message_types(), [HELLO]);
        assert_eq!(h.dst, (Ipv4Addr::new(224, 0, 0, 2), 646));
    }
    // The session, as (sender, message types per PDU).
    let session: Vec<(Ipv4Addr, Vec<u16>)> = pdus
        .iter()
        .filter(|p| p.transport == Transport::Tcp)
        .map(|p| (p.src.0, p.message_types()))
        .collect();
    let want: Vec<(Ipv4Addr, Vec<u16>)> = vec![
        (B, vec![INIT]),
        (A, vec![INIT]),
        (A, vec![KEEPALIVE]),
        (B, vec![KEEPALIVE]),
        (B, vec![ADDRESS]),
        (A, vec![ADDRESS]),
        (B, vec![MAPPING; 4]),
        (A, vec![MAPPING; 4]),
        (B, vec![ADDRESS_WITHDRAW]),
        // One PDU per message here, several PDUs in one TCP segment.
        (B, vec![WITHDRAW]),
        (B, vec![WITHDRAW]),
        (B, vec![MAPPING]),
        (A, vec![RELEASE]),
        (A, vec![RELEASE]),
        (B, vec![NOTIFICATION]),
    ];
    assert_eq!(session, want);
    // Every PDU's length field matches its size; version 1; label space 0.
    for p in &pdus {
        assert_eq!(p.bytes[..2], [0, 1], "{p:?}");
        assert_eq!(
            usize::from(u16::from_be_bytes([p.bytes[2], p.bytes[3]])) + 4,
            p.bytes.len()
        );
        assert_eq!(p.bytes[8..10], [0, 0]);
    }
}

#[test]
fn the_frr_hold_expiry_recording_ends_with_a_notification_after_the_hello_hold_time() {
    let file = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/ldp/frr_hold_expiry.pcap"
    ))
    .expect("recording");
    let pdus = ldp_pdus(&file).expect("pcap");
    let last_b_hello = pdus
        .iter()
        .filter(|p| p.transport == Transport::Udp && p.src.0 == Ipv4Addr::new(10, 77, 0, 2))
        .map(|p| p.time_us)
        .max()
        .expect("B's Hellos");
    let last = pdus.last().expect("PDUs");
    assert_eq!((last.src.0, last.message_types()), (A, vec![NOTIFICATION]));
    // Status TLV (0x0300) right after the message id: E bit set, Hold Timer Expired (9).
    assert_eq!(last.bytes[18..20], [0x03, 0x00]);
    assert_eq!(
        u32::from_be_bytes([
            last.bytes[22],
            last.bytes[23],
            last.bytes[24],
            last.bytes[25]
        ]),
        0x8000_0009
    );
    // 15 s (the Hello hold time) after B's last Hello, to within FRR's timer slack.
    let after = last.time_us - last_b_hello;
    assert!((14_500_000..16_000_000).contains(&after), "{after} us");
}
