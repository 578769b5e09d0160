//! The ispmux slow path: protocol engines as sans-IO state machines (datagrams and time in,
//! datagrams, table updates and store writes out), the store, and thin transports around them.

pub mod dhcp;
pub mod icmp;
pub mod ldp;
pub mod neighbour;
pub mod punt;
pub mod radius;
pub mod registry;
pub mod routes;
pub mod store;
pub mod time;
pub mod udp_batch;
