//! Where an ICMP error goes, as a whole Ethernet frame and the port it leaves on, worked out
//! from the punted frame as received and the tables.
//!
//! - From a subscriber (access port, unlabelled): back to the subscriber on the same port
//!   and VLANs, from its ISP's gateway address. Fragmentation Needed gives the core port's
//!   MTU less the label the headend pushes.
//! - From an ISP router (hand-off port, unlabelled): back to the router on the same port and
//!   VLAN, from the hand-off port's address; Fragmentation Needed gives the core port's MTU
//!   less the label.
//! - Labelled, swapped here (transit): an LSR that cannot route the source sends the error
//!   on along the LSP under the label the swap would have put (RFC 3032 section 2.3.2),
//!   from the receiving core port's address; the tailend pops it and hands it to the ISP,
//!   whose router routes it back to the subscriber like any packet.
//! - Labelled, popped toward an ISP (tailend): handed to the ISP router just as the pop
//!   would have, from the hand-off port's address. Why not push the ISP's downstream label
//!   straight back: the transit's errors reach the subscriber through the ISP router, so
//!   every error from inside the LSP takes that one way (the ISP sees, routes and may police
//!   all of them alike), and the source is an address on the ISP's own link.
//! - Labelled, popped toward a subscriber (headend, downstream): the source is behind the
//!   ISP, so the error rides the ISP's upstream label, from the ISP's gateway address.
//!
//! Labelled errors carry the received label stack in RFC 4950's extension object.

use std::net::Ipv4Addr;

use ispmux_dataplane::table::handoff::handoff_key;
use ispmux_dataplane::table::{IlmAction, SubscriberKey, Tables};
use ispmux_dataplane::wire::{mpls, skip_tags, EtherType, Ipv4Packet, MacAddr, MplsPacket, Tags};
use ispmux_dataplane::{PortConfig, PortRole};

use super::build::{build, IcmpError, Refusal, ERROR_TTL};

/// Why a frame was punted for ICMP, as [`crate::punt::classify`] tells from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// An IPv4 or label TTL expired here.
    TtlExpired,
    /// DF set and too big for the core port once labelled.
    TooBig,
}

/// The node as the answers see it.
#[derive(Clone, Copy)]
pub struct Site<'a> {
    /// The pipelines' ports, by configuration index, with their own addresses
    /// ([`PortConfig::address`], the one the fast path and the twins use too).
    pub ports: &'a [PortConfig],
    /// The tables (the slow path's master copy).
    pub tables: &'a Tables,
}

/// An ICMP error ready to inject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Configuration index of the port it leaves on.
    pub port: u16,
    /// The whole Ethernet frame.
    pub frame: Vec<u8>,
    /// The offending packet's source, to which the error goes (the rate limit's key).
    pub to: Ipv4Addr,
}

/// Label stack entries quoted and carried at most.
const MAX_LABELS: usize = 8;
/// Bytes of an Ethernet header without tags.
const ETH_LEN: usize = 14;

impl Site<'_> {
    fn port(&self, p: u16) -> Result<&PortConfig, Refusal> {
        self.ports.get(usize::from(p)).ok_or(Refusal::NoPath)
    }

    fn address(&self, p: u16) -> Result<Ipv4Addr, Refusal> {
        self.ports
            .get(usize::from(p))
            .and_then(|c| c.address.addr())
            .ok_or(Refusal::NoAddress)
    }

    /// The largest IPv4 packet that fits core port `p` behind one label.
    fn mtu_behind_label(&self, p: u16) -> Result<u16, Refusal> {
        Ok(self.port(p)?.mtu.saturating_sub(4))
    }
}

/// The ICMP error answering `frame` (as punted, received on port `rx_port`) for `why`,
/// with IPv4 identification `ident`; or why none is sent.
pub fn answer(
    site: &Site<'_>,
    rx_port: u16,
    frame: &[u8],
    why: Trigger,
    ident: u16,
) -> Result<Answer, Refusal> {
    let tags = skip_tags(frame).map_err(|_| Refusal::Malformed)?;
    let dst = MacAddr::from_bytes(frame).ok_or(Refusal::Malformed)?;
    if dst.is_multicast() {
        return Err(Refusal::GroupDestination);
    }
    let rx = site.port(rx_port)?;
    match (tags.ethertype, rx.role, why) {
        (EtherType::MPLS_UNICAST, PortRole::Core, Trigger::TtlExpired) => {
            labelled(site, rx_port, frame, &tags, ident)
        }
        (EtherType::IPV4, PortRole::Access | PortRole::Handoff, _) => {
            unlabelled(site, rx_port, rx, frame, &tags, why, ident)
        }
        (EtherType::IPV4 | EtherType::MPLS_UNICAST, _, _) => Err(Refusal::NoPath),
        _ => Err(Refusal::Malformed),
    }
}

/// From a subscriber or an ISP router: back where it came from.
fn unlabelled(
    site: &Site<'_>,
    rx_port: u16,
    rx: &PortConfig,
    frame: &[u8],
    tags: &Tags,
    why: Trigger,
    ident: u16,
) -> Result<Answer, Refusal> {
    let t = site.tables;
    let ip = frame.get(tags.payload_offset..).unwrap_or_default();
    let peer = MacAddr::from_bytes(frame.get(6..).unwrap_or_default()).ok_or(Refusal::Malformed)?;
    // The source address, and the core port whose MTU a too-big packet met.
    let (src, core_port) = if rx.role == PortRole::Access {
        let key = SubscriberKey {
            port: rx_port,
            outer_vid: tags.outer_vid,
            inner_vid: tags.inner_vid,
            mac: peer,
        }
        .pack()
        .map_err(|_| Refusal::NoPath)?;
        let sub = t.subscribers.get(&key).ok_or(Refusal::NoPath)?;
        let isp = t.isps.get(sub.isp()).ok_or(Refusal::NoPath)?;
        if isp.gateway.is_unspecified() {
            return Err(Refusal::NoAddress);
        }
        (isp.gateway, isp.upstream.map(|f| f.port))
    } else {
        if tags.inner_vid != 0 {
            return Err(Refusal::NoPath);
        }
        let key = handoff_key(rx_port, tags.outer_vid).ok_or(Refusal::NoPath)?;
        let isp = t.handoffs.get(&key).ok_or(Refusal::NoPath)?.isp();
        let entry = t.isps.get(isp).ok_or(Refusal::NoPath)?;
        (site.address(rx_port)?, entry.downstream.map(|f| f.port))
    };
    let err = match why {
        Trigger::TtlExpired => IcmpError::TimeExceeded,
        Trigger::TooBig => {
            let mtu = site.mtu_behind_label(core_port.ok_or(Refusal::NoPath)?)?;
            let p = Ipv4Packet::new_checked(ip).map_err(|_| Refusal::Malformed)?;
            if p.total_len() <= mtu || !p.dont_frag() {
                return Err(Refusal::Fits);
            }
            IcmpError::FragNeeded { mtu }
        }
    };
    // Reverse the link header: to the sender, from this port, under the same tags.
    let mut out = Vec::with_capacity(tags.payload_offset + 576);
    out.extend_from_slice(&peer.0);
    out.extend_from_slice(&rx.mac.0);
    out.extend_from_slice(
        frame
            .get(12..tags.payload_offset)
            .ok_or(Refusal::Malformed)?,
    );
    let to = build(ip, err, src, ident, None, &mut out)?;
    Ok(Answer {
        port: rx_port,
        frame: out,
        to,
    })
}

/// A next hop's MAC, or no path while it is unresolved (the zero MAC): an error is never
/// sent to a zero MAC, as no forwarded frame is.
fn resolved(mac: MacAddr) -> Result<MacAddr, Refusal> {
    if mac == MacAddr::ZERO {
        Err(Refusal::NoPath)
    } else {
        Ok(mac)
    }
}

/// A label TTL (or the IPv4 TTL under the label at a pop) expired: RFC 3032 section 2.3.2.
fn labelled(
    site: &Site<'_>,
    rx_port: u16,
    frame: &[u8],
    tags: &Tags,
    ident: u16,
) -> Result<Answer, Refusal> {
    let t = site.tables;
    let start = tags.payload_offset;
    let mut end = start;
    loop {
        let e = MplsPacket::new_checked(frame.get(end..).unwrap_or_default())
            .map_err(|_| Refusal::Malformed)?;
        end += 4;
        if e.bottom_of_stack() {
            break;
        }
        if (end - start) / 4 >= MAX_LABELS {
            return Err(Refusal::Malformed);
        }
    }
    let stack = &frame[start..end];
    let ip = &frame[end..];
    let top = MplsPacket::new_checked(stack).map_err(|_| Refusal::Malformed)?;
    let entry = t.ilm.get(&top.label()).ok_or(Refusal::NoPath)?;
    let mut out = Vec::with_capacity(ETH_LEN + stack.len() + 576);
    let (port, src) = match entry.action() {
        IlmAction::Swap {
            out_label,
            port,
            next_hop,
        } => {
            // The stack as the swap would have sent it, with a fresh TTL on top.
            out.extend_from_slice(&resolved(next_hop)?.0);
            out.extend_from_slice(&site.port(port)?.mac.0);
            out.extend_from_slice(&EtherType::MPLS_UNICAST.0.to_be_bytes());
            let e = mpls::encode(out_label, top.tc(), top.bottom_of_stack(), ERROR_TTL);
            out.extend_from_slice(&e.to_be_bytes());
            out.extend_from_slice(&stack[4..]);
            (port, site.address(rx_port)?)
        }
        IlmAction::PopHandoff {
            port,
            vid,
            router_mac,
            ..
        } => {
            out.extend_from_slice(&resolved(router_mac)?.0);
            out.extend_from_slice(&site.port(port)?.mac.0);
            if vid != 0 {
                out.extend_from_slice(&EtherType::VLAN.0.to_be_bytes());
                out.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
            }
            out.extend_from_slice(&EtherType::IPV4.0.to_be_bytes());
            (port, site.address(port)?)
        }
        IlmAction::PopDeliver { isp } => {
            let entry = t.isps.get(isp).ok_or(Refusal::NoPath)?;
            let fec = entry.upstream.ok_or(Refusal::NoPath)?;
            if entry.gateway.is_unspecified() {
                return Err(Refusal::NoAddress);
            }
            out.extend_from_slice(&resolved(fec.next_hop)?.0);
            out.extend_from_slice(&site.port(fec.port)?.mac.0);
            out.extend_from_slice(&EtherType::MPLS_UNICAST.0.to_be_bytes());
            let e = mpls::encode(fec.label, fec.tc, true, ERROR_TTL);
            out.extend_from_slice(&e.to_be_bytes());
            (fec.port, entry.gateway)
        }
    };
    let to = build(
        ip,
        IcmpError::TimeExceeded,
        src,
        ident,
        Some(stack),
        &mut out,
    )?;
    Ok(Answer {
        port,
        frame: out,
        to,
    })
}
