//! Pieces both inotify-tools front doors share: option values, the list of paths to watch,
//! regular expressions, and C-style error text.

use std::ffi::{c_int, CStr, CString, OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use rtsync_watch::mask::{self, ParsedEvents};

/// Exit code for success.
pub const EXIT_SUCCESS: i32 = 0;
/// Exit code for errors (and for an event nobody asked for).
pub const EXIT_FAILURE: i32 = 1;
/// Exit code when `--timeout` ran out.
pub const EXIT_TIMEOUT: i32 = 2;

/// The event list shown by `--help` (our wording).
pub const EVENT_HELP: &str = "\taccess\t\tcontents were read\n\
\tmodify\t\tcontents were written\n\
\tattrib\t\tmetadata (permissions, times, owner, links, xattrs) changed\n\
\tclose_write\ta file opened for writing was closed\n\
\tclose_nowrite\ta file opened read-only was closed\n\
\tclose\t\teither close event\n\
\topen\t\ta file or directory was opened\n\
\tmoved_to\tan entry was renamed into a watched directory\n\
\tmoved_from\tan entry was renamed out of a watched directory\n\
\tmove\t\teither move event\n\
\tmove_self\ta watched file or directory itself was renamed\n\
\tcreate\t\tan entry was created in a watched directory\n\
\tdelete\t\tan entry was removed from a watched directory\n\
\tdelete_self\ta watched file or directory itself was removed\n\
\tunmount\t\tthe filesystem holding the watched object was unmounted\n";

/// The C library's text for an errno value, as `strerror` gives it.
pub fn strerror(errno: i32) -> String {
    // SAFETY: strerror returns a pointer to a NUL-terminated static or thread-local string.
    unsafe { CStr::from_ptr(libc::strerror(errno)) }
        .to_string_lossy()
        .into_owned()
}

/// Writes raw bytes to stderr (paths are bytes, not UTF-8).
pub fn eprint_bytes(parts: &[&[u8]]) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    for p in parts {
        let _ = err.write_all(p);
    }
}

/// Parses a `--timeout` value like the C tools (`strtol`, base 10, whole string), printing their
/// diagnostics; the value wraps into an unsigned int as theirs does.
pub fn parse_timeout(arg: &OsStr) -> Option<u32> {
    let bytes = arg.as_bytes();
    if bytes.is_empty() {
        eprintln!(
            "The provided value is not a valid timeout value.\nPlease specify a long int value."
        );
        return None;
    }
    let c = CString::new(bytes).unwrap_or_default();
    let mut end: *mut libc::c_char = std::ptr::null_mut();
    // SAFETY: errno is thread-local; `c` is NUL-terminated and `end` receives a pointer into it.
    let (value, err, rest_empty) = unsafe {
        *libc::__errno_location() = 0;
        let v = libc::strtol(c.as_ptr(), &mut end, 10);
        let err = *libc::__errno_location();
        (v, err, *end == 0)
    };
    if err != 0 {
        eprintln!(
            "Something went wrong with the timeout value you provided.\n{}",
            strerror(err)
        );
        return None;
    }
    if !rest_empty {
        eprint_bytes(&[
            b"'",
            bytes,
            b"' is not a valid timeout value.\nPlease specify a long int value.\n",
        ]);
        return None;
    }
    Some(value as u32)
}

/// Parses an `--event` value, printing the tools' diagnostic for an unknown name. An empty item
/// yields no bits, silently, as in the originals.
pub fn parse_events(arg: &OsStr) -> Option<u32> {
    match mask::parse_event_list(&arg.to_string_lossy(), ',') {
        ParsedEvents::Mask(m) => Some(m),
        ParsedEvents::Empty => Some(0),
        ParsedEvents::Invalid => {
            eprint_bytes(&[
                b"'",
                arg.as_bytes(),
                b"' is not a valid event!  Run with the '--help' option to see a list of events.\n",
            ]);
            None
        }
    }
}

/// Paths to watch and directories to leave out (`@path`), from the command line and
/// `--fromfile`.
#[derive(Debug, Default)]
pub struct PathList {
    /// Paths to watch, in order.
    pub watch: Vec<Vec<u8>>,
    /// Directories not to descend into when watching recursively.
    pub exclude: Vec<Vec<u8>>,
}

impl PathList {
    fn add(&mut self, item: &[u8]) {
        match item {
            [] | [b'@'] => {}
            [b'@', rest @ ..] => self.exclude.push(rest.to_vec()),
            _ => self.watch.push(item.to_vec()),
        }
    }

    /// Builds the list: first the lines of `fromfile` (`-` is stdin), then the operands.
    pub fn build(operands: &[OsString], fromfile: Option<&OsStr>) -> Self {
        let mut list = PathList::default();
        if let Some(name) = fromfile {
            let data = if name.as_bytes() == b"-" {
                let mut v = Vec::new();
                let _ = std::io::stdin().read_to_end(&mut v);
                Some(v)
            } else {
                match std::fs::read(name) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        eprint_bytes(&[
                            b"Couldn't open ",
                            name.as_bytes(),
                            b": ",
                            strerror(e.raw_os_error().unwrap_or(0)).as_bytes(),
                            b"\n",
                        ]);
                        None
                    }
                }
            };
            for line in data.iter().flat_map(|d| fgets_lines(d)) {
                list.add(line);
            }
        }
        for op in operands {
            list.add(op.as_bytes());
        }
        list
    }
}

/// Splits like repeated `fgets` with a 4096-byte buffer: at most 4095 bytes a piece, a piece
/// ends after a newline, and one trailing newline is dropped from each piece.
fn fgets_lines(data: &[u8]) -> Vec<&[u8]> {
    const MAX: usize = 4095;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let limit = rest.len().min(MAX);
        let take = match rest[..limit].iter().position(|&b| b == b'\n') {
            Some(i) => i + 1,
            None => limit,
        };
        let piece = &rest[..take];
        out.push(piece.strip_suffix(b"\n").unwrap_or(piece));
        rest = &rest[take..];
    }
    out
}

/// A POSIX extended regular expression, compiled by the C library so that matching is exactly
/// what the original tools do.
pub struct Regex {
    re: Box<libc::regex_t>,
}

impl Regex {
    /// Compiles `pattern` (extended syntax, optionally case-insensitive); `None` if invalid.
    pub fn new(pattern: &OsStr, icase: bool) -> Option<Self> {
        let c = CString::new(pattern.as_bytes()).ok()?;
        // SAFETY: regex_t is plain data that regcomp initialises.
        let mut re: Box<libc::regex_t> = Box::new(unsafe { std::mem::zeroed() });
        let mut flags: c_int = libc::REG_EXTENDED | libc::REG_NOSUB;
        if icase {
            flags |= libc::REG_ICASE;
        }
        // SAFETY: `re` is valid for writes, `c` is NUL-terminated.
        if unsafe { libc::regcomp(&mut *re, c.as_ptr(), flags) } != 0 {
            // SAFETY: glibc frees whatever a failed regcomp left allocated.
            unsafe { libc::regfree(&mut *re) };
            return None;
        }
        Some(Regex { re })
    }

    /// Whether `text` matches anywhere. Text with a NUL byte is matched up to it, as in C.
    pub fn is_match(&self, text: &[u8]) -> bool {
        let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
        let Ok(c) = CString::new(&text[..end]) else {
            return false;
        };
        // SAFETY: `re` was compiled by regcomp; `c` is NUL-terminated; no match array.
        unsafe { libc::regexec(&*self.re, c.as_ptr(), 0, std::ptr::null_mut(), 0) == 0 }
    }
}

impl Drop for Regex {
    fn drop(&mut self) {
        // SAFETY: compiled by regcomp and freed once.
        unsafe { libc::regfree(&mut *self.re) };
    }
}

/// Event filter from `--exclude[i]` / `--include[i]`: an event is dropped when its `%w%f`
/// matches an exclude, or does not match an include.
pub struct EventFilter {
    /// The compiled expression.
    pub regex: Regex,
    /// True for `--include[i]`.
    pub invert: bool,
}

impl EventFilter {
    /// Whether an event whose full name is `name` is kept.
    pub fn keeps(&self, name: &[u8]) -> bool {
        // The C tools match a copy limited to 4096 bytes.
        let name = &name[..name.len().min(4096)];
        self.regex.is_match(name) == self.invert
    }
}

/// `lstat` says directory (and not a symbolic link). Errors other than "does not exist" are
/// reported like the originals do.
pub fn isdir(path: &[u8]) -> bool {
    let p = OsString::from_vec(path.to_vec());
    match std::fs::symlink_metadata(&p) {
        Ok(m) => m.file_type().is_dir(),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => false,
        Err(e) => {
            eprint_bytes(&[
                b"Stat failed on ",
                path,
                b": ",
                strerror(e.raw_os_error().unwrap_or(0)).as_bytes(),
                b"\n",
            ]);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fromfile_lines_split_like_fgets() {
        let long = vec![b'a'; 5000];
        let mut data = b"one\n\n@\n@ex\ntwo".to_vec();
        data.push(b'\n');
        data.extend_from_slice(&long);
        let lines = fgets_lines(&data);
        assert_eq!(&lines[..5], &[&b"one"[..], b"", b"@", b"@ex", b"two"]);
        assert_eq!(lines[5].len(), 4095);
        assert_eq!(lines[6].len(), 905);
    }

    #[test]
    fn path_list_sorts_watches_and_exclusions() {
        let ops: Vec<OsString> = ["a", "@b", "@", "", "c"]
            .iter()
            .map(OsString::from)
            .collect();
        let l = PathList::build(&ops, None);
        assert_eq!(l.watch, vec![b"a".to_vec(), b"c".to_vec()]);
        assert_eq!(l.exclude, vec![b"b".to_vec()]);
    }

    #[test]
    fn regex_matches_extended_syntax() {
        let cases: &[(&str, bool, &str, bool)] = &[
            ("\\.txt$", false, "dir/a.txt", true),
            ("\\.txt$", false, "dir/a.TXT", false),
            ("\\.txt$", true, "dir/a.TXT", true),
            ("(foo|bar)+", false, "x/barfoo", true),
            ("^sub/", false, "top/sub/x", false),
        ];
        for &(pat, icase, text, want) in cases {
            let re = Regex::new(OsStr::new(pat), icase).expect("compiles");
            assert_eq!(re.is_match(text.as_bytes()), want, "{pat} on {text}");
        }
        assert!(Regex::new(OsStr::new("("), false).is_none());
    }
}
