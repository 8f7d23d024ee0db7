//! `--debug=filter` (which `-vv` implies) against stock rsync: the lines naming the rule that
//! hid, showed, protected or risked each name (`[sender] hiding file a.o because of pattern
//! *.o`, `[generator] protecting file x because of pattern <rule from a file read earlier>
//! [per-dir .rsync-filter]`), from every side we can play: a local copy, a client pushing and
//! pulling through a remote shell to a stock server and a stock client with ours as the
//! server, and a client of a stock daemon. Only the trace lines are compared, sorted: the
//! sender and the generator are separate processes whose lines interleave at random.

mod interop_util;

use interop_util::*;
use std::fs;
use std::path::Path;
use std::process::Command;

/// The rule sets, each with the files they act on (the tree is the same for all).
const CASES: &[(&str, &[&str])] = &[
    ("plain exclude", &["--exclude=*.o"]),
    ("include", &["--include=b.c", "--exclude=*.c"]),
    ("directory-only rule", &["--exclude=d/", "--exclude=extra/"]),
    (
        "per-directory merge file",
        &["--filter=dir-merge .rsync-filter"],
    ),
    ("-F", &["-F", "--exclude=*.o"]),
    (
        "protect and risk, rules from a file",
        &[
            "--exclude-from=incl",
            "--exclude=*.o",
            "--filter=P prot.o",
            "--filter=R risky",
            "--filter=- /keep.txt ",
        ],
    ),
];

fn write(p: &Path, data: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

/// The source tree, the rule file `incl`, and an empty `dest` under `base`.
fn source(base: &Path) {
    let _ = fs::remove_dir_all(base);
    for (name, data) in [
        ("src/a.o", "a"),
        ("src/b.c", "b"),
        ("src/k.c", "k"),
        ("src/keep.txt", "keep"),
        ("src/d/in-d", "d"),
        ("src/sub/c.o", "c"),
        ("src/sub/keep", "x"),
        ("src/sub/.rsync-filter", "- keep\n+ c.o\n"),
        ("src/sub/d/deeper", "e"),
        ("incl", "+ b.c\n- k.c\n"),
    ] {
        write(&base.join(name), data);
    }
}

/// What `dest` holds before each run: names for the generator to protect or risk, among
/// them a per-directory rule file of the destination's own.
fn stale(dest: &Path) {
    let _ = fs::remove_dir_all(dest);
    for (name, data) in [
        ("prot.o", "p"),
        ("risky", "r"),
        ("b.c", "old"),
        ("extra/e", "e"),
        ("sub/.rsync-filter", "- zz\n"),
        ("sub/zz", "z"),
        ("sub/yy", "y"),
    ] {
        write(&dest.join(name), data);
    }
}

/// The sorted trace lines of a run (stdout and stderr), after checking it succeeded.
fn traces(mut cmd: Command, what: &str) -> Vec<String> {
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{what}: {text}");
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.contains("because of pattern"))
        .map(str::to_string)
        .collect();
    lines.sort_unstable();
    lines
}

fn ours() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rtsync"));
    c.arg("rsync");
    c
}

fn stock() -> Command {
    Command::new(stock_rsync())
}

/// The common options and a case's rules.
fn args(rules: &[&str]) -> Vec<String> {
    ["-r", "-vv", "--delete"]
        .iter()
        .chain(rules)
        .map(|s| s.to_string())
        .collect()
}

/// Runs `cmd` (with the case's options, then `tail`) in `base` over a fresh destination.
fn run(cmd: Command, base: &Path, rules: &[&str], tail: &[String], what: &str) -> Vec<String> {
    let mut all = args(rules);
    all.extend_from_slice(tail);
    run_with(cmd, base, &all, what)
}

/// Runs `cmd ARGS` in `base` over a fresh destination.
fn run_with(mut cmd: Command, base: &Path, args: &[String], what: &str) -> Vec<String> {
    stale(&base.join("dest"));
    cmd.current_dir(base).args(args);
    traces(cmd, what)
}

#[test]
fn local_copies_trace_as_stock() {
    let base = tempfile::tempdir().unwrap();
    let base = base.path();
    source(base);
    let tail = ["src/".to_string(), "dest/".to_string()];
    for (name, rules) in CASES {
        let want = run(stock(), base, rules, &tail, name);
        assert!(!want.is_empty(), "{name}: stock traced nothing");
        let got = run(ours(), base, rules, &tail, name);
        assert_eq!(got, want, "local copy, {name}");
    }
}

/// Every pairing of a client and a remote-shell server, ours on one side at least, against
/// stock on both: a push and a pull for each case.
#[test]
fn remote_shell_transfers_trace_as_stock() {
    let base = tempfile::tempdir().unwrap();
    let base = base.path();
    source(base);
    let ssh = fake_ssh(base).display().to_string();
    let src = base.join("src").display().to_string() + "/";
    let dest = base.join("dest").display().to_string() + "/";
    for (name, rules) in CASES {
        for push in [true, false] {
            let (from, to) = if push {
                (src.clone(), format!("host:{dest}"))
            } else {
                (format!("host:{src}"), dest.clone())
            };
            let direction = if push { "push" } else { "pull" };
            let tail = |ours_remote: bool| {
                vec![
                    format!("--rsync-path={}", remote_rsync_path(ours_remote)),
                    format!("--rsh={ssh}"),
                    from.clone(),
                    to.clone(),
                ]
            };
            let want = run(stock(), base, rules, &tail(false), name);
            assert!(!want.is_empty(), "{name}: stock traced nothing");
            let as_client = run(ours(), base, rules, &tail(false), name);
            assert_eq!(as_client, want, "{direction} by our client, {name}");
            let as_server = run(stock(), base, rules, &tail(true), name);
            assert_eq!(as_server, want, "{direction} to our server, {name}");
        }
    }
}

/// A client of a stock daemon whose `max verbosity` lets its own side's lines through too.
#[test]
fn daemon_transfers_trace_as_stock() {
    let base = tempfile::tempdir().unwrap();
    let base = base.path();
    source(base);
    let daemon = StockDaemon::start(&[
        Module {
            name: "src",
            path: &base.join("src"),
            extra: "max verbosity = 2",
        },
        Module {
            name: "dest",
            path: &base.join("dest"),
            extra: "max verbosity = 2",
        },
    ]);
    for (name, rules) in CASES {
        for push in [true, false] {
            let tail = if push {
                vec!["src/".to_string(), daemon.url("dest/")]
            } else {
                vec![daemon.url("src/"), "dest/".to_string()]
            };
            let direction = if push { "push" } else { "pull" };
            let want = run(stock(), base, rules, &tail, name);
            assert!(!want.is_empty(), "{name}: stock traced nothing");
            let got = run(ours(), base, rules, &tail, name);
            assert_eq!(got, want, "{direction} by our client to a daemon, {name}");
        }
    }
}

/// Without `-vv` or `--debug=filter` nothing is traced, and `--debug=filter0` silences `-vv`.
#[test]
fn traces_only_when_asked() {
    let base = tempfile::tempdir().unwrap();
    let base = base.path();
    source(base);
    for extra in [
        &["-v"][..],
        &["-vv", "--debug=filter0"],
        &["--debug=filter"],
    ] {
        let all: Vec<String> = ["-r", "--delete", "--exclude=*.o", "--filter=R risky"]
            .iter()
            .chain(extra)
            .chain(&["src/", "dest/"])
            .map(|s| s.to_string())
            .collect();
        let want = run_with(stock(), base, &all, "quiet");
        let got = run_with(ours(), base, &all, "quiet");
        assert_eq!(got, want, "{extra:?}");
    }
}

/// A daemon (`daemon`: its command) serving `src` with rules of its own, pulled from by a
/// stock client with `rules`: the trace lines the client shows, and those in the daemon's log
/// (without their pid), each sorted.
fn daemon_pull(daemon: Command, base: &Path, rules: &[&str]) -> (Vec<String>, Vec<String>) {
    let conf = base.join("rsyncd.conf");
    let log = base.join("rsyncd.log");
    let _ = fs::remove_file(&log);
    // SAFETY: geteuid has no preconditions.
    let ids = if unsafe { libc::geteuid() } == 0 {
        "uid = root\ngid = root\n"
    } else {
        ""
    };
    fs::write(
        &conf,
        format!(
            "use chroot = no\nreverse lookup = no\n{ids}log file = {}\n\
             [m]\npath = {}\nmax verbosity = 2\nexclude = *.c\n",
            log.display(),
            base.join("src").display()
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut daemon = daemon;
    let mut child = daemon
        .args(["--daemon", "--no-detach", "--address=127.0.0.1"])
        .arg(format!("--config={}", conf.display()))
        .arg(format!("--port={port}"))
        .spawn()
        .unwrap();
    let ready = (0..500).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(ready, "the daemon did not start");
    let tail = [format!("rsync://127.0.0.1:{port}/m/"), "dest/".to_string()];
    let shown = run(stock(), base, rules, &tail, "daemon pull");
    // (The log is written before the client hears the end of the transfer.)
    let _ = child.kill();
    let _ = child.wait();
    let mut logged: Vec<String> = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("because of pattern"))
        .filter_map(|l| l.split_once("] ").map(|(_, rest)| rest.to_string()))
        .collect();
    logged.sort_unstable();
    (shown, logged)
}

/// Our daemon, like stock's, logs its module rules' traces (` [daemon]`) and those of the
/// client's rules, and tells the client only the latter.
#[test]
fn daemon_logs_trace_as_stock() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the daemon config runs as root"
    );
    let base = tempfile::tempdir().unwrap();
    let base = base.path();
    source(base);
    for (name, rules) in CASES {
        for no_inc in [false, true] {
            let mut rules = rules.to_vec();
            if no_inc {
                rules.push("--no-inc-recursive");
            }
            let want = daemon_pull(stock(), base, &rules);
            assert!(
                want.1.iter().any(|l| l.ends_with(" [daemon]")),
                "{name}: {want:?}"
            );
            let got = daemon_pull(ours(), base, &rules);
            assert_eq!(got, want, "{name} {rules:?}");
        }
    }
}

/// A local listing (no destination) lists as a sender does, and traces as one.
#[test]
fn local_listing_traces_as_stock() {
    let base = tempfile::tempdir().unwrap();
    let base = base.path();
    source(base);
    for (name, rules) in CASES {
        let mut all = args(rules);
        all.push("src/".to_string());
        let want = run_with(stock(), base, &all, name);
        let got = run_with(ours(), base, &all, name);
        assert_eq!(got, want, "listing, {name}");
    }
}
