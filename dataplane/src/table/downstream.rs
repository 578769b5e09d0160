//! Per-ISP downstream delivery: (ISP, IPv4 address) → subscriber's attachment and MAC.
//!
//! Keyed by ISP as well as address because ISPs may hand out the same private addresses.

use super::cuckoo::{mix64, CuckooTable, Slot};
use super::subscriber::Attachment;
use super::IspId;
use crate::wire::MacAddr;
use std::net::Ipv4Addr;

/// An (ISP, address) key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DownstreamKey {
    /// ISP whose address space the address belongs to.
    pub isp: IspId,
    /// The subscriber's bound address.
    pub ipv4: u32,
}

/// One binding in 16 bytes.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable,
)]
#[repr(C)]
pub struct DownstreamSlot {
    ipv4: u32,
    attach: u32,
    mac_lo: u32,
    mac_hi: u16,
    /// ISP in the low 12 bits; bit 15 marks an occupied slot.
    isp_valid: u16,
}

const VALID: u16 = 0x8000;

impl DownstreamSlot {
    /// A binding of `key` to the subscriber at `attach` with `mac`.
    pub fn new(key: DownstreamKey, attach: Attachment, mac: MacAddr) -> Self {
        let m = mac.to_u64();
        Self {
            ipv4: key.ipv4,
            attach: attach.0,
            mac_lo: m as u32,
            mac_hi: (m >> 32) as u16,
            isp_valid: (key.isp & 0x0fff) | VALID,
        }
    }

    /// Where the subscriber attaches.
    pub fn attachment(&self) -> Attachment {
        Attachment(self.attach)
    }

    /// The subscriber's MAC address.
    pub fn mac(&self) -> MacAddr {
        MacAddr::from_u64((u64::from(self.mac_hi) << 32) | u64::from(self.mac_lo))
    }

    /// The bound address.
    pub fn ipv4(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.ipv4)
    }
}

impl Slot for DownstreamSlot {
    type Key = DownstreamKey;
    const EMPTY: Self = Self {
        ipv4: 0,
        attach: 0,
        mac_lo: 0,
        mac_hi: 0,
        isp_valid: 0,
    };

    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.isp_valid & VALID == 0
    }

    fn key(&self) -> DownstreamKey {
        DownstreamKey {
            isp: self.isp_valid & 0x0fff,
            ipv4: self.ipv4,
        }
    }

    #[inline(always)]
    fn matches(&self, k: &DownstreamKey) -> bool {
        self.ipv4 == k.ipv4 && self.isp_valid == (k.isp | VALID)
    }

    #[inline(always)]
    fn hash(k: &DownstreamKey) -> u64 {
        mix64(u64::from(k.ipv4) | (u64::from(k.isp) << 32))
    }

    #[inline(always)]
    fn word(&self) -> u32 {
        self.ipv4
    }
}

/// The downstream table.
pub type DownstreamTable = CuckooTable<DownstreamSlot>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_address_in_two_isps_are_distinct() {
        assert_eq!(core::mem::size_of::<DownstreamSlot>(), 16);
        let mut t = DownstreamTable::with_capacity(8);
        let a = u32::from(Ipv4Addr::new(10, 0, 0, 5));
        let m1 = MacAddr([2, 0, 0, 0, 0, 1]);
        let m2 = MacAddr([2, 0, 0, 0, 0, 2]);
        let at = Attachment::new(1, 10, 0).expect("range");
        t.insert(DownstreamSlot::new(
            DownstreamKey { isp: 1, ipv4: a },
            at,
            m1,
        ))
        .expect("room");
        t.insert(DownstreamSlot::new(
            DownstreamKey { isp: 2, ipv4: a },
            at,
            m2,
        ))
        .expect("room");
        assert_eq!(
            t.get(&DownstreamKey { isp: 1, ipv4: a }).map(|s| s.mac()),
            Some(m1)
        );
        assert_eq!(
            t.get(&DownstreamKey { isp: 2, ipv4: a }).map(|s| s.mac()),
            Some(m2)
        );
        assert!(t.get(&DownstreamKey { isp: 3, ipv4: a }).is_none());
    }
}
