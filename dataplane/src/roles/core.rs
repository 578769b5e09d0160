//! Core port: the incoming label map decides between transit swap, tailend pop and hand-off,
//! and headend pop and delivery to a subscriber.
//!
//! TTL handling (RFC 3443, uniform model): a swap decrements the label TTL, expiry is a drop;
//! a pop sets the IPv4 TTL to min(IPv4 TTL, label TTL − 1) with an incremental checksum
//! update (RFC 1624), so the hops inside the tunnel count toward the packet's TTL.
//!
//! Three passes over a burst: (1) parse, then prefetch the ILM buckets of the whole burst;
//! (2) resolve labels, finishing swaps and hand-offs, then prefetch the downstream buckets
//! of the deliveries; (3) finish deliveries.

use super::classify::{classify_core, parse_ipv4, parse_l2, CoreClass, Ipv4Info, LabelInfo, L2};
use super::link::LinkHeader;
use super::{Cx, BURST};
use crate::counters::DropReason;
use crate::frame::Frame;
use crate::pipeline::Verdict;
use crate::table::cuckoo::Candidates;
use crate::table::{DownstreamKey, IlmAction, IspId, Tables};
use crate::wire::{EtherType, Ipv4Packet, MacAddr};

#[derive(Clone, Copy)]
enum Pending {
    Done,
    Label {
        l2: L2,
        top: LabelInfo,
        cand: Candidates,
    },
    Deliver {
        l2: L2,
        top: LabelInfo,
        ip: Ipv4Info,
        key: DownstreamKey,
        cand: Candidates,
    },
}

fn prepare(tables: &Tables, d: &[u8]) -> Result<Pending, Verdict> {
    let l2 = parse_l2(d).map_err(Verdict::Drop)?;
    match classify_core(d, &l2).map_err(Verdict::Drop)? {
        CoreClass::Arp => Err(Verdict::Punt),
        CoreClass::Mpls(top) => Ok(Pending::Label {
            l2,
            top,
            cand: tables.ilm.candidates(&top.label),
        }),
    }
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

fn resolve<F: Frame>(cx: &mut Cx<'_>, f: &mut F, p: &Pending) -> (Verdict, Pending) {
    let Pending::Label { l2, top, cand } = *p else {
        return (Verdict::Drop(DropReason::UnknownLabel), Pending::Done);
    };
    let Some(action) = cx
        .tables
        .ilm
        .get_prepared(&top.label, cand)
        .map(|s| s.action())
    else {
        return (Verdict::Drop(DropReason::UnknownLabel), Pending::Done);
    };
    match action {
        IlmAction::Swap {
            out_label,
            port,
            next_hop,
        } => (
            swap(cx, f, &l2, &top, out_label, port, next_hop),
            Pending::Done,
        ),
        IlmAction::PopHandoff {
            isp,
            port,
            vid,
            router_mac,
        } => (
            handoff(cx, f, &l2, &top, isp, port, vid, router_mac),
            Pending::Done,
        ),
        IlmAction::PopDeliver { isp } => match pop_checks(f.data(), &l2, &top) {
            Err(r) => (Verdict::Drop(r), Pending::Done),
            Ok(ip) => {
                let key = DownstreamKey { isp, ipv4: ip.dst };
                let cand = cx.tables.downstream.candidates(&key);
                // Provisional: overwritten by the third pass.
                (
                    Verdict::Drop(DropReason::UnknownDestination),
                    Pending::Deliver {
                        l2,
                        top,
                        ip,
                        key,
                        cand,
                    },
                )
            }
        },
    }
}

fn deliver<F: Frame>(cx: &mut Cx<'_>, f: &mut F, p: &Pending) -> Option<Verdict> {
    let Pending::Deliver {
        l2,
        top,
        ip,
        key,
        cand,
    } = *p
    else {
        return None;
    };
    let Some(sub) = cx.tables.downstream.get_prepared(&key, cand).copied() else {
        return Some(Verdict::Drop(DropReason::UnknownDestination));
    };
    let at = sub.attachment();
    let port = at.port();
    let Some(out) = cx.port(port) else {
        return Some(Verdict::Drop(DropReason::NoRoute));
    };
    if ip.total_len > out.mtu {
        return Some(Verdict::Drop(DropReason::Oversized));
    }
    let h = LinkHeader::new(sub.mac(), out.mac)
        .subscriber_tags(at.outer_vid(), at.inner_vid(), top.tc)
        .ethertype(EtherType::IPV4);
    Some(match pop_to(f, &l2, &top, &ip, &h) {
        Ok(()) => {
            if let Some(c) = cx.counters.isp_mut(key.isp) {
                c.headend_down.count(usize::from(ip.total_len));
            }
            Verdict::Forward(port)
        }
        Err(r) => Verdict::Drop(r),
    })
}

/// Prefetches the ILM buckets of a burst that will be processed later.
pub fn prefetch<F: Frame>(tables: &Tables, frames: &[F]) {
    let mut cands = [Candidates::default(); BURST];
    for fs in frames.chunks(BURST) {
        let mut m = 0;
        for f in fs {
            if let (Ok(Pending::Label { cand, .. }), Some(c)) =
                (prepare(tables, f.data()), cands.get_mut(m))
            {
                *c = cand;
                m += 1;
            }
        }
        tables.ilm.prefetch_burst(&cands[..m]);
    }
}

/// Runs the ILM over a burst received on core port `rx_port`.
pub fn ilm<F: Frame>(cx: &mut Cx<'_>, _rx_port: u16, frames: &mut [F], verdicts: &mut [Verdict]) {
    let mut pending = [Pending::Done; BURST];
    let mut cands = [Candidates::default(); BURST];
    for (fs, vs) in frames.chunks_mut(BURST).zip(verdicts.chunks_mut(BURST)) {
        let mut m = 0;
        for ((f, v), p) in fs.iter().zip(vs.iter_mut()).zip(pending.iter_mut()) {
            *p = match prepare(cx.tables, f.data()) {
                Ok(ok) => {
                    if let (Pending::Label { cand, .. }, Some(c)) = (&ok, cands.get_mut(m)) {
                        *c = *cand;
                        m += 1;
                    }
                    ok
                }
                Err(verdict) => {
                    *v = verdict;
                    Pending::Done
                }
            };
        }
        cx.tables.ilm.prefetch_burst(&cands[..m]);
        m = 0;
        for ((f, v), p) in fs.iter_mut().zip(vs.iter_mut()).zip(pending.iter_mut()) {
            if matches!(p, Pending::Label { .. }) {
                let (verdict, next) = resolve(cx, f, p);
                *v = verdict;
                *p = next;
                if let (Pending::Deliver { cand, .. }, Some(c)) = (&*p, cands.get_mut(m)) {
                    *c = *cand;
                    m += 1;
                }
            }
        }
        cx.tables.downstream.prefetch_burst(&cands[..m]);
        for ((f, v), p) in fs.iter_mut().zip(vs.iter_mut()).zip(pending.iter()) {
            if let Some(verdict) = deliver(cx, f, p) {
                *v = verdict;
            }
        }
    }
}
