//! Differential tests of the sender's selection: stock rsync's dry run vs
//! our walker, over many option sets.

use std::collections::BTreeSet;

use crate::util::*;

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
            name: "nested dir-merge naming a parent",
            args: &["--filter=: .f"],
            files: &[
                ("src-root/dir/a/.f", ": ../.g\n"),
                ("src-root/dir/.g", "- z\n- /a/file\n"),
                ("src-root/dir/a/.g", "- c/\n"),
                ("src-root/dir/a/b/.g", "- file.o\n"),
            ],
        },
        Case {
            name: "nested dir-merge naming the root",
            args: &["--filter=: .f"],
            files: &[
                ("src-root/foo/sub/.f", ": ../../.g\n"),
                ("src-root/.g", "- deep.txt\n- /foo/sub/x.o\n"),
                ("src-root/foo/.g", "- foo\n"),
            ],
        },
        Case {
            name: "nested dir-merge naming a child",
            args: &["--filter=: .f"],
            files: &[
                ("src-root/dir/.f", ": a/.g\n"),
                ("src-root/dir/.g", "- z\n"),
                ("src-root/dir/a/.g", "- file\n"),
            ],
        },
        Case {
            name: "nested dir-merge no-inherit with path",
            args: &["--filter=: .f"],
            files: &[
                ("src-root/dir/a/.f", ":n ../.g\n"),
                ("src-root/dir/.g", "- z\n"),
                ("src-root/dir/a/b/.g", "- file.o\n"),
            ],
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
        let mut checker = rtsync_filter::PathChecker::new(set.clone());
        let mut single = BTreeSet::new();
        single.insert("./".to_string());
        for name in TRICKY.iter().copied().chain(
            case.files
                .iter()
                .filter_map(|(p, _)| p.strip_prefix("src-root/")),
        ) {
            let is_dir = name.ends_with('/');
            let path = name.trim_end_matches('/');
            let cached = checker
                .is_transferred(
                    path.as_bytes(),
                    is_dir,
                    rtsync_filter::Side::Sender,
                    &mut source,
                )
                .unwrap();
            let walked = set
                .is_transferred(
                    path.as_bytes(),
                    is_dir,
                    rtsync_filter::Side::Sender,
                    &mut source,
                )
                .unwrap();
            assert_eq!(
                cached, walked,
                "PathChecker and is_transferred differ on {name:?} in {:?}",
                case.name
            );
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
        &["--filter=!x"],
        &["--filter=- "],
        &["--filter=.s sided"],
        &["--filter=. looping"],
        &["--filter=. badline"],
        &["--filter=:s .f", "--filter=-p x"],
        &["--filter=.w badword"],
    ];
    let files: &[(&str, &str)] = &[
        ("sided", "- ok\nP x\n"),
        ("looping", ". looping\n"),
        ("badline", "- fine\n\n# c\nwhat is this\n"),
        ("badword", "-_a -q_b\n"),
        ("src-root/.f", "H x\n"),
    ];
    for args in bad {
        let work = setup(&Case {
            name: "bad",
            args: &[],
            files,
        });
        let args = strings(args);
        let status = std::process::Command::new(stock_rsync())
            .current_dir(work.path())
            .args(["-a", "--dry-run"])
            .args(&args)
            .args(["src-root/", "never-created/"])
            .output()
            .unwrap()
            .status;
        assert!(!status.success(), "stock rsync accepted {args:?}");
        let (opts, cvs) = our_options(work.path(), &args);
        // Errors in per-directory files show when the walk enters the root.
        let root = work.path().join("src-root");
        let err = rtsync_filter::FilterSet::from_options(
            &opts,
            cvs,
            Default::default(),
            &mut rtsync_filter::FsSource::new(work.path()),
        )
        .and_then(|mut set| set.enter_dir(b"", &mut rtsync_filter::FsSource::new(&root)))
        .expect_err("we accepted a rule stock rsync refuses");
        assert_eq!(
            Some(err.rsync_exit_code()),
            status.code(),
            "exit code for {args:?}: {err}"
        );
    }
}
