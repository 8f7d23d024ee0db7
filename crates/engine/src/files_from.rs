//! `--files-from`: the list of names to transfer, relative to the one source directory.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The most names a list may hold; a bound on memory for hostile input.
pub const MAX_NAMES: usize = 50_000_000;

/// Splits a list into names: one per line (or per NUL with `--from0`), `\r` before a newline
/// dropped, empty entries and comments (starting with `#` or `;`) skipped, as rsync does.
pub fn parse_list(data: &[u8], from0: bool) -> Vec<Vec<u8>> {
    let sep = if from0 { 0u8 } else { b'\n' };
    data.split(|&c| c == sep)
        .map(|line| {
            if !from0 {
                line.strip_suffix(b"\r").unwrap_or(line)
            } else {
                line
            }
        })
        .filter(|l| !l.is_empty() && l[0] != b'#' && l[0] != b';')
        .take(MAX_NAMES)
        .map(<[u8]>::to_vec)
        .collect()
}

/// Reads the list from a file, or standard input for `-`.
pub fn read_list(path: &Path, from0: bool) -> io::Result<Vec<Vec<u8>>> {
    let mut data = Vec::new();
    if path.as_os_str() == "-" {
        io::stdin().lock().read_to_end(&mut data)?;
    } else {
        // An operator path: no other user's symlink on the way (see rtsync-oppath).
        std::fs::File::from(rtsync_oppath::open(path, libc::O_RDONLY, 0)?)
            .read_to_end(&mut data)?;
    }
    Ok(parse_list(&data, from0))
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
        assert_eq!(
            parse_list(b"a\r\n\nb/c\n#x\n;y\n", false),
            vec![b"a".to_vec(), b"b/c".to_vec()]
        );
        assert_eq!(
            parse_list(b"a\nb\0c\0", true),
            vec![b"a\nb".to_vec(), b"c".to_vec()]
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
