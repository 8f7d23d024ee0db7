//! Command-line paths naming files whose names are not UTF-8 (a latin1 system's names) reach
//! the filesystem byte for byte in every role, as with stock: our client pulling such names
//! from and pushing them (into such a directory) to stock's remote-shell server and daemon,
//! and stock's client doing the same against ours; with and without `-s`. And a daemon
//! module with a `charset` takes the secluded names a client sends with `--iconv` (in UTF-8)
//! in its own charset, as stock's does. Trees are compared by raw name bytes; the item lines,
//! messages and exit codes as stock prints them.

mod daemon_util;
mod interop_util;

use interop_util::*;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::process::Output;

/// Names as a latin1 system holds them: a file, and a directory with a file of its own.
fn latin1_names(root: &Path) {
    let p = |b: &[u8]| root.join(OsStr::from_bytes(b));
    std::fs::create_dir_all(p(b"d\xe9p\xf4t")).unwrap();
    std::fs::write(p(b"caf\xe9"), b"coffee\n").unwrap();
    std::fs::write(p(b"d\xe9p\xf4t/n\xe9"), b"n\n").unwrap();
    std::fs::write(p(b"plain"), b"plain\n").unwrap();
    past_times(root);
}

fn os(parts: &[&[u8]]) -> OsString {
    OsString::from_vec(parts.concat())
}

/// stdout and stderr without the byte counts (nor the reset a client that still writes after
/// the server closed may report: a matter of timing, stock's too).
/// With `sorted`, lines in order: where a deletion's line falls among the items is a matter
/// of timing between stock's processes too.
fn shown(o: &Output, base: &Path, sorted: bool) -> (String, String) {
    let clean = |b: &[u8]| {
        let text = String::from_utf8_lossy(b).replace(&*base.to_string_lossy(), "{base}");
        let mut lines: Vec<&str> = text
            .lines()
            .filter(|l| {
                !l.starts_with("sent ")
                    && !l.starts_with("total size is ")
                    && !l.ends_with("Connection reset by peer (104)")
            })
            .collect();
        if sorted {
            lines.sort_unstable();
        }
        lines.join("\n")
    };
    (clean(&o.stdout), clean(&o.stderr))
}

/// Stock's daemon or ours (in `base/daemon`) serving `path` as module `m`, as root.
fn module_daemon(stock: bool, base: &Path, path: &Path, extra: &str) -> daemon_util::Daemon {
    let kind = if stock {
        daemon_util::Kind::Stock
    } else {
        daemon_util::Kind::Rtsync
    };
    let ddir = base.join("daemon");
    std::fs::create_dir_all(&ddir).unwrap();
    let conf = module_conf(path, &format!("{extra}uid = 0\ngid = 0\n"));
    daemon_util::Daemon::start(kind, &ddir, &conf)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    Shell,
    Daemon,
}

/// One case through each client/server mix, compared with stock's own: a pull names a
/// latin1 file and directory on the far side; a push sends them into a latin1-named
/// directory there (created by the transfer).
fn compare(via: Via, push: bool, opts: &[&str]) {
    let work = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(work.path());
    let mut results: Vec<(String, std::path::PathBuf, std::path::PathBuf, Output)> = Vec::new();
    for (stock_client, stock_server) in [(true, true), (false, true), (true, false), (false, false)]
    {
        let tag = format!("c{}s{}", stock_client as u8, stock_server as u8);
        let base = work.path().join(&tag);
        let (far, near) = (base.join("far"), base.join("near"));
        std::fs::create_dir_all(&far).unwrap();
        std::fs::create_dir_all(&near).unwrap();
        latin1_names(if push { &near } else { &far });
        // `BACKUP`: deletions kept in a latin1-named backup dir with a latin1 suffix, the
        // receiving side holding a latin1 name to delete.
        let backup = opts.contains(&"BACKUP");
        if backup {
            let stale = if push {
                far.join(OsStr::from_bytes(b"n\xe9w/d\xe9p\xf4t"))
            } else {
                near.join(OsStr::from_bytes(b"d\xe9p\xf4t"))
            };
            std::fs::create_dir_all(&stale).unwrap();
            std::fs::write(stale.join(OsStr::from_bytes(b"k\xe9")), b"old\n").unwrap();
            past_times(&stale);
        }
        let mut args: Vec<OsString> = opts
            .iter()
            .filter(|o| **o != "BACKUP")
            .map(OsString::from)
            .collect();
        if backup {
            args.push("--delete".into());
            args.push(os(&[b"--backup-dir=b\xe4k"]));
            args.push(os(&[b"--suffix=.\xe9"]));
        }
        let _daemon;
        // Where a remote path starts: `lh:/abs/far/` or `rsync://…/m/`.
        let remote = match via {
            Via::Shell => {
                args.push(format!("--rsh={}", ssh.display()).into());
                args.push(format!("--rsync-path={}", remote_rsync_path(!stock_server)).into());
                format!("lh:{}/", far.display())
            }
            Via::Daemon => {
                let d = module_daemon(stock_server, &base, &far, "");
                let url = d.url("m/");
                _daemon = d;
                url
            }
        };
        let near_s = format!("{}/", near.display());
        if push {
            args.push(os(&[near_s.as_bytes(), b"caf\xe9"]));
            args.push(os(&[near_s.as_bytes(), b"d\xe9p\xf4t"]));
            args.push(os(&[remote.as_bytes(), b"n\xe9w/"]));
        } else {
            args.push(os(&[remote.as_bytes(), b"caf\xe9"]));
            args.push(os(&[remote.as_bytes(), b"d\xe9p\xf4t"]));
            args.push(near_s.into());
        }
        let out = rsync_command(stock_client)
            .current_dir(&base)
            .env("LC_ALL", "C")
            .args(&args)
            .output()
            .unwrap();
        let dest = if push {
            far.join(OsStr::from_bytes(b"n\xe9w"))
        } else {
            near
        };
        results.push((tag, base, dest, out));
    }
    let (_, stock_base, stock_dest, stock) = &results[0];
    assert_eq!(stock.status.code(), Some(0), "{stock:?}");
    let want = raw_tree(stock_dest);
    assert!(
        want.contains_key(&b"d\xe9p\xf4t/n\xe9"[..]),
        "stock copied the named files: {:?}",
        want.keys().collect::<Vec<_>>()
    );
    let backup = opts.contains(&"BACKUP");
    if backup {
        assert!(
            want.contains_key(&b"b\xe4k/d\xe9p\xf4t/k\xe9.\xe9"[..]),
            "stock kept the deleted file: {:?}",
            want.keys().collect::<Vec<_>>()
        );
    }
    for (tag, base, dest, out) in &results[1..] {
        let what = format!("{via:?} push={push} {opts:?} {tag}");
        assert_eq!(
            shown(out, base, backup),
            shown(stock, stock_base, backup),
            "{what}: (stdout, stderr), ours then stock"
        );
        assert_eq!(out.status.code(), stock.status.code(), "{what}: exit code");
        assert_same_raw(&raw_tree(dest), &want, &what);
    }
}

#[test]
fn remote_shell_paths_with_latin1_bytes_match_stock() {
    for opts in [
        &["-ai"][..],
        &["-ais"],
        &["-ai", "--protocol=30"],
        &["-ai", "BACKUP"],
        &["-ais", "BACKUP"],
    ] {
        compare(Via::Shell, false, opts);
        compare(Via::Shell, true, opts);
    }
}

#[test]
fn daemon_paths_with_latin1_bytes_match_stock() {
    for opts in [&["-ai"][..], &["-ais"], &["-ai", "BACKUP"]] {
        compare(Via::Daemon, false, opts);
        compare(Via::Daemon, true, opts);
    }
}

/// A module with `charset = latin1`: a client with `--iconv` sends `-s` names in UTF-8 and
/// the daemon takes them as latin1 (without `-s` the names go as written).
#[test]
fn module_charset_converts_secluded_names_as_stock() {
    for secluded in [true, false] {
        for push in [false, true] {
            let work = tempfile::tempdir().unwrap();
            let mut results = Vec::new();
            for (stock_client, stock_server) in [(true, true), (false, true), (true, false)] {
                let base = work.path().join(format!("{stock_client}{stock_server}"));
                let (module, near) = (base.join("module"), base.join("near"));
                std::fs::create_dir_all(&near).unwrap();
                std::fs::create_dir_all(&module).unwrap();
                if push {
                    std::fs::write(near.join("café"), b"coffee\n").unwrap();
                    past_times(&near);
                } else {
                    latin1_names(&module);
                }
                let d = module_daemon(stock_server, &base, &module, "charset = latin1\n");
                let mut args: Vec<String> = vec!["-ai".into(), "--iconv=utf8".into()];
                if secluded {
                    args.push("-s".into());
                }
                if push {
                    args.push(format!("{}/café", near.display()));
                    args.push(d.url("m/dépôt/"));
                } else {
                    args.push(d.url("m/dépôt"));
                    args.push(format!("{}/", near.display()));
                }
                let out = run_in_locale(stock_client, &base, "C.UTF-8", &args);
                drop(d);
                results.push((base.clone(), if push { module } else { near }, out));
            }
            let (stock_base, stock_dest, stock) = &results[0];
            let want = raw_tree(stock_dest);
            for (i, (base, dest, out)) in results.iter().enumerate().skip(1) {
                let what = format!("secluded={secluded} push={push} mix {i}");
                assert_eq!(
                    shown(out, base, false),
                    shown(stock, stock_base, false),
                    "{what}: (stdout, stderr), ours then stock"
                );
                assert_eq!(out.status.code(), stock.status.code(), "{what}: exit code");
                assert_same_raw(&raw_tree(dest), &want, &what);
            }
            if secluded {
                // The latin1 name was made in the module (push), or found there and
                // brought back in UTF-8 (pull).
                assert_eq!(stock.status.code(), Some(0), "{stock:?}");
                let key: &[u8] = if push {
                    b"d\xe9p\xf4t/caf\xe9"
                } else {
                    "dépôt/né".as_bytes()
                };
                assert!(
                    want.contains_key(key),
                    "{:?}",
                    want.keys().collect::<Vec<_>>()
                );
            }
        }
    }
}

/// `--mkpath` to a receiving server: its `created N directories for PATH` notice (a latin1
/// path here) is said when stock's is — with `-v`, `--info=name1`, or a client's `-i` (sent
/// as `--log-format=%i`), not with `--info=name0` alone — whichever client asks.
#[test]
fn mkpath_notice_of_a_receiving_server_matches_stock() {
    let work = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(work.path());
    let src = work.path().join("src");
    latin1_names(&src);
    for opts in [
        &["-i"][..],
        &["-v"],
        &["-v", "--info=name0"],
        &["-i", "--info=name0"],
        &["--info=name1"],
        &["--out-format=%n"],
    ] {
        let mut outs = Vec::new();
        for (stock_client, stock_server) in [(true, true), (true, false), (false, false)] {
            let dest = work.path().join("made");
            let _ = std::fs::remove_dir_all(&dest);
            let out = rsync_command(stock_client)
                .env("LC_ALL", "C")
                .args(opts)
                .arg("--mkpath")
                .arg(format!("--rsh={}", ssh.display()))
                .arg(format!("--rsync-path={}", remote_rsync_path(!stock_server)))
                .arg(src.join("plain"))
                .arg(os(&[
                    format!("lh:{}/x", dest.display()).as_bytes(),
                    b"\xe9/y/",
                ]))
                .output()
                .unwrap();
            assert!(
                dest.join(OsStr::from_bytes(b"x\xe9/y/plain")).exists(),
                "{out:?}"
            );
            outs.push((stock_client, stock_server, out));
        }
        let want = shown(&outs[0].2, work.path(), false);
        for (c, s, out) in &outs[1..] {
            assert_eq!(
                shown(out, work.path(), false),
                want,
                "{opts:?} stock client {c} stock server {s}"
            );
            assert_eq!(out.status.code(), Some(0));
        }
    }
}
