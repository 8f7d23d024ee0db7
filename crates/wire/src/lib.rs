//! The rsync wire protocol (30–32), wire-compatible with stock rsync 3.x: both client roles
//! (pull = receiver, push = sender) over a daemon socket or a remote shell, and the server
//! role (`rsync --server [--sender]`) used through `-e`/`--rsync-path` and by the daemon.
//!
//! # Front doors
//! - [`client::run`]`(&Options, &ClientEnv) -> Result<Outcome>`: a whole client transfer
//!   from rsync-style arguments (`opts.args` = sources then destination; a lone remote source
//!   lists). [`client::Outcome::exit_code`] gives rsync's exit code (0, 23, 24); fatal errors
//!   are [`Error`]s with [`Error::exit_code`] and [`Error::client_message`] (stock's wording).
//! - [`server::run`]`(args, stdin, stdout) -> i32`: the remote-shell server; and
//!   [`server::run_session`] with a [`server::ServerSession`] for the daemon (protocol from
//!   the greeting, module root confinement, read-only/write-only refusal).
//!
//! # Layers, bottom up
//! - [`varint`]: integers and strings; [`mux`]: the multiplexed stream (MSG_DATA plus
//!   out-of-band messages, bounded frames, typed errors); [`ndx`]: file-index encoding;
//! - [`daemon_client`]: greeting, module request, challenge/response login, arguments;
//!   [`negotiate`]: version exchange, compat flags, checksum/compression lists, seed;
//!   [`checksum`]: names, whole-file and auth digests ([`rtsync_delta`] does block sums);
//! - [`flist`]: the file-list codec with strict name validation; [`sums`]: sum headers and
//!   item flags; [`filters`]: filter lists via `rtsync-filter`;
//! - [`pull`] (generator + receiver threads), [`push`] (sender); [`local`]: the receiving
//!   side's filesystem work; [`log`]: item lines in file-list order;
//! - [`connect`]: TCP (TCP_NODELAY, TCP_QUICKACK per read, `--address`, `--contimeout`,
//!   `--timeout`), `RSYNC_CONNECT_PROG`, remote shells.
//!
//! ```
//! use rtsync_wire::varint::{put_varint, ReadWire};
//! let mut buf = Vec::new();
//! put_varint(&mut buf, 0x1fe); // compat flags as a stock server sends them
//! assert_eq!(buf, [0x81, 0xfe]);
//! assert_eq!((&mut &buf[..]).read_varint().unwrap(), 0x1fe);
//! ```

pub mod acls;
pub mod argtext;
pub mod batch;
mod batch_inc;
pub mod blocksum;
pub mod checksum;
pub mod client;
pub mod connect;
pub mod daemon_client;
pub mod error;
pub mod filters;
pub mod flist;
pub mod iconv;
pub mod local;
pub mod log;
pub mod mux;
pub mod ndx;
pub mod negotiate;
pub mod pull;
pub mod push;
mod push_client;
pub use push_client::remote_files_from;
pub mod server;
pub mod server_args;
pub mod sums;
pub mod varint;
pub mod xattrs;

pub use error::{Error, Result};
