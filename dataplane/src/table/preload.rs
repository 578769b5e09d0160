//! What the tables start with, as plain values (ports by index), turned into the same
//! [`TableUpdate`]s the slow path sends later. The `conf` crate builds it from the
//! configuration file (ports by name there) and the subscribers CSV.

use super::{
    Direction, Fec, IlmAction, IspId, Limits, SubscriberKey, TableError, TableUpdate, Tables,
};
use crate::wire::MacAddr;
use std::net::Ipv4Addr;

/// Everything a node's tables start with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreloadTables {
    /// Table sizes.
    pub limits: Limits,
    /// ISPs with their FECs, gateway and hand-off attachment.
    pub isps: Vec<IspPreload>,
    /// Incoming label map.
    pub ilm: Vec<IlmPreload>,
    /// Subscribers, optionally already bound.
    pub subscribers: Vec<SubscriberPreload>,
}

/// One ISP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IspPreload {
    /// ISP id (index in tables and counters).
    pub id: IspId,
    /// Human name, for counters output.
    pub name: String,
    /// Gateway address its subscribers use.
    pub gateway: Option<Ipv4Addr>,
    /// FEC pushed at the headend.
    pub upstream: Option<FecPreload>,
    /// FEC pushed at the tailend for traffic from the ISP.
    pub downstream: Option<FecPreload>,
    /// Where the ISP attaches at the tailend.
    pub handoff: Vec<HandoffPreload>,
}

/// A label binding and where it leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FecPreload {
    /// Label to push.
    pub label: u32,
    /// Traffic class.
    pub tc: u8,
    /// Core port.
    pub port: u16,
    /// Next hop's MAC address ("02:00:00:00:00:01").
    pub next_hop: MacAddr,
}

impl From<FecPreload> for Fec {
    fn from(f: FecPreload) -> Fec {
        Fec {
            label: f.label,
            tc: f.tc,
            port: f.port,
            next_hop: f.next_hop,
        }
    }
}

/// A hand-off port and VLAN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandoffPreload {
    /// Hand-off port.
    pub port: u16,
    /// VLAN ID, 0 or absent = untagged.
    pub vlan: u16,
}

/// One incoming label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IlmPreload {
    /// Incoming label.
    pub label: u32,
    /// What to do.
    pub action: IlmActionPreload,
}

/// The action of an incoming label, as written in configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IlmActionPreload {
    /// Transit swap.
    Swap {
        /// Outgoing label.
        out_label: u32,
        /// Core port.
        port: u16,
        /// Next hop MAC.
        next_hop: MacAddr,
    },
    /// Tailend pop and hand-off.
    PopHandoff {
        /// ISP (accounting).
        isp: IspId,
        /// Hand-off port.
        port: u16,
        /// VLAN (0 = untagged).
        vlan: u16,
        /// ISP router MAC.
        router_mac: MacAddr,
    },
    /// Headend pop and deliver.
    PopDeliver {
        /// ISP.
        isp: IspId,
    },
}

impl From<IlmActionPreload> for IlmAction {
    fn from(a: IlmActionPreload) -> IlmAction {
        match a {
            IlmActionPreload::Swap {
                out_label,
                port,
                next_hop,
            } => IlmAction::Swap {
                out_label,
                port,
                next_hop,
            },
            IlmActionPreload::PopHandoff {
                isp,
                port,
                vlan,
                router_mac,
            } => IlmAction::PopHandoff {
                isp,
                port,
                vid: vlan,
                router_mac,
            },
            IlmActionPreload::PopDeliver { isp } => IlmAction::PopDeliver { isp },
        }
    }
}

/// One subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscriberPreload {
    /// Access port.
    pub port: u16,
    /// Outer (or only) VLAN, 0 = untagged.
    pub vlan: u16,
    /// Inner VLAN of QinQ, 0 = none.
    pub inner_vlan: u16,
    /// MAC address.
    pub mac: MacAddr,
    /// ISP id.
    pub isp: IspId,
    /// A static binding, if any.
    pub ipv4: Option<Ipv4Addr>,
}

/// A preload entry the tables refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("preload entry {index} ({update:?}): {error}")]
pub struct PreloadError {
    /// Position in [`PreloadTables::updates`].
    pub index: usize,
    /// The refused update.
    pub update: TableUpdate,
    /// Why.
    pub error: TableError,
}

impl PreloadTables {
    /// The updates that build these tables, in an order that satisfies their dependencies
    /// (ISPs before subscribers, registration before binding).
    pub fn updates(&self) -> Vec<TableUpdate> {
        let mut out = Vec::new();
        for i in &self.isps {
            if let Some(g) = i.gateway {
                out.push(TableUpdate::SetGateway { isp: i.id, addr: g });
            }
            for (direction, fec) in [
                (Direction::Upstream, i.upstream),
                (Direction::Downstream, i.downstream),
            ] {
                if let Some(f) = fec {
                    out.push(TableUpdate::SetFec {
                        isp: i.id,
                        direction,
                        fec: Some(f.into()),
                    });
                }
            }
            for h in &i.handoff {
                out.push(TableUpdate::SetHandoff {
                    port: h.port,
                    vid: h.vlan,
                    isp: Some(i.id),
                });
            }
        }
        for l in &self.ilm {
            out.push(TableUpdate::SetIlm {
                label: l.label,
                action: Some(l.action.into()),
            });
        }
        for s in &self.subscribers {
            let key = SubscriberKey {
                port: s.port,
                outer_vid: s.vlan,
                inner_vid: s.inner_vlan,
                mac: s.mac,
            };
            out.push(TableUpdate::AddSubscriber { key, isp: s.isp });
            if let Some(addr) = s.ipv4 {
                out.push(TableUpdate::Bind { key, addr });
            }
        }
        out
    }

    /// ISP names by id, for [`crate::Counters::isp_lines`].
    pub fn isp_names(&self) -> Vec<(IspId, &str)> {
        self.isps.iter().map(|i| (i.id, i.name.as_str())).collect()
    }

    /// Builds one worker's tables; the first refused entry is an error.
    pub fn build(&self) -> Result<Tables, PreloadError> {
        self.build_with(|_| {})
    }

    /// Like [`PreloadTables::build`], calling `prepare` on the empty tables before filling
    /// them: the place to advise huge pages for [`Tables::memory_regions`] (still untouched)
    /// or to set the prefetch hook.
    pub fn build_with(&self, prepare: impl FnOnce(&mut Tables)) -> Result<Tables, PreloadError> {
        let mut t = Tables::new(self.limits);
        prepare(&mut t);
        for (index, update) in self.updates().into_iter().enumerate() {
            t.apply(&update).map_err(|error| PreloadError {
                index,
                update,
                error,
            })?;
        }
        Ok(t)
    }
}
