//! Known answers for every ICMP error the slow path builds: input frame as punted, output
//! frame as injected. The expected bytes come from a separate generator (`kat_gen.py` here,
//! with its own RFC 1071 checksum, not this code), and every expected frame was
//! dissected by tshark: checksums (IPv4, ICMP, RFC 4884 extension) good, the MPLS
//! extension's label stack entry and the next-hop MTU read back as intended.
//!
//! The node: port 0 access, 1 core (10.0.12.2), 2 hand-off (198.18.254.1), 3 core; ISP 1
//! with gateway 198.18.1.1, upstream label 1001 and downstream label 3001 on port 1, hand-off
//! VLAN 101 on port 2; ILM 2001 swap → 2002 on port 3, 5001 pop to the hand-off, 4001 pop
//! to subscribers. Subscriber 198.18.1.10 untagged and 198.18.1.11 on QinQ 100/200 on port 0.

use std::net::Ipv4Addr;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let d: Vec<u8> = s.bytes().filter(|c| c.is_ascii_hexdigit()).collect();
    d.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).expect("ascii"), 16).expect("hex"))
        .collect()
}

/// A traceroute probe (UDP, TTL 1) from subscriber 198.18.1.10, untagged.
const HEAD_TTL_IN: &str = "0200000000a002aa0000000108004500003c4d2e00000111de52c612010ac612\
    01029c40829a00280000404142434445464748494a4b4c4d4e4f505152535455\
    565758595a5b5c5d5e5f";

/// Time Exceeded back to it from the ISP gateway 198.18.1.1, quoting the whole 60-byte probe.
const HEAD_TTL_OUT: &str = "02aa000000010200000000a0080045c00058000700004001ebaec6120101c612\
    010a0b00e0f7000000004500003c4d2e00000111de52c612010ac61201029c40\
    829a00280000404142434445464748494a4b4c4d4e4f50515253545556575859\
    5a5b5c5d5e5f";

/// The same probe from 198.18.1.11 on QinQ 100/200.
const HEAD_QINQ_IN: &str = "0200000000a002cc0000000388a80064810000c808004500003c4d2e00000111\
    de51c612010bc61201029c40829a00280000404142434445464748494a4b4c4d\
    4e4f505152535455565758595a5b5c5d5e5f";

/// Time Exceeded back under the same two tags.
const HEAD_QINQ_OUT: &str = "02cc000000030200000000a088a80064810000c8080045c00058000700004001\
    ebadc6120101c612010b0b00e0f7000000004500003c4d2e00000111de51c612\
    010bc61201029c40829a00280000404142434445464748494a4b4c4d4e4f5051\
    52535455565758595a5b5c5d5e5f";

/// A probe under label 2001, label TTL 1, at the transit.
const TRANSIT_IN: &str = "0200000000c10200000009098847007d11014500003c4d2e00000211dd52c612\
    010ac61201029c40829a00280000404142434445464748494a4b4c4d4e4f5051\
    52535455565758595a5b5c5d5e5f";

/// Time Exceeded from 10.0.12.2 under label 2002 (TTL 64) toward the swap's next hop;
/// quote padded to 128 bytes (length 32 words), MPLS object holding label 2001 TTL 1.
const TRANSIT_OUT: &str = "0200000003010200000000c38847007d214045c000a80007000040019c700a00\
    0c02c612010a0b00e0d7002000004500003c4d2e00000211dd52c612010ac612\
    01029c40829a00280000404142434445464748494a4b4c4d4e4f505152535455\
    565758595a5b5c5d5e5f00000000000000000000000000000000000000000000\
    0000000000000000000000000000000000000000000000000000000000000000\
    00000000000000000000000000002000cd7800080101007d1101";

/// A probe from 8.8.8.8 with TTL 1, from the ISP router on VLAN 101 (tailend downstream).
const TAIL_DOWN_TTL_IN: &str = "0200000000d2020000000e018100006508004500003c4d2e0000011195570808\
    0808c612010a9c40829a00280000404142434445464748494a4b4c4d4e4f5051\
    52535455565758595a5b5c5d5e5f";

/// Time Exceeded back to the router on VLAN 101, from the hand-off address 198.18.254.1.
const TAIL_DOWN_TTL_OUT: &str = "020000000e010200000000d281000065080045c00058000700004001a5bac612\
    fe01080808080b00e0f7000000004500003c4d2e00000111955708080808c612\
    010a9c40829a00280000404142434445464748494a4b4c4d4e4f505152535455\
    565758595a5b5c5d5e5f";

/// A probe under label 5001, label TTL 1, at the tailend.
const TAIL_POP_IN: &str = "0200000000c10200000009098847013891014500003c4d2e00000311dc52c612\
    010ac61201029c40829a00280000404142434445464748494a4b4c4d4e4f5051\
    52535455565758595a5b5c5d5e5f";

/// Time Exceeded from 198.18.254.1 to the ISP router on VLAN 101, MPLS object 5001.
const TAIL_POP_OUT: &str = "020000000e010200000000d281000065080045c000a8000700004001ee5dc612\
    fe01c612010a0b00e0d7002000004500003c4d2e00000311dc52c612010ac612\
    01029c40829a00280000404142434445464748494a4b4c4d4e4f505152535455\
    565758595a5b5c5d5e5f00000000000000000000000000000000000000000000\
    0000000000000000000000000000000000000000000000000000000000000000\
    000000000000000000000000000020004cbd0008010101389101";

/// 8.8.8.8 → 198.18.1.10 under label 4001, label TTL 1, at the headend.
const HEAD_POP_IN: &str = "0200000000c1020000000909884700fa11014500003c4d2e0000051191570808\
    0808c612010a9c40829a00280000404142434445464748494a4b4c4d4e4f5051\
    52535455565758595a5b5c5d5e5f";

/// Time Exceeded from 198.18.1.1 to 8.8.8.8 under ISP 1's upstream label 1001.
const HEAD_POP_OUT: &str = "0200000001010200000000c18847003e914045c000a8000700004001a26bc612\
    0101080808080b00e0d7002000004500003c4d2e00000511915708080808c612\
    010a9c40829a00280000404142434445464748494a4b4c4d4e4f505152535455\
    565758595a5b5c5d5e5f00000000000000000000000000000000000000000000\
    0000000000000000000000000000000000000000000000000000000000000000\
    00000000000000000000000000002000ccfb0008010100fa1101";

/// Fragmentation Needed (MTU 1496) for a 1500-byte DF echo from 198.18.1.10: link, IPv4 and
/// ICMP headers; 548 bytes of the echo follow.
const HEAD_FN_OUT_HEAD: &str = "02aa000000010200000000a0080045c00240000700004001e9c6c6120101c612\
    010a0304eff6000005d8";

/// Fragmentation Needed (MTU 1496) to the ISP router for a 1500-byte DF echo it sent on
/// VLAN 101, from 198.18.254.1: headers; 548 bytes of the echo follow.
const TAIL_FN_OUT_HEAD: &str = "020000000e010200000000d281000065080045c00240000700004001eccdc612\
    fe01c61201020304eff6000005d8";

/// The 1500-byte DF echo from the subscriber: link and IPv4 headers, ICMP header;
/// data bytes i % 256 follow.
const BIG_ECHO_HEAD: &str = "0200000000a002aa000000010800450005dc12344000400194bcc612010ac612\
    01020800722500770001";

/// The same size from the ISP router (198.18.1.2 → 198.18.1.10) on VLAN 101.
const BIG_ECHO_DOWN_HEAD: &str = "0200000000d2020000000e01810000650800450005dc12344000400194bcc612\
    0102c612010a0800722500770001";

/// Answers `frame` punted on `rx` for `why` on the test node.
fn answer_on(rx: u16, frame: &[u8], why: Trigger) -> Result<Answer, Refusal> {
    let (ports, tables) = super::fuzzing::node();
    let site = Site {
        ports: &ports,
        tables: &tables,
    };
    answer(&site, rx, frame, why, 7)
}

fn kat(rx: u16, input: &str, why: Trigger, port: u16, to: [u8; 4], want: &str) {
    let a = answer_on(rx, &hex(input), why).expect("answered");
    assert_eq!(
        (a.port, a.to),
        (port, Ipv4Addr::from(to)),
        "port and destination"
    );
    let hexed: String = a.frame.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hexed, want.replace(' ', ""));
}

#[test]
fn headend_time_exceeded_to_the_subscriber_from_its_gateway() {
    let ttl = Trigger::TtlExpired;
    kat(0, HEAD_TTL_IN, ttl, 0, [198, 18, 1, 10], HEAD_TTL_OUT);
    kat(0, HEAD_QINQ_IN, ttl, 0, [198, 18, 1, 11], HEAD_QINQ_OUT);
}

#[test]
fn transit_time_exceeded_rides_on_along_the_lsp_with_the_label_stack_object() {
    let ttl = Trigger::TtlExpired;
    kat(1, TRANSIT_IN, ttl, 3, [198, 18, 1, 10], TRANSIT_OUT);
}

/// An error is never sent toward an unresolved next hop (the zero MAC): refused as having
/// no path, as the fast path drops the frames themselves as `no_neighbour`.
#[test]
fn no_error_toward_an_unresolved_next_hop() {
    use ispmux_dataplane::table::{IlmAction, TableUpdate};
    use ispmux_dataplane::wire::MacAddr;
    let (ports, mut tables) = super::fuzzing::node();
    tables
        .apply(&TableUpdate::SetIlm {
            label: 2001,
            action: Some(IlmAction::Swap {
                out_label: 2002,
                port: 3,
                next_hop: MacAddr::ZERO,
            }),
        })
        .expect("swap entry");
    let site = Site {
        ports: &ports,
        tables: &tables,
    };
    let got = answer(&site, 1, &hex(TRANSIT_IN), Trigger::TtlExpired, 7);
    assert_eq!(got.err(), Some(Refusal::NoPath));
}

#[test]
fn tailend_time_exceeded_goes_to_the_isp_router() {
    let ttl = Trigger::TtlExpired;
    kat(1, TAIL_POP_IN, ttl, 2, [198, 18, 1, 10], TAIL_POP_OUT);
}

#[test]
fn tailend_downstream_time_exceeded_back_to_the_isp_router() {
    let ttl = Trigger::TtlExpired;
    kat(2, TAIL_DOWN_TTL_IN, ttl, 2, [8, 8, 8, 8], TAIL_DOWN_TTL_OUT);
}

#[test]
fn headend_pop_time_exceeded_rides_the_isps_upstream_label() {
    let ttl = Trigger::TtlExpired;
    kat(1, HEAD_POP_IN, ttl, 1, [8, 8, 8, 8], HEAD_POP_OUT);
}

/// A 1500-byte DF echo: the given headers, then data bytes i % 256.
fn big(head: &str) -> Vec<u8> {
    let mut f = hex(head);
    f.extend((0..1472).map(|i| (i % 256) as u8));
    f
}

#[test]
fn frag_needed_with_the_core_mtu_less_the_label() {
    for (rx, input, l3, port, to, want) in [
        (0, BIG_ECHO_HEAD, 14, 0, [198, 18, 1, 10], HEAD_FN_OUT_HEAD),
        (
            2,
            BIG_ECHO_DOWN_HEAD,
            18,
            2,
            [198, 18, 1, 2],
            TAIL_FN_OUT_HEAD,
        ),
    ] {
        let frame = big(input);
        let a = answer_on(rx, &frame, Trigger::TooBig).expect("answered");
        assert_eq!((a.port, a.to), (port, Ipv4Addr::from(to)));
        let head = hex(want);
        assert_eq!(a.frame.len(), head.len() + 548, "576 bytes of IPv4");
        assert_eq!(a.frame[..head.len()], head[..]);
        assert_eq!(a.frame[head.len()..], frame[l3..l3 + 548], "the quote");
    }
}

#[test]
fn refusals() {
    let ttl = Trigger::TtlExpired;
    let with = |input: &str, at: usize, bytes: &[u8]| {
        let mut f = hex(input);
        f[at..at + bytes.len()].copy_from_slice(bytes);
        f
    };
    // An unknown subscriber (another MAC), an unknown label.
    let other_mac = with(HEAD_TTL_IN, 6, &[2, 0xee, 0, 0, 0, 1]);
    assert_eq!(answer_on(0, &other_mac, ttl), Err(Refusal::NoPath));
    let other_label = with(TRANSIT_IN, 14, &[0, 0x99, 0x91, 1]);
    assert_eq!(answer_on(1, &other_label, ttl), Err(Refusal::NoPath));
    // A link-layer broadcast.
    let bcast = with(HEAD_TTL_IN, 0, &[0xff; 6]);
    assert_eq!(answer_on(0, &bcast, ttl), Err(Refusal::GroupDestination));
    // A swap at a port without an address: the transit's receiving port 3.
    assert_eq!(answer_on(3, &hex(TRANSIT_IN), ttl), Err(Refusal::NoAddress));
    // Labelled on an access port, unlabelled on a core port: nothing to say.
    assert_eq!(answer_on(0, &hex(TRANSIT_IN), ttl), Err(Refusal::NoPath));
    assert_eq!(answer_on(1, &hex(HEAD_TTL_IN), ttl), Err(Refusal::NoPath));
    // Too big, but it fits: a 60-byte probe.
    assert_eq!(
        answer_on(0, &hex(HEAD_TTL_IN), Trigger::TooBig),
        Err(Refusal::Fits)
    );
    // A broken IPv4 header checksum.
    let broken = with(HEAD_TTL_IN, 24, &[0xff]);
    assert_eq!(answer_on(0, &broken, ttl), Err(Refusal::Malformed));
}

proptest::proptest! {
    /// Any frame on any port for either reason: an answer or a refusal, never a panic; an
    /// answer leaves on a configured port with at most 576 bytes of IPv4.
    #[test]
    fn any_frame_is_answered_within_bounds_or_refused(
        f in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        base in 0usize..4,
        rx in 0u16..6,
        too_big in proptest::bool::ANY,
    ) {
        let inputs = [HEAD_TTL_IN, TRANSIT_IN, TAIL_POP_IN, HEAD_QINQ_IN];
        let mut frame = hex(inputs[base]);
        // Random bytes over a real frame's start, so deep paths are reached too.
        let n = f.len().min(frame.len());
        if f.len() % 2 == 0 {
            frame[14 + n / 4..].iter_mut().zip(&f).for_each(|(a, b)| *a ^= b & 3);
        } else {
            frame[..n].copy_from_slice(&f[..n]);
        }
        let why = if too_big { Trigger::TooBig } else { Trigger::TtlExpired };
        if let Ok(a) = answer_on(rx, &frame, why) {
            proptest::prop_assert!(a.port < 4);
            proptest::prop_assert!(a.frame.len() <= 26 + 576);
        }
    }
}
