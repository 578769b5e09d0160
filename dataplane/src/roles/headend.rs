//! Headend upstream: frames from subscribers on an access port.
//!
//! DHCP → slow path (from anyone: that is how subscribers log on). Otherwise the sender must
//! be in the subscriber table for this port and VLANs (else `UnknownMac`). ARP → proxy ARP.
//! IPv4 → must be bound (`NotBound`), from its bound address (`SourceGuard`); to the ISP's
//! gateway address → slow path; else the ISP's upstream label is pushed (S=1, TTL = IPv4 TTL
//! − 1, TC from the FEC), the Ethernet header rewritten to the next hop, and the frame leaves
//! on the FEC's core port.

use super::arp::proxy_arp;
use super::classify::{classify_access, parse_l2, AccessClass, Ipv4Info};
use super::link::LinkHeader;
use super::{Cx, BURST};
use crate::counters::DropReason;
use crate::frame::Frame;
use crate::pipeline::Verdict;
use crate::table::cuckoo::Candidates;
use crate::table::subscriber::{Attachment, SubscriberSlot};
use crate::table::{Fec, PackedKey, SubscriberKey, SubscriberState, Tables};
use crate::wire::{mpls, EtherType};

/// Pass 1: the subscriber key of a frame, from its link header alone; `None` when the link
/// header is bad or the attachment cannot be keyed (pass 2 says which).
///
/// Only the key and its candidate buckets cross from pass 1 to pass 2 (24 bytes a frame, in
/// two flat arrays): pass 2 parses the frame again from L1 rather than reading back a wide
/// per-frame record, whose small stores would stall the wide loads that read it back.
#[inline(always)]
fn subscriber_key(rx_port: u16, d: &[u8]) -> Option<PackedKey> {
    let l2 = parse_l2(d).ok()?;
    SubscriberKey {
        port: rx_port,
        outer_vid: l2.outer_vid,
        inner_vid: l2.inner_vid,
        mac: l2.src,
    }
    .pack()
    .ok()
}

/// Pushes `fec`'s label in front of the IPv4 packet at `l3` and addresses the frame to the
/// next hop; the IPv4 header itself is not touched.
#[inline(always)]
pub(super) fn push_label<F: Frame>(
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

fn is_group(dst: u32) -> bool {
    // 224.0.0.0/4 multicast and the limited broadcast address.
    dst >> 28 == 0xe || dst == u32::MAX
}

/// Pass 2: classifies the frame, then decides with its subscriber entry (`sub`, looked up
/// in the buckets pass 1 prefetched) and rewrites it.
#[inline(always)]
fn decide<F: Frame>(
    cx: &mut Cx<'_>,
    rx_port: u16,
    f: &mut F,
    sub: Option<&SubscriberSlot>,
) -> Verdict {
    let d = f.data();
    let l2 = match parse_l2(d) {
        Ok(l2) => l2,
        Err(r) => return Verdict::Drop(r),
    };
    // A match rather than an equality test on the class: the fields stay in registers.
    let ip = match classify_access(d, &l2) {
        Ok(AccessClass::Ipv4(ip)) => Some(ip),
        Ok(AccessClass::Arp) => None,
        Ok(AccessClass::Dhcp) => return Verdict::Punt,
        Err(r) => return Verdict::Drop(r),
    };
    let Some(&s) = sub else {
        return Verdict::Drop(if Attachment::new(rx_port, 0, 0).is_none() {
            DropReason::NoRoute
        } else {
            DropReason::UnknownMac
        });
    };
    let Some(ip) = ip else {
        return proxy_arp(cx, rx_port, f, &l2, &s);
    };
    if s.state() != SubscriberState::Bound {
        return Verdict::Drop(DropReason::NotBound);
    }
    if ip.src != s.ipv4_bits() {
        return Verdict::Drop(DropReason::SourceGuard);
    }
    let Some(isp) = cx.tables.isps.get(s.isp()) else {
        return Verdict::Drop(DropReason::NoFec);
    };
    if ip.dst == u32::from(isp.gateway) && !isp.gateway.is_unspecified() {
        return Verdict::Punt;
    }
    if is_group(ip.dst) || l2.dst.is_multicast() {
        return Verdict::Drop(DropReason::NotUnicast);
    }
    let Some(fec) = isp.upstream else {
        return Verdict::Drop(DropReason::NoFec);
    };
    match push_label(cx, f, l2.l3, &ip, &fec) {
        Ok(port) => {
            if let Some(c) = cx.counters.isp_mut(s.isp()) {
                c.headend_up.count(usize::from(ip.total_len));
            }
            Verdict::Forward(port)
        }
        Err(r) => Verdict::Drop(r),
    }
}

/// Prefetches the subscriber buckets of a burst that will be processed later.
pub fn prefetch<F: Frame>(tables: &Tables, rx_port: u16, frames: &[F]) {
    for f in frames {
        if let Some(k) = subscriber_key(rx_port, f.data()) {
            tables.subscribers.prepare(&k);
        }
    }
}

/// Runs the headend upstream pipeline over a burst received on access port `rx_port`.
/// Returns `true` when every verdict is a forward (already counted), so the caller need not
/// count verdicts.
pub fn upstream<F: Frame>(
    cx: &mut Cx<'_>,
    rx_port: u16,
    frames: &mut [F],
    verdicts: &mut [Verdict],
) -> bool {
    let mut all_forwarded = true;
    let mut keys = [PackedKey::default(); BURST];
    let mut cands = [Candidates::default(); BURST];
    for (fs, vs) in frames.chunks_mut(BURST).zip(verdicts.chunks_mut(BURST)) {
        // Bit i: frame i has a key, and its buckets are on their way.
        let mut keyed = 0u64;
        for (i, ((f, k), c)) in fs.iter().zip(&mut keys).zip(&mut cands).enumerate() {
            if let Some(key) = subscriber_key(rx_port, f.data()) {
                *k = key;
                *c = cx.tables.subscribers.prepare(&key);
                keyed |= 1 << i;
            }
        }
        for (i, ((f, v), (k, c))) in fs
            .iter_mut()
            .zip(vs.iter_mut())
            .zip(keys.iter().zip(&cands))
            .enumerate()
        {
            let sub = if keyed >> i & 1 == 1 {
                cx.tables.subscribers.get_prepared(k, *c)
            } else {
                None
            };
            *v = decide(cx, rx_port, f, sub);
            all_forwarded &= matches!(*v, Verdict::Forward(_));
        }
    }
    all_forwarded
}
