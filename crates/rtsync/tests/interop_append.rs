//! `--append` and `--append-verify` in every role, compared with stock rsync doing the same:
//! rtsync's client pulling and pushing against stock daemons and stock `--server` (through a
//! stand-in for ssh), and stock's client against rtsync's daemon and `--server`. The
//! destination holds a file that grew at the sender, one with a corrupted prefix, one of
//! equal length, one longer than the sender's, an empty one and missing ones.

mod daemon_util;
mod interop_util;
mod roles;

use interop_util::*;
use roles::{code, stock_reference, Role};
use std::path::Path;

fn source(root: &Path) {
    std::fs::create_dir_all(root.join("sub")).unwrap();
    write_file(&root.join("grow"), &pattern(300_000, 1));
    write_file(&root.join("corrupt"), &pattern(300_000, 2));
    write_file(&root.join("equal"), &pattern(5_000, 3));
    write_file(&root.join("longer"), &pattern(100, 4));
    write_file(&root.join("new"), &pattern(70_000, 5));
    write_file(&root.join("from-empty"), &pattern(1_000, 6));
    write_file(&root.join("sub/tiny"), b"0123456789abcdefghij");
    for (i, p) in [
        "grow",
        "corrupt",
        "equal",
        "longer",
        "new",
        "from-empty",
        "sub/tiny",
    ]
    .iter()
    .enumerate()
    {
        set_mtime(&root.join(p), 1_600_000_000 + i as i64 * 100, 250_000_000);
    }
    set_mtime(&root.join("sub"), 1_599_000_000, 0);
    set_mtime(root, 1_599_000_000, 0);
}

fn dest(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(root.join("sub")).unwrap();
    write_file(&root.join("grow"), &pattern(300_000, 1)[..100_000]);
    let mut bad = pattern(300_000, 2)[..100_000].to_vec();
    bad[50] ^= 0xff;
    write_file(&root.join("corrupt"), &bad);
    // Same length, other content and mode: --append leaves it entirely alone.
    write_file(&root.join("equal"), &pattern(5_000, 9));
    std::fs::set_permissions(root.join("equal"), std::fs::Permissions::from_mode(0o600)).unwrap();
    write_file(&root.join("longer"), &pattern(1_000, 4));
    write_file(&root.join("from-empty"), b"");
    write_file(&root.join("sub/tiny"), b"0123456789");
    for p in [
        "grow",
        "corrupt",
        "equal",
        "longer",
        "from-empty",
        "sub/tiny",
    ] {
        set_mtime(&root.join(p), 1_400_000_000, 0);
    }
}

/// The option sets every role is tried with.
const CASES: &[&[&str]] = &[
    &["-a", "--append"],
    &["-a", "--append-verify"],
    &["-az", "--append-verify"],
    &["-a", "--append", "--protocol=30"],
    &["-a", "--append-verify", "--protocol=30"],
    &["-a", "--append", "--inplace", "--partial"],
    &["-a", "--append-verify", "--partial", "--block-size=1000"],
];

/// One transfer in `role` with `opts`, against stock's own client and server doing the same
/// over a remote shell (pulling or pushing as the role does).
fn case(role: Role, opts: &[&str]) {
    let src = tempfile::tempdir().unwrap();
    source(src.path());
    let work = tempfile::tempdir().unwrap();
    let got = work.path().join("got");
    let want = work.path().join("want");
    for d in [&got, &want] {
        std::fs::create_dir(d).unwrap();
        dest(d);
    }
    let want_rc = code(&stock_reference(
        role.pulls(),
        opts,
        src.path(),
        &want,
        work.path(),
    ));
    assert_eq!(want_rc, 0, "stock reference run failed, {opts:?}");
    let rc = code(&role.run(opts, src.path(), &got, work.path()));
    assert_eq!(rc, want_rc, "exit code, {role:?} {opts:?}");
    assert_same_tree(&got, &want, true);
    // The premises: the corrupted prefix survives --append and is repaired by
    // --append-verify; the longer and equal files are untouched.
    let corrupt = std::fs::read(got.join("corrupt")).unwrap();
    let verify = opts.contains(&"--append-verify");
    assert_eq!(corrupt == pattern(300_000, 2), verify, "{role:?} {opts:?}");
    assert_eq!(
        std::fs::read(got.join("longer")).unwrap(),
        pattern(1_000, 4)
    );
    assert_eq!(std::fs::read(got.join("equal")).unwrap(), pattern(5_000, 9));
    assert_eq!(
        std::fs::read(got.join("grow")).unwrap(),
        pattern(300_000, 1)
    );
}

fn all_cases(role: Role) {
    for opts in CASES {
        case(role, opts);
    }
}

#[test]
fn append_pull_from_stock_daemon() {
    all_cases(Role::OursPullStockDaemon);
}

#[test]
fn append_push_to_stock_daemon() {
    all_cases(Role::OursPushStockDaemon);
}

#[test]
fn append_pull_over_shell_from_stock_server() {
    all_cases(Role::OursPullStockShell);
}

#[test]
fn append_push_over_shell_to_stock_server() {
    all_cases(Role::OursPushStockShell);
}

#[test]
fn append_stock_client_pulls_from_our_daemon() {
    all_cases(Role::StockPullsOurDaemon);
}

#[test]
fn append_stock_client_pushes_to_our_daemon() {
    all_cases(Role::StockPushesOurDaemon);
}

#[test]
fn append_stock_client_pulls_from_our_server() {
    all_cases(Role::StockPullsOurShell);
}

#[test]
fn append_stock_client_pushes_to_our_server() {
    all_cases(Role::StockPushesOurShell);
}

/// Stdout without the closing byte counts; stderr as is.
fn shown(out: &std::process::Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("sent ") && !l.starts_with("total size is "))
        .collect::<Vec<_>>()
        .join("\n");
    (stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// What is printed — item lines (directories' too, which a sending server passes back to
/// the client), the retry of a file that failed verification (its warning and its second
/// line) — is stock's, as client and as server.
#[test]
fn append_verify_output_matches_stock() {
    for (opts, role) in [
        (&["-ai", "--append-verify"][..], Role::OursPullStockShell),
        (&["-ai", "--append-verify"], Role::OursPushStockShell),
        (&["-av", "--append"], Role::OursPullStockShell),
        (
            &["-ai", "--append-verify", "--protocol=30"],
            Role::StockPushesOurShell,
        ),
        (&["-ai", "--append-verify"], Role::StockPullsOurShell),
    ] {
        let src = tempfile::tempdir().unwrap();
        source(src.path());
        let work = tempfile::tempdir().unwrap();
        let got = work.path().join("got");
        let want = work.path().join("want");
        for d in [&got, &want] {
            std::fs::create_dir(d).unwrap();
            dest(d);
        }
        let want_out = stock_reference(role.pulls(), opts, src.path(), &want, work.path());
        let got_out = role.run(opts, src.path(), &got, work.path());
        assert_eq!(got_out.status.code(), want_out.status.code(), "{opts:?}");
        assert_eq!(shown(&got_out), shown(&want_out), "{opts:?} {role:?}");
        assert_same_tree(&got, &want, true);
    }
}
