//! `--files-from`: the list of names to transfer, relative to the one source directory.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The most names a list may hold; a bound on memory for hostile input.
pub const MAX_NAMES: usize = 50_000_000;

/// How a list is read: by the side that sends the files, or by a client (or receiving
/// server) that forwards it to a remote sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListUse {
    /// The sender reads it: each line (each NUL-terminated entry with `--from0`) is a name,
    /// a line ends at `\n` or `\r` and is cut at a NUL byte (one that starts with it is
    /// `.`), empty lines and comments (`#` or `;` first) are skipped, as rsync's read_line
    /// with comments dumped.
    Read,
    /// Forwarded to the remote sender as rsync's client does it: every `\n` and `\r` (unless
    /// `--from0`) and every NUL ends a name, empty names are dropped, comments are kept
    /// (the remote sender reads them as names).
    Forward,
}

/// Splits a list into names (see [`ListUse`]).
pub fn parse_list(data: &[u8], from0: bool, usage: ListUse) -> Vec<Vec<u8>> {
    let line_end = |c: &u8| {
        if from0 {
            *c == 0
        } else {
            *c == b'\n' || *c == b'\r'
        }
    };
    let mut names = Vec::new();
    for line in data.split(line_end) {
        let mut parts = line.split(|&c| c == 0);
        // Read: a NUL inside a line cuts the name there. Forward: it ends a name.
        let parts: Vec<&[u8]> = match usage {
            ListUse::Read => parts.next().into_iter().collect(),
            ListUse::Forward => parts.collect(),
        };
        for name in parts {
            let comment = name.first().is_some_and(|c| *c == b'#' || *c == b';');
            if usage == ListUse::Read && comment {
                continue;
            }
            // (A line that starts with a NUL is not empty to rsync's reader: it names the
            // directory itself.)
            let name: &[u8] = match name.is_empty() {
                true if usage == ListUse::Read && !line.is_empty() => b".",
                true => continue,
                false => name,
            };
            if names.len() >= MAX_NAMES {
                return names;
            }
            names.push(name.to_vec());
        }
    }
    names
}

/// Reads the list from a file, or standard input for `-`.
pub fn read_list(path: &Path, from0: bool, usage: ListUse) -> io::Result<Vec<Vec<u8>>> {
    let mut data = Vec::new();
    if path.as_os_str() == "-" {
        io::stdin().lock().read_to_end(&mut data)?;
    } else {
        // An operator path: no other user's symlink on the way (see rtsync-oppath).
        std::fs::File::from(rtsync_oppath::open(path, libc::O_RDONLY, 0)?)
            .read_to_end(&mut data)?;
    }
    Ok(parse_list(&data, from0, usage))
}

/// Source arguments for the scanner: `DIR/./NAME`, so that with `-R` each keeps its listed
/// path (a leading `/` in the list is relative to DIR too, as in rsync). A name holding its
/// own `/./` marker keeps only what follows the marker, as on rsync's command line.
pub fn sources(dir: &Path, names: &[Vec<u8>]) -> Vec<PathBuf> {
    let mut base = dir.as_os_str().as_bytes().to_vec();
    while base.len() > 1 && base.ends_with(b"/") {
        base.pop();
    }
    names
        .iter()
        .map(|name| {
            let mut p = base.clone();
            let mut rest: &[u8] = name;
            while let Some(r) = rest.strip_prefix(b"/") {
                rest = r;
            }
            let own_marker = rest.windows(3).any(|w| w == b"/./");
            p.extend_from_slice(if own_marker { b"/" } else { b"/./" });
            p.extend_from_slice(rest);
            PathBuf::from(OsStr::from_bytes(&p))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_nuls() {
        let v = |l: &[&[u8]]| l.iter().map(|x| x.to_vec()).collect::<Vec<_>>();
        let list = b"#c\na/f\r;x\n\na/b/g\0zz\r\nh\n\0q\n";
        assert_eq!(
            parse_list(list, false, ListUse::Read),
            v(&[b"a/f", b"a/b/g", b"h", b"."])
        );
        assert_eq!(
            parse_list(list, false, ListUse::Forward),
            v(&[b"#c", b"a/f", b";x", b"a/b/g", b"zz", b"h", b"q"])
        );
        assert_eq!(
            parse_list(b"a\nb\0#c\0\0c\r\0", true, ListUse::Read),
            v(&[b"a\nb", b"c\r"])
        );
        assert_eq!(
            parse_list(b"a\nb\0#c\0\0c\r\0", true, ListUse::Forward),
            v(&[b"a\nb", b"#c", b"c\r"])
        );
    }

    #[test]
    fn sources_are_marked_relative() {
        let s = sources(
            Path::new("src/"),
            &[b"/x/y".to_vec(), b"z".to_vec(), b"p/./q".to_vec()],
        );
        assert_eq!(
            s,
            vec![
                PathBuf::from("src/./x/y"),
                PathBuf::from("src/./z"),
                PathBuf::from("src/p/./q")
            ]
        );
    }
}
