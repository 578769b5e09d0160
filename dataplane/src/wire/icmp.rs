//! ICMP for IPv4 (RFC 792): the messages a router sends and answers — echo, Destination
//! Unreachable (with RFC 1191's next-hop MTU), Time Exceeded — and the extension structure
//! RFC 4884 appends to the latter two (with RFC 4950's MPLS label stack object).
//!
//! The header is 8 bytes: type, code, checksum, and four bytes whose meaning depends on the
//! type. For the error messages, RFC 4884 gives byte 5 the length of the original datagram
//! quoted, in 32-bit words, when an extension structure follows it (0: no extensions).

use super::checksum;
use super::{get_u16, put_u16, Result, WireError};

/// ICMP message types (IANA "ICMP Type Numbers").
pub mod message {
    /// Echo Reply (RFC 792).
    pub const ECHO_REPLY: u8 = 0;
    /// Destination Unreachable (RFC 792).
    pub const DST_UNREACHABLE: u8 = 3;
    /// Echo (RFC 792).
    pub const ECHO_REQUEST: u8 = 8;
    /// Time Exceeded (RFC 792).
    pub const TIME_EXCEEDED: u8 = 11;

    /// True for the error messages (RFC 1812 section 4.3.2.7: never answered with an error).
    /// Types 0, 8 and the informational ones (9, 10, 13-18) are not errors; 3, 4, 5, 11 and
    /// 12 are, and so is any type not known to be informational.
    pub fn is_error(t: u8) -> bool {
        !matches!(t, 0 | 8 | 9 | 10 | 13..=18)
    }
}

/// Destination Unreachable codes (RFC 792, RFC 1812).
pub mod unreachable {
    /// Network unreachable.
    pub const NET: u8 = 0;
    /// Host unreachable.
    pub const HOST: u8 = 1;
    /// Fragmentation needed and DF set (RFC 1191: carries the next-hop MTU).
    pub const FRAG_NEEDED: u8 = 4;
}

/// Time Exceeded codes (RFC 792).
pub mod time_exceeded {
    /// Time to live exceeded in transit.
    pub const TTL: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const REASSEMBLY: u8 = 1;
}

/// A view of an ICMP message.
#[derive(Debug, Clone)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const IDENT: usize = 4;
    pub const SEQ_NO: usize = 6;
    /// RFC 4884: the original datagram's length in 32-bit words (errors only).
    pub const LENGTH: usize = 5;
    /// RFC 1191: the next-hop MTU (Destination Unreachable, code 4).
    pub const MTU: usize = 6;
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Length of the header.
    pub const HEADER_LEN: usize = 8;

    /// A view without length check (emit paths only).
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// A view whose getters cannot fail.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Err(Truncated)` when shorter than the header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < Self::HEADER_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum as stored.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Echo identifier.
    pub fn echo_ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// Echo sequence number.
    pub fn echo_seq_no(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SEQ_NO)
    }

    /// RFC 4884 length of the original datagram in 32-bit words (0: no extensions).
    pub fn orig_len_words(&self) -> u8 {
        self.buffer.as_ref()[field::LENGTH]
    }

    /// RFC 1191 next-hop MTU (Destination Unreachable, Fragmentation Needed).
    pub fn next_hop_mtu(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::MTU)
    }

    /// Everything after the header: echo data, or the original datagram and extensions.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::HEADER_LEN..]
    }

    /// True when the whole message sums to all ones.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.buffer.as_ref())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    /// Sets the type.
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    /// Sets the code.
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Sets the stored checksum.
    pub fn set_checksum(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Sets the four type-specific header bytes.
    pub fn set_rest(&mut self, v: [u8; 4]) {
        self.buffer.as_mut()[4..8].copy_from_slice(&v);
    }

    /// Data after the header, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[Self::HEADER_LEN..]
    }

    /// Computes and stores the checksum over the whole buffer (RFC 792: the message from
    /// its type on; there is no pseudo-header).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::internet(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// A parsed ICMP message of the kinds the gateway sends or answers; `data` borrows what
/// follows the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpRepr<'a> {
    /// Echo (ping).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data echoed back.
        data: &'a [u8],
    },
    /// Echo Reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data of the echo.
        data: &'a [u8],
    },
    /// Destination Unreachable.
    DstUnreachable {
        /// Code ([`unreachable`]).
        code: u8,
        /// RFC 1191 next-hop MTU (code 4; 0 otherwise).
        next_hop_mtu: u16,
        /// RFC 4884 length of the original datagram in 32-bit words; 0 without extensions.
        orig_len_words: u8,
        /// The original datagram, then the extension structure if any.
        data: &'a [u8],
    },
    /// Time Exceeded.
    TimeExceeded {
        /// Code ([`time_exceeded`]).
        code: u8,
        /// RFC 4884 length of the original datagram in 32-bit words; 0 without extensions.
        orig_len_words: u8,
        /// The original datagram, then the extension structure if any.
        data: &'a [u8],
    },
}

impl<'a> IcmpRepr<'a> {
    /// Parses a message whose checksum verifies; types other than these four are
    /// `Unsupported`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &'a IcmpPacket<&'a T>) -> Result<Self> {
        p.check_len()?;
        if !p.verify_checksum() {
            return Err(WireError::Checksum);
        }
        let data = &p.buffer.as_ref()[IcmpPacket::<&[u8]>::HEADER_LEN..];
        Ok(match p.msg_type() {
            message::ECHO_REQUEST => IcmpRepr::EchoRequest {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            },
            message::ECHO_REPLY => IcmpRepr::EchoReply {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            },
            message::DST_UNREACHABLE => IcmpRepr::DstUnreachable {
                code: p.msg_code(),
                next_hop_mtu: if p.msg_code() == unreachable::FRAG_NEEDED {
                    p.next_hop_mtu()
                } else {
                    0
                },
                orig_len_words: p.orig_len_words(),
                data,
            },
            message::TIME_EXCEEDED => IcmpRepr::TimeExceeded {
                code: p.msg_code(),
                orig_len_words: p.orig_len_words(),
                data,
            },
            _ => return Err(WireError::Unsupported),
        })
    }

    /// The data after the header.
    pub fn data(&self) -> &'a [u8] {
        match *self {
            IcmpRepr::EchoRequest { data, .. }
            | IcmpRepr::EchoReply { data, .. }
            | IcmpRepr::DstUnreachable { data, .. }
            | IcmpRepr::TimeExceeded { data, .. } => data,
        }
    }

    /// Bytes [`IcmpRepr::emit`] writes: the header and the data.
    pub fn buffer_len(&self) -> usize {
        IcmpPacket::<&[u8]>::HEADER_LEN + self.data().len()
    }

    /// Writes the message with its checksum into the first [`IcmpRepr::buffer_len`] bytes
    /// of `p`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut IcmpPacket<T>) -> Result<()> {
        let len = self.buffer_len();
        let buf = p.buffer.as_mut();
        let Some(buf) = buf.get_mut(..len) else {
            return Err(WireError::Truncated);
        };
        let (t, code, rest) = match *self {
            IcmpRepr::EchoRequest { ident, seq_no, .. } => {
                (message::ECHO_REQUEST, 0, echo_rest(ident, seq_no))
            }
            IcmpRepr::EchoReply { ident, seq_no, .. } => {
                (message::ECHO_REPLY, 0, echo_rest(ident, seq_no))
            }
            IcmpRepr::DstUnreachable {
                code,
                next_hop_mtu,
                orig_len_words,
                ..
            } => {
                let [m0, m1] = next_hop_mtu.to_be_bytes();
                (message::DST_UNREACHABLE, code, [0, orig_len_words, m0, m1])
            }
            IcmpRepr::TimeExceeded {
                code,
                orig_len_words,
                ..
            } => (message::TIME_EXCEEDED, code, [0, orig_len_words, 0, 0]),
        };
        let mut q = IcmpPacket::new_unchecked(buf);
        q.set_msg_type(t);
        q.set_msg_code(code);
        q.set_rest(rest);
        q.data_mut().copy_from_slice(self.data());
        q.fill_checksum();
        Ok(())
    }
}

fn echo_rest(ident: u16, seq_no: u16) -> [u8; 4] {
    let [i0, i1] = ident.to_be_bytes();
    let [s0, s1] = seq_no.to_be_bytes();
    [i0, i1, s0, s1]
}

/// RFC 4884 section 7: the extension structure's version.
pub const EXT_VERSION: u8 = 2;
/// RFC 4884 section 5.4: with extensions, the original datagram is zero-padded to at least
/// this many bytes (so that applications unaware of RFC 4884 find the extensions beyond
/// what they read as the datagram).
pub const EXT_ORIG_DATAGRAM_MIN: usize = 128;
/// RFC 4950 section 7: the MPLS Label Stack object's class number.
pub const CLASS_MPLS_LABEL_STACK: u8 = 1;
/// RFC 4950 section 7: its C-Type for incoming label stacks.
pub const CTYPE_INCOMING_LABEL_STACK: u8 = 1;

/// A view of an RFC 4884 extension structure: a 4-byte header (version, reserved,
/// checksum over the whole structure), then objects.
#[derive(Debug, Clone)]
pub struct IcmpExtension<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpExtension<T> {
    /// Length of the extension header.
    pub const HEADER_LEN: usize = 4;

    /// A view whose getters cannot fail.
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < Self::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self { buffer })
    }

    /// Version (2 for RFC 4884).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// True when the structure sums to all ones (RFC 4884 section 7).
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.buffer.as_ref())) == 0xffff
    }

    /// The objects in order as (class-num, c-type, payload); stops at the first object
    /// whose length is short of its header or runs past the structure.
    pub fn objects(&self) -> impl Iterator<Item = (u8, u8, &[u8])> {
        let mut rest = &self.buffer.as_ref()[Self::HEADER_LEN..];
        core::iter::from_fn(move || {
            let h: &[u8; 4] = rest.first_chunk()?;
            let len = usize::from(u16::from_be_bytes([h[0], h[1]]));
            if len < 4 || len > rest.len() {
                return None;
            }
            let (obj, tail) = rest.split_at(len);
            rest = tail;
            Some((h[2], h[3], &obj[4..]))
        })
    }
}

/// Appends an RFC 4884 extension structure holding one RFC 4950 MPLS Label Stack object
/// (the label stack entries as received, 4 bytes each) to `out`, checksum filled.
pub fn emit_mpls_extension(out: &mut Vec<u8>, label_stack: &[u8]) -> Result<()> {
    let obj_len = 4 + label_stack.len();
    if !label_stack.len().is_multiple_of(4) || obj_len > usize::from(u16::MAX) {
        return Err(WireError::Malformed);
    }
    let start = out.len();
    out.extend_from_slice(&[EXT_VERSION << 4, 0, 0, 0]);
    out.extend_from_slice(&(obj_len as u16).to_be_bytes());
    out.extend_from_slice(&[CLASS_MPLS_LABEL_STACK, CTYPE_INCOMING_LABEL_STACK]);
    out.extend_from_slice(label_stack);
    let c = checksum::internet(&out[start..]);
    put_u16(&mut out[start..], 2, c);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hex;
    use proptest::prelude::*;

    /// An echo request with id 0x1234, seq 1 and eight bytes 0x61 (`ping -p 61 -s 8`'s
    /// shape); checksum 6045 worked out by RFC 1071 and reported good by tshark.
    const ECHO: &str = "0800 6045 1234 0001 6161 6161 6161 6161";

    #[test]
    fn echo_known_answer() {
        let b = hex(ECHO);
        let p = IcmpPacket::new_checked(&b[..]).expect("len");
        assert!(p.verify_checksum());
        let r = IcmpRepr::parse(&p).expect("parse");
        assert_eq!(
            r,
            IcmpRepr::EchoRequest {
                ident: 0x1234,
                seq_no: 1,
                data: b"aaaaaaaa"
            }
        );
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut IcmpPacket::new_unchecked(&mut out[..]))
            .expect("emit");
        assert_eq!(out, b);
    }

    #[test]
    fn frag_needed_known_answer() {
        // Type 3 code 4, next-hop MTU 1496 (0x05d8), quoting the start of a 1500-byte DF
        // echo; tshark reports checksum ef21 good and "MTU of next hop: 1496".
        let quoted = hex("4500 05dc 0001 4000 3f01 a7ef c612 010a c612 0102 0800 0000 0001 0001");
        let r = IcmpRepr::DstUnreachable {
            code: unreachable::FRAG_NEEDED,
            next_hop_mtu: 1496,
            orig_len_words: 0,
            data: &quoted,
        };
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut IcmpPacket::new_unchecked(&mut out[..]))
            .expect("emit");
        assert_eq!(out[..8], hex("0304 ef21 0000 05d8")[..]);
        let p = IcmpPacket::new_checked(&out[..]).expect("len");
        assert_eq!(IcmpRepr::parse(&p), Ok(r));
    }

    #[test]
    fn mpls_extension_known_answer() {
        // One entry: label 2001 (0x7d1), TC 0, S, TTL 1 — as a transit LSR receives it.
        let mut out = Vec::new();
        emit_mpls_extension(&mut out, &hex("007d 1101")).expect("emit");
        assert_eq!(out, hex("2000 cd78 0008 0101 007d 1101"));
        let e = IcmpExtension::new_checked(&out[..]).expect("len");
        assert!(e.verify_checksum());
        assert_eq!(e.version(), 2);
        let objs: Vec<_> = e.objects().collect();
        assert_eq!(objs, vec![(1, 1, &hex("007d 1101")[..])]);
        assert_eq!(
            emit_mpls_extension(&mut out, &[1, 2, 3]),
            Err(WireError::Malformed)
        );
    }

    #[test]
    fn errors_and_oddities() {
        assert_eq!(
            IcmpPacket::new_checked(&[0u8; 7][..]).err(),
            Some(WireError::Truncated)
        );
        let mut b = hex(ECHO);
        b[9] ^= 1;
        let p = IcmpPacket::new_checked(&b[..]).expect("len");
        assert_eq!(IcmpRepr::parse(&p), Err(WireError::Checksum));
        let mut b = hex(ECHO);
        b[0] = 13;
        IcmpPacket::new_unchecked(&mut b[..]).fill_checksum();
        let p = IcmpPacket::new_checked(&b[..]).expect("len");
        assert_eq!(IcmpRepr::parse(&p), Err(WireError::Unsupported));
        assert!(message::is_error(3) && message::is_error(11) && message::is_error(42));
        assert!(!message::is_error(0) && !message::is_error(8) && !message::is_error(13));
        let mut small = [0u8; 9];
        let r = IcmpRepr::TimeExceeded {
            code: 0,
            orig_len_words: 0,
            data: &[1, 2],
        };
        assert_eq!(
            r.emit(&mut IcmpPacket::new_unchecked(&mut small[..])),
            Err(WireError::Truncated)
        );
    }

    proptest! {
        #[test]
        fn repr_round_trip(
            kind in 0u8..4,
            code in any::<u8>(),
            a in any::<u16>(),
            b in any::<u16>(),
            words in any::<u8>(),
            data in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let r = match kind {
                0 => IcmpRepr::EchoRequest { ident: a, seq_no: b, data: &data },
                1 => IcmpRepr::EchoReply { ident: a, seq_no: b, data: &data },
                2 => IcmpRepr::DstUnreachable {
                    code,
                    next_hop_mtu: if code == unreachable::FRAG_NEEDED { a } else { 0 },
                    orig_len_words: words,
                    data: &data,
                },
                _ => IcmpRepr::TimeExceeded { code, orig_len_words: words, data: &data },
            };
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut IcmpPacket::new_unchecked(&mut out[..])).expect("emit");
            let p = IcmpPacket::new_checked(&out[..]).expect("len");
            prop_assert_eq!(IcmpRepr::parse(&p), Ok(r));
        }

        #[test]
        fn any_bytes_parse_without_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = IcmpPacket::new_checked(&b[..]) {
                let _ = IcmpRepr::parse(&p);
            }
            if let Ok(e) = IcmpExtension::new_checked(&b[..]) {
                let _ = e.objects().count();
            }
        }
    }
}
