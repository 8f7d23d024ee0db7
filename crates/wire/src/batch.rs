//! Batch files: `--write-batch`/`--only-write-batch` record what the receiving side reads
//! from the sender, `--read-batch` replays it into a destination later.
//!
//! The file is, in order: an int32 bitmap of the options that shape the stream
//! ([`stream_flags`]), the int32 protocol version, the compat flags (varint, protocol ≥ 30),
//! the int32 checksum seed, then the sender's data stream exactly as the receiver reads it
//! once demultiplexed (file list, per-file index/flags/sum head/tokens/checksum, phase ends),
//! the sender's statistics (five varlongs) and the final goodbye. A `FILE.sh` script holding
//! an equivalent `--read-batch` command is written next to it. Checksums are MD5 and
//! compression zlib (no negotiated names), whatever the peers could otherwise agree on.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rtsync_engine::Options;

use crate::error::{exit, Error, Result};
use crate::varint::{put_i32, put_varint};

/// Bits of the stream-flags word, in stock's order.
const FLAG_NAMES: [&str; 15] = [
    "--recurse (-r)",
    "--owner (-o)",
    "--group (-g)",
    "--links (-l)",
    "--devices (-D)",
    "--hard-links (-H)",
    "--checksum (-c)",
    "--dirs (-d)",
    "--compress (-z)",
    "--iconv",
    "--acls (-A)",
    "--xattrs (-X)",
    "--inplace",
    "--append",
    "--append-verify",
];

const BIT_ICONV: usize = 9;
const BIT_ACLS: usize = 10;
const BIT_XATTRS: usize = 11;

/// The option values as stock holds them: an explicit `-r` is 2 (`-a`'s is 1), and so is
/// `-d` when not recursing; a batch's bit is 0 or 1, so those differ from a set bit and are
/// "set" again, with the message.
fn flag_values(o: &Options) -> [i32; 15] {
    let recurse = match (o.recursive, o.explicit_recursive) {
        (true, Some(true)) => 2,
        (true, _) => 1,
        _ => 0,
    };
    let dirs = if o.recursive {
        1
    } else if o.dirs {
        2
    } else {
        0
    };
    [
        recurse,
        o.owner.into(),
        o.group.into(),
        o.links.into(),
        o.devices.into(),
        o.hard_links.into(),
        o.checksum.into(),
        dirs,
        o.compress.into(),
        o.iconv.is_some().into(),
        o.acls.into(),
        o.xattrs.into(),
        (o.inplace && !o.append).into(),
        (o.append && !o.append_verify).into(),
        o.append_verify.into(),
    ]
}

/// The stream-flags word a batch written with `o` starts with.
pub fn stream_flags(o: &Options) -> i32 {
    flag_values(o)
        .iter()
        .enumerate()
        .fold(0, |acc, (i, &v)| if v != 0 { acc | 1 << i } else { acc })
}

/// Makes `o` match a batch's stream flags, saying so with `-v` as stock does
/// ("Setting the --owner (-o) option to match the batchfile.").
pub fn apply_stream_flags(o: &mut Options, flags: i32) -> Result<()> {
    let have = flag_values(o);
    for (i, name) in FLAG_NAMES.iter().enumerate() {
        let set = flags & (1 << i) != 0;
        if have[i] == i32::from(set) {
            continue;
        }
        if i == BIT_ICONV {
            return Err(Error::Usage(format!(
                "{} specify the --iconv option to use this batch file.",
                if set { "Please" } else { "Do not" }
            )));
        }
        if o.verbose > 0 {
            println!(
                "{}ing the {name} option to match the batchfile.",
                if set { "Sett" } else { "Clear" }
            );
        }
        match i {
            0 => {
                o.recursive = set;
                o.explicit_recursive = None;
            }
            1 => o.owner = set,
            2 => o.group = set,
            3 => o.links = set,
            4 => o.devices = set,
            5 => o.hard_links = set,
            6 => o.checksum = set,
            7 => o.dirs = set,
            BIT_ACLS => {
                o.acls = set;
                o.perms |= set;
            }
            8 => o.compress = set,
            BIT_XATTRS => o.xattrs = set.into(),
            12 => o.inplace = set,
            13 => {
                o.append = set;
                o.append_verify = false;
            }
            _ => {
                o.append = set;
                o.append_verify = set;
            }
        }
    }
    if o.append {
        o.inplace = true;
    }
    Ok(())
}

/// What follows the stream flags: the values the receiving side agreed with its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub protocol: u32,
    pub compat_flags: i32,
    pub seed: i32,
}

impl Header {
    pub fn put(&self, out: &mut Vec<u8>) {
        put_i32(out, self.protocol as i32);
        if self.protocol >= 30 {
            put_varint(out, self.compat_flags);
        }
        put_i32(out, self.seed);
    }
}

/// A batch file being written; shared by the threads that record into it.
#[derive(Clone)]
pub struct Recorder {
    file: Arc<Mutex<RecorderState>>,
}

struct RecorderState {
    file: io::BufWriter<File>,
    error: Option<io::Error>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorder")
    }
}

impl Recorder {
    /// Records the protocol, compat flags and seed the receiving side agreed.
    pub fn record_header(&self, neg: &crate::negotiate::Negotiated) {
        let mut out = Vec::new();
        Header {
            protocol: neg.protocol,
            compat_flags: neg.compat_flags,
            seed: neg.seed,
        }
        .put(&mut out);
        self.record(&out);
    }

    fn new(file: File) -> Recorder {
        Recorder {
            file: Arc::new(Mutex::new(RecorderState {
                file: io::BufWriter::with_capacity(256 * 1024, file),
                error: None,
            })),
        }
    }

    /// Appends bytes; the first failure is kept and reported by [`Recorder::finish`].
    pub fn record(&self, bytes: &[u8]) {
        let mut st = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if st.error.is_none() {
            if let Err(e) = st.file.write_all(bytes) {
                st.error = Some(e);
            }
        }
    }

    /// Flushes the file; reports the first write error.
    pub fn finish(&self) -> Result<()> {
        let mut st = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let flushed = st.file.flush();
        match st.error.take() {
            Some(e) => Err(Error::file("Batch file write error", e)),
            None => flushed.map_err(|e| Error::file("Batch file write error", e)),
        }
    }
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.record(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn shown(name: &Path) -> String {
    let abs = if name.is_absolute() {
        name.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(name))
            .unwrap_or_else(|_| name.to_path_buf())
    };
    format!("\"{}\"", abs.display())
}

fn open_error(name: &Path, e: &io::Error, code: i32) -> Error {
    if rtsync_oppath::is_refusal(e) {
        eprintln!("{}", rtsync_oppath::REFUSAL);
    }
    Error::BatchOpen {
        message: format!(
            "Batch file {} open error: {} ({})",
            shown(name),
            crate::client::strerror(e),
            e.raw_os_error().unwrap_or(0)
        ),
        code,
    }
}

/// Opens `NAME.sh` and `NAME` for writing (operator paths: another user's symlink is not
/// followed), and records the stream flags. Returns the recorder and the script file.
pub fn create(name: &OsStr, o: &Options) -> Result<(Recorder, File)> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
    let mut sh_name = name.to_os_string();
    sh_name.push(".sh");
    let sh = rtsync_oppath::open(Path::new(&sh_name), flags, 0o700)
        .map_err(|e| open_error(Path::new(&sh_name), &e, exit::FILE_SELECT))?;
    let batch = rtsync_oppath::open(Path::new(name), flags, 0o600)
        .map_err(|e| open_error(Path::new(name), &e, exit::FILE_IO))?;
    let rec = Recorder::new(File::from(batch));
    rec.record(&stream_flags(o).to_le_bytes());
    Ok((rec, File::from(sh)))
}

/// Opens a batch for reading (`-` is standard input); only a regular file is accepted.
pub fn open_read(name: &OsStr) -> Result<Box<dyn Read + Send>> {
    if name == "-" {
        return Ok(Box::new(io::stdin()));
    }
    let fd = rtsync_oppath::open(Path::new(name), libc::O_RDONLY, 0)
        .map_err(|e| open_error(Path::new(name), &e, exit::FILE_IO))?;
    let file = File::from(fd);
    if !file.metadata().map(|m| m.is_file()).unwrap_or(true) {
        return Err(Error::BatchOpen {
            message: format!(
                "Batch file {} is not a regular file",
                shown(Path::new(name))
            ),
            code: exit::FILE_IO,
        });
    }
    Ok(Box::new(file))
}

/// Quotes one argument for the script: a plain `--opt=` prefix stays bare, everything else
/// is single-quoted (an embedded `'` becomes `'\''`).
fn put_arg(out: &mut Vec<u8>, arg: &[u8]) {
    let mut rest = arg;
    if arg.first() == Some(&b'-') {
        if let Some(eq) = arg.iter().position(|&b| b == b'=') {
            if arg[..eq]
                .iter()
                .all(|&b| b == b'-' || b == b'_' || b.is_ascii_alphanumeric())
            {
                out.extend_from_slice(&arg[..=eq]);
                rest = &arg[eq + 1..];
            }
        }
    }
    out.push(b'\'');
    for &b in rest {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
}

/// The path part of a destination argument (`host:path`, `host::path`, `rsync://h/path`).
fn dest_path(arg: &[u8]) -> &[u8] {
    let text = String::from_utf8_lossy(arg);
    match crate::client::parse_remote(&text) {
        Some(_) => {
            if let Some(rest) = arg.strip_prefix(b"rsync://") {
                let slash = rest
                    .iter()
                    .position(|&b| b == b'/')
                    .map_or(rest.len(), |p| p + 1);
                &rest[slash..]
            } else {
                let colon = arg.iter().position(|&b| b == b':').unwrap_or(0);
                let rest = &arg[colon + 1..];
                rest.strip_prefix(b":").unwrap_or(rest)
            }
        }
        None => arg,
    }
}

/// The text of `NAME.sh`: the command line with the batch option turned into
/// `--read-batch`, filter options replaced by the rules in a here-document, the sources
/// left out and the destination overridable by the script's first argument.
pub fn script(raw: &[OsString], o: &Options, rules: &[Vec<u8>]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    put_arg(
        &mut out,
        raw.first().map_or(&b"rsync"[..], |a| a.as_bytes()),
    );
    if !rules.is_empty() {
        out.extend_from_slice(b" --filter=");
        put_arg(&mut out, b"._-");
    }
    // The non-option arguments, found from the end backwards, are left out.
    let mut keep: Vec<Option<&[u8]>> = raw.iter().map(|a| Some(a.as_bytes())).collect();
    let mut j = o.args.len();
    let mut i = raw.len();
    while i > 1 && j > 0 {
        i -= 1;
        if raw[i] == o.args[j - 1] {
            keep[i] = None;
            j -= 1;
        }
    }
    let mut i = 1;
    while i < keep.len() {
        let Some(p) = keep[i] else {
            i += 1;
            continue;
        };
        i += 1;
        if [
            &b"--files-from"[..],
            b"--filter",
            b"--include",
            b"--exclude",
        ]
        .iter()
        .any(|pre| p.starts_with(pre))
        {
            if !p.contains(&b'=') {
                i += 1;
            }
            continue;
        }
        if p == b"-f" {
            i += 1;
            continue;
        }
        let batch_opt = [&b"--write-batch"[..], b"--only-write-batch"]
            .into_iter()
            .find(|pre| p.starts_with(pre));
        if let Some(pre) = batch_opt {
            out.extend_from_slice(b" --read-batch");
            if p.get(pre.len()) == Some(&b'=') {
                out.push(b'=');
                put_arg(&mut out, &p[pre.len() + 1..]);
            }
        } else {
            out.push(b' ');
            put_arg(&mut out, p);
        }
    }
    out.extend_from_slice(b" ${1:-");
    put_arg(
        &mut out,
        dest_path(o.args.last().map_or(&b""[..], |a| a.as_bytes())),
    );
    out.push(b'}');
    if !rules.is_empty() {
        out.extend_from_slice(b" <<'#E#'\n");
        for r in rules {
            if r.contains(&b'\n') {
                return Err(Error::Usage(
                    "cannot write a filter rule containing a newline to the batch replay script"
                        .into(),
                ));
            }
            out.extend_from_slice(r);
            out.push(if o.from0 { 0 } else { b'\n' });
        }
        if o.from0 {
            out.extend_from_slice(b";\n");
        }
        out.extend_from_slice(b"#E#");
    }
    out.push(b'\n');
    Ok(out)
}

/// Writes `NAME.sh` (see [`script`]).
pub fn write_script(mut sh: File, raw: &[OsString], o: &Options, rules: &[Vec<u8>]) -> Result<()> {
    let text = script(raw, o, rules)?;
    sh.write_all(&text).map_err(|e| {
        Error::file(
            format!(
                "Batch file {}.sh write error",
                o.write_batch
                    .as_deref()
                    .unwrap_or_default()
                    .to_string_lossy()
            ),
            e,
        )
    })
}

/// The rules the script's here-document carries: the client's whole filter list.
pub fn script_rules(o: &Options) -> Result<Vec<Vec<u8>>> {
    let filters = crate::filters::client_filters(o)?;
    let ctx = rtsync_filter::wire::ClientContext {
        am_sender: false,
        protocol: crate::negotiate::MAX_PROTOCOL,
        delete: true,
        delete_excluded: o.delete_excluded,
        prune_empty_dirs: o.prune_empty_dirs,
    };
    let rules = rtsync_filter::wire::client_rules(&filters.set, &ctx)
        .map_err(|e| Error::Usage(e.to_string()))?;
    Ok(rules.unwrap_or_default())
}

/// `--read-batch`: replays a batch into the destination named last in `o.args`.
pub fn replay(o: &Options) -> Result<crate::client::Outcome> {
    use crate::varint::ReadWire;
    let name = o.read_batch.clone().unwrap_or_default();
    let mut reader: io::BufReader<Box<dyn Read + Send>> =
        io::BufReader::with_capacity(256 * 1024, open_read(&name)?);
    let mut o = o.clone();
    let flags = reader.read_i32()?;
    apply_stream_flags(&mut o, flags)?;
    let protocol = reader.read_i32()?;
    let max = crate::negotiate::MAX_PROTOCOL as i32;
    if protocol > max {
        return Err(Error::BatchOpen {
            message: format!(
                "The protocol version in the batch file is too new ({protocol} > {max})."
            ),
            code: exit::PROTOCOL,
        });
    }
    if protocol < crate::negotiate::MIN_PROTOCOL as i32 {
        return Err(Error::Unsupported(format!(
            "the batch file uses protocol {protocol}; rtsync reads {} or newer",
            crate::negotiate::MIN_PROTOCOL
        )));
    }
    let compat_flags = reader.read_varint()?;
    let seed = reader.read_i32()?;
    let neg = crate::negotiate::Negotiated {
        protocol: protocol as u32,
        compat_flags,
        checksum: crate::checksum::ChecksumAlgo::Md5,
        file_checksum: crate::checksum::ChecksumAlgo::Md5,
        compression: o.compress.then_some(crate::negotiate::Compression::Zlib),
        seed,
    };
    let dest = o.args.last().map(std::path::PathBuf::from);
    let (reader, neg, list) = if neg.inc_recurse() {
        // Incremental recursion: replay the equivalent stream without it.
        let fopts = crate::client::flist_options(&o, &neg);
        let (list, flat) = crate::batch_inc::flatten(
            &mut reader,
            fopts,
            neg.checksum.digest_len(),
            neg.compression.is_some(),
        )
        .map_err(truncated)?;
        let neg = crate::negotiate::Negotiated {
            compat_flags: neg.compat_flags & !crate::negotiate::cf::INC_RECURSE,
            ..neg
        };
        let flat: Box<dyn Read + Send> = Box::new(flat);
        (io::BufReader::new(flat), neg, Some(list))
    } else {
        (reader, neg, None)
    };
    let conn = crate::connect::Connection {
        reader,
        writer: Box::new(io::sink()),
        closer: crate::connect::Closer::None,
    };
    crate::client::transfer_as_receiver(&o, conn, neg, dest, None, list, None).map_err(truncated)
}

/// A batch that ends early says so.
fn truncated(e: Error) -> Error {
    match e {
        Error::UnexpectedEof { .. } => Error::BatchOpen {
            message: "rsync: connection unexpectedly closed (the batch file ends early) [Receiver]"
                .into(),
            code: exit::STREAM_IO,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(argv: &[&str]) -> Options {
        let v: Vec<OsString> = argv.iter().map(OsString::from).collect();
        Options::parse(&v).unwrap()
    }

    #[test]
    fn stream_flags_of_archive() {
        // -a: recurse, owner, group, links, devices, dirs (stock writes 0x9f).
        assert_eq!(stream_flags(&opts(&["-a", "s/", "d/"])), 0x9f);
        assert_eq!(stream_flags(&opts(&["-rcz", "s/", "d/"])), 0x1c1);
        assert_eq!(stream_flags(&opts(&["--append", "s", "d"])), 1 << 13);
        assert_eq!(stream_flags(&opts(&["--append-verify", "s", "d"])), 1 << 14);
        assert_eq!(stream_flags(&opts(&["--inplace", "s", "d"])), 1 << 12);
        assert_eq!(stream_flags(&opts(&["-aX", "s/", "d/"])), 0x9f | 1 << 11);
    }

    #[test]
    fn flags_round_trip_through_apply() {
        let mut o = opts(&["x"]);
        apply_stream_flags(&mut o, 0x9f | 1 << 8).unwrap();
        assert_eq!(stream_flags(&o), 0x9f | 1 << 8);
        assert!(apply_stream_flags(&mut o, 1 << 9).is_err());
    }

    #[test]
    fn script_quotes_like_stock() {
        let raw: Vec<OsString> = [
            "/bin/rsync",
            "-a",
            "--write-batch=B",
            "src/",
            "--",
            "-x$(>P)=y/",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let o = Options::parse(&raw[1..]).unwrap();
        let s = String::from_utf8(script(&raw, &o, &[]).unwrap()).unwrap();
        assert_eq!(
            s,
            "'/bin/rsync' '-a' --read-batch='B' '--' ${1:-'-x$(>P)=y/'}\n"
        );
        let raw: Vec<OsString> = [
            "rsync",
            "--only-write-batch",
            "it's",
            "-f",
            "- x",
            "a",
            "h::m/d",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let o = Options::parse(&raw[1..]).unwrap();
        let rules = vec![b"- x".to_vec()];
        let s = String::from_utf8(script(&raw, &o, &rules).unwrap()).unwrap();
        assert_eq!(
            s,
            "'rsync' --filter='._-' --read-batch 'it'\\''s' ${1:-'m/d'} <<'#E#'\n- x\n#E#\n"
        );
        assert!(script(&raw, &o, &[b"a\n#E#".to_vec()]).is_err());
    }
}
