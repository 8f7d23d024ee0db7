//! One transfer in every pairing at once, compared with stock doing the same on both ends:
//! rtsync's client pushing to and pulling from stock servers and daemons, the stock client
//! against rtsync's server and daemon, and rtsync on both ends, each on its own copy of a
//! prepared work directory (`src/`, `dst/`, whatever else the case needs). Unlike
//! [`super::Role::run`], a case names several sources under `src/`, may add lines to the
//! daemon's module (`numeric ids`, `max verbosity`, `refuse options`), and compares the
//! output too (byte counts left out).

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use crate::daemon_util::{rtsync_bin, Daemon, Kind};
use crate::interop_util::{assert_same_tree_in, fake_ssh, stock_rsync};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    Ours,
    Stock,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Via {
    /// `host:path` through a fake ssh (the server side started by `--rsync-path`).
    Shell,
    /// `rsync://` to a daemon whose module `m` is the work directory.
    Daemon,
}

/// What to run: the options, the sources (names under `src/`, `""` for `src/` itself), and
/// extra lines for the daemon's module. `BASE` in an option is the work directory.
#[derive(Clone, Copy, Debug)]
pub struct Case<'a> {
    pub opts: &'a [&'a str],
    pub srcs: &'a [&'a str],
    pub module: &'a str,
    /// Directory times of `dst/` are compared (not when the run touches `dst/` itself
    /// without transferring it, e.g. deleting in it).
    pub dir_times: bool,
    /// The output is compared as a set of lines: messages that travel out of band (a
    /// receiver's deletions, a sender's removals) may overtake item lines.
    pub sorted: bool,
    /// The client runs as this unprivileged user (and group `nogroup`); a daemon module
    /// needs its own `uid =` line for its side.
    pub user: Option<&'a str>,
}

impl<'a> Case<'a> {
    pub fn new(opts: &'a [&'a str], srcs: &'a [&'a str]) -> Case<'a> {
        Case {
            opts,
            srcs,
            module: "",
            dir_times: true,
            sorted: false,
            user: None,
        }
    }

    /// The client runs as `user` (the trees are still made by the caller, as root).
    pub fn as_user(self, user: &'a str) -> Case<'a> {
        Case {
            user: Some(user),
            ..self
        }
    }

    pub fn module(self, module: &'a str) -> Case<'a> {
        Case { module, ..self }
    }

    pub fn no_dir_times(self) -> Case<'a> {
        Case {
            dir_times: false,
            ..self
        }
    }

    pub fn sorted(self) -> Case<'a> {
        Case {
            sorted: true,
            ..self
        }
    }
}

/// What one run left: its output (`BASE` for the work directory) and the daemon's log
/// messages (empty through a shell).
pub struct Ran {
    pub output: String,
    pub log: Vec<String>,
}

/// The daemon config of a run: module `m` is the work directory, `module` added to it.
pub fn daemon_conf(module: &str) -> String {
    let mut conf = String::from("use chroot = no\nreverse lookup = no\n");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        conf.push_str("uid = root\ngid = root\n");
    }
    conf.push_str("[m]\npath = {dir}/..\nread only = false\n");
    conf.push_str(module);
    conf.push('\n');
    conf
}

/// Prepares `base` with `prepare`, then runs `client` against `server` (push: `src/…` to
/// `dst/`; pull: the other way).
pub fn run(
    base: &Path,
    prepare: &dyn Fn(&Path),
    (client, server, via, push): (Side, Side, Via, bool),
    case: Case<'_>,
) -> Ran {
    prepare(base);
    let b = base.display().to_string();
    let mut args: Vec<String> = case.opts.iter().map(|s| s.replace("BASE", &b)).collect();
    let mut daemon = None;
    match via {
        Via::Shell => {
            let ssh = fake_ssh(base);
            args.extend(["-e".into(), ssh.display().to_string()]);
            args.push(match server {
                Side::Stock => format!("--rsync-path={}", stock_rsync().display()),
                Side::Ours => format!("--rsync-path={} rsync", rtsync_bin().display()),
            });
        }
        Via::Daemon => {
            let dir = base.join("daemon");
            std::fs::create_dir_all(&dir).unwrap();
            let kind = match server {
                Side::Stock => Kind::Stock,
                Side::Ours => Kind::Rtsync,
            };
            daemon = Some(Daemon::start(kind, &dir, &daemon_conf(case.module)));
        }
    }
    let remote = |p: &str| -> String {
        match &daemon {
            Some(d) => Daemon::url(d, &format!("m/{p}")),
            None => format!("host:{b}/{p}"),
        }
    };
    let src = |s: &str| format!("src/{s}");
    if push {
        args.extend(case.srcs.iter().map(|s| format!("{b}/{}", src(s))));
        args.push(remote("dst/"));
    } else {
        args.extend(case.srcs.iter().map(|s| remote(&src(s))));
        args.push(format!("{b}/dst/"));
    }
    // A transfer that hangs (two ends each waiting for the other) fails the case as
    // `timeout`'s exit code instead of stalling the suite.
    let mut cmd = Command::new("timeout");
    cmd.args(["--kill-after=5", "120"]);
    if let Some(user) = case.user {
        cmd.args([
            "setpriv",
            "--reuid",
            user,
            "--regid",
            "nogroup",
            "--clear-groups",
        ]);
    }
    cmd.arg(match client {
        Side::Stock => stock_rsync(),
        Side::Ours => rtsync_bin(),
    });
    if client == Side::Ours {
        cmd.arg("rsync");
    }
    let out = cmd.args(&args).current_dir(base).output().unwrap();
    let stdout = without_counts(&String::from_utf8_lossy(&out.stdout));
    let text = format!(
        "stdout:\n{stdout}stderr:\n{}exit: {:?}\n",
        String::from_utf8_lossy(&out.stderr),
        out.status.code()
    );
    let log = daemon
        .as_ref()
        .map(Daemon::log_messages)
        .unwrap_or_default();
    Ran {
        output: temp_names(&text.replace(&b, "BASE")),
        log: log.into_iter().map(|l| l.replace(&b, "BASE")).collect(),
    }
}

/// Runs the pairing and all-stock on identical trees; compares the output and what `src/`
/// and `dst/` hold afterwards (directory times of `dst/` too). Returns both runs (ours,
/// stock) for further checks.
pub fn compare(
    prepare: &dyn Fn(&Path),
    roles: (Side, Side, Via, bool),
    case: Case<'_>,
) -> (Ran, Ran) {
    let ours = tempfile::tempdir().unwrap();
    let stock = tempfile::tempdir().unwrap();
    let got = run(ours.path(), prepare, roles, case);
    let want = run(
        stock.path(),
        prepare,
        (Side::Stock, Side::Stock, roles.2, roles.3),
        case,
    );
    let what = format!("{roles:?}, {case:?}");
    if case.sorted {
        let sorted = |t: &str| {
            let mut l: Vec<&str> = t.lines().collect();
            l.sort_unstable();
            l.join("\n")
        };
        assert_eq!(
            sorted(&got.output),
            sorted(&want.output),
            "output differs: {what}\n--- ours:\n{}--- stock:\n{}",
            got.output,
            want.output
        );
    } else {
        assert_eq!(got.output, want.output, "output differs: {what}");
    }
    for (d, dir_times) in [("src", false), ("dst", case.dir_times)] {
        assert_same_tree_in(
            &ours.path().join(d),
            &stock.path().join(d),
            dir_times,
            &format!("{d} differs: {what}"),
        );
    }
    (got, want)
}

/// The pairings with rtsync on at least one end.
pub const PAIRS: [(Side, Side); 3] = [
    (Side::Ours, Side::Stock),
    (Side::Stock, Side::Ours),
    (Side::Ours, Side::Ours),
];

/// [`compare`] through a shell and a daemon, pushing and pulling, in every pairing.
pub fn every_pairing(prepare: &dyn Fn(&Path), case: Case<'_>) {
    for via in [Via::Shell, Via::Daemon] {
        for push in [true, false] {
            for (client, server) in PAIRS {
                compare(prepare, (client, server, via, push), case);
            }
        }
    }
}

/// `text` without the lines of byte counts and timings, which legitimately differ between
/// implementations (and without the speedup they make).
pub fn without_counts(text: &str) -> String {
    let counts = [
        "sent ",
        "File list size",
        "File list generation time",
        "File list transfer time",
        "Total bytes sent",
        "Total bytes received",
    ];
    text.lines()
        .filter(|l| !counts.iter().any(|c| l.starts_with(c)))
        .map(|l| match l.find("  speedup is ") {
            Some(at) => format!("{}\n", &l[..at]),
            None => format!("{l}\n"),
        })
        .collect()
}

/// Temp-file names in messages (`".NAME.AbC123"`, stock's random mkstemp suffix) with the
/// suffix as `XXXXXX`.
pub fn temp_names(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    for (i, &c) in b.iter().enumerate() {
        if c != b'"' || i < 8 || b[i - 7] != b'.' {
            continue;
        }
        let suffix = &b[i - 6..i];
        let start = b[..i - 7].iter().rposition(|&c| c == b'/' || c == b'"');
        let dotted = start.is_some_and(|s| b.get(s + 1) == Some(&b'.'));
        if dotted && suffix.iter().all(u8::is_ascii_alphanumeric) {
            out[i - 6..i].copy_from_slice(b"XXXXXX");
        }
    }
    // The `.NAME.PID` of a node made to replace another (stock's atomic_create) as `.NAME.N`.
    let text = String::from_utf8(out).expect("only ASCII replaced");
    let mut shown = String::with_capacity(text.len());
    for (i, piece) in text.split('"').enumerate() {
        if i > 0 {
            shown.push('"');
        }
        let last = piece.rsplit('/').next().unwrap_or(piece);
        let numbered = last.starts_with('.')
            && last.rsplit_once('.').is_some_and(|(head, n)| {
                head.len() > 1 && !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit())
            });
        if numbered {
            let cut = piece.rfind('.').expect("numbered");
            shown.push_str(&piece[..cut]);
            shown.push_str(".N");
        } else {
            shown.push_str(piece);
        }
    }
    shown
}

/// Who runs what: client, server, shell or daemon, push.
pub type Roles = (Side, Side, Via, bool);

/// Every pairing (shell and daemon, push and pull) run by ours and by stock on both ends,
/// each on its own copy of `prepare`'s work directory, handed to `check` with the roles:
/// for cases where only the output is compared (times set to the time of the run, lines
/// compared as sets).
pub fn every_pairing_outputs(
    prepare: &dyn Fn(&Path),
    case: Case<'_>,
    check: &mut dyn FnMut(Roles, &Ran, &Ran),
) {
    for via in [Via::Shell, Via::Daemon] {
        for push in [true, false] {
            for (client, server) in PAIRS {
                let ours = tempfile::tempdir().unwrap();
                let stock = tempfile::tempdir().unwrap();
                let roles = (client, server, via, push);
                let got = run(ours.path(), prepare, roles, case);
                let want = run(
                    stock.path(),
                    prepare,
                    (Side::Stock, Side::Stock, via, push),
                    case,
                );
                check(roles, &got, &want);
            }
        }
    }
}
