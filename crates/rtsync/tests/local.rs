//! `rtsync rsync` between local paths against stock rsync: same trees, output and exit codes.

mod local_util;

use local_util::{
    differential, differential_in, normalize, Workspace, ALL_TIMES, FILE_TIMES, NEW_ROOT, NO_TIMES,
};
use std::os::unix::ffi::OsStrExt;

#[test]
fn archive_initial() {
    differential(&["-ai", "src/", "dst/"], false, ALL_TIMES);
}

#[test]
fn archive_update() {
    differential(&["-ai", "src/", "dst/"], true, ALL_TIMES);
}

#[test]
fn archive_hard_links_initial() {
    differential(&["-aHi", "src/", "dst/"], false, ALL_TIMES);
}

#[test]
fn archive_hard_links_delete_update() {
    differential(&["-aHi", "--delete", "src/", "dst/"], true, ALL_TIMES);
}

#[test]
fn archive_relative() {
    differential(&["-aRi", "src/deep/a", "src/many", "dst/"], false, NEW_ROOT);
}

#[test]
fn archive_checksum_update() {
    differential(&["-aci", "src/", "dst/"], true, ALL_TIMES);
}

#[test]
fn archive_inplace_update() {
    differential(&["-ai", "--inplace", "src/", "dst/"], true, ALL_TIMES);
}

#[test]
fn archive_partial_no_whole_file_update() {
    differential(
        &["-ai", "--partial", "--no-whole-file", "src/", "dst/"],
        true,
        ALL_TIMES,
    );
}

#[test]
fn rlt_update() {
    differential(&["-rlti", "src/", "dst/"], true, ALL_TIMES);
}

#[test]
fn dry_run_itemize_update() {
    differential(&["-n", "-ai", "--delete", "src/", "dst/"], true, ALL_TIMES);
}

#[test]
fn source_without_trailing_slash() {
    differential(&["-ai", "src", "dst"], false, NEW_ROOT);
}

#[test]
fn recursive_only_no_times() {
    differential(&["-ri", "src/", "dst/"], false, NO_TIMES);
}

#[test]
fn verbose_with_stats() {
    differential(&["-av", "--stats", "src/", "dst/"], true, ALL_TIMES);
}

#[test]
fn delete_after_verbose() {
    differential(&["-av", "--delete-after", "src/", "dst/"], true, ALL_TIMES);
}

#[test]
fn missing_source_is_partial_transfer() {
    differential(
        &["-ai", "src/plain.txt", "nonexistent", "dst/"],
        false,
        NEW_ROOT,
    );
}

#[test]
fn exclude_patterns() {
    differential(
        &["-ai", "--exclude=*.txt", "--exclude=many/", "src/", "dst/"],
        false,
        ALL_TIMES,
    );
}

#[test]
fn include_directories_and_txt_only() {
    differential(
        &[
            "-ai",
            "--include=*/",
            "--include=*.txt",
            "--exclude=*",
            "src/",
            "dst/",
        ],
        false,
        ALL_TIMES,
    );
}

#[test]
fn anchored_and_triple_star() {
    differential(
        &[
            "-ai",
            "--exclude=/deep/a/b/c",
            "--include=/deep/***",
            "--include=/modes/",
            "--include=/modes/0*",
            "--exclude=*",
            "src/",
            "dst/",
        ],
        false,
        ALL_TIMES,
    );
}

#[test]
fn filter_rules_with_double_star() {
    differential(
        &[
            "-ai",
            "--filter=- **/f01*",
            "--filter=+ modes/",
            "--filter=- /m*",
            "src/",
            "dst/",
        ],
        false,
        ALL_TIMES,
    );
}

#[test]
fn per_directory_filter_files_with_delete() {
    differential(&["-aiF", "--delete", "src/", "dst/"], true, ALL_TIMES);
}

#[test]
fn excluded_files_are_protected_from_delete() {
    differential(
        &[
            "-ai",
            "--delete",
            "--exclude=extra.txt",
            "--exclude=extra-dir/",
            "src/",
            "dst/",
        ],
        true,
        ALL_TIMES,
    );
}

#[test]
fn delete_excluded() {
    differential(
        &[
            "-ai",
            "--delete-excluded",
            "--exclude=many/",
            "--exclude=*.txt",
            "src/",
            "dst/",
        ],
        true,
        ALL_TIMES,
    );
}

#[test]
fn cvs_exclude() {
    differential(&["-aiC", "src/", "dst/"], false, ALL_TIMES);
}

#[test]
fn delta_statistics_match() {
    differential(
        &["-a", "--no-whole-file", "--stats", "src/", "dst/"],
        true,
        ALL_TIMES,
    );
}

#[test]
fn existing_only() {
    differential(&["-ai", "--existing", "src/", "dst/"], true, ALL_TIMES);
}

#[test]
fn ignore_existing() {
    differential(
        &["-ai", "--ignore-existing", "src/", "dst/"],
        true,
        ALL_TIMES,
    );
}

#[test]
fn update_skips_newer_destination_files() {
    differential(&["-aiu", "src/", "dst/"], true, ALL_TIMES);
}

#[test]
fn size_only() {
    differential(&["-ai", "--size-only", "src/", "dst/"], true, ALL_TIMES);
}

#[test]
fn ignore_times() {
    differential(&["-aiI", "src/", "dst/"], true, ALL_TIMES);
}

#[test]
fn size_limits() {
    differential(
        &["-ai", "--max-size=1k", "--min-size=120", "src/", "dst/"],
        false,
        ALL_TIMES,
    );
}

#[test]
fn remove_source_files() {
    differential(
        &["-ai", "--remove-source-files", "src/", "dst/"],
        true,
        FILE_TIMES,
    );
}

#[test]
fn backups_with_suffix() {
    differential(
        &[
            "-ai",
            "--backup",
            "--suffix=.old",
            "--delete",
            "src/",
            "dst/",
        ],
        true,
        FILE_TIMES,
    );
}

#[test]
fn backup_dir() {
    differential(
        &["-ai", "--backup-dir=../bak", "src/", "dst/"],
        true,
        ALL_TIMES,
    );
}

#[test]
fn chmod_rules() {
    differential(
        &["-ai", "--chmod=D750,F640,Fu+x", "src/", "dst/"],
        true,
        ALL_TIMES,
    );
}

#[test]
fn safe_links() {
    differential(&["-ai", "--safe-links", "src/", "dst/"], false, ALL_TIMES);
}

#[test]
fn copy_links_reports_dangling() {
    differential(&["-aiL", "src/", "dst/"], false, ALL_TIMES);
}

#[test]
fn copy_unsafe_links() {
    differential(
        &["-ai", "--copy-unsafe-links", "src/", "dst/"],
        false,
        ALL_TIMES,
    );
}

#[test]
fn sparse_files() {
    differential(&["-aiS", "src/", "dst/"], false, ALL_TIMES);
}

#[test]
fn sparse_inplace_whole_file_does_not_show_old_data_through_holes() {
    // The destination holds non-zero bytes where the source has a hole: a sparse --inplace
    // copy skips the hole, so the old data must be gone first (stock starts from length 0).
    let ws = Workspace::new(true);
    let mut holey = vec![b'a'; 4096];
    holey.extend(std::iter::repeat_n(0u8, 256 * 1024));
    holey.extend(vec![b'z'; 4096]);
    local_util::write(&ws.path().join("src/holey"), &holey);
    local_util::write(&ws.path().join("dest-template/holey"), &[b'x'; 300 * 1024]);
    // (The new file changed the root's time: settled again, or the copy the workspace
    // restores between runs differs from the source stock saw.)
    local_util::settle_times(&ws.path().join("src"));
    for args in [
        &["-aiS", "--inplace", "-W", "src/", "dst/"][..],
        &["-aiS", "--inplace", "-W", "--preallocate", "src/", "dst/"],
        &["-aiS", "--inplace", "--no-W", "src/", "dst/"],
    ] {
        differential_in(&ws, args, ALL_TIMES);
    }
}

#[test]
fn partial_dir() {
    differential(
        &["-ai", "--partial-dir=.rsync-partial", "src/", "dst/"],
        true,
        ALL_TIMES,
    );
}

#[test]
fn numeric_ids_and_one_file_system() {
    differential(&["-aix", "--numeric-ids", "src/", "dst/"], true, ALL_TIMES);
}

#[test]
fn dirs_without_recursion() {
    differential(&["-lptgoDdi", "src/", "dst/"], false, ALL_TIMES);
}

#[test]
fn no_recursion_skips_directories() {
    differential(
        &["-i", "src/plain.txt", "src/many", "dst/"],
        false,
        NO_TIMES,
    );
}

#[test]
fn single_file_to_new_name() {
    differential(&["-ai", "src/plain.txt", "dst"], false, ALL_TIMES);
}

#[test]
fn local_list_only_header_and_summary_match_stock() {
    // A local listing is a transfer whose receiver only lists: with -v stock prints its
    // header and closing summary (and -vv's words, --stats), -q silences the listing; ours
    // printed the bare listing whatever the verbosity.
    for args in [
        &["-v", "--list-only", "src/", "dst/"][..],
        &["-v", "--list-only", "src/"],
        &["-rv", "--list-only", "src/", "dst/"],
        &["-av", "--no-i-r", "--list-only", "src/deep/", "dst/"],
        &["-avv", "--list-only", "src/deep/"],
        &["-v", "--stats", "--list-only", "src/"],
        &["-q", "--list-only", "src/", "dst/"],
        &["-rq", "src/"],
        &["--list-only", "src/", "dst/"],
    ] {
        differential(args, false, ALL_TIMES);
    }
}

#[test]
fn list_only() {
    differential(&["-a", "--list-only", "src/deep/"], false, ALL_TIMES);
}

#[test]
fn delete_before_verbose() {
    differential(&["-av", "--delete-before", "src/", "dst/"], true, ALL_TIMES);
}

#[test]
fn max_delete() {
    differential(
        &["-ai", "--delete", "--max-delete=2", "src/", "dst/"],
        true,
        FILE_TIMES,
    );
}

#[test]
fn unknown_option_is_a_syntax_error() {
    differential(&["--no-such-option", "src/", "dst/"], false, ALL_TIMES);
}

fn files_from_workspace(from0: bool) -> Workspace {
    let ws = Workspace::new(true);
    let names: &[&[u8]] = &[
        b"plain.txt",
        b"deep/a/b",
        b"many/f0001",
        b"sub/",
        b"/modes/0600",
        b"new\nline",
        b"link-rel",
    ];
    let list: Vec<u8> = if from0 {
        names
            .iter()
            .flat_map(|n| n.iter().copied().chain([0]))
            .collect()
    } else {
        // Names with newlines cannot be listed one per line.
        names
            .iter()
            .filter(|n| !n.contains(&b'\n'))
            .flat_map(|n| n.iter().copied().chain([b'\n']))
            .collect()
    };
    std::fs::write(ws.path().join("list"), list).unwrap();
    ws
}

#[test]
fn files_from_without_recursion() {
    let ws = files_from_workspace(false);
    differential_in(&ws, &["-ai", "--files-from=list", "src/", "dst/"], NEW_ROOT);
}

#[test]
fn files_from_with_recursion_and_nul_separators() {
    let ws = files_from_workspace(true);
    differential_in(
        &ws,
        &["-air", "--from0", "--files-from=list", "src/", "dst/"],
        NEW_ROOT,
    );
}

#[test]
fn files_from_missing_list_is_an_error() {
    differential(
        &["-ai", "--files-from=no-such-list", "src/", "dst/"],
        false,
        ALL_TIMES,
    );
}

#[test]
fn delete_reads_per_directory_rules_from_the_destination() {
    // The receiver protects by its own copy of many/.rsync-filter, not the sender's.
    let ws = Workspace::new(true);
    let template = ws.dest_template.as_ref().unwrap();
    std::fs::write(template.join("many/.rsync-filter"), b"- zzz-extra\n").unwrap();
    std::fs::write(template.join("extra.txt"), b"extra\n").unwrap();
    differential_in(&ws, &["-aiF", "--delete", "src/", "dst/"], FILE_TIMES);
}

#[test]
fn chmod_without_who_is_masked_by_the_umask() {
    // Found by rsync's chmod-option test: `D+w` adds only the bits the umask allows.
    differential(
        &["-ai", "--chmod=ug-s,a+rX,D+w,+t", "src/", "dst/"],
        true,
        ALL_TIMES,
    );
}

#[test]
fn chmod_invalid_rule_is_a_syntax_error() {
    differential(&["-ai", "--chmod=q+r", "src/", "dst/"], false, ALL_TIMES);
}

#[test]
fn files_from_names_with_dot_markers_and_comments() {
    // Found by rsync's files-from and files-from-depth tests: a listed `a/./b` keeps only
    // `b` as its name, `dir/` lists the directory's contents, and `#`/`;` lines are comments.
    let ws = Workspace::new(false);
    std::fs::write(
        ws.path().join("list"),
        b"src/./deep/a\n#src/plain.txt\n;src/many\nsrc/./sub/\n",
    )
    .unwrap();
    differential_in(&ws, &["-ai", "--files-from=list", ".", "dst/"], NEW_ROOT);
}

#[test]
fn relative_source_with_leading_dot_slash_sends_the_dot_directory() {
    // Found by rsync's relative test: `-R ./NAME` also sends `.` (the destination root).
    differential(&["-aiR", "./src/deep/a", "dst/"], false, NEW_ROOT);
}

#[test]
fn relative_backup_dir_is_inside_the_destination() {
    // Found by rsync's backup-dir-relative test.
    differential(
        &["-ai", "--backup-dir=bak", "--delete", "src/", "dst/"],
        true,
        // The backup directories are made during the run: their times cannot match.
        FILE_TIMES,
    );
}

#[test]
fn relative_temp_dir_is_relative_to_the_destination() {
    // Found by rsync's temp-dir handling: the receiver works from the destination directory.
    let ws = Workspace::new(true);
    let template = ws.dest_template.as_ref().unwrap();
    std::fs::create_dir(template.join("tdir")).unwrap();
    differential_in(&ws, &["-ai", "--temp-dir=tdir", "src/", "dst/"], FILE_TIMES);
}

#[test]
fn temp_dir_on_another_filesystem_is_copied_into_place() {
    // Found by rsync's chmod-temp-dir test: rename(2) fails with EXDEV, rsync copies instead.
    let shm = std::path::Path::new("/dev/shm");
    assert!(shm.is_dir(), "this test needs /dev/shm");
    differential(
        &["-ai", "--temp-dir=/dev/shm", "src/", "dst/"],
        true,
        ALL_TIMES,
    );
}

#[test]
fn safe_links_rejects_inner_dot_dot() {
    // Found by rsync's safe-links test: `a/a/a/../../../x` never climbs out, yet rsync
    // calls any `..` after the leading run (or a trailing `/..`) unsafe.
    let ws = Workspace::new(false);
    let src = ws.path().join("src");
    let links: &[(&str, &str)] = &[
        ("a/b/../../plain.txt", "sub/inner-dotdot"),
        ("deep/..", "ends-dotdot"),
        ("../plain.txt", "sub/leading-dotdot"),
        ("..//../src/plain.txt", "deep/a/leading-run"),
    ];
    for (target, name) in links {
        std::os::unix::fs::symlink(target, src.join(name)).unwrap();
    }
    local_util::settle_times(&src);
    differential_in(&ws, &["-ai", "--safe-links", "src/", "dst/"], ALL_TIMES);
}

#[test]
fn replaced_items_without_times_report_big_t() {
    // Found by rsync's itemize and devices tests: a symlink, device or hard link replaced
    // without -t shows `T` (its time becomes the transfer time).
    differential(&["-rlpHDi", "src/", "dst/"], true, NO_TIMES);
}

#[test]
fn progress_lists_names_and_completed_files() {
    // Found by rsync's output-options test: --progress printed nothing.
    differential(&["-a", "--progress", "src/", "dst/"], true, ALL_TIMES);
}

#[test]
fn progress_with_itemize_and_human_sizes() {
    differential(&["-aih", "--progress", "src/", "dst/"], false, ALL_TIMES);
}

fn second_source(ws: &Workspace) {
    let two = ws.path().join("src2");
    std::fs::create_dir_all(two.join("sub/inner")).unwrap();
    std::fs::create_dir_all(two.join("plain.txt.d")).unwrap();
    std::fs::write(two.join("plain.txt"), b"second source loses\n").unwrap();
    std::fs::write(two.join("only-in-two"), b"two\n").unwrap();
    std::fs::write(two.join("sub/inner/x"), b"x\n").unwrap();
    std::fs::write(two.join("sub/extra"), b"extra\n").unwrap();
    local_util::settle_times(&two);
}

#[test]
fn several_source_directories_merge() {
    // Found by rsync's merge test: `a/ b/ dest/` merges the trees, the first source
    // winning. (Where a directory and a file share a name the directory wins, but the item
    // order then differs from stock's, so that case is not pinned here.)
    let ws = Workspace::new(false);
    second_source(&ws);
    differential_in(&ws, &["-ai", "src/", "src2/", "dst/"], NEW_ROOT);
}

#[test]
fn several_source_directories_merge_with_delete() {
    let ws = Workspace::new(true);
    second_source(&ws);
    differential_in(&ws, &["-ai", "--delete", "src2/", "src/", "dst/"], NEW_ROOT);
}

#[test]
fn backup_delete_removes_files_that_already_are_backups() {
    // Found by rsync's delete-deep test: deleting `NAME~` with -b unlinks it (no `NAME~~`).
    let ws = Workspace::new(true);
    let template = ws.dest_template.as_ref().unwrap();
    std::fs::write(template.join("many/stale~"), b"already a backup\n").unwrap();
    std::fs::write(template.join("many/stale"), b"orphan\n").unwrap();
    differential_in(
        &ws,
        &["-ai", "-b", "--delete", "--filter=R *~", "src/", "dst/"],
        FILE_TIMES,
    );
}

#[test]
fn info_backup_reports_each_backup() {
    // Found by rsync's backup test: --info=backup names every backup made.
    differential(
        &["-ai", "--info=backup", "-b", "--delete", "src/", "dst/"],
        true,
        FILE_TIMES,
    );
}

#[test]
fn info_backup_with_backup_dir() {
    differential(
        &[
            "-ai",
            "--info=backup",
            "--backup-dir=bak",
            "--delete",
            "src/",
            "dst/",
        ],
        true,
        FILE_TIMES,
    );
}

#[test]
fn eight_bit_output_leaves_high_bytes_unescaped() {
    // Found by rsync's output-options test: -8 prints `hi\371name` raw, not `hi\#371name`.
    use std::os::unix::ffi::OsStrExt;
    let ws = Workspace::new(false);
    let src = ws.path().join("src");
    let name = std::ffi::OsStr::from_bytes(b"hi\xf9name");
    std::fs::write(src.join(name), b"latin-1 name\n").unwrap();
    local_util::settle_times(&src);
    differential_in(&ws, &["-ai8", "src/", "dst/"], ALL_TIMES);
    differential_in(&ws, &["-ai", "src/", "dst/"], ALL_TIMES);
}

#[test]
fn no_implied_dirs_creates_missing_parents_quietly() {
    // Found by rsync's relative-implied test: without implied dirs, a listed file's missing
    // parents are still made (with default attributes), not reported as a mkstemp failure.
    differential(
        &[
            "-aiR",
            "--no-implied-dirs",
            "src/deep/a/b/c",
            "src/plain.txt",
            "dst/",
        ],
        false,
        FILE_TIMES,
    );
}

#[test]
fn no_implied_dirs_makes_parents_through_a_symlinked_destination_dir() {
    // `-R --no-implied-dirs` keeps a destination symlink standing for an implied parent and
    // writes through it (stock's make_path); ours refused the symlink and failed the file.
    let mut ws = Workspace::new(false);
    let t = ws.path().join("dest-template");
    std::fs::create_dir_all(t.join("src/deep/real")).unwrap();
    std::os::unix::fs::symlink("real", t.join("src/deep/a")).unwrap();
    // One leading out of the destination is not followed.
    std::fs::create_dir_all(ws.path().join("outside")).unwrap();
    std::os::unix::fs::symlink("../../outside", t.join("src/empty2")).unwrap();
    ws.dest_template = Some(t);
    differential_in(
        &ws,
        &[
            "-aiR",
            "--no-implied-dirs",
            "src/deep/a/b/c/d/e",
            "src/empty2/inner",
            "dst/",
        ],
        FILE_TIMES,
    );
}

#[test]
fn prune_empty_dirs() {
    // Found by rsync's prune-empty-dirs and exclude tests: -m was accepted and ignored.
    differential(&["-aim", "src/", "dst/"], false, ALL_TIMES);
}

#[test]
fn prune_empty_dirs_after_excludes() {
    // (With --delete, stock's messages about pruned directories holding excluded files are
    // not matched yet.)
    differential(
        &["-aim", "--exclude=*.txt", "--exclude=f0*", "src/", "dst/"],
        true,
        ALL_TIMES,
    );
}

#[test]
fn executability_on_existing_files() {
    // Found by rsync's executability test: -E grants execute to whoever may read an existing
    // file when the source is executable, and removes it when the source is not.
    let ws = Workspace::new(true);
    let template = ws.dest_template.as_ref().unwrap();
    for (name, mode) in [("plain.txt", 0o640), ("many/f0001", 0o755)] {
        local_util::chmod(&template.join(name), mode);
    }
    local_util::chmod(&ws.path().join("src/plain.txt"), 0o750);
    local_util::settle_times(&ws.path().join("src"));
    differential_in(&ws, &["-rtiE", "src/", "dst/"], ALL_TIMES);
}

#[test]
fn new_directories_keep_an_inherited_setgid_bit_without_perms() {
    // Found by rsync's dir-sgid test.
    let ws = Workspace::new(true);
    let template = ws.dest_template.as_ref().unwrap();
    local_util::chmod(template, 0o2755);
    differential_in(&ws, &["-rti", "src/", "dst/"], NEW_ROOT);
}

#[test]
fn safe_links_drops_unsafe_destination_symlinks_instead_of_backing_them_up() {
    // Found by rsync's ki72-safe-links-backup test.
    let ws = Workspace::new(true);
    let template = ws.dest_template.as_ref().unwrap();
    std::fs::remove_file(template.join("plain.txt")).unwrap();
    std::os::unix::fs::symlink("../../sensitive", template.join("plain.txt")).unwrap();
    differential_in(
        &ws,
        &[
            "-ai",
            "--safe-links",
            "--backup",
            "--suffix=.bak",
            "src/",
            "dst/",
        ],
        FILE_TIMES,
    );
    differential_in(
        &ws,
        &["-ai", "--backup", "--suffix=.bak", "src/", "dst/"],
        FILE_TIMES,
    );
}

#[test]
fn relative_delete_spares_files_listed_by_another_source() {
    // Found by rsync's relative test: `-R --del DIR OTHER/./DIR/FILE` must not delete FILE.
    let ws = Workspace::new(true);
    let extra = ws.path().join("extra/src/many");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(extra.join("extra.added"), b"from another source\n").unwrap();
    // Stock generates a top-level file before the contents of the directories listed with
    // it; our walk descends first. Only that order differs, so compare the rest.
    let args = [
        "-aiR",
        "--del",
        "src/many",
        "extra/./src/many/extra.added",
        "dst/",
    ];
    let stock = ws.run(true, &args, FILE_TIMES);
    let ours = ws.run(false, &args, FILE_TIMES);
    assert!(
        !stock.stdout.contains("deleting"),
        "stock: {}",
        stock.stdout
    );
    assert!(!ours.stdout.contains("deleting"), "ours: {}", ours.stdout);
    let sorted = |s: &str| {
        let mut lines: Vec<String> = local_util::normalize(s).lines().map(String::from).collect();
        lines.sort();
        lines
    };
    assert_eq!(sorted(&stock.stdout), sorted(&ours.stdout));
    assert_eq!(stock.stderr, ours.stderr);
    assert_eq!(stock.code, ours.code);
    local_util::assert_same_tree("rsync -aiR --del", &stock.tree, &ours.tree);
}

#[test]
fn backup_dir_on_another_filesystem() {
    // Found by rsync's backup-crossdev-copy test: backups are copied (or recreated, for
    // special files: reading a FIFO would block) when rename(2) fails with EXDEV.
    let ws = Workspace::new(true);
    let shm = std::path::Path::new("/dev/shm");
    assert!(shm.is_dir(), "this test needs /dev/shm");
    let unique = ws.path().file_name().unwrap().to_str().unwrap().to_owned();
    let bak = shm.join(format!("{unique}-bak"));
    let arg = format!("--backup-dir={}", bak.display());
    differential_in(&ws, &["-ai", &arg, "--delete", "src/", "dst/"], FILE_TIMES);
    let kept = std::fs::read_dir(&bak).map(|d| d.count()).unwrap_or(0);
    std::fs::remove_dir_all(&bak).unwrap();
    assert!(kept > 0, "no backups were made in {}", bak.display());
}

#[test]
fn list_only_recursive_with_filters() {
    differential(
        &[
            "-r",
            "--list-only",
            "--exclude=many/",
            "--exclude=*.bin",
            "src/",
        ],
        false,
        ALL_TIMES,
    );
}

/// A workspace with two basis directories beside `src/`: `ref1` an altered copy of the source
/// (one file changed, one mode changed, some files missing, a symlink retargeted) and `ref2`
/// a partial copy.
fn alt_dest_workspace(with_old_dest: bool) -> Workspace {
    let ws = Workspace::new(with_old_dest);
    let w = ws.path();
    let cp = |from: &str, to: &str| {
        let st = std::process::Command::new("cp")
            .args(["-a", from, to])
            .current_dir(w)
            .status()
            .unwrap();
        assert!(st.success());
    };
    cp("src", "ref1");
    std::fs::write(w.join("ref1/plain.txt"), b"changed in ref1\n").unwrap();
    local_util::chmod(&w.join("ref1/modes/0600"), 0o644);
    std::fs::remove_dir_all(w.join("ref1/many")).unwrap();
    std::fs::remove_file(w.join("ref1/link-rel")).unwrap();
    std::os::unix::fs::symlink("elsewhere", w.join("ref1/link-rel")).unwrap();
    std::fs::create_dir_all(w.join("ref2")).unwrap();
    cp("src/many", "ref2/many");
    cp("src/plain.txt", "ref2/plain.txt");
    cp("src/link-rel", "ref2/link-rel");
    ws
}

#[test]
fn link_dest_itemized() {
    let ws = alt_dest_workspace(false);
    for flags in ["-ai", "-aii", "-av", "-aiH"] {
        differential_in(
            &ws,
            &[
                flags,
                "--link-dest=../ref1",
                "--link-dest=../ref2",
                "src/",
                "dst/",
            ],
            NEW_ROOT,
        );
    }
}

#[test]
fn copy_dest_itemized() {
    let ws = alt_dest_workspace(false);
    for flags in ["-ai", "-aii", "-av", "-rlti", "-aiH"] {
        differential_in(
            &ws,
            &[
                flags,
                "--copy-dest=../ref1",
                "--copy-dest=../ref2",
                "src/",
                "dst/",
            ],
            NEW_ROOT,
        );
    }
}

#[test]
fn compare_dest_itemized() {
    let ws = alt_dest_workspace(false);
    for flags in ["-ai", "-aii", "-av", "-ain", "-aiiH"] {
        differential_in(
            &ws,
            &[
                flags,
                "--compare-dest=../ref1",
                "--compare-dest=../ref2",
                "src/",
                "dst/",
            ],
            NEW_ROOT,
        );
    }
}

#[test]
fn alt_dest_over_an_old_destination() {
    // --link-dest and --compare-dest replace an existing file by an exact basis match.
    let ws = alt_dest_workspace(true);
    for opt in ["--link-dest", "--compare-dest", "--copy-dest"] {
        let abs = format!("{opt}={}", ws.path().join("ref1").display());
        differential_in(&ws, &["-aii", &abs, "src/", "dst/"], FILE_TIMES);
    }
}

#[test]
fn alt_dest_argument_errors_and_warnings() {
    let ws = alt_dest_workspace(false);
    differential_in(
        &ws,
        &[
            "-ai",
            "--link-dest=../ref1",
            "--copy-dest=../ref2",
            "src/",
            "dst/",
        ],
        NEW_ROOT,
    );
    let many: Vec<String> = (0..21).map(|i| format!("--compare-dest=r{i}")).collect();
    let mut args: Vec<&str> = many.iter().map(String::as_str).collect();
    args.extend(["-a", "src/", "dst/"]);
    differential_in(&ws, &args, NEW_ROOT);
    differential_in(
        &ws,
        &[
            "-ai",
            "--link-dest=missing",
            "--link-dest=../src/plain.txt",
            "src/",
            "dst/",
        ],
        NEW_ROOT,
    );
}

#[test]
fn max_alloc_and_stop_options_are_checked_as_stock() {
    for args in [
        &["-a", "--max-alloc=1k", "src/", "dst/"][..],
        &["-a", "--max-alloc=1x", "src/", "dst/"],
        &["-ai", "--max-alloc=4M", "src/", "dst/"],
        &["-a", "--stop-at=2000-01-01T00:00", "src/", "dst/"],
        &["-a", "--stop-at=xx", "src/", "dst/"],
        &["-a", "--stop-after=0", "src/", "dst/"],
        &["-ai", "--stop-after=60", "src/", "dst/"],
        &["-ai", "--time-limit=5", "src/", "dst/"],
        &["-ai", "--stop-at=2099-12-31T23:59", "src/", "dst/"],
    ] {
        differential(args, false, ALL_TIMES);
    }
}

#[test]
fn mkpath_creates_the_missing_destination_path() {
    let ws = Workspace::new(false);
    for args in [
        &["-ai", "--mkpath", "src/plain.txt", "dst/a/b/new"][..],
        &["-ai", "--mkpath", "src/plain.txt", "dst/x/y/"],
        &["-ain", "--mkpath", "src/plain.txt", "dst/q/r/new"],
        &["-ai", "--mkpath", "src/deep/", "dst/m/n"],
        &["-av", "--mkpath", "src/deep/", "dst/o/p/"],
        &["-ai", "src/plain.txt", "dst/no/mkpath"],
    ] {
        differential_in(&ws, args, FILE_TIMES);
    }
}

#[test]
fn confine_root_bounds_merge_files_through_a_symlinked_source() {
    // A merge file named by a per-directory rule file must resolve inside --confine-root,
    // even when the source argument reaches the root through a symlink.
    let ws = Workspace::new(false);
    let src = ws.path().join("src");
    std::fs::remove_dir_all(&src).unwrap();
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("plain"), "x").unwrap();
    std::fs::write(src.join("sub/.rsync-filter"), "- sub-x\n").unwrap();
    std::fs::write(src.join("sub/sub-x"), "x").unwrap();
    std::fs::write(ws.path().join("secret"), "secret-word\n").unwrap();
    std::fs::write(src.join("secret-word"), "x").unwrap();
    std::fs::write(src.join("intree-list"), "secret-word\n").unwrap();
    std::os::unix::fs::symlink(".", src.join("self-alias")).unwrap();
    std::os::unix::fs::symlink("../secret", src.join("outside-link")).unwrap();
    let confine = format!("--confine-root={}", src.display());
    let args = [
        "-rti",
        &confine,
        "--filter=:s .rsync-filter",
        "src/self-alias/",
        "dst/",
    ];
    // Outside the root: stock fails the transfer (exit 11); we must not read it either, so
    // either the run fails or the name it lists is still transferred.
    std::fs::write(src.join(".rsync-filter"), "merge,- outside-link\n").unwrap();
    let stock = ws.run(true, &args, FILE_TIMES);
    assert_ne!(
        stock.code, 0,
        "stock read the outside merge file: {}",
        stock.stderr
    );
    let ours = ws.run(false, &args, FILE_TIMES);
    assert!(
        ours.code != 0 || ours.tree.keys().any(|k| k.ends_with(b"secret-word")),
        "the merge file outside --confine-root was read: {}",
        ours.stderr
    );
    // Inside the root: read and obeyed, as stock does.
    // (The workspace restores the source from its pristine copy after each run.)
    // Both copies get the same mtime, or the restored source differs from the one stock saw.
    let stamp = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    for dir in [&src, &ws.path().join("src.pristine")] {
        let path = dir.join(".rsync-filter");
        std::fs::write(&path, "merge,- intree-list\n").unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(stamp).unwrap();
    }
    differential_in(&ws, &args, FILE_TIMES);
}

#[test]
fn append_trusts_the_existing_prefix_and_append_verify_repairs_it() {
    let ws = Workspace::new(false);
    let src = ws.path().join("src");
    std::fs::remove_dir_all(&src).unwrap();
    std::fs::create_dir_all(&src).unwrap();
    let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(src.join("grown"), &data).unwrap();
    std::fs::write(src.join("same-size"), &data[..5000]).unwrap();
    // Sources from the past: a retained (failed) file's write time then always differs from
    // theirs in whole seconds, for stock as for us, whatever second the runs fall in.
    for f in ["grown", "same-size"] {
        std::fs::File::options()
            .write(true)
            .open(src.join(f))
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000))
            .unwrap();
    }
    // The destination: a corrupted prefix, and a same-size file with other content.
    let tmpl = ws.path().join("dest-tmpl");
    std::fs::create_dir_all(&tmpl).unwrap();
    let mut prefix = data[..10_000].to_vec();
    prefix[..64].fill(0);
    std::fs::write(tmpl.join("grown"), &prefix).unwrap();
    std::fs::write(tmpl.join("same-size"), vec![b'z'; 5000]).unwrap();
    let ws = Workspace {
        dest_template: Some(tmpl),
        ..ws
    };
    for mode in ["--append", "--append-verify"] {
        differential_in(&ws, &["-rti", mode, "src/", "dst/"], FILE_TIMES);
    }
    let run = ws.run(false, &["-r", "--append", "src/", "dst/"], NO_TIMES);
    let got = std::fs::read(ws.path().join("dst/grown")).unwrap();
    assert_eq!(run.code, 0);
    assert_eq!(
        &got[..64],
        &[0u8; 64][..],
        "plain --append rewrote the prefix"
    );
    assert_eq!(&got[10_000..], &data[10_000..]);
}

#[test]
fn delay_updates_stages_and_cleans_up() {
    let ws = Workspace::new(true);
    let template = ws.dest_template.as_ref().unwrap();
    // A stale staging directory from an interrupted run is overwritten and removed.
    std::fs::create_dir_all(template.join("sub/.~tmp~")).unwrap();
    std::fs::write(template.join("sub/.~tmp~/g2a"), b"stale staged junk\n").unwrap();
    differential_in(&ws, &["-ai", "--delay-updates", "src/", "dst/"], FILE_TIMES);
    differential(
        &["-aiH", "--delay-updates", "src/", "dst/"],
        false,
        NEW_ROOT,
    );
}

#[test]
fn fuzzy_basis_is_chosen_and_reported_as_stock() {
    let ws = Workspace::new(true);
    let t = ws.dest_template.as_ref().unwrap();
    // plain.txt is missing; plain-v1.txt and an unrelated file are candidates.
    let data = std::fs::read(ws.path().join("src/plain.txt")).unwrap();
    std::fs::rename(t.join("plain.txt"), t.join("plain-v1.txt")).unwrap();
    std::fs::write(t.join("plain-v1.txt"), &data[..data.len() / 2]).unwrap();
    std::fs::remove_file(t.join("deep/a/b/c/d/e/f/g/h/bottom.txt")).unwrap();
    std::fs::write(t.join("deep/a/b/c/d/e/f/g/h/bottom.txt.old"), b"deep").unwrap();
    for flags in ["-ai", "-aiy"] {
        differential_in(
            &ws,
            &[
                flags,
                "--fuzzy",
                "--no-whole-file",
                "--debug=FUZZY",
                "src/",
                "dst/",
            ],
            FILE_TIMES,
        );
    }
}

#[test]
fn keep_dirlinks_follows_a_destination_symlink_to_a_directory() {
    let ws = Workspace::new(true);
    let t = ws.dest_template.as_ref().unwrap();
    std::fs::rename(t.join("deep/a"), t.join("deep/real-a")).unwrap();
    std::os::unix::fs::symlink("real-a", t.join("deep/a")).unwrap();
    // A symlink where the source has a file is replaced even with -K.
    std::fs::remove_file(t.join("plain.txt")).unwrap();
    std::os::unix::fs::symlink("deep", t.join("plain.txt")).unwrap();
    for flags in ["-aiK", "-ai"] {
        differential_in(&ws, &[flags, "src/", "dst/"], FILE_TIMES);
    }
}

#[test]
fn info_and_debug_help_lists_match_stock() {
    for args in [
        &["--info=help"][..],
        &["--debug=help"],
        &["--info=name,HELP", "src/", "dst/"],
    ] {
        differential(args, false, NO_TIMES);
    }
}

#[test]
fn info_skip_names_newer_destination_files() {
    // Found by rsync's exclude test: --info=skip (or -vv) says which files were newer. Stock
    // prints these from its generator, item lines from another process: only compare sets.
    let ws = Workspace::new(true);
    let args = ["-aiu", "--info=skip", "src/", "dst/"];
    let stock = ws.run(true, &args, ALL_TIMES);
    let ours = ws.run(false, &args, ALL_TIMES);
    let sorted = |out: &str| {
        let mut v: Vec<String> = normalize(out).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert!(stock.stdout.contains(" is newer"), "{}", stock.stdout);
    assert_eq!(sorted(&stock.stdout), sorted(&ours.stdout));
    assert_eq!(stock.code, ours.code);
    local_util::assert_same_tree("--info=skip", &stock.tree, &ours.tree);
}

#[test]
fn backup_replaces_a_directory_in_the_way_of_a_deleted_file() {
    // Found by rsync's backup test: an empty directory where a deleted file's backup goes is
    // replaced by the backup, and the file leaves the destination.
    let ws = Workspace::new(true);
    let template = ws.dest_template.as_ref().unwrap();
    std::fs::create_dir_all(template.join("bak/many/zzz-extra")).unwrap();
    differential_in(
        &ws,
        &[
            "-ai",
            "--info=backup",
            "--delete-delay",
            "--backup-dir=bak",
            "--filter=P /bak/",
            "src/",
            "dst/",
        ],
        FILE_TIMES,
    );
}

fn log_lines(path: &std::path::Path) -> Vec<String> {
    let data = std::fs::read(path).expect("no log file written");
    let _ = std::fs::remove_file(path);
    String::from_utf8_lossy(&data)
        .lines()
        .map(|l| {
            let rest = l.splitn(4, ' ').nth(3).unwrap_or("").to_string();
            assert!(
                l.split(' ').nth(2).is_some_and(|p| p.starts_with('[')),
                "{l}"
            );
            rest
        })
        .filter(|l| !l.starts_with("sent "))
        .collect()
}

#[test]
fn log_file_lines_and_escapes_match_stock() {
    // Found by rsync's log-control-chars test: names in the log are escaped (`\#033`).
    let ws = Workspace::new(true);
    std::fs::write(ws.path().join("src/c0_\x1b_esc"), b"x").unwrap();
    std::fs::write(
        ws.path()
            .join(std::ffi::OsStr::from_bytes(b"src/c1_\x9b_csi")),
        b"x",
    )
    .unwrap();
    let log = ws.path().join("rsync.log");
    for args in [
        ["-av", "--delete", "--log-file=rsync.log", "src/", "dst/"],
        ["-ai", "--delete", "--log-file=rsync.log", "src/", "dst/"],
    ] {
        ws.run(true, &args, FILE_TIMES);
        let stock = log_lines(&log);
        ws.run(false, &args, FILE_TIMES);
        let ours = log_lines(&log);
        // Stock's generator logs deletions while its receiver logs items: only each kind's own
        // order is fixed.
        let split = |v: &[String]| -> (Vec<String>, Vec<String>) {
            v.iter().cloned().partition(|l| l.starts_with("*deleting"))
        };
        assert_eq!(split(&stock), split(&ours));
        assert!(ours.iter().any(|l| l.contains("c0_\\#033_esc")), "{ours:?}");
    }
}

#[test]
fn double_verbose_names_uptodate_files() {
    // Found by rsync's itemize test: -vv says `NAME is uptodate` for files that needed
    // nothing and leaves unchanged directories out.
    let ws = Workspace::new(false);
    let args = ["-rlp", "src/", "dst/"];
    ws.run(true, &args, FILE_TIMES);
    let keep = |out: &str| -> Vec<String> {
        normalize(out)
            .lines()
            .filter(|l| {
                !l.starts_with("delta-transmission ")
                    && !l.starts_with("total: matches=")
                    && !l.starts_with("[sender] expand file_list")
            })
            .map(str::to_string)
            .collect()
    };
    // A second run over a copy made by the first: the destination already matches.
    let w = ws.path();
    let prepare = || {
        let _ = std::fs::remove_dir_all(w.join("dst"));
        let st = std::process::Command::new("cp")
            .args(["-a", "src", "dst"])
            .current_dir(w)
            .status()
            .unwrap();
        assert!(st.success());
    };
    let run = |bin: &str, rsync_arg: bool| {
        let mut c = std::process::Command::new(bin);
        if rsync_arg {
            c.arg("rsync");
        }
        c.args(["-vvrlp", "src/", "dst/"])
            .current_dir(w)
            .output()
            .unwrap()
    };
    prepare();
    let stock = run(local_util::stock_rsync(), false);
    prepare();
    let ours = run(local_util::RTSYNC, true);
    let (a, b) = (
        keep(&String::from_utf8_lossy(&stock.stdout)),
        keep(&String::from_utf8_lossy(&ours.stdout)),
    );
    assert!(a.iter().any(|l| l.ends_with(" is uptodate")), "{a:?}");
    assert_eq!(a, b);
}

#[test]
fn inplace_backup_copies_the_old_file_aside() {
    // Found by rsync's backup test: --inplace --backup keeps a copy of what it overwrites.
    for extra in [&["--backup-dir=bak"][..], &["--suffix=.old"][..]] {
        let mut args = vec!["-ai", "--info=backup", "--inplace", "--backup"];
        args.extend_from_slice(extra);
        args.extend(["src/", "dst/"]);
        differential(&args, true, FILE_TIMES);
    }
}

#[test]
fn merge_dash_reads_rules_from_stdin() {
    // Found by rsync's exclude test: `merge -` (and `--exclude-from=-`) read standard input.
    let ws = Workspace::new(false);
    let w = ws.path();
    for (rule, rules) in [
        ("--filter=merge -", &b"- many/\n- *.bin\n"[..]),
        ("--exclude-from=-", &b"many/\n*.bin\n"[..]),
    ] {
        let run = |bin: &str, rsync_arg: bool| {
            let _ = std::fs::remove_dir_all(w.join("dst"));
            let mut c = std::process::Command::new(bin);
            if rsync_arg {
                c.arg("rsync");
            }
            let mut child = c
                .args(["-ai", rule, "src/", "dst/"])
                .current_dir(w)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child.stdin.take().unwrap().write_all(rules).unwrap();
            let out = child.wait_with_output().unwrap();
            let tree = local_util::snapshot(&w.join("dst"), FILE_TIMES);
            (
                out.status.code(),
                normalize(&String::from_utf8_lossy(&out.stdout)),
                tree,
            )
        };
        let stock = run(local_util::stock_rsync(), false);
        let ours = run(local_util::RTSYNC, true);
        assert!(!stock.1.contains("big.bin"), "{}", stock.1);
        assert_eq!(stock.0, ours.0, "{rule}");
        assert_eq!(stock.1, ours.1, "{rule}");
        local_util::assert_same_tree(rule, &stock.2, &ours.2);
    }
}

#[test]
fn relative_path_through_a_symlinked_element_is_followed_like_stock() {
    // The operator's own path may pass through a symlink: with -R the implied directory is
    // made a real directory and the file lands beneath it (stock follows it; only what the
    // scan finds below is held to the beneath-the-root rule).
    let ws = Workspace::new(false);
    let src = ws.path().join("src");
    std::fs::create_dir_all(src.join("realdir")).unwrap();
    std::fs::write(src.join("realdir/file"), b"F\n").unwrap();
    std::os::unix::fs::symlink("realdir", src.join("link")).unwrap();
    differential_in(&ws, &["-aiR", "src/./link/file", "dst/"], FILE_TIMES);
}

#[test]
fn self_including_merge_file_hits_the_depth_limit_like_stock() {
    // A per-directory merge file that merges itself: stock stops at its merge depth limit
    // with a file-I/O error naming the limit (we reported "opendir failed: Success").
    let ws = Workspace::new(false);
    std::fs::write(ws.path().join("src/.merge"), ". .merge\n").unwrap();
    let stock = ws.run(true, &["-a", "--filter=: .merge", "src/", "dst/"], NO_TIMES);
    let ours = ws.run(
        false,
        &["-a", "--filter=: .merge", "src/", "dst/"],
        NO_TIMES,
    );
    assert_eq!(ours.code, stock.code, "{}", ours.stderr);
    for run in [&stock, &ours] {
        assert!(
            run.stderr
                .contains("merge-file include depth limit (32) exceeded"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn basis_dir_through_another_users_symlink_is_ignored_like_stock() {
    // An operator path (--compare-dest & co.) does not follow a symlink owned by another
    // user: the basis directory is left out, so the file is copied, not matched.
    for opt in ["--compare-dest", "--copy-dest", "--link-dest"] {
        let ws = Workspace::new(false);
        // A small source of its own (matching files in the basis would be skipped if the
        // basis were used).
        let src = ws.path().join("src");
        std::fs::remove_dir_all(&src).unwrap();
        std::fs::create_dir_all(src.join("d")).unwrap();
        for (f, data) in [("f0", "zero\n"), ("f1", "one\n"), ("d/f2", "two\n")] {
            std::fs::write(src.join(f), data).unwrap();
            local_util::set_mtime(&src.join(f), 1_500_000_000, 0);
        }
        local_util::set_mtime(&src.join("d"), 1_500_000_000, 0);
        local_util::set_mtime(&src, 1_500_000_000, 0);
        let outside = ws.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let out = std::process::Command::new("cp")
            .args(["-a", "src/.", outside.to_str().unwrap()])
            .current_dir(ws.path())
            .status()
            .unwrap();
        assert!(out.success());
        let link = ws.path().join("link");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let c = std::ffi::CString::new(link.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::lchown(c.as_ptr(), 4321, 4321) }, 0);
        let arg = format!("{opt}={}", link.display());
        differential_in(&ws, &["-ai", &arg, "src/", "dst/"], NEW_ROOT);
    }
}

/// `-vv` without `-i` names what a basis directory already had unchanged `NAME is uptodate`
/// (files, symlinks and directories: linked, copied or left to the basis), a `--link-dest`
/// hard-link follower too; `-ivv` itemizes the follower `hf`; a dry run links followers to
/// the leader found in the basis, as stock does.
#[test]
fn alt_dest_uptodate_names_at_vv() {
    let ws = Workspace::new(false);
    let src = ws.path().join("src");
    std::fs::remove_dir_all(&src).unwrap();
    std::fs::create_dir_all(src.join("d")).unwrap();
    for (f, data) in [("f0", "zero\n"), ("d/f1", "one\n"), ("d/f2", "two\n")] {
        std::fs::write(src.join(f), data).unwrap();
        local_util::set_mtime(&src.join(f), 1_500_000_000, 0);
    }
    std::fs::hard_link(src.join("d/f1"), src.join("d/f3")).unwrap();
    std::os::unix::fs::symlink("f0", src.join("sym")).unwrap();
    local_util::set_mtime(&src.join("sym"), 1_500_000_000, 0);
    local_util::set_mtime(&src.join("d"), 1_500_000_000, 0);
    local_util::set_mtime(&src, 1_500_000_000, 0);
    let st = std::process::Command::new("cp")
        .args(["-a", "src", "ref"])
        .current_dir(ws.path())
        .status()
        .unwrap();
    assert!(st.success());
    for opt in [
        "--copy-dest=../ref",
        "--link-dest=../ref",
        "--compare-dest=../ref",
    ] {
        for flags in ["-rlptH", "-vvrlptH", "-ivvrlptH", "-vvrlpt"] {
            differential_in(&ws, &[flags, opt, "src/", "dst/"], NEW_ROOT);
        }
    }
    differential_in(
        &ws,
        &["-inrlptH", "--link-dest=../ref", "src/", "dst/"],
        NEW_ROOT,
    );
}

/// What an interrupted copy leaves: stock's exit code, stderr, and the destination's names.
fn interrupted_copy(
    stock: bool,
    w: &std::path::Path,
    extra: &[&str],
) -> (i32, String, Vec<String>) {
    use std::io::Read;
    let dst = w.join("dst");
    let _ = std::fs::remove_dir_all(&dst);
    let mut cmd = if stock {
        std::process::Command::new(local_util::stock_rsync())
    } else {
        let mut c = std::process::Command::new(local_util::RTSYNC);
        c.arg("rsync");
        c
    };
    // --bwlimit keeps the copy going long enough to be caught with its temp file written.
    let mut child = cmd
        .args(["-a", "--bwlimit=300"])
        .args(extra)
        .args(["src/", "dst/"])
        .current_dir(w)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut caught = false;
    for _ in 0..3000 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        let temp = std::fs::read_dir(&dst)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                e.file_name().as_bytes().starts_with(b".big.")
                    && e.metadata().is_ok_and(|m| m.len() > 0)
            });
        if temp {
            caught = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        caught,
        "stock={stock}: the copy ended before it could be interrupted"
    );
    let mut names: Vec<String> = std::fs::read_dir(&dst)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    (status.code().unwrap_or(-1), err, names)
}

/// `--bwlimit` holds a local copy to the rate, and an interrupted copy (SIGTERM) removes its
/// temp file — or with `--partial` keeps what arrived under the file's name — then exits 20
/// with stock's message.
#[test]
fn interrupted_copy_cleans_up_or_keeps_the_partial() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    std::fs::create_dir(w.join("src")).unwrap();
    let data = local_util::noise(4 << 20, 7);
    std::fs::write(w.join("src/big"), &data).unwrap();
    for extra in [&[][..], &["--partial"][..]] {
        let stock = interrupted_copy(true, w, extra);
        let ours = interrupted_copy(false, w, extra);
        assert_eq!(stock.0, 20, "stock {extra:?}: {}", stock.1);
        assert_eq!(ours.0, stock.0, "{extra:?}: exit codes differ: {}", ours.1);
        assert_eq!(ours.2, stock.2, "{extra:?}: destinations differ");
        let line =
            "rsync error: received SIGINT, SIGTERM, or SIGHUP (code 20) at rsync.c(874) [sender=";
        assert!(
            stock.1.contains(line) && ours.1.contains(line),
            "{extra:?}: {}",
            ours.1
        );
        if !extra.is_empty() {
            let kept = std::fs::read(w.join("dst/big")).unwrap();
            assert!(
                !kept.is_empty() && data.starts_with(&kept),
                "the partial is no prefix"
            );
        }
    }
}

/// A partial file in a relative `--partial-dir` is the basis of the resumed copy; afterwards
/// the partial and its emptied directory are gone, as stock leaves it.
#[test]
fn used_relative_partial_dir_is_removed() {
    let mut ws = Workspace::new(false);
    let w = ws.path().to_path_buf();
    std::fs::remove_dir_all(w.join("src")).unwrap();
    std::fs::create_dir_all(w.join("src/d")).unwrap();
    let data = local_util::noise(300_000, 3);
    std::fs::write(w.join("src/d/f"), &data).unwrap();
    std::fs::write(w.join("src/d/g"), b"gee\n").unwrap();
    let t = w.join("template");
    std::fs::create_dir_all(t.join("d/.part")).unwrap();
    std::fs::write(t.join("d/.part/f"), &data[..100_000]).unwrap();
    ws.dest_template = Some(t);
    for extra in ["--no-whole-file", "--whole-file"] {
        differential_in(
            &ws,
            &["-a", extra, "--partial-dir=.part", "src/", "dst/"],
            // Stock's directory time is the time the partial directory went.
            FILE_TIMES,
        );
    }
}

/// `--inplace --no-whole-file`: each existing file is its own basis, rebuilt where it is
/// (only blocks not yet overwritten are reused): data inserted at the front, appended,
/// and a file cut to its tail arrive as stock's do, with the same literal/matched counts.
#[test]
fn inplace_delta_rebuilds_each_file_in_its_own_basis() {
    let mut ws = Workspace::new(false);
    let w = ws.path().to_path_buf();
    std::fs::remove_dir_all(w.join("src")).unwrap();
    std::fs::create_dir_all(w.join("src")).unwrap();
    let base = local_util::noise(300_000, 5);
    let front = local_util::noise(1_000, 6);
    let tail = local_util::noise(5_000, 7);
    std::fs::write(w.join("src/front"), [&front[..], &base].concat()).unwrap();
    std::fs::write(w.join("src/grown"), [&base[..], &tail].concat()).unwrap();
    std::fs::write(w.join("src/cut"), &base[100_000..]).unwrap();
    std::fs::write(w.join("src/same"), &base).unwrap();
    let t = w.join("template");
    std::fs::create_dir_all(&t).unwrap();
    for f in ["front", "grown", "cut", "same"] {
        std::fs::write(t.join(f), &base).unwrap();
    }
    ws.dest_template = Some(t);
    for extra in [&["-I"][..], &["-B", "1000", "-I"]] {
        let mut args = vec!["-a", "--inplace", "--no-whole-file", "--stats"];
        args.extend_from_slice(extra);
        args.extend(["src/", "dst/"]);
        differential_in(&ws, &args, FILE_TIMES);
    }
}

/// `-H` hard-links symlinks as stock does on Linux: the first member of a group is created,
/// later ones are linked to it (`hL NAME => LEADER`), already-linked members are unchanged
/// `hL` items at `-ii` and `NAME is uptodate` at `-vv`, members replacing other symlinks are
/// itemized against them, a dry run reports the links, and `--link-dest` links to the basis.
#[test]
fn hard_linked_symlinks_are_linked() {
    let mut ws = Workspace::new(false);
    let w = ws.path().to_path_buf();
    let src = w.join("src");
    std::fs::remove_dir_all(&src).unwrap();
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("f"), "x\n").unwrap();
    std::fs::hard_link(src.join("f"), src.join("g")).unwrap();
    std::os::unix::fs::symlink("f", src.join("s1")).unwrap();
    // link(2) on Linux links the symlink itself.
    std::fs::hard_link(src.join("s1"), src.join("s3")).unwrap();
    std::fs::hard_link(src.join("s1"), src.join("d/s2")).unwrap();
    for p in ["f", "s1", "d", ""] {
        local_util::set_mtime(&src.join(p), 1_500_000_000, 0);
    }
    let run = |setup: &str| {
        let st = std::process::Command::new("sh")
            .args(["-c", setup])
            .current_dir(&w)
            .status()
            .unwrap();
        assert!(st.success(), "{setup}");
    };
    let stock = local_util::stock_rsync();
    for flags in ["-aiH", "-aiiH", "-avvH", "-aiiHn"] {
        differential_in(&ws, &[flags, "src/", "dst/"], ALL_TIMES);
    }
    // An existing destination: linked already, separate symlinks, one missing and one old.
    let template = w.join("dest-template");
    ws.dest_template = Some(template.clone());
    for (setup, flags) in [
        (format!("{stock} -aH src/ dest-template/"), "-aiiH"),
        (format!("{stock} -aH src/ dest-template/"), "-avvH"),
        (format!("{stock} -a src/ dest-template/"), "-aiH"),
        (
            format!(
                "{stock} -a src/ dest-template/ && rm dest-template/s1 && \
                 touch -h -d 2001-01-01 dest-template/s3"
            ),
            "-aiH",
        ),
    ] {
        let _ = std::fs::remove_dir_all(&template);
        run(&setup);
        differential_in(&ws, &[flags, "src/", "dst/"], ALL_TIMES);
    }
    ws.dest_template = None;
    run(&format!("{stock} -aH src/ ref/"));
    for flags in ["-aiiH", "-aiH", "-avvH"] {
        differential_in(
            &ws,
            &[flags, "--link-dest=../ref", "src/", "dst/"],
            NEW_ROOT,
        );
    }
}

/// A bad rule read from a merge file is reported as stock reports it, without its text:
/// `<rule from FILE line N>` for a file an argument named (CRLF counted as one line end, the
/// line after a nested merge blamed on the right file), `<rule from a file named at FILE
/// line N>` for a file a file named (its own name is file content too, also when it cannot
/// be opened); a bad argument is still shown; an over-long argument is discarded with its
/// whole text shown. Exit codes and stock's exit lines too.
#[test]
fn bad_rules_in_merge_files_are_located_not_echoed_as_stock() {
    let ws = Workspace::new(false);
    let w = ws.path();
    let secret = "TOP-SECRET-abc123";
    let put = |name: &str, text: String| std::fs::write(w.join(name), text).unwrap();
    let at = |name: &str| w.join(name).display().to_string();
    put("rules", format!("{secret}\n"));
    put("outer-known", format!(". {}\n", at("inner-bad")));
    put("inner-bad", format!("{secret}\n"));
    put("outer", format!(". {}\n", at("nested")));
    put("nested", format!(". {secret}\n"));
    put("child", "- harmless\n".into());
    put("parent", format!(". {}\nZbad-in-parent\n", at("child")));
    put("crlf", "- harmless\r\nZbad-on-line-2\r\n".into());
    put("badmod", "-z oops\n".into());
    let long = format!("--filter=- ARGLONG-{}", "Q".repeat(4400));
    for file in ["rules", "outer-known", "outer", "parent", "crlf", "badmod"] {
        let arg = format!("--filter=. {}", at(file));
        differential_in(&ws, &["-r", &arg, "src/", "dst/"], NO_TIMES);
    }
    differential_in(
        &ws,
        &["-r", "--filter=Zbogus-rule", "src/", "dst/"],
        NO_TIMES,
    );
    differential_in(&ws, &["-r", &long, "src/", "dst/"], NO_TIMES);
}
