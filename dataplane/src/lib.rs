//! The ispmux fast path: packet views, tables, per-role pipelines and the worker loop.
//!
//! - [`wire`]: zero-copy header views (Ethernet, VLAN, MPLS, IPv4, UDP, ARP).
//! - [`table`]: the tables workers read, changed only through [`table::TableUpdate`]s.
//! - [`roles`]: headend, transit and tailend pipelines, combined per port by [`roles::Node`].
//! - [`counters`]: per-worker counters, per ISP and per drop reason.

#![forbid(unsafe_code)]

pub mod counters;
pub mod frame;
pub mod pipeline;
pub mod roles;
pub mod table;
pub mod wire;

pub use counters::{Counters, CountersReport, DropReason};
pub use frame::{Frame, VecFrame};
pub use pipeline::{IoForward, MacSwap, Pipeline, Verdict};
pub use roles::{Node, PortConfig, PortRole};
pub use table::{PreloadTables, TableUpdate, Tables};
