//! The classifier fuzz harness, shared by the cargo-fuzz target `classify` (`fuzz/`) and the
//! plain test that replays the seed corpus, so CI exercises the same code without libFuzzer.
//!
//! Input: the first byte picks the receive port (access, core, hand-off, second access,
//! unused), the rest is the frame. The harness runs the classifiers and the whole node and
//! asserts what must hold for any input: no panic, forwarded frames leave on a configured
//! port with a whole Ethernet header, punted frames reach the slow path unmodified.

use super::classify::{classify_access, classify_core, parse_l2};
use super::{Node, PortAddr, PortConfig, PortRole};
use crate::frame::{Frame, VecFrame};
use crate::pipeline::{Pipeline, Verdict};
use crate::table::preload::{
    FecPreload, HandoffPreload, IlmActionPreload, IlmPreload, IspPreload, SubscriberPreload,
};
use crate::table::{Limits, PreloadTables};
use crate::wire::MacAddr;
use std::net::Ipv4Addr;

const PORTS: u16 = 5;

fn mac(last: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, last])
}

/// The tables the harness runs against: two ISPs sharing subscriber address space, every
/// ILM action, subscribers untagged, on a VLAN and on QinQ.
pub fn preload() -> PreloadTables {
    let fec = |label, tc| FecPreload {
        label,
        tc,
        port: 1,
        next_hop: mac(0x11),
    };
    let isp = |id: u16, tc, vlan| IspPreload {
        id,
        name: String::new(),
        gateway: Some(Ipv4Addr::new(100, 64, 0, 1)),
        upstream: Some(fec(1000 + u32::from(id), tc)),
        downstream: Some(fec(2000 + u32::from(id), tc)),
        handoff: vec![HandoffPreload { port: 2, vlan }],
    };
    let ilm = |label, action| IlmPreload { label, action };
    let sub = |port, vlan, inner_vlan, last, isp, ip: Option<[u8; 4]>| SubscriberPreload {
        port,
        vlan,
        inner_vlan,
        mac: MacAddr([2, 0xaa, 0, 0, 0, last]),
        isp,
        ipv4: ip.map(Ipv4Addr::from),
    };
    PreloadTables {
        limits: Limits {
            max_subscribers: 64,
            max_isps: 4,
            max_labels: 16,
            max_handoffs: 4,
        },
        isps: vec![isp(1, 0, 101), isp(2, 5, 0)],
        ilm: vec![
            ilm(3001, IlmActionPreload::PopDeliver { isp: 1 }),
            ilm(3002, IlmActionPreload::PopDeliver { isp: 2 }),
            ilm(
                4001,
                IlmActionPreload::Swap {
                    out_label: 4002,
                    port: 1,
                    next_hop: mac(0x13),
                },
            ),
            ilm(
                5001,
                IlmActionPreload::PopHandoff {
                    isp: 1,
                    port: 2,
                    vlan: 101,
                    router_mac: mac(0xe1),
                },
            ),
            ilm(
                5002,
                IlmActionPreload::PopHandoff {
                    isp: 2,
                    port: 2,
                    vlan: 0,
                    router_mac: mac(0xe2),
                },
            ),
        ],
        subscribers: vec![
            sub(0, 0, 0, 1, 1, Some([100, 64, 0, 10])),
            sub(0, 10, 0, 2, 2, Some([100, 64, 0, 10])),
            sub(3, 100, 200, 3, 1, Some([100, 64, 0, 11])),
            sub(0, 0, 0, 4, 1, None),
        ],
    }
}

/// A node and its ports, built once and fed many inputs.
pub struct ClassifyHarness {
    node: Node,
}

impl Default for ClassifyHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl ClassifyHarness {
    /// The harness node (access 0, core 1, hand-off 2, access 3, unused 4).
    pub fn new() -> Self {
        let port = |role, last| PortConfig {
            role,
            mac: mac(last),
            mtu: 1500,
            address: PortAddr::NONE,
            implicit_null: None,
        };
        let ports = vec![
            port(PortRole::Access, 0xa0),
            port(PortRole::Core, 0xc1),
            port(PortRole::Handoff, 0xd2),
            port(PortRole::Access, 0xa3),
            port(PortRole::Unused, 0xff),
        ];
        let node = Node::from_preload(ports, &preload())
            .unwrap_or_else(|e| panic!("harness preload: {e}"));
        Self { node }
    }

    /// The harness node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Runs one input (port selector byte + frame); panics when an invariant breaks.
    pub fn run(&mut self, input: &[u8]) -> Option<Verdict> {
        let (&sel, frame) = input.split_first()?;
        let rx = u16::from(sel) % PORTS;
        if let Ok(l2) = parse_l2(frame) {
            assert!(l2.l3 <= frame.len(), "l3 offset past the frame");
            let _ = classify_access(frame, &l2);
            let _ = classify_core(frame, &l2);
        }
        let mut frames = [VecFrame::new(frame)];
        let mut v = [Verdict::Punt];
        self.node.process(rx, &mut frames, &mut v);
        match v[0] {
            Verdict::Forward(p) => {
                assert!(p < PORTS && p != 4, "forwarded to port {p}");
                assert!(frames[0].len() >= 14, "forwarded a runt");
            }
            Verdict::Punt => assert_eq!(frames[0].data(), frame, "punted frame was modified"),
            Verdict::Drop(_) => {}
        }
        Some(v[0])
    }
}
