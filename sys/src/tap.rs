//! A Linux TAP interface (`/dev/net/tun`): the kernel twin of a port. Frames written to it
//! arrive in the kernel as if received on that interface; frames the kernel sends out of it
//! are read here.
//!
//! Plain `libc` (`open` and one `TUNSETIFF` ioctl) rather than a crate: the whole job is
//! three system calls, the crates that wrap them (`tun`, `tun-tap`) bring async runtimes or
//! their own interface configuration (which netlink does here, in the gateway), and the
//! ioctl's request layout is fixed kernel ABI. The file descriptor is nonblocking: the slow
//! path polls it between punt bursts and must never wait on the kernel.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Longest interface name Linux takes (IFNAMSIZ less the terminating zero).
pub const IFNAME_MAX: usize = libc::IFNAMSIZ - 1;

/// An open TAP interface. It disappears from the kernel when dropped (it is not persistent).
#[derive(Debug)]
pub struct Tap {
    fd: OwnedFd,
    name: String,
}

impl Tap {
    /// Creates (or attaches to an unused) TAP interface `name`, Ethernet frames without the
    /// packet-information header, nonblocking. Needs CAP_NET_ADMIN in the caller's network
    /// namespace; the interface is created down, without addresses.
    pub fn open(name: &str) -> io::Result<Tap> {
        if name.is_empty() || name.len() > IFNAME_MAX || name.bytes().any(|b| b == 0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name:?} is not an interface name (1..={IFNAME_MAX} bytes)"),
            ));
        }
        let path = CString::new("/dev/net/tun").map_err(io::Error::other)?;
        // SAFETY: `path` is a valid NUL-terminated string; open has no other preconditions.
        let raw = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` was just returned by open and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: ifreq is plain old data (arrays, integers, a union of them); all zero is
        // a valid value of it.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes one `struct ifreq`, which `req` is, alive for
        // the call; the name is NUL-terminated (the array is zeroed beyond `name`, whose
        // length was checked above).
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Tap {
            fd,
            name: name.to_owned(),
        })
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads one frame the kernel sent out of the interface into `buf`; `WouldBlock` when
    /// there is none. A frame longer than `buf` is cut to it.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast::<libc::c_void>(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Hands one frame to the kernel as received on the interface. `WouldBlock` (or
    /// another error) means the kernel did not take it; nothing waits.
    pub fn write(&self, frame: &[u8]) -> io::Result<usize> {
        // SAFETY: `frame` is valid for reads of `frame.len()` bytes for the call.
        let n = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast::<libc::c_void>(),
                frame.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Tap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Waits until one of `fds` is readable or `timeout` passes; returns how many are readable
/// (0 on timeout or an interrupted wait). The slow path sleeps here between turns, so what
/// the kernel sends on a twin wakes it at once.
pub fn poll_readable(fds: &[RawFd], timeout: std::time::Duration) -> io::Result<usize> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // ppoll, not poll: the slow path waits for well under a millisecond, which poll's
    // timeout in whole milliseconds cannot express.
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: `p` holds `p.len()` initialised pollfd entries and `ts` is a valid timespec,
    // both alive for the call; a null signal mask leaves the thread's mask as it is.
    let n = unsafe {
        libc::ppoll(
            p.as_mut_ptr(),
            p.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(n as usize)
}

/// Moves the calling thread into a new, empty network namespace (`unshare(CLONE_NEWNET)`):
/// tests create twins there without touching the host's interfaces. What the thread opens
/// or spawns afterwards (TAPs, netlink sockets, `ip`) lives in that namespace.
pub fn unshare_netns() -> io::Result<()> {
    // SAFETY: unshare takes a flag word and touches no memory of ours.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_names_the_kernel_would_refuse() {
        for bad in ["", "a-name-of-16-chr", "nul\0name"] {
            let e = Tap::open(bad).expect_err(bad);
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    /// Needs CAP_NET_ADMIN (the test suite runs as root, as DPDK needs): the interface
    /// exists while the TAP is open, an empty queue reads as WouldBlock (not a wait), and
    /// closing removes the interface.
    #[test]
    fn opens_writes_and_never_blocks() {
        let name = format!("twt{}", std::process::id() % 1_000_000);
        let tap = match Tap::open(&name) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return,
            Err(e) => panic!("{name}: {e}"),
        };
        assert_eq!(tap.name(), name);
        let mut buf = [0u8; 2048];
        assert_eq!(
            tap.read(&mut buf).map_err(|e| e.kind()),
            Err(io::ErrorKind::WouldBlock)
        );
        assert!(std::path::Path::new(&format!("/sys/class/net/{name}")).exists());
        drop(tap);
        assert!(
            !std::path::Path::new(&format!("/sys/class/net/{name}")).exists(),
            "a dropped TAP is gone"
        );
    }
}
