//! The transfer engine: rsync options, the local generator/receiver, itemize output and statistics.

pub mod options;

pub use options::{DeleteMode, Options, UsageError};
