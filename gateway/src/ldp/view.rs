//! What `ispmux ctl ldp` shows and the slow path counts: plain data, serialisable.

use std::net::Ipv4Addr;

use ispmux_slowpath::ldp::{Binding, Neighbour};
use serde::{Deserialize, Serialize};

/// LDP's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LdpStats {
    /// Sessions OPERATIONAL now.
    pub sessions_up: u64,
    /// Sessions that reached OPERATIONAL since start.
    pub sessions_established: u64,
    /// OPERATIONAL sessions that ended since start.
    pub sessions_lost: u64,
    /// Hello datagrams received / sent.
    pub hellos_in: u64,
    pub hellos_out: u64,
    /// Hellos that could not be sent (socket error, buffer full).
    pub hello_errors: u64,
    /// PDUs received (as the engine counts them) / written to sessions.
    pub pdus_in: u64,
    pub pdus_out: u64,
    /// TCP connections that failed: refused, reset, timed out, a socket error.
    pub connection_errors: u64,
    /// Sessions closed because the peer did not read what it was sent.
    pub slow_readers_closed: u64,
    /// FEC state changes handed to the fast-path mapping.
    pub fec_changes: u64,
    /// FECs whose route is followed.
    pub fecs_followed: u64,
    /// Connections from a keyed neighbour's address accepted before its TCP MD5 key was
    /// on the listener, refused as its session.
    #[serde(default)]
    pub md5_refused: u64,
    /// The kernel's TCP MD5 drops in the node's network namespace (`TcpExt` of
    /// `/proc/net/netstat`): a segment without the key expected, with a key not expected,
    /// with a signature that does not match (a wrong key).
    #[serde(default)]
    pub md5_kernel_not_found: u64,
    #[serde(default)]
    pub md5_kernel_unexpected: u64,
    #[serde(default)]
    pub md5_kernel_failure: u64,
}

/// One neighbour, for `ctl ldp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighbourRow {
    /// Its LDP Identifier (`lsr-id:label-space`).
    pub ldp_id: String,
    pub lsr_id: Ipv4Addr,
    pub transport: Option<Ipv4Addr>,
    /// The session state by its RFC 5036 name (`OPERATIONAL`, ...); none without a session.
    pub state: Option<String>,
    /// `active` or `passive`: who opens the connection.
    pub role: String,
    /// Seconds OPERATIONAL.
    pub uptime_s: Option<u64>,
    /// The twins it is heard on.
    pub interfaces: Vec<String>,
    /// Its addresses, from its Address messages.
    pub addresses: Vec<Ipv4Addr>,
    /// Its session is signed with a TCP MD5 key (`[[ldp.neighbours]] password`).
    #[serde(default)]
    pub md5: bool,
    /// Its session uses GTSM: both sides advertise it (RFC 6720).
    #[serde(default)]
    pub gtsm: bool,
}

/// A peer's label for a FEC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteLabel {
    /// The peer's LSR ID.
    pub peer: Ipv4Addr,
    pub label: u32,
    /// It is the next hop's: the one forwarding uses.
    pub in_use: bool,
}

/// One FEC's bindings, for `ctl ldp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingRow {
    /// The prefix, `a.b.c.d/len`.
    pub fec: String,
    /// The label this node advertises for it.
    pub local: Option<u32>,
    /// This node is its egress.
    pub egress: bool,
    /// The route's next hop toward it.
    pub next_hop: Option<Ipv4Addr>,
    pub remote: Vec<RemoteLabel>,
}

/// The answer to `ctl ldp`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LdpView {
    pub lsr_id: Option<Ipv4Addr>,
    pub neighbours: Vec<NeighbourRow>,
    pub bindings: Vec<BindingRow>,
    pub stats: LdpStats,
}

impl NeighbourRow {
    /// The row of `n`; `ifname` names interface indexes; `md5` if it has a key.
    pub fn of(n: &Neighbour, ifname: impl Fn(u32) -> String, md5: bool) -> NeighbourRow {
        NeighbourRow {
            ldp_id: n.peer.to_string(),
            lsr_id: n.peer.lsr_id,
            transport: n.transport,
            state: n.state.map(|s| s.to_string()),
            role: format!("{:?}", n.role).to_lowercase(),
            uptime_s: n.uptime.map(|d| d.as_secs()),
            interfaces: n.interfaces.iter().map(|i| ifname(*i)).collect(),
            addresses: n.addresses.clone(),
            md5,
            gtsm: n.gtsm,
        }
    }
}

impl From<&Binding> for BindingRow {
    fn from(b: &Binding) -> BindingRow {
        BindingRow {
            fec: format!("{}/{}", b.fec.addr, b.fec.len),
            local: b.local,
            egress: b.egress,
            next_hop: b.next_hop,
            remote: b
                .remote
                .iter()
                .map(|(peer, label, in_use)| RemoteLabel {
                    peer: *peer,
                    label: *label,
                    in_use: *in_use,
                })
                .collect(),
        }
    }
}

/// LDP PDUs in `data` (whole PDUs written to a session): each is its 4-octet version and
/// length, then `length` octets.
pub fn count_pdus(data: &[u8]) -> u64 {
    let mut n = 0;
    let mut rest = data;
    while let Some(len) = rest.get(2..4) {
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        n += 1;
        rest = rest.get(4 + len..).unwrap_or(&[]);
    }
    n
}

#[cfg(test)]
mod tests {
    #[test]
    fn pdus_are_counted_by_their_lengths() {
        let ka = [0, 1, 0, 14, 1, 1, 1, 1, 0, 0, 0x02, 0x01, 0, 4, 0, 0, 0, 1];
        assert_eq!(super::count_pdus(&ka), 1);
        assert_eq!(super::count_pdus(&[ka, ka].concat()), 2);
        assert_eq!(super::count_pdus(&[]), 0);
        assert_eq!(super::count_pdus(&[0, 1, 0xff]), 0, "a cut header");
        assert_eq!(super::count_pdus(&[0, 1, 0xff, 0xff, 1]), 1, "a cut body");
    }
}
