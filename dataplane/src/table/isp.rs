//! Per-ISP data indexed by ISP id: the FECs (claim 7's FEC table) and the gateway address.

use super::IspId;
use crate::wire::MacAddr;
use std::net::Ipv4Addr;

/// Which way a FEC carries an ISP's traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Headend toward tailend (subscriber → ISP).
    Upstream,
    /// Tailend toward headend (ISP → subscriber).
    Downstream,
}

/// Forwarding equivalence class binding: the label to push and where to send the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fec {
    /// Label to push (20 bits).
    pub label: u32,
    /// Traffic class of the pushed entry.
    pub tc: u8,
    /// Core port to leave on.
    pub port: u16,
    /// Next hop's MAC address.
    pub next_hop: MacAddr,
}

/// Everything the fast path knows about one ISP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IspEntry {
    /// FEC for upstream traffic at the headend.
    pub upstream: Option<Fec>,
    /// FEC for downstream traffic at the tailend.
    pub downstream: Option<Fec>,
    /// The gateway address subscribers of this ISP use; packets to it are punted and ARP for
    /// it is answered (0.0.0.0 = none).
    pub gateway: Ipv4Addr,
}

impl Default for IspEntry {
    fn default() -> Self {
        Self {
            upstream: None,
            downstream: None,
            gateway: Ipv4Addr::UNSPECIFIED,
        }
    }
}

/// ISP entries indexed by id; sized once.
#[derive(Clone, Debug)]
pub struct IspTable {
    entries: Box<[IspEntry]>,
    /// Writes recorded for replicas (master copy only), like the cuckoo tables' journal.
    journal: Option<Vec<(IspId, IspEntry)>>,
    /// Bumped by every write, so that what is worked out from the entries (the headend's
    /// push plans) knows when to work it out again.
    generation: u64,
}

impl IspTable {
    /// A table for ids `0..max_isps`.
    pub fn new(max_isps: usize) -> Self {
        Self {
            entries: vec![IspEntry::default(); max_isps].into_boxed_slice(),
            journal: None,
            generation: 0,
        }
    }

    /// The entry of `isp`, `None` when out of range.
    #[inline(always)]
    pub fn get(&self, isp: IspId) -> Option<&IspEntry> {
        self.entries.get(usize::from(isp))
    }

    /// Sets the entry of `isp`; `false` when out of range.
    pub fn set(&mut self, isp: IspId, entry: IspEntry) -> bool {
        let Some(e) = self.entries.get_mut(usize::from(isp)) else {
            return false;
        };
        *e = entry;
        self.generation = self.generation.wrapping_add(1);
        if let Some(j) = &mut self.journal {
            j.push((isp, entry));
        }
        true
    }

    /// Starts recording writes (slow path master copy).
    pub fn enable_journal(&mut self) {
        self.journal.get_or_insert_with(Vec::new);
    }

    /// Moves the recorded writes into `out`, oldest first.
    pub fn drain_journal(&mut self, mut out: impl FnMut(IspId, IspEntry)) {
        if let Some(j) = &mut self.journal {
            for (i, e) in j.drain(..) {
                out(i, e);
            }
        }
    }

    /// True when both tables hold the same entries.
    pub fn same_entries(&self, other: &Self) -> bool {
        self.entries == other.entries
    }

    /// Changes whenever an entry is written.
    #[inline(always)]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Every entry, by id.
    pub fn entries(&self) -> &[IspEntry] {
        &self.entries
    }

    /// Number of ids the table holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True for a table of no ids.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes this table holds.
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of_val(&*self.entries) + core::mem::size_of::<Self>()
    }
}
