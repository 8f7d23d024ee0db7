//! Output as rsync prints it: item lines, messages, statistics and the closing summary.

use crate::itemize::Itemize;
use crate::options::Options;
use std::io::{self, Write};

/// rsync's exit codes.
pub mod exit {
    pub const OK: i32 = 0;
    pub const SYNTAX: i32 = 1;
    pub const PROTOCOL: i32 = 2;
    pub const FILE_SELECT: i32 = 3;
    pub const UNSUPPORTED: i32 = 4;
    pub const START_CLIENT: i32 = 5;
    pub const SOCKET_IO: i32 = 10;
    pub const FILE_IO: i32 = 11;
    pub const STREAM_IO: i32 = 12;
    pub const MESSAGE_IO: i32 = 13;
    pub const IPC: i32 = 14;
    pub const SIGNAL: i32 = 20;
    pub const DEL_LIMIT: i32 = 25;
    pub const PARTIAL: i32 = 23;
    pub const VANISHED: i32 = 24;
    pub const TIMEOUT: i32 = 30;
    pub const CONTIMEOUT: i32 = 35;
    pub const CMD_NOT_FOUND: i32 = 127;
    pub const CMD_FAILED: i32 = 255;
}

/// The closing `rsync error: …` line for an exit code, as stock rsync words it.
pub fn exit_message(code: i32) -> &'static str {
    match code {
        exit::SYNTAX => "syntax or usage error",
        exit::PROTOCOL => "protocol incompatibility",
        exit::FILE_SELECT => "errors selecting input/output files, dirs",
        exit::UNSUPPORTED => "requested action not supported",
        exit::START_CLIENT => "error starting client-server protocol",
        exit::SOCKET_IO => "error in socket IO",
        exit::FILE_IO => "error in file IO",
        exit::STREAM_IO => "error in rsync protocol data stream",
        exit::MESSAGE_IO => "errors with program diagnostics",
        exit::IPC => "error in IPC code",
        exit::SIGNAL => "received SIGINT, SIGTERM, or SIGHUP",
        exit::PARTIAL => "some files/attrs were not transferred (see previous errors)",
        exit::VANISHED => "some files vanished before they could be transferred",
        exit::DEL_LIMIT => "the --max-delete limit stopped deletions",
        exit::TIMEOUT => "timeout in data send/receive",
        exit::CONTIMEOUT => "timeout waiting for daemon connection",
        exit::CMD_NOT_FOUND => "remote command not found",
        exit::CMD_FAILED => "remote command failed",
        _ => "unexplained error",
    }
}

/// Counters behind `--stats` and the closing summary.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub files: [u64; 5],
    pub created: [u64; 5],
    pub deleted: [u64; 5],
    pub transferred: u64,
    pub total_size: u64,
    pub transferred_size: u64,
    pub literal: u64,
    pub matched: u64,
    pub flist_size: u64,
    pub sent: u64,
    pub received: u64,
}

/// Index into the per-kind counters: reg, dir, link, dev, special.
pub fn kind_slot(kind: rtsync_tree::FileKind) -> usize {
    use rtsync_tree::FileKind::*;
    match kind {
        Regular => 0,
        Directory => 1,
        Symlink => 2,
        BlockDevice | CharDevice => 3,
        Fifo | Socket => 4,
    }
}

/// Formats a number as rsync does with its default `--human-readable` level 1 (digit groups).
pub fn commas(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A number as rsync prints it at `-h` level `level` (0: plain, 1: groups, 2+: K/M/G units).
pub fn human(n: u64, level: u32) -> String {
    match level {
        0 => n.to_string(),
        1 => commas(n),
        _ => {
            let units = ['K', 'M', 'G', 'T', 'P'];
            let mult = if level == 2 { 1000.0 } else { 1024.0 };
            if (n as f64) < mult {
                return n.to_string();
            }
            let mut v = n as f64;
            let mut unit = 0;
            while v >= mult && unit < units.len() {
                v /= mult;
                unit += 1;
            }
            format!("{:.2}{}", v, units[unit - 1])
        }
    }
}

fn kinds(counts: &[u64; 5], level: u32) -> String {
    let total: u64 = counts.iter().sum();
    let names = ["reg", "dir", "link", "dev", "special"];
    let parts: Vec<String> = names
        .iter()
        .zip(counts)
        .filter(|(_, &c)| c > 0)
        .map(|(n, &c)| format!("{n}: {}", human(c, level)))
        .collect();
    if parts.is_empty() {
        human(total, level)
    } else {
        format!("{} ({})", human(total, level), parts.join(", "))
    }
}

/// Where a transfer stands, for `--progress`.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Files transferred so far, this one included (`xfr#`).
    pub transferred: u64,
    /// This file's position in the file list.
    pub index: u64,
    /// Entries listed so far.
    pub listed: u64,
}

/// Writes item lines and messages to stdout, errors to stderr.
pub struct Reporter {
    out: io::BufWriter<io::Stdout>,
    /// `-i` given: lines start with the itemize string.
    itemize: u32,
    verbose: u32,
    /// `-v` or `--progress`: names of transferred items are listed.
    names: bool,
    /// `--progress`: a line after each transferred file.
    progress: bool,
    /// `-8`: high-bit bytes of names are printed as they are.
    eight_bit: bool,
    quiet: bool,
    /// A user `--out-format`.
    format: Option<String>,
    pub human: u32,
    /// `--log-file`: where item lines and the summary are also logged.
    log: Option<LogFile>,
}

/// An open `--log-file`: each line is `YYYY/MM/DD HH:MM:SS [PID] TEXT`, as rsync writes it.
struct LogFile {
    file: std::fs::File,
    /// `--log-file-format` (rsync's default: `%i %n%L`; empty: no item lines).
    format: String,
    pid: u32,
}

impl LogFile {
    fn open(opts: &Options) -> Option<LogFile> {
        let path = opts.log_file.as_ref()?;
        // An operator path: our own and root's symlinks are followed, nobody else's.
        let opened = rtsync_oppath::open(
            std::path::Path::new(path),
            libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND,
            0o666,
        )
        .map(std::fs::File::from);
        if let Err(e) = &opened {
            if rtsync_oppath::is_refusal(e) {
                eprintln!("{}", rtsync_oppath::REFUSAL);
            }
        }
        match opened {
            Ok(file) => Some(LogFile {
                file,
                format: opts
                    .log_file_format
                    .clone()
                    .unwrap_or_else(|| "%i %n%L".into()),
                pid: std::process::id(),
            }),
            Err(e) => {
                eprintln!(
                    "rsync: failed to open log-file {}: {e}",
                    std::path::Path::new(path).display()
                );
                None
            }
        }
    }

    fn line(&mut self, text: &[u8]) {
        let mut line = format!("{} [{}] ", log_time(), self.pid).into_bytes();
        line.extend_from_slice(text);
        line.push(b'\n');
        let _ = self.file.write_all(&line);
    }
}

/// The local time as rsync's log lines show it: `2024/01/31 13:45:00`.
fn log_time() -> String {
    // SAFETY: time(NULL) and localtime_r with valid pointers have no other preconditions.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        format!(
            "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        )
    }
}

impl Reporter {
    pub fn new(opts: &Options) -> Reporter {
        Reporter {
            out: io::BufWriter::with_capacity(64 * 1024, io::stdout()),
            itemize: opts.itemize,
            verbose: opts.verbose,
            names: opts.verbose > 0 || opts.progress,
            progress: opts.progress && !opts.quiet,
            eight_bit: opts.eight_bit_output,
            quiet: opts.quiet,
            format: opts.out_format.clone(),
            human: if opts.human_readable > 0 {
                opts.human_readable + 1
            } else {
                1
            },
            log: LogFile::open(opts),
        }
    }

    /// A line for the `--log-file` only (such as `building file list`).
    pub fn log_only(&mut self, text: &str) {
        if let Some(log) = &mut self.log {
            log.line(text.as_bytes());
        }
    }

    /// Logs an item to the `--log-file` when it changed, in the log's own format. Names are
    /// always escaped there: a name's control characters must not reach whoever reads the log.
    fn log_item(&mut self, it: &Itemize, name: &[u8], suffix: &[u8]) {
        let Some(log) = &mut self.log else {
            return;
        };
        // Items are selected as for stdout: without `%i` there, attribute-only changes of
        // non-directories are not itemized at all (rsync's generator reports them only then).
        let stdout_has_i =
            self.itemize > 0 || self.format.as_deref().is_some_and(|f| format_has(f, b'i'));
        let selected = if stdout_has_i {
            it.has_changes()
        } else {
            matches!(it.update, b'>' | b'<' | b'c' | b'h') || (it.kind == b'd' && it.has_changes())
        };
        if log.format.is_empty() || !selected {
            return;
        }
        let mut line = Vec::with_capacity(name.len() + 16);
        format_line(&mut line, &log.format, it, name, suffix, false);
        log.line(&line);
    }

    /// Whether item lines are printed at all.
    pub fn lists_items(&self) -> bool {
        !self.quiet && (self.itemize > 0 || self.names || self.format.is_some())
    }

    /// Prints one item line if the item qualifies: `-i`/`-v` show changed items, `-ii`/`-vv` all.
    pub fn item(&mut self, it: &Itemize, name: &[u8], suffix: &[u8]) {
        self.log_item(it, name, suffix);
        if !self.lists_items() {
            return;
        }
        let shown =
            if self.itemize > 0 || self.format.as_deref().is_some_and(|f| format_has(f, b'i')) {
                it.has_changes() || self.itemize > 1 || self.verbose > 1
            } else {
                // Without %i, rsync names transfers, local changes (links, devices) and changed
                // directories; attribute-only changes of other items need -vv.
                let changed = matches!(it.update, b'>' | b'<' | b'c' | b'h')
                    || (it.kind == b'd' && it.has_changes());
                if !changed && self.verbose > 1 && it.kind != b'd' {
                    // -vv names what needed nothing: `NAME is uptodate` (not directories).
                    let mut line = escape_name_with(name, self.eight_bit);
                    line.extend_from_slice(b" is uptodate\n");
                    let _ = self.out.write_all(&line);
                    return;
                }
                changed
            };
        if !shown {
            return;
        }
        let mut line = Vec::with_capacity(name.len() + 16);
        match &self.format {
            Some(fmt) => format_line(&mut line, fmt, it, name, suffix, self.eight_bit),
            None => {
                if self.itemize > 0 {
                    line.extend_from_slice(it.render().as_bytes());
                    line.push(b' ');
                }
                line.extend_from_slice(&escape_name_with(name, self.eight_bit));
                line.extend_from_slice(suffix);
            }
        }
        line.push(b'\n');
        let _ = self.out.write_all(&line);
    }

    /// A deletion line: `*deleting   NAME` with `-i`, `deleting NAME` with `-v`.
    pub fn deleting(&mut self, name: &[u8]) {
        if let Some(log) = &mut self.log {
            let mut line = if format_has(&log.format, b'i') {
                b"*deleting   ".to_vec()
            } else {
                b"deleting ".to_vec()
            };
            line.extend_from_slice(&escape_name_with(name, false));
            log.line(&line);
        }
        if !self.lists_items() {
            return;
        }
        let mut line = Vec::new();
        if self.itemize > 0 || self.format.as_deref().is_some_and(|f| format_has(f, b'i')) {
            line.extend_from_slice(b"*deleting   ");
        } else {
            line.extend_from_slice(b"deleting ");
        }
        line.extend_from_slice(&escape_name_with(name, self.eight_bit));
        line.push(b'\n');
        let _ = self.out.write_all(&line);
    }

    /// `--progress`: the closing progress line of a transferred file, as rsync prints it once
    /// the file is complete: `\r      SIZE 100%  RATE  H:MM:SS (xfr#N, to-chk=LEFT/LISTED)`.
    pub fn progress(&mut self, size: u64, elapsed: std::time::Duration, counts: Progress) {
        if !self.progress {
            return;
        }
        let millis = (elapsed.as_millis() as u64).max(1);
        let mut rate = size as f64 * 1000.0 / millis as f64 / 1024.0;
        let units = if rate > 1024.0 * 1024.0 {
            rate /= 1024.0 * 1024.0;
            "GB/s"
        } else if rate > 1024.0 {
            rate /= 1024.0;
            "MB/s"
        } else {
            "kB/s"
        };
        let secs = millis / 1000;
        let _ = writeln!(
            self.out,
            "\r{:>15} 100% {rate:>7.2}{units} {:>4}:{:02}:{:02} (xfr#{}, to-chk={}/{})",
            human(size, self.human),
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            counts.transferred,
            counts.listed.saturating_sub(counts.index + 1),
            counts.listed,
        );
    }

    /// An informational line on stdout (unless `-q`).
    pub fn info(&mut self, text: &str) {
        if !self.quiet {
            let _ = writeln!(self.out, "{text}");
        }
    }

    /// An informational line shown only with `-v`.
    pub fn verbose_info(&mut self, text: &str) {
        if self.verbose > 0 && !self.quiet {
            let _ = writeln!(self.out, "{text}");
        }
    }

    /// An error line on stderr; stdout is flushed first so the two stay in order on a terminal.
    pub fn error(&mut self, text: &str) {
        let _ = self.out.flush();
        eprintln!("{text}");
    }

    pub fn write_raw(&mut self, bytes: &[u8]) {
        let _ = self.out.write_all(bytes);
    }

    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }

    /// `--stats` block.
    pub fn stats(&mut self, s: &Stats, elapsed_flist: f64) {
        let h = self.human;
        let text = format!(
            "\nNumber of files: {}\nNumber of created files: {}\nNumber of deleted files: {}\n\
             Number of regular files transferred: {}\nTotal file size: {} bytes\n\
             Total transferred file size: {} bytes\nLiteral data: {} bytes\nMatched data: {} bytes\n\
             File list size: {}\nFile list generation time: {:.3} seconds\n\
             File list transfer time: 0.000 seconds\nTotal bytes sent: {}\nTotal bytes received: {}\n",
            kinds(&s.files, h),
            kinds(&s.created, h),
            kinds(&s.deleted, h),
            human(s.transferred, h),
            human(s.total_size, h),
            human(s.transferred_size, h),
            human(s.literal, h),
            human(s.matched, h),
            human(s.flist_size, h),
            elapsed_flist,
            human(s.sent, h),
            human(s.received, h),
        );
        let _ = self.out.write_all(text.as_bytes());
    }

    /// The closing `sent … received …` summary of `-v`/`--stats`.
    pub fn summary(&mut self, s: &Stats, seconds: f64, dry_run: bool) {
        let h = self.human;
        let rate = (s.sent + s.received) as f64 / seconds.max(0.5);
        let speedup = if s.sent + s.received == 0 {
            0.0
        } else {
            s.total_size as f64 / (s.sent + s.received) as f64
        };
        let rate_text = if h > 1 {
            human(rate as u64, h)
        } else {
            format!(
                "{}.{:02}",
                commas(rate as u64),
                ((rate * 100.0) as u64) % 100
            )
        };
        let sent = format!(
            "sent {} bytes  received {} bytes  {} bytes/sec",
            human(s.sent, h),
            human(s.received, h),
            rate_text
        );
        let total = format!(
            "total size is {}  speedup is {:.2}{}",
            human(s.total_size, h),
            speedup,
            if dry_run { " (DRY RUN)" } else { "" }
        );
        let _ = write!(self.out, "\n{sent}\n{total}\n");
        self.log_only(&sent);
        self.log_only(&total);
    }
}

/// `ls -l`-style permission string of a mode, as rsync's `--list-only` prints it.
pub fn mode_string(mode: u32, kind: rtsync_tree::FileKind) -> String {
    use rtsync_tree::FileKind::*;
    let mut s = String::with_capacity(10);
    s.push(match kind {
        Directory => 'd',
        Symlink => 'l',
        BlockDevice => 'b',
        CharDevice => 'c',
        Fifo => 'p',
        Socket => 's',
        Regular => '-',
    });
    let bit = |b: u32, c: char| if mode & b != 0 { c } else { '-' };
    let special = |x: bool, set: bool, lower: char, upper: char| match (x, set) {
        (true, true) => lower,
        (false, true) => upper,
        (true, false) => 'x',
        (false, false) => '-',
    };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(mode & 0o100 != 0, mode & 0o4000 != 0, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(mode & 0o010 != 0, mode & 0o2000 != 0, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(mode & 0o001 != 0, mode & 0o1000 != 0, 't', 'T'));
    s
}

/// A time as rsync's listings show it, in local time: `YYYY/MM/DD hh:mm:ss`.
pub fn list_time(secs: i64) -> String {
    // SAFETY: localtime_r only writes into `tm`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let t = secs as libc::time_t;
    unsafe { libc::localtime_r(&t, &mut tm) };
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// A `--list-only` line as rsync prints it (without the newline): mode string, size at `-h`
/// level `level`, mtime, escaped name, and ` -> target` for symlinks when `links`.
pub fn list_line(e: &rtsync_tree::FileEntry, level: u32, links: bool) -> Vec<u8> {
    let mut line = format!(
        "{} {:>14} {} ",
        mode_string(e.mode, e.kind),
        human(e.size, level),
        list_time(e.mtime)
    )
    .into_bytes();
    line.extend_from_slice(&escape_name(&e.name));
    if links {
        if let Some(t) = &e.link_target {
            line.extend_from_slice(b" -> ");
            line.extend_from_slice(t);
        }
    }
    line
}

/// rsync shows unprintable bytes in names as `\#ooo` escapes: control characters other than
/// tab, DEL, and bytes that are not part of valid UTF-8.
pub fn escape_name(name: &[u8]) -> Vec<u8> {
    escape_name_with(name, false)
}

/// [`escape_name`]; with `eight_bit` (`-8`), bytes with the high bit set pass through as they are.
pub fn escape_name_with(name: &[u8], eight_bit: bool) -> Vec<u8> {
    let unprintable = |c: u8| (c < 0x20 && c != b'\t') || c == 0x7f;
    if !name.iter().any(|&c| unprintable(c) || c >= 0x80) {
        return name.to_vec();
    }
    let mut out = Vec::with_capacity(name.len() + 8);
    for chunk in name.utf8_chunks() {
        for ch in chunk.valid().chars() {
            if ch.is_ascii() && unprintable(ch as u8) {
                out.extend_from_slice(format!("\\#{:03o}", ch as u8).as_bytes());
            } else {
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
        }
        for &c in chunk.invalid() {
            if eight_bit {
                out.push(c);
            } else {
                out.extend_from_slice(format!("\\#{:03o}", c).as_bytes());
            }
        }
    }
    out
}

/// Whether the `--out-format`/`--log-file-format` string `fmt` uses the escape `%esc`
/// (past flags and a width such as `%-10n`); `%%` is a literal percent, not an escape.
pub fn format_has(fmt: &str, esc: u8) -> bool {
    let b = fmt.as_bytes();
    let mut i = 0;
    while let Some(off) = b[i..].iter().position(|&c| c == b'%') {
        i += off + 1;
        while i < b.len() && (b[i] == b'\'' || b[i] == b'-' || b[i].is_ascii_digit()) {
            i += 1;
        }
        match b.get(i) {
            None => return false,
            Some(&c) if c == esc => return true,
            Some(b'%') => i += 1,
            Some(_) => {}
        }
    }
    false
}

/// The subset of `--out-format` escapes the local engine knows: `%i %n %L %f %l`.
fn format_line(
    line: &mut Vec<u8>,
    fmt: &str,
    it: &Itemize,
    name: &[u8],
    suffix: &[u8],
    eight_bit: bool,
) {
    let mut chars = fmt.bytes().peekable();
    while let Some(c) = chars.next() {
        if c != b'%' {
            line.push(c);
            continue;
        }
        // Skip width and flags like `%-10n`.
        while let Some(&d) = chars.peek() {
            if d == b'-' || d.is_ascii_digit() || d == b'\'' {
                chars.next();
            } else {
                break;
            }
        }
        match chars.next() {
            Some(b'i') => line.extend_from_slice(it.render().as_bytes()),
            Some(b'n') => line.extend_from_slice(&escape_name_with(name, eight_bit)),
            Some(b'f') => line.extend_from_slice(&escape_name_with(name, eight_bit)),
            Some(b'L') => line.extend_from_slice(suffix),
            Some(b'%') => line.push(b'%'),
            Some(other) => {
                line.push(b'%');
                line.push(other);
            }
            None => line.push(b'%'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_escapes_skip_literal_percent() {
        assert!(format_has("%i %n", b'i'));
        assert!(format_has("%-10i", b'i'));
        assert!(!format_has("%%i %n", b'i'));
        assert!(format_has("%%%i", b'i'));
        assert!(!format_has("100%", b'i'));
        assert!(format_has("%%i %o", b'o'));
    }

    #[test]
    fn digit_groups() {
        assert_eq!(commas(0), "0");
        assert_eq!(commas(999), "999");
        assert_eq!(commas(1000), "1,000");
        assert_eq!(commas(1234567), "1,234,567");
    }

    #[test]
    fn escapes_control_characters() {
        assert_eq!(escape_name(b"a\nb"), b"a\\#012b".to_vec());
    }
}
