//! Per-worker counters: plain integers written by one worker, summed by the control side.
//!
//! No atomics on the hot path: each worker owns its [`Counters`] and increments plain `u64`s.
//! The worker loop publishes a copy now and then ([`Counters::copy_from`] into a preallocated
//! snapshot, no allocation); the control side adds the snapshots of all workers with
//! [`Counters::sum`]. Per-ISP bytes are IPv4 bytes (the IPv4 total length), so the figures at
//! headend and tailend of one ISP are comparable whatever the link headers (claims 15-17).

use crate::table::IspId;

/// Why a frame was dropped. The discriminant indexes the per-worker drop counter array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// The frame is shorter than its headers claim.
    Truncated = 0,
    /// No output port for the frame (unknown or misconfigured port).
    NoRoute = 1,
    /// The transmit queue did not accept the frame (counted by the worker loop).
    TxFull = 2,
    /// The punt ring to the slow path was full (counted by the worker loop).
    PuntRingFull = 3,
    /// Source MAC not in the subscriber table for this port and VLAN.
    UnknownMac = 4,
    /// A registered subscriber without a binding sent IP.
    NotBound = 5,
    /// IPv4 source address differs from the subscriber's binding.
    SourceGuard = 6,
    /// IPv4 or MPLS TTL would reach zero.
    TtlExpired = 7,
    /// Top label not in the ILM.
    UnknownLabel = 8,
    /// Neither IPv4 nor ARP where IPv4 is expected (IPv6, LLDP, …).
    NotIpv4 = 9,
    /// Larger than the output port's MTU (the fast path does not fragment).
    Oversized = 10,
    /// A header violates its RFC: bad IPv4 version or checksum, group source MAC, > 2 tags.
    Malformed = 11,
    /// The subscriber's ISP has no FEC in this direction.
    NoFec = 12,
    /// Downstream destination is no bound subscriber of that ISP.
    UnknownDestination = 13,
    /// Frame on a hand-off port with a VLAN not attached to any ISP.
    UnknownHandoff = 14,
    /// A pop label without bottom of stack: nested stacks are not handed off.
    LabelStack = 15,
    /// Non-MPLS frame on a core port.
    NotMpls = 16,
    /// IPv4 to a group or broadcast address from a subscriber (other than DHCP).
    NotUnicast = 17,
    /// The frame has no headroom for the headers to push.
    NoHeadroom = 18,
}

impl DropReason {
    /// Every reason, in discriminant order.
    pub const ALL: [DropReason; 19] = [
        DropReason::Truncated,
        DropReason::NoRoute,
        DropReason::TxFull,
        DropReason::PuntRingFull,
        DropReason::UnknownMac,
        DropReason::NotBound,
        DropReason::SourceGuard,
        DropReason::TtlExpired,
        DropReason::UnknownLabel,
        DropReason::NotIpv4,
        DropReason::Oversized,
        DropReason::Malformed,
        DropReason::NoFec,
        DropReason::UnknownDestination,
        DropReason::UnknownHandoff,
        DropReason::LabelStack,
        DropReason::NotMpls,
        DropReason::NotUnicast,
        DropReason::NoHeadroom,
    ];
    /// Number of reasons (length of a drop counter array).
    pub const COUNT: usize = Self::ALL.len();

    /// Name as shown in counters output.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::NoRoute => "no_route",
            DropReason::TxFull => "tx_full",
            DropReason::PuntRingFull => "punt_ring_full",
            DropReason::UnknownMac => "unknown_mac",
            DropReason::NotBound => "not_bound",
            DropReason::SourceGuard => "source_guard",
            DropReason::TtlExpired => "ttl_expired",
            DropReason::UnknownLabel => "unknown_label",
            DropReason::NotIpv4 => "not_ipv4",
            DropReason::Oversized => "oversized",
            DropReason::Malformed => "malformed",
            DropReason::NoFec => "no_fec",
            DropReason::UnknownDestination => "unknown_destination",
            DropReason::UnknownHandoff => "unknown_handoff",
            DropReason::LabelStack => "label_stack",
            DropReason::NotMpls => "not_mpls",
            DropReason::NotUnicast => "not_unicast",
            DropReason::NoHeadroom => "no_headroom",
        }
    }
}

/// A packet and byte count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PacketBytes {
    /// Packets.
    pub packets: u64,
    /// Bytes (IPv4 total length for per-ISP counters, frame length for transit).
    pub bytes: u64,
}

impl PacketBytes {
    /// Counts one packet of `bytes`.
    #[inline(always)]
    pub fn count(&mut self, bytes: usize) {
        self.packets += 1;
        self.bytes += bytes as u64;
    }

    fn add(&mut self, o: &PacketBytes) {
        self.packets += o.packets;
        self.bytes += o.bytes;
    }
}

/// One ISP's traffic at this node, one cache line so ISPs do not share lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct IspCounters {
    /// Headend, subscriber → ISP (label pushed): claim 17.
    pub headend_up: PacketBytes,
    /// Headend, ISP → subscriber (delivered).
    pub headend_down: PacketBytes,
    /// Tailend, handed to the ISP: claim 16.
    pub tailend_up: PacketBytes,
    /// Tailend, from the ISP (label pushed).
    pub tailend_down: PacketBytes,
}

impl IspCounters {
    fn add(&mut self, o: &IspCounters) {
        self.headend_up.add(&o.headend_up);
        self.headend_down.add(&o.headend_down);
        self.tailend_up.add(&o.tailend_up);
        self.tailend_down.add(&o.tailend_down);
    }
}

/// One worker's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counters {
    isps: Box<[IspCounters]>,
    drops: [u64; DropReason::COUNT],
    /// Frames handed to the slow path.
    pub punts: u64,
    /// ARP requests answered in the fast path.
    pub arp_replies: u64,
    /// Labels swapped (transit), frame bytes.
    pub transit: PacketBytes,
    /// Table writes replayed from the slow path's master copy.
    pub updates_applied: u64,
    /// Table writes that did not fit this worker's layout (configuration error).
    pub updates_refused: u64,
}

impl Counters {
    /// Zeroed counters for ISP ids `0..max_isps`; the only allocation they make.
    pub fn new(max_isps: usize) -> Self {
        Self {
            isps: vec![IspCounters::default(); max_isps].into_boxed_slice(),
            drops: [0; DropReason::COUNT],
            punts: 0,
            arp_replies: 0,
            transit: PacketBytes::default(),
            updates_applied: 0,
            updates_refused: 0,
        }
    }

    /// Counts one drop.
    #[inline(always)]
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }

    /// Adds `n` drops under `r` (the worker loop's own reasons, published totals).
    pub fn add_drops(&mut self, r: DropReason, n: u64) {
        self.drops[r as usize] += n;
    }

    /// Drops counted for `r`.
    pub fn drops(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }

    /// Every drop counter with its reason.
    pub fn drops_by_reason(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|&r| (r, self.drops[r as usize]))
    }

    /// The counters of `isp` (zero for an id out of range).
    pub fn isp(&self, isp: IspId) -> IspCounters {
        self.isps.get(usize::from(isp)).copied().unwrap_or_default()
    }

    /// Mutable counters of `isp`; `None` out of range (never the case for table ISPs when
    /// both are sized from the same limits).
    #[inline(always)]
    pub fn isp_mut(&mut self, isp: IspId) -> Option<&mut IspCounters> {
        self.isps.get_mut(usize::from(isp))
    }

    /// Number of ISP ids counted.
    pub fn isp_count(&self) -> usize {
        self.isps.len()
    }

    /// Overwrites `self` with `src` without allocating (for publishing snapshots); ISP
    /// arrays of different length copy their common prefix.
    pub fn copy_from(&mut self, src: &Counters) {
        let n = self.isps.len().min(src.isps.len());
        self.isps[..n].copy_from_slice(&src.isps[..n]);
        self.drops = src.drops;
        self.punts = src.punts;
        self.arp_replies = src.arp_replies;
        self.transit = src.transit;
        self.updates_applied = src.updates_applied;
        self.updates_refused = src.updates_refused;
    }

    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &Counters) {
        for (a, b) in self.isps.iter_mut().zip(o.isps.iter()) {
            a.add(b);
        }
        for (a, b) in self.drops.iter_mut().zip(o.drops.iter()) {
            *a += b;
        }
        self.punts += o.punts;
        self.arp_replies += o.arp_replies;
        self.transit.add(&o.transit);
        self.updates_applied += o.updates_applied;
        self.updates_refused += o.updates_refused;
    }

    /// The sum of several workers' snapshots (control side; allocates).
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a Counters>) -> Counters {
        let all: Vec<&Counters> = all.into_iter().collect();
        let n = all.iter().map(|c| c.isps.len()).max().unwrap_or(0);
        let mut total = Counters::new(n);
        for c in all {
            total.add(c);
        }
        total
    }
}

/// One ISP's line of a [`CountersReport`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IspReport {
    /// ISP id.
    pub id: IspId,
    /// ISP name from configuration (may be empty).
    pub name: String,
    /// See [`IspCounters::headend_up`].
    pub headend_up: PacketBytes,
    /// See [`IspCounters::headend_down`].
    pub headend_down: PacketBytes,
    /// See [`IspCounters::tailend_up`].
    pub tailend_up: PacketBytes,
    /// See [`IspCounters::tailend_down`].
    pub tailend_down: PacketBytes,
}

/// Summed counters in a form for the control socket (serde) and the exit summary
/// (`Display`, one `key=value` line per ISP and one for the rest).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CountersReport {
    /// ISPs that are named or saw traffic, by id.
    pub isps: Vec<IspReport>,
    /// Every drop reason by name, zeros included, so the schema is fixed.
    pub drops: std::collections::BTreeMap<String, u64>,
    /// Frames handed to the slow path.
    pub punts: u64,
    /// ARP requests answered in the fast path.
    pub arp_replies: u64,
    /// Labels swapped.
    pub transit: PacketBytes,
    /// Table writes replayed from the slow path's master copy.
    pub updates_applied: u64,
    /// Table writes that did not fit this worker's layout (configuration error).
    pub updates_refused: u64,
}

impl Counters {
    /// The report of these counters; `names` gives ISP names by id.
    pub fn report(&self, names: &[(IspId, &str)]) -> CountersReport {
        let isps = self
            .isps
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let id = IspId::try_from(i).ok()?;
                let name = names
                    .iter()
                    .find(|(n, _)| *n == id)
                    .map(|(_, s)| s.to_string());
                (name.is_some() || *c != IspCounters::default()).then(|| IspReport {
                    id,
                    name: name.unwrap_or_default(),
                    headend_up: c.headend_up,
                    headend_down: c.headend_down,
                    tailend_up: c.tailend_up,
                    tailend_down: c.tailend_down,
                })
            })
            .collect();
        CountersReport {
            isps,
            drops: self
                .drops_by_reason()
                .map(|(r, n)| (r.name().to_string(), n))
                .collect(),
            punts: self.punts,
            arp_replies: self.arp_replies,
            transit: self.transit,
            updates_applied: self.updates_applied,
            updates_refused: self.updates_refused,
        }
    }
}

impl core::fmt::Display for CountersReport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for i in &self.isps {
            writeln!(
                f,
                "isp id={} name={} headend_up_packets={} headend_up_bytes={} headend_down_packets={} headend_down_bytes={} tailend_up_packets={} tailend_up_bytes={} tailend_down_packets={} tailend_down_bytes={}",
                i.id,
                if i.name.is_empty() { "-" } else { &i.name },
                i.headend_up.packets,
                i.headend_up.bytes,
                i.headend_down.packets,
                i.headend_down.bytes,
                i.tailend_up.packets,
                i.tailend_up.bytes,
                i.tailend_down.packets,
                i.tailend_down.bytes,
            )?;
        }
        write!(
            f,
            "node punts={} arp_replies={} transit_packets={} transit_bytes={} updates_applied={} updates_refused={}",
            self.punts, self.arp_replies, self.transit.packets, self.transit.bytes, self.updates_applied, self.updates_refused
        )?;
        for (name, n) in &self.drops {
            write!(f, " drop_{name}={n}")?;
        }
        writeln!(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_discriminants_index_all() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }

    #[test]
    fn sum_adds_workers() {
        let mut a = Counters::new(2);
        let mut b = Counters::new(3);
        a.drop(DropReason::SourceGuard);
        b.drop(DropReason::SourceGuard);
        b.drop(DropReason::TtlExpired);
        a.isp_mut(1).expect("isp").headend_up.count(100);
        b.isp_mut(1).expect("isp").headend_up.count(50);
        b.isp_mut(2).expect("isp").tailend_up.count(10);
        a.punts = 2;
        let s = Counters::sum([&a, &b]);
        assert_eq!(s.drops(DropReason::SourceGuard), 2);
        assert_eq!(s.drops(DropReason::TtlExpired), 1);
        assert_eq!(
            s.isp(1).headend_up,
            PacketBytes {
                packets: 2,
                bytes: 150
            }
        );
        assert_eq!(s.isp(2).tailend_up.packets, 1);
        assert_eq!(s.isp(7), IspCounters::default());
        assert_eq!(s.punts, 2);
        let mut snap = Counters::new(3);
        snap.copy_from(&b);
        assert_eq!(snap, b);
        assert_eq!(core::mem::size_of::<IspCounters>(), 64);
    }

    #[test]
    fn report_lists_named_and_active_isps_and_every_drop() {
        let mut c = Counters::new(4);
        c.isp_mut(3).expect("isp").tailend_up.count(40);
        c.drop(DropReason::UnknownLabel);
        let r = c.report(&[(1, "red")]);
        let ids: Vec<_> = r.isps.iter().map(|i| (i.id, i.name.as_str())).collect();
        assert_eq!(ids, [(1, "red"), (3, "")]);
        assert_eq!(r.drops.len(), DropReason::COUNT);
        assert_eq!(r.drops["unknown_label"], 1);
        let text = r.to_string();
        assert!(
            text.contains("isp id=3 name=- headend_up_packets=0"),
            "{text}"
        );
        assert!(
            text.contains("tailend_up_packets=1 tailend_up_bytes=40"),
            "{text}"
        );
        assert!(text.contains(" drop_unknown_label=1"), "{text}");
        assert_eq!(text.lines().count(), 3);
    }
}
