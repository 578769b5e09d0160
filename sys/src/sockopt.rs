//! Socket options socket2 has no call for: TCP MD5 signatures (RFC 2385, Linux
//! `TCP_MD5SIG`) and the minimum TTL a socket accepts (`IP_MINTTL`, for GTSM, RFC 5082).
//!
//! Both are one `setsockopt` on a socket the caller owns; the layout of `struct
//! tcp_md5sig` is fixed kernel ABI (include/uapi/linux/tcp.h), written out here because
//! libc does not define it.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd};

/// The longest TCP MD5 key Linux takes (`TCP_MD5SIG_MAXKEYLEN`).
pub const TCP_MD5_MAX_KEY: usize = 80;

/// `struct tcp_md5sig` of include/uapi/linux/tcp.h.
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; TCP_MD5_MAX_KEY],
}

/// Installs `key` as the TCP MD5 signature key (RFC 2385) for segments to and from `peer`
/// on `sock`; an empty key removes the one `peer` had. On a listening socket the key
/// applies to connections from `peer` from then on (the kernel copies it into each one it
/// accepts, and drops unsigned or badly signed segments from `peer`); on a socket about to
/// connect, to that connection.
pub fn set_tcp_md5sig(sock: impl AsFd, peer: Ipv4Addr, key: &[u8]) -> io::Result<()> {
    if key.len() > TCP_MD5_MAX_KEY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a TCP MD5 key has at most {TCP_MD5_MAX_KEY} bytes"),
        ));
    }
    // SAFETY: sockaddr_storage is plain old data; all zero is a valid (AF_UNSPEC) value.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(peer.octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_storage is larger than and aligned at least as sockaddr_in (that is
    // its purpose); the write stays inside `addr`.
    unsafe { std::ptr::write((&mut addr as *mut libc::sockaddr_storage).cast(), sin) };
    let mut sig = TcpMd5Sig {
        addr,
        flags: 0,
        prefixlen: 0,
        keylen: key.len() as u16,
        ifindex: 0,
        key: [0; TCP_MD5_MAX_KEY],
    };
    sig.key[..key.len()].copy_from_slice(key);
    setsockopt(
        sock,
        libc::IPPROTO_TCP,
        libc::TCP_MD5SIG,
        &sig,
        "TCP_MD5SIG",
    )
}

/// Makes `sock` drop IPv4 packets arriving with a TTL below `ttl` (GTSM: 255 accepts only
/// packets from a directly connected sender that sent them with TTL 255). On a TCP socket
/// the check is the kernel's, before any byte reaches the reader.
pub fn set_ip_minttl(sock: impl AsFd, ttl: u8) -> io::Result<()> {
    let v = libc::c_int::from(ttl);
    setsockopt(sock, libc::IPPROTO_IP, libc::IP_MINTTL, &v, "IP_MINTTL")
}

fn setsockopt<T>(
    sock: impl AsFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
    what: &str,
) -> io::Result<()> {
    // SAFETY: `value` points to a live, initialised T of the size passed, which is the
    // type the kernel reads for this option; the descriptor is borrowed for the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_fd().as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("setsockopt {what}: {e}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    #[test]
    fn the_struct_is_the_kernels() {
        // 128 (sockaddr_storage) + 1 + 1 + 2 + 4 + 80, as include/uapi/linux/tcp.h lays it out.
        assert_eq!(std::mem::size_of::<TcpMd5Sig>(), 216);
    }

    #[test]
    fn refuses_a_key_longer_than_the_kernel_takes() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let e = set_tcp_md5sig(&l, Ipv4Addr::LOCALHOST, &[b'k'; 81]).expect_err("81 bytes");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        set_tcp_md5sig(&l, Ipv4Addr::LOCALHOST, &[b'k'; 80]).expect("80 bytes");
        set_tcp_md5sig(&l, Ipv4Addr::LOCALHOST, b"").expect("removed");
        set_ip_minttl(&l, 255).expect("minttl");
    }

    /// A connect from 127.0.0.1 with `key` (None: unsigned) to a listener with "right"
    /// for 127.0.0.1: whether bytes get through within a second.
    fn talks(key: Option<&[u8]>) -> bool {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        set_tcp_md5sig(&l, Ipv4Addr::LOCALHOST, b"right").expect("listener key");
        let at = l.local_addr().expect("addr");
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        if let Some(k) = key {
            set_tcp_md5sig(&s, Ipv4Addr::LOCALHOST, k).expect("client key");
        }
        let ok = s
            .connect_timeout(&at.into(), Duration::from_secs(1))
            .is_ok();
        if !ok {
            return false;
        }
        let mut c: TcpStream = s.into();
        c.write_all(b"ldp").expect("write");
        let (mut a, _) = l.accept().expect("accept");
        a.set_read_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        let mut b = [0u8; 3];
        a.read_exact(&mut b).is_ok() && &b == b"ldp"
    }

    /// The kernel enforces the key: the same key connects, a wrong key or none does not.
    #[test]
    fn only_the_right_key_connects() {
        assert!(talks(Some(b"right")), "the same key");
        assert!(!talks(Some(b"wrong")), "a wrong key");
        assert!(!talks(None), "no key");
    }
}
