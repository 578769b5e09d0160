//! Tailend hand-off attachments: (hand-off port, VLAN) → ISP, to classify downstream IPv4.

use super::cuckoo::{mix64, CuckooTable, Slot};
use super::IspId;

/// One hand-off attachment.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable,
)]
#[repr(C)]
pub struct HandoffSlot {
    /// Bit 31 occupied, port in bits 12..20, VID in bits 0..12.
    key: u32,
    isp: u32,
}

const VALID: u32 = 1 << 31;

/// Packs a hand-off port (< 256) and VID (< 4096); `None` when out of range.
pub fn handoff_key(port: u16, vid: u16) -> Option<u32> {
    (port <= 0xff && vid <= 0xfff).then(|| VALID | (u32::from(port) << 12) | u32::from(vid))
}

impl HandoffSlot {
    /// Hand-off `key` (see [`handoff_key`]) belongs to `isp`.
    pub fn new(key: u32, isp: IspId) -> Self {
        Self {
            key: key | VALID,
            isp: u32::from(isp),
        }
    }

    /// The ISP.
    pub fn isp(&self) -> IspId {
        self.isp as IspId
    }
}

impl Slot for HandoffSlot {
    type Key = u32;
    const EMPTY: Self = Self { key: 0, isp: 0 };

    fn is_empty(&self) -> bool {
        self.key & VALID == 0
    }

    fn key(&self) -> u32 {
        self.key
    }

    fn matches(&self, key: &u32) -> bool {
        self.key == *key && !self.is_empty()
    }

    fn hash(key: &u32) -> u64 {
        mix64(u64::from(*key))
    }

    #[inline(always)]
    fn word(&self) -> u32 {
        self.key
    }
}

/// The hand-off table.
pub type HandoffTable = CuckooTable<HandoffSlot>;
