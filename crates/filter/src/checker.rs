//! [`PathChecker`]: answers "is this path part of the transfer?" for one
//! path at a time (a watcher's events), keeping the directories of the last
//! answer entered so that paths in the same directory cost one check.

use crate::error::FilterError;
use crate::rule::Side;
use crate::set::FilterSet;
use crate::source::FileSource;

/// A [`FilterSet`] plus the chain of directories currently entered.
///
/// Each [`PathChecker::is_transferred`] leaves the directories the new
/// path does not share with the previous one and enters the new ones, so
/// per-directory merge files are read once per directory change, not per
/// path. Call [`PathChecker::invalidate`] when a rule file may have changed
/// ([`PathChecker::is_rule_file`] tells which names matter).
#[derive(Clone, Debug)]
pub struct PathChecker {
    set: FilterSet,
    /// Entered directories, root (`""`) first.
    entered: Vec<Entered>,
}

/// A directory on the entered chain.
#[derive(Clone, Debug)]
struct Entered {
    dir: Vec<u8>,
    /// Whether it is excluded for the sender and for the receiver, decided
    /// when it was entered (with only its ancestors' rule files loaded).
    excluded: [bool; 2],
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Sender => 0,
        Side::Receiver => 1,
    }
}

impl PathChecker {
    /// A checker over `set` (which should have no directory entered).
    pub fn new(set: FilterSet) -> Self {
        PathChecker {
            set,
            entered: Vec::new(),
        }
    }

    /// The rule set.
    pub fn set(&self) -> &FilterSet {
        &self.set
    }

    /// Forgets the entered directories (their rule files are read again).
    pub fn invalidate(&mut self) {
        while self.set.depth() > 0 {
            self.set.leave_dir();
        }
        self.entered.clear();
    }

    /// Whether a file named `name` is a per-directory rule file of the set
    /// (a change to it calls for [`PathChecker::invalidate`]).
    pub fn is_rule_file(&self, name: &[u8]) -> bool {
        self.set.dir_merge_names().any(|n| n == name)
    }

    /// Would `path` (relative to the transfer root) be transferred for
    /// `side`, as a full walk decides it (see
    /// [`FilterSet::is_transferred`])?
    pub fn is_transferred(
        &mut self,
        path: &[u8],
        is_dir: bool,
        side: Side,
        source: &mut dyn FileSource,
    ) -> Result<bool, FilterError> {
        let path = path.strip_prefix(b"/").unwrap_or(path);
        let path = path.strip_suffix(b"/").unwrap_or(path);
        let mut chain: Vec<&[u8]> = vec![b""];
        for (i, &c) in path.iter().enumerate() {
            if c == b'/' {
                chain.push(&path[..i]);
            }
        }
        // Keep the common prefix of entered directories.
        let common = self
            .entered
            .iter()
            .zip(&chain)
            .take_while(|(a, b)| a.dir.as_slice() == **b)
            .count();
        while self.entered.len() > common {
            self.entered.pop();
            self.set.leave_dir();
        }
        let index = side_index(side);
        if self.entered.iter().any(|e| e.excluded[index]) {
            return Ok(false);
        }
        for dir in &chain[self.entered.len()..] {
            // Checked with only its ancestors' rule files loaded, as a walk
            // checks it before entering.
            let excluded = if dir.is_empty() {
                [false, false]
            } else {
                [
                    self.set.check(dir, true, Side::Sender).is_excluded(),
                    self.set.check(dir, true, Side::Receiver).is_excluded(),
                ]
            };
            if excluded[index] {
                return Ok(false);
            }
            self.set.enter_dir(dir, source)?;
            self.entered.push(Entered {
                dir: dir.to_vec(),
                excluded,
            });
        }
        if path.is_empty() {
            return Ok(true);
        }
        Ok(!self.set.check(path, is_dir, side).is_excluded())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemSource;

    #[test]
    fn matches_full_walk_answers_across_directory_changes() {
        let mut set = FilterSet::new();
        set.add_filter(b": .f", &mut crate::NoFiles).unwrap();
        set.add_filter(b"- /skip/", &mut crate::NoFiles).unwrap();
        let mut files = MemSource::default()
            .with(".f", "- *.o\n")
            .with("a/.f", "- x\n")
            .with("a/b/.f", "+ x\n- y\n");
        let mut checker = PathChecker::new(set.clone());
        let cases: &[(&str, bool, bool)] = &[
            ("a/b/x", false, true),
            ("a/b/y", false, false),
            ("a/x", false, false),
            ("a/b/c/x", false, true),
            ("z.o", false, false),
            ("skip", true, false),
            ("skip/inner", false, false),
            ("a/b/y", false, false),
            ("a", true, true),
            ("", true, true),
            ("a/b/k.o", false, false),
        ];
        for &(path, is_dir, want) in cases {
            let got = checker
                .is_transferred(path.as_bytes(), is_dir, Side::Sender, &mut files)
                .unwrap();
            assert_eq!(got, want, "{path}");
            let mut fresh = set.clone();
            let walked = fresh
                .is_transferred(path.as_bytes(), is_dir, Side::Sender, &mut files)
                .unwrap();
            assert_eq!(walked, want, "{path} (walk)");
        }
        assert!(checker.is_rule_file(b".f"));
        assert!(!checker.is_rule_file(b"x"));
        files = files.with("a/b/.f", "- x\n");
        checker.invalidate();
        assert!(!checker
            .is_transferred(b"a/b/x", false, Side::Sender, &mut files)
            .unwrap());
        assert_eq!(checker.set().depth(), 3);
    }
}
