//! Shared machinery of the inotify-tools drop-ins (`inotifywait`, `inotifywatch`).

pub mod common;
pub mod format;
pub mod getopt;
pub mod table;
