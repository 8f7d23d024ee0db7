//! Incremental recursion (CF_INC_RECURSE) against stock peers.
//!
//! Pushes: the same operation through the stock client and through `rtsync rsync` to stock
//! receivers. Pulls by the stock client: from a stock server and from ours (`rtsync daemon`,
//! `rtsync rsync --server --sender` behind a fake ssh). Trees, owners, item lines and exit
//! codes are compared. The trees are wide and deep enough that the list goes out in many
//! pieces, interleaved with file data, and the sender retires lists as the generator
//! finishes them.

mod daemon_util;
mod interop_util;

use interop_util::*;
use std::path::Path;

/// stdout without the closing byte counts, which legitimately differ: item lines in order,
/// then hard-link completions (sorted: the receiver finishes a link group when its
/// generator gets to it, which depends on how far ahead the lists are), then the
/// receiver's deletion messages in order. How the streams interleave is not compared
/// (they travel apart, and stock's own runs differ).
fn lines(out: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(out);
    let kept = text
        .lines()
        .filter(|l| !l.starts_with("sent ") && !l.starts_with("total size is "));
    let (deletions, items): (Vec<&str>, Vec<&str>) =
        kept.partition(|l| l.starts_with("*deleting "));
    let (mut links, items): (Vec<&str>, Vec<&str>) =
        items.into_iter().partition(|l| l.starts_with("hf"));
    links.sort_unstable();
    items
        .into_iter()
        .chain(links)
        .chain(deletions)
        .map(str::to_string)
        .collect()
}

/// 3 levels of directories, 2,000+ files (more than the sender keeps listed ahead), empty
/// directories, symlinks, files owned by another user and group.
fn wide_tree(root: &Path) {
    for a in 0..6 {
        for b in 0..5 {
            let d = root.join(format!("a{a}/b{b}"));
            std::fs::create_dir_all(&d).unwrap();
            for f in 0..70 {
                std::fs::write(
                    d.join(format!("f{f:02}")),
                    pattern(f * 13 + a * 7, f as u32),
                )
                .unwrap();
            }
            std::fs::create_dir(d.join("empty")).unwrap();
        }
        std::fs::write(root.join(format!("a{a}/top.txt")), format!("top {a}")).unwrap();
        std::os::unix::fs::symlink("top.txt", root.join(format!("a{a}/link"))).unwrap();
    }
    let deep = root.join("deep/1/2/3/4/5/6/7/8");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("bottom"), b"bottom").unwrap();
    std::fs::write(root.join("a.txt"), b"first").unwrap();
    std::fs::write(root.join("z.txt"), b"last").unwrap();
    for p in ["a3/b1", "a3/b1/f05", "a2/top.txt"] {
        std::os::unix::fs::chown(root.join(p), Some(65534), Some(65534)).unwrap();
    }
    past_times(root);
}

/// Runs `opts SOURCES… DEST` with the stock client and with ours, against destinations
/// prepared by `prepare`, and compares. `dest` maps a destination directory to the URL or
/// remote path to give.
fn compare(
    opts: &[&str],
    sources: &[String],
    prepare: impl Fn(&Path),
    dest: impl Fn(&str, &Path) -> String,
    ours_dir: &Path,
    stock_dir: &Path,
) {
    for d in [ours_dir, stock_dir] {
        std::fs::create_dir_all(d).unwrap();
        prepare(d);
    }
    let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    args.extend(sources.iter().cloned());
    let mut stock_args = args.clone();
    stock_args.push(dest("stock", stock_dir));
    let stock_args: Vec<&str> = stock_args.iter().map(String::as_str).collect();
    let stock = run_stock(&stock_args);
    let mut our_args = args.clone();
    our_args.push(dest("ours", ours_dir));
    let our_args: Vec<&str> = our_args.iter().map(String::as_str).collect();
    let ours = rtsync(&our_args);
    assert_eq!(
        ours.status.code(),
        stock.status.code(),
        "exit codes, {opts:?}\nours: {}\nstock: {}",
        String::from_utf8_lossy(&ours.stderr),
        String::from_utf8_lossy(&stock.stderr)
    );
    assert_same_tree(ours_dir, stock_dir, true);
    let (o, s) = (lines(&ours.stdout), lines(&stock.stdout));
    assert!(!s.is_empty(), "the comparison needs output: {opts:?}");
    if o != s {
        let at = o.iter().zip(&s).take_while(|(a, b)| a == b).count();
        let from = at.saturating_sub(3);
        panic!(
            "stdout differs at line {at}, {opts:?}\nours:\n{}\nstock:\n{}",
            o[from..(at + 5).min(o.len())].join("\n"),
            s[from..(at + 5).min(s.len())].join("\n")
        );
    }
}

fn daemon_compare(opts: &[&str], sources: &[String], prepare: impl Fn(&Path)) {
    let work = tempfile::tempdir().unwrap();
    let (ours, stock) = (work.path().join("ours"), work.path().join("stock"));
    std::fs::create_dir_all(&ours).unwrap();
    std::fs::create_dir_all(&stock).unwrap();
    let daemon = StockDaemon::ours_and_stock(&ours, &stock);
    compare(
        opts,
        sources,
        prepare,
        |m, _| daemon.url(&format!("{m}/")),
        &ours,
        &stock,
    );
}

#[test]
fn inc_push_of_a_wide_tree_matches_stock_and_says_incremental() {
    let src = tempfile::tempdir().unwrap();
    wide_tree(src.path());
    let from = vec![format!("{}/", src.path().display())];
    daemon_compare(&["-ai"], &from, |_| {});
    // -v names the incremental list (so the comparison above ran with it on).
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("d");
    std::fs::create_dir(&dest).unwrap();
    let daemon = StockDaemon::start(&[Module {
        name: "m",
        path: &dest,
        extra: "munge symlinks = no",
    }]);
    let out = rtsync(&["-av", &from[0], &daemon.url("m/")]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("sending incremental file list\n"),
        "{text}"
    );
    assert_same_tree(&dest, src.path(), false);
}

#[test]
fn inc_push_update_with_delete_and_per_dir_filters_matches_stock() {
    let src = tempfile::tempdir().unwrap();
    wide_tree(src.path());
    std::fs::write(src.path().join("a1/.rsync-filter"), b"- b2/\n- *.txt\n").unwrap();
    std::fs::write(src.path().join("a4/b0/.rsync-filter"), b"- f1*\n").unwrap();
    past_times(src.path());
    let from = vec![format!("{}/", src.path().display())];
    let stale = |d: &Path| {
        wide_tree(d);
        std::fs::write(d.join("a2/b3/f10"), b"changed content").unwrap();
        std::fs::remove_file(d.join("a5/b4/f69")).unwrap();
        std::fs::create_dir_all(d.join("a0/gone/deeper")).unwrap();
        std::fs::write(d.join("a0/gone/deeper/x"), b"x").unwrap();
        std::fs::write(d.join("deep/1/2/extra"), b"x").unwrap();
        past_times(d);
        for p in ["a2/b3/f10", "a0/gone", "deep/1/2/extra"] {
            set_mtime(&d.join(p), 1_400_000_000, 0);
        }
    };
    daemon_compare(&["-ai", "--delete", "-F"], &from, stale);
    daemon_compare(&["-aic", "--protocol=30"], &from, stale);
    daemon_compare(&["-aiz", "--no-whole-file", "--numeric-ids"], &from, stale);
}

#[test]
fn inc_push_with_hard_links_across_lists_matches_stock() {
    let src = tempfile::tempdir().unwrap();
    linked_tree(src.path());
    let from = vec![format!("{}/", src.path().display())];
    daemon_compare(&["-aHi"], &from, |_| {});
    daemon_compare(&["-aHi", "--delete"], &from, stale_pull_dest);
}

#[test]
fn inc_push_of_named_sources_and_a_lone_file_matches_stock() {
    let src = tempfile::tempdir().unwrap();
    wide_tree(src.path());
    let p = |rel: &str| src.path().join(rel).display().to_string();
    daemon_compare(&["-ai"], &[p("a1"), p("deep"), p("z.txt")], |_| {});
    daemon_compare(&["-ai"], &[p("deep/1/2/3")], |_| {});
    daemon_compare(&["-ai"], &[p("a.txt")], |_| {});
}

#[test]
fn inc_push_over_a_remote_shell_to_stock_server_matches_stock() {
    let src = tempfile::tempdir().unwrap();
    wide_tree(src.path());
    let work = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(work.path()).display().to_string();
    let from = vec![format!("{}/", src.path().display())];
    compare(
        &["-ai", "--delete", "-e", &ssh],
        &from,
        |_| {},
        |_, d| format!("localhost:{}/", d.display()),
        &work.path().join("ours"),
        &work.path().join("stock"),
    );
}

/// Where the stock client pulls from.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// `rsync://` from a daemon (`rsync --daemon` or `rtsync daemon`) serving the source.
    Daemon,
    /// A remote shell running `rsync --server --sender` or `rtsync rsync --server --sender`.
    Shell,
}

/// Sorted item lines (all of stdout but the closing byte counts), with the first line
/// (`receiving incremental file list`) kept first. A pulling client prints what its
/// generator and its receiver report, and the two interleave by timing, for stock too.
fn pull_lines(out: &[u8]) -> Vec<String> {
    let mut v = lines(out);
    if v.len() > 1 {
        v[1..].sort();
    }
    v
}

/// The stock client pulls `what` (paths below the source: `""` is the whole tree with a
/// trailing slash) with `opts`, once from a stock server and once from ours, into
/// destinations prepared by `prepare`; compares exit codes, trees, owners and output.
fn pull_compare(via: Via, opts: &[&str], src: &Path, what: &[&str], prepare: impl Fn(&Path)) {
    pull_compare_with(via, "", opts, src, what, prepare)
}

/// [`pull_compare`] with extra daemon module parameters.
fn pull_compare_with(
    via: Via,
    module_extra: &str,
    opts: &[&str],
    src: &Path,
    what: &[&str],
    prepare: impl Fn(&Path),
) {
    let work = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for kind in [daemon_util::Kind::Stock, daemon_util::Kind::Rtsync] {
        let dest = work.path().join(format!("{kind:?}"));
        std::fs::create_dir_all(&dest).unwrap();
        prepare(&dest);
        let ddir = work.path().join(format!("{kind:?}-daemon"));
        std::fs::create_dir_all(&ddir).unwrap();
        let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        let _daemon = match via {
            Via::Daemon => {
                let d = daemon_util::Daemon::start(kind, &ddir, &module_conf(src, module_extra));
                for w in what {
                    args.push(d.url(&format!("m/{w}")));
                }
                Some(d)
            }
            Via::Shell => {
                let ssh = fake_ssh(&ddir).display().to_string();
                let path = remote_rsync_path(matches!(kind, daemon_util::Kind::Rtsync));
                args.extend(["-e".to_string(), ssh, format!("--rsync-path={path}")]);
                for (i, w) in what.iter().enumerate() {
                    let p = format!("{}/{w}", src.display());
                    args.push(if i == 0 {
                        format!("localhost:{p}")
                    } else {
                        format!(":{p}")
                    });
                }
                None
            }
        };
        args.push(format!("{}/", dest.display()));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        results.push((dest, run_stock(&a)));
    }
    let (stock_dest, stock) = &results[0];
    let (our_dest, ours) = &results[1];
    assert_eq!(
        ours.status.code(),
        stock.status.code(),
        "exit codes, {via:?} {opts:?}\nours: {}\nstock: {}",
        String::from_utf8_lossy(&ours.stderr),
        String::from_utf8_lossy(&stock.stderr)
    );
    assert_same_tree(our_dest, stock_dest, true);
    let (o, s) = (pull_lines(&ours.stdout), pull_lines(&stock.stdout));
    assert!(!s.is_empty(), "the comparison needs output: {opts:?}");
    if o != s {
        let only = |a: &[String], b: &[String]| -> Vec<String> {
            a.iter()
                .filter(|l| !b.contains(l))
                .take(10)
                .cloned()
                .collect()
        };
        panic!(
            "stdout differs, {via:?} {opts:?}\nonly ours: {:#?}\nonly stock: {:#?}\nfirst lines: {:?} / {:?}",
            only(&o, &s),
            only(&s, &o),
            o.first(),
            s.first()
        );
    }
    let errors = |e: &[u8]| {
        let mut v: Vec<String> = String::from_utf8_lossy(e)
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        errors(&ours.stderr),
        errors(&stock.stderr),
        "stderr, {via:?} {opts:?}"
    );
}

/// [`wide_tree`] with hard links within and across directories.
fn linked_tree(root: &Path) {
    wide_tree(root);
    std::fs::hard_link(root.join("a0/b0/f00"), root.join("a0/b0/same-dir")).unwrap();
    std::fs::hard_link(root.join("a0/b0/f01"), root.join("a5/b4/other-dir")).unwrap();
    std::fs::hard_link(root.join("a.txt"), root.join("deep/1/2/3/4/5/6/7/8/far")).unwrap();
    past_times(root);
}

/// A destination for updates: some files changed, one missing, extra entries for --delete.
fn stale_pull_dest(d: &Path) {
    wide_tree(d);
    std::fs::write(d.join("a2/b3/f10"), b"changed content").unwrap();
    std::fs::remove_file(d.join("a5/b4/f69")).unwrap();
    std::fs::create_dir_all(d.join("a0/gone/deeper")).unwrap();
    std::fs::write(d.join("a0/gone/deeper/x"), b"x").unwrap();
    std::fs::write(d.join("deep/1/2/extra"), b"x").unwrap();
    past_times(d);
    for p in ["a2/b3/f10", "a0/gone", "deep/1/2/extra"] {
        set_mtime(&d.join(p), 1_400_000_000, 0);
    }
}

#[test]
fn stock_pull_from_our_servers_says_incremental_and_matches_stock() {
    let src = tempfile::tempdir().unwrap();
    wide_tree(src.path());
    for via in [Via::Daemon, Via::Shell] {
        pull_compare(via, &["-av"], src.path(), &[""], |_| {});
        pull_compare(via, &["-ai"], src.path(), &[""], |_| {});
    }
    // The comparison ran with incremental recursion on: -v names it.
    let work = tempfile::tempdir().unwrap();
    let d = daemon_util::Daemon::start(
        daemon_util::Kind::Rtsync,
        work.path(),
        &module_conf(src.path(), ""),
    );
    let dest = work.path().join("dest");
    let out = run_stock(&["-av", &d.url("m/"), &format!("{}/", dest.display())]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("receiving incremental file list\n"),
        "{text}"
    );
}

#[test]
fn stock_pull_updates_with_delete_checksum_compression_match_stock() {
    let src = tempfile::tempdir().unwrap();
    wide_tree(src.path());
    for via in [Via::Daemon, Via::Shell] {
        pull_compare(
            via,
            &["-ai", "--delete"],
            src.path(),
            &[""],
            stale_pull_dest,
        );
        pull_compare(
            via,
            &["-aic", "--delete"],
            src.path(),
            &[""],
            stale_pull_dest,
        );
        pull_compare(
            via,
            &["-aiz", "--no-whole-file"],
            src.path(),
            &[""],
            stale_pull_dest,
        );
        pull_compare(
            via,
            &["-ai", "--protocol=30", "--delete"],
            src.path(),
            &[""],
            stale_pull_dest,
        );
    }
}

#[test]
fn stock_pull_with_filters_matches_stock() {
    let src = tempfile::tempdir().unwrap();
    wide_tree(src.path());
    std::fs::write(src.path().join("a1/.rsync-filter"), b"- b2/\n- *.txt\n").unwrap();
    std::fs::write(src.path().join("a4/b0/.rsync-filter"), b"- f1*\n").unwrap();
    past_times(src.path());
    let rules = [
        "-ai",
        "--delete",
        "--exclude=f0*",
        "--exclude=b3/",
        "--include=a2/***",
    ];
    for via in [Via::Daemon, Via::Shell] {
        pull_compare(via, &rules, src.path(), &[""], stale_pull_dest);
    }
    // A remote-shell sender reads the per-directory rule files.
    pull_compare(
        Via::Shell,
        &["-ai", "-F", "--delete"],
        src.path(),
        &[""],
        stale_pull_dest,
    );
}

#[test]
fn stock_pull_with_hard_links_matches_stock() {
    let src = tempfile::tempdir().unwrap();
    linked_tree(src.path());
    for via in [Via::Daemon, Via::Shell] {
        pull_compare(via, &["-aHi"], src.path(), &[""], |_| {});
        pull_compare(
            via,
            &["-aHiv", "--delete"],
            src.path(),
            &[""],
            stale_pull_dest,
        );
    }
}

#[test]
fn stock_pull_of_named_sources_lone_files_and_missing_ones_matches_stock() {
    let src = tempfile::tempdir().unwrap();
    wide_tree(src.path());
    for via in [Via::Daemon, Via::Shell] {
        pull_compare(via, &["-ai"], src.path(), &["a1", "deep", "z.txt"], |_| {});
        pull_compare(via, &["-ai"], src.path(), &["deep/1/2/3"], |_| {});
        pull_compare(via, &["-avi"], src.path(), &["a.txt"], |_| {});
        pull_compare(via, &["-ai"], src.path(), &["a1", "missing"], |_| {});
        pull_compare(via, &["-ai"], src.path(), &["a3/b1/empty/"], |_| {});
    }
}

#[test]
fn stock_pull_from_a_module_with_outgoing_chmod_and_munged_links_matches_stock() {
    let src = tempfile::tempdir().unwrap();
    wide_tree(src.path());
    std::os::unix::fs::symlink("/rsyncd-munged/a.txt", src.path().join("a1/munged")).unwrap();
    past_times(src.path());
    let extra = "munge symlinks = yes\noutgoing chmod = Fo-r,Dg+w\n";
    pull_compare_with(Via::Daemon, extra, &["-ai"], src.path(), &[""], |_| {});
    pull_compare_with(
        Via::Daemon,
        extra,
        &["-ai", "--list-only"],
        src.path(),
        &[""],
        |_| {},
    );
}

/// `-R` sources as stock lists them incrementally: the first list holds each name's first
/// component, an implied directory's list the next one; sources that are not consecutive
/// list a parent twice (`a1/b0 deep/… a1/b3`), and so does a source inside another
/// (`a2 a2/b1`): stock sends both and one combined list for them.
const RELATIVE_SETS: [&[&str]; 6] = [
    &["./a1/b2"],
    &["./a1/b0/f03", "./deep/1/2/3", "./a1/b3", "./z.txt"],
    &["./a2", "./a2/b1"],
    &["./a3/b1/empty", "./a3/top.txt", "./a3/b1/f05", "./a0"],
    &["./deep/1/2/3/4/5", "./deep/1/2"],
    &["./a4/b0/f01", "./a4/b0/f02", "./a5/b4", "./a4/b1"],
];

#[test]
fn inc_push_of_relative_sources_matches_stock_and_says_incremental() {
    let src = tempfile::tempdir().unwrap();
    linked_tree(src.path());
    let base = src.path().display().to_string();
    for set in RELATIVE_SETS {
        // (`BASE/./NAME`: the names start after the marker.)
        let from: Vec<String> = set.iter().map(|s| format!("{base}/{s}")).collect();
        daemon_compare(&["-aRvi"], &from, |_| {});
        daemon_compare(&["-aHRi", "--delete"], &from, stale_pull_dest);
    }
    // A relative name with its own implied parents, over a remote shell.
    let work = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(work.path()).display().to_string();
    compare(
        &["-aRvi", "-e", &ssh],
        &[format!("{base}/./a1/b0/f03"), format!("{base}/./a0")],
        |_| {},
        |_, d| format!("localhost:{}/", d.display()),
        &work.path().join("ours"),
        &work.path().join("stock"),
    );
    // -v printed the incremental header in those comparisons.
    let dest = work.path().join("d");
    std::fs::create_dir(&dest).unwrap();
    let daemon = StockDaemon::start(&[Module {
        name: "m",
        path: &dest,
        extra: "",
    }]);
    let out = rtsync(&["-aRv", &format!("{base}/./a1/b2"), &daemon.url("m/")]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("sending incremental file list\n"),
        "{text}"
    );
    assert_same_tree(&dest.join("a1/b2"), &src.path().join("a1/b2"), false);
}

#[test]
fn stock_pull_of_relative_sources_from_our_servers_matches_stock() {
    let src = tempfile::tempdir().unwrap();
    linked_tree(src.path());
    for via in [Via::Daemon, Via::Shell] {
        for set in RELATIVE_SETS {
            pull_compare(via, &["-aRvi"], src.path(), set, |_| {});
        }
        pull_compare(
            via,
            &["-aHRi", "--delete"],
            src.path(),
            RELATIVE_SETS[1],
            stale_pull_dest,
        );
    }
}
