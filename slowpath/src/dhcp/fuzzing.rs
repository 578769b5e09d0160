//! The properties the `dhcp_codec` fuzz target checks, shared with the corpus test so CI
//! exercises them on stable Rust. Panics are the point here: a panic is a finding.

use super::codec::{code, Message};
use super::{credential, relay_info};

// The same bytes are also tried as a punted frame, so one corpus covers both parsers.

/// Decodes `data`; anything that decodes must re-encode to something that decodes to the
/// same message, and its option 82 and logon options must parse or fail cleanly.
pub fn exercise(data: &[u8]) {
    if let Ok(p) = super::frame::parse_punt(data) {
        assert!(p.payload.len() <= data.len());
    }
    let Ok(mut m) = Message::decode(data) else {
        return;
    };
    let again = Message::decode(&m.encode());
    assert_eq!(again.as_ref(), Ok(&m), "encode/decode round trip");
    if let Some(Ok(info)) = relay_info::strip(&mut m) {
        if let Ok(enc) = info.encode() {
            assert_eq!(
                relay_info::RelayAgentInfo::decode(&enc).as_ref(),
                Ok(&info),
                "option 82 round trip"
            );
        }
    }
    let _ = m.message_type();
    let _ = m.ipv4_option(code::SERVER_ID);
    let _ = credential::take(&mut m);
    assert!(m.option(code::LOGON_PASSWORD).is_none());
}
