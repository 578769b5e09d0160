//! The tables the fast path reads, and the one way they change: [`TableUpdate`].
//!
//! # Live updates: per-worker replicas replaying the master's writes
//!
//! Every worker owns a complete copy of [`Tables`] and is its only reader and writer. The
//! slow path owns one more copy, the master. [`updates::UpdateSender::send`] applies a
//! [`TableUpdate`] to the master (so refusals are known at once) and records the physical
//! slot writes it made ([`TableOp`]); these are broadcast into one bounded lock-free queue
//! per worker, and each worker replays them between bursts
//! ([`updates::UpdateReceiver::apply_pending`]).
//!
//! Why replicas rather than one shared table under RCU/epochs:
//! - Readers never block, lock or synchronise at all: a lookup is a plain read of memory
//!   only this core writes, with no per-lookup epoch or version check and no cache-line
//!   bouncing between cores. (A shared table would need per-bucket versions, which do not
//!   fit a 64-byte bucket of four 16-byte slots, or 128-bit atomics, which stable Rust
//!   offers only through raw pointer code.)
//! - No allocation on a worker after start-up: tables and queues are sized at start
//!   ([`Limits`]); a replayed write is a store into an existing slot.
//! - Cheap for workers: the cuckoo search and the lookups of the old state (the cache
//!   misses) happen once, on the slow path's core; a worker stores one to a few slots per
//!   update. That is what keeps forwarding near full rate at 500 k updates/s.
//! - Visibility is bounded by one burst plus the drain: a worker polls its queue every loop
//!   iteration (microseconds), far inside the 1 ms bound, replaying at most a fixed number
//!   of writes per iteration.
//! - The cost is memory: one copy per worker plus the master. A subscriber costs under 40
//!   bytes per copy (subscriber plus downstream slot at 85 % load), inside the 64-byte
//!   budget.
//!
//! Replay needs every copy to have the master's layout: build all of them from the same
//! preload and limits (building is deterministic) and check with [`Tables::same_layout`].
//! Every prefix of an update's writes is a consistent table, so a worker may stop replaying
//! anywhere between bursts.

pub mod cuckoo;
pub mod downstream;
pub mod handoff;
pub mod ilm;
pub mod isp;
pub mod preload;
pub mod registered;
pub mod ring;
pub mod subscriber;
pub mod updates;

pub use cuckoo::{PrefetchFn, TableFull};
pub use downstream::{DownstreamKey, DownstreamSlot, DownstreamTable};
pub use handoff::HandoffTable;
pub use ilm::{IlmAction, IlmSlot, IlmTable};
pub use isp::{Direction, Fec, IspEntry, IspTable};
pub use preload::PreloadTables;
pub use registered::{DhcpFilter, RegisteredFilter};
pub use subscriber::{
    Attachment, PackedKey, SubscriberKey, SubscriberSlot, SubscriberState, SubscriberTable,
};

use crate::wire::mpls::LABEL_MAX;
use crate::wire::MacAddr;
use std::net::Ipv4Addr;

/// An ISP's index in the per-ISP tables and counters.
pub type IspId = u16;

/// ISP ids must be below this (they are packed in 12 bits of a subscriber slot).
pub const MAX_ISPS: usize = 4096;

/// Table sizes, fixed at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Subscribers (and downstream bindings) per table copy.
    pub max_subscribers: usize,
    /// ISP ids are `0..max_isps`, at most [`MAX_ISPS`].
    pub max_isps: usize,
    /// ILM entries.
    pub max_labels: usize,
    /// Hand-off (port, VLAN) attachments.
    pub max_handoffs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_subscribers: 65_536,
            max_isps: 64,
            max_labels: 4_096,
            max_handoffs: 256,
        }
    }
}

/// A change to what workers see. The only way tables change, whether from the config
/// preload or DHCP bindings. Small and `Copy`: queues carry it by value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableUpdate {
    /// Registers a subscriber with an ISP, unbound. Re-adding with another ISP unbinds first.
    AddSubscriber {
        /// Where and who.
        key: SubscriberKey,
        /// The subscriber's ISP.
        isp: IspId,
    },
    /// Forgets a subscriber and its binding.
    RemoveSubscriber {
        /// Where and who.
        key: SubscriberKey,
    },
    /// Binds a registered subscriber to an address (a DHCP ACK): source guard and downstream.
    Bind {
        /// Where and who.
        key: SubscriberKey,
        /// The leased address.
        addr: Ipv4Addr,
    },
    /// Removes a subscriber's binding (release or lease expiry).
    Unbind {
        /// Where and who.
        key: SubscriberKey,
    },
    /// Sets or clears an ISP's FEC in one direction.
    SetFec {
        /// The ISP.
        isp: IspId,
        /// Upstream (headend push) or downstream (tailend push).
        direction: Direction,
        /// The binding; `None` removes it (traffic is then dropped as `NoFec`).
        fec: Option<Fec>,
    },
    /// Sets the gateway address of an ISP's subscribers (0.0.0.0 = none).
    SetGateway {
        /// The ISP.
        isp: IspId,
        /// Gateway address.
        addr: Ipv4Addr,
    },
    /// Sets or clears the action of an incoming label.
    SetIlm {
        /// Incoming label.
        label: u32,
        /// The action; `None` removes the label.
        action: Option<IlmAction>,
    },
    /// Sets or clears which ISP a hand-off (port, VLAN) belongs to.
    SetHandoff {
        /// Hand-off port.
        port: u16,
        /// VLAN ID (0 = untagged).
        vid: u16,
        /// The ISP; `None` removes the attachment.
        isp: Option<IspId>,
    },
    /// A MAC is registered with an ISP in the subscriber registry. The sender registers a
    /// MAC once and unregisters only what it registered ([`RegisteredFilter`]).
    Register {
        /// The subscriber's MAC.
        mac: MacAddr,
    },
    /// A MAC left the registry.
    Unregister {
        /// The subscriber's MAC.
        mac: MacAddr,
    },
    /// Sets how workers treat DHCP from unregistered MACs.
    SetDhcpFilter(DhcpFilter),
}

/// One physical write of the master copy, replayed by workers: the unit the update queues
/// carry. Small and `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableOp {
    /// A subscriber slot.
    Subscriber(cuckoo::SlotWrite<SubscriberSlot>),
    /// A downstream slot.
    Downstream(cuckoo::SlotWrite<DownstreamSlot>),
    /// An ILM slot.
    Ilm(cuckoo::SlotWrite<IlmSlot>),
    /// A hand-off slot.
    Handoff(cuckoo::SlotWrite<handoff::HandoffSlot>),
    /// A word of the registered filter.
    Registered {
        /// Word index.
        index: u32,
        /// Its new value.
        word: u64,
    },
    /// The DHCP filter.
    DhcpFilter(DhcpFilter),
    /// An ISP entry.
    Isp {
        /// The ISP.
        isp: IspId,
        /// Its new entry.
        entry: IspEntry,
    },
}

/// Why an update was refused. Refused updates change nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// Port ≥ 256 or VLAN ID ≥ 4096.
    #[error("port or VLAN out of range")]
    BadKey,
    /// ISP id not below the configured maximum.
    #[error("ISP id {0} out of range")]
    BadIsp(IspId),
    /// Label over 20 bits, or reserved (0..=15) where a real label is needed.
    #[error("label {0} out of range")]
    BadLabel(u32),
    /// A table is at capacity.
    #[error("{0} table full")]
    Full(&'static str),
    /// The subscriber is not registered.
    #[error("unknown subscriber")]
    UnknownSubscriber,
    /// Another subscriber of the same ISP holds the address.
    #[error("address {0} already bound in this ISP")]
    AddressInUse(Ipv4Addr),
}

/// One worker's copy of every table.
#[derive(Clone)]
pub struct Tables {
    /// Subscribers by (port, VLANs, MAC).
    pub subscribers: SubscriberTable,
    /// (ISP, address) → subscriber.
    pub downstream: DownstreamTable,
    /// Per-ISP FECs and gateway.
    pub isps: IspTable,
    /// Incoming label map.
    pub ilm: IlmTable,
    /// Hand-off (port, VLAN) → ISP.
    pub handoffs: HandoffTable,
    /// MACs of the subscriber registry.
    pub registered: RegisteredFilter,
    /// How DHCP from MACs outside `subscribers` and `registered` is treated.
    pub dhcp_filter: DhcpFilter,
    /// The master copy's filter change not yet drained, when journalling.
    filter_journal: Option<Option<DhcpFilter>>,
    limits: Limits,
}

fn check_label(label: u32) -> Result<(), TableError> {
    if label > LABEL_MAX || label <= crate::wire::mpls::LABEL_RESERVED_MAX {
        Err(TableError::BadLabel(label))
    } else {
        Ok(())
    }
}

impl Tables {
    /// Empty tables of the given sizes; the only allocation tables ever make.
    pub fn new(limits: Limits) -> Self {
        let limits = Limits {
            max_isps: limits.max_isps.min(MAX_ISPS),
            ..limits
        };
        Self {
            subscribers: SubscriberTable::with_capacity(limits.max_subscribers),
            downstream: DownstreamTable::with_capacity(limits.max_subscribers + 1),
            isps: IspTable::new(limits.max_isps),
            ilm: IlmTable::with_capacity(limits.max_labels),
            handoffs: HandoffTable::with_capacity(limits.max_handoffs),
            registered: RegisteredFilter::with_capacity(limits.max_subscribers),
            dhcp_filter: DhcpFilter::default(),
            filter_journal: None,
            limits,
        }
    }

    /// The sizes the tables were built with.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Uses `f` to prefetch buckets of the keyed tables (see [`PrefetchFn`]).
    pub fn set_prefetch(&mut self, f: Option<PrefetchFn>) {
        self.subscribers.set_prefetch(f);
        self.downstream.set_prefetch(f);
        self.ilm.set_prefetch(f);
    }

    /// The large allocations (subscriber, downstream and ILM buckets) as (address, length),
    /// for the `sys` crate to advise huge pages before the tables are filled; see
    /// [`PreloadTables::build_with`].
    pub fn memory_regions(&self) -> [(*const u8, usize); 4] {
        [
            self.subscribers.memory_region(),
            self.downstream.memory_region(),
            self.ilm.memory_region(),
            self.registered.memory_region(),
        ]
    }

    /// Bytes held by all tables.
    pub fn memory_bytes(&self) -> usize {
        self.subscribers.memory_bytes()
            + self.downstream.memory_bytes()
            + self.isps.memory_bytes()
            + self.ilm.memory_bytes()
            + self.handoffs.memory_bytes()
            + self.registered.memory_bytes()
    }

    /// Starts recording every write, for the slow path's master copy whose writes are
    /// replayed on the workers' replicas ([`updates`]).
    pub fn enable_journal(&mut self) {
        self.subscribers.enable_journal();
        self.downstream.enable_journal();
        self.isps.enable_journal();
        self.ilm.enable_journal();
        self.handoffs.enable_journal();
        self.registered.enable_journal();
        self.filter_journal = Some(None);
    }

    /// Moves the recorded writes into `out` as [`TableOp`]s, table by table, oldest first.
    pub fn drain_ops(&mut self, mut out: impl FnMut(TableOp)) {
        self.subscribers
            .drain_journal(|w| out(TableOp::Subscriber(w)));
        self.downstream
            .drain_journal(|w| out(TableOp::Downstream(w)));
        self.isps
            .drain_journal(|isp, entry| out(TableOp::Isp { isp, entry }));
        self.ilm.drain_journal(|w| out(TableOp::Ilm(w)));
        self.handoffs.drain_journal(|w| out(TableOp::Handoff(w)));
        self.registered
            .drain_journal(|index, word| out(TableOp::Registered { index, word }));
        if let Some(Some(f)) = self.filter_journal.as_mut().map(Option::take) {
            out(TableOp::DhcpFilter(f));
        }
    }

    /// Replays one write of the master copy; `false` when it does not fit this replica's
    /// layout (built from other limits or another preload: a configuration error).
    #[inline]
    pub fn apply_op(&mut self, op: &TableOp) -> bool {
        match op {
            TableOp::Subscriber(w) => self.subscribers.replay(w),
            TableOp::Downstream(w) => self.downstream.replay(w),
            TableOp::Ilm(w) => self.ilm.replay(w),
            TableOp::Handoff(w) => self.handoffs.replay(w),
            TableOp::Isp { isp, entry } => self.isps.set(*isp, *entry),
            TableOp::Registered { index, word } => self.registered.replay(*index, *word),
            TableOp::DhcpFilter(f) => {
                self.dhcp_filter = *f;
                true
            }
        }
    }

    /// Starts loading the subscriber buckets applying `u` reads: a slow path holding a batch
    /// of updates calls this for all of them, then applies them, so their cache misses
    /// overlap instead of each stalling its update.
    pub fn prefetch_update(&self, u: &TableUpdate) {
        if let TableUpdate::AddSubscriber { key, .. }
        | TableUpdate::RemoveSubscriber { key }
        | TableUpdate::Bind { key, .. }
        | TableUpdate::Unbind { key } = u
        {
            if let Ok(k) = key.pack() {
                self.subscribers.prefetch_for_update(&k);
            }
        }
    }

    /// Takes the registered filter and the DHCP filter of `master` (the slow path's copy
    /// loaded from the registry): a replica built before its worker starts. `false` when the
    /// filters differ in size.
    pub fn copy_registered_from(&mut self, master: &Tables) -> bool {
        self.dhcp_filter = master.dhcp_filter;
        self.registered.copy_bits(&master.registered)
    }

    /// True when `other` has the same entries in the same slots: a replica must, to replay
    /// this copy's writes. Compares every bucket (tens of milliseconds at millions of
    /// subscribers): a start-up check.
    pub fn same_layout(&self, other: &Tables) -> bool {
        self.subscribers.same_layout(&other.subscribers)
            && self.downstream.same_layout(&other.downstream)
            && self.ilm.same_layout(&other.ilm)
            && self.handoffs.same_layout(&other.handoffs)
            && self.registered.same_layout(&other.registered)
            && self.dhcp_filter == other.dhcp_filter
            && self.isps.same_entries(&other.isps)
    }

    fn check_isp(&self, isp: IspId) -> Result<(), TableError> {
        if usize::from(isp) < self.isps.len() {
            Ok(())
        } else {
            Err(TableError::BadIsp(isp))
        }
    }

    /// Applies one update; on error nothing changed. Never allocates.
    pub fn apply(&mut self, u: &TableUpdate) -> Result<(), TableError> {
        match *u {
            TableUpdate::AddSubscriber { key, isp } => self.add_subscriber(key, isp),
            TableUpdate::RemoveSubscriber { key } => {
                let k = key.pack()?;
                self.unbind_packed(k)?;
                self.subscribers.remove(&k);
                Ok(())
            }
            TableUpdate::Bind { key, addr } => self.bind(key, addr),
            TableUpdate::Unbind { key } => self.unbind_packed(key.pack()?),
            TableUpdate::SetFec {
                isp,
                direction,
                fec,
            } => {
                self.check_isp(isp)?;
                if let Some(f) = fec {
                    check_label(f.label)?;
                }
                let mut e = *self.isps.get(isp).ok_or(TableError::BadIsp(isp))?;
                match direction {
                    Direction::Upstream => e.upstream = fec,
                    Direction::Downstream => e.downstream = fec,
                }
                self.isps.set(isp, e);
                Ok(())
            }
            TableUpdate::SetGateway { isp, addr } => {
                let mut e = *self.isps.get(isp).ok_or(TableError::BadIsp(isp))?;
                e.gateway = addr;
                self.isps.set(isp, e);
                Ok(())
            }
            TableUpdate::SetIlm { label, action } => {
                check_label(label)?;
                match action {
                    None => {
                        self.ilm.remove(&label);
                        Ok(())
                    }
                    Some(a) => {
                        match a {
                            IlmAction::Swap { out_label, .. } => check_label(out_label)?,
                            IlmAction::PopHandoff { isp, vid, .. } => {
                                self.check_isp(isp)?;
                                if vid > 0xfff {
                                    return Err(TableError::BadKey);
                                }
                            }
                            IlmAction::PopDeliver { isp } => self.check_isp(isp)?,
                        }
                        self.ilm
                            .insert(IlmSlot::new(label, a))
                            .map(drop)
                            .map_err(|_| TableError::Full("ilm"))
                    }
                }
            }
            TableUpdate::SetHandoff { port, vid, isp } => {
                let key = handoff::handoff_key(port, vid).ok_or(TableError::BadKey)?;
                match isp {
                    None => {
                        self.handoffs.remove(&key);
                        Ok(())
                    }
                    Some(isp) => {
                        self.check_isp(isp)?;
                        self.handoffs
                            .insert(handoff::HandoffSlot::new(key, isp))
                            .map(drop)
                            .map_err(|_| TableError::Full("handoff"))
                    }
                }
            }
            TableUpdate::Register { mac } => {
                self.registered.insert(mac);
                Ok(())
            }
            TableUpdate::Unregister { mac } => {
                self.registered.remove(mac);
                Ok(())
            }
            TableUpdate::SetDhcpFilter(f) => {
                self.dhcp_filter = f;
                if let Some(j) = self.filter_journal.as_mut() {
                    *j = Some(f);
                }
                Ok(())
            }
        }
    }

    fn add_subscriber(&mut self, key: SubscriberKey, isp: IspId) -> Result<(), TableError> {
        self.check_isp(isp)?;
        let k = key.pack()?;
        if let Some(s) = self.subscribers.get(&k) {
            if s.isp() == isp {
                return Ok(());
            }
            self.unbind_packed(k)?;
        }
        let slot = SubscriberSlot::new(k, isp, SubscriberState::Known, Ipv4Addr::UNSPECIFIED);
        self.subscribers
            .insert(slot)
            .map(drop)
            .map_err(|_| TableError::Full("subscriber"))
    }

    fn bind(&mut self, key: SubscriberKey, addr: Ipv4Addr) -> Result<(), TableError> {
        let k = key.pack()?;
        let s = *self
            .subscribers
            .get(&k)
            .ok_or(TableError::UnknownSubscriber)?;
        let dk = DownstreamKey {
            isp: s.isp(),
            ipv4: u32::from(addr),
        };
        if let Some(d) = self.downstream.get(&dk) {
            if d.attachment() != k.attach || d.mac() != key.mac {
                return Err(TableError::AddressInUse(addr));
            }
        }
        // Insert before removing the old binding so a full table refuses without change; the
        // table has one spare slot for exactly this moment.
        let ds = DownstreamSlot::new(dk, k.attach, key.mac);
        self.downstream
            .insert(ds)
            .map_err(|_| TableError::Full("downstream"))?;
        if s.state() == SubscriberState::Bound && s.ipv4() != addr {
            self.downstream.remove(&DownstreamKey {
                isp: s.isp(),
                ipv4: s.ipv4_bits(),
            });
        }
        self.subscribers.replace(SubscriberSlot::new(
            k,
            s.isp(),
            SubscriberState::Bound,
            addr,
        ));
        Ok(())
    }

    fn unbind_packed(&mut self, k: PackedKey) -> Result<(), TableError> {
        let Some(s) = self.subscribers.get(&k).copied() else {
            return Ok(());
        };
        if s.state() == SubscriberState::Bound {
            self.downstream.remove(&DownstreamKey {
                isp: s.isp(),
                ipv4: s.ipv4_bits(),
            });
            self.subscribers.replace(SubscriberSlot::new(
                k,
                s.isp(),
                SubscriberState::Known,
                Ipv4Addr::UNSPECIFIED,
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
