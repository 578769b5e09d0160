//! Proxy ARP for subscribers, answered in the fast path.
//!
//! A bound subscriber asking who has any other address gets the access port's MAC (local
//! proxy ARP, RFC 1027 in spirit): subscribers never reach each other at layer 2, all their
//! traffic goes through the gateway and so through their ISP. Requests that are not plainly
//! that (probes from 0.0.0.0, gratuitous ARP, replies, unbound or spoofing senders, other
//! hardware types) go to the slow path, which may log, police or answer them.

use crate::counters::DropReason;
use crate::frame::Frame;
use crate::pipeline::Verdict;
use crate::roles::classify::L2;
use crate::roles::Cx;
use crate::table::{SubscriberSlot, SubscriberState};
use crate::wire::{ArpOperation, ArpPacket, ArpRepr};

/// Answers or punts an ARP frame of a known subscriber received on `rx_port`.
pub fn proxy_arp<F: Frame>(
    cx: &mut Cx<'_>,
    rx_port: u16,
    f: &mut F,
    l2: &L2,
    s: &SubscriberSlot,
) -> Verdict {
    let Some(port_mac) = cx.port(rx_port).map(|p| p.mac) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let d = f.data_mut();
    let Some(arp_bytes) = d.get_mut(l2.l3..) else {
        return Verdict::Drop(DropReason::Truncated);
    };
    let Ok(mut arp) = ArpPacket::new_checked(arp_bytes) else {
        return Verdict::Drop(DropReason::Truncated);
    };
    let Ok(req) = ArpRepr::parse(&arp) else {
        return Verdict::Punt;
    };
    let answerable = req.operation == ArpOperation::Request
        && s.state() == SubscriberState::Bound
        && req.source_hardware_addr == l2.src
        && req.source_protocol_addr == s.ipv4()
        && req.target_protocol_addr != req.source_protocol_addr
        && !req.target_protocol_addr.is_unspecified();
    if !answerable {
        return Verdict::Punt;
    }
    arp.set_ethernet_ipv4(ArpOperation::Reply);
    arp.set_sender(port_mac, req.target_protocol_addr);
    arp.set_target(req.source_hardware_addr, req.source_protocol_addr);
    if let Some(h) = d.get_mut(..12) {
        h[..6].copy_from_slice(&l2.src.0);
        h[6..].copy_from_slice(&port_mac.0);
    }
    cx.counters.worker.arp_replies += 1;
    Verdict::Forward(rx_port)
}
