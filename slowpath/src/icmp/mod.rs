//! ICMP errors the gateway originates for what its fast path punts: Time Exceeded when a
//! TTL expires here (RFC 792; for a labelled packet with RFC 4950's MPLS label stack object,
//! sent on along the LSP by a transit, RFC 3032 section 2.3.2) and Fragmentation Needed with
//! the next-hop MTU (RFC 1191) when a DF packet does not fit once labelled.
//!
//! Sans-IO: the punted frame, the ports and the tables in; the frame to inject and its port
//! out ([`answer`]), or a [`Refusal`] saying why not. [`build`] makes the IPv4 packet and
//! keeps RFC 1812's rules on what is never answered; [`limit`] is the per-source rate limit
//! the caller applies before sending.

pub mod answer;
pub mod build;
#[doc(hidden)]
pub mod fuzzing;
pub mod limit;

pub use answer::{answer, Answer, Site, Trigger};
pub use build::{IcmpError, Refusal};
pub use limit::SourceLimiter;

#[cfg(test)]
mod tests;
