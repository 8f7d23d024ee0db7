//! The transfer engine: rsync options, the local generator/receiver, itemize output and statistics.

pub mod bwlimit;
pub mod chmod;
pub mod files_from;
pub mod filters;
pub mod idmap;
pub mod itemize;
pub mod local;
pub mod options;
pub mod report;

pub use options::{AltDest, DeleteMode, Options, UsageError};

/// The rsync version whose behaviour and messages we reproduce.
pub const RSYNC_VERSION: &str = "3.5.0";
