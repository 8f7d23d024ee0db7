//! Differential tests: stock inotifywatch 3.22 and `rtsync inotifywatch` count the same
//! scripted operations on identical trees and must print the same table and messages.

mod inotify_util;

use inotify_util::{assert_same, run_plain, Case};

const TREE: &str = "mkdir -p t/sub/deeper out && echo hi > t/sub/f && echo old > t/keep";
const STEPS: &[&str] = &[
    "touch t/a",
    "echo data >> t/a",
    "chmod 600 t/a",
    "cat t/a t/keep > /dev/null",
    "mv t/a t/b",
    "mkdir t/new",
    "echo x > t/new/file",
    "mv t/sub t/sub2",
    "echo y >> t/sub2/f",
    "touch t/sub2/deeper/g",
    "mv t/b out/b",
    // Not `rm -rf`: its back-to-back directory reads give two ACCESS events that the kernel
    // merges or not depending on when the reader reads, for stock and rtsync alike.
    "rm t/new/file && rmdir t/new",
];

fn watch_case(name: &str, args: &[&str], sig: i32) {
    let out = assert_same(
        name,
        &Case {
            tool: "inotifywatch",
            args,
            setup: TREE,
            steps: STEPS,
            stop: Some(sig),
        },
    );
    assert!(out.stdout.starts_with("total  "), "case {name}: {out:?}");
}

#[test]
fn recursive_table_on_sigint() {
    watch_case("recursive", &["-r", "t"], libc::SIGINT);
}

#[test]
fn table_variants() {
    let variants: &[&[&str]] = &[
        &["-r", "-z", "t"],
        &["-r", "-v", "t"],
        &["-r", "-a", "modify", "t"],
        &["-r", "-a", "total", "t"],
        &["-r", "-d", "close_write", "t"],
        &["-r", "-e", "modify", "-e", "create,delete", "t"],
        &["-r", "--exclude", "sub", "t"],
        &["-r", "--includei", "NEW", "t"],
        &["t", "t/sub"],
        &["-r", "t", "@t/sub"],
    ];
    for args in variants {
        watch_case(&format!("{args:?}"), args, libc::SIGTERM);
    }
}

#[test]
fn timeout_ends_the_count() {
    let out = assert_same(
        "timeout",
        &Case {
            tool: "inotifywatch",
            args: &["-t", "2", "-r", "t"],
            setup: TREE,
            steps: &["touch t/a", "echo z >> t/keep"],
            stop: None,
        },
    );
    assert_eq!(out.code, Some(0));
    let out = assert_same(
        "no_events",
        &Case {
            tool: "inotifywatch",
            args: &["-t", "1", "t"],
            setup: TREE,
            steps: &[],
            stop: None,
        },
    );
    assert!(out.stderr.ends_with("No events occurred.\n"));
}

#[test]
fn argument_errors_match_stock() {
    let dir = tempfile::tempdir().unwrap();
    inotify_util::sh(dir.path(), "mkdir t");
    let cases: &[&[&str]] = &[
        &[],
        &["missing"],
        &["-r", "missing"],
        &["-e", "bogus", "t"],
        &["-a", "bogus", "t"],
        &["-a", "move", "t"],
        &["-a", "close", "t"],
        &["-a", "modify", "-d", "modify", "t"],
        &["-a", "modify", "-a", "attrib", "t"],
        &["-e", "modify", "-a", "attrib", "t"],
        &["-x", "t"],
        &["--exclude", "a", "--excludei", "b", "t"],
        &["--include", "a", "--exclude", "b", "t"],
        &["--exclude", "(", "t"],
        &["-t", "x", "t"],
        &["--fromfile", "a", "--fromfile", "b", "t"],
    ];
    for args in cases {
        let (stock, ours) = run_plain("inotifywatch", args, dir.path());
        assert_eq!(ours, stock, "inotifywatch {args:?}");
    }
}

#[test]
fn random_operation_sequence_statistics() {
    // The same kind of generated script as the inotifywait differential test, counted.
    let steps: &[&str] = &[
        "echo x > t/f1",
        "mkdir t/sub/d2",
        "mv t/f1 t/sub/d2/m3",
        "echo y >> t/sub/d2/m3",
        "mv t/sub t/r5",
        "chmod 640 t/r5/d2/m3",
        "echo z > out/i7 && mv out/i7 t/r5/deeper/i7",
        "mv t/r5/d2 out/gone",
        "touch out/gone/after",
        "echo e > t/keep.tmp && mv t/keep.tmp t/keep",
        "rm t/r5/deeper/i7",
    ];
    for args in [&["-r", "t"][..], &["-r", "-z", "-a", "moved_to", "t"][..]] {
        let out = assert_same(
            &format!("{args:?}"),
            &Case {
                tool: "inotifywatch",
                args,
                setup: TREE,
                steps,
                stop: Some(libc::SIGINT),
            },
        );
        assert!(out.stdout.contains("t/r5/"), "{out:?}");
    }
}

#[test]
fn sigusr1_prints_the_table_without_stopping() {
    let mut outs = Vec::new();
    for tool in [inotify_util::Tool::Stock, inotify_util::Tool::Rtsync] {
        let s = inotify_util::Session::start(tool, "inotifywatch", &["-r", "t"], TREE);
        s.step("touch t/a");
        s.signal(libc::SIGUSR1);
        s.step("touch t/sub/b");
        outs.push(s.stop(libc::SIGTERM));
    }
    assert_eq!(outs[1], outs[0]);
    assert_eq!(
        outs[0].stdout.matches("filename\n").count(),
        2,
        "{:?}",
        outs[0]
    );
}
