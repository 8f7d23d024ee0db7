//! Differential test of implied includes: for pulls from a stock server,
//! the names a stock client accepts must be exactly the names of the
//! source tree our implied rules allow.

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use rtsync_filter::ImpliedIncludes;

use crate::util::{make_tree, stock_rsync, write_file, TRICKY};

/// Like ssh: the remote command line is run by a shell (which globs).
const PLAIN_SSH: &str = "#!/bin/sh\nshift\nexec sh -c \"$*\"\n";

/// Every path beneath `dir`, relative to it (directories end in `/`).
fn all_names(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let entry = entry.unwrap();
        let name = format!(
            "{prefix}{}",
            String::from_utf8_lossy(entry.file_name().as_bytes())
        );
        if entry.file_type().unwrap().is_dir() {
            out.insert(format!("{name}/"));
            all_names(&entry.path(), &format!("{name}/"), out);
        } else {
            out.insert(name);
        }
    }
}

#[test]
fn differential_implied_includes() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let root = work.join("src-root");
    make_tree(&root, TRICKY);
    write_file(work, "ssh", PLAIN_SSH);
    std::fs::set_permissions(
        work.join("ssh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let root_str = root.to_str().unwrap().to_string();

    // (options, source args relative to the root, with "/./" marking -R)
    // (options, source args relative to the root with "/./" marking -R,
    // whether what we allow must equal what was sent: -d and several
    // arguments legitimately allow more than one transfer sends)
    let cases: &[(&[&str], &[&str], bool)] = &[
        (&["-a"], &["foo"], true),
        (&["-a"], &["foo/"], true),
        (&["-a"], &["dir/a/b"], true),
        (&["-a"], &["src/*.c"], true),
        (&["-a"], &["*.o"], true),
        (&["-a"], &["foo", "bar/keep.txt"], false),
        (&["-a"], &["br[ack]et"], true),
        (&["-a"], &["dir//a/./b/"], true),
        (&["-a"], &["dir/a/."], true),
        (&["-a"], &["."], true),
        (&["-lptgoD", "-d"], &["foo"], false),
        (&["-lptgoD", "-d"], &["foo/"], false),
        (&["-lptgoD"], &["c.txt"], true),
        (&["-a", "-R"], &["./dir/a/b"], true),
        (&["-a", "-R"], &["./foo/sub", "./bar/foo/baz"], false),
        (&["-a", "-R"], &["./src/lib/*.c"], true),
        (&["-a", "-R"], &["dir/./a/b/c"], true),
        (&["-a", "-R"], &["dir/a/b"], true),
    ];
    let mut failures = Vec::new();
    for (opts, args, exact) in cases {
        let relative = opts.contains(&"-R");
        let recurse = opts.contains(&"-a");
        let dirs = opts.contains(&"-d");
        let full: Vec<String> = args.iter().map(|a| format!("{root_str}/{a}")).collect();
        let mut cmd = Command::new(stock_rsync());
        cmd.current_dir(work)
            .args(["--dry-run", "--out-format=%n", "-e"])
            .arg(work.join("ssh"))
            .args(*opts);
        for (i, arg) in full.iter().enumerate() {
            cmd.arg(if i == 0 {
                format!("fake:{arg}")
            } else {
                format!(":{arg}")
            });
        }
        let out = cmd.arg(work.join("fresh/")).output().unwrap();
        assert!(
            out.status.success(),
            "stock pull {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stock: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| *l != "./")
            .map(str::to_string)
            .collect();

        let mut implied = ImpliedIncludes::new(recurse, dirs, relative);
        let mut candidates = BTreeSet::new();
        for arg in &full {
            implied.add_arg(arg.as_bytes(), false);
            if relative {
                match arg.find("/./") {
                    Some(i) => all_names(Path::new(&arg[..i]), "", &mut candidates),
                    None => {
                        // Names are the whole path: the root's own
                        // ancestors are candidates too.
                        let rel = root_str.trim_start_matches('/');
                        let mut prefix = String::new();
                        for part in rel.split('/') {
                            prefix.push_str(part);
                            prefix.push('/');
                            candidates.insert(prefix.clone());
                        }
                        all_names(&root, &prefix, &mut candidates);
                    }
                }
            } else {
                let base = if arg.ends_with('/') || arg.ends_with("/.") {
                    Path::new(arg).to_path_buf()
                } else {
                    Path::new(arg).parent().unwrap().to_path_buf()
                };
                all_names(&base, "", &mut candidates);
            }
        }
        let ours: BTreeSet<String> = candidates
            .into_iter()
            .filter(|c| {
                let is_dir = c.ends_with('/');
                implied.allows(c.trim_end_matches('/').as_bytes(), is_dir)
            })
            .collect();
        // Accepted names must all be allowed; and what we allow beyond
        // them must be only what the sender had no reason to send.
        let rejected: Vec<_> = stock.difference(&ours).collect();
        let extra: Vec<_> = ours.difference(&stock).collect();
        if !rejected.is_empty() || (*exact && !extra.is_empty()) {
            failures.push(format!("{opts:?} {args:?}:\n  stock sent, we reject: {rejected:?}\n  we allow, not sent: {extra:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
