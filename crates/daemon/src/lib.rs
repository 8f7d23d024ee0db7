//! The rsync daemon: rsyncd.conf, modules, access control, authentication and serving.
//!
//! The pieces, in the order a connection meets them:
//! - [`config`]: rsyncd.conf(5) parsing and typed parameter access.
//! - [`greeting`]: the `@RSYNCD:` version exchange.
//! - [`access`]: `hosts allow` / `hosts deny`.
//! - [`lock`]: `max connections` slots held in the `lock file`.
//! - [`auth`]: the challenge/response digest (also used by clients; no daemon dependencies).
//! - [`secrets`]: `auth users` rules and the `secrets file`.
//! - [`session`]: one connection from greeting to the hand-off to a [`TransferHandler`].
//! - [`server`]: the listener, per-connection processes, pid file and detaching.

pub mod access;
pub mod args;
pub mod auth;
pub mod config;
pub mod greeting;
pub mod io;
pub mod lock;
pub mod log;
mod options_table;
pub mod privs;
pub mod reject;
pub mod secrets;
pub mod session;

pub use session::{DaemonOptions, Mode, NoTransfer, Session, TransferHandler};
pub mod server;
