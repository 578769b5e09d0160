//! Headend → transit → tailend and back, three nodes chained over byte buffers: what the
//! end-to-end test does over veth, without DPDK. Checks the label on each hop, that the
//! IPv4 packet arrives intact apart from the TTL (uniform model: one less per node), that two
//! ISPs sharing an address do not leak, and that per-ISP counters equal what was sent.

use ispmux_dataplane::table::preload::{
    FecPreload, HandoffPreload, IlmActionPreload, IlmPreload, IspPreload, SubscriberPreload,
};
use ispmux_dataplane::table::Limits;
use ispmux_dataplane::wire::{Ipv4Packet, Ipv4Repr, MacAddr};
use ispmux_dataplane::{
    Frame, Node, Pipeline, PortAddr, PortConfig, PortRole, PreloadTables, VecFrame, Verdict,
};
use proptest::prelude::*;
use std::net::Ipv4Addr;

fn mac(a: u8, b: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, a, b])
}

const H: u8 = 1;
const T: u8 = 2;
const E: u8 = 3;
const SUB: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 10);

fn port(role: PortRole, m: MacAddr) -> PortConfig {
    PortConfig {
        role,
        mac: m,
        mtu: 1500,
        address: PortAddr::NONE,
        implicit_null: None,
    }
}

fn isp(id: u16) -> IspPreload {
    IspPreload {
        id,
        name: String::new(),
        gateway: None,
        upstream: None,
        downstream: None,
        handoff: vec![],
    }
}

fn limits() -> Limits {
    Limits {
        max_subscribers: 16,
        max_isps: 4,
        max_labels: 16,
        max_handoffs: 4,
    }
}

fn ilm(label: u32, action: IlmActionPreload) -> IlmPreload {
    IlmPreload { label, action }
}

/// Headend: access port 0, core port 1 toward the transit's port 0.
fn headend() -> Node {
    let fec = |label| {
        Some(FecPreload {
            label,
            tc: 0,
            port: 1,
            next_hop: mac(T, 0),
        })
    };
    let p = PreloadTables {
        limits: limits(),
        isps: vec![
            IspPreload {
                upstream: fec(100),
                ..isp(1)
            },
            IspPreload {
                upstream: fec(101),
                ..isp(2)
            },
        ],
        ilm: vec![
            ilm(300, IlmActionPreload::PopDeliver { isp: 1 }),
            ilm(301, IlmActionPreload::PopDeliver { isp: 2 }),
        ],
        subscribers: vec![
            SubscriberPreload {
                port: 0,
                vlan: 0,
                inner_vlan: 0,
                mac: mac(0xa, 1),
                isp: 1,
                ipv4: Some(SUB),
            },
            SubscriberPreload {
                port: 0,
                vlan: 10,
                inner_vlan: 0,
                mac: mac(0xb, 2),
                isp: 2,
                ipv4: Some(SUB),
            },
        ],
    };
    Node::from_preload(
        vec![
            port(PortRole::Access, mac(H, 0)),
            port(PortRole::Core, mac(H, 1)),
        ],
        &p,
    )
    .expect("headend")
}

/// Transit: core port 0 toward the headend, core port 1 toward the tailend.
fn transit() -> Node {
    let swap = |out_label, port, next_hop| IlmActionPreload::Swap {
        out_label,
        port,
        next_hop,
    };
    let p = PreloadTables {
        limits: limits(),
        ilm: vec![
            ilm(100, swap(200, 1, mac(E, 0))),
            ilm(101, swap(201, 1, mac(E, 0))),
            ilm(400, swap(300, 0, mac(H, 1))),
            ilm(401, swap(301, 0, mac(H, 1))),
        ],
        ..PreloadTables::default()
    };
    Node::from_preload(
        vec![
            port(PortRole::Core, mac(T, 0)),
            port(PortRole::Core, mac(T, 1)),
        ],
        &p,
    )
    .expect("transit")
}

/// Tailend: core port 0 toward the transit, hand-off port 1 (ISP 1 on VLAN 11, ISP 2 on 12).
fn tailend() -> Node {
    let fec = |label| {
        Some(FecPreload {
            label,
            tc: 0,
            port: 0,
            next_hop: mac(T, 1),
        })
    };
    let p = PreloadTables {
        limits: limits(),
        isps: vec![
            IspPreload {
                downstream: fec(400),
                handoff: vec![HandoffPreload { port: 1, vlan: 11 }],
                ..isp(1)
            },
            IspPreload {
                downstream: fec(401),
                handoff: vec![HandoffPreload { port: 1, vlan: 12 }],
                ..isp(2)
            },
        ],
        ilm: vec![
            ilm(
                200,
                IlmActionPreload::PopHandoff {
                    isp: 1,
                    port: 1,
                    vlan: 11,
                    router_mac: mac(0xe, 1),
                },
            ),
            ilm(
                201,
                IlmActionPreload::PopHandoff {
                    isp: 2,
                    port: 1,
                    vlan: 12,
                    router_mac: mac(0xe, 2),
                },
            ),
        ],
        ..PreloadTables::default()
    };
    Node::from_preload(
        vec![
            port(PortRole::Core, mac(E, 0)),
            port(PortRole::Handoff, mac(E, 1)),
        ],
        &p,
    )
    .expect("tailend")
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, dscp_ecn: u8, payload: &[u8]) -> Vec<u8> {
    let r = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        // Experimental protocol 253 (RFC 3692): random payloads must not look like DHCP.
        protocol: 253,
        payload_len: payload.len() as u16,
        ttl,
        dscp_ecn,
        ident: 7,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    let mut b = vec![0u8; 20 + payload.len()];
    b[20..].copy_from_slice(payload);
    r.emit(&mut Ipv4Packet::new_unchecked(&mut b[..]))
        .expect("emit");
    b
}

fn step(n: &mut Node, rx: u16, f: &mut VecFrame) -> Verdict {
    let mut v = [Verdict::Punt];
    n.process(rx, std::slice::from_mut(f), &mut v);
    v[0]
}

fn top_label(f: &VecFrame) -> u32 {
    let d = f.data();
    assert_eq!(&d[12..14], &[0x88, 0x47], "not MPLS");
    u32::from_be_bytes([d[14], d[15], d[16], d[17]]) >> 12
}

/// The packet with its TTL lowered by `hops` and the checksum redone.
fn aged(ip: &[u8], hops: u8) -> Vec<u8> {
    let mut b = ip.to_vec();
    let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
    let ttl = p.ttl() - hops;
    p.set_ttl(ttl);
    p.fill_checksum();
    b
}

struct Net {
    h: Node,
    t: Node,
    e: Node,
}

impl Net {
    fn new() -> Self {
        Self {
            h: headend(),
            t: transit(),
            e: tailend(),
        }
    }

    /// Subscriber of `isp` (1 untagged, 2 on VLAN 10) sends `ip`; returns what the ISP router gets.
    fn up(&mut self, isp: u8, ip: &[u8]) -> VecFrame {
        let mut frame = mac(H, 0).0.to_vec();
        frame.extend_from_slice(&mac(0xa + isp - 1, isp).0);
        if isp == 2 {
            frame.extend_from_slice(&[0x81, 0x00, 0x00, 10]);
        }
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(ip);
        let mut f = VecFrame::new(&frame);
        assert_eq!(step(&mut self.h, 0, &mut f), Verdict::Forward(1));
        assert_eq!(top_label(&f), 99 + u32::from(isp), "headend label");
        assert_eq!(step(&mut self.t, 0, &mut f), Verdict::Forward(1));
        assert_eq!(top_label(&f), 199 + u32::from(isp), "transit label");
        assert_eq!(step(&mut self.e, 0, &mut f), Verdict::Forward(1));
        f
    }

    /// The router of `isp` sends `ip` on its hand-off VLAN; returns what the subscriber gets.
    fn down(&mut self, isp: u8, ip: &[u8]) -> VecFrame {
        let mut frame = mac(E, 1).0.to_vec();
        frame.extend_from_slice(&mac(0xe, isp).0);
        frame.extend_from_slice(&[0x81, 0x00, 0x00, 10 + isp, 0x08, 0x00]);
        frame.extend_from_slice(ip);
        let mut f = VecFrame::new(&frame);
        assert_eq!(step(&mut self.e, 1, &mut f), Verdict::Forward(0));
        assert_eq!(top_label(&f), 399 + u32::from(isp), "tailend label");
        assert_eq!(step(&mut self.t, 1, &mut f), Verdict::Forward(0));
        assert_eq!(top_label(&f), 299 + u32::from(isp), "transit label");
        assert_eq!(step(&mut self.h, 1, &mut f), Verdict::Forward(0));
        f
    }
}

#[test]
fn both_isps_round_trip_through_three_nodes() {
    let mut net = Net::new();
    for isp in [1u8, 2] {
        let ip = ipv4(SUB, Ipv4Addr::new(198, 51, 100, 1), 64, 0, b"hello isp");
        let got = net.up(isp, &ip);
        let d = got.data();
        assert_eq!(&d[..6], &mac(0xe, isp).0, "ISP router MAC");
        assert_eq!(&d[6..12], &mac(E, 1).0);
        assert_eq!(&d[12..18], &[0x81, 0x00, 0x00, 10 + isp, 0x08, 0x00]);
        assert_eq!(&d[18..], &aged(&ip, 3)[..]);

        let ip = ipv4(
            Ipv4Addr::new(198, 51, 100, 1),
            SUB,
            64,
            0,
            b"hello subscriber",
        );
        let got = net.down(isp, &ip);
        let d = got.data();
        assert_eq!(
            &d[..6],
            &mac(0xa + isp - 1, isp).0,
            "subscriber MAC of this ISP"
        );
        let l3 = if isp == 2 {
            assert_eq!(&d[12..18], &[0x81, 0x00, 0x00, 10, 0x08, 0x00]);
            18
        } else {
            assert_eq!(&d[12..14], &[0x08, 0x00]);
            14
        };
        assert_eq!(&d[l3..], &aged(&ip, 3)[..]);
    }
    for i in 1..=2 {
        let h = net.h.counters().isp(i);
        let e = net.e.counters().isp(i);
        assert_eq!((h.headend_up.packets, h.headend_down.packets), (1, 1));
        assert_eq!((e.tailend_up.packets, e.tailend_down.packets), (1, 1));
        assert_eq!(h.headend_up.bytes, e.tailend_up.bytes);
        assert_eq!(h.headend_down.bytes, e.tailend_down.bytes);
    }
    assert_eq!(net.t.counters().worker.transit_packets, 4);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any payload, TTL and DSCP: delivered intact but for TTL − 3; headend and tailend
    /// count the same bytes per ISP and nothing under the other ISP.
    #[test]
    fn any_packet_survives_the_chain(
        packets in proptest::collection::vec((1u8..=2, 4u8..=255, any::<u8>(), proptest::collection::vec(any::<u8>(), 0..1400)), 1..8)
    ) {
        let mut net = Net::new();
        let mut sent = [0u64; 3];
        for (isp, ttl, tos, payload) in &packets {
            let ip = ipv4(SUB, Ipv4Addr::new(203, 0, 113, 9), *ttl, *tos, payload);
            let got = net.up(*isp, &ip);
            prop_assert_eq!(&got.data()[18..], &aged(&ip, 3)[..]);
            sent[usize::from(*isp)] += ip.len() as u64;
        }
        for i in 1..=2u16 {
            prop_assert_eq!(net.h.counters().isp(i).headend_up.bytes, sent[usize::from(i)]);
            prop_assert_eq!(net.e.counters().isp(i).tailend_up.bytes, sent[usize::from(i)]);
        }
    }
}
