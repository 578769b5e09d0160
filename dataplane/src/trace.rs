//! A packet trace like VPP's `trace add`: the path of the next N frames through a worker's
//! pipeline, for an operator debugging drops.
//!
//! The control side arms a worker's [`TraceControl`] with a count ([`TraceControl::arm`]).
//! The worker checks that count once per burst, one relaxed load ([`TraceControl::armed`]):
//! when it is zero nothing else happens on the fast path. A traced burst goes through
//! [`TraceControl::process`], which notes each traced frame's receive port, length, link
//! header and table lookups before the pipeline runs, and its verdict after, into a buffer
//! allocated with the control: the worker never allocates. The pipeline itself runs as
//! usual, so a trace shows what untraced frames go through. The control side collects the
//! records with [`TraceControl::take`]; each prints as one line.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::counters::DropReason;
use crate::frame::Frame;
use crate::pipeline::{Pipeline, Verdict};
use crate::roles::classify::{parse_l2, L2};
use crate::table::IspId;

/// Records a worker holds until the control side takes them; arming asks for at most this
/// many.
pub const CAPACITY: usize = 1024;

/// What a pipeline's tables say about a frame, as far as a trace can tell cheaply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lookup {
    /// The ISP the frame belongs to (subscriber, hand-off VLAN or label).
    pub isp: Option<IspId>,
    /// The label: pushed at the headend or tailend, the top label on a core port.
    pub label: Option<u32>,
}

/// One traced frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceRecord {
    /// The worker's index, as given to [`TraceControl::new`].
    pub worker: u16,
    /// Port the frame was received on.
    pub rx_port: u16,
    /// Frame length as received.
    pub len: usize,
    /// The link layer as received, or why it does not parse.
    pub l2: Result<L2, DropReason>,
    /// Table lookups on the frame as received.
    pub lookup: Lookup,
    /// What the pipeline decided.
    pub verdict: Verdict,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Forward(p) => write!(f, "forward port {p}"),
            Verdict::Punt => f.write_str("punt"),
            Verdict::Drop(r) => write!(f, "drop {}", r.name()),
        }
    }
}

impl fmt::Display for TraceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "worker {} port {} len {}",
            self.worker, self.rx_port, self.len
        )?;
        match &self.l2 {
            Ok(l2) => {
                write!(f, " {} > {}", l2.src, l2.dst)?;
                if l2.outer_vid != 0 {
                    write!(f, " vlan {}", l2.outer_vid)?;
                }
                if l2.inner_vid != 0 {
                    write!(f, " inner {}", l2.inner_vid)?;
                }
                write!(f, " type 0x{:04x}", l2.ethertype.0)?;
            }
            Err(r) => write!(f, " unparsed ({})", r.name())?,
        }
        if let Some(isp) = self.lookup.isp {
            write!(f, " isp {isp}")?;
        }
        if let Some(label) = self.lookup.label {
            write!(f, " label {label}")?;
        }
        write!(f, ": {}", self.verdict)
    }
}

/// One worker's trace, armed and read by the control side, written by the worker.
#[derive(Debug)]
pub struct TraceControl {
    worker: u16,
    remaining: AtomicUsize,
    records: Mutex<Vec<TraceRecord>>,
}

impl TraceControl {
    /// The trace of worker `worker` (an index shown in its records), unarmed; allocates its
    /// buffer now.
    pub fn new(worker: u16) -> Self {
        TraceControl {
            worker,
            remaining: AtomicUsize::new(0),
            records: Mutex::new(Vec::with_capacity(CAPACITY)),
        }
    }

    /// Traces the next `n` frames this worker receives (at most [`CAPACITY`]); 0 disarms.
    pub fn arm(&self, n: usize) {
        self.remaining.store(n.min(CAPACITY), Ordering::Relaxed);
    }

    /// Frames still to trace.
    pub fn remaining(&self) -> usize {
        self.remaining.load(Ordering::Relaxed)
    }

    /// The records so far, oldest first, leaving the buffer empty (its room kept).
    pub fn take(&self) -> Vec<TraceRecord> {
        match self.records.lock() {
            Ok(mut r) => {
                let out = r.clone();
                r.clear();
                out
            }
            Err(_) => Vec::new(),
        }
    }

    /// Worker side, once per burst: whether to run it through [`TraceControl::process`].
    #[inline(always)]
    pub fn armed(&self) -> bool {
        self.remaining.load(Ordering::Relaxed) != 0
    }

    /// Worker side: runs `pipeline` over the burst exactly as untraced, and records the
    /// first frames of it while the trace is armed. Never allocates: records that do not
    /// fit, or a buffer the control side holds at that moment, leave frames untraced.
    #[cold]
    #[inline(never)]
    pub fn process<P: Pipeline, F: Frame>(
        &self,
        pipeline: &mut P,
        rx_port: u16,
        frames: &mut [F],
        verdicts: &mut [Verdict],
    ) {
        let Ok(mut records) = self.records.try_lock() else {
            pipeline.process(rx_port, frames, verdicts);
            return;
        };
        let room = records.capacity() - records.len();
        let n = self.remaining().min(room).min(frames.len());
        let first = records.len();
        for f in &frames[..n] {
            records.push(TraceRecord {
                worker: self.worker,
                rx_port,
                len: f.len(),
                l2: parse_l2(f.data()),
                lookup: pipeline.trace_lookup(rx_port, f),
                verdict: Verdict::Punt,
            });
        }
        pipeline.process(rx_port, frames, verdicts);
        for (r, v) in records[first..].iter_mut().zip(verdicts.iter()) {
            r.verdict = *v;
        }
        // The control side may have armed again meanwhile: count down what is there.
        let _ = self
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                Some(r.saturating_sub(n))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::VecFrame;
    use crate::roles::{Node, PortAddr, PortConfig, PortRole};
    use crate::synthetic::{self, Spec};
    use crate::wire::MacAddr;

    const SPEC: Spec = Spec {
        subscribers: 4,
        isps: 2,
        access_port: 0,
        core_port: 1,
        qinq: false,
    };

    fn node() -> (Node, MacAddr) {
        let mac = |last| MacAddr([2, 0, 0, 0, 0, last]);
        let port = |role, last| PortConfig {
            role,
            mac: mac(last),
            mtu: 1500,
            address: PortAddr::NONE,
            implicit_null: None,
        };
        let ports = vec![port(PortRole::Access, 0xa0), port(PortRole::Core, 0xc1)];
        let node =
            Node::from_preload(ports, &synthetic::preload(&SPEC, mac(0x11))).expect("preload");
        (node, mac(0xa0))
    }

    /// Subscribers 0, 1, 2 and 3 around one of no subscriber (index 9): four forwarded,
    /// one dropped.
    fn burst(port_mac: MacAddr) -> Vec<VecFrame> {
        [0, 9, 1, 2, 3]
            .iter()
            .map(|&i| VecFrame::new(&synthetic::upstream_frame(&SPEC, i, port_mac, 60)))
            .collect()
    }

    #[test]
    fn an_armed_trace_records_the_next_frames_with_their_verdicts() {
        let (mut node, port_mac) = node();
        let trace = TraceControl::new(7);
        trace.arm(3);
        let mut frames = burst(port_mac);
        let mut v = vec![Verdict::Punt; frames.len()];
        assert!(trace.armed());
        trace.process(&mut node, 0, &mut frames, &mut v);
        assert_eq!(v[1], Verdict::Drop(DropReason::UnknownMac));
        assert!(!trace.armed(), "3 frames traced, none left");
        let r = trace.take();
        let got: Vec<_> = r.iter().map(|r| (r.verdict, r.lookup)).collect();
        let fwd = |isp: IspId| {
            let label = Some(1000 + u32::from(isp));
            (
                Verdict::Forward(1),
                Lookup {
                    isp: Some(isp),
                    label,
                },
            )
        };
        // Subscriber i belongs to ISP 1 + i mod 2, whose upstream label is 1000 + its id.
        assert_eq!(
            got,
            [
                fwd(1),
                (Verdict::Drop(DropReason::UnknownMac), Lookup::default()),
                fwd(2),
            ]
        );
        assert!(r
            .iter()
            .all(|r| r.worker == 7 && r.rx_port == 0 && r.len == 60));
        let l2 = r[1].l2.expect("parses");
        assert_eq!(l2.dst, port_mac);
        assert_eq!(l2.ethertype.0, 0x0800);
        let line = r[1].to_string();
        assert!(line.starts_with("worker 7 port 0 len 60 02:"), "{line}");
        assert!(line.ends_with("type 0x0800: drop unknown_mac"), "{line}");
        assert!(r[0]
            .to_string()
            .ends_with("isp 1 label 1001: forward port 1"));
        assert!(trace.take().is_empty(), "taken once");
    }

    #[test]
    fn an_unarmed_trace_records_nothing_and_frames_go_as_untraced() {
        let (mut node, port_mac) = node();
        let trace = TraceControl::new(0);
        let mut frames = burst(port_mac);
        let mut v = vec![Verdict::Punt; frames.len()];
        trace.process(&mut node, 0, &mut frames, &mut v);
        assert!(trace.take().is_empty());
        let mut plain = burst(port_mac);
        let mut w = vec![Verdict::Punt; plain.len()];
        node.process(0, &mut plain, &mut w);
        assert_eq!(v, w);
        assert_eq!(frames, plain);
        trace.arm(CAPACITY + 5);
        assert_eq!(trace.remaining(), CAPACITY);
        trace.arm(0);
        assert!(!trace.armed());
    }
}
