//! The pipeline seam: a function from a burst of frames to a verdict per frame.
//!
//! The worker loop (see `worker`) gathers frames by verdict into per-port transmit bursts, the
//! punt ring and the drop counters; a pipeline only decides and rewrites.

use crate::counters::{Counters, DropReason};
use crate::frame::Frame;
use crate::trace::Lookup;

/// What becomes of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit on this port (index into the node's configured ports).
    Forward(u16),
    /// Hand to the slow path over the punt ring.
    Punt,
    /// Free and count under this reason.
    Drop(DropReason),
}

/// A per-role packet pipeline.
///
/// `process` sees a whole burst so that implementations can prefetch table entries for
/// later frames while working on earlier ones. It writes exactly one verdict per frame.
pub trait Pipeline: Send {
    /// Decides (and rewrites) every frame of a burst received on `rx_port`.
    fn process<F: Frame>(&mut self, rx_port: u16, frames: &mut [F], verdicts: &mut [Verdict]);

    /// Starts loading the table entries a later [`Pipeline::process`] of these frames will
    /// read, without deciding anything: a worker that receives burst N+1 before processing
    /// burst N calls this on N+1 so its cache misses overlap the work on N. Optional, and
    /// worth it only with a real prefetch instruction behind the tables' hook (without one,
    /// the fallback loads would wait here instead of in `process`).
    fn prefetch<F: Frame>(&mut self, _rx_port: u16, _frames: &[F]) {}

    /// The verdict of every frame received on `rx_port`, when the pipeline decides without
    /// looking at frames (a plain forwarder): the worker then skips `process` and sends the
    /// burst as it came. `None` (the default): frames are processed one by one.
    fn burst_verdict(&self, _rx_port: u16) -> Option<Verdict> {
        None
    }

    /// The pipeline's own counters, when it keeps them: such a pipeline counts its verdicts
    /// (drops by reason, punts) itself, and the worker loop then counts only the drops it
    /// decides on its own (a full queue or ring, no such port), so that a frame is counted
    /// once. `None` (the default): the worker loop counts every drop verdict.
    fn counters(&self) -> Option<&Counters> {
        None
    }

    /// What the tables say about `frame`, received on `rx_port`, for a packet trace
    /// ([`crate::trace`]); called only for traced frames, before [`Pipeline::process`].
    fn trace_lookup<F: Frame>(&self, _rx_port: u16, _frame: &F) -> Lookup {
        Lookup::default()
    }
}

/// Forwards every frame unchanged to a fixed peer port: the io forwarding of testpmd.
#[derive(Clone, Debug)]
pub struct IoForward {
    peer: Vec<u16>,
}

impl IoForward {
    /// `peer[p]` is the port that frames received on port `p` leave on.
    pub fn new(peer: Vec<u16>) -> Self {
        Self { peer }
    }

    /// Pairs ports 0↔1, 2↔3, …; an odd last port forwards to itself, as testpmd does.
    pub fn paired(ports: u16) -> Self {
        let peer = (0..ports)
            .map(|p| if p ^ 1 < ports { p ^ 1 } else { p })
            .collect();
        Self { peer }
    }

    fn peer_of(&self, rx_port: u16) -> Verdict {
        match self.peer.get(usize::from(rx_port)) {
            Some(&p) => Verdict::Forward(p),
            None => Verdict::Drop(DropReason::NoRoute),
        }
    }
}

impl Pipeline for IoForward {
    fn process<F: Frame>(&mut self, rx_port: u16, frames: &mut [F], verdicts: &mut [Verdict]) {
        let v = self.peer_of(rx_port);
        for out in verdicts.iter_mut().take(frames.len()) {
            *out = v;
        }
    }

    fn burst_verdict(&self, rx_port: u16) -> Option<Verdict> {
        Some(self.peer_of(rx_port))
    }
}

/// Like [`IoForward`], and swaps the Ethernet source and destination addresses.
#[derive(Clone, Debug)]
pub struct MacSwap {
    io: IoForward,
}

impl MacSwap {
    /// See [`IoForward::paired`].
    pub fn paired(ports: u16) -> Self {
        Self {
            io: IoForward::paired(ports),
        }
    }
}

impl Pipeline for MacSwap {
    fn process<F: Frame>(&mut self, rx_port: u16, frames: &mut [F], verdicts: &mut [Verdict]) {
        let v = self.io.peer_of(rx_port);
        for (f, out) in frames.iter_mut().zip(verdicts.iter_mut()) {
            let d = f.data_mut();
            if d.len() < 14 {
                *out = Verdict::Drop(DropReason::Truncated);
                continue;
            }
            let (dst, rest) = d.split_at_mut(6);
            dst.swap_with_slice(&mut rest[..6]);
            *out = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::VecFrame;

    #[test]
    fn io_pairs_ports_like_testpmd() {
        let mut io = IoForward::paired(3);
        let mut frames = [VecFrame::new(&[0; 60])];
        let mut v = [Verdict::Punt];
        io.process(0, &mut frames, &mut v);
        assert_eq!(v[0], Verdict::Forward(1));
        io.process(1, &mut frames, &mut v);
        assert_eq!(v[0], Verdict::Forward(0));
        io.process(2, &mut frames, &mut v);
        assert_eq!(v[0], Verdict::Forward(2));
        io.process(7, &mut frames, &mut v);
        assert_eq!(v[0], Verdict::Drop(DropReason::NoRoute));
        assert_eq!(io.burst_verdict(1), Some(Verdict::Forward(0)));
        assert_eq!(
            MacSwap::paired(2).burst_verdict(1),
            None,
            "macswap looks at frames"
        );
    }

    #[test]
    fn macswap_swaps_addresses_and_drops_runts() {
        let mut frame = vec![1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0x08, 0x00];
        frame.extend_from_slice(&[0xaa; 46]);
        let mut frames = [VecFrame::new(&frame), VecFrame::new(&[0; 10])];
        let mut v = [Verdict::Punt; 2];
        MacSwap::paired(2).process(1, &mut frames, &mut v);
        assert_eq!(
            &frames[0].data()[..12],
            &[2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1]
        );
        assert_eq!(
            v,
            [Verdict::Forward(0), Verdict::Drop(DropReason::Truncated)]
        );
    }
}
