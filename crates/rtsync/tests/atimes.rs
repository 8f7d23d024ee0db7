//! `-U`/`--atimes`: access times of non-directories travel in the file list and are set on
//! the receiver (whole seconds), an item whose access time alone differs is itemized
//! `.f......u..`, and `--list-only` shows the access time beside the mtime. Compared with
//! stock in every role: local copies, and our client and server against stock's through a
//! remote shell and a daemon, pushing and pulling.

mod daemon_util;
mod interop_util;
mod roles;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use interop_util::{set_atime, set_mtime, write_file};
use roles::matrix::{self, Case, Side, Via};

const MTIME: i64 = 1_700_000_000;
/// Access times older than the mtime: reading a file (the sender does) may move them, so
/// the expected values are those the file list was made from.
const ATIMES: [(&str, i64); 5] = [
    ("src/f", 1_577_836_800),
    ("src/sub/g", 1_560_000_000),
    ("src/same", 1_500_000_000),
    ("src/changed", 1_400_000_000),
    ("dst/same", 1_300_000_000),
];

/// Files with old access times, a hard link, a symlink and a directory; in `dst/` one file
/// current but for its access time and one with other contents.
fn prepare(base: &Path) {
    let (src, dst) = (base.join("src"), base.join("dst"));
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::create_dir_all(&dst).unwrap();
    write_file(&src.join("f"), b"f\n");
    std::fs::hard_link(src.join("f"), src.join("hl")).unwrap();
    write_file(&src.join("sub/g"), b"gg\n");
    write_file(&src.join("same"), b"same\n");
    write_file(&dst.join("same"), b"same\n");
    write_file(&src.join("changed"), b"new contents\n");
    write_file(&dst.join("changed"), b"old\n");
    std::os::unix::fs::symlink("f", src.join("link")).unwrap();
    for p in [
        "src/f",
        "src/sub/g",
        "src/same",
        "dst/same",
        "src/changed",
        "dst/changed",
        // (The listing shows the symlink's times too: two runs must not see two seconds.)
        "src/link",
    ] {
        set_mtime(&base.join(p), MTIME, 0);
    }
    for (p, atime) in ATIMES {
        set_atime(&base.join(p), atime);
    }
    for d in ["src/sub", "src", "dst"] {
        set_mtime(&base.join(d), MTIME, 0);
    }
}

/// The access times of the non-directories under `root`.
fn atimes(root: &Path) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let md = std::fs::symlink_metadata(&path).unwrap();
            if md.is_dir() {
                stack.push(path);
            } else if !md.file_type().is_symlink() {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, md.atime());
            }
        }
    }
    out
}

/// Our result against stock's, and the access times the source had when listed.
fn check_dst(what: &str, ours: &Path, stock: &Path) {
    let (got, want) = (atimes(&ours.join("dst")), atimes(&stock.join("dst")));
    assert_eq!(got, want, "{what}: access times in dst/ differ");
    assert_eq!(want.get("f"), Some(&ATIMES[0].1), "{what}: stock set f's");
    assert_eq!(
        want.get("same"),
        Some(&ATIMES[2].1),
        "{what}: stock set same's"
    );
}

const OPTION_SETS: [&[&str]; 3] = [&["-aHUi"], &["-rltUUi"], &["-aUi", "--omit-link-times"]];

#[test]
fn access_times_travel_in_every_pairing_as_with_stock() {
    for opts in OPTION_SETS {
        for via in [Via::Shell, Via::Daemon] {
            for push in [true, false] {
                for (client, server) in matrix::PAIRS {
                    let roles = (client, server, via, push);
                    let case = Case::new(opts, &[""]);
                    let ours = tempfile::tempdir().unwrap();
                    let stock = tempfile::tempdir().unwrap();
                    let got = matrix::run(ours.path(), &prepare, roles, case);
                    let want = matrix::run(
                        stock.path(),
                        &prepare,
                        (Side::Stock, Side::Stock, via, push),
                        case,
                    );
                    let what = format!("{roles:?} {opts:?}");
                    assert_eq!(got.output, want.output, "output differs: {what}");
                    assert!(
                        want.output.contains(".f......u.. same"),
                        "{what}: {}",
                        want.output
                    );
                    check_dst(&what, ours.path(), stock.path());
                }
            }
        }
    }
}

fn local(ours: bool, base: &Path, args: &[&str]) -> String {
    let (text, code) = interop_util::run_local(ours, base, args);
    format!("{text}exit {code:?}")
}

#[test]
fn local_copies_and_listings_show_and_keep_access_times_as_stock() {
    let cases: [&[&str]; 6] = [
        &["-aHUi", "src/", "dst/"],
        &["-aUUi", "--no-U", "src/", "dst/"],
        &["-aHUv", "--no-motd", "src/", "dst/"],
        &["-aU", "--list-only", "src/"],
        &[
            "-rU",
            "--list-only",
            "--delete-missing-args",
            "src/f",
            "src/nothing",
        ],
        &["-aN", "src/", "dst/"],
    ];
    for args in cases {
        let ours = tempfile::tempdir().unwrap();
        let stock = tempfile::tempdir().unwrap();
        prepare(ours.path());
        prepare(stock.path());
        let got = local(true, ours.path(), args);
        let want = local(false, stock.path(), args);
        let what = format!("rsync {}", args.join(" "));
        assert_eq!(got, want, "{what}: output differs");
        let (a, b) = (
            atimes(&ours.path().join("dst")),
            atimes(&stock.path().join("dst")),
        );
        assert_eq!(a, b, "{what}: access times in dst/ differ");
        if args[0] == "-aUUi" {
            // -UU is also --open-noatime: reading the sources left their access times.
            for base in [ours.path(), stock.path()] {
                let src = atimes(&base.join("src"));
                assert_eq!(src.get("f"), Some(&ATIMES[0].1), "{what}: {base:?}");
            }
        }
    }
}
