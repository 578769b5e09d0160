//! Zero-copy typed views over header bytes, in the style of smoltcp's `wire` module.
//!
//! Each header has a `…Packet<T: AsRef<[u8]>>` view whose `new_checked` proves the buffer long
//! enough for every getter, so getters index without further checks and never panic on a view
//! built by `new_checked`. A `…Repr` is the parsed, owned form: `parse` from a view, `emit` into
//! one. Pipelines use the views (no copies on the fast path); the slow path and tests use `Repr`.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod mpls;
pub mod udp;
pub mod vlan;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use ethernet::{EtherType, EthernetFrame, EthernetRepr, MacAddr};
pub use icmp::{IcmpExtension, IcmpPacket, IcmpRepr};
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use mpls::{MplsPacket, MplsRepr};
pub use udp::{UdpPacket, UdpRepr};
pub use vlan::{skip_tags, Tags, VlanPacket, VlanRepr};

/// Why a header could not be viewed or parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer is shorter than the header (or than the length the header claims).
    #[error("truncated header")]
    Truncated,
    /// A field holds a value the header's RFC forbids.
    #[error("malformed header")]
    Malformed,
    /// The header checksum does not verify.
    #[error("bad checksum")]
    Checksum,
    /// Valid on the wire but not handled here (IPv4 options in a `Repr`, non-Ethernet ARP).
    #[error("unsupported header variant")]
    Unsupported,
}

/// Result of parsing wire bytes.
pub type Result<T> = core::result::Result<T, WireError>;

/// Big-endian u16 at `off`; callers have checked the length.
#[inline(always)]
pub(crate) fn get_u16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

/// Big-endian u32 at `off`; callers have checked the length.
#[inline(always)]
pub(crate) fn get_u32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

#[inline(always)]
pub(crate) fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
pub(crate) fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

/// Decodes hex text (whitespace ignored) for known-answer tests.
#[cfg(test)]
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).expect("ascii"), 16).expect("hex"))
        .collect()
}
