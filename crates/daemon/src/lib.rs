//! The rsync daemon: rsyncd.conf, modules, access control, authentication and serving.
//!
//! `rtsync daemon` (and `rsync --daemon` through the personality) serves rsync's daemon
//! protocol on TCP, over inetd / `RSYNC_CONNECT_PROG` (standard input is a socket) and over a
//! remote shell (`rsync --server --daemon .`). Everything up to the file transfer happens here,
//! with stock rsync 3.5.0's messages and exit codes; the transfer itself is plugged in through
//! [`TransferHandler`].
//!
//! The pieces, in the order a connection meets them:
//! - [`server`]: listener, one forked process per connection, pid file, detaching.
//! - [`config`]: rsyncd.conf(5), re-read for every connection (no SIGHUP needed).
//! - [`greeting`]: the `@RSYNCD:` version exchange and protocol negotiation.
//! - [`access`]: `hosts allow` / `hosts deny` (deny rules fail closed).
//! - [`lock`]: `max connections` slots held in the `lock file`.
//! - [`auth`]: the challenge/response digest, also for clients (no daemon dependencies).
//! - [`secrets`]: `auth users` rules and the `secrets file` (`strict modes`).
//! - [`exec`]: `early exec`, `pre-xfer exec`, `post-xfer exec`.
//! - [`privs`]: chroot, uid/gid drop.
//! - [`args`]: the client's arguments and `refuse options`.
//! - [`reject`]: stock's way of ending a session after the arguments (read only, write only,
//!   refused options, pre-xfer failures).
//! - [`session`]: one connection from greeting to the hand-off.
//! - [`beneath`]: opening paths strictly beneath the module root (openat2 RESOLVE_BENEATH).
//!
//! # Plugging in the transfer
//!
//! When a client has passed every check, the daemon has chrooted (if configured), dropped to
//! the module's uid/gid, answered `@RSYNCD: OK`, read and checked the client's arguments, and
//! calls [`TransferHandler::run`] with a [`Session`]: the connection positioned right after the
//! arguments (no protocol setup done yet: the handler does compat flags, checksum seed,
//! multiplexing), the module's settings, the parsed arguments, the negotiated protocol, the
//! authenticated user, the effective `read only`, and the module root as an open directory to
//! resolve every path beneath. The handler returns the session's exit code.
//!
//! ```no_run
//! use rtsync_daemon::server::{self, ListenOptions};
//! use rtsync_daemon::{DaemonOptions, Session};
//!
//! fn transfer(session: Session) -> i32 {
//!     // setup_protocol, then sender or receiver role on session.input / session.output
//!     let _ = (session.protocol, session.args.sender, &session.root);
//!     0
//! }
//!
//! let opts = DaemonOptions { config: "/etc/rsyncd.conf".into(), ..Default::default() };
//! let listen = ListenOptions { no_detach: true, ..Default::default() };
//! server::run(&opts, &listen, &transfer).unwrap();
//! ```

pub mod access;
pub mod args;
pub mod auth;
pub mod beneath;
pub mod config;
pub mod exec;
pub mod greeting;
pub mod io;
pub mod lock;
pub mod log;
mod options_table;
pub mod privs;
pub mod proxy;
pub mod reject;
pub mod secrets;
pub mod server;
pub mod session;

pub use session::{DaemonOptions, Mode, NoTransfer, Session, TransferHandler};
