//! `--list-only` (and a single source without a destination): an `ls -l`-like listing.

use rtsync_engine::report::{exit, list_line};
use rtsync_engine::Options;
use rtsync_tree::{compare_names, ScanOptions, ScanProblem};
use std::io::Write;
use std::path::PathBuf;

pub fn run(opts: &Options, sources: &[PathBuf]) -> i32 {
    // A listing without -r shows a directory's immediate contents, as rsync's implied -d.
    let scan = ScanOptions {
        recursive: opts.recursive,
        dirs: true,
        links: true,
        relative: opts.relative,
        implied_dirs: opts.implied_dirs,
        missing_args: opts.missing_args(),
        ..Default::default()
    };
    let mut filters = match rtsync_engine::filters::Filters::from_options(opts) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("rsync: {e}");
            return exit::SYNTAX;
        }
    };
    let mut scanned = rtsync_tree::scan_sources(sources, &scan, &mut filters);
    let mut code = exit::OK;
    for p in &scanned.problems {
        if let ScanProblem::Missing { path, error } = p {
            eprintln!(
                "rsync: [sender] link_stat \"{}\" failed: {}",
                rtsync_engine::local::full_path(path),
                rtsync_engine::local::os_error(error)
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
        if e.is_missing() {
            // `--delete-missing-args`: the name is listed as missing.
            let line = rtsync_engine::report::missing_list_line(e, opts.atimes > 0);
            let _ = writeln!(out, "{line}");
            continue;
        }
        let mut line = list_line(e, level, opts.links, opts.atimes > 0);
        line.push(b'\n');
        let _ = out.write_all(&line);
    }
    let _ = out.flush();
    if code != exit::OK {
        eprintln!(
            "rsync error: {} (code {code}) at main.c(1394) [sender={}]",
            rtsync_engine::report::exit_message(code),
            rtsync_engine::RSYNC_VERSION
        );
    }
    code
}
