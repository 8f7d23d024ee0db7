//! Incremental recursion on the *receiving* side against stock peers.
//!
//! Pushes by the stock client: once to a stock receiver and once to ours (`rtsync rsync
//! --server` behind a fake ssh, and `rtsync daemon`). Pulls by our client: from a stock
//! `rsync --server --sender` and from a stock daemon, compared with the stock client
//! pulling the same. Trees, item lines (with the `sending`/`receiving incremental file
//! list` header), hard links and exit codes are compared. The trees are wide and deep
//! enough that the list comes in many pieces, interleaved with file data, and the
//! receiver retires lists while the sender still sends new ones.

mod daemon_util;
mod interop_util;

use interop_util::*;
use std::path::Path;
use std::process::Output;

/// Directories three levels deep with 1,800 files (more than a sender lists ahead), empty
/// directories, a symlink, hard links within a directory, across directories and across
/// lists far apart.
fn tree(root: &Path) {
    for a in 0..5 {
        for b in 0..4 {
            let d = root.join(format!("a{a}/b{b}"));
            std::fs::create_dir_all(&d).unwrap();
            for f in 0..90 {
                std::fs::write(
                    d.join(format!("f{f:02}")),
                    pattern(f * 11 + a * 5, f as u32),
                )
                .unwrap();
            }
            std::fs::create_dir(d.join("empty")).unwrap();
        }
        std::fs::write(root.join(format!("a{a}/top.txt")), format!("top {a}")).unwrap();
        std::os::unix::fs::symlink("top.txt", root.join(format!("a{a}/link"))).unwrap();
    }
    let deep = root.join("deep/1/2/3/4/5/6");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("bottom"), b"bottom").unwrap();
    std::fs::create_dir_all(root.join("zempty/inner")).unwrap();
    std::fs::write(root.join("a.txt"), b"first").unwrap();
    std::fs::write(root.join("z.txt"), b"last").unwrap();
    past_times(root);
}

/// [`tree`] with hard-link groups.
fn linked_tree(root: &Path) {
    tree(root);
    let l = |a: &str, b: &str| std::fs::hard_link(root.join(a), root.join(b)).unwrap();
    l("a0/b0/f00", "a0/b0/same-dir");
    l("a0/b0/f01", "a4/b3/other-dir");
    l("a0/b0/f01", "a2/b1/third");
    l("a.txt", "deep/1/2/3/4/5/6/far");
    l("z.txt", "a1/zz");
    past_times(root);
}

/// A destination to update: changed, missing and extra entries (for --delete).
fn stale(d: &Path) {
    tree(d);
    std::fs::write(d.join("a2/b3/f10"), b"changed content").unwrap();
    std::fs::remove_file(d.join("a4/b3/f89")).unwrap();
    std::fs::create_dir_all(d.join("a0/gone/deeper")).unwrap();
    std::fs::write(d.join("a0/gone/deeper/x"), b"x").unwrap();
    std::fs::write(d.join("deep/1/2/extra"), b"x").unwrap();
    std::fs::write(d.join("a3/b0/empty/extra"), b"x").unwrap();
    past_times(d);
    for p in ["a2/b3/f10", "a0/gone", "deep/1/2/extra"] {
        set_mtime(&d.join(p), 1_400_000_000, 0);
    }
}

/// stdout without the byte counts and timings (which differ legitimately).
fn kept_lines(out: &[u8]) -> Vec<String> {
    let varying = [
        "sent ",
        "total size is ",
        "Total bytes ",
        "File list size",
        "File list generation time",
        "File list transfer time",
    ];
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| !varying.iter().any(|v| l.starts_with(v)))
        .map(str::to_string)
        .collect()
}

/// The header line first, then the rest sorted: a client's generator and receiver (or a
/// sender's own lines and the receiver's notices) interleave by timing, for stock too.
fn sorted_lines(out: &[u8]) -> Vec<String> {
    let mut v = kept_lines(out);
    let header = v.first().is_some_and(|l| l.contains("file list"));
    v[usize::from(header)..].sort();
    v
}

fn compare_runs(what: &str, ours: &Output, stock: &Output, our_dest: &Path, stock_dest: &Path) {
    assert_eq!(
        ours.status.code(),
        stock.status.code(),
        "exit codes, {what}\nours: {}\nstock: {}",
        String::from_utf8_lossy(&ours.stderr),
        String::from_utf8_lossy(&stock.stderr)
    );
    assert_same_tree(our_dest, stock_dest, true);
    let (o, s) = (sorted_lines(&ours.stdout), sorted_lines(&stock.stdout));
    assert!(!s.is_empty(), "the comparison needs output: {what}");
    if o != s {
        let at = o.iter().zip(&s).take_while(|(a, b)| a == b).count();
        let from = at.saturating_sub(2);
        panic!(
            "stdout differs at sorted line {at}, {what}\nours:\n{}\nstock:\n{}",
            o[from..(at + 6).min(o.len())].join("\n"),
            s[from..(at + 6).min(s.len())].join("\n")
        );
    }
}

/// How the stock client reaches the receiver it pushes to.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// A remote shell running `rsync --server` or `rtsync rsync --server`.
    Shell,
    /// `rsync://` to `rsync --daemon` or `rtsync daemon` with a writable module.
    Daemon,
}

/// The stock client pushes `src/` with `opts` to a stock receiver and to ours, into
/// destinations prepared by `prepare`; compares.
fn push_compare(via: Via, opts: &[&str], src: &Path, prepare: impl Fn(&Path)) {
    push_compare_paths(via, opts, src, &[""], prepare)
}

/// [`push_compare`] of `paths` beneath `src` (`""`: all of it, with a trailing slash).
fn push_compare_paths(
    via: Via,
    opts: &[&str],
    src: &Path,
    paths: &[&str],
    prepare: impl Fn(&Path),
) {
    let work = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for kind in [daemon_util::Kind::Stock, daemon_util::Kind::Rtsync] {
        let dest = work.path().join(format!("{kind:?}"));
        std::fs::create_dir_all(&dest).unwrap();
        prepare(&dest);
        let ddir = work.path().join(format!("{kind:?}-aux"));
        std::fs::create_dir_all(&ddir).unwrap();
        let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        args.extend(paths.iter().map(|p| format!("{}/{p}", src.display())));
        let _daemon = match via {
            Via::Shell => {
                let ssh = fake_ssh(&ddir).display().to_string();
                let path = remote_rsync_path(matches!(kind, daemon_util::Kind::Rtsync));
                args.splice(
                    0..0,
                    ["-e".to_string(), ssh, format!("--rsync-path={path}")],
                );
                args.push(format!("localhost:{}/", dest.display()));
                None
            }
            Via::Daemon => {
                let d = daemon_util::Daemon::start(kind, &ddir, &module_conf(&dest, ""));
                args.push(d.url("m/"));
                Some(d)
            }
        };
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        runs.push((dest, run_stock(&a)));
    }
    let what = format!("push {via:?} {opts:?}");
    compare_runs(&what, &runs[1].1, &runs[0].1, &runs[1].0, &runs[0].0);
}

/// Our client and the stock client pull `src/` with `opts` from a stock sender (`via`),
/// into destinations prepared by `prepare`; compares.
fn pull_compare(via: Via, opts: &[&str], src: &Path, prepare: impl Fn(&Path)) {
    pull_compare_paths(via, opts, src, &[""], prepare)
}

/// [`pull_compare`] of `paths` beneath `src` (`""`: all of it, with a trailing slash).
fn pull_compare_paths(
    via: Via,
    opts: &[&str],
    src: &Path,
    paths: &[&str],
    prepare: impl Fn(&Path),
) {
    let work = tempfile::tempdir().unwrap();
    let aux = work.path().join("aux");
    std::fs::create_dir_all(&aux).unwrap();
    let (daemon, from, extra) = match via {
        Via::Shell => {
            let ssh = fake_ssh(&aux).display().to_string();
            (
                None,
                paths
                    .iter()
                    .map(|p| format!("localhost:{}/{p}", src.display()))
                    .collect::<Vec<_>>(),
                vec![
                    "-e".to_string(),
                    ssh,
                    format!("--rsync-path={}", remote_rsync_path(false)),
                ],
            )
        }
        Via::Daemon => {
            let d =
                daemon_util::Daemon::start(daemon_util::Kind::Stock, &aux, &module_conf(src, ""));
            let urls = paths.iter().map(|p| d.url(&format!("m/{p}"))).collect();
            (Some(d), urls, Vec::new())
        }
    };
    let mut runs = Vec::new();
    for ours in [false, true] {
        let dest = work.path().join(if ours { "ours" } else { "stock" });
        std::fs::create_dir_all(&dest).unwrap();
        prepare(&dest);
        let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        args.extend(extra.iter().cloned());
        args.extend(from.iter().cloned());
        args.push(format!("{}/", dest.display()));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        runs.push((dest, if ours { rtsync(&a) } else { run_stock(&a) }));
    }
    drop(daemon);
    let what = format!("pull {via:?} {opts:?}");
    compare_runs(&what, &runs[1].1, &runs[0].1, &runs[1].0, &runs[0].0);
}

#[test]
fn stock_push_to_our_receivers_says_incremental_and_matches_stock() {
    let src = tempfile::tempdir().unwrap();
    tree(src.path());
    for via in [Via::Shell, Via::Daemon] {
        push_compare(via, &["-av"], src.path(), |_| {});
        push_compare(via, &["-ai"], src.path(), stale);
    }
    // -v names the incremental list: our server granted it.
    let work = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(work.path()).display().to_string();
    let dest = work.path().join("d");
    let out = run_stock(&[
        "-av",
        "-e",
        &ssh,
        &format!("--rsync-path={}", remote_rsync_path(true)),
        &format!("{}/", src.path().display()),
        &format!("localhost:{}/", dest.display()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("sending incremental file list\n"),
        "{text}"
    );
    assert_same_tree(&dest, src.path(), false);
}

#[test]
fn stock_push_to_our_receivers_with_delete_filters_and_hard_links_matches_stock() {
    let src = tempfile::tempdir().unwrap();
    linked_tree(src.path());
    std::fs::write(src.path().join("a1/.rsync-filter"), b"- b2/\n- *.txt\n").unwrap();
    past_times(src.path());
    for via in [Via::Shell, Via::Daemon] {
        push_compare(via, &["-ai", "--delete"], src.path(), stale);
        push_compare(via, &["-ai", "--delete-delay", "-F"], src.path(), stale);
        push_compare(via, &["-aiH"], src.path(), |_| {});
        push_compare(
            via,
            &["-aiH", "--delete", "--exclude=f1*"],
            src.path(),
            stale,
        );
    }
}

#[test]
fn stock_push_with_options_that_need_the_whole_list_matches_stock() {
    // Stock's receiver turns incremental recursion down for these; so does ours.
    let src = tempfile::tempdir().unwrap();
    tree(src.path());
    for opts in [
        &["-av", "--delete-before"][..],
        &["-av", "--delete-after"],
        &["-av", "--delay-updates"],
        &["-av", "--prune-empty-dirs"],
        &["-av", "--no-inc-recursive"],
    ] {
        push_compare(Via::Shell, opts, src.path(), stale);
    }
}

#[test]
fn our_pull_from_stock_senders_says_incremental_and_matches_stock() {
    let src = tempfile::tempdir().unwrap();
    tree(src.path());
    for via in [Via::Shell, Via::Daemon] {
        pull_compare(via, &["-av"], src.path(), |_| {});
        pull_compare(via, &["-ai"], src.path(), stale);
        pull_compare(via, &["-ai", "--delete"], src.path(), stale);
        pull_compare(via, &["-ai", "--delete-delay"], src.path(), stale);
        pull_compare(via, &["-ain", "--delete"], src.path(), stale);
        pull_compare(
            via,
            &["-ai", "--exclude=f0*", "--exclude=b3/"],
            src.path(),
            stale,
        );
        pull_compare(via, &["-a", "--stats"], src.path(), stale);
    }
}

#[test]
fn our_pull_with_hard_links_matches_stock() {
    let src = tempfile::tempdir().unwrap();
    linked_tree(src.path());
    for via in [Via::Shell, Via::Daemon] {
        pull_compare(via, &["-aiH"], src.path(), |_| {});
        pull_compare(via, &["-aiH", "--delete"], src.path(), stale);
        // Without incremental recursion the whole list is known: the last member of each
        // group is the one transferred.
        pull_compare(via, &["-aiH", "--no-inc-recursive"], src.path(), |_| {});
    }
}

/// Hard-linked symlinks (and a regular group) with `-H`: our receiver, pushed to by the
/// stock client and pulling as the client, links every later member to the first one made,
/// as stock does on Linux; members already linked are unchanged `hL` items at `-ii`, and
/// members standing as separate symlinks (one of them older) are linked over them.
#[test]
fn hard_linked_symlinks_are_linked_by_our_receivers_as_by_stock() {
    let src = tempfile::tempdir().unwrap();
    let root = src.path();
    std::fs::create_dir_all(root.join("d")).unwrap();
    std::fs::write(root.join("f"), b"x\n").unwrap();
    std::fs::hard_link(root.join("f"), root.join("g")).unwrap();
    std::os::unix::fs::symlink("f", root.join("s1")).unwrap();
    // link(2) on Linux links the symlink itself.
    std::fs::hard_link(root.join("s1"), root.join("s3")).unwrap();
    std::fs::hard_link(root.join("s1"), root.join("d/s2")).unwrap();
    past_times(root);
    let copy_of_src = |linked: bool| {
        move |d: &Path| {
            let flags = if linked { "-aH" } else { "-a" };
            let out = run_stock(&[
                flags,
                &format!("{}/", root.display()),
                &format!("{}/", d.display()),
            ]);
            assert!(out.status.success());
        }
    };
    let older = |d: &Path| {
        copy_of_src(false)(d);
        std::fs::remove_file(d.join("s1")).unwrap();
        set_mtime(&d.join("s3"), 1_000_000_000, 0);
    };
    for via in [Via::Shell, Via::Daemon] {
        push_compare(via, &["-aiH"], root, |_| {});
        pull_compare(via, &["-aiH"], root, |_| {});
        pull_compare(via, &["-aiiH"], root, copy_of_src(true));
        pull_compare(
            via,
            &["-aiiH", "--no-inc-recursive"],
            root,
            copy_of_src(true),
        );
        push_compare(via, &["-aiH"], root, copy_of_src(false));
        pull_compare(via, &["-aiH"], root, copy_of_src(false));
        push_compare(via, &["-aiH"], root, older);
        pull_compare(via, &["-aiH"], root, older);
        pull_compare(via, &["-aiHn"], root, |_| {});
    }
}

#[test]
fn relative_paths_and_files_from_lists_match_stock() {
    let src = tempfile::tempdir().unwrap();
    tree(src.path());
    let list = src.path().join("the-list");
    std::fs::write(&list, b"a1/b2\na3\nz.txt\ndeep/1/2\n").unwrap();
    let files_from = format!("--files-from={}", list.display());
    for via in [Via::Shell, Via::Daemon] {
        push_compare_paths(via, &["-aiR"], src.path(), &["./a0/b1", "./deep/1"], stale);
        pull_compare_paths(via, &["-aiR"], src.path(), &["./a0/b1", "./deep/1"], stale);
        push_compare(via, &["-air", &files_from], src.path(), stale);
    }
    pull_compare(Via::Shell, &["-air", &files_from], src.path(), stale);
}

#[test]
fn list_only_pull_matches_stock_and_creates_nothing() {
    let src = tempfile::tempdir().unwrap();
    linked_tree(src.path());
    let work = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(work.path()).display().to_string();
    let from = format!("localhost:{}/", src.path().display());
    for opts in [&["-r"][..], &["-rH"], &["-rlptH"]] {
        let mut args: Vec<&str> = opts.to_vec();
        args.extend(["-e", &ssh, &from]);
        let (ours, stock) = (rtsync(&args), run_stock(&args));
        assert_eq!(ours.status.code(), stock.status.code(), "{opts:?}");
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&stock.stdout),
            "{opts:?}"
        );
    }
    // (The tests run in the package directory: nothing may have been linked there.)
    assert!(!Path::new("a.txt").exists());
}

#[test]
fn a_file_the_sender_cannot_send_ends_the_pull_like_stock() {
    // Our daemon refuses a --copy-links escape out of the module at send time
    // (MSG_NO_SEND): the list holding it must still be retired.
    let work = tempfile::tempdir().unwrap();
    let module = work.path().join("module");
    std::fs::create_dir_all(module.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(work.path().join("outside")).unwrap();
    std::fs::write(work.path().join("outside/secret"), b"secret").unwrap();
    std::fs::write(module.join("target"), b"in").unwrap();
    std::fs::write(module.join("sub/deeper/f"), b"f").unwrap();
    std::os::unix::fs::symlink("../target", module.join("sub/in_file")).unwrap();
    std::os::unix::fs::symlink("../../outside/secret", module.join("sub/esc_file")).unwrap();
    let aux = work.path().join("aux");
    std::fs::create_dir_all(&aux).unwrap();
    let conf = format!(
        "use chroot = no\nreverse lookup = no\n[m]\npath = {}\nread only = yes\n",
        module.display()
    );
    let d = daemon_util::Daemon::start(daemon_util::Kind::Rtsync, &aux, &conf);
    let mut runs = Vec::new();
    for ours in [false, true] {
        let dest = work.path().join(if ours { "ours" } else { "stock" });
        let args = [
            "-rti",
            "--copy-links",
            &d.url("m/sub/"),
            &format!("{}/", dest.display()),
        ];
        runs.push((
            dest.clone(),
            if ours {
                rtsync(&args)
            } else {
                run_stock(&args)
            },
        ));
    }
    assert_eq!(runs[1].1.status.code(), runs[0].1.status.code());
    assert_eq!(runs[1].1.status.code(), Some(23));
    assert_same_tree(&runs[1].0, &runs[0].0, false);
    assert!(!runs[1].0.join("esc_file").exists());
}

/// A directory the daemon's sender cannot read sits early in the tree, so its io_error comes
/// with a later incremental list: the receiver then skips deleting in the directories it
/// reaches afterwards (the extra file is in the last one) and exits 23, as stock's does.
#[test]
fn an_io_error_in_a_later_list_stops_deletions_like_stock() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = w.join("src");
    tree(&src);
    std::fs::create_dir_all(src.join("a0/alocked")).unwrap();
    std::fs::write(src.join("a0/alocked/secret"), b"x").unwrap();
    past_times(&src);
    std::fs::set_permissions(
        src.join("a0/alocked"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    std::fs::set_permissions(w, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The daemon reads as nobody, which cannot open `a0/alocked`.
    let conf = format!(
        "use chroot = no\nreverse lookup = no\n[m]\npath = {}\nuid = 65534\ngid = 65534\n",
        src.display()
    );
    let aux = w.join("aux");
    std::fs::create_dir_all(&aux).unwrap();
    let d = daemon_util::Daemon::start(daemon_util::Kind::Stock, &aux, &conf);
    let mut runs = Vec::new();
    for ours in [false, true] {
        let dest = w.join(if ours { "ours" } else { "stock" });
        std::fs::create_dir_all(dest.join("zempty/inner")).unwrap();
        std::fs::write(dest.join("zempty/inner/extra"), b"kept").unwrap();
        set_mtime(&dest.join("zempty/inner/extra"), 1_400_000_000, 0);
        let dest_arg = format!("{}/", dest.display());
        let args = ["-ai", "--delete", &d.url("m/"), &dest_arg];
        runs.push((
            dest,
            if ours {
                rtsync(&args)
            } else {
                run_stock(&args)
            },
        ));
    }
    assert_eq!(runs[0].1.status.code(), Some(23));
    assert!(runs[0].0.join("zempty/inner/extra").exists());
    compare_runs(
        "io_error in a later list",
        &runs[1].1,
        &runs[0].1,
        &runs[1].0,
        &runs[0].0,
    );
}
