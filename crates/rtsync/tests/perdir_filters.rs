//! Per-directory merge files (`-F`, `dir-merge`) against stock rsync: a rule that does not
//! parse ends the run with stock's words (the file named, the rule withheld) and exit code;
//! a dir-merge name with a path reaches above the transfer root as stock's does; `-F` reads
//! the `.rsync-filter` files of the root's parents.

mod interop_util;

use interop_util::*;
use std::fs;
use std::path::Path;

/// Runs stock, then ours, each into a fresh `dest` under `base` (same paths, so messages
/// naming them compare equal); returns (output, exit code) of each and checks the trees.
fn both(base: &Path, args: &[&str]) -> [(String, Option<i32>); 2] {
    let mut out = Vec::new();
    let mut trees = Vec::new();
    for ours in [false, true] {
        let dest = base.join("dest");
        let _ = fs::remove_dir_all(&dest);
        fs::create_dir(&dest).unwrap();
        out.push(run_local(ours, base, args));
        let keep = base.join(if ours { "t-ours" } else { "t-stock" });
        let _ = fs::remove_dir_all(&keep);
        fs::rename(&dest, &keep).unwrap();
        trees.push(keep);
    }
    // A bad file below the root: stock stops before its first transfer (its whole list,
    // or with incremental recursion, a race); our walk has copied what came before it.
    if !base.join("src/sub/.rsync-filter").exists() {
        assert_same_tree(&trees[1], &trees[0], false);
    }
    [out[0].clone(), out[1].clone()]
}

/// The lines of an output, sorted: stock's local receiver is another process, whose line
/// can come before or after the sender's.
/// (Its generator, when it had started, is the one that says it was signalled; at times
/// its receiver says so as well: the same line twice counts once.)
fn lines(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out
        .lines()
        .map(|l| {
            l.replace(
                "(code 19) at main.c(1660) [generator=",
                "(code 19) at main.c(1660) [Receiver=",
            )
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn same(base: &Path, args: &[&str]) -> (String, Option<i32>) {
    let [stock, ours] = both(base, args);
    assert_eq!(
        (lines(&ours.0), ours.1),
        (lines(&stock.0), stock.1),
        "rsync {args:?}"
    );
    stock
}

#[test]
fn bad_rule_in_a_per_directory_file_ends_the_run_like_stock() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    fs::create_dir_all(w.join("src/sub")).unwrap();
    fs::write(w.join("src/f"), "x\n").unwrap();
    fs::write(w.join("src/sub/g"), "y\n").unwrap();
    fs::write(w.join("secret"), "TOP-SECRET\n").unwrap();
    for (file, text) in [
        ("src/.rsync-filter", "Zbad-rule\n"),
        ("src/sub/.rsync-filter", "Zbad-rule\n"),
        ("src/.rsync-filter", "- ok\n+bad\n"),
        // A dir-merge name with a path: stock looks in the root's parent too, where the
        // file it finds does not parse.
        ("src/.rsync-filter", ": ../secret\n"),
    ] {
        let _ = fs::remove_file(w.join("src/.rsync-filter"));
        let _ = fs::remove_file(w.join("src/sub/.rsync-filter"));
        fs::write(w.join(file), text).unwrap();
        for args in [
            &["-rt", "-F", "src/", "dest/"][..],
            &["-rt", "-F", "--no-inc-recursive", "src", "dest/"][..],
        ] {
            let (out, code) = same(w, args);
            assert_eq!(code, Some(1), "{file}: {text:?}: {out}");
            assert!(!out.contains("SECRET") && !out.contains("Zbad"), "{out}");
        }
    }
}

#[test]
fn bad_rule_in_a_destination_file_stops_the_generator_like_stock() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    fs::create_dir_all(w.join("src/sub")).unwrap();
    fs::write(w.join("src/sub/a"), "a\n").unwrap();
    let mut results = Vec::new();
    for ours in [false, true] {
        let dest = w.join("d");
        let _ = fs::remove_dir_all(&dest);
        fs::create_dir_all(dest.join("sub")).unwrap();
        fs::write(dest.join("sub/.rsync-filter"), "Zbad\n").unwrap();
        set_mtime(&dest.join("sub/.rsync-filter"), 1_600_000_000, 0);
        let (out, code) = run_local(ours, w, &["-rt", "-F", "--delete", "src/", "d/"]);
        results.push((out, code, snapshot(&dest, false)));
    }
    assert_eq!(results[0].1, Some(1));
    assert_eq!(results[1].0, results[0].0);
    assert_eq!(results[1].1, results[0].1);
    assert!(results[1].2 == results[0].2, "trees differ");
}

#[test]
fn dir_merge_names_above_the_root_and_parent_files_apply_like_stock() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    fs::create_dir_all(w.join("p/src/sub")).unwrap();
    for f in ["a", "b", "c", "sub/a", "sub/b", "sub/c"] {
        fs::write(w.join("p/src").join(f), "x\n").unwrap();
    }
    // `-F` reads `.rsync-filter` in every parent of the first directory.
    fs::write(w.join("p/.rsync-filter"), "- a\n").unwrap();
    same(w, &["-rt", "-F", "p/src/", "dest/"]);
    same(w, &["-rt", "-F", "p/src", "dest/"]);
    // A nested dir-merge naming a file in the root's parent.
    fs::write(w.join("p/rules"), "- b\n").unwrap();
    fs::write(w.join("p/src/.rsync-filter"), ": ../rules\n").unwrap();
    same(w, &["-rt", "-F", "p/src/", "dest/"]);
    same(w, &["-rt", "--filter=: .rsync-filter", "p/src/", "dest/"]);
}

#[test]
fn bad_rule_on_a_server_sender_reaches_a_stock_client_like_stock() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    fs::create_dir_all(w.join("src/sub")).unwrap();
    fs::write(w.join("src/f"), "x\n").unwrap();
    fs::write(w.join("src/sub/.rsync-filter"), "Zbad\n").unwrap();
    let ssh = fake_ssh(w);
    let e = format!("-e{}", ssh.display());
    let src = format!("h:{}/src/", w.display());
    let mut got = Vec::new();
    for ours in [false, true] {
        let rp = format!("--rsync-path={}", remote_rsync_path(ours));
        let dest = w.join("dest");
        let _ = fs::remove_dir_all(&dest);
        got.push(run_local(false, w, &["-rt", "-F", &e, &rp, &src, "dest/"]));
    }
    assert_eq!(got[0].1, Some(12), "{}", got[0].0);
    assert_eq!(got[1], got[0]);
}

/// Rule files as stock reads them: `\r`, `\n` and `\r\n` end a line, a NUL ends the line's
/// text (the rest of that line is ignored), and with `--from0` only a NUL separates. In an
/// `--exclude-from` list and in a per-directory merge file.
#[test]
fn rule_files_end_lines_and_text_as_stock_reads_them() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    for f in ["a", "b", "c", "d", "e", "sub/a", "sub/b", "sub/c"] {
        fs::create_dir_all(w.join("src").join(f).parent().unwrap()).unwrap();
        fs::write(w.join("src").join(f), f).unwrap();
    }
    fs::write(w.join("list"), b"a\0b\r\nc\rd\n\0e\n").unwrap();
    fs::write(w.join("src/sub/.rules"), b"- a\0- b\r- c\n").unwrap();
    for args in [
        &["-ai", "--exclude-from=list", "src/", "dest/"][..],
        &["-ai", "--from0", "--exclude-from=list", "src/", "dest/"],
        &["-ai", "--filter=: .rules", "src/", "dest/"],
        &["-ai", "--from0", "--filter=: .rules", "src/", "dest/"],
    ] {
        let (out, code) = same(w, args);
        assert_eq!(code, Some(0), "{args:?}: {out}");
        assert!(out.contains(">f+++++++++ sub/b"), "{args:?}: {out}");
    }
}
