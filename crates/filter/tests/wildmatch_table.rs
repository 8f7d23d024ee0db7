//! Table-driven wildmatch cases derived from rsync.1's pattern rules.

use rtsync_filter::wildmatch::wildmatch;

/// (pattern, text, expected match)
const CASES: &[(&str, &str, bool)] = &[
    // Literals and basic wildcards.
    ("foo", "foo", true),
    ("foo", "bar", false),
    ("", "", true),
    ("", "a", false),
    ("???", "foo", true),
    ("??", "foo", false),
    ("*", "foo", true),
    ("f*", "foo", true),
    ("*f", "foo", false),
    ("*foo*", "foo", true),
    ("*ob*a*r*", "foobar", true),
    ("*ab", "aaaaaaabababab", true),
    ("foo*", "foo", true),
    ("*", "", true),
    ("?", "", false),
    // `*` and `?` stop at `/`; `**` does not.
    ("*", "a/b", false),
    ("a?b", "a/b", false),
    ("a*b", "a/b", false),
    ("a*b", "axxb", true),
    ("**", "a/b/c", true),
    ("a**c", "a/b/c", true),
    ("a/**/c", "a/b/c", true),
    ("a/**/c", "a/b/x/c", true),
    ("a/**/c", "a/c", false),
    ("**/c", "a/b/c", true),
    ("**/c", "c", false),
    ("a/**", "a/b/c", true),
    ("a/**", "a", false),
    ("a/***", "a/b", true),
    ("a/*", "a/b/c", false),
    ("a/*/c", "a/b/c", true),
    ("a/*/c", "a/b/x/c", false),
    ("*/*", "a/b", true),
    ("*/*", "a/b/c", false),
    ("foo/*", "foo/bar/baz", false),
    ("foo/**", "foo/bar/baz", true),
    ("**/foo", "foo", false),
    ("**foo", "foo", true),
    ("**foo", "x/y/foo", true),
    ("*/foo", "x/y/foo", false),
    ("***", "a/b", true),
    ("***/x", "a/b/x", true),
    (
        "-*-*-*-*-*-*-12-*-*-*-m-*-*-*",
        "-adobe-courier-bold-o-normal--12-120-75-75-m-70-iso8859-1",
        true,
    ),
    (
        "-*-*-*-*-*-*-12-*-*-*-m-*-*-*",
        "-adobe-courier-bold-o-normal--12-120-75-75-X-70-iso8859-1",
        false,
    ),
    (
        "XXX/*/*/*/*/*/*/12/*/*/*/m/*/*/*",
        "XXX/adobe/courier/bold/o/normal//12/120/75/75/m/70/iso8859/1",
        true,
    ),
    (
        "XXX/*/*/*/*/*/*/12/*/*/*/m/*/*/*",
        "XXX/adobe/courier/bold/o/normal//12/120/75/75/X/70/iso8859/1",
        false,
    ),
    (
        "**/*a*b*g*n*t",
        "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txt",
        true,
    ),
    (
        "**/*a*b*g*n*t",
        "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txtz",
        false,
    ),
    // Escapes.
    ("\\*", "*", true),
    ("\\*", "x", false),
    ("\\?", "?", true),
    ("\\?", "x", false),
    ("foo\\*bar", "foo*bar", true),
    ("foo\\*bar", "fooxbar", false),
    ("\\[ab]", "[ab]", true),
    ("\\a", "a", true),
    ("a\\", "a", false),
    ("a\\", "a\\", false),
    ("*\\\\*", "x\\y", true),
    // Character classes.
    ("[ab]", "a", true),
    ("[ab]", "c", false),
    ("[!ab]", "c", true),
    ("[!ab]", "a", false),
    ("[^ab]", "c", true),
    ("[^ab]", "b", false),
    ("[a-c]", "b", true),
    ("[a-c]", "d", false),
    ("[!a-c]", "d", true),
    ("[]]", "]", true),
    ("[]]", "a", false),
    ("[!]]", "a", true),
    ("[!]]", "]", false),
    ("[]-]", "-", true),
    ("[]-]", "]", true),
    ("[]-]", "a", false),
    ("[a-]", "-", true),
    ("[a-]", "a", true),
    ("[-a]", "-", true),
    ("[a-c-e]", "-", true),
    ("[a-c-e]", "d", false),
    ("[\\]]", "]", true),
    ("[\\-]", "-", true),
    ("[\\\\]", "\\", true),
    ("[a\\-z]", "b", false),
    ("[a-\\z]", "m", true),
    ("[/]", "/", false),
    ("[!x]", "/", false),
    ("a[/]b", "a/b", false),
    ("[ab", "a", false),
    ("[", "[", false),
    ("[!", "a", false),
    ("[[:alpha:]]", "a", true),
    ("[[:alpha:]]", "1", false),
    ("[[:digit:]]", "7", true),
    ("[[:digit:][:upper:]]", "Q", true),
    ("[[:digit:][:upper:]]", "q", false),
    ("[![:digit:]]", "a", true),
    ("[![:digit:]]", "5", false),
    ("[[:alnum:]]", "_", false),
    ("[[:space:]]", " ", true),
    ("[[:space:]]", "\t", true),
    ("[[:blank:]]", "\t", true),
    ("[[:blank:]]", "\n", false),
    ("[[:punct:]]", "!", true),
    ("[[:punct:]]", "a", false),
    ("[[:xdigit:]]", "f", true),
    ("[[:xdigit:]]", "g", false),
    ("[[:lower:]]", "a", true),
    ("[[:lower:]]", "A", false),
    ("[[:upper:]]", "A", true),
    ("[[:cntrl:]]", "\x01", true),
    ("[[:graph:]]", " ", false),
    ("[[:print:]]", " ", true),
    ("[[:nope:]]", "a", false),
    ("[[:alpha:]", "a", false),
    // Not a `[:name:]`: the members are `[`, `:`, `a`, `l`, `p`, `h`.
    ("[[:alpha]", "a", true),
    ("[[:alpha]", "x", false),
    ("[[:alpha]]", "a]", true),
    ("[[:alpha]]", "a", false),
    ("[[:]", "[", true),
    ("[[:]", ":", true),
    ("[a[:]", "a", true),
    ("[x[]", "[", true),
    ("[[:digit:]-z]", "-", true),
    ("[[:digit:]-z]", "y", false),
    // Case is significant.
    ("ABC", "abc", false),
    ("[A-Z]*", "a", false),
    // Non-UTF-8 and high bytes are plain bytes.
    ("é", "é", true),
    ("?", "é", false),
    ("??", "é", true),
    ("*", "\u{fffd}", true),
];

#[test]
fn wildmatch_table() {
    let mut failures = Vec::new();
    for &(pattern, text, want) in CASES {
        if wildmatch(pattern.as_bytes(), text.as_bytes()) != want {
            failures.push(format!(
                "pattern {pattern:?} text {text:?}: expected {want}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn wildmatch_bytes_not_utf8() {
    assert!(wildmatch(b"a*\xff", b"abc\xff"));
    assert!(wildmatch(b"[\x80-\xff]", b"\xc3"));
    assert!(!wildmatch(b"[[:alpha:]]", b"\xe9"));
}

#[test]
fn wildmatch_pathological_is_fast() {
    let text = "a".repeat(64);
    let pattern = "*a*a*a*a*a*a*a*a*a*a*a*a*b";
    let start = std::time::Instant::now();
    assert!(!wildmatch(pattern.as_bytes(), text.as_bytes()));
    let deep = "a/".repeat(32) + "b";
    assert!(!wildmatch(b"**a**a**a**a**a**c", deep.as_bytes()));
    assert!(start.elapsed().as_secs() < 2, "backtracking blew up");
}
