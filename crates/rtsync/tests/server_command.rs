//! What a client tells its server, compared with stock: the remote shell's command line for
//! a wide set of options (push and pull), and `-s` (`--secluded-args`) end to end, with the
//! rest of the arguments sent over the connection to a server or a daemon, in every pairing
//! of stock and rtsync.

mod daemon_util;
mod interop_util;

use std::fs;
use std::path::Path;
use std::process::Command;

use daemon_util::{Daemon, Kind};
use interop_util::{fake_ssh, remote_rsync_path, script, snapshot, stock_rsync};

/// The client: stock rsync, or `rtsync rsync`.
fn client(ours: bool) -> Command {
    if ours {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rtsync"));
        c.arg("rsync");
        c
    } else {
        Command::new(stock_rsync())
    }
}

/// The remote shell command a client runs for `opts`, pushing or pulling: a stand-in shell
/// records its arguments (one a line) and fails, ending the run.
fn command_line(ours: bool, opts: &[&str], push: bool, dir: &Path) -> String {
    let shell = dir.join("record-shell");
    let record = dir.join(if ours { "ours" } else { "stock" });
    script::write_script(
        &shell,
        &format!(
            "#!/bin/sh\nshift\nprintf '%s\\n' \"$@\" > '{}'\nexit 1\n",
            record.display()
        ),
    );
    let _ = fs::remove_file(&record);
    let local = format!("{}/", dir.join("src").display());
    let mut cmd = client(ours);
    cmd.arg("-e").arg(&shell).args(opts);
    if push {
        cmd.args([local.as_str(), "host:dst"]);
    } else {
        cmd.args(["host:dst", local.as_str()]);
    }
    let out = cmd.env_remove("RSYNC_PROTECT_ARGS").output().unwrap();
    fs::read_to_string(&record).unwrap_or_else(|_| {
        format!(
            "(no command; exit {:?}: {})",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The options a server is given, option by option, as stock's server_options builds them:
/// the short-option cluster, --info words (only those the user set, only where they
/// matter), --compress-level (implying compression), --skip-compress to a sender, --fsync to
/// a receiver, and `-s` keeping everything after the cluster off the command line.
#[test]
fn server_command_lines_match_stock() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    fs::create_dir_all(dir.join("src")).unwrap();
    let cases: &[&[&str]] = &[
        &["-a"],
        &["-avv"],
        &["-aH", "--delete"],
        &["-az"],
        &["-a", "--compress-level=3"],
        &["-a", "-z", "--zl=1"],
        &["-a", "--compress-choice=none", "--compress-level=2"],
        &["-a", "-z", "--compress-choice=zstd"],
        &["-a", "--skip-compress=gz/jpg", "-z"],
        &["-a", "--fsync"],
        &["-a", "--fsync", "--temp-dir=/tmp"],
        &["-a", "--info=name2"],
        &["-a", "--info=name2,backup,remove"],
        &["-a", "--info=all"],
        &["-a", "--info=all2"],
        &["-a", "--info=none"],
        &["-a", "--info=name0,all2"],
        &["-a", "--info=stats3"],
        &["-a", "--info=progress2"],
        &["-a", "--info=backup0"],
        &["-a", "--info=all,name2,del0"],
        &["-a", "-v", "--info=name0"],
        &["-a", "--info=name0", "-i"],
        &["-a", "--progress"],
        &["-a", "-P"],
        &["-a", "-s"],
        &["-a", "-s", "--delete", "-v", "--exclude=*.o"],
        &["-a", "--secluded-args", "--info=name2", "--fsync"],
        &["-a", "--checksum-choice=md5", "-c"],
        &["-a", "--partial-dir=.p", "--delay-updates"],
        &["-a", "-b", "--backup-dir=bk", "--suffix=.x"],
        &["-a", "--link-dest=/tmp", "--max-delete=3"],
        &["-a", "-x", "-S", "--numeric-ids", "--chmod=g+w"],
        &["-a", "--usermap=1:2", "--groupmap=1:2", "--ignore-existing"],
    ];
    let mut differ = Vec::new();
    for opts in cases {
        for push in [true, false] {
            let stock = command_line(false, opts, push, dir);
            let ours = command_line(true, opts, push, dir);
            assert!(stock.starts_with("rsync\n--server"), "{opts:?}: {stock}");
            if ours != stock {
                differ.push(format!(
                    "{opts:?} {}:\n  stock: {}\n  ours:  {}",
                    if push { "push" } else { "pull" },
                    stock.replace('\n', " "),
                    ours.replace('\n', " ")
                ));
            }
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

/// A source tree with names a shell would split or expand.
fn tree(src: &Path) {
    fs::create_dir_all(src.join("with space")).unwrap();
    fs::write(src.join("with space/f 1"), "x\n").unwrap();
    fs::write(src.join("star.txt"), "y\n").unwrap();
    fs::write(src.join("other.txt"), "z\n").unwrap();
    fs::write(src.join("$HOME"), "not expanded\n").unwrap();
    for f in [
        "with space/f 1",
        "star.txt",
        "other.txt",
        "$HOME",
        "with space",
    ] {
        interop_util::set_mtime(&src.join(f), 1_500_000_000, 0);
    }
}

/// `-s` over a remote shell, every pairing, push and pull: names with a space and a `$`
/// arrive as named (no shell saw them), and a pull's wildcard is expanded by the server.
#[test]
fn secluded_args_over_a_remote_shell() {
    let run = |client_ours: bool, server_ours: bool, push: bool| {
        let work = tempfile::tempdir().unwrap();
        let w = work.path();
        tree(&w.join("src"));
        let ssh = fake_ssh(w);
        let mut cmd = client(client_ours);
        cmd.arg("-e")
            .arg(&ssh)
            .arg(format!("--rsync-path={}", remote_rsync_path(server_ours)))
            .args(["-s", "-a"]);
        let (src, dst) = (w.join("src"), w.join("dst"));
        let s = |p: &str| format!("{}/{p}", src.display());
        if push {
            cmd.args([s("with space"), s("$HOME")])
                .arg(format!("localhost:{}/", dst.display()));
        } else {
            cmd.arg(format!("localhost:{}", s("with space")))
                .arg(format!("localhost:{}", s("*.txt")))
                .arg(format!("localhost:{}", s("$HOME")))
                .arg(format!("{}/", dst.display()));
        }
        let out = cmd.env_remove("RSYNC_PROTECT_ARGS").output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            snapshot(&dst, false),
        )
    };
    for push in [true, false] {
        let (code, err, stock) = run(false, false, push);
        assert_eq!(code, Some(0), "stock to stock: {err}");
        assert!(stock.contains_key("with space/f 1"), "{stock:?}");
        assert!(stock.contains_key("$HOME"), "{stock:?}");
        assert_eq!(stock.contains_key("star.txt"), !push, "{stock:?}");
        for (c, s) in [(true, false), (false, true), (true, true)] {
            let (code, err, tree) = run(c, s, push);
            assert_eq!(
                code,
                Some(0),
                "client ours={c} server ours={s} push={push}: {err}"
            );
            assert_eq!(tree, stock, "client ours={c} server ours={s} push={push}");
        }
    }
}

/// `-s` with a daemon: the options after the cluster and the paths follow as a second list
/// (argument 0 first), which the daemon adds to the first; stock and rtsync clients with
/// stock and rtsync daemons, pulling names with a space and a wildcard, and pushing.
#[test]
fn secluded_args_with_a_daemon() {
    for kind in [Kind::Stock, Kind::Rtsync] {
        let work = tempfile::tempdir().unwrap();
        let w = work.path();
        tree(&w.join("mod"));
        fs::create_dir_all(w.join("d")).unwrap();
        let conf = format!(
            "use chroot = no\n[m]\npath = {}\nread only = no\nuid = root\ngid = root\n",
            w.join("mod").display()
        );
        let daemon = Daemon::start(kind, &w.join("d"), &conf);
        let mut trees = Vec::new();
        for ours in [false, true] {
            let dst = w.join(format!("pulled-{ours}"));
            let out = client(ours)
                .args(["-s", "-a"])
                .arg(daemon.url("m/with space"))
                .arg(daemon.url("m/*.txt"))
                .arg(format!("{}/", dst.display()))
                .env_remove("RSYNC_PROTECT_ARGS")
                .output()
                .unwrap();
            assert!(out.status.success(), "{kind:?} ours={ours}: {out:?}");
            let pushed = format!("m/up {ours}/");
            let out = client(ours)
                .args(["-s", "-a"])
                .arg(format!("{}/", dst.display()))
                .arg(daemon.url(&pushed))
                .env_remove("RSYNC_PROTECT_ARGS")
                .output()
                .unwrap();
            assert!(out.status.success(), "{kind:?} ours={ours} push: {out:?}");
            let up = snapshot(&w.join(format!("mod/up {ours}")), false);
            trees.push((snapshot(&dst, false), up));
        }
        assert!(
            trees[0].0.contains_key("with space/f 1"),
            "{:?}",
            trees[0].0
        );
        assert!(trees[0].0.contains_key("star.txt"), "{:?}", trees[0].0);
        assert_eq!(trees[1], trees[0], "{kind:?}: rtsync's client differs");
    }
}
