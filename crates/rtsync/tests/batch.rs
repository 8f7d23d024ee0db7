//! Batch mode against stock rsync: a batch written by one is replayed by the other
//! (`--write-batch` then `--read-batch`), locally, over a remote shell and with a daemon,
//! pushing and pulling; the replayed tree must be the tree the writing run produced.
//! Also the errors: a missing, truncated or corrupt batch, a remote destination.

mod interop_util;

use interop_util::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const RTSYNC: &str = env!("CARGO_BIN_EXE_rtsync");

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tool {
    Ours,
    Stock,
}

impl Tool {
    fn run(self, args: &[&str]) -> Output {
        let mut cmd = match self {
            Tool::Ours => {
                let mut c = Command::new(RTSYNC);
                c.arg("rsync");
                c
            }
            Tool::Stock => Command::new(stock_rsync()),
        };
        cmd.args(args).output().unwrap()
    }

    /// `--rsync-path` for the far end of a remote shell.
    fn rsync_path(self) -> String {
        match self {
            Tool::Ours => format!("--rsync-path={RTSYNC} rsync"),
            Tool::Stock => format!("--rsync-path={}", stock_rsync().display()),
        }
    }

    fn other(self) -> Tool {
        match self {
            Tool::Ours => Tool::Stock,
            Tool::Stock => Tool::Ours,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Via {
    Local,
    ShellPush,
    ShellPull,
    DaemonPush,
    DaemonPull,
}

const OPTION_SETS: &[&[&str]] = &[
    &["-a"],
    &["-a", "--delete"],
    &["-ac"],
    &["-az"],
    &["-az", "--delete", "-H"],
];

fn s(p: &Path) -> String {
    format!("{}/", p.display())
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `writer` records a batch of `opts` going `via`, into a stale destination; `reader`
/// replays it into another copy of that stale destination. Both trees must match. Returns
/// the writer's output.
fn round_trip(writer: Tool, reader: Tool, via: Via, opts: &[&str]) -> Output {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = w.join("src");
    let dest = w.join("dest");
    let replay = w.join("replay");
    std::fs::create_dir(&src).unwrap();
    sample_tree(&src);
    for d in [&dest, &replay] {
        std::fs::create_dir(d).unwrap();
        stale_dest(d);
    }
    let batch = w.join("batch");
    let batch_opt = format!("--write-batch={}", batch.display());
    let ssh = fake_ssh(w);
    let ssh_opt = format!("-e{}", ssh.display());
    let rsync_path = writer.rsync_path();
    let daemon = matches!(via, Via::DaemonPush | Via::DaemonPull).then(|| {
        // Link targets stay as sent (a chroot needs no sanitizing), as in the batch.
        StockDaemon::src_and_dest(&src, &dest, "use chroot = yes\nmunge symlinks = no")
    });
    let mut args: Vec<String> = opts.iter().map(|a| a.to_string()).collect();
    args.push(batch_opt);
    match via {
        Via::Local => args.extend([s(&src), s(&dest)]),
        Via::ShellPush => args.extend([ssh_opt, rsync_path, s(&src), format!("h:{}", s(&dest))]),
        Via::ShellPull => args.extend([ssh_opt, rsync_path, format!("h:{}", s(&src)), s(&dest)]),
        Via::DaemonPush => {
            let d = daemon.as_ref().unwrap();
            args.extend([s(&src), d.url("dest/")]);
        }
        Via::DaemonPull => {
            let d = daemon.as_ref().unwrap();
            args.extend([d.url("src/"), s(&dest)]);
        }
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let what = format!("{writer:?} writes {via:?} {opts:?}");
    let written = writer.run(&argv);
    ok(&written, &what);
    assert!(batch.with_extension("sh").exists() || w.join("batch.sh").exists());

    let mut rargs: Vec<String> = opts.iter().map(|a| a.to_string()).collect();
    rargs.push(format!("--read-batch={}", batch.display()));
    rargs.push(s(&replay));
    let rargv: Vec<&str> = rargs.iter().map(String::as_str).collect();
    ok(&reader.run(&rargv), &format!("{reader:?} replays ({what})"));
    assert_same_tree(&replay, &dest, true);
    written
}

/// A batch is written with the lists as they go (incremental recursion), as stock's:
/// `-v` says so first, in every role, and the batch replays across implementations.
#[test]
fn batches_are_written_incrementally_like_stock() {
    for via in [
        Via::Local,
        Via::ShellPush,
        Via::ShellPull,
        Via::DaemonPush,
        Via::DaemonPull,
    ] {
        let first = |o: &Output| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.lines().next().unwrap_or_default().to_string()
        };
        let ours = first(&round_trip(Tool::Ours, Tool::Stock, via, &["-av"]));
        let stock = first(&round_trip(Tool::Stock, Tool::Ours, via, &["-av"]));
        assert_eq!(ours, stock, "{via:?}");
        assert!(stock.ends_with("incremental file list"), "{via:?}: {stock}");
    }
}

fn matrix(via: Via) {
    for &opts in OPTION_SETS {
        for writer in [Tool::Stock, Tool::Ours] {
            round_trip(writer, writer.other(), via, opts);
        }
    }
    round_trip(Tool::Ours, Tool::Ours, via, &["-a", "--delete"]);
}

#[test]
fn local_batches_replay_across_implementations() {
    matrix(Via::Local);
}

#[test]
fn remote_shell_push_batches_replay_across_implementations() {
    matrix(Via::ShellPush);
}

#[test]
fn remote_shell_pull_batches_replay_across_implementations() {
    matrix(Via::ShellPull);
}

#[test]
fn daemon_push_batches_replay_across_implementations() {
    matrix(Via::DaemonPush);
}

#[test]
fn daemon_pull_batches_replay_across_implementations() {
    matrix(Via::DaemonPull);
}

/// `--only-write-batch` leaves the destination alone (not even created); either
/// implementation replays the batch to what a real transfer gives.
#[test]
fn only_write_batch_changes_nothing_and_replays() {
    for writer in [Tool::Ours, Tool::Stock] {
        let work = tempfile::tempdir().unwrap();
        let w = work.path();
        let src = w.join("src");
        std::fs::create_dir(&src).unwrap();
        sample_tree(&src);
        let dest = w.join("dest");
        let replay = w.join("replay");
        let want = w.join("want");
        for d in [&dest, &replay, &want] {
            std::fs::create_dir(d).unwrap();
            stale_dest(d);
        }
        let before = snapshot(&dest, true);
        let batch = w.join("only");
        let bopt = format!("--only-write-batch={}", batch.display());
        let missing = w.join("missing/");
        let args = vec!["-a", "--delete", &bopt];
        let (sd, md) = (s(&src), s(&dest));
        let mut a = args.clone();
        a.extend([sd.as_str(), md.as_str()]);
        ok(&writer.run(&a), "only-write-batch");
        assert!(
            snapshot(&dest, true) == before,
            "{writer:?} changed the destination"
        );
        let mut a = args.clone();
        let ms = s(&missing);
        let other = w.join("other");
        let oopt = format!("--only-write-batch={}", other.display());
        a[2] = &oopt;
        a.extend([sd.as_str(), ms.as_str()]);
        ok(&writer.run(&a), "only-write-batch into a missing directory");
        assert!(!missing.exists(), "{writer:?} created the destination");
        for reader in [Tool::Ours, Tool::Stock] {
            let r = w.join(format!("r-{reader:?}"));
            std::fs::create_dir(&r).unwrap();
            stale_dest(&r);
            let ropt = format!("--read-batch={}", batch.display());
            ok(
                &reader.run(&["-a", "--delete", &ropt, &s(&r)]),
                &format!("{reader:?} replays {writer:?}'s only-batch"),
            );
            ok(&run_stock(&["-a", "--delete", &sd, &s(&want)]), "reference");
            assert_same_tree(&r, &want, true);
        }
    }
}

/// Reading what the batch says overrides the command line, with stock's words under -v.
#[test]
fn batch_options_override_the_command_line_like_stock() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = w.join("src");
    std::fs::create_dir(&src).unwrap();
    sample_tree(&src);
    let batch = w.join("b");
    let bopt = format!("--write-batch={}", batch.display());
    ok(
        &run_stock(&[
            "-az",
            "--no-inc-recursive",
            &bopt,
            &s(&src),
            &s(&w.join("d")),
        ]),
        "stock write",
    );
    let ropt = format!("--read-batch={}", batch.display());
    let notes = |out: &Output| -> Vec<String> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("to match the batchfile"))
            .map(str::to_string)
            .collect()
    };
    let (ro, rs) = (w.join("ro"), w.join("rs"));
    let o = Tool::Ours.run(&["-rtv", "-c", &ropt, &s(&ro)]);
    let st = Tool::Stock.run(&["-rtv", "-c", &ropt, &s(&rs)]);
    assert_eq!(o.status.code(), st.status.code());
    assert_eq!(notes(&o), notes(&st));
    assert!(!notes(&o).is_empty());
    assert_same_tree(&ro, &rs, true);
}

/// Missing batch files, remote destinations: stock's exit codes.
#[test]
fn batch_errors_exit_like_stock() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let nope = format!("--read-batch={}", w.join("nope").display());
    let d = s(&w.join("d"));
    for args in [
        vec!["-a", nope.as_str(), d.as_str()],
        vec!["-a", nope.as_str(), "host:dest/"],
        vec!["--write-batch=x", "--read-batch=y", "a", "b"],
        vec!["-a", nope.as_str(), "--remove-source-files", d.as_str()],
    ] {
        let o = Tool::Ours.run(&args);
        let st = Tool::Stock.run(&args);
        assert_eq!(o.status.code(), st.status.code(), "{args:?}: {o:?}");
    }
    let o = Tool::Ours.run(&["-a", &nope, &d]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("open error: No such file or directory"));
}

/// A truncated or corrupted batch ends with a clear error, and leaves no half-written file:
/// the destination keeps its old content.
#[test]
fn truncated_or_corrupt_batch_fails_cleanly() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = w.join("src");
    std::fs::create_dir(&src).unwrap();
    sample_tree(&src);
    let dest = w.join("dest");
    std::fs::create_dir(&dest).unwrap();
    stale_dest(&dest);
    let batch = w.join("b");
    let bopt = format!("--only-write-batch={}", batch.display());
    ok(
        &Tool::Ours.run(&["-a", &bopt, &s(&src), &s(&dest)]),
        "write",
    );
    let full = std::fs::read(&batch).unwrap();
    let mut corrupt = full.clone();
    let mid = corrupt.len() / 2;
    for b in &mut corrupt[mid..mid + 64] {
        *b = 0xEE;
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("header only", full[..6].to_vec()),
        ("in the list", full[..60].to_vec()),
        ("inside file data", full[..full.len() * 3 / 4].to_vec()),
        ("corrupt", corrupt),
    ];
    for (what, bytes) in cases {
        let target = w.join(format!("t-{}", what.replace(' ', "-")));
        std::fs::create_dir(&target).unwrap();
        stale_dest(&target);
        let before = snapshot(&target, false);
        let f = w.join("cut");
        std::fs::write(&f, &bytes).unwrap();
        let ropt = format!("--read-batch={}", f.display());
        let o = Tool::Ours.run(&["-a", &ropt, &s(&target)]);
        assert!(!o.status.success(), "{what}: accepted a broken batch");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("rsync error:"), "{what}: {err}");
        // Files are replaced whole or not at all; no temporary file is left behind.
        let after = snapshot(&target, false);
        for (name, node) in &after {
            assert!(
                !name.contains("/.") && !name.starts_with('.'),
                "{what}: left {name}"
            );
            if let Some(old) = before.get(name) {
                if node.kind == "file" && node.content != old.content {
                    let want = std::fs::read(src.join(name)).ok();
                    assert_eq!(node.content, want, "{what}: {name} is half-written");
                }
            }
        }
    }
}

/// The replay script: stock's quoting and layout (the program name aside).
#[test]
fn replay_script_matches_stock() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = w.join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    let scripts = |tool: Tool, name: &str| -> String {
        let out = Command::new(match tool {
            Tool::Ours => PathBuf::from(RTSYNC),
            Tool::Stock => stock_rsync(),
        })
        .current_dir(w)
        .args(match tool {
            Tool::Ours => vec!["rsync"],
            Tool::Stock => vec![],
        })
        .args([
            "-a",
            &format!("--write-batch={name}"),
            "--exclude=*.o",
            "-f",
            "+ it's",
            "src/",
            "d e s t/",
        ])
        .output()
        .unwrap();
        ok(&out, "write");
        let text = std::fs::read_to_string(w.join(format!("{name}.sh"))).unwrap();
        // Drop the program name.
        text.split_once(' ').unwrap().1.to_string()
    };
    let ours = scripts(Tool::Ours, "B1");
    let stock = scripts(Tool::Stock, "B1");
    assert_eq!(ours, stock);
}

/// `--read-batch=-` reads the batch from standard input, as stock does.
#[test]
fn read_batch_from_standard_input() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = w.join("src");
    std::fs::create_dir(&src).unwrap();
    sample_tree(&src);
    let batch = w.join("b");
    let bopt = format!("--only-write-batch={}", batch.display());
    ok(
        &run_stock(&["-aH", &bopt, &s(&src), &s(&w.join("unused"))]),
        "stock write",
    );
    let dest = w.join("dest");
    let out = Command::new(RTSYNC)
        .args(["rsync", "-aH", "--read-batch=-", &s(&dest)])
        .stdin(std::fs::File::open(&batch).unwrap())
        .output()
        .unwrap();
    ok(&out, "replay from stdin");
    assert_same_tree(&dest, &src, true);
}

/// `--only-write-batch` with `-X`: the receiving side still asks for the values it lacks
/// (stock's generator does: only the destination stays untouched), so a writer and a
/// receiving server from different implementations agree; the batch replays (with `-X` and
/// with bare `-a`, whose stream flags turn `-X` on) to what a real `-aX` transfer gives.
#[test]
fn only_write_batch_with_xattrs_replays() {
    for (writer, server, via) in [
        (Tool::Ours, Tool::Ours, Via::Local),
        (Tool::Stock, Tool::Ours, Via::ShellPush),
        (Tool::Ours, Tool::Stock, Via::ShellPush),
        (Tool::Stock, Tool::Ours, Via::ShellPull),
        (Tool::Ours, Tool::Ours, Via::ShellPull),
    ] {
        let what = format!("{writer:?} writes, {server:?} serves, {via:?}");
        let work = tempfile::tempdir().unwrap();
        let w = work.path();
        let src = w.join("src");
        std::fs::create_dir(&src).unwrap();
        for i in 0..12 {
            let f = write_file(&src.join(format!("f{i:02}")), format!("x{i}\n").as_bytes());
            set_xattr(&f, "user.m", b"v");
            // Long values go by digest and are asked for by number.
            set_xattr(&f, "user.long", &pattern(300, i));
        }
        let dest = w.join("dest");
        std::fs::create_dir(&dest).unwrap();
        // One file already current but for its attributes: asked for without a transfer.
        ok(
            &run_stock(&["-a", &format!("{}f03", s(&src)), &s(&dest)]),
            "seed dest",
        );
        set_xattr(&dest.join("f03"), "user.long", b"old");
        let before = snapshot(&dest, true);
        let batch = w.join("b");
        let ssh = fake_ssh(w);
        let mut args = vec![
            "-a".to_string(),
            "-X".to_string(),
            format!("--only-write-batch={}", batch.display()),
        ];
        match via {
            Via::Local => args.extend([s(&src), s(&dest)]),
            Via::ShellPush => args.extend([
                format!("-e{}", ssh.display()),
                server.rsync_path(),
                s(&src),
                format!("h:{}", s(&dest)),
            ]),
            _ => args.extend([
                format!("-e{}", ssh.display()),
                server.rsync_path(),
                format!("h:{}", s(&src)),
                s(&dest),
            ]),
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(&writer.run(&argv), &what);
        assert!(snapshot(&dest, true) == before, "{what}: dest changed");
        let want = w.join("want");
        std::fs::create_dir(&want).unwrap();
        ok(
            &run_stock(&["-a", &format!("{}f03", s(&src)), &s(&want)]),
            "seed want",
        );
        set_xattr(&want.join("f03"), "user.long", b"old");
        ok(&run_stock(&["-aX", &s(&src), &s(&want)]), "reference");
        for reader in [Tool::Ours, Tool::Stock] {
            for ropts in [&["-a"][..], &["-aX"][..]] {
                let r = w.join(format!("r-{reader:?}-{}", ropts[0]));
                ok(&run_stock(&["-a", "-X", &s(&dest), &s(&r)]), "copy dest");
                let ropt = format!("--read-batch={}", batch.display());
                let mut a = ropts.to_vec();
                let rs = s(&r);
                a.extend([ropt.as_str(), rs.as_str()]);
                ok(
                    &reader.run(&a),
                    &format!("{reader:?} {ropts:?} replays ({what})"),
                );
                assert_same_tree(&r, &want, true);
            }
        }
    }
}

/// A local `--write-batch` (and `--only-write-batch`) itemizes as a local copy does, sent
/// files as `>f`, and its replay the same: the lines are stock's.
#[test]
fn local_batch_item_lines_match_stock() {
    for flag in ["--write-batch", "--only-write-batch"] {
        let lines = |tool: Tool| -> (String, String) {
            let t = tempfile::tempdir().unwrap();
            let src = t.path().join("src");
            sample_tree(&src);
            let batch = format!("{flag}={}", t.path().join("b").display());
            let dst = s(&t.path().join("dst"));
            let written = tool.run(&["-ai", &batch, &s(&src), &dst]);
            ok(&written, flag);
            let read = format!("--read-batch={}", t.path().join("b").display());
            let replay = s(&t.path().join("replay"));
            let replayed = tool.run(&["-ai", &read, &replay]);
            ok(&replayed, "read-batch");
            let clean = |o: &Output| {
                String::from_utf8_lossy(&o.stdout).replace(&t.path().display().to_string(), "T")
            };
            (clean(&written), clean(&replayed))
        };
        let (ours, stock) = (lines(Tool::Ours), lines(Tool::Stock));
        assert!(stock.0.contains(">f+++++++++ "), "{}", stock.0);
        assert_eq!(ours, stock, "{flag}");
    }
}
