//! The ispmux fast path: packet views, tables, per-role pipelines and the worker loop.

pub mod counters;
pub mod frame;
mod mbuf;
pub mod pipeline;
pub mod worker;

pub use counters::DropReason;
pub use frame::{Frame, VecFrame};
pub use pipeline::{IoForward, MacSwap, Pipeline, Verdict};
