//! The ICMP error as an IPv4 packet: which offending packets may be answered at all
//! (RFC 1812 section 4.3.2.7), how much of them is quoted (RFC 1812 section 4.3.2.3), and the
//! RFC 4884 / RFC 4950 extension for a packet that arrived labelled.

use std::net::Ipv4Addr;

use ispmux_dataplane::wire::icmp::{
    emit_mpls_extension, message, time_exceeded, unreachable, EXT_ORIG_DATAGRAM_MIN,
};
use ispmux_dataplane::wire::ipv4::protocol;
use ispmux_dataplane::wire::{IcmpPacket, IcmpRepr, Ipv4Packet, Ipv4Repr};

/// RFC 1812 section 4.3.2.3: an ICMP error is at most 576 bytes, IPv4 header included.
pub const MAX_ERROR_LEN: usize = 576;
/// TTL of the errors sent (Linux's default, `net.ipv4.ip_default_ttl`).
pub const ERROR_TTL: u8 = 64;
/// DSCP CS6 (RFC 1812 section 4.3.2.5: precedence 6, internetwork control), as Linux marks
/// its ICMP errors.
pub const ERROR_DSCP_ECN: u8 = 0xc0;

/// The error to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpError {
    /// Time Exceeded, TTL exceeded in transit (type 11 code 0).
    TimeExceeded,
    /// Destination Unreachable, fragmentation needed and DF set (type 3 code 4), with the
    /// next-hop MTU (RFC 1191).
    FragNeeded {
        /// The largest IPv4 packet the next hop takes.
        mtu: u16,
    },
}

/// Why a punted frame gets no ICMP error. Every one is counted by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The frame's headers do not parse (truncated, bad checksum, not IPv4 inside).
    #[error("malformed offending packet")]
    Malformed,
    /// The offending packet is itself an ICMP error (RFC 1812 section 4.3.2.7).
    #[error("offending packet is an ICMP error")]
    IcmpError,
    /// A fragment other than the first (RFC 1812 section 4.3.2.7).
    #[error("not the first fragment")]
    NotFirstFragment,
    /// Sent to a group: IP broadcast or multicast, or a link-layer broadcast or multicast
    /// (RFC 1812 section 4.3.2.7).
    #[error("offending packet sent to a group")]
    GroupDestination,
    /// Its source does not name one host: 0.0.0.0, loopback, multicast, broadcast or class
    /// E (RFC 1812 section 4.3.2.7).
    #[error("offending packet's source names no single host")]
    BadSource,
    /// The address the error would come from is not configured (the port's `address`, the
    /// ISP's `gateway`).
    #[error("no address to send the error from")]
    NoAddress,
    /// Nothing in the tables says where the error goes (an unknown subscriber, hand-off
    /// VLAN or label, an ISP without the FEC needed).
    #[error("no path for the error")]
    NoPath,
    /// A DF packet punted as too big fits the path as the tables are now (they changed
    /// meanwhile): nothing to say.
    #[error("the packet fits")]
    Fits,
}

/// What the rules of RFC 1812 section 4.3.2.7 say of the offending IPv4 packet `ip` (from
/// its header on, as received): its source, to which the error goes, or why none is sent.
/// A link-layer group destination is the caller's to check.
pub fn answerable(ip: &[u8]) -> Result<Ipv4Addr, Refusal> {
    let p = Ipv4Packet::new_checked(ip).map_err(|_| Refusal::Malformed)?;
    if p.version() != 4 || !p.verify_checksum() {
        return Err(Refusal::Malformed);
    }
    if p.frag_offset() != 0 {
        return Err(Refusal::NotFirstFragment);
    }
    let dst = p.dst_addr();
    if dst.is_broadcast() || dst.is_multicast() {
        return Err(Refusal::GroupDestination);
    }
    let src = p.src_addr();
    if src.is_unspecified()
        || src.is_loopback()
        || src.is_multicast()
        || src.is_broadcast()
        || src.octets()[0] >= 240
    {
        return Err(Refusal::BadSource);
    }
    if p.protocol() == protocol::ICMP {
        // An ICMP message whose type is not known to be informational counts as an error;
        // one too short to carry its type is not answered either.
        match p.payload().first() {
            Some(&t) if !message::is_error(t) => {}
            _ => return Err(Refusal::IcmpError),
        }
    }
    Ok(src)
}

/// Appends to `out` the IPv4 packet carrying `err` about the offending packet `ip` (from its
/// header on, as received), from `src`, with identification `ident`; returns its
/// destination (the offending packet's source). On a refusal `out` is left as it was.
///
/// The quote is as much of the offending packet as keeps the error within 576 bytes (RFC
/// 1812 section 4.3.2.3; at least its header and 8 bytes, RFC 792). `labels` (the label stack
/// entries as received, 4 bytes each) adds RFC 4950's MPLS Label Stack object in an RFC 4884
/// extension structure; the quote is then zero-padded to a multiple of 4 and at least 128
/// bytes, and its length in words goes in the header (RFC 4884 section 5).
pub fn build(
    ip: &[u8],
    err: IcmpError,
    src: Ipv4Addr,
    ident: u16,
    labels: Option<&[u8]>,
    out: &mut Vec<u8>,
) -> Result<Ipv4Addr, Refusal> {
    let dst = answerable(ip)?;
    let orig = Ipv4Packet::new_checked(ip).map_err(|_| Refusal::Malformed)?;
    let orig_len = usize::from(orig.total_len());
    let room =
        MAX_ERROR_LEN - Ipv4Packet::<&[u8]>::MIN_HEADER_LEN - IcmpPacket::<&[u8]>::HEADER_LEN;
    let mut data = Vec::with_capacity(room);
    let mut words = 0u8;
    match labels.filter(|l| !l.is_empty()) {
        None => data.extend_from_slice(&ip[..orig_len.min(room)]),
        Some(stack) => {
            let ext_len = 8 + stack.len();
            let max_quote = room.checked_sub(ext_len).ok_or(Refusal::Malformed)? & !3;
            let quote = orig_len.min(max_quote);
            data.extend_from_slice(&ip[..quote]);
            let padded = quote.next_multiple_of(4).max(EXT_ORIG_DATAGRAM_MIN);
            data.resize(padded, 0);
            words = (padded / 4) as u8;
            emit_mpls_extension(&mut data, stack).map_err(|_| Refusal::Malformed)?;
        }
    }
    let icmp = match err {
        IcmpError::TimeExceeded => IcmpRepr::TimeExceeded {
            code: time_exceeded::TTL,
            orig_len_words: words,
            data: &data,
        },
        IcmpError::FragNeeded { mtu } => IcmpRepr::DstUnreachable {
            code: unreachable::FRAG_NEEDED,
            next_hop_mtu: mtu,
            orig_len_words: words,
            data: &data,
        },
    };
    let icmp_len = icmp.buffer_len();
    let head = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: protocol::ICMP,
        payload_len: icmp_len as u16,
        ttl: ERROR_TTL,
        dscp_ecn: ERROR_DSCP_ECN,
        ident,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
    };
    let mut packet = vec![0u8; head.buffer_len() + icmp_len];
    head.emit(&mut Ipv4Packet::new_unchecked(&mut packet[..]))
        .map_err(|_| Refusal::Malformed)?;
    icmp.emit(&mut IcmpPacket::new_unchecked(&mut packet[20..]))
        .map_err(|_| Refusal::Malformed)?;
    out.extend_from_slice(&packet);
    Ok(dst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ispmux_dataplane::wire::IcmpExtension;

    fn hex(s: &str) -> Vec<u8> {
        let d: Vec<u8> = s.bytes().filter(|c| c.is_ascii_hexdigit()).collect();
        d.chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).expect("ascii"), 16).expect("hex"))
            .collect()
    }

    /// A UDP probe as traceroute sends it: 198.18.1.10:40000 → 198.18.1.2:33434, TTL 1,
    /// 32 bytes of payload (header checksum computed outside this code).
    pub(crate) const PROBE: &str = "4500 0034 4d2e 0000 0111 0000 c612 010a c612 0102
        9c40 829a 0020 0000 4041 4243 4445 4647 4849 4a4b 4c4d 4e4f 5051 5253 5455 5657";

    fn probe() -> Vec<u8> {
        let mut b = hex(PROBE);
        Ipv4Packet::new_unchecked(&mut b[..]).fill_checksum();
        b
    }

    #[test]
    fn refuses_what_rfc_1812_forbids() {
        let ok = probe();
        assert_eq!(answerable(&ok), Ok(Ipv4Addr::new(198, 18, 1, 10)));
        let with = |off: usize, v: &[u8]| {
            let mut b = probe();
            b[off..off + v.len()].copy_from_slice(v);
            Ipv4Packet::new_unchecked(&mut b[..]).fill_checksum();
            answerable(&b)
        };
        assert_eq!(with(6, &[0, 1]), Err(Refusal::NotFirstFragment));
        assert_eq!(with(16, &[224, 0, 0, 2]), Err(Refusal::GroupDestination));
        assert_eq!(with(16, &[255; 4]), Err(Refusal::GroupDestination));
        for s in [
            [0, 0, 0, 0],
            [127, 0, 0, 1],
            [239, 1, 1, 1],
            [255; 4],
            [240, 0, 0, 1],
        ] {
            assert_eq!(with(12, &s), Err(Refusal::BadSource), "{s:?}");
        }
        // ICMP: an echo (reply) is answered; a Time Exceeded, a Destination Unreachable or an
        // unknown type is not.
        let icmp = |t: u8| {
            let mut b = probe();
            b[9] = 1;
            b[20] = t;
            Ipv4Packet::new_unchecked(&mut b[..]).fill_checksum();
            answerable(&b)
        };
        assert!(icmp(8).is_ok() && icmp(0).is_ok());
        assert_eq!(icmp(11), Err(Refusal::IcmpError));
        assert_eq!(icmp(3), Err(Refusal::IcmpError));
        assert_eq!(icmp(77), Err(Refusal::IcmpError));
        let mut bad = probe();
        bad[10] ^= 1;
        assert_eq!(answerable(&bad), Err(Refusal::Malformed));
        assert_eq!(answerable(&ok[..19]), Err(Refusal::Malformed));
    }

    proptest::proptest! {
        /// Any bytes: an error of at most 576 bytes whose checksums verify, or a refusal;
        /// never a panic.
        #[test]
        fn any_input_builds_a_bounded_valid_error_or_refuses(
            mut b in proptest::collection::vec(proptest::num::u8::ANY, 0..700),
            fix in proptest::bool::ANY,
            labels in proptest::collection::vec(proptest::num::u8::ANY, 0..5),
            mtu in proptest::num::u16::ANY,
        ) {
            if fix && b.len() >= 20 {
                b[0] = 0x45;
                let len = b.len() as u16;
                b[2..4].copy_from_slice(&len.to_be_bytes());
                b[6] &= 0xe0;
                b[7] = 0;
                b[12] = 10;
                b[16] = 10;
                Ipv4Packet::new_unchecked(&mut b[..]).fill_checksum();
            }
            let stack: Vec<u8> = labels.iter().flat_map(|l| [0, 0x10, 0x01, *l]).collect();
            for (err, labels) in [
                (IcmpError::TimeExceeded, None),
                (IcmpError::FragNeeded { mtu }, Some(&stack[..])),
            ] {
                let mut out = Vec::new();
                if build(&b, err, Ipv4Addr::new(192, 0, 2, 1), 7, labels, &mut out).is_ok() {
                    proptest::prop_assert!(out.len() <= MAX_ERROR_LEN);
                    let ip = Ipv4Packet::new_checked(&out[..]).expect("ip");
                    proptest::prop_assert!(ip.verify_checksum());
                    let icmp = IcmpPacket::new_checked(ip.payload()).expect("icmp");
                    proptest::prop_assert!(icmp.verify_checksum());
                    let words = usize::from(icmp.orig_len_words());
                    if words > 0 {
                        let ext = IcmpExtension::new_checked(&icmp.data()[words * 4..]).expect("ext");
                        proptest::prop_assert!(ext.verify_checksum());
                    }
                } else {
                    proptest::prop_assert!(out.is_empty());
                }
            }
        }
    }
}
