//! ARP answered by the slow path: for the prefixes a port proxies (an ISP's subscriber pool
//! on its hand-off port), so an ISP router on the hand-off link reaches its subscribers
//! through the tailend with no static neighbour entries, and for the port's own address on
//! a port without a kernel twin. On a port with a twin, its kernel answers for the port's
//! address and learns its neighbours: every ARP the responder does not own goes there
//! ([`super::classify`] decides, with [`PortArp::owns_arp`], so the two never both answer).
//! Subscribers' ARP is answered in the fast path (`dataplane::roles::access::arp`).

use std::net::Ipv4Addr;

use ispmux_conf::Ipv4Net;
use ispmux_dataplane::wire::{skip_tags, ArpOperation, ArpPacket, ArpRepr, EtherType, MacAddr};
use ispmux_dataplane::PortAddr;

/// What one port answers for.
#[derive(Clone, Debug, Default)]
pub struct PortArp {
    /// The port's MAC: the answer.
    pub mac: MacAddr,
    /// The port's own address.
    pub address: Option<Ipv4Addr>,
    /// Prefixes answered for.
    pub prefixes: Vec<Ipv4Net>,
    /// The port's kernel twin, with the destinations that are the gateway's on it (core
    /// and hand-off ports of a node pipeline): it answers for `address` instead.
    pub twin: Option<PortAddr>,
}

impl PortArp {
    fn owns(&self, ip: Ipv4Addr) -> bool {
        (self.twin.is_none() && self.address == Some(ip))
            || self.prefixes.iter().any(|p| p.contains(ip))
    }

    /// Whether the responder owns the ARP packet `arp` (after the link header): on a port
    /// with a twin, only requests for a proxied prefix; on one without, every ARP (it
    /// answers what it owns and ignores the rest, as before twins).
    pub fn owns_arp(&self, arp: &[u8]) -> bool {
        if self.twin.is_none() {
            return true;
        }
        let Some(req) = ArpPacket::new_checked(arp)
            .ok()
            .and_then(|p| ArpRepr::parse(&p).ok())
        else {
            return false;
        };
        req.operation == ArpOperation::Request
            && self
                .prefixes
                .iter()
                .any(|p| p.contains(req.target_protocol_addr))
    }
}

/// Per port index, what it answers for.
#[derive(Clone, Debug, Default)]
pub struct ArpResponder {
    /// By configuration port index.
    pub ports: Vec<PortArp>,
}

impl ArpResponder {
    /// The reply to `frame` (an ARP request received on `port`), if this port answers it.
    /// VLAN tags are kept, so the answer goes back on the request's VLAN.
    pub fn answer(&self, port: u16, frame: &[u8]) -> Option<Vec<u8>> {
        let p = self.ports.get(usize::from(port))?;
        let tags = skip_tags(frame).ok()?;
        if tags.ethertype != EtherType::ARP {
            return None;
        }
        let off = tags.payload_offset;
        let req = ArpRepr::parse(&ArpPacket::new_checked(frame.get(off..)?).ok()?).ok()?;
        let ask = req.target_protocol_addr;
        if req.operation != ArpOperation::Request
            || ask == req.source_protocol_addr
            || req.source_protocol_addr.is_unspecified()
            || !p.owns(ask)
        {
            return None;
        }
        let mut out = frame.to_vec();
        out[..6].copy_from_slice(&req.source_hardware_addr.0);
        out[6..12].copy_from_slice(&p.mac.0);
        let mut arp = ArpPacket::new_checked(&mut out[off..]).ok()?;
        arp.set_ethernet_ipv4(ArpOperation::Reply);
        arp.set_sender(p.mac, ask);
        arp.set_target(req.source_hardware_addr, req.source_protocol_addr);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT_MAC: MacAddr = MacAddr([2, 0, 0, 3, 0, 2]);
    const ROUTER: MacAddr = MacAddr([2, 0, 0, 0x0a, 0, 1]);

    /// An ARP request from the ISP router 198.18.1.2 for `target`, optionally VLAN-tagged.
    fn request(target: [u8; 4], vlan: Option<u16>) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&ROUTER.0);
        if let Some(v) = vlan {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&v.to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&ROUTER.0);
        f.extend_from_slice(&[198, 18, 1, 2]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&target);
        f
    }

    fn responder() -> ArpResponder {
        ArpResponder {
            ports: vec![
                PortArp::default(),
                PortArp {
                    mac: PORT_MAC,
                    address: Some(Ipv4Addr::new(198, 18, 9, 1)),
                    prefixes: vec!["198.18.1.64/26".parse().expect("prefix")],
                    twin: None,
                },
            ],
        }
    }

    #[test]
    fn answers_for_proxied_prefixes_and_own_address_only() {
        let r = responder();
        let reply = r
            .answer(1, &request([198, 18, 1, 77], Some(101)))
            .expect("in prefix");
        let mut want = ROUTER.0.to_vec();
        want.extend_from_slice(&PORT_MAC.0);
        want.extend_from_slice(&[0x81, 0x00, 0, 101, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
        want.extend_from_slice(&PORT_MAC.0);
        want.extend_from_slice(&[198, 18, 1, 77]);
        want.extend_from_slice(&ROUTER.0);
        want.extend_from_slice(&[198, 18, 1, 2]);
        assert_eq!(reply, want);
        assert!(
            r.answer(1, &request([198, 18, 9, 1], None)).is_some(),
            "own address"
        );
        assert!(
            r.answer(1, &request([198, 18, 1, 5], None)).is_none(),
            "outside the prefix"
        );
        assert!(
            r.answer(0, &request([198, 18, 1, 77], None)).is_none(),
            "port answers nothing"
        );
        assert!(
            r.answer(1, &request([198, 18, 1, 77], None)[..30])
                .is_none(),
            "truncated"
        );
        let mut reply_in = request([198, 18, 1, 77], None);
        reply_in[21] = 2;
        assert!(r.answer(1, &reply_in).is_none(), "replies are not answered");
    }

    #[test]
    fn with_a_twin_the_own_address_is_the_kernels() {
        let mut r = responder();
        r.ports[1].twin = Some(PortAddr::new(Ipv4Addr::new(198, 18, 9, 1), 30));
        assert!(
            r.answer(1, &request([198, 18, 9, 1], None)).is_none(),
            "own address: the twin's kernel answers"
        );
        assert!(r.answer(1, &request([198, 18, 1, 77], None)).is_some());
    }

    proptest::proptest! {
        /// Any frame: no panic; an answer keeps the request's length (tags included).
        #[test]
        fn any_frame_is_answered_in_kind_or_not_at_all(
            f in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
            target in proptest::num::u8::ANY,
        ) {
            let r = responder();
            let mut req = request([198, 18, 1, target], None);
            let n = f.len().min(req.len());
            req[..n].copy_from_slice(&f[..n]);
            for frame in [&f[..], &req[..]] {
                if let Some(reply) = r.answer(1, frame) {
                    proptest::prop_assert_eq!(reply.len(), frame.len());
                }
            }
        }
    }
}
