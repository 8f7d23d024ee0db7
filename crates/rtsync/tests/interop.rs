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

/// Makes an existing destination that differs from the source: stale files, changed content
/// (so the delta path with block matching is used), an extra file for `--delete`.
fn stale_dest(d: &Path) {
    sample_tree(d);
    let mut big = pattern(1_500_000, 13);
    big[700_000..700_100].copy_from_slice(&[0u8; 100]);
    big.truncate(1_400_000);
    std::fs::write(d.join("sub/deeper/large.bin"), big).unwrap();
    set_mtime(&d.join("sub/deeper/large.bin"), 1_500_000_000, 0);
    std::fs::write(d.join("sub/medium.bin"), pattern(100_000, 8)).unwrap();
    std::fs::write(d.join("extra-file"), b"delete me").unwrap();
    std::fs::create_dir_all(d.join("extra-dir/inner")).unwrap();
    std::fs::write(d.join("extra-dir/inner/x"), b"x").unwrap();
    for p in [
        "extra-dir/inner/x",
        "extra-dir/inner",
        "extra-dir",
        "extra-file",
        "sub/medium.bin",
    ] {
        set_mtime(&d.join(p), 1_400_000_000, 0);
    }
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
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let work = tempfile::tempdir().unwrap();
    let ours = work.path().join("ours");
    let stock = work.path().join("stock");
    for d in [&ours, &stock] {
        std::fs::create_dir(d).unwrap();
        prepare_dest(d);
    }
    let daemon = StockDaemon::start(&[
        Module {
            name: "ours",
            path: &ours,
            extra: "",
        },
        Module {
            name: "stock",
            path: &stock,
            extra: "",
        },
    ]);
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
    assert_same_tree(&ours, &stock, true);
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
    std::fs::remove_file(d.join("name with spaces")).unwrap();
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
fn unsupported_receiver_options_are_refused() {
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let daemon = StockDaemon::start(&[Module {
        name: "mod",
        path: src.path(),
        extra: "",
    }]);
    let dest = tempfile::tempdir().unwrap();
    let url = daemon.url("mod/");
    let d = format!("{}/", dest.path().display());
    assert_eq!(run_ours(&["-a", "--backup", &url, &d]), 4);
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0);
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
    let daemon = StockDaemon::start(&[
        Module {
            name: "ours",
            path: &ours,
            extra: "",
        },
        Module {
            name: "stock",
            path: &stock,
            extra: "",
        },
    ]);
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
