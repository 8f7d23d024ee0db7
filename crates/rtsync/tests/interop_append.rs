//! `--append` and `--append-verify` in every role, compared with stock rsync doing the same:
//! rtsync's client pulling and pushing against stock daemons and stock `--server` (through a
//! stand-in for ssh), and stock's client against rtsync's daemon and `--server`. The
//! destination holds a file that grew at the sender, one with a corrupted prefix, one of
//! equal length, one longer than the sender's, an empty one and missing ones.

mod interop_util;

use interop_util::inproc::{rtsync_daemon, rtsync_shell};
use interop_util::*;
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

#[derive(Clone, Copy, Debug)]
enum Role {
    OursPullDaemon,
    OursPushDaemon,
    OursPullShell,
    OursPushShell,
    StockPullsOurDaemon,
    StockPushesOurDaemon,
    StockPullsOurShell,
    StockPushesOurShell,
}

impl Role {
    fn pulls(self) -> bool {
        matches!(
            self,
            Role::OursPullDaemon
                | Role::OursPullShell
                | Role::StockPullsOurDaemon
                | Role::StockPullsOurShell
        )
    }
}

fn args(opts: &[&str], rest: &[String]) -> Vec<String> {
    opts.iter()
        .map(|s| s.to_string())
        .chain(rest.iter().cloned())
        .collect()
}

fn stock(a: &[String]) -> i32 {
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = run_stock(&a);
    if !out.status.success() {
        eprintln!("stock {a:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    out.status.code().unwrap_or(-1)
}

fn ours(a: &[String]) -> i32 {
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    run_ours(&a)
}

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
    let ssh = fake_ssh(work.path()).display().to_string();
    let from = format!("{}/", src.path().display());
    let want_rc = if role.pulls() {
        let a = args(
            opts,
            &[
                "-e".into(),
                ssh.clone(),
                format!("localhost:{from}"),
                format!("{}/", want.display()),
            ],
        );
        stock(&a)
    } else {
        let a = args(
            opts,
            &[
                "-e".into(),
                ssh.clone(),
                from.clone(),
                format!("localhost:{}/", want.display()),
            ],
        );
        stock(&a)
    };
    assert_eq!(want_rc, 0, "stock reference run failed, {opts:?}");
    let to_got = format!("{}/", got.display());
    let rc = match role {
        Role::OursPullDaemon | Role::OursPushDaemon => {
            let pulls = role.pulls();
            let daemon = StockDaemon::start(&[Module {
                name: "mod",
                path: if pulls { src.path() } else { &got },
                extra: "",
            }]);
            let url = daemon.url("mod/");
            if pulls {
                ours(&args(opts, &[url, to_got]))
            } else {
                ours(&args(opts, &[from, url]))
            }
        }
        Role::OursPullShell => ours(&args(
            opts,
            &["-e".into(), ssh, format!("localhost:{from}"), to_got],
        )),
        Role::OursPushShell => ours(&args(
            opts,
            &["-e".into(), ssh, from, format!("localhost:{to_got}")],
        )),
        Role::StockPullsOurDaemon => {
            let port = rtsync_daemon(src.path(), 1);
            stock(&args(
                opts,
                &[format!("rsync://127.0.0.1:{port}/mod/"), to_got],
            ))
        }
        Role::StockPushesOurDaemon => {
            let port = rtsync_daemon(&got, 1);
            stock(&args(
                opts,
                &[from, format!("rsync://127.0.0.1:{port}/mod/")],
            ))
        }
        Role::StockPullsOurShell => {
            let sh = rtsync_shell(work.path(), 1).display().to_string();
            stock(&args(
                opts,
                &["-e".into(), sh, format!("localhost:{from}"), to_got],
            ))
        }
        Role::StockPushesOurShell => {
            let sh = rtsync_shell(work.path(), 1).display().to_string();
            stock(&args(
                opts,
                &["-e".into(), sh, from, format!("localhost:{to_got}")],
            ))
        }
    };
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
    all_cases(Role::OursPullDaemon);
}

#[test]
fn append_push_to_stock_daemon() {
    all_cases(Role::OursPushDaemon);
}

#[test]
fn append_pull_over_shell_from_stock_server() {
    all_cases(Role::OursPullShell);
}

#[test]
fn append_push_over_shell_to_stock_server() {
    all_cases(Role::OursPushShell);
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

fn rtsync(args: &[String]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_rtsync"))
        .arg("rsync")
        .args(args)
        .output()
        .unwrap()
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
    for (opts, push, our_server) in [
        (&["-ai", "--append-verify"][..], false, false),
        (&["-ai", "--append-verify"], true, false),
        (&["-av", "--append"], false, false),
        (&["-ai", "--append-verify", "--protocol=30"], true, true),
        (&["-ai", "--append-verify"], false, true),
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
        let ssh = fake_ssh(work.path()).display().to_string();
        let from = format!("{}/", src.path().display());
        let ends = |d: &Path| -> Vec<String> {
            if push {
                vec![from.clone(), format!("localhost:{}/", d.display())]
            } else {
                vec![format!("localhost:{from}"), format!("{}/", d.display())]
            }
        };
        let mut want_args = args(opts, &["-e".into(), ssh.clone()]);
        want_args.extend(ends(&want));
        let want_out = run_stock(&want_args.iter().map(String::as_str).collect::<Vec<_>>());
        let mut got_args = args(opts, &["-e".into(), ssh.clone()]);
        if our_server {
            got_args.push(format!(
                "--rsync-path={} rsync",
                env!("CARGO_BIN_EXE_rtsync")
            ));
        }
        got_args.extend(ends(&got));
        let got_out = if our_server {
            run_stock(&got_args.iter().map(String::as_str).collect::<Vec<_>>())
        } else {
            rtsync(&got_args)
        };
        assert_eq!(got_out.status.code(), want_out.status.code(), "{opts:?}");
        assert_eq!(
            shown(&got_out),
            shown(&want_out),
            "{opts:?} push={push} our_server={our_server}"
        );
        assert_same_tree(&got, &want, true);
    }
}
