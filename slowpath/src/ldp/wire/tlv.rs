//! TLV encoding (RFC 5036 §3.3): the header with its U and F bits, and the values shared by
//! several messages (FEC, Generic Label, Address List).

use std::net::Ipv4Addr;

use super::error::{DecodeError, EncodeError};

/// TLV types of RFC 5036 §3.4 and §3.5 this codec decodes.
pub mod tlv_type {
    pub const FEC: u16 = 0x0100;
    pub const ADDRESS_LIST: u16 = 0x0101;
    pub const HOP_COUNT: u16 = 0x0103;
    pub const PATH_VECTOR: u16 = 0x0104;
    pub const GENERIC_LABEL: u16 = 0x0200;
    pub const STATUS: u16 = 0x0300;
    pub const EXTENDED_STATUS: u16 = 0x0301;
    pub const RETURNED_PDU: u16 = 0x0302;
    pub const RETURNED_MESSAGE: u16 = 0x0303;
    pub const COMMON_HELLO_PARAMETERS: u16 = 0x0400;
    pub const IPV4_TRANSPORT_ADDRESS: u16 = 0x0401;
    pub const CONFIGURATION_SEQUENCE_NUMBER: u16 = 0x0402;
    pub const IPV6_TRANSPORT_ADDRESS: u16 = 0x0403;
    pub const COMMON_SESSION_PARAMETERS: u16 = 0x0500;
    pub const LABEL_REQUEST_MESSAGE_ID: u16 = 0x0600;
}

/// Address family numbers (IANA) of Address List TLVs and Prefix FEC elements.
pub const FAMILY_IPV4: u16 = 1;

const U_BIT: u16 = 0x8000;
const F_BIT: u16 = 0x4000;
const TYPE_MASK: u16 = 0x3fff;

/// A TLV as it lies in a message: its U and F bits, type and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TlvRef<'a> {
    pub unknown: bool,
    pub forward: bool,
    pub tlv_type: u16,
    pub value: &'a [u8],
}

/// A TLV this LSR does not interpret, kept with its U and F bits (an unknown TLV with U = 1
/// is ignored, RFC 5036 §3.3, but kept so that what is decoded is what is encoded).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawTlv {
    pub unknown: bool,
    pub forward: bool,
    pub tlv_type: u16,
    pub value: Vec<u8>,
}

impl RawTlv {
    pub(crate) fn from_ref(t: &TlvRef<'_>) -> RawTlv {
        RawTlv {
            unknown: t.unknown,
            forward: t.forward,
            tlv_type: t.tlv_type,
            value: t.value.to_vec(),
        }
    }
}

/// Splits a message's parameters into TLVs; a TLV running past the message is a Bad TLV
/// Length (fatal: the framing of the rest can no longer be trusted).
pub(crate) fn split(mut body: &[u8]) -> Result<Vec<TlvRef<'_>>, DecodeError> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let (Some(h), Some(l)) = (be16(body, 0), be16(body, 2)) else {
            return Err(DecodeError::BadTlvLength {
                tlv_type: 0,
                len: 0,
            });
        };
        let end = 4 + usize::from(l);
        let value = body.get(4..end).ok_or(DecodeError::BadTlvLength {
            tlv_type: h & TYPE_MASK,
            len: l,
        })?;
        out.push(TlvRef {
            unknown: h & U_BIT != 0,
            forward: h & F_BIT != 0,
            tlv_type: h & TYPE_MASK,
            value,
        });
        body = &body[end..];
    }
    Ok(out)
}

pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// A value of exactly `N` bytes, or Bad TLV Length.
pub(crate) fn fixed<const N: usize>(t: &TlvRef<'_>) -> Result<[u8; N], DecodeError> {
    t.value.try_into().map_err(|_| DecodeError::BadTlvLength {
        tlv_type: t.tlv_type,
        len: t.value.len() as u16,
    })
}

/// Appends a TLV with `value` written by `f`, its length filled in afterwards.
pub(crate) fn emit(
    out: &mut Vec<u8>,
    unknown: bool,
    forward: bool,
    tlv_type: u16,
    f: impl FnOnce(&mut Vec<u8>),
) -> Result<(), EncodeError> {
    let mut h = tlv_type & TYPE_MASK;
    if unknown {
        h |= U_BIT;
    }
    if forward {
        h |= F_BIT;
    }
    out.extend_from_slice(&h.to_be_bytes());
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    f(out);
    let len = out.len() - at - 2;
    let len16 = u16::try_from(len).map_err(|_| EncodeError::TooLong(len))?;
    out[at..at + 2].copy_from_slice(&len16.to_be_bytes());
    Ok(())
}

/// One element of a FEC TLV (RFC 5036 §3.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FecElement {
    /// Every FEC (Label Withdraw and Release): the only element of its TLV.
    Wildcard,
    /// An IPv4 address prefix; host bits are clear.
    Prefix { addr: Ipv4Addr, len: u8 },
}

const FEC_WILDCARD: u8 = 0x01;
const FEC_PREFIX: u8 = 0x02;

impl FecElement {
    /// A prefix element with the host bits of `addr` cleared; None if `len` > 32.
    pub fn prefix(addr: Ipv4Addr, len: u8) -> Option<FecElement> {
        (len <= 32).then(|| FecElement::Prefix {
            addr: Ipv4Addr::from(u32::from(addr) & mask(len)),
            len,
        })
    }
}

fn mask(len: u8) -> u32 {
    match len {
        0 => 0,
        l => u32::MAX << (32 - u32::from(l.min(32))),
    }
}

pub(crate) fn decode_fec(t: &TlvRef<'_>) -> Result<Vec<FecElement>, DecodeError> {
    let malformed = DecodeError::MalformedTlvValue(t.tlv_type);
    let mut v = t.value;
    let mut out = Vec::new();
    while let Some(&kind) = v.first() {
        match kind {
            FEC_WILDCARD => {
                out.push(FecElement::Wildcard);
                v = &v[1..];
            }
            FEC_PREFIX => {
                let family = be16(v, 1).ok_or(malformed)?;
                let len = *v.get(3).ok_or(malformed)?;
                if family != FAMILY_IPV4 {
                    return Err(DecodeError::UnsupportedAddressFamily(family));
                }
                if len > 32 {
                    return Err(malformed);
                }
                let n = usize::from(len).div_ceil(8);
                let bytes = v.get(4..4 + n).ok_or(malformed)?;
                let mut a = [0u8; 4];
                a[..n].copy_from_slice(bytes);
                out.push(FecElement::Prefix {
                    addr: Ipv4Addr::from(u32::from_be_bytes(a) & mask(len)),
                    len,
                });
                v = &v[4 + n..];
            }
            other => return Err(DecodeError::UnknownFec(other)),
        }
    }
    // A wildcard stands for every FEC: it is the only element of its TLV.
    if out.is_empty() || (out.len() > 1 && out.contains(&FecElement::Wildcard)) {
        return Err(malformed);
    }
    Ok(out)
}

pub(crate) fn emit_fec(out: &mut Vec<u8>, fec: &[FecElement]) -> Result<(), EncodeError> {
    emit(out, false, false, tlv_type::FEC, |o| {
        for e in fec {
            match *e {
                FecElement::Wildcard => o.push(FEC_WILDCARD),
                FecElement::Prefix { addr, len } => {
                    let len = len.min(32);
                    o.push(FEC_PREFIX);
                    o.extend_from_slice(&FAMILY_IPV4.to_be_bytes());
                    o.push(len);
                    let n = usize::from(len).div_ceil(8);
                    o.extend_from_slice(&addr.octets()[..n]);
                }
            }
        }
    })
}

/// Largest value of a 20-bit MPLS label.
pub const LABEL_MAX: u32 = 0x000f_ffff;

pub(crate) fn decode_label(t: &TlvRef<'_>) -> Result<u32, DecodeError> {
    let l = u32::from_be_bytes(fixed::<4>(t)?);
    if l > LABEL_MAX {
        return Err(DecodeError::MalformedTlvValue(t.tlv_type));
    }
    Ok(l)
}

pub(crate) fn emit_u32(out: &mut Vec<u8>, tlv_type: u16, v: u32) -> Result<(), EncodeError> {
    emit(out, false, false, tlv_type, |o| {
        o.extend_from_slice(&v.to_be_bytes())
    })
}

pub(crate) fn decode_addresses(t: &TlvRef<'_>) -> Result<Vec<Ipv4Addr>, DecodeError> {
    let family = be16(t.value, 0).ok_or(DecodeError::BadTlvLength {
        tlv_type: t.tlv_type,
        len: t.value.len() as u16,
    })?;
    if family != FAMILY_IPV4 {
        return Err(DecodeError::UnsupportedAddressFamily(family));
    }
    let list = &t.value[2..];
    if !list.len().is_multiple_of(4) {
        return Err(DecodeError::MalformedTlvValue(t.tlv_type));
    }
    Ok(list
        .chunks_exact(4)
        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
        .collect())
}

pub(crate) fn emit_addresses(
    out: &mut Vec<u8>,
    tlv_type: u16,
    family: Option<u16>,
    addrs: &[Ipv4Addr],
) -> Result<(), EncodeError> {
    emit(out, false, false, tlv_type, |o| {
        if let Some(f) = family {
            o.extend_from_slice(&f.to_be_bytes());
        }
        for a in addrs {
            o.extend_from_slice(&a.octets());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_clears_host_bits_and_rejects_long() {
        assert_eq!(
            FecElement::prefix(Ipv4Addr::new(10, 1, 2, 3), 24),
            Some(FecElement::Prefix {
                addr: Ipv4Addr::new(10, 1, 2, 0),
                len: 24
            })
        );
        assert_eq!(FecElement::prefix(Ipv4Addr::new(10, 1, 2, 3), 33), None);
        assert_eq!(
            FecElement::prefix(Ipv4Addr::new(10, 1, 2, 3), 0),
            Some(FecElement::Prefix {
                addr: Ipv4Addr::UNSPECIFIED,
                len: 0
            })
        );
    }

    #[test]
    fn split_rejects_overrun() {
        assert_eq!(
            split(&[0x01, 0x00, 0x00, 0x05, 1, 2, 3, 4]),
            Err(DecodeError::BadTlvLength {
                tlv_type: 0x0100,
                len: 5
            })
        );
        assert!(split(&[0x01]).is_err());
        let t = split(&[0xc1, 0x23, 0x00, 0x01, 9]).expect("one tlv");
        assert_eq!(
            t,
            vec![TlvRef {
                unknown: true,
                forward: true,
                tlv_type: 0x0123,
                value: &[9]
            }]
        );
    }
}
