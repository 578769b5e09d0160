//! The ispmux fast path: packet views, tables, per-role pipelines and the worker loop.
//!
//! - [`wire`]: zero-copy header views (Ethernet, VLAN, MPLS, IPv4, UDP, ARP).
//! - [`table`]: the tables workers read, changed only through [`table::TableUpdate`]s.
//! - [`roles`]: one pipeline per port role (access, core, hand-off), combined per port by
//!   [`roles::Node`].
//! - [`counters`]: per-worker counters, per ISP and per drop reason.
//! - [`trace`]: the path of the next N frames through a worker, armed from the control side.
//!
//! # How a worker uses it
//!
//! One [`Node`] per worker, built from the configuration preload; the slow path keeps the
//! master copy and sends [`TableUpdate`]s; between bursts the worker replays pending writes,
//! and now and then publishes its counters for the control side to sum.
//!
//! What the worker loop (in the DPDK layer) is expected to do:
//! - build each worker's tables with [`PreloadTables::build_with`], advising huge pages on
//!   [`Tables::memory_regions`] and setting the prefetch hook ([`Tables::set_prefetch`],
//!   backed by `rte_prefetch0`) in the callback, before the tables are filled;
//! - check [`Tables::same_layout`] against the slow path's master copy once at start;
//! - receive burst N+1, call [`Pipeline::prefetch`] on it, then [`Pipeline::process`] on
//!   burst N, so N+1's table misses overlap N's work;
//! - gather frames by [`Verdict`]: per-port transmit bursts, the punt ring, free; count its
//!   own drops (`TxFull`, `PuntRingFull`) in a [`Counters`] block of its own (the node
//!   counts its verdicts in its block: a frame is counted once);
//! - every few tens of microseconds (not every burst: a drain's misses then overlap), call
//!   [`Node::apply_updates`] with a generous maximum;
//! - now and then publish its block plus the node's
//!   ([`shared::SharedCounters::publish`]) for the control side, which adds all workers
//!   up with [`shared::sum`].
//!
//! ```
//! use ispmux_dataplane::table::{updates, Limits};
//! use ispmux_dataplane::shared::{self, SharedCounters};
//! use ispmux_dataplane::{Counters, Node, Pipeline, PortAddr, PortConfig, PortRole, PreloadTables, VecFrame, Verdict};
//!
//! let preload = PreloadTables { limits: Limits::default(), ..Default::default() };
//! let ports = vec![
//!     PortConfig { role: PortRole::Access, mac: "02:00:00:00:00:01".parse().unwrap(), mtu: 1500, address: PortAddr::NONE, implicit_null: None },
//!     PortConfig { role: PortRole::Core, mac: "02:00:00:00:00:02".parse().unwrap(), mtu: 1500, address: PortAddr::NONE, implicit_null: None },
//! ];
//! // Slow path: the master copy and one queue per worker.
//! let (mut tx, rx) = updates::channel(preload.build().unwrap(), 1, 65_536);
//! // Worker, at start (sys may advise huge pages / set the prefetch hook in `build_with`):
//! let mut node = Node::new(ports, preload.build_with(|_tables| {}).unwrap());
//! assert!(node.tables().same_layout(tx.tables()));
//! let published = SharedCounters::new(preload.limits.max_isps);
//! let mut own = Counters::new(0); // the loop's own counters: no ISPs
//! // Worker loop, per iteration:
//! node.apply_updates(&rx[0], 256);
//! let mut burst = [VecFrame::new(&[0u8; 60])]; // mbufs in the real worker
//! let mut verdicts = [Verdict::Punt; 1];
//! node.process(0, &mut burst, &mut verdicts);
//! // Forward(port) → tx burst of that port; Punt → punt ring; Drop → free the mbuf.
//! // A full tx queue or punt ring is the loop's own counted drop:
//! // own.drop(DropReason::TxFull);
//! own.worker.rx += 1;
//! published.publish(&own, Some(node.counters()));
//! // Control side, any thread:
//! let total = shared::sum([&published]);
//! # assert_eq!(verdicts[0], Verdict::Drop(ispmux_dataplane::DropReason::NotIpv4));
//! assert_eq!(total.drops(ispmux_dataplane::DropReason::NotIpv4), 1);
//! # let _ = &mut tx;
//! ```

#![forbid(unsafe_code)]

pub mod counters;
pub mod frame;
#[cfg(feature = "dpdk")]
mod mbuf;
pub mod meter;
pub mod pipeline;
pub mod roles;
pub mod shared;
pub mod synthetic;
pub mod table;
pub mod trace;
pub mod wire;
#[cfg(feature = "dpdk")]
pub mod worker;

pub use counters::{Counters, DropReason, IspCounters, IspLine, PacketBytes, WorkerCounters};
pub use frame::{Frame, VecFrame};
pub use pipeline::{IoForward, MacSwap, Pipeline, Verdict};
pub use roles::{Node, PortAddr, PortConfig, PortRole};
pub use table::{DhcpFilter, PreloadTables, TableUpdate, Tables};
