//! Per-worker counters: one block of plain integers per worker, declared once.
//!
//! No atomics on the hot path: each worker owns its [`Counters`] and increments plain `u64`s
//! (the worker loop its own, the node its own: both are this type). The worker loop
//! publishes them now and then into a [`crate::shared::SharedCounters`] with relaxed stores,
//! and the control side adds all workers up with [`crate::shared::sum`]. Per-ISP bytes are
//! IPv4 bytes (the IPv4 total length), so the figures at headend and tailend of one ISP are
//! comparable whatever the link headers (claims 15-17).
//!
//! Each counter is declared once, in a `counter_block!` or in `drop_reasons!`: the macro
//! derives the struct, its name table and the word order that publishing and summing use,
//! so that a counter added here shows up everywhere without another list to keep in step.

use crate::table::IspId;

/// Declares [`DropReason`] once: each variant with its doc and its name in counters output.
macro_rules! drop_reasons {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// Why a frame was dropped. The discriminant indexes the per-worker drop counter
        /// array.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $($(#[$doc])* $variant,)*
        }

        impl DropReason {
            /// Number of reasons (length of a drop counter array).
            pub const COUNT: usize = [$(DropReason::$variant),*].len();
            /// Every reason, in discriminant order.
            pub const ALL: [DropReason; Self::COUNT] = [$(DropReason::$variant),*];

            /// Name as shown in counters output.
            pub fn name(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)*
                }
            }
        }
    };
}

drop_reasons! {
    /// The frame is shorter than its headers claim.
    Truncated => "truncated",
    /// No output port for the frame (unknown or misconfigured port).
    NoRoute => "no_route",
    /// The transmit queue did not accept the frame (counted by the worker loop).
    TxFull => "tx_full",
    /// The punt ring to the slow path was full (counted by the worker loop).
    PuntRingFull => "punt_ring_full",
    /// Source MAC not in the subscriber table for this port and VLAN.
    UnknownMac => "unknown_mac",
    /// A registered subscriber without a binding sent IP.
    NotBound => "not_bound",
    /// IPv4 source address differs from the subscriber's binding.
    SourceGuard => "source_guard",
    /// IPv4 or MPLS TTL would reach zero.
    TtlExpired => "ttl_expired",
    /// Top label not in the ILM.
    UnknownLabel => "unknown_label",
    /// Neither IPv4 nor ARP where IPv4 is expected (IPv6, LLDP, …).
    NotIpv4 => "not_ipv4",
    /// Larger than the output port's MTU (the fast path does not fragment).
    Oversized => "oversized",
    /// A header violates its RFC: bad IPv4 version or checksum, group source MAC, > 2 tags.
    Malformed => "malformed",
    /// The subscriber's ISP has no FEC in this direction.
    NoFec => "no_fec",
    /// Downstream destination is no bound subscriber of that ISP.
    UnknownDestination => "unknown_destination",
    /// Frame on a hand-off port with a VLAN not attached to any ISP.
    UnknownHandoff => "unknown_handoff",
    /// A pop label without bottom of stack: nested stacks are not handed off.
    LabelStack => "label_stack",
    /// Non-MPLS frame on a core port.
    NotMpls => "not_mpls",
    /// IPv4 to a group or broadcast address from a subscriber (other than DHCP).
    NotUnicast => "not_unicast",
    /// The frame has no headroom for the headers to push.
    NoHeadroom => "no_headroom",
    /// The next hop's MAC is not known (yet, or any more): never sent to a zero MAC.
    NoNeighbour => "no_neighbour",
    /// DHCP from a MAC the subscriber registry does not hold, beyond the punts allowed for
    /// recording refusals ([`crate::table::DhcpFilter`]).
    Unregistered => "unregistered",
}

/// A value a counter block is made of, and how it is laid out as `u64` words for
/// publishing.
pub trait Tally: Copy + Default + PartialEq {
    /// Words one value takes.
    const WORDS: usize;
    /// Adds `o` into `self`.
    fn add(&mut self, o: &Self);
    /// Hands out the value's words.
    fn put(&self, out: &mut impl FnMut(u64));
    /// Reads a value back from words handed out by [`Tally::put`].
    fn get(from: &mut impl FnMut() -> u64) -> Self;
}

impl Tally for u64 {
    const WORDS: usize = 1;
    #[inline(always)]
    fn add(&mut self, o: &Self) {
        *self += o;
    }
    #[inline(always)]
    fn put(&self, out: &mut impl FnMut(u64)) {
        out(*self);
    }
    #[inline(always)]
    fn get(from: &mut impl FnMut() -> u64) -> Self {
        from()
    }
}

/// A packet and byte count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
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
}

impl Tally for PacketBytes {
    const WORDS: usize = 2;
    #[inline(always)]
    fn add(&mut self, o: &Self) {
        self.packets += o.packets;
        self.bytes += o.bytes;
    }
    #[inline(always)]
    fn put(&self, out: &mut impl FnMut(u64)) {
        out(self.packets);
        out(self.bytes);
    }
    #[inline(always)]
    fn get(from: &mut impl FnMut() -> u64) -> Self {
        PacketBytes {
            packets: from(),
            bytes: from(),
        }
    }
}

/// Declares a block of counters of one [`Tally`] type once: the struct, its name table, and
/// the word order publishing and summing use.
macro_rules! counter_block {
    (
        $(#[$meta:meta])*
        pub struct $block:ident of $ty:ty {
            $($(#[$doc:meta])* $field:ident,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $block {
            $($(#[$doc])* pub $field: $ty,)*
        }

        impl $block {
            /// Counter names, in declaration order (the order of [`Self::iter`]).
            pub const NAMES: [&'static str; [$(stringify!($field)),*].len()] =
                [$(stringify!($field)),*];
            /// `u64` words the block is published as.
            pub const WORDS: usize = Self::NAMES.len() * <$ty as Tally>::WORDS;

            /// Every counter with its name, in declaration order.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, $ty)> {
                Self::NAMES.into_iter().zip([$(self.$field),*])
            }

            /// Adds `o` into `self`.
            pub fn add(&mut self, o: &Self) {
                $(Tally::add(&mut self.$field, &o.$field);)*
            }

            fn put(&self, out: &mut impl FnMut(u64)) {
                $(Tally::put(&self.$field, out);)*
            }

            fn get(from: &mut impl FnMut() -> u64) -> Self {
                Self { $($field: Tally::get(from),)* }
            }
        }
    };
}

counter_block! {
    /// A worker's counters that are not per ISP or per drop reason: the worker loop's and
    /// the node pipeline's.
    pub struct WorkerCounters of u64 {
        /// Frames received (worker loop).
        rx,
        /// Frames the ports accepted for transmission (worker loop).
        tx,
        /// Frames the punt ring accepted for the slow path (worker loop).
        punted,
        /// Frames taken from the slow path's inject ring (worker loop).
        injected,
        /// Times the worker slept for lack of traffic (worker loop).
        idle_sleeps,
        /// Frames the pipeline decided to hand to the slow path.
        punts,
        /// Of those, frames whose IPv4 or label TTL expired here, for the slow path's ICMP
        /// Time Exceeded (they used to be `ttl_expired` drops).
        punts_ttl_expired,
        /// Of those, frames with DF set that do not fit the core port's MTU once labelled,
        /// for the slow path's ICMP Fragmentation Needed (they used to be `oversized` drops).
        punts_frag_needed,
        /// Of those, DHCP from unregistered MACs within the worker's allowance (the rest are
        /// `unregistered` drops).
        punts_unregistered,
        /// ARP requests answered in the fast path.
        arp_replies,
        /// Labels swapped (transit).
        transit_packets,
        /// Frame bytes of the labels swapped.
        transit_bytes,
        /// Table writes replayed from the slow path's master copy.
        updates_applied,
        /// Table writes that did not fit this worker's layout (configuration error).
        updates_refused,
        /// Rounds of the worker loop: each polls every receive queue once (worker loop).
        polls,
        /// Of those, rounds that received at least one frame (worker loop).
        busy_polls,
        /// TSC cycles spent in rounds that received frames, from the start of one such
        /// round to the start of the next round (worker loop): with the TSC rate, the time
        /// the worker was busy, where `busy_polls` alone weighs a full burst like an empty
        /// poll.
        busy_cycles,
    }
}

counter_block! {
    /// One ISP's traffic at this node, one cache line so ISPs do not share lines.
    #[repr(C, align(64))]
    pub struct IspCounters of PacketBytes {
        /// Headend, subscriber → ISP (label pushed): claim 17.
        headend_up,
        /// Headend, ISP → subscriber (delivered).
        headend_down,
        /// Tailend, handed to the ISP: claim 16.
        tailend_up,
        /// Tailend, from the ISP (label pushed).
        tailend_down,
    }
}

/// One worker's counters, or the sum of several workers'.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counters {
    /// Counters not per ISP or drop reason.
    pub worker: WorkerCounters,
    drops: [u64; DropReason::COUNT],
    isps: Box<[IspCounters]>,
}

impl Counters {
    /// Zeroed counters for ISP ids `0..max_isps`; the only allocation they make.
    pub fn new(max_isps: usize) -> Self {
        Self {
            worker: WorkerCounters::default(),
            drops: [0; DropReason::COUNT],
            isps: vec![IspCounters::default(); max_isps].into_boxed_slice(),
        }
    }

    /// `u64` words counters for `max_isps` ISPs are published as.
    pub const fn words(max_isps: usize) -> usize {
        WorkerCounters::WORDS + DropReason::COUNT + max_isps * IspCounters::WORDS
    }

    /// Counts one drop.
    #[inline(always)]
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }

    /// Adds `n` drops under `r`.
    #[inline(always)]
    pub fn add_drops(&mut self, r: DropReason, n: u64) {
        self.drops[r as usize] += n;
    }

    /// Drops counted for `r`.
    pub fn drops(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }

    /// Every drop counter with its reason, zeros included, in discriminant order.
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

    /// The ISPs to show: those `name` names and those that saw traffic, by id, each with
    /// its name (empty when unnamed). `name` is typically a lookup in the configuration.
    pub fn isp_lines<'a, N>(&'a self, name: N) -> impl Iterator<Item = IspLine<'a>> + 'a
    where
        N: Fn(IspId) -> Option<&'a str> + 'a,
    {
        self.isps.iter().enumerate().filter_map(move |(i, c)| {
            let id = IspId::try_from(i).ok()?;
            let n = name(id);
            (n.is_some() || *c != IspCounters::default()).then_some(IspLine {
                id,
                name: n.unwrap_or(""),
                counters: c,
            })
        })
    }

    /// Adds `o` into `self` (ISPs beyond `self`'s length are left out).
    pub fn add(&mut self, o: &Counters) {
        self.worker.add(&o.worker);
        for (a, b) in self.drops.iter_mut().zip(o.drops.iter()) {
            *a += b;
        }
        for (a, b) in self.isps.iter_mut().zip(o.isps.iter()) {
            a.add(b);
        }
    }

    /// Hands out the words of `self` plus `other`, in the published order, for ISP ids
    /// `0..isps` (missing ISPs as zeros); no allocation.
    pub(crate) fn put_sum(&self, other: Option<&Counters>, isps: usize, out: &mut impl FnMut(u64)) {
        let mut w = self.worker;
        let mut d = self.drops;
        if let Some(o) = other {
            w.add(&o.worker);
            for (a, b) in d.iter_mut().zip(o.drops.iter()) {
                *a += b;
            }
        }
        w.put(out);
        d.iter().for_each(|v| out(*v));
        for i in 0..isps {
            let mut x = self.isps.get(i).copied().unwrap_or_default();
            if let Some(b) = other.and_then(|o| o.isps.get(i)) {
                x.add(b);
            }
            x.put(out);
        }
    }

    /// Counters for `isps` ISPs read back from words handed out by [`Counters::put_sum`].
    pub(crate) fn from_words(isps: usize, from: &mut impl FnMut() -> u64) -> Counters {
        let worker = WorkerCounters::get(from);
        let drops = core::array::from_fn(|_| from());
        let isps = (0..isps).map(|_| IspCounters::get(from)).collect();
        Counters {
            worker,
            drops,
            isps,
        }
    }
}

/// One ISP's counters with its id and name, as [`Counters::isp_lines`] lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IspLine<'a> {
    /// ISP id.
    pub id: IspId,
    /// ISP name from configuration (empty when unnamed).
    pub name: &'a str,
    /// The ISP's counters.
    pub counters: &'a IspCounters,
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
        assert_eq!(
            DropReason::ALL[DropReason::COUNT - 1],
            DropReason::Unregistered
        );
    }

    #[test]
    fn blocks_name_every_field_in_order() {
        let w = WorkerCounters {
            rx: 1,
            busy_cycles: 2,
            ..Default::default()
        };
        let pairs: Vec<_> = w.iter().collect();
        assert_eq!(pairs.len(), WorkerCounters::NAMES.len());
        assert_eq!(pairs[0], ("rx", 1));
        assert_eq!(pairs.last(), Some(&("busy_cycles", 2)));
        assert_eq!(
            IspCounters::NAMES,
            ["headend_up", "headend_down", "tailend_up", "tailend_down"]
        );
        assert_eq!(IspCounters::WORDS, 8);
        assert_eq!(core::mem::size_of::<IspCounters>(), 64);
    }

    #[test]
    fn add_and_words_round_trip() {
        let mut a = Counters::new(2);
        let mut b = Counters::new(3);
        a.drop(DropReason::SourceGuard);
        b.drop(DropReason::SourceGuard);
        b.drop(DropReason::TtlExpired);
        a.isp_mut(1).expect("isp").headend_up.count(100);
        b.isp_mut(1).expect("isp").headend_up.count(50);
        b.isp_mut(2).expect("isp").tailend_up.count(10);
        a.worker.punts = 2;
        let mut words = Vec::new();
        a.put_sum(Some(&b), 3, &mut |v| words.push(v));
        assert_eq!(words.len(), Counters::words(3));
        let mut it = words.into_iter();
        let s = Counters::from_words(3, &mut || it.next().unwrap_or(0));
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
        assert_eq!(s.worker.punts, 2);
        let mut t = Counters::new(3);
        t.add(&a);
        t.add(&b);
        assert_eq!(s, t);
    }

    #[test]
    fn isp_lines_list_named_and_active_isps() {
        let mut c = Counters::new(4);
        c.isp_mut(3).expect("isp").tailend_up.count(40);
        let names = [(1, "red")];
        let lines: Vec<_> = c
            .isp_lines(|id| names.iter().find(|(i, _)| *i == id).map(|(_, n)| *n))
            .map(|l| (l.id, l.name, l.counters.tailend_up.bytes))
            .collect();
        assert_eq!(lines, [(1, "red", 0), (3, "", 40)]);
    }
}
