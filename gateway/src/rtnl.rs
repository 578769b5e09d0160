//! Interface configuration over rtnetlink: what `ip link set`, `ip addr add` and `ip route
//! add` do, for the kernel twins.
//!
//! `netlink-packet-route` builds and parses the messages and `netlink-sys` is the socket,
//! used synchronously (no async runtime: the gateway configures a few interfaces once, at
//! start). Netlink rather than the old `SIOCSIF*` ioctls: those set one address without a
//! prefix route of the right length and each is a raw ioctl, and the same crates serve
//! the neighbour tables the slow path follows.

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE,
    NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// The messages of one netlink datagram, each parsed by `parse`, in order; a message that
/// does not deserialize is `unreadable()`, and a header that does not fit ends the datagram
/// with one. Never panics, whatever the bytes: the reader always advances.
pub(crate) fn datagram<T>(
    mut buf: &[u8],
    mut parse: impl FnMut(NetlinkMessage<RouteNetlinkMessage>) -> T,
    unreadable: impl Fn() -> T,
) -> Vec<T> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let Ok(len) = NetlinkBuffer::new_checked(buf).map(|b| b.length() as usize) else {
            out.push(unreadable());
            break;
        };
        // `new_checked` ensures 16 ≤ len ≤ buf.len(); messages are 4-byte aligned.
        let (this, rest) = buf.split_at(len.min(buf.len()));
        buf = rest
            .get((len.next_multiple_of(4) - len).min(rest.len())..)
            .unwrap_or(&[]);
        out.push(
            match NetlinkMessage::<RouteNetlinkMessage>::deserialize(this) {
                Ok(m) => parse(m),
                Err(_) => unreadable(),
            },
        );
    }
    out
}

/// A route netlink socket in the caller's network namespace.
pub(crate) struct Rtnl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    pub(crate) fn open() -> io::Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Rtnl {
            sock,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Sends `msg` with `flags` (and ACK) and returns the kernel's replies before the
    /// acknowledgement; a negative acknowledgement is the error it carries.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        m.finalize();
        let mut out = vec![0; m.buffer_len()];
        m.serialize(&mut out);
        self.sock.send(&out, 0)?;
        let mut replies = Vec::new();
        loop {
            let n = self.sock.recv(&mut &mut self.buf[..], 0)?;
            let mut at = 0;
            while at < n {
                let bytes = &self.buf[at..n];
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = reply.header.length as usize;
                if len == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "netlink: message of length 0",
                    ));
                }
                at += len;
                if reply.header.sequence_number != self.seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(replies),
                            Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::InnerMessage(m) => replies.push(m),
                    _ => {}
                }
            }
        }
    }

    /// The index of the interface `name`.
    pub(crate) fn link_index(&mut self, name: &str) -> io::Result<u32> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        let replies = self.request(RouteNetlinkMessage::GetLink(m), 0)?;
        replies
            .into_iter()
            .find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no link {name}")))
    }

    /// Sets the link's MAC address and MTU, and brings it up or down.
    pub(crate) fn set_link(
        &mut self,
        index: u32,
        mac: Option<[u8; 6]>,
        mtu: Option<u32>,
        up: Option<bool>,
    ) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        if let Some(up) = up {
            m.header.change_mask = LinkFlags::Up;
            m.header.flags = if up {
                LinkFlags::Up
            } else {
                LinkFlags::empty()
            };
        }
        if let Some(mac) = mac {
            m.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        if let Some(mtu) = mtu {
            m.attributes.push(LinkAttribute::Mtu(mtu));
        }
        self.request(RouteNetlinkMessage::SetLink(m), 0).map(drop)
    }

    /// Adds `addr/prefix_len` to the link (with the subnet's broadcast address, as `ip addr
    /// add ... brd +` does), and so the kernel's route to the subnet through it.
    pub(crate) fn add_address(
        &mut self,
        index: u32,
        addr: Ipv4Addr,
        prefix_len: u8,
    ) -> io::Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = prefix_len;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(IpAddr::V4(addr)));
        m.attributes
            .push(AddressAttribute::Address(IpAddr::V4(addr)));
        if prefix_len <= 30 {
            let host = u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
            let brd = Ipv4Addr::from(u32::from(addr) | host);
            m.attributes.push(AddressAttribute::Broadcast(brd));
        }
        self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Adds the static route `to/len` via the neighbour `via` out of the link, in the main
    /// table, as `ip route add TO via VIA dev LINK proto static` does; a route already there
    /// to the same prefix is an error (EEXIST), never replaced.
    pub(crate) fn add_route(
        &mut self,
        index: u32,
        to: Ipv4Addr,
        len: u8,
        via: Ipv4Addr,
    ) -> io::Result<()> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.destination_prefix_length = len;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Static;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet(to)));
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(via)));
        m.attributes.push(RouteAttribute::Oif(index));
        self.request(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
    }
}
