//! IPv4 header (RFC 791) with its header checksum (RFC 1071).

use super::checksum;
use super::{get_u16, put_u16, Result, WireError};
use std::net::Ipv4Addr;

/// IP protocol numbers the gateway looks at (IANA registry).
pub mod protocol {
    /// ICMP, RFC 792.
    pub const ICMP: u8 = 1;
    /// TCP, RFC 9293.
    pub const TCP: u8 = 6;
    /// UDP, RFC 768.
    pub const UDP: u8 = 17;
}

/// Sets the TTL of the header starting `h` and updates its checksum incrementally.
///
/// RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), is HC + (m - m') in one's complement arithmetic,
/// and only the TTL byte of the word m changes: m - m' is the byte pair [old - new, 0] when
/// the TTL falls (every forwarding hop), its complement when it rises. One add and one carry
/// fold then do, without the three-term sum. Eqn. 3 never yields 0xffff (a sum of terms not
/// all zero never folds to zero), so neither does this. The words are used as they lie in
/// memory, without byte swaps: a one's complement sum is the same in either byte order
/// (RFC 1071 section 2(B)).
#[inline(always)]
pub fn set_ttl_update_checksum(h: &mut [u8; 12], ttl: u8) {
    let old = h[field::TTL];
    let delta = if ttl <= old {
        u16::from_ne_bytes([old - ttl, 0])
    } else {
        !u16::from_ne_bytes([ttl - old, 0])
    };
    let check = u16::from_ne_bytes([h[field::CHECKSUM], h[field::CHECKSUM + 1]]);
    let s = u32::from(check) + u32::from(delta);
    let s = ((s & 0xffff) + (s >> 16)) as u16;
    let c = if s == 0xffff { 0 } else { s };
    h[field::TTL] = ttl;
    h[field::CHECKSUM..field::CHECKSUM + 2].copy_from_slice(&c.to_ne_bytes());
}

/// A view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

mod field {
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Length of a header without options.
    pub const MIN_HEADER_LEN: usize = 20;

    /// A view without length check (emit paths only).
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// A view whose getters and [`Ipv4Packet::payload`] cannot fail.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds the fixed header, that IHL and total length are
    /// consistent, and that the buffer holds `total_len` bytes (more is link padding).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < Self::MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let hl = self.header_len();
        let tl = usize::from(self.total_len());
        if hl < Self::MIN_HEADER_LEN || tl < hl {
            return Err(WireError::Malformed);
        }
        if len < tl {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// IP version (4 for a valid packet; the view does not insist).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The former TOS byte: DSCP (6 bits) and ECN (2 bits).
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    /// Total length of header and payload.
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// Don't fragment flag.
    pub fn dont_frag(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF) & 0x4000 != 0
    }

    /// More fragments flag.
    pub fn more_frags(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF) & 0x2000 != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (get_u16(self.buffer.as_ref(), field::FLG_OFF) & 0x1fff) << 3
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum as stored.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(
            b[field::SRC],
            b[field::SRC + 1],
            b[field::SRC + 2],
            b[field::SRC + 3],
        )
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(
            b[field::DST],
            b[field::DST + 1],
            b[field::DST + 2],
            b[field::DST + 3],
        )
    }

    /// True when the header (with options) sums to all ones.
    pub fn verify_checksum(&self) -> bool {
        let hl = self.header_len().min(self.buffer.as_ref().len());
        checksum::fold(checksum::sum(&self.buffer.as_ref()[..hl])) == 0xffff
    }

    /// Bytes from the end of the header to `total_len` (link padding excluded).
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = usize::from(self.total_len()).min(b.len());
        b.get(self.header_len()..end).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4).
    pub fn set_version_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }

    /// Sets DSCP and ECN.
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[field::TOS] = v;
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::LENGTH, v);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::IDENT, v);
    }

    /// Sets flags and fragment offset (in bytes; must be a multiple of 8).
    pub fn set_frag(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let v =
            (u16::from(dont_frag) << 14) | (u16::from(more_frags) << 13) | ((offset >> 3) & 0x1fff);
        put_u16(self.buffer.as_mut(), field::FLG_OFF, v);
    }

    /// Sets the TTL without touching the checksum.
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    /// Sets the TTL and updates the checksum incrementally (RFC 1624), so forwarding need not
    /// sum the header again (see [`set_ttl_update_checksum`]). A buffer too short for the
    /// checksum field, which a checked view never is, is left alone.
    #[inline]
    pub fn set_ttl_update_checksum(&mut self, ttl: u8) {
        if let Some(h) = self.buffer.as_mut().first_chunk_mut() {
            set_ttl_update_checksum(h, ttl);
        }
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = v;
    }

    /// Sets the stored checksum.
    pub fn set_checksum(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC..field::SRC + 4].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST..field::DST + 4].copy_from_slice(&a.octets());
    }

    /// Computes and stores the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len().min(self.buffer.as_ref().len());
        let c = checksum::internet(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }

    /// Payload bytes, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let end = usize::from(self.total_len());
        let b = self.buffer.as_mut();
        let end = end.min(b.len());
        b.get_mut(hl..end).unwrap_or(&mut [])
    }
}

/// A parsed IPv4 header without options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Payload protocol.
    pub protocol: u8,
    /// Payload length (total length minus 20).
    pub payload_len: u16,
    /// Time to live.
    pub ttl: u8,
    /// DSCP and ECN.
    pub dscp_ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't fragment.
    pub dont_frag: bool,
    /// More fragments.
    pub more_frags: bool,
    /// Fragment offset in bytes (multiple of 8).
    pub frag_offset: u16,
}

impl Ipv4Repr {
    /// Parses a header; a bad version is `Malformed`, a bad checksum `Checksum`, options
    /// `Unsupported`.
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) -> Result<Self> {
        p.check_len()?;
        if p.version() != 4 {
            return Err(WireError::Malformed);
        }
        if !p.verify_checksum() {
            return Err(WireError::Checksum);
        }
        if p.header_len() != Ipv4Packet::<&[u8]>::MIN_HEADER_LEN {
            return Err(WireError::Unsupported);
        }
        Ok(Self {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: p.total_len() - 20,
            ttl: p.ttl(),
            dscp_ecn: p.dscp_ecn(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
            more_frags: p.more_frags(),
            frag_offset: p.frag_offset(),
        })
    }

    /// Bytes of the header [`Ipv4Repr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        20
    }

    /// Writes the header with a correct checksum; the buffer must hold header and payload.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Ipv4Packet<T>) -> Result<()> {
        let total = usize::from(self.payload_len) + 20;
        if total > usize::from(u16::MAX) || self.frag_offset & 7 != 0 {
            return Err(WireError::Malformed);
        }
        if p.buffer.as_ref().len() < total {
            return Err(WireError::Truncated);
        }
        p.set_version_header_len(20);
        p.set_dscp_ecn(self.dscp_ecn);
        p.set_total_len(total as u16);
        p.set_ident(self.ident);
        p.set_frag(self.dont_frag, self.more_frags, self.frag_offset);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
        p.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hex;
    use proptest::prelude::*;

    /// The captured UDP/IPv4 header used as the worked checksum example in many references
    /// (Wikipedia "IPv4 header checksum"): 192.168.0.1 → 192.168.0.199, TTL 64, DF, checksum b861.
    const HEADER: &str = "4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7";

    fn captured() -> Vec<u8> {
        let mut b = hex(HEADER);
        b.resize(0x73, 0);
        b
    }

    #[test]
    fn parses_captured_header() {
        let b = captured();
        let p = Ipv4Packet::new_checked(&b[..]).expect("len");
        assert!(p.verify_checksum());
        let r = Ipv4Repr::parse(&p).expect("parse");
        assert_eq!(r.src_addr, Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(r.dst_addr, Ipv4Addr::new(192, 168, 0, 199));
        assert_eq!(
            (r.protocol, r.ttl, r.payload_len),
            (protocol::UDP, 64, 0x73 - 20)
        );
        assert!(r.dont_frag && !r.more_frags && r.frag_offset == 0);
        let mut out = vec![0u8; b.len()];
        r.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]))
            .expect("emit");
        assert_eq!(out[..20], b[..20]);
    }

    #[test]
    fn rejects_bad_checksum_version_lengths() {
        let mut b = captured();
        b[11] ^= 1;
        assert_eq!(
            Ipv4Repr::parse(&Ipv4Packet::new_checked(&b[..]).expect("len")),
            Err(WireError::Checksum)
        );
        let b = captured();
        assert_eq!(
            Ipv4Packet::new_checked(&b[..0x72]).err(),
            Some(WireError::Truncated)
        );
        let mut b = captured();
        b[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(WireError::Malformed)
        );
        let mut b = captured();
        b[0] = 0x65;
        let p = Ipv4Packet::new_checked(&b[..]).expect("len");
        assert_eq!(Ipv4Repr::parse(&p), Err(WireError::Malformed));
    }

    #[test]
    fn ttl_update_known_answers() {
        // A common worked example of the IPv4 header checksum (0xb861), TTL 64 -> 63.
        let mut h = crate::wire::hex("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7");
        // The header alone: its total length covers a payload not given here.
        let mut p = Ipv4Packet::new_unchecked(&mut h[..]);
        p.set_ttl_update_checksum(63);
        assert_eq!((p.ttl(), p.checksum()), (63, 0xb961));
        // The one's complement add lands on 0xffff (-0), where RFC 1624 eqn. 3 and a full
        // recompute give 0x0000.
        let mut h = crate::wire::hex("4500 0073 b961 4000 4011 feff c0a8 0001 c0a8 00c7");
        let mut p = Ipv4Packet::new_unchecked(&mut h[..]);
        p.set_ttl_update_checksum(63);
        assert_eq!(p.checksum(), 0x0000);
        assert!(p.verify_checksum());
    }

    #[test]
    fn ttl_rewrite_keeps_checksum_valid() {
        let mut b = captured();
        let mut p = Ipv4Packet::new_checked(&mut b[..]).expect("len");
        for ttl in [63, 1, 0, 255] {
            p.set_ttl_update_checksum(ttl);
            assert!(p.verify_checksum(), "ttl {ttl}");
        }
    }

    fn arb_repr() -> impl Strategy<Value = Ipv4Repr> {
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u8>(),
            0u16..200,
            any::<u8>(),
            any::<u8>(),
            any::<u16>(),
            any::<bool>(),
            any::<bool>(),
            0u16..8192,
        )
            .prop_map(
                |(
                    s,
                    d,
                    protocol,
                    payload_len,
                    ttl,
                    dscp_ecn,
                    ident,
                    dont_frag,
                    more_frags,
                    off,
                )| Ipv4Repr {
                    src_addr: s.into(),
                    dst_addr: d.into(),
                    protocol,
                    payload_len,
                    ttl,
                    dscp_ecn,
                    ident,
                    dont_frag,
                    more_frags,
                    frag_offset: off << 3,
                },
            )
    }

    proptest! {
        #[test]
        fn ttl_update_is_the_recomputed_checksum(mut h in any::<[u8; 20]>(), ttl in any::<u8>()) {
            h[10..12].fill(0);
            let c = checksum::internet(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            let mut p = Ipv4Packet::new_unchecked(&mut h[..]);
            p.set_ttl_update_checksum(ttl);
            let stored = p.checksum();
            h[10..12].fill(0);
            prop_assert_eq!(h[8], ttl);
            prop_assert_eq!(stored, checksum::internet(&h));
        }

        #[test]
        fn repr_round_trip(r in arb_repr()) {
            let mut b = vec![0u8; 20 + usize::from(r.payload_len)];
            r.emit(&mut Ipv4Packet::new_unchecked(&mut b[..])).expect("emit");
            prop_assert_eq!(Ipv4Repr::parse(&Ipv4Packet::new_checked(&b[..]).expect("len")), Ok(r));
        }

        #[test]
        fn bytes_round_trip(mut b in proptest::collection::vec(any::<u8>(), 20..80), reserved in any::<bool>()) {
            // Make the random bytes a plausible option-less header so parse accepts them.
            b[0] = 0x45;
            let len = b.len() as u16;
            b[2..4].copy_from_slice(&len.to_be_bytes());
            b[6] = (b[6] & 0x7f) | (u8::from(reserved) << 7);
            Ipv4Packet::new_unchecked(&mut b[..]).fill_checksum();
            let r = Ipv4Repr::parse(&Ipv4Packet::new_checked(&b[..]).expect("len")).expect("parse");
            let mut out = b.clone();
            out[..20].fill(0);
            r.emit(&mut Ipv4Packet::new_unchecked(&mut out[..])).expect("emit");
            // The reserved flag bit is not represented: emit writes it as zero.
            b[6] &= 0x7f;
            Ipv4Packet::new_unchecked(&mut b[..]).fill_checksum();
            prop_assert_eq!(out, b);
        }
    }
}
