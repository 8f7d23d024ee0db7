//! The rsync wire protocol (30–32): varints, multiplexed I/O, handshake, file-list codec, roles.
//!
//! Layers, bottom up:
//! - [`varint`]: rsync's integer and string encodings;
//! - [`mux`]: the multiplexed stream (MSG_DATA plus out-of-band messages);
//! - [`ndx`]: file-list index encoding;
//!
//! ```
//! use rtsync_wire::varint::{put_varint, ReadWire};
//! let mut buf = Vec::new();
//! put_varint(&mut buf, 0x1fe); // compat flags as a stock server sends them
//! assert_eq!(buf, [0x81, 0xfe]);
//! assert_eq!((&mut &buf[..]).read_varint().unwrap(), 0x1fe);
//! ```

pub mod blocksum;
pub mod checksum;
pub mod client;
pub mod connect;
pub mod daemon_client;
pub mod error;
pub mod filters;
pub mod flist;
pub mod local;
pub mod log;
pub mod mux;
pub mod ndx;
pub mod negotiate;
pub mod pull;
pub mod push;
mod push_client;
pub mod server;
pub mod server_args;
pub mod sums;
pub mod varint;

pub use error::{Error, Result};
