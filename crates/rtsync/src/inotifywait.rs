//! The `inotifywait` front door: a drop-in for inotify-tools' `inotifywait` 3.22.
//!
//! Same options, same output lines byte for byte, same messages and exit codes (0: an event
//! that was asked for, 1: an error or an event nobody asked for, 2: `--timeout` ran out). The
//! one intended difference: with `-m -r`, entries created in a brand-new directory before its
//! watch existed are reported as `CREATE` events instead of being missed.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use rtsync_watch::mask;

// The shared machinery lives in `inotify/`; declared here so that `main.rs` need not change.
#[path = "inotify/mod.rs"]
pub(crate) mod inotify;

use self::inotify::common::{
    eprint_bytes, isdir, parse_events, parse_timeout, strerror, EventFilter, PathList, Regex,
    EXIT_FAILURE, EXIT_SUCCESS, EXIT_TIMEOUT,
};
use self::inotify::format::{csv_line, format_event, Subject};
use self::inotify::getopt::{Getopt, LongOpt, Opt};
use self::inotify::table::Table;

/// Everything the command line asks for.
#[derive(Default)]
struct Options {
    events: u32,
    monitor: bool,
    quiet: u32,
    timeout: u32,
    recursive: bool,
    csv: bool,
    daemon: bool,
    syslog: bool,
    no_dereference: bool,
    format: Option<Vec<u8>>,
    timefmt: Option<OsString>,
    fromfile: Option<OsString>,
    outfile: Option<OsString>,
    exclude: Option<OsString>,
    excludei: Option<OsString>,
    include: Option<OsString>,
    includei: Option<OsString>,
    no_newline: bool,
    operands: Vec<OsString>,
}

const LONG_OPTS: &[LongOpt] = &[
    LongOpt {
        name: "help",
        has_arg: false,
        val: b'h',
    },
    LongOpt {
        name: "event",
        has_arg: true,
        val: b'e',
    },
    LongOpt {
        name: "monitor",
        has_arg: false,
        val: b'm',
    },
    LongOpt {
        name: "quiet",
        has_arg: false,
        val: b'q',
    },
    LongOpt {
        name: "timeout",
        has_arg: true,
        val: b't',
    },
    LongOpt {
        name: "filename",
        has_arg: false,
        val: b'f',
    },
    LongOpt {
        name: "recursive",
        has_arg: false,
        val: b'r',
    },
    LongOpt {
        name: "inotify",
        has_arg: false,
        val: b'I',
    },
    LongOpt {
        name: "fanotify",
        has_arg: false,
        val: b'F',
    },
    LongOpt {
        name: "filesystem",
        has_arg: false,
        val: b'S',
    },
    LongOpt {
        name: "csv",
        has_arg: false,
        val: b'c',
    },
    LongOpt {
        name: "daemon",
        has_arg: false,
        val: b'd',
    },
    LongOpt {
        name: "syslog",
        has_arg: false,
        val: b's',
    },
    LongOpt {
        name: "no-dereference",
        has_arg: false,
        val: b'P',
    },
    LongOpt {
        name: "format",
        has_arg: true,
        val: b'n',
    },
    LongOpt {
        name: "no-newline",
        has_arg: false,
        val: b'0',
    },
    LongOpt {
        name: "timefmt",
        has_arg: true,
        val: b'i',
    },
    LongOpt {
        name: "fromfile",
        has_arg: true,
        val: b'z',
    },
    LongOpt {
        name: "outfile",
        has_arg: true,
        val: b'o',
    },
    LongOpt {
        name: "exclude",
        has_arg: true,
        val: b'a',
    },
    LongOpt {
        name: "excludei",
        has_arg: true,
        val: b'b',
    },
    LongOpt {
        name: "include",
        has_arg: true,
        val: b'j',
    },
    LongOpt {
        name: "includei",
        has_arg: true,
        val: b'k',
    },
];

fn print_help() {
    print!(
        "inotifywait 3.22.6.0 (rtsync {})\n\
         Waits for filesystem events on files and directories and prints them.\n\
         Usage: inotifywait [ options ] file1 [ file2 ] [ file3 ] [ ... ]\n\
         Options:\n\
         \t-h|--help             This help.\n\
         \t@<file>               Do not watch <file> (with -r: do not descend into it).\n\
         \t--exclude <regex>     Drop events whose path matches the extended regex.\n\
         \t--excludei <regex>    The same, ignoring case.\n\
         \t--include <regex>     Drop events whose path does not match the extended regex.\n\
         \t--includei <regex>    The same, ignoring case.\n\
         \t-m|--monitor          Keep printing events instead of exiting after the first.\n\
         \t-d|--daemon           Like --monitor, in the background, writing to --outfile;\n\
         \t                      errors go to syslog.\n\
         \t-P|--no-dereference   Watch symbolic links themselves, not their targets.\n\
         \t-r|--recursive        Watch whole directory trees; new directories are followed\n\
         \t                      and what was created in them before they were watched is\n\
         \t                      reported too.\n\
         \t--fromfile <file>     Read paths to watch from <file> ('-' for stdin), one a line.\n\
         \t-o|--outfile <file>   Append events to <file> instead of standard output.\n\
         \t-s|--syslog           Send errors to syslog instead of standard error.\n\
         \t-q|--quiet            Do not print the set-up messages.\n\
         \t-qq                   Print nothing at all.\n\
         \t--format <fmt>        Custom output: %w watch, %f file, %e events, %Xe events\n\
         \t                      separated by X, %T time, %c cookie, %0 NUL, %n newline.\n\
         \t--no-newline          Do not end --format output with a newline.\n\
         \t--timefmt <fmt>       strftime(3) format for %T.\n\
         \t-c|--csv              Print events as CSV.\n\
         \t-t|--timeout <secs>   Give up after <secs> seconds without an event (0: never).\n\
         \t-e|--event <event>    Only these events (repeatable, or comma-separated).\n\n\
         Exit status:\n\
         \t0  an event that was asked for happened\n\
         \t1  an event that was not asked for happened (e.g. delete_self), or an error\n\
         \t2  --timeout ran out without an event\n\n\
         Events:\n{}",
        env!("CARGO_PKG_VERSION"),
        inotify::common::EVENT_HELP
    );
}

/// Parses the command line; `Err(code)` when the program should stop with that code.
fn parse(args: &[OsString]) -> Result<Options, i32> {
    let mut o = Options::default();
    let mut exclude_count = 0;
    let mut excludei_count = 0;
    let mut g = Getopt::new(args, "mrhcdsPqt:fo:e:IFS", LONG_OPTS);
    while let Some(opt) = g.next_opt() {
        let (c, arg) = match opt {
            Opt::Error => return Err(EXIT_FAILURE),
            Opt::Found(c, arg) => (c, arg.unwrap_or_default()),
        };
        match c {
            b'h' => {
                print_help();
                return Err(EXIT_FAILURE);
            }
            b'm' => o.monitor = true,
            b'q' => o.quiet += 1,
            b'r' => o.recursive = true,
            b'c' => o.csv = true,
            b'd' => {
                o.daemon = true;
                o.monitor = true;
                o.syslog = true;
            }
            b's' => o.syslog = true,
            b'P' => o.no_dereference = true,
            b'f' => {
                eprint!(
                    "The '--filename' option no longer exists.  The option it enabled in earlier\n\
                     versions of inotifywait is now turned on by default.\n"
                );
                return Err(EXIT_FAILURE);
            }
            b'n' => o.format = Some(arg.as_bytes().to_vec()),
            b'0' => o.no_newline = true,
            b'i' => o.timefmt = Some(arg),
            b'a' => {
                o.exclude = Some(arg);
                exclude_count += 1;
            }
            b'b' => {
                o.excludei = Some(arg);
                excludei_count += 1;
            }
            b'j' => o.include = Some(arg),
            b'k' => o.includei = Some(arg),
            b'z' => {
                if o.fromfile.is_some() {
                    eprintln!("Multiple --fromfile options given.");
                    return Err(EXIT_FAILURE);
                }
                o.fromfile = Some(arg);
            }
            b'o' => {
                if o.outfile.is_some() {
                    eprintln!("Multiple --outfile options given.");
                    return Err(EXIT_FAILURE);
                }
                o.outfile = Some(arg);
            }
            b't' => o.timeout = parse_timeout(&arg).ok_or(EXIT_FAILURE)?,
            b'e' => o.events |= parse_events(&arg).ok_or(EXIT_FAILURE)?,
            // -I, -F and -S exist only in fanotify-enabled builds; this build, like Debian's,
            // accepts and ignores them.
            _ => {}
        }
    }
    if let Some(f) = &mut o.format {
        if !o.no_newline {
            f.push(b'\n');
        }
    }
    let checks: &[(bool, &str)] = &[
        (
            o.exclude.is_some() && o.excludei.is_some(),
            "--exclude and --excludei cannot both be specified.",
        ),
        (
            o.include.is_some() && o.includei.is_some(),
            "--include and --includei cannot both be specified.",
        ),
        (
            (o.include.is_some() || o.includei.is_some())
                && (o.exclude.is_some() || o.excludei.is_some()),
            "include and exclude regexp cannot both be specified.",
        ),
        (
            o.format.is_some() && o.csv,
            "-c and --format cannot both be specified.",
        ),
        (
            o.format.is_none() && o.no_newline,
            "--no-newline cannot be specified without --format.",
        ),
        (
            o.format.is_none() && o.timefmt.is_some(),
            "--timefmt cannot be specified without --format.",
        ),
        (
            o.format
                .as_ref()
                .is_some_and(|f| f.windows(2).any(|w| w == b"%T"))
                && o.timefmt.is_none(),
            "%T is in --format string, but --timefmt was not specified.",
        ),
        (
            o.daemon && o.outfile.is_none(),
            "-o must be specified with -d.",
        ),
    ];
    if let Some((_, msg)) = checks.iter().find(|(bad, _)| *bad) {
        eprintln!("{msg}");
        return Err(EXIT_FAILURE);
    }
    let warning = "only the last option will be taken into consideration.";
    if exclude_count > 1 {
        eprintln!("--exclude: {warning}");
    }
    if excludei_count > 1 {
        eprintln!("--excludei: {warning}");
    }
    o.operands = g.operands();
    Ok(o)
}

/// Where set-up messages and errors go: stderr, or syslog with `-s`/`-d`.
struct Errors {
    syslog: bool,
}

impl Errors {
    fn say(&self, msg: &[u8]) {
        if self.syslog {
            let text = std::ffi::CString::new(msg.to_vec()).unwrap_or_default();
            // SAFETY: "%s" with one NUL-terminated argument.
            unsafe { libc::syslog(libc::LOG_INFO, c"%s".as_ptr(), text.as_ptr()) };
        } else {
            eprint_bytes(&[msg]);
        }
    }
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Builds the event filter from `--exclude[i]`/`--include[i]`.
pub(crate) fn build_filter(
    exclude: &Option<OsString>,
    excludei: &Option<OsString>,
    include: &Option<OsString>,
    includei: &Option<OsString>,
) -> Result<Option<EventFilter>, &'static str> {
    let pick: [(&Option<OsString>, bool, bool, &'static str); 4] = [
        (
            exclude,
            false,
            false,
            "Error in `exclude' regular expression.",
        ),
        (
            excludei,
            true,
            false,
            "Error in `exclude' regular expression.",
        ),
        (
            include,
            false,
            true,
            "Error in `include' regular expression.",
        ),
        (
            includei,
            true,
            true,
            "Error in `include' regular expression.",
        ),
    ];
    let mut filter = None;
    for (pattern, icase, invert, msg) in pick {
        if let Some(p) = pattern {
            let regex = Regex::new(p, icase).ok_or(msg)?;
            filter = Some(EventFilter { regex, invert });
        }
    }
    Ok(filter)
}

/// Runs the front door with `args[0]` being the tool's name; returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let o = match parse(&args) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let mut table = match Table::new() {
        Ok(t) => t,
        Err(e) => {
            let errno = e.raw_os_error().unwrap_or(0);
            eprintln!("Couldn't initialize inotify: {}", strerror(errno));
            if errno == libc::EMFILE {
                eprintln!("Try increasing the value of /proc/sys/fs/inotify/max_user_instances");
            }
            return EXIT_FAILURE;
        }
    };
    match build_filter(&o.exclude, &o.excludei, &o.include, &o.includei) {
        Ok(f) => table.filter = f,
        Err(msg) => {
            eprintln!("{msg}");
            return EXIT_FAILURE;
        }
    }
    if let Some(f) = &o.format {
        if f.is_empty() || f.len() > 4096 {
            eprintln!("Something is wrong with your format string.");
            return EXIT_FAILURE;
        }
    }
    let mut events = if o.events == 0 {
        mask::ALL_EVENTS
    } else {
        o.events
    };
    let orig_events = events;
    if o.monitor && o.recursive {
        events |= mask::CREATE | mask::MOVED_TO | mask::MOVED_FROM;
    }
    if o.no_dereference {
        events |= mask::DONT_FOLLOW;
    }
    let list = PathList::build(&o.operands, o.fromfile.as_deref());
    if list.watch.is_empty() {
        eprintln!("No files specified to watch!");
        return EXIT_FAILURE;
    }
    if let Err(code) = redirect_output(&o) {
        return code;
    }
    let errors = Errors { syslog: o.syslog };
    if o.syslog {
        // SAFETY: the identifier is a static C string.
        unsafe {
            libc::openlog(
                c"inotifywait".as_ptr(),
                libc::LOG_CONS | libc::LOG_PID | libc::LOG_NDELAY,
                libc::LOG_DAEMON,
            )
        };
    }
    if o.quiet == 0 {
        if o.recursive {
            errors
                .say(b"Setting up watches.  Beware: since -r was given, this may take a while!\n");
        } else {
            errors.say(b"Setting up watches.\n");
        }
    }
    for path in &list.watch {
        let result = if o.recursive {
            table.watch_recursively(path, events, &list.exclude)
        } else {
            table.watch_file(path, events)
        };
        if let Err(errno) = result {
            if errno == libc::ENOSPC {
                errors.say(&cat(&[
                    b"Failed to watch ",
                    path,
                    b"; upper limit on inotify watches reached!\n",
                ]));
                errors.say(
                    b"Please increase the amount of inotify watches allowed per user via \
                      `/proc/sys/fs/inotify/max_user_watches'.\n",
                );
            } else {
                errors.say(&cat(&[
                    b"Couldn't watch ",
                    path,
                    b": ",
                    strerror(errno).as_bytes(),
                    b"\n",
                ]));
            }
            return EXIT_FAILURE;
        }
    }
    if o.quiet == 0 {
        errors.say(b"Watches established.\n");
    }
    run_loop(&o, &mut table, &errors, events, orig_events)
}

/// `-o` and `-d`: send events to a file, daemonising first with `-d`.
fn redirect_output(o: &Options) -> Result<(), i32> {
    let Some(outfile) = &o.outfile else {
        return Ok(());
    };
    let mut target = std::path::PathBuf::from(outfile);
    if o.daemon {
        target = match std::fs::canonicalize(&target) {
            Ok(p) => p,
            Err(e) => {
                eprint_bytes(&[
                    strerror(e.raw_os_error().unwrap_or(0)).as_bytes(),
                    b": ",
                    outfile.as_bytes(),
                    b"\n",
                ]);
                return Err(EXIT_FAILURE);
            }
        };
        // SAFETY: no other threads exist yet; daemon(3) forks and detaches.
        if unsafe { libc::daemon(0, 0) } != 0 {
            eprintln!("Failed to daemonize!");
            return Err(EXIT_FAILURE);
        }
    }
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&target);
    let file = match file {
        Ok(f) => f,
        Err(_) => {
            eprint_bytes(&[
                b"Failed to open output file ",
                target.as_os_str().as_bytes(),
                b"\n",
            ]);
            return Err(EXIT_FAILURE);
        }
    };
    use std::os::fd::AsRawFd;
    // SAFETY: duplicating a descriptor we own onto stdout (and /dev/null onto stderr for -d).
    unsafe {
        libc::dup2(file.as_raw_fd(), 1);
        if o.daemon {
            if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
                libc::dup2(null.as_raw_fd(), 2);
            }
        }
    }
    Ok(())
}

fn run_loop(o: &Options, table: &mut Table, errors: &Errors, events: u32, orig_events: u32) -> i32 {
    let timeout = (o.timeout != 0).then(|| Duration::from_secs(u64::from(o.timeout)));
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let mut moved_from: Option<Vec<u8>> = None;
    let timefmt = o.timefmt.as_ref().map(|t| t.as_bytes().to_vec());
    loop {
        // The original flushes after every event; flushing whenever the watcher is about to
        // wait gives the reader the same bytes as early as it could use them, in fewer writes.
        let mut flush_failed = false;
        let next = table.next_event(timeout, &mut || flush_failed |= out.flush().is_err());
        if flush_failed {
            return EXIT_FAILURE;
        }
        let (ev, made_up) = match next {
            Ok(Some(e)) => e,
            Ok(None) => {
                let _ = out.flush();
                return EXIT_TIMEOUT;
            }
            Err(errno) => {
                let _ = out.flush();
                errors.say(&cat(&[strerror(errno).as_bytes(), b"\n"]));
                return EXIT_FAILURE;
            }
        };
        if o.quiet < 2 && ev.mask & orig_events != 0 {
            let name = ev.name.as_deref().map(OsStr::as_bytes).unwrap_or(b"");
            let subject = Subject {
                watch: table.filename(ev.wd),
                name,
                mask: ev.mask,
                cookie: ev.cookie,
            };
            let line = if o.csv {
                csv_line(&subject)
            } else if let Some(f) = &o.format {
                format_event(f, &subject, timefmt.as_deref())
            } else {
                format_event(b"%w %,e %f\n", &subject, None)
            };
            if out.write_all(&line).is_err() {
                return EXIT_FAILURE;
            }
        }
        if !made_up {
            follow_tree(o, table, errors, events, &ev, &mut moved_from);
        }
        if !o.monitor {
            if out.flush().is_err() {
                return EXIT_FAILURE;
            }
            return if events & ev.mask == 0 {
                EXIT_FAILURE
            } else {
                EXIT_SUCCESS
            };
        }
    }
}

/// Keeps the table in step with the tree: watch new directories, rename moved ones, drop the
/// watch of one moved out.
fn follow_tree(
    o: &Options,
    table: &mut Table,
    errors: &Errors,
    events: u32,
    ev: &rtsync_watch::RawEvent,
    moved_from: &mut Option<Vec<u8>>,
) {
    let say = |msg: &[u8]| errors.say(msg);
    forget_moved_out(table, ev, moved_from, say);
    if o.monitor && o.recursive {
        follow_new_dirs(table, events, ev, moved_from, say);
    }
}

/// A directory whose `MOVED_FROM` was not followed by a `MOVED_TO` left the tree: drop its
/// watch (only its own, as the originals do).
pub(crate) fn forget_moved_out(
    table: &mut Table,
    ev: &rtsync_watch::RawEvent,
    moved_from: &mut Option<Vec<u8>>,
    say: impl Fn(&[u8]),
) {
    if let Some(from) = moved_from.as_ref() {
        if ev.mask & mask::MOVED_TO == 0 {
            if let Err(e) = table.remove_by_filename(from) {
                say(&cat(&[
                    b"Error removing watch on ",
                    from,
                    b": ",
                    strerror(e).as_bytes(),
                    b"\n",
                ]));
            }
            *moved_from = None;
        }
    }
}

/// The `-r` bookkeeping both tools share.
pub(crate) fn follow_new_dirs(
    table: &mut Table,
    events: u32,
    ev: &rtsync_watch::RawEvent,
    moved_from: &mut Option<Vec<u8>>,
    say: impl Fn(&[u8]),
) {
    if ev.mask & mask::CREATE != 0 || (moved_from.is_none() && ev.mask & mask::MOVED_TO != 0) {
        if let Some(new_dir) = table.dirpath_from_event(ev) {
            if isdir(&new_dir) {
                // Only a brand-new directory can hold entries nobody was told about; what a
                // directory moved in holds was not created here, and is not reported.
                let brand_new = ev.mask & mask::CREATE != 0;
                if let Err(errno) = table.watch_new_dir(&new_dir, events, brand_new) {
                    say(&cat(&[
                        b"Couldn't watch new directory ",
                        &new_dir,
                        b": ",
                        strerror(errno).as_bytes(),
                        b"\n",
                    ]));
                }
            }
        }
    } else if ev.mask & mask::MOVED_FROM != 0 {
        *moved_from = table
            .dirpath_from_event(ev)
            .filter(|p| table.wd_from_filename(p).is_some());
    } else if ev.mask & mask::MOVED_TO != 0 {
        if let Some(from) = moved_from.take() {
            if let Some(to) = table.dirpath_from_event(ev) {
                table.replace_filename(&from, &to);
            }
        }
    }
}
