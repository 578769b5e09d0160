//! The logon credential a subscriber's DHCP client sends (claims 8 and 18: the customer id
//! and password the ISP gave the customer at registration).
//!
//! Carried in two options of the site-specific range (224–254, RFC 3942 §4), so they cannot
//! collide with an IANA-assigned option:
//!
//! - option **224**: customer id, ASCII text;
//! - option **225**: password, ASCII text.
//!
//! `slowpath/logon/dhclient-ispmux.conf` makes ISC dhclient send them; busybox udhcpc sends
//! them with `-x 0xe0:<hex> -x 0xe1:<hex>`. The gateway removes both options before relaying:
//! the password never leaves the access network, and the customer id travels to the ISP as
//! the RFC 3993 subscriber-id instead. The password crosses the access link in clear text,
//! as a PPP PAP password would; the access network is the operator's own layer 2.

use super::codec::{code, Message};

/// A credential presented in a logon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// Customer id (option 224).
    pub customer_id: String,
    /// Password (option 225).
    pub password: Vec<u8>,
}

/// Takes the logon options out of `msg`. `None` when the client sent neither; a lone option
/// or a non-UTF-8 customer id yields an empty field so the check fails rather than passes.
pub fn take(msg: &mut Message) -> Option<Credential> {
    let id = msg.remove_option(code::LOGON_CUSTOMER_ID);
    let pw = msg.remove_option(code::LOGON_PASSWORD);
    if id.is_none() && pw.is_none() {
        return None;
    }
    Some(Credential {
        customer_id: id
            .and_then(|v| String::from_utf8(v).ok())
            .map(|s| s.trim_end_matches('\0').to_owned())
            .unwrap_or_default(),
        password: pw
            .map(|mut v| {
                // dhclient's `text` options carry no NUL, but some clients add one.
                while v.last() == Some(&0) {
                    v.pop();
                }
                v
            })
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcp::codec::MessageType;
    use crate::dhcp::MacAddr;

    #[test]
    fn takes_both_options_out() {
        let mut m = Message::new_request(MacAddr([2, 0, 0, 0, 0, 1]), 1, MessageType::Discover);
        m.set_option(224, b"C1001".to_vec());
        m.set_option(225, b"s3cret\0".to_vec());
        let c = take(&mut m).expect("present");
        assert_eq!(c.customer_id, "C1001");
        assert_eq!(c.password, b"s3cret");
        assert_eq!(m.option(224), None);
        assert_eq!(m.option(225), None);
        assert_eq!(take(&mut m), None);
    }

    #[test]
    fn a_lone_password_is_still_a_credential() {
        let mut m = Message::new_request(MacAddr([2, 0, 0, 0, 0, 1]), 1, MessageType::Discover);
        m.set_option(225, b"pw".to_vec());
        let c = take(&mut m).expect("present");
        assert_eq!(c.customer_id, "");
    }
}
