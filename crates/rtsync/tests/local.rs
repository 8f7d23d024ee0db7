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
