//! UDP header (RFC 768).

use super::checksum;
use super::{get_u16, put_u16, Result, WireError};
use std::net::Ipv4Addr;

/// DHCP server port (RFC 2131).
pub const DHCP_SERVER_PORT: u16 = 67;
/// DHCP client port (RFC 2131).
pub const DHCP_CLIENT_PORT: u16 = 68;

/// A view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Length of the header.
    pub const HEADER_LEN: usize = 8;

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

    /// Checks the header fits and the length field covers the header and fits the buffer.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < Self::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let l = usize::from(self.len());
        if l < Self::HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if l > len {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 0)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 2)
    }

    /// Length of header and payload.
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 4)
    }

    /// True when the length field says only a header.
    pub fn is_empty(&self) -> bool {
        self.len() as usize <= Self::HEADER_LEN
    }

    /// Checksum as stored (0 = not computed, RFC 768).
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 6)
    }

    /// Payload up to the length field.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        b.get(Self::HEADER_LEN..usize::from(self.len()))
            .unwrap_or(&[])
    }

    fn pseudo_sum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u32 {
        let l = usize::from(self.len()).min(self.buffer.as_ref().len());
        checksum::sum(&src.octets())
            + checksum::sum(&dst.octets())
            + u32::from(super::ipv4::protocol::UDP)
            + u32::from(self.len())
            + checksum::sum(&self.buffer.as_ref()[..l])
    }

    /// True when the checksum is absent or verifies over the IPv4 pseudo-header.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.checksum() == 0 || checksum::fold(self.pseudo_sum(src, dst)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), 0, v);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), 2, v);
    }

    /// Sets the length field.
    pub fn set_len(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), 4, v);
    }

    /// Sets the stored checksum.
    pub fn set_checksum(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), 6, v);
    }

    /// Computes the checksum over the IPv4 pseudo-header; a result of 0 is sent as ffff.
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = !checksum::fold(self.pseudo_sum(src, dst));
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

/// A parsed UDP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length.
    pub payload_len: u16,
}

impl UdpRepr {
    /// Reads a header; checksum verification needs the IP addresses, see
    /// [`UdpPacket::verify_checksum`].
    pub fn parse<T: AsRef<[u8]>>(p: &UdpPacket<T>) -> Result<Self> {
        p.check_len()?;
        Ok(Self {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload_len: p.len() - 8,
        })
    }

    /// Bytes of the header.
    pub const fn buffer_len(&self) -> usize {
        8
    }

    /// Writes the header with checksum 0 (absent); call [`UdpPacket::fill_checksum`] after the
    /// payload is in place.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut UdpPacket<T>) -> Result<()> {
        let total = usize::from(self.payload_len) + 8;
        if total > usize::from(u16::MAX) {
            return Err(WireError::Malformed);
        }
        if p.buffer.as_ref().len() < total {
            return Err(WireError::Truncated);
        }
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_len(total as u16);
        p.set_checksum(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{hex, Ipv4Packet};
    use proptest::prelude::*;

    /// A DHCPDISCOVER as ISC dhclient sends it, IPv4 and UDP headers plus the first BOOTP
    /// bytes: 0.0.0.0:68 → 255.255.255.255:67, checksum 79a6 (computed by hand, RFC 1071).
    const DISCOVER: &str = "4500 0148 0000 0000 4011 79a6 0000 0000 ffff ffff
                            0044 0043 0134 0000 0101 0600";

    #[test]
    fn parses_dhcp_discover_ports() {
        let mut b = hex(DISCOVER);
        b.resize(0x148, 0);
        let ip = Ipv4Packet::new_checked(&b[..]).expect("ip");
        assert!(ip.verify_checksum());
        let u = UdpPacket::new_checked(ip.payload()).expect("udp");
        let r = UdpRepr::parse(&u).expect("parse");
        assert_eq!(
            r,
            UdpRepr {
                src_port: DHCP_CLIENT_PORT,
                dst_port: DHCP_SERVER_PORT,
                payload_len: 0x134 - 8
            }
        );
        assert_eq!(&u.payload()[..4], &[1, 1, 6, 0]);
    }

    #[test]
    fn checksum_fill_then_verify_and_detect_corruption() {
        let (s, d) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1));
        let mut b = [0u8; 13];
        UdpRepr {
            src_port: 5000,
            dst_port: 53,
            payload_len: 5,
        }
        .emit(&mut UdpPacket::new_unchecked(&mut b[..]))
        .expect("emit");
        b[8..].copy_from_slice(b"hello");
        UdpPacket::new_unchecked(&mut b[..]).fill_checksum(s, d);
        assert!(UdpPacket::new_checked(&b[..])
            .expect("len")
            .verify_checksum(s, d));
        b[9] ^= 0x20;
        assert!(!UdpPacket::new_checked(&b[..])
            .expect("len")
            .verify_checksum(s, d));
    }

    #[test]
    fn length_field_is_checked() {
        assert_eq!(
            UdpPacket::new_checked(&[0, 1, 0, 2, 0, 7, 0, 0][..]).err(),
            Some(WireError::Malformed)
        );
        assert_eq!(
            UdpPacket::new_checked(&[0, 1, 0, 2, 0, 9, 0, 0][..]).err(),
            Some(WireError::Truncated)
        );
    }

    proptest! {
        #[test]
        fn repr_round_trip(src_port in any::<u16>(), dst_port in any::<u16>(), payload_len in 0u16..300) {
            let r = UdpRepr { src_port, dst_port, payload_len };
            let mut b = vec![0u8; 8 + usize::from(payload_len)];
            r.emit(&mut UdpPacket::new_unchecked(&mut b[..])).expect("emit");
            prop_assert_eq!(UdpRepr::parse(&UdpPacket::new_checked(&b[..]).expect("len")), Ok(r));
        }

        #[test]
        fn bytes_round_trip(mut b in proptest::collection::vec(any::<u8>(), 8..64)) {
            let len = b.len() as u16;
            b[4..6].copy_from_slice(&len.to_be_bytes());
            b[6..8].fill(0);
            let r = UdpRepr::parse(&UdpPacket::new_checked(&b[..]).expect("len")).expect("parse");
            let mut out = b.clone();
            out[..8].fill(0xee);
            r.emit(&mut UdpPacket::new_unchecked(&mut out[..])).expect("emit");
            prop_assert_eq!(out, b);
        }
    }
}
