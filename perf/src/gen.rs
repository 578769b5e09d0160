//! Traffic for benchmarks: many subscribers with distinct MACs and addresses, and pcap files
//! of their frames in random order, to feed testpmd, ispmux and OVS the same input through
//! `net_pcap` (`rx_pcap=FILE,infinite_rx=1`).

use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;
use std::path::Path;

/// One generated subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subscriber {
    /// Locally administered unicast MAC, distinct per index.
    pub mac: [u8; 6],
    /// Bound IPv4 address, distinct per index (10.0.0.0/8, host part never 0 or 255).
    pub ip: Ipv4Addr,
    /// ISP id (round robin over the ISPs).
    pub isp: u16,
}

/// SplitMix64: a small, well-mixed, seedable generator, so runs are reproducible.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// `n` subscribers spread over `isps` ISPs. MACs scatter over 40 bits (an odd multiplier is a
/// bijection modulo 2^40, so they stay distinct) to look random to a hash table.
pub fn subscribers(n: usize, isps: u16) -> Vec<Subscriber> {
    (0..n)
        .map(|i| {
            let x = (i as u64).wrapping_mul(0x9e37_79b9_7f4b) & 0xff_ffff_ffff;
            let b = x.to_be_bytes();
            let host = i as u32;
            // 10.a.b.c with c in 1..=250: skip network and broadcast-looking addresses.
            let ip = Ipv4Addr::from(0x0a00_0000 | ((host / 250) << 8) | (host % 250 + 1));
            Subscriber {
                mac: [0x02, b[3], b[4], b[5], b[6], b[7]],
                ip,
                isp: (i % usize::from(isps.max(1))) as u16,
            }
        })
        .collect()
}

/// A 64-byte Ethernet/IPv4/UDP frame from `s` to `dst` via the gateway MAC `gw`.
pub fn upstream_frame(s: &Subscriber, gw: [u8; 6], dst: Ipv4Addr) -> [u8; 60] {
    let mut f = [0u8; 60];
    f[..6].copy_from_slice(&gw);
    f[6..12].copy_from_slice(&s.mac);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&46u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&s.ip.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let csum = ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&4000u16.to_be_bytes());
    udp[2..4].copy_from_slice(&5000u16.to_be_bytes());
    udp[4..6].copy_from_slice(&26u16.to_be_bytes());
    f
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks_exact(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Writes `frames` as a classic pcap file (microsecond timestamps, Ethernet link type).
pub fn write_pcap<'a>(
    path: &Path,
    frames: impl Iterator<Item = &'a [u8]>,
) -> std::io::Result<usize> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&0i32.to_le_bytes())?;
    w.write_all(&0u32.to_le_bytes())?;
    w.write_all(&65535u32.to_le_bytes())?;
    w.write_all(&1u32.to_le_bytes())?;
    let mut n = 0;
    for f in frames {
        let len = f.len() as u32;
        w.write_all(&(n as u32).to_le_bytes())?;
        w.write_all(&0u32.to_le_bytes())?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(f)?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}

/// A random permutation of `0..n` (Fisher-Yates), for arrival order.
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64(seed);
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_are_distinct() {
        let s = subscribers(100_000, 4);
        let macs: std::collections::HashSet<_> = s.iter().map(|x| x.mac).collect();
        let ips: std::collections::HashSet<_> = s.iter().map(|x| x.ip).collect();
        assert_eq!((macs.len(), ips.len()), (100_000, 100_000));
        assert!(s.iter().all(|x| x.mac[0] == 0x02));
        assert_eq!(s[5].isp, 1);
    }

    #[test]
    fn frame_has_a_valid_ipv4_checksum() {
        let s = subscribers(3, 1)[2];
        let f = upstream_frame(&s, [2, 0, 0, 0, 0, 1], Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(ipv4_checksum(&f[14..34]), 0, "a valid header sums to zero");
        assert_eq!(&f[26..30], &s.ip.octets());
    }

    #[test]
    fn pcap_has_header_and_records() {
        let dir = std::env::temp_dir().join(format!("ispmux-gen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("t.pcap");
        let frames = [[1u8; 60], [2u8; 60]];
        assert_eq!(
            write_pcap(&p, frames.iter().map(|f| &f[..])).expect("write"),
            2
        );
        let b = std::fs::read(&p).expect("read");
        assert_eq!(b.len(), 24 + 2 * (16 + 60));
        assert_eq!(&b[..4], &0xa1b2_c3d4u32.to_le_bytes());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v = shuffled(1000, 7);
        assert_ne!(v, (0..1000).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..1000).collect::<Vec<_>>());
    }
}
