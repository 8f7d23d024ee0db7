//! Interop tests of rtsync's server role with stock rsync 3.x clients (through an in-process
//! daemon front and a remote-shell relay), compared with stock rsync's own results.

mod interop_util;

use interop_util::inproc::{rtsync_daemon, rtsync_daemon_opts, rtsync_shell};
use interop_util::*;
use std::path::Path;
use std::process::Output;

/// The reference result: stock rsync copying `src` locally with the same options.
fn stock_reference(opts: &[&str], src: &Path, dest: &Path) {
    let from = format!("{}/", src.display());
    let to = format!("{}/", dest.display());
    let mut args: Vec<&str> = opts.to_vec();
    args.extend([from.as_str(), to.as_str()]);
    let out = run_stock(&args);
    assert!(out.status.success(), "stock local copy failed: {out:?}");
}

fn stock_client_pull_from_us(opts: &[&str], prepare: impl Fn(&Path), via_shell: bool) {
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let work = tempfile::tempdir().unwrap();
    let got = work.path().join("got");
    let want = work.path().join("want");
    for d in [&got, &want] {
        std::fs::create_dir(d).unwrap();
        prepare(d);
    }
    stock_reference(opts, src.path(), &want);
    let to = format!("{}/", got.display());
    let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    if via_shell {
        let sh = rtsync_shell(work.path(), 1);
        args.extend(["-e".into(), sh.display().to_string()]);
        args.push(format!("localhost:{}/", src.path().display()));
    } else {
        let port = rtsync_daemon(src.path(), 1);
        args.push(format!("rsync://127.0.0.1:{port}/mod/"));
    }
    args.push(to);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_stock(&a);
    assert!(
        out.status.success(),
        "stock client against rtsync server: {out:?}"
    );
    assert_same_tree(&got, &want, true);
}

fn stock_client_push_to_us(opts: &[&str], prepare: impl Fn(&Path), via_shell: bool) {
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let work = tempfile::tempdir().unwrap();
    let got = work.path().join("got");
    let want = work.path().join("want");
    for d in [&got, &want] {
        std::fs::create_dir(d).unwrap();
        prepare(d);
    }
    stock_reference(opts, src.path(), &want);
    let from = format!("{}/", src.path().display());
    let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    if via_shell {
        let sh = rtsync_shell(work.path(), 1);
        args.extend(["-e".into(), sh.display().to_string(), from]);
        args.push(format!("localhost:{}/", got.display()));
    } else {
        let port = rtsync_daemon(&got, 1);
        args.push(from);
        args.push(format!("rsync://127.0.0.1:{port}/mod/"));
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_stock(&a);
    assert!(
        out.status.success(),
        "stock client against rtsync server: {out:?}"
    );
    // --backup without --backup-dir implies --omit-dir-times; a backup dir's times are
    // those of the run.
    let dir_times = !opts
        .iter()
        .any(|o| *o == "--backup" || o.starts_with("--backup-dir"));
    assert_same_tree(&got, &want, dir_times);
}

fn stale(d: &Path) {
    sample_tree(d);
    std::fs::write(d.join("sub/medium.bin"), pattern(100_000, 8)).unwrap();
    std::fs::write(d.join("extra-file"), b"delete me").unwrap();
    set_mtime(&d.join("sub/medium.bin"), 1_400_000_000, 0);
    set_mtime(&d.join("extra-file"), 1_400_000_000, 0);
}

#[test]
fn stock_pulls_from_rtsync_daemon_archive() {
    stock_client_pull_from_us(&["-a"], |_| {}, false);
}

#[test]
fn stock_pulls_from_rtsync_daemon_compressed_delete() {
    stock_client_pull_from_us(&["-aHz", "--delete"], stale, false);
}

#[test]
fn stock_pulls_from_rtsync_over_shell_protocol_30() {
    stock_client_pull_from_us(&["-a", "--protocol=30"], stale, true);
}

#[test]
fn stock_pushes_to_rtsync_daemon_archive() {
    stock_client_push_to_us(&["-a"], |_| {}, false);
}

#[test]
fn stock_pushes_to_rtsync_daemon_compressed_delete_hardlinks() {
    stock_client_push_to_us(&["-aHz", "--delete"], stale, false);
}

#[test]
fn stock_pushes_to_rtsync_over_shell_checksum() {
    stock_client_push_to_us(&["-ac", "--checksum-choice=md5"], stale, true);
}

#[test]
fn stock_pulls_from_rtsync_with_excludes() {
    stock_client_pull_from_us(&["-a", "--delete", "--exclude=*.bin"], stale, false);
}

#[test]
fn stock_pushes_to_rtsync_with_excludes() {
    stock_client_push_to_us(
        &[
            "-a",
            "--delete",
            "--exclude=extra-file",
            "--exclude=deeper/",
        ],
        stale,
        true,
    );
}

#[test]
fn read_only_module_refuses_a_push_like_stock() {
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let dest = tempfile::tempdir().unwrap();
    let port = rtsync_daemon_opts(dest.path(), 1, true);
    let from = format!("{}/", src.path().display());
    let out = run_stock(&["-a", &from, &format!("rsync://127.0.0.1:{port}/mod/")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("ERROR: module is read only\n"), "{err}");
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0);
}

#[test]
fn stock_pulls_from_rtsync_with_files_from() {
    let work = tempfile::tempdir().unwrap();
    let list = work.path().join("list");
    std::fs::write(&list, "small.txt\nsub/deeper/large.bin\nlink\n").unwrap();
    let ff = format!("--files-from={}", list.display());
    stock_client_pull_from_us(&["-a", &ff], |_| {}, false);
    stock_client_push_to_us(&["-a", &ff], |_| {}, true);
}

#[test]
fn missing_source_on_rtsync_daemon_gives_23_without_leaking_the_module_path() {
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let port = rtsync_daemon(src.path(), 1);
    let dest = tempfile::tempdir().unwrap();
    let out = run_stock(&[
        "-a",
        &format!("rsync://127.0.0.1:{port}/mod/nonexistent"),
        &format!("{}/", dest.path().display()),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(23), "{err}");
    // Module-relative, as stock's daemon names a top-level source (`"/DIR/NAME"` only for
    // one inside a directory).
    assert!(err.contains("link_stat \"nonexistent\""), "{err}");
    assert!(!err.contains(&src.path().display().to_string()), "{err}");
}

#[test]
fn module_paths_through_symlinks_are_refused() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"top secret").unwrap();
    let module = tempfile::tempdir().unwrap();
    sample_tree(module.path());
    std::os::unix::fs::symlink(outside.path(), module.path().join("escape")).unwrap();
    let dest = tempfile::tempdir().unwrap();
    for path in ["escape/secret", "escape/"] {
        let port = rtsync_daemon(module.path(), 1);
        let out = run_stock(&[
            "-a",
            &format!("rsync://127.0.0.1:{port}/mod/{path}"),
            &format!("{}/", dest.path().display()),
        ]);
        assert_ne!(out.status.code(), Some(0), "{path}");
        assert!(!dest.path().join("secret").exists(), "{path}");
    }
    // -L would follow symlinks out of the module: refused.
    let port = rtsync_daemon(module.path(), 1);
    let out = run_stock(&[
        "-aL",
        &format!("rsync://127.0.0.1:{port}/mod/"),
        &format!("{}/", dest.path().display()),
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(!dest.path().join("escape/secret").exists());
    // Pushing through a symlinked directory of the module is refused too.
    let port = rtsync_daemon(module.path(), 1);
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("planted"), b"x").unwrap();
    let out = run_stock(&[
        "-a",
        &format!("{}/", src.path().display()),
        &format!("rsync://127.0.0.1:{port}/mod/escape/"),
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(!outside.path().join("planted").exists());
}

#[test]
fn stock_pushes_to_rtsync_with_backup_inplace_sparse() {
    for via_shell in [true, false] {
        stock_client_push_to_us(&["-a", "--backup", "--delete"], stale, via_shell);
        stock_client_push_to_us(&["-a", "--backup-dir=bak", "--delete"], stale, via_shell);
        stock_client_push_to_us(&["-a", "--inplace"], stale, via_shell);
        stock_client_push_to_us(&["-aS", "--partial"], stale, via_shell);
    }
}

/// A basis directory `ref/` inside the destination (see interop.rs).
fn with_basis_dir(d: &Path) {
    let r = d.join("ref");
    sample_tree(&r);
    std::fs::write(r.join("sub/medium.bin"), pattern(100_000, 9)).unwrap();
    set_mtime(&r.join("sub/medium.bin"), 1_600_002_000, 123_456_789);
}

#[test]
fn stock_pushes_to_rtsync_with_alt_dest_dirs() {
    for opt in ["--link-dest=ref", "--copy-dest=ref", "--compare-dest=ref"] {
        stock_client_push_to_us(&["-a", opt], with_basis_dir, false);
        stock_client_push_to_us(&["-a", opt], with_basis_dir, true);
    }
}

#[test]
fn rtsync_daemon_keeps_alt_dest_dirs_inside_the_module() {
    // `../outside` from the module root is clamped to the root: the file outside the module
    // is neither linked nor even seen, and stock's warning says so.
    let work = tempfile::tempdir().unwrap();
    let module = work.path().join("module");
    let outside = work.path().join("outside");
    let src = work.path().join("src");
    for d in [&module, &outside, &src] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(src.join("f"), b"same\n").unwrap();
    std::fs::write(outside.join("f"), b"same\n").unwrap();
    set_mtime(&src.join("f"), 1_600_000_000, 0);
    set_mtime(&outside.join("f"), 1_600_000_000, 0);
    let port = rtsync_daemon(&module, 1);
    let from = format!("{}/", src.display());
    let url = format!("rsync://127.0.0.1:{port}/mod/");
    let out = run_stock(&["-rtv", "--link-dest=../outside", &from, &url]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("--link-dest arg does not exist"), "{text}");
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (
        std::fs::metadata(module.join("f")).unwrap(),
        std::fs::metadata(outside.join("f")).unwrap(),
    );
    assert_ne!(a.ino(), b.ino(), "linked to a file outside the module");
}

/// A push through the remote-shell relay to our server, and the same push to a stock server
/// (through `fake_ssh`), with `extra` options: both destinations must end up alike.
fn push_both_ways(
    extra: &[&str],
    src: &Path,
    remote_path: &str,
) -> (tempfile::TempDir, Vec<Output>) {
    let work = tempfile::tempdir().unwrap();
    let ours = work.path().join("ours");
    let stock = work.path().join("stock");
    for d in [&ours, &stock] {
        std::fs::create_dir(d).unwrap();
        std::fs::write(d.join("list"), "allowed\n").unwrap();
        set_mtime(&d.join("list"), 1_400_000_000, 0);
    }
    let from = format!("{}/", src.display());
    let relay = rtsync_shell(work.path(), 1);
    let ssh = fake_ssh(work.path());
    let mut outs = Vec::new();
    for (shell, dest) in [(&relay, &ours), (&ssh, &stock)] {
        let mut args: Vec<String> = extra
            .iter()
            .filter(|s| **s != "--no-tree-compare")
            .map(|s| s.replace("@DEST@", &dest.display().to_string()))
            .collect();
        args.extend([
            "-e".into(),
            shell.display().to_string(),
            from.clone(),
            format!("localhost:{}/{remote_path}", dest.display()),
        ]);
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        outs.push(run_stock(&a));
    }
    assert_eq!(
        outs[0].status.code(),
        outs[1].status.code(),
        "ours {:?} stock {:?}",
        outs[0],
        outs[1]
    );
    if !extra.contains(&"--no-tree-compare") {
        assert_same_tree(&ours, &stock, false);
    }
    (work, outs)
}

#[test]
fn drop_d_on_the_receiving_server_skips_specials_like_stock() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("allowed"), b"data").unwrap();
    let fifo = std::ffi::CString::new(src.path().join("fifo").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let (work, _) = push_both_ways(&["-rtD", "-M--drop-D"], src.path(), "");
    assert!(work.path().join("ours/allowed").is_file());
    assert!(!work.path().join("ours/fifo").exists());
    // Without it the FIFO is created (the control; special files' times are not this test's
    // business).
    let (work, _) = push_both_ways(&["-rtD", "--no-tree-compare"], src.path(), "");
    assert!(work.path().join("ours/fifo").exists());
}

#[test]
fn remote_files_from_is_read_by_the_server_like_stock() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("allowed"), b"yes").unwrap();
    std::fs::write(src.path().join("unlisted"), b"no").unwrap();
    // Push: the receiving server reads the list and sends the names to the client.
    let (work, _) = push_both_ways(&["-rt", "--files-from=:@DEST@/list"], src.path(), "");
    assert!(work.path().join("ours/allowed").is_file());
    assert!(!work.path().join("ours/unlisted").exists());
    // Pull: the sending server reads its own list.
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("list"), "allowed\n").unwrap();
    let got = work.path().join("got");
    let relay = rtsync_shell(work.path(), 1);
    let ff = format!("--files-from=:{}/list", work.path().display());
    let out = run_stock(&[
        "-r",
        &ff,
        "-e",
        relay.to_str().unwrap(),
        &format!("localhost:{}/", src.path().display()),
        &format!("{}/", got.display()),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(got.join("allowed").is_file());
    assert!(!got.join("unlisted").exists());
}

#[test]
fn confine_root_must_be_absolute_like_stock() {
    let out = run_stock(&["--confine-root=rel", "/nonexistent-a", "/nonexistent-b"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--confine-root must be an absolute path"),
        "{stderr}"
    );
    let err = rtsync_engine::Options::parse(&["--confine-root=rel".into(), "a".into(), "b".into()])
        .unwrap_err();
    assert_eq!(err.message, "--confine-root must be an absolute path");
}

#[test]
fn sending_server_reads_dir_merge_files_inside_its_confine_root_like_stock() {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(base.path().join("outside-secret"), "secretword\n").unwrap();
    std::fs::write(root.join("secretword"), "x").unwrap();
    std::fs::write(root.join("sub/intree-dropped"), "x").unwrap();
    std::fs::write(root.join("sub/intree-kept"), "x").unwrap();
    std::fs::write(root.join("sub/.rsync-filter"), "intree-dropped\n").unwrap();
    let confine = format!("-M--confine-root={}", root.display());
    for (i, filter) in [":-s ../outside-secret", ":-s .rsync-filter"]
        .iter()
        .enumerate()
    {
        let ours = base.path().join(format!("ours{i}"));
        let stock = base.path().join(format!("stock{i}"));
        let relay = rtsync_shell(base.path(), 1);
        let ssh = fake_ssh(base.path());
        let mut codes = Vec::new();
        for (shell, dest) in [(&relay, &ours), (&ssh, &stock)] {
            let out = run_stock(&[
                "-rt",
                &format!("--filter={filter}"),
                &confine,
                "-e",
                shell.to_str().unwrap(),
                &format!("localhost:{}/", root.display()),
                &format!("{}/", dest.display()),
            ]);
            codes.push(out.status.code());
        }
        assert_eq!(codes, [Some(0), Some(0)], "{filter}");
        assert_same_tree(&ours, &stock, false);
    }
    // Outside the root: not read, so the name it lists is transferred.
    assert!(base.path().join("ours0/secretword").exists());
    // Inside: read and obeyed.
    assert!(!base.path().join("ours1/sub/intree-dropped").exists());
    assert!(base.path().join("ours1/sub/intree-kept").exists());
}

/// Stock clients ask for zlib and zlibx as --old-compress / --new-compress: our server
/// accepts both and applies a compressed delta like stock.
#[test]
fn old_and_new_compress_server_options_like_stock() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("big"), pattern(300_000, 3)).unwrap();
    for choice in ["--compress-choice=zlib", "--compress-choice=zlibx"] {
        let (work, outs) =
            push_both_ways(&["-rtz", "-I", "--no-whole-file", choice], src.path(), "");
        assert_eq!(outs[0].status.code(), Some(0), "{choice}: {:?}", outs[0]);
        assert_eq!(
            std::fs::read(work.path().join("ours/big")).unwrap(),
            pattern(300_000, 3)
        );
    }
}

/// `-K` through a remote shell: a destination symlink to a directory is kept and written
/// through, by our server (a stock client pushing) as by stock's.
#[test]
fn keep_dirlinks_on_a_remote_shell_server_like_stock() {
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir(src.path().join("dir")).unwrap();
    std::fs::write(src.path().join("dir/file"), pattern(40_000, 5)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let relay = rtsync_shell(work.path(), 1);
    let ssh = fake_ssh(work.path());
    for (shell, side) in [(&relay, "ours"), (&ssh, "stock")] {
        let d = work.path().join(side);
        std::fs::create_dir_all(d.join("real-dir")).unwrap();
        std::os::unix::fs::symlink("real-dir", d.join("dir")).unwrap();
        let out = run_stock(&[
            "-rlK",
            "-e",
            &shell.display().to_string(),
            &format!("{}/", src.path().display()),
            &format!("localhost:{}/", d.display()),
        ]);
        assert!(out.status.success(), "{side}: {out:?}");
        assert!(
            d.join("dir").is_symlink(),
            "{side}: the dirlink was replaced"
        );
        assert_eq!(
            std::fs::read(d.join("real-dir/file")).unwrap(),
            pattern(40_000, 5),
            "{side}"
        );
    }
}

/// A `--backup-dir` held open as `/proc/self/fd/N` (as rrsync pins it) whose directory is
/// gone by the time a file is replaced: our receiving server fails the transfer as stock's
/// does, naming the backup it could not open and the `keep_backup failed: FILE -> BACKUP`
/// pair, with stock's exit code.
#[test]
fn a_backup_into_a_vanished_pinned_dir_fails_like_stock() {
    let t = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(t.path());
    let mut runs = Vec::new();
    for ours in [false, true] {
        // The same paths for both servers (the messages name them).
        let w = t.path().join("run");
        let (src, dest, bk) = (w.join("src"), w.join("dest"), w.join("bk"));
        for d in [&src, &dest, &bk] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(dest.join("k"), b"old\n").unwrap();
        std::fs::write(src.join("k"), b"new\n").unwrap();
        let server = format!(
            "exec 5<{0}; rmdir {0}; {1}",
            bk.display(),
            remote_rsync_path(ours)
        );
        let out = run_stock(&[
            "-rlbI",
            "--backup-dir=/proc/self/fd/5",
            "-e",
            &ssh.display().to_string(),
            &format!("--rsync-path={server}"),
            &format!("{}/", src.display()),
            &format!("localhost:{}/", dest.display()),
        ]);
        let kept = std::fs::read(dest.join("k")).unwrap();
        std::fs::rename(&w, t.path().join(format!("run-{ours}"))).unwrap();
        runs.push((out, kept));
    }
    let lines = |o: &Output| {
        let mut v: Vec<String> = String::from_utf8_lossy(&o.stderr)
            .lines()
            .filter(|l| l.starts_with("rsync: [receiver]"))
            .map(str::to_string)
            .collect();
        v.dedup();
        v
    };
    let (stock, ours) = (&runs[0], &runs[1]);
    assert_eq!(ours.0.status.code(), stock.0.status.code(), "exit codes");
    assert_eq!(lines(&ours.0), lines(&stock.0), "receiver's messages");
    assert!(lines(&stock.0)
        .iter()
        .any(|l| l.contains("keep_backup failed")));
    assert_eq!(ours.1, stock.1, "the destination file");
}
