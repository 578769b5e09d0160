//! Access ports: the headend's upstream pipeline for frames from subscribers.
//!
//! DHCP → slow path (from anyone: that is how subscribers log on). Otherwise the sender must
//! be in the subscriber table for this port and VLANs (else `UnknownMac`). ARP → proxy ARP.
//! IPv4 → must be bound (`NotBound`), from its bound address (`SourceGuard`); to the ISP's
//! gateway address → slow path; else the ISP's upstream label is pushed (S=1, TTL = IPv4 TTL
//! − 1, TC from the FEC), the Ethernet header rewritten to the next hop, and the frame leaves
//! on the FEC's core port. A TTL that expires here, or a DF packet that does not fit the
//! core port with the label, → slow path, which answers with ICMP ([`super::Cx::icmp_punt`]).

pub mod arp;

use super::classify::{classify_access, header_checksum_ok, parse_l2, AccessClass};
use super::link::{push_label, LinkHeader};
use super::{Cx, BURST};
use crate::counters::DropReason;
use crate::frame::Frame;
use crate::pipeline::Verdict;
use crate::table::cuckoo::Candidates;
use crate::table::isp::IspEntry;
use crate::table::subscriber::{Attachment, SubscriberSlot};
use crate::table::{PackedKey, SubscriberKey, SubscriberState, Tables};
use crate::wire::udp::{DHCP_CLIENT_PORT, DHCP_SERVER_PORT};
use crate::wire::{ipv4, EtherType, MacAddr};
use arp::proxy_arp;

/// The subscriber key of a frame, from its link header alone; `None` when the link header
/// is bad or the attachment cannot be keyed (`decide` says which).
///
/// Only the key, its candidate buckets and the bytes it was read from are kept between the
/// look-ahead and the decision (see [`Prepared`]), in flat arrays: the decision parses the
/// frame again from L1 rather than reading back a wide per-frame record, whose small stores
/// would stall the wide loads that read it back.
#[inline(always)]
pub(super) fn subscriber_key(rx_port: u16, d: &[u8]) -> Option<PackedKey> {
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

fn is_group(dst: u32) -> bool {
    // 224.0.0.0/4 multicast and the limited broadcast address.
    dst >> 28 == 0xe || dst == u32::MAX
}

/// Pass 2: classifies the frame, then decides with its subscriber entry (`sub`, looked up
/// in the buckets pass 1 prefetched) and rewrites it.
#[inline(always)]
pub(super) fn decide<F: Frame>(
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
        Ok(AccessClass::Dhcp) => return dhcp(cx, l2.src, sub),
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
        // TTL expiry, or DF and too big for the core port with the label: the slow path
        // answers the subscriber with ICMP from its ISP's gateway address.
        Err(r) => cx.icmp_punt(r, f.data(), Some(l2.l3)),
    }
}

/// DHCP goes to the logon proxy when it comes from a subscriber the tables hold (bound, or
/// known at this attachment) or a registered MAC, or when the registered set is not
/// complete; from any other MAC it is refused there anyway, so only the worker's allowance
/// of such punts goes (for the refusal log) and the rest is dropped here.
#[inline(always)]
fn dhcp(cx: &mut Cx<'_>, src: MacAddr, sub: Option<&SubscriberSlot>) -> Verdict {
    let filter = cx.tables.dhcp_filter;
    if sub.is_some() || !filter.complete || cx.tables.registered.may_contain(src) {
        return Verdict::Punt;
    }
    unregistered(cx, filter.punts_per_s)
}

#[cold]
#[inline(never)]
fn unregistered(cx: &mut Cx<'_>, per_s: u32) -> Verdict {
    if cx.unregistered.take(per_s) {
        cx.counters.worker.punts_unregistered += 1;
        Verdict::Punt
    } else {
        Verdict::Drop(DropReason::Unregistered)
    }
}

/// What the fast push needs of one ISP, worked out once from its entry, its upstream FEC
/// and the core port that FEC leaves on, rather than for every frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PushPlan {
    /// The frame's first 16 bytes: next hop, port MAC, EtherType 0x8847 and the label
    /// stack entry's first two bytes (the label's high 16 bits).
    head: [u8; 16],
    /// The entry's third byte: the label's low 4 bits, the TC and S = 1.
    lse2: u8,
    /// The largest IPv4 total length that fits the port's MTU behind the label; 0 when the
    /// ISP has no upstream FEC, its port is not configured or its next hop is not resolved
    /// (MAC zero), so no frame fits and the general path says why: the fast push pays
    /// nothing for the next hop's state.
    max_total_len: u16,
    /// The core port.
    port: u16,
    /// The ISP's gateway address (packets to it are punted).
    gateway: u32,
}

impl PushPlan {
    /// The plan of an ISP with this entry; `ports` are the node's.
    pub fn new(isp: &IspEntry, ports: &[super::PortConfig]) -> Self {
        let gateway = u32::from(isp.gateway);
        // Without a FEC and its port no frame fits, and the general path says why.
        let none = Self {
            gateway,
            ..Self::default()
        };
        let Some((fec, out)) = isp
            .upstream
            .filter(|fec| fec.next_hop != MacAddr::ZERO)
            .and_then(|fec| ports.get(usize::from(fec.port)).map(|p| (fec, p)))
        else {
            return none;
        };
        // The header the general path writes (`push_label`), its TTL byte left for the frame.
        let link = LinkHeader::new(fec.next_hop, out.mac)
            .ethertype(EtherType::MPLS_UNICAST)
            .label(fec.label, fec.tc, true, 0);
        let (head, lse2) = match link.bytes().split_first_chunk::<16>() {
            Some((head, [lse2, _ttl])) => (*head, *lse2),
            _ => return none,
        };
        Self {
            head,
            lse2,
            max_total_len: out.mtu.saturating_sub(4),
            port: fec.port,
            gateway,
        }
    }
}

/// Works out the push plan of every ISP in `tables` into `out` (one per ISP id; ids beyond
/// `out` get none and take the general path).
pub fn plan_pushes(tables: &Tables, ports: &[super::PortConfig], out: &mut [PushPlan]) {
    for (plan, isp) in out.iter_mut().zip(tables.isps.entries()) {
        *plan = PushPlan::new(isp, ports);
    }
}

/// The usual upstream frame, decided and rewritten in one pass over fixed offsets: untagged
/// between unicast addresses, IPv4 without options and with a good header checksum, not
/// DHCP, from a bound subscriber at its bound address, to a unicast address other than its
/// ISP's gateway, fitting the core port's MTU with the label. `None` for anything else, with
/// the frame untouched: [`decide`] then reads it again through the general parsers, which
/// give every drop its reason. Returns the core port the frame leaves on, counted.
#[inline(always)]
pub(super) fn fast_push<F: Frame>(cx: &mut Cx<'_>, f: &mut F, s: &SubscriberSlot) -> Option<u16> {
    let d = f.data();
    // Ethernet 14, IPv4 20, and the UDP ports behind them: any frame of the minimum
    // Ethernet size has them.
    let h: &[u8; 38] = d.first_chunk()?;
    if (h[0] | h[6]) & 1 != 0 || h[12..15] != [0x08, 0x00, 0x45] {
        return None;
    }
    let total_len = u16::from_be_bytes([h[16], h[17]]);
    if total_len < 20 || usize::from(total_len) + 14 > d.len() {
        return None;
    }
    if !header_checksum_ok(h[14..].first_chunk()?) {
        return None;
    }
    let (ttl, protocol) = (h[22], h[23]);
    let src = u32::from_be_bytes([h[26], h[27], h[28], h[29]]);
    let dst = u32::from_be_bytes([h[30], h[31], h[32], h[33]]);
    let dhcp_port = matches!(
        u16::from_be_bytes([h[36], h[37]]),
        DHCP_SERVER_PORT | DHCP_CLIENT_PORT
    );
    if protocol == ipv4::protocol::UDP && dhcp_port {
        // Possibly DHCP (the general path also looks at fragments and the length).
        return None;
    }
    if ttl <= 1 || src != s.ipv4_bits() || s.state() != SubscriberState::Bound {
        return None;
    }
    let isp_id = s.isp();
    let plan = *cx.pushes.get(usize::from(isp_id))?;
    if total_len > plan.max_total_len || dst == plan.gateway || is_group(dst) {
        return None;
    }
    // A frame of at least 38 bytes grown by 4 has its first 18: the chunk always exists
    // once `prepend` succeeded, and `prepend` changes nothing when it fails.
    let hdr: &mut [u8; 18] = f.prepend(4)?.first_chunk_mut()?;
    hdr[..16].copy_from_slice(&plan.head);
    hdr[16] = plan.lse2;
    hdr[17] = ttl - 1;
    if let Some(c) = cx.counters.isp_mut(isp_id) {
        c.headend_up.count(usize::from(total_len));
    }
    Some(plan.port)
}

/// The bytes a subscriber key is read from (source MAC and up to two VLAN tags), as one
/// value; `None` for a frame too short to hold them, which is keyed afresh.
#[inline(always)]
pub(super) fn key_bytes(d: &[u8]) -> Option<u128> {
    d.get(6..22)
        .and_then(|b| b.try_into().ok())
        .map(u128::from_ne_bytes)
}

/// The key of an untagged frame from a unicast source, read from its key bytes alone
/// (what [`subscriber_key`] gives such a frame, without parsing it); `None` for any other.
#[inline(always)]
pub(super) fn untagged_key(attach: Attachment, bytes: u128) -> Option<PackedKey> {
    let b = bytes.to_ne_bytes();
    if b[0] & 1 != 0 || EtherType(u16::from_be_bytes([b[6], b[7]])).is_vlan() {
        return None;
    }
    Some(PackedKey {
        mac: u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]]),
        attach,
    })
}

/// The verdict of a frame whose subscriber entry is `sub`: the fast push when it takes the
/// frame, else the general path.
#[inline(always)]
fn verdict<F: Frame>(
    cx: &mut Cx<'_>,
    rx_port: u16,
    f: &mut F,
    sub: Option<&SubscriberSlot>,
) -> Verdict {
    match sub.and_then(|s| fast_push(cx, f, s)) {
        Some(port) => Verdict::Forward(port),
        None => decide(cx, rx_port, f, sub),
    }
}

/// The subscriber keys and candidate buckets of a burst, computed once when the burst's
/// buckets are prefetched and read back when it is processed (one poll later in the
/// worker), so a frame's key is hashed once.
///
/// A key is a function of the receive port and the bytes `key_bytes` reads, and each
/// entry keeps those bytes: an entry is used only for a frame that still has them, whatever
/// buffer it is in (mbufs are recycled), so a burst processed without a look-ahead, in
/// another order or rewritten since, is keyed afresh rather than wrongly.
pub struct Prepared {
    port: u16,
    len: usize,
    /// Bit i: frame i has a key (its link header could be keyed).
    keyed: u64,
    bytes: [u128; BURST],
    keys: [PackedKey; BURST],
    cands: [Candidates; BURST],
}

impl Default for Prepared {
    fn default() -> Self {
        Self {
            port: u16::MAX,
            len: 0,
            keyed: 0,
            bytes: [0; BURST],
            keys: [PackedKey::default(); BURST],
            cands: [Candidates::default(); BURST],
        }
    }
}

impl Prepared {
    /// Keys the first [`BURST`] frames received on `rx_port` and prefetches their buckets.
    #[inline(always)]
    fn fill<F: Frame>(&mut self, tables: &Tables, rx_port: u16, frames: &[F]) {
        self.port = rx_port;
        self.len = frames.len().min(BURST);
        self.keyed = 0;
        let untagged = Attachment::new(rx_port, 0, 0);
        for (i, f) in frames.iter().take(BURST).enumerate() {
            let d = f.data();
            let Some(bytes) = key_bytes(d) else {
                continue;
            };
            let key = untagged
                .and_then(|a| untagged_key(a, bytes))
                .or_else(|| subscriber_key(rx_port, d));
            if let Some(key) = key {
                self.bytes[i] = bytes;
                self.keys[i] = key;
                self.cands[i] = tables.subscribers.prepare(&key);
                self.keyed |= 1 << i;
                if is_untagged_dhcp(d) {
                    // Its decision may read the registered filter (a logon, or a storm).
                    tables.registered.prefetch(MacAddr::from_u64(key.mac));
                }
            }
        }
    }

    /// True when this may hold the keys of `frames`, received on `rx_port` (judged by the
    /// first frame; [`Prepared::key_of`] checks each).
    #[inline(always)]
    fn holds<F: Frame>(&self, rx_port: u16, frames: &[F]) -> bool {
        self.port == rx_port
            && self.len > 0
            && frames
                .first()
                .is_some_and(|f| self.kept(0, f.data()).is_some())
    }

    /// The kept key and candidates of frame `i` (bytes `d`), when this keyed the frame.
    #[inline(always)]
    fn kept(&self, i: usize, d: &[u8]) -> Option<(PackedKey, Candidates)> {
        if i >= self.len || self.keyed >> i & 1 == 0 {
            return None;
        }
        let bytes = key_bytes(d)?;
        (self.bytes.get(i) == Some(&bytes)).then(|| (self.keys[i], self.cands[i]))
    }

    /// The key and candidates of frame `i` (bytes `d`, received on `rx_port`): kept when
    /// this keyed the frame, else computed; `None` when it cannot be keyed.
    #[inline(always)]
    fn key_of(
        &self,
        i: usize,
        tables: &Tables,
        rx_port: u16,
        d: &[u8],
    ) -> Option<(PackedKey, Candidates)> {
        if let Some(kc) = self.kept(i, d) {
            return Some(kc);
        }
        subscriber_key(rx_port, d).map(|k| (k, tables.subscribers.candidates(&k)))
    }
}

/// An untagged IPv4 UDP datagram without options to the DHCP server port: what a DHCP
/// client sends, judged from bytes the look-ahead has in cache anyway.
#[inline(always)]
fn is_untagged_dhcp(d: &[u8]) -> bool {
    d.get(12..14) == Some(&[0x08, 0x00])
        && d.get(14) == Some(&0x45)
        && d.get(23) == Some(&ipv4::protocol::UDP)
        && d.get(36..38) == Some(&DHCP_SERVER_PORT.to_be_bytes())
}

/// The look-ahead state of the headend: the keys of the burst whose buckets were prefetched
/// last and of the one before it (the worker holds one burst while receiving the next),
/// plus scratch for bursts processed without a look-ahead.
#[derive(Default)]
pub struct LookAhead {
    prepared: [Prepared; 2],
    next: usize,
    scratch: Prepared,
}

impl LookAhead {
    /// Prefetches the subscriber buckets of a burst that will be processed later, keeping
    /// its keys.
    pub fn prefetch<F: Frame>(&mut self, tables: &Tables, rx_port: u16, frames: &[F]) {
        self.prepared[self.next].fill(tables, rx_port, frames);
        self.next ^= 1;
        // Frames past the first BURST are keyed again when processed; their buckets are
        // still worth loading now.
        for f in frames.iter().skip(BURST) {
            if let Some(k) = subscriber_key(rx_port, f.data()) {
                tables.subscribers.prepare(&k);
            }
        }
    }
}

/// Runs the headend upstream pipeline over a burst received on access port `rx_port`.
/// Returns `true` when every verdict is a forward (already counted), so the caller need not
/// count verdicts.
pub fn upstream<F: Frame>(
    cx: &mut Cx<'_>,
    ahead: &mut LookAhead,
    rx_port: u16,
    frames: &mut [F],
    verdicts: &mut [Verdict],
) -> bool {
    let mut all_forwarded = true;
    for (chunk, (fs, vs)) in frames
        .chunks_mut(BURST)
        .zip(verdicts.chunks_mut(BURST))
        .enumerate()
    {
        let found = if chunk == 0 {
            ahead.prepared.iter().position(|p| p.holds(rx_port, fs))
        } else {
            None
        };
        let p = match found {
            Some(i) => &mut ahead.prepared[i],
            None => {
                ahead.scratch.fill(cx.tables, rx_port, fs);
                &mut ahead.scratch
            }
        };
        // The usual frame, kept key found at home and taken by the fast push, is decided
        // here; every other goes to `finish`, out of line, so this loop stays small enough
        // for its state to live in registers. Keys not at home wait there for their second
        // bucket, loaded meanwhile, so those misses overlap instead of stalling one after
        // another.
        let (mut second, mut general) = (0u64, 0u64);
        for (i, (f, v)) in fs.iter_mut().zip(vs.iter_mut()).enumerate() {
            let Some((k, c)) = p.kept(i, f.data()) else {
                general |= 1 << i;
                continue;
            };
            let Some(s) = cx.tables.subscribers.get_first(&k, c) else {
                cx.tables.subscribers.prefetch_second(c);
                second |= 1 << i;
                continue;
            };
            match fast_push(cx, f, s) {
                Some(port) => *v = Verdict::Forward(port),
                None => general |= 1 << i,
            }
        }
        if second | general != 0 {
            all_forwarded &= finish(cx, p, rx_port, fs, vs, second, general);
        }
        // Used up: a later burst in recycled buffers then does not look it up first (a stale
        // entry could only cost a key computed afresh: each is checked against its frame).
        p.len = 0;
    }
    all_forwarded
}

/// Decides the frames `upstream` left: those in `second` (kept key, not in its home bucket)
/// by both buckets and the fast push or the general path, those in `general` (no kept key,
/// or declined by the fast push, which left them untouched) by the general path. Returns
/// `true` when all of them are forwarded.
#[inline(never)]
fn finish<F: Frame>(
    cx: &mut Cx<'_>,
    p: &Prepared,
    rx_port: u16,
    fs: &mut [F],
    vs: &mut [Verdict],
    second: u64,
    general: u64,
) -> bool {
    let mut all_forwarded = true;
    let mut todo = second | general;
    while todo != 0 {
        let i = todo.trailing_zeros() as usize;
        todo &= todo - 1;
        let (Some(f), Some(v)) = (fs.get_mut(i), vs.get_mut(i)) else {
            continue;
        };
        let sub = p
            .key_of(i, cx.tables, rx_port, f.data())
            .and_then(|(k, c)| cx.tables.subscribers.get_prepared(&k, c));
        *v = if second >> i & 1 == 1 {
            verdict(cx, rx_port, f, sub)
        } else {
            decide(cx, rx_port, f, sub)
        };
        all_forwarded &= matches!(*v, Verdict::Forward(_));
    }
    all_forwarded
}
