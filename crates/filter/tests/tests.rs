//! Integration tests: wildmatch tables and differential tests against stock
//! rsync (which must be installed; these tests fail without it).

mod util;
mod wildmatch_table;
mod wire_diff;

use std::collections::BTreeSet;
use std::path::Path;

use util::*;

/// One differential case: filter options plus extra files (paths relative
/// to the work dir; the source tree is `src-root/`).
struct Case {
    name: &'static str,
    args: &'static [&'static str],
    files: &'static [(&'static str, &'static str)],
}

const fn case(name: &'static str, args: &'static [&'static str]) -> Case {
    Case {
        name,
        args,
        files: &[],
    }
}

fn sender_cases() -> Vec<Case> {
    vec![
        case("no filters", &[]),
        case("exclude glob", &["--exclude=*.o"]),
        case("exclude case-sensitive", &["--exclude=*.O"]),
        case("exclude name any depth", &["--exclude=foo"]),
        case("exclude anchored", &["--exclude=/foo"]),
        case("exclude dir only", &["--exclude=foo/"]),
        case("exclude anchored dir only", &["--exclude=/bar/foo/"]),
        case("exclude inner slash", &["--exclude=foo/bar"]),
        case("exclude inner slash deep", &["--exclude=sub/foo"]),
        case("exclude anchored inner slash", &["--exclude=/foo/bar"]),
        case("exclude star star prefix", &["--exclude=**/foo"]),
        case("exclude dir star star", &["--exclude=dir/**"]),
        case("exclude dir star star star", &["--exclude=dir/***"]),
        case("exclude anchored triple star", &["--exclude=/tmp/***"]),
        case("exclude infix star star", &["--exclude=dir/**/file"]),
        case("exclude star in middle", &["--exclude=dir/*/b"]),
        case("exclude starstar ext", &["--exclude=**.o"]),
        case("exclude src starstar ext", &["--exclude=src/**.o"]),
        case("exclude a star slash", &["--exclude=a*/"]),
        case("exclude question", &["--exclude=a?"]),
        case("exclude class", &["--exclude=[ab]*"]),
        case("exclude negated class", &["--exclude=[!a-z]*"]),
        case("exclude caret class", &["--exclude=[^a-z]*"]),
        case("exclude posix upper", &["--exclude=[[:upper:]]*"]),
        case("exclude posix digit", &["--exclude=*[[:digit:]]"]),
        case("exclude posix punct", &["--exclude=[[:punct:]]*"]),
        case("exclude space name", &["--exclude=with space"]),
        case("exclude escaped star", &["--exclude=star\\*name"]),
        case("exclude escaped question", &["--exclude=q\\?mark"]),
        case("exclude literal brackets", &["--exclude=br\\[ack\\]et"]),
        case("exclude bracket as class", &["--exclude=br[ack]et"]),
        case("exclude backslash literal", &["--exclude=back\\slash"]),
        case("exclude backslash wild", &["--exclude=back\\\\sl*"]),
        case("exclude utf8", &["--exclude=é*"]),
        case("exclude dash name", &["--exclude=-dash"]),
        case("exclude hidden", &["--exclude=.*"]),
        case(
            "include before exclude",
            &["--include=*/", "--include=*.c", "--exclude=*"],
        ),
        case(
            "include subtree only",
            &["--include=src/***", "--exclude=*"],
        ),
        case(
            "include path chain",
            &[
                "--include=/src/",
                "--include=/src/lib/",
                "--include=/src/lib/*.c",
                "--exclude=*",
            ],
        ),
        case("include top name only", &["--include=foo", "--exclude=*"]),
        case(
            "exclude then include is shadowed",
            &["--exclude=*.o", "--include=b.o"],
        ),
        case(
            "filter catch all",
            &["--filter=+ */", "--filter=+ *.txt", "--filter=- *"],
        ),
        case(
            "filter long names",
            &["--filter=include */", "--filter=exclude *.o"],
        ),
        case("filter underscore", &["--filter=-_*.o"]),
        case("filter negate", &["--filter=-! */"]),
        case("filter negate name", &["--filter=-! *.o", "--include=*/"]),
        case(
            "filter include negate",
            &["--filter=+! *.c", "--filter=- *"],
        ),
        case("filter perishable", &["--filter=-p *.o"]),
        case("filter hide", &["--filter=H *.o"]),
        case(
            "filter show then hide",
            &["--filter=S foo", "--filter=H fo*"],
        ),
        case("filter protect does not hide", &["--filter=P *.o"]),
        case(
            "filter risk does not show",
            &["--filter=R *.o", "--exclude=*.o"],
        ),
        case("filter sender modifier", &["--filter=-s foo"]),
        case("filter receiver modifier", &["--filter=-r foo"]),
        case(
            "filter comma modifiers",
            &["--filter=exclude,s foo", "--filter=-,p *.txt"],
        ),
        case(
            "exclude clear",
            &["--exclude=*.o", "--exclude=!", "--exclude=foo"],
        ),
        case(
            "filter clear",
            &["--exclude=*.o", "--filter=!", "--exclude=bar"],
        ),
        case(
            "filter clear long",
            &["--exclude=*.o", "--filter=clear", "--exclude=a"],
        ),
        case("exclude dash prefix", &["--exclude=- foo"]),
        case("exclude plus prefix", &["--exclude=+ foo", "--exclude=*"]),
        case("include minus prefix", &["--include=- src", "--include=*"]),
        case(
            "delete-excluded sender",
            &["--delete-excluded", "--exclude=*.o"],
        ),
        case("perdir dir trailing slash wild", &["--exclude=*/"]),
        case("exclude triple star mid", &["--exclude=src/***/util.c"]),
        case("exclude double star class", &["--exclude=**[.]o"]),
        case("exclude empty star dir", &["--exclude=empty"]),
        case(
            "dir with wild3 include",
            &["--include=/dir/a/***", "--include=/dir/", "--exclude=*"],
        ),
        Case {
            name: "exclude-from with comments",
            args: &["--exclude-from=rules.txt"],
            files: &[(
                "rules.txt",
                "# comment\n; other comment\n\n*.o\n- foo/\n+ c.txt\n*.txt\r\ncore\r\n",
            )],
        },
        Case {
            name: "include-from",
            args: &["--include-from=inc.txt", "--exclude=*"],
            files: &[("inc.txt", "*/\n*.c\n- lib/\n")],
        },
        Case {
            name: "exclude-from from0",
            args: &["--from0", "--exclude-from=rules0"],
            files: &[("rules0", "*.o\0with space\0# not a comment?\0")],
        },
        Case {
            name: "merge file",
            args: &["--filter=. merge.rules"],
            files: &[("merge.rules", "+ foo/\n+ foo/bar\n- foo/*\n- *.o\n")],
        },
        Case {
            name: "merge file with clear",
            args: &["--exclude=*.txt", "--filter=merge merge.rules"],
            files: &[("merge.rules", "- *.o\n!\n- core\n")],
        },
        Case {
            name: "merge file no-prefix exclude",
            args: &["--filter=merge,- plain.list"],
            files: &[("plain.list", "core\n+ foo\n*.so\n")],
        },
        Case {
            name: "merge file no-prefix include",
            args: &["--filter=.+ plain.list", "--exclude=*.o"],
            files: &[("plain.list", "b.o\nfoo/bar.o\n")],
        },
        Case {
            name: "merge file word split",
            args: &["--filter=.w words"],
            files: &[("words", "-_*.o -_core\n+_foo/ -_foo*\n")],
        },
        Case {
            name: "nested merge",
            args: &["--filter=. outer"],
            files: &[("outer", "- core\n. inner\n"), ("inner", "- *.so\n")],
        },
        Case {
            name: "-F nested rsync-filter",
            args: &["-F"],
            files: &[
                ("src-root/.rsync-filter", "- *.o\n+ foo/\n"),
                ("src-root/foo/.rsync-filter", "- bar\n- /sub/deep.txt\n"),
                ("src-root/bar/.rsync-filter", "- /foo/baz\n"),
                ("src-root/dir/a/.rsync-filter", "+ file\n- file*\n- b/\n"),
            ],
        },
        Case {
            name: "-FF also hides filter files",
            args: &["-FF"],
            files: &[
                ("src-root/.rsync-filter", "- *.txt\n"),
                ("src-root/foo/.rsync-filter", "- sub/\n"),
            ],
        },
        Case {
            name: "-F anchored per-dir rule",
            args: &["-F"],
            files: &[
                ("src-root/.rsync-filter", "- /foo\n"),
                ("src-root/bar/.rsync-filter", "- /foo/baz\n- /keep.txt\n"),
            ],
        },
        Case {
            name: "-F with later command-line rules",
            args: &["-F", "--exclude=*.c"],
            files: &[("src-root/src/.rsync-filter", "+ main.c\n")],
        },
        Case {
            name: "per-dir clear drops inherited",
            args: &["--filter=: .f"],
            files: &[
                ("src-root/.f", "- *.o\n- foo\n"),
                ("src-root/foo/.f", "!\n- bar\n"),
            ],
        },
        Case {
            name: "per-dir no-inherit no-prefix",
            args: &["--filter=:n- .excl"],
            files: &[
                ("src-root/.excl", "*.o\ncore\n"),
                ("src-root/src/.excl", "main.c\n"),
            ],
        },
        Case {
            name: "per-dir inherit no-prefix",
            args: &["--filter=:- .excl"],
            files: &[
                ("src-root/.excl", "*.o\n"),
                ("src-root/src/.excl", "main.c\n"),
            ],
        },
        Case {
            name: "per-dir exclude self",
            args: &["--filter=:e .rf"],
            files: &[
                ("src-root/.rf", "- core\n"),
                ("src-root/foo/.rf", "- bar*\n"),
            ],
        },
        Case {
            name: "per-dir word split",
            args: &["--filter=dir-merge,w .words"],
            files: &[("src-root/.words", "-_*.o +_foo -_f*\n")],
        },
        Case {
            name: "per-dir include override",
            args: &["--filter=: .f", "--exclude=*.o"],
            files: &[("src-root/src/.f", "+ main.o\n")],
        },
        Case {
            name: "per-dir nested dir-merge",
            args: &["--filter=: .f"],
            files: &[
                ("src-root/.f", ": .g\n- core\n"),
                ("src-root/.g", "- a*\n"),
                ("src-root/dir/.g", "- z\n"),
            ],
        },
        Case {
            name: "per-dir merge of plain file",
            args: &["--filter=: .f"],
            files: &[
                ("src-root/foo/.f", "- bar.o\n"),
                ("src-root/foo/sub/.f", "+ x.o\n- *\n"),
            ],
        },
        Case {
            name: "per-dir duplicate dir-merge ignored",
            args: &["--filter=: .f", "--filter=:n .f"],
            files: &[("src-root/.f", "- a\n"), ("src-root/foo/.f", "- bar\n")],
        },
        Case {
            name: "per-dir sided rules",
            args: &["--filter=: .f"],
            files: &[("src-root/.f", "H *.o\nP core\n- x~\n")],
        },
        Case {
            name: "cvs exclude",
            args: &["-C"],
            files: &[],
        },
        Case {
            name: "cvs exclude with per-dir and home",
            args: &["-C"],
            files: &[
                ("home/.cvsignore", "*.txt  foo\n"),
                ("src-root/src/.cvsignore", "main.c lib\n"),
            ],
        },
        Case {
            name: "cvs exclude with include first",
            args: &["--include=core", "--include=*.o", "-C"],
            files: &[],
        },
        Case {
            name: "cvs filter rules placed explicitly",
            args: &["--filter=-C", "--filter=:C", "--include=*.o"],
            files: &[("src-root/foo/.cvsignore", "bar*\n!\nsub\n")],
        },
        Case {
            name: "cvs per-dir clear",
            args: &["--filter=:C"],
            files: &[
                ("src-root/.cvsignore", "a*\n"),
                ("src-root/src/.cvsignore", "! main.c\n"),
            ],
        },
    ]
}

/// Sets up a work dir with the tricky tree and the case's files.
fn setup(case: &Case) -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    make_tree(&work.path().join("src-root"), TRICKY);
    std::fs::create_dir_all(work.path().join("home")).unwrap();
    for (path, contents) in case.files {
        write_file(work.path(), path, contents);
    }
    work
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn our_sender(work: &Path, args: &[String]) -> Result<BTreeSet<String>, String> {
    let mut set = our_set(work, args)?;
    let root = work.join("src-root");
    set.set_abs_root(std::os::unix::ffi::OsStrExt::as_bytes(root.as_os_str()));
    our_selected(&mut set, &root)
}

fn report(
    failures: &mut Vec<String>,
    name: &str,
    args: &[String],
    stock: &BTreeSet<String>,
    ours: &BTreeSet<String>,
) {
    if stock != ours {
        let only_stock: Vec<_> = stock.difference(ours).collect();
        let only_ours: Vec<_> = ours.difference(stock).collect();
        failures.push(format!(
            "case {name:?} {args:?}:\n  only stock rsync: {only_stock:?}\n  only ours: {only_ours:?}"
        ));
    }
}

#[test]
fn differential_sender_selection() {
    let mut failures = Vec::new();
    let cases = sender_cases();
    for case in &cases {
        let work = setup(case);
        let args = strings(case.args);
        let stock = stock_selected(work.path(), &args)
            .unwrap_or_else(|e| panic!("stock rsync failed on {:?}: {e}", case.name));
        let ours = our_sender(work.path(), &args)
            .unwrap_or_else(|e| panic!("our filter failed on {:?}: {e}", case.name));
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

#[test]
fn differential_absolute_modifier() {
    let work = setup(&case("abs", &[]));
    let root = work.path().join("src-root");
    let abs = root.to_str().unwrap();
    let arg_sets = [
        vec![format!("--filter=-/ {abs}/foo")],
        vec![format!("--filter=-/ {abs}/src/*.c")],
        vec![format!("--filter=-/ {abs}/**.o")],
        vec!["--filter=-/ foo".to_string()],
    ];
    let mut failures = Vec::new();
    for args in &arg_sets {
        let stock = stock_selected(work.path(), args).unwrap();
        let ours = our_sender(work.path(), args).unwrap();
        report(&mut failures, "abs", args, &stock, &ours);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Rules both rsync and we must reject.
#[test]
fn differential_rejected_rules() {
    let bad: &[&[&str]] = &[
        &["--filter=x foo"],
        &["--filter=-q foo"],
        &["--filter=-e foo"],
        &["--filter=hide,s foo"],
        &["--filter=-"],
        &["--filter=! x"],
        &["--filter=:! .f"],
        &["--exclude-from=missing-file"],
        &["--filter=. missing-merge"],
    ];
    for args in bad {
        let work = setup(&case("bad", &[]));
        let args = strings(args);
        assert!(
            stock_selected(work.path(), &args).is_err(),
            "stock rsync accepted {args:?}"
        );
        assert!(
            our_sender(work.path(), &args).is_err(),
            "we accepted {args:?}"
        );
    }
}

/// Extra destination entries for the deletion tests.
const DST_EXTRA: &[&str] = &[
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
        case("negated protect", &["--filter=P! *.o"]),
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
