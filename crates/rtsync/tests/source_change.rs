//! A source file that changes size while it is being sent, against stock rsync: the sender
//! sends the size it found when it opened the file (zeros for what has gone, nothing of what
//! was added), a shrunk file is reported (`read errors mapping`), fails verification and is
//! sent again, and the run ends with code 23; the files after it are transferred all the same.
//!
//! The change is made deterministic by a small `LD_PRELOAD` library (built here with `cc`)
//! that resizes the named file just before the first `read()` of it.

mod interop_util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Our own preload: on the first read() of a descriptor open on $RESIZE_PATH, the file is
/// truncated (or extended) to $RESIZE_TO bytes, once per process.
const RESIZER: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>

static int done;

ssize_t read(int fd, void *buf, size_t len)
{
    static ssize_t (*next)(int, void *, size_t);
    const char *want = getenv("RESIZE_PATH"), *to = getenv("RESIZE_TO");
    if (!next)
        next = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
    if (!done && want && to) {
        char link[64], target[4096];
        ssize_t n;
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        n = readlink(link, target, sizeof target - 1);
        if (n > 0) {
            target[n] = 0;
            if (strcmp(target, want) == 0) {
                done = 1;
                truncate(want, atoll(to));
            }
        }
    }
    return next(fd, buf, len);
}
"#;

/// Builds the preload library in `dir`.
fn resizer(dir: &Path) -> PathBuf {
    let c = dir.join("resize.c");
    let so = dir.join("resize.so");
    std::fs::write(&c, RESIZER).unwrap();
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&so)
        .arg(&c)
        .arg("-ldl")
        .output()
        .expect("cc is needed to build the read() hook");
    assert!(
        out.status.success(),
        "building the read() hook failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    so
}

/// A source with a 1 MiB file (pseudo-random) and one after it.
fn source(root: &Path) -> PathBuf {
    std::fs::create_dir_all(root).unwrap();
    let big = root.join("01-changing.bin");
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let data: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&big, data).unwrap();
    std::fs::write(root.join("02-later.txt"), b"later file\n").unwrap();
    interop_util::past_times(root);
    big
}

/// Runs `cmd` with the hook resizing `target` to `to` bytes.
fn hooked(mut cmd: Command, so: &Path, target: &Path, to: u64) -> Output {
    cmd.env("LD_PRELOAD", so)
        .env("RESIZE_PATH", target)
        .env("RESIZE_TO", to.to_string())
        .output()
        .unwrap()
}

/// stdout lines sorted (a receiver's and a sender's lines interleave by timing), and the
/// byte counts of the summary dropped.
fn lines(out: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(out)
        .lines()
        .filter(|l| !l.starts_with("sent ") && !l.starts_with("total size is "))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

fn compare(what: &str, ours: &Output, stock: &Output, our_dest: &Path, stock_dest: &Path) {
    let text = |o: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert_eq!(
        ours.status.code(),
        stock.status.code(),
        "{what}: exit codes\nours:\n{}\nstock:\n{}",
        text(ours),
        text(stock)
    );
    assert_eq!(
        String::from_utf8_lossy(&ours.stderr),
        String::from_utf8_lossy(&stock.stderr),
        "{what}: stderr"
    );
    assert_eq!(lines(&ours.stdout), lines(&stock.stdout), "{what}: stdout");
    interop_util::assert_same_tree(our_dest, stock_dest, false);
}

/// Local copies: shrunk to nothing, shrunk halfway and grown, whole-file and delta, quiet and
/// itemized.
#[test]
fn a_source_changing_size_while_sent_locally_is_handled_as_stock() {
    let t = tempfile::tempdir().unwrap();
    let so = resizer(t.path());
    for (to, flags) in [
        (0u64, &["-a", "--no-whole-file"][..]),
        (0, &["-ai"]),
        (300_000, &["-av"]),
        (3 << 20, &["-ai"]),
    ] {
        let mut dests = Vec::new();
        for ours in [false, true] {
            // The same path for both runs (messages name it); stock's moves aside after.
            let w = t.path().join("run");
            let big = source(&w.join("src"));
            let mut cmd = if ours {
                let mut c = Command::new(env!("CARGO_BIN_EXE_rtsync"));
                c.arg("rsync");
                c
            } else {
                Command::new(interop_util::stock_rsync())
            };
            cmd.args(flags).args(["src/", "dst/"]).current_dir(&w);
            let out = hooked(cmd, &so, &big, to);
            let kept = t.path().join(format!("{to}-{}-{ours}", flags.join("")));
            std::fs::rename(&w, &kept).unwrap();
            dests.push((kept.join("dst"), out));
        }
        let what = format!("local {flags:?}, resized to {to}");
        compare(&what, &dests[1].1, &dests[0].1, &dests[1].0, &dests[0].0);
    }
}

/// Over a remote shell: our client sending (push) and our server sending (pull), each
/// against the same run with stock in its place; the receiver is stock's.
#[test]
fn a_source_changing_size_while_sent_over_the_wire_is_handled_as_stock() {
    let t = tempfile::tempdir().unwrap();
    let so = resizer(t.path());
    let ssh = interop_util::fake_ssh(t.path());
    for (to, push) in [(0u64, true), (0, false), (300_000, true), (3 << 20, false)] {
        let mut dests = Vec::new();
        for ours in [false, true] {
            let w = t.path().join("run");
            let big = source(&w.join("src"));
            let dest = w.join("dst");
            std::fs::create_dir_all(&dest).unwrap();
            let client = if ours && push {
                interop_util::remote_rsync_path(true)
            } else {
                interop_util::stock_rsync().display().to_string()
            };
            let server = interop_util::remote_rsync_path(ours && !push);
            let mut words: Vec<String> = client.split(' ').map(str::to_string).collect();
            words.extend([
                "-ai".to_string(),
                "-e".into(),
                ssh.display().to_string(),
                format!("--rsync-path={server}"),
            ]);
            if push {
                words.push(format!("{}/", w.join("src").display()));
                words.push(format!("localhost:{}/", dest.display()));
            } else {
                words.push(format!("localhost:{}/", w.join("src").display()));
                words.push(format!("{}/", dest.display()));
            }
            let mut cmd = Command::new(&words[0]);
            cmd.args(&words[1..]);
            let out = hooked(cmd, &so, &big, to);
            let kept = t.path().join(format!("{to}-{push}-{ours}"));
            std::fs::rename(&w, &kept).unwrap();
            dests.push((kept.join("dst"), out));
        }
        let what = format!("{} resized to {to}", if push { "push" } else { "pull" });
        compare(&what, &dests[1].1, &dests[0].1, &dests[1].0, &dests[0].0);
    }
}
