//! The LDP PDU codec (RFC 5036 §3): the PDU header, messages with their U bit, TLVs with
//! their U and F bits, and typed bodies for the messages of the base protocol.
//!
//! [`decode`] takes one whole PDU (the [`super::framer`] cuts them out of a TCP stream; a
//! UDP Hello datagram is one) and sorts what it finds by RFC 5036's rules: an error of the
//! PDU's framing is fatal and fails the whole PDU; a message with an unknown type or an
//! unknown TLV (U = 0), a missing mandatory TLV, or an unsupported address family or FEC is
//! rejected alone (to be answered by a non-fatal Notification) and the rest is decoded;
//! unknown messages with U = 1 are dropped and unknown TLVs with U = 1 kept aside.

use std::net::Ipv4Addr;

mod error;
mod message;
mod status;
mod tlv;

pub use error::{DecodeError, EncodeError, Located};
pub use message::{
    msg_type, Body, Hello, Initialization, LabelAbortRequest, LabelMapping, LabelRequest,
    LabelWithdraw, Message, Notification,
};
pub use status::{Status, StatusCode};
pub use tlv::{tlv_type, FecElement, RawTlv, FAMILY_IPV4, LABEL_MAX};

/// The only LDP version (RFC 5036 §3.1).
pub const VERSION: u16 = 1;
/// Octets of the PDU header: Version, PDU Length, LDP Identifier.
pub const PDU_HEADER_LEN: usize = 10;
/// The maximum PDU length before one is negotiated, and whenever a peer proposes 255 or
/// less (RFC 5036 §3.5.3).
pub const DEFAULT_MAX_PDU_LEN: u16 = 4096;

/// An LDP Identifier (RFC 5036 §2.2.2): the LSR ID and the label space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LdpId {
    pub lsr_id: Ipv4Addr,
    pub label_space: u16,
}

impl LdpId {
    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.lsr_id.octets());
        out.extend_from_slice(&self.label_space.to_be_bytes());
    }
}

impl std::fmt::Display for LdpId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.lsr_id, self.label_space)
    }
}

/// An LDP PDU: who sent it and its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu {
    pub ldp_id: LdpId,
    pub messages: Vec<Message>,
}

/// What one PDU held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub pdu: Pdu,
    /// Messages rejected alone, in order: each is answered by a non-fatal Notification.
    pub rejected: Vec<Located>,
    /// Messages of unknown type with U = 1, dropped silently.
    pub ignored: usize,
}

/// Reads Version and PDU Length from the first 4 octets: the PDU's whole length on the
/// wire, once checked against `max_pdu_len` (the PDU Length field's largest value).
pub fn pdu_total_len(head: &[u8; 4], max_pdu_len: u16) -> Result<usize, DecodeError> {
    let len = u16::from_be_bytes([head[2], head[3]]);
    if usize::from(len) < PDU_HEADER_LEN - 4 || len > max_pdu_len {
        return Err(DecodeError::BadPduLength {
            len,
            max: max_pdu_len,
        });
    }
    Ok(usize::from(len) + 4)
}

/// Decodes one whole PDU of exactly `bytes.len()` octets.
pub fn decode(bytes: &[u8], max_pdu_len: u16) -> Result<Decoded, Located> {
    let pdu_err = |error| Located {
        msg_id: 0,
        msg_type: 0,
        error,
    };
    let head: [u8; PDU_HEADER_LEN] = bytes
        .get(..PDU_HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(pdu_err(DecodeError::Truncated {
            have: bytes.len(),
            need: PDU_HEADER_LEN,
        }))?;
    let version = u16::from_be_bytes([head[0], head[1]]);
    if version != VERSION {
        return Err(pdu_err(DecodeError::BadProtocolVersion(version)));
    }
    let total =
        pdu_total_len(&[head[0], head[1], head[2], head[3]], max_pdu_len).map_err(pdu_err)?;
    if bytes.len() < total {
        return Err(pdu_err(DecodeError::Truncated {
            have: bytes.len(),
            need: total,
        }));
    }
    if bytes.len() > total {
        return Err(pdu_err(DecodeError::BadPduLength {
            len: u16::try_from(bytes.len() - 4).unwrap_or(u16::MAX),
            max: max_pdu_len,
        }));
    }
    let ldp_id = LdpId {
        lsr_id: Ipv4Addr::new(head[4], head[5], head[6], head[7]),
        label_space: u16::from_be_bytes([head[8], head[9]]),
    };
    let mut out = Decoded {
        pdu: Pdu {
            ldp_id,
            messages: Vec::new(),
        },
        rejected: Vec::new(),
        ignored: 0,
    };
    let mut rest = &bytes[PDU_HEADER_LEN..];
    while !rest.is_empty() {
        let (Some(h), Some(len)) = (tlv::be16(rest, 0), tlv::be16(rest, 2)) else {
            return Err(pdu_err(DecodeError::BadMessageLength {
                msg_type: 0,
                len: 0,
            }));
        };
        let unknown = h & 0x8000 != 0;
        let ty = h & 0x7fff;
        let end = 4 + usize::from(len);
        let bad_len = DecodeError::BadMessageLength { msg_type: ty, len };
        let (Some(msg), true) = (rest.get(4..end), len >= 4) else {
            return Err(pdu_err(bad_len));
        };
        rest = &rest[end..];
        let id = u32::from_be_bytes([msg[0], msg[1], msg[2], msg[3]]);
        let at = |error| Located {
            msg_id: id,
            msg_type: ty,
            error,
        };
        match message::decode_body(ty, &msg[4..]) {
            None if unknown => out.ignored += 1,
            None => out.rejected.push(at(DecodeError::UnknownMessageType(ty))),
            Some(Ok((body, extra))) => out.pdu.messages.push(Message { id, body, extra }),
            Some(Err(e)) if e.fatal() => return Err(at(e)),
            Some(Err(e)) => out.rejected.push(at(e)),
        }
    }
    Ok(out)
}

impl Pdu {
    /// A PDU of one message.
    pub fn one(ldp_id: LdpId, message: Message) -> Pdu {
        Pdu {
            ldp_id,
            messages: vec![message],
        }
    }

    /// Encodes the PDU, appending to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        self.ldp_id.emit(out);
        for m in &self.messages {
            message::emit(out, m)?;
        }
        let len = out.len() - start - 4;
        let len16 = u16::try_from(len).map_err(|_| EncodeError::TooLong(len))?;
        out[start + 2..start + 4].copy_from_slice(&len16.to_be_bytes());
        Ok(())
    }

    /// The encoded PDU.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::new();
        self.emit(&mut v)?;
        Ok(v)
    }

    /// Encodes the PDU at the start of `buf`; returns its length.
    pub fn emit_into(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let v = self.to_bytes()?;
        let have = buf.len();
        let dst = buf.get_mut(..v.len()).ok_or(EncodeError::BufferTooSmall {
            have,
            need: v.len(),
        })?;
        dst.copy_from_slice(&v);
        Ok(v.len())
    }
}

/// Packs messages into as few PDUs as fit `max_pdu_len` (the PDU Length field's largest
/// value), in order. A message too large for a PDU of its own is an error.
pub fn pack(
    ldp_id: LdpId,
    messages: &[Message],
    max_pdu_len: u16,
) -> Result<Vec<Vec<u8>>, EncodeError> {
    let limit = usize::from(max_pdu_len) + 4;
    let mut out = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut m = Vec::new();
    for msg in messages {
        m.clear();
        message::emit(&mut m, msg)?;
        if PDU_HEADER_LEN + m.len() > limit {
            return Err(EncodeError::TooLong(PDU_HEADER_LEN + m.len()));
        }
        if !cur.is_empty() && cur.len() + m.len() > limit {
            out.push(std::mem::take(&mut cur));
        }
        if cur.is_empty() {
            Pdu {
                ldp_id,
                messages: Vec::new(),
            }
            .emit(&mut cur)?;
        }
        cur.extend_from_slice(&m);
        let len = (cur.len() - 4) as u16;
        cur[2..4].copy_from_slice(&len.to_be_bytes());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
