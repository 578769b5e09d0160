//! The DHCP logon proxy (seeds 000 and 001: the "extended DHCP" logon through the
//! broadband multi-server proxy).
//!
//! - [`codec`]: DHCPv4 messages; [`relay_info`]: option 82 and its sub-options;
//!   [`credential`]: the logon options 224/225.
//! - [`engine`]: the sans-IO logon engine: frames and datagrams in, datagrams, replies,
//!   binding changes and store writes out.
//! - [`frame`]: Ethernet/802.1Q/IPv4/UDP around the message on the subscriber side.
//! - [`transport`]: the ISP-side kernel UDP socket.
//! - [`service`]: the engine wired to frames, the socket and the registry (what the
//!   slow-path thread calls).

pub mod codec;
pub mod credential;
pub mod engine;
pub mod frame;
#[doc(hidden)]
pub mod fuzzing;
mod mac;
pub mod ratelimit;
pub mod relay_info;
pub mod service;
pub mod transport;
pub mod writer;

pub use codec::{DecodeError, Message, MessageType};
pub use engine::{
    BindingChange, Directory, Engine, Input, Output, RefusalReason, Reply, StoreWrite,
};
pub use mac::{MacAddr, MacParseError};
