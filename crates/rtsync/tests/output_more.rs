//! Output that only reads right when it is stock's to the byte: `--progress` lines, the extra
//! lines of `-vv`, and `%b`/`%c` over the wire. The same command runs through stock rsync
//! and rtsync (locally, and as a client pushing to or pulling from a stock server over a
//! remote shell); stdout is compared whole after the fields that vary from run to run (rates,
//! times, the closing byte counts) are blanked.

mod interop_util;
mod local_util;

use interop_util::fake_ssh;
use local_util::{line_diff, stock_rsync};
use std::fs;
use std::path::Path;
use std::process::Command;

/// Where the client runs and where its peer is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Local,
    /// The client sends to a stock server over a remote shell.
    Push,
    /// The client receives from a stock server over a remote shell.
    Pull,
    /// A stock client sends over a remote shell to the server under test (stock's, or
    /// ours through --rsync-path).
    ToServer,
}

/// A small tree: files below, at and above rsync's 32 KiB chunk, an empty file, a
/// subdirectory, and a hard-linked pair.
fn tree(root: &Path) {
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    fs::write(root.join("a"), b"hello\n").unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(root.join("big"), &big).unwrap();
    fs::write(root.join("sub/c"), b"c\n").unwrap();
    fs::write(root.join("sub/deeper/d"), vec![b'd'; 32 * 1024]).unwrap();
    fs::hard_link(root.join("sub/c"), root.join("sub/linked")).unwrap();
}

/// Blanks what varies between runs: rates and times in progress lines, the rate and byte
/// counts of the closing summary.
fn blank(out: &str) -> String {
    let mut lines = Vec::new();
    for line in out.split('\n') {
        if line.starts_with("sent ") {
            lines.push("sent ...".to_string());
            continue;
        }
        if line.starts_with("total size is ") {
            lines.push("total size ...".to_string());
            continue;
        }
        if !line.contains('\r') {
            lines.push(line.to_string());
            continue;
        }
        // Widths vary with the rate's digits: words are compared, with each `\r` kept.
        let line = line.replace('\r', " CR ");
        let words: Vec<String> = line
            .split_whitespace()
            .map(|w| {
                if w.ends_with("B/s") && w.starts_with(|c: char| c.is_ascii_digit()) {
                    "RATE".to_string()
                } else if w.len() >= 7
                    && w.split(':').count() == 3
                    && w.split(':').all(|p| p.chars().all(|c| c.is_ascii_digit()))
                {
                    "TIME".to_string()
                } else {
                    w.to_string()
                }
            })
            .collect();
        lines.push(words.join(" "));
    }
    lines.join("\n")
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `args` with stock rsync (`stock`) or rtsync as the client in role `role`, copying
/// `src/` of a fresh work directory (prepared by `prep`, which may also make `dst/`).
fn run(stock: bool, role: Role, args: &[&str], prep: &dyn Fn(&Path)) -> Outcome {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    tree(&w.join("src"));
    prep(w);
    let mut cmd = local_util::rsync_command(stock || role == Role::ToServer);
    cmd.args(args);
    let ssh = fake_ssh(w).display().to_string();
    match role {
        Role::ToServer => cmd.args([
            "-e",
            &ssh,
            &format!("--rsync-path={}", interop_util::remote_rsync_path(!stock)),
            "src/",
            &format!("localhost:{}/dst/", w.display()),
        ]),
        Role::Local => cmd.args(["src/", "dst/"]),
        Role::Push => cmd.args([
            "-e",
            &ssh,
            "src/",
            &format!("localhost:{}/dst/", w.display()),
        ]),
        Role::Pull => cmd.args([
            "-e",
            &ssh,
            &format!("localhost:{}/src/", w.display()),
            "dst/",
        ]),
    };
    let out = cmd.current_dir(w).output().unwrap();
    // Each run has its own work directory.
    let unplace = |b: &[u8]| String::from_utf8_lossy(b).replace(&w.display().to_string(), "WORK");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: unplace(&out.stdout),
        stderr: unplace(&out.stderr),
    }
}

/// Stock and rtsync print the same (blanked) stdout, stderr and exit code.
fn same_output(role: Role, args: &[&str], prep: &dyn Fn(&Path)) {
    let stock = run(true, role, args, prep);
    let ours = run(false, role, args, prep);
    let (a, b) = (blank(&stock.stdout), blank(&ours.stdout));
    assert!(
        a == b,
        "{role:?} {args:?}: stdout differs (- stock, + ours):\n{}\n--- stock:\n{a}\n--- ours:\n{b}",
        line_diff(&a, &b)
    );
    assert_eq!(stock.stderr, ours.stderr, "{role:?} {args:?}: stderr");
    assert_eq!(stock.code, ours.code, "{role:?} {args:?}: exit code");
}

fn fresh(_: &Path) {}

/// A destination holding an older copy of every file (so `--no-whole-file` has a basis).
fn stale(w: &Path) {
    tree(&w.join("dst"));
    // Every time fixed (the directories' too, alike on both sides): two runs build their
    // trees at different moments, now and then on either side of a second.
    local_util::settle_times(&w.join("src"));
    local_util::settle_times(&w.join("dst"));
    fs::write(w.join("dst/a"), b"hellO\n").unwrap();
    let mut big = fs::read(w.join("src/big")).unwrap();
    big[50_000] ^= 1;
    fs::write(w.join("dst/big"), &big).unwrap();
    for f in ["a", "big", "sub/c", "sub/deeper/d", "empty"] {
        local_util::set_mtime(&w.join("dst").join(f), 1_000_000_000, 0);
    }
}

#[test]
fn progress_lines_locally() {
    for args in [
        &["-a", "--progress"][..],
        &["-a", "-P"],
        &["-av", "--progress"],
        &["-ai", "--progress"],
        &["-a", "--progress", "--out-format=%n %l"],
        &["-a", "--progress", "--out-format=%i %n %b"],
        &["-aH", "--progress"],
        &["-r", "--progress"],
        &["-a", "--progress", "--no-inc-recursive"],
    ] {
        same_output(Role::Local, args, &fresh);
    }
    same_output(
        Role::Local,
        &["-a", "--progress", "--no-whole-file"],
        &stale,
    );
    same_output(Role::Local, &["-av", "--progress", "-I"], &stale);
}

#[test]
fn progress_lines_of_a_push() {
    for args in [
        &["-a", "--progress"][..],
        &["-av", "--progress"],
        &["-ai", "--progress"],
        &["-a", "--progress", "--out-format=%n %l"],
    ] {
        same_output(Role::Push, args, &fresh);
    }
    same_output(Role::Push, &["-a", "--progress", "--no-whole-file"], &stale);
}

/// `dst` made a copy of `src` (`cp -a`).
fn copy_source_as_destination(w: &Path) {
    let st = Command::new("cp")
        .args(["-a", "src", "dst"])
        .current_dir(w)
        .status()
        .unwrap();
    assert!(st.success());
}

/// A destination where some files are current, one is stale, one is already hard-linked.
fn partly_current(w: &Path) {
    copy_source_as_destination(w);
    fs::write(w.join("dst/a"), b"hellO\n").unwrap();
    local_util::set_mtime(&w.join("dst/a"), 1_000_000_000, 0);
}

#[test]
fn double_verbose_lines_locally() {
    for (args, prep) in [
        (&["-avv"][..], &fresh as &dyn Fn(&Path)),
        (&["-avv"], &partly_current),
        (&["-avvH"], &partly_current),
        (&["-avv", "--no-whole-file"], &stale),
        (&["-avvn"], &stale),
        (&["-ivvH"], &partly_current),
        (&["-aivvH"], &partly_current),
        (&["-a", "--debug=deltasum", "--no-whole-file"], &stale),
        (&["-a", "--debug=flist"], &stale),
    ] {
        let stock = run(true, Role::Local, args, prep);
        let ours = run(false, Role::Local, args, prep);
        // `NAME is uptodate` travels as a message in stock and overtakes item lines by a
        // varying amount from run to run: each kind is compared in its own order.
        let split = |out: &str| -> (String, String) {
            let text = blank(out);
            let (up, rest): (Vec<&str>, Vec<&str>) =
                text.lines().partition(|l| l.ends_with(" is uptodate"));
            (up.join("\n"), rest.join("\n"))
        };
        let ((a1, a2), (b1, b2)) = (split(&stock.stdout), split(&ours.stdout));
        assert!(
            a1 == b1,
            "{args:?}: uptodate lines differ:\n{}",
            line_diff(&a1, &b1)
        );
        assert!(
            a2 == b2,
            "{args:?}: stdout differs:\n{}",
            line_diff(&a2, &b2)
        );
        assert_eq!(stock.code, ours.code, "{args:?}");
    }
}

#[test]
fn transferred_bytes_over_the_wire() {
    for role in [Role::Push, Role::Pull] {
        for args in [
            &["-a", "--out-format=%n %b %c %'b %i"][..],
            &["-az", "--out-format=%n %b %c"],
        ] {
            same_output(role, args, &fresh);
        }
        same_output(
            role,
            &["-a", "--no-whole-file", "--out-format=%n|%b|%c"],
            &stale,
        );
        same_output(role, &["-az", "-I", "--out-format=%n|%b|%c"], &stale);
    }
}

/// A width longer than rsync reads: the digits past its limit end the escape, which stays as
/// written, and the next escape is expanded (`%C` included, which must then be gathered).
#[test]
fn over_long_widths_in_formats() {
    for fmt in [
        "--out-format=%000000000000000000000000000000%C %n",
        "--out-format=%-0000000000000000000000000%n|",
        "--out-format=%00000000000000000000012%n|%'''''''''''''''''''''''l",
    ] {
        same_output(Role::Local, &["-a", "-c", fmt], &fresh);
        same_output(Role::Push, &["-a", fmt], &fresh);
    }
}

/// `--debug=nstr` of a local copy names the checksum and compressor in use.
#[test]
fn negotiated_names_locally() {
    for args in [
        &["-a", "--debug=NSTR"][..],
        &["-az", "--debug=nstr"],
        &["-az", "--compress-choice=zstd", "--debug=NSTR"],
        &[
            "-az",
            "--compress-choice=zlibx",
            "--compress-level=9",
            "--debug=NSTR",
        ],
        &["-az", "--compress-choice=lz4", "--debug=NSTR"],
        &["-ac", "--checksum-choice=xxh64", "--debug=NSTR"],
        &["-av", "--debug=NSTR"],
    ] {
        same_output(Role::Local, args, &fresh);
    }
}

/// `--info=stats`: level 1 is the closing summary, 2 the statistics block too.
#[test]
fn info_stats_levels() {
    for role in [Role::Local, Role::Push, Role::Pull] {
        for args in [
            &["-a", "--info=stats"][..],
            &["-a", "--info=stats2"],
            &["-av", "--info=stats0"],
            &["-a", "--stats", "--info=stats0"],
        ] {
            // The statistics' byte counts and times vary: only their labels are compared.
            let stock = run(true, role, args, &fresh);
            let ours = run(false, role, args, &fresh);
            let labels = |out: &str| -> Vec<String> {
                out.lines()
                    .map(|l| {
                        l.split(' ')
                            .filter(|w| !w.chars().any(|c| c.is_ascii_digit()))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect()
            };
            assert_eq!(
                labels(&stock.stdout),
                labels(&ours.stdout),
                "{role:?} {args:?}"
            );
            assert_eq!(stock.code, ours.code, "{role:?} {args:?}");
        }
    }
}

/// `--stats` of a local copy: a dry run sends no data (literal and matched data are 0) and
/// stock's sender reports its file list's size as 0. The timings and the byte counts of
/// the pipe between stock's processes are left out.
#[test]
fn local_stats_lines() {
    let keep = |out: &str| -> String {
        out.lines()
            .filter(|l| {
                !l.contains(" time: ")
                    && !l.starts_with("Total bytes ")
                    && !l.starts_with("sent ")
                    && !l.starts_with("total size is ")
            })
            .map(|l| format!("{l}\n"))
            .collect()
    };
    for args in [
        &["-a", "-n", "--stats"][..],
        &["-a", "--stats"],
        &["-a", "-n", "--stats", "--no-inc-recursive"],
        &["-a", "--stats", "-I", "--no-whole-file"],
        // In place, the destination is its own basis (blocks not yet overwritten). (-I:
        // without it, stock's generator, running ahead, also sends a hard link of a file
        // that was just rewritten in place through its other name.)
        &["-a", "--stats", "-I", "--no-whole-file", "--inplace"],
        &[
            "-a",
            "--stats",
            "-I",
            "--no-whole-file",
            "--inplace",
            "-B",
            "700",
        ],
    ] {
        for prep in [&fresh as &dyn Fn(&Path), &stale] {
            let stock = run(true, Role::Local, args, prep);
            let ours = run(false, Role::Local, args, prep);
            assert!(stock.stdout.contains("Literal data: "), "{}", stock.stdout);
            assert_eq!(keep(&ours.stdout), keep(&stock.stdout), "{args:?}");
            assert_eq!(ours.code, stock.code, "{args:?}");
        }
    }
}

/// `-R` with an absolute source: the sender's items keep the leading slash (locally and
/// on a push, where the client sends), its receiver's deletions do not, and `%f` never has
/// it; a `/./` marker starts the names after it.
#[test]
fn relative_absolute_sources_show_their_slash() {
    let outputs = |stock: bool| -> Vec<String> {
        let work = tempfile::tempdir().unwrap();
        let w = work.path();
        tree(&w.join("src"));
        fs::create_dir_all(w.join("l").join(w.strip_prefix("/").unwrap())).unwrap();
        let stale = w
            .join("l")
            .join(w.strip_prefix("/").unwrap())
            .join("src/stale");
        fs::create_dir_all(stale.parent().unwrap()).unwrap();
        fs::write(&stale, b"x").unwrap();
        let abs = format!("{}/src", w.display());
        let dotted = format!("{}/./src", w.display());
        let ssh = fake_ssh(w).display().to_string();
        let remote = format!("localhost:{}/p/", w.display());
        // The far end of the push is stock's either way.
        let rpath = stock_rsync().to_string();
        let runs: Vec<Vec<&str>> = vec![
            // (-O: the implied /tmp/ changes all the time.)
            vec!["-aRiO", "--delete", &abs, "l/"],
            vec!["-aRO", "--out-format=%n|%f", &abs, "f/"],
            vec!["-aRiO", &dotted, "d/"],
            vec!["-aRiO", "-e", &ssh, "--rsync-path", &rpath, &abs, &remote],
        ];
        runs.iter()
            .map(|args| {
                let mut cmd = local_util::rsync_command(stock);
                let out = cmd.args(args).current_dir(w).output().unwrap();
                let text = String::from_utf8_lossy(&out.stdout).to_string()
                    + &String::from_utf8_lossy(&out.stderr);
                // Stock's receiver may say a deletion before or after the sender's items.
                let mut lines: Vec<&str> = text.lines().collect();
                lines.sort();
                let text = format!("{args:?} -> {:?}\n{}", out.status.code(), lines.join("\n"));
                let place = w.display().to_string();
                text.replace(&place, "/WORK").replace(&place[1..], "WORK")
            })
            .collect()
    };
    let (want, got) = (outputs(true), outputs(false));
    assert!(want[0].contains(" /WORK/src/a\n"), "{}", want[0]);
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(g, w);
    }
}

/// `--copy-dest` with a basis holding the same symlink and fifo: they are made as stock's
/// try_dests_non copies them, quietly unless something differs from the twin (shown with
/// `-ii`).
#[test]
fn copy_dest_twins_of_links_and_specials() {
    let prep = |w: &Path| {
        let src = w.join("src");
        std::os::unix::fs::symlink("a", src.join("link")).unwrap();
        let fifo = std::ffi::CString::new(src.join("fifo").display().to_string()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let copied = Command::new("cp")
            .args(["-a", "src", "basis"])
            .current_dir(w)
            .status()
            .unwrap();
        assert!(copied.success());
    };
    for role in [Role::Local, Role::Pull] {
        for args in [
            &["-ai", "--copy-dest=../basis"][..],
            &["-aii", "--copy-dest=../basis"],
        ] {
            same_output(role, args, &prep);
        }
    }
}

/// A local copy uses the file an interrupted transfer left in the partial dir (relative or
/// absolute) as its basis, as stock's generator does: the same literal and matched data,
/// and the partial file gone afterwards.
#[test]
fn local_partial_dir_file_is_the_basis() {
    let keep = |out: &str| -> String {
        out.lines()
            .filter(|l| l.starts_with(['>', '.', 'c']) || l.contains(" data: "))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    for pd in [".p", "ABS"] {
        let run = |stock: bool| {
            let work = tempfile::tempdir().unwrap();
            let w = work.path();
            fs::create_dir_all(w.join("src")).unwrap();
            fs::create_dir_all(w.join("dst")).unwrap();
            fs::write(w.join("src/f"), vec![7u8; 120_000]).unwrap();
            fs::write(w.join("dst/f"), vec![200u8; 120_000]).unwrap();
            let dir = if pd == "ABS" {
                w.join("parts")
            } else {
                w.join("dst").join(pd)
            };
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("f"), vec![7u8; 60_000]).unwrap();
            local_util::set_mtime(&w.join("dst/f"), 1_000_000_000, 0);
            // (The roots alike, whatever second the run began in.)
            for d in ["src", "dst"] {
                local_util::set_mtime(&w.join(d), 1_200_000_000, 0);
            }
            let opt = format!(
                "--partial-dir={}",
                if pd == "ABS" {
                    dir.display().to_string()
                } else {
                    pd.to_string()
                }
            );
            let mut cmd = local_util::rsync_command(stock);
            let out = cmd
                .args(["-ai", "--no-whole-file", "--stats", &opt, "src/", "dst/"])
                .current_dir(w)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            assert!(!dir.join("f").exists(), "the partial file is gone");
            keep(&String::from_utf8_lossy(&out.stdout))
        };
        let (want, got) = (run(true), run(false));
        assert!(want.contains("Matched data: 119,"), "{want}");
        assert_eq!(got, want, "{pd}");
    }
}

/// Forty directories, each with four current files and one that is not (on top of `tree`,
/// all current), and a file only the destination has.
fn many_dirs(w: &Path) {
    for d in 1..=40 {
        for f in 1..=5 {
            let path = w.join(format!("src/D{d:02}/f{f}"));
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, format!("{d} {f}\n")).unwrap();
        }
    }
    copy_source_as_destination(w);
    fs::write(w.join("dst/extra"), b"only here\n").unwrap();
    // (The destination directory keeps the source's time: whether stock's generator sees
    // the time its own deletion gives it is timing.)
    let src_time = fs::metadata(w.join("src")).unwrap().modified().unwrap();
    let since = src_time.duration_since(std::time::UNIX_EPOCH).unwrap();
    local_util::set_mtime(
        &w.join("dst"),
        since.as_secs() as i64,
        i64::from(since.subsec_nanos()),
    );
    for d in 1..=40 {
        let path = w.join(format!("src/D{d:02}/f{}", d % 5 + 1));
        fs::write(&path, format!("{d} changed\n")).unwrap();
        local_util::set_mtime(&path, 1_500_000_000, 0);
    }
}

/// What varies between runs beyond `blank`: the --stats byte counts and times, and the heap
/// statistics' numbers and process ids, the remote command (which names the server under
/// test). (Stock's `[generator] expand file_list pointer array` lines, which say whether its
/// allocator moved a list, are left out: rtsync does not print them.)
fn blank_stats(out: &str) -> String {
    blank(out)
        .lines()
        .filter(|l| {
            !l.contains("] expand file_list pointer array to ")
                && !l.starts_with("opening connection using: ")
        })
        .map(|l| {
            if l.starts_with("Total bytes")
                || l.starts_with("File list")
                || (l.starts_with("  ") && l.contains("   ("))
            {
                l.split(':').next().unwrap_or(l).to_string()
            } else if let Some(rest) = l.strip_prefix("rsync[") {
                format!("rsync[P{}", &rest[rest.find(']').unwrap_or(0)..])
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// With -vv, stock's generator (local, or a receiving server's) says `NAME is uptodate` (and
/// its deletions) as messages,
/// which go out ahead of the item records it holds in its buffer: it flushes those when it
/// waits for the second file list, when it waits at the end of the transfers, and (the
/// whole list known from the start, without incremental recursion) every 200 entries.
/// Stock's own order can vary with timing: ours must be one stock shows in a few runs.
#[test]
fn uptodate_messages_overtake_held_item_lines() {
    for (role, args) in [
        &["-avv"][..],
        &["-avv", "--no-inc-recursive"],
        &["-avv", "--delete"],
        &["-avv", "--delete-after"],
        &["-avv", "--delete-delay"],
        &["-avv", "--stats", "--delete-delay"],
        &["-avv", "--stats", "--delete-after"],
    ]
    .into_iter()
    .map(|a| (Role::Local, a))
    .chain(
        [
            &["-avv"][..],
            &["-avv", "--no-inc-recursive"],
            &["-avv", "--delete-after"],
            &["-avv", "--delete"],
        ]
        .into_iter()
        .map(|a| (Role::ToServer, a)),
    ) {
        let ours = run(false, role, args, &many_dirs);
        let want = blank_stats(&ours.stdout);
        let mut first = None;
        let matched = (0..5).any(|_| {
            let stock = run(true, role, args, &many_dirs);
            assert_eq!(stock.code, ours.code, "{role:?} {args:?}: exit code");
            let got = blank_stats(&stock.stdout);
            let same = got == want;
            first.get_or_insert(got);
            same
        });
        let first = first.unwrap_or_default();
        assert!(
            matched,
            "{role:?} {args:?}: stdout differs (- stock, + ours):\n{}\n--- stock:\n{first}\n--- ours:\n{want}",
            line_diff(&first, &want)
        );
    }
}

/// Names a message must escape: a newline inside, and a backslash that reads as an escape;
/// the destination holds newer copies (`-u` says `NAME is newer`) or, with `current`,
/// the same ones (`-vv` says `NAME is uptodate`).
fn odd_names(w: &Path, current: bool) {
    for name in ["new\nline", "x\\#123y"] {
        fs::write(w.join("src").join(name), b"odd\n").unwrap();
        local_util::set_mtime(&w.join("src").join(name), 1_500_000_000, 0);
    }
    copy_source_as_destination(w);
    if !current {
        for name in ["new\nline", "x\\#123y"] {
            local_util::set_mtime(&w.join("dst").join(name), 1_900_000_000, 0);
        }
    }
}

/// A generator's messages name files raw and are escaped where they are printed (a
/// client's output): stock's `new\#012line is newer`, `x\#134#123y is uptodate`. Locally,
/// pulling, and from our receiving server.
#[test]
fn generator_messages_escape_names_once() {
    for role in [Role::Local, Role::Pull, Role::ToServer] {
        for (args, current) in [(&["-avvu"][..], false), (&["-avv"], true)] {
            let prep = |w: &Path| odd_names(w, current);
            let stock = run(true, role, args, &prep);
            let ours = run(false, role, args, &prep);
            let (a, b) = (blank_stats(&stock.stdout), blank_stats(&ours.stdout));
            assert!(
                a == b,
                "{role:?} {args:?}: stdout differs (- stock, + ours):\n{}",
                line_diff(&a, &b)
            );
            assert!(a.contains("new\\#012line is "), "{role:?} {args:?}: {a}");
            assert!(a.contains("x\\#134#123y is "), "{role:?} {args:?}: {a}");
            assert_eq!(stock.code, ours.code, "{role:?} {args:?}");
        }
    }
}

/// `--list-only` escapes a name and a symlink's target once, as stock's output filter does
/// the whole line: `new\#012line`, `x\#134#123y`, `-> t\#001`. Locally and pulling (the
/// pulled lines used to be escaped twice).
#[test]
fn list_only_escapes_names_and_targets_once() {
    let prep = |w: &Path| {
        odd_names(w, true);
        std::os::unix::fs::symlink("t\u{1}\\#055", w.join("src/lk")).unwrap();
        // Every time is fixed: the listing prints them, and the two runs build their
        // trees at different moments (a second apart, now and then).
        local_util::settle_times(&w.join("src"));
    };
    for role in [Role::Local, Role::Pull] {
        let args = &["-a", "--list-only"][..];
        let stock = run(true, role, args, &prep);
        let ours = run(false, role, args, &prep);
        assert!(
            stock.stdout == ours.stdout,
            "{role:?}: stdout differs (- stock, + ours):\n{}",
            line_diff(&stock.stdout, &ours.stdout)
        );
        for want in ["new\\#012line", "x\\#134#123y", "lk -> t\\#001\\#134#055"] {
            assert!(
                stock.stdout.contains(want),
                "{role:?}: {want}: {}",
                stock.stdout
            );
        }
        assert_eq!(stock.code, ours.code, "{role:?}");
    }
}
