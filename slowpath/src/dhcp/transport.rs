//! The ISP-side transport: a kernel UDP socket bound to the gateway's relay address, port 67.
//!
//! Why a kernel socket on a control interface rather than in-band over the ISP's label
//! path: relayed DHCP is a few datagrams per logon, not fast-path traffic; ISP DHCP servers
//! and their failover peers are reached by ordinary IP routing, which the kernel already does
//! (ARP, routes, ICMP), whereas in-band would need the slow path to build MPLS-labelled IP/UDP
//! frames, resolve next hops and handle fragments itself for no gain in throughput; and the
//! logon path keeps working while the DPDK ports restart. In-band remains the option for
//! ISPs reachable only over their label path; the engine does not care, it emits
//! [`Output::ToServer`](super::Output) either way.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use mio::net::UdpSocket;

use super::engine::SERVER_PORT;

/// Largest datagram read; DHCP messages are far below this.
const RECV_BUF: usize = 4096;

/// The ISP-side socket.
pub struct IspSocket {
    sock: UdpSocket,
    buf: Vec<u8>,
}

impl IspSocket {
    /// Binds `relay_address`:67 (needs CAP_NET_BIND_SERVICE).
    pub fn bind(relay_address: Ipv4Addr) -> io::Result<IspSocket> {
        Self::bind_port(relay_address, SERVER_PORT)
    }

    /// Binds another port (tests without privileges, tools).
    pub fn bind_port(addr: Ipv4Addr, port: u16) -> io::Result<IspSocket> {
        let sock = UdpSocket::bind(SocketAddr::V4(SocketAddrV4::new(addr, port)))?;
        Ok(IspSocket {
            sock,
            buf: vec![0; RECV_BUF],
        })
    }

    /// The socket, to register with a `mio::Poll`.
    pub fn source(&mut self) -> &mut UdpSocket {
        &mut self.sock
    }

    /// Sends one datagram.
    pub fn send(&self, dst: SocketAddrV4, payload: &[u8]) -> io::Result<()> {
        self.sock.send_to(payload, SocketAddr::V4(dst)).map(|_| ())
    }

    /// Receives one datagram if one is waiting (`Ok(None)` when it would block). IPv6
    /// sources cannot occur on an IPv4 socket and are skipped.
    pub fn recv(&mut self) -> io::Result<Option<(SocketAddrV4, &[u8])>> {
        loop {
            match self.sock.recv_from(&mut self.buf) {
                Ok((n, SocketAddr::V4(src))) => {
                    return Ok(self.buf.get(..n).map(|p| (src, p)));
                }
                Ok((_, SocketAddr::V6(_))) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP errors from an earlier send surface here; they are not fatal.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_roundtrip() {
        let mut a = IspSocket::bind_port(Ipv4Addr::LOCALHOST, 0).expect("bind a");
        let b = IspSocket::bind_port(Ipv4Addr::LOCALHOST, 0).expect("bind b");
        let SocketAddr::V4(a_addr) = a.local_addr().expect("addr") else {
            panic!("v4 socket");
        };
        b.send(a_addr, b"hello").expect("send");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            if let Some((_, p)) = a.recv().expect("recv") {
                assert_eq!(p, b"hello");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "datagram lost");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
