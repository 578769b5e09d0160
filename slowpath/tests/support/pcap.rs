//! A reader of the LDP recordings in `tests/data/ldp/` (libpcap, Ethernet, IPv4): the LDP
//! PDUs in capture order, for known-answer and conformance tests. Independent of the LDP
//! codec under test: it only frames PDUs by their header's length (RFC 5036 §3.1).
//!
//! UDP 646 datagrams are one PDU each (Hellos). TCP 646 payloads are joined per direction
//! (by sequence number: a retransmitted or out-of-order segment is an error, the recordings
//! have none) and cut into PDUs; a PDU is reported with the frame that completes it.

use std::net::Ipv4Addr;

/// LDP's port (RFC 5036 §3.10).
pub const LDP_PORT: u16 = 646;

/// How a PDU travelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A UDP datagram (discovery).
    Udp,
    /// The TCP session.
    Tcp,
}

/// One LDP PDU of a recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdu {
    /// Frame number (1-based, as tshark counts) that carried its last byte.
    pub frame: usize,
    /// Microseconds since the first frame.
    pub time_us: u64,
    /// Source address and port.
    pub src: (Ipv4Addr, u16),
    /// Destination address and port.
    pub dst: (Ipv4Addr, u16),
    /// UDP or TCP.
    pub transport: Transport,
    /// The PDU: version, length, LDP identifier, messages.
    pub bytes: Vec<u8>,
}

impl Pdu {
    /// The message types in the PDU (U bit cleared), in order.
    pub fn message_types(&self) -> Vec<u16> {
        let mut out = Vec::new();
        let mut at = 10;
        while let Some(h) = self.bytes.get(at..at + 4) {
            out.push(u16::from_be_bytes([h[0], h[1]]) & 0x7fff);
            at += 4 + usize::from(u16::from_be_bytes([h[2], h[3]]));
        }
        out
    }
}

fn u16be(b: &[u8], at: usize) -> Result<u16, String> {
    let s = b.get(at..at + 2).ok_or("truncated")?;
    Ok(u16::from_be_bytes([s[0], s[1]]))
}

fn u32be(b: &[u8], at: usize) -> Result<u32, String> {
    let s = b.get(at..at + 4).ok_or("truncated")?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn u32le(b: &[u8], at: usize) -> Result<u32, String> {
    let s = b.get(at..at + 4).ok_or("truncated")?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// One direction of a TCP connection: the bytes not yet cut into PDUs, the next sequence
/// number expected.
struct Stream {
    key: ((Ipv4Addr, u16), (Ipv4Addr, u16)),
    next_seq: Option<u32>,
    buf: Vec<u8>,
}

/// The LDP PDUs of a little-endian microsecond libpcap file of Ethernet frames.
pub fn ldp_pdus(file: &[u8]) -> Result<Vec<Pdu>, String> {
    if u32le(file, 0)? != 0xa1b2_c3d4 {
        return Err("not a little-endian microsecond pcap".into());
    }
    if u32le(file, 20)? != 1 {
        return Err("link type is not Ethernet".into());
    }
    let mut out = Vec::new();
    let mut streams: Vec<Stream> = Vec::new();
    let mut at = 24;
    let mut frame = 0;
    let mut t0 = None;
    while at < file.len() {
        frame += 1;
        let ts = u64::from(u32le(file, at)?) * 1_000_000 + u64::from(u32le(file, at + 4)?);
        let len = u32le(file, at + 8)? as usize;
        let data = file
            .get(at + 16..at + 16 + len)
            .ok_or(format!("frame {frame} truncated"))?;
        at += 16 + len;
        let time_us = ts - *t0.get_or_insert(ts);
        if u16be(data, 12)? != 0x0800 {
            continue;
        }
        let ip = data.get(14..).ok_or("no IPv4 header")?;
        let ihl = usize::from(ip.first().ok_or("empty IPv4")? & 0x0f) * 4;
        let total = usize::from(u16be(ip, 2)?);
        let proto = *ip.get(9).ok_or("truncated")?;
        let src_ip = Ipv4Addr::from(u32be(ip, 12)?);
        let dst_ip = Ipv4Addr::from(u32be(ip, 16)?);
        let l4 = ip
            .get(ihl..total)
            .ok_or(format!("frame {frame}: IPv4 length"))?;
        let (sport, dport) = (u16be(l4, 0)?, u16be(l4, 2)?);
        if sport != LDP_PORT && dport != LDP_PORT {
            continue;
        }
        let src = (src_ip, sport);
        let dst = (dst_ip, dport);
        match proto {
            17 => out.push(Pdu {
                frame,
                time_us,
                src,
                dst,
                transport: Transport::Udp,
                bytes: l4.get(8..).ok_or("UDP header")?.to_vec(),
            }),
            6 => {
                let seq = u32be(l4, 4)?;
                let off = usize::from(l4.get(12).ok_or("TCP header")? >> 4) * 4;
                let flags = *l4.get(13).ok_or("TCP header")?;
                let payload = l4.get(off..).ok_or("TCP header")?;
                let i = match streams.iter().position(|s| s.key == (src, dst)) {
                    Some(i) => i,
                    None => {
                        streams.push(Stream {
                            key: (src, dst),
                            next_seq: None,
                            buf: Vec::new(),
                        });
                        streams.len() - 1
                    }
                };
                let s = &mut streams[i];
                // SYN takes one sequence number; data starts after it.
                if flags & 0x02 != 0 {
                    s.next_seq = Some(seq.wrapping_add(1));
                    continue;
                }
                if payload.is_empty() {
                    continue;
                }
                if s.next_seq.is_some_and(|n| n != seq) {
                    return Err(format!("frame {frame}: TCP segment out of order"));
                }
                s.next_seq = Some(seq.wrapping_add(payload.len() as u32));
                s.buf.extend_from_slice(payload);
                while s.buf.len() >= 4 {
                    let n = 4 + usize::from(u16be(&s.buf, 2)?);
                    if s.buf.len() < n {
                        break;
                    }
                    let bytes: Vec<u8> = s.buf.drain(..n).collect();
                    out.push(Pdu {
                        frame,
                        time_us,
                        src,
                        dst,
                        transport: Transport::Tcp,
                        bytes,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(out)
}
