//! Differential tests: stock inotifywait 3.22 and `rtsync inotifywait` run the same scripted
//! operations on identical trees and must print the same bytes and exit the same way.

mod inotify_util;

use inotify_util::{assert_same, run_plain, Case, Session, Tool};

const TERM: Option<i32> = Some(libc::SIGTERM);
const TREE: &str = "mkdir -p t/sub/deeper out && echo hi > t/sub/f && echo old > t/keep";

fn monitor_case(name: &str, args: &[&str], steps: &[&str]) {
    let out = assert_same(
        name,
        &Case {
            tool: "inotifywait",
            args,
            setup: TREE,
            steps,
            stop: TERM,
        },
    );
    assert!(!out.stdout.is_empty(), "case {name}: no events at all");
}

#[test]
fn file_lifecycle() {
    monitor_case(
        "file_lifecycle",
        &["-m", "-r", "t"],
        &[
            "touch t/a",
            "echo data >> t/a",
            "chmod 600 t/a",
            "cat t/a > /dev/null",
            "rm t/a",
        ],
    );
}

#[test]
fn renames_within_out_of_and_into_the_tree() {
    monitor_case(
        "renames",
        &["-m", "-r", "t"],
        &[
            "touch t/a",
            "mv t/a t/b",
            "mv t/b out/gone",
            "mv out/gone t/back",
            "mv t/back t/sub/moved",
        ],
    );
}

#[test]
fn mkdir_then_write_inside_and_deep_mkdir() {
    monitor_case(
        "mkdir",
        &["-m", "-r", "t"],
        &[
            "mkdir t/new",
            "echo x > t/new/file",
            "mkdir t/new/a",
            "mkdir t/new/a/b",
            "mkdir t/new/a/b/c",
            "echo y > t/new/a/b/c/deep",
        ],
    );
}

#[test]
fn rm_rf_of_a_watched_subtree() {
    // Every event but ACCESS: rm -rf reads each directory twice in a row, and whether the
    // kernel merges the two ACCESS events depends on when the reader reads.
    monitor_case(
        "rm_rf",
        &[
            "-m",
            "-r",
            "-e",
            "modify,attrib,close,open,move,move_self,create,delete,delete_self,unmount",
            "t",
        ],
        &[
            "mkdir t/x",
            "mkdir t/x/y",
            "touch t/x/y/f",
            "rm -rf t/sub",
            "rm -rf t/x",
        ],
    );
}

#[test]
fn editor_style_save_through_a_temp_file() {
    monitor_case(
        "editor_save",
        &["-m", "-r", "t"],
        &[
            "echo new > t/.keep.swp",
            "mv t/.keep.swp t/keep",
            "cp t/keep t/keep~ && echo newer > t/keep.tmp && mv -f t/keep.tmp t/keep && rm t/keep~",
        ],
    );
}

#[test]
fn watched_directory_renamed_then_written_to() {
    monitor_case(
        "dir_rename",
        &["-m", "-r", "t"],
        &[
            "mv t/sub t/sub2",
            // Appends only: a truncating write emits two MODIFYs that the kernel merges or not
            // depending on when the reader reads, for stock and rtsync alike.
            "echo z >> t/sub2/f",
            "touch t/sub2/deeper/g",
            "mkdir t/sub2/n",
            "touch t/sub2/n/h",
            "mv t/sub2 t/keepdir && touch t/keepdir/deeper/i",
        ],
    );
}

#[test]
fn directory_moved_out_and_back_in() {
    monitor_case(
        "dir_out_in",
        &["-m", "-r", "t"],
        &[
            "mv t/sub out/sub",
            "touch out/sub/f2 out/sub/deeper/g",
            "mv out/sub t/again",
            "touch t/again/h t/again/deeper/i",
        ],
    );
}

#[test]
fn event_selection_and_quiet() {
    monitor_case(
        "events",
        &[
            "-m",
            "-r",
            "-q",
            "-e",
            "close_write",
            "-e",
            "moved_to,delete",
            "t",
        ],
        &[
            "touch t/a",
            "echo 1 > t/b",
            "mv t/b t/c",
            "rm t/a t/c",
            "mkdir t/d",
            "echo 2 > t/d/e",
        ],
    );
}

#[test]
fn format_strings() {
    for fmt in ["%w|%f|%e|%:e|%_e|%%|%x", "%w%f%0%n", "%T %w%f", "[%e] %f"] {
        let mut args = vec!["-m", "-r", "--format", fmt];
        if fmt.contains("%T") {
            // A constant time format keeps the output comparable.
            args.extend(["--timefmt", "fixed"]);
        }
        args.push("t");
        monitor_case(fmt, &args, &["touch t/a", "mkdir t/d", "mv t/a t/d/b"]);
    }
    monitor_case(
        "no_newline",
        &["-m", "--format", "%f;", "--no-newline", "t"],
        &["touch t/a t/b"],
    );
}

#[test]
fn csv_output_quotes_like_stock() {
    monitor_case(
        "csv",
        &["-m", "-r", "-c", "t"],
        &[
            "touch 't/with,comma' 't/ lead' 't/trail ' 't/q\"uote' t/plain",
            // Separate steps: a file made at once inside a new directory races stock's watch.
            "mkdir 't/d,ir'",
            "touch 't/d,ir/x'",
        ],
    );
}

#[test]
fn exclude_and_include_regexes() {
    let steps = &[
        "touch t/a.txt t/b.log t/C.TXT",
        "mkdir t/logs",
        "touch t/logs/x.txt t/logs/y",
    ];
    monitor_case("exclude", &["-m", "-r", "--exclude", "\\.log$", "t"], steps);
    monitor_case(
        "excludei",
        &["-m", "-r", "--excludei", "\\.txt$", "t"],
        steps,
    );
    monitor_case("include", &["-m", "-r", "--include", "\\.txt$", "t"], steps);
    monitor_case("includei", &["-m", "-r", "--includei", "TXT", "t"], steps);
    monitor_case(
        "exclude_twice",
        &["-m", "-r", "--exclude", "nothing", "--exclude", "logs", "t"],
        steps,
    );
}

#[test]
fn at_exclusions_and_fromfile() {
    monitor_case(
        "at_exclude",
        &["-m", "-r", "t", "@t/sub"],
        &["touch t/sub/f t/sub/deeper/g t/a"],
    );
    let case = Case {
        tool: "inotifywait",
        args: &["-m", "-r", "--fromfile", "list"],
        setup: "mkdir -p t/sub/deeper u && printf 't\\n@t/sub/\\n\\nu\\n' > list",
        steps: &["touch t/sub/f t/a u/b"],
        stop: TERM,
    };
    assert_same("fromfile", &case);
}

#[test]
fn single_event_exit_codes() {
    // One event that was asked for: printed, exit 0.
    let out = assert_same(
        "single",
        &Case {
            tool: "inotifywait",
            args: &["t"],
            setup: TREE,
            steps: &["touch t/a"],
            stop: None,
        },
    );
    assert_eq!(out.code, Some(0));
    // A file removed while only modify is asked for: IGNORED ends the wait with exit 1.
    let out = assert_same(
        "unasked",
        &Case {
            tool: "inotifywait",
            args: &["-e", "modify", "t/keep"],
            setup: TREE,
            steps: &["rm t/keep"],
            stop: None,
        },
    );
    assert_eq!(out.code, Some(1));
    // delete_self asked for on a watched file.
    assert_same(
        "delete_self",
        &Case {
            tool: "inotifywait",
            args: &["-e", "delete_self", "t/keep"],
            setup: TREE,
            steps: &["rm t/keep"],
            stop: None,
        },
    );
}

#[test]
fn timeouts_exit_with_2() {
    let out = assert_same(
        "timeout",
        &Case {
            tool: "inotifywait",
            args: &["-t", "1", "t"],
            setup: TREE,
            steps: &[],
            stop: None,
        },
    );
    assert_eq!(out.code, Some(2));
    let out = assert_same(
        "monitor_timeout",
        &Case {
            tool: "inotifywait",
            args: &["-m", "-t", "1", "t"],
            setup: TREE,
            steps: &["touch t/a"],
            stop: None,
        },
    );
    assert_eq!(out.code, Some(2));
}

#[test]
fn outfile_and_qq() {
    for args in [&["-m", "-o", "log", "t"][..], &["-m", "-qq", "t"][..]] {
        let mut outcomes = Vec::new();
        for tool in [Tool::Stock, Tool::Rtsync] {
            let s = Session::start(tool, "inotifywait", args, TREE);
            s.step("touch t/a");
            let log = s.path().join("log");
            let out = s.stop(libc::SIGTERM);
            let logged = std::fs::read_to_string(log).unwrap_or_default();
            outcomes.push((out, logged));
        }
        assert_eq!(outcomes[1], outcomes[0], "{args:?}");
    }
}

#[test]
fn daemon_mode_writes_to_a_relative_outfile() {
    // inotify-tools' own regression test for issue #62, in both implementations.
    let mut logs = Vec::new();
    for tool in [Tool::Stock, Tool::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        inotify_util::sh(dir.path(), "touch log test-file");
        let file = dir.path().join("test-file");
        let st = inotify_util::command(tool, "inotifywait")
            .args([
                "--quiet",
                "--daemon",
                "--outfile",
                "log",
                "--event",
                "ATTRIB",
                "--timeout",
                "3",
            ])
            .arg(&file)
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(0), "{tool:?}: the parent returns at once");
        std::thread::sleep(std::time::Duration::from_millis(700));
        inotify_util::sh(dir.path(), "chmod 777 test-file");
        std::thread::sleep(std::time::Duration::from_millis(700));
        let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
        logs.push(log.replace(dir.path().to_str().unwrap(), "DIR"));
    }
    assert_eq!(logs[1], logs[0]);
    assert_eq!(logs[0], "DIR/test-file ATTRIB \n");
}

#[test]
fn no_dereference() {
    let case = Case {
        tool: "inotifywait",
        args: &["-m", "-P", "link", "dirlink"],
        setup: "touch target && ln -s target link && mkdir d && ln -s d dirlink",
        steps: &["touch -h link", "touch target", "touch d/x"],
        stop: TERM,
    };
    assert_same("no_deref", &case);
    let case = Case {
        tool: "inotifywait",
        args: &["-m", "link", "dirlink"],
        setup: "touch target && ln -s target link && mkdir d && ln -s d dirlink",
        steps: &["touch -h link", "touch target", "touch d/x"],
        stop: TERM,
    };
    assert_same("deref", &case);
}

#[test]
fn argument_errors_match_stock() {
    let dir = tempfile::tempdir().unwrap();
    inotify_util::sh(dir.path(), "mkdir t && touch t/f");
    let cases: &[&[&str]] = &[
        &[],
        &["missing"],
        &["-r", "missing"],
        &["-e", "bogus", "t"],
        &["-e", "modify,bogus", "t"],
        &["-x", "t"],
        &["--bogus", "t"],
        &["--ex", "a", "t"],
        &["-e"],
        &["--format"],
        &["--monitor=1", "t"],
        &["-f", "t"],
        &["-t", "abc", "t"],
        &["-t", "", "t"],
        &["-t", "99999999999999999999", "t"],
        &["--exclude", "a", "--excludei", "b", "t"],
        &["--include", "a", "--includei", "b", "t"],
        &["--include", "a", "--exclude", "b", "t"],
        &["--exclude", "(", "t"],
        &["--include", "[", "t"],
        &["-c", "--format", "%w", "t"],
        &["--no-newline", "t"],
        &["--timefmt", "%H", "t"],
        &["--format", "%T", "t"],
        &["--format", "", "--no-newline", "t"],
        &["-d", "t"],
        &["-d", "-o", "/nonexistent/dir/log", "t"],
        &["--fromfile", "a", "--fromfile", "b", "t"],
        &["-o", "a", "-o", "b", "t"],
        &["--fromfile", "/nonexistent"],
        &["@t"],
        &["-t", "1", "t/f", "missing"],
    ];
    for args in cases {
        let (stock, ours) = run_plain("inotifywait", args, dir.path());
        assert_eq!(ours, stock, "inotifywait {args:?}");
    }
}

#[test]
fn help_exits_like_stock() {
    let dir = tempfile::tempdir().unwrap();
    let (stock, ours) = run_plain("inotifywait", &["-h"], dir.path());
    assert_eq!(ours.code, stock.code);
    assert!(ours.stdout.contains("--monitor") && ours.stdout.contains("close_write"));
}

#[test]
fn argv0_personality() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("inotifywait");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_rtsync"), &link).unwrap();
    inotify_util::sh(dir.path(), "mkdir t");
    let out = std::process::Command::new(&link)
        .args(["-t", "1", "-e", "bogus", "t"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "'bogus' is not a valid event!  Run with the '--help' option to see a list of events.\n"
    );
    let out = std::process::Command::new(&link)
        .args(["-q", "-t", "1", "t"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// The one intended difference: entries created in a brand-new directory before its watch
/// existed. The watcher is frozen while the tree is built, so the order is deterministic.
#[test]
fn reports_entries_stock_misses_in_brand_new_directories() {
    let mut outs = Vec::new();
    for tool in [Tool::Stock, Tool::Rtsync] {
        let s = Session::start(
            tool,
            "inotifywait",
            &["-m", "-r", "-e", "create", "t"],
            TREE,
        );
        s.signal(libc::SIGSTOP);
        s.step("mkdir -p t/new/a/b && echo x > t/new/a/b/f && touch t/new/top");
        s.signal(libc::SIGCONT);
        std::thread::sleep(std::time::Duration::from_millis(300));
        s.step("touch t/new/a/b/later");
        outs.push(s.stop(libc::SIGTERM).stdout);
    }
    let (stock, ours) = (&outs[0], &outs[1]);
    assert_eq!(
        stock, "t/ CREATE,ISDIR new\nt/new/a/b/ CREATE later\n",
        "stock changed?"
    );
    let mut lines: Vec<&str> = ours.lines().collect();
    assert_eq!(lines.remove(0), "t/ CREATE,ISDIR new");
    assert_eq!(lines.pop(), Some("t/new/a/b/ CREATE later"));
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "t/new/ CREATE top",
            "t/new/ CREATE,ISDIR a",
            "t/new/a/ CREATE,ISDIR b",
            "t/new/a/b/ CREATE f",
        ]
    );
}

/// Without freezing the watcher: a burst of creations inside a directory tree that is being
/// created. Whatever the timing, every entry is reported once — by the kernel, by the scan of
/// the new directory, or by the re-check that closes the gap between reading and watching.
#[test]
fn no_entry_lost_or_doubled_in_a_burst_inside_a_new_directory() {
    let s = Session::start(
        Tool::Rtsync,
        "inotifywait",
        &["-m", "-r", "-e", "create", "t"],
        TREE,
    );
    s.step(
        "mkdir -p t/new/a/b; for i in $(seq 100); do touch t/new/f$i t/new/a/b/g$i; done; \
         mkdir t/new/a/c; touch t/new/a/c/h",
    );
    let out = s.stop(libc::SIGTERM).stdout;
    let mut got: Vec<&str> = out.lines().collect();
    got.sort();
    let mut want = vec![
        "t/ CREATE,ISDIR new".to_string(),
        "t/new/ CREATE,ISDIR a".to_string(),
        "t/new/a/ CREATE,ISDIR b".to_string(),
        "t/new/a/ CREATE,ISDIR c".to_string(),
        "t/new/a/c/ CREATE h".to_string(),
    ];
    for i in 1..=100 {
        want.push(format!("t/new/ CREATE f{i}"));
        want.push(format!("t/new/a/b/ CREATE g{i}"));
    }
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn unmount_of_a_watched_filesystem() {
    for args in [
        &["-m", "-r", "t"][..],
        &["t/mnt"][..],
        &["-e", "unmount", "t/mnt"][..],
    ] {
        let mut outs = Vec::new();
        for tool in [Tool::Stock, Tool::Rtsync] {
            let s = Session::start(
                tool,
                "inotifywait",
                args,
                "mkdir -p t/mnt && mount -t tmpfs none t/mnt && mkdir t/mnt/d",
            );
            s.step("touch t/mnt/d/f");
            s.step("umount t/mnt");
            outs.push(if args[0] == "-m" {
                s.stop(libc::SIGTERM)
            } else {
                s.finish()
            });
        }
        assert_eq!(outs[1], outs[0], "{args:?}");
    }
}

/// Odd ways of naming what to watch: files, the same directory twice, overlapping trees,
/// trailing slashes, symbolic links, a file given to -r.
#[test]
fn watch_path_variants() {
    let steps: &[&str] = &[
        "echo more >> t/keep",
        "touch t/sub/g",
        "mv t/keep t/kept",
        "mkdir t/sub/n",
        "touch t/sub/n/x",
        "rm t/kept",
    ];
    let variants: &[&[&str]] = &[
        &["-m", "t/keep"],
        &["-m", "t", "t"],
        &["-m", "-r", "t", "t/sub"],
        &["-m", "-r", "t/"],
        &["-m", "-r", "t//"],
        &["-m", "-r", "lnk"],
        &["-m", "-r", "t/keep"],
        &["-m", "t/sub", "t/keep", "t/sub/deeper"],
        &["-m", "-r", "-c", "t/sub", "t"],
    ];
    for args in variants {
        let case = Case {
            tool: "inotifywait",
            args,
            setup: "mkdir -p t/sub/deeper && echo old > t/keep && ln -s t lnk",
            steps,
            stop: TERM,
        };
        assert_same(&format!("{args:?}"), &case);
    }
}

#[test]
fn fromfile_on_stdin() {
    let mut outs = Vec::new();
    for tool in [Tool::Stock, Tool::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        inotify_util::sh(dir.path(), "mkdir -p t/a u");
        let mut child = inotify_util::command(tool, "inotifywait")
            .args(["-t", "3", "--fromfile", "-"])
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(b"u\n@t/a\nt\n").unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(700));
        inotify_util::sh(dir.path(), "touch t/f");
        let out = child.wait_with_output().unwrap();
        outs.push((out.status.code(), out.stdout, out.stderr));
    }
    assert_eq!(outs[1], outs[0]);
    assert_eq!(outs[0].1, b"t/ CREATE f\n");
}

/// A small deterministic generator of operation scripts (create, append, chmod, read, rename
/// within / out of / into the tree, mkdir, rm, rm -rf, directory renames, editor saves), so
/// that differential runs also cover sequences nobody wrote by hand.
fn random_script(seed: u64, steps: usize) -> Vec<String> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as usize) % n.max(1)
    };
    let mut files = vec!["t/keep".to_string(), "t/sub/f".to_string()];
    let mut dirs = vec!["t/sub".to_string(), "t/sub/deeper".to_string()];
    let mut ops = Vec::new();
    for k in 0..steps {
        let mut places = vec!["t".to_string()];
        places.extend(dirs.iter().cloned());
        let d = places[next(places.len())].clone();
        let pick = |files: &Vec<String>, i: usize| files[i % files.len().max(1)].clone();
        match next(11) {
            0 => {
                let f = format!("{d}/f{k}");
                ops.push(format!("echo x > {f}"));
                files.push(f);
            }
            1 if !files.is_empty() => ops.push(format!("echo y >> {}", pick(&files, next(99)))),
            2 if !files.is_empty() => ops.push(format!("chmod 640 {}", pick(&files, next(99)))),
            3 if !files.is_empty() => {
                let f = pick(&files, next(99));
                let g = format!("{d}/m{k}");
                ops.push(format!("mv {f} {g}"));
                files.retain(|x| *x != f);
                files.push(g);
            }
            4 if !files.is_empty() => {
                let f = pick(&files, next(99));
                ops.push(format!("mv {f} out/o{k}"));
                files.retain(|x| *x != f);
            }
            5 => {
                ops.push(format!("echo z > out/i{k} && mv out/i{k} {d}/i{k}"));
                files.push(format!("{d}/i{k}"));
            }
            6 => {
                ops.push(format!("mkdir {d}/d{k}"));
                dirs.push(format!("{d}/d{k}"));
            }
            7 if !files.is_empty() => {
                let f = pick(&files, next(99));
                ops.push(format!("rm {f}"));
                files.retain(|x| *x != f);
            }
            8 if !dirs.is_empty() => {
                let victim = dirs[next(dirs.len())].clone();
                let below = |x: &String| *x == victim || x.starts_with(&format!("{victim}/"));
                let targets: Vec<&String> = places.iter().filter(|x| !below(x)).collect();
                let to = format!("{}/r{k}", targets[next(targets.len())]);
                ops.push(format!("mv {victim} {to}"));
                let moved = |x: &String| {
                    if below(x) {
                        format!("{to}{}", &x[victim.len()..])
                    } else {
                        x.clone()
                    }
                };
                dirs = dirs.iter().map(moved).collect();
                files = files.iter().map(moved).collect();
            }
            9 if !files.is_empty() => {
                let f = pick(&files, next(99));
                ops.push(format!("echo e > {f}.tmp && mv {f}.tmp {f}"));
            }
            _ => ops.push(format!("touch {d}")),
        }
    }
    ops
}

#[test]
fn random_operation_sequences() {
    for (seed, args) in [
        (7, &["-m", "-r", "t"][..]),
        (8, &["-m", "-r", "-c", "t"][..]),
        (
            9,
            &[
                "-m",
                "-r",
                "--format",
                "%w%f %e",
                "--exclude",
                "d[0-9]",
                "t",
            ][..],
        ),
    ] {
        let script = random_script(seed, 20);
        let steps: Vec<&str> = script.iter().map(String::as_str).collect();
        let case = Case {
            tool: "inotifywait",
            args,
            setup: TREE,
            steps: &steps,
            stop: TERM,
        };
        assert_same(&format!("seed {seed}: {script:#?}"), &case);
    }
}
