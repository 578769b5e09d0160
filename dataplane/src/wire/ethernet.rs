//! Ethernet II (IEEE 802.3 clause 3.1.1 with an EtherType, RFC 894).

use super::{get_u16, put_u16, Result, WireError};
use core::fmt;
use core::str::FromStr;

/// A 48-bit IEEE MAC address.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00 (unknown target in an ARP request).
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The address in the first six bytes of `b`; `None` when shorter.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        b.get(..6)?.try_into().ok().map(MacAddr)
    }

    /// The six octets.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// True for group (multicast or broadcast) addresses: I/G bit set.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }

    /// The address as the low 48 bits of an integer, first octet most significant.
    pub fn to_u64(self) -> u64 {
        let b = self.0;
        u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// Inverse of [`MacAddr::to_u64`]; bits above 48 are ignored.
    pub fn from_u64(v: u64) -> Self {
        let b = v.to_be_bytes();
        MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A MAC address text that is not six colon- or dash-separated hex octets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}")]
pub struct MacAddrParseError(pub String);

impl FromStr for MacAddr {
    type Err = MacAddrParseError;
    fn from_str(s: &str) -> core::result::Result<Self, Self::Err> {
        let err = || MacAddrParseError(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.trim().split([':', '-']);
        for o in out.iter_mut() {
            let p = parts.next().ok_or_else(err)?;
            if p.len() != 2 {
                return Err(err());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

/// EtherType values this gateway looks at (IEEE registry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EtherType(pub u16);

impl EtherType {
    /// IPv4, RFC 894.
    pub const IPV4: EtherType = EtherType(0x0800);
    /// ARP, RFC 826.
    pub const ARP: EtherType = EtherType(0x0806);
    /// IEEE 802.1Q customer VLAN tag (C-tag).
    pub const VLAN: EtherType = EtherType(0x8100);
    /// IEEE 802.1ad service VLAN tag (S-tag, QinQ outer).
    pub const QINQ: EtherType = EtherType(0x88a8);
    /// MPLS unicast, RFC 5332.
    pub const MPLS_UNICAST: EtherType = EtherType(0x8847);
    /// MPLS multicast/upstream-assigned, RFC 5332.
    pub const MPLS_MULTICAST: EtherType = EtherType(0x8848);
    /// IPv6, RFC 2464.
    pub const IPV6: EtherType = EtherType(0x86dd);

    /// True for the tag protocol identifiers of 802.1Q and 802.1ad.
    pub fn is_vlan(self) -> bool {
        self == Self::VLAN || self == Self::QINQ
    }
}

/// A view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

mod field {
    use core::ops::Range;
    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Length of the header: destination, source, EtherType.
    pub const HEADER_LEN: usize = 14;

    /// A view without length check; getters panic on a short buffer. Use only on buffers the
    /// caller sized itself (emit paths).
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// A view whose getters cannot fail.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// `Err(Truncated)` when the buffer is shorter than the header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < Self::HEADER_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination address.
    pub fn dst_addr(&self) -> MacAddr {
        let b = self.buffer.as_ref();
        let mut a = [0u8; 6];
        a.copy_from_slice(&b[field::DESTINATION]);
        MacAddr(a)
    }

    /// Source address.
    pub fn src_addr(&self) -> MacAddr {
        let b = self.buffer.as_ref();
        let mut a = [0u8; 6];
        a.copy_from_slice(&b[field::SOURCE]);
        MacAddr(a)
    }

    /// EtherType (or TPID when the frame is tagged).
    pub fn ethertype(&self) -> EtherType {
        EtherType(get_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// Bytes after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&a.0);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&a.0);
    }

    /// Sets the EtherType.
    pub fn set_ethertype(&mut self, t: EtherType) {
        put_u16(self.buffer.as_mut(), field::ETHERTYPE, t.0);
    }

    /// Bytes after the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[Self::HEADER_LEN..]
    }
}

/// The parsed Ethernet II header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthernetRepr {
    /// Source address.
    pub src_addr: MacAddr,
    /// Destination address.
    pub dst_addr: MacAddr,
    /// EtherType of the payload.
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Reads the header of a checked view.
    pub fn parse<T: AsRef<[u8]>>(f: &EthernetFrame<T>) -> Result<Self> {
        f.check_len()?;
        Ok(Self {
            src_addr: f.src_addr(),
            dst_addr: f.dst_addr(),
            ethertype: f.ethertype(),
        })
    }

    /// Bytes [`EthernetRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        14
    }

    /// Writes the header; `Err(Truncated)` when the buffer is too short.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, f: &mut EthernetFrame<T>) -> Result<()> {
        f.check_len()?;
        f.set_dst_addr(self.dst_addr);
        f.set_src_addr(self.src_addr);
        f.set_ethertype(self.ethertype);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hex;
    use proptest::prelude::*;

    // The first 14 bytes of the ARP request in Wireshark's sample capture `arp-storm.pcap`:
    // broadcast destination, source 00:07:0d:af:f4:54, EtherType ARP.
    const ARP_HEADER: &str = "ffffffffffff 00070daff454 0806";

    #[test]
    fn parses_captured_header() {
        let bytes = hex(ARP_HEADER);
        let f = EthernetFrame::new_checked(&bytes[..]).expect("long enough");
        let r = EthernetRepr::parse(&f).expect("parse");
        assert_eq!(r.dst_addr, MacAddr::BROADCAST);
        assert_eq!(r.src_addr, "00:07:0d:af:f4:54".parse().expect("mac"));
        assert_eq!(r.ethertype, EtherType::ARP);
        assert!(f.payload().is_empty());
    }

    #[test]
    fn short_buffer_is_truncated() {
        assert_eq!(
            EthernetFrame::new_checked(&[0u8; 13][..]).err(),
            Some(WireError::Truncated)
        );
    }

    #[test]
    fn mac_text_round_trip_and_rejects() {
        let m: MacAddr = "02-00-5E-10-00-01".parse().expect("dash form");
        assert_eq!(m.to_string(), "02:00:5e:10:00:01");
        assert_eq!(MacAddr::from_u64(m.to_u64()), m);
        for bad in [
            "",
            "02:00:5e:10:00",
            "02:00:5e:10:00:01:02",
            "2:00:5e:10:00:01",
            "zz:00:00:00:00:00",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn repr_round_trip(src in any::<[u8; 6]>(), dst in any::<[u8; 6]>(), t in any::<u16>()) {
            let r = EthernetRepr { src_addr: MacAddr(src), dst_addr: MacAddr(dst), ethertype: EtherType(t) };
            let mut buf = [0u8; 14];
            r.emit(&mut EthernetFrame::new_unchecked(&mut buf[..])).expect("emit");
            let back = EthernetRepr::parse(&EthernetFrame::new_checked(&buf[..]).expect("len")).expect("parse");
            prop_assert_eq!(back, r);
        }

        #[test]
        fn bytes_round_trip(bytes in proptest::collection::vec(any::<u8>(), 14..40)) {
            let r = EthernetRepr::parse(&EthernetFrame::new_checked(&bytes[..]).expect("len")).expect("parse");
            let mut out = bytes.clone();
            out[..14].fill(0);
            r.emit(&mut EthernetFrame::new_unchecked(&mut out[..])).expect("emit");
            prop_assert_eq!(out, bytes);
        }
    }
}
