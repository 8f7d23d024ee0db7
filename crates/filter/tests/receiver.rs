//! Differential tests of receiver-side protection under `--delete`.

use crate::util::*;

/// Extra destination entries for the deletion tests.
pub const DST_EXTRA: &[&str] = &[
    "extra",
    "extra.o",
    "extra.keep",
    "extra.log",
    "core",
    "foo/gone.o",
    "foo/gone",
    "foo/sub/old.txt",
    "olddir/",
    "olddir/file",
    "olddir/x.o",
    "objdir/",
    "objdir/a.o",
    "keepdir/",
    "keepdir/data.keep",
    "keepdir/other",
];

fn receiver_cases() -> Vec<Case> {
    vec![
        case("delete plain", &[]),
        case("delete protects excluded", &["--exclude=*.o"]),
        case(
            "delete-excluded removes excluded",
            &["--delete-excluded", "--exclude=*.o"],
        ),
        case(
            "delete-excluded after exclude",
            &["--exclude=*.o", "--delete-excluded"],
        ),
        case("hide is sender only", &["--filter=H *.o"]),
        case("sender modifier", &["--filter=-s *.o"]),
        case("protect", &["--filter=P *.keep"]),
        case(
            "protect with delete-excluded",
            &["--delete-excluded", "--filter=P *.keep", "--exclude=*.o"],
        ),
        case("receiver modifier", &["--filter=-r extra*"]),
        case(
            "risk overrides exclude",
            &["--filter=R extra.o", "--exclude=*.o"],
        ),
        case("perishable protects files", &["--filter=-p *.o"]),
        case("protect dir contents", &["--filter=P data.keep"]),
        case("protect dir", &["--filter=P keepdir/"]),
        case("exclude dir", &["--exclude=olddir"]),
        case("cvs exclude", &["-C"]),
        case(
            "cvs exclude with delete-excluded",
            &["-C", "--delete-excluded"],
        ),
        case(
            "cvs filters with delete-excluded first",
            &["--delete-excluded", "--filter=-C", "--filter=:C"],
        ),
        case(
            "perishable cvs list and protect",
            &["-C", "--filter=P objdir/"],
        ),
        case("negated protect", &["--filter=P! *.o"]),
        case(
            "perishable dir only perishable content",
            &["--filter=-p *.o", "--filter=P olddir/"],
        ),
        case(
            "delete-excluded with perishable",
            &["--delete-excluded", "--filter=-p *.o"],
        ),
        case(
            "hide and protect same name",
            &["--filter=H extra*", "--filter=P extra.keep"],
        ),
        case(
            "show risk",
            &[
                "--filter=S extra",
                "--filter=R extra.log",
                "--exclude=extra*",
            ],
        ),
        case("anchored protect", &["--filter=P /foo/gone"]),
        case("dir-only protect of file", &["--filter=P extra/"]),
        case(
            "protect dir contents keeps dir",
            &["--filter=P other", "--filter=-p data.keep"],
        ),
        Case {
            name: "per-dir receiver merge only in dst",
            args: &["--filter=:r .keep"],
            files: &[
                ("dst-root/foo/.keep", "- gone*\n"),
                ("dst-root/keepdir/.keep", "- other\n"),
            ],
        },
        Case {
            name: "per-dir differs between src and dst",
            args: &["--filter=: .f"],
            files: &[
                ("src-root/.f", "- extra.log\n"),
                ("dst-root/.f", "- extra\n"),
                ("dst-root/olddir/.f", "- x.o\n"),
            ],
        },
        Case {
            name: "per-dir with delete-excluded",
            args: &["--delete-excluded", "--filter=: .f"],
            files: &[
                ("src-root/.f", "- *.o\nP extra\n"),
                ("dst-root/.f", "- *.o\nP extra\n"),
            ],
        },
        Case {
            name: "per-dir protect",
            args: &["-F"],
            files: &[
                ("src-root/.rsync-filter", "P extra*\n"),
                ("dst-root/.rsync-filter", "P extra*\n"),
                ("src-root/foo/.rsync-filter", "- gone*\n"),
                ("dst-root/foo/.rsync-filter", "- gone*\n"),
            ],
        },
        Case {
            name: "per-dir only on receiver",
            args: &["--filter=: .keepers"],
            files: &[
                ("dst-root/.keepers", "P extra.log\n"),
                ("dst-root/olddir/.keepers", "- file\n"),
            ],
        },
    ]
}

#[test]
fn differential_receiver_deletions() {
    let mut failures = Vec::new();
    let cases = receiver_cases();
    for case in &cases {
        let work = setup(case);
        let src = work.path().join("src-root");
        let dst = work.path().join("dst-root");
        // The destination starts as a copy of the source plus extras.
        let status = std::process::Command::new(stock_rsync())
            .args(["-a", "--ignore-existing"])
            .arg(format!("{}/", src.display()))
            .arg(format!("{}/", dst.display()))
            .status()
            .unwrap();
        assert!(status.success());
        make_tree(&dst, DST_EXTRA);
        let args = strings(case.args);
        let stock = stock_deleted(work.path(), &args)
            .unwrap_or_else(|e| panic!("stock rsync failed on {:?}: {e}", case.name));
        let mut sender = our_set(work.path(), &args).unwrap();
        let sent = our_selected(&mut sender, &src).unwrap();
        let mut receiver = our_set(work.path(), &args).unwrap();
        let ours = our_deleted(&mut receiver, &dst, &sent);
        report(&mut failures, case.name, &args, &stock, &ours);
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
