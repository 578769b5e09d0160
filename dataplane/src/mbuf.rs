//! DPDK mbufs as pipeline frames.

use ispmux_sys::Mbuf;

use crate::frame::Frame;

impl Frame for Mbuf {
    #[inline]
    fn data(&self) -> &[u8] {
        Mbuf::data(self)
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        Mbuf::data_mut(self)
    }

    #[inline]
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        Mbuf::prepend(self, n)
    }

    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        Mbuf::adj(self, n)
    }

    #[inline]
    fn len(&self) -> usize {
        Mbuf::data(self).len()
    }
}
