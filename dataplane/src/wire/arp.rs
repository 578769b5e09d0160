//! ARP for IPv4 over Ethernet (RFC 826).

use super::{get_u16, put_u16, MacAddr, Result, WireError};
use std::net::Ipv4Addr;

/// ARP operation code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpOperation {
    /// 1: who-has.
    Request,
    /// 2: is-at.
    Reply,
    /// Any other code (RARP, InARP, …).
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(v: u16) -> Self {
        match v {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            o => ArpOperation::Unknown(o),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(v: ArpOperation) -> u16 {
        match v {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(o) => o,
        }
    }
}

/// Hardware type Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;
/// Protocol type IPv4.
pub const PTYPE_IPV4: u16 = 0x0800;

/// A view of an ARP packet. Address getters assume the Ethernet/IPv4 layout (6- and 4-byte
/// addresses), which `new_checked` guarantees the buffer can hold; [`ArpRepr::parse`] checks
/// the length fields really say so.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

mod field {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Length of an Ethernet/IPv4 ARP packet.
    pub const LEN: usize = 28;

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

    /// `Err(Truncated)` when shorter than an Ethernet/IPv4 ARP packet.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < Self::LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// Hardware type.
    pub fn hardware_type(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::HTYPE)
    }

    /// Protocol type.
    pub fn protocol_type(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::PTYPE)
    }

    /// Hardware address length.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Operation.
    pub fn operation(&self) -> ArpOperation {
        get_u16(self.buffer.as_ref(), field::OPER).into()
    }

    fn mac_at(&self, off: usize) -> MacAddr {
        let mut a = [0u8; 6];
        a.copy_from_slice(&self.buffer.as_ref()[off..off + 6]);
        MacAddr(a)
    }

    fn ip_at(&self, off: usize) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[off], b[off + 1], b[off + 2], b[off + 3])
    }

    /// Sender hardware address.
    pub fn sender_hardware_addr(&self) -> MacAddr {
        self.mac_at(field::SHA)
    }

    /// Sender protocol address.
    pub fn sender_protocol_addr(&self) -> Ipv4Addr {
        self.ip_at(field::SPA)
    }

    /// Target hardware address.
    pub fn target_hardware_addr(&self) -> MacAddr {
        self.mac_at(field::THA)
    }

    /// Target protocol address.
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        self.ip_at(field::TPA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the fixed Ethernet/IPv4 preamble and the operation.
    pub fn set_ethernet_ipv4(&mut self, op: ArpOperation) {
        let b = self.buffer.as_mut();
        put_u16(b, field::HTYPE, HTYPE_ETHERNET);
        put_u16(b, field::PTYPE, PTYPE_IPV4);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
        put_u16(b, field::OPER, op.into());
    }

    /// Sets the sender addresses.
    pub fn set_sender(&mut self, mac: MacAddr, ip: Ipv4Addr) {
        let b = self.buffer.as_mut();
        b[field::SHA..field::SHA + 6].copy_from_slice(&mac.0);
        b[field::SPA..field::SPA + 4].copy_from_slice(&ip.octets());
    }

    /// Sets the target addresses.
    pub fn set_target(&mut self, mac: MacAddr, ip: Ipv4Addr) {
        let b = self.buffer.as_mut();
        b[field::THA..field::THA + 6].copy_from_slice(&mac.0);
        b[field::TPA..field::TPA + 4].copy_from_slice(&ip.octets());
    }
}

/// A parsed Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpRepr {
    /// Operation.
    pub operation: ArpOperation,
    /// Sender hardware address.
    pub source_hardware_addr: MacAddr,
    /// Sender protocol address.
    pub source_protocol_addr: Ipv4Addr,
    /// Target hardware address.
    pub target_hardware_addr: MacAddr,
    /// Target protocol address.
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    /// Parses Ethernet/IPv4 ARP; other hardware or protocol types are `Unsupported`.
    pub fn parse<T: AsRef<[u8]>>(p: &ArpPacket<T>) -> Result<Self> {
        p.check_len()?;
        if p.hardware_type() != HTYPE_ETHERNET
            || p.protocol_type() != PTYPE_IPV4
            || p.hardware_len() != 6
            || p.protocol_len() != 4
        {
            return Err(WireError::Unsupported);
        }
        Ok(Self {
            operation: p.operation(),
            source_hardware_addr: p.sender_hardware_addr(),
            source_protocol_addr: p.sender_protocol_addr(),
            target_hardware_addr: p.target_hardware_addr(),
            target_protocol_addr: p.target_protocol_addr(),
        })
    }

    /// Bytes [`ArpRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        28
    }

    /// Writes the packet.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut ArpPacket<T>) -> Result<()> {
        p.check_len()?;
        p.set_ethernet_ipv4(self.operation);
        p.set_sender(self.source_hardware_addr, self.source_protocol_addr);
        p.set_target(self.target_hardware_addr, self.target_protocol_addr);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hex;
    use proptest::prelude::*;

    /// The ARP request of Wireshark's sample capture `arp-storm.pcap`: who has 24.166.173.159,
    /// tell 24.166.172.1 (00:07:0d:af:f4:54).
    const REQUEST: &str = "0001 0800 06 04 0001 00070daff454 18a6ac01 000000000000 18a6ad9f";

    #[test]
    fn parses_captured_request() {
        let b = hex(REQUEST);
        let r = ArpRepr::parse(&ArpPacket::new_checked(&b[..]).expect("len")).expect("parse");
        assert_eq!(
            r,
            ArpRepr {
                operation: ArpOperation::Request,
                source_hardware_addr: "00:07:0d:af:f4:54".parse().expect("mac"),
                source_protocol_addr: Ipv4Addr::new(24, 166, 172, 1),
                target_hardware_addr: MacAddr::ZERO,
                target_protocol_addr: Ipv4Addr::new(24, 166, 173, 159),
            }
        );
        let mut out = [0u8; 28];
        r.emit(&mut ArpPacket::new_unchecked(&mut out[..]))
            .expect("emit");
        assert_eq!(&out[..], &b[..]);
    }

    #[test]
    fn rejects_non_ethernet_and_short() {
        let mut b = hex(REQUEST);
        b[1] = 6; // IEEE 802 hardware type
        assert_eq!(
            ArpRepr::parse(&ArpPacket::new_checked(&b[..]).expect("len")),
            Err(WireError::Unsupported)
        );
        assert_eq!(
            ArpPacket::new_checked(&b[..27]).err(),
            Some(WireError::Truncated)
        );
    }

    proptest! {
        #[test]
        fn repr_round_trip(op in any::<u16>(), sha in any::<[u8; 6]>(), spa in any::<[u8; 4]>(), tha in any::<[u8; 6]>(), tpa in any::<[u8; 4]>()) {
            let r = ArpRepr {
                operation: op.into(),
                source_hardware_addr: MacAddr(sha),
                source_protocol_addr: spa.into(),
                target_hardware_addr: MacAddr(tha),
                target_protocol_addr: tpa.into(),
            };
            let mut b = [0u8; 28];
            r.emit(&mut ArpPacket::new_unchecked(&mut b[..])).expect("emit");
            let back = ArpRepr::parse(&ArpPacket::new_checked(&b[..]).expect("len")).expect("parse");
            prop_assert_eq!(u16::from(back.operation), op);
            prop_assert_eq!(back.source_hardware_addr, r.source_hardware_addr);
            prop_assert_eq!(back.target_protocol_addr, r.target_protocol_addr);
            prop_assert_eq!(back.source_protocol_addr, r.source_protocol_addr);
            prop_assert_eq!(back.target_hardware_addr, r.target_hardware_addr);
        }

        #[test]
        fn bytes_round_trip(mut b in any::<[u8; 28]>()) {
            b[..6].copy_from_slice(&[0, 1, 8, 0, 6, 4]);
            let r = ArpRepr::parse(&ArpPacket::new_checked(&b[..]).expect("len")).expect("parse");
            let mut out = [0u8; 28];
            r.emit(&mut ArpPacket::new_unchecked(&mut out[..])).expect("emit");
            prop_assert_eq!(out, b);
        }
    }
}
