//! rsync's command-line options: the model and a parser with rsync's spelling and messages.
//!
//! The parser is table-driven: every option rsync accepts is listed once with its long name, short
//! letter, argument kind and effect. Boolean options accept `--no-NAME` (and `--no-X` for a short
//! letter `-X`) to turn them off, as rsync does.

use rtsync_filter::FilterOption;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// When `--delete` removes extraneous files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeleteMode {
    #[default]
    Off,
    Before,
    During,
    Delay,
    After,
}

/// Which of `--compare-dest`, `--copy-dest` and `--link-dest` was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AltDest {
    Compare,
    Copy,
    Link,
}

impl AltDest {
    pub fn option(self) -> &'static str {
        match self {
            AltDest::Compare => "--compare-dest",
            AltDest::Copy => "--copy-dest",
            AltDest::Link => "--link-dest",
        }
    }
}

/// rsync's limit on `--compare-dest`/`--copy-dest`/`--link-dest` directories.
pub const MAX_BASIS_DIRS: usize = 20;

/// Everything the user asked for. Field names follow rsync's long option names.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub verbose: u32,
    pub quiet: bool,
    pub itemize: u32,
    pub dry_run: bool,
    pub recursive: bool,
    /// `-r`/`--no-recursive` given explicitly (not through `-a`): `--files-from` keeps it.
    pub explicit_recursive: Option<bool>,
    /// `-R`/`--no-relative` given explicitly.
    pub explicit_relative: Option<bool>,
    pub dirs: bool,
    /// `--old-dirs` (`--old-d`): `--dirs` for an rsync too old to know it, done as
    /// `-r --exclude='/*/*'` (the last of `--dirs`/`--no-dirs`/`--old-dirs` wins).
    pub old_dirs: bool,
    pub links: bool,
    pub perms: bool,
    /// `-A`: preserve ACLs (implies `-p`).
    pub acls: bool,
    pub executability: bool,
    pub times: bool,
    pub omit_dir_times: bool,
    pub omit_link_times: bool,
    /// `omit_dir_times` comes from `-b` alone, not from `-O`.
    pub omit_dir_times_implied: bool,
    pub owner: bool,
    pub group: bool,
    pub devices: bool,
    pub specials: bool,
    /// `--drop-D`: a receiver creates no devices or specials, whatever `-D` says (the file
    /// list keeps its `-D` encoding, so one end of a connection can be given it alone).
    pub drop_devices: bool,
    /// `--confine-root=DIR`: operator-supplied paths (merge files, …) must resolve inside DIR.
    pub confine_root: Option<PathBuf>,
    pub hard_links: bool,
    /// `-X` count: 1 copies extended attributes, 2 also rsync's own `user.rsync.%*` ones.
    pub xattrs: u8,
    pub sparse: bool,
    /// `--preallocate`: reserve each received file's size before writing it.
    pub preallocate: bool,
    /// `--fsync`: each received file is flushed to disk before it goes into place.
    pub fsync: bool,
    /// `--skip-compress`: suffixes a sender does not compress (passed on to a sending
    /// server; our own sender compresses everything it sends compressed).
    pub skip_compress: Option<String>,
    /// `--open-noatime`: open source files without updating their access times.
    pub open_noatime: bool,
    /// `-U`/`--atimes` (counted: `-UU` also means `--open-noatime`): access times of
    /// non-directories are preserved.
    pub atimes: u32,
    pub checksum: bool,
    pub update: bool,
    pub relative: bool,
    pub implied_dirs: bool,
    pub one_file_system: u32,
    pub copy_links: bool,
    pub copy_unsafe_links: bool,
    pub safe_links: bool,
    /// `--munge-links`: this side munges the symlinks it receives and unmunges the ones it
    /// sends (see [`rtsync_tree::munge`]). A local copy's client is its sender.
    pub munge_links: bool,
    /// `--insecure-links`: operator paths follow other users' symlinks (see rtsync-oppath).
    pub insecure_links: bool,
    pub copy_dirlinks: bool,
    pub keep_dirlinks: bool,
    pub human_readable: u32,
    pub progress: bool,
    pub stats: bool,
    pub delete: DeleteMode,
    pub delete_excluded: bool,
    /// `--del`/`--delete-during` given as such (a server is told `--delete-during`).
    pub delete_during_given: bool,
    pub ignore_errors: bool,
    pub force: bool,
    pub max_delete: Option<i64>,
    /// Filter options in command-line order.
    pub filters: Vec<FilterOption>,
    pub cvs_exclude: bool,
    pub files_from: Option<OsString>,
    pub from0: bool,
    pub temp_dir: Option<OsString>,
    pub partial: bool,
    pub partial_dir: Option<OsString>,
    pub inplace: bool,
    /// `--copy-devices`: the sender lists devices as regular files and sends their contents.
    pub copy_devices: bool,
    /// `--write-devices`: the receiver writes into a device in the way of a file (implies
    /// `--inplace`).
    pub write_devices: bool,
    pub append: bool,
    /// `--append-verify`: like `--append`, but the whole file (old prefix included) is
    /// checksummed and re-sent when it does not match.
    pub append_verify: bool,
    /// `Some(true)` for `-W`, `Some(false)` for `--no-whole-file`; `None` picks rsync's default
    /// (whole-file for local copies).
    pub whole_file: Option<bool>,
    pub size_only: bool,
    pub ignore_times: bool,
    pub existing: bool,
    pub ignore_existing: bool,
    pub remove_source_files: bool,
    pub numeric_ids: bool,
    pub chmod: Vec<String>,
    pub max_size: Option<u64>,
    pub min_size: Option<u64>,
    pub bwlimit: Option<u64>,
    pub timeout: u64,
    pub contimeout: u64,
    pub backup: bool,
    pub backup_dir: Option<OsString>,
    pub suffix: Option<OsString>,
    pub list_only: bool,
    pub mkpath: bool,
    pub prune_empty_dirs: bool,
    pub modify_window: i64,
    pub block_size: Option<u32>,
    pub checksum_seed: Option<i32>,
    pub delay_updates: bool,
    /// `--compare-dest`/`--copy-dest`/`--link-dest` (one kind, up to 20 directories).
    pub alt_dest: Option<AltDest>,
    pub basis_dirs: Vec<OsString>,
    /// `-y`/`--fuzzy` count: 1 looks in the destination directory, 2 also in basis dirs.
    pub fuzzy: u32,
    /// `--stop-at`/`--stop-after`: the Unix time at which the transfer stops.
    pub stop_at: Option<i64>,
    /// `--max-alloc` as given.
    pub max_alloc: Option<String>,
    /// `--iconv=LOCAL[,REMOTE]` (or RSYNC_ICONV on a client): file names are converted
    /// between the charsets; see `rtsync_wire::iconv`.
    pub iconv: Option<String>,
    /// `--usermap` / `--groupmap` (or a `--chown` half, as `*:NAME`).
    pub usermap: Option<String>,
    pub groupmap: Option<String>,
    /// Whether each map came from `--chown` (for stock's conflict messages).
    pub usermap_via_chown: bool,
    pub groupmap_via_chown: bool,
    pub super_user: Option<bool>,
    pub fake_super: bool,
    /// `-s` / `--secluded-args` as given (None: not given; see [`Options::secluded_args`]).
    pub protect_args: Option<bool>,
    /// `--old-args` count (None: not given): 1 leaves remote file names to the remote
    /// shell, 2 options too.
    pub old_args: Option<u8>,
    /// `--trust-sender`: skip the checks of a remote sender's file list.
    pub trust_sender: bool,
    pub eight_bit_output: bool,
    /// `--stderr`: where messages go. 2 (`errors`, the default): errors and warnings to
    /// stderr, a remote-shell server's too (its own stderr, not the wire); 1 (`all`,
    /// `--msgs2stderr`): every message; 0 (`client`, `--no-msgs2stderr`): a server sends
    /// them all to the client.
    pub stderr_mode: Option<u8>,
    pub out_format: Option<String>,
    pub log_file: Option<OsString>,
    pub log_file_format: Option<String>,
    pub ignore_missing_args: bool,
    pub delete_missing_args: bool,
    pub inc_recursive: Option<bool>,
    /// `--write-batch=FILE` / `--only-write-batch=FILE` (then `only_write_batch`).
    pub write_batch: Option<OsString>,
    /// The batch is written instead of changing the destination (`--only-write-batch`;
    /// a receiving server is told `--only-write-batch=X`).
    pub only_write_batch: bool,
    /// `--read-batch=FILE` (`-` is standard input).
    pub read_batch: Option<OsString>,
    // Network.
    pub rsh: Option<String>,
    pub rsync_path: Option<String>,
    pub compress: bool,
    pub compress_choice: Option<String>,
    pub compress_level: Option<i32>,
    pub checksum_choice: Option<String>,
    pub protocol: Option<u32>,
    pub port: Option<u16>,
    pub address: Option<String>,
    pub password_file: Option<OsString>,
    /// `--early-input=FILE`: bytes for a daemon module's `early exec` command.
    pub early_input: Option<OsString>,
    pub sockopts: Option<String>,
    pub no_motd: bool,
    pub ipv4: bool,
    pub ipv6: bool,
    pub remote_options: Vec<OsString>,
    /// `--copy-as=USER[:GROUP]`: the copying (this side's; both in a local copy) runs as
    /// that user (see [`crate::idmap::become_copy_as`]).
    pub copy_as: Option<String>,
    pub blocking_io: bool,
    pub info: Vec<String>,
    pub debug: Vec<String>,
    // Modes.
    pub server: bool,
    pub sender: bool,
    pub daemon: bool,
    pub version: u32,
    pub help: bool,
    /// Count of `-h`: on its own it means `--help`, otherwise `--human-readable`.
    pub short_h: u32,
    /// Non-option arguments: sources then destination (or a server's `.` and paths).
    pub args: Vec<OsString>,
}

/// A command-line problem, reported as rsync reports it (exit code 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    /// The text after `rsync: `.
    pub message: String,
}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError {
        message: message.into(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Arg {
    /// A switch; `--no-NAME` turns it off.
    Flag,
    /// A switch without a `--no-` form.
    Plain,
    Required,
}

type Apply = fn(&mut Options, bool, Option<&OsStr>) -> Result<(), UsageError>;

struct Spec {
    long: &'static str,
    short: Option<u8>,
    arg: Arg,
    apply: Apply,
}

macro_rules! flag {
    ($long:expr, $short:expr, |$o:ident, $on:ident| $body:expr) => {
        Spec {
            long: $long,
            short: $short,
            arg: Arg::Flag,
            apply: |$o, $on, _| {
                $body;
                Ok(())
            },
        }
    };
}

macro_rules! plain {
    ($long:expr, $short:expr, |$o:ident| $body:expr) => {
        Spec {
            long: $long,
            short: $short,
            arg: Arg::Plain,
            apply: |$o, _, _| {
                $body;
                Ok(())
            },
        }
    };
}

macro_rules! value {
    ($long:expr, $short:expr, |$o:ident, $v:ident| $body:expr) => {
        Spec {
            long: $long,
            short: $short,
            arg: Arg::Required,
            apply: |$o, _, v| {
                let $v = v.expect("required argument");
                $body;
                Ok(())
            },
        }
    };
}

/// Accepted for compatibility; has no effect here.
macro_rules! ignored {
    ($long:expr, $arg:expr) => {
        Spec {
            long: $long,
            short: None,
            arg: $arg,
            apply: |_, _, _| Ok(()),
        }
    };
}

/// Records a user (`users`) or group map, refusing a second one as stock does; a map
/// implies preserving that id.
fn set_map(o: &mut Options, users: bool, map: String, via_chown: bool) -> Result<(), UsageError> {
    let (slot, was_chown, what) = if users {
        (&mut o.usermap, &mut o.usermap_via_chown, "user")
    } else {
        (&mut o.groupmap, &mut o.groupmap_via_chown, "group")
    };
    if slot.is_some() {
        return Err(usage(match (via_chown, *was_chown) {
            (false, true) => format!("--{what}map conflicts with prior --chown."),
            (false, false) => format!("You can only specify --{what}map once."),
            (true, false) => format!("--chown conflicts with prior --{what}map."),
            (true, true) => format!("You can only specify a {what}-affecting --chown once."),
        }));
    }
    *slot = Some(map);
    *was_chown = via_chown;
    if users {
        o.owner = true;
    } else {
        o.group = true;
    }
    Ok(())
}

fn text(v: &OsStr) -> String {
    v.to_string_lossy().into_owned()
}

fn bytes(v: &OsStr) -> Vec<u8> {
    v.as_bytes().to_vec()
}

fn number<T: std::str::FromStr>(name: &str, v: &OsStr) -> Result<T, UsageError> {
    text(v)
        .trim()
        .parse()
        .map_err(|_| usage(format!("--{name}={}: invalid numeric value", text(v))))
}

/// Parses rsync's SIZE syntax: a number with an optional K/M/G/T/P suffix (1024-based, or with
/// `B` after the suffix 1000-based... rsync: "KB"=1000, "K"/"KiB"=1024) and an optional `+1`/`-1`.
pub fn parse_size(s: &str, default_unit: u8) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(split);
    if num.is_empty() {
        return None;
    }
    let value: f64 = num.parse().ok()?;
    let mut rest = rest.as_bytes();
    let mut unit = default_unit.to_ascii_lowercase();
    if let Some((&c, tail)) = rest.split_first() {
        if c.is_ascii_alphabetic() {
            unit = c.to_ascii_lowercase();
            rest = tail;
        }
    }
    let mut base: f64 = 1024.0;
    if rest.len() >= 2 && rest[0].eq_ignore_ascii_case(&b'i') && rest[1].eq_ignore_ascii_case(&b'b')
    {
        rest = &rest[2..];
    } else if !rest.is_empty() && rest[0].eq_ignore_ascii_case(&b'b') {
        base = 1000.0;
        rest = &rest[1..];
    }
    let power = match unit {
        b'b' => 0,
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        _ => return None,
    };
    let mut bytes = value * base.powi(power);
    match rest {
        b"" => {}
        b"+1" => bytes += 1.0,
        b"-1" => bytes -= 1.0,
        _ => return None,
    }
    if bytes < 0.0 {
        return None;
    }
    Some(bytes as u64)
}

fn size_arg(name: &str, v: &OsStr, unit: u8) -> Result<u64, UsageError> {
    parse_size(&text(v), unit)
        .ok_or_else(|| usage(format!("--{name} value is invalid: {}", text(v))))
}

fn chmod_arg(v: &OsStr) -> Result<String, UsageError> {
    let rule = text(v);
    if crate::chmod::is_valid_chmod(&rule) {
        Ok(rule)
    } else {
        Err(usage(format!(
            "Invalid argument passed to --chmod ({rule})"
        )))
    }
}

fn alt_dest(o: &mut Options, kind: AltDest, dir: &OsStr) -> Result<(), UsageError> {
    if let Some(have) = o.alt_dest.filter(|&k| k != kind) {
        return Err(usage(format!(
            "ERROR: the {} option conflicts with the {} option",
            kind.option(),
            have.option()
        )));
    }
    o.alt_dest = Some(kind);
    if o.basis_dirs.len() >= MAX_BASIS_DIRS {
        return Err(usage(format!(
            "ERROR: at most {MAX_BASIS_DIRS} {} args may be specified",
            kind.option()
        )));
    }
    o.basis_dirs.push(dir.to_owned());
    Ok(())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `--stop-after=MINS`.
fn stop_after(v: &OsStr) -> Result<i64, UsageError> {
    let t = text(v);
    let digits: String = t
        .trim_start()
        .chars()
        .enumerate()
        .take_while(|&(k, c)| c.is_ascii_digit() || (k == 0 && (c == '-' || c == '+')))
        .map(|(_, c)| c)
        .collect();
    match digits.parse::<i64>() {
        Ok(m) if m > 0 && m < i64::MAX / 60 => Ok(now() + m * 60),
        _ => Err(usage(format!("invalid --stop-after value: {t}"))),
    }
}

/// `--stop-at=[[[YY]YY-]MM-]DD[Thh:mm]` or `[Thh:]mm` forms, local time; omitted date parts
/// roll forward to the next matching time in the future.
fn stop_at(v: &OsStr) -> Result<i64, UsageError> {
    let t = text(v);
    let when =
        parse_stop_time(&t).ok_or_else(|| usage(format!("invalid --stop-at format: {t}")))?;
    if when <= now() {
        return Err(usage(format!("--stop-at time is not in the future: {t}")));
    }
    Ok(when)
}

fn parse_stop_time(s: &str) -> Option<i64> {
    let (date, time) = match s.find(['T', 't']) {
        Some(k) => (&s[..k], Some(&s[k + 1..])),
        None if s.contains(':') => ("", Some(s)),
        None => (s, None),
    };
    let nums = |p: &str, seps: &[char]| -> Option<Vec<i32>> {
        if p.is_empty() {
            return Some(Vec::new());
        }
        p.split(seps)
            .map(|n| {
                (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| n.parse().ok())
                    .flatten()
            })
            .collect()
    };
    let d = nums(date, &['-', '/'])?;
    let tm_parts = match time {
        Some("") | None => Vec::new(),
        Some(t) => nums(t.trim_start_matches(':'), &[':'])?,
    };
    if d.len() > 3 || tm_parts.len() > 2 || (d.is_empty() && tm_parts.is_empty()) {
        return None;
    }
    // SAFETY: time/localtime_r/mktime on locals.
    unsafe {
        let now_t = libc::time(std::ptr::null_mut());
        let mut today: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now_t, &mut today);
        let mut tm = today;
        tm.tm_sec = 0;
        tm.tm_isdst = -1;
        // Which unit rolls forward when the time is already past.
        let mut roll = 0;
        match d.len() {
            3 => {
                tm.tm_year = if d[0] < 100 {
                    let mut y = d[0];
                    while y < today.tm_year {
                        y += 100;
                    }
                    y
                } else {
                    d[0] - 1900
                };
                tm.tm_mon = d[1] - 1;
                tm.tm_mday = d[2];
            }
            2 => {
                tm.tm_mon = d[0] - 1;
                tm.tm_mday = d[1];
                roll = 1;
            }
            1 => {
                tm.tm_mday = d[0];
                roll = 2;
            }
            _ => roll = 3,
        }
        match tm_parts.len() {
            2 => {
                tm.tm_hour = tm_parts[0];
                tm.tm_min = tm_parts[1];
            }
            1 => {
                if roll != 3 {
                    return None;
                }
                tm.tm_min = tm_parts[0];
                roll = 4;
            }
            _ => {
                tm.tm_hour = 0;
                tm.tm_min = 0;
            }
        }
        if tm.tm_hour > 23 || tm.tm_min > 59 || !(0..12).contains(&tm.tm_mon) {
            return None;
        }
        if !(1..=31).contains(&tm.tm_mday) {
            return None;
        }
        let mut val = libc::mktime(&mut tm);
        if val == -1 {
            return None;
        }
        for _ in 0..400 {
            if val > now_t {
                break;
            }
            match roll {
                1 => tm.tm_year += 1,
                2 => tm.tm_mon += 1,
                3 => tm.tm_mday += 1,
                4 => tm.tm_hour += 1,
                _ => break,
            }
            tm.tm_isdst = -1;
            val = libc::mktime(&mut tm);
        }
        Some(val as i64)
    }
}

/// `--max-alloc` (or `RSYNC_MAX_ALLOC`): a SIZE of at least 1M; 0 is refused.
fn check_max_alloc(arg: &str) -> Result<(), UsageError> {
    let Some(size) = parse_size(arg, b'b').filter(|_| !arg.trim().is_empty()) else {
        return Err(usage(format!("--max-alloc={arg} is invalid")));
    };
    if size == 0 {
        return Err(usage("max-alloc must be greater than zero"));
    }
    if size < 1024 * 1024 {
        return Err(usage(format!(
            "--max-alloc={arg} is too small (min: 1.00M or 0 for unlimited)"
        )));
    }
    Ok(())
}

fn archive(o: &mut Options, on: bool) {
    o.recursive = on;
    o.links = on;
    o.perms = on;
    o.times = on;
    o.group = on;
    o.owner = on;
    o.devices = on;
    o.specials = on;
}

static SPECS: &[Spec] = &[
    flag!("verbose", Some(b'v'), |o, on| if on {
        o.verbose += 1
    } else {
        o.verbose = 0
    }),
    flag!("quiet", Some(b'q'), |o, on| o.quiet = on),
    flag!("itemize-changes", Some(b'i'), |o, on| if on {
        o.itemize += 1
    } else {
        o.itemize = 0
    }),
    flag!("dry-run", Some(b'n'), |o, on| o.dry_run = on),
    flag!("archive", Some(b'a'), |o, on| archive(o, on)),
    flag!("recursive", Some(b'r'), |o, on| {
        o.recursive = on;
        o.explicit_recursive = Some(on)
    }),
    flag!("dirs", Some(b'd'), |o, on| {
        o.dirs = on;
        o.old_dirs = false
    }),
    plain!("old-dirs", None, |o| o.old_dirs = true),
    plain!("old-d", None, |o| o.old_dirs = true),
    flag!("links", Some(b'l'), |o, on| o.links = on),
    flag!("perms", Some(b'p'), |o, on| o.perms = on),
    flag!("acls", Some(b'A'), |o, on| {
        o.acls = on;
        o.perms |= on
    }),
    flag!("executability", Some(b'E'), |o, on| o.executability = on),
    flag!("times", Some(b't'), |o, on| o.times = on),
    flag!("omit-dir-times", Some(b'O'), |o, on| o.omit_dir_times = on),
    flag!("omit-link-times", Some(b'J'), |o, on| o.omit_link_times =
        on),
    flag!("atimes", Some(b'U'), |o, on| if on {
        o.atimes += 1;
        o.open_noatime |= o.atimes > 1;
    } else {
        o.atimes = 0
    }),
    Spec {
        long: "crtimes",
        short: Some(b'N'),
        arg: Arg::Flag,
        // Linux keeps no settable creation time: stock built for it refuses the option.
        apply: |_, on, _| match on {
            true => Err(usage("This rsync does not support --crtimes (-N)")),
            false => Ok(()),
        },
    },
    flag!("owner", Some(b'o'), |o, on| o.owner = on),
    flag!("group", Some(b'g'), |o, on| o.group = on),
    flag!("D", Some(b'D'), |o, on| {
        o.devices = on;
        o.specials = on
    }),
    flag!("devices", None, |o, on| o.devices = on),
    flag!("drop-D", None, |o, on| o.drop_devices = on),
    value!("confine-root", None, |o, v| o.confine_root =
        Some(PathBuf::from(v))),
    flag!("specials", None, |o, on| o.specials = on),
    flag!("hard-links", Some(b'H'), |o, on| o.hard_links = on),
    flag!("xattrs", Some(b'X'), |o, on| o.xattrs =
        if on { o.xattrs.saturating_add(1) } else { 0 }),
    flag!("sparse", Some(b'S'), |o, on| o.sparse = on),
    flag!("preallocate", None, |o, on| o.preallocate = on),
    flag!("checksum", Some(b'c'), |o, on| o.checksum = on),
    flag!("update", Some(b'u'), |o, on| o.update = on),
    flag!("relative", Some(b'R'), |o, on| {
        o.relative = on;
        o.explicit_relative = Some(on)
    }),
    flag!("implied-dirs", None, |o, on| o.implied_dirs = on),
    flag!("one-file-system", Some(b'x'), |o, on| if on {
        o.one_file_system += 1
    } else {
        o.one_file_system = 0
    }),
    flag!("copy-links", Some(b'L'), |o, on| o.copy_links = on),
    flag!("copy-unsafe-links", None, |o, on| o.copy_unsafe_links = on),
    flag!("safe-links", None, |o, on| o.safe_links = on),
    flag!("munge-links", None, |o, on| o.munge_links = on),
    flag!("insecure-links", None, |o, on| o.insecure_links = on),
    flag!("copy-dirlinks", Some(b'k'), |o, on| o.copy_dirlinks = on),
    flag!("keep-dirlinks", Some(b'K'), |o, on| o.keep_dirlinks = on),
    flag!("human-readable", None, |o, on| if on {
        o.human_readable += 1
    } else {
        o.human_readable = 0
    }),
    flag!("progress", None, |o, on| o.progress = on),
    plain!("P", Some(b'P'), |o| {
        o.partial = true;
        o.progress = true
    }),
    flag!("stats", None, |o, on| o.stats = on),
    flag!("delete", None, |o, on| if on {
        if o.delete == DeleteMode::Off {
            o.delete = DeleteMode::During
        }
    } else {
        o.delete = DeleteMode::Off
    }),
    plain!("del", None, |o| {
        o.delete = DeleteMode::During;
        o.delete_during_given = true
    }),
    plain!("delete-before", None, |o| o.delete = DeleteMode::Before),
    plain!("delete-during", None, |o| {
        o.delete = DeleteMode::During;
        o.delete_during_given = true
    }),
    plain!("delete-delay", None, |o| o.delete = DeleteMode::Delay),
    plain!("delete-after", None, |o| o.delete = DeleteMode::After),
    flag!("delete-excluded", None, |o, on| {
        o.delete_excluded = on;
        if on {
            o.filters.push(FilterOption::DeleteExcluded);
            if o.delete == DeleteMode::Off {
                o.delete = DeleteMode::During
            }
        }
    }),
    flag!("ignore-errors", None, |o, on| o.ignore_errors = on),
    flag!("force", None, |o, on| o.force = on),
    value!("max-delete", None, |o, v| o.max_delete =
        Some(number("max-delete", v)?)),
    value!("exclude", None, |o, v| o
        .filters
        .push(FilterOption::Exclude(bytes(v)))),
    value!("include", None, |o, v| o
        .filters
        .push(FilterOption::Include(bytes(v)))),
    value!("filter", Some(b'f'), |o, v| o
        .filters
        .push(FilterOption::Filter(bytes(v)))),
    value!("exclude-from", None, |o, v| o
        .filters
        .push(FilterOption::ExcludeFrom(PathBuf::from(v)))),
    value!("include-from", None, |o, v| o
        .filters
        .push(FilterOption::IncludeFrom(PathBuf::from(v)))),
    plain!("F", Some(b'F'), |o| o.filters.push(FilterOption::F)),
    flag!("cvs-exclude", Some(b'C'), |o, on| o.cvs_exclude = on),
    value!("files-from", None, |o, v| o.files_from = Some(v.to_owned())),
    flag!("from0", Some(b'0'), |o, on| {
        o.from0 = on;
        if on {
            o.filters.push(FilterOption::From0)
        }
    }),
    value!("temp-dir", Some(b'T'), |o, v| o.temp_dir =
        Some(v.to_owned())),
    flag!("partial", None, |o, on| o.partial = on),
    value!("partial-dir", None, |o, v| {
        o.partial_dir = Some(v.to_owned());
        o.partial = true
    }),
    flag!("inplace", None, |o, on| o.inplace = on),
    plain!("copy-devices", None, |o| o.copy_devices = true),
    flag!("write-devices", None, |o, on| o.write_devices = on),
    flag!("append", None, |o, on| {
        // A server is told `--append --append` for --append-verify.
        o.append_verify = on && o.server && o.append;
        o.append = on
    }),
    flag!("append-verify", None, |o, on| {
        o.append = on;
        o.append_verify = on
    }),
    flag!("whole-file", Some(b'W'), |o, on| o.whole_file = Some(on)),
    flag!("size-only", None, |o, on| o.size_only = on),
    flag!("ignore-times", Some(b'I'), |o, on| o.ignore_times = on),
    flag!("existing", None, |o, on| o.existing = on),
    flag!("ignore-non-existing", None, |o, on| o.existing = on),
    flag!("ignore-existing", None, |o, on| o.ignore_existing = on),
    flag!("remove-source-files", None, |o, on| o.remove_source_files =
        on),
    flag!("numeric-ids", None, |o, on| o.numeric_ids = on),
    value!("chmod", None, |o, v| o.chmod.push(chmod_arg(v)?)),
    value!("copy-as", None, |o, v| o.copy_as = Some(text(v))),
    value!("usermap", None, |o, v| set_map(o, true, text(v), false)?),
    value!("groupmap", None, |o, v| set_map(o, false, text(v), false)?),
    value!("chown", None, |o, v| {
        let spec = text(v);
        let (user, group) = crate::idmap::split_chown(&spec);
        if let Some(u) = user {
            set_map(o, true, format!("*:{u}"), true)?;
        }
        if let Some(g) = group {
            set_map(o, false, format!("*:{g}"), true)?;
        }
    }),
    value!("max-size", None, |o, v| o.max_size =
        Some(size_arg("max-size", v, b'b')?)),
    value!("min-size", None, |o, v| o.min_size =
        Some(size_arg("min-size", v, b'b')?)),
    value!("bwlimit", None, |o, v| o.bwlimit =
        Some(size_arg("bwlimit", v, b'k')?)),
    value!("timeout", None, |o, v| o.timeout = number("timeout", v)?),
    value!("contimeout", None, |o, v| o.contimeout =
        number("contimeout", v)?),
    flag!("backup", Some(b'b'), |o, on| o.backup = on),
    value!("backup-dir", None, |o, v| {
        o.backup_dir = Some(v.to_owned());
        o.backup = true
    }),
    value!("suffix", None, |o, v| o.suffix = Some(v.to_owned())),
    flag!("list-only", None, |o, on| o.list_only = on),
    flag!("mkpath", None, |o, on| o.mkpath = on),
    flag!("prune-empty-dirs", Some(b'm'), |o, on| o.prune_empty_dirs =
        on),
    value!("modify-window", Some(b'@'), |o, v| o.modify_window =
        number("modify-window", v)?),
    value!("block-size", Some(b'B'), |o, v| o.block_size =
        Some(size_arg("block-size", v, b'b')? as u32)),
    value!("checksum-seed", None, |o, v| o.checksum_seed =
        Some(number("checksum-seed", v)?)),
    flag!("delay-updates", None, |o, on| o.delay_updates = on),
    value!("compare-dest", None, |o, v| alt_dest(
        o,
        AltDest::Compare,
        v
    )?),
    value!("copy-dest", None, |o, v| alt_dest(o, AltDest::Copy, v)?),
    value!("link-dest", None, |o, v| alt_dest(o, AltDest::Link, v)?),
    flag!("fuzzy", Some(b'y'), |o, on| if on {
        o.fuzzy += 1
    } else {
        o.fuzzy = 0
    }),
    value!("stop-at", None, |o, v| o.stop_at = Some(stop_at(v)?)),
    value!("stop-after", None, |o, v| o.stop_at = Some(stop_after(v)?)),
    value!("time-limit", None, |o, v| o.stop_at = Some(stop_after(v)?)),
    // One setting in stock (am_root): the last of --super, --no-super, --fake-super wins.
    flag!("super", None, |o, on| {
        o.super_user = Some(on);
        o.fake_super = false
    }),
    flag!("fake-super", None, |o, on| {
        o.fake_super = on;
        o.super_user = None
    }),
    flag!("secluded-args", Some(b's'), |o, on| o.protect_args =
        Some(on)),
    flag!("protect-args", None, |o, on| o.protect_args = Some(on)),
    flag!("8-bit-output", Some(b'8'), |o, on| o.eight_bit_output = on),
    value!("out-format", None, |o, v| o.out_format = Some(text(v))),
    value!("log-format", None, |o, v| o.out_format = Some(text(v))),
    value!("log-file", None, |o, v| o.log_file = Some(v.to_owned())),
    value!("log-file-format", None, |o, v| o.log_file_format =
        Some(text(v))),
    flag!("ignore-missing-args", None, |o, on| o.ignore_missing_args =
        on),
    flag!("delete-missing-args", None, |o, on| o.delete_missing_args =
        on),
    flag!("inc-recursive", None, |o, on| o.inc_recursive = Some(on)),
    flag!("i-r", None, |o, on| o.inc_recursive = Some(on)),
    value!("write-batch", None, |o, v| {
        o.write_batch = Some(v.to_owned());
        o.only_write_batch = false
    }),
    value!("only-write-batch", None, |o, v| {
        o.write_batch = Some(v.to_owned());
        o.only_write_batch = true
    }),
    value!("read-batch", None, |o, v| o.read_batch = Some(v.to_owned())),
    value!("rsh", Some(b'e'), |o, v| o.rsh = Some(text(v))),
    value!("rsync-path", None, |o, v| o.rsync_path = Some(text(v))),
    // A second -z without a choice picks zlibx, as stock's `-zz`.
    flag!("compress", Some(b'z'), |o, on| {
        if on && o.compress && o.compress_choice.is_none() {
            o.compress_choice = Some("zlibx".into());
        }
        o.compress = on
    }),
    value!("compress-choice", None, |o, v| {
        o.compress_choice = Some(text(v));
        o.compress = true
    }),
    // What a client sends a server for --compress-choice=zlib / zlibx.
    plain!("old-compress", None, |o| {
        o.compress_choice = Some("zlib".into());
        o.compress = true
    }),
    plain!("new-compress", None, |o| {
        o.compress_choice = Some("zlibx".into());
        o.compress = true
    }),
    value!("zc", None, |o, v| {
        o.compress_choice = Some(text(v));
        o.compress = true
    }),
    // What a client sends a server for --compress-choice=zlib / zlibx.
    flag!("old-compress", None, |o, on| if on {
        o.compress_choice = Some("zlib".into());
        o.compress = true
    }),
    flag!("new-compress", None, |o, on| if on {
        o.compress_choice = Some("zlibx".into());
        o.compress = true
    }),
    value!("compress-level", None, |o, v| o.compress_level =
        Some(number("compress-level", v)?)),
    value!("zl", None, |o, v| o.compress_level =
        Some(number("compress-level", v)?)),
    value!("skip-compress", None, |o, v| o.skip_compress =
        Some(text(v))),
    // Zstandard worker threads: our compressor runs on the transfer's own thread.
    ignored!("compress-threads", Arg::Required),
    ignored!("zt", Arg::Required),
    value!("checksum-choice", None, |o, v| o.checksum_choice =
        Some(text(v))),
    value!("cc", None, |o, v| o.checksum_choice = Some(text(v))),
    value!("protocol", None, |o, v| o.protocol =
        Some(number("protocol", v)?)),
    value!("port", None, |o, v| o.port = Some(number("port", v)?)),
    value!("address", None, |o, v| o.address = Some(text(v))),
    value!("password-file", None, |o, v| o.password_file =
        Some(v.to_owned())),
    value!("early-input", None, |o, v| o.early_input =
        Some(v.to_owned())),
    value!("sockopts", None, |o, v| o.sockopts = Some(text(v))),
    flag!("motd", None, |o, on| o.no_motd = !on),
    plain!("ipv4", Some(b'4'), |o| o.ipv4 = true),
    plain!("ipv6", Some(b'6'), |o| o.ipv6 = true),
    Spec {
        long: "remote-option",
        short: Some(b'M'),
        arg: Arg::Required,
        apply: |o, _, v| {
            let v = v.expect("required argument");
            if !v.as_bytes().starts_with(b"-") {
                return Err(usage(format!(
                    "Remote option must start with a dash: {}",
                    v.to_string_lossy()
                )));
            }
            o.remote_options.push(v.to_owned());
            Ok(())
        },
    },
    flag!("blocking-io", None, |o, on| o.blocking_io = on),
    ignored!("outbuf", Arg::Required),
    value!("info", None, |o, v| o.info.push(text(v))),
    value!("debug", None, |o, v| o.debug.push(text(v))),
    value!("stderr", None, |o, v| {
        let mode = text(v);
        let abbreviates = |word: &str| !mode.is_empty() && word.starts_with(mode.as_str());
        o.stderr_mode = Some(if abbreviates("errors") {
            2
        } else if abbreviates("all") {
            1
        } else if abbreviates("client") {
            0
        } else {
            return Err(usage(format!(
                "--stderr mode \"{mode}\" is not one of errors, all, or client"
            )));
        });
    }),
    flag!("msgs2stderr", None, |o, on| o.stderr_mode =
        Some(if on { 1 } else { 0 })),
    value!("iconv", None, |o, v| o.iconv = Some(text(v))),
    plain!("no-iconv", None, |o| o.iconv = None),
    value!("max-alloc", None, |o, v| o.max_alloc = Some(text(v))),
    flag!("open-noatime", None, |o, on| o.open_noatime = on),
    flag!("fsync", None, |o, on| o.fsync = on),
    flag!("old-args", None, |o, on| o.old_args = Some(if on {
        o.old_args.unwrap_or(0).saturating_add(1)
    } else {
        0
    })),
    flag!("trust-sender", None, |o, on| o.trust_sender = on),
    plain!("server", None, |o| o.server = true),
    plain!("sender", None, |o| o.sender = true),
    plain!("daemon", None, |o| o.daemon = true),
    plain!("version", Some(b'V'), |o| o.version += 1),
    plain!("help", None, |o| o.help = true),
    plain!("h", Some(b'h'), |o| o.short_h += 1),
];

fn find_long(name: &str) -> Option<(&'static Spec, bool)> {
    if let Some(s) = SPECS.iter().find(|s| s.long == name && s.long.len() > 1) {
        return Some((s, true));
    }
    let negated = name.strip_prefix("no-")?;
    let spec = SPECS.iter().find(|s| {
        s.arg == Arg::Flag
            && (s.long == negated
                || (negated.len() == 1 && s.short.map(|c| c as char) == negated.chars().next()))
    })?;
    Some((spec, false))
}

/// rsync's `--info` words, in the order of its table.
pub const INFO_WORDS: [&str; 13] = [
    "backup", "copy", "del", "flist", "misc", "mount", "name", "nonreg", "progress", "remove",
    "skip", "stats", "symsafe",
];

/// An `--info` word and its level: `NAMEn` (n capped at 4, as stock caps even an overflowing
/// one), or `NAME` for level 1; lowercased.
fn parse_info_word(word: &str) -> (String, u32) {
    let word = word.to_ascii_lowercase();
    let digits = word.len() - word.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (name, n) = word.split_at(word.len() - digits);
    let level = if n.is_empty() {
        1
    } else {
        n.parse::<u32>().map_or(4, |n| n.min(4))
    };
    (name.to_string(), level)
}

impl Options {
    /// Stock's `am_root` for this process: -1 `--fake-super`, 2 `--super`, 0 `--no-super`,
    /// else 1 for root and 0 for anyone else.
    pub fn am_root(&self) -> i8 {
        match (self.fake_super, self.super_user) {
            (true, _) => -1,
            (false, Some(true)) => 2,
            (false, Some(false)) => 0,
            // SAFETY: geteuid has no preconditions.
            (false, None) => i8::from(unsafe { libc::geteuid() } == 0),
        }
    }

    /// The `am_root` of a local copy's receiving side: this process's, changed by a
    /// `--super`, `--no-super` or `--fake-super` given with `-M` (stock's forked receiver
    /// parses those as well).
    pub fn receiver_am_root(&self) -> i8 {
        let mut am_root = self.am_root();
        for o in &self.remote_options {
            match o.as_bytes() {
                b"--super" => am_root = 2,
                b"--no-super" => am_root = 0,
                b"--fake-super" => am_root = -1,
                _ => {}
            }
        }
        am_root
    }

    /// Whether a local copy's receiving side munges symlinks: `--munge-links` given with
    /// `-M` (the option itself is the sending client's, and stock's forked receiver starts
    /// without it).
    pub fn receiver_munges_links(&self) -> bool {
        let mut on = false;
        for o in &self.remote_options {
            match o.as_bytes() {
                b"--munge-links" => on = true,
                b"--no-munge-links" => on = false,
                _ => {}
            }
        }
        on
    }

    /// `-X`: the namespace rules for this process.
    pub fn xattr_rules(&self) -> Option<rtsync_tree::xattr::XattrRules> {
        self.xattr_rules_as(self.am_root())
    }

    /// `-X`: the namespace rules for a side whose `am_root` is `am_root`.
    pub fn xattr_rules_as(&self, am_root: i8) -> Option<rtsync_tree::xattr::XattrRules> {
        (self.xattrs > 0).then_some(rtsync_tree::xattr::XattrRules {
            level: self.xattrs,
            root: am_root > 0,
            fake_super: am_root < 0,
        })
    }

    /// Parses rsync's argv (without the program name).
    pub fn parse(args: &[OsString]) -> Result<Options, UsageError> {
        let mut o = Options {
            implied_dirs: true,
            ..Options::default()
        };
        // RSYNC_ICONV is a client's default, which the command line overrides.
        if !args.iter().any(|a| a == "--server" || a == "--daemon") {
            o.iconv = std::env::var("RSYNC_ICONV").ok().filter(|v| !v.is_empty());
        }
        let mut i = 0;
        while i < args.len() {
            let arg = args[i].as_bytes();
            i += 1;
            if arg == b"--" {
                o.args.extend(args[i..].iter().cloned());
                break;
            }
            if let Some(long) = arg.strip_prefix(b"--") {
                let (name, inline) = match long.iter().position(|&b| b == b'=') {
                    Some(eq) => (&long[..eq], Some(OsStr::from_bytes(&long[eq + 1..]))),
                    None => (long, None),
                };
                let name = String::from_utf8_lossy(name).into_owned();
                let Some((spec, on)) = find_long(&name) else {
                    return Err(usage(format!("--{name}: unknown option")));
                };
                let value = match (spec.arg, inline) {
                    (Arg::Required, Some(v)) => Some(v.to_owned()),
                    (Arg::Required, None) => {
                        let Some(v) = args.get(i) else {
                            return Err(usage(format!("--{name}: missing argument")));
                        };
                        i += 1;
                        Some(v.clone())
                    }
                    (_, Some(_)) => {
                        return Err(usage(format!("--{name}: option does not take an argument")))
                    }
                    (_, None) => None,
                };
                (spec.apply)(&mut o, on, value.as_deref())?;
                continue;
            }
            if arg.len() > 1 && arg[0] == b'-' {
                let mut j = 1;
                while j < arg.len() {
                    let c = arg[j];
                    j += 1;
                    let Some(spec) = SPECS.iter().find(|s| s.short == Some(c)) else {
                        return Err(usage(format!("-{}: unknown option", c as char)));
                    };
                    if spec.arg == Arg::Required {
                        let value = if j < arg.len() {
                            OsStr::from_bytes(&arg[j..]).to_owned()
                        } else if let Some(v) = args.get(i) {
                            i += 1;
                            v.clone()
                        } else {
                            return Err(usage(format!("-{}: missing argument", c as char)));
                        };
                        (spec.apply)(&mut o, true, Some(&value))?;
                        break;
                    }
                    (spec.apply)(&mut o, true, None)?;
                }
                continue;
            }
            o.args.push(OsString::from_vec(arg.to_vec()));
        }
        // `-h` alone is help; with anything else it means --human-readable.
        if o.short_h > 0 {
            if args.len() == 1 {
                o.help = true;
            } else {
                o.human_readable += o.short_h;
            }
        }
        o.finish()
    }

    /// Whether the arguments go to the server secluded (`-s`): as given; otherwise not when
    /// `--old-args` (or a client's RSYNC_OLD_ARGS) asks for the old ways; a server only when
    /// told; a client as RSYNC_PROTECT_ARGS says (stock's order of precedence).
    pub fn secluded_args(&self) -> bool {
        let env_set = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if let Some(on) = self.protect_args {
            return on;
        }
        if self.server || self.old_args.is_some() || env_set("RSYNC_OLD_ARGS").is_some() {
            return false;
        }
        env_set("RSYNC_PROTECT_ARGS").is_some_and(|v| v.trim().parse::<i64>().unwrap_or(0) != 0)
    }

    fn finish(mut self) -> Result<Options, UsageError> {
        if self.protect_args == Some(true) && self.old_args.is_some_and(|n| n > 0) {
            return Err(usage("--secluded-args conflicts with --old-args."));
        }
        if self.max_alloc.is_none() {
            self.max_alloc = std::env::var("RSYNC_MAX_ALLOC")
                .ok()
                .filter(|v| !v.is_empty());
        }
        if let Some(arg) = &self.max_alloc {
            check_max_alloc(arg)?;
        }
        if !self.server && self.iconv.as_deref() == Some("-") {
            self.iconv = None;
        }
        if self.dry_run && self.itemize == 0 && self.verbose == 0 {
            // rsync's -n alone prints nothing extra; nothing to adjust.
        }
        if self.copy_links {
            self.links = true;
        }
        if std::mem::take(&mut self.old_dirs) {
            // (Appended after the user's own rules, as stock adds it.)
            self.recursive = true;
            self.dirs = true;
            self.filters.push(FilterOption::Filter(b"- /*/*".to_vec()));
        }
        self.check_batch()?;
        if let Some(root) = &self.confine_root {
            if !root.is_absolute() {
                return Err(usage("--confine-root must be an absolute path"));
            }
            if root
                .components()
                .all(|c| c == std::path::Component::RootDir)
            {
                // `--confine-root=/` confines nothing.
                self.confine_root = None;
            }
        }
        for (map, kind) in [
            (&self.usermap, crate::idmap::Kind::User),
            (&self.groupmap, crate::idmap::Kind::Group),
        ] {
            if let Some(m) = map {
                // The syntax only: names are resolved by the receiver.
                crate::idmap::NameMap::parse(m, kind, |_| Some(0), |_| {})
                    .map_err(|e| usage(e.0))?;
            }
        }
        if self.fake_super && self.xattrs > 1 {
            return Err(usage("--fake-super conflicts with -XX"));
        }
        if self.append {
            if self.whole_file == Some(true) {
                return Err(usage("--append cannot be used with --whole-file"));
            }
            if self.partial_dir.is_some() || self.delay_updates {
                return Err(usage(if self.delay_updates {
                    "--append cannot be used with --delay-updates"
                } else {
                    "--append cannot be used with --partial-dir"
                }));
            }
            // --append writes in place.
            self.inplace = true;
        }
        if self.write_devices {
            self.inplace = true;
        }
        if self.inplace && (self.partial_dir.is_some() || self.delay_updates) {
            // (--delay-updates stages files in a partial dir of its own.)
            return Err(usage(if self.delay_updates {
                "--inplace cannot be used with --delay-updates"
            } else {
                "--inplace cannot be used with --partial-dir"
            }));
        }
        if self.relative && !self.implied_dirs {
            // Nothing to do: handled by the scanner.
        }
        if self.files_from.is_some() {
            // --files-from implies -R and -d, and -a's -r only counts when given explicitly.
            self.relative = self.explicit_relative.unwrap_or(true);
            self.recursive = self.explicit_recursive.unwrap_or(false);
            self.dirs = true;
        }
        if self.backup && self.backup_dir.is_none() && !self.omit_dir_times {
            // Backups renamed beside their files change directory times: rsync leaves them.
            // (Not an -O to pass on to a server.)
            self.omit_dir_times = true;
            self.omit_dir_times_implied = true;
        }
        if self.quiet && self.verbose > 0 {
            self.verbose = 0;
        }
        Ok(self)
    }

    /// rsync's checks on the batch options (a server ignores all but `--only-write-batch`).
    fn check_batch(&mut self) -> Result<(), UsageError> {
        if self.write_batch.is_some() && self.read_batch.is_some() {
            return Err(usage(
                "--write-batch and --read-batch can not be used together",
            ));
        }
        if self.server {
            if self.read_batch.is_some() || !self.only_write_batch {
                self.read_batch = None;
                self.write_batch = None;
            }
        } else if self.dry_run {
            self.write_batch = None;
            self.only_write_batch = false;
        }
        if self.read_batch.is_some() && self.files_from.is_some() {
            return Err(usage("--read-batch cannot be used with --files-from"));
        }
        if self.read_batch.is_some() && self.remove_source_files {
            return Err(usage(
                "--read-batch cannot be used with --remove-source-files",
            ));
        }
        let name = self.write_batch.as_ref().or(self.read_batch.as_ref());
        if name.is_some_and(|n| n.len() > 256) {
            return Err(usage("the batch-file name must be 256 characters or less."));
        }
        Ok(())
    }

    /// Whether backup messages are shown (`--info=backup`, or `-vv`).
    pub fn info_backup(&self) -> bool {
        let mut on = self.verbose >= 2;
        for word in self.info.iter().flat_map(|i| i.split(',')) {
            match word.to_ascii_lowercase().as_str() {
                "backup" | "backup1" | "backup2" | "all" | "all1" | "all2" => on = true,
                "backup0" | "nobackup" | "none" | "all0" => on = false,
                _ => {}
            }
        }
        on
    }

    /// Whether the sender says what `--remove-source-files` removed (`--info=remove`, or `-vv`).
    pub fn info_remove(&self) -> bool {
        let mut on = self.verbose >= 2;
        for word in self.info.iter().flat_map(|i| i.split(',')) {
            match word.to_ascii_lowercase().as_str() {
                "remove" | "remove1" | "remove2" | "all" | "all1" | "all2" => on = true,
                "remove0" | "noremove" | "none" | "all0" => on = false,
                _ => {}
            }
        }
        on
    }

    /// Whether skip messages are shown (`--info=skip`, or `-vv`): `NAME is newer` & co.
    pub fn info_skip(&self) -> bool {
        let mut on = self.verbose >= 2;
        for word in self.info.iter().flat_map(|i| i.split(',')) {
            match word.to_ascii_lowercase().as_str() {
                "skip" | "skip1" | "skip2" | "all" | "all1" | "all2" => on = true,
                "skip0" | "noskip" | "none" | "all0" => on = false,
                _ => {}
            }
        }
        on
    }

    /// rsync's `--info=stats` level: 1 (`-v`) gives the closing summary, 2 (`--stats`) the
    /// statistics block too; `--info=statsN` sets it.
    pub fn info_stats(&self) -> u32 {
        // (`--stats` is stats2, stats3 with -vv.)
        let mut level = if self.stats {
            2 + u32::from(self.verbose > 1)
        } else {
            u32::from(self.verbose > 0)
        };
        for word in self.info.iter().flat_map(|i| i.split(',')) {
            let w = word.to_ascii_lowercase();
            match w.as_str() {
                "stats" | "all" => level = level.max(1),
                "stats0" | "none" | "all0" => level = 0,
                _ => {
                    if let Some(n) = w
                        .strip_prefix("stats")
                        .or_else(|| w.strip_prefix("all"))
                        .and_then(|n| n.parse::<u32>().ok())
                    {
                        level = n;
                    }
                }
            }
        }
        level
    }

    /// The level of an `--info` category (`name`, `progress`, `flist`, ...) as stock sets it:
    /// first what `-v`s imply (its `info_verbosity` table) and what `--progress` adds
    /// (`progress`, `flist2`, and `name` when nothing else names transferred files), then the
    /// user's `--info` words in order (`WORD`, `WORDn`, `all[n]`, `none`; case does not
    /// matter), which win over the implied levels whatever their place on the command line.
    pub fn info_level(&self, category: &str) -> u32 {
        const BY_VERBOSITY: [&str; 3] = [
            "nonreg",
            "copy,del,flist,misc,name,stats,symsafe",
            "backup,misc2,mount,name2,remove,skip",
        ];
        let parse = parse_info_word;
        let mut level = 0;
        for (v, words) in BY_VERBOSITY.iter().enumerate() {
            if self.verbose as usize >= v {
                for (name, n) in words.split(',').map(parse) {
                    if name == category {
                        level = n;
                    }
                }
            }
        }
        let mut user = None;
        for word in self.info.iter().flat_map(|d| d.split(',')) {
            match parse(word) {
                (name, n) if name == category || name == "all" => user = Some(n),
                (name, _) if name == "none" => user = Some(0),
                _ => {}
            }
        }
        if let Some(n) = user {
            return n;
        }
        if self.progress {
            match category {
                "progress" => level = 1,
                "flist" => level = 2,
                "name" if level == 0 && !self.logs_before_transfer() => level = 1,
                _ => {}
            }
        }
        level
    }

    /// The levels of the `--info` words the user set (stock's USER_PRIORITY ones), in the
    /// order of [`INFO_WORDS`]; `ALL[n]` and `NONE` set every word. What `-v` implies is not
    /// here: a client tells its server only these (stock's make_output_option).
    pub fn info_user_levels(&self) -> [Option<u32>; INFO_WORDS.len()] {
        let mut out = [None; INFO_WORDS.len()];
        for word in self.info.iter().flat_map(|d| d.split(',')) {
            if word.is_empty() {
                continue;
            }
            let (name, n) = parse_info_word(word);
            match name.as_str() {
                "none" => out = [Some(0); INFO_WORDS.len()],
                "all" => out = [Some(n); INFO_WORDS.len()],
                _ => {
                    if let Some(j) = INFO_WORDS.iter().position(|w| *w == name) {
                        out[j] = Some(n);
                    }
                }
            }
        }
        out
    }

    /// Whether an item line of the stdout format goes out before its file's data (stock's
    /// `log_before_transfer`): `-i`, or a format that does not wait for `%b %c %C`.
    fn logs_before_transfer(&self) -> bool {
        match &self.out_format {
            Some(f) => ![b'b', b'c', b'C']
                .iter()
                .any(|&e| crate::report::format_has(f, e)),
            None => self.itemize > 0,
        }
    }

    /// The `--info=progress` level: 1 a line per file (`--progress`), 2 one for the whole
    /// transfer; 0 with `-q`, which silences it.
    pub fn progress_level(&self) -> u32 {
        if self.quiet {
            0
        } else {
            self.info_level("progress")
        }
    }

    /// The level of a `--debug` category (`deltasum`, `flist`, `nstr`, ...): what `-vv` and
    /// more imply (rsync's `debug_verbosity` table), then the `--debug` words in order
    /// (`WORD`, `WORDn`, `noWORD`, `all[n]`, `none`; case does not matter).
    pub fn debug_level(&self, category: &str) -> u32 {
        const BY_VERBOSITY: [&str; 4] = [
            "bind,cmd,connect,del,deltasum,dup,filter,flist,iconv",
            "acl,backup,connect2,deltasum2,del2,exit,filter2,flist2,fuzzy,genr,own,recv,send,time",
            "cmd2,deltasum3,del3,exit2,flist3,iconv2,own2,proto,time2",
            "chdir,deltasum4,flist4,fuzzy2,hash,hlink",
        ];
        let mut level = 0;
        for (v, words) in BY_VERBOSITY.iter().enumerate() {
            if self.verbose as usize >= v + 2 {
                for (name, n) in words.split(',').filter_map(parse_debug_word) {
                    if name == category {
                        level = level.max(n);
                    }
                }
            }
        }
        self.debug_words_level(category, level)
    }

    /// The level of a `--debug` category from the `--debug` words alone, starting from
    /// `level`: what is in force while options are still being parsed (stock applies `-v`'s
    /// levels only afterwards).
    pub fn debug_words_level(&self, category: &str, mut level: u32) -> u32 {
        for word in self.debug.iter().flat_map(|d| d.split(',')) {
            match parse_debug_word(word) {
                Some((name, n)) if name == category || name == "all" => level = n,
                Some((name, _)) if name == "none" => level = 0,
                _ => {}
            }
        }
        level
    }

    /// Whether rsync would use incremental recursion for a local transfer (it changes what `-v`
    /// prints first).
    pub fn incremental_recursion(&self) -> bool {
        self.recursive
            && self.inc_recursive != Some(false)
            && !matches!(self.delete, DeleteMode::Before | DeleteMode::After)
            && !self.delay_updates
            && !self.prune_empty_dirs
    }

    /// Whether `--delete` (any timing) is on.
    pub fn deleting(&self) -> bool {
        self.delete != DeleteMode::Off
    }

    /// What a missing source means (stock's `missing_args`): 0 an error, 1 nothing
    /// (`--ignore-missing-args`), 2 a deletion (`--delete-missing-args`, which wins when both
    /// are given).
    pub fn missing_args(&self) -> u8 {
        if self.delete_missing_args {
            2
        } else if self.ignore_missing_args {
            1
        } else {
            0
        }
    }
}

/// One `--debug` word (`WORD`, `WORDn`, `noWORD`) as (category, level).
fn parse_debug_word(word: &str) -> Option<(String, u32)> {
    let word = word.to_ascii_lowercase();
    let digits = word.len() - word.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (name, n) = word.split_at(word.len() - digits);
    let level = if n.is_empty() { 1 } else { n.parse().ok()? };
    match name.strip_prefix("no") {
        Some(rest) if n.is_empty() && rest != "ne" => Some((rest.to_string(), 0)),
        _ => Some((name.to_string(), level)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, UsageError> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        Options::parse(&args)
    }

    #[test]
    fn bundles_and_archive() {
        let o = parse(&["-avHz", "--no-o", "src/", "dst"]).unwrap();
        assert!(o.recursive && o.links && o.perms && o.times && o.group && o.devices);
        assert!(!o.owner && o.hard_links && o.compress);
        assert_eq!(o.verbose, 1);
        assert_eq!(o.args, vec![OsString::from("src/"), OsString::from("dst")]);
    }

    #[test]
    fn values_inline_and_separate() {
        let o = parse(&[
            "--exclude=*.o",
            "--include",
            "a/",
            "-essh -p 2",
            "-T/tmp",
            "x",
            "y",
        ])
        .unwrap();
        assert_eq!(
            o.filters,
            vec![
                FilterOption::Exclude(b"*.o".to_vec()),
                FilterOption::Include(b"a/".to_vec())
            ]
        );
        assert_eq!(o.rsh.as_deref(), Some("ssh -p 2"));
        assert_eq!(o.temp_dir, Some(OsString::from("/tmp")));
    }

    #[test]
    fn unknown_option_message() {
        assert_eq!(
            parse(&["--foo"]).unwrap_err().message,
            "--foo: unknown option"
        );
        assert_eq!(parse(&["-Y"]).unwrap_err().message, "-Y: unknown option");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1k", b'b'), Some(1024));
        assert_eq!(parse_size("1KB", b'b'), Some(1000));
        assert_eq!(parse_size("1.5M", b'b'), Some(1572864));
        assert_eq!(parse_size("1k+1", b'b'), Some(1025));
        assert_eq!(parse_size("100", b'k'), Some(102400));
        assert_eq!(parse_size("x", b'b'), None);
    }

    #[test]
    fn double_f_is_two_f_options() {
        let o = parse(&["-FF", "a", "b"]).unwrap();
        assert_eq!(o.filters, vec![FilterOption::F, FilterOption::F]);
    }

    #[test]
    fn h_alone_is_help() {
        assert!(parse(&["-h"]).unwrap().help);
        let o = parse(&["-h", "a", "b"]).unwrap();
        assert!(!o.help && o.human_readable == 1);
    }

    #[test]
    fn the_last_of_super_no_super_fake_super_wins() {
        assert_eq!(parse(&["--super", "--fake-super"]).unwrap().am_root(), -1);
        assert_eq!(parse(&["--fake-super", "--super"]).unwrap().am_root(), 2);
        assert_eq!(parse(&["--fake-super", "--no-super"]).unwrap().am_root(), 0);
        let o = parse(&["--fake-super", "-M--super"]).unwrap();
        assert_eq!((o.am_root(), o.receiver_am_root()), (-1, 2));
        let o = parse(&["--no-super", "-M--fake-super"]).unwrap();
        assert_eq!((o.am_root(), o.receiver_am_root()), (0, -1));
        let rules = parse(&["-X", "--fake-super"])
            .unwrap()
            .xattr_rules()
            .unwrap();
        assert!(rules.fake_super && !rules.root);
    }

    #[test]
    fn info_levels_as_stock_sets_them() {
        let level = |args: &[&str], cat: &str| parse(args).unwrap().info_level(cat);
        assert_eq!(level(&["--info=progress2"], "progress"), 2);
        assert_eq!(level(&["--info=progress2"], "name"), 0);
        // The user's word wins over what --progress implies, wherever it stands.
        assert_eq!(level(&["--info=progress2", "--progress"], "progress"), 2);
        assert_eq!(level(&["--progress", "--info=progress2"], "progress"), 2);
        assert_eq!(level(&["--progress"], "progress"), 1);
        assert_eq!(level(&["--progress"], "name"), 1);
        assert_eq!(level(&["--progress"], "flist"), 2);
        // An item line before the transfer names the file already.
        assert_eq!(level(&["--progress", "-i"], "name"), 0);
        assert_eq!(level(&["--progress", "--out-format=%n %b"], "name"), 1);
        assert_eq!(level(&["--progress", "--info=name0"], "name"), 0);
        assert_eq!(level(&["-vv"], "name"), 2);
        assert_eq!(level(&["-v", "--info=NAME0"], "name"), 0);
        assert_eq!(level(&["--info=all2", "--info=progress0"], "progress"), 0);
        assert_eq!(level(&["--info=progress0", "--info=all2"], "progress"), 2);
        assert_eq!(level(&["--info=none,progress9"], "progress"), 4);
        assert_eq!(
            parse(&["-q", "--info=progress2"]).unwrap().progress_level(),
            0
        );
    }
}
