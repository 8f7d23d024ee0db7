//! Differential test of the wire form: stock rsync runs as a client through
//! a fake remote shell that records what the client writes; the filter list
//! found in that stream must equal what [`rtsync_filter::wire::client_rules`]
//! produces for the same options.

use std::path::Path;
use std::process::Command;

use std::collections::BTreeSet;

use rtsync_filter::wire::{client_rules, server_rules, ClientContext, ServerContext};
use rtsync_filter::{BeneathSource, CvsEnv};

use crate::util::{make_tree, our_selected_with, our_set, stock_rsync, write_file};

/// A remote shell that runs the server command locally and copies the
/// client's bytes to $CAPTURE.
const FAKE_SSH: &str = r#"#!/usr/bin/env python3
import os, subprocess, sys, threading
cap = open(os.environ["CAPTURE"], "wb")
proc = subprocess.Popen(sys.argv[2:], stdin=subprocess.PIPE)
def pump():
    while True:
        data = os.read(0, 65536)
        if not data:
            break
        cap.write(data); cap.flush()
        try:
            proc.stdin.write(data); proc.stdin.flush()
        except BrokenPipeError:
            break
    try:
        proc.stdin.close()
    except Exception:
        pass
threading.Thread(target=pump, daemon=True).start()
rc = proc.wait()
cap.close()
os._exit(rc)
"#;

/// Extracts the filter list from a client's byte stream (protocol 30+:
/// version, checksum-name list, then multiplexed data).
fn filter_list_from_capture(cap: &[u8]) -> Vec<String> {
    assert!(cap.len() > 5, "capture too short");
    let first = cap[4] as usize;
    let (len, mut pos) = if first & 0x80 != 0 {
        (((first & 0x7f) << 8) | cap[5] as usize, 6)
    } else {
        (first, 5)
    };
    pos += len;
    let mut data = Vec::new();
    while pos + 4 <= cap.len() {
        let header = u32::from_le_bytes(cap[pos..pos + 4].try_into().unwrap());
        let frame_len = (header & 0xff_ffff) as usize;
        let tag = (header >> 24) as i64 - 7;
        pos += 4;
        if tag == 0 {
            data.extend_from_slice(&cap[pos..(pos + frame_len).min(cap.len())]);
        }
        pos += frame_len;
    }
    let mut rules = Vec::new();
    let mut at = 0;
    loop {
        let len = i32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        at += 4;
        if len == 0 {
            return rules;
        }
        rules.push(String::from_utf8_lossy(&data[at..at + len]).into_owned());
        at += len;
    }
}

fn stock_wire(work: &Path, push: bool, args: &[&str]) -> Vec<String> {
    stock_run(work, push, args).0
}

/// Runs stock rsync through the recording shell; returns the filter list
/// the client sent and the names it listed (`--dry-run`, `%n`).
fn stock_run(work: &Path, push: bool, args: &[&str]) -> (Vec<String>, BTreeSet<String>) {
    let ssh = work.join("fakessh");
    let cap = work.join("capture.bin");
    let _ = std::fs::remove_file(&cap);
    let (src, dst) = if push {
        (
            format!("{}/", work.join("src-root").display()),
            format!("fake:{}/", work.join("dst-root").display()),
        )
    } else {
        (
            format!("fake:{}/", work.join("src-root").display()),
            format!("{}/", work.join("fresh").display()),
        )
    };
    let out = Command::new(stock_rsync())
        .current_dir(work)
        .args(["-a", "--dry-run", "--out-format=%n"])
        .arg("-e")
        .arg(&ssh)
        .args(args)
        .arg(src)
        .arg(dst)
        .env("CAPTURE", &cap)
        .env("HOME", work.join("home"))
        .env_remove("CVSIGNORE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stock rsync failed for {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    (
        filter_list_from_capture(&std::fs::read(&cap).unwrap()),
        listed,
    )
}

/// The server side: the rules a stock client sent, parsed by us as a
/// sending server, must select what the stock server sent.
fn check_server_side(work: &Path, args: &[&str], failures: &mut Vec<String>) {
    let (rules, stock) = stock_run(work, false, args);
    let ctx = ServerContext {
        am_sender: true,
        protocol: 32,
        delete_excluded: args.contains(&"--delete-excluded"),
        cvs_exclude: args.contains(&"-C"),
    };
    let env = CvsEnv {
        home_cvsignore: std::fs::read(work.join("home/.cvsignore")).ok(),
        cvsignore_var: None,
    };
    let bytes: Vec<Vec<u8>> = rules.iter().map(|r| r.clone().into_bytes()).collect();
    let root = work.join("src-root");
    let mut set = server_rules(&bytes, &ctx, env, &mut BeneathSource::new(&root)).unwrap();
    let ours = our_selected_with(&mut set, &root, &mut BeneathSource::new(&root)).unwrap();
    if stock != ours {
        let only_stock: Vec<_> = stock.difference(&ours).collect();
        let only_ours: Vec<_> = ours.difference(&stock).collect();
        failures.push(format!("server side {args:?} (rules {rules:?}):\n  only stock: {only_stock:?}\n  only ours: {only_ours:?}"));
    }
}

fn our_wire(work: &Path, push: bool, args: &[&str]) -> Option<Vec<String>> {
    let filter_args: Vec<String> = args
        .iter()
        .filter(|a| !matches!(**a, "--delete" | "-m"))
        .map(|a| a.to_string())
        .collect();
    let set = our_set(work, &filter_args).unwrap();
    let ctx = ClientContext {
        am_sender: push,
        protocol: 32,
        delete: args.contains(&"--delete") || args.contains(&"--delete-excluded"),
        delete_excluded: args.contains(&"--delete-excluded"),
        prune_empty_dirs: args.contains(&"-m"),
    };
    client_rules(&set, &ctx).unwrap().map(|list| {
        list.into_iter()
            .map(|r| String::from_utf8(r).unwrap())
            .collect()
    })
}

#[test]
fn differential_wire_form() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    make_tree(
        &work.join("src-root"),
        &[
            "a", "b.o", "sub/c", "sub/d.x", "core", "keep", "w", "x.home", "other", "sub/a",
            "sub/kept",
        ],
    );
    write_file(work, "src-root/.rsync-filter", "- b.o\n- /sub/d.x\n");
    write_file(work, "src-root/sub/.rsync-filter", "- c\n");
    write_file(work, "src-root/sub/.cvsignore", "kept\n");
    write_file(work, "src-root/.f", "- w\n");
    make_tree(&work.join("dst-root"), &[]);
    write_file(work, "home/.cvsignore", "*.home  other\n");
    write_file(work, "rules", "- a\n+ b\n: .x\nP kept\n");
    write_file(work, "fakessh", FAKE_SSH);
    std::fs::set_permissions(
        work.join("fakessh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    let cases: &[&[&str]] = &[
        &[
            "--delete",
            "--exclude=*.o",
            "--include=foo/",
            "--filter=P keep",
            "--filter=: /.rsync-filter",
        ],
        &["--delete", "-F", "-F"],
        &[
            "--delete",
            "--filter=H x",
            "--filter=S y",
            "--filter=R z",
            "--filter=-sr w",
            "--filter=-p per",
            "--filter=-! neg",
            "--filter=:n- .f",
            "--filter=:e .g",
            "--filter=dir-merge,w .h",
            "--filter=-/ /abs",
            "--filter=+/! /abs2/",
        ],
        &["--delete", "-C", "--exclude=a"],
        &["--delete", "--filter=-C", "--filter=:C"],
        &[
            "--delete",
            "--delete-excluded",
            "--exclude=*.o",
            "--filter=P keep",
            "--filter=:- .d",
            "--filter=: .e",
        ],
        &["--delete", "--exclude=*.o", "--delete-excluded"],
        &["--delete", "--filter=. rules"],
        &["--delete", "--exclude=a", "--filter=!", "--exclude=b"],
        &["-m", "--exclude=*.tmp"],
        &["--filter=:n- .f", "--exclude=a", "-C"],
        &["--delete", "--delete-excluded", "-C", "--filter=S core"],
    ];
    let mut failures = Vec::new();
    for args in cases {
        for push in [true, false] {
            let Some(ours) = our_wire(work, push, args) else {
                // No list at all: only a pushing client without --delete/-m.
                assert!(
                    push && !args.contains(&"--delete") && !args.contains(&"-m"),
                    "{args:?}"
                );
                continue;
            };
            let stock = stock_wire(work, push, args);
            if stock != ours {
                failures.push(format!(
                    "{} {args:?}:\n  stock: {stock:?}\n  ours:  {ours:?}",
                    if push { "push" } else { "pull" }
                ));
            }
        }
    }
    for args in cases {
        check_server_side(work, args, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Random rule lists with all modifiers, pushed and pulled (fixed seed).
#[test]
fn differential_wire_random() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    make_tree(&work.join("src-root"), &["a", "b.o", "sub/c"]);
    make_tree(&work.join("dst-root"), &[]);
    write_file(work, "fakessh", FAKE_SSH);
    std::fs::set_permissions(
        work.join("fakessh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let rules = [
        "- a",
        "+ b/",
        "H c",
        "S d",
        "P e",
        "R f",
        "-sr g",
        "-p h",
        "-! i",
        "-/ /j",
        "+x k",
        ":n- .m",
        ":e .n",
        ":w .o",
        ":s .p",
        ":r .q",
        "-,sp r",
        "exclude,r s",
        "+p t",
        "-C",
        ":C",
    ];
    let mut failures = Vec::new();
    for round in 0..15 {
        let mut args: Vec<String> = vec!["--delete".to_string()];
        if round % 3 == 0 {
            args.push("--delete-excluded".to_string());
        }
        for _ in 0..1 + next(5) {
            args.push(format!("--filter={}", rules[next(rules.len())]));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        for push in [true, false] {
            let Some(ours) = our_wire(work, push, &args) else {
                continue;
            };
            let stock = stock_wire(work, push, &args);
            if stock != ours {
                failures.push(format!(
                    "{} {args:?}:\n  stock: {stock:?}\n  ours:  {ours:?}",
                    if push { "push" } else { "pull" }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
