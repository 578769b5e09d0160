//! LDP messages (RFC 5036 §3.5): the message header and the typed body of each message
//! type of the base protocol.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::error::{DecodeError, EncodeError};
use super::status::Status;
use super::tlv::{self, tlv_type as tt, FecElement, RawTlv, TlvRef};
use super::LdpId;

/// Message types of RFC 5036 §3.5.
pub mod msg_type {
    pub const NOTIFICATION: u16 = 0x0001;
    pub const HELLO: u16 = 0x0100;
    pub const INITIALIZATION: u16 = 0x0200;
    pub const KEEPALIVE: u16 = 0x0201;
    pub const ADDRESS: u16 = 0x0300;
    pub const ADDRESS_WITHDRAW: u16 = 0x0301;
    pub const LABEL_MAPPING: u16 = 0x0400;
    pub const LABEL_REQUEST: u16 = 0x0401;
    pub const LABEL_WITHDRAW: u16 = 0x0402;
    pub const LABEL_RELEASE: u16 = 0x0403;
    pub const LABEL_ABORT_REQUEST: u16 = 0x0404;
}

/// One message: its ID, typed body, and the unknown TLVs with U = 1 it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: u32,
    pub body: Body,
    /// Unknown TLVs with U = 1: ignored (RFC 5036 §3.3), kept to be encoded again.
    pub extra: Vec<RawTlv>,
}

impl Message {
    /// A message without extra TLVs.
    pub fn new(id: u32, body: Body) -> Message {
        Message {
            id,
            body,
            extra: Vec::new(),
        }
    }
}

/// The body of a message of the base protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Notification(Notification),
    Hello(Hello),
    Initialization(Initialization),
    KeepAlive,
    Address(Vec<Ipv4Addr>),
    AddressWithdraw(Vec<Ipv4Addr>),
    LabelMapping(LabelMapping),
    LabelRequest(LabelRequest),
    LabelWithdraw(LabelWithdraw),
    LabelRelease(LabelWithdraw),
    LabelAbortRequest(LabelAbortRequest),
}

impl Body {
    /// The message type on the wire.
    pub fn msg_type(&self) -> u16 {
        use msg_type::*;
        match self {
            Body::Notification(_) => NOTIFICATION,
            Body::Hello(_) => HELLO,
            Body::Initialization(_) => INITIALIZATION,
            Body::KeepAlive => KEEPALIVE,
            Body::Address(_) => ADDRESS,
            Body::AddressWithdraw(_) => ADDRESS_WITHDRAW,
            Body::LabelMapping(_) => LABEL_MAPPING,
            Body::LabelRequest(_) => LABEL_REQUEST,
            Body::LabelWithdraw(_) => LABEL_WITHDRAW,
            Body::LabelRelease(_) => LABEL_RELEASE,
            Body::LabelAbortRequest(_) => LABEL_ABORT_REQUEST,
        }
    }
}

/// Notification (§3.5.1): a Status TLV and what it may return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub status: Status,
    pub extended_status: Option<u32>,
    pub returned_pdu: Option<Vec<u8>>,
    pub returned_message: Option<Vec<u8>>,
}

impl Notification {
    pub fn new(status: Status) -> Notification {
        Notification {
            status,
            extended_status: None,
            returned_pdu: None,
            returned_message: None,
        }
    }
}

/// Hello (§3.5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Seconds; 0 asks for the default (15 s link, 45 s targeted), 0xffff is infinite.
    pub hold_time: u16,
    /// T: a Targeted Hello.
    pub targeted: bool,
    /// R: asks the receiver for Targeted Hellos back.
    pub request_targeted: bool,
    /// G (RFC 6720 §3): the sender supports GTSM; meaningful in Link Hellos only.
    pub gtsm: bool,
    pub transport_v4: Option<Ipv4Addr>,
    pub config_seqno: Option<u32>,
    pub transport_v6: Option<Ipv6Addr>,
}

/// Initialization (§3.5.3): the Common Session Parameters TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Initialization {
    pub version: u16,
    /// Proposed KeepAlive Time, seconds.
    pub keepalive_time: u16,
    /// A: downstream on demand (0: downstream unsolicited).
    pub downstream_on_demand: bool,
    /// D: loop detection enabled.
    pub loop_detection: bool,
    /// Path Vector Limit.
    pub pv_limit: u8,
    /// Maximum PDU Length; 255 or less means the default 4096.
    pub max_pdu_len: u16,
    /// The LDP Identifier of the receiver, its label space included.
    pub receiver: LdpId,
}

/// Label Mapping (§3.5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMapping {
    pub fec: Vec<FecElement>,
    pub label: u32,
    /// The Label Request Message ID TLV, when the mapping answers a request.
    pub request_id: Option<u32>,
    pub hop_count: Option<u8>,
    pub path_vector: Option<Vec<Ipv4Addr>>,
}

/// Label Request (§3.5.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRequest {
    pub fec: Vec<FecElement>,
    pub hop_count: Option<u8>,
    pub path_vector: Option<Vec<Ipv4Addr>>,
}

/// Label Withdraw (§3.5.10) and Label Release (§3.5.11): a FEC and, optionally, the label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelWithdraw {
    pub fec: Vec<FecElement>,
    pub label: Option<u32>,
}

/// Label Abort Request (§3.5.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelAbortRequest {
    pub fec: Vec<FecElement>,
    pub request_id: u32,
}

/// The TLVs of one message, taken by type; what is left over is unknown.
struct Params<'a> {
    tlvs: Vec<Option<TlvRef<'a>>>,
}

impl<'a> Params<'a> {
    fn take(&mut self, ty: u16) -> Option<TlvRef<'a>> {
        self.tlvs
            .iter_mut()
            .find(|t| matches!(t, Some(t) if t.tlv_type == ty))
            .and_then(Option::take)
    }

    fn need(&mut self, ty: u16) -> Result<TlvRef<'a>, DecodeError> {
        self.take(ty)
            .ok_or(DecodeError::MissingMessageParameters(ty))
    }

    /// Unknown TLVs: with U = 0 the whole message is rejected, with U = 1 they are kept.
    fn rest(self) -> Result<Vec<RawTlv>, DecodeError> {
        let mut out = Vec::new();
        for t in self.tlvs.into_iter().flatten() {
            if !t.unknown {
                return Err(DecodeError::UnknownTlv(t.tlv_type));
            }
            out.push(RawTlv::from_ref(&t));
        }
        Ok(out)
    }
}

fn opt<T>(
    t: Option<TlvRef<'_>>,
    f: impl FnOnce(&TlvRef<'_>) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    t.as_ref().map(f).transpose()
}

fn hop_count(t: &TlvRef<'_>) -> Result<u8, DecodeError> {
    Ok(tlv::fixed::<1>(t)?[0])
}

fn path_vector(t: &TlvRef<'_>) -> Result<Vec<Ipv4Addr>, DecodeError> {
    if t.value.is_empty() || !t.value.len().is_multiple_of(4) {
        return Err(DecodeError::BadTlvLength {
            tlv_type: t.tlv_type,
            len: t.value.len() as u16,
        });
    }
    Ok(t.value
        .chunks_exact(4)
        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
        .collect())
}

fn u32_of(t: &TlvRef<'_>) -> Result<u32, DecodeError> {
    Ok(u32::from_be_bytes(tlv::fixed::<4>(t)?))
}

/// Decodes the parameters (the bytes after the Message ID) of a known message type; None
/// for a type the base protocol does not define.
pub(crate) fn decode_body(
    ty: u16,
    params: &[u8],
) -> Option<Result<(Body, Vec<RawTlv>), DecodeError>> {
    use msg_type::*;
    let known = matches!(
        ty,
        NOTIFICATION
            | HELLO
            | INITIALIZATION
            | KEEPALIVE
            | ADDRESS
            | ADDRESS_WITHDRAW
            | LABEL_MAPPING
            | LABEL_REQUEST
            | LABEL_WITHDRAW
            | LABEL_RELEASE
            | LABEL_ABORT_REQUEST
    );
    known.then(|| decode_known(ty, params))
}

fn decode_known(ty: u16, params: &[u8]) -> Result<(Body, Vec<RawTlv>), DecodeError> {
    use msg_type::*;
    let mut p = Params {
        tlvs: tlv::split(params)?.into_iter().map(Some).collect(),
    };
    let body = match ty {
        NOTIFICATION => {
            let s = p.need(tt::STATUS)?;
            let v = tlv::fixed::<10>(&s)?;
            let code = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
            Body::Notification(Notification {
                status: Status {
                    fatal: code & 0x8000_0000 != 0,
                    forward: code & 0x4000_0000 != 0,
                    data: code & 0x3fff_ffff,
                    msg_id: u32::from_be_bytes([v[4], v[5], v[6], v[7]]),
                    msg_type: u16::from_be_bytes([v[8], v[9]]),
                },
                extended_status: opt(p.take(tt::EXTENDED_STATUS), u32_of)?,
                returned_pdu: p.take(tt::RETURNED_PDU).map(|t| t.value.to_vec()),
                returned_message: p.take(tt::RETURNED_MESSAGE).map(|t| t.value.to_vec()),
            })
        }
        HELLO => {
            let c = tlv::fixed::<4>(&p.need(tt::COMMON_HELLO_PARAMETERS)?)?;
            Body::Hello(Hello {
                hold_time: u16::from_be_bytes([c[0], c[1]]),
                targeted: c[2] & 0x80 != 0,
                request_targeted: c[2] & 0x40 != 0,
                gtsm: c[2] & 0x20 != 0,
                transport_v4: opt(p.take(tt::IPV4_TRANSPORT_ADDRESS), |t| {
                    Ok(Ipv4Addr::from(tlv::fixed::<4>(t)?))
                })?,
                config_seqno: opt(p.take(tt::CONFIGURATION_SEQUENCE_NUMBER), u32_of)?,
                transport_v6: opt(p.take(tt::IPV6_TRANSPORT_ADDRESS), |t| {
                    Ok(Ipv6Addr::from(tlv::fixed::<16>(t)?))
                })?,
            })
        }
        INITIALIZATION => {
            let c = tlv::fixed::<14>(&p.need(tt::COMMON_SESSION_PARAMETERS)?)?;
            Body::Initialization(Initialization {
                version: u16::from_be_bytes([c[0], c[1]]),
                keepalive_time: u16::from_be_bytes([c[2], c[3]]),
                downstream_on_demand: c[4] & 0x80 != 0,
                loop_detection: c[4] & 0x40 != 0,
                pv_limit: c[5],
                max_pdu_len: u16::from_be_bytes([c[6], c[7]]),
                receiver: LdpId {
                    lsr_id: Ipv4Addr::new(c[8], c[9], c[10], c[11]),
                    label_space: u16::from_be_bytes([c[12], c[13]]),
                },
            })
        }
        KEEPALIVE => Body::KeepAlive,
        ADDRESS | ADDRESS_WITHDRAW => {
            let a = tlv::decode_addresses(&p.need(tt::ADDRESS_LIST)?)?;
            if ty == ADDRESS {
                Body::Address(a)
            } else {
                Body::AddressWithdraw(a)
            }
        }
        LABEL_MAPPING => {
            let fec = tlv::decode_fec(&p.need(tt::FEC)?)?;
            let label = tlv::decode_label(&p.need(tt::GENERIC_LABEL)?)?;
            Body::LabelMapping(LabelMapping {
                fec,
                label,
                request_id: opt(p.take(tt::LABEL_REQUEST_MESSAGE_ID), u32_of)?,
                hop_count: opt(p.take(tt::HOP_COUNT), hop_count)?,
                path_vector: opt(p.take(tt::PATH_VECTOR), path_vector)?,
            })
        }
        LABEL_REQUEST => Body::LabelRequest(LabelRequest {
            fec: tlv::decode_fec(&p.need(tt::FEC)?)?,
            hop_count: opt(p.take(tt::HOP_COUNT), hop_count)?,
            path_vector: opt(p.take(tt::PATH_VECTOR), path_vector)?,
        }),
        LABEL_WITHDRAW | LABEL_RELEASE => {
            let w = LabelWithdraw {
                fec: tlv::decode_fec(&p.need(tt::FEC)?)?,
                label: opt(p.take(tt::GENERIC_LABEL), tlv::decode_label)?,
            };
            if ty == LABEL_WITHDRAW {
                Body::LabelWithdraw(w)
            } else {
                Body::LabelRelease(w)
            }
        }
        _ => Body::LabelAbortRequest(LabelAbortRequest {
            fec: tlv::decode_fec(&p.need(tt::FEC)?)?,
            request_id: u32_of(&p.need(tt::LABEL_REQUEST_MESSAGE_ID)?)?,
        }),
    };
    Ok((body, p.rest()?))
}

/// Appends the message (header, ID, TLVs) to `out`.
pub(crate) fn emit(out: &mut Vec<u8>, m: &Message) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&m.body.msg_type().to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&m.id.to_be_bytes());
    emit_body(out, &m.body)?;
    for t in &m.extra {
        tlv::emit(out, t.unknown, t.forward, t.tlv_type, |o| {
            o.extend_from_slice(&t.value)
        })?;
    }
    let len = out.len() - start - 4;
    let len16 = u16::try_from(len).map_err(|_| EncodeError::TooLong(len))?;
    out[start + 2..start + 4].copy_from_slice(&len16.to_be_bytes());
    Ok(())
}

fn emit_opt_u32(out: &mut Vec<u8>, ty: u16, v: Option<u32>) -> Result<(), EncodeError> {
    v.map_or(Ok(()), |v| tlv::emit_u32(out, ty, v))
}

fn emit_hops(
    out: &mut Vec<u8>,
    hop_count: Option<u8>,
    pv: &Option<Vec<Ipv4Addr>>,
) -> Result<(), EncodeError> {
    if let Some(h) = hop_count {
        tlv::emit(out, false, false, tt::HOP_COUNT, |o| o.push(h))?;
    }
    if let Some(pv) = pv {
        tlv::emit_addresses(out, tt::PATH_VECTOR, None, pv)?;
    }
    Ok(())
}

fn emit_body(out: &mut Vec<u8>, body: &Body) -> Result<(), EncodeError> {
    match body {
        Body::Notification(n) => {
            let s = &n.status;
            let mut code = s.data & 0x3fff_ffff;
            if s.fatal {
                code |= 0x8000_0000;
            }
            if s.forward {
                code |= 0x4000_0000;
            }
            // U = 0 in a Notification, F as in the status code (RFC 5036 §3.4.6).
            tlv::emit(out, false, s.forward, tt::STATUS, |o| {
                o.extend_from_slice(&code.to_be_bytes());
                o.extend_from_slice(&s.msg_id.to_be_bytes());
                o.extend_from_slice(&s.msg_type.to_be_bytes());
            })?;
            emit_opt_u32(out, tt::EXTENDED_STATUS, n.extended_status)?;
            for (ty, v) in [
                (tt::RETURNED_PDU, &n.returned_pdu),
                (tt::RETURNED_MESSAGE, &n.returned_message),
            ] {
                if let Some(v) = v {
                    tlv::emit(out, false, false, ty, |o| o.extend_from_slice(v))?;
                }
            }
        }
        Body::Hello(h) => {
            let flags = u8::from(h.targeted) << 7
                | u8::from(h.request_targeted) << 6
                | u8::from(h.gtsm) << 5;
            tlv::emit(out, false, false, tt::COMMON_HELLO_PARAMETERS, |o| {
                o.extend_from_slice(&h.hold_time.to_be_bytes());
                o.extend_from_slice(&[flags, 0]);
            })?;
            if let Some(a) = h.transport_v4 {
                tlv::emit(out, false, false, tt::IPV4_TRANSPORT_ADDRESS, |o| {
                    o.extend_from_slice(&a.octets())
                })?;
            }
            emit_opt_u32(out, tt::CONFIGURATION_SEQUENCE_NUMBER, h.config_seqno)?;
            if let Some(a) = h.transport_v6 {
                tlv::emit(out, false, false, tt::IPV6_TRANSPORT_ADDRESS, |o| {
                    o.extend_from_slice(&a.octets())
                })?;
            }
        }
        Body::Initialization(i) => {
            let flags = u8::from(i.downstream_on_demand) << 7 | u8::from(i.loop_detection) << 6;
            tlv::emit(out, false, false, tt::COMMON_SESSION_PARAMETERS, |o| {
                o.extend_from_slice(&i.version.to_be_bytes());
                o.extend_from_slice(&i.keepalive_time.to_be_bytes());
                o.extend_from_slice(&[flags, i.pv_limit]);
                o.extend_from_slice(&i.max_pdu_len.to_be_bytes());
                i.receiver.emit(o);
            })?;
        }
        Body::KeepAlive => {}
        Body::Address(a) | Body::AddressWithdraw(a) => {
            tlv::emit_addresses(out, tt::ADDRESS_LIST, Some(tlv::FAMILY_IPV4), a)?;
        }
        Body::LabelMapping(m) => {
            tlv::emit_fec(out, &m.fec)?;
            tlv::emit_u32(out, tt::GENERIC_LABEL, m.label)?;
            emit_opt_u32(out, tt::LABEL_REQUEST_MESSAGE_ID, m.request_id)?;
            emit_hops(out, m.hop_count, &m.path_vector)?;
        }
        Body::LabelRequest(r) => {
            tlv::emit_fec(out, &r.fec)?;
            emit_hops(out, r.hop_count, &r.path_vector)?;
        }
        Body::LabelWithdraw(w) | Body::LabelRelease(w) => {
            tlv::emit_fec(out, &w.fec)?;
            emit_opt_u32(out, tt::GENERIC_LABEL, w.label)?;
        }
        Body::LabelAbortRequest(a) => {
            tlv::emit_fec(out, &a.fec)?;
            tlv::emit_u32(out, tt::LABEL_REQUEST_MESSAGE_ID, a.request_id)?;
        }
    }
    Ok(())
}
