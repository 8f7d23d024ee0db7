//! rsync's shell-style pattern matcher ("wildmatch").
//!
//! Semantics (from rsync.1, "INCLUDE/EXCLUDE PATTERN RULES"):
//! - `?` matches any one byte except `/`;
//! - `*` matches any run of bytes without `/`; `**` (two or more stars) also
//!   crosses `/`;
//! - `[...]` is a byte class with ranges (`a-z`), negation (`[!...]` or
//!   `[^...]`), POSIX classes (`[[:alpha:]]`, ASCII/C-locale only) and
//!   backslash escapes; a class never matches `/`;
//! - `\x` matches `x` literally.
//!
//! Matching works on bytes (Linux file names are not necessarily UTF-8) and
//! never allocates. Recursion depth is bounded by the number of `*` runs in
//! the pattern, and the abort codes below keep backtracking polynomial, as in
//! the classic algorithm.

/// Outcome of one matching attempt; the two abort codes let callers stop
/// backtracking early (a failure that no later start position can fix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Match,
    NoMatch,
    /// Text exhausted: no later start position can match either.
    AbortAll,
    /// A single `*` hit a `/`: only an outer `**` may retry further on.
    AbortToStarStar,
}

/// Returns true when `pattern` matches the whole of `text`.
///
/// ```
/// use rtsync_filter::wildmatch::wildmatch;
/// assert!(wildmatch(b"*.c", b"main.c"));
/// assert!(!wildmatch(b"*.c", b"src/main.c"));
/// assert!(wildmatch(b"**.c", b"src/main.c"));
/// assert!(wildmatch(b"[[:digit:]]?", b"7x"));
/// ```
pub fn wildmatch(pattern: &[u8], text: &[u8]) -> bool {
    do_match(pattern, text) == Outcome::Match
}

/// How a pattern is positioned against a path (rsync's three modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Position {
    /// The pattern must match the whole text.
    Whole,
    /// The pattern must match the last `n` slash-separated elements.
    Trailing(usize),
    /// The pattern may match starting at the beginning or after any `/`.
    AnySlash,
}

/// Matches `pattern` against `text` positioned as `pos` says.
pub(crate) fn wildmatch_at(pattern: &[u8], text: &[u8], pos: Position) -> bool {
    match pos {
        Position::Whole => do_match(pattern, text) == Outcome::Match,
        Position::Trailing(n) => match trailing_elements(text, n) {
            Some(tail) => do_match(pattern, tail) == Outcome::Match,
            None => false,
        },
        Position::AnySlash => {
            let mut outcome = do_match(pattern, text);
            if outcome == Outcome::Match || outcome == Outcome::AbortAll {
                return outcome == Outcome::Match;
            }
            for (i, &b) in text.iter().enumerate() {
                if b != b'/' {
                    continue;
                }
                outcome = do_match(pattern, &text[i + 1..]);
                if outcome != Outcome::NoMatch && outcome != Outcome::AbortToStarStar {
                    break;
                }
            }
            outcome == Outcome::Match
        }
    }
}

/// Literal (no wildcard) comparison positioned like [`wildmatch_at`].
pub(crate) fn literal_at(pattern: &[u8], text: &[u8], pos: Position) -> bool {
    match pos {
        Position::Trailing(n) => trailing_elements(text, n) == Some(pattern),
        _ => text == pattern,
    }
}

/// The last `count` slash-separated elements of `text`, or `None` when the
/// text has fewer.
fn trailing_elements(text: &[u8], count: usize) -> Option<&[u8]> {
    let mut remaining = count;
    for i in (0..text.len()).rev() {
        if text[i] == b'/' {
            remaining -= 1;
            if remaining == 0 {
                return Some(&text[i + 1..]);
            }
        }
    }
    if remaining == 1 {
        Some(text)
    } else {
        None
    }
}

/// The matching engine: pattern bytes against text bytes.
pub(crate) fn do_match(pattern: &[u8], text: &[u8]) -> Outcome {
    let (mut pi, mut ti) = (0usize, 0usize);
    while pi < pattern.len() {
        let pc = pattern[pi];
        let tc = match text.get(ti) {
            Some(&c) => Some(c),
            None if pc == b'*' => None,
            None => return Outcome::AbortAll,
        };
        match pc {
            b'\\' => {
                pi += 1;
                match pattern.get(pi) {
                    Some(&lit) if tc == Some(lit) => {}
                    _ => return Outcome::NoMatch,
                }
            }
            b'?' => {
                if tc == Some(b'/') {
                    return Outcome::NoMatch;
                }
            }
            b'*' => return match_star(&pattern[pi..], &text[ti..]),
            b'[' => {
                let Some(t) = tc else {
                    return Outcome::AbortAll;
                };
                match match_class(pattern, pi + 1, t) {
                    ClassResult::Malformed => return Outcome::AbortAll,
                    ClassResult::Done { matched, end } => {
                        if !matched || t == b'/' {
                            return Outcome::NoMatch;
                        }
                        pi = end;
                    }
                }
            }
            _ => {
                if tc != Some(pc) {
                    return Outcome::NoMatch;
                }
            }
        }
        pi += 1;
        ti += 1;
    }
    if ti < text.len() {
        Outcome::NoMatch
    } else {
        Outcome::Match
    }
}

/// Handles a run of `*` at the start of `pattern` against `text`.
fn match_star(pattern: &[u8], text: &[u8]) -> Outcome {
    let stars = pattern.iter().take_while(|&&c| c == b'*').count();
    let crosses_slash = stars >= 2;
    let rest = &pattern[stars..];
    if rest.is_empty() {
        // A trailing `**` takes everything; a trailing `*` only a last element.
        if !crosses_slash && text.contains(&b'/') {
            return Outcome::NoMatch;
        }
        return Outcome::Match;
    }
    for start in 0..text.len() {
        let outcome = do_match(rest, &text[start..]);
        if outcome != Outcome::NoMatch {
            if !crosses_slash || outcome != Outcome::AbortToStarStar {
                return outcome;
            }
        } else if !crosses_slash && text[start] == b'/' {
            return Outcome::AbortToStarStar;
        }
    }
    Outcome::AbortAll
}

enum ClassResult {
    /// `end` is the index of the closing `]`.
    Done {
        matched: bool,
        end: usize,
    },
    Malformed,
}

/// Matches byte `t` against the class whose body starts at `pattern[start]`
/// (just after the `[`).
fn match_class(pattern: &[u8], start: usize, t: u8) -> ClassResult {
    let at = |i: usize| pattern.get(i).copied().unwrap_or(0);
    let mut pi = start;
    let mut pc = at(pi);
    if pc == b'^' {
        pc = b'!';
    }
    let negated = pc == b'!';
    if negated {
        pi += 1;
        pc = at(pi);
    }
    let mut prev: u8 = 0;
    let mut matched = false;
    loop {
        if pc == 0 {
            return ClassResult::Malformed;
        }
        if pc == b'\\' {
            pi += 1;
            pc = at(pi);
            if pc == 0 {
                return ClassResult::Malformed;
            }
            if t == pc {
                matched = true;
            }
        } else if pc == b'-' && prev != 0 && at(pi + 1) != 0 && at(pi + 1) != b']' {
            pi += 1;
            pc = at(pi);
            if pc == b'\\' {
                pi += 1;
                pc = at(pi);
                if pc == 0 {
                    return ClassResult::Malformed;
                }
            }
            if t <= pc && t >= prev {
                matched = true;
            }
            pc = 0; // a range cannot start another range
        } else if pc == b'[' && at(pi + 1) == b':' {
            let name_start = pi + 2;
            let mut end = name_start;
            while at(end) != 0 && at(end) != b']' {
                end += 1;
            }
            if at(end) == 0 {
                return ClassResult::Malformed;
            }
            if end == name_start || pattern[end - 1] != b':' {
                // Not a `[:name:]`: the `[` is an ordinary member.
                if t == b'[' {
                    matched = true;
                }
            } else {
                match posix_class(&pattern[name_start..end - 1], t) {
                    Some(true) => matched = true,
                    Some(false) => {}
                    None => return ClassResult::Malformed,
                }
                pi = end;
                pc = 0;
            }
        } else if t == pc {
            matched = true;
        }
        prev = pc;
        pi += 1;
        pc = at(pi);
        if pc == b']' {
            break;
        }
    }
    ClassResult::Done {
        matched: matched != negated,
        end: pi,
    }
}

/// C-locale character classes; `None` for an unknown class name.
fn posix_class(name: &[u8], c: u8) -> Option<bool> {
    Some(match name {
        b"alnum" => c.is_ascii_alphanumeric(),
        b"alpha" => c.is_ascii_alphabetic(),
        b"blank" => c == b' ' || c == b'\t',
        b"cntrl" => c.is_ascii_control(),
        b"digit" => c.is_ascii_digit(),
        b"graph" => c.is_ascii_graphic(),
        b"lower" => c.is_ascii_lowercase(),
        b"print" => c.is_ascii_graphic() || c == b' ',
        b"punct" => c.is_ascii_punctuation(),
        b"space" => matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'),
        b"upper" => c.is_ascii_uppercase(),
        b"xdigit" => c.is_ascii_hexdigit(),
        _ => return None,
    })
}

/// True when the pattern has a wildcard byte (`*`, `?` or `[`); rsync
/// compares patterns without one literally (backslashes included).
pub(crate) fn has_wildcards(pattern: &[u8]) -> bool {
    pattern.iter().any(|&c| matches!(c, b'*' | b'?' | b'['))
}
