//! rsync filter rules (include/exclude/merge, anchoring, `dir/`, `**`, `***`) and wildmatch.
//!
//! This crate reproduces stock rsync's filter semantics (rsync.1 "FILTER
//! RULES" and friends) as a library:
//!
//! - [`wildmatch`]: rsync's pattern matcher (`*`, `**`, `?`, `[...]`,
//!   POSIX classes, escapes);
//! - [`FilterSet`]: an ordered rule list built from `--filter`, `--exclude`,
//!   `--include`, `--exclude-from`/`--include-from`, `-F`, `-C`, merge
//!   files; checked path by path (first match wins) for the sender or the
//!   receiver side; per-directory merge files (`dir-merge`, `-F`,
//!   `.cvsignore`) are read as a walker enters directories;
//! - [`wire`]: the rule strings a client sends to its peer and the parsing
//!   of what a peer sent;
//! - [`daemon`]: the `filter`/`include`/`exclude` module parameters of
//!   rsyncd.conf;
//! - [`implied`]: the names a pulling client asked for, to reject a
//!   sender's unrequested file-list entries.
//!
//! Paths are bytes relative to the transfer root, without a leading `/`.
//!
//! # Example
//!
//! ```
//! use rtsync_filter::{Decision, FilterSet, MemSource, Side};
//!
//! let mut set = FilterSet::new();
//! set.add_include(b"*.rs").unwrap();
//! set.add_filter(b"- /target/", &mut rtsync_filter::NoFiles).unwrap();
//! set.add_f_option().unwrap(); // -F: dir-merge /.rsync-filter
//! set.add_exclude(b"*.tmp").unwrap();
//!
//! assert_eq!(set.check(b"src/main.rs", false, Side::Sender), Decision::Include);
//! assert!(set.is_excluded(b"target", true));
//! assert!(!set.is_excluded(b"src/target", true)); // anchored
//! assert!(set.is_excluded(b"a/b.tmp", false));
//!
//! // A walker enters directories; their .rsync-filter files apply inside.
//! let mut files = MemSource::default().with("sub/.rsync-filter", "- *.log\n");
//! set.enter_dir(b"", &mut files).unwrap();
//! set.enter_dir(b"sub", &mut files).unwrap();
//! assert!(set.is_excluded(b"sub/x.log", false));
//! set.leave_dir();
//! assert!(!set.is_excluded(b"y.log", false));
//! set.leave_dir();
//! ```

#![warn(missing_docs)]

mod checker;
pub mod cvs;
pub mod daemon;
mod error;
pub mod implied;
mod matcher;
mod options;
mod parse;
mod rule;
mod set;
mod source;
pub mod wildmatch;
pub mod wire;

pub use checker::PathChecker;
pub use cvs::{CvsEnv, DEFAULT_CVSIGNORE};
pub use error::FilterError;
pub use implied::ImpliedIncludes;
pub use options::FilterOption;
pub use rule::{Decision, Rule, RuleKind, Side};
pub use set::{Check, FilterSet, Matched, MAX_LINE_LEN, MAX_MERGE_DEPTH, MAX_PATTERN_LEN};
pub use source::{BeneathSource, FileSource, FsSource, MemSource, NoFiles, MAX_RULE_FILE_BYTES};

#[cfg(test)]
mod tests {
    /// Sets are shared across threads (one per target, one per walk).
    #[test]
    fn types_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<super::FilterSet>();
        assert_send_sync::<super::ImpliedIncludes>();
        assert_send_sync::<super::FilterError>();
    }
}
