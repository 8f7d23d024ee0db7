//! Implied include rules: what a pulling client asked for.
//!
//! When a client receives from a remote sender, every name in the sender's
//! file list must be something the client's source arguments asked for;
//! stock rsync rejects others ("rejecting unrequested file-list name") so a
//! malicious sender cannot plant files elsewhere. Each source argument
//! becomes an anchored include of the requested name plus, for a recursive
//! (or `--dirs`) transfer, of everything beneath it; with `--relative` the
//! implied parent directories are included too.
//!
//! The receiver should also reject names its own sender-side rules exclude
//! ([`crate::FilterSet::check`] with [`crate::Side::Sender`]) unless the
//! rules contain a dir-merge rule ([`crate::FilterSet::has_dir_merge`]),
//! whose per-directory files only the sender can see.
//!
//! ```
//! use rtsync_filter::ImpliedIncludes;
//!
//! // rsync -r host:/data/photos host:/data/docs/*.txt dst/
//! let mut implied = ImpliedIncludes::new(true, false, false);
//! implied.add_arg(b"/data/photos", false);
//! implied.add_arg(b"/data/docs/*.txt", false);
//! assert!(implied.allows(b"photos/2024/a.jpg", false));
//! assert!(implied.allows(b"notes.txt", false));
//! assert!(!implied.allows(b"etc/passwd", false));
//! ```

use crate::matcher::{Matcher, Subject};

/// One implied rule.
#[derive(Clone, Debug)]
struct Implied {
    pattern: Vec<u8>,
    /// Only directories (the parents of a `--relative` argument).
    dir_only: bool,
    matcher: Matcher,
}

/// The implied include list of a pulling client.
#[derive(Clone, Debug, Default)]
pub struct ImpliedIncludes {
    rules: Vec<Implied>,
    recurse: bool,
    dirs: bool,
    relative: bool,
}

const WILD: &[u8] = b"*[?";

impl ImpliedIncludes {
    /// An empty list for a transfer with `-r` (`recurse`), `-d` (`dirs`)
    /// and `-R` (`relative`) as given.
    pub fn new(recurse: bool, dirs: bool, relative: bool) -> Self {
        ImpliedIncludes {
            rules: Vec::new(),
            recurse,
            dirs,
            relative,
        }
    }

    /// True when no argument was added (then nothing is checked).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    fn push(&mut self, pattern: Vec<u8>, dir_only: bool, wild: bool) {
        let matcher = Matcher::with_wildness(&pattern, dir_only, wild);
        self.rules.push(Implied {
            pattern,
            dir_only,
            matcher,
        });
    }

    /// Adds one source argument as the client wrote it, without the host
    /// part (`dir/file*`, `module/path` for a daemon when
    /// `skip_daemon_module`, `/abs/./rel` with `--relative`).
    pub fn add_arg(&mut self, arg: &[u8], skip_daemon_module: bool) {
        let mut arg = arg;
        if skip_daemon_module {
            arg = match arg.iter().position(|&c| c == b'/') {
                Some(i) => &arg[i + 1..],
                None => b"",
            };
        }
        if self.relative {
            if let Some(i) = arg.windows(3).position(|w| w == b"/./") {
                arg = &arg[i + 3..];
            }
        } else if let Some(i) = arg.iter().rposition(|&c| c == b'/') {
            arg = &arg[i + 1..];
        }
        if arg == b"." {
            arg = b"";
        }
        let saw_wild = arg.iter().any(|c| WILD.contains(c));
        let (pattern, backslashes, live_bracket) = if arg.is_empty() {
            (Vec::new(), 0, false)
        } else {
            normalize(arg, saw_wild)
        };
        let mut base: Vec<u8> = Vec::new();
        if !pattern.is_empty() {
            self.push(pattern.clone(), false, saw_wild);
            if live_bracket {
                self.push(escape_brackets(&pattern), false, true);
            }
            if self.relative {
                self.add_parents(&pattern, saw_wild, live_bracket);
            }
            base = pattern;
        }
        if self.recurse || self.dirs {
            let mut pattern = if !saw_wild && backslashes > 0 {
                base.iter()
                    .flat_map(|&c| {
                        if c == b'\\' {
                            vec![b'\\', b'\\']
                        } else {
                            vec![c]
                        }
                    })
                    .collect()
            } else {
                base
            };
            pattern.extend_from_slice(if self.recurse { b"/**" } else { b"/*" });
            if live_bracket {
                self.push(escape_brackets(&pattern), false, true);
            }
            self.push(pattern, false, true);
        }
    }

    /// Directory rules for each parent of a `--relative` argument.
    fn add_parents(&mut self, pattern: &[u8], saw_wild: bool, live_bracket: bool) {
        let mut end = pattern.len();
        while let Some(i) = pattern[..end].iter().rposition(|&c| c == b'/') {
            if i == 0 {
                break;
            }
            let parent = &pattern[..i];
            if self.rules.iter().any(|r| r.pattern == parent) {
                break;
            }
            let wild = saw_wild && parent.iter().any(|c| b"*[?\\".contains(c));
            self.push(parent.to_vec(), true, wild);
            if live_bracket {
                self.push(escape_brackets(parent), true, wild);
            }
            end = i;
        }
    }

    /// May the sender's file list contain `name` (relative, as in the
    /// list)? The transfer root `.` is always allowed.
    pub fn allows(&self, name: &[u8], is_dir: bool) -> bool {
        let name = name.strip_prefix(b"/").unwrap_or(name);
        if name.is_empty() || name == b"." {
            return true;
        }
        let subject = Subject::new(name);
        self.rules
            .iter()
            .any(|r| r.matcher.matches(&subject, is_dir, false, b""))
    }

    /// True when `name` was implied only as a parent of a requested path
    /// (a `--relative` parent), never requested itself: such a directory
    /// must not have its other contents deleted.
    pub fn is_parent_only(&self, name: &[u8]) -> bool {
        let name = name.strip_prefix(b"/").unwrap_or(name);
        if self.rules.is_empty() {
            return false;
        }
        if name.is_empty() || name == b"." {
            return !self
                .rules
                .iter()
                .any(|r| r.pattern == b"/**" || r.pattern == b"/*");
        }
        let subject = Subject::new(name);
        let mut parent = false;
        for rule in &self.rules {
            if !rule.matcher.matches(&subject, true, false, b"") {
                continue;
            }
            if !rule.dir_only {
                return false;
            }
            parent = true;
        }
        parent
    }
}

/// Turns a source argument into an anchored pattern: `/` prefix, repeated
/// and trailing slashes and `.` elements dropped, backslashes escaped when
/// the argument has wildcards. Returns the pattern, the number of plain
/// backslashes, and whether a `[` is present.
fn normalize(arg: &[u8], saw_wild: bool) -> (Vec<u8>, usize, bool) {
    let mut out = vec![b'/'];
    let mut backslashes = 0;
    let mut live_bracket = false;
    let mut i = 0;
    while i < arg.len() {
        let c = arg[i];
        let next = arg.get(i + 1).copied();
        match c {
            b'\\' => {
                if next == Some(b']') {
                    if !saw_wild {
                        i += 1; // a `\]` in a literal name means `]`
                    }
                } else if next.is_none_or(|n| !WILD.contains(&n)) {
                    backslashes += 1;
                    if saw_wild {
                        out.push(b'\\');
                    }
                }
                out.push(arg[i]);
                i += 1;
            }
            b'/' => {
                if out.last() == Some(&b'/') {
                    i += 1;
                    if i == arg.len() {
                        out.pop();
                    }
                } else if next.is_none() {
                    i += 1;
                } else {
                    out.push(b'/');
                    i += 1;
                }
            }
            b'.' if out.last() == Some(&b'/') && next == Some(b'/') => {
                i += 2;
                if i >= arg.len() {
                    out.pop();
                }
            }
            b'.' if out.last() == Some(&b'/') && next.is_none() => {
                i += 1;
                out.pop();
            }
            _ => {
                if c == b'[' {
                    live_bracket = true;
                }
                out.push(c);
                i += 1;
            }
        }
    }
    (out, backslashes, live_bracket)
}

/// The same pattern with every unescaped `[` escaped (for a remote shell
/// that did not expand the wildcard and left a literal name).
fn escape_brackets(pattern: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pattern.len() + 4);
    let mut i = 0;
    while i < pattern.len() {
        let c = pattern[i];
        if c == b'\\' && i + 1 < pattern.len() {
            out.push(c);
            out.push(pattern[i + 1]);
            i += 2;
            continue;
        }
        if c == b'[' {
            out.push(b'\\');
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(recurse: bool, dirs: bool, relative: bool, arg: &str) -> Vec<String> {
        let mut implied = ImpliedIncludes::new(recurse, dirs, relative);
        implied.add_arg(arg.as_bytes(), false);
        implied
            .rules
            .iter()
            .map(|r| {
                let mut s = String::from_utf8(r.pattern.clone()).unwrap();
                if r.dir_only {
                    s.push('/');
                }
                s
            })
            .collect()
    }

    #[test]
    fn arg_table() {
        let cases: &[(bool, bool, bool, &str, &[&str])] = &[
            (true, false, false, "dir/sub", &["/sub", "/sub/**"]),
            (true, false, false, "dir/sub/", &["/**"]),
            (true, false, false, "dir/sub/.", &["/**"]),
            (true, false, false, ".", &["/**"]),
            (true, false, false, "", &["/**"]),
            (false, false, false, "dir/file", &["/file"]),
            (false, true, false, "dir/file", &["/file", "/file/*"]),
            (true, false, false, "dir/*.c", &["/*.c", "/*.c/**"]),
            (true, false, false, "x\\y*", &["/x\\\\y*", "/x\\\\y*/**"]),
            (true, false, false, "x\\y", &["/x\\y", "/x\\\\y/**"]),
            (true, false, false, "a\\]b", &["/a]b", "/a]b/**"]),
            (
                true,
                false,
                false,
                "[ab]",
                &["/[ab]", "/\\[ab]", "/\\[ab]/**", "/[ab]/**"],
            ),
            (
                true,
                false,
                true,
                "/abs/./a/b//c",
                &["/a/b/c", "/a/b/", "/a/", "/a/b/c/**"],
            ),
            (true, false, true, "a/./b/", &["/b", "/b/**"]),
            (true, false, true, "a/b", &["/a/b", "/a/", "/a/b/**"]),
            (false, false, true, "./x/./y", &["/y"]),
            (false, false, true, "a/./b/./c", &["/b/c", "/b/"]),
        ];
        for &(recurse, dirs, relative, arg, want) in cases {
            assert_eq!(
                patterns(recurse, dirs, relative, arg),
                want,
                "arg {arg:?} -r {recurse} -d {dirs} -R {relative}"
            );
        }
    }

    #[test]
    fn allows_table() {
        let mut implied = ImpliedIncludes::new(true, false, true);
        implied.add_arg(b"/src/./top/sub", false);
        implied.add_arg(b"other*", false);
        let cases: &[(&str, bool, bool)] = &[
            (".", true, true),
            ("top", true, true),
            ("top", false, false),
            ("top/sub", true, true),
            ("top/sub/x/y", false, true),
            ("top/other", false, false),
            ("other1", false, true),
            ("other1/deep/file", false, true),
            ("else", false, false),
            ("x/top/sub", true, false),
        ];
        for &(name, is_dir, want) in cases {
            assert_eq!(implied.allows(name.as_bytes(), is_dir), want, "{name}");
        }
        assert!(implied.is_parent_only(b"top"));
        assert!(!implied.is_parent_only(b"top/sub"));
        assert!(implied.is_parent_only(b"."));
    }

    #[test]
    fn files_from_names_with_trailing_backslash() {
        let mut implied = ImpliedIncludes::new(true, false, true);
        implied.add_arg(b"a\\b\\", false);
        implied.add_arg(b"x*\\", false);
        assert!(implied.allows(b"a\\b\\", false));
        assert!(implied.allows(b"a\\b\\/inside", false));
        assert!(implied.allows(b"x1\\", false));
        assert!(!implied.allows(b"a", false));
    }

    #[test]
    fn daemon_module_is_skipped() {
        let mut implied = ImpliedIncludes::new(true, false, false);
        implied.add_arg(b"module/path/file", true);
        assert!(implied.allows(b"file", false));
        let mut implied = ImpliedIncludes::new(true, false, false);
        implied.add_arg(b"module", true);
        assert!(implied.allows(b"anything/at/all", false));
    }
}
