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

/// The longest TCP MD5 key Linux takes (`TCP_MD5SIG_MAXKEYLEN`).
pub const MD5_KEY_MAX: usize = 80;

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
    /// GTSM (RFC 6720): advertised in Link Hellos, and used on the sessions of neighbours
    /// that advertise it too.
    #[serde(default = "default_gtsm")]
    pub gtsm: bool,
    /// Settings of particular neighbours, by LSR ID (`[[ldp.neighbours]]`).
    #[serde(default)]
    pub neighbours: Vec<LdpNeighbour>,
}

/// `[[ldp.neighbours]]`: one neighbour, named by its LSR ID as FRR's
/// `neighbor A.B.C.D password WORD` names it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LdpNeighbour {
    /// The neighbour's LSR ID.
    pub router_id: Ipv4Addr,
    /// The TCP MD5 signature key (RFC 5036 §2.9) of its session: 1 to 80 bytes.
    pub password: Md5Key,
}

/// A TCP MD5 key. Its `Debug` does not show it, so it stays out of logs.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Md5Key(pub String);

impl std::fmt::Debug for Md5Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Md5Key({} bytes)", self.0.len())
    }
}

impl Md5Key {
    /// The key's bytes, as the kernel takes them.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
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
fn default_gtsm() -> bool {
    true
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
        let mut seen = std::collections::BTreeSet::new();
        for (i, n) in self.neighbours.iter().enumerate() {
            if n.router_id == self.router_id {
                errs.push((
                    format!("ldp.neighbours[{i}].router_id"),
                    "is this node's own LSR ID".into(),
                ));
            } else if !seen.insert(n.router_id) {
                errs.push((
                    format!("ldp.neighbours[{i}].router_id"),
                    format!("neighbour {} is listed twice", n.router_id),
                ));
            }
            let len = n.password.as_bytes().len();
            if len == 0 || len > MD5_KEY_MAX {
                errs.push((
                    format!("ldp.neighbours[{i}].password"),
                    format!("a TCP MD5 key has 1 to {MD5_KEY_MAX} bytes, not {len}"),
                ));
            }
        }
        errs
    }

    /// The TCP MD5 key of the neighbour with LSR ID `lsr`, if it has one.
    pub fn password(&self, lsr: Ipv4Addr) -> Option<&Md5Key> {
        self.neighbours
            .iter()
            .find(|n| n.router_id == lsr)
            .map(|n| &n.password)
    }

    /// Whether `label` is one LDP allocates.
    pub fn allocates(&self, label: u32) -> bool {
        (self.labels[0]..=self.labels[1]).contains(&label)
    }
}
