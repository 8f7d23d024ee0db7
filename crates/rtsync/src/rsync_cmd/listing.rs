//! `--list-only` (and a single source without a destination): an `ls -l`-like listing.

use rtsync_engine::report::{exit, list_line};
use rtsync_engine::Options;
use rtsync_tree::{compare_names, ScanOptions, ScanProblem};
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
        unmunge_links: opts.munge_links,
        ..Default::default()
    };
    let mut filters = match rtsync_engine::filters::Filters::from_options(opts) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("rsync: {e}");
            return exit::SYNTAX;
        }
    };
    filters.trace = rtsync_engine::filters::FilterTrace::for_role(opts, "sender");
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
        if let ScanProblem::TooLong { dir, name, over } = p {
            eprintln!("{}", rtsync_engine::local::too_long_text(dir, name, *over));
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
    // A local listing is a local transfer whose receiver only lists: with -v it has the
    // transfer's header and summary (and -vv's words, and --stats), as stock's has.
    let started = std::time::Instant::now();
    let mut report = rtsync_engine::report::Reporter::new(opts);
    report.list_notice(if opts.incremental_recursion() {
        "sending incremental file list"
    } else {
        "building file list ... done"
    });
    for p in &scanned.problems {
        if let ScanProblem::Note { text } = p {
            report.info(text);
        }
    }
    if opts.debug_level("flist") >= 1 {
        report.info("delta-transmission disabled for local transfer or --whole-file");
    }
    let flist_time = started.elapsed().as_secs_f64();
    let mut stats = rtsync_engine::report::Stats::default();
    let mut listed = 0u64;
    for e in &scanned.entries {
        if e.is_missing() {
            // `--delete-missing-args`: the name is listed as missing.
            let line = format!(
                "{}\n",
                rtsync_engine::report::missing_list_line(e, opts.atimes > 0)
            );
            listed += line.len() as u64 + 4;
            if !opts.quiet {
                report.write_raw(line.as_bytes());
            }
            continue;
        }
        stats.files[rtsync_engine::report::kind_slot(e.kind)] += 1;
        if matches!(
            e.kind,
            rtsync_tree::FileKind::Regular | rtsync_tree::FileKind::Symlink
        ) {
            stats.total_size += e.size;
        }
        let mut line = list_line(e, level, opts.links, opts.atimes > 0);
        line.push(b'\n');
        // (Each line crosses back to the sending side as a message.)
        listed += line.len() as u64 + 4;
        // (-q silences the listing too: its lines are the receiver's messages.)
        if !opts.quiet {
            report.write_raw(&line);
        }
    }
    if opts.debug_level("deltasum") >= 1 {
        report.info(&stats.match_report());
    }
    // The byte counts are the pipe's between the two halves: the list one way (estimated),
    // the lines and the closing words the other.
    stats.sent = 32
        + scanned
            .entries
            .iter()
            .map(|e| e.name.len() as u64 + 12)
            .sum::<u64>();
    stats.received = listed + 12;
    if opts.info_stats() >= 2 && !opts.quiet {
        report.stats(&stats, flist_time, 0.0);
    }
    let summarized = opts.info_stats() >= 1 && !opts.quiet;
    if summarized {
        report.summary(&stats, started.elapsed().as_secs_f64(), opts.dry_run);
    }
    report.flush();
    if code != exit::OK {
        eprintln!(
            "{}",
            rtsync_engine::report::error_line(code, "main.c(1394)", "sender")
        );
    }
    code
}
