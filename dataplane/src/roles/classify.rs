//! Header classification shared by every role: what a frame is, before any table is read.
//!
//! Pure functions over the frame's bytes, so the fuzz target (`fuzz/`, target `classify`)
//! and the seed-corpus test can drive them directly.

use crate::counters::DropReason;
use crate::wire::udp::{DHCP_CLIENT_PORT, DHCP_SERVER_PORT};
use crate::wire::{
    ipv4, skip_tags, EtherType, EthernetFrame, Ipv4Packet, MacAddr, MplsPacket, WireError,
};

/// The link layer of a received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L2 {
    /// Destination MAC.
    pub dst: MacAddr,
    /// Source MAC.
    pub src: MacAddr,
    /// Outer (or only) VLAN ID, 0 when untagged.
    pub outer_vid: u16,
    /// Inner VLAN ID of QinQ, 0 otherwise.
    pub inner_vid: u16,
    /// Priority of the outer tag.
    pub pcp: u8,
    /// EtherType after the tags.
    pub ethertype: EtherType,
    /// Offset of the layer 3 header (14, 18 or 22).
    pub l3: usize,
}

fn wire_drop(e: WireError) -> DropReason {
    match e {
        WireError::Truncated => DropReason::Truncated,
        _ => DropReason::Malformed,
    }
}

/// The common link layers read at fixed offsets: untagged or one tag, unicast source.
/// `None` for anything else, which [`parse_l2_general`] then decides. Every frame pays for
/// a parse, so the usual shapes must cost a few loads, not a walk through views.
#[inline(always)]
fn fast_l2(d: &[u8]) -> Option<L2> {
    let h: &[u8; 18] = d.first_chunk()?;
    if h[6] & 1 != 0 {
        return None;
    }
    let mac = |o: usize| MacAddr([h[o], h[o + 1], h[o + 2], h[o + 3], h[o + 4], h[o + 5]]);
    let outer = EtherType(u16::from_be_bytes([h[12], h[13]]));
    let mut l2 = L2 {
        dst: mac(0),
        src: mac(6),
        outer_vid: 0,
        inner_vid: 0,
        pcp: 0,
        ethertype: outer,
        l3: 14,
    };
    if outer.is_vlan() {
        let tci = u16::from_be_bytes([h[14], h[15]]);
        let inner = EtherType(u16::from_be_bytes([h[16], h[17]]));
        if tci & 0x0fff > crate::wire::vlan::VID_MAX || inner.is_vlan() {
            return None;
        }
        l2.outer_vid = tci & 0x0fff;
        l2.pcp = (tci >> 13) as u8;
        l2.ethertype = inner;
        l2.l3 = 18;
    }
    Some(l2)
}

/// Parses Ethernet and up to two VLAN tags (802.1Q or 802.1ad TPIDs).
#[inline]
pub fn parse_l2(d: &[u8]) -> Result<L2, DropReason> {
    match fast_l2(d) {
        Some(l2) => Ok(l2),
        None => parse_l2_general(d),
    }
}

/// [`parse_l2`] for every shape: the header view and the one tag walk of the wire layer
/// ([`skip_tags`]), which the slow path uses too, so both agree on what a frame is.
#[inline(never)]
pub fn parse_l2_general(d: &[u8]) -> Result<L2, DropReason> {
    let eth = EthernetFrame::new_checked(d).map_err(wire_drop)?;
    let src = eth.src_addr();
    if src.is_multicast() {
        return Err(DropReason::Malformed);
    }
    let tags = skip_tags(d).map_err(wire_drop)?;
    Ok(L2 {
        dst: eth.dst_addr(),
        src,
        outer_vid: tags.outer_vid,
        inner_vid: tags.inner_vid,
        pcp: tags.outer_pcp,
        ethertype: tags.ethertype,
        l3: tags.payload_offset,
    })
}

/// The IPv4 fields the fast path decides on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Info {
    /// Source address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// Time to live.
    pub ttl: u8,
    /// Total length (the byte count of per-ISP counters).
    pub total_len: u16,
}

/// True when an option-less IPv4 header's checksum verifies.
///
/// An intact header's 16-bit words sum to all ones in ones' complement, that is to a
/// multiple of 0xffff (a nonzero header never sums to zero). Since 2^16 ≡ 1 (mod 0xffff),
/// the header may be summed as five native 32-bit words in any byte order (RFC 1071,
/// section 2(B)) and tested with one remainder, which compiles to a multiply: no folds.
#[inline(always)]
pub(super) fn header_checksum_ok(h: &[u8; 20]) -> bool {
    let mut acc = 0u64;
    for w in h.chunks_exact(4) {
        acc += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    acc.is_multiple_of(0xffff)
}

/// A valid IPv4 header without options, read at fixed offsets; `None` for anything else,
/// which [`parse_ipv4_general`] then decides (including every error).
#[inline(always)]
pub(super) fn fast_ipv4(d: &[u8]) -> Option<(Ipv4Info, bool)> {
    let h: &[u8; 20] = d.first_chunk()?;
    let total_len = u16::from_be_bytes([h[2], h[3]]);
    if h[0] != 0x45 || total_len < 20 || d.len() < usize::from(total_len) {
        return None;
    }
    if !header_checksum_ok(h) {
        return None;
    }
    let word = |o: usize| u32::from_be_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
    let info = Ipv4Info {
        src: word(12),
        dst: word(16),
        ttl: h[8],
        total_len,
    };
    let first_fragment = u16::from_be_bytes([h[6], h[7]]) & 0x1fff == 0;
    let dhcp = h[9] == ipv4::protocol::UDP
        && first_fragment
        && total_len >= 24
        && matches!(
            d.get(22..24),
            Some(&[hi, lo]) if matches!(u16::from_be_bytes([hi, lo]), DHCP_SERVER_PORT | DHCP_CLIENT_PORT)
        );
    Some((info, dhcp))
}

/// Checks an IPv4 header (length, version, header checksum) and reads its fields.
#[inline]
pub fn parse_ipv4(d: &[u8]) -> Result<(Ipv4Info, bool), DropReason> {
    match fast_ipv4(d) {
        Some(x) => Ok(x),
        None => parse_ipv4_general(d),
    }
}

/// [`parse_ipv4`] for every header, through the view.
#[inline(never)]
pub fn parse_ipv4_general(d: &[u8]) -> Result<(Ipv4Info, bool), DropReason> {
    let ip = Ipv4Packet::new_checked(d).map_err(wire_drop)?;
    if ip.version() != 4 || !ip.verify_checksum() {
        return Err(DropReason::Malformed);
    }
    let info = Ipv4Info {
        src: u32::from(ip.src_addr()),
        dst: u32::from(ip.dst_addr()),
        ttl: ip.ttl(),
        total_len: ip.total_len(),
    };
    // Only a first fragment carries the UDP header.
    let dhcp = ip.protocol() == ipv4::protocol::UDP && ip.frag_offset() == 0 && {
        let p = ip.payload();
        match p.get(2..4) {
            Some(&[hi, lo]) => matches!(
                u16::from_be_bytes([hi, lo]),
                DHCP_SERVER_PORT | DHCP_CLIENT_PORT
            ),
            _ => false,
        }
    };
    Ok((info, dhcp))
}

/// What a frame from an access port is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessClass {
    /// DHCP (UDP to port 67 or 68): to the slow path whoever sent it.
    Dhcp,
    /// ARP: answered in the fast path or punted, for known subscribers only.
    Arp,
    /// Other IPv4: forwarded for bound subscribers.
    Ipv4(Ipv4Info),
}

/// Classifies a frame received on an access port.
#[inline]
pub fn classify_access(d: &[u8], l2: &L2) -> Result<AccessClass, DropReason> {
    let l3 = d.get(l2.l3..).unwrap_or(&[]);
    match l2.ethertype {
        EtherType::ARP => Ok(AccessClass::Arp),
        EtherType::IPV4 => match parse_ipv4(l3)? {
            (_, true) => Ok(AccessClass::Dhcp),
            (info, false) => Ok(AccessClass::Ipv4(info)),
        },
        _ => Err(DropReason::NotIpv4),
    }
}

/// The top label stack entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabelInfo {
    /// Label.
    pub label: u32,
    /// Traffic class.
    pub tc: u8,
    /// Bottom of stack.
    pub bottom: bool,
    /// TTL.
    pub ttl: u8,
    /// Bytes the entry takes in the frame: 4, or 0 for an implicit null (the neighbour
    /// popped the label, RFC 3031 §3.16, and the port stands for it with its
    /// `implicit_null` label).
    pub len: usize,
}

/// What a frame from a core port is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreClass {
    /// Labelled: look the top label up in the ILM.
    Mpls(LabelInfo),
    /// ARP from a core neighbour: slow path.
    Arp,
    /// Unlabelled IPv4: for the gateway itself (its kernel twin), else dropped (`not_mpls`).
    Ipv4,
}

/// Classifies a frame received on a core port.
#[inline]
pub fn classify_core(d: &[u8], l2: &L2) -> Result<CoreClass, DropReason> {
    match l2.ethertype {
        EtherType::MPLS_UNICAST => {
            let m = MplsPacket::new_checked(d.get(l2.l3..).unwrap_or(&[])).map_err(wire_drop)?;
            Ok(CoreClass::Mpls(LabelInfo {
                label: m.label(),
                tc: m.tc(),
                bottom: m.bottom_of_stack(),
                ttl: m.ttl(),
                len: 4,
            }))
        }
        EtherType::ARP => Ok(CoreClass::Arp),
        EtherType::IPV4 => Ok(CoreClass::Ipv4),
        _ => Err(DropReason::NotMpls),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hex;

    #[test]
    fn tags_and_limits() {
        let untagged = hex("020000000001 020000000002 0800");
        let l2 = parse_l2(&untagged).expect("ok");
        assert_eq!((l2.outer_vid, l2.inner_vid, l2.l3), (0, 0, 14));
        let one = hex("020000000001 020000000002 8100 600a 0806");
        let l2 = parse_l2(&one).expect("ok");
        assert_eq!(
            (l2.outer_vid, l2.pcp, l2.ethertype, l2.l3),
            (10, 3, EtherType::ARP, 18)
        );
        let two = hex("020000000001 020000000002 88a8 0064 8100 00c8 0800");
        let l2 = parse_l2(&two).expect("ok");
        assert_eq!((l2.outer_vid, l2.inner_vid, l2.l3), (100, 200, 22));
        let three = hex("020000000001 020000000002 88a8 0064 8100 00c8 8100 0001 0800");
        assert_eq!(parse_l2(&three), Err(DropReason::Malformed));
        let cut = hex("020000000001 020000000002 8100 00");
        assert_eq!(parse_l2(&cut), Err(DropReason::Truncated));
        let group_src = hex("020000000001 030000000002 0800");
        assert_eq!(parse_l2(&group_src), Err(DropReason::Malformed));
    }

    #[test]
    fn the_usual_shapes_take_the_fast_paths() {
        let untagged =
            hex("020000000001 020000000002 0800 4500 0014 0000 4000 4011 0000 0a000001 0a000002");
        let mut f = untagged.clone();
        let c = crate::wire::checksum::internet(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        assert!(fast_l2(&f).is_some());
        assert_eq!(
            fast_ipv4(&f[14..]).map(|(i, dhcp)| (i.ttl, dhcp)),
            Some((0x40, false))
        );
        let tagged = hex("020000000001 020000000002 8100 600a 0800 4500");
        assert_eq!(
            fast_l2(&tagged).map(|l| (l.outer_vid, l.l3)),
            Some((10, 18))
        );
        let qinq = hex("020000000001 020000000002 88a8 0064 8100 00c8 0800");
        assert_eq!(fast_l2(&qinq), None, "two tags take the general parse");
    }

    proptest::proptest! {
        /// Whatever the fast parsers accept, the general ones read the same way.
        #[test]
        fn fast_parsers_agree_with_the_general_ones(
            mut frame in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
            shape in 0u8..4,
        ) {
            // Steer most inputs into the shapes the fast paths take.
            if frame.len() >= 40 {
                frame[6] &= 0xfe;
                match shape {
                    0 => frame[12..14].copy_from_slice(&[0x08, 0x00]),
                    1 => frame[12..18].copy_from_slice(&[0x81, 0x00, 0x0f, 0xfe, 0x08, 0x00]),
                    2 => frame[12..14].copy_from_slice(&[0x88, 0x47]),
                    _ => {}
                }
                let l3 = if shape == 1 { 18 } else { 14 };
                frame[l3] = 0x45;
                let len = (frame.len() - l3) as u16;
                frame[l3 + 2..l3 + 4].copy_from_slice(&len.to_be_bytes());
                frame[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
                let c = crate::wire::checksum::internet(&frame[l3..l3 + 20]);
                frame[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
                // These shapes are valid: the fast paths must take them, not just agree.
                proptest::prop_assert!(fast_ipv4(&frame[l3..]).is_some());
                if shape < 3 {
                    proptest::prop_assert!(fast_l2(&frame).is_some());
                }
            }
            if let Some(l2) = fast_l2(&frame) {
                proptest::prop_assert_eq!(Ok(l2), parse_l2_general(&frame));
            }
            for l3 in [14usize, 18] {
                let ip = frame.get(l3..).unwrap_or(&[]);
                if let Some(x) = fast_ipv4(ip) {
                    proptest::prop_assert_eq!(Ok(x), parse_ipv4_general(ip));
                }
            }
        }
    }
}
