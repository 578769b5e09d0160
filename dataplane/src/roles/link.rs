//! Building the link header in front of a packet that stays where it is.
//!
//! Every role rewrites only the front of the frame: the old link header (Ethernet, tags,
//! label) is replaced by a new one of possibly different length by moving the frame's start
//! (`prepend`/`adj`, no copy of the payload), then the new header is written in one copy.

use super::classify::Ipv4Info;
use super::Cx;
use crate::counters::DropReason;
use crate::frame::Frame;
use crate::table::Fec;
use crate::wire::{mpls, EtherType, MacAddr};

/// A link header under construction: Ethernet, up to two tags, up to one label.
#[derive(Clone, Copy, Debug)]
pub struct LinkHeader {
    buf: [u8; 26],
    len: usize,
}

impl LinkHeader {
    /// Starts a header with these addresses.
    #[inline(always)]
    pub fn new(dst: MacAddr, src: MacAddr) -> Self {
        let mut buf = [0u8; 26];
        buf[..6].copy_from_slice(&dst.0);
        buf[6..12].copy_from_slice(&src.0);
        Self { buf, len: 12 }
    }

    fn put(&mut self, bytes: &[u8]) {
        if let Some(d) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            d.copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }

    /// Adds a VLAN tag with TPID `tpid`.
    #[inline(always)]
    pub fn tag(mut self, tpid: EtherType, pcp: u8, vid: u16) -> Self {
        self.put(&tpid.0.to_be_bytes());
        let tci = (u16::from(pcp & 7) << 13) | (vid & 0x0fff);
        self.put(&tci.to_be_bytes());
        self
    }

    /// Adds the subscriber's tags: none, one 802.1Q tag, or an 802.1ad S-tag then a C-tag.
    #[inline(always)]
    pub fn subscriber_tags(self, outer: u16, inner: u16, pcp: u8) -> Self {
        match (outer, inner) {
            (0, _) => self,
            (o, 0) => self.tag(EtherType::VLAN, pcp, o),
            (o, i) => self
                .tag(EtherType::QINQ, pcp, o)
                .tag(EtherType::VLAN, pcp, i),
        }
    }

    /// Adds the EtherType.
    #[inline(always)]
    pub fn ethertype(mut self, t: EtherType) -> Self {
        self.put(&t.0.to_be_bytes());
        self
    }

    /// Adds one label stack entry.
    #[inline(always)]
    pub fn label(mut self, label: u32, tc: u8, bottom: bool, ttl: u8) -> Self {
        self.put(&mpls::encode(label, tc, bottom, ttl).to_be_bytes());
        self
    }

    /// The header's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Replaces the first `old_len` bytes of `f` with this header.
    #[inline(always)]
    pub fn replace<F: Frame>(&self, f: &mut F, old_len: usize) -> Result<(), DropReason> {
        let new_len = self.len;
        let d = if new_len > old_len {
            f.prepend(new_len - old_len).ok_or(DropReason::NoHeadroom)?
        } else if f.adj(old_len - new_len) {
            f.data_mut()
        } else {
            return Err(DropReason::Truncated);
        };
        let dst = d.get_mut(..new_len).ok_or(DropReason::Truncated)?;
        // Constant-length copies for the lengths that occur, so no call to memmove.
        match new_len {
            14 => dst[..14].copy_from_slice(&self.buf[..14]),
            18 => dst[..18].copy_from_slice(&self.buf[..18]),
            22 => dst[..22].copy_from_slice(&self.buf[..22]),
            _ => dst.copy_from_slice(self.bytes()),
        }
        Ok(())
    }
}

/// Pushes `fec`'s label in front of the IPv4 packet at `l3` and addresses the frame to the
/// next hop; the IPv4 header itself is not touched.
#[inline(always)]
pub fn push_label<F: Frame>(
    cx: &Cx<'_>,
    f: &mut F,
    l3: usize,
    ip: &Ipv4Info,
    fec: &Fec,
) -> Result<u16, DropReason> {
    let out = cx.port(fec.port).ok_or(DropReason::NoRoute)?;
    if ip.ttl <= 1 {
        return Err(DropReason::TtlExpired);
    }
    if usize::from(ip.total_len) + 4 > usize::from(out.mtu) {
        return Err(DropReason::Oversized);
    }
    // Zero: the next hop is given by address and not resolved (yet, or any more). Checked
    // after TTL and size, as a router decides those before it looks for the neighbour.
    if fec.next_hop == MacAddr::ZERO {
        return Err(DropReason::NoNeighbour);
    }
    let entry = mpls::encode(fec.label, fec.tc, true, ip.ttl - 1);
    if l3 == 14 {
        // Untagged, the usual case: 4 bytes more in front, the header written at fixed
        // offsets.
        let h: &mut [u8; 18] = f
            .prepend(4)
            .ok_or(DropReason::NoHeadroom)?
            .first_chunk_mut()
            .ok_or(DropReason::Truncated)?;
        h[..6].copy_from_slice(&fec.next_hop.0);
        h[6..12].copy_from_slice(&out.mac.0);
        h[12..14].copy_from_slice(&EtherType::MPLS_UNICAST.0.to_be_bytes());
        h[14..].copy_from_slice(&entry.to_be_bytes());
        return Ok(fec.port);
    }
    LinkHeader::new(fec.next_hop, out.mac)
        .ethertype(EtherType::MPLS_UNICAST)
        .label(fec.label, fec.tc, true, ip.ttl - 1)
        .replace(f, l3)?;
    Ok(fec.port)
}
