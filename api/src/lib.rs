//! The provisioning API: HTTP/1.1 + JSON (over TLS unless on loopback or allowed plain) on
//! which ISPs register their subscribers, each ISP by its own bearer token and seeing only
//! its own data, and the operator issues ISP tokens and reads everything.
//!
//! It runs on its own thread and tokio runtime ([`ApiServer::start`]), writes the store
//! through the same registry code as `ispmux subscriber` (its own SQLite connections, used
//! from blocking threads), and asks the running gateway through a [`CommandSender`]: the
//! same typed control commands as the control socket, answered by the same dispatcher.
//! The routes are listed once ([`routes::routes`]); `api/openapi.json` documents them and a
//! test keeps the two equal.
//!
//! [`CommandSender`]: ispmux_gateway::CommandSender

pub mod auth;
pub mod confedit;
pub mod config_file;
pub mod error;
pub mod import;
pub mod model;
mod operator;
pub mod routes;
mod server;
pub mod state;
pub mod token;

pub use error::ApiError;
pub use server::{app, ApiServer, StartError};
pub use state::AppState;

/// The OpenAPI 3 document of the routes, as served at nowhere and kept in the repository.
pub const OPENAPI: &str = include_str!("../openapi.json");
