//! The DHCP DISCOVER flood of `perf/run punt-flood`: DISCOVERs from unknown MACs mixed into
//! a headend benchmark's capture, one frame in every `k`, and their twins for the anchor.
//!
//! A twin is the same frame (same MAC, size and place in the capture) sent to UDP port 9
//! (discard) instead of 67: the headend drops it as `unknown_mac` in the worker, where it
//! punts the DISCOVER. Both captures thus cost the worker the same receive, parse and
//! lookup per frame; what differs is only what a storm adds (the punt ring, the slow path
//! taking a million frames a second on the other core, the logon engine refusing them).

use std::net::Ipv4Addr;

use ispmux_dataplane::wire::udp::{DHCP_CLIENT_PORT, DHCP_SERVER_PORT};
use ispmux_dataplane::wire::{
    ipv4::protocol, EtherType, EthernetFrame, EthernetRepr, Ipv4Packet, Ipv4Repr, MacAddr,
    UdpPacket, UdpRepr,
};
use ispmux_slowpath::dhcp::{MacAddr as DhcpMac, Message, MessageType};

/// UDP discard (RFC 863): where the anchor's twins go.
pub const DISCARD_PORT: u16 = 9;

/// Flood source `i`: a distinct locally administered unicast MAC 06:00:…, so never one of
/// the synthetic subscribers' 02:00:… (`ispmux_dataplane::synthetic::subscriber`).
pub fn flood_mac(i: u32) -> MacAddr {
    // An odd multiplier and a rotation are bijections on u32: distinct i, distinct MACs.
    let scattered = i.wrapping_mul(0x9e37_79b1).rotate_left(16);
    MacAddr::from_u64(0x0600_0000_0000 | u64::from(scattered))
}

/// A DHCPDISCOVER as a client without an address broadcasts it (RFC 2131 §4.4.1):
/// 0.0.0.0:68 → 255.255.255.255:67 from `mac`, chaddr `mac`, transaction `xid`; 342 bytes.
pub fn discover(mac: MacAddr, xid: u32) -> Vec<u8> {
    broadcast_from_client(mac, xid, DHCP_SERVER_PORT)
}

/// [`discover`]'s twin for the anchor: the same bytes but the UDP destination port,
/// [`DISCARD_PORT`].
pub fn discard_twin(mac: MacAddr, xid: u32) -> Vec<u8> {
    broadcast_from_client(mac, xid, DISCARD_PORT)
}

fn broadcast_from_client(mac: MacAddr, xid: u32, dst_port: u16) -> Vec<u8> {
    let payload = Message::new_request(DhcpMac(mac.0), xid, MessageType::Discover).encode();
    let (src, dst) = (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST);
    let udp = UdpRepr {
        src_port: DHCP_CLIENT_PORT,
        dst_port,
        payload_len: payload.len() as u16,
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: protocol::UDP,
        payload_len: (udp.buffer_len() + payload.len()) as u16,
        ttl: 64,
        dscp_ecn: 0,
        ident: 0,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
    };
    let eth = EthernetRepr {
        src_addr: mac,
        dst_addr: MacAddr::BROADCAST,
        ethertype: EtherType::IPV4,
    };
    let headers = eth.buffer_len() + ip.buffer_len() + udp.buffer_len();
    let mut f = vec![0u8; headers];
    f.extend_from_slice(&payload);
    let mut e = EthernetFrame::new_unchecked(&mut f[..]);
    // The buffer is sized from the headers' own lengths: none of the emits can fail.
    let _ = eth.emit(&mut e);
    let mut p = Ipv4Packet::new_unchecked(e.payload_mut());
    let _ = ip.emit(&mut p);
    let mut u = UdpPacket::new_unchecked(p.payload_mut());
    let _ = udp.emit(&mut u);
    u.fill_checksum(src, dst);
    f
}

/// One frame in how many carries the flood, so that it arrives at `flood_mpps` while the
/// worker takes `worker_mpps` frames in all (at least 2: one subscriber frame per flood
/// frame).
pub fn flood_every(worker_mpps: f64, flood_mpps: f64) -> u32 {
    if !(worker_mpps.is_finite() && flood_mpps.is_finite() && flood_mpps > 0.0) {
        return 2;
    }
    (worker_mpps / flood_mpps)
        .round()
        .clamp(2.0, f64::from(u32::MAX)) as u32
}

/// `frames` with one frame of `extra(j)` (j = 0, 1, …) after every `every - 1` of them: one
/// frame in `every` is extra, spread evenly, so every burst carries its share.
pub fn interleave<'a>(
    frames: impl IntoIterator<Item = Vec<u8>> + 'a,
    every: u32,
    mut extra: impl FnMut(u32) -> Vec<u8> + 'a,
) -> impl Iterator<Item = Vec<u8>> + 'a {
    let run = every.max(2) - 1;
    let mut j = 0u32;
    frames.into_iter().enumerate().flat_map(move |(i, f)| {
        let more = (i as u64 + 1).is_multiple_of(u64::from(run)).then(|| {
            j += 1;
            extra(j - 1)
        });
        std::iter::once(f).chain(more)
    })
}

/// Counter `name` in ispmux's exit report line starting with `line` (`drops`, `slowpath`,
/// `workers`): those lines are `LINE name value name value …`.
pub fn report_counter(report: &str, line: &str, name: &str) -> Option<u64> {
    let l = report
        .lines()
        .find(|l| l.split_whitespace().next() == Some(line))?;
    let w: Vec<&str> = l.split_whitespace().skip(1).collect();
    w.chunks_exact(2)
        .find(|kv| kv[0] == name)
        .and_then(|kv| kv[1].parse().ok())
}

/// The logon engine's refusals, and its drops of every reason summed, from the exit
/// report's `dhcp {...}` line (the proxy's counters by name, drops as `drop_<reason>`): what
/// a DHCP flood turns into once it is past the punt ring.
pub fn dhcp_refused_and_dropped(report: &str) -> Option<(u64, u64)> {
    let json = report.lines().find_map(|l| l.strip_prefix("dhcp "))?;
    let m: std::collections::BTreeMap<String, u64> = serde_json::from_str(json).ok()?;
    let drops = m
        .iter()
        .filter(|(k, _)| k.starts_with("drop_"))
        .map(|(_, v)| v)
        .sum();
    Some((m.get("refusals").copied().unwrap_or(0), drops))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ispmux_dataplane::roles::{Node, PortAddr, PortConfig, PortRole};
    use ispmux_dataplane::synthetic::{self, Spec};
    use ispmux_dataplane::{DropReason, Pipeline, VecFrame, Verdict};
    use ispmux_slowpath::dhcp::frame::parse_punt;
    use ispmux_slowpath::punt::{classify, Ingress, Punted};

    const MAC: MacAddr = MacAddr([0x06, 0, 0x12, 0x34, 0x56, 0x78]);

    #[test]
    fn a_discover_is_what_the_slow_path_parses_as_one() {
        let f = discover(MAC, 0xdead_beef);
        assert_eq!(f.len(), 14 + 20 + 8 + 300, "a minimum-size BOOTP message");
        // Known bytes: broadcast from MAC, IPv4, 0.0.0.0:68 → 255.255.255.255:67.
        assert_eq!(&f[..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &MAC.0);
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        assert_eq!(&f[26..34], &[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(&f[34..38], &[0, 68, 0, 67]);
        let ip = Ipv4Packet::new_checked(&f[14..]).expect("ipv4");
        assert!(ip.verify_checksum());
        let udp = UdpPacket::new_checked(ip.payload()).expect("udp");
        assert!(udp.verify_checksum(ip.src_addr(), ip.dst_addr()));

        assert_eq!(classify(&f, &Ingress::default()), Punted::Dhcp);
        let p = parse_punt(&f).expect("the logon engine's frame parser takes it");
        assert_eq!((p.src_mac.0, p.vlan, p.inner_vlan), (MAC.0, 0, 0));
        assert_eq!(p.src_ip, Ipv4Addr::UNSPECIFIED);
        let m = Message::decode(p.payload).expect("a DHCP message");
        assert_eq!(m.message_type(), Some(MessageType::Discover));
        assert_eq!(m.client_mac().map(|c| c.0), Some(MAC.0));
        assert_eq!(m.xid, 0xdead_beef);
        assert!(m.giaddr.is_unspecified() && m.option(82).is_none());
    }

    #[test]
    fn the_twin_differs_only_in_its_port_and_checksum() {
        let (d, t) = (discover(MAC, 7), discard_twin(MAC, 7));
        assert_eq!(d.len(), t.len());
        let differ: Vec<usize> = (0..d.len()).filter(|&i| d[i] != t[i]).collect();
        assert!(
            differ
                .iter()
                .all(|i| (36..38).contains(i) || (40..42).contains(i)),
            "bytes {differ:?}"
        );
        assert_eq!(&t[36..38], &[0, 9]);
        assert_eq!(classify(&t, &Ingress::default()), Punted::Other);
        assert!(parse_punt(&t).is_err());
    }

    /// The anchor's premise: on the access port of a headend with the synthetic
    /// subscribers, a worker punts the DISCOVER and drops its twin as an unknown MAC,
    /// while the subscribers' frames around them are forwarded.
    #[test]
    fn the_headend_punts_the_flood_and_drops_the_twins() {
        let spec = Spec {
            subscribers: 1_000,
            isps: 4,
            access_port: 0,
            core_port: 1,
            qinq: false,
        };
        let port_mac = MacAddr([2, 0, 0, 0, 0, 0xa0]);
        let ports = vec![
            PortConfig {
                role: PortRole::Access,
                mac: port_mac,
                mtu: 1500,
                address: PortAddr::NONE,
                implicit_null: None,
            },
            PortConfig {
                role: PortRole::Core,
                mac: MacAddr([2, 0, 0, 0, 0, 0xc1]),
                mtu: 1500,
                address: PortAddr::NONE,
                implicit_null: None,
            },
        ];
        let mut node = Node::from_preload(
            ports,
            &synthetic::preload(&spec, MacAddr([2, 0, 0, 0, 1, 1])),
        )
        .expect("preload");
        for (twin, expect) in [
            (false, Verdict::Punt),
            (true, Verdict::Drop(DropReason::UnknownMac)),
        ] {
            let subs = (0..64).map(|i| synthetic::upstream_frame(&spec, i, port_mac, 64));
            let mixed: Vec<Vec<u8>> = interleave(subs, 16, |j| {
                if twin {
                    discard_twin(flood_mac(j), j)
                } else {
                    discover(flood_mac(j), j)
                }
            })
            .collect();
            let mut frames: Vec<VecFrame> = mixed.iter().map(|f| VecFrame::new(f)).collect();
            let mut v = vec![Verdict::Punt; frames.len()];
            node.process(0, &mut frames, &mut v);
            for (i, v) in v.iter().enumerate() {
                let want = if (i + 1) % 16 == 0 {
                    expect
                } else {
                    Verdict::Forward(1)
                };
                assert_eq!(*v, want, "frame {i}, twins {twin}");
            }
        }
    }

    #[test]
    fn one_frame_in_every_k_is_extra() {
        let subs = (0..45u8).map(|i| vec![i]);
        let out: Vec<Vec<u8>> = interleave(subs, 16, |j| vec![200 + j as u8]).collect();
        assert_eq!(out.len(), 48);
        for (i, f) in out.iter().enumerate() {
            if (i + 1) % 16 == 0 {
                assert_eq!(f[0], 200 + (i / 16) as u8, "extra frame {i}");
            } else {
                assert!(f[0] < 200, "frame {i}");
            }
        }
        // The subscribers' frames keep their order.
        let kept: Vec<u8> = out.iter().map(|f| f[0]).filter(|&b| b < 200).collect();
        assert_eq!(kept, (0..45).collect::<Vec<u8>>());
    }

    #[test]
    fn flood_share_follows_the_workers_rate() {
        assert_eq!(flood_every(15.2, 1.0), 15);
        assert_eq!(flood_every(8.0, 0.5), 16);
        assert_eq!(
            flood_every(1.0, 1.0),
            2,
            "at least one subscriber frame per flood frame"
        );
        assert_eq!(flood_every(f64::NAN, 1.0), 2);
        assert_eq!(flood_every(15.0, 0.0), 2);
    }

    #[test]
    fn reads_counters_from_the_exit_report() {
        let report = "ispmux ran 8.0 s\n\
                      workers rx 10 tx 8 punted 2 idle_sleeps 0\n\
                      drops unknown_mac 3 punt_ring_full 41 tx_full 0\n\
                      slowpath punted 7 arp 0 dhcp 7 other 0\n\
                      dhcp {\"drop_malformed\":2,\"drop_rate_limited\":40,\"refusals\":5,\"relayed\":0}\n";
        assert_eq!(report_counter(report, "drops", "punt_ring_full"), Some(41));
        assert_eq!(report_counter(report, "slowpath", "dhcp"), Some(7));
        assert_eq!(dhcp_refused_and_dropped(report), Some((5, 42)));
        assert_eq!(dhcp_refused_and_dropped("ispmux ran 1 s\n"), None);
        assert_eq!(report_counter(report, "workers", "punted"), Some(2));
        assert_eq!(report_counter(report, "slowpath", "nothing"), None);
        assert_eq!(report_counter(report, "radius", "x"), None);
    }
}
