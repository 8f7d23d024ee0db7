//! Differential tests of particular situations: parent-directory scans,
//! sources without a trailing slash, $CVSIGNORE, a deep nested scenario,
//! and error locations.

use std::collections::BTreeSet;
use std::path::Path;

use crate::util::*;

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
    assert!(
        err.to_string().ends_with(": <rule from sub/.f line 2>"),
        "{err}"
    );
    // The message never echoes the file's text; the detail does.
    assert!(!err.to_string().contains("nonsense"), "{err}");
    assert!(err.detail().to_string().contains("nonsense"));
    set.leave_dir();
    assert_eq!(set.depth(), 0);
    // Nested merge: a file named by a file is not named itself, only where it was named.
    let mut files = MemSource::default()
        .with("outer", ". inner\n")
        .with("inner", "- a\n- b\n? c\n");
    let err = FilterSet::new()
        .add_filter(b". outer", &mut files)
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with(": <rule from a file named at outer line 1>"),
        "{err}"
    );
    // Missing files, depth limits, long lines.
    let err = FilterSet::new()
        .add_filter(b". nope", &mut MemSource::default())
        .unwrap_err();
    assert_eq!(err.rsync_exit_code(), 11);
    assert!(matches!(err, FilterError::NotFound { .. }), "{err}");
    let mut files = MemSource::default().with("loop", ". loop\n");
    let err = FilterSet::new()
        .add_filter(b". loop", &mut files)
        .unwrap_err();
    assert!(err.to_string().contains("depth limit"), "{err}");
    // Over-long rules are discarded with a warning, as stock rsync does.
    let long = format!("- {}\n- a\n", "x".repeat(6000));
    let mut files = MemSource::default().with("long", long);
    let mut set = FilterSet::new();
    set.add_filter(b". long", &mut files).unwrap();
    assert!(set.is_excluded(b"a", false));
    let warnings = set.take_warnings();
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].to_string() == "discarding over-long filter: <rule from long line 1>",
        "{}",
        warnings[0]
    );
    let mut set = FilterSet::new();
    set.add_exclude("y".repeat(5000).as_bytes()).unwrap();
    assert!(set.is_empty());
    assert_eq!(set.take_warnings().len(), 1);
}

/// Over-long rules: stock rsync discards them and carries on.
#[test]
fn differential_over_long_rules() {
    let work = setup(&case("long", &[]));
    let work = work.path();
    let pattern = "x".repeat(5000);
    write_file(
        work,
        "long.rules",
        &format!("- {pattern}\n- foo\n+ {}\n- *.o\n", "y".repeat(4200)),
    );
    let arg_sets = [
        vec![format!("--exclude={pattern}"), "--exclude=a*".to_string()],
        vec!["--filter=. long.rules".to_string()],
        vec![
            format!("--filter=- {}", "z".repeat(4100)),
            "--filter=- core".to_string(),
        ],
    ];
    let mut failures = Vec::new();
    for args in &arg_sets {
        let stock = stock_selected(work, args).unwrap();
        let mut set = our_set(work, args).unwrap();
        assert!(!set.take_warnings().is_empty(), "no warning for {args:?}");
        let ours = our_selected(&mut set, &work.join("src-root")).unwrap();
        report(&mut failures, "over-long", &args[..], &stock, &ours);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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
