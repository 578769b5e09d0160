//! RADIUS packet codec (RFC 2865 section 3): header, attributes, bounds. Parsing never panics;
//! every malformation is a typed [`ParseError`].

use std::fmt;

/// Smallest packet: code, identifier, length, authenticator.
pub const HEADER_LEN: usize = 20;
/// Largest packet allowed by RFC 2865 section 3.
pub const MAX_LEN: usize = 4096;
/// Largest attribute value (length octet counts type and length).
pub const MAX_ATTR_VALUE: usize = 253;

/// A packet code.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code(pub u8);

impl Code {
    pub const ACCESS_REQUEST: Code = Code(1);
    pub const ACCESS_ACCEPT: Code = Code(2);
    pub const ACCESS_REJECT: Code = Code(3);
    pub const ACCOUNTING_REQUEST: Code = Code(4);
    pub const ACCOUNTING_RESPONSE: Code = Code(5);
    pub const ACCESS_CHALLENGE: Code = Code(11);
    pub const STATUS_SERVER: Code = Code(12);
    pub const DISCONNECT_REQUEST: Code = Code(40);
    pub const DISCONNECT_ACK: Code = Code(41);
    pub const DISCONNECT_NAK: Code = Code(42);

    /// Whether the Request Authenticator of this code is random (Access-Request,
    /// Status-Server) rather than an MD5 over the packet (accounting, RFC 5176).
    pub fn has_random_authenticator(self) -> bool {
        matches!(self, Code::ACCESS_REQUEST | Code::STATUS_SERVER)
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Code::ACCESS_REQUEST => "Access-Request",
            Code::ACCESS_ACCEPT => "Access-Accept",
            Code::ACCESS_REJECT => "Access-Reject",
            Code::ACCOUNTING_REQUEST => "Accounting-Request",
            Code::ACCOUNTING_RESPONSE => "Accounting-Response",
            Code::ACCESS_CHALLENGE => "Access-Challenge",
            Code::STATUS_SERVER => "Status-Server",
            Code::DISCONNECT_REQUEST => "Disconnect-Request",
            Code::DISCONNECT_ACK => "Disconnect-ACK",
            Code::DISCONNECT_NAK => "Disconnect-NAK",
            Code(n) => return write!(f, "Code({n})"),
        };
        f.write_str(name)
    }
}

/// Why a datagram is not a RADIUS packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("datagram of {0} octets is shorter than the 20-octet header")]
    TooShort(usize),
    #[error("length field {field} outside 20..=4096 or beyond the {datagram}-octet datagram")]
    BadLength { field: usize, datagram: usize },
    #[error("attribute at offset {0} runs past the packet")]
    AttributeTruncated(usize),
    #[error("attribute at offset {0} has a length below 2")]
    AttributeTooShort(usize),
}

/// Why a packet cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("attribute {typ} value of {len} octets exceeds 253")]
    AttributeTooLong { typ: u8, len: usize },
    #[error("packet of {0} octets exceeds 4096")]
    PacketTooLong(usize),
}

/// One attribute, value kept as octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub typ: u8,
    pub value: Vec<u8>,
}

/// A decoded packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub code: Code,
    pub identifier: u8,
    pub authenticator: [u8; 16],
    pub attributes: Vec<Attribute>,
}

/// Validates the header and attribute framing of `datagram` and returns the packet's own
/// octets (the datagram minus padding beyond the length field, which RFC 2865 says to ignore).
pub fn frame(datagram: &[u8]) -> Result<&[u8], ParseError> {
    let head = datagram
        .get(..HEADER_LEN)
        .ok_or(ParseError::TooShort(datagram.len()))?;
    let field = usize::from(u16::from_be_bytes([head[2], head[3]]));
    if !(HEADER_LEN..=MAX_LEN).contains(&field) || field > datagram.len() {
        return Err(ParseError::BadLength {
            field,
            datagram: datagram.len(),
        });
    }
    let raw = &datagram[..field];
    let mut off = HEADER_LEN;
    while off < raw.len() {
        let len = match raw.get(off + 1) {
            Some(&l) => usize::from(l),
            None => return Err(ParseError::AttributeTruncated(off)),
        };
        if len < 2 {
            return Err(ParseError::AttributeTooShort(off));
        }
        if off + len > raw.len() {
            return Err(ParseError::AttributeTruncated(off));
        }
        off += len;
    }
    Ok(raw)
}

/// Iterates over (offset, type, value) of the attributes of a framed packet.
pub fn attributes(raw: &[u8]) -> impl Iterator<Item = (usize, u8, &[u8])> {
    let mut off = HEADER_LEN;
    std::iter::from_fn(move || {
        let typ = *raw.get(off)?;
        let len = usize::from(*raw.get(off + 1)?);
        let value = raw.get(off + 2..off + len)?;
        let at = off;
        off += len.max(2);
        Some((at, typ, value))
    })
}

impl Packet {
    /// Parses a datagram.
    pub fn parse(datagram: &[u8]) -> Result<Packet, ParseError> {
        let raw = frame(datagram)?;
        let mut authenticator = [0u8; 16];
        authenticator.copy_from_slice(&raw[4..HEADER_LEN]);
        Ok(Packet {
            code: Code(raw[0]),
            identifier: raw[1],
            authenticator,
            attributes: attributes(raw)
                .map(|(_, typ, v)| Attribute {
                    typ,
                    value: v.to_vec(),
                })
                .collect(),
        })
    }

    /// A packet without attributes.
    pub fn new(code: Code, identifier: u8, authenticator: [u8; 16]) -> Packet {
        Packet {
            code,
            identifier,
            authenticator,
            attributes: Vec::new(),
        }
    }

    /// Serialises as is (no authenticator computed), with the header authenticator given.
    pub fn encode_with(&self, authenticator: &[u8; 16]) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(HEADER_LEN + 16 * self.attributes.len());
        out.extend_from_slice(&[self.code.0, self.identifier, 0, 0]);
        out.extend_from_slice(authenticator);
        for a in &self.attributes {
            if a.value.len() > MAX_ATTR_VALUE {
                return Err(EncodeError::AttributeTooLong {
                    typ: a.typ,
                    len: a.value.len(),
                });
            }
            out.push(a.typ);
            out.push((a.value.len() + 2) as u8);
            out.extend_from_slice(&a.value);
        }
        if out.len() > MAX_LEN {
            return Err(EncodeError::PacketTooLong(out.len()));
        }
        let len = (out.len() as u16).to_be_bytes();
        out[2] = len[0];
        out[3] = len[1];
        Ok(out)
    }

    /// First value of attribute `typ`.
    pub fn get(&self, typ: u8) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|a| a.typ == typ)
            .map(|a| a.value.as_slice())
    }

    /// First value of `typ` as UTF-8 (lossy: a NAS may send any octets).
    pub fn get_string(&self, typ: u8) -> Option<String> {
        self.get(typ)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// First value of `typ` as a 32-bit integer, if exactly four octets.
    pub fn get_u32(&self, typ: u8) -> Option<u32> {
        let v: [u8; 4] = self.get(typ)?.try_into().ok()?;
        Some(u32::from_be_bytes(v))
    }

    /// Removes every attribute `typ`.
    pub fn remove(&mut self, typ: u8) {
        self.attributes.retain(|a| a.typ != typ);
    }

    /// Appends an attribute.
    pub fn push(&mut self, typ: u8, value: impl Into<Vec<u8>>) {
        self.attributes.push(Attribute {
            typ,
            value: value.into(),
        });
    }

    /// Replaces the first `typ` in place (keeping attribute order) or appends it.
    pub fn set(&mut self, typ: u8, value: impl Into<Vec<u8>>) {
        let value = value.into();
        match self.attributes.iter_mut().find(|a| a.typ == typ) {
            Some(a) => a.value = value,
            None => self.push(typ, value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let mut p = Packet::new(Code::ACCESS_REQUEST, 7, [1; 16]);
        p.push(1, b"nemo".to_vec());
        p.push(5, 3u32.to_be_bytes().to_vec());
        let b = p.encode_with(&p.authenticator).expect("encode");
        assert_eq!(b.len(), 20 + 6 + 6);
        let q = Packet::parse(&b).expect("parse");
        assert_eq!(p, q);
        assert_eq!(q.get_u32(5), Some(3));
        assert_eq!(q.get_string(1).as_deref(), Some("nemo"));
    }

    #[test]
    fn malformed_is_typed() {
        assert_eq!(Packet::parse(&[1, 2, 3]), Err(ParseError::TooShort(3)));
        let mut b = vec![1u8, 0, 0, 19];
        b.extend([0; 16]);
        assert!(matches!(
            Packet::parse(&b),
            Err(ParseError::BadLength { field: 19, .. })
        ));
        let mut b = vec![1u8, 0, 0, 23];
        b.extend([0; 16]);
        b.extend([1, 1, 0]);
        assert_eq!(Packet::parse(&b), Err(ParseError::AttributeTooShort(20)));
        let mut b = vec![1u8, 0, 0, 23];
        b.extend([0; 16]);
        b.extend([1, 5, 0]);
        assert_eq!(Packet::parse(&b), Err(ParseError::AttributeTruncated(20)));
    }

    #[test]
    fn padding_beyond_length_is_ignored() {
        let p = Packet::new(Code::ACCOUNTING_RESPONSE, 1, [0; 16]);
        let mut b = p.encode_with(&[0; 16]).expect("encode");
        b.extend([0xff; 5]);
        assert_eq!(Packet::parse(&b), Ok(p));
    }

    #[test]
    fn oversize_attribute_refused() {
        let mut p = Packet::new(Code::ACCESS_REQUEST, 1, [0; 16]);
        p.push(1, vec![0; 254]);
        assert!(matches!(
            p.encode_with(&[0; 16]),
            Err(EncodeError::AttributeTooLong { typ: 1, len: 254 })
        ));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            if let Ok(p) = Packet::parse(&data) {
                // What parses re-encodes to the framed octets.
                let raw = frame(&data).expect("framed");
                proptest::prop_assert_eq!(p.encode_with(&p.authenticator).expect("encode"), raw.to_vec());
            }
        }
    }
}
