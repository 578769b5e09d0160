//! Authenticators and attribute hiding: User-Password (RFC 2865 section 5.2), Request and
//! Response Authenticators (RFC 2865 section 3, RFC 2866 section 3, RFC 5176 section 2.3),
//! Message-Authenticator (RFC 3579 section 3.2).

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

use super::attr;
use super::packet::{self, Code, EncodeError, Packet, HEADER_LEN};

/// Why an attribute cannot be hidden or revealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("User-Password longer than 128 octets")]
    PasswordTooLong,
    #[error("hidden User-Password of {0} octets is not a non-zero multiple of 16 up to 128")]
    BadHiddenLength(usize),
}

/// Compares without an early exit, so timing says nothing about where a forgery differs.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// MD5 over the concatenation of `parts`: the chain step of every RADIUS hiding scheme.
pub(super) fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Hides a User-Password: padded to 16 octets, each block XORed with MD5(secret + previous).
pub fn hide_password(
    password: &[u8],
    secret: &[u8],
    authenticator: &[u8; 16],
) -> Result<Vec<u8>, CryptoError> {
    if password.len() > 128 {
        return Err(CryptoError::PasswordTooLong);
    }
    let padded = password.len().div_ceil(16).max(1) * 16;
    let mut out = password.to_vec();
    out.resize(padded, 0);
    let mut prev: [u8; 16] = *authenticator;
    for block in out.chunks_mut(16) {
        let b = md5(&[secret, &prev]);
        for (c, k) in block.iter_mut().zip(b) {
            *c ^= k;
        }
        prev.copy_from_slice(block);
    }
    Ok(out)
}

/// Reveals a hidden User-Password, trailing NUL padding removed.
pub fn reveal_password(
    hidden: &[u8],
    secret: &[u8],
    authenticator: &[u8; 16],
) -> Result<Vec<u8>, CryptoError> {
    if hidden.is_empty() || hidden.len() > 128 || hidden.len() & 15 != 0 {
        return Err(CryptoError::BadHiddenLength(hidden.len()));
    }
    let mut out = Vec::with_capacity(hidden.len());
    let mut prev: &[u8] = authenticator;
    for block in hidden.chunks(16) {
        let b = md5(&[secret, prev]);
        out.extend(block.iter().zip(b).map(|(c, k)| c ^ k));
        prev = block;
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    Ok(out)
}

/// Keyed HMAC-MD5 states of the secrets in use, most recent first. Keying costs two MD5
/// blocks (the padded key, inner and outer), as much as hashing a whole Access-Request; a
/// proxied logon uses two secrets (the NAS's, the home server's) four times, so the keyed
/// states are kept and cloned. Per thread, so the engine's thread needs no lock.
const KEYED_CACHE: usize = 8;

thread_local! {
    static KEYED: std::cell::RefCell<Vec<(Vec<u8>, Hmac<Md5>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// An HMAC-MD5 keyed with `secret`.
fn keyed(secret: &[u8]) -> Option<Hmac<Md5>> {
    KEYED.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(i) = c.iter().position(|(k, _)| k.as_slice() == secret) {
            if i != 0 {
                let e = c.remove(i);
                c.insert(0, e);
            }
            return c.first().map(|(_, m)| m.clone());
        }
        // HMAC accepts keys of any length, so this cannot fail; an empty tag would simply
        // never verify.
        let m = Hmac::<Md5>::new_from_slice(secret).ok()?;
        c.truncate(KEYED_CACHE - 1);
        c.insert(0, (secret.to_vec(), m.clone()));
        Some(m)
    })
}

/// HMAC-MD5 over the concatenation of `parts` (no copy of the packet is made).
fn hmac_md5_parts(secret: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    match keyed(secret) {
        Some(mut m) => {
            for p in parts {
                m.update(p);
            }
            m.finalize().into_bytes().into()
        }
        None => [0; 16],
    }
}

fn hmac_md5(secret: &[u8], data: &[u8]) -> [u8; 16] {
    hmac_md5_parts(secret, &[data])
}

/// Offset of the value of the first Message-Authenticator in a framed packet.
fn message_authenticator_offset(raw: &[u8]) -> Option<usize> {
    packet::attributes(raw)
        .find(|(_, t, v)| *t == attr::MESSAGE_AUTHENTICATOR && v.len() == 16)
        .map(|(off, _, _)| off + 2)
}

/// Outcome of checking a Message-Authenticator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageAuth {
    Absent,
    Valid,
    Invalid,
}

/// Checks the Message-Authenticator of framed packet `raw`; `header_auth` is what the
/// authenticator field held when it was computed (the Request Authenticator for responses,
/// zeros for accounting and dynamic authorization requests, the field itself otherwise).
pub fn check_message_authenticator(
    raw: &[u8],
    secret: &[u8],
    header_auth: Option<&[u8; 16]>,
) -> MessageAuth {
    let Some(off) = message_authenticator_offset(raw) else {
        // A Message-Authenticator of the wrong length is as bad as a wrong one.
        if packet::attributes(raw).any(|(_, t, _)| t == attr::MESSAGE_AUTHENTICATOR) {
            return MessageAuth::Invalid;
        }
        return MessageAuth::Absent;
    };
    let (Some(head), Some(auth), Some(mid), Some(got), Some(rest)) = (
        raw.get(..4),
        raw.get(4..HEADER_LEN),
        raw.get(HEADER_LEN..off),
        raw.get(off..off + 16),
        raw.get(off + 16..),
    ) else {
        return MessageAuth::Invalid;
    };
    let auth = header_auth.map_or(auth, |h| h.as_slice());
    // The packet as it was signed: the header authenticator as given, the MA zeroed.
    let mac = hmac_md5_parts(secret, &[head, auth, mid, &[0; 16], rest]);
    if ct_eq(&mac, got) {
        MessageAuth::Valid
    } else {
        MessageAuth::Invalid
    }
}

/// Checks a response's Response Authenticator against the request's authenticator.
pub fn check_response_authenticator(raw: &[u8], secret: &[u8], request_auth: &[u8; 16]) -> bool {
    let Some(got) = raw.get(4..HEADER_LEN) else {
        return false;
    };
    let (Some(head), Some(rest)) = (raw.get(..4), raw.get(HEADER_LEN..)) else {
        return false;
    };
    ct_eq(&md5(&[head, request_auth, rest, secret]), got)
}

/// Checks the Request Authenticator of an Accounting-Request or a dynamic authorization
/// request: MD5 over the packet with a zero authenticator, then the secret.
pub fn check_request_authenticator(raw: &[u8], secret: &[u8]) -> bool {
    let Some(got) = raw.get(4..HEADER_LEN) else {
        return false;
    };
    let (Some(head), Some(rest)) = (raw.get(..4), raw.get(HEADER_LEN..)) else {
        return false;
    };
    ct_eq(&md5(&[head, &[0; 16], rest, secret]), got)
}

/// Puts a zero Message-Authenticator first, where its HMAC will go (first, so that an attacker
/// cannot prefix chosen data before it: CVE-2024-3596).
pub fn add_message_authenticator(p: &mut Packet) {
    p.remove(attr::MESSAGE_AUTHENTICATOR);
    p.attributes.insert(
        0,
        packet::Attribute {
            typ: attr::MESSAGE_AUTHENTICATOR,
            value: vec![0; 16],
        },
    );
}

fn fill_message_authenticator(bytes: &mut [u8], secret: &[u8]) {
    if let Some(off) = message_authenticator_offset(bytes) {
        bytes[off..off + 16].fill(0);
        let mac = hmac_md5(secret, bytes);
        bytes[off..off + 16].copy_from_slice(&mac);
    }
}

/// Encodes a request. Access-Request and Status-Server keep `p.authenticator` (random, chosen
/// by the caller); the others get the MD5 Request Authenticator. A Message-Authenticator
/// present in `p` is computed.
pub fn encode_request(p: &Packet, secret: &[u8]) -> Result<Vec<u8>, EncodeError> {
    if p.code.has_random_authenticator() {
        let mut b = p.encode_with(&p.authenticator)?;
        fill_message_authenticator(&mut b, secret);
        Ok(b)
    } else {
        let mut b = p.encode_with(&[0; 16])?;
        fill_message_authenticator(&mut b, secret);
        let a = md5(&[&b, secret]);
        b[4..HEADER_LEN].copy_from_slice(&a);
        Ok(b)
    }
}

/// Encodes a response to a request whose authenticator was `request_auth`.
pub fn encode_response(
    p: &Packet,
    secret: &[u8],
    request_auth: &[u8; 16],
) -> Result<Vec<u8>, EncodeError> {
    let mut b = p.encode_with(request_auth)?;
    sign_response(&mut b, secret);
    Ok(b)
}

/// Signs an encoded response in place: its authenticator field holds the Request
/// Authenticator on entry and the Response Authenticator on return, a Message-Authenticator
/// in it computed first. For answering without building a [`Packet`] (the benchmark's home
/// server); does nothing to octets shorter than a header.
pub fn sign_response(b: &mut [u8], secret: &[u8]) {
    if b.len() < HEADER_LEN {
        return;
    }
    fill_message_authenticator(b, secret);
    let a = md5(&[b, secret]);
    b[4..HEADER_LEN].copy_from_slice(&a);
}

/// The authenticator field value a Message-Authenticator of this request code was computed
/// over (RFC 3579 for Access-Request and Status-Server, RFC 5176 for the rest).
pub fn request_header_auth_for_mac(code: Code) -> Option<[u8; 16]> {
    if code.has_random_authenticator() {
        None
    } else {
        Some([0; 16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keyed-state cache gives what a freshly keyed HMAC gives, also after evictions
    /// (more secrets than it holds, used in turn).
    #[test]
    fn cached_hmac_keys_match_fresh_ones() {
        let secrets: Vec<Vec<u8>> = (0..KEYED_CACHE + 3)
            .map(|i| format!("secret-{i}").repeat(i + 1).into_bytes())
            .collect();
        for round in 0..3 {
            for s in &secrets {
                let data = format!("packet {round}");
                let mut fresh = Hmac::<Md5>::new_from_slice(s).expect("key");
                fresh.update(data.as_bytes());
                let want: [u8; 16] = fresh.finalize().into_bytes().into();
                assert_eq!(hmac_md5(s, data.as_bytes()), want);
                assert_eq!(hmac_md5_parts(s, &[b"pack", &data.as_bytes()[4..]]), want);
            }
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    // RFC 2865 section 7.1: user nemo, password arctangent, secret xyzzy5461.
    const REQ: &str = "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb 98 f4 22 7a
        01 06 6e 65 6d 6f 02 12 0d be 70 8d 93 d4 13 ce 31 96 e4 3f 78 2a 0a ee
        04 06 c0 a8 01 10 05 06 00 00 00 03";
    const RESP: &str = "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf 9b 55 e0 b2
        06 06 00 00 00 01 0f 06 00 00 00 00 0e 06 c0 a8 01 03";
    const SECRET: &[u8] = b"xyzzy5461";

    #[test]
    fn rfc2865_password_known_answer() {
        let req = Packet::parse(&hex(REQ)).expect("parse");
        let hidden = req.get(attr::USER_PASSWORD).expect("pw");
        assert_eq!(
            reveal_password(hidden, SECRET, &req.authenticator).expect("reveal"),
            b"arctangent"
        );
        assert_eq!(
            hide_password(b"arctangent", SECRET, &req.authenticator).expect("hide"),
            hidden
        );
        assert!(
            reveal_password(hidden, b"wrong", &req.authenticator).expect("reveal") != b"arctangent"
        );
    }

    #[test]
    fn rfc2865_response_authenticator_known_answer() {
        let req = Packet::parse(&hex(REQ)).expect("parse");
        let raw = hex(RESP);
        assert!(check_response_authenticator(
            &raw,
            SECRET,
            &req.authenticator
        ));
        assert!(!check_response_authenticator(
            &raw,
            b"xyzzy5462",
            &req.authenticator
        ));
        let resp = Packet::parse(&raw).expect("parse");
        assert_eq!(
            encode_response(&resp, SECRET, &req.authenticator).expect("encode"),
            raw
        );
    }

    #[test]
    fn long_password_chains_blocks() {
        let auth = [9u8; 16];
        let pw = vec![b'x'; 40];
        let h = hide_password(&pw, b"s", &auth).expect("hide");
        assert_eq!(h.len(), 48);
        assert_eq!(reveal_password(&h, b"s", &auth).expect("reveal"), pw);
        assert_eq!(
            hide_password(&[0; 129], b"s", &auth),
            Err(CryptoError::PasswordTooLong)
        );
        assert_eq!(
            reveal_password(&h[..20], b"s", &auth),
            Err(CryptoError::BadHiddenLength(20))
        );
    }

    #[test]
    fn accounting_request_authenticator() {
        let mut p = Packet::new(Code::ACCOUNTING_REQUEST, 3, [0; 16]);
        p.push(attr::ACCT_STATUS_TYPE, 1u32.to_be_bytes().to_vec());
        p.push(attr::ACCT_SESSION_ID, b"s1".to_vec());
        let b = encode_request(&p, b"sec").expect("encode");
        assert!(check_request_authenticator(&b, b"sec"));
        assert!(!check_request_authenticator(&b, b"sed"));
        let mut t = b.clone();
        t[HEADER_LEN + 2] ^= 1;
        assert!(!check_request_authenticator(&t, b"sec"));
    }

    #[test]
    fn message_authenticator_request_and_response() {
        let mut p = Packet::new(Code::ACCESS_REQUEST, 1, [5; 16]);
        p.push(attr::USER_NAME, b"u".to_vec());
        add_message_authenticator(&mut p);
        let b = encode_request(&p, b"k").expect("encode");
        assert_eq!(b[HEADER_LEN], attr::MESSAGE_AUTHENTICATOR);
        let raw = packet::frame(&b).expect("frame");
        assert_eq!(
            check_message_authenticator(raw, b"k", None),
            MessageAuth::Valid
        );
        assert_eq!(
            check_message_authenticator(raw, b"j", None),
            MessageAuth::Invalid
        );

        let mut r = Packet::new(Code::ACCESS_ACCEPT, 1, [0; 16]);
        add_message_authenticator(&mut r);
        let rb = encode_response(&r, b"k", &p.authenticator).expect("encode");
        assert!(check_response_authenticator(&rb, b"k", &p.authenticator));
        assert_eq!(
            check_message_authenticator(&rb, b"k", Some(&p.authenticator)),
            MessageAuth::Valid
        );
        let plain = Packet::new(Code::ACCESS_ACCEPT, 1, [0; 16]);
        let pb = encode_response(&plain, b"k", &p.authenticator).expect("encode");
        assert_eq!(
            check_message_authenticator(&pb, b"k", Some(&p.authenticator)),
            MessageAuth::Absent
        );
    }
}
