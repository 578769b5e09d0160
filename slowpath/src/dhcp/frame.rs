//! Subscriber-side framing: the Ethernet (up to two VLAN tags) / IPv4 / UDP layers around a
//! DHCP message, for the punt ring (frame in → [`Input::FromSubscriber`](super::Input)
//! fields) and the inject path ([`Reply`] → frame out). Pure functions over byte slices, so
//! the DPDK side only moves buffers.

use std::net::Ipv4Addr;

use ispmux_dataplane::wire::ipv4::protocol;
use ispmux_dataplane::wire::{
    skip_tags, EtherType, EthernetFrame, EthernetRepr, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr,
    VlanPacket, VlanRepr, WireError,
};

pub use super::engine::CLIENT_PORT;
use super::engine::{Reply, SERVER_PORT};
use super::MacAddr;

/// TTL of the frames built here (RFC 1700's default for IP).
const TTL: u8 = 64;

/// Why a punted frame is not a DHCP message to the server port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Shorter than its headers claim.
    #[error("frame truncated")]
    Truncated,
    /// More than two VLAN tags, or the reserved VID 4095.
    #[error("bad VLAN tags")]
    BadVlan,
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

fn truncated_or(e: WireError, other: FrameError) -> FrameError {
    if e == WireError::Truncated {
        FrameError::Truncated
    } else {
        other
    }
}

/// Parses a punted frame down to its DHCP payload. The UDP checksum is not verified: a
/// frame from a local stack, captured before its checksum offload ran, carries a partial
/// one, and DHCP's own framing is checked by the decoder.
pub fn parse_punt(frame: &[u8]) -> Result<Punted<'_>, FrameError> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| FrameError::Truncated)?;
    let tags = skip_tags(frame).map_err(|e| truncated_or(e, FrameError::BadVlan))?;
    if tags.ethertype != EtherType::IPV4 {
        return Err(FrameError::NotIpv4);
    }
    let ip = Ipv4Packet::new_checked(frame.get(tags.payload_offset..).unwrap_or_default())
        .map_err(|e| truncated_or(e, FrameError::BadIpv4))?;
    if ip.version() != 4 || !ip.verify_checksum() {
        return Err(FrameError::BadIpv4);
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        return Err(FrameError::Fragment);
    }
    if ip.protocol() != protocol::UDP {
        return Err(FrameError::NotDhcp);
    }
    let udp =
        UdpPacket::new_checked(ip.payload()).map_err(|e| truncated_or(e, FrameError::BadIpv4))?;
    if udp.dst_port() != SERVER_PORT {
        return Err(FrameError::NotDhcp);
    }
    // The views borrow themselves; the payload must borrow the frame, so slice it again.
    let start = tags.payload_offset + ip.header_len() + UdpPacket::<&[u8]>::HEADER_LEN;
    let end = tags.payload_offset + ip.header_len() + usize::from(udp.len());
    Ok(Punted {
        src_mac: eth.src_addr(),
        vlan: tags.outer_vid,
        inner_vlan: tags.inner_vid,
        src_ip: ip.src_addr(),
        payload: frame.get(start..end).ok_or(FrameError::Truncated)?,
    })
}

/// Frames one UDP datagram (IPv4, TTL 64, checksums filled in): an 802.1ad S-tag over an
/// 802.1Q C-tag when both VLANs are set, one 802.1Q tag when only `vlan` is.
/// `Err(Malformed)` for a VID over 4094 or a payload too long for one datagram.
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
) -> Result<Vec<u8>, WireError> {
    let tag = |vid, ethertype| VlanRepr {
        pcp: 0,
        dei: false,
        vid,
        ethertype,
    };
    let tags: &[VlanRepr] = match (vlan, inner_vlan) {
        (0, _) => &[],
        (o, 0) => &[tag(o, EtherType::IPV4)],
        (o, i) => &[tag(o, EtherType::VLAN), tag(i, EtherType::IPV4)],
    };
    let eth = EthernetRepr {
        src_addr: src_mac,
        dst_addr: dst_mac,
        ethertype: match tags.len() {
            0 => EtherType::IPV4,
            1 => EtherType::VLAN,
            _ => EtherType::QINQ,
        },
    };
    let udp = UdpRepr {
        src_port,
        dst_port,
        payload_len: u16::try_from(payload.len()).map_err(|_| WireError::Malformed)?,
    };
    let ip = Ipv4Repr {
        src_addr: src_ip,
        dst_addr: dst_ip,
        protocol: protocol::UDP,
        payload_len: u16::try_from(udp.buffer_len() + payload.len())
            .map_err(|_| WireError::Malformed)?,
        ttl: TTL,
        dscp_ecn: 0,
        ident: 0,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
    };
    let l3 = eth.buffer_len() + tags.iter().map(VlanRepr::buffer_len).sum::<usize>();
    let l4 = l3 + ip.buffer_len();
    let mut f = vec![0u8; l4 + udp.buffer_len() + payload.len()];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut f[..]))?;
    let mut at = eth.buffer_len();
    for t in tags {
        t.emit(&mut VlanPacket::new_unchecked(&mut f[at..]))?;
        at += t.buffer_len();
    }
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut f[l3..]))?;
    let mut u = UdpPacket::new_unchecked(&mut f[l4..]);
    udp.emit(&mut u)?;
    f[l4 + udp.buffer_len()..].copy_from_slice(payload);
    UdpPacket::new_unchecked(&mut f[l4..]).fill_checksum(src_ip, dst_ip);
    Ok(f)
}

/// Frames a reply for the inject path, from `src_mac` (the MAC of the access port it
/// leaves by).
pub fn build_reply(src_mac: MacAddr, r: &Reply) -> Result<Vec<u8>, WireError> {
    build_udp(
        r.dst_mac,
        src_mac,
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
    use ispmux_dataplane::wire::checksum;

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).expect("ascii"), 16).expect("hex"))
            .collect()
    }

    #[test]
    fn reply_frame_known_answer() {
        // Checksums computed independently (RFC 1071 by hand, checked in Python):
        // IPv4 198.18.100.1 → 198.18.100.42 header sum 267d; UDP 67 → 68 "dhcp" sum e325.
        let want = hex("020000000001 0200000000fe 8100 0007 0800
             4500 0020 0000 0000 4011 267d c612 6401 c612 642a
             0043 0044 000c e325 64686370");
        let r = Reply {
            port: 1,
            vlan: 7,
            inner_vlan: 0,
            dst_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_ip: Ipv4Addr::new(198, 18, 100, 42),
            dst_port: CLIENT_PORT,
            src_ip: Ipv4Addr::new(198, 18, 100, 1),
            broadcast: false,
            payload: b"dhcp".to_vec(),
        };
        assert_eq!(
            build_reply(MacAddr([2, 0, 0, 0, 0, 0xfe]), &r).expect("frame"),
            want
        );
    }

    #[test]
    fn discover_header_matches_dhclient_capture() {
        // The IPv4/UDP head of a DHCPDISCOVER as ISC dhclient sends it (the wire::udp
        // known answer): 0.0.0.0:68 → 255.255.255.255:67, IPv4 checksum 79a6.
        let mut payload = vec![0u8; 0x134 - 8];
        payload[..4].copy_from_slice(&[1, 1, 6, 0]);
        let f = build_udp(
            MacAddr::BROADCAST,
            MacAddr([2, 0, 0x5e, 0x10, 0, 1]),
            (0, 0),
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            CLIENT_PORT,
            SERVER_PORT,
            &payload,
        )
        .expect("frame");
        let want = hex("4500 0148 0000 0000 4011 79a6 0000 0000 ffff ffff 0044 0043 0134");
        assert_eq!(&f[14..14 + want.len()], &want[..]);
        let p = parse_punt(&f).expect("parses");
        assert_eq!((p.src_ip, p.payload), (Ipv4Addr::UNSPECIFIED, &payload[..]));
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
            )
            .expect("frame");
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
        let f = build_reply(MacAddr([2, 0, 0, 0, 0, 0xfe]), &r).expect("frame");
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
        let f = build_reply(MacAddr([2, 0, 0, 0, 0, 0xfe]), &r).expect("frame");
        assert_eq!(&f[12..16], &[0x81, 0x00, 0x00, 0x07]);
        let ip = &f[18..38];
        assert_eq!(checksum::internet(ip), 0, "IPv4 header checksum verifies");
        let udp = &f[38..];
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&ip[12..20]);
        pseudo.extend_from_slice(&[0, 17, 0, udp.len() as u8]);
        pseudo.extend_from_slice(udp);
        assert_eq!(checksum::internet(&pseudo), 0, "UDP checksum verifies");
        assert_eq!(&udp[..4], &[0, 67, 0, 68]);
    }

    #[test]
    fn reserved_vid_is_not_framed() {
        let f = build_udp(
            MacAddr::BROADCAST,
            MacAddr([2, 0, 0, 0, 0, 1]),
            (4095, 0),
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            68,
            67,
            b"x",
        );
        assert_eq!(f, Err(WireError::Malformed));
    }

    #[test]
    fn non_dhcp_and_broken_frames_are_typed_errors() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let udp = |dport| {
            build_udp(
                MacAddr::BROADCAST,
                mac,
                (0, 0),
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::BROADCAST,
                68,
                dport,
                b"x",
            )
            .expect("frame")
        };
        let good = udp(67);
        assert_eq!(parse_punt(&good[..10]), Err(FrameError::Truncated));
        let mut v6 = good.clone();
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(parse_punt(&v6), Err(FrameError::NotIpv4));
        let mut bad_sum = good.clone();
        bad_sum[24] ^= 1;
        assert_eq!(parse_punt(&bad_sum), Err(FrameError::BadIpv4));
        let mut frag = good.clone();
        frag[20] = 0x20; // more fragments
        let c = {
            frag[24..26].fill(0);
            checksum::internet(&frag[14..34])
        };
        frag[24..26].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse_punt(&frag), Err(FrameError::Fragment));
        assert_eq!(parse_punt(&udp(53)), Err(FrameError::NotDhcp));
        let mut three_tags = good[..12].to_vec();
        for _ in 0..3 {
            three_tags.extend_from_slice(&[0x81, 0, 0, 1]);
        }
        three_tags.extend_from_slice(&good[12..]);
        assert_eq!(parse_punt(&three_tags), Err(FrameError::BadVlan));
        for i in 0..good.len() {
            assert!(parse_punt(&good[..i]).is_err(), "{i}");
        }
    }
}
