//! What the slow path does with a frame a worker punted, before any protocol engine runs:
//! sort it by what it carries and who owns it ([`classify`], the one place that decides:
//! the slow path's engines or the receive port's kernel twin), answer the ARP the slow path
//! owns ([`arp::ArpResponder`]), and turn the logon engine's binding changes into the fast
//! path's [`TableUpdate`]s ([`bindings`]). Sans-IO: frames and binding changes in, frames
//! to inject and table updates out; the rings, the mbufs and the update channel stay with
//! the caller.

pub mod arp;
pub mod bindings;

use ispmux_dataplane::wire::udp::DHCP_SERVER_PORT;
use ispmux_dataplane::wire::{skip_tags, EtherType, Ipv4Packet, UdpPacket};

pub use arp::{ArpResponder, PortArp};
pub use bindings::{binding_updates, BindingError};

/// What a punted frame carries, as far as the slow path's engines care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Punted {
    /// ARP the slow path's responder owns (the ARP responder answers it or not).
    Arp,
    /// A DHCP message to a server (UDP to port 67): the logon engine's.
    Dhcp,
    /// For the receive port's kernel twin: ARP the responder does not own (requests for
    /// the port's address, replies, announcements), IPv4 for the gateway itself
    /// ([`ispmux_dataplane::PortAddr::is_for`], the fast path's own test).
    Twin,
    /// Anything else: counted and freed.
    Other,
}

/// Sorts a frame punted from `port` (what the slow path knows of the receive port; `None`
/// when unknown) by what it carries, under up to two VLAN tags. A frame whose tags do not
/// parse (truncated, three tags) is `Other`: workers punt only frames they parsed, so that
/// is a counted oddity, not a case to serve.
pub fn classify(frame: &[u8], port: Option<&PortArp>) -> Punted {
    let Ok(tags) = skip_tags(frame) else {
        return Punted::Other;
    };
    let l3 = frame.get(tags.payload_offset..).unwrap_or(&[]);
    let twin = port.and_then(|p| p.twin);
    match tags.ethertype {
        EtherType::ARP => match port {
            Some(p) if !p.owns_arp(l3) => Punted::Twin,
            _ => Punted::Arp,
        },
        EtherType::IPV4 => {
            let ip = Ipv4Packet::new_checked(l3).ok();
            if let (Some(t), Some(ip)) = (twin, &ip) {
                if t.is_for(u32::from(ip.dst_addr())) {
                    return Punted::Twin;
                }
            }
            let dhcp = ip.filter(|ip| ip.protocol() == 17).and_then(|ip| {
                UdpPacket::new_checked(ip.payload())
                    .ok()
                    .map(|u| u.dst_port())
            }) == Some(DHCP_SERVER_PORT);
            if dhcp {
                Punted::Dhcp
            } else {
                Punted::Other
            }
        }
        _ => Punted::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ispmux_dataplane::PortAddr;

    /// A UDP datagram to `dport` under `tags`, with a valid IPv4 header length.
    fn udp_frame(tags: &[[u8; 4]], dport: u16) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        for t in tags {
            f.extend_from_slice(t);
        }
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]);
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&[0, 68]);
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&[0, 8, 0, 0]);
        f
    }

    #[test]
    fn finds_dhcp_under_vlan_tags() {
        assert_eq!(classify(&udp_frame(&[], 67), None), Punted::Dhcp);
        assert_eq!(
            classify(
                &udp_frame(&[[0x88, 0xa8, 0, 10], [0x81, 0, 0, 20]], 67),
                None
            ),
            Punted::Dhcp
        );
        assert_eq!(classify(&udp_frame(&[], 53), None), Punted::Other);
    }

    /// A routed port 198.18.9.1/30 with a twin, proxying 198.18.1.0/24.
    fn routed() -> ArpResponder {
        ArpResponder {
            ports: vec![PortArp {
                mac: ispmux_dataplane::wire::MacAddr([2, 0, 0, 3, 0, 2]),
                address: Some([198, 18, 9, 1].into()),
                prefixes: vec!["198.18.1.0/24".parse().expect("prefix")],
                twin: Some(PortAddr::new([198, 18, 9, 1].into(), 30)),
            }],
        }
    }

    /// An ARP packet (operation `op`) from 198.18.9.2 for `target`, broadcast.
    fn arp(op: u8, target: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 9, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, op]);
        f.extend_from_slice(&[2, 0, 0, 0, 0, 9, 198, 18, 9, 2]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&target);
        f
    }

    #[test]
    fn routed_ports_send_the_gateways_own_frames_to_the_twin() {
        let r = routed();
        let p = r.ports.first();
        assert_eq!(
            classify(&arp(1, [198, 18, 9, 1]), p),
            Punted::Twin,
            "own address"
        );
        assert_eq!(
            classify(&arp(1, [198, 18, 1, 7]), p),
            Punted::Arp,
            "proxied pool"
        );
        assert_eq!(
            classify(&arp(2, [198, 18, 9, 1]), p),
            Punted::Twin,
            "a reply"
        );
        assert_eq!(
            classify(&arp(1, [198, 18, 9, 2]), p),
            Punted::Twin,
            "gratuitous"
        );
        assert_eq!(
            classify(&arp(1, [198, 18, 9, 1]), None),
            Punted::Arp,
            "no twin"
        );
        // The responder answers exactly what goes to it.
        assert!(r.answer(0, &arp(1, [198, 18, 1, 7])).is_some());
        assert!(r.answer(0, &arp(1, [198, 18, 9, 1])).is_none());
        // IPv4: to the port's address, broadcast, link-local multicast.
        let mut to = udp_frame(&[], 179);
        for (dst, want) in [
            ([198, 18, 9, 1], Punted::Twin),
            ([198, 18, 9, 3], Punted::Twin),
            ([224, 0, 0, 2], Punted::Twin),
            ([198, 18, 9, 2], Punted::Other),
        ] {
            to[14 + 16..14 + 20].copy_from_slice(&dst);
            assert_eq!(classify(&to, p), want, "{dst:?}");
        }
        // DHCP to the gateway on a routed port is the kernel's too; elsewhere the engine's.
        let mut dhcp = udp_frame(&[], 67);
        dhcp[14 + 16..14 + 20].copy_from_slice(&[255; 4]);
        assert_eq!(classify(&dhcp, p), Punted::Twin);
        assert_eq!(classify(&dhcp, None), Punted::Dhcp);
    }

    #[test]
    fn arp_and_oddities() {
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        arp.extend_from_slice(&[0; 28]);
        assert_eq!(classify(&arp, None), Punted::Arp);
        assert_eq!(classify(&[0x08], None), Punted::Other, "truncated");
        let three = udp_frame(
            &[[0x88, 0xa8, 0, 10], [0x81, 0, 0, 20], [0x81, 0, 0, 30]],
            67,
        );
        assert_eq!(classify(&three, None), Punted::Other, "three tags");
        let mut short_ip = udp_frame(&[], 67);
        short_ip.truncate(14 + 20 + 2);
        assert_eq!(classify(&short_ip, None), Punted::Other, "UDP header cut");
        let mut tcp = udp_frame(&[], 67);
        tcp[14 + 9] = 6;
        assert_eq!(classify(&tcp, None), Punted::Other, "TCP to port 67");
    }

    proptest::proptest! {
        /// Any bytes: an answer, never a panic.
        #[test]
        fn classify_never_panics(f in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let _ = classify(&f, None);
            let _ = classify(&f, Some(&routed().ports[0]));
        }

        /// One place decides ARP on a routed port: whatever the frame, the responder and
        /// the twin's kernel never both get it to answer.
        #[test]
        fn responder_and_twin_never_both_answer(
            f in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            target in proptest::num::u8::ANY,
            op in 0u8..3,
            subnet in 0u8..3,
        ) {
            let r = routed();
            let mut req = arp(op, [198, 18, subnet, target]);
            let n = f.len().min(14);
            req[..n].copy_from_slice(&f[..n]);
            req[12..14].copy_from_slice(&[0x08, 0x06]);
            for frame in [&f[..], &req[..]] {
                let answered = r.answer(0, frame).is_some();
                let to_twin = classify(frame, r.ports.first()) == Punted::Twin;
                proptest::prop_assert!(!(answered && to_twin));
            }
        }
    }
}
