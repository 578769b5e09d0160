//! The DHCP logon proxy (seeds 000 and 001: the "extended DHCP" logon through the
//! broadband multi-server proxy).
//!
//! - [`codec`]: DHCPv4 messages; [`relay_info`]: option 82 and its sub-options;
//!   [`credential`]: the logon options 224/225.
//! - [`engine`]: the sans-IO logon engine: frames and datagrams in, datagrams, replies,
//!   binding changes and store writes out.
//! - [`frame`]: Ethernet/802.1Q/IPv4/UDP around the message on the subscriber side, on
//!   `dataplane::wire`.
//! - [`verifier`]: Argon2 password verifications on their own thread, bounded.
//! - [`transport`]: the ISP-side kernel UDP socket.
//! - [`service`]: the engine wired to frames, the socket and the registry (what the
//!   slow-path thread calls); [`writer`]: the store writer thread (group commit).
//!
//! ## Wiring (for the DPDK side)
//!
//! - **Punt**: IPv4 UDP to port 67 arriving on an access port, broadcast or addressed to
//!   `dhcp.server_identifier` (renewals are unicast there), goes to
//!   [`service::LogonService::punt`] with the port number; the frame as received (up to
//!   two VLAN tags, 802.1Q or 802.1ad, like the classifier).
//! - **Inject**: every [`service::Inject`] from [`service::LogonService::flush`] is a complete
//!   Ethernet frame for its access port, from that port's MAC (the MACs of all ports, by
//!   port index, are given at start).
//! - **Tables**: every [`BindingChange`] from `flush` (and from start: reinstalled bindings)
//!   becomes a table update: `Install` admits `ipv4` from `mac` on `port`/`vlan`/`inner_vlan`
//!   onto the ISP's label path (same MAC again = refresh), `Remove` withdraws it. With the
//!   fast path's `TableUpdate`: key = `SubscriberKey { port, outer_vid: vlan, inner_vid:
//!   inner_vlan, mac }`; `Install` → `AddSubscriber { key, isp }` (if not preloaded) then
//!   `Bind { key, addr: ipv4 }`; `Remove` → `Unbind { key }`. They come after the
//!   store commit, so a crash never leaves the fast path ahead of the store.
//! - **Loop**: register [`service::LogonService::socket`] with mio; on each turn punt what the
//!   ring gave, `poll_isp` (the socket and finished password verifications), `tick` at
//!   `next_deadline` (monotonic: compare with [`crate::time::Now::mono`]), then `flush`.
//! - **Control**: after `ispmux subscriber remove` or a suspension, call `revoke(mac)`.

pub mod codec;
pub mod credential;
pub mod credential_cache;
pub mod engine;
pub mod frame;
#[doc(hidden)]
pub mod fuzzing;
mod mac;
pub mod ratelimit;
pub mod relay_info;
pub mod service;
pub mod timers;
pub mod transport;
pub mod verifier;
pub mod writer;

pub use codec::{DecodeError, Message, MessageType};
pub use engine::{
    BindingChange, Directory, Engine, Input, Output, RefusalReason, Reply, StoreWrite,
};
pub use mac::{MacAddr, MacParseError};
