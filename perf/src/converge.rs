//! What `perf/run ldp-converge` generates and reads: the chain's configurations for N ISP
//! FECs learned by LDP, the subscribers' probe frames, and what `ispmux ctl --json` and
//! FRR's `show mpls ldp binding json` say about convergence.
//!
//! ISP `i` (1..=N) has the FEC `fec(i)`, a /32 the tailend owns for it: ISPs in the first
//! half are *steady*, in 100.64.0.0/16; the others are *churned*, in 100.65.0.0/16, whose
//! one covering route at the transit the benchmark flaps. Its subscriber at the headend is
//! the only one of that ISP; the tailend hands it off on VLAN `i` of one hand-off port to
//! one router MAC (no ARP: what arrives is counted by the tailend's per-ISP counters).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ispmux_dataplane::wire::{
    ipv4::protocol, EtherType, EthernetFrame, EthernetRepr, Ipv4Packet, Ipv4Repr, MacAddr,
    UdpPacket, UdpRepr,
};

/// The steady FECs' block (one route at the transit, never touched).
pub const STEADY_BLOCK: &str = "100.64.0.0/16";
/// The churned FECs' block (one route at the transit, flapped).
pub const CHURNED_BLOCK: &str = "100.65.0.0/16";
/// Both blocks: the headend's one route toward the transit.
pub const ALL_BLOCKS: &str = "100.64.0.0/15";
/// The headend's access port MAC (its veth's, since the port has none of its own).
pub const HEAD_ACC0: &str = "02:00:00:01:00:01";
/// The ISPs' router on the tailend's hand-off (static: never resolved).
pub const ISP_ROUTER: &str = "02:00:00:ee:00:01";
/// Where the probes go (an ISP's server, any address beyond the hand-off).
pub const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 200, 2);
/// UDP discard (RFC 863): the probes' port.
const DISCARD: u16 = 9;
/// Probe payload: a 64-byte IPv4 packet in all.
const PAYLOAD: usize = 64 - 20 - 8;

/// ISP ids are 1..=N; VLAN ids and the ISP table bound N.
pub const MAX_FECS: u32 = 4094;

/// Whether ISP `i` of `n` is in the churned half.
pub fn churned(i: u32, n: u32) -> bool {
    i > n / 2
}

/// ISP `i`'s FEC address (a /32).
pub fn fec(i: u32, n: u32) -> Ipv4Addr {
    let base: u32 = if churned(i, n) {
        0x6441_0000
    } else {
        0x6440_0000
    };
    Ipv4Addr::from(base + i)
}

/// ISP `i`'s subscriber: MAC and address.
pub fn subscriber(i: u32) -> (MacAddr, Ipv4Addr) {
    let [_, _, hi, lo] = i.to_be_bytes();
    (
        MacAddr([0x02, 0x00, 0x00, 0xcc, hi, lo]),
        Ipv4Addr::new(198, 19, hi, lo),
    )
}

/// ISP `i`'s probe: a UDP datagram from its subscriber to [`SERVER`], to the headend's access
/// port.
pub fn probe(i: u32) -> Vec<u8> {
    let (mac, src) = subscriber(i);
    let udp = UdpRepr {
        src_port: 40_000,
        dst_port: DISCARD,
        payload_len: PAYLOAD as u16,
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: SERVER,
        protocol: protocol::UDP,
        payload_len: (udp.buffer_len() + PAYLOAD) as u16,
        ttl: 64,
        dscp_ecn: 0,
        ident: 0,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    let eth = EthernetRepr {
        src_addr: mac,
        dst_addr: parse_mac(HEAD_ACC0),
        ethertype: EtherType::IPV4,
    };
    let mut f = vec![0u8; eth.buffer_len() + ip.buffer_len() + udp.buffer_len() + PAYLOAD];
    let mut e = EthernetFrame::new_unchecked(&mut f[..]);
    // The buffer is sized from the headers' own lengths: none of the emits can fail.
    let _ = eth.emit(&mut e);
    let mut p = Ipv4Packet::new_unchecked(e.payload_mut());
    let _ = ip.emit(&mut p);
    let mut u = UdpPacket::new_unchecked(p.payload_mut());
    let _ = udp.emit(&mut u);
    u.fill_checksum(src, SERVER);
    f
}

fn parse_mac(s: &str) -> MacAddr {
    let mut m = [0u8; 6];
    for (b, h) in m.iter_mut().zip(s.split(':')) {
        *b = u8::from_str_radix(h, 16).unwrap_or(0);
    }
    MacAddr(m)
}

/// `[tables.limits]` for N ISPs (ids 1..=N), their hand-offs and labels.
fn limits(n: u32) -> String {
    format!(
        "\n[tables.limits]\nmax_isps = {}\nmax_handoffs = {}\nmax_labels = {}\nmax_subscribers = {}\n",
        n + 1,
        n.max(1),
        4 * n + 64,
        n.max(1024)
    )
}

/// `[ldp]` of one node: Hellos every second (held 3 s), as the chain tests run.
pub fn ldp(router_id: &str) -> String {
    format!("\n[ldp]\nrouter_id = \"{router_id}\"\nhello_interval_s = 1\nhello_hold_s = 3\n")
}

/// The headend's `[tables]`: every ISP with its FEC (pushed once learned) and its one bound
/// subscriber on `acc0`.
pub fn headend_tables(n: u32) -> String {
    let mut s = limits(n);
    for i in 1..=n {
        s += &format!(
            "\n[[tables.isps]]\nid = {i}\nname = \"isp{i}\"\nldp = {{ fec = \"{}/32\" }}\n",
            fec(i, n)
        );
    }
    for i in 1..=n {
        let (mac, ip) = subscriber(i);
        s += &format!(
            "\n[[tables.subscribers]]\nport = \"acc0\"\nmac = \"{mac}\"\nisp = {i}\nipv4 = \"{ip}\"\n"
        );
    }
    s
}

/// The tailend's `[tables]`: every ISP handed off on VLAN `i` of `h0` to [`ISP_ROUTER`], its
/// FEC advertised from there.
pub fn tailend_tables(n: u32) -> String {
    let mut s = limits(n);
    for i in 1..=n {
        s += &format!(
            "\n[[tables.isps]]\nid = {i}\nname = \"isp{i}\"\nhandoff = [{{ port = \"h0\", vlan = {i} }}]\n\
             ldp = {{ fec = \"{}/32\", router = \"{ISP_ROUTER}\" }}\n",
            fec(i, n)
        );
    }
    s
}

/// The FECs (as `a.b.c.d/32`) the headend's `ctl ldp --json` answer shows with an in-use
/// label from a next hop (one the label map can push: above the reserved 0-15).
pub fn pushed_fecs(view: &serde_json::Value) -> BTreeSet<String> {
    let Some(rows) = view.get("bindings").and_then(|b| b.as_array()) else {
        return BTreeSet::new();
    };
    rows.iter()
        .filter(|r| {
            r.get("remote").and_then(|v| v.as_array()).is_some_and(|v| {
                v.iter().any(|l| {
                    l.get("in_use").and_then(|u| u.as_bool()) == Some(true)
                        && l.get("label")
                            .and_then(|l| l.as_u64())
                            .is_some_and(|l| l > 15)
                })
            })
        })
        .filter_map(|r| r.get("fec").and_then(|f| f.as_str()).map(str::to_owned))
        .collect()
}

/// Per ISP id, packets handed off at the tailend (`tailend_up`), from `ctl --json stats`.
pub fn handed_off(stats: &serde_json::Value) -> BTreeMap<u32, u64> {
    let Some(isps) = stats.pointer("/pipeline/isps").and_then(|v| v.as_array()) else {
        return BTreeMap::new();
    };
    isps.iter()
        .filter_map(|s| {
            let id = s.get("id")?.as_u64()? as u32;
            let n = s.pointer("/tailend_up/packets")?.as_u64()?;
            Some((id, n))
        })
        .collect()
}

/// A counter at `path` (`/slowpath/label_map/push_written`) of a JSON answer; 0 if absent.
pub fn counter(v: &serde_json::Value, path: &str) -> u64 {
    v.pointer(path).and_then(|c| c.as_u64()).unwrap_or(0)
}

/// Probes ISP `i` got in a round-robin over ISPs 1..=n that sent `total` in all, starting
/// with ISP 1.
pub fn sent_to(i: u32, n: u32, total: u64) -> u64 {
    let n = u64::from(n.max(1));
    total / n + u64::from(u64::from(i - 1) < total % n)
}

/// Forwarding loss of a set of ISPs: 1 - received / sent, summed over them.
pub fn loss(sent: u64, received: u64) -> f64 {
    if sent == 0 {
        return 0.0;
    }
    1.0 - (received.min(sent) as f64 / sent as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn fecs_split_into_a_steady_and_a_churned_block() {
        assert_eq!(fec(1, 1000), Ipv4Addr::new(100, 64, 0, 1));
        assert_eq!(fec(500, 1000), Ipv4Addr::new(100, 64, 1, 244));
        assert_eq!(fec(501, 1000), Ipv4Addr::new(100, 65, 1, 245));
        assert_eq!(fec(1000, 1000), Ipv4Addr::new(100, 65, 3, 232));
        let all: BTreeSet<_> = (1..=1000).map(|i| fec(i, 1000)).collect();
        assert_eq!(all.len(), 1000);
    }

    #[test]
    fn probe_is_a_64_byte_ipv4_udp_datagram_from_the_subscriber() {
        let f = probe(258);
        assert_eq!(f.len(), 14 + 64);
        assert_eq!(&f[0..6], &[2, 0, 0, 1, 0, 1]);
        assert_eq!(&f[6..12], &[2, 0, 0, 0xcc, 1, 2]);
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        assert_eq!(&f[26..30], &[198, 19, 1, 2], "source");
        assert_eq!(&f[30..34], &[198, 18, 200, 2], "destination");
    }

    #[test]
    fn the_generated_configurations_are_valid() {
        let node = "[eal]\nlcores = [0, 1]\n\n[dataplane]\npipeline = \"node\"\n\n";
        let head = format!(
            "{node}[[port]]\nname = \"acc0\"\ndevice = \"net_null0\"\nrole = \"access\"\n\n\
             [[port]]\nname = \"core0\"\ndevice = \"net_null1\"\nrole = \"core\"\naddress = \"10.0.12.1/30\"\n{}{}",
            headend_tables(1000),
            ldp("10.0.12.1")
        );
        let tail = format!(
            "{node}[[port]]\nname = \"core0\"\ndevice = \"net_null0\"\nrole = \"core\"\naddress = \"10.0.23.2/30\"\n\n\
             [[port]]\nname = \"h0\"\ndevice = \"net_null1\"\nrole = \"handoff\"\naddress = \"198.18.200.1/24\"\n{}{}",
            tailend_tables(1000),
            ldp("10.0.23.2")
        );
        for (name, text) in [("headend", head), ("tailend", tail)] {
            let cfg = ispmux_conf::parse(&text, Path::new("t.toml"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(cfg.tables.isps.len(), 1000, "{name}");
        }
    }

    #[test]
    fn ctl_answers_are_read() {
        let view = serde_json::json!({"bindings": [
            {"fec": "100.64.0.1/32", "local": 100000, "egress": false, "next_hop": "10.0.12.2",
             "remote": [{"peer": "10.0.12.2", "label": 100001, "in_use": true}]},
            {"fec": "100.64.0.2/32", "local": null, "egress": false, "next_hop": null,
             "remote": [{"peer": "10.0.12.2", "label": 100002, "in_use": false}]},
            {"fec": "100.64.0.3/32", "local": null, "egress": false, "next_hop": "10.0.12.2",
             "remote": [{"peer": "10.0.12.2", "label": 3, "in_use": true}]}
        ]});
        assert_eq!(
            pushed_fecs(&view).into_iter().collect::<Vec<_>>(),
            ["100.64.0.1/32"]
        );
        let stats = serde_json::json!({"pipeline": {"isps": [
            {"id": 1, "name": "isp1", "tailend_up": {"packets": 7, "bytes": 448}},
            {"id": 2, "name": "isp2", "tailend_up": {"packets": 0, "bytes": 0}}
        ]}, "slowpath": {"label_map": {"push_written": 5}}});
        assert_eq!(handed_off(&stats), BTreeMap::from([(1, 7), (2, 0)]));
        assert_eq!(counter(&stats, "/slowpath/label_map/push_written"), 5);
        assert_eq!(counter(&stats, "/nothing"), 0);
    }

    #[test]
    fn round_robin_shares_and_loss() {
        assert_eq!(sent_to(1, 4, 10), 3);
        assert_eq!(sent_to(2, 4, 10), 3);
        assert_eq!(sent_to(3, 4, 10), 2);
        assert_eq!((1..=4).map(|i| sent_to(i, 4, 10)).sum::<u64>(), 10);
        assert_eq!(loss(0, 0), 0.0);
        assert!((loss(200, 196) - 0.02).abs() < 1e-9);
        assert_eq!(loss(10, 12), 0.0);
    }
}
