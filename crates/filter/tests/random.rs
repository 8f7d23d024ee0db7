//! Randomized differential tests with fixed seeds.

use crate::util::*;

use crate::receiver::DST_EXTRA;

/// Random rule lists (deterministic seed) over the tricky tree: any
/// difference from stock rsync is a bug in ours.
#[test]
fn differential_random_rules() {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let parts = [
        "foo",
        "bar",
        "sub",
        "src",
        "dir",
        "a",
        "b",
        "lib",
        "*",
        "**",
        "?",
        "[ab]*",
        "*.o",
        "f*",
        "*o*",
        "***",
        "a?",
        "[!f]*",
        "*[.]c",
        "deep*",
        "c",
        "tmp",
        "[[:upper:]]*",
        "x~",
        "*\\*name",
    ];
    let prefixes = [
        "+ ", "- ", "-! ", "+! ", "H ", "S ", "P ", "-p ", "- ", "+ ",
    ];
    let work = setup(&case("random", &[]));
    let mut failures = Vec::new();
    let dirs = [
        "", "foo/", "foo/sub/", "bar/", "bar/foo/", "src/", "src/lib/", "dir/", "dir/a/",
        "dir/a/b/",
    ];
    let merge_kinds = [
        "--filter=: .f",
        "--filter=:n .f",
        "--filter=:e .f",
        "--filter=:s .f",
        "--filter=:- .f",
    ];
    for round in 0..200 {
        // Half the rounds also scatter per-directory rule files.
        let per_dir = round % 2 == 1;
        let merge = merge_kinds[next(merge_kinds.len())];
        for dir in dirs {
            let path = work.path().join("src-root").join(dir).join(".f");
            let _ = std::fs::remove_file(&path);
            if per_dir && next(2) == 0 {
                let mut text = String::new();
                for _ in 0..1 + next(3) {
                    let mut pattern = String::new();
                    if next(3) == 0 {
                        pattern.push('/');
                    }
                    pattern.push_str(parts[next(parts.len())]);
                    if next(4) == 0 {
                        pattern.push('/');
                    }
                    if merge.contains(":-") {
                        text.push_str(&format!("{pattern}\n"));
                    } else if merge.contains(":s") {
                        text.push_str(&format!("{}{pattern}\n", ["+ ", "- ", "-! "][next(3)]));
                    } else {
                        text.push_str(&format!("{}{pattern}\n", prefixes[next(prefixes.len())]));
                    }
                }
                std::fs::write(&path, text).unwrap();
            }
        }
        let mut args = Vec::new();
        for _ in 0..1 + next(4) {
            let mut pattern = String::new();
            if next(3) == 0 {
                pattern.push('/');
            }
            for i in 0..1 + next(3) {
                if i > 0 {
                    pattern.push('/');
                }
                pattern.push_str(parts[next(parts.len())]);
            }
            if next(4) == 0 {
                pattern.push('/');
            }
            args.push(format!(
                "--filter={}{pattern}",
                prefixes[next(prefixes.len())]
            ));
        }
        if per_dir {
            let at = next(args.len() + 1);
            args.insert(at, merge.to_string());
        }
        let stock = stock_selected(work.path(), &args).unwrap();
        let ours = our_sender(work.path(), &args).unwrap();
        report(&mut failures, "random", &args, &stock, &ours);
    }
    assert!(
        failures.is_empty(),
        "{} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Random rule lists against receiver-side deletion (fixed seed).
#[test]
fn differential_random_receiver() {
    let mut state: u64 = 0x5851_f42d_4c95_7f2d;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let parts = [
        "extra*", "*.o", "*.keep", "olddir", "objdir/", "keepdir", "*", "gone*", "foo", "core",
        "other", "*.log", "x.o",
    ];
    let prefixes = [
        "+ ", "- ", "-! ", "H ", "S ", "P ", "R ", "-p ", "-s ", "-r ", "+r ", "P! ",
    ];
    let work = setup(&case("random receiver", &[]));
    let src = work.path().join("src-root");
    let dst = work.path().join("dst-root");
    let status = std::process::Command::new(stock_rsync())
        .args([
            "-a",
            format!("{}/", src.display()).as_str(),
            format!("{}/", dst.display()).as_str(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    make_tree(&dst, DST_EXTRA);
    let mut failures = Vec::new();
    for round in 0..80 {
        let mut args = Vec::new();
        if round % 3 == 0 {
            args.push("--delete-excluded".to_string());
        }
        for _ in 0..1 + next(3) {
            let mut pattern = String::new();
            if next(4) == 0 {
                pattern.push('/');
            }
            pattern.push_str(parts[next(parts.len())]);
            args.push(format!(
                "--filter={}{pattern}",
                prefixes[next(prefixes.len())]
            ));
        }
        let stock = stock_deleted(work.path(), &args).unwrap();
        let mut sender = our_set(work.path(), &args).unwrap();
        let sent = our_selected(&mut sender, &src).unwrap();
        let mut receiver = our_set(work.path(), &args).unwrap();
        let ours = our_deleted(&mut receiver, &dst, &sent);
        report(&mut failures, "random receiver", &args, &stock, &ours);
    }
    assert!(
        failures.is_empty(),
        "{} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
