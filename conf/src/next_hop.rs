//! Next hops as `[tables]` gives them: a MAC (a static entry, written as it is) or an IPv4
//! address, resolved at run time through the kernel's neighbour table. An entry whose next
//! hop is an address starts with MAC 00:00:00:00:00:00, which the fast path treats as
//! unresolved (`no_neighbour` drops); the slow path writes the MAC in once it is known.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use ispmux_dataplane::table::{Direction, Fec, IlmAction, IspId, TableUpdate};
use ispmux_dataplane::wire::MacAddr;
use serde::{Deserialize, Deserializer};

/// A next hop: where frames toward it are addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NextHop {
    /// A static MAC address (never 00:00:00:00:00:00 nor a group address).
    Mac(MacAddr),
    /// An IPv4 address on the port's link, resolved by ARP.
    Addr(Ipv4Addr),
}

impl NextHop {
    /// The MAC the tables start with: the static one, or zero (unresolved) for an address.
    pub fn initial_mac(self) -> MacAddr {
        match self {
            NextHop::Mac(m) => m,
            NextHop::Addr(_) => MacAddr::ZERO,
        }
    }

    /// The address to resolve, if it is one.
    pub fn addr(self) -> Option<Ipv4Addr> {
        match self {
            NextHop::Mac(_) => None,
            NextHop::Addr(a) => Some(a),
        }
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextHop::Mac(m) => m.fmt(f),
            NextHop::Addr(a) => a.fmt(f),
        }
    }
}

/// Why a next hop is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NextHopError {
    /// Neither an address nor a MAC.
    #[error("{0:?} is neither an IPv4 address (\"192.0.2.1\") nor a MAC (\"02:00:00:00:00:01\")")]
    Syntax(String),
    /// The zero MAC: it means "unresolved" in the tables.
    #[error("00:00:00:00:00:00 is no next hop (it means unresolved); give the neighbour's MAC or its IPv4 address")]
    ZeroMac,
    /// A group MAC: frames would flood.
    #[error("{0} is a group address; a next hop is one station")]
    GroupMac(MacAddr),
    /// An address no neighbour can have.
    #[error("{0} is not a unicast address a neighbour can have")]
    BadAddr(Ipv4Addr),
}

impl FromStr for NextHop {
    type Err = NextHopError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(a) = s.parse::<Ipv4Addr>() {
            if a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback() {
                return Err(NextHopError::BadAddr(a));
            }
            return Ok(NextHop::Addr(a));
        }
        let m: MacAddr = s.parse().map_err(|_| NextHopError::Syntax(s.to_owned()))?;
        if m == MacAddr::ZERO {
            return Err(NextHopError::ZeroMac);
        }
        if m.is_multicast() {
            return Err(NextHopError::GroupMac(m));
        }
        Ok(NextHop::Mac(m))
    }
}

impl<'de> Deserialize<'de> for NextHop {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `router_mac`, the older spelling of a hand-off's `router`: a MAC only.
pub(crate) fn opt_static_mac<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NextHop>, D::Error> {
    match NextHop::deserialize(d)? {
        m @ NextHop::Mac(_) => Ok(Some(m)),
        NextHop::Addr(a) => Err(serde::de::Error::custom(format!(
            "router_mac takes a MAC; for an address write router = \"{a}\""
        ))),
    }
}

/// A table entry whose next hop is an address: written again with each MAC the neighbour
/// gets (zero when it is lost).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextHopEntry {
    /// An ISP's FEC (headend upstream, tailend downstream).
    Fec {
        /// The ISP.
        isp: IspId,
        /// Which of its FECs.
        direction: Direction,
        /// The FEC as configured (its `next_hop` is replaced).
        fec: Fec,
    },
    /// An incoming label's swap or hand-off.
    Ilm {
        /// Incoming label.
        label: u32,
        /// The action as configured (its next hop or router MAC is replaced).
        action: IlmAction,
    },
}

impl NextHopEntry {
    /// Whether `other` writes the same table entry (an ISP's FEC in one direction, or one
    /// incoming label), whatever it writes there.
    pub fn same_entry(&self, other: &NextHopEntry) -> bool {
        match (self, other) {
            (
                NextHopEntry::Fec { isp, direction, .. },
                NextHopEntry::Fec {
                    isp: i,
                    direction: d,
                    ..
                },
            ) => isp == i && direction == d,
            (NextHopEntry::Ilm { label, .. }, NextHopEntry::Ilm { label: l, .. }) => label == l,
            _ => false,
        }
    }

    /// The update that writes this entry with next hop `mac`.
    pub fn update(&self, mac: MacAddr) -> TableUpdate {
        match *self {
            NextHopEntry::Fec {
                isp,
                direction,
                fec,
            } => TableUpdate::SetFec {
                isp,
                direction,
                fec: Some(Fec {
                    next_hop: mac,
                    ..fec
                }),
            },
            NextHopEntry::Ilm { label, action } => TableUpdate::SetIlm {
                label,
                action: Some(match action {
                    IlmAction::Swap {
                        out_label, port, ..
                    } => IlmAction::Swap {
                        out_label,
                        port,
                        next_hop: mac,
                    },
                    IlmAction::PopHandoff { isp, port, vid, .. } => IlmAction::PopHandoff {
                        isp,
                        port,
                        vid,
                        router_mac: mac,
                    },
                    other => other,
                }),
            },
        }
    }
}

/// A next hop to resolve: its port, its address and the entries that wait for its MAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToResolve {
    /// Port index (into `Config::ports`).
    pub port: u16,
    /// The neighbour's address.
    pub addr: Ipv4Addr,
    /// The entries that use it, in configuration order.
    pub entries: Vec<NextHopEntry>,
}

/// Gathers the entries of `[tables]` by the (port, address) they wait for.
#[derive(Default)]
pub(crate) struct Wanted {
    list: Vec<ToResolve>,
}

impl Wanted {
    /// Records that `entry` leaves on `port` toward `hop`; nothing for a static MAC.
    pub(crate) fn add(&mut self, port: u16, hop: NextHop, entry: NextHopEntry) {
        let Some(addr) = hop.addr() else { return };
        match self
            .list
            .iter_mut()
            .find(|w| w.port == port && w.addr == addr)
        {
            Some(w) => w.entries.push(entry),
            None => self.list.push(ToResolve {
                port,
                addr,
                entries: vec![entry],
            }),
        }
    }

    pub(crate) fn into_list(self) -> Vec<ToResolve> {
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_macs() {
        assert_eq!(
            "192.0.2.1".parse(),
            Ok(NextHop::Addr(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert_eq!(
            "02:00:00:00:00:01".parse(),
            Ok(NextHop::Mac(MacAddr([2, 0, 0, 0, 0, 1])))
        );
        assert_eq!(
            " 02-00-00-00-00-0a ".parse(),
            Ok(NextHop::Mac(MacAddr([2, 0, 0, 0, 0, 10])))
        );
    }

    #[test]
    fn refuses_what_is_no_next_hop() {
        assert_eq!(
            "00:00:00:00:00:00".parse::<NextHop>(),
            Err(NextHopError::ZeroMac)
        );
        assert!(matches!(
            "ff:ff:ff:ff:ff:ff".parse::<NextHop>(),
            Err(NextHopError::GroupMac(_))
        ));
        for a in ["0.0.0.0", "255.255.255.255", "224.0.0.1", "127.0.0.1"] {
            assert!(
                matches!(a.parse::<NextHop>(), Err(NextHopError::BadAddr(_))),
                "{a}"
            );
        }
        for s in ["", "router", "192.0.2", "02:00:00:00:00", "192.0.2.1/24"] {
            assert!(
                matches!(s.parse::<NextHop>(), Err(NextHopError::Syntax(_))),
                "{s}"
            );
        }
    }

    proptest::proptest! {
        /// Any text: refused with a reason, or a next hop that reads back from its display.
        #[test]
        fn any_text_parses_or_is_refused(s in "[0-9a-fA-F:.\\- ]{0,24}|\\PC{0,24}") {
            if let Ok(h) = s.parse::<NextHop>() {
                proptest::prop_assert_eq!(h.to_string().parse::<NextHop>(), Ok(h));
            }
        }
    }

    #[test]
    fn an_entry_is_written_again_with_the_mac() {
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        let fec = Fec {
            label: 1001,
            tc: 3,
            port: 1,
            next_hop: MacAddr::ZERO,
        };
        let e = NextHopEntry::Fec {
            isp: 4,
            direction: Direction::Downstream,
            fec,
        };
        assert_eq!(
            e.update(mac),
            TableUpdate::SetFec {
                isp: 4,
                direction: Direction::Downstream,
                fec: Some(Fec {
                    next_hop: mac,
                    ..fec
                })
            }
        );
        let e = NextHopEntry::Ilm {
            label: 2001,
            action: IlmAction::PopHandoff {
                isp: 1,
                port: 2,
                vid: 10,
                router_mac: MacAddr::ZERO,
            },
        };
        assert_eq!(
            e.update(mac),
            TableUpdate::SetIlm {
                label: 2001,
                action: Some(IlmAction::PopHandoff {
                    isp: 1,
                    port: 2,
                    vid: 10,
                    router_mac: mac
                })
            }
        );
    }

    #[test]
    fn entries_gather_by_port_and_address() {
        let a = NextHop::Addr(Ipv4Addr::new(192, 0, 2, 1));
        let swap = |label| NextHopEntry::Ilm {
            label,
            action: IlmAction::Swap {
                out_label: 100,
                port: 0,
                next_hop: MacAddr::ZERO,
            },
        };
        let mut w = Wanted::default();
        w.add(0, a, swap(20));
        w.add(1, a, swap(21));
        w.add(0, a, swap(22));
        w.add(0, NextHop::Mac(MacAddr([2, 0, 0, 0, 0, 1])), swap(23));
        let l = w.into_list();
        assert_eq!(l.len(), 2);
        assert_eq!((l[0].port, l[0].entries.len()), (0, 2));
        assert_eq!((l[1].port, l[1].entries.len()), (1, 1));
    }
}
