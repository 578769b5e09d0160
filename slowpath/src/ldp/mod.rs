//! LDP (RFC 5036), sans-IO: the PDU codec (`wire`), the TCP stream framer (`framer`), Link
//! Hello discovery (`discovery`), the session state machine (`session`), the label
//! procedures (`labels`, `label_space`) and the engine that runs them for one LSR (`engine`).

pub mod discovery;
pub mod engine;
#[cfg(test)]
mod engine_tests;
pub mod framer;
pub mod fuzzing;
pub mod label_space;
pub mod labels;
#[cfg(test)]
mod labels_tests;
pub mod session;
pub mod wire;

pub use engine::{Config, ConfigError, Down, Engine, FecChange, Input, Neighbour, Output};
pub use labels::{Binding, Fec, FecState};
pub use session::{Role, State};
