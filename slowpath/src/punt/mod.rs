//! What the slow path does with a frame a worker punted, before any protocol engine runs:
//! sort it by what it carries ([`classify`]), answer the ARP the slow path owns
//! ([`arp::ArpResponder`]), and turn the logon engine's binding changes into the fast
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
    /// ARP (the ARP responder answers it or not).
    Arp,
    /// A DHCP message to a server (UDP to port 67): the logon engine's.
    Dhcp,
    /// Anything else: counted and freed.
    Other,
}

/// Sorts a punted frame by what it carries, under up to two VLAN tags. A frame whose tags
/// do not parse (truncated, three tags) is `Other`: workers punt only frames they parsed,
/// so that is a counted oddity, not a case to serve.
pub fn classify(frame: &[u8]) -> Punted {
    let Ok(tags) = skip_tags(frame) else {
        return Punted::Other;
    };
    let l3 = frame.get(tags.payload_offset..).unwrap_or(&[]);
    match tags.ethertype {
        EtherType::ARP => Punted::Arp,
        EtherType::IPV4 => {
            let dhcp = Ipv4Packet::new_checked(l3)
                .ok()
                .filter(|ip| ip.protocol() == 17)
                .and_then(|ip| {
                    UdpPacket::new_checked(ip.payload())
                        .ok()
                        .map(|u| u.dst_port())
                })
                == Some(DHCP_SERVER_PORT);
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
        assert_eq!(classify(&udp_frame(&[], 67)), Punted::Dhcp);
        assert_eq!(
            classify(&udp_frame(&[[0x88, 0xa8, 0, 10], [0x81, 0, 0, 20]], 67)),
            Punted::Dhcp
        );
        assert_eq!(classify(&udp_frame(&[], 53)), Punted::Other);
    }

    #[test]
    fn arp_and_oddities() {
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        arp.extend_from_slice(&[0; 28]);
        assert_eq!(classify(&arp), Punted::Arp);
        assert_eq!(classify(&[0x08]), Punted::Other, "truncated");
        let three = udp_frame(
            &[[0x88, 0xa8, 0, 10], [0x81, 0, 0, 20], [0x81, 0, 0, 30]],
            67,
        );
        assert_eq!(classify(&three), Punted::Other, "three tags");
        let mut short_ip = udp_frame(&[], 67);
        short_ip.truncate(14 + 20 + 2);
        assert_eq!(classify(&short_ip), Punted::Other, "UDP header cut");
        let mut tcp = udp_frame(&[], 67);
        tcp[14 + 9] = 6;
        assert_eq!(classify(&tcp), Punted::Other, "TCP to port 67");
    }

    proptest::proptest! {
        /// Any bytes: an answer, never a panic.
        #[test]
        fn classify_never_panics(f in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let _ = classify(&f);
        }
    }
}
