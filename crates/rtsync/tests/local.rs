//! `rtsync rsync` between local paths against stock rsync: same trees, output and exit codes.

mod local_util;

use local_util::{
    differential, differential_in, Workspace, ALL_TIMES, FILE_TIMES, NEW_ROOT, NO_TIMES,
};

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
