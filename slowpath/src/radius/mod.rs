//! The capacity-sharing RADIUS proxy (RFC 2865/2866/3579/5176/5997): a master SP rents ports
//! of its POPs to client SPs; the proxy stands between the NASes and the RADIUS servers.
//!
//! `packet` and `crypto` are the codec; `engine` is the sans-IO proxy; `transport` runs it on
//! kernel UDP sockets; `usage` keeps billing records durable; `client` is a small NAS client.

pub mod attr;
pub mod capacity;
pub mod client;
pub mod committer;
pub mod crypto;
pub mod dedup;
pub mod engine;
#[cfg(test)]
mod engine_tests;
pub mod fuzzing;
pub mod ids;
pub mod packet;
pub mod realm;
pub mod salted;
pub mod stats;
pub mod transport;
pub mod usage;

/// The engine's per-request maps. Their keys carry what NASes and servers send (addresses,
/// authenticators), so the hasher stays randomly keyed against flooding, but is several times
/// cheaper per lookup than SipHash, which showed in profiles of the request path.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

pub use engine::{Engine, Input, Listener, Now, Output};
pub use packet::{Code, Packet, ParseError};
