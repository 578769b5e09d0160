//! Decode errors, each the RFC 5036 §3.9 status a Notification reports it with.

use super::status::StatusCode;

/// Why a PDU, a message or a TLV could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the PDU header, or than its PDU Length says.
    #[error("PDU truncated: {have} bytes, {need} needed")]
    Truncated { have: usize, need: usize },
    /// A PDU Length below the LDP Identifier's 6 octets or above the maximum PDU length.
    #[error("bad PDU length {len} (maximum {max})")]
    BadPduLength { len: u16, max: u16 },
    /// A version other than 1.
    #[error("bad protocol version {0}")]
    BadProtocolVersion(u16),
    /// A message whose length does not fit its PDU or is below its Message ID.
    #[error("bad length {len} of message type {msg_type:#06x}")]
    BadMessageLength { msg_type: u16, len: u16 },
    /// A message type this LSR does not know, with U = 0 (with U = 1 it is ignored).
    #[error("unknown message type {0:#06x}")]
    UnknownMessageType(u16),
    /// A TLV this LSR does not know in a message, with U = 0.
    #[error("unknown TLV type {0:#06x}")]
    UnknownTlv(u16),
    /// A TLV whose length overruns its message or does not fit its type.
    #[error("bad length {len} of TLV type {tlv_type:#06x}")]
    BadTlvLength { tlv_type: u16, len: u16 },
    /// A TLV value that breaks its type's rules.
    #[error("malformed value of TLV type {0:#06x}")]
    MalformedTlvValue(u16),
    /// A mandatory TLV missing from a message.
    #[error("missing mandatory TLV {0:#06x}")]
    MissingMessageParameters(u16),
    /// An address family other than IPv4 in an Address List or a Prefix FEC element.
    #[error("unsupported address family {0}")]
    UnsupportedAddressFamily(u16),
    /// A FEC element type other than Wildcard and Prefix.
    #[error("unknown FEC element type {0:#04x}")]
    UnknownFec(u8),
}

impl DecodeError {
    /// The status code the Notification answering this error carries.
    pub fn status_code(&self) -> StatusCode {
        use DecodeError::*;
        match self {
            Truncated { .. } | BadPduLength { .. } => StatusCode::BadPduLength,
            BadProtocolVersion(_) => StatusCode::BadProtocolVersion,
            BadMessageLength { .. } => StatusCode::BadMessageLength,
            UnknownMessageType(_) => StatusCode::UnknownMessageType,
            UnknownTlv(_) => StatusCode::UnknownTlv,
            BadTlvLength { .. } => StatusCode::BadTlvLength,
            MalformedTlvValue(_) => StatusCode::MalformedTlvValue,
            MissingMessageParameters(_) => StatusCode::MissingMessageParameters,
            UnsupportedAddressFamily(_) => StatusCode::UnsupportedAddressFamily,
            UnknownFec(_) => StatusCode::UnknownFec,
        }
    }

    /// Whether the error closes the session (E = 1 in its Notification). The others
    /// reject only the message they are in.
    pub fn fatal(&self) -> bool {
        self.status_code().fatal()
    }
}

/// A decode error located in the PDU: the message it is in (ID and type, 0 for errors of
/// the PDU header), which a Notification's Status TLV names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("message {msg_id} (type {msg_type:#06x}): {error}")]
pub struct Located {
    pub msg_id: u32,
    pub msg_type: u16,
    pub error: DecodeError,
}

impl Located {
    /// The Status TLV value of the Notification answering this error.
    pub fn status(&self) -> super::Status {
        self.error.status_code().status(self.msg_id, self.msg_type)
    }
}

/// Why a PDU could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A message, TLV or the PDU would exceed its 16-bit length field.
    #[error("encoded length {0} exceeds the 16-bit length field")]
    TooLong(usize),
    /// The output buffer is smaller than the PDU.
    #[error("buffer of {have} bytes, PDU needs {need}")]
    BufferTooSmall { have: usize, need: usize },
}
