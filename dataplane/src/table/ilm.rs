//! The incoming label map (RFC 3031 section 3.11): top label → what to do with the packet.

use super::cuckoo::{mix64, CuckooTable, Slot};
use super::IspId;
use crate::wire::MacAddr;

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

    /// The action.
    #[inline(always)]
    pub fn action(&self) -> IlmAction {
        match self.label_kind >> 24 {
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

/// The ILM table.
pub type IlmTable = CuckooTable<IlmSlot>;

#[cfg(test)]
mod tests {
    use super::*;

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
            assert!(s.matches(&1000) && !s.matches(&1001));
        }
    }
}
