//! `--usermap`, `--groupmap`, `--chown` and `--numeric-ids`: the owners and groups rtsync
//! gives the files it receives are stock's, locally and in every role (rtsync's client
//! against stock servers, stock's client against rtsync's daemon and `--server`). The
//! reference is stock copying the same tree locally with the same options. Needs root.

mod daemon_util;
mod interop_util;
mod roles;

use interop_util::*;
use roles::Role;
use std::path::Path;
use std::process::Command;

/// Named and nameless ids (4321 and 4322 have no name on a normal system).
fn source(root: &Path) {
    std::fs::create_dir_all(root.join("d/e")).unwrap();
    for (p, uid, gid) in [
        ("f0", 0, 0),
        ("f1", 1, 2),
        ("d/f3", 3, 4),
        ("d/e/f4", 4321, 4322),
        ("d/e/f5", 2, 9),
    ] {
        write_file(&root.join(p), p.as_bytes());
        std::os::unix::fs::lchown(root.join(p), Some(uid), Some(gid)).unwrap();
    }
    std::os::unix::fs::symlink("f1", root.join("d/link")).unwrap();
    std::os::unix::fs::lchown(root.join("d/link"), Some(3), Some(3)).unwrap();
    std::os::unix::fs::lchown(root.join("d"), Some(3), Some(4)).unwrap();
    std::os::unix::fs::lchown(root.join("d/e"), Some(4321), Some(2)).unwrap();
}

const CASES: &[&[&str]] = &[
    &["-a", "--usermap=1:7,3-5:8,4000-5000:6", "--groupmap=*:9"],
    &["-a", "--chown=daemon:bin"],
    &["-a", "--chown=:44"],
    &["-a", "--chown=12"],
    &["-a", "--numeric-ids", "--groupmap=:5"],
    &["-a", "--groupmap=:5,bin:3"],
    &["-a", "--usermap=sys:11,*:12", "--groupmap=4322:4"],
    &["-a", "--numeric-ids", "--usermap=0:13,4321:14"],
    &["-a", "--numeric-ids"],
    &["-rlo", "--groupmap=*:9"],
];

fn case(role: Role, opts: &[&str]) {
    let src = tempfile::tempdir().unwrap();
    source(src.path());
    let work = tempfile::tempdir().unwrap();
    let got = work.path().join("got");
    let want = work.path().join("want");
    for d in [&got, &want] {
        std::fs::create_dir(d).unwrap();
    }
    // The reference is stock copying locally.
    let from = format!("{}/", src.path().display());
    let mut a = opts.to_vec();
    let to = format!("{}/", want.display());
    a.extend([from.as_str(), to.as_str()]);
    let out = run_stock(&a);
    assert!(out.status.success(), "stock {a:?}: {out:?}");
    let out = role.run(opts, src.path(), &got, work.path());
    assert!(out.status.success(), "{role:?} {opts:?}: {out:?}");
    assert_eq!(owners(&got), owners(&want), "{role:?} {opts:?}");
}

fn all(role: Role) {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "these tests need root");
    for opts in CASES {
        case(role, opts);
    }
}

#[test]
fn id_maps_local() {
    all(Role::Local);
}

#[test]
fn id_maps_push_over_shell_to_stock() {
    all(Role::OursPushStockShell);
}

#[test]
fn id_maps_pull_over_shell_from_stock() {
    all(Role::OursPullStockShell);
}

#[test]
fn id_maps_push_to_stock_daemon() {
    all(Role::OursPushStockDaemon);
}

#[test]
fn id_maps_stock_client_pushes_to_our_daemon() {
    all(Role::StockPushesOurDaemon);
}

#[test]
fn id_maps_stock_client_pushes_to_our_server() {
    all(Role::StockPushesOurShell);
}

/// Stock's refusals of a second map, in its words and exit code.
#[test]
fn conflicting_maps_are_refused_like_stock() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let (s, d) = (
        format!("{}/", src.path().display()),
        format!("{}/", dst.path().display()),
    );
    for opts in [
        &["--usermap=1:2", "--usermap=3:4"][..],
        &["--chown=a:b", "--groupmap=1:2"],
        &["--groupmap=1:2", "--chown=:b"],
        &["--chown=a", "--chown=b"],
        &["--usermap=nocolon"],
        &["--groupmap=1-x:3"],
    ] {
        let mut a = opts.to_vec();
        a.extend([s.as_str(), d.as_str()]);
        let want = run_stock(&a);
        let got = Command::new(env!("CARGO_BIN_EXE_rtsync"))
            .arg("rsync")
            .args(&a)
            .output()
            .unwrap();
        assert_eq!(got.status.code(), want.status.code(), "{opts:?}");
        let first = |o: &std::process::Output| {
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("rsync: ")
                .to_string()
        };
        assert_eq!(first(&got), first(&want), "{opts:?}");
    }
}

/// A module's `numeric ids = yes`: the names a client sends are ignored (so name items of a
/// map no longer match and nameless ones match everything), as on stock's daemon.
#[test]
fn module_numeric_ids_ignores_sent_names_like_stock() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "these tests need root");
    for (numeric, opts) in [
        ("yes", &["-a", "--groupmap=bin:3,:5"][..]),
        ("no", &["-a", "--groupmap=bin:3,:5"]),
        ("yes", &["-a", "--usermap=sys:11"]),
    ] {
        let src = tempfile::tempdir().unwrap();
        source(src.path());
        let from = format!("{}/", src.path().display());
        let mut trees = Vec::new();
        for kind in [daemon_util::Kind::Stock, daemon_util::Kind::Rtsync] {
            let dir = tempfile::tempdir().unwrap();
            let dest = dir.path().join("dest");
            std::fs::create_dir(&dest).unwrap();
            let conf = format!(
                "use chroot = no\nuid = root\ngid = root\n[mod]\npath = {}\nread only = false\nnumeric ids = {numeric}\n",
                dest.display()
            );
            let d = daemon_util::Daemon::start(kind, dir.path(), &conf);
            let mut a = opts.to_vec();
            let url = d.url("mod/");
            a.extend([from.as_str(), url.as_str()]);
            assert!(run_stock(&a).status.success(), "stock {a:?}");
            trees.push(owners(&dest));
        }
        assert_eq!(trees[1], trees[0], "numeric ids = {numeric}, {opts:?}");
    }
}
