//! Recursive inotify watching that never misses a change.
//!
//! Two layers:
//!
//! * [`Watcher`] follows a whole tree and yields typed [`Event`]s with paths relative to the
//!   root: the watch-descriptor ↔ path map stays exact through renames (a moved directory's
//!   whole subtree gets its new paths), new directories are watched *and scanned* so files
//!   created in them before their watch existed are reported, rename halves are paired by cookie
//!   (an unpaired half is a move out of, or into, the tree), a queue overflow becomes
//!   [`EventKind::RescanNeeded`], and running out of watches is [`WatchError::WatchLimit`],
//!   which names the sysctl to raise. Excluded directories cost no watch.
//! * [`sys`] and [`mask`] are the raw layer: an inotify descriptor, a bounded event decoder and
//!   the event names, for tools that must print the kernel's events as they come (the
//!   `inotifywait` drop-in).
//!
//! ```no_run
//! use rtsync_watch::{EventKind, WatchOptions, Watcher};
//!
//! let mut w = Watcher::new("/srv/data", WatchOptions::default())?;
//! while let Some(ev) = w.next_event(None)? {
//!     match ev.kind {
//!         EventKind::Move { from } => println!("{} -> {}", from.display(), ev.path.display()),
//!         EventKind::RescanNeeded => println!("events lost; rescan {}", ev.path.display()),
//!         kind => println!("{kind:?} {}", ev.path.display()),
//!     }
//! }
//! # Ok::<(), rtsync_watch::WatchError>(())
//! ```

pub mod dirscan;
pub mod error;
pub mod mask;
pub mod sys;
pub mod tree;
mod watcher;

pub use error::{DecodeError, WatchError};
pub use sys::{Inotify, RawEvent, Wd};
pub use watcher::{Event, EventKind, ExcludeFn, WatchOptions, Watcher};
