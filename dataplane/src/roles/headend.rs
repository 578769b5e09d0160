//! Headend upstream: frames from subscribers on an access port.
//!
//! DHCP → slow path (from anyone: that is how subscribers log on). Otherwise the sender must
//! be in the subscriber table for this port and VLANs (else `UnknownMac`). ARP → proxy ARP.
//! IPv4 → must be bound (`NotBound`), from its bound address (`SourceGuard`); to the ISP's
//! gateway address → slow path; else the ISP's upstream label is pushed (S=1, TTL = IPv4 TTL
//! − 1, TC from the FEC), the Ethernet header rewritten to the next hop, and the frame leaves
//! on the FEC's core port.

use super::arp::proxy_arp;
use super::classify::{classify_access, parse_l2, AccessClass, Ipv4Info, L2};
use super::link::LinkHeader;
use super::{Cx, BURST};
use crate::counters::DropReason;
use crate::frame::Frame;
use crate::pipeline::Verdict;
use crate::table::cuckoo::Candidates;
use crate::table::{Fec, PackedKey, SubscriberKey, SubscriberState, Tables};
use crate::wire::EtherType;

#[derive(Clone, Copy)]
struct Pending {
    l2: L2,
    class: AccessClass,
    key: PackedKey,
    cand: Candidates,
}

fn prepare(tables: &Tables, rx_port: u16, d: &[u8]) -> Result<Pending, Verdict> {
    let l2 = parse_l2(d).map_err(Verdict::Drop)?;
    let class = classify_access(d, &l2).map_err(Verdict::Drop)?;
    if class == AccessClass::Dhcp {
        return Err(Verdict::Punt);
    }
    let key = SubscriberKey {
        port: rx_port,
        outer_vid: l2.outer_vid,
        inner_vid: l2.inner_vid,
        mac: l2.src,
    }
    .pack()
    .map_err(|_| Verdict::Drop(DropReason::NoRoute))?;
    let cand = tables.subscribers.candidates(&key);
    Ok(Pending {
        l2,
        class,
        key,
        cand,
    })
}

/// Pushes `fec`'s label in front of the IPv4 packet at `l3` and addresses the frame to the
/// next hop; the IPv4 header itself is not touched.
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

fn finish<F: Frame>(cx: &mut Cx<'_>, rx_port: u16, f: &mut F, p: &Pending) -> Verdict {
    let Some(s) = cx.tables.subscribers.get_prepared(&p.key, p.cand).copied() else {
        return Verdict::Drop(DropReason::UnknownMac);
    };
    let ip = match p.class {
        AccessClass::Arp => return proxy_arp(cx, rx_port, f, &p.l2, &s),
        AccessClass::Dhcp => return Verdict::Punt,
        AccessClass::Ipv4(ip) => ip,
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
    if is_group(ip.dst) || p.l2.dst.is_multicast() {
        return Verdict::Drop(DropReason::NotUnicast);
    }
    let Some(fec) = isp.upstream else {
        return Verdict::Drop(DropReason::NoFec);
    };
    match push_label(cx, f, p.l2.l3, &ip, &fec) {
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
    let mut cands = [Candidates::default(); BURST];
    for fs in frames.chunks(BURST) {
        let mut m = 0;
        for f in fs {
            if let (Ok(p), Some(c)) = (prepare(tables, rx_port, f.data()), cands.get_mut(m)) {
                *c = p.cand;
                m += 1;
            }
        }
        tables.subscribers.prefetch_burst(&cands[..m]);
    }
}

/// Runs the headend upstream pipeline over a burst received on access port `rx_port`.
pub fn upstream<F: Frame>(
    cx: &mut Cx<'_>,
    rx_port: u16,
    frames: &mut [F],
    verdicts: &mut [Verdict],
) {
    let mut pending: [Option<Pending>; BURST] = [None; BURST];
    let mut cands = [Candidates::default(); BURST];
    for (fs, vs) in frames.chunks_mut(BURST).zip(verdicts.chunks_mut(BURST)) {
        let mut m = 0;
        for ((f, v), p) in fs.iter().zip(vs.iter_mut()).zip(pending.iter_mut()) {
            *p = match prepare(cx.tables, rx_port, f.data()) {
                Ok(ok) => {
                    if let Some(c) = cands.get_mut(m) {
                        *c = ok.cand;
                        m += 1;
                    }
                    Some(ok)
                }
                Err(verdict) => {
                    *v = verdict;
                    None
                }
            };
        }
        cx.tables.subscribers.prefetch_burst(&cands[..m]);
        for ((f, v), p) in fs.iter_mut().zip(vs.iter_mut()).zip(pending.iter()) {
            if let Some(p) = p {
                *v = finish(cx, rx_port, f, p);
            }
        }
    }
}
