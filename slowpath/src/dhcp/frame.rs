//! Subscriber-side framing: the Ethernet (up to two VLAN tags) / IPv4 / UDP layers around a
//! DHCP message, for the punt ring (frame in → [`Input::FromSubscriber`](super::Input)
//! fields) and the inject path ([`Reply`] → frame out). Pure functions over byte slices, so
//! the DPDK side only moves buffers.

use std::net::Ipv4Addr;

pub use super::engine::CLIENT_PORT;
use super::engine::{Reply, SERVER_PORT};
use super::MacAddr;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_VLAN: u16 = 0x8100;
/// IEEE 802.1ad service tag: the outer tag of QinQ.
const ETHERTYPE_QINQ: u16 = 0x88a8;
const IPPROTO_UDP: u8 = 17;

/// Why a punted frame is not a DHCP message to the server port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Shorter than its headers claim.
    #[error("frame truncated")]
    Truncated,
    /// Not IPv4 (after at most two VLAN tags).
    #[error("not IPv4")]
    NotIpv4,
    /// IPv4 header malformed (version, IHL, total length) or its checksum wrong.
    #[error("bad IPv4 header")]
    BadIpv4,
    /// A fragment: DHCP messages fit one frame, fragments are not reassembled here.
    #[error("IPv4 fragment")]
    Fragment,
    /// Not UDP to port 67.
    #[error("not UDP to port 67")]
    NotDhcp,
}

/// A punted DHCP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Punted<'a> {
    /// Ethernet source.
    pub src_mac: MacAddr,
    /// Outer (or only) VLAN id (0 = untagged).
    pub vlan: u16,
    /// Inner VLAN id of QinQ (0 = at most one tag).
    pub inner_vlan: u16,
    /// IPv4 source (0.0.0.0 before the client has an address).
    pub src_ip: Ipv4Addr,
    /// The DHCP message (UDP payload).
    pub payload: &'a [u8],
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// RFC 1071 one's-complement sum, folded.
fn ones_sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

fn checksum(acc: u32, data: &[u8]) -> u16 {
    !(ones_sum(acc, data) as u16)
}

/// Parses a punted frame down to its DHCP payload.
pub fn parse_punt(frame: &[u8]) -> Result<Punted<'_>, FrameError> {
    let src = frame.get(6..12).ok_or(FrameError::Truncated)?;
    let mut src_mac = [0u8; 6];
    src_mac.copy_from_slice(src);
    let mut ethertype = be16(frame, 12).ok_or(FrameError::Truncated)?;
    let mut at = 14;
    // Up to two tags, 802.1Q or 802.1ad TPIDs, as the fast path's classifier reads them.
    let mut vids = [0u16; 2];
    for vid in vids.iter_mut() {
        if ethertype != ETHERTYPE_VLAN && ethertype != ETHERTYPE_QINQ {
            break;
        }
        *vid = be16(frame, at).ok_or(FrameError::Truncated)? & 0x0fff;
        ethertype = be16(frame, at + 2).ok_or(FrameError::Truncated)?;
        at += 4;
    }
    let [vlan, inner_vlan] = vids;
    if ethertype != ETHERTYPE_IPV4 {
        return Err(FrameError::NotIpv4);
    }
    let ip = frame.get(at..).ok_or(FrameError::Truncated)?;
    let vihl = *ip.first().ok_or(FrameError::Truncated)?;
    let ihl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || ihl < 20 {
        return Err(FrameError::BadIpv4);
    }
    let total = usize::from(be16(ip, 2).ok_or(FrameError::Truncated)?);
    let hdr = ip.get(..ihl).ok_or(FrameError::Truncated)?;
    if total < ihl + 8 || total > ip.len() || checksum(0, hdr) != 0 {
        return Err(FrameError::BadIpv4);
    }
    if be16(ip, 6).ok_or(FrameError::Truncated)? & 0x3fff != 0 {
        return Err(FrameError::Fragment);
    }
    if hdr.get(9) != Some(&IPPROTO_UDP) {
        return Err(FrameError::NotDhcp);
    }
    let src_ip = Ipv4Addr::new(hdr[12], hdr[13], hdr[14], hdr[15]);
    let udp = ip.get(ihl..total).ok_or(FrameError::Truncated)?;
    if be16(udp, 2) != Some(SERVER_PORT) {
        return Err(FrameError::NotDhcp);
    }
    let ulen = usize::from(be16(udp, 4).ok_or(FrameError::Truncated)?);
    if ulen < 8 || ulen > udp.len() {
        return Err(FrameError::Truncated);
    }
    Ok(Punted {
        src_mac: MacAddr(src_mac),
        vlan,
        inner_vlan,
        src_ip,
        payload: udp.get(8..ulen).ok_or(FrameError::Truncated)?,
    })
}

/// Frames one UDP datagram (IPv4, TTL 64, checksums filled in).
#[allow(clippy::too_many_arguments)]
pub fn build_udp(
    dst_mac: MacAddr,
    src_mac: MacAddr,
    (vlan, inner_vlan): (u16, u16),
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let total = 20 + udp_len;
    let mut f = Vec::with_capacity(18 + total);
    f.extend_from_slice(&dst_mac.0);
    f.extend_from_slice(&src_mac.0);
    if vlan != 0 && inner_vlan != 0 {
        f.extend_from_slice(&ETHERTYPE_QINQ.to_be_bytes());
        f.extend_from_slice(&(vlan & 0x0fff).to_be_bytes());
        f.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        f.extend_from_slice(&(inner_vlan & 0x0fff).to_be_bytes());
    } else if vlan != 0 {
        f.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        f.extend_from_slice(&(vlan & 0x0fff).to_be_bytes());
    }
    f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let ip_at = f.len();
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&(total as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 64, IPPROTO_UDP, 0, 0]);
    f.extend_from_slice(&src_ip.octets());
    f.extend_from_slice(&dst_ip.octets());
    let ip_sum = checksum(0, &f[ip_at..ip_at + 20]);
    f[ip_at + 10..ip_at + 12].copy_from_slice(&ip_sum.to_be_bytes());
    let udp_at = f.len();
    f.extend_from_slice(&src_port.to_be_bytes());
    f.extend_from_slice(&dst_port.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src_ip.octets());
    pseudo.extend_from_slice(&dst_ip.octets());
    pseudo.extend_from_slice(&[0, IPPROTO_UDP]);
    pseudo.extend_from_slice(&(udp_len as u16).to_be_bytes());
    let mut sum = checksum(ones_sum(0, &pseudo), &f[udp_at..]);
    if sum == 0 {
        sum = 0xffff; // RFC 768: a computed zero is sent as all ones.
    }
    f[udp_at + 6..udp_at + 8].copy_from_slice(&sum.to_be_bytes());
    f
}

/// Frames a reply for the inject path, from the gateway's access-side MAC.
pub fn build_reply(gateway_mac: MacAddr, r: &Reply) -> Vec<u8> {
    build_udp(
        r.dst_mac,
        gateway_mac,
        (r.vlan, r.inner_vlan),
        r.src_ip,
        r.dst_ip,
        SERVER_PORT,
        r.dst_port,
        &r.payload,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_checksum_known_answer() {
        // A textbook IPv4 header whose checksum is 0xb861.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(0, &h), 0xb861);
    }

    #[test]
    fn client_frame_parses_untagged_tagged_and_qinq() {
        let mac = MacAddr([2, 0, 0x5e, 0x10, 0, 1]);
        for (vlan, inner_vlan) in [(0, 0), (100, 0), (100, 2001)] {
            let f = build_udp(
                MacAddr::BROADCAST,
                mac,
                (vlan, inner_vlan),
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::BROADCAST,
                CLIENT_PORT,
                SERVER_PORT,
                b"dhcp",
            );
            let p = parse_punt(&f).expect("parses");
            assert_eq!(
                p,
                Punted {
                    src_mac: mac,
                    vlan,
                    inner_vlan,
                    src_ip: Ipv4Addr::UNSPECIFIED,
                    payload: b"dhcp"
                }
            );
        }
    }

    #[test]
    fn qinq_reply_carries_both_tags() {
        let r = Reply {
            port: 1,
            vlan: 100,
            inner_vlan: 2001,
            dst_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_ip: Ipv4Addr::BROADCAST,
            dst_port: CLIENT_PORT,
            src_ip: Ipv4Addr::new(198, 18, 64, 1),
            broadcast: true,
            payload: vec![1],
        };
        let f = build_reply(MacAddr([2, 0, 0, 0, 0, 0xfe]), &r);
        assert_eq!(
            &f[12..22],
            &[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x07, 0xd1, 0x08, 0x00]
        );
        // A frame whose outer TPID is 802.1Q twice (common on older switches) parses too.
        let mut q = f.clone();
        q[12..14].copy_from_slice(&[0x81, 0x00]);
        q[44..46].copy_from_slice(&[0, 67]); // UDP destination port: as if to the server
        let p = parse_punt(&q).expect("parses");
        assert_eq!((p.vlan, p.inner_vlan), (100, 2001));
    }

    #[test]
    fn reply_frame_has_valid_checksums() {
        let r = Reply {
            port: 1,
            vlan: 7,
            inner_vlan: 0,
            dst_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_ip: Ipv4Addr::new(198, 18, 100, 42),
            dst_port: CLIENT_PORT,
            src_ip: Ipv4Addr::new(198, 18, 64, 1),
            broadcast: false,
            payload: vec![1, 2, 3],
        };
        let f = build_reply(MacAddr([2, 0, 0, 0, 0, 0xfe]), &r);
        assert_eq!(&f[12..16], &[0x81, 0x00, 0x00, 0x07]);
        let ip = &f[18..38];
        assert_eq!(checksum(0, ip), 0, "IPv4 header checksum verifies");
        let udp = &f[38..];
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&ip[12..20]);
        pseudo.extend_from_slice(&[0, 17, 0, udp.len() as u8]);
        assert_eq!(
            checksum(ones_sum(0, &pseudo), udp),
            0,
            "UDP checksum verifies"
        );
        assert_eq!(&udp[..4], &[0, 67, 0, 68]);
    }

    #[test]
    fn non_dhcp_and_broken_frames_are_typed_errors() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let good = build_udp(
            MacAddr::BROADCAST,
            mac,
            (0, 0),
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            68,
            67,
            b"x",
        );
        assert_eq!(parse_punt(&good[..10]), Err(FrameError::Truncated));
        let mut v6 = good.clone();
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(parse_punt(&v6), Err(FrameError::NotIpv4));
        let mut bad_sum = good.clone();
        bad_sum[24] ^= 1;
        assert_eq!(parse_punt(&bad_sum), Err(FrameError::BadIpv4));
        let other_port = build_udp(
            MacAddr::BROADCAST,
            mac,
            (0, 0),
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            68,
            53,
            b"x",
        );
        assert_eq!(parse_punt(&other_port), Err(FrameError::NotDhcp));
        for i in 0..good.len() {
            let _ = parse_punt(&good[..i]);
        }
    }
}
