//! MPLS label stack entry (RFC 3032 section 2.1; TC renamed from EXP by RFC 5462).

use super::{get_u32, put_u32, Result, WireError};

/// Labels 0..=15 are reserved (RFC 3032 section 2.1, IANA "Special-Purpose MPLS Label Values").
pub const LABEL_RESERVED_MAX: u32 = 15;
/// The largest 20-bit label.
pub const LABEL_MAX: u32 = (1 << 20) - 1;

/// A view of one label stack entry and what follows it.
#[derive(Debug, Clone)]
pub struct MplsPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> MplsPacket<T> {
    /// One label stack entry.
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

    /// `Err(Truncated)` when shorter than one entry.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < Self::HEADER_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    fn word(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 0)
    }

    /// The 20-bit label.
    pub fn label(&self) -> u32 {
        self.word() >> 12
    }

    /// Traffic class (RFC 5462).
    pub fn tc(&self) -> u8 {
        ((self.word() >> 9) & 7) as u8
    }

    /// Bottom of stack bit.
    pub fn bottom_of_stack(&self) -> bool {
        self.word() & 0x100 != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.word() as u8
    }

    /// Bytes after this entry (the next entry, or the payload at bottom of stack).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::HEADER_LEN..]
    }
}

/// The 32-bit entry for these fields; `label` is truncated to 20 bits, `tc` to 3.
#[inline]
pub fn encode(label: u32, tc: u8, bottom_of_stack: bool, ttl: u8) -> u32 {
    ((label & LABEL_MAX) << 12)
        | (u32::from(tc & 7) << 9)
        | (u32::from(bottom_of_stack) << 8)
        | u32::from(ttl)
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> MplsPacket<T> {
    /// Writes the whole entry at once (one store on the fast path).
    pub fn set_entry(&mut self, label: u32, tc: u8, bottom_of_stack: bool, ttl: u8) {
        put_u32(
            self.buffer.as_mut(),
            0,
            encode(label, tc, bottom_of_stack, ttl),
        );
    }

    /// Replaces the label, keeping TC, S and TTL.
    pub fn set_label(&mut self, label: u32) {
        let w = (self.word() & 0xfff) | ((label & LABEL_MAX) << 12);
        put_u32(self.buffer.as_mut(), 0, w);
    }

    /// Replaces the TTL.
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[3] = ttl;
    }
}

/// A parsed label stack entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MplsRepr {
    /// 20-bit label.
    pub label: u32,
    /// Traffic class, 0..=7.
    pub tc: u8,
    /// Bottom of stack.
    pub bottom_of_stack: bool,
    /// Time to live.
    pub ttl: u8,
}

impl MplsRepr {
    /// Reads an entry.
    pub fn parse<T: AsRef<[u8]>>(p: &MplsPacket<T>) -> Result<Self> {
        p.check_len()?;
        Ok(Self {
            label: p.label(),
            tc: p.tc(),
            bottom_of_stack: p.bottom_of_stack(),
            ttl: p.ttl(),
        })
    }

    /// Bytes [`MplsRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        4
    }

    /// Writes the entry; a label over 20 bits or TC over 3 bits is `Malformed`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut MplsPacket<T>) -> Result<()> {
        p.check_len()?;
        if self.label > LABEL_MAX || self.tc > 7 {
            return Err(WireError::Malformed);
        }
        p.set_entry(self.label, self.tc, self.bottom_of_stack, self.ttl);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{hex, EtherType, EthernetFrame};
    use proptest::prelude::*;

    /// Head of a two-label frame as LDP/VPN routers send it (layout of Wireshark's MPLS
    /// sample captures): EtherType 8847, label 29 (S=0), label 16 (S=1), both TTL 255, IPv4.
    const STACK: &str = "003088966b68 003096e6fc39 8847 0001d0ff 000101ff 45";

    #[test]
    fn parses_captured_stack() {
        let b = hex(STACK);
        let eth = EthernetFrame::new_checked(&b[..]).expect("eth");
        assert_eq!(eth.ethertype(), EtherType::MPLS_UNICAST);
        let top = MplsPacket::new_checked(eth.payload()).expect("top");
        assert_eq!(
            MplsRepr::parse(&top),
            Ok(MplsRepr {
                label: 29,
                tc: 0,
                bottom_of_stack: false,
                ttl: 255
            })
        );
        let bottom = MplsPacket::new_checked(top.payload()).expect("bottom");
        assert_eq!(
            MplsRepr::parse(&bottom),
            Ok(MplsRepr {
                label: 16,
                tc: 0,
                bottom_of_stack: true,
                ttl: 255
            })
        );
        assert_eq!(bottom.payload(), &[0x45]);
    }

    #[test]
    fn set_label_keeps_other_fields() {
        let mut b = [0u8; 4];
        let mut p = MplsPacket::new_unchecked(&mut b[..]);
        p.set_entry(1000, 5, true, 64);
        p.set_label(LABEL_MAX);
        p.set_ttl(63);
        assert_eq!(
            MplsRepr::parse(&MplsPacket::new_checked(&b[..]).expect("len")),
            Ok(MplsRepr {
                label: LABEL_MAX,
                tc: 5,
                bottom_of_stack: true,
                ttl: 63
            })
        );
    }

    #[test]
    fn emit_rejects_out_of_range() {
        let mut b = [0u8; 4];
        let r = MplsRepr {
            label: LABEL_MAX + 1,
            tc: 0,
            bottom_of_stack: true,
            ttl: 1,
        };
        assert_eq!(
            r.emit(&mut MplsPacket::new_unchecked(&mut b[..])),
            Err(WireError::Malformed)
        );
        assert_eq!(
            MplsPacket::new_checked(&b[..3]).err(),
            Some(WireError::Truncated)
        );
    }

    proptest! {
        #[test]
        fn repr_round_trip(label in 0u32..=LABEL_MAX, tc in 0u8..8, s in any::<bool>(), ttl in any::<u8>()) {
            let r = MplsRepr { label, tc, bottom_of_stack: s, ttl };
            let mut b = [0u8; 4];
            r.emit(&mut MplsPacket::new_unchecked(&mut b[..])).expect("emit");
            prop_assert_eq!(MplsRepr::parse(&MplsPacket::new_checked(&b[..]).expect("len")), Ok(r));
        }

        #[test]
        fn bytes_round_trip(b in any::<[u8; 4]>()) {
            let r = MplsRepr::parse(&MplsPacket::new_checked(&b[..]).expect("len")).expect("any entry parses");
            let mut out = [0u8; 4];
            r.emit(&mut MplsPacket::new_unchecked(&mut out[..])).expect("emit");
            prop_assert_eq!(out, b);
        }
    }
}
