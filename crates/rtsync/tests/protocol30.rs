//! Protocol 30 where it differs from 31 and 32, against stock rsync: `--files-from` names
//! forwarded between the ends travel outside the multiplexed frames (both ways: a pulling
//! client's list to the sender, a receiving server's `:LIST` to a pushing client), in every
//! pairing; and a daemon started with `--protocol=30` offers 30 in its greeting and settles
//! on it, as stock's daemon does.

mod daemon_util;
mod interop_util;
mod roles;

use std::path::Path;

use daemon_util::{Daemon, Kind, RawClient};
use interop_util::{assert_same_tree_in, past_times, write_file};
use roles::matrix::{compare, run, Case, Side, Via, PAIRS};

/// A source tree with more than the list names, the list in the work directory (`list`,
/// which a client and a server started there both find by that name).
fn prepare(base: &Path) {
    let src = base.join("src");
    for (name, body) in [
        ("a", "first\n"),
        ("d/b", "second, deeper\n"),
        ("d/unlisted", "not named\n"),
        ("unlisted", "not named either\n"),
        ("e/f/g", "three down\n"),
    ] {
        let path = src.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        write_file(&path, body.as_bytes());
    }
    std::fs::create_dir_all(base.join("dst")).unwrap();
    write_file(&base.join("list"), b"a\nd/b\ne/f/g\nmissing\n");
    past_times(&src);
}

/// Every pairing of `case`, but for our daemon sending: stock's daemon sending from a module
/// subdirectory with `--files-from` calls every listed file vanished (a stock quirk we do not
/// copy), so there the tree and exit code are compared with stock's pull through a shell.
fn every_pairing_but_a_quirk(prepare: &dyn Fn(&Path), case: Case<'_>) {
    for via in [Via::Shell, Via::Daemon] {
        for push in [true, false] {
            for (client, server) in PAIRS {
                if via == Via::Daemon && !push && server == Side::Ours {
                    let ours = tempfile::tempdir().unwrap();
                    let stock = tempfile::tempdir().unwrap();
                    let got = run(ours.path(), prepare, (client, server, via, push), case);
                    let want = run(
                        stock.path(),
                        prepare,
                        (Side::Stock, Side::Stock, Via::Shell, push),
                        case,
                    );
                    let code = |r: &str| r.lines().last().unwrap_or_default().to_string();
                    assert_eq!(code(&got.output), code(&want.output), "{}", got.output);
                    assert_same_tree_in(
                        &ours.path().join("dst"),
                        &stock.path().join("dst"),
                        true,
                        &format!("{client:?} pulling from our daemon, {case:?}"),
                    );
                    continue;
                }
                compare(prepare, (client, server, via, push), case);
            }
        }
    }
}

#[test]
fn a_clients_files_from_list_is_forwarded_at_protocol_30() {
    // Pulling, the client sends its list to the sending server; pushing, it reads it itself.
    every_pairing_but_a_quirk(
        &prepare,
        Case::new(&["-ai", "--protocol=30", "--files-from=list"], &[""]),
    );
    // NUL-separated, and a second list shape: the forwarded stream is the same.
    let nul = |base: &Path| {
        prepare(base);
        write_file(&base.join("list"), b"d/b\0a\0");
    };
    every_pairing_but_a_quirk(
        &nul,
        Case::new(
            &["-ai", "--protocol=30", "--from0", "--files-from=list"],
            &[""],
        ),
    );
}

#[test]
fn a_servers_files_from_list_is_forwarded_at_protocol_30() {
    // Pushing with `--files-from=:list`, the receiving server (or daemon) reads the list and
    // sends the names to the client.
    for via in [Via::Shell, Via::Daemon] {
        for (client, server) in PAIRS {
            compare(
                &prepare,
                (client, server, via, true),
                Case::new(&["-ai", "--protocol=30", "--files-from=:list"], &[""]),
            );
        }
    }
}

/// `rsync --daemon --protocol=N` offers N (sub-protocol 0) and settles on no more.
#[test]
fn a_daemons_protocol_option_caps_what_it_offers_like_stock() {
    let conf = "use chroot = no\nreverse lookup = no\n[m]\npath = {dir}/m\nread only = no\n";
    let mut seen = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let work = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(work.path().join("m")).unwrap();
        write_file(&work.path().join("m/file"), b"content\n");
        let daemon = Daemon::start_with(kind, work.path(), conf, &["--protocol=30"]);
        let (_raw, greeting) = RawClient::connect(daemon.port);
        // A stock client at its newest protocol pulls at the daemon's.
        let dest = work.path().join("dest");
        let out = std::process::Command::new(daemon_util::stock_rsync())
            .args([
                "-a",
                "-vvvv",
                &daemon.url("m/"),
                &format!("{}/", dest.display()),
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{kind:?}: {text}");
        assert_eq!(
            std::fs::read(dest.join("file")).unwrap(),
            b"content\n",
            "{kind:?}"
        );
        let versions: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("Protocol versions"))
            .collect();
        seen.push((greeting, versions.join("\n")));
    }
    assert!(seen[0].0.starts_with("@RSYNCD: 30.0 "), "{:?}", seen[0]);
    assert!(seen[0].1.contains("negotiated=30"), "{:?}", seen[0]);
    assert_eq!(seen[1], seen[0], "ours against stock's");
}

/// A daemon's own `--temp-dir` stands in for one the client does not give (stock refuses a
/// missing one the same way, naming it).
#[test]
fn a_daemons_temp_dir_option_is_the_default_temp_dir_like_stock() {
    let conf = "use chroot = no\nreverse lookup = no\nuid = root\ngid = root\n\
                [m]\npath = {dir}/m\nread only = no\n";
    let mut seen = Vec::new();
    for (kind, temp) in [
        (Kind::Stock, "nothere"),
        (Kind::Rtsync, "nothere"),
        (Kind::Stock, "tmp"),
        (Kind::Rtsync, "tmp"),
    ] {
        let work = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(work.path().join("m/tmp")).unwrap();
        write_file(&work.path().join("f"), b"pushed\n");
        let daemon = Daemon::start_with(kind, work.path(), conf, &["-T", temp]);
        let out = std::process::Command::new(daemon_util::stock_rsync())
            .args(["-a", &work.path().join("f").display().to_string()])
            .arg(daemon.url("m/"))
            .output()
            .unwrap();
        let landed = std::fs::read(work.path().join("m/f")).ok();
        seen.push((
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.code(),
            landed,
        ));
    }
    assert_eq!(seen[0].1, Some(1), "{:?}", seen[0]);
    assert!(seen[0].0.contains("nothere"), "{:?}", seen[0]);
    assert_eq!(
        seen[2].2.as_deref(),
        Some(&b"pushed\n"[..]),
        "{:?}",
        seen[2]
    );
    assert_eq!(seen[1], seen[0], "a missing temp dir: ours against stock's");
    assert_eq!(seen[3], seen[2], "a temp dir: ours against stock's");
}

/// A receiving side that stops before the transfer (a `--backup-dir` that is a file): from
/// protocol 31 on the server ends with MSG_ERROR_EXIT and the client answers; at 30 stock's
/// server says why and goes without a code (its client then finds the stream closed, reset
/// under unread data, or its pipe broken: a race in stock, so any of them is taken), and
/// neither end
/// waits for the other. Output, exit code and trees in every pushing pairing as stock's.
#[test]
fn an_early_receiver_error_ends_the_session_like_stock_at_protocol_30() {
    let prepare = |base: &Path| {
        prepare(base);
        // (Named from the daemon's module root and from the shell server's destination.)
        write_file(&base.join("bfile"), b"not a directory\n");
        write_file(&base.join("dst/bfile"), b"not a directory\n");
        past_times(&base.join("dst"));
    };
    // The client's own ending at 30, whichever way the race went.
    let ending = |out: &str| -> String {
        let mut lines: Vec<&str> = out.lines().collect();
        let n = lines.len();
        if n >= 3 {
            let closed = lines[n - 3].starts_with("rsync: connection unexpectedly closed")
                && lines[n - 2].contains("(code 12) at io.c(285)")
                && lines[n - 1] == "exit: Some(12)";
            let reset = lines[n - 3].ends_with("read error: Connection reset by peer (104)")
                && lines[n - 2].contains("(code 10) at io.c(907)")
                && lines[n - 1] == "exit: Some(10)";
            let broken = lines[n - 3].ends_with("write error: Broken pipe (32)")
                && lines[n - 2].contains("(code 10) at io.c(949)")
                && lines[n - 1] == "exit: Some(10)";
            if closed || reset || broken {
                lines.truncate(n - 3);
                lines.push("(the stream ends)");
            }
        }
        lines.join("\n")
    };
    for protocol in ["--protocol=30", "--protocol=31"] {
        let opts = ["-rt", protocol, "--backup", "--backup-dir=bfile"];
        let case = Case::new(&opts, &[""]);
        for via in [Via::Shell, Via::Daemon] {
            for (client, server) in PAIRS {
                let ours = tempfile::tempdir().unwrap();
                let stock = tempfile::tempdir().unwrap();
                let got = run(ours.path(), &prepare, (client, server, via, true), case);
                let want = run(
                    stock.path(),
                    &prepare,
                    (Side::Stock, Side::Stock, via, true),
                    case,
                );
                let what = format!("{client:?} to {server:?} through {via:?}, {protocol}");
                assert!(
                    got.output.contains("The backup-dir is not a directory"),
                    "{what}"
                );
                assert_eq!(ending(&got.output), ending(&want.output), "{what}");
                assert_same_tree_in(
                    &ours.path().join("dst"),
                    &stock.path().join("dst"),
                    true,
                    &what,
                );
            }
        }
    }
}
