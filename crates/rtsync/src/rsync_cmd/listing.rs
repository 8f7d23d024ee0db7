//! `--list-only` (and a single source without a destination): an `ls -l`-like listing.

use rtsync_engine::report::{exit, human};
use rtsync_engine::Options;
use rtsync_tree::{compare_names, FileKind, NoFilter, ScanOptions, ScanProblem};
use std::io::Write;
use std::path::PathBuf;

fn mode_string(mode: u32, kind: FileKind) -> String {
    let t = match kind {
        FileKind::Directory => 'd',
        FileKind::Symlink => 'l',
        FileKind::BlockDevice => 'b',
        FileKind::CharDevice => 'c',
        FileKind::Fifo => 'p',
        FileKind::Socket => 's',
        FileKind::Regular => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(t);
    let bits = [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o040, 'r'),
        (0o020, 'w'),
        (0o010, 'x'),
        (0o004, 'r'),
        (0o002, 'w'),
        (0o001, 'x'),
    ];
    for (i, (bit, c)) in bits.iter().enumerate() {
        let mut ch = if mode & bit != 0 { *c } else { '-' };
        let special = match i {
            2 => Some((0o4000, 's', 'S')),
            5 => Some((0o2000, 's', 'S')),
            8 => Some((0o1000, 't', 'T')),
            _ => None,
        };
        if let Some((sbit, lower, upper)) = special {
            if mode & sbit != 0 {
                ch = if mode & bit != 0 { lower } else { upper };
            }
        }
        s.push(ch);
    }
    s
}

fn local_time(secs: i64) -> String {
    // SAFETY: localtime_r writes into the provided struct only.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let t = secs as libc::time_t;
    unsafe { libc::localtime_r(&t, &mut tm) };
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

pub fn run(opts: &Options, sources: &[PathBuf]) -> i32 {
    // A listing without -r shows a directory's immediate contents, as rsync's implied -d.
    let scan = ScanOptions {
        recursive: opts.recursive,
        dirs: true,
        links: true,
        relative: opts.relative,
        implied_dirs: opts.implied_dirs,
        ..Default::default()
    };
    let mut scanned = rtsync_tree::scan_sources(sources, &scan, &mut NoFilter);
    let mut code = exit::OK;
    for p in &scanned.problems {
        if let ScanProblem::Missing { path, error } = p {
            eprintln!(
                "rsync: [sender] link_stat \"{}\" failed: {}",
                path.display(),
                error
            );
            code = exit::PARTIAL;
        }
    }
    scanned
        .entries
        .sort_by(|a, b| compare_names(&a.name, a.is_dir(), &b.name, b.is_dir()));
    let level = if opts.human_readable > 0 {
        opts.human_readable + 1
    } else {
        1
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for e in &scanned.entries {
        let size = human(e.size, level);
        let mut line = format!(
            "{} {:>14} {} ",
            mode_string(e.mode, e.kind),
            if e.is_dir() { human(4096, level) } else { size },
            local_time(e.mtime)
        )
        .into_bytes();
        line.extend_from_slice(&e.name);
        if let Some(t) = &e.link_target {
            line.extend_from_slice(b" -> ");
            line.extend_from_slice(t);
        }
        line.push(b'\n');
        let _ = out.write_all(&line);
    }
    code
}
