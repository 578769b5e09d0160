//! The ispmux gateway as a library object: [`Gateway::start`] brings up EAL, the ports,
//! the rings, the pinned workers, the slow path (punt dispatch, the DHCP logon proxy), the
//! RADIUS proxy and the control socket; [`Gateway::run_until`] serves the control socket;
//! [`Gateway::shutdown`] stops it all in order and returns the [`Report`]. The `ispmux`
//! binary parses arguments, calls these and prints.
//!
//! Control is one typed command set ([`ControlCommand`]) answered by one dispatcher
//! ([`Gateway::command`]) with typed answers ([`ControlAnswer`]).

pub mod command;
pub mod control;
mod error;
mod forwarding;
mod gateway;
pub mod icmp;
pub mod inbox;
pub mod label_map;
pub mod ldp;
mod logon;
pub mod metrics;
pub mod neighbour;
pub mod notice;
mod radius;
mod registered;
mod reload;
pub mod report;
pub mod routes;
mod rtnl;
mod slowpath;
mod twin;
mod update_gen;

pub use command::{CommandError, ControlAnswer, ControlCommand};
pub use control::{request, ControlError, ControlServer};
pub use error::GatewayError;
pub use gateway::{Event, Gateway, PortRate};
pub use inbox::{AskError, CommandSender};
pub use logon::open_registry;
pub use report::{Report, Stats};
pub use slowpath::SlowPathStats;
pub use update_gen::KEYS as UPDATE_GEN_KEYS;
