//! Integration tests: wildmatch tables and differential tests against stock
//! rsync (which must be installed; these tests fail without it).

mod daemon_diff;
mod implied_diff;
mod robustness;
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
            name: "per-dir anchored deep",
            args: &["--filter=: .f"],
            files: &[
                ("src-root/dir/a/.f", "- /b/c/\n- /file\n"),
                ("src-root/dir/.f", "- /a/b/file.o\n+ /z\n- z\n"),
            ],
        },
        Case {
            name: "per-dir anchored starstar",
            args: &["--filter=: .f"],
            files: &[("src-root/foo/.f", "- /**/foo\n- /s*/deep.*\n")],
        },
        Case {
            name: "per-dir sender-only merge",
            args: &["--filter=:s .f"],
            files: &[
                ("src-root/.f", "- *.o\n"),
                ("src-root/bar/.f", "- keep.txt\n"),
            ],
        },
        Case {
            name: "per-dir receiver-only merge",
            args: &["--filter=:r .f"],
            files: &[("src-root/.f", "- *.o\n")],
        },
        Case {
            name: "per-dir perishable merge",
            args: &["--filter=:p .f"],
            files: &[("src-root/.f", "- *.o\n")],
        },
        Case {
            name: "per-dir merge with nested plain merge",
            args: &["--filter=: .f"],
            files: &[
                ("src-root/.f", ". common.rules\n"),
                ("src-root/common.rules", "- core\n- /a\n"),
            ],
        },
        Case {
            name: "per-dir merge naming subdir file",
            args: &["--filter=: .f"],
            files: &[
                ("src-root/bar/.f", ". foo/extra\n"),
                ("src-root/bar/foo/extra", "- baz\n"),
            ],
        },
        Case {
            name: "per-dir cvs-style inside rsync-filter",
            args: &["-F"],
            files: &[
                ("src-root/.rsync-filter", "-C\n:C\n"),
                ("src-root/src/.cvsignore", "main.c\n"),
            ],
        },
        Case {
            name: "per-dir include everything then exclude",
            args: &["--filter=: .f", "--exclude=*"],
            files: &[
                ("src-root/.f", "+ */\n+ *.c\n"),
                ("src-root/src/lib/.f", "- *.c\n"),
            ],
        },
        Case {
            name: "per-dir file excludes directory then child file ignored",
            args: &["--filter=: .f"],
            files: &[("src-root/.f", "- dir/\n"), ("src-root/dir/.f", "+ *\n")],
        },
        Case {
            name: "per-dir crlf and comments",
            args: &["--filter=: .f"],
            files: &[("src-root/.f", "# c\r\n- *.o\r\n; x\r\n\r\n- core\r")],
        },
        Case {
            name: "xattr rules do not touch files",
            args: &["--filter=-x *", "--exclude=*.o"],
            files: &[],
        },
        Case {
            name: "dir-merge exclude-self no-inherit",
            args: &["--filter=:ne .f"],
            files: &[
                ("src-root/.f", "- *.o\n"),
                ("src-root/src/.f", "- main.c\n"),
            ],
        },
        Case {
            name: "merge exclude-self",
            args: &["--filter=.e merge.rules"],
            files: &[("merge.rules", "- a\n"), ("src-root/merge.rules", "x")],
        },
        Case {
            name: "negated dir-only",
            args: &["--filter=-! */", "--filter=+ *"],
            files: &[],
        },
        Case {
            name: "negated anchored",
            args: &["--filter=+ /src/", "--filter=-! /src/***"],
            files: &[],
        },
        Case {
            name: "bracket dirs and star",
            args: &["--exclude=[ab]*/", "--exclude=*[_$]*"],
            files: &[],
        },
        Case {
            name: "trailing double slash never matches",
            args: &["--exclude=foo//"],
            files: &[],
        },
        Case {
            name: "lone slash",
            args: &["--exclude=/"],
            files: &[],
        },
        Case {
            name: "cvsignore env words",
            args: &["-C", "--include=core"],
            files: &[("home/.cvsignore", "! *.txt\n")],
        },
        Case {
            name: "per-dir no-prefix include",
            args: &["--filter=:+ .inc", "--exclude=*.o"],
            files: &[
                ("src-root/src/.inc", "main.o\n"),
                ("src-root/.inc", "b.o\n"),
            ],
        },
        Case {
            name: "per-dir no-prefix bang is a pattern",
            args: &["--filter=:- .f"],
            files: &[("src-root/.f", "!\n*.o\n"), ("src-root/foo/.f", "!\n")],
        },
        Case {
            name: "per-dir word split no-prefix",
            args: &["--filter=:w- .f"],
            files: &[("src-root/.f", "*.o core\tfoo\n")],
        },
        Case {
            name: "exclude-from with bang clears",
            args: &["--exclude=*.o", "--exclude-from=rules.txt"],
            files: &[("rules.txt", "core\n!\n*.txt\n")],
        },
        Case {
            name: "include-from with exclude prefix",
            args: &["--include-from=inc.txt"],
            files: &[("inc.txt", "- *.o\n+ *\n- *.txt\n")],
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
        // The same answers, path by path, without a walk.
        let mut set = our_set(work.path(), &args).unwrap();
        let root = work.path().join("src-root");
        set.set_abs_root(std::os::unix::ffi::OsStrExt::as_bytes(root.as_os_str()));
        let mut source = rtsync_filter::FsSource::new(&root);
        let mut single = BTreeSet::new();
        single.insert("./".to_string());
        for name in TRICKY.iter().copied().chain(
            case.files
                .iter()
                .filter_map(|(p, _)| p.strip_prefix("src-root/")),
        ) {
            let is_dir = name.ends_with('/');
            let path = name.trim_end_matches('/');
            if set
                .is_transferred(
                    path.as_bytes(),
                    is_dir,
                    rtsync_filter::Side::Sender,
                    &mut source,
                )
                .unwrap()
            {
                single.insert(name.to_string());
            }
        }
        // Parent directories that only exist through a file's path.
        for name in single.clone() {
            let mut prefix = String::new();
            for part in name
                .trim_end_matches('/')
                .split('/')
                .collect::<Vec<_>>()
                .iter()
                .rev()
                .skip(1)
                .rev()
            {
                prefix.push_str(part);
                prefix.push('/');
                single.insert(prefix.clone());
            }
        }
        report(
            &mut failures,
            &format!("{} (path by path)", case.name),
            &args,
            &stock,
            &single,
        );
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

/// Dir-merge files in the transfer root's parents (`-F` names `/`).
#[test]
fn differential_parent_dir_scan() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let root = work.join("pd/x/src");
    make_tree(
        &root,
        &["a", "b", "c.o", "d", "e", "sub/a", "sub/d", "sub/b2"],
    );
    write_file(work, "pd/.rsync-filter", "- *.o\n- /x/src/a\n");
    write_file(work, "pd/x/.rsync-filter", "- /src/d\n- b*\n");
    write_file(work, "pd/x/src/.rsync-filter", "- e\n");
    let arg_sets: &[&[&str]] = &[
        &["-F"],
        &["--filter=: ../.rsync-filter"],
        &["--filter=:n /.rsync-filter"],
        &["--filter=: .rsync-filter"],
    ];
    let mut failures = Vec::new();
    for args in arg_sets {
        let args = strings(args);
        let out = std::process::Command::new(stock_rsync())
            .current_dir(work)
            .args(["-a", "--dry-run", "--out-format=%n"])
            .args(&args)
            .args(["pd/x/src/", "never-created/"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let stock: BTreeSet<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        let mut set = our_set(work, &args).unwrap();
        let abs = std::fs::canonicalize(&root).unwrap();
        set.load_parent_dirs(
            std::os::unix::ffi::OsStrExt::as_bytes(abs.as_os_str()),
            &mut rtsync_filter::FsSource::default(),
        )
        .unwrap();
        let ours = our_selected(&mut set, &root).unwrap();
        report(&mut failures, "parent scan", &args, &stock, &ours);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `rsync src dst/` (no trailing slash): the transfer root is the parent,
/// names start with `src/`, and the parent's dir-merge files apply.
#[test]
fn differential_source_without_trailing_slash() {
    let arg_sets: &[&[&str]] = &[
        &[],
        &["-F"],
        &["--exclude=/src-root/foo"],
        &["--exclude=/foo"],
        &["--exclude=src-root"],
        &["--exclude=src-root/"],
        &[
            "--include=src-root/",
            "--include=src-root/src/***",
            "--exclude=*",
        ],
        &["--filter=:n- .excl"],
    ];
    let mut failures = Vec::new();
    for args in arg_sets {
        let work = setup(&Case {
            name: "no slash",
            args,
            files: &[
                (".rsync-filter", "- *.o\n"),
                ("src-root/.rsync-filter", "- /foo/bar\n"),
                (".excl", "core\n"),
                ("src-root/.excl", "a*\n"),
            ],
        });
        let work = work.path();
        let args = strings(args);
        let out = std::process::Command::new(stock_rsync())
            .current_dir(work)
            .args(["-a", "--dry-run", "--out-format=%n"])
            .args(&args)
            .args(["src-root", "never-created/"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let stock: BTreeSet<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        // Our walk: root = the work dir, but only the named entry is listed.
        let mut set = our_set(work, &args).unwrap();
        let mut source = rtsync_filter::FsSource::new(work);
        let mut ours = BTreeSet::new();
        set.enter_dir(b"", &mut source).unwrap();
        if !set.is_excluded(b"src-root", true) {
            let mut inner = BTreeSet::new();
            // Reuse the recursive walker from the named directory down.
            walk_named(&mut set, work, b"src-root", &mut source, &mut inner);
            ours.insert("src-root/".to_string());
            ours.extend(inner);
        }
        set.leave_dir();
        report(&mut failures, "no slash", &args, &stock, &ours);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn walk_named(
    set: &mut rtsync_filter::FilterSet,
    root: &Path,
    dir: &[u8],
    source: &mut rtsync_filter::FsSource,
    out: &mut BTreeSet<String>,
) {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    set.enter_dir(dir, source).unwrap();
    let mut entries: Vec<(Vec<u8>, bool)> =
        std::fs::read_dir(root.join(std::ffi::OsStr::from_bytes(dir)))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().into_vec(), e.file_type().unwrap().is_dir())
            })
            .collect();
    entries.sort();
    let mut subdirs = Vec::new();
    for (name, is_dir) in entries {
        let rel = [dir, b"/", &name].concat();
        if set.is_excluded(&rel, is_dir) {
            continue;
        }
        let mut shown = String::from_utf8_lossy(&rel).into_owned();
        if is_dir {
            shown.push('/');
            subdirs.push(rel);
        }
        out.insert(shown);
    }
    for sub in subdirs {
        walk_named(set, root, &sub, source, out);
    }
    set.leave_dir();
}

/// Errors in rule files name the file and line.
#[test]
fn errors_carry_file_and_line() {
    use rtsync_filter::{FilterError, FilterSet, MemSource};
    let cases: &[(&str, &str, Option<usize>)] = &[
        ("- a\n+ b\nbogus rule\n", "rules", Some(3)),
        ("# c\n\n-q x\n", "rules", Some(3)),
        ("- ok\r\n!x\r\n", "rules", Some(2)),
    ];
    for (text, file, line) in cases {
        let mut files = MemSource::default().with(*file, *text);
        let err = FilterSet::new()
            .add_filter(format!(". {file}").as_bytes(), &mut files)
            .unwrap_err();
        match err {
            FilterError::InFile {
                path, line: got, ..
            } => {
                assert_eq!(path, Path::new(file));
                assert_eq!(got, *line, "{text:?}");
            }
            other => panic!("expected a located error for {text:?}, got {other}"),
        }
    }
    // Per-directory files: the path is relative to the transfer root.
    let mut set = FilterSet::new();
    set.add_filter(b": .f", &mut rtsync_filter::NoFiles)
        .unwrap();
    let mut files = MemSource::default().with("sub/.f", "- fine\nnonsense\n");
    set.enter_dir(b"", &mut files).unwrap();
    let err = set.enter_dir(b"sub", &mut files).unwrap_err();
    assert_eq!(
        set.depth(),
        1,
        "a failed enter_dir leaves the state unchanged"
    );
    assert!(err.to_string().starts_with("sub/.f line 2: "), "{err}");
    // The message never echoes the file's text; the detail does.
    assert!(!err.to_string().contains("nonsense"), "{err}");
    assert!(err.detail().to_string().contains("nonsense"));
    set.leave_dir();
    assert_eq!(set.depth(), 0);
    // Nested merge: the innermost file is named.
    let mut files = MemSource::default()
        .with("outer", ". inner\n")
        .with("inner", "- a\n- b\n? c\n");
    let err = FilterSet::new()
        .add_filter(b". outer", &mut files)
        .unwrap_err();
    assert!(err.to_string().starts_with("inner line 3: "), "{err}");
    // Missing files, depth limits, long lines.
    let err = FilterSet::new()
        .add_filter(b". nope", &mut MemSource::default())
        .unwrap_err();
    assert!(matches!(err, FilterError::NotFound { .. }), "{err}");
    let mut files = MemSource::default().with("loop", ". loop\n");
    let err = FilterSet::new()
        .add_filter(b". loop", &mut files)
        .unwrap_err();
    assert!(err.to_string().contains("depth limit"), "{err}");
    let long = format!("- {}\n", "x".repeat(6000));
    let mut files = MemSource::default().with("long", long);
    assert!(FilterSet::new().add_filter(b". long", &mut files).is_err());
    assert!(FilterSet::new()
        .add_exclude("y".repeat(5000).as_bytes())
        .is_err());
}

/// `-C` with $CVSIGNORE set (whitespace-separated, after $HOME/.cvsignore).
#[test]
fn differential_cvsignore_variable() {
    let values = ["*.txt foo", "! core", "a*  \t b.o"];
    let mut failures = Vec::new();
    for value in values {
        let work = setup(&Case {
            name: "cvsignore var",
            args: &[],
            files: &[("home/.cvsignore", "lib.so\n")],
        });
        let work = work.path();
        let out = std::process::Command::new(stock_rsync())
            .current_dir(work)
            .args([
                "-a",
                "--dry-run",
                "--out-format=%n",
                "-C",
                "src-root/",
                "never-created/",
            ])
            .env("HOME", work.join("home"))
            .env("CVSIGNORE", value)
            .output()
            .unwrap();
        assert!(out.status.success());
        let stock: BTreeSet<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        let env = rtsync_filter::CvsEnv {
            home_cvsignore: Some(b"lib.so\n".to_vec()),
            cvsignore_var: Some(value.as_bytes().to_vec()),
        };
        let mut set =
            rtsync_filter::FilterSet::from_options(&[], true, env, &mut rtsync_filter::NoFiles)
                .unwrap();
        let ours = our_selected(&mut set, &work.join("src-root")).unwrap();
        report(&mut failures, value, &[], &stock, &ours);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A deep tree with per-directory rule files that declare further
/// dir-merge files, clear lists, use CVS rules, with an exclude-from file
/// full of competing rules, under several option sets (and $CVSIGNORE).
#[test]
fn differential_complex_scenario() {
    let tree: &[&str] = &[
        "alpha/deep/path/here/",
        "alpha/sub/",
        "alpha/f1",
        "alpha/f2",
        "alpha/f2.old",
        "alpha/sub/f1",
        "beta/deep/path/alpha/too/",
        "beta/deep/path/beta/qux/",
        "beta/deep/path/hcvs",
        "beta/deep/path/alpha/f1",
        "beta/deep/path/alpha/f1.bak",
        "beta/deep/path/alpha/f3",
        "beta/deep/path/alpha/f4",
        "beta/deep/path/alpha/+ f3",
        "beta/deep/path/alpha/f4.junk",
        "beta/deep/path/alpha/path",
        "beta/deep/path/beta/qux/f5.deep",
        "mid/for/alpha/and/so/on/",
        "mid/inout",
        "mid/forall",
        "mid/for/inout",
        "mid/for/alpha/extra",
        "mid/for/alpha/keep",
        "novel/keep/this/",
        "novel/lose/this/",
        "novel/keep/this/x",
        "novel/lose/this/y",
    ];
    let files: &[(&str, &str)] = &[
        (
            ".rules",
            "exclude deep\n: .tmp-rules\nclear\n- .rules\n- *.bak\n- *.old\n",
        ),
        ("alpha/.rules", "include .rules\n- /f1\n"),
        ("beta/.rules", "- hcvs\ndir-merge .r2\n+ path\n"),
        ("beta/deep/path/.r2", "- .r2\n"),
        ("beta/deep/path/alpha/.r2", "+ *.junk\n"),
        ("beta/deep/path/beta/.r2", "- *.deep\n"),
        ("mid/.r2", "- extra\n"),
        ("mid/.cvsignore", "inout\n"),
        ("mid/.rules", ":C\n"),
    ];
    let excl = "!\n# comment\n+ **/beta\n- /beta\n+ alpha**too\n+ alpha/s?b/\n- alpha/*/\n\
                - novel/keep/**\n- novel/lose/***\n+ p[a]th/\n- path\n+ f4\n- f[2-9]\n- /mid/for/alpha/extra\n";
    let option_sets: &[&[&str]] = &[
        &["--filter=dir-merge .rules"],
        &["--filter=dir-merge .rules", "--exclude-from=excl"],
        &["--filter=dir-merge .rules", "--exclude-from=excl", "-C"],
        &[
            "--filter=merge excl",
            "--filter=:C",
            "--filter=-C",
            "--filter=dir-merge .rules",
        ],
        &[
            "--filter=dir-merge .rules",
            "--filter=show .rules*",
            "--filter=hide,! */",
        ],
        &["--filter=-! */"],
        &["--filter=exclude,! */", "--filter=dir-merge .rules"],
        &[
            "-F",
            "--filter=dir-merge .rules",
            "--include=*/",
            "--include=*.junk",
            "--exclude=*",
        ],
    ];
    let mut failures = Vec::new();
    for args in option_sets {
        let work = tempfile::tempdir().unwrap();
        let work = work.path();
        let root = work.join("src-root");
        make_tree(&root, tree);
        for (path, text) in files {
            write_file(&root, path, text);
        }
        write_file(work, "excl", excl);
        write_file(work, "home/.cvsignore", "hcvs\n");
        let args = strings(args);
        let out = std::process::Command::new(stock_rsync())
            .current_dir(work)
            .args(["-a", "--dry-run", "--out-format=%n"])
            .args(&args)
            .args(["src-root/", "never-created/"])
            .env("HOME", work.join("home"))
            .env("CVSIGNORE", "*.junk")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stock: BTreeSet<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        let (opts, cvs) = our_options(work, &args);
        let env = rtsync_filter::CvsEnv {
            home_cvsignore: Some(b"hcvs\n".to_vec()),
            cvsignore_var: Some(b"*.junk".to_vec()),
        };
        let mut set = rtsync_filter::FilterSet::from_options(
            &opts,
            cvs,
            env,
            &mut rtsync_filter::FsSource::new(work),
        )
        .unwrap();
        let ours = our_selected(&mut set, &root).unwrap();
        report(&mut failures, "complex", &args, &stock, &ours);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
