//! `rtsync rsync` between local paths against stock rsync: same trees, output and exit codes.

mod local_util;

use local_util::{differential, ALL_TIMES, NEW_ROOT, NO_TIMES};

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
