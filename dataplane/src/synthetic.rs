//! Synthetic subscribers and their frames, for benchmarks and the demo.
//!
//! Everything derives from a subscriber's index, so a capture file of a million frames and
//! the tables that forward them agree without a million entries in a configuration file:
//! the benchmark builds [`preload`] in code and writes [`upstream_frame`]s in
//! [`scattered_order`] with [`write_pcap`].

use crate::table::preload::{FecPreload, IspPreload, PreloadTables, SubscriberPreload};
use crate::table::{IspId, Limits};
use crate::wire::{ipv4::protocol, Ipv4Packet, Ipv4Repr, MacAddr};
use std::io::{self, Write};
use std::net::Ipv4Addr;

/// The shape of a synthetic population.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Number of subscribers.
    pub subscribers: u32,
    /// ISPs 1..=isps; subscriber i belongs to ISP 1 + i mod isps.
    pub isps: u16,
    /// Access port all subscribers attach to.
    pub access_port: u16,
    /// Core port upstream FECs point to.
    pub core_port: u16,
    /// Give each subscriber its own QinQ VLAN pair (else untagged).
    pub qinq: bool,
}

/// Subscriber `i`: a distinct locally administered unicast MAC 02:00:…, the address
/// 10.0.0.0 + i, QinQ VLANs from i when asked.
pub fn subscriber(spec: &Spec, i: u32) -> SubscriberPreload {
    // Multiplying by an odd constant and rotating are bijections on u32: distinct subscribers
    // get distinct MACs, neighbours get unrelated ones.
    let scattered = i.wrapping_mul(0x9e37_79b1).rotate_left(16);
    let mac = MacAddr::from_u64(0x0200_0000_0000 | u64::from(scattered));
    let (vlan, inner_vlan) = if spec.qinq {
        ((1 + i % 4000) as u16, (1 + i / 4000 % 4000) as u16)
    } else {
        (0, 0)
    };
    SubscriberPreload {
        port: spec.access_port,
        vlan,
        inner_vlan,
        mac,
        isp: 1 + (i % u32::from(spec.isps.max(1))) as IspId,
        ipv4: Some(Ipv4Addr::from(0x0a00_0000 + i)),
    }
}

/// Tables for the population: each ISP's upstream label is 1000 + its id, toward
/// `next_hop` on the core port.
pub fn preload(spec: &Spec, next_hop: MacAddr) -> PreloadTables {
    PreloadTables {
        limits: Limits {
            max_subscribers: spec.subscribers as usize,
            max_isps: usize::from(spec.isps) + 1,
            ..Limits::default()
        },
        isps: (1..=spec.isps)
            .map(|id| IspPreload {
                id,
                name: format!("isp{id}"),
                gateway: None,
                upstream: Some(FecPreload {
                    label: 1000 + u32::from(id),
                    tc: 0,
                    port: spec.core_port,
                    next_hop,
                }),
                downstream: None,
                handoff: vec![],
            })
            .collect(),
        ilm: vec![],
        subscribers: (0..spec.subscribers).map(|i| subscriber(spec, i)).collect(),
    }
}

/// A UDP/IPv4 frame of `frame_len` bytes (at least 60) from subscriber `i` to 198.51.100.1,
/// addressed to the access port's MAC.
pub fn upstream_frame(spec: &Spec, i: u32, port_mac: MacAddr, frame_len: usize) -> Vec<u8> {
    let s = subscriber(spec, i);
    let mut f = Vec::with_capacity(frame_len.max(60));
    f.extend_from_slice(&port_mac.0);
    f.extend_from_slice(&s.mac.0);
    if spec.qinq {
        f.extend_from_slice(&[0x88, 0xa8]);
        f.extend_from_slice(&s.vlan.to_be_bytes());
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&s.inner_vlan.to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x00]);
    let ip_len = frame_len.max(60).saturating_sub(f.len()).max(28);
    let start = f.len();
    f.resize(start + ip_len, 0);
    let r = Ipv4Repr {
        src_addr: s.ipv4.unwrap_or(Ipv4Addr::UNSPECIFIED),
        dst_addr: Ipv4Addr::new(198, 51, 100, 1),
        protocol: protocol::UDP,
        payload_len: (ip_len - 20) as u16,
        ttl: 64,
        dscp_ecn: 0,
        ident: i as u16,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    if let Some(ip) = f.get_mut(start..) {
        let mut p = Ipv4Packet::new_unchecked(ip);
        if r.emit(&mut p).is_ok() {
            // UDP 9 (discard) → 9, checksum absent.
            let udp_len = (ip_len - 20) as u16;
            if let Some(u) = p.payload_mut().get_mut(..8) {
                u[..2].copy_from_slice(&9u16.to_be_bytes());
                u[2..4].copy_from_slice(&9u16.to_be_bytes());
                u[4..6].copy_from_slice(&udp_len.to_be_bytes());
            }
        }
    }
    f
}

/// `frame` (an Ethernet II frame carrying IPv4, as [`upstream_frame`] makes) re-addressed
/// from `src` to `dst` with one MPLS label (S=1, TC 0, TTL 64) between the Ethernet header
/// and the IPv4 packet: what a transit or tailend node receives on its core port.
pub fn labelled(frame: &[u8], dst: MacAddr, src: MacAddr, label: u32) -> Vec<u8> {
    let ip = frame.get(14..).unwrap_or_default();
    let mut f = Vec::with_capacity(ip.len() + 18);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&[0x88, 0x47]);
    f.extend_from_slice(&((label & 0xf_ffff) << 12 | 1 << 8 | 64).to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// Writes the population as a subscribers CSV (`port,vlan,mac,isp,ipv4`, the format of
/// `[dataplane] subscribers_csv`), so `ispmux run` preloads exactly [`preload`]'s
/// subscribers. `access_port` is the configuration's name of port `spec.access_port` (the
/// CSV names ports, as the configuration does). Untagged populations only: the CSV has no
/// inner VLAN column.
pub fn write_subscribers_csv<W: Write>(
    w: &mut W,
    spec: &Spec,
    access_port: &str,
) -> io::Result<()> {
    writeln!(w, "port,vlan,mac,isp,ipv4")?;
    for i in 0..spec.subscribers {
        let s = subscriber(spec, i);
        let ip = s.ipv4.map(|a| a.to_string()).unwrap_or_default();
        writeln!(w, "{access_port},{},{},{},{ip}", s.vlan, s.mac, s.isp)?;
    }
    Ok(())
}

/// A permutation of 0..n that visits subscribers in scattered order (i × a large odd
/// multiplier mod n, adjusted to be coprime with n), so consecutive frames hit unrelated
/// table buckets.
pub fn scattered_order(n: u32) -> impl Iterator<Item = u32> {
    let n64 = u64::from(n.max(1));
    let mut m = 2_654_435_761u64 % n64;
    while gcd(m, n64) != 1 {
        m += 1;
    }
    (0..n).map(move |i| ((u64::from(i) * m) % n64) as u32)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Writes frames as a classic pcap file (microsecond timestamps, Ethernet link type), the
/// input of DPDK's `net_pcap` PMD.
pub fn write_pcap<W: Write>(
    w: &mut W,
    frames: impl IntoIterator<Item = Vec<u8>>,
) -> io::Result<()> {
    // magic, version 2.4, thiszone, sigfigs, snaplen, LINKTYPE_ETHERNET.
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&0i32.to_le_bytes())?;
    w.write_all(&0u32.to_le_bytes())?;
    w.write_all(&65_535u32.to_le_bytes())?;
    w.write_all(&1u32.to_le_bytes())?;
    for (i, f) in frames.into_iter().enumerate() {
        let len = f.len() as u32;
        w.write_all(&((i / 1_000_000) as u32).to_le_bytes())?;
        w.write_all(&((i % 1_000_000) as u32).to_le_bytes())?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(&f)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::{Node, PortAddr, PortConfig, PortRole};
    use crate::{Frame, Pipeline, VecFrame, Verdict};

    fn spec(qinq: bool) -> Spec {
        Spec {
            subscribers: 5_000,
            isps: 3,
            access_port: 0,
            core_port: 1,
            qinq,
        }
    }

    #[test]
    fn every_synthetic_frame_is_forwarded_with_its_isps_label() {
        let port_mac = MacAddr([2, 0, 0, 0, 0, 0xa0]);
        for qinq in [false, true] {
            let spec = spec(qinq);
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
            let mut node = Node::from_preload(ports, &preload(&spec, MacAddr([2, 0, 0, 0, 1, 1])))
                .expect("preload");
            let order: Vec<u32> = scattered_order(spec.subscribers).collect();
            let mut seen = order.clone();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), spec.subscribers as usize, "a permutation");
            for chunk in order.chunks(32) {
                let mut frames: Vec<VecFrame> = chunk
                    .iter()
                    .map(|&i| VecFrame::new(&upstream_frame(&spec, i, port_mac, 64)))
                    .collect();
                let mut v = vec![Verdict::Punt; frames.len()];
                node.process(0, &mut frames, &mut v);
                for ((f, v), &i) in frames.iter().zip(&v).zip(chunk) {
                    assert_eq!(*v, Verdict::Forward(1), "subscriber {i}");
                    let d = f.data();
                    let label = u32::from_be_bytes([d[14], d[15], d[16], d[17]]) >> 12;
                    assert_eq!(label, 1000 + u32::from(subscriber(&spec, i).isp));
                }
            }
        }
    }

    #[test]
    fn labelled_frames_carry_one_label_before_the_ip_packet() {
        let s = spec(false);
        let f = upstream_frame(&s, 3, MacAddr::ZERO, 64);
        let l = labelled(
            &f,
            MacAddr([2, 0, 0, 0, 0, 1]),
            MacAddr([2, 0, 0, 0, 0, 2]),
            0x12345,
        );
        assert_eq!(l.len(), f.len() + 4);
        assert_eq!(&l[12..18], &[0x88, 0x47, 0x12, 0x34, 0x51, 64]);
        assert_eq!(&l[18..], &f[14..]);
    }

    #[test]
    fn macs_are_distinct() {
        let s = Spec {
            subscribers: 200_000,
            ..spec(false)
        };
        let mut macs: Vec<u64> = (0..s.subscribers)
            .map(|i| subscriber(&s, i).mac.to_u64())
            .collect();
        macs.sort_unstable();
        macs.dedup();
        assert_eq!(macs.len(), 200_000);
        assert!(macs.iter().all(|m| m >> 40 == 0x02));
    }

    #[test]
    fn frame_sizes_and_pcap_layout() {
        let s = spec(true);
        assert_eq!(upstream_frame(&s, 7, MacAddr::ZERO, 64).len(), 64);
        assert_eq!(upstream_frame(&s, 7, MacAddr::ZERO, 10).len(), 60);
        assert_eq!(
            upstream_frame(&spec(false), 7, MacAddr::ZERO, 1514).len(),
            1514
        );
        let mut out = Vec::new();
        write_pcap(&mut out, [vec![0xaa; 60], vec![0xbb; 61]]).expect("write");
        assert_eq!(&out[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&out[20..24], &[1, 0, 0, 0]);
        assert_eq!(out.len(), 24 + 16 + 60 + 16 + 61);
        assert_eq!(&out[24 + 8..24 + 16], &[60, 0, 0, 0, 60, 0, 0, 0]);
    }
}
