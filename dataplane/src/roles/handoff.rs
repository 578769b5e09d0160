//! Hand-off ports: the tailend's downstream pipeline, IPv4 from an ISP's router gets that
//! ISP's downstream label.
//!
//! The (port, VLAN) the frame arrived on names the ISP (`UnknownHandoff` otherwise). ARP from
//! the ISP router goes to the slow path, and so does IPv4 for the gateway itself (the
//! port's address, broadcast, 224.0.0.0/24: its kernel twin's); other IPv4 gets the ISP's downstream FEC pushed toward
//! the headend exactly as the headend pushes upstream.

use super::classify::{parse_ipv4, parse_l2};
use super::link::push_label;
use super::{Cx, PortAddr};
use crate::counters::DropReason;
use crate::frame::Frame;
use crate::pipeline::Verdict;
use crate::table::handoff::handoff_key;
use crate::wire::EtherType;

fn one<F: Frame>(cx: &mut Cx<'_>, rx_port: u16, own: &PortAddr, f: &mut F) -> Verdict {
    let d = f.data();
    let l2 = match parse_l2(d) {
        Ok(l2) => l2,
        Err(r) => return Verdict::Drop(r),
    };
    if l2.inner_vid != 0 {
        return Verdict::Drop(DropReason::UnknownHandoff);
    }
    let Some(key) = handoff_key(rx_port, l2.outer_vid) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let Some(isp_id) = cx.tables.handoffs.get(&key).map(|h| h.isp()) else {
        return Verdict::Drop(DropReason::UnknownHandoff);
    };
    match l2.ethertype {
        EtherType::ARP => return Verdict::Punt,
        EtherType::IPV4 => {}
        _ => return Verdict::Drop(DropReason::NotIpv4),
    }
    let ip = match parse_ipv4(d.get(l2.l3..).unwrap_or(&[])) {
        Ok((ip, _)) => ip,
        Err(r) => return Verdict::Drop(r),
    };
    if own.is_for(ip.dst) {
        // For the gateway itself (ping, BGP, link-local multicast): the port's kernel twin.
        return Verdict::Punt;
    }
    let Some(fec) = cx.tables.isps.get(isp_id).and_then(|i| i.downstream) else {
        return Verdict::Drop(DropReason::NoFec);
    };
    match push_label(cx, f, l2.l3, &ip, &fec) {
        Ok(port) => {
            if let Some(c) = cx.counters.isp_mut(isp_id) {
                c.tailend_down.count(usize::from(ip.total_len));
            }
            Verdict::Forward(port)
        }
        // TTL expiry, or DF and too big for the core port with the label: the slow path
        // answers the ISP router with ICMP from the hand-off port's address.
        Err(r) => cx.icmp_punt(r, f.data(), Some(l2.l3)),
    }
}

/// Runs the tailend downstream pipeline over a burst received on hand-off port `rx_port`.
/// The hand-off table is small and stays in cache, so there is no prefetch pass.
pub fn downstream<F: Frame>(
    cx: &mut Cx<'_>,
    rx_port: u16,
    frames: &mut [F],
    verdicts: &mut [Verdict],
) {
    let own = cx.port(rx_port).map_or(PortAddr::NONE, |p| p.address);
    for (f, v) in frames.iter_mut().zip(verdicts.iter_mut()) {
        *v = one(cx, rx_port, &own, f);
    }
}
