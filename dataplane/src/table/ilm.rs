//! The incoming label map (RFC 3031 section 3.11): top label → what to do with the packet.
//!
//! Indexed directly by label rather than hashed: this node assigns its incoming labels
//! itself, the label space is only 2^20, and the entries in use (a few per ISP) stay in
//! cache, so a lookup is one load with no hash, no key compare and no bounds check. The
//! 16 MiB array is allocated zeroed and its untouched pages are never backed (clones copy
//! only the entries in use).

use super::cuckoo::{len_delta, mix64, Journal, PrefetchFn, Slot, SlotWrite, TableFull, SLOTS};
use super::IspId;
use crate::wire::mpls::LABEL_MAX;
use crate::wire::MacAddr;
use zerocopy::FromZeros;

/// The action for an incoming label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IlmAction {
    /// Transit: replace the label, decrement TTL, send to the next hop.
    Swap {
        /// Outgoing label.
        out_label: u32,
        /// Outgoing (core) port.
        port: u16,
        /// Next hop's MAC address.
        next_hop: MacAddr,
    },
    /// Tailend upstream: pop and hand the IPv4 packet to the ISP.
    PopHandoff {
        /// The ISP the label's FEC belongs to (for accounting).
        isp: IspId,
        /// Hand-off port toward the ISP.
        port: u16,
        /// VLAN on the hand-off port (0 = untagged).
        vid: u16,
        /// The ISP router's MAC address.
        router_mac: MacAddr,
    },
    /// Headend downstream: pop and deliver to a subscriber of the ISP by destination address.
    PopDeliver {
        /// The ISP whose downstream table the destination is looked up in.
        isp: IspId,
    },
}

const KIND_SWAP: u32 = 1;
const KIND_HANDOFF: u32 = 2;
const KIND_DELIVER: u32 = 3;
/// Set over a swap's or hand-off's kind while its next hop is unresolved (the zero MAC): the
/// fast accessors ([`IlmSlot::swap`], [`IlmSlot::handoff`]) then miss with the same one
/// compare of the kind they already make, and the general path drops the frame as
/// `no_neighbour`; a resolved entry pays nothing for the check.
const UNRESOLVED: u32 = 0x10;
/// The kind's bits, without [`UNRESOLVED`].
const KIND_MASK: u32 = 0x0f;

/// One ILM entry in 16 bytes.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable,
)]
#[repr(C)]
pub struct IlmSlot {
    /// Label in the low 20 bits, action kind in bits 24..28 (0 = empty slot).
    label_kind: u32,
    arg: u32,
    port: u16,
    mac: [u8; 6],
}

impl IlmSlot {
    /// An entry for `label` (20 bits; checked by the caller).
    pub fn new(label: u32, action: IlmAction) -> Self {
        let (kind, arg, port, mac) = match action {
            IlmAction::Swap {
                out_label,
                port,
                next_hop,
            } => (KIND_SWAP, out_label, port, next_hop),
            IlmAction::PopHandoff {
                isp,
                port,
                vid,
                router_mac,
            } => (
                KIND_HANDOFF,
                (u32::from(isp) << 16) | u32::from(vid),
                port,
                router_mac,
            ),
            IlmAction::PopDeliver { isp } => (KIND_DELIVER, u32::from(isp), 0, MacAddr::ZERO),
        };
        let kind = match kind {
            KIND_SWAP | KIND_HANDOFF if mac == MacAddr::ZERO => kind | UNRESOLVED,
            k => k,
        };
        Self {
            label_kind: (label & 0xf_ffff) | (kind << 24),
            arg,
            port,
            mac: mac.0,
        }
    }

    /// The incoming label.
    pub fn label(&self) -> u32 {
        self.label_kind & 0xf_ffff
    }

    /// (out label, port, next hop) of a swap entry whose next hop is resolved, read without
    /// building the action: the transit fast path.
    #[inline(always)]
    pub fn swap(&self) -> Option<(u32, u16, MacAddr)> {
        (self.label_kind >> 24 == KIND_SWAP).then_some((self.arg, self.port, MacAddr(self.mac)))
    }

    /// (ISP, port, VLAN, router MAC) of a hand-off entry whose router is resolved, read
    /// without building the action: the tailend fast path.
    #[inline(always)]
    pub fn handoff(&self) -> Option<(IspId, u16, u16, MacAddr)> {
        (self.label_kind >> 24 == KIND_HANDOFF).then_some((
            (self.arg >> 16) as u16,
            self.port,
            self.arg as u16,
            MacAddr(self.mac),
        ))
    }

    /// The action.
    #[inline(always)]
    pub fn action(&self) -> IlmAction {
        match (self.label_kind >> 24) & KIND_MASK {
            KIND_SWAP => IlmAction::Swap {
                out_label: self.arg,
                port: self.port,
                next_hop: MacAddr(self.mac),
            },
            KIND_HANDOFF => IlmAction::PopHandoff {
                isp: (self.arg >> 16) as u16,
                port: self.port,
                vid: self.arg as u16,
                router_mac: MacAddr(self.mac),
            },
            _ => IlmAction::PopDeliver {
                isp: self.arg as u16,
            },
        }
    }
}

impl Slot for IlmSlot {
    type Key = u32;
    const EMPTY: Self = Self {
        label_kind: 0,
        arg: 0,
        port: 0,
        mac: [0; 6],
    };

    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.label_kind >> 24 == 0
    }

    fn key(&self) -> u32 {
        self.label()
    }

    #[inline(always)]
    fn matches(&self, label: &u32) -> bool {
        self.label() == *label && !self.is_empty()
    }

    #[inline(always)]
    fn hash(label: &u32) -> u64 {
        mix64(u64::from(*label))
    }

    #[inline(always)]
    fn word(&self) -> u32 {
        self.label_kind
    }
}

/// Entries in the label space.
const LABELS: usize = LABEL_MAX as usize + 1;

/// Every label's slot, on cache-line boundaries like the hashed tables' buckets.
#[derive(zerocopy::FromZeros)]
#[repr(C, align(64))]
struct Entries([IlmSlot; LABELS]);

/// The ILM table: one slot per label.
pub struct IlmTable {
    entries: Box<Entries>,
    len: usize,
    /// Entries popping toward subscribers: without any, the look-ahead has nothing to load.
    delivering: usize,
    capacity: usize,
    prefetch: Option<PrefetchFn>,
    /// Slot writes recorded for replay on replicas (the slow path's master copy only).
    journal: Journal<IlmSlot>,
}

impl Clone for IlmTable {
    /// Copies only the labels in use, so a clone leaves the rest of its array untouched.
    fn clone(&self) -> Self {
        let mut t = Self::with_capacity(self.capacity);
        for s in self.iter() {
            t.entries.0[t.index(s.label())] = *s;
        }
        t.len = self.len;
        t.delivering = self.delivering;
        t.prefetch = self.prefetch;
        t.journal.clone_from(&self.journal);
        t
    }
}

impl IlmTable {
    /// A map holding up to `capacity` labels; all memory is allocated here.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: FromZeros::new_box_zeroed()
                .unwrap_or_else(|_| panic!("cannot allocate the incoming label map")),
            len: 0,
            delivering: 0,
            capacity,
            prefetch: None,
            journal: Journal::default(),
        }
    }

    #[inline(always)]
    fn index(&self, label: u32) -> usize {
        (label & LABEL_MAX) as usize
    }

    /// Uses `f` to prefetch entries (see [`PrefetchFn`]).
    pub fn set_prefetch(&mut self, f: Option<PrefetchFn>) {
        self.prefetch = f;
    }

    /// Labels mapped.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no label is mapped.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most labels the map accepts.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Address and length of the entry array (see [`super::Tables::memory_regions`]).
    pub fn memory_region(&self) -> (*const u8, usize) {
        (
            self.entries.0.as_ptr().cast(),
            core::mem::size_of_val(&*self.entries),
        )
    }

    /// Bytes this table reserves: the whole array, though only touched pages are backed.
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of_val(&*self.entries) + core::mem::size_of::<Self>()
    }

    /// Starts loading the entry of `label` (20 bits; higher bits are ignored).
    #[inline(always)]
    pub fn prefetch(&self, label: u32) {
        let p = (&self.entries.0[self.index(label)] as *const IlmSlot).cast();
        match self.prefetch {
            Some(f) => f(p),
            #[cfg(feature = "dpdk")]
            None => ispmux_sys::prefetch_line(p),
            // Without an instruction the entries in use are in cache anyway.
            #[cfg(not(feature = "dpdk"))]
            None => {}
        }
    }

    /// The entry of `label` (20 bits; higher bits are ignored), if mapped.
    #[inline(always)]
    pub fn lookup(&self, label: u32) -> Option<&IlmSlot> {
        let s = &self.entries.0[self.index(label)];
        (!s.is_empty()).then_some(s)
    }

    /// The entry of `label`, if mapped (labels beyond 20 bits are never mapped).
    pub fn get(&self, label: &u32) -> Option<&IlmSlot> {
        if *label > LABEL_MAX {
            return None;
        }
        self.lookup(*label)
    }

    /// Maps `slot`'s label, replacing (and returning) its previous entry.
    pub fn insert(&mut self, slot: IlmSlot) -> Result<Option<IlmSlot>, TableFull> {
        let label = slot.label();
        let old = self.get(&label).copied();
        if old.is_none() && self.len >= self.capacity {
            return Err(TableFull);
        }
        self.write(label, slot);
        Ok(old)
    }

    /// Unmaps `label`, returning its entry.
    pub fn remove(&mut self, label: &u32) -> Option<IlmSlot> {
        let old = self.get(label).copied()?;
        self.write(*label, IlmSlot::EMPTY);
        Some(old)
    }

    /// Every mapped entry, in label order.
    pub fn iter(&self) -> impl Iterator<Item = &IlmSlot> {
        self.entries.0.iter().filter(|s| !s.is_empty())
    }

    /// True when some entry pops toward subscribers.
    #[inline(always)]
    pub fn delivers(&self) -> bool {
        self.delivering != 0
    }

    /// Stores `value` at index `i`, keeping the count of delivering entries.
    #[inline(always)]
    fn store(&mut self, i: usize, value: IlmSlot) {
        let e = &mut self.entries.0[i];
        let was = e.label_kind >> 24 == KIND_DELIVER;
        let is = value.label_kind >> 24 == KIND_DELIVER;
        *e = value;
        self.delivering = (self.delivering + usize::from(is)).saturating_sub(usize::from(was));
    }

    /// The only place entries change on the master: keeps `len` and the journal.
    fn write(&mut self, label: u32, value: IlmSlot) {
        let i = self.index(label);
        let len_delta = len_delta(&self.entries.0[i], &value);
        self.store(i, value);
        self.len = self.len.wrapping_add_signed(isize::from(len_delta));
        // The journal's (bucket, slot) positions, four labels to a "bucket", so the ILM's
        // writes travel in the same operations as the hashed tables'.
        self.journal.record(SlotWrite {
            bucket: (i / SLOTS) as u32,
            slot: (i % SLOTS) as u8,
            len_delta,
            value,
        });
    }

    /// Starts recording slot writes (slow path master copy; the journal allocates).
    pub fn enable_journal(&mut self) {
        self.journal.enable();
    }

    /// Moves the recorded writes into `out`, oldest first.
    pub fn drain_journal(&mut self, out: impl FnMut(SlotWrite<IlmSlot>)) {
        self.journal.drain(out);
    }

    /// Replays one recorded write on a replica; `false` for a position outside the label
    /// space (a corrupt write).
    #[inline]
    pub fn replay(&mut self, w: &SlotWrite<IlmSlot>) -> bool {
        let i = w.bucket as usize * SLOTS + usize::from(w.slot);
        if i >= LABELS || usize::from(w.slot) >= SLOTS {
            return false;
        }
        self.store(i, w.value);
        self.len = self.len.wrapping_add_signed(isize::from(w.len_delta));
        true
    }

    /// True when `other` maps the same labels to the same entries.
    pub fn same_layout(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unresolved next hop (the zero MAC) keeps its action, but the fast accessors miss:
    /// the general path decides (`no_neighbour`).
    #[test]
    fn unresolved_entries_miss_the_fast_accessors() {
        for a in [
            IlmAction::Swap {
                out_label: 7,
                port: 3,
                next_hop: MacAddr::ZERO,
            },
            IlmAction::PopHandoff {
                isp: 4,
                port: 7,
                vid: 0,
                router_mac: MacAddr::ZERO,
            },
        ] {
            let s = IlmSlot::new(1000, a);
            assert_eq!((s.label(), s.action()), (1000, a));
            assert_eq!((s.swap(), s.handoff()), (None, None));
            assert!(s.matches(&1000) && !s.is_empty());
        }
    }

    #[test]
    fn actions_round_trip_through_the_slot() {
        assert_eq!(core::mem::size_of::<IlmSlot>(), 16);
        let mac = MacAddr([2, 1, 2, 3, 4, 5]);
        for a in [
            IlmAction::Swap {
                out_label: 0xf_ffff,
                port: 3,
                next_hop: mac,
            },
            IlmAction::PopHandoff {
                isp: 4095,
                port: 7,
                vid: 4094,
                router_mac: mac,
            },
            IlmAction::PopDeliver { isp: 12 },
        ] {
            let s = IlmSlot::new(1000, a);
            assert_eq!((s.label(), s.action()), (1000, a));
            let swap = match a {
                IlmAction::Swap {
                    out_label,
                    port,
                    next_hop,
                } => Some((out_label, port, next_hop)),
                _ => None,
            };
            assert_eq!(s.swap(), swap);
            let handoff = match a {
                IlmAction::PopHandoff {
                    isp,
                    port,
                    vid,
                    router_mac,
                } => Some((isp, port, vid, router_mac)),
                _ => None,
            };
            assert_eq!(s.handoff(), handoff);
            assert!(s.matches(&1000) && !s.matches(&1001));
        }
    }

    fn swap(label: u32, out_label: u32) -> IlmSlot {
        IlmSlot::new(
            label,
            IlmAction::Swap {
                out_label,
                port: 1,
                next_hop: MacAddr([2, 0, 0, 0, 0, 1]),
            },
        )
    }

    #[test]
    fn maps_labels_up_to_its_capacity() {
        let mut t = IlmTable::with_capacity(2);
        assert_eq!(t.insert(swap(16, 100)), Ok(None));
        assert_eq!(t.insert(swap(LABEL_MAX, 101)), Ok(None));
        assert_eq!(t.insert(swap(17, 102)), Err(TableFull), "third label");
        assert_eq!(
            t.insert(swap(16, 103)),
            Ok(Some(swap(16, 100))),
            "replacing"
        );
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(&16), Some(&swap(16, 103)));
        assert_eq!(t.get(&17), None);
        assert_eq!(t.get(&(LABEL_MAX + 1)), None, "not a label");
        assert_eq!(t.lookup(LABEL_MAX + 1 + 16), Some(&swap(16, 103)), "masked");
        assert_eq!(t.remove(&16), Some(swap(16, 103)));
        assert_eq!(t.remove(&16), None);
        assert_eq!((t.len(), t.get(&16)), (1, None));
        assert_eq!(t.insert(swap(17, 102)), Ok(None), "room again");
        assert!(!t.delivers());
        t.insert(IlmSlot::new(18, IlmAction::PopDeliver { isp: 1 }))
            .expect_err("full");
        t.remove(&17);
        t.insert(IlmSlot::new(17, IlmAction::PopDeliver { isp: 1 }))
            .expect("room");
        assert!(t.delivers());
        let c = t.clone();
        t.insert(swap(17, 102)).expect("replace");
        assert!(!t.delivers() && c.delivers());
        let labels: Vec<u32> = t.iter().map(IlmSlot::label).collect();
        assert_eq!(labels, [17, LABEL_MAX]);
    }

    #[test]
    fn replicas_replay_the_journal_and_clones_keep_entries() {
        let mut master = IlmTable::with_capacity(8);
        master.enable_journal();
        let mut replica = IlmTable::with_capacity(8);
        master.insert(swap(16, 100)).expect("insert");
        master.insert(swap(4000, 101)).expect("insert");
        master.insert(swap(16, 102)).expect("replace");
        master.remove(&4000);
        master
            .insert(IlmSlot::new(20, IlmAction::PopDeliver { isp: 2 }))
            .expect("insert");
        let mut writes = Vec::new();
        master.drain_journal(|w| writes.push(w));
        assert_eq!(writes.len(), 5);
        for w in &writes {
            assert!(replica.replay(w));
        }
        assert!(replica.delivers());
        master.remove(&20);
        master.drain_journal(|w| assert!(replica.replay(&w)));
        assert!(!replica.delivers());
        assert!(replica.same_layout(&master) && master.same_layout(&replica));
        assert_eq!((replica.len(), replica.get(&16)), (1, Some(&swap(16, 102))));
        let bad = SlotWrite {
            bucket: (LABELS / SLOTS) as u32,
            ..writes[0]
        };
        assert!(!replica.replay(&bad), "outside the label space");
        let c = replica.clone();
        assert!(c.same_layout(&replica) && c.get(&16).is_some());
        replica.remove(&16);
        assert!(!c.same_layout(&replica));
    }
}
