//! Incremental recursion on the receiving side (CF_INC_RECURSE): the file lists as they
//! arrive between files, checked and numbered, on their way to the generator.
//!
//! Facts (stock 3.5's flist.c / generator.c / receiver.c, checked against stock peers):
//!
//! * The first list is read before the transfer, numbered from 1; each later one is
//!   announced as `NDX_FLIST_OFFSET - dir_ndx` between two files and numbered from the
//!   previous start plus its length plus one, so `ndx_start - 1` names the directory the
//!   list holds. `NDX_FLIST_EOF` says no list follows.
//! * Every directory entry of every list gets the next *dir_ndx*, lists in the order
//!   received and entries in sorted order within a list (cleared duplicates included).
//!   The first list's own directory is its top `.`, if that sorts first.
//! * A list for a dir_ndx not yet given, for a cleared entry, a second list for the same
//!   directory, a list after every list was retired, and an entry outside the list's
//!   directory are refused (stock's wording).
//! * Owner and group names travel inline; the decoder state (previous name, mode, ...)
//!   carries over from one list to the next.
//! * The generator handles a list's directory in full (item line, deletions) at
//!   `ndx_start - 1` before its entries, and only creates the directories among the
//!   entries (their own lists come later). It sends `NDX_DONE` each time the oldest list
//!   has nothing in flight, never for the one it is working on; the sender echoes each but
//!   the last, which ends phase 1 as without incremental recursion.

use std::collections::VecDeque;
use std::io::Read;

use rtsync_tree::FileEntry;

use crate::error::{Error, Result};
use crate::flist::{FileList, FlistDecoder};
use crate::ndx::NDX_FLIST_OFFSET;

/// What the caller does to every list before the generator sees it (id mapping, `--chmod`,
/// munged symlinks, checks of requested names).
pub type Prepare<'a> = Box<dyn FnMut(&mut FileList) -> Result<()> + Send + 'a>;

/// One received list on its way to the generator.
pub struct IncList {
    pub ndx_start: usize,
    pub list: FileList,
    /// The directory whose contents these are (handled in full at `ndx_start - 1`), and
    /// whether it is a content directory (`--delete` may sweep it).
    pub parent: Option<(FileEntry, bool)>,
}

struct DirSlot {
    entry: FileEntry,
    active: bool,
    /// An implied parent skipped under `-R --no-implied-dirs`: its list is read, but the
    /// directory itself is not handled.
    implied: bool,
    content: bool,
    got_list: bool,
}

/// Totals of the lists received during the transfer (`--stats`).
#[derive(Debug, Clone, Default)]
pub struct ListTotals {
    pub files: [u64; 5],
    pub total_size: u64,
    pub bytes: u64,
    /// Names that did not convert under `--iconv` (errors of ours).
    pub unconverted: u64,
}

/// The receiving side's list state.
pub struct IncReader<'a> {
    dec: FlistDecoder,
    prepare: Prepare<'a>,
    dirs: Vec<DirSlot>,
    next_start: usize,
    /// The lists the sender still holds: their start and which entries are active.
    live: VecDeque<(usize, Vec<bool>)>,
    eof: bool,
    /// The lists after the first.
    pub totals: ListTotals,
    /// `--iconv`: the sender's numbering of entries (in the order sent), and of directories:
    /// `dir_wire[n]` is the slot in `dirs` of the directory the sender numbers `n`.
    pub unsorted: Option<crate::ndx::Unsorted>,
    dir_wire: Vec<usize>,
}

struct Counted<'r, R: ?Sized> {
    inner: &'r mut R,
    n: u64,
}

impl<R: Read + ?Sized> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

fn dirname(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|&b| b == b'/') {
        Some(p) => &name[..p],
        None => b"",
    }
}

impl<'a> IncReader<'a> {
    pub fn new(dec: FlistDecoder, prepare: Prepare<'a>) -> IncReader<'a> {
        let unsorted = dec.unsorted().then(crate::ndx::Unsorted::default);
        IncReader {
            unsorted,
            dir_wire: Vec::new(),
            dec,
            prepare,
            dirs: Vec::new(),
            next_start: 1,
            live: VecDeque::new(),
            eof: false,
            totals: ListTotals::default(),
        }
    }

    /// Reads the first list (before the transfer starts).
    pub fn read_first<R: Read + ?Sized>(&mut self, r: &mut R) -> Result<IncList> {
        self.read(r, None)
    }

    /// Reads the list announced by `ndx` (`NDX_FLIST_OFFSET - dir_ndx`).
    pub fn read_sub<R: Read + ?Sized>(&mut self, r: &mut R, ndx: i32) -> Result<IncList> {
        if self.eof {
            return Err(Error::Protocol("file list after the end of lists".into()));
        }
        if self.live.is_empty() {
            return Err(Error::Protocol(
                "refusing sub-flist after final flist was freed".into(),
            ));
        }
        let mut dir_ndx = i64::from(NDX_FLIST_OFFSET) - i64::from(ndx);
        if self.unsorted.is_some() {
            if let Some(&slot) = usize::try_from(dir_ndx)
                .ok()
                .and_then(|d| self.dir_wire.get(d))
            {
                dir_ndx = slot as i64;
            }
        }
        let slot = usize::try_from(dir_ndx)
            .ok()
            .and_then(|d| self.dirs.get(d))
            .ok_or_else(|| {
                Error::Protocol(format!(
                    "Invalid dir index: {ndx} ({NDX_FLIST_OFFSET} - {})",
                    i64::from(NDX_FLIST_OFFSET) - self.dirs.len() as i64 + 1
                ))
            })?;
        if !slot.active {
            return Err(Error::Protocol(format!(
                "refusing flist for cleared dir_ndx {dir_ndx}"
            )));
        }
        if slot.got_list {
            return Err(Error::Protocol(format!(
                "refusing malicious duplicate flist for dir {dir_ndx}"
            )));
        }
        let d = dir_ndx as usize;
        self.dirs[d].got_list = true;
        let mut counted = Counted { inner: r, n: 0 };
        let list = self.read(&mut counted, Some(d));
        self.totals.bytes += counted.n;
        let list = list?;
        for e in &list.list.entries {
            self.totals.files[rtsync_engine::report::kind_slot(e.kind)] += 1;
            if matches!(
                e.kind,
                rtsync_tree::FileKind::Regular | rtsync_tree::FileKind::Symlink
            ) {
                self.totals.total_size += e.size;
            }
        }
        Ok(list)
    }

    fn read<R: Read + ?Sized>(&mut self, r: &mut R, dir: Option<usize>) -> Result<IncList> {
        let ndx_start = self.next_start;
        self.dec.set_ndx_start(ndx_start);
        let mut list = self.dec.read_list(r)?;
        if dir.is_some() {
            self.totals.unconverted += list.unconverted;
        }
        // Every entry lies in the list's directory (the first list: at the top).
        let want: &[u8] = match dir {
            Some(d) => &self.dirs[d].entry.name,
            None => b"",
        };
        let want = if want == b"." { &b""[..] } else { want };
        for e in &list.entries {
            let have = if e.name == b"." {
                &b""[..]
            } else {
                dirname(&e.name)
            };
            if have != want {
                let base = &e.name[have.len()..];
                let base = base.strip_prefix(b"/").unwrap_or(base);
                return Err(Error::UnsafePath(format!(
                    "{}/{}",
                    String::from_utf8_lossy(have),
                    String::from_utf8_lossy(base)
                )));
            }
        }
        (self.prepare)(&mut list)?;
        let parent = match dir {
            Some(d) if self.dirs[d].implied => None,
            Some(d) => Some((self.dirs[d].entry.clone(), self.dirs[d].content)),
            None => list
                .entries
                .first()
                .filter(|e| e.name == b"." && e.is_dir())
                .map(|e| (e.clone(), list.content_dir.first().copied().unwrap_or(true))),
        };
        if let Some(u) = &self.unsorted {
            u.add(ndx_start, &list.sent);
            let mut by_sent: Vec<(u32, usize)> = Vec::new();
            let mut slot = self.dirs.len();
            for (i, e) in list.entries.iter().enumerate() {
                if e.is_dir() {
                    by_sent.push((list.sent.get(i).copied().unwrap_or(i as u32), slot));
                    slot += 1;
                }
            }
            by_sent.sort_unstable();
            self.dir_wire
                .extend(by_sent.into_iter().map(|(_, slot)| slot));
        }
        for (i, e) in list.entries.iter().enumerate() {
            if e.is_dir() {
                let implied = list.skipped_implied.get(i).copied().unwrap_or(false);
                self.dirs.push(DirSlot {
                    entry: e.clone(),
                    // (An implied parent skipped under --no-implied-dirs still gets its list.)
                    active: list.active[i] || implied,
                    implied,
                    content: list.content_dir.get(i).copied().unwrap_or(true),
                    got_list: false,
                });
            }
        }
        self.next_start = ndx_start + list.entries.len() + 1;
        self.live.push_back((ndx_start, list.active.clone()));
        Ok(IncList {
            ndx_start,
            list,
            parent,
        })
    }

    /// `NDX_FLIST_EOF`: no more lists.
    pub fn end(&mut self) -> Result<()> {
        if self.eof {
            return Err(Error::Protocol("second end of the file lists".into()));
        }
        self.eof = true;
        Ok(())
    }

    /// `NDX_DONE` from the sender: retires the oldest list; true when that was an echo
    /// (a later list is held), false when it ends the phase.
    pub fn retire(&mut self) -> bool {
        self.live.pop_front();
        !self.live.is_empty()
    }

    /// Checks an index the sender names: in a list it still holds, not a cleared entry.
    pub fn check(&self, ndx: i32) -> Result<()> {
        let bad = || {
            let (lo, hi) = match (self.live.front(), self.live.back()) {
                (Some(f), Some(b)) => (f.0 as i64 - 1, (b.0 + b.1.len()) as i64 - 1),
                _ => (0, -1),
            };
            Error::Protocol(format!("Invalid file index: {ndx} ({lo} - {hi})"))
        };
        let n = usize::try_from(ndx).map_err(|_| bad())?;
        for (start, active) in &self.live {
            if n + 1 == *start {
                return Ok(());
            }
            if n >= *start && n < start + active.len() {
                return if active[n - start] {
                    Ok(())
                } else {
                    Err(Error::Protocol(format!(
                        "refusing transfer of cleared file index {ndx}"
                    )))
                };
            }
        }
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flist::{FlistEncoder, FlistOptions};
    use rtsync_tree::FileKind;

    fn opts() -> FlistOptions {
        FlistOptions {
            protocol: 31,
            varint_flags: true,
            safe_flist: true,
            inc_recurse: true,
            ..FlistOptions::default()
        }
    }

    fn entry(name: &str, dir: bool) -> FileEntry {
        FileEntry {
            name: name.as_bytes().to_vec(),
            kind: if dir {
                FileKind::Directory
            } else {
                FileKind::Regular
            },
            mode: if dir { libc::S_IFDIR } else { libc::S_IFREG } | 0o755,
            size: 1,
            mtime: 1_700_000_000,
            mtime_nsec: 0,
            atime: 0,
            uid: 0,
            gid: 0,
            rdev: 0,
            link_target: None,
            hardlink_key: None,
            checksum: None,
            top_dir: false,
            xattrs: None,
            acl: None,
        }
    }

    /// One list's bytes (entries as given, end marker), numbered from `start`.
    fn list(enc: &mut FlistEncoder, start: usize, entries: &[FileEntry]) -> Vec<u8> {
        let mut out = Vec::new();
        enc.set_list_start(start);
        for (i, e) in entries.iter().enumerate() {
            enc.put_entry_inc(&mut out, e, start + i, true).unwrap();
        }
        enc.put_end(&mut out, 0);
        out
    }

    #[test]
    fn lists_are_numbered_checked_and_retired_like_stocks() {
        let mut enc = FlistEncoder::new(opts());
        let mut r = IncReader::new(FlistDecoder::new(opts()), Box::new(|_| Ok(())));
        // First list: `.`, a file, two directories (dir_ndx 0 `.`, 1 `a`, 2 `b`).
        let top = [
            entry(".", true),
            entry("a", true),
            entry("b", true),
            entry("f", false),
        ];
        let first = r.read_first(&mut &list(&mut enc, 1, &top)[..]).unwrap();
        assert_eq!(first.ndx_start, 1);
        assert_eq!(
            first.parent.as_ref().map(|p| &p.0.name[..]),
            Some(&b"."[..])
        );
        // `a`'s list starts after the first list's 4 entries and the gap index.
        let sub = [entry("a/x", false), entry("a/y", true)];
        let a = r
            .read_sub(&mut &list(&mut enc, 6, &sub)[..], NDX_FLIST_OFFSET - 1)
            .unwrap();
        assert_eq!(a.ndx_start, 6);
        assert_eq!(a.parent.as_ref().map(|p| &p.0.name[..]), Some(&b"a"[..]));
        assert_eq!(r.totals.files[0], 1);
        // Indexes: the gap before a list names its directory; others must be listed.
        for ok in [0, 1, 4, 5, 6, 7] {
            r.check(ok).unwrap();
        }
        for bad in [-5, 8, 100] {
            assert!(r.check(bad).is_err(), "{bad}");
        }
        // A second list for `a`, a dir_ndx never given, a non-directory's: refused.
        let again = r.read_sub(&mut &list(&mut enc, 9, &sub)[..], NDX_FLIST_OFFSET - 1);
        assert!(again.is_err_and(|e| e.to_string().contains("duplicate flist")));
        assert!(r
            .read_sub(&mut &b""[..], NDX_FLIST_OFFSET - 9)
            .is_err_and(|e| e.to_string().contains("Invalid dir index")));
        // An entry outside the list's directory is refused.
        let stray = [entry("a/z", false)];
        assert!(r
            .read_sub(&mut &list(&mut enc, 9, &stray)[..], NDX_FLIST_OFFSET - 2)
            .is_err());
        // NDX_DONE echoes retire the oldest list; the last one ends the phase.
        assert!(r.retire());
        assert!(r.check(1).is_err(), "the first list is gone");
        assert!(!r.retire());
        assert!(r
            .read_sub(&mut &b""[..], NDX_FLIST_OFFSET - 3)
            .is_err_and(|e| e.to_string().contains("after final flist was freed")));
        r.end().unwrap();
        assert!(r.end().is_err());
    }

    #[test]
    fn dirname_of_names() {
        assert_eq!(dirname(b"a/b/c"), b"a/b");
        assert_eq!(dirname(b"c"), b"");
    }
}
