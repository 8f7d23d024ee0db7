//! The file-list model, scanning, and safe filesystem operations beneath a root.
//!
//! ```
//! use rtsync_tree::{compare_names, FileKind};
//! use std::cmp::Ordering;
//! // rsync's order: files of a directory before its subdirectories.
//! assert_eq!(compare_names(b"z", false, b"a", true), Ordering::Less);
//! assert_eq!(FileKind::from_mode(libc::S_IFDIR | 0o755), Some(FileKind::Directory));
//! ```

pub mod acl;
pub mod confine;
mod entry;
pub mod fake;
pub mod fsops;
pub mod munge;
pub mod scan;
pub mod xattr;

pub use confine::{open_no_attacker_symlinks, Confine};
pub use entry::{compare_names, compare_siblings, sort_entries, FileEntry, FileKind};
pub use scan::{
    scan_sources, scan_sources_confined, Item, NameCheck, NoFilter, ScanFilter, ScanOptions,
    ScanProblem, Scanned, Scanner,
};
