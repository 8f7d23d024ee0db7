//! The `inotifywatch` front door: a drop-in for inotify-tools' `inotifywatch` 3.22.
//!
//! Counts events per watched path until interrupted (SIGINT, SIGTERM, SIGHUP) or until
//! `--timeout`, then prints the same table as the original: the same columns, zero rows and
//! columns hidden unless `-z`, the same sort order. SIGUSR1 prints the table without stopping.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use rtsync_watch::mask;

use crate::inotifywait::inotify::common::{
    eprint_bytes, parse_events, parse_timeout, strerror, PathList, EXIT_FAILURE, EXIT_SUCCESS,
};
use crate::inotifywait::inotify::getopt::{Getopt, LongOpt, Opt};
use crate::inotifywait::inotify::table::{Stats, Table};
use crate::inotifywait::{build_filter, follow_new_dirs, forget_moved_out};

#[derive(Default)]
struct Options {
    events: u32,
    timeout: u32,
    verbose: u32,
    zero: bool,
    /// Sort key as the original encodes it: 0 total ascending, -1 total descending, an event
    /// bit ascending, a negated event bit descending.
    sort: i64,
    recursive: bool,
    no_dereference: bool,
    fromfile: Option<OsString>,
    exclude: Option<OsString>,
    excludei: Option<OsString>,
    include: Option<OsString>,
    includei: Option<OsString>,
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
        name: "timeout",
        has_arg: true,
        val: b't',
    },
    LongOpt {
        name: "verbose",
        has_arg: false,
        val: b'v',
    },
    LongOpt {
        name: "zero",
        has_arg: false,
        val: b'z',
    },
    LongOpt {
        name: "ascending",
        has_arg: true,
        val: b'a',
    },
    LongOpt {
        name: "descending",
        has_arg: true,
        val: b'd',
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
        name: "no-dereference",
        has_arg: false,
        val: b'P',
    },
    LongOpt {
        name: "fromfile",
        has_arg: true,
        val: b'o',
    },
    LongOpt {
        name: "exclude",
        has_arg: true,
        val: b'c',
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

/// Columns of the table: event bit, header, field width.
const COLUMNS: &[(u32, &str, usize)] = &[
    (mask::ACCESS, "access", 6),
    (mask::MODIFY, "modify", 6),
    (mask::ATTRIB, "attrib", 6),
    (mask::CLOSE_WRITE, "close_write", 11),
    (mask::CLOSE_NOWRITE, "close_nowrite", 13),
    (mask::OPEN, "open", 4),
    (mask::MOVED_FROM, "moved_from", 10),
    (mask::MOVED_TO, "moved_to", 8),
    (mask::MOVE_SELF, "move_self", 9),
    (mask::CREATE, "create", 6),
    (mask::DELETE, "delete", 6),
    (mask::DELETE_SELF, "delete_self", 11),
    (mask::UNMOUNT, "unmount", 7),
];

fn print_help() {
    print!(
        "inotifywatch 3.22.6.0 (rtsync {})\n\
         Counts filesystem events per file or directory and prints a table at the end.\n\
         Usage: inotifywatch [ options ] file1 [ file2 ] [ ... ]\n\
         Options:\n\
         \t-h|--help             This help.\n\
         \t-v|--verbose          Say more while setting up.\n\
         \t@<file>               Do not watch <file> (with -r: do not descend into it).\n\
         \t--fromfile <file>     Read paths to watch from <file> ('-' for stdin), one a line.\n\
         \t--exclude <regex>     Do not count events whose path matches the extended regex.\n\
         \t--excludei <regex>    The same, ignoring case.\n\
         \t--include <regex>     Only count events whose path matches the extended regex.\n\
         \t--includei <regex>    The same, ignoring case.\n\
         \t-z|--zero             Keep rows and columns that are all zero.\n\
         \t-r|--recursive        Watch whole directory trees.\n\
         \t-P|--no-dereference   Watch symbolic links themselves, not their targets.\n\
         \t-t|--timeout <secs>   Stop after <secs> seconds (0 or none: at SIGINT/SIGTERM).\n\
         \t-e|--event <event>    Only count these events (repeatable).\n\
         \t-a|--ascending <ev>   Sort ascending by an event's count, or `total'.\n\
         \t-d|--descending <ev>  Sort descending by an event's count, or `total'.\n\n\
         Exit status:\n\
         \t0  finished normally\n\
         \t1  an error occurred\n\n\
         Events:\n{}",
        env!("CARGO_PKG_VERSION"),
        crate::inotifywait::inotify::common::EVENT_HELP
    );
}

fn sort_key(arg: &OsString, descending: bool) -> Result<i64, i32> {
    let text = arg.to_string_lossy();
    if text.eq_ignore_ascii_case("total") {
        return Ok(if descending { -1 } else { 0 });
    }
    if !descending && text.eq_ignore_ascii_case("move") {
        eprintln!("Cannot sort by `move' event; please use `moved_from' or `moved_to'.");
        return Err(EXIT_FAILURE);
    }
    if !descending && text.eq_ignore_ascii_case("close") {
        eprintln!("Cannot sort by `close' event; please use `close_write' or `close_nowrite'.");
        return Err(EXIT_FAILURE);
    }
    match mask::parse_event_list(&text, ',') {
        mask::ParsedEvents::Invalid => {
            eprint_bytes(&[b"'", arg.as_bytes(), b"' is not a valid key for sorting!\n"]);
            Err(EXIT_FAILURE)
        }
        mask::ParsedEvents::Empty => Ok(0),
        mask::ParsedEvents::Mask(m) => Ok(if descending {
            -i64::from(m)
        } else {
            i64::from(m)
        }),
    }
}

fn parse(args: &[OsString]) -> Result<Options, i32> {
    let mut o = Options {
        sort: -1,
        ..Options::default()
    };
    let mut sort_set = false;
    let mut g = Getopt::new(args, "hrPa:d:zve:t:IFS", LONG_OPTS);
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
            b'v' => o.verbose += 1,
            b'r' => o.recursive = true,
            b'P' => o.no_dereference = true,
            b'z' => o.zero = true,
            b'c' => o.exclude = Some(arg),
            b'b' => o.excludei = Some(arg),
            b'j' => o.include = Some(arg),
            b'k' => o.includei = Some(arg),
            b'o' => {
                if o.fromfile.is_some() {
                    eprintln!("Multiple --fromfile options given.");
                    return Err(EXIT_FAILURE);
                }
                o.fromfile = Some(arg);
            }
            b't' => o.timeout = parse_timeout(&arg).ok_or(EXIT_FAILURE)?,
            b'e' => o.events |= parse_events(&arg).ok_or(EXIT_FAILURE)?,
            b'a' | b'd' => {
                if sort_set {
                    eprintln!("Please specify -a or -d once only!");
                    return Err(EXIT_FAILURE);
                }
                o.sort = sort_key(&arg, c == b'd')?;
                // Like the original, only -a counts as having chosen an order.
                sort_set = c == b'a';
            }
            _ => {}
        }
    }
    o.operands = g.operands();
    let watched = if o.events != 0 {
        o.events
    } else {
        mask::ALL_EVENTS
    };
    let checks: &[(bool, &str)] = &[
        (
            o.sort != 0 && o.sort != -1 && (o.sort.unsigned_abs() as u32) & watched == 0,
            "Can't sort by an event which isn't being watched for!",
        ),
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
    ];
    if let Some((_, msg)) = checks.iter().find(|(bad, _)| *bad) {
        eprintln!("{msg}");
        return Err(EXIT_FAILURE);
    }
    Ok(o)
}

/// Counters of a watch that saw nothing.
static NO_EVENTS: Stats = Stats {
    by_bit: [0; 14],
    total: 0,
};

static DONE: AtomicBool = AtomicBool::new(false);
static PRINT_NOW: AtomicBool = AtomicBool::new(false);
static IMPATIENT: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_impatient(_: libc::c_int) {
    let first = b"No statistics have been collected because I haven't finished establishing\n\
inotify watches yet.  If you are sure you want me to exit, interrupt me again.\n";
    let second =
        b"No statistics collected, asked to abort before all watches could be established.\n";
    // Only async-signal-safe calls here: write(2) and _exit(2).
    if IMPATIENT.fetch_add(1, Ordering::SeqCst) > 0 {
        // SAFETY: writing a static buffer to stderr, then leaving.
        unsafe {
            libc::write(2, second.as_ptr().cast(), second.len());
            libc::_exit(1);
        }
    }
    // SAFETY: writing a static buffer to stderr.
    unsafe { libc::write(2, first.as_ptr().cast(), first.len()) };
}

extern "C" fn on_stop(_: libc::c_int) {
    DONE.store(true, Ordering::SeqCst);
}

extern "C" fn on_usr1(_: libc::c_int) {
    PRINT_NOW.store(true, Ordering::SeqCst);
}

fn set_handler(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: installing a handler that only touches atomics or calls write/_exit. Like the C
    // library's signal(), with SA_RESTART; poll(2) still returns EINTR, which the loop checks.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// Runs the front door with `args[0]` being the tool's name; returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    set_handler(libc::SIGINT, on_impatient);
    let o = match parse(&args) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let filter = match build_filter(&o.exclude, &o.excludei, &o.include, &o.includei) {
        Ok(f) => f,
        Err(msg) => {
            eprintln!("{msg}");
            return EXIT_FAILURE;
        }
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
    table.filter = filter;
    let mut events = if o.events == 0 {
        mask::ALL_EVENTS
    } else {
        o.events
    };
    let columns_mask = events;
    if o.no_dereference {
        events |= mask::DONT_FOLLOW;
    }
    let list = PathList::build(&o.operands, o.fromfile.as_deref());
    if list.watch.is_empty() {
        eprintln!("No files specified to watch!");
        return EXIT_FAILURE;
    }
    eprintln!("Establishing watches...");
    for path in &list.watch {
        if o.recursive && o.verbose > 0 {
            eprint_bytes(&[b"Setting up watch(es) on ", path, b"\n"]);
        }
        let result = if o.recursive {
            table.watch_recursively(path, events, &list.exclude)
        } else {
            table.watch_file(path, events)
        };
        if let Err(errno) = result {
            if errno == libc::ENOSPC {
                eprint_bytes(&[
                    b"Failed to watch ",
                    path,
                    b"; upper limit on inotify watches reached!\n",
                ]);
                eprintln!(
                    "Please increase the amount of inotify watches allowed per user via \
                     `/proc/sys/fs/inotify/max_user_watches'."
                );
            } else {
                eprint_bytes(&[
                    b"Failed to watch ",
                    path,
                    b": ",
                    strerror(errno).as_bytes(),
                    b"\n",
                ]);
            }
            return EXIT_FAILURE;
        }
        if o.recursive && o.verbose > 0 {
            eprint_bytes(&[b"OK, ", path, b" is now being watched.\n"]);
        }
    }
    if o.verbose > 0 {
        eprintln!("Total of {} watches.", table.num_watches());
    }
    eprintln!("Finished establishing watches, now collecting statistics.");
    if o.timeout != 0 && o.verbose > 0 {
        eprintln!("Will listen for events for {} seconds.", o.timeout);
    }
    for sig in [libc::SIGINT, libc::SIGHUP, libc::SIGTERM] {
        set_handler(sig, on_stop);
    }
    set_handler(libc::SIGUSR1, on_usr1);
    if o.timeout != 0 {
        set_handler(libc::SIGALRM, on_stop);
        // SAFETY: plain system call.
        unsafe { libc::alarm(o.timeout) };
    } else {
        // SAFETY: plain system call.
        unsafe { libc::alarm(u32::MAX) };
    }
    table.collect_stats = true;
    collect(&o, &mut table, events);
    print_info(&o, &table, columns_mask)
}

fn collect(o: &Options, table: &mut Table, events: u32) {
    let mut moved_from: Option<Vec<u8>> = None;
    let say = |msg: &[u8]| eprint_bytes(&[msg]);
    // SIGUSR1 prints the table as it stands: checked before every event, not only when the
    // signal interrupts a wait, so events that come after it are not counted in.
    let print_if_asked = |table: &Table| {
        if PRINT_NOW.swap(false, Ordering::SeqCst) {
            print_info(
                o,
                table,
                if o.events == 0 {
                    mask::ALL_EVENTS
                } else {
                    o.events
                },
            );
            println!();
            let _ = std::io::stdout().flush();
        }
    };
    while !DONE.load(Ordering::SeqCst) {
        print_if_asked(table);
        let ev = match table.next_event(None, &mut || {}) {
            Ok(Some((ev, made_up))) => (ev, made_up),
            Ok(None) => continue,
            Err(libc::EINTR) => {
                print_if_asked(table);
                continue;
            }
            Err(errno) => {
                eprintln!("{}", strerror(errno));
                std::process::exit(EXIT_FAILURE);
            }
        };
        let (ev, made_up) = ev;
        if made_up {
            continue;
        }
        forget_moved_out(table, &ev, &mut moved_from, say);
        if o.recursive {
            follow_new_dirs(table, events, &ev, &mut moved_from, say);
        }
    }
}

/// Prints the statistics table; the exit code of the program.
fn print_info(o: &Options, table: &Table, events: u32) -> i32 {
    let totals = &table.totals;
    if totals.total == 0 {
        eprintln!("No events occurred.");
        return EXIT_SUCCESS;
    }
    let shown: Vec<&(u32, &str, usize)> = COLUMNS
        .iter()
        .filter(|(bit, _, _)| events & bit != 0 && (o.zero || totals.get(*bit) != 0))
        .collect();
    let mut out = Vec::new();
    out.extend_from_slice(b"total  ");
    for (_, name, _) in &shown {
        out.extend_from_slice(format!("{name}  ").as_bytes());
    }
    out.extend_from_slice(b"filename\n");
    let mut rows: Vec<(&i32, &Stats, &[u8])> = table
        .by_wd
        .iter()
        .map(|(wd, w)| (wd, table.stats.get(wd).unwrap_or(&NO_EVENTS), &*w.filename))
        .collect();
    let (key, ascending) = match o.sort {
        -1 => (0, false),
        s if s < 0 => ((-s) as u32, false),
        s => (s as u32, true),
    };
    // Sorting by several bits at once has no counter; the total stands in for it.
    let key = if key.count_ones() > 1 { 0 } else { key };
    rows.sort_by(|a, b| {
        let (x, y) = (a.1.get(key), b.1.get(key));
        let by_value = if ascending { x.cmp(&y) } else { y.cmp(&x) };
        by_value.then(a.0.cmp(b.0))
    });
    for (_, stats, filename) in rows {
        if !o.zero && stats.total == 0 {
            continue;
        }
        out.extend_from_slice(format!("{:<5}  ", stats.total).as_bytes());
        for (bit, _, width) in &shown {
            out.extend_from_slice(
                format!("{:<width$}  ", stats.get(*bit), width = *width).as_bytes(),
            );
        }
        out.extend_from_slice(filename);
        out.push(b'\n');
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&out);
    let _ = stdout.flush();
    EXIT_SUCCESS
}
