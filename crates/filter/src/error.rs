//! Typed errors for rule parsing, merge files and wire rendering.

use std::path::PathBuf;

/// Everything that can go wrong while building or rendering filter rules.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// The rule does not start with a known rule word or prefix character.
    #[error("Unknown filter rule: {rule}")]
    UnknownRule {
        /// The offending rule text (lossy UTF-8).
        rule: String,
    },
    /// A modifier letter that the rule kind does not accept.
    #[error("invalid modifier '{modifier}' at position {position} in filter rule: {rule}")]
    InvalidModifier {
        /// The modifier character.
        modifier: char,
        /// Byte offset in the rule text.
        position: usize,
        /// The offending rule text (lossy UTF-8).
        rule: String,
    },
    /// A rule with no pattern.
    #[error("unexpected end of filter rule: {rule}")]
    UnexpectedEnd {
        /// The offending rule text (lossy UTF-8).
        rule: String,
    },
    /// `!` followed by more text.
    #[error("'!' rule has trailing characters: {rule}")]
    ClearWithTrailing {
        /// The offending rule text (lossy UTF-8).
        rule: String,
    },
    /// A side modifier (`s`/`r`, hide/show/protect/risk) inside a merge file
    /// that already has one.
    #[error("specified-side merge file contains specified-side filter: {rule}")]
    SidedRuleInSidedMerge {
        /// The offending rule text (lossy UTF-8).
        rule: String,
    },
    /// A pattern or line longer than rsync accepts (discarded with this warning).
    #[error("discarding over-long filter: {rule}")]
    TooLong {
        /// Length seen.
        len: usize,
        /// The limit.
        limit: usize,
        /// The rule text (lossy UTF-8).
        rule: String,
    },
    /// Merge files nested deeper than the limit (also catches loops).
    #[error("merge-file include depth limit ({limit}) exceeded at {path}")]
    MergeDepth {
        /// The file that would have exceeded the depth.
        path: PathBuf,
        /// The limit.
        limit: usize,
    },
    /// A merge, include-from or exclude-from file does not exist.
    #[error("failed to open {what} file {path}: not found")]
    NotFound {
        /// "include", "exclude" or "merge".
        what: &'static str,
        /// The path as named.
        path: PathBuf,
    },
    /// Reading a rule file failed.
    #[error("failed to read filter file {path}: {source}")]
    Io {
        /// The path as named.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A rule file exceeds the size limit.
    #[error("filter file {path} is larger than {limit} bytes")]
    FileTooLarge {
        /// The path as named.
        path: PathBuf,
        /// The limit.
        limit: usize,
    },
    /// An error in a rule read from a file, with where it was.
    ///
    /// Its message says where and what kind of error, never the rule text:
    /// a peer can choose which file a merge rule reads, and echoing its
    /// lines back would let it read files (stock rsync hides them too, in
    /// the same words: `<rule from FILE line N>`, or for a file whose name
    /// itself came from a file `<rule from a file named at FILE line N>`).
    /// [`FilterError::detail`] has the full inner error for local use.
    #[error("{}", in_file_text(place, error))]
    InFile {
        /// The rule file.
        path: PathBuf,
        /// 1-based line number (none for word-split files).
        line: Option<usize>,
        /// Where the rule is, as messages may say it (stock's `rule_src_where`).
        place: String,
        /// What was wrong with the rule (its message includes the text).
        error: Box<FilterError>,
    },
    /// A per-directory merge name with a path, too long once the directory
    /// it was met in is put before it (the file is not read; not fatal).
    #[error("merge-file name overflows: {shown}")]
    NameOverflow {
        /// The full name, or where the rule naming it came from when that
        /// was a file.
        shown: String,
    },
    /// A directory whose per-directory merge file's path is too long (the
    /// file is not read; not fatal, but the transfer is incomplete).
    #[error("cannot add local filter rules in long-named directory: {shown}")]
    LongNamedDir {
        /// The file's path, or where the rule naming it came from when that
        /// was a file.
        shown: String,
    },
    /// The rules cannot be expressed at the peer's protocol version.
    #[error("filter rules are too modern for remote rsync (protocol {protocol})")]
    TooModern {
        /// The negotiated protocol.
        protocol: u32,
    },
}

impl FilterError {
    /// The kind of error, without any rule text.
    pub fn summary(&self) -> String {
        match self {
            FilterError::UnknownRule { .. } => "Unknown filter rule".into(),
            FilterError::InvalidModifier { .. } => "invalid modifier in filter rule".into(),
            FilterError::UnexpectedEnd { .. } => "unexpected end of filter rule".into(),
            FilterError::ClearWithTrailing { .. } => "'!' rule has trailing characters".into(),
            FilterError::SidedRuleInSidedMerge { .. } => {
                "specified-side merge file contains specified-side filter".into()
            }
            FilterError::TooLong { .. } => "discarding over-long filter".into(),
            FilterError::MergeDepth { limit, .. } => {
                format!("merge-file include depth limit ({limit}) exceeded")
            }
            FilterError::NotFound { what, .. } => format!("failed to open {what} file"),
            FilterError::FileTooLarge { limit, .. } => {
                format!("filter file larger than {limit} bytes")
            }
            FilterError::Io { .. } => "failed to read a filter file".into(),
            FilterError::InFile { error, .. } => error.summary(),
            FilterError::TooModern { .. } => self.to_string(),
            FilterError::NameOverflow { .. } => "merge-file name overflows".into(),
            FilterError::LongNamedDir { .. } => {
                "cannot add local filter rules in long-named directory".into()
            }
        }
    }

    /// The exit code stock rsync ends with for this error (1 syntax,
    /// 2 protocol, 11 file I/O), for the binary to use.
    pub fn rsync_exit_code(&self) -> i32 {
        match self {
            FilterError::UnknownRule { .. }
            | FilterError::InvalidModifier { .. }
            | FilterError::UnexpectedEnd { .. }
            | FilterError::ClearWithTrailing { .. }
            | FilterError::SidedRuleInSidedMerge { .. }
            | FilterError::TooLong { .. } => 1,
            FilterError::TooModern { .. } => 2,
            FilterError::MergeDepth { .. }
            | FilterError::NotFound { .. }
            | FilterError::Io { .. }
            | FilterError::FileTooLarge { .. } => 11,
            FilterError::InFile { error, .. } => error.rsync_exit_code(),
            // Partial transfer: stock carries on with its I/O error flag set.
            FilterError::NameOverflow { .. } | FilterError::LongNamedDir { .. } => 23,
        }
    }

    /// The innermost error with its full message (rule text included):
    /// for local diagnostics, not for a peer.
    pub fn detail(&self) -> &FilterError {
        match self {
            FilterError::InFile { error, .. } => error.detail(),
            other => other,
        }
    }
}

/// Stock's message for an error in a rule read from a file: the rule's text replaced by
/// where it is.
fn in_file_text(place: &str, error: &FilterError) -> String {
    let rule = format!("<rule from {place}>");
    match error {
        FilterError::NotFound { what, .. } => {
            let what = if *what == "include" {
                "include"
            } else {
                "exclude"
            };
            format!("failed to open {what} file {rule}")
        }
        FilterError::MergeDepth { limit, .. } => {
            format!("merge-file include depth limit ({limit}) exceeded at {rule}")
        }
        FilterError::Io { .. } | FilterError::FileTooLarge { .. } => {
            format!("{place}: {}", error.summary())
        }
        other => format!("{}: {rule}", other.summary()),
    }
}

/// Lossy rendering of rule text for error messages.
pub(crate) fn lossy(text: &[u8]) -> String {
    String::from_utf8_lossy(text).into_owned()
}
