//! One filter rule: its kind, modifiers and compiled pattern.

use std::fmt;

use crate::matcher::Matcher;

/// Rule modifier bits (our own encoding of rsync's rule flags).
pub(crate) mod bits {
    pub const INCLUDE: u32 = 1 << 0;
    pub const DIRECTORY: u32 = 1 << 1;
    pub const ABS_PATH: u32 = 1 << 2;
    pub const NEGATE: u32 = 1 << 3;
    pub const PERISHABLE: u32 = 1 << 4;
    pub const SENDER: u32 = 1 << 5;
    pub const RECEIVER: u32 = 1 << 6;
    pub const MERGE: u32 = 1 << 7;
    pub const PERDIR: u32 = 1 << 8;
    pub const CLEAR: u32 = 1 << 9;
    pub const CVS: u32 = 1 << 10;
    pub const NO_PREFIXES: u32 = 1 << 11;
    pub const WORD_SPLIT: u32 = 1 << 12;
    pub const NO_INHERIT: u32 = 1 << 13;
    pub const EXCLUDE_SELF: u32 = 1 << 14;
    pub const XATTR: u32 = 1 << 15;
    /// The pattern is a file's contents (a merge or exclude-from file), so messages must
    /// not show it (stock's FILTRULE_FROM_FILE).
    pub const FROM_FILE: u32 = 1 << 16;

    /// What a rule read from a merge file inherits from the merge rule.
    pub const FROM_CONTAINER: u32 = ABS_PATH | INCLUDE | DIRECTORY | NEGATE | PERISHABLE;
    pub const SIDES: u32 = SENDER | RECEIVER;
}

/// What a rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleKind {
    /// `-` / `exclude` (also `hide` = exclude + `s`, `protect` = exclude + `r`).
    Exclude,
    /// `+` / `include` (also `show` = include + `s`, `risk` = include + `r`).
    Include,
    /// `:` / `dir-merge`: a file read in each directory of the walk.
    DirMerge,
}

/// Which side of a transfer is asking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The sending side: decides what goes into the file list
    /// (exclude/include, hide/show).
    Sender,
    /// The receiving side: decides what `--delete` may remove
    /// (an excluded name is protected; protect/risk).
    Receiver,
}

/// The result of checking a name against a rule list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The first matching rule was an include (or show/risk).
    Include,
    /// The first matching rule was an exclude (or hide/protect).
    Exclude,
    /// No rule matched: the name is included.
    NoMatch,
}

impl Decision {
    /// True for [`Decision::Exclude`].
    pub fn is_excluded(self) -> bool {
        self == Decision::Exclude
    }
}

/// A parsed and compiled filter rule (exclude, include or dir-merge).
///
/// `merge` rules, `clear` rules and `-C` are resolved while a list is built,
/// so they never appear as a `Rule` of their own (a `-C` becomes a
/// [`Rule::is_cvs_import`] placeholder).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The pattern as rsync stores it: no trailing `/` (see
    /// [`Rule::dir_only`]); per-directory anchored rules carry their
    /// directory.
    pub(crate) pattern: Box<[u8]>,
    pub(crate) flags: u32,
    pub(crate) matcher: Matcher,
}

impl Rule {
    pub(crate) fn new(pattern: &[u8], flags: u32) -> Self {
        Rule {
            pattern: pattern.into(),
            flags,
            matcher: Matcher::new(pattern, flags & bits::DIRECTORY != 0),
        }
    }

    /// The rule's kind.
    pub fn kind(&self) -> RuleKind {
        if self.flags & bits::PERDIR != 0 {
            RuleKind::DirMerge
        } else if self.flags & bits::INCLUDE != 0 {
            RuleKind::Include
        } else {
            RuleKind::Exclude
        }
    }

    /// The pattern (or merge-file name) without the trailing `/`.
    pub fn pattern(&self) -> &[u8] {
        &self.pattern
    }

    /// Trailing `/`: matches directories only.
    pub fn dir_only(&self) -> bool {
        self.flags & bits::DIRECTORY != 0
    }
    /// `!` modifier: matches when the pattern does not.
    pub fn negated(&self) -> bool {
        self.flags & bits::NEGATE != 0
    }
    /// `/` modifier: matches against the absolute path.
    pub fn absolute(&self) -> bool {
        self.flags & bits::ABS_PATH != 0
    }
    /// `s` modifier (or hide/show).
    pub fn sender_side(&self) -> bool {
        self.flags & bits::SENDER != 0
    }
    /// `r` modifier (or protect/risk).
    pub fn receiver_side(&self) -> bool {
        self.flags & bits::RECEIVER != 0
    }
    /// `p` modifier: ignored when deciding whether a directory may be
    /// deleted.
    pub fn perishable(&self) -> bool {
        self.flags & bits::PERISHABLE != 0
    }
    /// `x` modifier: applies to extended-attribute names only.
    pub fn xattr(&self) -> bool {
        self.flags & bits::XATTR != 0
    }
    /// `n` modifier on a dir-merge rule: its rules are not inherited.
    pub fn no_inherit(&self) -> bool {
        self.flags & bits::NO_INHERIT != 0
    }
    /// `w` modifier on a dir-merge rule: the file is split on whitespace.
    pub fn word_split(&self) -> bool {
        self.flags & bits::WORD_SPLIT != 0
    }
    /// `C` modifier: a CVS-ignore rule (`-C` import or `:C` dir-merge).
    pub fn cvs(&self) -> bool {
        self.flags & bits::CVS != 0
    }
    /// A `-C` placeholder: evaluates the global CVS-ignore list here.
    pub fn is_cvs_import(&self) -> bool {
        self.flags & (bits::CVS | bits::MERGE) == bits::CVS
    }
    /// `+`/`-` modifier on a dir-merge rule: every line is one pattern,
    /// `Some(Include)` / `Some(Exclude)`.
    pub fn merge_default(&self) -> Option<RuleKind> {
        if self.flags & bits::NO_PREFIXES == 0 || self.flags & bits::CVS != 0 {
            return None;
        }
        Some(if self.flags & bits::INCLUDE != 0 {
            RuleKind::Include
        } else {
            RuleKind::Exclude
        })
    }

    /// Does this rule take part in checks made by `side`?
    /// `delete_excluded` turns unsided rules into sender-only ones.
    pub(crate) fn applies_to(&self, side: Side, delete_excluded: bool) -> bool {
        match self.flags & bits::SIDES {
            0 => !(delete_excluded && side == Side::Receiver),
            bits::SENDER => side == Side::Sender,
            bits::RECEIVER => side == Side::Receiver,
            _ => true,
        }
    }

    /// Read from a file's contents (a merge, per-directory or exclude-from file): messages
    /// say where it came from instead of showing it, since a peer may choose which file is
    /// merged.
    pub fn from_file(&self) -> bool {
        self.flags & bits::FROM_FILE != 0
    }

    /// The rule prefix rsync prints for this rule (`-`, `+`, `:` and the
    /// modifier letters, then a space).
    pub(crate) fn prefix(&self, for_wire: bool) -> String {
        let f = self.flags;
        let mut out = String::with_capacity(8);
        out.push(if f & bits::PERDIR != 0 {
            ':'
        } else if f & bits::INCLUDE != 0 {
            '+'
        } else {
            '-'
        });
        let mut push_if = |bit: u32, c: char| {
            if f & bit != 0 {
                out.push(c);
            }
        };
        push_if(bits::ABS_PATH, '/');
        push_if(bits::NEGATE, '!');
        if f & bits::CVS != 0 {
            push_if(bits::CVS, 'C');
        } else {
            push_if(bits::NO_INHERIT, 'n');
            push_if(bits::WORD_SPLIT, 'w');
            if f & bits::NO_PREFIXES != 0 {
                push_if(
                    bits::NO_PREFIXES,
                    if f & bits::INCLUDE != 0 { '+' } else { '-' },
                );
            }
        }
        if !for_wire {
            push_if(bits::EXCLUDE_SELF, 'e');
        }
        push_if(bits::XATTR, 'x');
        push_if(bits::SENDER, 's');
        push_if(bits::RECEIVER, 'r');
        push_if(bits::PERISHABLE, 'p');
        out.push(' ');
        out
    }

    /// The rule as rsync writes it: prefix, pattern, and `/` for dir-only.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.prefix(false).into_bytes();
        out.extend_from_slice(&self.pattern);
        if self.dir_only() {
            out.push(b'/');
        }
        out
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}
