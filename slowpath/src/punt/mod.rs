//! What the slow path does with a frame a worker punted, before any protocol engine runs:
//! sort it by what it carries, where it came from and who owns it ([`classify`], the one
//! place that decides: the slow path's engines or the receive port's kernel twin), answer
//! the ARP the slow path owns ([`arp::ArpResponder`]), and turn the logon engine's binding
//! changes into the fast
//! path's [`TableUpdate`]s ([`bindings`]). Sans-IO: frames and binding changes in, frames
//! to inject and table updates out; the rings, the mbufs and the update channel stay with
//! the caller.

pub mod arp;
pub mod bindings;

use std::net::Ipv4Addr;

use ispmux_dataplane::wire::udp::DHCP_SERVER_PORT;
use ispmux_dataplane::wire::{skip_tags, EtherType, Ipv4Packet, MplsPacket, UdpPacket};
use ispmux_dataplane::PortRole;

use crate::icmp::Trigger;

pub use arp::{ArpResponder, PortArp};
pub use bindings::{binding_updates, BindingError};

/// What a punted frame carries, as far as the slow path's engines care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Punted {
    /// ARP the slow path's responder owns (the ARP responder answers it or not).
    Arp,
    /// A DHCP message to a server (UDP to port 67): the logon engine's.
    Dhcp,
    /// A packet the fast path could not forward for a reason ICMP reports
    /// ([`crate::icmp::answer`]).
    Icmp(Trigger),
    /// For the receive port's kernel twin: ARP the responder does not own (requests for
    /// the port's address, replies, announcements), IPv4 for the gateway itself
    /// ([`ispmux_dataplane::PortAddr::is_for`], the fast path's own test).
    Twin,
    /// Anything else: counted and freed.
    Other,
}

/// Where a punted frame came from, as far as sorting it needs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ingress<'a> {
    /// The role of the port it arrived on (`None`: not known).
    pub role: Option<PortRole>,
    /// The node's own unicast addresses (its ports', its ISPs' gateways): a packet to one
    /// of them was punted for the node itself, whatever its TTL or size.
    pub local: &'a [Ipv4Addr],
    /// What the ARP responder knows of the port, its twin included (`None`: not known).
    pub port: Option<&'a PortArp>,
}

/// Sorts a punted frame by what it carries, under up to two VLAN tags, and by the port it
/// came from (`at`). A frame whose tags do not parse (truncated, three tags) is `Other`:
/// workers punt only frames they parsed, so that is a counted oddity, not a case to serve.
///
/// Why a frame was punted for ICMP is read back from the frame, as the fast path decided
/// it ([`ispmux_dataplane::roles::Cx::icmp_punt`]): on a core port, a labelled frame is
/// punted only when its label TTL (or the IPv4 TTL under a last label) expired; on an
/// access or hand-off port, an IPv4 packet to someone else than the node is punted only
/// when its TTL expired here or, DF set, it does not fit behind the label.
pub fn classify(frame: &[u8], at: &Ingress<'_>) -> Punted {
    let Ok(tags) = skip_tags(frame) else {
        return Punted::Other;
    };
    let l3 = frame.get(tags.payload_offset..).unwrap_or(&[]);
    match tags.ethertype {
        EtherType::ARP => match at.port {
            Some(p) if !p.owns_arp(l3) => Punted::Twin,
            _ => Punted::Arp,
        },
        EtherType::MPLS_UNICAST if at.role == Some(PortRole::Core) => {
            if label_ttl_expired(l3) {
                Punted::Icmp(Trigger::TtlExpired)
            } else {
                Punted::Other
            }
        }
        EtherType::IPV4 => {
            let Ok(ip) = Ipv4Packet::new_checked(l3) else {
                return Punted::Other;
            };
            if at
                .port
                .and_then(|p| p.twin)
                .is_some_and(|t| t.is_for(u32::from(ip.dst_addr())))
            {
                return Punted::Twin;
            }
            let dhcp = ip.protocol() == 17
                && UdpPacket::new_checked(ip.payload())
                    .ok()
                    .map(|u| u.dst_port())
                    == Some(DHCP_SERVER_PORT);
            if dhcp {
                return Punted::Dhcp;
            }
            let dst = ip.dst_addr();
            let forwarded = matches!(at.role, Some(PortRole::Access | PortRole::Handoff))
                && !at.local.contains(&dst)
                && !dst.is_multicast()
                && !dst.is_broadcast();
            match forwarded {
                true if ip.ttl() <= 1 => Punted::Icmp(Trigger::TtlExpired),
                true if ip.dont_frag() => Punted::Icmp(Trigger::TooBig),
                _ => Punted::Other,
            }
        }
        _ => Punted::Other,
    }
}

/// True when the top label's TTL is spent, or the last label's is not and the IPv4 TTL
/// under it is (the pop's checks, `dataplane::roles::core`).
fn label_ttl_expired(stack: &[u8]) -> bool {
    let Ok(top) = MplsPacket::new_checked(stack) else {
        return false;
    };
    if top.ttl() <= 1 {
        return true;
    }
    top.bottom_of_stack()
        && Ipv4Packet::new_checked(top.payload()).is_ok_and(|ip| ip.version() == 4 && ip.ttl() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ispmux_dataplane::PortAddr;

    const ACCESS: Ingress<'static> = Ingress {
        role: Some(PortRole::Access),
        local: &[],
        port: None,
    };

    /// Arrived on routed port `p` (a hand-off port with a twin).
    fn on(p: Option<&PortArp>) -> Ingress<'_> {
        Ingress {
            role: Some(PortRole::Handoff),
            local: &[],
            port: p,
        }
    }

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
        assert_eq!(classify(&udp_frame(&[], 67), &ACCESS), Punted::Dhcp);
        assert_eq!(
            classify(
                &udp_frame(&[[0x88, 0xa8, 0, 10], [0x81, 0, 0, 20]], 67),
                &ACCESS
            ),
            Punted::Dhcp
        );
        assert_eq!(classify(&udp_frame(&[], 53), &ACCESS), Punted::Other);
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
            classify(&arp(1, [198, 18, 9, 1]), &on(p)),
            Punted::Twin,
            "own address"
        );
        assert_eq!(
            classify(&arp(1, [198, 18, 1, 7]), &on(p)),
            Punted::Arp,
            "proxied pool"
        );
        assert_eq!(
            classify(&arp(2, [198, 18, 9, 1]), &on(p)),
            Punted::Twin,
            "a reply"
        );
        assert_eq!(
            classify(&arp(1, [198, 18, 9, 2]), &on(p)),
            Punted::Twin,
            "gratuitous"
        );
        assert_eq!(
            classify(&arp(1, [198, 18, 9, 1]), &ACCESS),
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
            assert_eq!(classify(&to, &on(p)), want, "{dst:?}");
        }
        // DHCP to the gateway on a routed port is the kernel's too; elsewhere the engine's.
        let mut dhcp = udp_frame(&[], 67);
        dhcp[14 + 16..14 + 20].copy_from_slice(&[255; 4]);
        assert_eq!(classify(&dhcp, &on(p)), Punted::Twin);
        assert_eq!(classify(&dhcp, &ACCESS), Punted::Dhcp);
    }

    #[test]
    fn arp_and_oddities() {
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        arp.extend_from_slice(&[0; 28]);
        assert_eq!(classify(&arp, &ACCESS), Punted::Arp);
        assert_eq!(classify(&[0x08], &ACCESS), Punted::Other, "truncated");
        let three = udp_frame(
            &[[0x88, 0xa8, 0, 10], [0x81, 0, 0, 20], [0x81, 0, 0, 30]],
            67,
        );
        assert_eq!(classify(&three, &ACCESS), Punted::Other, "three tags");
        let mut short_ip = udp_frame(&[], 67);
        short_ip.truncate(14 + 20 + 2);
        assert_eq!(
            classify(&short_ip, &ACCESS),
            Punted::Other,
            "UDP header cut"
        );
        let mut tcp = udp_frame(&[], 67);
        tcp[14 + 9] = 6;
        assert_eq!(classify(&tcp, &ACCESS), Punted::Other, "TCP to port 67");
    }

    /// IPv4 198.18.1.10 → `dst` with this TTL and flags byte, UDP to port 33434, untagged.
    fn probe(dst: [u8; 4], ttl: u8, flags: u8) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 0xa0, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        f.extend_from_slice(&[
            0x45, 0, 0, 28, 0, 1, flags, 0, ttl, 17, 0, 0, 198, 18, 1, 10,
        ]);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&[0x9c, 0x40, 0x82, 0x9a, 0, 8, 0, 0]);
        f
    }

    #[test]
    fn icmp_triggers_by_port_role_and_destination() {
        let far = [198, 18, 1, 2];
        let gw = Ipv4Addr::new(198, 18, 1, 1);
        let at = |role| Ingress {
            role: Some(role),
            local: std::slice::from_ref(&gw),
            port: None,
        };
        let expired = Punted::Icmp(Trigger::TtlExpired);
        let too_big = Punted::Icmp(Trigger::TooBig);
        for role in [PortRole::Access, PortRole::Handoff] {
            assert_eq!(classify(&probe(far, 1, 0), &at(role)), expired);
            assert_eq!(classify(&probe(far, 0, 0x40), &at(role)), expired);
            assert_eq!(classify(&probe(far, 9, 0x40), &at(role)), too_big);
            assert_eq!(classify(&probe(far, 9, 0), &at(role)), Punted::Other);
            // For the node itself (its ISP gateway address): not an error to answer.
            assert_eq!(
                classify(&probe(gw.octets(), 1, 0x40), &at(role)),
                Punted::Other
            );
            // To a group: never answered (RFC 1812 section 4.3.2.7), left to others.
            assert_eq!(
                classify(&probe([224, 0, 0, 2], 1, 0), &at(role)),
                Punted::Other
            );
        }
        // Unlabelled on a core port is for the node (its twin), whatever the TTL.
        assert_eq!(
            classify(&probe(far, 1, 0x40), &at(PortRole::Core)),
            Punted::Other
        );
        // Labelled: top TTL 1, or bottom label fine over IPv4 TTL 0.
        let labelled = |lse: [u8; 4], ttl: u8| {
            let p = probe(far, ttl, 0);
            let mut f = p[..12].to_vec();
            f.extend_from_slice(&[0x88, 0x47]);
            f.extend_from_slice(&lse);
            f.extend_from_slice(&p[14..]);
            f
        };
        let core = at(PortRole::Core);
        assert_eq!(classify(&labelled([0, 0x7d, 0x11, 1], 9), &core), expired);
        assert_eq!(classify(&labelled([0, 0x7d, 0x11, 9], 0), &core), expired);
        assert_eq!(
            classify(&labelled([0, 0x7d, 0x11, 9], 9), &core),
            Punted::Other
        );
        assert_eq!(
            classify(&labelled([0, 0x7d, 0x11, 1], 9), &ACCESS),
            Punted::Other
        );
    }

    proptest::proptest! {
        /// Any bytes: an answer, never a panic.
        #[test]
        fn classify_never_panics(f in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            for role in [None, Some(PortRole::Access), Some(PortRole::Core), Some(PortRole::Handoff)] {
                let _ = classify(&f, &Ingress { role, local: &[], port: None });
                let _ = classify(&f, &Ingress { role, local: &[], port: Some(&routed().ports[0]) });
            }
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
                let to_twin = classify(frame, &on(r.ports.first())) == Punted::Twin;
                proptest::prop_assert!(!(answered && to_twin));
            }
        }
    }
}
