//! Replaying a batch written with incremental recursion (stock's default with `-r`): the
//! batch is turned into the equivalent stream without it, which the ordinary replay reads.
//!
//! Stream facts (sender to receiver, CF_INC_RECURSE): the first list, then, between file
//! records, `NDX_FLIST_OFFSET - dir_ndx` and a further list (one per directory), and
//! `NDX_FLIST_EOF` after the last. List *k* numbers its sorted entries from `ndx_start` (1
//! for the first, then the previous start plus its length plus one). The sender echoes
//! `NDX_DONE` each time the receiver retires a list while later ones remain; the other
//! `NDX_DONE`s end the phases as usual. Owner and group names travel inline.
//!
//! The flat form: every list's entries in the order received (a directory always comes
//! before its contents), indexes renumbered to positions in that list, the list-retiring
//! `NDX_DONE`s dropped, everything else byte for byte. The rewritten records go to an
//! unlinked temporary file, so a large batch is not held in memory.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};

use crate::error::{Error, Result};
use crate::flist::{FileList, FlistDecoder, FlistOptions};
use crate::ndx::{NdxReader, NdxWriter, NDX_DEL_STATS, NDX_DONE, NDX_FLIST_EOF, NDX_FLIST_OFFSET};
use crate::sums::{item, SumHead};
use crate::varint::ReadWire;

/// One list's place in the flat list.
struct Segment {
    ndx_start: i64,
    len: i64,
    flat_start: i64,
    /// Flat index of the directory this list holds (named as `ndx_start - 1`).
    parent: Option<i64>,
    /// `--iconv`: the sender numbered entries as sent; `to_sorted[sent]` is the sorted
    /// position (empty otherwise).
    to_sorted: Vec<u32>,
}

/// Reads the rest of an incremental-recursion batch (after the header) and returns the
/// whole file list and a reader of the equivalent flat stream that follows it.
pub fn flatten<R: Read>(
    r: &mut R,
    fopts: FlistOptions,
    digest_len: usize,
    compressed: bool,
) -> Result<(FileList, BufReader<File>)> {
    let protocol = fopts.protocol;
    let xattrs = fopts.xattrs.is_some();
    let mut dec = FlistDecoder::new(fopts);
    let mut all = FileList::default();
    let mut segments: Vec<Segment> = Vec::new();
    // Flat indexes of the directories, in dir_ndx order.
    let mut dirs: Vec<i64> = Vec::new();
    let add = |list: FileList,
               parent: Option<i64>,
               all: &mut FileList,
               segments: &mut Vec<Segment>,
               dirs: &mut Vec<i64>| {
        let ndx_start = segments.last().map_or(1, |s| s.ndx_start + s.len + 1);
        let flat_start = all.entries.len() as i64;
        let parent = parent.or_else(|| {
            // The first list's own directory is its top `.`.
            list.entries
                .iter()
                .position(|e| e.name == b".")
                .map(|p| flat_start + p as i64)
        });
        // Directories are numbered as the sender sent them (`--iconv`), else sorted.
        let to_sorted = crate::ndx::sorted_positions(&list.sent);
        let order: Vec<usize> = if to_sorted.is_empty() {
            (0..list.entries.len()).collect()
        } else {
            to_sorted.iter().map(|&i| i as usize).collect()
        };
        for i in order {
            if list.entries[i].is_dir() {
                dirs.push(flat_start + i as i64);
            }
        }
        segments.push(Segment {
            ndx_start,
            len: list.entries.len() as i64,
            flat_start,
            parent,
            to_sorted,
        });
        all.entries.extend(list.entries);
        all.active.extend(list.active);
        all.content_dir.extend(list.content_dir);
        all.io_error |= list.io_error;
        all.user_names = list.user_names;
        all.group_names = list.group_names;
    };
    dec.set_ndx_start(1);
    let first = dec.read_list(r)?;
    add(first, None, &mut all, &mut segments, &mut dirs);

    let tmp = temp_file()?;
    let mut out = BufWriter::new(tmp.try_clone().map_err(|e| Error::file("temp file", e))?);
    let werr = |e| Error::file("writing the flattened batch", e);
    let mut ndxr = NdxReader::new(protocol);
    let mut ndxw = NdxWriter::new(protocol);
    let mut dones = 0usize;
    let mut phase_ends = 0;
    let mut buf = Vec::new();
    let mut lists_done = false;
    loop {
        let ndx = ndxr.read(r)?;
        buf.clear();
        if ndx == NDX_FLIST_EOF {
            lists_done = true;
            continue;
        }
        if ndx <= NDX_FLIST_OFFSET {
            if lists_done {
                return Err(Error::Protocol("file list after the end of lists".into()));
            }
            let dir_ndx = usize::try_from(NDX_FLIST_OFFSET - ndx).unwrap_or(usize::MAX);
            let parent = dirs
                .get(dir_ndx)
                .copied()
                .ok_or_else(|| Error::Protocol(format!("Invalid dir index: {dir_ndx}")))?;
            let last = segments.last().expect("the first list");
            dec.set_ndx_start((last.ndx_start + last.len + 1) as usize);
            let list = dec.read_list(r)?;
            add(list, Some(parent), &mut all, &mut segments, &mut dirs);
            continue;
        }
        if ndx == NDX_DONE {
            dones += 1;
            // An echo for a retired list while later lists are held; else a phase end.
            if dones < segments.len() && phase_ends == 0 {
                continue;
            }
            phase_ends += 1;
            ndxw.put(&mut buf, NDX_DONE);
            out.write_all(&buf).map_err(werr)?;
            if phase_ends == 3 {
                break;
            }
            continue;
        }
        if ndx < 0 {
            return Err(Error::Protocol(format!("Invalid file index: {ndx}")));
        }
        let flat = flat_index(&segments, i64::from(ndx))?;
        ndxw.put(&mut buf, flat);
        let iflags = r.read_u16()?;
        buf.extend_from_slice(&iflags.to_le_bytes());
        if iflags & item::BASIS_TYPE_FOLLOWS != 0 {
            buf.push(r.read_u8()?);
        }
        if iflags & item::XNAME_FOLLOWS != 0 {
            let x = r.read_vstring(4096)?;
            crate::varint::put_vstring(&mut buf, &x)?;
        }
        if xattrs && iflags & item::REPORT_XATTR != 0 {
            let got = crate::xattrs::read_response(r)?;
            crate::xattrs::put_fetched(&mut buf, &got);
        }
        if iflags & item::TRANSFER != 0 {
            let head = SumHead::read(r, digest_len)?;
            head.put(&mut buf);
            out.write_all(&buf).map_err(werr)?;
            buf.clear();
            copy_tokens(r, &mut out, compressed)?;
            let mut sum = vec![0u8; digest_len];
            r.read_all(&mut sum)?;
            out.write_all(&sum).map_err(werr)?;
        } else {
            out.write_all(&buf).map_err(werr)?;
        }
    }
    // The statistics, then the goodbye (its indexes re-encoded for the flat stream).
    buf.clear();
    for _ in 0..5 {
        let v = r.read_varlong(3)?;
        crate::varint::put_varlong(&mut buf, v, 3);
    }
    loop {
        let ndx = match ndxr.read(r) {
            Ok(n) => n,
            Err(Error::UnexpectedEof { .. }) => break,
            Err(e) => return Err(e),
        };
        match ndx {
            NDX_FLIST_EOF => continue,
            NDX_DEL_STATS => {
                ndxw.put(&mut buf, ndx);
                for _ in 0..5 {
                    let v = r.read_varint()?;
                    crate::varint::put_varint(&mut buf, v);
                }
            }
            _ => {
                ndxw.put(&mut buf, ndx);
                break;
            }
        }
    }
    out.write_all(&buf).map_err(werr)?;
    let mut file = out.into_inner().map_err(|e| werr(e.into_error()))?;
    file.rewind().map_err(werr)?;
    Ok((all, BufReader::with_capacity(256 * 1024, file)))
}

fn flat_index(segments: &[Segment], ndx: i64) -> Result<i32> {
    segments
        .iter()
        .find_map(|s| {
            if ndx >= s.ndx_start && ndx < s.ndx_start + s.len {
                let at = ndx - s.ndx_start;
                let at = s.to_sorted.get(at as usize).map_or(at, |&p| i64::from(p));
                Some((s.flat_start + at) as i32)
            } else if ndx == s.ndx_start - 1 {
                s.parent.map(|p| p as i32)
            } else {
                None
            }
        })
        .ok_or_else(|| Error::Protocol(format!("Invalid file index: {ndx}")))
}

/// Copies one file's token stream (plain or zlib-framed) without decoding it.
fn copy_tokens<R: Read, W: Write>(r: &mut R, out: &mut W, compressed: bool) -> Result<()> {
    let werr = |e| Error::file("writing the flattened batch", e);
    let mut data = vec![0u8; 16 * 1024];
    let mut copy = |r: &mut R, out: &mut W, mut n: usize| -> Result<()> {
        while n > 0 {
            let k = n.min(data.len());
            r.read_all(&mut data[..k])?;
            out.write_all(&data[..k]).map_err(werr)?;
            n -= k;
        }
        Ok(())
    };
    if !compressed {
        loop {
            let t = r.read_i32()?;
            out.write_all(&t.to_le_bytes()).map_err(werr)?;
            match t {
                0 => return Ok(()),
                n if n > 0 => copy(r, out, n as usize)?,
                _ => {}
            }
        }
    }
    loop {
        let flag = r.read_u8()?;
        out.write_all(&[flag]).map_err(werr)?;
        let extra = match flag {
            0 => return Ok(()),
            f if f & 0xC0 == 0x40 => {
                let low = r.read_u8()?;
                out.write_all(&[low]).map_err(werr)?;
                copy(r, out, (usize::from(f & 0x3f) << 8) + usize::from(low))?;
                0
            }
            f if f & 0x80 != 0 => {
                if f & 0x40 != 0 {
                    2
                } else {
                    0
                }
            }
            0x20 => 4,
            0x21 => 6,
            f => {
                return Err(Error::Stream(format!(
                    "invalid compressed token flag 0x{f:02x}"
                )))
            }
        };
        copy(r, out, extra)?;
    }
}

/// A read-write file that disappears when closed.
fn temp_file() -> Result<File> {
    let dir = std::env::temp_dir();
    for attempt in 0..100u32 {
        let name = dir.join(format!(
            ".rtsync-batch.{}.{}.{attempt}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        ));
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&name)
        {
            Ok(f) => {
                let _ = std::fs::remove_file(&name);
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::file("creating a temporary file", e)),
        }
    }
    Err(Error::file(
        "creating a temporary file",
        io::Error::from(io::ErrorKind::AlreadyExists),
    ))
}
