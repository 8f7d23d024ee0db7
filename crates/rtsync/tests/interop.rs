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
