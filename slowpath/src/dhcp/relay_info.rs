//! Relay Agent Information, option 82 (RFC 3046), and the sub-options ispmux adds to make
//! the "extended DHCP request" of claims 6 and 13:
//!
//! | sub | name | RFC | ispmux puts |
//! |---|---|---|---|
//! | 1 | Agent Circuit ID | 3046 §3.1 | `"<port>:<vlan>"` (`"<port>:<outer>.<inner>"` behind QinQ) in ASCII: where the subscriber is attached |
//! | 2 | Agent Remote ID | 3046 §3.2 | the subscriber's MAC, 6 octets (claim 20) |
//! | 5 | Link Selection | 3527 | the subnet the ISP should assign from (if configured) |
//! | 6 | Subscriber-ID | 3993 | the customer id the ISP registered (claims 8, 18) |
//! | 11 | Server Identifier Override | 5107 | the gateway's own server identity |
//!
//! Link selection and server-id override together let giaddr be the gateway's ISP-side
//! address (so replies come back to it) while renewals, which the client unicasts to the
//! server identifier it was given, also come back through the gateway.

use std::net::Ipv4Addr;

use super::codec::{code, Message};
use super::MacAddr;

/// Sub-option codes.
pub mod sub {
    /// Agent Circuit ID (RFC 3046 §3.1).
    pub const CIRCUIT_ID: u8 = 1;
    /// Agent Remote ID (RFC 3046 §3.2).
    pub const REMOTE_ID: u8 = 2;
    /// Link Selection (RFC 3527 §3).
    pub const LINK_SELECTION: u8 = 5;
    /// Subscriber-ID (RFC 3993 §3).
    pub const SUBSCRIBER_ID: u8 = 6;
    /// Server Identifier Override (RFC 5107 §4).
    pub const SERVER_ID_OVERRIDE: u8 = 11;
}

/// Why option 82 could not be read or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayInfoError {
    /// A sub-option's length runs past the option.
    #[error("relay agent information sub-option {0} truncated")]
    Truncated(u8),
    /// A sub-option value longer than 255 octets (sub-options cannot be split).
    #[error("relay agent information sub-option {0} longer than 255 octets")]
    TooLong(u8),
    /// RFC 3046 §2.0: the option holds at least one sub-option.
    #[error("relay agent information option is empty")]
    Empty,
}

/// One sub-option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubOption {
    /// Sub-option code.
    pub code: u8,
    /// Sub-option value.
    pub data: Vec<u8>,
}

/// The content of option 82: sub-options in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayAgentInfo {
    /// The sub-options.
    pub subs: Vec<SubOption>,
}

impl RelayAgentInfo {
    /// Parses option 82's value.
    pub fn decode(b: &[u8]) -> Result<Self, RelayInfoError> {
        if b.is_empty() {
            return Err(RelayInfoError::Empty);
        }
        let mut subs = Vec::new();
        let mut i = 0;
        while let Some(&c) = b.get(i) {
            let len = *b.get(i + 1).ok_or(RelayInfoError::Truncated(c))? as usize;
            let data = b
                .get(i + 2..i + 2 + len)
                .ok_or(RelayInfoError::Truncated(c))?;
            subs.push(SubOption {
                code: c,
                data: data.to_vec(),
            });
            i += 2 + len;
        }
        Ok(RelayAgentInfo { subs })
    }

    /// Encodes option 82's value.
    pub fn encode(&self) -> Result<Vec<u8>, RelayInfoError> {
        if self.subs.is_empty() {
            return Err(RelayInfoError::Empty);
        }
        let mut v = Vec::new();
        for s in &self.subs {
            let len = u8::try_from(s.data.len()).map_err(|_| RelayInfoError::TooLong(s.code))?;
            v.push(s.code);
            v.push(len);
            v.extend_from_slice(&s.data);
        }
        Ok(v)
    }

    /// The value of sub-option `code`.
    pub fn get(&self, code: u8) -> Option<&[u8]> {
        self.subs
            .iter()
            .find(|s| s.code == code)
            .map(|s| s.data.as_slice())
    }

    fn push(mut self, code: u8, data: Vec<u8>) -> Self {
        self.subs.push(SubOption { code, data });
        self
    }

    /// Adds an Agent Circuit ID.
    pub fn circuit_id(self, id: &[u8]) -> Self {
        self.push(sub::CIRCUIT_ID, id.to_vec())
    }

    /// Adds an Agent Remote ID holding a MAC address.
    pub fn remote_id(self, mac: MacAddr) -> Self {
        self.push(sub::REMOTE_ID, mac.0.to_vec())
    }

    /// Adds a Link Selection sub-option.
    pub fn link_selection(self, subnet: Ipv4Addr) -> Self {
        self.push(sub::LINK_SELECTION, subnet.octets().to_vec())
    }

    /// Adds a Subscriber-ID (NVT ASCII, no terminating NUL: RFC 3993 §3).
    pub fn subscriber_id(self, id: &str) -> Self {
        self.push(sub::SUBSCRIBER_ID, id.as_bytes().to_vec())
    }

    /// Adds a Server Identifier Override.
    pub fn server_id_override(self, addr: Ipv4Addr) -> Self {
        self.push(sub::SERVER_ID_OVERRIDE, addr.octets().to_vec())
    }

    /// The circuit-id ispmux writes for an access port and VLANs: `"<port>:<vlan>"`, or
    /// `"<port>:<outer>.<inner>"` behind QinQ.
    pub fn circuit_id_for(port: u16, vlan: u16, inner_vlan: u16) -> Vec<u8> {
        if inner_vlan == 0 {
            format!("{port}:{vlan}").into_bytes()
        } else {
            format!("{port}:{vlan}.{inner_vlan}").into_bytes()
        }
    }
}

/// Adds option 82 as the last option (RFC 3046 §2.1).
pub fn add(msg: &mut Message, info: &RelayAgentInfo) -> Result<(), RelayInfoError> {
    msg.remove_option(code::RELAY_AGENT_INFO);
    msg.set_option(code::RELAY_AGENT_INFO, info.encode()?);
    Ok(())
}

/// Removes option 82 from a server's reply before it goes to the client (RFC 3046 §2.2),
/// returning what the server echoed, if it parses.
pub fn strip(msg: &mut Message) -> Option<Result<RelayAgentInfo, RelayInfoError>> {
    msg.remove_option(code::RELAY_AGENT_INFO)
        .map(|v| RelayAgentInfo::decode(&v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcp::codec::MessageType;

    fn mac() -> MacAddr {
        MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x01])
    }

    #[test]
    fn known_answer_for_all_five_sub_options() {
        let info = RelayAgentInfo::default()
            .circuit_id(&RelayAgentInfo::circuit_id_for(3, 100, 0))
            .remote_id(mac())
            .link_selection(Ipv4Addr::new(198, 18, 100, 0))
            .subscriber_id("C1001")
            .server_id_override(Ipv4Addr::new(198, 18, 0, 1));
        // Octets as the RFC figures lay them out: code, length, value.
        let want: Vec<u8> = [
            &[1u8, 5, b'3', b':', b'1', b'0', b'0'][..], // RFC 3046 §3.1
            &[2, 6, 0x02, 0, 0x5e, 0x10, 0, 0x01],       // RFC 3046 §3.2
            &[5, 4, 198, 18, 100, 0],                    // RFC 3527 §3
            &[6, 5, b'C', b'1', b'0', b'0', b'1'],       // RFC 3993 §3
            &[11, 4, 198, 18, 0, 1],                     // RFC 5107 §4
        ]
        .concat();
        assert_eq!(info.encode().expect("encodes"), want);
        assert_eq!(RelayAgentInfo::decode(&want).expect("decodes"), info);
        assert_eq!(info.get(sub::SUBSCRIBER_ID), Some(&b"C1001"[..]));
    }

    #[test]
    fn malformed_sub_options_are_errors() {
        assert_eq!(RelayAgentInfo::decode(&[]), Err(RelayInfoError::Empty));
        assert_eq!(
            RelayAgentInfo::decode(&[1, 3, b'a']),
            Err(RelayInfoError::Truncated(1))
        );
        assert_eq!(
            RelayAgentInfo::decode(&[1, 1, b'a', 2]),
            Err(RelayInfoError::Truncated(2))
        );
        let long = RelayAgentInfo::default().circuit_id(&[0u8; 256]);
        assert_eq!(long.encode(), Err(RelayInfoError::TooLong(1)));
    }

    #[test]
    fn add_puts_option_82_last_and_strip_removes_it() {
        let mut m = Message::new_request(mac(), 7, MessageType::Discover);
        m.set_option(61, vec![1, 2, 0, 0x5e, 0x10, 0, 1]);
        let info = RelayAgentInfo::default().remote_id(mac());
        add(&mut m, &info).expect("adds");
        m.set_option(50, vec![198, 18, 100, 9]);
        let wire = m.encode();
        let mut back = Message::decode(&wire).expect("decodes");
        assert_eq!(back.options.last().map(|o| o.code), Some(82));
        assert_eq!(strip(&mut back), Some(Ok(info)));
        assert_eq!(back.option(82), None);
        assert_eq!(strip(&mut back), None);
    }
}
