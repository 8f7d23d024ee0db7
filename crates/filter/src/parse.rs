//! Tokenizing rule text into (flags, pattern) pairs, following the grammar
//! of rsync.1 "FILTER RULES": `RULE [PATTERN_OR_FILENAME]` or
//! `RULE,MODIFIERS [PATTERN_OR_FILENAME]`, long or short rule names, one
//! space or `_` between rule and pattern.

use crate::error::{lossy, FilterError};
use crate::rule::bits;

/// How the text being parsed is to be read (rsync's "xflags").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Mode {
    /// `--exclude`/`--include` style: only `- `, `+ ` and `!` prefixes.
    pub old_prefixes: bool,
    /// Per-directory file: a leading `/` anchors to that directory.
    pub anchored_to_dir: bool,
    /// The directory of a per-directory file is absolute (a transfer
    /// root's parent): anchored rules become absolute-path rules.
    pub dir_absolute: bool,
    /// Daemon config: a leading or inner `/` means "absolute".
    pub abs_if_slash: bool,
    /// Daemon config: `dir/` excludes become `dir/***`.
    pub dir_to_wild3: bool,
    /// A missing merge file is an error (command line), not ignored.
    pub fatal_missing: bool,
}

/// One rule's flags and pattern text.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub flags: u32,
    pub pattern: &'a [u8],
}

/// C `isspace` in the C locale.
pub(crate) fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Matches a long rule word at the start of `s`; returns the index at which
/// modifier scanning continues (the word's last byte, or the `,`).
fn rule_word(s: &[u8], word: &[u8]) -> Option<usize> {
    if !s.starts_with(word) {
        return None;
    }
    match s.get(word.len()) {
        None => Some(word.len() - 1),
        Some(&c) if is_space(c) || c == b'_' => Some(word.len() - 1),
        Some(b',') => Some(word.len()),
        Some(_) => None,
    }
}

/// Parses the next rule from `text`, returning it and the unparsed rest, or
/// `None` when nothing is left. `template` carries the flags of the merge
/// rule whose file is being read (0 at top level).
pub(crate) fn next_rule<'a>(
    text: &'a [u8],
    template: u32,
    mode: Mode,
    delete_excluded: bool,
) -> Result<Option<(Token<'a>, &'a [u8])>, FilterError> {
    let mut s = text;
    let word_split = template & bits::WORD_SPLIT != 0;
    if word_split {
        let skip = s.iter().take_while(|&&c| is_space(c)).count();
        s = &s[skip..];
    }
    if s.is_empty() {
        return Ok(None);
    }
    let whole = s;
    let mut flags = template & bits::FROM_CONTAINER;
    // Index of the first byte of the pattern within `s`.
    let mut start = 0usize;

    if template & bits::NO_PREFIXES != 0 {
        if s[0] == b'!' && template & bits::CVS != 0 {
            flags |= bits::CLEAR; // tentative: only a lone "!"
        }
    } else if mode.old_prefixes {
        if s.starts_with(b"- ") {
            flags &= !bits::INCLUDE;
            start = 2;
        } else if s.starts_with(b"+ ") {
            flags |= bits::INCLUDE;
            start = 2;
        } else if s[0] == b'!' {
            flags |= bits::CLEAR; // tentative
        }
    } else {
        start = parse_prefix(s, &mut flags, word_split)?;
    }

    if template & bits::SIDES != 0 {
        if flags & bits::SIDES != 0 {
            return Err(FilterError::SidedRuleInSidedMerge { rule: lossy(whole) });
        }
        flags |= template & bits::SIDES;
    }

    let rest = &s[start..];
    let len = if word_split {
        rest.iter().take_while(|&&c| !is_space(c)).count()
    } else {
        rest.len()
    };
    let pattern = &rest[..len];

    if flags & bits::CLEAR != 0 {
        if template & bits::NO_PREFIXES == 0 && !mode.old_prefixes && len != 0 {
            return Err(FilterError::ClearWithTrailing { rule: lossy(whole) });
        }
        if len > 1 {
            flags &= !bits::CLEAR;
        }
    } else if len == 0 && flags & bits::CVS == 0 {
        return Err(FilterError::UnexpectedEnd { rule: lossy(whole) });
    }

    if delete_excluded && flags & (bits::SIDES | bits::MERGE | bits::PERDIR) == 0 {
        flags |= bits::SENDER;
    }
    Ok(Some((Token { flags, pattern }, &rest[len..])))
}

/// Parses a full-syntax rule prefix (`-`, `exclude,s`, `:n- `, ...) into
/// `flags`; returns the index where the pattern starts.
fn parse_prefix(s: &[u8], flags: &mut u32, word_split: bool) -> Result<usize, FilterError> {
    let words: [(&[u8], u8); 10] = [
        (b"clear", b'!'),
        (b"dir-merge", b':'),
        (b"exclude", b'-'),
        (b"hide", b'H'),
        (b"include", b'+'),
        (b"merge", b'.'),
        (b"protect", b'P'),
        (b"risk", b'R'),
        (b"show", b'S'),
        (b"", 0),
    ];
    let mut pos = 0usize;
    let mut ch = 0u8;
    let first = s[0];
    let long = words
        .iter()
        .filter(|(w, _)| !w.is_empty() && w[0] == first)
        .find_map(|(w, c)| rule_word(s, w).map(|p| (p, *c)));
    let has_long_form = words.iter().any(|(w, _)| !w.is_empty() && w[0] == first);
    if let Some((p, c)) = long {
        pos = p;
        ch = c;
    } else if !has_long_form {
        ch = first;
        if s.get(1) == Some(&b',') {
            pos = 1;
        }
    }
    let mut side_from_prefix = false;
    match ch {
        b':' => *flags |= bits::PERDIR | bits::MERGE,
        b'.' => *flags |= bits::MERGE,
        b'+' => *flags |= bits::INCLUDE,
        b'-' => {}
        b'S' => {
            *flags |= bits::INCLUDE | bits::SENDER;
            side_from_prefix = true;
        }
        b'H' => {
            *flags |= bits::SENDER;
            side_from_prefix = true;
        }
        b'R' => {
            *flags |= bits::INCLUDE | bits::RECEIVER;
            side_from_prefix = true;
        }
        b'P' => {
            *flags |= bits::RECEIVER;
            side_from_prefix = true;
        }
        b'!' => *flags |= bits::CLEAR,
        _ => return Err(FilterError::UnknownRule { rule: lossy(s) }),
    }
    if ch != b'!' {
        loop {
            pos += 1;
            let Some(&m) = s.get(pos) else { break };
            if m == b' ' || m == b'_' {
                break;
            }
            if word_split && is_space(m) {
                pos -= 1;
                break;
            }
            apply_modifier(m, flags, side_from_prefix).map_err(|()| {
                FilterError::InvalidModifier {
                    modifier: m as char,
                    position: pos,
                    rule: lossy(s),
                }
            })?;
        }
    }
    if pos < s.len() {
        pos += 1;
    }
    Ok(pos)
}

/// Applies one modifier letter; `Err` when it is not valid here.
fn apply_modifier(m: u8, flags: &mut u32, side_from_prefix: bool) -> Result<(), ()> {
    let merge = *flags & bits::MERGE != 0;
    let no_prefixes = *flags & bits::NO_PREFIXES != 0;
    match m {
        b'-' if merge && !no_prefixes => *flags |= bits::NO_PREFIXES,
        b'+' if merge && !no_prefixes => *flags |= bits::NO_PREFIXES | bits::INCLUDE,
        b'/' => *flags |= bits::ABS_PATH,
        // Negation belongs to a pattern, not to a merge file's defaults.
        b'!' if !merge => *flags |= bits::NEGATE,
        b'C' if !no_prefixes && !side_from_prefix => {
            *flags |= bits::NO_PREFIXES | bits::WORD_SPLIT | bits::NO_INHERIT | bits::CVS;
        }
        b'e' if merge => *flags |= bits::EXCLUDE_SELF,
        b'n' if merge => *flags |= bits::NO_INHERIT,
        b'p' => *flags |= bits::PERISHABLE,
        b'r' if !side_from_prefix => *flags |= bits::RECEIVER,
        b's' if !side_from_prefix => *flags |= bits::SENDER,
        b'w' if merge => *flags |= bits::WORD_SPLIT,
        b'x' => *flags |= bits::XATTR,
        _ => return Err(()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(u32, String), FilterError> {
        let (tok, _) = next_rule(text.as_bytes(), 0, Mode::default(), false)?.unwrap();
        Ok((tok.flags, String::from_utf8(tok.pattern.to_vec()).unwrap()))
    }

    #[test]
    fn prefixes_table() {
        use bits::*;
        let cases: &[(&str, u32, &str)] = &[
            ("- foo", 0, "foo"),
            ("exclude foo", 0, "foo"),
            ("exclude_foo", 0, "foo"),
            ("-_foo", 0, "foo"),
            ("+ foo", INCLUDE, "foo"),
            ("include foo bar", INCLUDE, "foo bar"),
            ("-! foo", NEGATE, "foo"),
            ("-/ /foo", ABS_PATH, "/foo"),
            ("exclude,s foo", SENDER, "foo"),
            ("-,s foo", SENDER, "foo"),
            ("hide foo", SENDER, "foo"),
            ("H foo", SENDER, "foo"),
            ("show foo", INCLUDE | SENDER, "foo"),
            ("S foo", INCLUDE | SENDER, "foo"),
            ("protect foo", RECEIVER, "foo"),
            ("P foo", RECEIVER, "foo"),
            ("risk foo", INCLUDE | RECEIVER, "foo"),
            ("R foo", INCLUDE | RECEIVER, "foo"),
            ("-p foo", PERISHABLE, "foo"),
            ("-x user.*", XATTR, "user.*"),
            (": .rsync-filter", MERGE | PERDIR, ".rsync-filter"),
            ("dir-merge .f", MERGE | PERDIR, ".f"),
            (":n- .f", MERGE | PERDIR | NO_INHERIT | NO_PREFIXES, ".f"),
            (":+ .f", MERGE | PERDIR | NO_PREFIXES | INCLUDE, ".f"),
            (":e .f", MERGE | PERDIR | EXCLUDE_SELF, ".f"),
            (":w .f", MERGE | PERDIR | WORD_SPLIT, ".f"),
            (
                ":C",
                MERGE | PERDIR | CVS | NO_PREFIXES | WORD_SPLIT | NO_INHERIT,
                "",
            ),
            ("-C", CVS | NO_PREFIXES | WORD_SPLIT | NO_INHERIT, ""),
            (". file", MERGE, "file"),
            ("merge,- file", MERGE | NO_PREFIXES, "file"),
            ("!", CLEAR, ""),
            ("clear", CLEAR, ""),
            ("- ", 0, ""),
        ];
        for &(text, flags, pattern) in cases {
            match parse(text) {
                Ok(got) => assert_eq!(got, (flags, pattern.to_string()), "rule {text:?}"),
                Err(e) if text == "- " => {
                    assert!(matches!(e, FilterError::UnexpectedEnd { .. }));
                }
                Err(e) => panic!("rule {text:?}: {e}"),
            }
        }
    }

    #[test]
    fn errors_table() {
        let cases: &[&str] = &[
            "x foo",
            "excludes foo",
            "-q foo",
            "-e foo",
            "-n foo",
            ".! foo",
            "hide,s foo",
            "P,r foo",
            "S,C foo",
            ":-C foo",
            "! foo",
            "-",
            "+",
            "\tfoo",
        ];
        for text in cases {
            assert!(parse(text).is_err(), "rule {text:?} should fail");
        }
    }

    #[test]
    fn old_prefixes() {
        let mode = Mode {
            old_prefixes: true,
            ..Mode::default()
        };
        let cases: &[(&str, u32, u32, &str)] = &[
            ("foo", 0, 0, "foo"),
            ("- foo", bits::INCLUDE, 0, "foo"),
            ("+ foo", 0, bits::INCLUDE, "foo"),
            ("foo", bits::INCLUDE, bits::INCLUDE, "foo"),
            ("-foo", 0, 0, "-foo"),
            ("!", 0, bits::CLEAR, "!"),
            ("!x", 0, 0, "!x"),
        ];
        for &(text, template, flags, pattern) in cases {
            let (tok, _) = next_rule(text.as_bytes(), template, mode, false)
                .unwrap()
                .unwrap();
            assert_eq!(
                (tok.flags, tok.pattern),
                (flags, pattern.as_bytes()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn word_split() {
        let template = bits::WORD_SPLIT | bits::NO_PREFIXES;
        let mut rest: &[u8] = b"  a  b\tc \n";
        let mut got = Vec::new();
        while let Some((tok, r)) = next_rule(rest, template, Mode::default(), false).unwrap() {
            got.push(tok.pattern.to_vec());
            rest = r;
        }
        assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn delete_excluded_marks_sender() {
        let (tok, _) = next_rule(b"- foo", 0, Mode::default(), true)
            .unwrap()
            .unwrap();
        assert_eq!(tok.flags, bits::SENDER);
        let (tok, _) = next_rule(b"P foo", 0, Mode::default(), true)
            .unwrap()
            .unwrap();
        assert_eq!(tok.flags, bits::RECEIVER);
    }
}
