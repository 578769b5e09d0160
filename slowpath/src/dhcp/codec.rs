//! The DHCPv4 message format (RFC 2131 §2, RFC 2132 options, RFC 3396 long options).
//!
//! Hand-written rather than `dhcproto`: a relay must pass the client's options through
//! untouched (order, unknown and site-specific codes, RFC 3396 splits) and change only what
//! it means to change (giaddr, option 82, the server identifier). `dhcproto` decodes into
//! typed options and re-encodes them in its own order, and its option-82 model lacks RFC 5107
//! and RFC 3993 names; owning ~200 lines of checked parsing was cheaper than wrapping it.
//! Every read is bounds-checked; bad input is a [`DecodeError`], never a panic.

use std::net::Ipv4Addr;

/// Length of the fixed BOOTP header, before the magic cookie.
pub const HEADER_LEN: usize = 236;
/// RFC 2131 §3: the options field starts with this cookie.
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// RFC 1542 §2.1: relays and servers expect BOOTP messages of at least 300 octets.
pub const MIN_MESSAGE_LEN: usize = 300;

/// BOOTREQUEST (client to server).
pub const OP_BOOTREQUEST: u8 = 1;
/// BOOTREPLY (server to client).
pub const OP_BOOTREPLY: u8 = 2;
/// RFC 2131 §2, figure 2: the BROADCAST flag.
pub const FLAG_BROADCAST: u16 = 0x8000;

/// Option codes used by ispmux (RFC 2132 unless noted).
pub mod code {
    /// Pad.
    pub const PAD: u8 = 0;
    /// Requested IP address.
    pub const REQUESTED_IP: u8 = 50;
    /// IP address lease time.
    pub const LEASE_TIME: u8 = 51;
    /// Option overload: options continue in `file` and/or `sname`.
    pub const OVERLOAD: u8 = 52;
    /// DHCP message type.
    pub const MESSAGE_TYPE: u8 = 53;
    /// Server identifier.
    pub const SERVER_ID: u8 = 54;
    /// Message (the server's reason text on a NAK).
    pub const MESSAGE: u8 = 56;
    /// Renewal (T1) time.
    pub const RENEWAL_TIME: u8 = 58;
    /// Rebinding (T2) time.
    pub const REBINDING_TIME: u8 = 59;
    /// Client identifier.
    pub const CLIENT_ID: u8 = 61;
    /// Relay Agent Information (RFC 3046).
    pub const RELAY_AGENT_INFO: u8 = 82;
    /// ispmux logon: customer id (site-specific range, RFC 3942 §4).
    pub const LOGON_CUSTOMER_ID: u8 = 224;
    /// ispmux logon: password (site-specific range, RFC 3942 §4).
    pub const LOGON_PASSWORD: u8 = 225;
    /// End.
    pub const END: u8 = 255;
}

/// DHCP message type, option 53 (RFC 2132 §9.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// DHCPDISCOVER.
    Discover,
    /// DHCPOFFER.
    Offer,
    /// DHCPREQUEST.
    Request,
    /// DHCPDECLINE.
    Decline,
    /// DHCPACK.
    Ack,
    /// DHCPNAK.
    Nak,
    /// DHCPRELEASE.
    Release,
    /// DHCPINFORM.
    Inform,
    /// Any other value (leasequery and later extensions).
    Other(u8),
}

impl From<u8> for MessageType {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::Discover,
            2 => Self::Offer,
            3 => Self::Request,
            4 => Self::Decline,
            5 => Self::Ack,
            6 => Self::Nak,
            7 => Self::Release,
            8 => Self::Inform,
            o => Self::Other(o),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(t: MessageType) -> u8 {
        match t {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
            MessageType::Other(o) => o,
        }
    }
}

/// Why a buffer is not a DHCP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the fixed header plus cookie.
    #[error("message of {0} octets is shorter than the 240-octet header")]
    TooShort(usize),
    /// Not the RFC 2131 magic cookie (a plain BOOTP message).
    #[error("no DHCP magic cookie")]
    BadCookie,
    /// `hlen` larger than the 16-octet chaddr field.
    #[error("hardware address length {0} exceeds 16")]
    BadHlen(u8),
    /// An option's length runs past the end of its field.
    #[error("option {code} truncated")]
    TruncatedOption {
        /// The option code.
        code: u8,
    },
    /// Option 52 with a value other than 1, 2 or 3.
    #[error("option overload value {0} invalid")]
    BadOverload(u8),
}

/// One option after RFC 3396 concatenation: a code and its full value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpOption {
    /// Option code.
    pub code: u8,
    /// Option value (may exceed 255 octets; split again on encode).
    pub data: Vec<u8>,
}

/// A decoded DHCPv4 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// BOOTREQUEST or BOOTREPLY.
    pub op: u8,
    /// Hardware type (1 = Ethernet).
    pub htype: u8,
    /// Hardware address length.
    pub hlen: u8,
    /// Relay hop count.
    pub hops: u8,
    /// Transaction id.
    pub xid: u32,
    /// Seconds since the client began.
    pub secs: u16,
    /// Flags (bit 15 = BROADCAST).
    pub flags: u16,
    /// Client address (client in BOUND, RENEWING, REBINDING).
    pub ciaddr: Ipv4Addr,
    /// "Your" address, the one offered or assigned.
    pub yiaddr: Ipv4Addr,
    /// Next server address.
    pub siaddr: Ipv4Addr,
    /// Relay agent address.
    pub giaddr: Ipv4Addr,
    /// Client hardware address (first `hlen` octets meaningful).
    pub chaddr: [u8; 16],
    /// Server host name (zeroed when it carried overloaded options).
    pub sname: [u8; 64],
    /// Boot file name (zeroed when it carried overloaded options).
    pub file: [u8; 128],
    /// Options in first-appearance order, each code once (RFC 3396); Pad, End and Overload
    /// are not kept.
    pub options: Vec<DhcpOption>,
}

fn ip_at(b: &[u8], at: usize) -> Ipv4Addr {
    match b.get(at..at + 4) {
        Some(&[a, b2, c, d]) => Ipv4Addr::new(a, b2, c, d),
        _ => Ipv4Addr::UNSPECIFIED,
    }
}

/// Walks one options field, appending (concatenating repeats) into `out`; returns the
/// overload value if option 52 appeared.
fn parse_field(field: &[u8], out: &mut Vec<DhcpOption>) -> Result<Option<u8>, DecodeError> {
    let mut overload = None;
    let mut i = 0;
    while let Some(&code) = field.get(i) {
        match code {
            code::PAD => i += 1,
            code::END => break,
            _ => {
                let len = *field
                    .get(i + 1)
                    .ok_or(DecodeError::TruncatedOption { code })?
                    as usize;
                let data = field
                    .get(i + 2..i + 2 + len)
                    .ok_or(DecodeError::TruncatedOption { code })?;
                i += 2 + len;
                if code == code::OVERLOAD {
                    match data {
                        [v @ 1..=3] => overload = Some(*v),
                        [v] => return Err(DecodeError::BadOverload(*v)),
                        _ => return Err(DecodeError::BadOverload(0)),
                    }
                    continue;
                }
                match out.iter_mut().find(|o| o.code == code) {
                    Some(o) => o.data.extend_from_slice(data),
                    None => out.push(DhcpOption {
                        code,
                        data: data.to_vec(),
                    }),
                }
            }
        }
    }
    Ok(overload)
}

impl Message {
    /// Decodes a UDP payload. A missing End option is tolerated (the field's end ends it).
    pub fn decode(b: &[u8]) -> Result<Message, DecodeError> {
        if b.len() < HEADER_LEN + 4 {
            return Err(DecodeError::TooShort(b.len()));
        }
        if b.get(HEADER_LEN..HEADER_LEN + 4) != Some(&MAGIC_COOKIE[..]) {
            return Err(DecodeError::BadCookie);
        }
        let u16_at = |at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
        let hlen = b[2];
        if hlen > 16 {
            return Err(DecodeError::BadHlen(hlen));
        }
        let mut chaddr = [0u8; 16];
        chaddr.copy_from_slice(&b[28..44]);
        let mut sname = [0u8; 64];
        sname.copy_from_slice(&b[44..108]);
        let mut file = [0u8; 128];
        file.copy_from_slice(&b[108..236]);
        let mut options = Vec::new();
        let overload = parse_field(&b[HEADER_LEN + 4..], &mut options)?;
        // RFC 3396 §5: options, then file, then sname.
        if let Some(ov) = overload {
            if ov & 1 != 0 {
                parse_field(&file, &mut options)?;
                file = [0u8; 128];
            }
            if ov & 2 != 0 {
                parse_field(&sname, &mut options)?;
                sname = [0u8; 64];
            }
        }
        Ok(Message {
            op: b[0],
            htype: b[1],
            hlen,
            hops: b[3],
            xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            secs: u16_at(8),
            flags: u16_at(10),
            ciaddr: ip_at(b, 12),
            yiaddr: ip_at(b, 16),
            siaddr: ip_at(b, 20),
            giaddr: ip_at(b, 24),
            chaddr,
            sname,
            file,
            options,
        })
    }

    /// Encodes the message; options longer than 255 octets are split (RFC 3396), the result is
    /// padded to [`MIN_MESSAGE_LEN`].
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(MIN_MESSAGE_LEN + 64);
        v.extend_from_slice(&[self.op, self.htype, self.hlen, self.hops]);
        v.extend_from_slice(&self.xid.to_be_bytes());
        v.extend_from_slice(&self.secs.to_be_bytes());
        v.extend_from_slice(&self.flags.to_be_bytes());
        for a in [self.ciaddr, self.yiaddr, self.siaddr, self.giaddr] {
            v.extend_from_slice(&a.octets());
        }
        v.extend_from_slice(&self.chaddr);
        v.extend_from_slice(&self.sname);
        v.extend_from_slice(&self.file);
        v.extend_from_slice(&MAGIC_COOKIE);
        for o in &self.options {
            if o.data.is_empty() {
                v.extend_from_slice(&[o.code, 0]);
            }
            for chunk in o.data.chunks(255) {
                v.push(o.code);
                v.push(chunk.len() as u8);
                v.extend_from_slice(chunk);
            }
        }
        v.push(code::END);
        if v.len() < MIN_MESSAGE_LEN {
            v.resize(MIN_MESSAGE_LEN, code::PAD);
        }
        v
    }

    /// The value of option `code`.
    pub fn option(&self, code: u8) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|o| o.code == code)
            .map(|o| o.data.as_slice())
    }

    /// Removes option `code`, returning its value.
    pub fn remove_option(&mut self, code: u8) -> Option<Vec<u8>> {
        let at = self.options.iter().position(|o| o.code == code)?;
        Some(self.options.remove(at).data)
    }

    /// Sets option `code`, replacing it in place if present; a new option goes before
    /// option 82, which RFC 3046 §2.1 wants last.
    pub fn set_option(&mut self, code: u8, data: Vec<u8>) {
        if let Some(o) = self.options.iter_mut().find(|o| o.code == code) {
            o.data = data;
            return;
        }
        let at = if code == code::RELAY_AGENT_INFO {
            self.options.len()
        } else {
            self.options
                .iter()
                .position(|o| o.code == code::RELAY_AGENT_INFO)
                .unwrap_or(self.options.len())
        };
        self.options.insert(at, DhcpOption { code, data });
    }

    /// Option 53, if present and one octet long.
    pub fn message_type(&self) -> Option<MessageType> {
        match self.option(code::MESSAGE_TYPE) {
            Some(&[t]) => Some(MessageType::from(t)),
            _ => None,
        }
    }

    /// An option holding one IPv4 address.
    pub fn ipv4_option(&self, code: u8) -> Option<Ipv4Addr> {
        match self.option(code) {
            Some(&[a, b, c, d]) => Some(Ipv4Addr::new(a, b, c, d)),
            _ => None,
        }
    }

    /// An option holding one 32-bit unsigned integer.
    pub fn u32_option(&self, code: u8) -> Option<u32> {
        match self.option(code) {
            Some(&[a, b, c, d]) => Some(u32::from_be_bytes([a, b, c, d])),
            _ => None,
        }
    }

    /// The client's hardware address when it is an Ethernet MAC (htype 1, hlen 6).
    pub fn client_mac(&self) -> Option<super::MacAddr> {
        if self.htype != 1 || self.hlen != 6 {
            return None;
        }
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.chaddr[..6]);
        Some(super::MacAddr(m))
    }

    /// True when the client asked for broadcast replies.
    pub fn broadcast(&self) -> bool {
        self.flags & FLAG_BROADCAST != 0
    }

    /// A BOOTREQUEST skeleton from an Ethernet client (tests, tools).
    pub fn new_request(mac: super::MacAddr, xid: u32, t: MessageType) -> Message {
        let mut chaddr = [0u8; 16];
        chaddr[..6].copy_from_slice(&mac.0);
        Message {
            op: OP_BOOTREQUEST,
            htype: 1,
            hlen: 6,
            hops: 0,
            xid,
            secs: 0,
            flags: 0,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr,
            sname: [0u8; 64],
            file: [0u8; 128],
            options: vec![DhcpOption {
                code: code::MESSAGE_TYPE,
                data: vec![u8::from(t)],
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DHCPDISCOVER as a Linux dhclient sends it: RFC 2131 layout written out octet by
    /// octet, so the test checks the offsets rather than our own encoder.
    fn known_discover() -> Vec<u8> {
        let mut b = vec![1u8, 1, 6, 0, 0x39, 0x03, 0xf3, 0x26, 0, 0, 0x80, 0];
        b.extend_from_slice(&[0; 16]); // ciaddr yiaddr siaddr giaddr
        b.extend_from_slice(&[0x02, 0, 0x5e, 0x10, 0, 0x01]);
        b.extend_from_slice(&[0; 10 + 64 + 128]);
        b.extend_from_slice(&MAGIC_COOKIE);
        b.extend_from_slice(&[53, 1, 1]); // DHCPDISCOVER
        b.extend_from_slice(&[61, 7, 1, 0x02, 0, 0x5e, 0x10, 0, 0x01]);
        b.extend_from_slice(&[50, 4, 198, 18, 100, 7]);
        b.extend_from_slice(&[55, 4, 1, 3, 6, 15]);
        b.extend_from_slice(&[0, 0, 255]);
        b
    }

    #[test]
    fn decodes_rfc2131_layout() {
        let m = Message::decode(&known_discover()).expect("decodes");
        assert_eq!(m.op, OP_BOOTREQUEST);
        assert_eq!(m.xid, 0x3903f326);
        assert!(m.broadcast());
        assert_eq!(m.message_type(), Some(MessageType::Discover));
        assert_eq!(
            m.client_mac().map(|x| x.to_string()).as_deref(),
            Some("02:00:5e:10:00:01")
        );
        assert_eq!(
            m.ipv4_option(code::REQUESTED_IP),
            Some(Ipv4Addr::new(198, 18, 100, 7))
        );
        assert_eq!(m.option(55), Some(&[1u8, 3, 6, 15][..]));
        assert_eq!(m.options.len(), 4);
    }

    #[test]
    fn encode_preserves_options_and_pads_to_300() {
        let raw = known_discover();
        let m = Message::decode(&raw).expect("decodes");
        let out = m.encode();
        assert_eq!(out.len(), MIN_MESSAGE_LEN);
        // Identical up to the End option: nothing reordered or rewritten.
        let end = raw.len() - 3;
        assert_eq!(&out[..end], &raw[..end]);
        assert_eq!(out[end], code::END);
        assert_eq!(Message::decode(&out).expect("re-decodes"), m);
    }

    #[test]
    fn rfc3396_concatenates_and_splits_long_options() {
        let mut raw = known_discover();
        raw.truncate(raw.len() - 3);
        raw.extend_from_slice(&[77, 2, b'a', b'b', 12, 1, b'h', 77, 1, b'c', 255]);
        let m = Message::decode(&raw).expect("decodes");
        assert_eq!(m.option(77), Some(&b"abc"[..]));
        let mut long = m.clone();
        long.set_option(77, vec![7u8; 300]);
        let enc = long.encode();
        let back = Message::decode(&enc).expect("decodes");
        assert_eq!(back.option(77).map(<[u8]>::len), Some(300));
    }

    #[test]
    fn option_overload_reads_file_then_sname() {
        let mut raw = known_discover();
        raw.truncate(raw.len() - 3);
        raw.extend_from_slice(&[52, 1, 3, 255]);
        raw[108..113].copy_from_slice(&[12, 2, b'f', b'i', 255]); // file
        raw[44..49].copy_from_slice(&[12, 2, b's', b'n', 255]); // sname
        let m = Message::decode(&raw).expect("decodes");
        assert_eq!(m.option(12), Some(&b"fisn"[..]));
        assert_eq!(m.option(code::OVERLOAD), None);
        assert!(m.file.iter().chain(m.sname.iter()).all(|&b| b == 0));
    }

    #[test]
    fn malformed_input_is_a_typed_error() {
        let raw = known_discover();
        assert_eq!(
            Message::decode(&raw[..239]),
            Err(DecodeError::TooShort(239))
        );
        let mut bad = raw.clone();
        bad[236] = 0;
        assert_eq!(Message::decode(&bad), Err(DecodeError::BadCookie));
        let mut bad = raw.clone();
        bad[2] = 17;
        assert_eq!(Message::decode(&bad), Err(DecodeError::BadHlen(17)));
        let mut bad = raw[..raw.len() - 3].to_vec();
        bad.extend_from_slice(&[12, 9, b'x']);
        assert_eq!(
            Message::decode(&bad),
            Err(DecodeError::TruncatedOption { code: 12 })
        );
        let mut bad = raw[..raw.len() - 3].to_vec();
        bad.extend_from_slice(&[52, 1, 4]);
        assert_eq!(Message::decode(&bad), Err(DecodeError::BadOverload(4)));
    }

    #[test]
    fn new_options_go_before_relay_info() {
        let mut m = Message::decode(&known_discover()).expect("decodes");
        m.set_option(code::RELAY_AGENT_INFO, vec![1, 1, b'x']);
        m.set_option(code::SERVER_ID, vec![198, 18, 0, 1]);
        assert_eq!(
            m.options.last().map(|o| o.code),
            Some(code::RELAY_AGENT_INFO)
        );
    }
}
