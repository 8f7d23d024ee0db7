//! Names in output follow the locale as stock's client prints them: in the C locale every
//! byte above 0x7f is escaped (`\#303\#251` for a UTF-8 `é`), in a UTF-8 locale only bytes
//! that are not UTF-8 (`\#351` for a latin1 `é`) — in item lines, deletions and messages
//! such as `skipping non-regular file`, locally, pushing and pulling, against stock; control
//! characters as `\#ooo`, and a backslash that would read as such an escape as `\#134`.

mod interop_util;

use interop_util::*;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Output;

fn tree(root: &Path) {
    let src = root.join("src");
    let dst = root.join("dst");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&dst).unwrap();
    let name = |b: &[u8]| OsStr::from_bytes(b).to_owned();
    std::fs::write(src.join(name(b"caf\xe9")), b"latin1\n").unwrap();
    std::fs::write(src.join("né"), b"utf8\n").unwrap();
    std::os::unix::fs::symlink("x", src.join(name(b"l\xe9"))).unwrap();
    std::os::unix::fs::symlink("x", src.join("lé")).unwrap();
    // Control characters, and a backslash that reads as an escape (escaped itself:
    // `\#134#012`); a plain backslash stays.
    for n in [
        &b"hash\\#012x"[..],
        b"nl\nname",
        b"bell\x07name",
        b"back\\slash",
        b" space ",
        b"-leading",
    ] {
        std::fs::write(src.join(name(n)), b"odd\n").unwrap();
    }
    std::fs::write(dst.join(name(b"old\\#101\x1b")), b"old\n").unwrap();
    std::fs::write(dst.join(name(b"old\xe9")), b"old\n").unwrap();
    std::fs::write(dst.join("oldé"), b"old\n").unwrap();
}

/// Output lines without byte counts and the command echo, sorted (the generator's and the
/// receiver's lines interleave by timing in stock).
fn lines(o: &Output) -> Vec<String> {
    let mut v: Vec<String> = [&o.stdout, &o.stderr]
        .iter()
        .flat_map(|b| {
            String::from_utf8_lossy(b)
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|l| {
            !l.starts_with("sent ") && !l.starts_with("total size") && !l.starts_with("opening ")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn names_are_escaped_as_the_locale_says() {
    for locale in ["C", "C.UTF-8"] {
        for mode in ["local", "push", "pull"] {
            for opts in [&["-rv", "--delete"][..], &["-ri", "--delete"]] {
                let mut got = Vec::new();
                for stock in [true, false] {
                    let work = tempfile::tempdir().unwrap();
                    tree(work.path());
                    let ssh = fake_ssh(work.path());
                    let here = work.path().display().to_string();
                    let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
                    match mode {
                        "local" => args.extend(["src/".into(), "dst/".into()]),
                        "push" => args.extend([
                            format!("--rsh={}", ssh.display()),
                            "src/".into(),
                            format!("lh:{here}/dst/"),
                        ]),
                        _ => args.extend([
                            format!("--rsh={}", ssh.display()),
                            format!("lh:{here}/src/"),
                            "dst/".into(),
                        ]),
                    }
                    let out = run_in_locale(stock, work.path(), locale, &args);
                    assert_eq!(out.status.code(), Some(0), "{out:?}");
                    got.push(lines(&out));
                }
                let what = format!("{locale} {mode} {opts:?}");
                assert!(
                    got[0].iter().any(|l| l.contains("caf\\#351")),
                    "{what}: stock escapes latin1: {:?}",
                    got[0]
                );
                assert!(
                    got[0].iter().any(|l| l.contains("hash\\#134#012x")),
                    "{what}: stock escapes a backslash that reads as an escape: {:?}",
                    got[0]
                );
                assert_eq!(got[1], got[0], "{what}: ours then stock");
            }
        }
    }
}
