//! Any frame through the punt dispatch: classification and the ARP responder (on a port
//! that answers for its address and a proxied prefix). No panic; an answer is an ARP reply
//! of the request's length.
//!
//! `cargo +nightly fuzz run punt` (from `slowpath/`); in CI, the proptests of
//! `punt::tests` and `punt::arp::tests` check the same on random frames.
#![no_main]

use ispmux_slowpath::punt::{classify, ArpResponder, Ingress, PortArp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = classify(data, &Ingress::default());
    let r = ArpResponder {
        ports: vec![PortArp {
            mac: ispmux_dataplane_mac(),
            address: Some([198, 18, 9, 1].into()),
            prefixes: "198.18.1.0/24".parse().into_iter().collect(),
        }],
    };
    if let Some(reply) = r.answer(0, data) {
        assert_eq!(reply.len(), data.len());
    }
});

fn ispmux_dataplane_mac() -> ispmux_slowpath::dhcp::MacAddr {
    ispmux_slowpath::dhcp::MacAddr([2, 0, 0, 0, 0, 1])
}
