//! The three-node chain of the end-to-end tests (seed 003): two subscribers of two ISPs on
//! the headend's access ports, headend → transit → tailend over core links, the ISPs' routers
//! on the tailend's hand-off ports; each in a network namespace of its own, joined by veth
//! pairs, every ispmux port on net_af_packet. The tables are the tests' own (static labels,
//! or LDP).
//!
//! Each routed port has its own `mac`, another than its veth's (`…:0N` against `…:8N`), so
//! in a gateway's namespace only the twin's kernel takes the port's frames (the veths also
//! ignore ARP for the twins' addresses); the peers learn the port MACs from ARP the twins
//! answer.

use crate::netns::{veth, End, Netns};

pub const EAL: &str = r#"
[eal]
lcores = [0, 1]
memory_mb = 256
hugepages = "off"

[dataplane]
pipeline = "node"
idle_sleep = "on"
"#;

pub fn port(name: &str, n: usize, role: &str, mtu: u16) -> String {
    format!(
        "[[port]]\nname = \"{name}\"\ndevice = \"net_af_packet{n},iface={name}\"\nrole = \"{role}\"\nmtu = {mtu}\n\n"
    )
}

/// A routed port (core or hand-off): its own MAC and its address on the link (its twin's).
pub fn routed(name: &str, n: usize, role: &str, mtu: u16, mac: &str, address: &str) -> String {
    port(name, n, role, mtu).trim_end().to_owned()
        + &format!("\nmac = \"{mac}\"\naddress = \"{address}\"\n\n")
}

/// The routed ports' MACs (what the neighbours resolve); their veths end in `8N` instead.
pub const HEAD_CORE0: &str = "02:00:00:01:00:03";
pub const TRANSIT_C0: &str = "02:00:00:02:00:01";
pub const TRANSIT_C1: &str = "02:00:00:02:00:02";
pub const TAIL_CORE0: &str = "02:00:00:03:00:01";
pub const TAIL_H0: &str = "02:00:00:03:00:02";
pub const TAIL_H1: &str = "02:00:00:03:00:03";
/// The bypass link's ports ([`bypass`]).
pub const HEAD_CORE1: &str = "02:00:00:01:00:04";
pub const TAIL_CORE1: &str = "02:00:00:03:00:04";

/// The veth under a routed port: the port's MAC with the last byte's top bit set.
pub fn veth_mac(port_mac: &str) -> String {
    let (head, last) = port_mac.rsplit_once(':').expect("mac");
    let b = u8::from_str_radix(last, 16).expect("mac byte") | 0x80;
    format!("{head}:{b:02x}")
}

/// The headend's ports.
pub fn headend_ports() -> String {
    port("acc0", 0, "access", 1500)
        + &port("acc1", 1, "access", 1500)
        + &routed("core0", 2, "core", 1600, HEAD_CORE0, "10.0.12.1/30")
}

/// The transit's two core ports.
pub fn transit_ports() -> String {
    routed("c0", 0, "core", 1600, TRANSIT_C0, "10.0.12.2/30")
        + &routed("c1", 1, "core", 1600, TRANSIT_C1, "10.0.23.1/30")
}

/// The tailend's core port and its hand-off ports to ISP A and ISP B, each answering ARP for
/// its ISP's subscriber pool.
pub fn tailend_ports() -> String {
    routed("core0", 0, "core", 1600, TAIL_CORE0, "10.0.23.2/30")
        + &routed("h0", 1, "handoff", 1500, TAIL_H0, "198.18.1.254/24")
        + "proxy_arp = [\"198.18.1.0/25\"]\n\n"
        + &routed("h1", 2, "handoff", 1500, TAIL_H1, "198.18.2.254/24")
        + "proxy_arp = [\"198.18.2.0/25\"]\n\n"
}

/// The headend's and the tailend's ports on the bypass link ([`bypass`]), each after the
/// node's other ports.
pub fn bypass_ports() -> (String, String) {
    (
        routed("core1", 3, "core", 1600, HEAD_CORE1, "10.0.13.1/30"),
        routed("core1", 3, "core", 1600, TAIL_CORE1, "10.0.13.2/30"),
    )
}

/// A second core link, headend to tailend directly (10.0.13.0/30), so a route change can
/// move a FEC from the transit to the tailend.
pub fn bypass(t: &Topology) {
    veth(
        End {
            ns: &t.head,
            dev: "core1",
            mac: &veth_mac(HEAD_CORE1),
        },
        End {
            ns: &t.tail,
            dev: "core1",
            mac: &veth_mac(TAIL_CORE1),
        },
    );
    for ns in [&t.head, &t.tail] {
        ns.sysctl("net.ipv4.conf.core1.arp_ignore=1");
        ns.ip(&["link", "set", "core1", "mtu", "1600"]);
    }
}

/// The chain's namespaces.
pub struct Topology {
    pub sub_a: Netns,
    pub sub_b: Netns,
    pub head: Netns,
    pub transit: Netns,
    pub tail: Netns,
    pub isp_a: Netns,
    pub isp_b: Netns,
}

/// Builds the chain; subscriber A gets its address by hand only with `static_a` (else by
/// DHCP, in the test).
pub fn topology(static_a: bool) -> Topology {
    let t = Topology {
        sub_a: Netns::new("sa"),
        sub_b: Netns::new("sb"),
        head: Netns::new("hd"),
        transit: Netns::new("tr"),
        tail: Netns::new("tl"),
        isp_a: Netns::new("ia"),
        isp_b: Netns::new("ib"),
    };
    let e = |ns, dev, mac| End { ns, dev, mac };
    veth(
        e(&t.sub_a, "eth0", "02:00:00:aa:00:01"),
        e(&t.head, "acc0", "02:00:00:01:00:01"),
    );
    veth(
        e(&t.sub_b, "eth0", "02:00:00:bb:00:01"),
        e(&t.head, "acc1", "02:00:00:01:00:02"),
    );
    let macs = [
        HEAD_CORE0, TRANSIT_C0, TRANSIT_C1, TAIL_CORE0, TAIL_H0, TAIL_H1,
    ]
    .map(veth_mac);
    veth(e(&t.head, "core0", &macs[0]), e(&t.transit, "c0", &macs[1]));
    veth(e(&t.transit, "c1", &macs[2]), e(&t.tail, "core0", &macs[3]));
    veth(
        e(&t.tail, "h0", &macs[4]),
        e(&t.isp_a, "eth0", "02:00:00:0a:00:01"),
    );
    veth(
        e(&t.tail, "h1", &macs[5]),
        e(&t.isp_b, "eth0", "02:00:00:0b:00:01"),
    );
    // The veths under the routed ports carry no address and must not answer ARP for the
    // twins' addresses in the same namespace: only the twins answer.
    for (ns, dev) in [
        (&t.head, "core0"),
        (&t.transit, "c0"),
        (&t.transit, "c1"),
        (&t.tail, "core0"),
        (&t.tail, "h0"),
        (&t.tail, "h1"),
    ] {
        ns.sysctl(&format!("net.ipv4.conf.{dev}.arp_ignore=1"));
    }
    // A label needs room: core links carry 1500-byte IPv4 plus the shim.
    for (ns, dev) in [
        (&t.head, "core0"),
        (&t.transit, "c0"),
        (&t.transit, "c1"),
        (&t.tail, "core0"),
    ] {
        ns.ip(&["link", "set", dev, "mtu", "1600"]);
    }
    for (sub, isp, net) in [
        (&t.sub_a, &t.isp_a, "198.18.1"),
        (&t.sub_b, &t.isp_b, "198.18.2"),
    ] {
        if static_a || net.ends_with('2') {
            sub.addr("eth0", &format!("{net}.10/24"));
            sub.ip(&["route", "add", "default", "via", &format!("{net}.1")]);
        }
        // The ISP's server; .1 is the gateway address the headend answers for (proxy ARP).
        isp.addr("eth0", &format!("{net}.2/24"));
        // The ISP reaches its subscribers through the tailend's hand-off port, which answers
        // its ARP for the subscriber pool (proxy_arp): no static neighbour entries.
    }
    t
}
