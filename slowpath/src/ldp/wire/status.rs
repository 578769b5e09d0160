//! Status codes (RFC 5036 §3.4.6, §3.9) and the Status TLV's value.

/// The status codes of RFC 5036 §3.9 (IANA "Status Code Name Space"). The E bit of a code
/// (fatal: the session closes) is not part of the value; [`StatusCode::fatal`] says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum StatusCode {
    Success = 0x00,
    BadLdpIdentifier = 0x01,
    BadProtocolVersion = 0x02,
    BadPduLength = 0x03,
    UnknownMessageType = 0x04,
    BadMessageLength = 0x05,
    UnknownTlv = 0x06,
    BadTlvLength = 0x07,
    MalformedTlvValue = 0x08,
    HoldTimerExpired = 0x09,
    Shutdown = 0x0A,
    LoopDetected = 0x0B,
    UnknownFec = 0x0C,
    NoRoute = 0x0D,
    NoLabelResources = 0x0E,
    LabelResourcesAvailable = 0x0F,
    SessionRejectedNoHello = 0x10,
    SessionRejectedAdvertisementMode = 0x11,
    SessionRejectedMaxPduLength = 0x12,
    SessionRejectedLabelRange = 0x13,
    KeepAliveTimerExpired = 0x14,
    LabelRequestAborted = 0x15,
    MissingMessageParameters = 0x16,
    UnsupportedAddressFamily = 0x17,
    SessionRejectedBadKeepAliveTime = 0x18,
    InternalError = 0x19,
}

impl StatusCode {
    /// The code for a Status Data value (E and F bits already removed), if RFC 5036 names it.
    pub fn from_data(data: u32) -> Option<StatusCode> {
        use StatusCode::*;
        const ALL: [StatusCode; 26] = [
            Success,
            BadLdpIdentifier,
            BadProtocolVersion,
            BadPduLength,
            UnknownMessageType,
            BadMessageLength,
            UnknownTlv,
            BadTlvLength,
            MalformedTlvValue,
            HoldTimerExpired,
            Shutdown,
            LoopDetected,
            UnknownFec,
            NoRoute,
            NoLabelResources,
            LabelResourcesAvailable,
            SessionRejectedNoHello,
            SessionRejectedAdvertisementMode,
            SessionRejectedMaxPduLength,
            SessionRejectedLabelRange,
            KeepAliveTimerExpired,
            LabelRequestAborted,
            MissingMessageParameters,
            UnsupportedAddressFamily,
            SessionRejectedBadKeepAliveTime,
            InternalError,
        ];
        ALL.get(usize::try_from(data).ok()?).copied()
    }

    /// The Status Data value.
    pub fn data(self) -> u32 {
        self as u32
    }

    /// Whether RFC 5036 §3.9 sends this code with E = 1: a fatal error, after which both
    /// sides close the session.
    pub fn fatal(self) -> bool {
        use StatusCode::*;
        matches!(
            self,
            BadLdpIdentifier
                | BadProtocolVersion
                | BadPduLength
                | BadMessageLength
                | BadTlvLength
                | MalformedTlvValue
                | HoldTimerExpired
                | Shutdown
                | SessionRejectedNoHello
                | SessionRejectedAdvertisementMode
                | SessionRejectedMaxPduLength
                | SessionRejectedLabelRange
                | KeepAliveTimerExpired
                | SessionRejectedBadKeepAliveTime
                | InternalError
        )
    }

    /// The Status TLV value reporting this code about message `msg_id` of type `msg_type`
    /// (both 0 when it is about no message in particular), F = 0.
    pub fn status(self, msg_id: u32, msg_type: u16) -> Status {
        Status {
            fatal: self.fatal(),
            forward: false,
            data: self.data(),
            msg_id,
            msg_type,
        }
    }
}

/// The value of a Status TLV (RFC 5036 §3.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status {
    /// The E bit: a fatal error notification.
    pub fatal: bool,
    /// The F bit: forward the notification along the LSP (kept, not acted on here).
    pub forward: bool,
    /// The 30-bit Status Data (the status code).
    pub data: u32,
    /// The ID of the peer message the status refers to, or 0.
    pub msg_id: u32,
    /// The type of the peer message the status refers to, or 0.
    pub msg_type: u16,
}

impl Status {
    /// The named status code, if the data is one.
    pub fn code(&self) -> Option<StatusCode> {
        StatusCode::from_data(self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_fatal_matches_rfc_table() {
        for d in 0..0x20u32 {
            if let Some(c) = StatusCode::from_data(d) {
                assert_eq!(c.data(), d);
            }
        }
        assert_eq!(StatusCode::from_data(0x19), Some(StatusCode::InternalError));
        assert_eq!(StatusCode::from_data(0x1a), None);
        assert!(StatusCode::BadLdpIdentifier.fatal());
        assert!(!StatusCode::UnknownMessageType.fatal());
        assert!(!StatusCode::UnknownTlv.fatal());
        assert!(!StatusCode::MissingMessageParameters.fatal());
        assert!(StatusCode::SessionRejectedBadKeepAliveTime.fatal());
    }
}
