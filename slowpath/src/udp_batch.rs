//! Many UDP datagrams per system call (recvmmsg, sendmmsg), through nix's safe wrappers.
//!
//! On a busy proxy most of the cost of a datagram is the system call around it, not the
//! protocol work; reading everything a socket holds in one call, and sending a poll round's
//! answers to one socket in one call, divides that cost by the batch size.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{
    getsockopt, recvmmsg, sendmmsg, setsockopt, sockopt, MsgFlags, MultiHeaders, SockaddrStorage,
};

/// Largest datagram kept: RADIUS packets are at most 4096 octets (RFC 2865 section 3); a
/// longer datagram is cut to this, and the codec then finds its length field wrong or ignores
/// the excess as padding.
pub const DATAGRAM: usize = 4096;

fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

fn io_error(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Asks for receive and send buffers of `bytes` each, best effort: with CAP_NET_ADMIN (ispmux
/// runs as root for DPDK) past net.core.[rw]mem_max, which defaults to ~200 KiB, about 256
/// small datagrams on loopback, so that a burst that arrives while the reader is off the CPU
/// for a few milliseconds is not dropped; without it, up to that cap. Returns the receive
/// buffer the kernel granted (it reports twice what was asked, for its own bookkeeping).
pub fn enlarge_buffers(sock: &impl std::os::fd::AsFd, bytes: usize) -> usize {
    if setsockopt(sock, sockopt::RcvBufForce, &bytes).is_err() {
        let _ = setsockopt(sock, sockopt::RcvBuf, &bytes);
    }
    if setsockopt(sock, sockopt::SndBufForce, &bytes).is_err() {
        let _ = setsockopt(sock, sockopt::SndBuf, &bytes);
    }
    getsockopt(sock, sockopt::RcvBuf).unwrap_or(0)
}

/// Buffers for receiving up to `capacity` datagrams per call, kept between calls.
pub struct RecvBatch {
    bufs: Vec<[u8; DATAGRAM]>,
    got: Vec<(usize, Option<SocketAddr>)>,
    headers: MultiHeaders<SockaddrStorage>,
}

impl RecvBatch {
    pub fn new(capacity: usize) -> RecvBatch {
        let capacity = capacity.max(1);
        RecvBatch {
            bufs: vec![[0; DATAGRAM]; capacity],
            got: Vec::with_capacity(capacity),
            headers: MultiHeaders::preallocate(capacity, None),
        }
    }

    /// Receives what `sock` holds, up to the capacity. `wait`: block (within the socket's
    /// read timeout) until at least one datagram is there, then take what else is there
    /// without waiting; otherwise never block. Returns how many were received: 0 when the
    /// socket had none (`WouldBlock` and a timeout alike).
    pub fn recv(&mut self, sock: &impl AsRawFd, wait: bool) -> io::Result<usize> {
        self.got.clear();
        let flags = if wait {
            MsgFlags::MSG_WAITFORONE
        } else {
            MsgFlags::MSG_DONTWAIT
        };
        {
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> = self
                .bufs
                .iter_mut()
                .map(|b| [IoSliceMut::new(&mut b[..])])
                .collect();
            let res = match recvmmsg(sock.as_raw_fd(), &mut self.headers, &mut iovs, flags, None) {
                Ok(r) => r,
                Err(Errno::EAGAIN | Errno::EINTR) => return Ok(0),
                Err(e) => return Err(io_error(e)),
            };
            for m in res {
                self.got
                    .push((m.bytes, m.address.as_ref().and_then(to_std)));
            }
        }
        Ok(self.got.len())
    }

    /// Datagram `i` of the last [`recv`](Self::recv) and its sender (`None`: not an IP
    /// sender, which a UDP socket never reports).
    pub fn get(&self, i: usize) -> Option<(&[u8], Option<SocketAddr>)> {
        let &(n, from) = self.got.get(i)?;
        let buf = self.bufs.get(i)?;
        Some((buf.get(..n.min(DATAGRAM))?, from))
    }

    /// How many datagrams the last [`recv`](Self::recv) got.
    pub fn len(&self) -> usize {
        self.got.len()
    }

    pub fn is_empty(&self) -> bool {
        self.got.is_empty()
    }
}

/// Headers for sending up to `capacity` datagrams per call, kept between calls.
pub struct SendBatch {
    capacity: usize,
    headers: MultiHeaders<SockaddrStorage>,
    addrs: Vec<Option<SockaddrStorage>>,
}

/// What [`SendBatch::send`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub sent: usize,
    /// Datagrams the kernel refused (each logged by the caller's choice via `on_error`).
    pub failed: usize,
}

impl SendBatch {
    pub fn new(capacity: usize) -> SendBatch {
        let capacity = capacity.max(1);
        SendBatch {
            capacity,
            headers: MultiHeaders::preallocate(capacity, None),
            addrs: Vec::with_capacity(capacity),
        }
    }

    /// Sends every `(datagram, to)` of `msgs` from `sock`, in order, `capacity` per call. A
    /// datagram the kernel refuses is skipped after `on_error` is told; a full socket buffer
    /// on a non-blocking socket counts the rest as failed (UDP may drop; the peers retry).
    pub fn send<D: AsRef<[u8]>>(
        &mut self,
        sock: &impl AsRawFd,
        msgs: &[(D, SocketAddr)],
        on_error: &mut dyn FnMut(SocketAddr, io::Error),
    ) -> Sent {
        let mut done = Sent::default();
        let mut rest = msgs;
        while !rest.is_empty() {
            let chunk = &rest[..rest.len().min(self.capacity)];
            self.addrs.clear();
            self.addrs
                .extend(chunk.iter().map(|(_, to)| Some(SockaddrStorage::from(*to))));
            let iovs: Vec<[IoSlice<'_>; 1]> = chunk
                .iter()
                .map(|(d, _)| [IoSlice::new(d.as_ref())])
                .collect();
            // Iterating the results is how nix reports how many went (as in its own tests).
            let n = match sendmmsg(
                sock.as_raw_fd(),
                &mut self.headers,
                &iovs,
                &self.addrs,
                [],
                MsgFlags::empty(),
            ) {
                Ok(r) => r.count(),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {
                    // The socket buffer is full: UDP may drop, the peers retransmit.
                    for (_, to) in rest {
                        on_error(*to, io_error(Errno::EAGAIN));
                    }
                    done.failed += rest.len();
                    return done;
                }
                Err(e) => {
                    // The first datagram of the chunk was refused: skip it, send on.
                    on_error(chunk[0].1, io_error(e));
                    0
                }
            };
            if n == 0 {
                done.failed += 1;
                rest = &rest[1..];
            } else {
                done.sent += n;
                rest = &rest[n.min(rest.len())..];
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    #[test]
    fn batches_go_and_come_in_order_with_their_senders() {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let b = UdpSocket::bind("127.0.0.1:0").expect("bind");
        b.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let to = b.local_addr().expect("addr");
        let msgs: Vec<(Vec<u8>, SocketAddr)> =
            (0u8..10).map(|i| (vec![i; 1 + i as usize], to)).collect();
        let mut tx = SendBatch::new(4);
        let sent = tx.send(&a, &msgs, &mut |to, e| panic!("{to}: {e}"));
        assert_eq!(
            sent,
            Sent {
                sent: 10,
                failed: 0
            }
        );
        let mut rx = RecvBatch::new(3);
        let mut got = Vec::new();
        while got.len() < 10 {
            let n = rx.recv(&b, true).expect("recv");
            assert!(n <= 3);
            for i in 0..n {
                let (d, from) = rx.get(i).expect("datagram");
                assert_eq!(from, a.local_addr().ok());
                got.push(d.to_vec());
            }
        }
        assert_eq!(got, msgs.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>());
        b.set_nonblocking(true).expect("nonblocking");
        assert_eq!(rx.recv(&b, false).expect("empty"), 0);
        assert!(rx.is_empty());
    }

    #[test]
    fn buffers_grow_past_the_default() {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let before = getsockopt(&s, sockopt::RcvBuf).expect("SO_RCVBUF");
        let got = enlarge_buffers(&s, 4 << 20);
        // Without privilege the cap (net.core.rmem_max) may be the default itself; the
        // kernel still doubles what it grants.
        assert!(got > before, "{got} <= {before}");
    }
}
