//! `rtsync`: one binary, several front doors.
//!
//! Run as `rtsync SUBCOMMAND …`, or through a link whose name is `rsync`, `inotifywait` or
//! `inotifywatch`, in which case it behaves as that tool so existing scripts keep working.

use std::ffi::OsString;
use std::path::Path;

mod daemon_cmd;
mod inotifywait;
mod inotifywatch;
mod rsync_cmd;

/// A front door: runs with argv as its tool would see it, returns the exit code.
type FrontDoor = fn(Vec<OsString>) -> i32;

/// The front doors, by the name they answer to.
const SUBCOMMANDS: &[(&str, FrontDoor)] = &[
    ("rsync", rsync_cmd::main),
    ("daemon", daemon_cmd::main),
    ("inotifywait", inotifywait::main),
    ("inotifywatch", inotifywatch::main),
];

fn usage() -> i32 {
    eprintln!(
        "rtsync {}: real-time file replication\n\n\
         Usage: rtsync <COMMAND> [ARGS…]\n\n\
         Commands:\n  \
         rsync         rsync-compatible copy client (same options as rsync)\n  \
         daemon        rsync daemon serving modules from an rsyncd.conf\n  \
         inotifywait   drop-in for inotify-tools' inotifywait\n  \
         inotifywatch  drop-in for inotify-tools' inotifywatch\n  \
         live          watch a tree and mirror every change to targets\n  \
         status        show the state of a running live sync\n",
        env!("CARGO_PKG_VERSION")
    );
    1
}

fn main() {
    // Writing to a closed pipe is an ordinary way for a reader to stop us; see `rsync_cmd`.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let invoked_as = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("rtsync")
        .to_string();
    // A personality: the program name selects the tool, argv stays as that tool expects it.
    if let Some((_, run)) = SUBCOMMANDS.iter().find(|(name, _)| *name == invoked_as) {
        std::process::exit(run(args));
    }
    if args.len() < 2 {
        std::process::exit(usage());
    }
    let sub = args[1].to_string_lossy().into_owned();
    match SUBCOMMANDS.iter().find(|(name, _)| *name == sub) {
        Some((name, run)) => {
            // Present argv as the stand-in tool would see it: its own name first.
            args.remove(0);
            args[0] = OsString::from(*name);
            std::process::exit(run(args));
        }
        None if sub == "-h" || sub == "--help" => {
            usage();
            std::process::exit(0)
        }
        None if sub == "-V" || sub == "--version" => {
            println!("rtsync {}", env!("CARGO_PKG_VERSION"));
            std::process::exit(0)
        }
        None => {
            eprintln!("rtsync: unknown command '{sub}'");
            std::process::exit(usage())
        }
    }
}
