//! `[ldp]`: label distribution by LDP (RFC 5036) on the routed ports' kernel twins, and what
//! each ISP's FECs are (`[[tables.isps]] ldp`).
//!
//! An ISP's upstream FEC is a prefix its tailend owns (`fec`: its hand-off prefix, or a /32
//! of its own): the node with the ISP's hand-off is its egress, advertising a label that it
//! pops and hands off to the ISP's `router`; the headend pushes the label it learns toward the
//! FEC. The downstream FEC is the ISP's subscriber prefix (`subscribers`): a node with access
//! ports is its egress; the tailend pushes what it learns for it. Labels say ISP: an egress
//! advertises a real label, never implicit null.

use std::net::Ipv4Addr;

use serde::Deserialize;

use crate::de::PortName;
use crate::ipv4_net::Ipv4Net;
use crate::next_hop::NextHop;

/// Where LDP's own labels come from unless `labels` says otherwise: above the labels people
/// type into `[tables]`.
pub const DEFAULT_LABELS: [u32; 2] = [100_000, 1_048_575];

/// `[ldp]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LdpConfig {
    /// The LSR ID (the first four octets of the LDP Identifier).
    pub router_id: Ipv4Addr,
    /// The address sessions' TCP connections use; the LSR ID by default. It must be one of
    /// the routed ports' addresses, or reachable through them.
    #[serde(default)]
    pub transport_address: Option<Ipv4Addr>,
    /// Routed ports LDP runs on (Hellos on their twins); every core port by default.
    #[serde(default)]
    pub interfaces: Option<Vec<PortName>>,
    /// Seconds between Link Hellos.
    #[serde(default = "default_hello_interval")]
    pub hello_interval_s: u16,
    /// Link Hello hold time proposed, seconds.
    #[serde(default = "default_hello_hold")]
    pub hello_hold_s: u16,
    /// KeepAlive time proposed, seconds.
    #[serde(default = "default_keepalive")]
    pub keepalive_s: u16,
    /// The labels LDP allocates, inclusive; `[tables.ilm]` labels must lie outside.
    #[serde(default = "default_labels")]
    pub labels: [u32; 2],
}

fn default_hello_interval() -> u16 {
    5
}
fn default_hello_hold() -> u16 {
    15
}
fn default_keepalive() -> u16 {
    180
}
fn default_labels() -> [u32; 2] {
    DEFAULT_LABELS
}

/// `[[tables.isps]] ldp`: an ISP's FECs.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IspLdp {
    /// The upstream FEC: a prefix the ISP's tailend owns.
    #[serde(default, deserialize_with = "crate::de::opt_ipv4_net")]
    pub fec: Option<Ipv4Net>,
    /// The ISP's router on its (first) hand-off: where the tailend sends what it pops.
    #[serde(default)]
    pub router: Option<NextHop>,
    /// The downstream FEC: the ISP's subscriber prefix, owned by the headend.
    #[serde(default, deserialize_with = "crate::de::opt_ipv4_net")]
    pub subscribers: Option<Ipv4Net>,
}

impl LdpConfig {
    /// Problems as (key path, message) that need nothing but this table.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        if self.router_id.is_unspecified() || self.router_id.is_multicast() {
            errs.push((
                "ldp.router_id".into(),
                "must be a unicast address of this node".into(),
            ));
        }
        if self.hello_interval_s == 0 || self.hello_interval_s >= self.hello_hold_s {
            errs.push((
                "ldp.hello_interval_s".into(),
                format!(
                    "must be at least 1 and below hello_hold_s ({})",
                    self.hello_hold_s
                ),
            ));
        }
        if self.keepalive_s == 0 {
            errs.push(("ldp.keepalive_s".into(), "must be at least 1".into()));
        }
        let [lo, hi] = self.labels;
        if lo < 16 || hi > 1_048_575 || lo > hi {
            errs.push((
                "ldp.labels".into(),
                "must be [first, last] within 16..=1048575 (0-15 are reserved)".into(),
            ));
        }
        errs
    }

    /// Whether `label` is one LDP allocates.
    pub fn allocates(&self, label: u32) -> bool {
        (self.labels[0]..=self.labels[1]).contains(&label)
    }
}
