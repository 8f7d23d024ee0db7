//! Interop tests: rtsync's client against stock rsync 3.x servers, compared with what the stock
//! client produces in the same case. Stock rsync must be installed (`/usr/bin/rsync` or
//! `$STOCK_RSYNC`); these tests fail when it is not.

mod interop_util;

use interop_util::*;
use std::path::Path;

/// Pulls `src` from a stock daemon into two destinations, once with stock rsync and once with
/// ours, and compares the results.
fn pull_case(opts: &[&str], prepare_dest: impl Fn(&Path)) {
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let daemon = StockDaemon::start(&[Module {
        name: "mod",
        path: src.path(),
        extra: "",
    }]);
    let work = tempfile::tempdir().unwrap();
    let ours = work.path().join("ours");
    let stock = work.path().join("stock");
    for d in [&ours, &stock] {
        std::fs::create_dir(d).unwrap();
        prepare_dest(d);
    }
    let url = daemon.url("mod/");
    let mut stock_args: Vec<&str> = opts.to_vec();
    let stock_dest = format!("{}/", stock.display());
    stock_args.extend([url.as_str(), stock_dest.as_str()]);
    let out = run_stock(&stock_args);
    assert!(out.status.success(), "stock rsync failed: {out:?}");

    let ours_dest = format!("{}/", ours.display());
    let mut our_args: Vec<&str> = opts.to_vec();
    our_args.extend([url.as_str(), ours_dest.as_str()]);
    assert_eq!(
        run_ours(&our_args),
        out.status.code().unwrap(),
        "exit code, {opts:?}"
    );
    assert_same_tree(&ours, &stock, opts.iter().any(|o| o.starts_with("-a")));
}

#[test]
fn pull_from_stock_daemon_archive() {
    pull_case(&["-a"], |_| {});
}

#[test]
fn pull_from_stock_daemon_archive_hardlinks() {
    pull_case(&["-aH"], |_| {});
}

#[test]
fn pull_from_stock_daemon_protocol_30() {
    pull_case(&["-a", "--protocol=30"], |_| {});
}

#[test]
fn pull_from_stock_daemon_checksum_md5() {
    pull_case(&["-a", "--checksum-choice=md5"], |_| {});
}

#[test]
fn pull_from_stock_daemon_delta_onto_stale_tree() {
    pull_case(&["-a"], stale_dest);
}

#[test]
fn pull_from_stock_daemon_delete() {
    pull_case(&["-aH", "--delete"], stale_dest);
}

#[test]
fn pull_from_stock_daemon_checksum() {
    pull_case(&["-ac"], stale_dest);
}

#[test]
fn pull_from_stock_daemon_recursive_only() {
    // Without -t/-p: times are not preserved, so compare contents and kinds only.
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let daemon = StockDaemon::start(&[Module {
        name: "mod",
        path: src.path(),
        extra: "",
    }]);
    let work = tempfile::tempdir().unwrap();
    let ours = work.path().join("ours");
    let url = daemon.url("mod/sub");
    assert_eq!(run_ours(&["-r", &url, &format!("{}/", ours.display())]), 0);
    let got = snapshot(&ours.join("sub"), false);
    assert_eq!(
        got["medium.bin"].content.as_deref(),
        Some(&pattern(100_000, 7)[..])
    );
    assert!(
        !got.contains_key("dangling"),
        "symlinks are skipped without -l"
    );
}

/// Pulls through a remote shell (a local stand-in for ssh running `rsync --server --sender`).
fn shell_pull_case(opts: &[&str], prepare_dest: impl Fn(&Path)) {
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let work = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(work.path());
    let ours = work.path().join("ours");
    let stock = work.path().join("stock");
    for d in [&ours, &stock] {
        std::fs::create_dir(d).unwrap();
        prepare_dest(d);
    }
    let remote = format!("localhost:{}/", src.path().display());
    let ssh_s = ssh.display().to_string();
    let stock_dest = format!("{}/", stock.display());
    let mut stock_args: Vec<&str> = opts.to_vec();
    stock_args.extend(["-e", ssh_s.as_str(), remote.as_str(), stock_dest.as_str()]);
    let out = run_stock(&stock_args);
    assert!(out.status.success(), "stock rsync failed: {out:?}");
    let ours_dest = format!("{}/", ours.display());
    let mut our_args: Vec<&str> = opts.to_vec();
    our_args.extend(["-e", ssh_s.as_str(), remote.as_str(), ours_dest.as_str()]);
    assert_eq!(run_ours(&our_args), 0, "exit code, {opts:?}");
    assert_same_tree(&ours, &stock, true);
}

#[test]
fn pull_over_remote_shell_archive() {
    shell_pull_case(&["-a"], |_| {});
}

#[test]
fn pull_over_remote_shell_delete_hardlinks_protocol_30() {
    shell_pull_case(&["-aH", "--delete", "--protocol=30"], stale_dest);
}

#[test]
fn pull_over_remote_shell_checksum_choice() {
    shell_pull_case(&["-ac", "--checksum-choice=md5"], stale_dest);
}

#[test]
fn pull_uses_basis_blocks_for_a_changed_file() {
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let daemon = StockDaemon::start(&[Module {
        name: "mod",
        path: src.path(),
        extra: "",
    }]);
    let work = tempfile::tempdir().unwrap();
    stale_dest(work.path());
    let url = daemon.url("mod/");
    let dest = format!("{}/", work.path().display());
    let out = run_ours_outcome(&["-a", &url, &dest]);
    assert_eq!(out.exit_code(), 0);
    // large.bin differs in 100 bytes and is truncated: most of it must come from the basis.
    assert!(out.stats.matched_bytes > 1_000_000, "{:?}", out.stats);
    assert!(out.stats.literal_bytes < 400_000, "{:?}", out.stats);
    assert_eq!(
        std::fs::read(work.path().join("sub/deeper/large.bin")).unwrap(),
        pattern(1_500_000, 13)
    );
}

#[test]
fn pull_from_stock_daemon_compressed_default() {
    pull_case(&["-az"], stale_dest);
}

#[test]
fn pull_from_stock_daemon_compress_choices() {
    for choice in ["zstd", "lz4", "zlibx", "zlib"] {
        let arg = format!("--compress-choice={choice}");
        pull_case(&["-az", &arg], stale_dest);
    }
}

#[test]
fn pull_over_remote_shell_hardlinks_delete_compressed() {
    shell_pull_case(&["-aHz", "--delete"], stale_dest);
}

/// Pushes a sample tree to a stock daemon: stock into one module, ours into another.
fn push_case(opts: &[&str], prepare_dest: impl Fn(&Path)) {
    push_case_times(opts, prepare_dest, true)
}

/// [`push_case`], comparing directory times only when `dir_times`.
fn push_case_times(opts: &[&str], prepare_dest: impl Fn(&Path), dir_times: bool) {
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let work = tempfile::tempdir().unwrap();
    let ours = work.path().join("ours");
    let stock = work.path().join("stock");
    for d in [&ours, &stock] {
        std::fs::create_dir(d).unwrap();
        prepare_dest(d);
    }
    let daemon = StockDaemon::ours_and_stock(&ours, &stock);
    let from = format!("{}/", src.path().display());
    let stock_url = daemon.url("stock/");
    let mut stock_args: Vec<&str> = opts.to_vec();
    stock_args.extend([from.as_str(), stock_url.as_str()]);
    let out = run_stock(&stock_args);
    assert!(out.status.success(), "stock rsync failed: {out:?}");
    let our_url = daemon.url("ours/");
    let mut our_args: Vec<&str> = opts.to_vec();
    our_args.extend([from.as_str(), our_url.as_str()]);
    assert_eq!(run_ours(&our_args), 0, "exit code, {opts:?}");
    assert_same_tree(&ours, &stock, dir_times);
}

#[test]
fn push_to_stock_daemon_archive() {
    push_case(&["-a"], |_| {});
}

#[test]
fn push_to_stock_daemon_delta_delete_hardlinks_compressed() {
    push_case(&["-aHz", "--delete"], stale_dest);
}

#[test]
fn push_to_stock_daemon_checksum_protocol_30() {
    push_case(&["-ac", "--protocol=30"], stale_dest);
}

#[test]
fn push_to_stock_daemon_compress_choice_and_checksum_choice() {
    push_case(
        &["-az", "--compress-choice=zstd", "--checksum-choice=md5"],
        stale_dest,
    );
}

/// A destination whose big file holds the source's blocks in another order: the second part
/// first. Updated `--inplace`, a block may be referenced only while the receiver has not yet
/// overwritten it (stock's sender knows; a naive matcher corrupts the file).
fn rotated_dest(d: &Path) {
    sample_tree(d);
    let p = d.join("sub/deeper/large.bin");
    let mut big = std::fs::read(&p).unwrap();
    big.rotate_left(400_000);
    std::fs::write(&p, big).unwrap();
    set_mtime(&p, 1_400_000_000, 0);
}

/// The `Literal data` and `Matched data` lines of `--stats` output.
fn data_lines(out: &std::process::Output) -> Vec<String> {
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("Literal data") || l.starts_with("Matched data"))
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    lines
}

#[test]
fn push_inplace_with_moved_blocks_matches_stock() {
    // Trees as stock's (a wrong reference would fail the receiver's verification and be
    // redone, so the tree alone cannot tell) ...
    push_case(&["-a", "--inplace", "--no-whole-file"], rotated_dest);
    push_case(&["-a", "--inplace", "--no-whole-file", "-z"], rotated_dest);
    shell_push_case(&["-a", "--inplace"], rotated_dest);
    // ... and the same data sent: no block the receiver has overwritten is referenced.
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let work = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(work.path()).display().to_string();
    let from = format!("{}/", src.path().display());
    let mut seen = Vec::new();
    for (side, ours) in [("stock", false), ("ours", true)] {
        let dest = work.path().join(side);
        std::fs::create_dir(&dest).unwrap();
        rotated_dest(&dest);
        let to = format!("localhost:{}/", dest.display());
        let argv = ["-a", "--inplace", "--stats", "-e", &ssh, &from, &to];
        let out = if ours {
            std::process::Command::new(env!("CARGO_BIN_EXE_rtsync"))
                .arg("rsync")
                .args(argv)
                .output()
                .unwrap()
        } else {
            run_stock(&argv)
        };
        assert!(out.status.success(), "{side}: {out:?}");
        seen.push(data_lines(&out));
    }
    assert_eq!(seen[1], seen[0], "--stats data lines (ours, stock)");
    assert_same_tree(&work.path().join("ours"), &work.path().join("stock"), true);
}

#[test]
fn option_values_reach_a_daemon_as_stock_sends_them() {
    // A daemon takes the backslashes off every option word (stock's client escapes the
    // values): a raw backslash in a value must arrive intact, a space and a wildcard too.
    // (--backup implies --omit-dir-times: directory times are not compared.)
    push_case_times(&["-a", "--backup", "--suffix=.o l\\d*"], stale_dest, false);
}

/// Pushes through a remote shell to `rsync --server`.
fn shell_push_case(opts: &[&str], prepare_dest: impl Fn(&Path)) {
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let work = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(work.path());
    let ours = work.path().join("ours");
    let stock = work.path().join("stock");
    for d in [&ours, &stock] {
        std::fs::create_dir(d).unwrap();
        prepare_dest(d);
    }
    let from = format!("{}/", src.path().display());
    let ssh_s = ssh.display().to_string();
    let stock_to = format!("localhost:{}/", stock.display());
    let mut stock_args: Vec<&str> = opts.to_vec();
    stock_args.extend(["-e", ssh_s.as_str(), from.as_str(), stock_to.as_str()]);
    let out = run_stock(&stock_args);
    assert!(out.status.success(), "stock rsync failed: {out:?}");
    let our_to = format!("localhost:{}/", ours.display());
    let mut our_args: Vec<&str> = opts.to_vec();
    our_args.extend(["-e", ssh_s.as_str(), from.as_str(), our_to.as_str()]);
    assert_eq!(run_ours(&our_args), 0, "exit code, {opts:?}");
    assert_same_tree(&ours, &stock, true);
}

#[test]
fn push_over_remote_shell_archive() {
    shell_push_case(&["-a"], |_| {});
}

#[test]
fn push_over_remote_shell_delete_hardlinks_compressed() {
    shell_push_case(&["-aHz", "--delete"], stale_dest);
}

#[test]
fn pull_from_stock_daemon_with_excludes_and_delete() {
    pull_case(
        &["-a", "--delete", "--exclude=*.bin", "--exclude=extra-dir/"],
        stale_dest,
    );
}

#[test]
fn push_to_stock_daemon_with_excludes_and_delete() {
    push_case(
        &[
            "-a",
            "--delete",
            "--exclude=*.bin",
            "--include=sub/",
            "--exclude=extra-*",
        ],
        stale_dest,
    );
}

/// A stale destination where one file is newer than the source's copy (for `-u`).
fn stale_dest_with_newer(d: &Path) {
    stale_dest(d);
    std::fs::write(d.join("small.txt"), b"newer here\n").unwrap();
    set_mtime(&d.join("small.txt"), 1_700_000_000, 0);
}

#[test]
fn pull_selection_options_match_stock() {
    for opts in [
        &["-a", "-u"][..],
        &["-a", "--existing"],
        &["-a", "--ignore-existing"],
        &["-a", "--max-size=50000"],
        &["-a", "--min-size=10"],
    ] {
        pull_case(opts, stale_dest_with_newer);
    }
}

#[test]
fn push_selection_options_match_stock() {
    for opts in [
        &["-a", "-u"][..],
        &["-a", "--existing"],
        &["-a", "--max-size=50000"],
    ] {
        push_case(opts, stale_dest_with_newer);
    }
}

#[test]
fn files_from_pull_and_push_match_stock() {
    let work = tempfile::tempdir().unwrap();
    let list = work.path().join("list");
    std::fs::write(
        &list,
        "small.txt\nsub/deeper/large.bin\n/link\nname with spaces\n",
    )
    .unwrap();
    let ff = format!("--files-from={}", list.display());
    pull_case(&["-a", &ff], |_| {});
    push_case(&["-a", &ff], |_| {});
    pull_case(&["-a", "-r", &ff, "--delete"], stale_dest);
}

#[test]
fn relative_push_with_delete_spares_implied_dirs_like_stock() {
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let work = tempfile::tempdir().unwrap();
    let ours = work.path().join("ours");
    let stock = work.path().join("stock");
    for d in [&ours, &stock] {
        std::fs::create_dir(d).unwrap();
        stale_dest(d);
        std::fs::write(d.join("sub/keep-me"), b"not under the transferred dir").unwrap();
        std::fs::write(d.join("sub/deeper/goner"), b"inside: deleted").unwrap();
        set_mtime(&d.join("sub/keep-me"), 1_400_000_000, 0);
        for p in ["sub/deeper", "sub", ""] {
            set_mtime(&d.join(p), 1_400_000_000, 0);
        }
    }
    let daemon = StockDaemon::ours_and_stock(&ours, &stock);
    let from = format!("{}/./sub/deeper", src.path().display());
    let s = run_stock(&["-aR", "--delete", &from, &daemon.url("stock/")]);
    assert!(s.status.success(), "{s:?}");
    assert_eq!(
        run_ours(&["-aR", "--delete", &from, &daemon.url("ours/")]),
        0
    );
    assert!(ours.join("sub/keep-me").exists());
    assert!(!ours.join("sub/deeper/goner").exists());
    assert_same_tree(&ours, &stock, true);
}

/// The list is sent in scan order and sorted by each side afterwards; names that occur
/// twice (a source inside another, with `-R`) are sent twice and cleared by the receiver,
/// so both sides must agree on every index.
#[test]
fn relative_push_with_overlapping_sources_matches_stock() {
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let work = tempfile::tempdir().unwrap();
    let ours = work.path().join("ours");
    let stock = work.path().join("stock");
    for d in [&ours, &stock] {
        std::fs::create_dir(d).unwrap();
    }
    let daemon = StockDaemon::ours_and_stock(&ours, &stock);
    let outer = format!("{}/./sub", src.path().display());
    let inner = format!("{}/./sub/deeper", src.path().display());
    // (Inner first is not covered: the scanner then skips the outer source as a duplicate
    // of the inner one's implied parent, with or without this list.)
    let s = run_stock(&["-aR", &outer, &inner, &daemon.url("stock/")]);
    assert!(s.status.success(), "{s:?}");
    assert_eq!(run_ours(&["-aR", &outer, &inner, &daemon.url("ours/")]), 0);
    assert_same_tree(&ours, &stock, true);
}

#[test]
fn pull_with_safe_links_matches_stock() {
    pull_case(&["-a", "--safe-links"], |_| {});
}

#[test]
fn missing_source_on_the_daemon_gives_23_like_stock() {
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let daemon = StockDaemon::start(&[Module {
        name: "mod",
        path: src.path(),
        extra: "",
    }]);
    let work = tempfile::tempdir().unwrap();
    for args in [
        vec![daemon.url("mod/nonexistent")],
        vec![daemon.url("mod/nonexistent"), daemon.url("mod/small.txt")],
    ] {
        let d1 = format!("{}/", work.path().join("s").display());
        let d2 = format!("{}/", work.path().join("o").display());
        let mut sa: Vec<&str> = vec!["-a"];
        sa.extend(args.iter().map(String::as_str));
        let mut oa = sa.clone();
        sa.push(&d1);
        oa.push(&d2);
        let s = run_stock(&sa);
        assert_eq!(run_ours(&oa), s.status.code().unwrap(), "{args:?}");
        let (o, st) = (work.path().join("o"), work.path().join("s"));
        assert_eq!(o.exists(), st.exists(), "{args:?}");
        if st.exists() {
            assert_same_tree(&o, &st, true);
        }
    }
}

#[test]
fn max_delete_and_chmod_match_stock() {
    pull_case_code(&["-a", "--delete", "--max-delete=1"], stale_dest, 25);
    pull_case(&["-a", "--chmod=Fu+x,Dg-w"], |_| {});
    push_case(&["-a", "--chmod=Fo-r"], |_| {});
}

/// [`pull_case`] for transfers stock ends with a non-zero exit code.
fn pull_case_code(opts: &[&str], prepare_dest: impl Fn(&Path), code: i32) {
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let daemon = StockDaemon::start(&[Module {
        name: "mod",
        path: src.path(),
        extra: "",
    }]);
    let work = tempfile::tempdir().unwrap();
    let ours = work.path().join("ours");
    let stock = work.path().join("stock");
    for d in [&ours, &stock] {
        std::fs::create_dir(d).unwrap();
        prepare_dest(d);
    }
    let url = daemon.url("mod/");
    let sd = format!("{}/", stock.display());
    let mut sa: Vec<&str> = opts.to_vec();
    sa.extend([url.as_str(), sd.as_str()]);
    let out = run_stock(&sa);
    assert_eq!(out.status.code(), Some(code), "stock: {out:?}");
    let od = format!("{}/", ours.display());
    let mut oa: Vec<&str> = opts.to_vec();
    oa.extend([url.as_str(), od.as_str()]);
    assert_eq!(run_ours(&oa), code, "{opts:?}");
    // Directories left partly deleted carry the time of the deletion: not compared.
    assert_same_tree(&ours, &stock, false);
}

#[test]
fn missing_remote_rsync_gives_127_like_stock() {
    let src = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(work.path());
    let ssh_s = ssh.display().to_string();
    let from = format!("localhost:{}/", src.path().display());
    let to = format!("{}/", work.path().join("d").display());
    let args = [
        "-a",
        "-e",
        &ssh_s,
        "--rsync-path=/nonexistent/rsync",
        &from,
        &to,
    ];
    let s = run_stock(&args);
    // Stock reports 127 when it reaps the shell before noticing the closed pipe, else 12.
    assert!(matches!(s.status.code(), Some(127 | 12)), "{s:?}");
    // We wait for the shell before reporting, so always give the precise code.
    assert_eq!(run_ours(&args), 127);
}

#[test]
fn delete_timings_match_stock() {
    for timing in [
        "--delete-before",
        "--delete-after",
        "--delete-delay",
        "--delete-during",
    ] {
        pull_case(&["-a", timing], stale_dest);
        push_case(&["-a", timing], stale_dest);
    }
}

// --- Receiver options: --backup, --inplace, --partial, --sparse, --temp-dir -------------------

/// The same pull by stock and by us, each into its own side directory: the destination is
/// `SIDE/dest/`, and `opts(SIDE)` may name other places inside SIDE (a backup dir). Returns
/// the side directories after comparing them whole, with the exit codes.
fn pull_sides(
    src: &Path,
    url_or_remote: &str,
    opts: impl Fn(&Path) -> Vec<String>,
    prepare_dest: impl Fn(&Path),
    dir_times: bool,
) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let _ = src;
    let work = tempfile::tempdir().unwrap();
    let ours = work.path().join("ours");
    let stock = work.path().join("stock");
    let mut codes = Vec::new();
    for side in [&stock, &ours] {
        std::fs::create_dir_all(side.join("dest")).unwrap();
        prepare_dest(&side.join("dest"));
        let mut args = opts(side);
        args.push(url_or_remote.to_string());
        args.push(format!("{}/", side.join("dest").display()));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        codes.push(if side == &stock {
            let out = run_stock(&a);
            if !out.status.success() {
                eprintln!("stock: {}", String::from_utf8_lossy(&out.stderr));
            }
            out.status.code().unwrap_or(-1)
        } else {
            run_ours(&a)
        });
    }
    assert_eq!(codes[1], codes[0], "exit codes (ours, stock)");
    assert_same_tree(&ours.join("dest"), &stock.join("dest"), dir_times);
    // Backup and temp dirs outside the transfer: their times are those of the run.
    assert_same_tree(&ours, &stock, false);
    (work, ours, stock)
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn with_daemon(test: impl FnOnce(&Path, &str)) {
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let daemon = StockDaemon::start(&[Module {
        name: "mod",
        path: src.path(),
        extra: "",
    }]);
    test(src.path(), &daemon.url("mod/"));
}

#[test]
fn pull_backup_keeps_replaced_and_deleted_files_like_stock() {
    with_daemon(|src, url| {
        // --backup implies --omit-dir-times: directory times are not compared.
        pull_sides(src, url, |_| args(&["-a", "--backup"]), stale_dest, false);
        pull_sides(
            src,
            url,
            |_| args(&["-a", "-b", "--suffix=.old", "--delete"]),
            stale_dest,
            false,
        );
    });
}

#[test]
fn pull_backup_dir_matches_stock() {
    with_daemon(|src, url| {
        let abs = |side: &Path| {
            let bd = format!("--backup-dir={}", side.join("bak").display());
            args(&["-a", "--delete", &bd])
        };
        let (_w, ours, _) = pull_sides(src, url, abs, stale_dest, true);
        assert!(ours.join("bak/sub/deeper/large.bin").exists());
        assert!(ours.join("bak/extra-file").exists());
        // A relative backup dir is relative to the destination.
        pull_sides(
            src,
            url,
            |_| args(&["-a", "--backup-dir=../rel", "--suffix=~"]),
            stale_dest,
            true,
        );
    });
}

#[test]
fn pull_inplace_updates_the_file_itself_like_stock() {
    with_daemon(|src, url| {
        let work = tempfile::tempdir().unwrap();
        stale_dest(work.path());
        let before = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(work.path().join("sub/deeper/large.bin"))
                .unwrap()
                .ino()
        };
        let d = format!("{}/", work.path().display());
        let out = run_ours_outcome(&["-a", "--inplace", url, &d]);
        assert_eq!(out.exit_code(), 0);
        assert!(out.stats.matched_bytes > 1_000_000, "{:?}", out.stats);
        let after = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(work.path().join("sub/deeper/large.bin"))
                .unwrap()
                .ino()
        };
        assert_eq!(before, after, "--inplace keeps the inode");
        pull_sides(src, url, |_| args(&["-a", "--inplace"]), stale_dest, true);
        pull_sides(
            src,
            url,
            |_| args(&["-a", "--inplace", "--backup", "--delete"]),
            stale_dest,
            false,
        );
        pull_sides(src, url, |_| args(&["-a", "--inplace", "-S"]), |_| {}, true);
    });
}

/// A source with long zero runs, pulled with and without `--sparse`.
#[test]
fn pull_sparse_leaves_holes_like_stock() {
    use std::os::unix::fs::MetadataExt;
    let src = tempfile::tempdir().unwrap();
    let mut data = vec![0u8; 4 << 20];
    data[1 << 20] = 1;
    data[(3 << 20) + 17] = 2;
    std::fs::write(src.path().join("holes"), &data).unwrap();
    set_mtime(src.path(), 1_600_000_000, 0);
    let daemon = StockDaemon::start(&[Module {
        name: "mod",
        path: src.path(),
        extra: "",
    }]);
    let url = daemon.url("mod/");
    let (_w, ours, stock) = pull_sides(src.path(), &url, |_| args(&["-a", "-S"]), |_| {}, true);
    let blocks = |p: &Path| std::fs::metadata(p.join("dest/holes")).unwrap().blocks();
    assert!(
        blocks(&ours) <= blocks(&stock) + 64,
        "ours {} blocks, stock {}",
        blocks(&ours),
        blocks(&stock)
    );
    assert!(blocks(&ours) < 1024, "{} blocks: no holes", blocks(&ours));
}

#[test]
fn pull_temp_dir_matches_stock() {
    with_daemon(|src, url| {
        let (_w, ours, _) = pull_sides(
            src,
            url,
            |side| {
                std::fs::create_dir_all(side.join("tmp")).unwrap();
                let t = format!("--temp-dir={}", side.join("tmp").display());
                args(&["-a", &t])
            },
            stale_dest,
            true,
        );
        assert_eq!(std::fs::read_dir(ours.join("tmp")).unwrap().count(), 0);
    });
}

/// A stand-in for ssh whose connection breaks after the server sent `limit` bytes (the
/// relay copies byte by byte so nothing is held back in a buffer).
fn breaking_ssh(dir: &Path, limit: usize) -> std::path::PathBuf {
    let p = dir.join("breaking-ssh");
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = -l ]; then shift 2; fi\nshift\n\
         f=$(mktemp -u); mkfifo \"$f\"\nexec 3<&0\n\
         sh -c \"$*\" <&3 > \"$f\" & p=$!\n\
         dd bs=1 count={limit} < \"$f\" 2>/dev/null\n\
         kill -9 $p 2>/dev/null; rm -f \"$f\"\n"
    );
    script::write_script(&p, &script);
    p
}

/// A pull whose connection breaks inside a file: the exit code is stock's (12); `--partial`
/// keeps what arrived (under the file's name with mtime 0, or in the partial dir), and a
/// second pull resumes from it. Stock's forked receiver rarely has data of the file yet when
/// the stream breaks, so the kept files themselves are not compared with stock's.
#[test]
fn pull_partial_keeps_interrupted_file() {
    use std::os::unix::fs::MetadataExt;
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("big"), pattern(4_000_000, 3)).unwrap();
    set_mtime(&src.path().join("big"), 1_600_000_000, 0);
    let work = tempfile::tempdir().unwrap();
    let broken = breaking_ssh(work.path(), 500_000).display().to_string();
    let fine = fake_ssh(work.path()).display().to_string();
    let remote = format!("localhost:{}/", src.path().display());
    for extra in [None, Some("--partial-dir=.part")] {
        let mut codes = Vec::new();
        for side in ["stock", "ours"] {
            let dest = work.path().join(format!("{side}-{}", extra.is_some()));
            std::fs::create_dir_all(&dest).unwrap();
            let d = format!("{}/", dest.display());
            let run = |ssh: &str| {
                let mut a = vec!["-a", "--partial", "-e", ssh];
                a.extend(extra);
                a.extend([remote.as_str(), d.as_str()]);
                if side == "stock" {
                    run_stock(&a).status.code().unwrap_or(-1)
                } else {
                    run_ours(&a)
                }
            };
            codes.push(run(&broken));
            if side == "ours" {
                let name = if extra.is_some() { ".part/big" } else { "big" };
                let part = std::fs::read(dest.join(name)).unwrap_or_default();
                assert!(!part.is_empty(), "no partial file {name}");
                assert_eq!(part[..], pattern(4_000_000, 3)[..part.len()]);
                let mtime = std::fs::metadata(dest.join(name)).unwrap().mtime();
                assert_eq!(mtime == 0, extra.is_none(), "partial file mtime");
            }
            assert_eq!(run(&fine), 0, "{side} resuming");
            assert_eq!(
                std::fs::read(dest.join("big")).unwrap(),
                pattern(4_000_000, 3)
            );
            assert!(!dest.join(".part/big").exists());
        }
        assert_eq!(codes[1], codes[0], "exit codes (ours, stock), {extra:?}");
        assert_same_tree(
            &work.path().join(format!("ours-{}", extra.is_some())),
            &work.path().join(format!("stock-{}", extra.is_some())),
            false,
        );
    }
}

/// `--remove-source-files` pulling: the receiver tells the stock sender (MSG_SUCCESS) which
/// files are in place, transferred or already current, and the sender removes them.
#[test]
fn pull_remove_source_files_matches_stock() {
    let work = tempfile::tempdir().unwrap();
    let sides = ["stock", "ours"].map(|s| work.path().join(s));
    for side in &sides {
        sample_tree(&side.join("src"));
        std::fs::create_dir_all(side.join("dest")).unwrap();
        // One file already current at the destination.
        std::fs::copy(side.join("src/small.txt"), side.join("dest/small.txt")).unwrap();
        set_mtime(&side.join("dest/small.txt"), 1_600_000_000, 123_456_789);
    }
    let daemon = StockDaemon::start(&[
        Module {
            name: "stock",
            path: &sides[0].join("src"),
            extra: "",
        },
        Module {
            name: "ours",
            path: &sides[1].join("src"),
            extra: "",
        },
    ]);
    let d0 = format!("{}/", sides[0].join("dest").display());
    let d1 = format!("{}/", sides[1].join("dest").display());
    let (u0, u1) = (daemon.url("stock/"), daemon.url("ours/"));
    let out = run_stock(&["-a", "--remove-source-files", &u0, &d0]);
    let ours = run_ours(&["-a", "--remove-source-files", &u1, &d1]);
    assert_eq!(ours, out.status.code().unwrap(), "{out:?}");
    assert_same_tree(&sides[1].join("dest"), &sides[0].join("dest"), true);
    assert_same_tree(&sides[1].join("src"), &sides[0].join("src"), false);
    assert!(!sides[1].join("src/small.txt").exists());
}

/// A basis directory `ref/` inside the destination: the sample tree with one file changed
/// and one mode changed (hard links made by `--link-dest` show as shared inodes).
fn with_basis_dir(d: &Path) {
    let r = d.join("ref");
    sample_tree(&r);
    std::fs::write(r.join("sub/medium.bin"), pattern(100_000, 9)).unwrap();
    set_mtime(&r.join("sub/medium.bin"), 1_600_002_000, 123_456_789);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        r.join("name with spaces"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
}

#[test]
fn push_to_stock_daemon_with_alt_dest_dirs() {
    for opt in ["--link-dest=ref", "--copy-dest=ref", "--compare-dest=ref"] {
        push_case(&["-a", opt], with_basis_dir);
    }
}

#[test]
fn pull_from_stock_daemon_with_alt_dest_dirs() {
    for opt in ["--link-dest=ref", "--copy-dest=ref", "--compare-dest=ref"] {
        pull_case(&["-a", opt], with_basis_dir);
    }
    pull_case(
        &["-a", "--link-dest=ref", "--no-whole-file"],
        with_basis_dir,
    );
}

/// Remote file names with shell metacharacters reach the remote rsync intact (stock escapes
/// them for the remote shell since 3.2.4), both pulling and pushing; a newline cannot start
/// a second remote command.
#[test]
fn remote_shell_args_with_shell_chars_are_escaped_like_stock() {
    let work = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(work.path());
    let ssh_s = ssh.display().to_string();
    let weird = "A weird)name $HOME;`x` 'q' \"d\" & [*]";
    let src = work.path().join("src");
    std::fs::create_dir_all(src.join(weird)).unwrap();
    std::fs::write(src.join(weird).join("file"), b"payload\n").unwrap();
    for side in ["ours", "stock"] {
        std::fs::create_dir_all(work.path().join(side).join("pulled")).unwrap();
        std::fs::create_dir_all(work.path().join(side).join("pushed")).unwrap();
    }
    let local_src = format!("{}/{weird}/", src.display());
    let remote_src = format!("localhost:{}/{weird}/", src.display());
    for side in ["ours", "stock"] {
        let base = work.path().join(side);
        let pull_to = format!("{}/pulled/{weird}", base.display());
        let push_to = format!("localhost:{}/pushed/{weird}", base.display());
        let sentinel = base.join("pwned");
        let inject = format!(
            "localhost:{}/nl\ntouch {}\n#",
            base.display(),
            sentinel.display()
        );
        let runs: [[&str; 5]; 3] = [
            ["-rt", "-e", &ssh_s, &remote_src, &pull_to],
            ["-rt", "-e", &ssh_s, &local_src, &push_to],
            ["-rt", "-e", &ssh_s, &local_src, &inject],
        ];
        for args in runs {
            if side == "ours" {
                run_ours(&args);
            } else {
                run_stock(&args);
            }
        }
        assert!(!sentinel.exists(), "{side}: a newline ran a remote command");
        assert!(
            !base.join("nl").exists(),
            "{side}: the newline split the path"
        );
    }
    let ours = work.path().join("ours");
    assert!(ours.join("pulled").join(weird).join("file").is_file());
    assert!(ours.join("pushed").join(weird).join("file").is_file());
    assert_same_tree(&ours, &work.path().join("stock"), false);
}

/// `--old-args` hands the remote names to the remote shell unescaped: "a b" names two files.
#[test]
fn old_args_leaves_remote_word_splitting_like_stock() {
    let work = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(work.path());
    let ssh_s = ssh.display().to_string();
    let src = work.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("one"), b"1").unwrap();
    std::fs::write(src.join("two"), b"2").unwrap();
    let remote = format!("localhost:{0}/one {0}/two", src.display());
    for side in ["ours", "stock"] {
        let to = format!("{}/", work.path().join(side).display());
        let args = ["--old-args", "-t", "-e", &ssh_s, &remote, &to];
        let code = if side == "ours" {
            run_ours(&args)
        } else {
            run_stock(&args).status.code().unwrap()
        };
        assert_eq!(code, 0, "{side}");
    }
    assert!(work.path().join("ours/one").is_file());
    assert_same_tree(&work.path().join("ours"), &work.path().join("stock"), false);
}

/// `-K` when pulling: our client keeps a destination symlink to a directory and writes
/// through it, as stock does. (Stock then sets the directory's time on the symlink itself;
/// times are not compared here.)
#[test]
fn keep_dirlinks_when_pulling_like_stock() {
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let work = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(work.path()).display().to_string();
    let remote = format!("localhost:{}/", src.path().display());
    for side in ["ours", "stock"] {
        let d = work.path().join(side);
        std::fs::create_dir_all(d.join("real-sub")).unwrap();
        std::os::unix::fs::symlink("real-sub", d.join("sub")).unwrap();
        let to = format!("{}/", d.display());
        let args = ["-rlK", "-e", &ssh, &remote, &to];
        if side == "ours" {
            assert_eq!(run_ours(&args), 0);
        } else {
            assert!(run_stock(&args).status.success());
        }
        assert!(
            d.join("sub").is_symlink(),
            "{side}: the dirlink was replaced"
        );
    }
    let listing = |side: &str| {
        let d = work.path().join(side).join("real-sub");
        let mut v: Vec<(String, Option<Vec<u8>>)> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let data = std::fs::read(e.path()).ok();
                (e.file_name().to_string_lossy().into_owned(), data)
            })
            .collect();
        v.sort();
        v
    };
    assert!(!listing("ours").is_empty());
    assert_eq!(listing("ours"), listing("stock"));
}
