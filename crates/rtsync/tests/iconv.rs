//! `--iconv` against stock: names (and symlink targets) written in UTF-8 arrive in latin1 and
//! back, through a remote shell (either end ours or stock's), a daemon with a `charset`
//! (stock's and ours), and a local copy (which stock runs through a local server). Trees are
//! compared by their raw name bytes, contents, link targets and hard links; the item lines,
//! the messages and the exit codes as stock prints them (only the byte counts may differ).
//! The lists hold more entries than a directory's hash order keeps sorted, so the indices
//! that count entries in the order sent (stock's need_unsorted_flist) are exercised both
//! ways. A name that has no form in the other charset is left out with stock's message.

mod daemon_util;
mod interop_util;

use interop_util::*;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A tree with UTF-8 names: files, nested directories, a symlink whose target needs
/// converting, hard links, and enough names per directory that hash order is not sorted.
fn utf8_tree(root: &Path) {
    for d in 1..=6 {
        let dir = root.join(format!("dé{d}/ü{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 1..=12 {
            std::fs::write(root.join(format!("dé{d}/fï{f}")), format!("{d} {f}\n")).unwrap();
            std::fs::write(dir.join(format!("g{f}")), b"g\n").unwrap();
        }
    }
    std::fs::write(root.join("café"), b"coffee\n").unwrap();
    std::fs::hard_link(root.join("café"), root.join("dé2/hé")).unwrap();
    std::os::unix::fs::symlink("café", root.join("lé")).unwrap();
    past_times(root);
}

/// The same tree as a latin1 system holds it.
fn latin1_tree(root: &Path) {
    let utf8 = tempfile::tempdir().unwrap();
    utf8_tree(utf8.path());
    std::fs::create_dir_all(root).unwrap();
    let out = Command::new(stock_rsync())
        .args(["-aH", "--iconv=utf8,latin1"])
        .arg(format!("{}/", utf8.path().display()))
        .arg(format!("{}/", root.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

fn run(stock: bool, cwd: &Path, args: &[String]) -> Output {
    run_in_locale(stock, cwd, "C", args)
}

/// stdout and stderr without the byte counts; lines sorted where stock's order is timing.
fn shown(o: &Output, sorted: bool) -> (String, String) {
    let clean = |b: &[u8]| {
        let mut lines: Vec<String> = String::from_utf8_lossy(b)
            .lines()
            .filter(|l| {
                !l.starts_with("sent ")
                    && !l.starts_with("total size is ")
                    && !l.starts_with("Total bytes ")
            })
            .map(str::to_string)
            .collect();
        if sorted {
            lines.sort();
        }
        lines.join("\n")
    };
    (clean(&o.stdout), clean(&o.stderr))
}

/// A destination with something to delete (its name needs converting too).
fn stale(d: &Path, latin1: bool) {
    std::fs::create_dir_all(d).unwrap();
    let name: &[u8] = if latin1 {
        b"obsol\xe9"
    } else {
        "obsolé".as_bytes()
    };
    let p = d.join(OsStr::from_bytes(name));
    std::fs::write(&p, b"old\n").unwrap();
    set_mtime(&p, 1_400_000_000, 0);
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Via {
    Shell,
    Daemon,
    Local,
}

/// One case through stock's client and server, then each mix with ours; `push` sends the
/// UTF-8 tree to a latin1 side, a pull fetches it from there to a latin1 client.
fn compare(via: Via, push: bool, opts: &[&str]) {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    utf8_tree(&src);
    let ssh = fake_ssh(work.path());
    let combos: &[(bool, bool)] = match via {
        Via::Local => &[(true, true), (false, false)],
        _ => &[(true, true), (false, true), (true, false), (false, false)],
    };
    let mut results: Vec<(String, PathBuf, Output)> = Vec::new();
    for &(stock_client, stock_server) in combos {
        let tag = format!("c{}s{}", stock_client as u8, stock_server as u8);
        let base = work.path().join(&tag);
        let dest = base.join("d");
        stale(&dest, true);
        let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        // The client's charset comes first: pushing, the UTF-8 side; pulling, latin1.
        args.push(
            if push {
                "--iconv=utf8,latin1"
            } else {
                "--iconv=latin1,utf8"
            }
            .into(),
        );
        let _daemon;
        match via {
            Via::Shell => {
                args.push(format!("--rsh={}", ssh.display()));
                args.push(format!("--rsync-path={}", remote_rsync_path(!stock_server)));
                if push {
                    args.push(format!("{}/", src.display()));
                    args.push(format!("lh:{}/", dest.display()));
                } else {
                    args.push(format!("lh:{}/", src.display()));
                    args.push(format!("{}/", dest.display()));
                }
            }
            Via::Daemon => {
                let kind = if stock_server {
                    daemon_util::Kind::Stock
                } else {
                    daemon_util::Kind::Rtsync
                };
                // The module's side: latin1 when pushed to, UTF-8 when pulled from.
                let (path, charset) = if push {
                    (&dest, "latin1")
                } else {
                    (&src, "utf8")
                };
                let ddir = base.join("daemon");
                std::fs::create_dir_all(&ddir).unwrap();
                let conf = module_conf(path, &format!("charset = {charset}\nuid = 0\ngid = 0\n"));
                let d = daemon_util::Daemon::start(kind, &ddir, &conf);
                if push {
                    args.push(format!("{}/", src.display()));
                    args.push(d.url("m/"));
                } else {
                    args.push(d.url("m/"));
                    args.push(format!("{}/", dest.display()));
                }
                _daemon = d;
            }
            Via::Local => {
                assert!(push);
                args.push(format!("{}/", src.display()));
                args.push(format!("{}/", dest.display()));
            }
        }
        let out = run(stock_client, &base, &args);
        results.push((tag, dest, out));
    }
    let sorted = opts.iter().any(|o| o.starts_with("--delete"));
    let (_, stock_dest, stock) = &results[0];
    let want_tree = raw_tree(stock_dest);
    assert!(
        want_tree.contains_key(&b"caf\xe9"[..]),
        "stock's tree is latin1: {:?}",
        want_tree.keys().collect::<Vec<_>>()
    );
    assert_eq!(stock.status.code(), Some(0), "{stock:?}");
    for (tag, dest, out) in &results[1..] {
        let what = format!("{via:?} push={push} {opts:?} {tag}");
        assert_eq!(
            shown(out, sorted),
            shown(stock, sorted),
            "{what}: (stdout, stderr), ours then stock"
        );
        assert_eq!(out.status.code(), stock.status.code(), "{what}: exit code");
        assert_same_raw(&raw_tree(dest), &want_tree, &what);
    }
}

#[test]
fn remote_shell_push_and_pull_convert_names_as_stock() {
    for opts in [
        &["-ai"][..],
        &["-aiH", "--delete", "--no-inc-recursive"],
        &["-ais", "--delete-after"],
        &["-aic", "--protocol=30"],
    ] {
        compare(Via::Shell, true, opts);
        compare(Via::Shell, false, opts);
    }
}

#[test]
fn daemon_module_charset_converts_as_stock() {
    for opts in [&["-ai"][..], &["-aiH", "--delete"]] {
        compare(Via::Daemon, true, opts);
        compare(Via::Daemon, false, opts);
    }
}

#[test]
fn local_copy_converts_as_stock() {
    for opts in [
        &["-ai"][..],
        &["-av", "--delete"],
        &["-aiH", "--no-inc-recursive"],
    ] {
        compare(Via::Local, true, opts);
    }
}

/// The way back: latin1 names pushed to a UTF-8 side (and `--remove-source-files`, whose
/// MSG_SUCCESS indices count in the order sent).
#[test]
fn latin1_names_go_back_to_utf8_and_sources_are_removed() {
    let work = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(work.path());
    let want = tempfile::tempdir().unwrap();
    utf8_tree(want.path());
    for (stock_client, stock_server) in [(true, true), (false, true), (true, false)] {
        let base = work.path().join(format!("{stock_client}{stock_server}"));
        let src = base.join("src");
        latin1_tree(&src);
        let dest = base.join("d");
        let args: Vec<String> = vec![
            "-aH".into(),
            "--remove-source-files".into(),
            "--iconv=latin1,utf8".into(),
            format!("--rsh={}", ssh.display()),
            format!("--rsync-path={}", remote_rsync_path(!stock_server)),
            format!("{}/", src.display()),
            format!("lh:{}/", dest.display()),
        ];
        std::fs::create_dir_all(&base).unwrap();
        let out = run(stock_client, &base, &args);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert_eq!(
            raw_tree(&dest),
            raw_tree(want.path()),
            "{stock_client} {stock_server}"
        );
        let left: Vec<_> = raw_tree(&src)
            .into_iter()
            .filter(|(_, d)| !d.starts_with("dir"))
            .collect();
        assert!(left.is_empty(), "sources left: {left:?}");
    }
}

/// A name with no latin1 form: our sender leaves it out with stock's message and exit 23
/// (as stock's sender does when its own name does not convert); our receiver leaves out
/// one that arrives and goes on (stock's ends the whole transfer with code 4).
#[test]
fn a_name_that_does_not_convert_is_left_out() {
    let work = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(work.path());
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("ok"), b"ok\n").unwrap();
    std::fs::write(src.join("€uro"), b"euro\n").unwrap();
    // Sending from latin1: the UTF-8 bytes of "€" are latin1 too, so a bad name is one
    // that is not UTF-8 when the sender says it is.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("ok"), b"ok\n").unwrap();
    std::fs::write(bad.path().join(OsStr::from_bytes(b"caf\xe9")), b"x\n").unwrap();
    let mut outs = Vec::new();
    for stock_client in [true, false] {
        let dest = work.path().join(format!("bad{stock_client}"));
        let args: Vec<String> = vec![
            "-a".into(),
            "--iconv=utf8,latin1".into(),
            format!("--rsh={}", ssh.display()),
            format!("--rsync-path={}", remote_rsync_path(false)),
            format!("{}/", bad.path().display()),
            format!("lh:{}/", dest.display()),
        ];
        let out = run(stock_client, work.path(), &args);
        assert_eq!(
            raw_tree(&dest).keys().cloned().collect::<Vec<_>>(),
            [b"ok".to_vec()]
        );
        outs.push(out);
    }
    let (s, o) = (shown(&outs[0], false), shown(&outs[1], false));
    assert!(
        s.1.contains("[sender] cannot convert filename: caf\\#351 (Invalid argument)"),
        "{s:?}"
    );
    assert_eq!(o, s, "sender side: ours then stock");
    assert_eq!(outs[1].status.code(), outs[0].status.code());
    assert_eq!(outs[1].status.code(), Some(23));

    // Our receiver, from stock's sender: "€uro" has no latin1 name.
    let dest = work.path().join("recv");
    let args: Vec<String> = vec![
        "-a".into(),
        "--iconv=utf8,latin1".into(),
        format!("--rsh={}", ssh.display()),
        format!("--rsync-path={}", remote_rsync_path(true)),
        format!("{}/", src.display()),
        format!("lh:{}/", dest.display()),
    ];
    let out = run(true, work.path(), &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[receiver] cannot convert filename: \u{20ac}uro (Invalid or incomplete"),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(23), "{out:?}");
    assert_eq!(
        raw_tree(&dest).keys().cloned().collect::<Vec<_>>(),
        [b"ok".to_vec()]
    );
}

#[test]
fn an_unknown_charset_is_stocks_error() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let args = vec![
        "-a".to_string(),
        "--iconv=NO-SUCH-SET".into(),
        format!("{}/", src.display()),
        "d/".into(),
    ];
    let stock = run(true, work.path(), &args);
    let ours = run(false, work.path(), &args);
    assert_eq!(ours.status.code(), Some(4));
    assert_eq!(ours.status.code(), stock.status.code());
    let line = "iconv_open(\"UTF-8\", \"NO-SUCH-SET\") failed";
    for o in [&stock, &ours] {
        assert!(String::from_utf8_lossy(&o.stderr).contains(line), "{o:?}");
    }
}

/// `-s` with a local `--files-from` list pulled through: the names go to the sender in UTF-8
/// and are found there (stock's filesfrom_convert), with either end ours.
#[test]
fn files_from_names_are_converted_with_secluded_args() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    utf8_tree(&src);
    let ssh = fake_ssh(work.path());
    let list = work.path().join("list");
    std::fs::write(&list, b"caf\xe9\nd\xe91/f\xef1\nl\xe9\n").unwrap();
    let mut results = Vec::new();
    for (stock_client, stock_server) in [(true, true), (false, true), (true, false), (false, false)]
    {
        let dest = work.path().join(format!("d{stock_client}{stock_server}"));
        let args: Vec<String> = vec![
            "-ais".into(),
            "--iconv=latin1,utf8".into(),
            format!("--files-from={}", list.display()),
            format!("--rsh={}", ssh.display()),
            format!("--rsync-path={}", remote_rsync_path(!stock_server)),
            format!("lh:{}/", src.display()),
            format!("{}/", dest.display()),
        ];
        let out = run(stock_client, work.path(), &args);
        results.push((dest, out));
    }
    let (want_dest, want) = &results[0];
    assert_eq!(want.status.code(), Some(0), "{want:?}");
    let want_tree = raw_tree(want_dest);
    assert!(
        want_tree.contains_key(&b"d\xe91/f\xef1"[..]),
        "{want_tree:?}"
    );
    let named = |o: &Output, d: &Path| {
        let (out, err) = shown(o, false);
        (out.replace(&d.display().to_string(), "DEST"), err)
    };
    for (dest, out) in &results[1..] {
        assert_eq!(
            named(out, dest),
            named(want, want_dest),
            "{}",
            dest.display()
        );
        assert_eq!(out.status.code(), want.status.code());
        assert_same_raw(&raw_tree(dest), &want_tree, &dest.display().to_string());
    }
}

/// Batches written with `--iconv` (names in UTF-8, entries in the order sent) replay across
/// implementations, with and without incremental recursion.
#[test]
fn batches_replay_across_implementations() {
    for extra in [&["-aH"][..], &["-aH", "--no-inc-recursive"]] {
        let work = tempfile::tempdir().unwrap();
        let w = work.path();
        let src = w.join("src");
        utf8_tree(&src);
        let mut replays = Vec::new();
        for writer_stock in [true, false] {
            let batch = w.join(format!("batch{writer_stock}"));
            let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
            args.push("--iconv=utf8,latin1".into());
            args.push(format!("--write-batch={}", batch.display()));
            args.push(format!("{}/", src.display()));
            args.push(format!(
                "{}/",
                w.join(format!("written{writer_stock}")).display()
            ));
            let out = run(writer_stock, w, &args);
            assert_eq!(out.status.code(), Some(0), "{out:?}");
            for reader_stock in [true, false] {
                let dest = w.join(format!("replay{writer_stock}{reader_stock}"));
                let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
                args.push("--iconv=utf8,latin1".into());
                args.push(format!("--read-batch={}", batch.display()));
                args.push(format!("{}/", dest.display()));
                let out = run(reader_stock, w, &args);
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "{extra:?} {writer_stock} {reader_stock}: {out:?}"
                );
                replays.push((
                    format!(
                        "{extra:?} written by stock={writer_stock}, read by stock={reader_stock}"
                    ),
                    raw_tree(&dest),
                ));
            }
        }
        let want = &replays[0].1;
        assert!(want.contains_key("café".as_bytes()), "{want:?}");
        for (what, got) in &replays[1..] {
            assert_same_raw(got, want, what);
        }
    }
}
