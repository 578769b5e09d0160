//! Core port: the incoming label map decides between transit swap, tailend pop and hand-off,
//! and headend pop and delivery to a subscriber.
//!
//! TTL handling (RFC 3443, uniform model): a swap decrements the label TTL; a pop sets the
//! IPv4 TTL to min(IPv4 TTL, label TTL − 1) with an incremental checksum update (RFC 1624),
//! so the hops inside the tunnel count toward the packet's TTL. A TTL that expires (label or
//! IPv4) sends the frame, label stack and all, to the slow path, which answers with ICMP Time
//! Exceeded (RFC 3032 section 2.3.2: a transit LSR sends it on along the LSP).
//!
//! Three passes over a burst: (1) read the top label and prefetch its ILM buckets; (2) resolve
//! labels, finishing swaps and hand-offs, and prefetch the downstream buckets of the
//! deliveries; (3) finish deliveries. Between passes only keys and bucket indices are kept,
//! in flat arrays: each pass parses the frame again from L1, which costs less than storing
//! and reloading wide per-frame records.

use super::classify::{classify_core, parse_ipv4, parse_l2, CoreClass, Ipv4Info, LabelInfo, L2};
use super::link::LinkHeader;
use super::{Cx, PortAddr, PortConfig, BURST};
use crate::counters::DropReason;
use crate::frame::Frame;
use crate::pipeline::Verdict;
use crate::table::cuckoo::Candidates;
use crate::table::downstream::DownstreamSlot;
use crate::table::{DownstreamKey, IlmAction, IlmSlot, IspId, Tables};
use crate::wire::ipv4::set_ttl_update_checksum;
use crate::wire::{EtherType, Ipv4Packet, MacAddr};

/// The top label stack entry of an untagged labelled frame from a unicast source, the
/// usual shape on a core link, read at a fixed offset; `None` for anything else.
#[inline(always)]
fn fast_lse(d: &[u8]) -> Option<u32> {
    let h: &[u8; 18] = d.first_chunk()?;
    if u16::from_be_bytes([h[12], h[13]]) != EtherType::MPLS_UNICAST.0 || h[6] & 1 != 0 {
        return None;
    }
    Some(u32::from_be_bytes([h[14], h[15], h[16], h[17]]))
}

/// A transit swap on the usual shape (`lse`, read by [`fast_lse`] from `d`), in place: the
/// header keeps its length, so only addresses and the label entry are rewritten (an
/// unresolved next hop never comes here: [`IlmSlot::swap`] misses). `false`: the general
/// path decides (TTL expiry).
#[inline(always)]
fn fast_swap(d: &mut [u8], lse: u32, out_label: u32, src: MacAddr, nh: MacAddr) -> bool {
    let Some(h) = d.first_chunk_mut::<18>() else {
        return false;
    };
    if lse as u8 <= 1 {
        return false;
    }
    // The new label over the old one's TC and S bits, TTL one less (it is above 1, so the
    // subtraction stays in its byte).
    let entry = (out_label << 12) | ((lse & 0xfff) - 1);
    h[..6].copy_from_slice(&nh.0);
    h[6..12].copy_from_slice(&src.0);
    h[14..].copy_from_slice(&entry.to_be_bytes());
    true
}

/// A tailend pop and hand-off on the usual shape (`lse` read by [`fast_lse`] from `d`; bottom
/// of stack, IPv4 without options behind it): the new link header is written over the end
/// of the old one, untagged (14 bytes: the caller then trims the 4 in front) or tagged (18).
/// Returns the IPv4 total length; `None`: the general path decides (other shapes and every
/// drop), and nothing has been written.
#[inline(always)]
fn fast_handoff(
    d: &mut [u8],
    lse: u32,
    out: &PortConfig,
    vid: u16,
    router: MacAddr,
) -> Option<u16> {
    let (label_ttl, tc) = (lse as u8, (lse >> 9 & 7) as u8);
    if lse & 0x100 == 0 || label_ttl <= 1 {
        return None;
    }
    let (eth, ip_hdr) = d.split_first_chunk_mut::<18>()?;
    let (ip, _) = super::classify::fast_ipv4(ip_hdr)?;
    if ip.ttl == 0 || ip.total_len > out.mtu {
        return None;
    }
    let ttl = ip.ttl.min(label_ttl - 1);
    if ttl != ip.ttl {
        set_ttl_update_checksum(ip_hdr.first_chunk_mut()?, ttl);
    }
    if vid == 0 {
        eth[4..10].copy_from_slice(&router.0);
        eth[10..16].copy_from_slice(&out.mac.0);
    } else {
        let tci = (u16::from(tc) << 13) | (vid & 0x0fff);
        eth[..6].copy_from_slice(&router.0);
        eth[6..12].copy_from_slice(&out.mac.0);
        eth[12..14].copy_from_slice(&EtherType::VLAN.0.to_be_bytes());
        eth[14..16].copy_from_slice(&tci.to_be_bytes());
    }
    eth[16..].copy_from_slice(&EtherType::IPV4.0.to_be_bytes());
    Some(ip.total_len)
}

/// Pass 1: the top label of a labelled frame; `None` for anything else (pass 2 says what).
#[inline(always)]
pub(super) fn top_label(d: &[u8]) -> Option<u32> {
    if let Some(lse) = fast_lse(d) {
        return Some(lse >> 12);
    }
    let l2 = parse_l2(d).ok()?;
    match classify_core(d, &l2).ok()? {
        CoreClass::Mpls(top) => Some(top.label),
        CoreClass::Arp | CoreClass::Ipv4 => None,
    }
}

/// What the core pipeline knows of the receive port beyond the tables.
#[derive(Clone, Copy)]
struct RxPort {
    /// The gateway's own destinations on it.
    own: PortAddr,
    /// The label unlabelled IPv4 stands for (penultimate-hop popping), if any.
    implicit_null: Option<u32>,
}

impl RxPort {
    const NONE: RxPort = RxPort {
        own: PortAddr::NONE,
        implicit_null: None,
    };
}

/// The link layer and top label of a frame, or its verdict when it has no label to look up:
/// ARP and unlabelled IPv4 for the gateway itself go to the slow path (the port's kernel
/// twin); other unlabelled IPv4 is taken as labelled with the port's implicit null label,
/// else dropped.
#[inline(always)]
fn parse_labelled(d: &[u8], rx: &RxPort) -> Result<(L2, LabelInfo), Verdict> {
    let l2 = parse_l2(d).map_err(Verdict::Drop)?;
    match classify_core(d, &l2).map_err(Verdict::Drop)? {
        CoreClass::Arp => Err(Verdict::Punt),
        CoreClass::Ipv4 => unlabelled(d, &l2, rx).map(|top| (l2, top)),
        CoreClass::Mpls(top) => Ok((l2, top)),
    }
}

/// Unlabelled IPv4 on a core port: the gateway's own (ping, LDP hellos and sessions to its
/// address) is punted for the twin. Anything else is what a neighbour that popped the last
/// label sends (PHP): with an implicit null label configured it stands for that label, a
/// bottom entry of length 0 whose TTL is the packet's, so the pop still counts this hop;
/// without one it is not for a label switch (`not_mpls`).
#[inline(never)]
fn unlabelled(d: &[u8], l2: &L2, rx: &RxPort) -> Result<LabelInfo, Verdict> {
    match parse_ipv4(d.get(l2.l3..).unwrap_or(&[])) {
        Ok((ip, _)) if rx.own.is_for(ip.dst) => Err(Verdict::Punt),
        Ok((ip, _)) => match rx.implicit_null {
            Some(label) => Ok(LabelInfo {
                label,
                tc: 0,
                bottom: true,
                ttl: ip.ttl,
                len: 0,
            }),
            None => Err(Verdict::Drop(DropReason::NotMpls)),
        },
        Err(_) => Err(Verdict::Drop(DropReason::NotMpls)),
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
    let (ip, _) = parse_ipv4(d.get(l2.l3 + top.len..).unwrap_or(&[]))?;
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
    h.replace(f, l2.l3 + top.len)?;
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
    if top.len == 0 {
        // A popped packet is not pushed again here: the implicit null label must pop.
        return Verdict::Drop(DropReason::NotMpls);
    }
    if top.ttl <= 1 {
        return cx.icmp_punt(DropReason::TtlExpired, f.data(), None);
    }
    // Zero: the next hop is given by address and not resolved (yet, or any more).
    if nh == MacAddr::ZERO {
        return Verdict::Drop(DropReason::NoNeighbour);
    }
    let h = LinkHeader::new(nh, out.mac)
        .ethertype(EtherType::MPLS_UNICAST)
        .label(out_label, top.tc, top.bottom, top.ttl - 1);
    match h.replace(f, l2.l3 + 4) {
        Ok(()) => {
            cx.counters.worker.transit_packets += 1;
            cx.counters.worker.transit_bytes += f.len() as u64;
            Verdict::Forward(port)
        }
        Err(r) => Verdict::Drop(r),
    }
}

/// A pop that failed its checks: a labelled frame is punted for its ICMP error when that
/// is why (the slow path reads the label stack back to answer it); an implicit null's
/// (PHP: no label in the frame) is dropped, as the slow path answers only labelled frames
/// arriving on core ports.
#[cold]
fn pop_failed(cx: &mut Cx<'_>, r: DropReason, d: &[u8], top: &LabelInfo) -> Verdict {
    match top.len {
        0 => Verdict::Drop(r),
        _ => cx.icmp_punt(r, d, None),
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
        Err(r) => return pop_failed(cx, r, f.data(), top),
    };
    if ip.total_len > out.mtu {
        return Verdict::Drop(DropReason::Oversized);
    }
    if router == MacAddr::ZERO {
        return Verdict::Drop(DropReason::NoNeighbour);
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
fn resolve<F: Frame>(cx: &mut Cx<'_>, f: &mut F, rx: &RxPort, action: Option<IlmAction>) -> Step {
    let (l2, top) = match parse_labelled(f.data(), rx) {
        Ok(x) => x,
        Err(v) => return Step::Done(v),
    };
    // An implicit null's label was not in the frame for pass 1 to look up.
    let action = match top.len {
        0 => cx.tables.ilm.get(&top.label).map(|e| e.action()),
        _ => action,
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
            Err(r) => pop_failed(cx, r, f.data(), &top),
            Ok(ip) => return Step::Deliver(DownstreamKey { isp, ipv4: ip.dst }),
        },
    })
}

/// Pass 3: delivers a popped packet to the subscriber `sub` bound to `key`.
#[inline(always)]
fn deliver<F: Frame>(
    cx: &mut Cx<'_>,
    f: &mut F,
    rx: &RxPort,
    key: &DownstreamKey,
    sub: Option<&DownstreamSlot>,
) -> Verdict {
    let d = f.data();
    let (l2, top, ip) = match parse_labelled(d, rx) {
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

/// Starts loading what a later [`ilm`] of these frames reads from memory: the downstream
/// buckets of frames popped toward subscribers (the ILM itself stays in cache).
pub fn prefetch<F: Frame>(tables: &Tables, frames: &[F]) {
    if !tables.ilm.delivers() {
        return;
    }
    for f in frames {
        let d = f.data();
        let Some(lse) = fast_lse(d) else { continue };
        if let Some(IlmAction::PopDeliver { isp }) =
            tables.ilm.lookup(lse >> 12).map(|e| e.action())
        {
            if let Some((ip, _)) = d.get(18..).and_then(super::classify::fast_ipv4) {
                tables
                    .downstream
                    .prepare(&DownstreamKey { isp, ipv4: ip.dst });
            }
        }
    }
}

/// Runs the ILM over a burst received on core port `rx_port`. Returns `true` when every
/// verdict is a forward already counted, so the caller need not count verdicts.
///
/// One pass decides swaps and hand-offs of the usual shape on the spot (the ILM is in
/// cache) and sends every other frame through the general path; deliveries toward
/// subscribers are collected with their downstream buckets on their way, and finished in a
/// second pass.
pub fn ilm<F: Frame>(
    cx: &mut Cx<'_>,
    rx_port: u16,
    frames: &mut [F],
    verdicts: &mut [Verdict],
) -> bool {
    let rx = cx.port(rx_port).map_or(RxPort::NONE, |p| RxPort {
        own: p.address,
        implicit_null: p.implicit_null,
    });
    let mut keys = [DownstreamKey::default(); BURST];
    let mut key_cands = [Candidates::default(); BURST];
    let (mut transit_packets, mut transit_bytes) = (0u64, 0u64);
    let mut all_counted = true;
    for (fs, vs) in frames.chunks_mut(BURST).zip(verdicts.chunks_mut(BURST)) {
        // Bit i: frame i is popped toward a subscriber, its downstream buckets on their way.
        let mut delivering = 0u64;
        for (i, (f, v)) in fs.iter_mut().zip(vs.iter_mut()).enumerate() {
            let d = f.data_mut();
            let lse = fast_lse(d);
            let entry = match lse {
                Some(lse) => cx.tables.ilm.lookup(lse >> 12),
                None => top_label(d).and_then(|l| cx.tables.ilm.get(&l)),
            };
            if let (Some(lse), Some(e)) = (lse, entry) {
                if let Some((out_label, port, next_hop)) = e.swap() {
                    if let Some(out) = cx.port(port) {
                        let len = d.len();
                        if fast_swap(d, lse, out_label, out.mac, next_hop) {
                            transit_packets += 1;
                            transit_bytes += len as u64;
                            *v = Verdict::Forward(port);
                            continue;
                        }
                    }
                }
            }
            if let (Some(lse), Some((isp, port, vid, router_mac))) =
                (lse, entry.and_then(IlmSlot::handoff))
            {
                if let Some(out) = cx.port(port) {
                    if let Some(total_len) = fast_handoff(d, lse, out, vid, router_mac) {
                        // Untagged, the new header starts 4 bytes in; the frame holds a
                        // whole IPv4 header after them, so trimming cannot fail.
                        if vid != 0 || f.adj(4) {
                            if let Some(c) = cx.counters.isp_mut(isp) {
                                c.tailend_up.count(usize::from(total_len));
                            }
                            *v = Verdict::Forward(port);
                        } else {
                            *v = Verdict::Drop(DropReason::Truncated);
                            all_counted = false;
                        }
                        continue;
                    }
                }
            }
            let action = entry.map(|e| e.action());
            all_counted = false;
            match resolve(cx, f, &rx, action) {
                Step::Done(verdict) => *v = verdict,
                Step::Deliver(key) => {
                    if let (Some(k), Some(kc)) = (keys.get_mut(i), key_cands.get_mut(i)) {
                        *k = key;
                        *kc = cx.tables.downstream.prepare(&key);
                        delivering |= 1 << i;
                    }
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
                *v = deliver(cx, f, &rx, k, sub);
            }
        }
    }
    cx.counters.worker.transit_packets += transit_packets;
    cx.counters.worker.transit_bytes += transit_bytes;
    all_counted
}
