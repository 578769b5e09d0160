//! Known-answer frame tests: input bytes → exact output bytes and verdict, for every role.
//!
//! IPv4 packets were generated outside this code base (a short Python script with its own
//! RFC 1071 checksum) so the expected bytes do not come from the code under test.

use super::{Node, PortAddr, PortConfig, PortRole};
use crate::counters::{DropReason, PacketBytes};
use crate::frame::{Frame, VecFrame};
use crate::pipeline::{Pipeline, Verdict};
use crate::table::{PreloadTables, SubscriberKey, TableUpdate};
use crate::wire::hex;

// ICMP echo packets, checksummed. A = ISP 1 subscriber 100.64.0.10 (untagged, port 0),
// B = ISP 2 subscriber with the same address (VLAN 10, port 0), C = ISP 1 subscriber
// 100.64.0.11 (QinQ 100/200, port 3).
const IP_A: &str = "450000201c4640004001aa3d6440000a08080808080006fa1234000170696e67";
const IP_B: &str = "450000201c4640000501f34b6440000a01010101080006f91234000270696e67";
const IP_C: &str = "450000201c4640004001a83a6440000b09090909080006f81234000370696e67";
const IP_SPOOF: &str = "450000201c4640004001a9e46440006308080808080006f71234000470696e67";
const IP_TTL1: &str = "450000201c4640000101e93d6440000a08080808080006f61234000570696e67";
const IP_GW: &str = "450000201c4640004001560c6440000a64400001080006f51234000670696e67";
const IP_DOWN_A: &str = "450000201c4640003f01ab3d080808086440000a080006f41234000770696e67";
const IP_DOWN_A_59: &str = "450000201c4640003b01af3d080808086440000a080006f41234000770696e67";
const IP_DOWN_C: &str = "450000201c4640003f01ab3c080808086440000b080006f31234000870696e67";
const IP_DOWN_C_59: &str = "450000201c4640003b01af3c080808086440000b080006f31234000870696e67";
const IP_MCAST: &str = "450000201c4640004011d9416440000ae00000fb000000000000000000000000";
const IP_DHCP: &str = "450000200000400040113ace00000000ffffffff00440043000c000001010600";
const IP_BIG_HDR: &str = "450005dc1c4640004001a4816440000a08080808";
/// As `IP_BIG_HDR` without DF.
const IP_BIG_HDR_NO_DF: &str = "450005dc1c4600004001e4816440000a08080808";
const IP_MAX_HDR: &str = "450005d81c4640004001a4856440000a08080808";

const MAC_PORT0: &str = "0200000000a0";
const MAC_CORE: &str = "0200000000c1";
const MAC_HANDOFF: &str = "0200000000d2";
const MAC_PORT3: &str = "0200000000a3";
const MAC_A: &str = "02aa00000001";
const MAC_B: &str = "02bb00000002";
const MAC_C: &str = "02cc00000003";
const MAC_D: &str = "02dd00000004";
const MAC_CORE_PEER: &str = "020000000109";

fn port(role: PortRole, mac: &str) -> PortConfig {
    PortConfig {
        role,
        mac: crate::wire::MacAddr::from_bytes(&hex(mac)).expect("mac"),
        mtu: 1500,
        address: PortAddr::NONE,
        implicit_null: None,
    }
}

/// Two ISPs sharing an address, every ILM action (one swap toward a port that does not
/// exist), subscribers untagged, on a VLAN and on QinQ, one unbound.
pub(crate) fn preload() -> PreloadTables {
    use crate::table::preload::{
        FecPreload, HandoffPreload, IlmActionPreload as A, IlmPreload, IspPreload,
        SubscriberPreload,
    };
    use crate::table::Limits;
    use std::net::Ipv4Addr;
    let mac = |s: &str| s.parse().expect("mac");
    let fec = |label, tc, next_hop| FecPreload {
        label,
        tc,
        port: 1,
        next_hop: mac(next_hop),
    };
    let isp = |id, name: &str, tc_up, tc_down, vlan| IspPreload {
        id,
        name: name.into(),
        gateway: Some(Ipv4Addr::new(100, 64, 0, 1)),
        upstream: Some(fec(1000 + u32::from(id), tc_up, "02:00:00:00:01:01")),
        downstream: Some(fec(2000 + u32::from(id), tc_down, "02:00:00:00:01:02")),
        handoff: vec![HandoffPreload { port: 2, vlan }],
    };
    let ilm = |label, action| IlmPreload { label, action };
    let sub = |port, vlan, inner_vlan, m, isp, ipv4: Option<[u8; 4]>| SubscriberPreload {
        port,
        vlan,
        inner_vlan,
        mac: mac(m),
        isp,
        ipv4: ipv4.map(Ipv4Addr::from),
    };
    PreloadTables {
        limits: Limits {
            max_subscribers: 64,
            max_isps: 4,
            ..Limits::default()
        },
        isps: vec![isp(1, "red", 0, 0, 101), isp(2, "blue", 5, 1, 0)],
        ilm: vec![
            ilm(3001, A::PopDeliver { isp: 1 }),
            ilm(3002, A::PopDeliver { isp: 2 }),
            ilm(
                4001,
                A::Swap {
                    out_label: 4002,
                    port: 1,
                    next_hop: mac("02:00:00:00:01:03"),
                },
            ),
            ilm(
                5001,
                A::PopHandoff {
                    isp: 1,
                    port: 2,
                    vlan: 101,
                    router_mac: mac("02:00:00:00:0e:01"),
                },
            ),
            ilm(
                5002,
                A::PopHandoff {
                    isp: 2,
                    port: 2,
                    vlan: 0,
                    router_mac: mac("02:00:00:00:0e:02"),
                },
            ),
            ilm(
                6001,
                A::Swap {
                    out_label: 6002,
                    port: 9,
                    next_hop: mac("02:00:00:00:01:03"),
                },
            ),
        ],
        subscribers: vec![
            sub(0, 0, 0, "02:aa:00:00:00:01", 1, Some([100, 64, 0, 10])),
            sub(0, 10, 0, "02:bb:00:00:00:02", 2, Some([100, 64, 0, 10])),
            sub(3, 100, 200, "02:cc:00:00:00:03", 1, Some([100, 64, 0, 11])),
            sub(0, 0, 0, "02:dd:00:00:00:04", 1, None),
        ],
    }
}

pub(crate) fn node() -> Node {
    let ports = vec![
        port(PortRole::Access, MAC_PORT0),
        port(PortRole::Core, MAC_CORE),
        port(PortRole::Handoff, MAC_HANDOFF),
        port(PortRole::Access, MAC_PORT3),
        port(PortRole::Unused, "020000000000"),
    ];
    Node::from_preload(ports, &preload()).expect("preload")
}

/// Runs one frame through `n` and returns the verdict and the resulting bytes.
fn run(n: &mut Node, rx: u16, frame: &str) -> (Verdict, Vec<u8>) {
    let mut frames = [VecFrame::new(&hex(frame))];
    let mut v = [Verdict::Punt];
    n.process(rx, &mut frames, &mut v);
    let [f] = frames;
    (v[0], f.into_bytes())
}

fn fwd(rx: u16, input: &str, port: u16, expected: &str) {
    let mut n = node();
    let (v, out) = run(&mut n, rx, input);
    assert_eq!(v, Verdict::Forward(port), "verdict");
    assert_eq!(
        out,
        hex(expected),
        "\n got {}\nwant {}",
        to_hex(&out),
        expected.replace(' ', "")
    );
}

fn dropped(rx: u16, input: &str, reason: DropReason) {
    let mut n = node();
    let (v, _) = run(&mut n, rx, input);
    assert_eq!(v, Verdict::Drop(reason));
    assert_eq!(n.counters().drops(reason), 1);
}

/// The frame is punted untouched (the slow path reads it as received), counted as a punt
/// and under `why` (`punts_ttl_expired` or `punts_frag_needed`), and under no drop reason.
fn punted(rx: u16, input: &str, why: &str) {
    let mut n = node();
    let (v, out) = run(&mut n, rx, input);
    assert_eq!(v, Verdict::Punt, "verdict");
    assert_eq!(out, hex(input), "the punted frame is unchanged");
    let w = n.counters().worker;
    assert_eq!(w.punts, 1);
    let counted: Vec<_> = w
        .iter()
        .filter(|(k, v)| k.starts_with("punts_") && *v > 0)
        .collect();
    assert_eq!(counted, vec![(why, 1)]);
    assert!(n.counters().drops_by_reason().all(|(_, c)| c == 0));
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn f(parts: &[&str]) -> String {
    parts.join(" ")
}

// ---- headend upstream ----

#[test]
fn headend_pushes_label_untagged() {
    fwd(
        0,
        &f(&[MAC_PORT0, MAC_A, "0800", IP_A]),
        1,
        // next hop, core MAC, 8847, label 1001 TC 0 S 1 TTL 63, IPv4 unchanged.
        &f(&["020000000101", MAC_CORE, "8847", "003e913f", IP_A]),
    );
}

#[test]
fn headend_pushes_label_from_vlan_with_isp_tc() {
    fwd(
        0,
        &f(&[MAC_PORT0, MAC_B, "8100 000a 0800", IP_B]),
        1,
        // label 1002, TC 5, S 1, TTL 4.
        &f(&["020000000101", MAC_CORE, "8847", "003eab04", IP_B]),
    );
}

#[test]
fn headend_pushes_label_from_qinq() {
    fwd(
        3,
        &f(&[MAC_PORT3, MAC_C, "88a8 0064 8100 00c8 0800", IP_C]),
        1,
        &f(&["020000000101", MAC_CORE, "8847", "003e913f", IP_C]),
    );
}

#[test]
fn headend_keeps_ethernet_padding_after_the_packet() {
    fwd(
        0,
        &f(&[
            MAC_PORT0,
            MAC_A,
            "0800",
            IP_A,
            "0000000000000000000000000000",
        ]),
        1,
        &f(&[
            "020000000101",
            MAC_CORE,
            "8847",
            "003e913f",
            IP_A,
            "0000000000000000000000000000",
        ]),
    );
}

#[test]
fn headend_drops_spoofed_source() {
    dropped(
        0,
        &f(&[MAC_PORT0, MAC_A, "0800", IP_SPOOF]),
        DropReason::SourceGuard,
    );
}

#[test]
fn headend_drops_unknown_mac_and_wrong_vlan() {
    dropped(
        0,
        &f(&[MAC_PORT0, "02ee00000005", "0800", IP_A]),
        DropReason::UnknownMac,
    );
    // A is known untagged on port 0, not on VLAN 10 nor on port 3.
    dropped(
        0,
        &f(&[MAC_PORT0, MAC_A, "8100 000a 0800", IP_A]),
        DropReason::UnknownMac,
    );
    dropped(
        3,
        &f(&[MAC_PORT3, MAC_A, "0800", IP_A]),
        DropReason::UnknownMac,
    );
}

#[test]
fn headend_drops_unbound_subscriber() {
    dropped(
        0,
        &f(&[MAC_PORT0, MAC_D, "0800", IP_A]),
        DropReason::NotBound,
    );
}

#[test]
fn headend_punts_ttl_expiry() {
    punted(
        0,
        &f(&[MAC_PORT0, MAC_A, "0800", IP_TTL1]),
        "punts_ttl_expired",
    );
}

#[test]
fn headend_punts_oversized_df_drops_oversized_without_df_passes_mtu_sized() {
    let big = format!("{}{}", IP_BIG_HDR, "00".repeat(1480));
    punted(
        0,
        &f(&[MAC_PORT0, MAC_A, "0800", &big]),
        "punts_frag_needed",
    );
    // On a VLAN too (ISP 2's subscriber B), through the general push.
    punted(
        0,
        &f(&[MAC_PORT0, MAC_B, "8100 000a 0800", &big]),
        "punts_frag_needed",
    );
    // No DF: the fast path does not fragment, the frame is dropped.
    let big = format!("{}{}", IP_BIG_HDR_NO_DF, "00".repeat(1480));
    dropped(
        0,
        &f(&[MAC_PORT0, MAC_A, "0800", &big]),
        DropReason::Oversized,
    );
    let max = format!("{}{}", IP_MAX_HDR, "00".repeat(1476));
    let mut n = node();
    assert_eq!(
        run(&mut n, 0, &f(&[MAC_PORT0, MAC_A, "0800", &max])).0,
        Verdict::Forward(1)
    );
}

#[test]
fn headend_drops_truncated_frames() {
    // IPv4 total length 32 but only 31 bytes present.
    dropped(
        0,
        &f(&[MAC_PORT0, MAC_A, "0800", &IP_A[..62]]),
        DropReason::Truncated,
    );
    dropped(
        0,
        &f(&[MAC_PORT0, MAC_A, "0800", "4500"]),
        DropReason::Truncated,
    );
    dropped(0, &f(&[MAC_PORT0, &MAC_A[..4]]), DropReason::Truncated);
    dropped(0, &f(&[MAC_PORT0, MAC_A, "8100 00"]), DropReason::Truncated);
}

#[test]
fn headend_drops_bad_checksum_and_non_ipv4() {
    let mut bad = IP_A.to_string();
    bad.replace_range(20..24, "0000");
    dropped(
        0,
        &f(&[MAC_PORT0, MAC_A, "0800", &bad]),
        DropReason::Malformed,
    );
    dropped(
        0,
        &f(&[MAC_PORT0, MAC_A, "86dd", IP_A]),
        DropReason::NotIpv4,
    );
    dropped(
        0,
        &f(&[MAC_PORT0, MAC_A, "0800", IP_MCAST]),
        DropReason::NotUnicast,
    );
}

#[test]
fn headend_punts_dhcp_from_anyone_and_traffic_to_the_gateway() {
    for src in [MAC_A, "02ee00000005"] {
        let mut n = node();
        let input = f(&["ffffffffffff", src, "0800", IP_DHCP]);
        let (v, out) = run(&mut n, 0, &input);
        assert_eq!(v, Verdict::Punt);
        assert_eq!(out, hex(&input), "punted frames are not rewritten");
        assert_eq!(n.counters().worker.punts, 1);
    }
    let mut n = node();
    assert_eq!(
        run(&mut n, 0, &f(&[MAC_PORT0, MAC_A, "0800", IP_GW])).0,
        Verdict::Punt
    );
}

/// With the registered set complete, DHCP from a MAC neither in the subscriber table nor
/// registered is dropped in the worker beyond its allowance; registered MACs, subscribers
/// the tables hold and every MAC while the set is incomplete are punted.
#[test]
fn headend_drops_dhcp_from_unregistered_macs_beyond_the_allowance() {
    use crate::table::DhcpFilter;
    let mut n = node();
    let (mut tx, rx) = crate::table::updates::channel(preload().build().expect("master"), 1, 64);
    let mac = |s: &str| crate::wire::MacAddr::from_bytes(&hex(s)).expect("mac");
    let dhcp = |src: &str| f(&["ffffffffffff", src, "0800", IP_DHCP]);
    let (stranger, newcomer) = ("02ee00000005", "02ee00000006");
    tx.send(TableUpdate::Register { mac: mac(newcomer) })
        .expect("room");
    n.apply_updates(&rx[0], 64);
    // Not complete yet: everyone is punted, as before the registry is loaded.
    assert_eq!(run(&mut n, 0, &dhcp(stranger)).0, Verdict::Punt);
    tx.send(TableUpdate::SetDhcpFilter(DhcpFilter {
        complete: true,
        punts_per_s: 3,
    }))
    .expect("room");
    n.apply_updates(&rx[0], 64);
    assert_eq!(n.tables().dhcp_filter, tx.tables().dhcp_filter);
    // The bucket starts full: 3 punts within the second, then drops.
    let verdicts: Vec<Verdict> = (0..10).map(|_| run(&mut n, 0, &dhcp(stranger)).0).collect();
    assert_eq!(
        verdicts.iter().filter(|v| **v == Verdict::Punt).count(),
        3,
        "{verdicts:?}"
    );
    assert_eq!(n.counters().drops(DropReason::Unregistered), 7);
    assert_eq!(n.counters().worker.punts_unregistered, 3);
    // Registered, and held by the tables (bound at this attachment, or known unbound).
    for src in [newcomer, MAC_A, MAC_D] {
        assert_eq!(run(&mut n, 0, &dhcp(src)).0, Verdict::Punt, "{src}");
    }
    // Unregistered again: dropped like any stranger.
    tx.send(TableUpdate::Unregister { mac: mac(newcomer) })
        .expect("room");
    n.apply_updates(&rx[0], 64);
    assert_eq!(
        run(&mut n, 0, &dhcp(newcomer)).0,
        Verdict::Drop(DropReason::Unregistered)
    );
    assert!(n.tables().same_layout(tx.tables()));
}

// ---- proxy ARP ----

#[test]
fn proxy_arp_answers_a_bound_subscriber() {
    // who has 100.64.0.1? tell 100.64.0.10 (A).
    let req = f(&[
        "ffffffffffff",
        MAC_A,
        "0806",
        "0001 0800 06 04 0001",
        MAC_A,
        "6440000a",
        "000000000000",
        "64400001",
    ]);
    let reply = f(&[
        MAC_A,
        MAC_PORT0,
        "0806",
        "0001 0800 06 04 0002",
        MAC_PORT0,
        "64400001",
        MAC_A,
        "6440000a",
    ]);
    fwd(0, &req, 0, &reply);
    let mut n = node();
    run(&mut n, 0, &req);
    assert_eq!(n.counters().worker.arp_replies, 1);
}

#[test]
fn proxy_arp_answers_on_vlan_keeping_the_tag() {
    let req = f(&[
        "ffffffffffff",
        MAC_B,
        "8100 000a 0806",
        "0001 0800 06 04 0001",
        MAC_B,
        "6440000a",
        "000000000000",
        "64400063",
    ]);
    let reply = f(&[
        MAC_B,
        MAC_PORT0,
        "8100 000a 0806",
        "0001 0800 06 04 0002",
        MAC_PORT0,
        "64400063",
        MAC_B,
        "6440000a",
    ]);
    fwd(0, &req, 0, &reply);
}

#[test]
fn arp_that_is_not_a_plain_request_goes_to_the_slow_path() {
    let mut n = node();
    // Probe from 0.0.0.0 (RFC 5227).
    let probe = f(&[
        "ffffffffffff",
        MAC_A,
        "0806",
        "0001 0800 06 04 0001",
        MAC_A,
        "00000000",
        "000000000000",
        "6440000a",
    ]);
    assert_eq!(run(&mut n, 0, &probe).0, Verdict::Punt);
    // Unbound subscriber.
    let unbound = f(&[
        "ffffffffffff",
        MAC_D,
        "0806",
        "0001 0800 06 04 0001",
        MAC_D,
        "64400050",
        "000000000000",
        "64400001",
    ]);
    assert_eq!(run(&mut n, 0, &unbound).0, Verdict::Punt);
    // Sender claims another address (ARP spoofing).
    let spoof = f(&[
        "ffffffffffff",
        MAC_A,
        "0806",
        "0001 0800 06 04 0001",
        MAC_A,
        "64400063",
        "000000000000",
        "64400001",
    ]);
    assert_eq!(run(&mut n, 0, &spoof).0, Verdict::Punt);
    // Unknown MAC: dropped, never punted.
    let unknown = f(&[
        "ffffffffffff",
        "02ee00000005",
        "0806",
        "0001 0800 06 04 0001",
        "02ee00000005",
        "64400050",
        "000000000000",
        "64400001",
    ]);
    assert_eq!(
        run(&mut n, 0, &unknown).0,
        Verdict::Drop(DropReason::UnknownMac)
    );
}

// ---- transit ----

#[test]
fn transit_swaps_and_decrements_ttl() {
    fwd(
        1,
        // label 4001 TC 3 S 1 TTL 10.
        &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "00fa170a", IP_A]),
        1,
        // label 4002 TC 3 S 1 TTL 9, new next hop.
        &f(&["020000000103", MAC_CORE, "8847", "00fa2709", IP_A]),
    );
}

#[test]
fn transit_keeps_a_deeper_stack() {
    fwd(
        1,
        // label 4001 S 0 TTL 10, then label 77 S 1.
        &f(&[
            MAC_CORE,
            MAC_CORE_PEER,
            "8847",
            "00fa100a",
            "0004d140",
            IP_A,
        ]),
        1,
        &f(&[
            "020000000103",
            MAC_CORE,
            "8847",
            "00fa2009",
            "0004d140",
            IP_A,
        ]),
    );
}

#[test]
fn transit_punts_ttl_expiry_drops_unknown_label_and_non_mpls() {
    punted(
        1,
        &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "00fa1701", IP_A]),
        "punts_ttl_expired",
    );
    // TTL 0 as well (a peer that does not check).
    punted(
        1,
        &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "00fa1700", IP_A]),
        "punts_ttl_expired",
    );
    dropped(
        1,
        &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "01e6113f", IP_A]),
        DropReason::UnknownLabel,
    );
    dropped(
        1,
        &f(&[MAC_CORE, MAC_CORE_PEER, "0800", IP_A]),
        DropReason::NotMpls,
    );
    dropped(
        1,
        &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "00fa"]),
        DropReason::Truncated,
    );
    // Label 6001 swaps toward port 9, which the node does not have.
    dropped(
        1,
        &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "01771140", IP_A]),
        DropReason::NoRoute,
    );
}

/// The test node with addresses on its core (100.64.0.1/30) and hand-off (100.64.0.5/30)
/// ports, as a gateway with kernel twins has.
fn addressed_node() -> Node {
    let addr = |a: [u8; 4]| PortAddr::new(a.into(), 30);
    let mut core = port(PortRole::Core, MAC_CORE);
    core.address = addr([100, 64, 0, 1]);
    let mut handoff = port(PortRole::Handoff, MAC_HANDOFF);
    handoff.address = addr([100, 64, 0, 5]);
    let ports = vec![
        port(PortRole::Access, MAC_PORT0),
        core,
        handoff,
        port(PortRole::Access, MAC_PORT3),
        port(PortRole::Unused, "020000000000"),
    ];
    Node::from_preload(ports, &preload()).expect("preload")
}

/// An ICMP echo from 100.64.0.10 to `dst`, its header checksum computed.
fn ip_to(dst: [u8; 4]) -> String {
    let mut h = hex(IP_GW);
    h[16..20].copy_from_slice(&dst);
    h[10..12].copy_from_slice(&[0, 0]);
    let c = crate::wire::checksum::internet(&h[..20]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    to_hex(&h)
}

#[test]
fn core_port_punts_unlabelled_ipv4_for_the_gateway_only() {
    let mut n = addressed_node();
    let on_core = |ip: &str| f(&[MAC_CORE, MAC_CORE_PEER, "0800", ip]);
    // To the port's address (ping), link-local multicast (LDP hellos go to 224.0.0.2),
    // the limited and the subnet's broadcast.
    for ip in [
        IP_GW.to_owned(),
        IP_MCAST.to_owned(),
        IP_DHCP.to_owned(),
        ip_to([224, 0, 0, 2]),
        ip_to([100, 64, 0, 3]),
    ] {
        assert_eq!(run(&mut n, 1, &on_core(&ip)).0, Verdict::Punt, "{ip}");
    }
    // Anything else unlabelled is not for a label switch.
    for ip in [
        IP_A.to_owned(),
        ip_to([100, 64, 0, 2]),
        ip_to([224, 0, 1, 2]),
    ] {
        assert_eq!(
            run(&mut n, 1, &on_core(&ip)).0,
            Verdict::Drop(DropReason::NotMpls),
            "{ip}"
        );
    }
    assert_eq!(n.counters().worker.punts, 5);
    // Labelled traffic is untouched: a swap of label 4001 as in the transit tests.
    let (v, _) = run(
        &mut n,
        1,
        &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "00fa113f", IP_A]),
    );
    assert_eq!(v, Verdict::Forward(1));
}

#[test]
fn core_port_without_address_drops_unicast_to_the_gateway() {
    dropped(
        1,
        &f(&[MAC_CORE, MAC_CORE_PEER, "0800", IP_GW]),
        DropReason::NotMpls,
    );
    let mut n = node();
    let mcast = f(&[MAC_CORE, MAC_CORE_PEER, "0800", IP_MCAST]);
    assert_eq!(
        run(&mut n, 1, &mcast).0,
        Verdict::Punt,
        "link-local multicast"
    );
}

#[test]
fn handoff_port_punts_ipv4_for_the_gateway_and_pushes_the_rest() {
    let mut n = addressed_node();
    let gw = ip_to([100, 64, 0, 5]);
    for frame in [
        f(&["0200000000d2", "020000000e02", "0800", &gw]),
        f(&["0200000000d2", "020000000e01", "8100 0065 0800", &gw]),
        f(&["0200000000d2", "020000000e02", "0800", IP_MCAST]),
    ] {
        assert_eq!(run(&mut n, 2, &frame).0, Verdict::Punt, "{frame}");
    }
    // The core port's address is not the hand-off port's: pushed like any packet.
    let (v, _) = run(
        &mut n,
        2,
        &f(&[
            "0200000000d2",
            "020000000e02",
            "0800",
            &ip_to([100, 64, 0, 1]),
        ]),
    );
    assert_eq!(v, Verdict::Forward(1));
    fwd(
        2,
        &f(&["0200000000d2", "020000000e02", "0800", IP_DOWN_A]),
        1,
        &f(&["020000000102", MAC_CORE, "8847", "007d233e", IP_DOWN_A]),
    );
}

#[test]
fn port_addresses_and_what_is_for_the_gateway() {
    let a = PortAddr::new([198, 18, 9, 1].into(), 30);
    let is = |d: [u8; 4]| a.is_for(u32::from_be_bytes(d));
    assert!(is([198, 18, 9, 1]) && is([198, 18, 9, 3]) && is([255, 255, 255, 255]));
    assert!(is([224, 0, 0, 2]) && is([224, 0, 0, 255]));
    assert!(!is([198, 18, 9, 2]) && !is([198, 18, 9, 0]) && !is([224, 0, 1, 0]));
    assert!(!is([0, 0, 0, 0]) && !is([239, 255, 255, 250]));
    assert_eq!(a.addr(), Some([198, 18, 9, 1].into()));
    // /31 (RFC 3021) and /32 have no subnet broadcast.
    let p2p = PortAddr::new([198, 18, 9, 0].into(), 31);
    assert!(!p2p.is_for(u32::from_be_bytes([198, 18, 9, 1])));
    assert!(p2p.is_for(u32::from_be_bytes([198, 18, 9, 0])));
    assert_eq!(PortAddr::NONE.addr(), None);
    assert!(!PortAddr::NONE.is_for(u32::from_be_bytes([198, 18, 9, 1])));
}

/// IP_DOWN_A one hop later (TTL 62), checksum updated by hand (RFC 1624: +0x0100).
const IP_DOWN_A_62: &str = "450000201c4640003e01ac3d080808086440000a080006f41234000770696e67";

/// The addressed node with `label` as its core port's implicit null label.
fn php_node(label: u32) -> Node {
    let mut n = addressed_node();
    let mut ports = n.ports().to_vec();
    ports[1].implicit_null = Some(label);
    n = Node::from_preload(ports, &preload()).expect("preload");
    n
}

#[test]
fn implicit_null_hands_off_and_delivers_what_the_neighbour_popped() {
    // Label 5002: pop and hand off to ISP 2's router, untagged; this hop counts (TTL 62).
    let mut n = php_node(5002);
    let (v, out) = run(&mut n, 1, &f(&[MAC_CORE, MAC_CORE_PEER, "0800", IP_DOWN_A]));
    assert_eq!(v, Verdict::Forward(2));
    assert_eq!(
        to_hex(&out),
        f(&["020000000e02", MAC_HANDOFF, "0800", IP_DOWN_A_62]).replace(' ', "")
    );
    // Label 3001: pop and deliver to ISP 1's subscriber A.
    let mut n = php_node(3001);
    let (v, out) = run(&mut n, 1, &f(&[MAC_CORE, MAC_CORE_PEER, "0800", IP_DOWN_A]));
    assert_eq!(v, Verdict::Forward(0));
    assert_eq!(
        to_hex(&out),
        f(&[MAC_A, MAC_PORT0, "0800", IP_DOWN_A_62]).replace(' ', "")
    );
    // The gateway's own address is still the twin's.
    let gw = f(&[MAC_CORE, MAC_CORE_PEER, "0800", &ip_to([100, 64, 0, 1])]);
    assert_eq!(run(&mut n, 1, &gw).0, Verdict::Punt);
    // TTL 1 expires here, as a popped label's would; with no label to read back, the slow
    // path would not answer it, so it is dropped, not punted.
    let (v, _) = run(&mut n, 1, &f(&[MAC_CORE, MAC_CORE_PEER, "0800", IP_TTL1]));
    assert_eq!(v, Verdict::Drop(DropReason::TtlExpired));
}

#[test]
fn implicit_null_never_swaps_and_needs_a_label_in_the_ilm() {
    // A swap would push a label onto a popped packet: not done.
    let mut n = php_node(4001);
    let (v, _) = run(&mut n, 1, &f(&[MAC_CORE, MAC_CORE_PEER, "0800", IP_DOWN_A]));
    assert_eq!(v, Verdict::Drop(DropReason::NotMpls));
    let mut n = php_node(7777);
    let (v, _) = run(&mut n, 1, &f(&[MAC_CORE, MAC_CORE_PEER, "0800", IP_DOWN_A]));
    assert_eq!(v, Verdict::Drop(DropReason::UnknownLabel));
    // Labelled frames are untouched by it.
    let (v, _) = run(
        &mut n,
        1,
        &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "00fa113f", IP_A]),
    );
    assert_eq!(v, Verdict::Forward(1));
}

// ---- tailend upstream (pop, hand-off) ----

#[test]
fn tailend_pops_and_hands_off_on_the_isp_vlan() {
    fwd(
        1,
        // label 5001 TC 2 S 1 TTL 60; IPv4 TTL 63 becomes min(63, 59).
        &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "0138953c", IP_DOWN_A]),
        2,
        // ISP router MAC, hand-off MAC, 802.1Q PCP 2 VID 101, IPv4 with TTL 59.
        &f(&["020000000e01", MAC_HANDOFF, "8100 4065 0800", IP_DOWN_A_59]),
    );
}

#[test]
fn tailend_pops_and_hands_off_untagged_keeping_a_lower_ip_ttl() {
    // label 5002 TC 0 S 1 TTL 200: IPv4 TTL 63 is lower and stays.
    fwd(
        1,
        &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "0138a1c8", IP_DOWN_A]),
        2,
        &f(&["020000000e02", MAC_HANDOFF, "0800", IP_DOWN_A]),
    );
}

#[test]
fn tailend_pop_punts_ttl_expiry_drops_stack_and_non_ipv4() {
    dropped(
        1,
        &f(&[
            MAC_CORE,
            MAC_CORE_PEER,
            "8847",
            "0138903c",
            "0004d140",
            IP_A,
        ]),
        DropReason::LabelStack,
    );
    punted(
        1,
        &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "01389101", IP_A]),
        "punts_ttl_expired",
    );
    // The label's TTL is fine, the IPv4 TTL under it is 0.
    let ip_ttl0 = "450000201c4640000001ea3d6440000a08080808080006f61234000570696e67";
    punted(
        1,
        &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "0138913c", ip_ttl0]),
        "punts_ttl_expired",
    );
    dropped(
        1,
        &f(&[
            MAC_CORE,
            MAC_CORE_PEER,
            "8847",
            "0138913c",
            "6000000000000000",
        ]),
        DropReason::Truncated,
    );
}

// ---- tailend downstream (push toward headend) ----

#[test]
fn tailend_pushes_downstream_label_per_handoff_vlan() {
    // ISP 1 on VLAN 101: label 2001 TC 0 TTL 62.
    fwd(
        2,
        &f(&["0200000000d2", "020000000e01", "8100 0065 0800", IP_DOWN_A]),
        1,
        &f(&["020000000102", MAC_CORE, "8847", "007d113e", IP_DOWN_A]),
    );
    // ISP 2 untagged: label 2002 TC 1.
    fwd(
        2,
        &f(&["0200000000d2", "020000000e02", "0800", IP_DOWN_A]),
        1,
        &f(&["020000000102", MAC_CORE, "8847", "007d233e", IP_DOWN_A]),
    );
}

#[test]
fn tailend_downstream_drops_unknown_vlan_and_punts_arp() {
    dropped(
        2,
        &f(&["0200000000d2", "020000000e01", "8100 0066 0800", IP_DOWN_A]),
        DropReason::UnknownHandoff,
    );
    let mut n = node();
    let arp = f(&[
        "ffffffffffff",
        "020000000e01",
        "8100 0065 0806",
        "0001 0800 06 04 0001 020000000e01 0a000001 000000000000 0a000002",
    ]);
    assert_eq!(run(&mut n, 2, &arp).0, Verdict::Punt);
}

#[test]
fn tailend_downstream_punts_ttl_expiry_and_oversized_df() {
    // From ISP 1's router on VLAN 101: 8.8.8.8 → 100.64.0.10 with TTL 1.
    let ttl1 = "450000201c4640000101e93d080808086440000a080006f41234000770696e67";
    punted(
        2,
        &f(&["0200000000d2", "020000000e01", "8100 0065 0800", ttl1]),
        "punts_ttl_expired",
    );
    // 1500 bytes with DF: does not fit the 1500-byte core port behind the label.
    let big = format!(
        "{}{}",
        "450005dc1c4640003f01a581080808086440000a",
        "00".repeat(1480)
    );
    punted(
        2,
        &f(&["0200000000d2", "020000000e02", "0800", &big]),
        "punts_frag_needed",
    );
}

// ---- headend downstream (pop, deliver) ----

#[test]
fn headend_delivers_by_isp_and_address() {
    // ISP 1's label: 100.64.0.10 is A, untagged on port 0.
    fwd(
        1,
        &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "00bb913c", IP_DOWN_A]),
        0,
        &f(&[MAC_A, MAC_PORT0, "0800", IP_DOWN_A_59]),
    );
    // ISP 2's label: the same address is B, on VLAN 10.
    fwd(
        1,
        &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "00bba13c", IP_DOWN_A]),
        0,
        &f(&[MAC_B, MAC_PORT0, "8100 000a 0800", IP_DOWN_A_59]),
    );
}

#[test]
fn headend_pop_punts_ttl_expiry() {
    // ISP 1's label 3001 with TTL 1.
    punted(
        1,
        &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "00bb9101", IP_DOWN_A]),
        "punts_ttl_expired",
    );
}

#[test]
fn headend_delivers_with_qinq_tags() {
    fwd(
        1,
        &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "00bb913c", IP_DOWN_C]),
        3,
        &f(&[MAC_C, MAC_PORT3, "88a8 0064 8100 00c8 0800", IP_DOWN_C_59]),
    );
}

#[test]
fn headend_drops_unknown_destination() {
    // ISP 2 has no subscriber 100.64.0.11.
    dropped(
        1,
        &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "00bba13c", IP_DOWN_C]),
        DropReason::UnknownDestination,
    );
}

// ---- node-wide ----

#[test]
fn unused_and_unknown_ports_drop() {
    dropped(
        4,
        &f(&[MAC_PORT0, MAC_A, "0800", IP_A]),
        DropReason::NoRoute,
    );
    dropped(
        40,
        &f(&[MAC_PORT0, MAC_A, "0800", IP_A]),
        DropReason::NoRoute,
    );
}

/// Two ISPs with the same subscriber address: each one's traffic carries only its own labels
/// and is counted only under its own ISP, in a mixed burst both ways.
#[test]
fn two_isps_do_not_leak_into_each_other() {
    let mut n = node();
    let burst = [
        f(&[MAC_PORT0, MAC_A, "0800", IP_A]),
        f(&[MAC_PORT0, MAC_B, "8100 000a 0800", IP_B]),
        f(&[MAC_PORT0, MAC_A, "0800", IP_A]),
        f(&[MAC_PORT0, MAC_A, "8100 000a 0800", IP_B]),
    ];
    let mut frames: Vec<VecFrame> = burst.iter().map(|s| VecFrame::new(&hex(s))).collect();
    let mut v = vec![Verdict::Punt; frames.len()];
    n.process(0, &mut frames, &mut v);
    assert_eq!(
        v,
        [
            Verdict::Forward(1),
            Verdict::Forward(1),
            Verdict::Forward(1),
            Verdict::Drop(DropReason::UnknownMac)
        ]
    );
    let label = |f: &VecFrame| {
        u32::from_be_bytes([f.data()[14], f.data()[15], f.data()[16], f.data()[17]]) >> 12
    };
    assert_eq!(
        [label(&frames[0]), label(&frames[1]), label(&frames[2])],
        [1001, 1002, 1001]
    );
    let c = n.counters();
    assert_eq!(
        c.isp(1).headend_up,
        PacketBytes {
            packets: 2,
            bytes: 64
        }
    );
    assert_eq!(
        c.isp(2).headend_up,
        PacketBytes {
            packets: 1,
            bytes: 32
        }
    );

    let down = [
        f(&[MAC_CORE, MAC_CORE_PEER, "8847", "00bb913c", IP_DOWN_A]),
        f(&[MAC_CORE, MAC_CORE_PEER, "8847", "00bba13c", IP_DOWN_A]),
        f(&[MAC_CORE, MAC_CORE_PEER, "8847", "00bba13c", IP_DOWN_C]),
    ];
    let mut frames: Vec<VecFrame> = down.iter().map(|s| VecFrame::new(&hex(s))).collect();
    let mut v = vec![Verdict::Punt; frames.len()];
    n.process(1, &mut frames, &mut v);
    assert_eq!(
        v,
        [
            Verdict::Forward(0),
            Verdict::Forward(0),
            Verdict::Drop(DropReason::UnknownDestination)
        ]
    );
    assert_eq!(&frames[0].data()[..6], &hex(MAC_A)[..]);
    assert_eq!(&frames[1].data()[..6], &hex(MAC_B)[..]);
    let c = n.counters();
    assert_eq!(c.isp(1).headend_down.packets, 1);
    assert_eq!(c.isp(2).headend_down.packets, 1);
    assert_eq!(c.drops(DropReason::UnknownDestination), 1);
    assert_eq!(c.drops(DropReason::UnknownMac), 1);
}

#[test]
fn tailend_counts_per_isp_both_ways() {
    let mut n = node();
    run(
        &mut n,
        1,
        &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "0138953c", IP_DOWN_A]),
    );
    run(
        &mut n,
        1,
        &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "0138a1c8", IP_DOWN_A]),
    );
    run(
        &mut n,
        2,
        &f(&["0200000000d2", "020000000e01", "8100 0065 0800", IP_DOWN_A]),
    );
    let c = n.counters();
    assert_eq!(
        c.isp(1).tailend_up,
        PacketBytes {
            packets: 1,
            bytes: 32
        }
    );
    assert_eq!(
        c.isp(2).tailend_up,
        PacketBytes {
            packets: 1,
            bytes: 32
        }
    );
    assert_eq!(
        c.isp(1).tailend_down,
        PacketBytes {
            packets: 1,
            bytes: 32
        }
    );
    assert_eq!(c.isp(2).tailend_down, PacketBytes::default());
}

/// A live update between bursts changes the verdict of the next burst.
#[test]
fn updates_between_bursts_take_effect_on_the_next_burst() {
    let mut n = node();
    let (mut tx, rx) = crate::table::updates::channel(preload().build().expect("master"), 1, 16);
    assert!(n.tables().same_layout(tx.tables()));
    let frame = f(&[MAC_PORT0, MAC_D, "0800", IP_SPOOF]);
    assert_eq!(
        run(&mut n, 0, &frame).0,
        Verdict::Drop(DropReason::NotBound)
    );
    let key = SubscriberKey {
        port: 0,
        outer_vid: 0,
        inner_vid: 0,
        mac: crate::wire::MacAddr::from_bytes(&hex(MAC_D)).expect("mac"),
    };
    tx.send(TableUpdate::Bind {
        key,
        addr: "100.64.0.99".parse().expect("ip"),
    })
    .expect("room");
    n.apply_updates(&rx[0], 64);
    assert_eq!(run(&mut n, 0, &frame).0, Verdict::Forward(1));
    tx.send(TableUpdate::RemoveSubscriber { key })
        .expect("room");
    n.apply_updates(&rx[0], 64);
    assert_eq!(
        run(&mut n, 0, &frame).0,
        Verdict::Drop(DropReason::UnknownMac)
    );
    // Bind: downstream slot and subscriber slot; remove: downstream, subscriber, subscriber.
    assert_eq!(n.counters().worker.updates_applied, 5);
}

#[test]
fn headroom_exhaustion_is_a_counted_drop() {
    let mut n = node();
    let mut frames = [VecFrame::with_headroom(
        &hex(&f(&[MAC_PORT0, MAC_A, "0800", IP_A])),
        2,
    )];
    let mut v = [Verdict::Punt];
    n.process(0, &mut frames, &mut v);
    assert_eq!(v[0], Verdict::Drop(DropReason::NoHeadroom));
}

#[test]
fn a_burst_longer_than_a_pass_is_handled_whole() {
    let mut n = node();
    let one = hex(&f(&[MAC_PORT0, MAC_A, "0800", IP_A]));
    let mut frames: Vec<VecFrame> = (0..150).map(|_| VecFrame::new(&one)).collect();
    let mut v = vec![Verdict::Punt; 150];
    n.process(0, &mut frames, &mut v);
    assert!(v.iter().all(|v| *v == Verdict::Forward(1)));
    assert_eq!(n.counters().isp(1).headend_up.packets, 150);
}

static HOOK_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn counting_hook(_: *const u8) {
    HOOK_CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// The prefetch hook sees every bucket a lookup reads ahead: the home bucket of each keyed
/// subscriber frame when its burst is looked ahead (once: processing it later reuses the
/// keys), the second bucket of a key not at home when processed, both buckets of each
/// downstream key; and prefetching changes no verdict.
#[test]
fn prefetch_hook_covers_every_keyed_lookup() {
    let calls = || HOOK_CALLS.load(std::sync::atomic::Ordering::Relaxed);
    let mut n = node();
    n.set_prefetch(Some(counting_hook));
    let up: Vec<VecFrame> = [MAC_A, MAC_D, "02ee00000005"]
        .iter()
        .map(|m| VecFrame::new(&hex(&f(&[MAC_PORT0, m, "0800", IP_A]))))
        .collect();
    let start = calls();
    n.prefetch(0, &up);
    assert_eq!(calls() - start, 3, "home buckets");
    let mut frames = up.clone();
    let mut v = vec![Verdict::Punt; 3];
    n.process(0, &mut frames, &mut v);
    // The unknown MAC is not at home: its second bucket.
    assert_eq!(calls() - start, 4);
    let want = [
        Verdict::Forward(1),
        Verdict::Drop(DropReason::NotBound),
        Verdict::Drop(DropReason::UnknownMac),
    ];
    assert_eq!(v, want);
    // Processed without a look-ahead: keyed and prefetched then.
    let mut frames = up.clone();
    n.process(0, &mut frames, &mut v);
    assert_eq!(calls() - start, 4 + 4);
    assert_eq!(v, want);
    let mut down = [VecFrame::new(&hex(&f(&[
        MAC_CORE,
        MAC_CORE_PEER,
        "8847",
        "00bb913c",
        IP_DOWN_A,
    ])))];
    let mut v = [Verdict::Punt];
    n.prefetch(1, &down);
    n.process(1, &mut down, &mut v);
    assert_eq!(v[0], Verdict::Forward(0));
    // Downstream buckets twice (look-ahead and process); the ILM, indexed directly and in
    // cache, is not prefetched.
    assert_eq!(calls() - start, 8 + 2 + 2);
}

/// Keys kept from a look-ahead are used only for frames that still carry the bytes they
/// were read from: bursts in recycled buffers, rewritten frames and frames in another
/// order are keyed afresh, so each gets its own subscriber's verdict.
#[test]
fn look_ahead_keys_follow_the_frames_not_the_buffers() {
    let mut n = node();
    let frame = |mac: &str, ip: &str| VecFrame::new(&hex(&f(&[MAC_PORT0, mac, "0800", ip])));
    let a = [frame(MAC_A, IP_A), frame(MAC_D, IP_A)];
    let b = [frame(MAC_D, IP_A), frame(MAC_A, IP_A)];
    let mut v = [Verdict::Punt; 2];
    // Looked ahead as `a`, then the same buffers hold `b`'s frames when processed.
    let mut bufs = a.clone();
    n.prefetch(0, &bufs);
    bufs.clone_from_slice(&b);
    n.process(0, &mut bufs, &mut v);
    assert_eq!(
        v,
        [Verdict::Drop(DropReason::NotBound), Verdict::Forward(1)]
    );
    // The first frames agree, the second does not.
    let mut bufs = a.clone();
    n.prefetch(0, &bufs);
    bufs[1] = frame(MAC_A, IP_A);
    n.process(0, &mut bufs, &mut v);
    assert_eq!(v, [Verdict::Forward(1), Verdict::Forward(1)]);
    // Two bursts looked ahead, processed in the other order.
    let (mut x, mut y) = (a.clone(), b.clone());
    n.prefetch(0, &x);
    n.prefetch(0, &y);
    n.process(0, &mut y, &mut v);
    assert_eq!(
        v,
        [Verdict::Drop(DropReason::NotBound), Verdict::Forward(1)]
    );
    n.process(0, &mut x, &mut v);
    assert_eq!(
        v,
        [Verdict::Forward(1), Verdict::Drop(DropReason::NotBound)]
    );
    assert_eq!(n.counters().isp(1).headend_up.packets, 5);
}

/// A node whose access and hand-off ports have a 1400-byte MTU.
fn small_mtu_node() -> Node {
    let mut n = node();
    let mut ports = n.ports().to_vec();
    for p in &mut ports {
        if p.role != PortRole::Core {
            p.mtu = 1400;
        }
    }
    n = Node::new(ports, preload().build().expect("tables"));
    n
}

#[test]
fn pops_larger_than_the_output_mtu_are_dropped() {
    // 8.8.8.8 → 100.64.0.10, total length 1500, TTL 63 (checksum computed outside this code).
    let big = format!(
        "{}{}",
        "450005dc1c4640003f01a581080808086440000a",
        "00".repeat(1480)
    );
    let mut n = small_mtu_node();
    // Deliver to A (ISP 1's label 3001), whose access port takes 1400.
    let frame = f(&[MAC_CORE, MAC_CORE_PEER, "8847", "00bb913c", &big]);
    assert_eq!(
        run(&mut n, 1, &frame).0,
        Verdict::Drop(DropReason::Oversized)
    );
    // Hand off to ISP 1 (label 5001).
    let frame = f(&[MAC_CORE, MAC_CORE_PEER, "8847", "0138953c", &big]);
    assert_eq!(
        run(&mut n, 1, &frame).0,
        Verdict::Drop(DropReason::Oversized)
    );
    assert_eq!(n.counters().drops(DropReason::Oversized), 2);
    // The same packets fit the default 1500.
    let mut n = node();
    assert_eq!(
        run(
            &mut n,
            1,
            &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "00bb913c", &big])
        )
        .0,
        Verdict::Forward(0)
    );
}

#[test]
fn an_isp_without_a_fec_drops_as_no_fec() {
    let mut n = node();
    let (mut tx, rx) = crate::table::updates::channel(preload().build().expect("master"), 1, 16);
    for direction in [
        crate::table::Direction::Upstream,
        crate::table::Direction::Downstream,
    ] {
        tx.send(TableUpdate::SetFec {
            isp: 1,
            direction,
            fec: None,
        })
        .expect("accepted");
    }
    n.apply_updates(&rx[0], 64);
    assert_eq!(
        run(&mut n, 0, &f(&[MAC_PORT0, MAC_A, "0800", IP_A])).0,
        Verdict::Drop(DropReason::NoFec)
    );
    assert_eq!(
        run(
            &mut n,
            2,
            &f(&["0200000000d2", "020000000e01", "8100 0065 0800", IP_DOWN_A])
        )
        .0,
        Verdict::Drop(DropReason::NoFec)
    );
    // ISP 2 is untouched.
    assert_eq!(
        run(&mut n, 0, &f(&[MAC_PORT0, MAC_B, "8100 000a 0800", IP_B])).0,
        Verdict::Forward(1)
    );
}

#[test]
fn a_new_upstream_fec_is_pushed_from_the_next_burst() {
    let mut n = node();
    let frame = f(&[MAC_PORT0, MAC_A, "0800", IP_A]);
    assert_eq!(
        run(&mut n, 0, &frame),
        (
            Verdict::Forward(1),
            hex(&f(&["020000000101", MAC_CORE, "8847", "003e913f", IP_A]))
        )
    );
    let (mut tx, rx) = crate::table::updates::channel(preload().build().expect("master"), 1, 16);
    tx.send(TableUpdate::SetFec {
        isp: 1,
        direction: crate::table::Direction::Upstream,
        fec: Some(crate::table::Fec {
            label: 1003,
            tc: 6,
            port: 1,
            next_hop: crate::wire::MacAddr([2, 0, 0, 0, 1, 7]),
        }),
    })
    .expect("accepted");
    n.apply_updates(&rx[0], 64);
    // Label 1003, TC 6, S 1, TTL 63; the new next hop.
    assert_eq!(
        run(&mut n, 0, &frame),
        (
            Verdict::Forward(1),
            hex(&f(&["020000000107", MAC_CORE, "8847", "003ebd3f", IP_A]))
        )
    );
}

proptest::proptest! {
    /// Whatever the headend's fast push decides, the general path decides the same way, with
    /// the same bytes out and the same counts; what it leaves to the general path, it leaves
    /// untouched. Inputs are the known frames with a few bytes changed and cut short.
    #[test]
    fn fast_push_agrees_with_the_general_path(
        base in 0usize..8,
        changes in proptest::collection::vec((0usize..64, proptest::prelude::any::<u8>()), 0..3),
        cut in 0usize..80,
    ) {
        use super::access::{decide, fast_push, plan_pushes, subscriber_key, PushPlan};
        use super::Cx;
        use crate::counters::Counters;
        let frames = [
            (MAC_A, IP_A), (MAC_A, IP_SPOOF), (MAC_A, IP_TTL1), (MAC_A, IP_GW),
            (MAC_A, IP_MCAST), (MAC_A, IP_DHCP), (MAC_D, IP_A), (MAC_A, IP_BIG_HDR),
        ];
        let (mac, ip) = frames[base];
        let mut bytes = hex(&f(&[MAC_PORT0, mac, "0800", ip]));
        for (i, b) in changes {
            if let Some(x) = bytes.get_mut(i) {
                *x = b;
            }
        }
        bytes.truncate(bytes.len().min(cut.max(14)));
        let tables = preload().build().expect("tables");
        let ports = node().ports().to_vec();
        let isps = tables.limits().max_isps;
        let mut pushes = vec![PushPlan::default(); isps];
        plan_pushes(&tables, &ports, &mut pushes);
        let (mut fast_counters, mut general_counters) = (Counters::new(isps), Counters::new(isps));
        let mut budget = crate::roles::budget::PuntBudget::new(crate::roles::budget::monotonic_ns);
        let sub = subscriber_key(0, &bytes).and_then(|k| tables.subscribers.get(&k)).copied();
        let (mut fast_frame, mut general_frame) = (VecFrame::new(&bytes), VecFrame::new(&bytes));
        let fast = sub.and_then(|s| {
            let mut cx = Cx { tables: &tables, ports: &ports, pushes: &pushes, counters: &mut fast_counters, unregistered: &mut budget };
            fast_push(&mut cx, &mut fast_frame, &s)
        });
        let mut cx = Cx { tables: &tables, ports: &ports, pushes: &pushes, counters: &mut general_counters, unregistered: &mut budget };
        let general = decide(&mut cx, 0, &mut general_frame, sub.as_ref());
        match fast {
            Some(port) => {
                proptest::prop_assert_eq!(general, Verdict::Forward(port));
                proptest::prop_assert_eq!(fast_frame.data(), general_frame.data());
                for isp in 0..isps as u16 {
                    proptest::prop_assert_eq!(fast_counters.isp(isp), general_counters.isp(isp));
                }
            }
            None => proptest::prop_assert_eq!(fast_frame.data(), &bytes[..]),
        }
    }

    /// The look-ahead's untagged key is the key the general parser gives the same frame,
    /// and it declines every frame the parser would key otherwise (tagged, multicast source).
    #[test]
    fn the_untagged_key_is_the_parsed_key(
        port in 0u16..300,
        tpid in proptest::sample::select(vec![0x0800u16, 0x0806, 0x8100, 0x88a8, 0x8847]),
        src_first in proptest::num::u8::ANY,
        rest in proptest::collection::vec(proptest::num::u8::ANY, 22..40),
    ) {
        use super::access::{key_bytes, subscriber_key, untagged_key};
        let mut d = rest;
        d[6] = src_first;
        d[12..14].copy_from_slice(&tpid.to_be_bytes());
        let untagged = crate::table::subscriber::Attachment::new(port, 0, 0)
            .zip(key_bytes(&d))
            .and_then(|(a, b)| untagged_key(a, b));
        let parsed = subscriber_key(port, &d);
        match untagged {
            Some(k) => proptest::prop_assert_eq!(Some(k), parsed),
            None => proptest::prop_assert!(
                port > 0xff || src_first & 1 == 1 || tpid == 0x8100 || tpid == 0x88a8
            ),
        }
    }
}

// ---- next hops not resolved (MAC zero) ----

/// The tables with every next hop at MAC zero, as the configuration plans next hops given
/// by address before ARP resolves them.
fn unresolved_preload() -> PreloadTables {
    use crate::table::preload::IlmActionPreload as A;
    use crate::wire::MacAddr;
    let mut p = preload();
    for isp in &mut p.isps {
        for fec in [&mut isp.upstream, &mut isp.downstream]
            .into_iter()
            .flatten()
        {
            fec.next_hop = MacAddr::ZERO;
        }
    }
    for e in &mut p.ilm {
        match &mut e.action {
            A::Swap { next_hop, .. } => *next_hop = MacAddr::ZERO,
            A::PopHandoff { router_mac, .. } => *router_mac = MacAddr::ZERO,
            A::PopDeliver { .. } => {}
        }
    }
    p
}

fn unresolved_node() -> Node {
    Node::from_preload(node().ports().to_vec(), &unresolved_preload()).expect("preload")
}

/// Every role that sends toward a next hop drops as `no_neighbour` while its MAC is zero:
/// headend push (untagged through the push plan, tagged through the general path), transit
/// swap, tailend hand-off (tagged and untagged) and tailend downstream push. No frame ever
/// leaves toward 00:00:00:00:00:00.
#[test]
fn an_unresolved_next_hop_drops_as_no_neighbour_in_every_role() {
    let cases: [(u16, String); 7] = [
        (0, f(&[MAC_PORT0, MAC_A, "0800", IP_A])),
        (0, f(&[MAC_PORT0, MAC_B, "8100 000a 0800", IP_B])),
        (1, f(&[MAC_CORE, MAC_CORE_PEER, "8847", "00fa170a", IP_A])),
        (
            1,
            f(&[MAC_CORE, MAC_CORE_PEER, "8847", "0138953c", IP_DOWN_A]),
        ),
        (
            1,
            f(&[MAC_CORE, MAC_CORE_PEER, "8847", "0138a1c8", IP_DOWN_A]),
        ),
        (
            2,
            f(&["0200000000d2", "020000000e01", "8100 0065 0800", IP_DOWN_A]),
        ),
        (2, f(&["0200000000d2", "020000000e02", "0800", IP_DOWN_A])),
    ];
    let mut n = unresolved_node();
    for (i, (rx, frame)) in cases.iter().enumerate() {
        let (v, _) = run(&mut n, *rx, frame);
        assert_eq!(v, Verdict::Drop(DropReason::NoNeighbour), "case {i}");
    }
    assert_eq!(n.counters().drops(DropReason::NoNeighbour), 7);
    // A burst of many (the batched fast paths) drops them all too.
    let mut frames: Vec<VecFrame> = (0..40).map(|_| VecFrame::new(&hex(&cases[0].1))).collect();
    let mut v = vec![Verdict::Punt; frames.len()];
    n.process(0, &mut frames, &mut v);
    assert!(v
        .iter()
        .all(|v| *v == Verdict::Drop(DropReason::NoNeighbour)));
    // TTL expiry is decided before the neighbour, as a router does: punted for its ICMP
    // Time Exceeded, which goes along the LSP only once the neighbour is resolved.
    let (v, _) = run(
        &mut n,
        1,
        &f(&[MAC_CORE, MAC_CORE_PEER, "8847", "00fa1701", IP_A]),
    );
    assert_eq!(v, Verdict::Punt);
}

/// Resolution is one table update per entry, seen from the next burst: the headend's push
/// plan is worked out again, and the frames carry the new MAC, byte for byte.
#[test]
fn a_resolved_next_hop_forwards_from_the_next_burst() {
    use crate::table::{Direction, Fec, IlmAction};
    use crate::wire::MacAddr;
    let mut n = unresolved_node();
    let up = f(&[MAC_PORT0, MAC_A, "0800", IP_A]);
    let swap = f(&[MAC_CORE, MAC_CORE_PEER, "8847", "00fa170a", IP_A]);
    let pop = f(&[MAC_CORE, MAC_CORE_PEER, "8847", "0138a1c8", IP_DOWN_A]);
    assert_eq!(
        run(&mut n, 0, &up).0,
        Verdict::Drop(DropReason::NoNeighbour)
    );
    let (mut tx, rx) =
        crate::table::updates::channel(unresolved_preload().build().expect("master"), 1, 16);
    let nh = MacAddr([2, 0, 0, 0, 0x77, 1]);
    for u in [
        TableUpdate::SetFec {
            isp: 1,
            direction: Direction::Upstream,
            fec: Some(Fec {
                label: 1001,
                tc: 0,
                port: 1,
                next_hop: nh,
            }),
        },
        TableUpdate::SetIlm {
            label: 4001,
            action: Some(IlmAction::Swap {
                out_label: 4002,
                port: 1,
                next_hop: nh,
            }),
        },
        TableUpdate::SetIlm {
            label: 5002,
            action: Some(IlmAction::PopHandoff {
                isp: 2,
                port: 2,
                vid: 0,
                router_mac: nh,
            }),
        },
    ] {
        tx.send(u).expect("accepted");
    }
    n.apply_updates(&rx[0], 64);
    assert_eq!(
        run(&mut n, 0, &up),
        (
            Verdict::Forward(1),
            hex(&f(&["020000007701", MAC_CORE, "8847", "003e913f", IP_A]))
        )
    );
    assert_eq!(
        run(&mut n, 1, &swap),
        (
            Verdict::Forward(1),
            hex(&f(&["020000007701", MAC_CORE, "8847", "00fa2709", IP_A]))
        )
    );
    assert_eq!(
        run(&mut n, 1, &pop),
        (
            Verdict::Forward(2),
            hex(&f(&["020000007701", MAC_HANDOFF, "0800", IP_DOWN_A]))
        )
    );
    // Lost again (MAC zero): dropped again from the next burst.
    tx.send(TableUpdate::SetFec {
        isp: 1,
        direction: Direction::Upstream,
        fec: Some(Fec {
            label: 1001,
            tc: 0,
            port: 1,
            next_hop: MacAddr::ZERO,
        }),
    })
    .expect("accepted");
    n.apply_updates(&rx[0], 64);
    assert_eq!(
        run(&mut n, 0, &up).0,
        Verdict::Drop(DropReason::NoNeighbour)
    );
}
