//! Link Hellos (RFC 5036 §2.4.1): UDP port 646 to the all-routers group 224.0.0.2, one
//! socket per interface LDP runs on.
//!
//! Each socket is bound to its twin (`SO_BINDTODEVICE`) and to port 646 on any address,
//! has joined 224.0.0.2 on that twin, and sends out of it with no loopback of its own
//! Hellos, with TTL 255 when GTSM is on (RFC 6720), else 1. The TTL of Hellos received is
//! not checked: FRR sends its IPv4 Link Hellos with TTL 1 even with GTSM, whose check is
//! on the sessions' TCP segments. A datagram read from a socket arrived on that socket's twin, which is
//! the interface the engine needs to know (no `IP_PKTINFO` to decode). Reads are bounded
//! per turn; a Hello the socket cannot take now is dropped and counted (the next one comes
//! within the Hello interval).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};

use super::transport::LDP_PORT;

/// The all-routers group Link Hellos go to.
pub const ALL_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 2);
/// Datagrams read from one socket per turn at most.
const RX_PER_TURN: usize = 64;
/// Largest Hello read: far above any Hello (a few dozen bytes), within a maximum PDU.
const RX_MAX: usize = 4096;

/// One interface's Hello socket.
pub struct HelloSocket {
    /// The twin's interface index, as the engine names interfaces.
    pub ifindex: u32,
    /// The twin's name.
    pub name: String,
    sock: UdpSocket,
}

impl HelloSocket {
    /// Opens the socket of the twin `name` (index `ifindex`, address `addr`), sending
    /// with TTL `ttl`.
    pub fn open(
        name: &str,
        ifindex: u32,
        addr: Option<Ipv4Addr>,
        ttl: u8,
    ) -> io::Result<HelloSocket> {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        // Every twin's socket binds port 646: they differ by device.
        s.set_reuse_address(true)?;
        s.bind_device(Some(name.as_bytes()))?;
        s.bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, LDP_PORT)).into())?;
        s.join_multicast_v4_n(&ALL_ROUTERS, &InterfaceIndexOrAddress::Index(ifindex))?;
        if let Some(a) = addr {
            s.set_multicast_if_v4(&a)?;
        }
        s.set_multicast_ttl_v4(u32::from(ttl))?;
        s.set_multicast_loop_v4(false)?;
        s.set_nonblocking(true)?;
        Ok(HelloSocket {
            ifindex,
            name: name.to_owned(),
            sock: s.into(),
        })
    }

    /// Calls `f(source, datagram)` for each datagram waiting, up to the per-turn bound;
    /// returns how many reads failed (other than "nothing more").
    pub fn receive(&self, mut f: impl FnMut(Ipv4Addr, &[u8])) -> u64 {
        let mut buf = [0u8; RX_MAX];
        let mut errors = 0;
        for _ in 0..RX_PER_TURN {
            match self.sock.recv_from(&mut buf) {
                Ok((n, SocketAddr::V4(src))) => f(*src.ip(), &buf[..n.min(RX_MAX)]),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    errors += 1;
                    break;
                }
            }
        }
        errors
    }

    /// Sends a Hello to 224.0.0.2:646 out of the twin.
    pub fn send(&self, data: &[u8]) -> io::Result<()> {
        self.sock
            .send_to(data, SocketAddrV4::new(ALL_ROUTERS, LDP_PORT))
            .map(drop)
    }
}
