//! The frame seam: what a pipeline may do to a packet buffer.
//!
//! Pipelines are written against this trait so that known-answer tests run over plain byte
//! buffers ([`VecFrame`]) and the workers run the same code over DPDK mbufs.

/// A packet buffer with headroom in front of its data, like an `rte_mbuf` segment.
pub trait Frame {
    /// The frame's bytes, from the first byte of the Ethernet header.
    fn data(&self) -> &[u8];
    /// The frame's bytes, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Grows the frame by `n` bytes at the front (headroom); `None` when there is no room.
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Removes `n` bytes from the front; `false` when the frame is shorter than `n`.
    fn adj(&mut self, n: usize) -> bool;
    /// Length of the frame in bytes.
    fn len(&self) -> usize {
        self.data().len()
    }
    /// True for a frame of no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A heap-backed frame for tests and for the slow path; not for the hot path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VecFrame {
    buf: Vec<u8>,
    start: usize,
}

impl VecFrame {
    /// Default headroom, as `RTE_PKTMBUF_HEADROOM`.
    pub const HEADROOM: usize = 128;

    /// A frame holding `bytes` with the default headroom in front.
    pub fn new(bytes: &[u8]) -> Self {
        Self::with_headroom(bytes, Self::HEADROOM)
    }

    /// A frame holding `bytes` with `headroom` free bytes in front.
    pub fn with_headroom(bytes: &[u8], headroom: usize) -> Self {
        let mut buf = vec![0u8; headroom + bytes.len()];
        buf[headroom..].copy_from_slice(bytes);
        Self {
            buf,
            start: headroom,
        }
    }

    /// The bytes of the frame as an owned vector.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf[self.start..].to_vec()
    }
}

impl Frame for VecFrame {
    fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..]
    }

    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.start {
            return None;
        }
        self.start -= n;
        Some(&mut self.buf[self.start..])
    }

    fn adj(&mut self, n: usize) -> bool {
        if n > self.buf.len() - self.start {
            return false;
        }
        self.start += n;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepend_and_adj_move_the_start() {
        let mut f = VecFrame::with_headroom(&[1, 2, 3], 4);
        assert!(f.prepend(5).is_none());
        f.prepend(4).expect("room")[..4].copy_from_slice(&[9, 9, 9, 9]);
        assert_eq!(f.data(), &[9, 9, 9, 9, 1, 2, 3]);
        assert!(f.adj(5));
        assert_eq!(f.data(), &[2, 3]);
        assert!(!f.adj(3));
        assert_eq!(f.len(), 2);
    }
}
