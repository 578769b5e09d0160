//! Identifier space per peer (home server or NAS DAS): 256 Identifiers per source socket, and
//! more source sockets ("slots") when a peer has more than 256 requests outstanding, so the
//! (source port, Identifier) pair stays unique per peer.

use std::net::SocketAddr;

/// Most slots per peer: 64 x 256 = 16384 outstanding requests to one peer.
pub const MAX_SLOTS: u16 = 64;

#[derive(Default)]
struct Slot {
    used: [u64; 4],
    next: u8,
    in_use: u16,
}

impl Slot {
    fn take(&mut self) -> Option<u8> {
        if self.in_use >= 256 {
            return None;
        }
        // Start after the last one handed out, so an Identifier is not reused at once and a
        // late answer to the previous user is not taken for the new one.
        for k in 0..=255u8 {
            let id = self.next.wrapping_add(k);
            let (w, b) = (usize::from(id >> 6), id & 63);
            if self.used[w] & (1 << b) == 0 {
                self.used[w] |= 1 << b;
                self.in_use += 1;
                self.next = id.wrapping_add(1);
                return Some(id);
            }
        }
        None
    }

    fn give(&mut self, id: u8) {
        let (w, b) = (usize::from(id >> 6), id & 63);
        if self.used[w] & (1 << b) != 0 {
            self.used[w] &= !(1 << b);
            self.in_use -= 1;
        }
    }
}

/// Identifier allocator for all peers.
#[derive(Default)]
pub struct IdSpace {
    peers: super::FastMap<SocketAddr, Vec<Slot>>,
}

impl IdSpace {
    /// A free (slot, Identifier) towards `peer`, or none if all slots are full.
    pub fn allocate(&mut self, peer: SocketAddr) -> Option<(u16, u8)> {
        let slots = self.peers.entry(peer).or_default();
        for (i, s) in slots.iter_mut().enumerate() {
            if let Some(id) = s.take() {
                return Some((i as u16, id));
            }
        }
        if slots.len() >= usize::from(MAX_SLOTS) {
            return None;
        }
        let mut s = Slot::default();
        let id = s.take()?;
        slots.push(s);
        Some((slots.len() as u16 - 1, id))
    }

    /// Returns an Identifier.
    pub fn release(&mut self, peer: SocketAddr, slot: u16, id: u8) {
        if let Some(s) = self
            .peers
            .get_mut(&peer)
            .and_then(|v| v.get_mut(usize::from(slot)))
        {
            s.give(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_than_256_outstanding_use_a_second_slot() {
        let peer: SocketAddr = "127.0.0.1:1812".parse().expect("addr");
        let other: SocketAddr = "127.0.0.1:1813".parse().expect("addr");
        let mut ids = IdSpace::default();
        let mut got = std::collections::HashSet::new();
        for _ in 0..300 {
            assert!(got.insert(ids.allocate(peer).expect("free")));
        }
        assert_eq!(got.iter().filter(|(s, _)| *s == 1).count(), 44);
        // Another peer has its own space.
        assert_eq!(ids.allocate(other), Some((0, 0)));
        ids.release(peer, 0, 17);
        assert_eq!(ids.allocate(peer), Some((0, 17)));
        for _ in 0..(256 * usize::from(MAX_SLOTS) - 300) {
            assert!(ids.allocate(peer).is_some());
        }
        assert_eq!(ids.allocate(peer), None);
    }
}
