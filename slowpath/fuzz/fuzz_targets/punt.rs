//! Any frame through the punt dispatch: classification and the ARP responder (on a port
//! that answers for its address and a proxied prefix, and on a routed port with a kernel
//! twin). No panic; an answer is an ARP reply of the request's length; a frame for the twin
//! is never also answered by the responder.
//!
//! `cargo +nightly fuzz run punt` (from `slowpath/`); in CI, the proptests of
//! `punt::tests` and `punt::arp::tests` check the same on random frames.
#![no_main]

use ispmux_dataplane::PortAddr;
use ispmux_dataplane::PortRole;
use ispmux_slowpath::punt::{classify, ArpResponder, Ingress, PortArp, Punted};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = classify(data, &Ingress::default());
    let port = PortArp {
        mac: ispmux_dataplane_mac(),
        address: Some([198, 18, 9, 1].into()),
        prefixes: "198.18.1.0/24".parse().into_iter().collect(),
        twin: None,
    };
    let routed = PortArp {
        twin: Some(PortAddr::new([198, 18, 9, 1].into(), 30)),
        ..port.clone()
    };
    let r = ArpResponder {
        ports: vec![port, routed],
    };
    for p in [0u16, 1] {
        let at = Ingress {
            role: Some(PortRole::Handoff),
            local: &[],
            port: r.ports.get(usize::from(p)),
        };
        let class = classify(data, &at);
        if let Some(reply) = r.answer(p, data) {
            assert_eq!(reply.len(), data.len());
            assert_ne!(class, Punted::Twin, "the responder and the twin both answer");
        }
    }
});

fn ispmux_dataplane_mac() -> ispmux_slowpath::dhcp::MacAddr {
    ispmux_slowpath::dhcp::MacAddr([2, 0, 0, 0, 0, 1])
}
