//! IPv4 prefixes (`198.18.1.0/24`), parsed once when the configuration is read.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network: an address whose bits beyond the prefix length are zero, and the length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    len: u8,
}

/// Why a text or an (address, length) pair is not an IPv4 network.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Ipv4NetError {
    /// Not `a.b.c.d/len`.
    #[error("{0:?} is not an IPv4 prefix like \"198.18.1.0/24\"")]
    Syntax(String),
    /// A length over 32.
    #[error("prefix length {0} is over 32")]
    Length(u8),
    /// Bits set beyond the length: likely a typo, and ambiguous (host or network meant?).
    #[error("{addr}/{len} has host bits set; the network is {}/{len}", Ipv4Net::masked(*addr, *len))]
    HostBits {
        /// The address given.
        addr: Ipv4Addr,
        /// The length given.
        len: u8,
    },
}

impl Ipv4Net {
    /// The network `addr/len`; refuses a length over 32 and host bits set.
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Self, Ipv4NetError> {
        if len > 32 {
            return Err(Ipv4NetError::Length(len));
        }
        if Self::masked(addr, len) != addr {
            return Err(Ipv4NetError::HostBits { addr, len });
        }
        Ok(Ipv4Net { addr, len })
    }

    fn masked(addr: Ipv4Addr, len: u8) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(addr) & Self::mask_of(len))
    }

    fn mask_of(len: u8) -> u32 {
        // A shift by 32 overflows: /0 is the empty mask.
        u32::MAX
            .checked_shl(32 - u32::from(len.min(32)))
            .unwrap_or(0)
    }

    /// The network address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length, 0..=32.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// The netmask as a host-order word (`/24` is `0xffff_ff00`).
    pub fn mask(&self) -> u32 {
        Self::mask_of(self.len)
    }

    /// Whether `a` is in the network.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == u32::from(self.addr)
    }
}

impl FromStr for Ipv4Net {
    type Err = Ipv4NetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || Ipv4NetError::Syntax(s.to_owned());
        let (a, l) = s.trim().split_once('/').ok_or_else(syntax)?;
        let addr = a.parse().map_err(|_| syntax())?;
        // Digits only: u8's parser takes a leading '+'.
        if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        let len = l.parse().map_err(|_| syntax())?;
        Ipv4Net::new(addr, len)
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// An interface address: the port's own address and the length of its subnet's prefix
/// (`"198.18.9.1/30"`), as `ip addr add` takes it. A bare address (`"198.18.9.1"`) is a /32,
/// as `address` was written before it carried a prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IfAddr {
    addr: Ipv4Addr,
    len: u8,
}

impl IfAddr {
    /// `addr/len`; refuses a length over 32.
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Self, Ipv4NetError> {
        if len > 32 {
            return Err(Ipv4NetError::Length(len));
        }
        Ok(IfAddr { addr, len })
    }

    /// The address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The subnet's prefix length, 0..=32.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// The subnet.
    pub fn network(&self) -> Ipv4Net {
        Ipv4Net {
            addr: Ipv4Net::masked(self.addr, self.len),
            len: self.len,
        }
    }
}

impl FromStr for IfAddr {
    type Err = Ipv4NetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || Ipv4NetError::Syntax(s.to_owned());
        let (a, l) = match s.trim().split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s.trim(), None),
        };
        let addr = a.parse().map_err(|_| syntax())?;
        let len = match l {
            None => 32,
            // Digits only: u8's parser takes a leading '+'.
            Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => {
                l.parse().map_err(|_| syntax())?
            }
            Some(_) => return Err(syntax()),
        };
        IfAddr::new(addr, len)
    }
}

impl fmt::Display for IfAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_addresses_keep_host_bits_and_default_to_32() {
        let a: IfAddr = "198.18.9.1/30".parse().expect("ifaddr");
        assert_eq!(
            (a.addr(), a.prefix_len()),
            (Ipv4Addr::new(198, 18, 9, 1), 30)
        );
        assert_eq!(a.network(), net("198.18.9.0/30"));
        assert_eq!(a.to_string(), "198.18.9.1/30");
        let bare: IfAddr = " 10.0.0.1 ".parse().expect("bare");
        assert_eq!(bare.prefix_len(), 32);
        for bad in [
            "10.0.0.1/",
            "10.0.0.1/+8",
            "ten",
            "10.0.0.1/8/8",
            "10.0.0/8",
        ] {
            assert_eq!(
                bad.parse::<IfAddr>(),
                Err(Ipv4NetError::Syntax(bad.into())),
                "{bad}"
            );
        }
        assert_eq!(
            "10.0.0.1/33".parse::<IfAddr>(),
            Err(Ipv4NetError::Length(33))
        );
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect(s)
    }

    #[test]
    fn parses_and_prints_back() {
        for s in ["198.18.1.0/24", "0.0.0.0/0", "10.0.0.1/32", "100.64.0.0/10"] {
            assert_eq!(net(s).to_string(), s);
        }
        let n = net("198.18.1.64/26");
        assert_eq!(
            (n.addr(), n.prefix_len()),
            (Ipv4Addr::new(198, 18, 1, 64), 26)
        );
        assert_eq!(n.mask(), 0xffff_ffc0);
        assert_eq!(net("0.0.0.0/0").mask(), 0);
        assert_eq!(net("10.0.0.1/32").mask(), u32::MAX);
    }

    #[test]
    fn refuses_what_is_not_a_network() {
        for bad in [
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0/8",
            "10.0.0.0/+8",
            "10.0.0.0/8/8",
            "ten/8",
        ] {
            assert_eq!(
                bad.parse::<Ipv4Net>(),
                Err(Ipv4NetError::Syntax(bad.into())),
                "{bad}"
            );
        }
        assert_eq!(
            "10.0.0.0/33".parse::<Ipv4Net>(),
            Err(Ipv4NetError::Length(33))
        );
        let e = "198.18.1.5/24".parse::<Ipv4Net>().expect_err("host bits");
        assert_eq!(
            e.to_string(),
            "198.18.1.5/24 has host bits set; the network is 198.18.1.0/24"
        );
    }

    #[test]
    fn contains_exactly_the_network_s_addresses() {
        let n = net("198.18.1.64/26");
        assert!(n.contains(Ipv4Addr::new(198, 18, 1, 64)));
        assert!(n.contains(Ipv4Addr::new(198, 18, 1, 127)));
        assert!(!n.contains(Ipv4Addr::new(198, 18, 1, 63)));
        assert!(!n.contains(Ipv4Addr::new(198, 18, 1, 128)));
        assert!(net("0.0.0.0/0").contains(Ipv4Addr::BROADCAST));
        let host = net("10.0.0.1/32");
        assert!(host.contains(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(!host.contains(Ipv4Addr::new(10, 0, 0, 2)));
    }
}
