//! The checks of the `icmp` fuzz target, shared with a corpus test so CI runs them on stable
//! Rust: any punted frame through [`crate::punt::classify`] and [`super::answer`] on a node
//! with every role (the known-answer tests' node). Panics are the point: a panic is a
//! finding.

use std::net::Ipv4Addr;

use ispmux_dataplane::table::preload::{
    FecPreload, HandoffPreload, IlmActionPreload as A, IlmPreload, IspPreload, SubscriberPreload,
};
use ispmux_dataplane::table::{Limits, Tables};
use ispmux_dataplane::wire::{skip_tags, EtherType, IcmpPacket, Ipv4Packet, MplsPacket};
use ispmux_dataplane::{PortAddr, PortConfig, PortRole, PreloadTables};

use super::{answer, Site, Trigger};
use crate::punt::{classify, Ingress};

/// The node: port 0 access, 1 core (10.0.12.2), 2 hand-off (198.18.254.1), 3 core; ISP 1
/// with gateway 198.18.1.1, labels up 1001 and down 3001 on port 1, hand-off VLAN 101 on port
/// 2; ILM 2001 swap to 2002 on port 3, 5001 pop to the hand-off, 4001 pop to subscribers;
/// subscribers 198.18.1.10 untagged and 198.18.1.11 on QinQ 100/200 on port 0.
pub fn node() -> (Vec<PortConfig>, Tables) {
    (ports(), tables())
}

fn mac(s: &str) -> ispmux_dataplane::wire::MacAddr {
    s.parse().expect("mac")
}

fn ports() -> Vec<PortConfig> {
    let p = |role, m: &str, address| PortConfig {
        role,
        mac: mac(m),
        mtu: 1500,
        address,
        implicit_null: None,
    };
    let none = PortAddr::NONE;
    vec![
        p(PortRole::Access, "02:00:00:00:00:a0", none),
        p(
            PortRole::Core,
            "02:00:00:00:00:c1",
            PortAddr::new(Ipv4Addr::new(10, 0, 12, 2), 30),
        ),
        p(
            PortRole::Handoff,
            "02:00:00:00:00:d2",
            PortAddr::new(Ipv4Addr::new(198, 18, 254, 1), 24),
        ),
        p(PortRole::Core, "02:00:00:00:00:c3", none),
    ]
}

fn tables() -> Tables {
    let fec = |label, next_hop| FecPreload {
        label,
        tc: 0,
        port: 1,
        next_hop: mac(next_hop),
    };
    let sub = |vlan, inner_vlan, m, last| SubscriberPreload {
        port: 0,
        vlan,
        inner_vlan,
        mac: mac(m),
        isp: 1,
        ipv4: Some(Ipv4Addr::new(198, 18, 1, last)),
    };
    let ilm = |label, action| IlmPreload { label, action };
    PreloadTables {
        limits: Limits {
            max_subscribers: 64,
            max_isps: 4,
            ..Limits::default()
        },
        isps: vec![IspPreload {
            id: 1,
            name: "red".into(),
            gateway: Some(Ipv4Addr::new(198, 18, 1, 1)),
            upstream: Some(fec(1001, "02:00:00:00:01:01")),
            downstream: Some(fec(3001, "02:00:00:00:01:02")),
            handoff: vec![HandoffPreload { port: 2, vlan: 101 }],
        }],
        ilm: vec![
            ilm(
                2001,
                A::Swap {
                    out_label: 2002,
                    port: 3,
                    next_hop: mac("02:00:00:00:03:01"),
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
            ilm(4001, A::PopDeliver { isp: 1 }),
        ],
        subscribers: vec![
            sub(0, 0, "02:aa:00:00:00:01", 10),
            sub(100, 200, "02:cc:00:00:00:03", 11),
        ],
    }
    .build()
    .expect("tables")
}

/// One fuzz input: the first byte picks the receive port (low 3 bits) and the trigger
/// (bit 3), the rest is the punted frame. What is answered must leave on a node port as a
/// well-formed frame: link header, any labels, IPv4 with good checksums and at most 576
/// bytes, ICMP with a good checksum.
pub fn exercise(data: &[u8]) {
    thread_local! {
        static NODE: (Vec<PortConfig>, Tables) = node();
    }
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let rx = u16::from(sel & 7);
    let why = if sel & 8 == 0 {
        Trigger::TtlExpired
    } else {
        Trigger::TooBig
    };
    NODE.with(|(ports, tables)| {
        let local = [Ipv4Addr::new(198, 18, 1, 1), Ipv4Addr::new(10, 0, 12, 2)];
        let role = ports.get(usize::from(rx)).map(|p| p.role);
        let _ = classify(
            frame,
            &Ingress {
                role,
                local: &local,
                port: None,
            },
        );
        let site = Site { ports, tables };
        let Ok(a) = answer(&site, rx, frame, why, 1) else {
            return;
        };
        assert!(usize::from(a.port) < ports.len(), "port {}", a.port);
        let tags = skip_tags(&a.frame).expect("link header");
        let mut l3 = tags.payload_offset;
        if tags.ethertype == EtherType::MPLS_UNICAST {
            loop {
                let e = MplsPacket::new_checked(&a.frame[l3..]).expect("label");
                l3 += 4;
                if e.bottom_of_stack() {
                    break;
                }
            }
        } else {
            assert_eq!(tags.ethertype, EtherType::IPV4);
        }
        let ip = Ipv4Packet::new_checked(&a.frame[l3..]).expect("ipv4");
        assert!(ip.verify_checksum() && usize::from(ip.total_len()) <= 576);
        assert_eq!(a.frame.len(), l3 + usize::from(ip.total_len()));
        assert_eq!(ip.dst_addr(), a.to);
        let icmp = IcmpPacket::new_checked(ip.payload()).expect("icmp");
        assert!(icmp.verify_checksum());
    });
}
