//! Kernel twins (the pattern VPP calls linux-cp): every core and hand-off port of a node
//! pipeline has a TAP interface in the gateway's network namespace with the port's MAC,
//! MTU and address. What arrives on the port for the gateway itself (ARP the slow path does
//! not answer, ping, LDP's hellos to 224.0.0.2 and sessions to the port's address) is
//! written to the twin, and what the kernel sends out of the twin leaves by the port. The
//! kernel then answers ARP and ping for the port's address, keeps the neighbour table, and
//! runs any socket protocol (LDP, BFD, an IGP) on the twin as on a plain interface.
//!
//! Transport: a plain `/dev/net/tun` descriptor per twin, nonblocking, read and written by
//! the slow-path thread between punt bursts (and waited on with `poll` when it idles). The
//! workers keep their rings and never meet a system call; the slow path never blocks on
//! the kernel: a frame the kernel does not take is a counted drop. DPDK's `net_tap` would
//! be a port of its own with queues polled by a worker, and `virtio_user` needs vhost-net
//! and a worker's queue too: both put kernel traffic on the fast path's lcores, which the
//! control traffic (a few hundred frames a second) does not need.
//!
//! Each twin is configured over rtnetlink ([`crate::rtnl`]) and with sysctls that keep
//! the kernel from speaking for addresses it does not own on the link:
//! - `arp_ignore = 1`: answer ARP only for addresses of the twin itself, not for every
//!   local address (the core twin must not answer for the hand-off twin's address);
//! - `arp_announce = 2`: source ARP requests from the twin's own address;
//! - `rp_filter = 2` (loose): accept a source the kernel has any route back to, so a ping
//!   from beyond the core neighbour is answered when a route exists, and spoofed sources
//!   with no route are not;
//! - `disable_ipv6 = 1`: no IPv6 link-local address, router solicitations or DAD on the
//!   link while the fast path has no IPv6.
//!
//! A twin is not persistent: closing its descriptor (when the slow path ends, at shutdown)
//! removes the interface, with its addresses and routes, also when the process dies.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use ispmux_conf::Config;
use ispmux_slowpath::dhcp::service::Inject;
use ispmux_sys::Tap;

use crate::error::{GatewayError, Step};
use crate::rtnl::Rtnl;
use crate::slowpath::SlowPathStats;

/// Longest frame the slow path injects: an mbuf's data room. The kernel sends up to the
/// twin's MTU plus link header, within this at the MTUs ports use (up to 2,030 bytes of
/// payload); a longer frame (a jumbo MTU) is a counted drop.
const INJECT_MAX: usize = 2048;

/// One port's twin.
struct Twin {
    /// Configuration port index.
    port: u16,
    tap: Tap,
}

/// The twins of a gateway's routed ports, by configuration port index.
#[derive(Default)]
pub(crate) struct Twins {
    twins: Vec<Twin>,
    /// Index into `twins` by port index.
    by_port: Vec<Option<usize>>,
    /// Where frames from the kernel are read.
    buf: Vec<u8>,
}

impl Twins {
    /// Creates and configures the twin of every routed port (core, hand-off) of a node
    /// pipeline; `ports` are the pipeline's view (MAC, MTU, address). The twins are up
    /// when this returns.
    pub(crate) fn create(
        cfg: &Config,
        ports: &[ispmux_dataplane::PortConfig],
    ) -> Result<Twins, GatewayError> {
        let mut t = Twins {
            twins: Vec::new(),
            by_port: vec![None; cfg.ports.len()],
            buf: vec![0; 64 * 1024],
        };
        if cfg.dataplane.pipeline != ispmux_conf::PipelineKind::Node {
            return Ok(t);
        }
        let mut nl = None;
        for (i, (c, p)) in cfg.ports.iter().zip(ports).enumerate() {
            if !c.is_routed() {
                continue;
            }
            let name = c.twin_name();
            let what = || format!("kernel twin {name:?} of port {:?}", c.name);
            let tap = Tap::open(&name).step(|| format!("creating the {}", what()))?;
            let rtnl = match &mut nl {
                Some(n) => n,
                None => nl.insert(Rtnl::open().step(|| "opening rtnetlink".into())?),
            };
            configure(rtnl, &name, c, p).step(|| format!("configuring the {}", what()))?;
            if let Some(iface) = kernel_iface(&c.device) {
                underlay(&c.name, iface, p.mac);
            }
            tracing::info!(port = %c.name, twin = %name, address = ?c.address.map(|a| a.to_string()), mac = %p.mac, mtu = p.mtu, routes = c.routes.len(), "kernel twin up");
            t.by_port[i] = Some(t.twins.len());
            t.twins.push(Twin {
                port: i as u16,
                tap,
            });
        }
        Ok(t)
    }

    /// Whether port `port` has a twin.
    pub(crate) fn has(&self, port: u16) -> bool {
        self.twin(port).is_some()
    }

    fn twin(&self, port: u16) -> Option<&Twin> {
        let i = (*self.by_port.get(usize::from(port))?)?;
        self.twins.get(i)
    }

    /// Hands `frame`, received on `port`, to the port's twin: false (a counted drop for
    /// the caller) when the port has none or the kernel did not take it (its backlog full:
    /// the slow path never waits).
    pub(crate) fn write_kernel(&self, port: u16, frame: &[u8]) -> bool {
        let Some(t) = self.twin(port) else {
            return false;
        };
        match t.tap.write(frame) {
            Ok(_) => true,
            Err(e) => {
                tracing::debug!(twin = t.tap.name(), error = %e, "frame to the twin dropped");
                false
            }
        }
    }

    /// Reads what the kernel sent out of the twins, at most `max` frames each, as frames to
    /// inject on their ports.
    pub(crate) fn read_kernel(
        &mut self,
        max: usize,
        out: &mut Vec<Inject>,
        st: &mut SlowPathStats,
    ) {
        for t in &self.twins {
            for _ in 0..max {
                match t.tap.read(&mut self.buf) {
                    Ok(n) if (14..=INJECT_MAX).contains(&n) => {
                        st.from_twin += 1;
                        out.push(Inject {
                            port: t.port,
                            frame: self.buf[..n].to_vec(),
                        });
                    }
                    Ok(_) => st.from_twin_drops += 1,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        st.from_twin_drops += 1;
                        tracing::debug!(twin = t.tap.name(), error = %e, "reading the twin");
                        break;
                    }
                }
            }
        }
    }

    /// Waits up to `d` for the kernel to send on a twin (the slow path's idle wait): what
    /// it sends then leaves without waiting out the rest of the turn.
    pub(crate) fn wait(&self, d: Duration) {
        if self.twins.is_empty() {
            std::thread::sleep(d);
            return;
        }
        let fds: Vec<RawFd> = self.twins.iter().map(|t| t.tap.as_raw_fd()).collect();
        if ispmux_sys::poll_readable(&fds, d).is_err() {
            std::thread::sleep(d);
        }
    }

    /// The twins' interface names, by port index.
    pub(crate) fn names(&self) -> Vec<(u16, String)> {
        self.twins
            .iter()
            .map(|t| (t.port, t.tap.name().to_owned()))
            .collect()
    }
}

impl Drop for Twins {
    fn drop(&mut self) {
        for (port, name) in self.names() {
            tracing::info!(port, twin = %name, "kernel twin removed");
        }
    }
}

/// Sysctls, link, address and static routes of one twin, in that order: IPv6 is off before
/// the link comes up (no link-local address, no solicitations), ARP behaves before it
/// answers anything, and a route's next hop is on a link that is up (the kernel refuses a
/// gateway it cannot reach).
fn configure(
    nl: &mut Rtnl,
    name: &str,
    c: &ispmux_conf::Port,
    p: &ispmux_dataplane::PortConfig,
) -> io::Result<()> {
    let index = nl.link_index(name)?;
    match sysctl(&format!("ipv6/conf/{name}/disable_ipv6"), "1") {
        // A kernel without IPv6 has nothing to disable.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        r => r?,
    }
    for (key, value) in [
        ("arp_ignore", "1"),
        ("arp_announce", "2"),
        ("rp_filter", "2"),
    ] {
        sysctl(&format!("ipv4/conf/{name}/{key}"), value)?;
    }
    nl.set_link(index, Some(p.mac.0), Some(u32::from(p.mtu)), None)?;
    if let Some(a) = c.address {
        nl.add_address(index, a.addr(), a.prefix_len())?;
    }
    nl.set_link(index, None, None, Some(true))?;
    for r in &c.routes {
        nl.add_route(index, r.to.addr(), r.to.prefix_len(), r.via)
            .map_err(|e| {
                io::Error::new(e.kind(), format!("route to {} via {}: {e}", r.to, r.via))
            })?;
    }
    Ok(())
}

/// The kernel interface a port's DPDK device sits on (`net_af_packetN,iface=X`): the host's
/// own interface, which sees the port's frames too.
fn kernel_iface(device: &str) -> Option<&str> {
    let mut kv = device.split(',');
    if !kv.next()?.starts_with("net_af_packet") {
        return None;
    }
    kv.find_map(|a| a.strip_prefix("iface="))
}

/// Keeps the kernel interface under a routed port from speaking for the twin: with
/// `arp_ignore = 1` it answers ARP only for its own addresses, not for the twin's (with its
/// own MAC); and a port MAC equal to the interface's would make the port's frames the
/// interface's own as well, answered twice (the `mac` key sets another).
fn underlay(port: &str, iface: &str, port_mac: ispmux_dataplane::wire::MacAddr) {
    if let Err(e) = sysctl(&format!("ipv4/conf/{iface}/arp_ignore"), "1") {
        tracing::warn!(%port, %iface, error = %e, "could not stop the port's interface answering ARP for its twin");
    }
    let own = std::fs::read_to_string(format!("/sys/class/net/{iface}/address"))
        .ok()
        .and_then(|m| m.trim().parse::<ispmux_dataplane::wire::MacAddr>().ok());
    if own == Some(port_mac) {
        tracing::warn!(%port, %iface, mac = %port_mac, "the port has its interface's MAC: the interface's kernel also takes the twin's frames and may answer them twice; give the port another `mac`");
    }
}

/// Writes `value` to `/proc/sys/net/<key>` (the calling thread's network namespace).
fn sysctl(key: &str, value: &str) -> io::Result<()> {
    let path = format!("/proc/sys/net/{key}");
    std::fs::write(&path, value).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use ispmux_dataplane::wire::MacAddr;
    use ispmux_dataplane::{PortAddr, PortConfig, PortRole};

    use super::*;

    #[test]
    fn af_packet_ports_name_their_kernel_interface() {
        assert_eq!(kernel_iface("net_af_packet0,iface=core0"), Some("core0"));
        assert_eq!(kernel_iface("net_af_packet1,qpairs=2,iface=h0"), Some("h0"));
        assert_eq!(kernel_iface("net_pcap0,iface=eth0"), None);
        assert_eq!(kernel_iface("0000:01:00.0"), None);
    }

    const PORT_MAC: [u8; 6] = [2, 0, 0, 0, 0x0c, 1];
    const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0x0c, 9];

    fn config() -> Config {
        let text = r#"
[eal]
lcores = [0, 1]
[dataplane]
pipeline = "node"
[[port]]
name = "acc"
device = "net_null0"
role = "access"
[[port]]
name = "core"
device = "net_null1"
role = "core"
address = "198.18.9.1/30"
mtu = 1600
routes = [{ to = "10.0.23.0/30", via = "198.18.9.2" }, { to = "100.64.0.0/15", via = "198.18.9.2" }]
"#;
        ispmux_conf::parse(text, Path::new("t.toml")).expect("config")
    }

    fn ports() -> Vec<PortConfig> {
        let port = |role, mac| PortConfig {
            role,
            mac: MacAddr(mac),
            mtu: 1600,
            address: PortAddr::new([198, 18, 9, 1].into(), 30),
            implicit_null: None,
        };
        vec![
            port(PortRole::Access, [2, 0, 0, 0, 0xa, 1]),
            port(PortRole::Core, PORT_MAC),
        ]
    }

    /// An ARP request from the core neighbour 198.18.9.2 for `target`.
    fn arp_request(target: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&PEER_MAC);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&PEER_MAC);
        f.extend_from_slice(&[198, 18, 9, 2]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&target);
        f
    }

    /// Reads what the kernel sends within `d`.
    fn kernel_frames(t: &mut Twins, d: Duration) -> Vec<Inject> {
        let (mut out, mut st) = (Vec::new(), SlowPathStats::default());
        let end = std::time::Instant::now() + d;
        while std::time::Instant::now() < end {
            t.wait(Duration::from_millis(10));
            t.read_kernel(64, &mut out, &mut st);
        }
        assert_eq!(st.from_twin, out.len() as u64);
        out
    }

    /// The twin of the core port in a namespace of its own: it has the port's MAC, MTU,
    /// address and static routes, its kernel answers ARP for that address only
    /// (arp_ignore), learns the asking neighbour, and the interface is gone once the twins
    /// are dropped.
    #[test]
    fn a_twin_speaks_for_its_port_address_only() {
        if let Err(e) = ispmux_sys::unshare_netns() {
            // Without CAP_SYS_ADMIN (the suite runs as root, as DPDK needs) there is nothing
            // to test here: the e2e test `twins` covers it then too.
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
            return;
        }
        let mut t = Twins::create(&config(), &ports()).expect("twins");
        assert!(t.has(1) && !t.has(0));
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("ip");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let link = ip(&["-br", "link", "show", "dev", "ispmux-core"]);
        assert!(link.contains("02:00:00:00:0c:01"), "{link}");
        let addr = ip(&["-4", "-br", "addr", "show", "dev", "ispmux-core"]);
        assert!(addr.contains("198.18.9.1/30"), "{addr}");
        assert!(ip(&["link", "show", "dev", "ispmux-core"]).contains("mtu 1600"));
        // The configured static routes are there as the twin comes up.
        let routes = ip(&[
            "-4",
            "route",
            "show",
            "dev",
            "ispmux-core",
            "proto",
            "static",
        ]);
        for r in [
            "10.0.23.0/30 via 198.18.9.2",
            "100.64.0.0/15 via 198.18.9.2",
        ] {
            assert!(routes.contains(r), "{r} in {routes}");
        }

        // Not its address: no answer.
        assert!(t.write_kernel(1, &arp_request([198, 18, 9, 3])));
        assert!(!t.write_kernel(0, &arp_request([198, 18, 9, 1])), "no twin");
        let quiet = kernel_frames(&mut t, Duration::from_millis(100));
        assert!(
            quiet
                .iter()
                .all(|i| i.frame.get(12..14) != Some(&[0x08, 0x06])),
            "{quiet:?}"
        );
        assert!(t.write_kernel(1, &arp_request([198, 18, 9, 1])));
        let got = kernel_frames(&mut t, Duration::from_millis(200));
        let reply = got
            .iter()
            .find(|i| i.frame.get(12..14) == Some(&[0x08, 0x06]))
            .expect("an ARP reply");
        assert_eq!(reply.port, 1);
        assert_eq!(&reply.frame[..6], &PEER_MAC);
        assert_eq!(&reply.frame[6..12], &PORT_MAC);
        assert_eq!(reply.frame[21], 2, "a reply");
        assert_eq!(&reply.frame[28..32], &[198, 18, 9, 1]);
        let neigh = ip(&["neigh", "show", "dev", "ispmux-core"]);
        assert!(
            neigh.contains("198.18.9.2") && neigh.contains("02:00:00:00:0c:09"),
            "{neigh}"
        );
        drop(t);
        assert!(!ip(&["-br", "link"]).contains("ispmux-core"), "removed");
    }
}
