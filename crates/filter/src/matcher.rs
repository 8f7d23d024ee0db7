//! A rule's pattern, precompiled into the facts rsync uses to decide how to
//! match it: against the last path element or the whole path, anchored or
//! not, literally or as a wildcard pattern.

use crate::wildmatch::{has_wildcards, literal_at, wildmatch_at, Position};

/// Paths up to this length are joined on the stack when a match needs a
/// prefix or suffix; longer ones fall back to one allocation.
const STACK_JOIN: usize = 1024;

/// A path being checked, with its last element found once for all rules.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Subject<'a> {
    /// Relative to the transfer root, no leading `/`.
    pub path: &'a [u8],
    /// The last `/`-separated element of `path`.
    pub last: &'a [u8],
}

impl<'a> Subject<'a> {
    pub(crate) fn new(path: &'a [u8]) -> Self {
        let last = match path.iter().rposition(|&c| c == b'/') {
            Some(pos) => &path[pos + 1..],
            None => path,
        };
        Subject { path, last }
    }
}

/// A compiled pattern (see rsync.1, "INCLUDE/EXCLUDE PATTERN RULES").
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Matcher {
    /// The pattern without its anchoring `/` and trailing `/`.
    body: Box<[u8]>,
    /// Leading `/`: the pattern starts at the transfer root.
    anchored: bool,
    /// Trailing `/`: only directories match.
    dir_only: bool,
    /// Has `*`, `?` or `[`.
    wild: bool,
    /// Has `**`.
    wild2: bool,
    /// Starts with `**`.
    wild2_prefix: bool,
    /// Ends with `***` (`dir/***` also matches `dir` itself).
    wild3_suffix: bool,
    /// Number of `/` in the pattern (the anchoring one included).
    slash_count: usize,
    /// A cheaper equivalent test for common last-element patterns.
    shape: Shape,
}

/// Shapes of last-element patterns that need no general matcher. The text
/// they see is one path element (no `/`), so `*` is any run of bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Shape {
    General,
    /// `*lit`
    Suffix,
    /// `lit*`
    Prefix,
    /// `*lit*`
    Contains,
}

impl Shape {
    /// The shape of `body` and the literal part, for a last-element pattern.
    fn of(body: &[u8]) -> (Shape, Box<[u8]>) {
        let plain = |lit: &[u8]| {
            !lit.is_empty() && !lit.iter().any(|&c| matches!(c, b'*' | b'?' | b'[' | b'\\'))
        };
        let lead = body.first() == Some(&b'*');
        let trail = body.len() > 1 && body.last() == Some(&b'*');
        let inner = &body[lead as usize..body.len() - trail as usize];
        let shape = match (lead, trail) {
            (true, true) if plain(inner) => Shape::Contains,
            (true, false) if plain(inner) => Shape::Suffix,
            (false, true) if plain(inner) => Shape::Prefix,
            _ => return (Shape::General, body.into()),
        };
        (shape, inner.into())
    }
}

impl Matcher {
    /// Compiles `pattern` (already stripped of its trailing `/`, which is
    /// given as `dir_only`).
    pub(crate) fn new(pattern: &[u8], dir_only: bool) -> Self {
        let slash_count = pattern.iter().filter(|&&c| c == b'/').count();
        let anchored = pattern.first() == Some(&b'/');
        let wild = has_wildcards(pattern);
        let star2 = wild && pattern.windows(2).any(|w| w == b"**");
        let body: &[u8] = if anchored { &pattern[1..] } else { pattern };
        let last_element = slash_count == 0 && !star2;
        let (shape, body) = if wild && last_element {
            Shape::of(body)
        } else {
            (Shape::General, body.into())
        };
        Matcher {
            anchored,
            dir_only,
            wild,
            wild2: star2,
            wild2_prefix: star2 && pattern.starts_with(b"**"),
            wild3_suffix: star2 && pattern.ends_with(b"***"),
            slash_count,
            shape,
            body,
        }
    }

    /// Like [`Matcher::new`], but matched as a wildcard pattern (escapes
    /// processed) when `wild` is set even without wildcard characters.
    pub(crate) fn with_wildness(pattern: &[u8], dir_only: bool, wild: bool) -> Self {
        let mut matcher = Self::new(pattern, dir_only);
        matcher.wild |= wild;
        matcher
    }

    /// Does the pattern match `path` (relative to the transfer root, no
    /// leading `/`)? `abs_prefix` is prepended (with a `/`) for rules with
    /// the `/` modifier, which match against the absolute path.
    pub(crate) fn matches(
        &self,
        subject: &Subject<'_>,
        is_dir: bool,
        abs_path_rule: bool,
        abs_prefix: &[u8],
    ) -> bool {
        if subject.path.is_empty() {
            return false;
        }
        if !is_dir && self.dir_only {
            return false;
        }
        let mut prefix: &[u8] = b"";
        let mut name = subject.path;
        let mut join_slash = false;
        if self.slash_count == 0 && !self.wild2 {
            name = subject.last;
        } else if abs_path_rule && !abs_prefix.is_empty() {
            prefix = abs_prefix;
            join_slash = true;
        } else if self.wild2_prefix {
            // Lets `**/x` match `x` at the top.
            join_slash = true;
        }
        let suffix: &[u8] = if is_dir && self.wild3_suffix {
            b"/"
        } else {
            b""
        };

        let pos = if !self.anchored && self.slash_count > 0 && !self.wild2 {
            Position::Trailing(self.slash_count + 1)
        } else if !self.anchored && !self.wild2_prefix && self.wild2 {
            Position::AnySlash
        } else {
            Position::Whole
        };

        let sep: &[u8] = if join_slash { b"/" } else { b"" };
        if prefix.is_empty() && sep.is_empty() && suffix.is_empty() {
            return self.match_text(name, pos);
        }
        let total = prefix.len() + sep.len() + name.len() + suffix.len();
        if total <= STACK_JOIN {
            let mut buf = [0u8; STACK_JOIN];
            let mut len = 0;
            for part in [prefix, sep, name, suffix] {
                buf[len..len + part.len()].copy_from_slice(part);
                len += part.len();
            }
            self.match_text(&buf[..len], pos)
        } else {
            let joined = [prefix, sep, name, suffix].concat();
            self.match_text(&joined, pos)
        }
    }

    fn match_text(&self, text: &[u8], pos: Position) -> bool {
        match self.shape {
            Shape::General => {}
            Shape::Suffix => return text.ends_with(&self.body),
            Shape::Prefix => return text.starts_with(&self.body),
            Shape::Contains => {
                return text.len() >= self.body.len()
                    && text.windows(self.body.len()).any(|w| *w == *self.body)
            }
        }
        if self.wild {
            return wildmatch_at(&self.body, text, pos);
        }
        literal_at(&self.body, text, pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str, is_dir: bool) -> bool {
        let (pat, dir_only) = match pattern.strip_suffix('/') {
            Some(p) if pattern.len() > 1 => (p, true),
            _ => (pattern, false),
        };
        Matcher::new(pat.as_bytes(), dir_only).matches(
            &Subject::new(path.as_bytes()),
            is_dir,
            false,
            b"",
        )
    }

    #[test]
    fn table() {
        // (pattern, path, is_dir, expected)
        let cases: &[(&str, &str, bool, bool)] = &[
            ("foo", "foo", false, true),
            ("foo", "a/foo", false, true),
            ("foo", "a/xfoo", false, false),
            ("foo", "foo/a", false, false),
            ("/foo", "foo", false, true),
            ("/foo", "a/foo", false, false),
            ("foo/", "foo", true, true),
            ("foo/", "foo", false, false),
            ("a/b", "a/b", false, true),
            ("a/b", "x/a/b", false, true),
            ("a/b", "xa/b", false, false),
            ("/a/b", "x/a/b", false, false),
            ("*.o", "x/y.o", false, true),
            ("a/*.o", "z/a/y.o", false, true),
            ("a/*.o", "a/b/y.o", false, false),
            ("a/**.o", "a/b/y.o", false, true),
            ("a/**.o", "q/a/b/y.o", false, true),
            ("/a/**.o", "q/a/b/y.o", false, false),
            ("**/foo", "foo", false, true),
            ("**/foo", "a/b/foo", false, true),
            ("dir/***", "dir", true, true),
            ("dir/***", "dir", false, false),
            ("dir/***", "dir/x/y", false, true),
            ("dir/***", "q/dir/x", false, true),
            ("/dir/***", "q/dir/x", false, false),
            ("foo**", "foo/bar", false, true),
            ("f*", "foo/bar", false, false),
            ("b*", "foo/bar", false, true),
            ("sub/", "a/sub", true, true),
            ("a/", "a", true, true),
            ("*.o", "x.o", false, true),
            ("*.o", "x.oo", false, false),
            ("*.o", ".o", false, true),
            ("x*", "x", false, true),
            ("x*", "ax", false, false),
            ("*o*", "o", false, true),
            ("*o*", "abc", false, false),
            ("**o", "a/o", false, true),
            ("*\\*", "*", false, true),
            ("*\\*", "a", false, false),
            ("*", "a/b", false, true),
            ("**", "a/b", false, true),
        ];
        for &(pat, path, is_dir, want) in cases {
            assert_eq!(
                m(pat, path, is_dir),
                want,
                "pattern {pat:?} path {path:?} dir {is_dir}"
            );
        }
    }

    #[test]
    fn long_paths_take_the_heap_join() {
        let deep = format!("{}/leaf", "d/".repeat(2000).trim_end_matches('/'));
        assert!(deep.len() > STACK_JOIN);
        assert!(m("**/leaf", &deep, false));
        assert!(m("d/***", &deep, true));
        assert!(!m("**/leaf", &format!("{deep}x"), false));
        let abs = vec![b'r'; 3000];
        let matcher = Matcher::new(b"/d/d/**", false);
        assert!(!matcher.matches(&Subject::new(deep.as_bytes()), false, true, &abs));
        let matcher = Matcher::new(&[b"/", &abs[..], b"/d/**"].concat(), false);
        assert!(matcher.matches(&Subject::new(deep.as_bytes()), false, true, &abs));
    }
}
