//! Core port: the incoming label map decides between transit swap, tailend pop and hand-off,
//! and headend pop and delivery to a subscriber.
//!
//! TTL handling (RFC 3443, uniform model): a swap decrements the label TTL, expiry is a drop;
//! a pop sets the IPv4 TTL to min(IPv4 TTL, label TTL − 1) with an incremental checksum
//! update (RFC 1624), so the hops inside the tunnel count toward the packet's TTL.
//!
//! Three passes over a burst: (1) read the top label and prefetch its ILM buckets; (2) resolve
//! labels, finishing swaps and hand-offs, and prefetch the downstream buckets of the
//! deliveries; (3) finish deliveries. Between passes only keys and bucket indices are kept,
//! in flat arrays: each pass parses the frame again from L1, which costs less than storing
//! and reloading wide per-frame records.

use super::classify::{classify_core, parse_ipv4, parse_l2, CoreClass, Ipv4Info, LabelInfo, L2};
use super::link::LinkHeader;
use super::{Cx, BURST};
use crate::counters::DropReason;
use crate::frame::Frame;
use crate::pipeline::Verdict;
use crate::table::cuckoo::Candidates;
use crate::table::downstream::DownstreamSlot;
use crate::table::{DownstreamKey, IlmAction, IspId, Tables};
use crate::wire::{mpls, EtherType, Ipv4Packet, MacAddr};

/// The top label stack entry of an untagged labelled frame from a unicast source, the
/// usual shape on a core link, read at a fixed offset; `None` for anything else.
#[inline(always)]
fn fast_lse(d: &[u8]) -> Option<u32> {
    let h: &[u8; 18] = d.first_chunk()?;
    if h[12] != 0x88 || h[13] != 0x47 || h[6] & 1 != 0 {
        return None;
    }
    Some(u32::from_be_bytes([h[14], h[15], h[16], h[17]]))
}

/// A transit swap on the usual shape (see [`fast_lse`]), in place: the header keeps its
/// length, so only addresses and the label entry are rewritten. `None`: the general path
/// decides (other shapes, TTL expiry, unknown port).
#[inline(always)]
fn fast_swap<F: Frame>(
    cx: &mut Cx<'_>,
    f: &mut F,
    out_label: u32,
    port: u16,
    nh: MacAddr,
) -> Option<Verdict> {
    let src = cx.port(port)?.mac;
    let lse = fast_lse(f.data())?;
    let h: &mut [u8; 18] = f.data_mut().first_chunk_mut()?;
    let ttl = lse as u8;
    if ttl <= 1 {
        return None;
    }
    let entry = mpls::encode(out_label, (lse >> 9 & 7) as u8, lse & 0x100 != 0, ttl - 1);
    h[..6].copy_from_slice(&nh.0);
    h[6..12].copy_from_slice(&src.0);
    h[14..].copy_from_slice(&entry.to_be_bytes());
    let len = f.len();
    cx.counters.transit.count(len);
    Some(Verdict::Forward(port))
}

/// A tailend pop and hand-off on the usual shape (see [`fast_lse`]; bottom of stack, IPv4
/// without options behind it), rewriting only the front of the frame. `None`: the general
/// path decides (other shapes and every drop).
#[inline(always)]
fn fast_handoff<F: Frame>(
    cx: &mut Cx<'_>,
    f: &mut F,
    isp: IspId,
    port: u16,
    vid: u16,
    router: MacAddr,
) -> Option<Verdict> {
    let out = *cx.port(port)?;
    let d = f.data();
    let lse = fast_lse(d)?;
    let (label_ttl, tc) = (lse as u8, (lse >> 9 & 7) as u8);
    if lse & 0x100 == 0 || label_ttl <= 1 {
        return None;
    }
    let (ip, _) = super::classify::fast_ipv4(d.get(18..)?)?;
    if ip.ttl == 0 || ip.total_len > out.mtu {
        return None;
    }
    // The new header: 14 bytes (untagged hand-off) or 18 (tagged), in place of 18.
    let h: &mut [u8] = if vid == 0 {
        if !f.adj(4) {
            return None;
        }
        f.data_mut()
    } else {
        f.data_mut()
    };
    let hl = if vid == 0 { 14 } else { 18 };
    let (eth, rest) = h.split_at_mut_checked(hl)?;
    eth[..6].copy_from_slice(&router.0);
    eth[6..12].copy_from_slice(&out.mac.0);
    if vid != 0 {
        let tci = (u16::from(tc) << 13) | (vid & 0x0fff);
        eth[12..14].copy_from_slice(&EtherType::VLAN.0.to_be_bytes());
        eth[14..16].copy_from_slice(&tci.to_be_bytes());
    }
    eth[hl - 2..].copy_from_slice(&EtherType::IPV4.0.to_be_bytes());
    let ttl = ip.ttl.min(label_ttl - 1);
    if ttl != ip.ttl {
        Ipv4Packet::new_unchecked(rest).set_ttl_update_checksum(ttl);
    }
    if let Some(c) = cx.counters.isp_mut(isp) {
        c.tailend_up.count(usize::from(ip.total_len));
    }
    Some(Verdict::Forward(port))
}

/// Pass 1: the top label of a labelled frame; `None` for anything else (pass 2 says what).
#[inline(always)]
fn top_label(d: &[u8]) -> Option<u32> {
    if let Some(lse) = fast_lse(d) {
        return Some(lse >> 12);
    }
    let l2 = parse_l2(d).ok()?;
    match classify_core(d, &l2).ok()? {
        CoreClass::Mpls(top) => Some(top.label),
        CoreClass::Arp => None,
    }
}

/// The link layer and top label of a frame, or its verdict when it has no label to look up.
#[inline(always)]
fn parse_labelled(d: &[u8]) -> Result<(L2, LabelInfo), Verdict> {
    let l2 = parse_l2(d).map_err(Verdict::Drop)?;
    match classify_core(d, &l2).map_err(Verdict::Drop)? {
        CoreClass::Arp => Err(Verdict::Punt),
        CoreClass::Mpls(top) => Ok((l2, top)),
    }
}

/// What pass 2 makes of a frame.
enum Step {
    Done(Verdict),
    /// Popped toward a subscriber: look this up in the downstream table.
    Deliver(DownstreamKey),
}

/// Checks what a pop needs: bottom of stack, label TTL, an IPv4 packet behind the label.
fn pop_checks(d: &[u8], l2: &L2, top: &LabelInfo) -> Result<Ipv4Info, DropReason> {
    if !top.bottom {
        return Err(DropReason::LabelStack);
    }
    if top.ttl <= 1 {
        return Err(DropReason::TtlExpired);
    }
    let (ip, _) = parse_ipv4(d.get(l2.l3 + 4..).unwrap_or(&[]))?;
    if ip.ttl == 0 {
        return Err(DropReason::TtlExpired);
    }
    Ok(ip)
}

/// Replaces Ethernet, tags and label by `h`, then applies the uniform-model TTL.
fn pop_to<F: Frame>(
    f: &mut F,
    l2: &L2,
    top: &LabelInfo,
    ip: &Ipv4Info,
    h: &LinkHeader,
) -> Result<(), DropReason> {
    h.replace(f, l2.l3 + 4)?;
    let ttl = ip.ttl.min(top.ttl - 1);
    if ttl != ip.ttl {
        let d = f.data_mut();
        let mut p = Ipv4Packet::new_checked(d.get_mut(h.bytes().len()..).unwrap_or(&mut []))
            .map_err(|_| DropReason::Truncated)?;
        p.set_ttl_update_checksum(ttl);
    }
    Ok(())
}

fn swap<F: Frame>(
    cx: &mut Cx<'_>,
    f: &mut F,
    l2: &L2,
    top: &LabelInfo,
    out_label: u32,
    port: u16,
    nh: MacAddr,
) -> Verdict {
    let Some(out) = cx.port(port) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    if top.ttl <= 1 {
        return Verdict::Drop(DropReason::TtlExpired);
    }
    let h = LinkHeader::new(nh, out.mac)
        .ethertype(EtherType::MPLS_UNICAST)
        .label(out_label, top.tc, top.bottom, top.ttl - 1);
    match h.replace(f, l2.l3 + 4) {
        Ok(()) => {
            cx.counters.transit.count(f.len());
            Verdict::Forward(port)
        }
        Err(r) => Verdict::Drop(r),
    }
}

#[allow(clippy::too_many_arguments)]
fn handoff<F: Frame>(
    cx: &mut Cx<'_>,
    f: &mut F,
    l2: &L2,
    top: &LabelInfo,
    isp: IspId,
    port: u16,
    vid: u16,
    router: MacAddr,
) -> Verdict {
    let Some(out) = cx.port(port) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let ip = match pop_checks(f.data(), l2, top) {
        Ok(ip) => ip,
        Err(r) => return Verdict::Drop(r),
    };
    if ip.total_len > out.mtu {
        return Verdict::Drop(DropReason::Oversized);
    }
    let mut h = LinkHeader::new(router, out.mac);
    if vid != 0 {
        h = h.tag(EtherType::VLAN, top.tc, vid);
    }
    let h = h.ethertype(EtherType::IPV4);
    match pop_to(f, l2, top, &ip, &h) {
        Ok(()) => {
            if let Some(c) = cx.counters.isp_mut(isp) {
                c.tailend_up.count(usize::from(ip.total_len));
            }
            Verdict::Forward(port)
        }
        Err(r) => Verdict::Drop(r),
    }
}

/// Pass 2: acts on the ILM entry `action` of the frame's top label.
#[inline(always)]
fn resolve<F: Frame>(cx: &mut Cx<'_>, f: &mut F, action: Option<IlmAction>) -> Step {
    let (l2, top) = match parse_labelled(f.data()) {
        Ok(x) => x,
        Err(v) => return Step::Done(v),
    };
    let Some(action) = action else {
        return Step::Done(Verdict::Drop(DropReason::UnknownLabel));
    };
    Step::Done(match action {
        IlmAction::Swap {
            out_label,
            port,
            next_hop,
        } => swap(cx, f, &l2, &top, out_label, port, next_hop),
        IlmAction::PopHandoff {
            isp,
            port,
            vid,
            router_mac,
        } => handoff(cx, f, &l2, &top, isp, port, vid, router_mac),
        IlmAction::PopDeliver { isp } => match pop_checks(f.data(), &l2, &top) {
            Err(r) => Verdict::Drop(r),
            Ok(ip) => return Step::Deliver(DownstreamKey { isp, ipv4: ip.dst }),
        },
    })
}

/// Pass 3: delivers a popped packet to the subscriber `sub` bound to `key`.
#[inline(always)]
fn deliver<F: Frame>(
    cx: &mut Cx<'_>,
    f: &mut F,
    key: &DownstreamKey,
    sub: Option<&DownstreamSlot>,
) -> Verdict {
    let d = f.data();
    let (l2, top, ip) = match parse_labelled(d) {
        Ok((l2, top)) => match pop_checks(d, &l2, &top) {
            Ok(ip) => (l2, top, ip),
            Err(r) => return Verdict::Drop(r),
        },
        Err(v) => return v,
    };
    let Some(sub) = sub else {
        return Verdict::Drop(DropReason::UnknownDestination);
    };
    let at = sub.attachment();
    let port = at.port();
    let Some(out) = cx.port(port) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    if ip.total_len > out.mtu {
        return Verdict::Drop(DropReason::Oversized);
    }
    let h = LinkHeader::new(sub.mac(), out.mac)
        .subscriber_tags(at.outer_vid(), at.inner_vid(), top.tc)
        .ethertype(EtherType::IPV4);
    match pop_to(f, &l2, &top, &ip, &h) {
        Ok(()) => {
            if let Some(c) = cx.counters.isp_mut(key.isp) {
                c.headend_down.count(usize::from(ip.total_len));
            }
            Verdict::Forward(port)
        }
        Err(r) => Verdict::Drop(r),
    }
}

/// Prefetches the ILM buckets of a burst that will be processed later.
pub fn prefetch<F: Frame>(tables: &Tables, frames: &[F]) {
    for f in frames {
        if let Some(label) = top_label(f.data()) {
            tables.ilm.prepare(&label);
        }
    }
}

/// Runs the ILM over a burst received on core port `rx_port`.
pub fn ilm<F: Frame>(cx: &mut Cx<'_>, _rx_port: u16, frames: &mut [F], verdicts: &mut [Verdict]) {
    let mut labels = [0u32; BURST];
    let mut cands = [Candidates::default(); BURST];
    let mut keys = [DownstreamKey::default(); BURST];
    let mut key_cands = [Candidates::default(); BURST];
    for (fs, vs) in frames.chunks_mut(BURST).zip(verdicts.chunks_mut(BURST)) {
        // Bit i: frame i has a label whose buckets are on their way.
        let mut labelled = 0u64;
        for (i, ((f, l), c)) in fs.iter().zip(&mut labels).zip(&mut cands).enumerate() {
            if let Some(label) = top_label(f.data()) {
                *l = label;
                *c = cx.tables.ilm.prepare(&label);
                labelled |= 1 << i;
            }
        }
        // Bit i: frame i is popped toward a subscriber, its downstream buckets on their way.
        let mut delivering = 0u64;
        for (i, ((f, v), ((l, c), (k, kc)))) in fs
            .iter_mut()
            .zip(vs.iter_mut())
            .zip(
                labels
                    .iter()
                    .zip(&cands)
                    .zip(keys.iter_mut().zip(&mut key_cands)),
            )
            .enumerate()
        {
            let action = if labelled >> i & 1 == 1 {
                cx.tables.ilm.get_prepared(l, *c).map(|s| s.action())
            } else {
                None
            };
            let fast = match action {
                Some(IlmAction::Swap {
                    out_label,
                    port,
                    next_hop,
                }) => fast_swap(cx, f, out_label, port, next_hop),
                Some(IlmAction::PopHandoff {
                    isp,
                    port,
                    vid,
                    router_mac,
                }) => fast_handoff(cx, f, isp, port, vid, router_mac),
                _ => None,
            };
            if let Some(verdict) = fast {
                *v = verdict;
                continue;
            }
            match resolve(cx, f, action) {
                Step::Done(verdict) => *v = verdict,
                Step::Deliver(key) => {
                    *k = key;
                    *kc = cx.tables.downstream.prepare(&key);
                    delivering |= 1 << i;
                }
            }
        }
        if delivering == 0 {
            continue;
        }
        for (i, ((f, v), (k, kc))) in fs
            .iter_mut()
            .zip(vs.iter_mut())
            .zip(keys.iter().zip(&key_cands))
            .enumerate()
        {
            if delivering >> i & 1 == 1 {
                let sub = cx.tables.downstream.get_prepared(k, *kc);
                *v = deliver(cx, f, k, sub);
            }
        }
    }
}
