//! Output as rsync prints it: item lines, messages, statistics and the closing summary.

use crate::itemize::Itemize;
use crate::options::Options;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// A file-list line is open on stdout (`building file list ... ` before its `done`): the
/// next message ends it first, on the stream the message goes to (stock's
/// `output_needs_newline`). Shared by every printer of the process.
static LIST_LINE_OPEN: AtomicBool = AtomicBool::new(false);

/// Ends an open file-list line before a message goes to stderr (`to_stderr`) or stdout.
pub fn end_open_list_line(to_stderr: bool) {
    if LIST_LINE_OPEN.swap(false, Ordering::Relaxed) {
        if to_stderr {
            let _ = io::stderr().write_all(b"\n");
        } else {
            let mut out = io::stdout().lock();
            let _ = out.write_all(b"\n").and_then(|_| out.flush());
        }
    }
}

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
    pub const CRASHED: i32 = 15;
    pub const TERMINATED: i32 = 16;
    pub const SIGNAL1: i32 = 19;
    pub const WAITCHILD: i32 = 21;
    pub const MALLOC: i32 = 22;
    pub const CMD_FAILED: i32 = 124;
    pub const CMD_KILLED: i32 = 125;
    pub const CMD_RUN: i32 = 126;
    pub const CMD_NOT_FOUND: i32 = 127;
    /// ssh's own failure (no name of stock's: "unexplained error").
    pub const SHELL_FAILED: i32 = 255;
}

/// The closing line stock prints for exit code `code`, from `at` (its source place) in the
/// process `role`: `rsync error: WHAT (code N) at PLACE [ROLE=VERSION]` (`rsync warning:`
/// for vanished files).
pub fn error_line(code: i32, at: &str, role: &str) -> String {
    let word = if code == exit::VANISHED {
        "warning"
    } else {
        "error"
    };
    format!(
        "rsync {word}: {} (code {code}) at {at} [{role}={}]",
        exit_message(code),
        crate::RSYNC_VERSION
    )
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
        exit::CRASHED => "sibling process crashed",
        exit::TERMINATED => "sibling process terminated abnormally",
        exit::SIGNAL1 => "received SIGUSR1",
        exit::WAITCHILD => "waitpid() failed",
        exit::MALLOC => "error allocating core memory buffers",
        exit::CMD_FAILED => "remote shell failed",
        exit::CMD_KILLED => "remote shell killed",
        exit::CMD_RUN => "remote command could not be run",
        exit::CMD_NOT_FOUND => "remote command not found",
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
    /// The sender's match counters (`--debug=deltasum`): blocks matched, offsets whose weak
    /// sum hit, strong sums that then differed.
    pub matches: u64,
    pub hash_hits: u64,
    pub false_alarms: u64,
}

impl Stats {
    /// Adds one file's delta: its literal and matched bytes and the matcher's counters.
    pub fn add_delta(&mut self, ms: &rtsync_delta::MatchStats) {
        self.literal += ms.literal_bytes;
        self.matched += ms.matched_bytes;
        self.matches += ms.matches;
        self.hash_hits += ms.hash_hits;
        self.false_alarms += ms.false_alarms;
    }

    /// rsync's `--debug=deltasum` closing line of the sender.
    pub fn match_report(&self) -> String {
        format!(
            "total: matches={}  hash_hits={}  false_alarms={} data={}",
            self.matches, self.hash_hits, self.false_alarms, self.literal
        )
    }
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
    /// Every list has been sent (`to-chk`); else more may follow (`ir-chk`).
    pub complete: bool,
    /// `--info=progress2`: the bytes of the regular files and symlinks listed so far
    /// (stock's `stats.total_size`, which grows as lists are sent).
    pub total_size: u64,
}

/// Where rsync's sender reports `--progress` while it sends a file's tokens: after each
/// matched block (with the literal data before it), after each flush of 32 KiB of literal
/// data, and at the end.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendTicks {
    offset: u64,
}

impl SendTicks {
    /// Notes a token sent; the offset to report, if one is due.
    pub fn token(&mut self, t: &rtsync_delta::MatchToken<'_>) -> Option<u64> {
        match t {
            rtsync_delta::MatchToken::Literal(d) => {
                self.offset += d.len() as u64;
                (d.len() == rtsync_delta::CHUNK_SIZE).then(|| self.tick())
            }
            rtsync_delta::MatchToken::Block { data, .. } => {
                self.offset += data.len() as u64;
                Some(self.tick())
            }
        }
    }

    /// Notes literal data sent (a file sent whole, in chunks): the offset to report.
    pub fn literal(&mut self, len: u64) -> Option<u64> {
        self.offset += len;
        (len > 0).then(|| self.tick())
    }

    fn tick(&mut self) -> u64 {
        self.offset
    }

    /// The file's data is all sent: the closing offset, unless the file was empty.
    pub fn end(&mut self) -> Option<u64> {
        (self.offset > 0).then_some(self.offset)
    }
}

/// What `--progress` shows while a whole file list is built (no incremental recursion): the
/// count every hundred entries, overwritten by the total.
pub fn flist_progress(total: u64) -> String {
    let mut text = String::from("building file list ... \n");
    for n in (0..total).step_by(100) {
        text.push_str(&format!(" {n} files...\r"));
    }
    let s = if total == 1 { " " } else { "s " };
    text.push_str(&format!("{total} file{s}to consider\n"));
    text
}

/// `--debug=nstr` of a local copy: the checksum and compressor its two halves settle on
/// (`Client checksum: NAME` when one was chosen, else the negotiated xxh128; the compressor
/// likewise, with its level).
pub fn nstr_lines(opts: &Options) -> Vec<String> {
    let mut lines = Vec::new();
    let chosen = |c: &Option<String>| {
        c.as_deref()
            .filter(|c| !c.eq_ignore_ascii_case("auto") && !c.contains(','))
            .map(str::to_ascii_lowercase)
    };
    lines.push(match chosen(&opts.checksum_choice) {
        Some(c) => format!("Client checksum: {c}"),
        None => "Client negotiated checksum: xxh128".to_string(),
    });
    if opts.compress || opts.compress_level.is_some() {
        let name = chosen(&opts.compress_choice);
        let algo = name.as_deref().unwrap_or("zstd");
        let level = opts.compress_level.unwrap_or(match algo {
            "zstd" => 3,
            "zlib" | "zlibx" => 6,
            _ => 0,
        });
        let how = if name.is_some() { "" } else { " negotiated" };
        lines.push(format!("Client{how} compress: {algo} (level {level})"));
    }
    lines
}

/// How many seconds of history the rate of an unfinished file is taken over.
const METER_HISTORY: usize = 5;

/// `--progress` lines: when they are due and the rates they show, with rsync's rules (the
/// first update is shown, later ones at most once a second; the rate of an update covers
/// the last few seconds, a closing one everything since the start). At `--info=progress`
/// level 1 each file starts afresh; at level 2 the whole transfer is one.
#[derive(Debug, Clone)]
struct Meter {
    /// When the data started, and the offset then.
    start: Option<(std::time::Instant, u64)>,
    /// Recent (time, offset) samples, a ring: `newest` was taken last, `oldest` is reused next.
    history: [(std::time::Instant, u64); METER_HISTORY],
    newest: usize,
    oldest: usize,
    /// Some sample was taken (before the first, the history is stock's zeroed one: long ago).
    sampled: bool,
}

impl Meter {
    fn new() -> Meter {
        let now = std::time::Instant::now();
        Meter {
            start: None,
            history: [(now, 0); METER_HISTORY],
            newest: 0,
            oldest: 0,
            sampled: false,
        }
    }

    fn millis(from: std::time::Instant, to: std::time::Instant) -> u64 {
        to.saturating_duration_since(from).as_millis() as u64
    }

    /// Notes offset `ofs`; returns the (rate in kB/s, seconds left) of a line to show, or
    /// `None` when it is too early for another.
    fn update(&mut self, ofs: u64, size: u64) -> Option<(f64, f64)> {
        let now = std::time::Instant::now();
        if self.start.is_none() {
            // Data of the previous file arriving just now: this file started then.
            let prev = self.history[self.newest].0;
            let start = if self.sampled && Self::millis(prev, now) <= 1500 {
                (prev, 0)
            } else {
                (now, ofs)
            };
            self.start = Some(start);
            self.history = [start; METER_HISTORY];
            self.sampled = true;
        } else {
            if Self::millis(self.history[self.newest].0, now) < 1000 {
                return None;
            }
            self.newest = self.oldest;
            self.oldest = (self.oldest + 1) % METER_HISTORY;
            self.history[self.newest] = (now, ofs);
        }
        let (t0, o0) = self.history[self.oldest];
        let diff = Self::millis(t0, now).max(1);
        let rate = ofs.saturating_sub(o0) as f64 * 1000.0 / diff as f64 / 1024.0;
        let remain = if rate > 0.0 {
            size.saturating_sub(ofs) as f64 / rate / 1000.0
        } else {
            0.0
        };
        Some((rate, remain))
    }

    /// A closing line at offset `ofs`: (rate since the start, seconds since the start). A
    /// meter that never started counts one millisecond, as stock does.
    fn since_start(&self, ofs: u64) -> (f64, f64) {
        let now = std::time::Instant::now();
        let (diff, ofs0) = match self.start {
            Some((t, o)) => (Self::millis(t, now).max(1), o),
            None => (1, 0),
        };
        let rate = ofs.saturating_sub(ofs0) as f64 * 1000.0 / diff as f64 / 1024.0;
        (rate, diff as f64 / 1000.0)
    }

    /// The file is done (level 1): its closing (rate, seconds); the next file starts afresh.
    fn end(&mut self, size: u64) -> (f64, f64) {
        let shown = self.since_start(size);
        self.start = None;
        shown
    }
}

/// Whether stdout is a terminal owned by another process group (rsync run in the
/// background): intermediate progress is then not shown.
fn backgrounded() -> bool {
    // SAFETY: plain queries of the process group and the terminal's foreground group.
    unsafe {
        let tc = libc::tcgetpgrp(1);
        tc != -1 && tc != libc::getpgrp()
    }
}

/// A closing progress line's counts: ` (xfr#N, to-chk=LEFT/LISTED)` (`ir-chk` while lists
/// are still to come).
fn progress_tail(counts: &Progress) -> String {
    format!(
        " (xfr#{}, {}-chk={}/{})",
        counts.transferred,
        if counts.complete { "to" } else { "ir" },
        counts.listed as i64 - counts.index as i64 - 1,
        counts.listed,
    )
}

/// One progress line: `\r SIZE PCT% RATE TIME` and the tail (`  ` while the file goes on,
/// ` (xfr#N, to-chk=LEFT/LISTED)\n` when it is done).
fn progress_line(ofs: u64, size: u64, rate: f64, secs: f64, level: u32, tail: &str) -> String {
    let (rate, units) = if rate > 1024.0 * 1024.0 {
        (rate / (1024.0 * 1024.0), "GB/s")
    } else if rate > 1024.0 {
        (rate / 1024.0, "MB/s")
    } else {
        (rate, "kB/s")
    };
    let time = if !(0.0..=9999.0 * 3600.0).contains(&secs) {
        "  ??:??:??".to_string()
    } else {
        let s = secs as u64;
        format!("{:4}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    };
    let pct = if ofs == size {
        100
    } else {
        (100.0 * ofs as f64 / size as f64) as i64
    };
    format!(
        "\r{:>15} {pct:>3}% {rate:>7.2}{units} {time}{tail}",
        human(ofs, level)
    )
}

/// Writes item lines and messages to stdout, errors to stderr.
pub struct Reporter {
    out: io::BufWriter<io::Stdout>,
    /// First components of the absolute `-R` sources this side sends: stock's sender keeps
    /// their leading slash in its names, so the items it logs show one.
    rooted: Vec<Vec<u8>>,
    /// `-i` given: lines start with the itemize string.
    itemize: u32,
    verbose: u32,
    /// `-v` or `--progress`: names of transferred items are listed.
    names: bool,
    /// `--info=name2` (`-vv`): what needed nothing is named (`NAME is uptodate`).
    names_unchanged: bool,
    /// `--info=progress` level: 1 a line after each transferred file (`--progress`), 2 one
    /// line for the whole transfer, rewritten as it goes; 0 none.
    progress: u32,
    /// `--info=progress2`: the lengths of the files whose transfer started (stock's
    /// `total_transferred_size`) and what the lists sent so far hold (`total_size`).
    transferred_size: u64,
    total_size: u64,
    /// `--info=progress2`: the length of the last closing tail (` (xfr#N, to-chk=L/T)`); a
    /// shorter one is padded to it so no old characters stay on the line.
    tail_len: usize,
    /// `--info=flist`: file-list notices are shown.
    flist_notices: bool,
    /// [`Reporter::list_start`] opened a line that [`Reporter::list_built`] ends.
    list_open: bool,
    /// Lines for after the list (see [`Reporter::info_after_list`]).
    after_list: Vec<String>,
    /// A progress line was left open (no newline): whatever is printed next starts with
    /// one (stock's `output_needs_newline`).
    needs_newline: bool,
    /// `-8`: high-bit bytes of names are printed as they are.
    eight_bit: bool,
    quiet: bool,
    /// The format of stdout's item lines: `--out-format`, else `%i %n%L` for `-i`, else
    /// `%n%L` for `-v` (rsync's `stdout_format`).
    format: Option<String>,
    /// rsync's `stdout_format_has_i`: the format itemizes (1), and `-ii` asks for every item (2+).
    has_i: u32,
    /// `%o` of transferred items: `send` on the sending side (a local copy too), `recv` on a
    /// receiving client.
    op: &'static str,
    /// Hex digits of `%C` for an item without a checksum.
    sum_hex_len: usize,
    /// `-c`: `%C` of a regular file is its file-list checksum, of this kind.
    file_sum: Option<rtsync_delta::ChecksumKind>,
    /// `-o`/`-g`: `%U`/`%G` show the owner and group (else `0` and `DEFAULT`).
    owner: bool,
    group: bool,
    /// How deletions read on stdout.
    deletions: DeletionLines,
    pub human: u32,
    /// `--log-file`: where item lines and the summary are also logged.
    log: Option<LogFile>,
    /// `--progress` of the file being transferred.
    meter: Meter,
    /// `--progress`: the line that heads the file's progress (its item line, or its name
    /// when the item line waits for the end of the transfer), until it is shown.
    head: Option<Vec<u8>>,
    /// The transferred item's stdout line went out as the head: not printed again.
    item_shown: bool,
    /// Item lines wait while `NAME is uptodate` lines and messages go at once (see
    /// [`Reporter::flush_items`]).
    defer: bool,
    deferred: Vec<u8>,
    /// A local copy: error lines of stock's receiving side (its child processes, which
    /// write stderr themselves) are escaped as its server escapes them (see
    /// [`Reporter::receiving_side_errors`]).
    child_errors: bool,
    /// The size of the records stock's generator would hold for the deferred lines (about
    /// 20 bytes for a transfer's request, 4 for another item): its buffer is 64 KiB, and a
    /// full one goes out whatever else it waits for.
    deferred_records: usize,
    /// A sending client: the receiving server names what needed no transfer itself (stock's
    /// `NAME is uptodate`, or `NAME` for new attributes, at `-vv`), so none are made here.
    peer_names_unchanged: bool,
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
        let mut line = format!("{} [{}] ", now_time(), self.pid).into_bytes();
        line.extend_from_slice(text);
        line.push(b'\n');
        let _ = self.file.write_all(&line);
    }
}

/// Where a server's transfer log goes: a line of text at a time (the daemon's log adds
/// its own timestamp and pid, or hands the line to syslog).
pub type LogFn = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// A server's log of what it transferred, as stock's server roles write it: a daemon
/// module's `transfer logging` (in its `log format`), or a server run with `--log-file`
/// (in `--log-file-format`, by default `%i %n%L`). Transferred files are always logged;
/// other items only when the format itemizes (`%i`) and something about them changed (any
/// item under a pushing client's `-ii`); deletions in the format when it has `%i` or `%o`, else as `deleting NAME`. Nothing is
/// logged by a dry run (stock's `maybe_log_item`/`log_delete` on a server).
#[derive(Clone)]
pub struct TransferLog {
    sink: LogFn,
    format: String,
    has_i: bool,
    /// A pushing client's `-ii` (it sends `--log-format=%i%I`): an itemizing log names
    /// unchanged items too.
    all: bool,
    /// `%o` of transferred items: `send` or `recv`.
    op: &'static str,
    /// A receiving daemon: where its items are in the module (`%f` of stock's receiver is
    /// the module-relative working directory joined with the name).
    dir: Option<Vec<u8>>,
    daemon: Option<DaemonFacts>,
    sum_hex_len: usize,
    file_sum: Option<rtsync_delta::ChecksumKind>,
    owner: bool,
    group: bool,
}

impl std::fmt::Debug for TransferLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferLog")
            .field("format", &self.format)
            .field("op", &self.op)
            .finish()
    }
}

impl TransferLog {
    /// The log of a server role (`op`: `send` or `recv`) writing `format` to `sink`; `None`
    /// when there is nothing to log (an empty format, a dry run).
    pub fn new(opts: &Options, format: &str, op: &'static str, sink: LogFn) -> Option<Self> {
        if format.is_empty() || opts.dry_run {
            return None;
        }
        let has_i = format_has(format, b'i');
        Some(TransferLog {
            sink,
            format: format.to_string(),
            has_i,
            all: opts
                .out_format
                .as_deref()
                .is_some_and(|f| format_has(f, b'I')),
            op,
            dir: None,
            daemon: None,
            sum_hex_len: 2 * sum_len(opts),
            file_sum: opts.checksum.then(|| sum_kind(opts, true)),
            owner: opts.owner,
            group: opts.group,
        })
    }

    /// Inside a daemon: `%h %a %m %u %P` tell of the connection.
    pub fn in_daemon(mut self, facts: DaemonFacts) -> Self {
        self.daemon = Some(facts);
        self
    }

    /// A receiving daemon's working directory in its module (see [`TransferLog::dir`]).
    pub fn in_dir(mut self, dir: &[u8]) -> Self {
        self.dir = Some(dir.to_vec());
        self
    }

    /// The checksums the connection settled on (see [`Reporter::set_sum_kinds`]).
    pub fn set_sum_kinds(
        &mut self,
        xfer: rtsync_delta::ChecksumKind,
        file: rtsync_delta::ChecksumKind,
    ) {
        self.sum_hex_len = 2 * settle_sums(&mut self.file_sum, xfer, file);
    }

    /// An item the role handled: logged if transferred, or (with `%i`) if anything about
    /// it changed.
    pub fn item(&self, it: &Itemize, name: &[u8], suffix: &[u8], facts: &ItemFacts) {
        if !self.logs(it) {
            return;
        }
        let mut facts = facts.clone();
        if let (Some(kind), Some(sum)) = (self.file_sum, &facts.list_sum) {
            facts.sum_hex = Some(sum_hex_as(sum, kind));
        }
        let (name, suffix) = slash_in_name(name, suffix);
        let name = &name[..];
        // `%f` is cleaned as stock's `clean_fname` cleans it (`dir/./sub` is `dir/sub`).
        facts.path = match (&self.dir, &facts.path) {
            (Some(dir), _) => Some(clean_join(dir, name)),
            (None, Some(path)) => Some(clean_join(path, b"")),
            (None, None) => None,
        };
        self.put(self.op, &self.format, it, name, suffix, &facts);
    }

    /// Whether [`TransferLog::item`] logs an item like `it` (so its facts are worth
    /// gathering).
    pub fn logs(&self, it: &Itemize) -> bool {
        let transferred = matches!(it.update, b'>' | b'<');
        transferred || self.has_i && (self.all || it.has_changes())
    }

    /// A deletion (`mode`: what was deleted).
    pub fn deleted(&self, name: &[u8], mode: u32) {
        let fmt = deletion_format(&self.format);
        let facts = ItemFacts {
            path: self.dir.as_ref().map(|d| clean_join(d, name)),
            ..deletion_facts(mode)
        };
        let it = Itemize::new(b'*', b'f');
        self.put("del.", fmt, &it, name, b"", &facts);
    }

    /// A line of its own (the closing `sent … received … total size …`).
    pub fn line(&self, text: &str) {
        (self.sink)(text);
    }

    fn put(
        &self,
        op: &str,
        fmt: &str,
        it: &Itemize,
        name: &[u8],
        suffix: &[u8],
        facts: &ItemFacts,
    ) {
        let ctx = FormatContext {
            op,
            sum_hex_len: self.sum_hex_len,
            eight_bit: false,
            owner: self.owner,
            group: self.group,
            daemon: self.daemon.as_ref(),
        };
        let mut line = Vec::with_capacity(name.len() + 64);
        format_line(&mut line, fmt, it, name, suffix, facts, &ctx);
        (self.sink)(&String::from_utf8_lossy(&line));
    }
}

/// A server's `--log-file` (outside a daemon), opened as a client opens it: each line is
/// stamped `YYYY/MM/DD hh:mm:ss [PID]`. `None` without one (or when it cannot be opened,
/// which is said on stderr).
pub fn log_file_sink(opts: &Options) -> Option<LogFn> {
    let file = std::sync::Mutex::new(LogFile::open(opts)?);
    Some(std::sync::Arc::new(move |text: &str| {
        if let Ok(mut f) = file.lock() {
            f.line(text.as_bytes());
        }
    }))
}

/// The format a deletion is shown in: the user's when it has `%i` or `%o`, else `deleting
/// %n` (stock's `log_delete`).
fn deletion_format(fmt: &str) -> &str {
    if format_has(fmt, b'i') || format_has(fmt, b'o') {
        fmt
    } else {
        "deleting %n"
    }
}

/// What stock formats a deletion from: a blank entry of `mode` (no length, owner and group
/// 0).
fn deletion_facts(mode: u32) -> ItemFacts {
    ItemFacts {
        mode,
        uid: Some(0),
        gid: Some(0),
        ..ItemFacts::default()
    }
}

/// A directory's slash belongs to its name (`%n`), not to `%L`: `(name/, "")` for a
/// directory's `(name, "/")`, else as given.
fn slash_in_name<'a>(name: &'a [u8], suffix: &'a [u8]) -> (std::borrow::Cow<'a, [u8]>, &'a [u8]) {
    if suffix == b"/" {
        (std::borrow::Cow::Owned([name, b"/"].concat()), b"")
    } else {
        (std::borrow::Cow::Borrowed(name), suffix)
    }
}

/// The checksums a connection settled on: with `-c` (`file_sum` set) `%C` shows the file
/// sums, now of kind `file`; else the transfer sums of `xfer`. Returns the digest length
/// `%C` shows.
fn settle_sums(
    file_sum: &mut Option<rtsync_delta::ChecksumKind>,
    xfer: rtsync_delta::ChecksumKind,
    file: rtsync_delta::ChecksumKind,
) -> usize {
    let shown = shown_sum(file_sum.is_some(), xfer, file);
    if file_sum.is_some() {
        *file_sum = Some(file);
    }
    shown.digest_len()
}

/// `dir/name` as stock's `pathjoin` + `clean_fname` make it: empty and interior `.`
/// components go (a last one stays: `dir/.`), and a directory's trailing slash.
fn clean_join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(dir.len() + name.len() + 1);
    let parts: Vec<&[u8]> = dir
        .split(|&b| b == b'/')
        .chain(name.split(|&b| b == b'/'))
        .filter(|p| !p.is_empty())
        .collect();
    for (i, part) in parts.iter().enumerate() {
        if *part == b"." && i + 1 < parts.len() {
            continue;
        }
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(part);
    }
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

impl Reporter {
    pub fn new(opts: &Options) -> Reporter {
        Reporter {
            out: io::BufWriter::with_capacity(64 * 1024, io::stdout()),
            rooted: Vec::new(),
            itemize: opts.itemize,
            verbose: opts.verbose,
            names: opts.info_level("name") > 0,
            names_unchanged: opts.info_level("name") > 1,
            progress: opts.progress_level(),
            transferred_size: 0,
            total_size: 0,
            tail_len: 0,
            flist_notices: opts.info_level("flist") > 0,
            list_open: false,
            after_list: Vec::new(),
            needs_newline: false,
            eight_bit: opts.eight_bit_output,
            quiet: opts.quiet,
            format: match (&opts.out_format, opts.itemize, opts.verbose) {
                (Some(f), _, _) => Some(f.clone()),
                (None, 1.., _) => Some("%i %n%L".into()),
                (None, 0, _) if opts.info_level("name") > 0 => Some("%n%L".into()),
                _ => None,
            },
            has_i: match &opts.out_format {
                Some(f) if format_has(f, b'i') => opts.itemize | 1,
                Some(_) => 0,
                None => opts.itemize,
            },
            op: "send",
            sum_hex_len: 2 * sum_len(opts),
            file_sum: opts.checksum.then(|| sum_kind(opts, true)),
            owner: opts.owner,
            group: opts.group,
            deletions: DeletionLines::new(opts),
            human: if opts.human_readable > 0 {
                opts.human_readable + 1
            } else {
                1
            },
            log: LogFile::open(opts),
            meter: Meter::new(),
            head: None,
            item_shown: false,
            defer: opts.verbose > 1
                && !opts.quiet
                && opts.progress_level() == 0
                && opts.itemize == 0
                && opts
                    .out_format
                    .as_deref()
                    .is_none_or(|f| !format_has(f, b'i')),
            deferred: Vec::new(),
            child_errors: false,
            deferred_records: 0,
            peer_names_unchanged: false,
        }
    }

    /// Prints the item lines held back. In stock's local copy (and a push), `NAME is
    /// uptodate` comes from the generator as a message, which overtakes the item lines its
    /// sender prints from the records the generator holds in its buffer. The engine calls
    /// this where stock's generator flushes (see `local::walk`); a full buffer flushes too.
    pub fn flush_items(&mut self) {
        self.deferred_records = 0;
        if !self.deferred.is_empty() {
            let deferred = std::mem::take(&mut self.deferred);
            self.put(&deferred);
        }
    }

    /// A sending client's reporter: the receiving server names unchanged items itself.
    pub fn set_peer_names_unchanged(&mut self) {
        self.peer_names_unchanged = true;
    }

    /// Whether the stdout format itemizes (`-i` or `%i`).
    /// This side sends `sources` (with `-R`, `relative`): names under an absolute one are
    /// shown with its leading slash, as stock's sender shows them (its receiver's deletions
    /// do not have it).
    pub fn set_rooted_sources(&mut self, relative: bool, sources: &[&[u8]]) {
        self.rooted = if relative {
            rooted_firsts(sources)
        } else {
            Vec::new()
        };
    }

    /// `name` as this side's items show it (see [`Reporter::set_rooted_sources`]).
    fn shown<'a>(&self, name: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        let first = name.split(|&b| b == b'/').next().unwrap_or(name);
        if !self.rooted.is_empty() && self.rooted.iter().any(|r| r == first) {
            std::borrow::Cow::Owned([b"/", name].concat())
        } else {
            std::borrow::Cow::Borrowed(name)
        }
    }

    /// Item lines wait until stock's generator would flush its buffer, as stock's local
    /// copy shows them: its generator's messages (deletions, skips) travel out of band and
    /// overtake the item lines its sender logs from the buffered data stream. (Progress
    /// output is printed as the transfer goes.)
    pub fn defer_items_per_list(&mut self) {
        if !self.quiet && self.progress == 0 {
            self.defer = true;
        }
    }

    /// A local copy: stock's generator and receiver run in a child that writes its error
    /// lines to stderr itself. As a server it escapes with isprint(): every byte with the
    /// high bit set (unless `-8`, or a single-byte locale), where the client's lines keep
    /// the characters valid in the locale. The sender's own lines (`[sender]`, vanished
    /// files, the closing line) are the client's.
    pub fn receiving_side_errors(&mut self) {
        self.child_errors = true;
    }

    pub fn itemizes(&self) -> bool {
        self.has_i > 0
    }

    /// `-vv`: `NAME is uptodate` for an item that needed nothing (a message: not held back).
    pub fn uptodate(&mut self, name: &[u8]) {
        if self.names_unchanged && !self.quiet {
            // (Stock's generator says it, with the name as its list has it.)
            let mut line = escape_name_with(name, self.eight_bit);
            line.extend_from_slice(b" is uptodate\n");
            self.put(&line);
        }
    }

    /// A hard-link member found already linked to its leader: its unchanged `h` item with
    /// `-ii` (or `-i -vv`), `NAME is uptodate` with `-vv` and no `%i`, else nothing.
    pub fn unchanged_link(&mut self, it: &Itemize, name: &[u8], suffix: &[u8], facts: &ItemFacts) {
        if self.has_i == 0 {
            if it.kind == b'd' && !name.ends_with(b"/") {
                // (A directory found in a basis directory: `sub/ is uptodate`.)
                self.uptodate(&[name, b"/"].concat());
            } else {
                self.uptodate(name);
            }
        } else if self.has_i > 1 || self.names_unchanged {
            self.item_with(it, name, suffix, facts);
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
    fn log_item(&mut self, it: &Itemize, name: &[u8], suffix: &[u8], facts: &ItemFacts) {
        let ctx = FormatContext {
            op: self.op,
            sum_hex_len: self.sum_hex_len,
            eight_bit: false,
            owner: self.owner,
            group: self.group,
            daemon: None,
        };
        let Some(log) = &mut self.log else {
            return;
        };
        // Items are selected as for stdout: without `%i` there, attribute-only changes of
        // non-directories are not itemized at all (rsync's generator reports them only then).
        let selected = if self.has_i > 0 {
            it.has_changes()
        } else {
            matches!(it.update, b'>' | b'<' | b'c' | b'h') || (it.kind == b'd' && it.has_changes())
        };
        if log.format.is_empty() || !selected {
            return;
        }
        let mut line = Vec::with_capacity(name.len() + 16);
        format_line(&mut line, &log.format, it, name, suffix, facts, &ctx);
        log.line(&line);
    }

    /// Whether a destination directory the run creates is announced (`created directory
    /// D`): at rsync's `--info=name` (`-v`, `--progress` without a format logged before the
    /// transfer) or with a format that itemizes.
    pub fn announces_created(&self) -> bool {
        self.names || self.has_i > 0
    }

    /// Whether item lines are printed at all.
    pub fn lists_items(&self) -> bool {
        !self.quiet && (self.itemize > 0 || self.names || self.format.is_some())
    }

    /// Whether the stdout format needs what only the end of a transfer knows (`%b %c %C`):
    /// rsync then logs a transferred item after its data, not before.
    pub fn logs_after_transfer(&self) -> bool {
        self.format
            .as_deref()
            .is_some_and(|f| format_has(f, b'b') || format_has(f, b'c') || format_has(f, b'C'))
    }

    /// Whether an `--out-format`/`--log-file-format` escape is in use (so facts that cost
    /// something, like `%C`'s checksum, are worth gathering).
    pub fn wants(&self, esc: u8) -> bool {
        self.format.as_deref().is_some_and(|f| format_has(f, esc))
            || self
                .log
                .as_ref()
                .is_some_and(|l| format_has(&l.format, esc))
    }

    /// Whether a format asks what only the item's inode tells (`%l %M %B %U %G`).
    pub fn wants_entry_facts(&self) -> bool {
        b"lMBUG".iter().any(|&e| self.wants(e))
    }

    /// `%o` of transferred items (`recv` on a receiving client).
    pub fn set_op(&mut self, op: &'static str) {
        self.op = op;
    }

    /// The checksums a connection settled on (`--protocol=30` without a choice: md5):
    /// `%C` shows the file-list sum of `file` with `-c`, else the transfer sum of `xfer`, or
    /// that many digits of blanks.
    pub fn set_sum_kinds(
        &mut self,
        xfer: rtsync_delta::ChecksumKind,
        file: rtsync_delta::ChecksumKind,
    ) {
        let shown = settle_sums(&mut self.file_sum, xfer, file);
        self.sum_hex_len = 2 * shown;
        self.deletions.set_sum_len(shown);
    }

    /// Prints one item line if the item qualifies: `-i`/`-v` show changed items, `-ii`/`-vv` all.
    pub fn item(&mut self, it: &Itemize, name: &[u8], suffix: &[u8]) {
        self.item_with(it, name, suffix, &ItemFacts::default());
    }

    /// [`Reporter::item`] with what a user format may ask of the item beyond its name.
    pub fn item_with(&mut self, it: &Itemize, name: &[u8], suffix: &[u8], facts: &ItemFacts) {
        let name = &*self.shown(name);
        // `-c`: a regular file's `%C` is the checksum its list entry carries (stock's F_SUM),
        // whether it was transferred or not. (Only regular files are listed with one.)
        let summed;
        let facts = match (self.file_sum, &facts.list_sum) {
            (Some(kind), Some(sum)) if self.wants(b'C') => {
                summed = ItemFacts {
                    sum_hex: Some(sum_hex_as(sum, kind)),
                    ..facts.clone()
                };
                &summed
            }
            _ => facts,
        };
        let (name, suffix) = slash_in_name(name, suffix);
        let name = &name[..];
        self.log_item(it, name, suffix, facts);
        if std::mem::take(&mut self.item_shown) {
            return;
        }
        if let Some(line) = self.stdout_item(it, name, suffix, facts) {
            if self.defer && !line.ends_with(b" is uptodate\n") {
                self.deferred.extend_from_slice(&line);
                self.deferred_records += if it.update == b'>' { 20 } else { 4 };
                if self.deferred_records > 64 * 1024 {
                    self.flush_items();
                }
            } else {
                self.put(&line);
            }
        }
    }

    /// The stdout line of an item (`NAME is uptodate` for what `-vv` names without a
    /// change), or `None` when the item is not shown. A directory's slash is in `name`.
    fn stdout_item(
        &self,
        it: &Itemize,
        name: &[u8],
        suffix: &[u8],
        facts: &ItemFacts,
    ) -> Option<Vec<u8>> {
        if !self.lists_items() {
            return None;
        }
        let shown = if self.has_i > 0 {
            it.has_changes() || self.has_i > 1 || self.names_unchanged
        } else {
            // Without %i, rsync names transfers, local changes (links, devices) and changed
            // directories; attribute-only changes of other items need -vv.
            let changed = matches!(it.update, b'>' | b'<' | b'c' | b'h')
                || (it.kind == b'd' && it.has_changes());
            if !changed && self.names_unchanged && it.kind != b'd' && !self.peer_names_unchanged {
                // -vv names what needed no transfer (not directories): `NAME is uptodate`,
                // or just `NAME` when its attributes were updated (stock's set_file_attrs).
                let mut line = escape_name_with(name, self.eight_bit);
                if it.has_changes() {
                    line.push(b'\n');
                } else {
                    line.extend_from_slice(b" is uptodate\n");
                }
                return Some(line);
            }
            changed
        };
        if !shown {
            return None;
        }
        let mut line = Vec::with_capacity(name.len() + 16);
        let ctx = FormatContext {
            op: self.op,
            sum_hex_len: self.sum_hex_len,
            eight_bit: self.eight_bit,
            owner: self.owner,
            group: self.group,
            daemon: None,
        };
        let fmt = self.format.as_deref().unwrap_or("%n%L");
        format_line(&mut line, fmt, it, name, suffix, facts, &ctx);
        line.push(b'\n');
        Some(line)
    }

    /// A deletion line, as rsync's `log_delete` writes it: in the user's format when that has
    /// `%i` or `%o` (`*deleting   NAME` for `-i`), else `deleting NAME`.
    pub fn deleting(&mut self, name: &[u8]) {
        self.deleting_mode(name, 0);
    }

    /// [`Reporter::deleting`] of an item whose mode is known (`%B` shows it).
    pub fn deleting_mode(&mut self, name: &[u8], mode: u32) {
        if let Some(log) = &mut self.log {
            if !log.format.is_empty() {
                let lines = DeletionLines {
                    format: Some(log.format.clone()),
                    eight_bit: false,
                    ..self.deletions.clone()
                };
                if let Some(mut line) = lines.line(name, mode) {
                    line.pop();
                    log.line(&line);
                }
            }
        }
        if let Some(line) = self.deletions.line(name, mode) {
            self.put(&line);
        }
    }

    /// `--progress`: a regular file's data is about to be sent. What heads its progress is
    /// its item line when that is logged before the transfer (no `%b %c %C` in the format),
    /// else (at level 1) its name; it is shown with the first progress line.
    pub fn transfer_begin(&mut self, it: &Itemize, name: &[u8], facts: &ItemFacts) {
        let name = &*self.shown(name).into_owned();
        self.head = None;
        self.item_shown = false;
        if self.progress == 0 {
            return;
        }
        if !self.logs_after_transfer() {
            self.head = self.stdout_item(it, name, b"", facts);
            self.item_shown = true;
        } else if self.names && self.progress == 1 {
            let mut line = escape_name_with(name, self.eight_bit);
            line.push(b'\n');
            self.head = Some(line);
        }
    }

    /// `--info=progress2`: a file of `len` bytes (its length in the list) starts its
    /// transfer, while the lists sent so far hold `total_size` bytes. Stock counts the file
    /// as transferred from here on (its `total_transferred_size`), so call this before the
    /// file's first [`Reporter::transfer_tick`].
    pub fn transfer_counted(&mut self, len: u64, total_size: u64) {
        self.transferred_size += len;
        self.total_size = total_size;
    }

    /// The transfer did not happen after all (the source could not be read, ...): nothing
    /// of it is shown.
    pub fn transfer_abort(&mut self) {
        self.head = None;
        self.item_shown = false;
        if self.progress == 1 {
            self.meter.start = None;
        }
    }

    fn show_head(&mut self) {
        if let Some(head) = self.head.take() {
            self.put(&head);
        }
    }

    /// Writes to stdout, after the newline an open progress line is owed.
    fn put(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if std::mem::take(&mut self.needs_newline) || LIST_LINE_OPEN.swap(false, Ordering::Relaxed)
        {
            let _ = self.out.write_all(b"\n");
        }
        let _ = self.out.write_all(bytes);
        if bytes.ends_with(b"\n") {
            // Each line goes out as it is made, as stock flushes its stdout after each
            // line: merged with the messages on stderr (`2>&1`), the order is the order
            // things happened in.
            let _ = self.out.flush();
        }
    }

    /// Writes a progress line (it starts with `\r`, so any open one is overwritten, not
    /// closed); `open`: it ends without a newline, which whatever follows owes it.
    fn put_progress(&mut self, line: &str, open: bool) {
        self.needs_newline = false;
        self.put(line.as_bytes());
        if open {
            self.needs_newline = true;
            let _ = self.out.flush();
        }
    }

    /// `--progress`: the file's data has reached offset `ofs` of `size` (rsync's sender
    /// reports after each token it sends; a receiver before each it reads). At level 2 the
    /// line shows the whole transfer instead.
    pub fn transfer_tick(&mut self, ofs: u64, size: u64) {
        if self.progress == 0 {
            return;
        }
        let (ofs, size) = if self.progress >= 2 {
            let before = self.transferred_size.saturating_sub(size);
            (before + ofs, self.total_size)
        } else {
            (ofs, size)
        };
        let Some((rate, remain)) = self.meter.update(ofs, size) else {
            return;
        };
        if backgrounded() {
            return;
        }
        self.show_head();
        let line = progress_line(ofs, size, rate, remain, self.human, "  ");
        self.put_progress(&line, true);
    }

    /// Whether `--progress` lines are shown.
    pub fn shows_progress(&self) -> bool {
        self.progress > 0
    }

    /// The `--info=progress` level (0: none).
    pub fn progress_level(&self) -> u32 {
        self.progress
    }

    /// `--progress`: the closing progress line of a transferred file:
    /// `\r      SIZE 100%  RATE  H:MM:SS (xfr#N, to-chk=LEFT/LISTED)`; at level 2 the line of
    /// the whole transfer, left open.
    pub fn progress(&mut self, size: u64, counts: Progress) {
        if self.progress == 0 {
            return;
        }
        self.show_head();
        if self.progress >= 2 {
            self.overall_line(counts);
            return;
        }
        let (rate, secs) = self.meter.end(size);
        let tail = format!("{}\n", progress_tail(&counts));
        let line = progress_line(size, size, rate, secs, self.human, &tail);
        self.put_progress(&line, false);
    }

    /// `--info=progress2`: the sender or receiver met the end of a list or phase
    /// (`NDX_DONE`); stock shows the line of the whole transfer again, counted to the end of
    /// the list it is in (`counts.index`: that list's last entry).
    pub fn list_done(&mut self, counts: Progress) {
        if self.progress >= 2 {
            self.overall_line(counts);
        }
    }

    /// The closing line of the whole transfer: bytes transferred of the total, the rate and
    /// time since the first progress line, and the counts; padded to the last such line's
    /// length, without a newline.
    fn overall_line(&mut self, counts: Progress) {
        self.total_size = counts.total_size;
        let mut tail = progress_tail(&counts);
        let shorter_than = std::mem::replace(&mut self.tail_len, tail.len());
        while tail.len() < shorter_than {
            tail.push(' ');
        }
        let (rate, secs) = self.meter.since_start(self.transferred_size);
        let line = progress_line(
            self.transferred_size,
            self.total_size,
            rate,
            secs,
            self.human,
            &tail,
        );
        self.put_progress(&line, true);
    }

    /// An informational line on stdout (unless `-q`).
    /// An informational line on stdout (unless `-q`) and in the `--log-file` (even with `-q`,
    /// as rsync logs every message it composes).
    pub fn info(&mut self, text: &str) {
        self.log_only(text);
        if !self.quiet {
            self.put(&[&printable(text)[..], b"\n"].concat());
        }
    }

    /// A file-list notice (`sending incremental file list`): at `--info=flist` (`-v` or
    /// `--progress`), on stdout only (rsync writes these to the client and never to its log).
    pub fn list_notice(&mut self, text: &str) {
        if self.flist_notices && !self.quiet {
            self.put(format!("{text}\n").as_bytes());
        }
    }

    /// Opens a file-list line (`building file list ... `) while the whole list is built: a
    /// message before [`Reporter::list_built`] ends it first, as stock's does.
    pub fn list_start(&mut self, text: &str) {
        if self.flist_notices && !self.quiet {
            self.put(text.as_bytes());
            self.flush();
            LIST_LINE_OPEN.store(true, Ordering::Relaxed);
            self.list_open = true;
        }
    }

    /// The list is built: `done` ends the line [`Reporter::list_start`] opened (on a line
    /// of its own after a message).
    pub fn list_built(&mut self) {
        if std::mem::take(&mut self.list_open) {
            LIST_LINE_OPEN.store(false, Ordering::Relaxed);
            self.put(b"done\n");
        }
        for text in std::mem::take(&mut self.after_list) {
            self.info(&text);
        }
    }

    /// An informational line stock's receiving side prints once it has the list (`backup_dir
    /// is …`): held while a `building file list ... ` line is open.
    pub fn info_after_list(&mut self, text: &str) {
        if self.list_open {
            self.after_list.push(text.to_string());
        } else {
            self.info(text);
        }
    }

    /// An informational line shown only with `-v`.
    pub fn verbose_info(&mut self, text: &str) {
        if self.verbose > 0 {
            self.info(text);
        }
    }

    /// An error line on stderr (and in the `--log-file`); stdout is flushed first so the two
    /// stay in order on a terminal.
    pub fn error(&mut self, text: &str) {
        let _ = self.out.flush();
        if std::mem::take(&mut self.needs_newline) || LIST_LINE_OPEN.swap(false, Ordering::Relaxed)
        {
            // (Stock ends the open line on the stream the message goes to.)
            eprintln!();
        }
        self.log_only(text.trim_end_matches('\n'));
        let shown = if self.child_errors && !said_by_sender(text) {
            escape_isprint(text.as_bytes(), self.eight_bit)
        } else {
            printable(text).into_owned()
        };
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(&[&shown[..], b"\n"].concat());
    }

    /// The `--log-file`'s closing line, as rsync's `log_exit` writes it: after a failure, or when
    /// the summary did not already go to the log (no `-v`/`--stats`).
    pub fn log_exit(&mut self, s: &Stats, code: i32, summarized: bool) {
        if code != exit::OK || !summarized {
            self.log_only(&format!(
                "sent {} bytes  received {} bytes  total size {}",
                s.sent, s.received, s.total_size
            ));
        }
    }

    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.put(bytes);
    }

    pub fn flush(&mut self) {
        self.flush_items();
        let _ = self.out.flush();
    }

    /// Ends an open `--info=progress2` line (with the newline it is owed).
    pub fn close_progress(&mut self) {
        if std::mem::take(&mut self.needs_newline) {
            let _ = self.out.write_all(b"\n");
        }
    }

    /// `--info=stats3`: [`heap_stats`] for each role this process plays, in stock's order.
    pub fn heap_stats(&mut self, roles: &[&str]) {
        self.flush_items();
        for role in roles {
            self.put(heap_stats(role).as_bytes());
        }
    }

    /// `--stats` block; the file list's generation and transfer times in seconds (the
    /// sender's).
    pub fn stats(&mut self, s: &Stats, elapsed_flist: f64, flist_xfer: f64) {
        self.flush_items();
        let h = self.human;
        let text = format!(
            "\nNumber of files: {}\nNumber of created files: {}\nNumber of deleted files: {}\n\
             Number of regular files transferred: {}\nTotal file size: {} bytes\n\
             Total transferred file size: {} bytes\nLiteral data: {} bytes\nMatched data: {} bytes\n\
             File list size: {}\nFile list generation time: {:.3} seconds\n\
             File list transfer time: {:.3} seconds\nTotal bytes sent: {}\nTotal bytes received: {}\n",
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
            flist_xfer,
            human(s.sent, h),
            human(s.received, h),
        );
        self.put(text.as_bytes());
    }

    /// The closing `sent … received …` summary of `-v`/`--stats`.
    pub fn summary(&mut self, s: &Stats, seconds: f64, dry_run: bool) {
        self.flush_items();
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
        self.put(format!("\n{sent}\n{total}\n").as_bytes());
        self.log_only(&sent);
        self.log_only(&total);
    }
}

impl Drop for Reporter {
    /// An open `--info=progress2` line is ended at exit, as stock's cleanup does.
    fn drop(&mut self) {
        self.close_progress();
        let _ = self.out.flush();
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
/// level `level`, mtime, with `atimes` (`-U`) the atime of a non-directory (blanks for a
/// directory), escaped name, and ` -> target` for symlinks when `links` (escaped too: stock
/// filters the whole line as it goes out).
pub fn list_line(e: &rtsync_tree::FileEntry, level: u32, links: bool, atimes: bool) -> Vec<u8> {
    list_line_as(e, level, links, atimes, true)
}

/// [`list_line`] with the name and target raw (`escaped` false), for a line that is
/// escaped as a whole where it is printed (a pulling client's message path).
pub fn list_line_as(
    e: &rtsync_tree::FileEntry,
    level: u32,
    links: bool,
    atimes: bool,
    escaped: bool,
) -> Vec<u8> {
    let shown = |name: &[u8]| match escaped {
        true => escape_name(name),
        false => name.to_vec(),
    };
    let mtime = list_time(e.mtime);
    let atime = match (atimes, e.is_dir()) {
        (false, _) => String::new(),
        (true, true) => " ".repeat(mtime.len() + 1),
        (true, false) => format!(" {}", list_time(e.atime)),
    };
    let mut line = format!(
        "{} {:>14} {mtime}{atime} ",
        mode_string(e.mode, e.kind),
        human(e.size, level),
    )
    .into_bytes();
    line.extend_from_slice(&shown(&e.name));
    if links {
        if let Some(t) = &e.link_target {
            line.extend_from_slice(b" -> ");
            line.extend_from_slice(&shown(t));
        }
    }
    line
}

/// The `--list-only` line of a missing entry (`--delete-missing-args`): `*missing` padded to
/// where the name of a [`list_line`] starts.
pub fn missing_list_line(e: &rtsync_tree::FileEntry, atimes: bool) -> String {
    let width = if atimes { 65 } else { 45 };
    let name = escape_name(&e.name);
    format!("{:<width$} {}", "*missing", String::from_utf8_lossy(&name))
}

/// rsync shows unprintable bytes in names as `\#ooo` escapes: control characters other than
/// tab, DEL, and bytes that are not part of valid UTF-8.
/// First of the private-use characters that stand for bytes in [`lossless_text`].
const BYTE_CHARS: u32 = 0xF700;

/// Bytes as text without loss, for messages built as `String`s: a byte that is not part of
/// valid UTF-8 becomes the private-use character U+F700 + byte, which [`raw_bytes`] (the
/// output filters) turns back into the byte, so a name prints as stock prints it.
pub fn lossless_text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for &b in chunk.invalid() {
            out.extend(char::from_u32(BYTE_CHARS + u32::from(b)));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A message as stock's client prints it (its filtered output): raw bytes back from
/// [`lossless_text`], then control characters (not tab, not a final newline) and bytes the
/// locale cannot print escaped as `\#ooo`. Names already escaped pass unchanged.
pub fn printable(text: &str) -> std::borrow::Cow<'_, [u8]> {
    let raw = raw_bytes(text.as_bytes());
    let locale = locale_text();
    // (A line's own ending newline stays; one inside it, from a name, is escaped.)
    let last = raw.len().saturating_sub(1);
    let bad_ctrl = |i: usize, c: u8| c < 0x20 && c != b'\t' && !(c == b'\n' && i == last);
    // (A backslash that would read as one of these escapes is escaped itself.)
    let escape_like = |i: usize| {
        raw[i] == b'\\'
            && raw.get(i + 1) == Some(&b'#')
            && raw.len() > i + 4
            && raw[i + 2..i + 5].iter().all(u8::is_ascii_digit)
    };
    let needs = raw
        .iter()
        .enumerate()
        .any(|(i, &c)| bad_ctrl(i, c) || c >= 0x80 || escape_like(i));
    if !needs {
        return raw;
    }
    let invalid = unprintable_in(locale, &raw);
    let mut out = Vec::with_capacity(raw.len() + 8);
    for (i, &c) in raw.iter().enumerate() {
        if bad_ctrl(i, c) || invalid[i] || escape_like(i) {
            out.extend_from_slice(format!("\\#{c:03o}").as_bytes());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Whether an error line of a local copy is one stock's sender (the client process) says.
fn said_by_sender(text: &str) -> bool {
    [
        "rsync: [sender]",
        "rsync error:",
        "rsync warning:",
        "file has vanished:",
        "symlink has no referent:",
        "filename overflows max-path len",
        "*** Skipping any contents",
    ]
    .iter()
    .any(|p| text.starts_with(p))
}

/// A server's escaping of a message (stock's filtered_fwrite with isprint()): control
/// characters but tab, and, unless `eight_bit` or the locale's characters are single bytes,
/// every byte that is not printable ASCII; a backslash that would read as an escape too.
pub fn escape_isprint(text: &[u8], eight_bit: bool) -> Vec<u8> {
    filtered_text(
        text,
        !eight_bit && locale_text() != LocaleText::Bytes,
        false,
    )
}

/// stock's filtered_fwrite on a message (`mux::stderr_text`, `mux::client_text`, a local
/// copy's receiving side): `use_isprint`: only printable ASCII and tab pass; else only control characters are
/// escaped, and with `check_utf8` bytes outside valid UTF-8 sequences.
pub fn filtered_text(msg: &[u8], use_isprint: bool, check_utf8: bool) -> Vec<u8> {
    let msg = &raw_bytes(msg)[..];
    let (body, tail) = match msg.last() {
        Some(b'\n' | b'\r') => msg.split_at(msg.len() - 1),
        _ => (msg, &[][..]),
    };
    let (head, body) = match body.first() {
        Some(b'\r') => body.split_at(1),
        _ => (&[][..], body),
    };
    let invalid = if check_utf8 {
        unprintable_in(locale_text(), body)
    } else {
        vec![false; body.len()]
    };
    let mut out = head.to_vec();
    for (i, &c) in body.iter().enumerate() {
        let literal = c == b'\\'
            && body.len() > i + 4
            && body[i + 1] == b'#'
            && body[i + 2..i + 5].iter().all(u8::is_ascii_digit);
        let unprintable = c != b'\t' && (c < b' ' || (use_isprint && !(b' '..=b'~').contains(&c)));
        if literal || unprintable || invalid[i] {
            out.extend_from_slice(format!("\\#{c:03o}").as_bytes());
        } else {
            out.push(c);
        }
    }
    out.extend_from_slice(tail);
    out
}

/// The inverse of [`lossless_text`] on a message's bytes.
pub fn raw_bytes(text: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    // U+F780..U+F7FF are EF 9E 80 .. EF 9F BF in UTF-8.
    if !text
        .windows(2)
        .any(|w| w[0] == 0xEF && (w[1] == 0x9E || w[1] == 0x9F))
    {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == 0xEF && i + 2 < text.len() {
            if let Some(c) = std::str::from_utf8(&text[i..i + 3])
                .ok()
                .and_then(|s| s.chars().next())
            {
                let code = c as u32;
                if (BYTE_CHARS + 0x80..=BYTE_CHARS + 0xFF).contains(&code) {
                    out.push((code - BYTE_CHARS) as u8);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(text[i]);
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

/// Which bytes the locale's charset can print, as stock's client checks its output
/// (`iconv_open(charset, charset)` on the locale's charset): in UTF-8 the valid sequences,
/// in the C locale's ASCII none above 0x7f, in another charset every byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocaleText {
    Utf8,
    Ascii,
    Bytes,
}

/// The locale's charset (stock's default_charset: `nl_langinfo(CODESET)` after
/// `setlocale(LC_CTYPE, "")`, from LC_ALL / LC_CTYPE / LANG); `ANSI_X3.4-1968` in the C
/// locale.
pub fn locale_charset() -> String {
    // SAFETY: setlocale with "" reads the environment; nl_langinfo's static string is
    // copied at once.
    unsafe {
        libc::setlocale(libc::LC_CTYPE, c"".as_ptr());
        let p = libc::nl_langinfo(libc::CODESET);
        if p.is_null() {
            "ANSI_X3.4-1968".into()
        } else {
            std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

/// Which of `text`'s bytes `locale` cannot print (stock's charset check): in UTF-8 those
/// outside valid sequences, in ASCII every byte above 0x7f, otherwise none.
pub fn unprintable_in(locale: LocaleText, text: &[u8]) -> Vec<bool> {
    let mut invalid = vec![false; text.len()];
    match locale {
        LocaleText::Ascii => {
            for (flag, &c) in invalid.iter_mut().zip(text) {
                *flag = c >= 0x80;
            }
        }
        LocaleText::Utf8 => {
            let mut at = 0;
            for chunk in text.utf8_chunks() {
                at += chunk.valid().len();
                for flag in &mut invalid[at..at + chunk.invalid().len()] {
                    *flag = true;
                }
                at += chunk.invalid().len();
            }
        }
        LocaleText::Bytes => {}
    }
    invalid
}

/// The locale's [`LocaleText`] (looked up once).
pub fn locale_text() -> LocaleText {
    static KIND: std::sync::OnceLock<LocaleText> = std::sync::OnceLock::new();
    *KIND.get_or_init(|| {
        match locale_charset()
            .to_ascii_uppercase()
            .replace('-', "")
            .as_str()
        {
            "UTF8" => LocaleText::Utf8,
            "" | "ANSI_X3.41968" | "ASCII" | "USASCII" => LocaleText::Ascii,
            _ => LocaleText::Bytes,
        }
    })
}

pub fn escape_name(name: &[u8]) -> Vec<u8> {
    escape_name_with(name, false)
}

/// [`escape_name`]; with `eight_bit` (`-8`), bytes with the high bit set pass through as they are.
pub fn escape_name_with(name: &[u8], eight_bit: bool) -> Vec<u8> {
    let unprintable = |c: u8| (c < 0x20 && c != b'\t') || c == 0x7f;
    // A backslash that would read as an escape (`\#` and three digits) is escaped itself,
    // as stock's output does, so that every escape in a line is one.
    let lone_backslash = |at: usize| {
        name[at] == b'\\'
            && name.get(at + 1) == Some(&b'#')
            && name.len() > at + 4
            && name[at + 2..at + 5].iter().all(u8::is_ascii_digit)
    };
    if !name
        .iter()
        .enumerate()
        .any(|(at, &c)| unprintable(c) || c >= 0x80 || (c == b'\\' && lone_backslash(at)))
    {
        return name.to_vec();
    }
    let esc = |out: &mut Vec<u8>, c: u8| out.extend_from_slice(format!("\\#{c:03o}").as_bytes());
    let locale = locale_text();
    let mut out = Vec::with_capacity(name.len() + 8);
    if locale != LocaleText::Utf8 {
        for (at, &c) in name.iter().enumerate() {
            let pass = c >= 0x80 && (eight_bit || locale == LocaleText::Bytes);
            if unprintable(c) || (c >= 0x80 && !pass) || (c == b'\\' && lone_backslash(at)) {
                esc(&mut out, c);
            } else {
                out.push(c);
            }
        }
        return out;
    }
    let mut at = 0;
    for chunk in name.utf8_chunks() {
        for ch in chunk.valid().chars() {
            let ascii = ch.is_ascii().then_some(ch as u8);
            match ascii {
                Some(c) if unprintable(c) || (c == b'\\' && lone_backslash(at)) => esc(&mut out, c),
                _ => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
            }
            at += ch.len_utf8();
        }
        for &c in chunk.invalid() {
            if eight_bit {
                out.push(c);
            } else {
                esc(&mut out, c);
            }
            at += 1;
        }
    }
    out
}

/// rsync reads at most this many width digits (its escape buffer's size); a digit past them
/// is taken as the escape letter (unknown: the text stays as written).
const MAX_WIDTH_DIGITS: usize = 23;

/// Whether the `--out-format`/`--log-file-format` string `fmt` uses the escape `%esc`
/// (past flags and a width such as `%-10n`); `%%` is a literal percent, not an escape.
pub fn format_has(fmt: &str, esc: u8) -> bool {
    let b = fmt.as_bytes();
    let mut i = 0;
    while let Some(off) = b[i..].iter().position(|&c| c == b'%') {
        i += off + 1;
        while b.get(i) == Some(&b'\'') {
            i += 1;
        }
        let left = b.get(i) == Some(&b'-');
        if left {
            i += 1;
        }
        let digits = i;
        while b.get(i).is_some_and(|c| c.is_ascii_digit())
            && i - digits < MAX_WIDTH_DIGITS - usize::from(left)
        {
            i += 1;
        }
        while b.get(i) == Some(&b'\'') {
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

/// Deletion lines as rsync's `log_delete` writes them: in the user's format when that has `%i`
/// or `%o` (so `*deleting   NAME` for `-i`), else `deleting NAME`; shown with `-v` or any
/// format, never with `-q`.
#[derive(Debug, Clone, Default)]
pub struct DeletionLines {
    /// rsync's `stdout_format` (see [`Reporter`]); `None`: deletions are not shown.
    format: Option<String>,
    eight_bit: bool,
    owner: bool,
    group: bool,
    /// `%C` of a deletion: this many blanks (the width of the checksum `%C` shows).
    sum_hex_len: usize,
}

impl DeletionLines {
    pub fn new(opts: &Options) -> DeletionLines {
        let format = match (&opts.out_format, opts.itemize, opts.verbose) {
            _ if opts.quiet => None,
            (Some(f), _, _) => Some(f.clone()),
            (None, 1.., _) => Some("%i %n%L".into()),
            (None, 0, 1..) => Some("%n%L".into()),
            _ => None,
        };
        DeletionLines {
            format,
            eight_bit: opts.eight_bit_output,
            owner: opts.owner,
            group: opts.group,
            sum_hex_len: 2 * sum_len(opts),
        }
    }

    /// `%C` is `bytes` of checksum wide (see [`shown_sum`]).
    pub fn set_sum_len(&mut self, bytes: usize) {
        self.sum_hex_len = 2 * bytes;
    }

    /// The line (with its newline) for deleting `name` (a directory's with its slash), whose
    /// mode is `mode` (0 when unknown); `None` when deletions are not shown.
    pub fn line(&self, name: &[u8], mode: u32) -> Option<Vec<u8>> {
        let fmt = deletion_format(self.format.as_deref()?);
        let facts = deletion_facts(mode);
        let ctx = FormatContext {
            op: "del.",
            sum_hex_len: self.sum_hex_len,
            eight_bit: self.eight_bit,
            owner: self.owner,
            group: self.group,
            daemon: None,
        };
        let mut line = Vec::new();
        format_line(
            &mut line,
            fmt,
            &Itemize::new(b'*', b'f'),
            name,
            b"",
            &facts,
            &ctx,
        );
        line.push(b'\n');
        Some(line)
    }
}

/// What an `--out-format`/`--log-file-format` line may say of an item beyond its itemize
/// flags and name: rsync's `%l %b %c %C %B %M %U %G %f`.
#[derive(Debug, Clone, Default)]
pub struct ItemFacts {
    /// Full `st_mode` (type and permission bits); 0 when unknown.
    pub mode: u32,
    /// `%l`: the length the file list gives the item.
    pub size: u64,
    pub mtime: i64,
    /// `%U`/`%G`: owner and group when they are preserved.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `%f`: the sender's path of the item when it is not the name itself.
    pub path: Option<Vec<u8>>,
    /// `%b`/`%c`: protocol bytes written and read for the item's data.
    pub written: u64,
    pub read: u64,
    /// `%C`: the whole-file checksum in hex (already in rsync's canonical byte order).
    pub sum_hex: Option<String>,
    /// `-c`: the checksum the file list gives the item (raw).
    pub list_sum: Option<Vec<u8>>,
}

impl ItemFacts {
    /// What the file list says of `e` (`%f` left to the name).
    pub fn of(e: &rtsync_tree::FileEntry) -> ItemFacts {
        ItemFacts {
            mode: e.mode,
            size: e.size,
            mtime: e.mtime,
            uid: Some(e.uid),
            gid: Some(e.gid),
            list_sum: e.checksum.clone(),
            ..ItemFacts::default()
        }
    }

    /// [`ItemFacts::of`] on the sending side: `%f` is `path`, as [`sender_path`] names it.
    pub fn sent_from(e: &rtsync_tree::FileEntry, path: &[u8]) -> ItemFacts {
        ItemFacts {
            path: Some(sender_path(path, &e.name)),
            ..ItemFacts::of(e)
        }
    }
}

/// The setting a line is formatted in: who logs it and what the checksum looks like.
pub struct FormatContext<'a> {
    /// `%o`: `send`, `recv` or `del.`.
    pub op: &'a str,
    /// `%C` of an item without a checksum: this many hex digits of blanks.
    pub sum_hex_len: usize,
    pub eight_bit: bool,
    /// `-o`/`-g`: `%U`/`%G` show the owner and group (else `0` and `DEFAULT`).
    pub owner: bool,
    pub group: bool,
    /// `%m`, `%P`, `%u`, `%h`, `%a` inside a daemon (module name, module path, user, host,
    /// address); outside one `%m` is empty and the others stay as written.
    pub daemon: Option<&'a DaemonFacts>,
}

/// What a daemon's log format adds about the connection.
#[derive(Debug, Clone, Default)]
pub struct DaemonFacts {
    pub module: String,
    pub module_path: String,
    pub user: Option<String>,
    pub host: String,
    pub addr: String,
}

/// The local time as rsync's logs show it: `YYYY/MM/DD hh:mm:ss`.
pub fn now_time() -> String {
    // SAFETY: time(NULL) has no preconditions.
    list_time(unsafe { libc::time(std::ptr::null_mut()) })
}

/// Expands an `--out-format` string for one item as rsync's `log_formatted` does: each escape
/// takes `'` (digit groups; twice: units), `-` (left-justify) and a width; unknown escapes are
/// left as written. The finished line is escaped as a whole (widths count raw bytes).
pub fn format_line(
    line: &mut Vec<u8>,
    fmt: &str,
    it: &Itemize,
    name: &[u8],
    suffix: &[u8],
    facts: &ItemFacts,
    ctx: &FormatContext,
) {
    let mut raw = Vec::with_capacity(fmt.len() + name.len() + 16);
    expand(&mut raw, fmt, it, name, suffix, facts, ctx);
    line.extend_from_slice(&escape_name_with(&raw, ctx.eight_bit));
}

fn expand(
    line: &mut Vec<u8>,
    fmt: &str,
    it: &Itemize,
    name: &[u8],
    suffix: &[u8],
    facts: &ItemFacts,
    ctx: &FormatContext,
) {
    let b = fmt.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            line.push(b[i]);
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        let mut humanize = 0u32;
        while b.get(i) == Some(&b'\'') {
            humanize += 1;
            i += 1;
        }
        let left = b.get(i) == Some(&b'-');
        if left {
            i += 1;
        }
        let digits = i;
        while b.get(i).is_some_and(|c| c.is_ascii_digit())
            && i - digits < MAX_WIDTH_DIGITS - usize::from(left)
        {
            i += 1;
        }
        let width: Option<usize> = std::str::from_utf8(&b[digits..i])
            .ok()
            .and_then(|d| d.parse().ok());
        while b.get(i) == Some(&b'\'') {
            humanize += 1;
            i += 1;
        }
        let Some(&esc) = b.get(i) else {
            line.extend_from_slice(&b[start..]);
            break;
        };
        i += 1;
        let spec = left || width.is_some();
        let value: Option<Vec<u8>> = match esc {
            b'o' => Some(ctx.op.as_bytes().to_vec()),
            b'n' => Some(name.to_vec()),
            b'f' => Some(full_name(name, facts)),
            b'L' => {
                if suffix.is_empty() && !spec {
                    Some(Vec::new())
                } else {
                    // The arrow stays in front; the width pads what follows it.
                    let (arrow, rest) = if suffix.len() >= 4 {
                        suffix.split_at(4)
                    } else {
                        (&b"    "[..], suffix)
                    };
                    let mut v = arrow.to_vec();
                    v.extend(pad(rest.to_vec(), left, width));
                    line.extend(v);
                    continue;
                }
            }
            b'i' => Some(if it.update == b'*' {
                b"*deleting  ".to_vec()
            } else {
                it.render().into_bytes()
            }),
            b'l' => Some(human(facts.size, humanize).into_bytes()),
            b'b' => Some(human(facts.written, humanize).into_bytes()),
            b'c' => Some(human(facts.read, humanize).into_bytes()),
            b'U' => Some(
                facts
                    .uid
                    .filter(|_| ctx.owner)
                    .unwrap_or(0)
                    .to_string()
                    .into_bytes(),
            ),
            b'G' => Some(match facts.gid.filter(|_| ctx.group) {
                Some(g) => g.to_string().into_bytes(),
                None => b"DEFAULT".to_vec(),
            }),
            b'p' => Some(std::process::id().to_string().into_bytes()),
            b'M' => Some(list_time(facts.mtime).replace(' ', "-").into_bytes()),
            b'B' => {
                let kind = rtsync_tree::FileKind::from_mode(facts.mode)
                    .unwrap_or(rtsync_tree::FileKind::Regular);
                Some(mode_string(facts.mode, kind).as_bytes()[1..].to_vec())
            }
            b't' => Some(now_time().into_bytes()),
            b'C' => Some(match &facts.sum_hex {
                Some(h) => h.clone().into_bytes(),
                None => vec![b' '; ctx.sum_hex_len],
            }),
            b'm' => Some(
                ctx.daemon
                    .map(|d| d.module.clone())
                    .unwrap_or_default()
                    .into_bytes(),
            ),
            b'P' => ctx.daemon.map(|d| d.module_path.clone().into_bytes()),
            b'u' => ctx
                .daemon
                .and_then(|d| d.user.clone())
                .map(String::into_bytes),
            b'h' => ctx.daemon.map(|d| d.host.clone().into_bytes()),
            b'a' => ctx.daemon.map(|d| d.addr.clone().into_bytes()),
            b'%' => Some(b"%".to_vec()),
            _ => None,
        };
        match value {
            Some(v) => line.extend(pad(v, left, width)),
            None => line.extend_from_slice(&b[start..i]),
        }
    }
}

/// printf's `%-Ns`/`%Ns`.
fn pad(v: Vec<u8>, left: bool, width: Option<usize>) -> Vec<u8> {
    let Some(w) = width else { return v };
    if v.len() >= w {
        return v;
    }
    let fill = std::iter::repeat_n(b' ', w - v.len());
    if left {
        v.into_iter().chain(fill).collect()
    } else {
        fill.chain(v).collect()
    }
}

/// `%f`: the item's path on the sender (or in the module), without a leading slash.
fn full_name(name: &[u8], facts: &ItemFacts) -> Vec<u8> {
    let full = match &facts.path {
        Some(p) => p.as_slice(),
        None => match name {
            [rest @ .., b'/'] if !rest.is_empty() => rest,
            _ => name,
        },
    };
    let trimmed = match full {
        [b'/', rest @ ..] => rest,
        _ => full,
    };
    trimmed.to_vec()
}

/// The first components of the absolute `sources` (those without a `/./` marker, which
/// starts their names after it): what a `-R` sender's names under them start with.
pub fn rooted_firsts(sources: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut firsts: Vec<Vec<u8>> = Vec::new();
    for src in sources {
        if !src.starts_with(b"/") || src.windows(3).any(|w| w == b"/./") {
            continue;
        }
        let trimmed = &src[src.iter().position(|&b| b != b'/').unwrap_or(src.len())..];
        let first = trimmed.split(|&b| b == b'/').next().unwrap_or(b"");
        if !first.is_empty() && !firsts.iter().any(|f| f == first) {
            firsts.push(first.to_vec());
        }
    }
    firsts
}

/// Bytes of the checksum `%C` shows: the transfer checksum (with `-c`, the file checksum).
fn sum_len(opts: &Options) -> usize {
    sum_kind(opts, opts.checksum).digest_len()
}

/// `--max-size` / `--min-size` (`limits`: min, max): what stock's generator says (at
/// `--info=skip`) of a regular file of `size` bytes it skips, `None` for one it takes.
pub fn size_skip(limits: (Option<u64>, Option<u64>), name: &[u8], size: u64) -> Option<String> {
    let (min, max) = limits;
    let why = if max.is_some_and(|m| size > m) {
        "over max-size"
    } else if min.is_some_and(|m| size < m) {
        "under min-size"
    } else {
        return None;
    };
    Some(format!("{} is {why}", lossless_text(name)))
}

/// The checksum `%C` shows (its width, blank): with `-c` the file list's, else the
/// transfer's.
pub fn shown_sum(
    checksum: bool,
    xfer: rtsync_delta::ChecksumKind,
    file: rtsync_delta::ChecksumKind,
) -> rtsync_delta::ChecksumKind {
    if checksum {
        file
    } else {
        xfer
    }
}

/// The checksum `--checksum-choice` names for transfers (with `file_sum`, for `-c`'s file
/// sums: its second word when given), xxh128 by default.
pub fn sum_kind(opts: &Options, file_sum: bool) -> rtsync_delta::ChecksumKind {
    let choice = opts.checksum_choice.as_deref().unwrap_or("");
    let mut parts = choice.splitn(2, ',');
    let xfer = parts.next().unwrap_or("");
    let name = if file_sum {
        parts.next().unwrap_or(xfer)
    } else {
        xfer
    };
    rtsync_delta::ChecksumKind::from_name(name).unwrap_or(rtsync_delta::ChecksumKind::Xxh128)
}

/// `%f` on the sending side: the path an item is read from as the sender names it, with the
/// root of `src/` as `src/.` and no leading `./`.
pub fn sender_path(path: &[u8], name: &[u8]) -> Vec<u8> {
    let mut full = path.to_vec();
    if name == b"." {
        if !full.ends_with(b"/") {
            full.push(b'/');
        }
        full.push(b'.');
    }
    while full.starts_with(b"./") && full.len() > 2 {
        full.drain(..2);
    }
    full
}

/// A checksum of `kind` in hex as rsync prints it (see [`sum_hex`]).
pub fn sum_hex_as(sum: &[u8], kind: rtsync_delta::ChecksumKind) -> String {
    use rtsync_delta::ChecksumKind;
    sum_hex(sum, !matches!(kind, ChecksumKind::Md4 | ChecksumKind::Md5))
}

/// A checksum in hex as rsync prints it: MD4/MD5 byte by byte, the xxHash family (stored
/// little-endian on the wire) from the last byte back.
pub fn sum_hex(sum: &[u8], reversed: bool) -> String {
    let mut s = String::with_capacity(sum.len() * 2);
    let mut push = |b: &u8| s.push_str(&format!("{b:02x}"));
    if reversed {
        sum.iter().rev().for_each(&mut push);
    } else {
        sum.iter().for_each(&mut push);
    }
    s
}

/// `--info=stats3`'s heap summary of this process (the C allocator's own counters, which Rust's
/// allocations go through), in stock's layout: a blank line, then
/// `rsync[PID] (ROLE) heap statistics:` and one line per counter. Empty where the C library
/// keeps no such counters.
pub fn heap_stats(role: &str) -> String {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        let mi = unsafe { libc::mallinfo2() };
        let mut out = format!(
            "\nrsync[{}] ({role}) heap statistics:\n",
            std::process::id()
        );
        for (title, descr, num) in [
            ("arena", "bytes from sbrk", mi.arena),
            ("ordblks", "chunks not in use", mi.ordblks),
            ("smblks", "free fastbin blocks", mi.smblks),
            ("hblks", "chunks from mmap", mi.hblks),
            ("hblkhd", "bytes from mmap", mi.hblkhd),
            ("allmem", "bytes from sbrk + mmap", mi.arena + mi.hblkhd),
            ("usmblks", "always 0", mi.usmblks),
            ("fsmblks", "bytes in freed fastbin blocks", mi.fsmblks),
            ("uordblks", "bytes used", mi.uordblks),
            ("fordblks", "bytes free", mi.fordblks),
            ("keepcost", "bytes in releasable chunk", mi.keepcost),
        ] {
            out.push_str(&format!(
                "  {:<11}{num:>10}   ({descr})\n",
                format!("{title}:")
            ));
        }
        out
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = role;
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_paths_are_cleaned_like_stock() {
        for (dir, name, want) in [
            ("dst", "a", "dst/a"),
            ("./dst/", "sub/", "dst/sub"),
            ("dst", "./", "dst/."),
            ("", "a", "a"),
            (".", ".", "."),
            ("a//b", "./c", "a/b/c"),
        ] {
            let got = clean_join(dir.as_bytes(), name.as_bytes());
            assert_eq!(String::from_utf8(got).unwrap(), want, "{dir:?} + {name:?}");
        }
    }

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

    #[test]
    fn escapes_a_backslash_that_reads_as_an_escape() {
        assert_eq!(escape_name(b"h\\#012x"), b"h\\#134#012x".to_vec());
        assert_eq!(escape_name(b"back\\slash"), b"back\\slash".to_vec());
        assert_eq!(escape_name(b"end\\#01"), b"end\\#01".to_vec());
    }
}
