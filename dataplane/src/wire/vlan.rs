//! IEEE 802.1Q VLAN tag (and 802.1ad S-tag, which has the same layout).
//!
//! The view starts after the TPID, i.e. at the Ethernet payload of a frame whose EtherType is
//! 0x8100 or 0x88a8: tag control information (PCP, DEI, VID) then the inner EtherType.

use super::{get_u16, put_u16, EtherType, EthernetFrame, Result, WireError};

/// A view of a VLAN tag and what follows it.
#[derive(Debug, Clone)]
pub struct VlanPacket<T: AsRef<[u8]>> {
    buffer: T,
}

/// The highest VLAN identifier; 4095 is reserved (802.1Q table 9-2).
pub const VID_MAX: u16 = 4094;

impl<T: AsRef<[u8]>> VlanPacket<T> {
    /// Length of TCI plus inner EtherType.
    pub const HEADER_LEN: usize = 4;

    /// A view without length check (emit paths only).
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// A view whose getters cannot fail.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Err(Truncated)` when shorter than a tag.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < Self::HEADER_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// Priority code point (802.1p class).
    pub fn pcp(&self) -> u8 {
        (get_u16(self.buffer.as_ref(), 0) >> 13) as u8
    }

    /// Drop eligible indicator.
    pub fn dei(&self) -> bool {
        get_u16(self.buffer.as_ref(), 0) & 0x1000 != 0
    }

    /// VLAN identifier; 0 means priority-tagged only.
    pub fn vid(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 0) & 0x0fff
    }

    /// EtherType (or next TPID) after the tag.
    pub fn ethertype(&self) -> EtherType {
        EtherType(get_u16(self.buffer.as_ref(), 2))
    }

    /// Bytes after the tag.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanPacket<T> {
    /// Sets PCP, DEI and VID at once (the TCI).
    pub fn set_tci(&mut self, pcp: u8, dei: bool, vid: u16) {
        let tci = (u16::from(pcp & 7) << 13) | (u16::from(dei) << 12) | (vid & 0x0fff);
        put_u16(self.buffer.as_mut(), 0, tci);
    }

    /// Sets the inner EtherType.
    pub fn set_ethertype(&mut self, t: EtherType) {
        put_u16(self.buffer.as_mut(), 2, t.0);
    }
}

/// A parsed VLAN tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VlanRepr {
    /// Priority code point, 0..=7.
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier, 0..=4094.
    pub vid: u16,
    /// Inner EtherType.
    pub ethertype: EtherType,
}

impl VlanRepr {
    /// Reads a tag; VID 4095 is reserved and so `Malformed`.
    pub fn parse<T: AsRef<[u8]>>(p: &VlanPacket<T>) -> Result<Self> {
        p.check_len()?;
        if p.vid() > VID_MAX {
            return Err(WireError::Malformed);
        }
        Ok(Self {
            pcp: p.pcp(),
            dei: p.dei(),
            vid: p.vid(),
            ethertype: p.ethertype(),
        })
    }

    /// Bytes [`VlanRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        4
    }

    /// Writes the tag.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut VlanPacket<T>) -> Result<()> {
        p.check_len()?;
        if self.vid > VID_MAX || self.pcp > 7 {
            return Err(WireError::Malformed);
        }
        p.set_tci(self.pcp, self.dei, self.vid);
        p.set_ethertype(self.ethertype);
        Ok(())
    }
}

/// What [`skip_tags`] found in front of a frame's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tags {
    /// Outer (or only) VLAN id; 0 when untagged (or priority-tagged only).
    pub outer_vid: u16,
    /// Inner VLAN id of QinQ; 0 with at most one tag.
    pub inner_vid: u16,
    /// Priority (PCP) of the outer tag; 0 when untagged.
    pub outer_pcp: u8,
    /// Tags read, 0 to [`MAX_TAGS`].
    pub count: u8,
    /// EtherType after the tags.
    pub ethertype: EtherType,
    /// Where the payload after the tags starts, from the start of the frame.
    pub payload_offset: usize,
}

/// Tags a frame may carry: an 802.1ad S-tag over an 802.1Q C-tag (QinQ), as access
/// networks stack them.
pub const MAX_TAGS: u8 = 2;

/// Reads an Ethernet header and up to [`MAX_TAGS`] VLAN tags of either TPID (0x8100 or
/// 0x88a8 in either position: older switches stack 0x8100 twice), as the fast path's
/// classifier does. `Truncated` when the frame ends inside them; `Malformed` for a third
/// tag or the reserved VID 4095, which the classifier drops too, so the slow path never
/// accepts a frame the fast path would not.
pub fn skip_tags(frame: &[u8]) -> Result<Tags> {
    let eth = EthernetFrame::new_checked(frame)?;
    let mut t = Tags {
        outer_vid: 0,
        inner_vid: 0,
        outer_pcp: 0,
        count: 0,
        ethertype: eth.ethertype(),
        payload_offset: EthernetFrame::<&[u8]>::HEADER_LEN,
    };
    while t.ethertype.is_vlan() {
        if t.count == MAX_TAGS {
            return Err(WireError::Malformed);
        }
        let tag = VlanPacket::new_checked(frame.get(t.payload_offset..).unwrap_or_default())?;
        if tag.vid() > VID_MAX {
            return Err(WireError::Malformed);
        }
        if t.count == 0 {
            t.outer_vid = tag.vid();
            t.outer_pcp = tag.pcp();
        } else {
            t.inner_vid = tag.vid();
        }
        t.ethertype = tag.ethertype();
        t.payload_offset += VlanPacket::<&[u8]>::HEADER_LEN;
        t.count += 1;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{hex, EthernetFrame};
    use proptest::prelude::*;

    /// A QinQ frame head as an access switch sends it (802.1ad S-tag 100, 802.1Q C-tag 200
    /// with PCP 5, IPv4): TPID 88a8 TCI 0064, TPID 8100 TCI a0c8.
    const QINQ: &str = "001122334455 66778899aabb 88a8 0064 8100 a0c8 0800";

    #[test]
    fn parses_captured_qinq() {
        let b = hex(QINQ);
        let eth = EthernetFrame::new_checked(&b[..]).expect("eth");
        assert_eq!(eth.ethertype(), EtherType::QINQ);
        let outer = VlanRepr::parse(&VlanPacket::new_checked(eth.payload()).expect("s-tag"))
            .expect("parse");
        assert_eq!(
            outer,
            VlanRepr {
                pcp: 0,
                dei: false,
                vid: 100,
                ethertype: EtherType::VLAN
            }
        );
        let inner_p = VlanPacket::new_checked(&eth.payload()[4..]).expect("c-tag");
        let inner = VlanRepr::parse(&inner_p).expect("parse");
        assert_eq!(
            inner,
            VlanRepr {
                pcp: 5,
                dei: false,
                vid: 200,
                ethertype: EtherType::IPV4
            }
        );
        assert!(inner_p.payload().is_empty());
    }

    #[test]
    fn reserved_vid_and_short_tag_are_rejected() {
        let p = VlanPacket::new_checked(&[0x0f, 0xff, 0x08, 0x00][..]).expect("len");
        assert_eq!(VlanRepr::parse(&p), Err(WireError::Malformed));
        assert_eq!(
            VlanPacket::new_checked(&[0u8; 3][..]).err(),
            Some(WireError::Truncated)
        );
    }

    #[test]
    fn skip_tags_known_answers() {
        // The QinQ head above, then untagged and single-tagged heads of the same frame.
        let qinq = hex(QINQ);
        assert_eq!(
            skip_tags(&qinq),
            Ok(Tags {
                outer_vid: 100,
                inner_vid: 200,
                outer_pcp: 0,
                count: 2,
                ethertype: EtherType::IPV4,
                payload_offset: 22
            })
        );
        let untagged = hex("001122334455 66778899aabb 0806");
        assert_eq!(
            skip_tags(&untagged),
            Ok(Tags {
                outer_vid: 0,
                inner_vid: 0,
                outer_pcp: 0,
                count: 0,
                ethertype: EtherType::ARP,
                payload_offset: 14
            })
        );
        // 802.1Q twice, as older switches stack it.
        let q_in_q = hex("001122334455 66778899aabb 8100 0007 8100 0fa0 0800 45");
        let t = skip_tags(&q_in_q).expect("parses");
        assert_eq!((t.outer_vid, t.inner_vid, t.payload_offset), (7, 4000, 22));
        assert_eq!(q_in_q[t.payload_offset], 0x45);
        // The outer tag's priority: TCI a00a is PCP 5, VID 10.
        let prio = hex("001122334455 66778899aabb 8100 a00a 0800");
        let t = skip_tags(&prio).expect("parses");
        assert_eq!((t.outer_pcp, t.outer_vid, t.count), (5, 10, 1));
    }

    #[test]
    fn skip_tags_rejects_what_the_classifier_drops() {
        let three = hex("001122334455 66778899aabb 88a8 0001 8100 0002 8100 0003 0800");
        assert_eq!(skip_tags(&three), Err(WireError::Malformed));
        let reserved = hex("001122334455 66778899aabb 8100 0fff 0800");
        assert_eq!(skip_tags(&reserved), Err(WireError::Malformed));
        let b = hex(QINQ);
        for len in 0..b.len() {
            assert_eq!(skip_tags(&b[..len]), Err(WireError::Truncated), "{len}");
        }
    }

    proptest! {
        #[test]
        fn repr_round_trip(pcp in 0u8..8, dei in any::<bool>(), vid in 0u16..=VID_MAX, t in any::<u16>()) {
            let r = VlanRepr { pcp, dei, vid, ethertype: EtherType(t) };
            let mut buf = [0u8; 4];
            r.emit(&mut VlanPacket::new_unchecked(&mut buf[..])).expect("emit");
            prop_assert_eq!(VlanRepr::parse(&VlanPacket::new_checked(&buf[..]).expect("len")), Ok(r));
        }

        #[test]
        fn bytes_round_trip(b in any::<[u8; 4]>()) {
            let p = VlanPacket::new_checked(&b[..]).expect("len");
            if let Ok(r) = VlanRepr::parse(&p) {
                let mut out = [0u8; 4];
                r.emit(&mut VlanPacket::new_unchecked(&mut out[..])).expect("emit");
                prop_assert_eq!(out, b);
            } else {
                prop_assert_eq!(p.vid(), 0x0fff);
            }
        }
    }
}
