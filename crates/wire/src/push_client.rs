//! Connecting for a push: the server receives, we scan our sources and send.

use rtsync_engine::files_from::ListUse;
use std::io::Write;
use std::path::PathBuf;

use rtsync_engine::Options;
use rtsync_tree::{compare_names, ScanOptions, ScanProblem};

use crate::checksum::FileHasher;
use crate::client::{flist_options, negotiate_config, ClientEnv, Outcome, Remote};
use crate::connect::DaemonAddress;
use crate::daemon_client::{self, Credentials, DaemonReply};
use crate::error::{Error, Result};
use crate::local;
use crate::mux::{ClientMessages, MessageHandler, MsgTag, MuxReader, MuxWriter, PrintMessages};
use crate::negotiate::{self, MAX_PROTOCOL};
use crate::push::{self, PushOptions, SendList};
use crate::server_args::server_args;
use rtsync_engine::report::Reporter;

/// io_error bits the sender reports in the file list's end marker.
const IOERR_GENERAL: i32 = 1;
const IOERR_VANISHED: i32 = 2;

/// Pushes local `sources` to `remote`.
pub fn push_to(
    opts: &Options,
    env: &ClientEnv,
    sources: &[String],
    remote: Remote,
) -> Result<Outcome> {
    let our_protocol = opts.protocol.unwrap_or(MAX_PROTOCOL).min(MAX_PROTOCOL);
    // We speak protocol 30 and newer only: refused before connecting, as for a pull.
    if our_protocol < negotiate::MIN_PROTOCOL {
        return Err(Error::Protocol(format!(
            "--protocol must be at least {} on the Client.",
            negotiate::MIN_PROTOCOL
        )));
    }
    let mut sargs = server_args(opts, false);
    // (Only the receiver's reasons against it — --delete-before/after, --delay-updates,
    // -m — are the server's to weigh: a sending client offers it regardless, as stock's.
    // A batch records the lists as they go; --only-write-batch sends one list up front.)
    let offer_inc = opts.recursive
        && opts.inc_recursive != Some(false)
        && push::inc::lists_supported(opts, &push::inc::readable_sources(sources))
        && !opts.only_write_batch;
    if offer_inc {
        crate::server_args::offer_inc_recurse(&mut sargs);
    }
    sargs.push(".".into());
    let (mut conn, protocol) = match &remote {
        Remote::Daemon {
            user,
            host,
            port,
            path,
        } => {
            if path.starts_with('/') {
                return Err(Error::Startup(
                    "ERROR: The remote path must start with a module name".into(),
                ));
            }
            let module = path.split('/').next().unwrap_or_default().to_string();
            let addr = DaemonAddress {
                host: host.clone(),
                port: port.or(opts.port),
                bind: opts.address.clone(),
                contimeout: opts.contimeout,
                io_timeout: opts.timeout,
                connect_prog: env.connect_prog.clone(),
                proxy: env.proxy.clone(),
                debug_connect: crate::client::client_debug(opts, "connect"),
                debug_cmd: crate::client::client_debug(opts, "cmd"),
            };
            let mut conn = crate::client::open_daemon(opts, env, user.as_deref(), &addr)?;
            let creds = Credentials {
                user: user.clone().or_else(|| env.user.clone()),
                password_file: opts.password_file.as_ref().map(PathBuf::from),
                env_password: env.password.clone(),
                early_input: opts.early_input.as_ref().map(PathBuf::from),
            };
            let path = if path.contains('/') {
                path.clone()
            } else {
                format!("{path}/")
            };
            let (sargs, secluded) = crate::client::daemon_args(opts, &sargs, vec![path]);
            let reply = daemon_client::daemon_login_with(
                &mut conn.reader,
                &mut conn.writer,
                our_protocol,
                &module,
                &creds,
                &mut PrintMessages,
                &mut || crate::client::announce_daemon_args(opts, &sargs),
            )?;
            let DaemonReply::Ready { protocol } = reply else {
                return Ok(Outcome {
                    listed_modules: true,
                    ..Default::default()
                });
            };
            daemon_client::send_daemon_args(&mut conn.writer, &sargs)?;
            crate::client::send_secluded(&mut conn.writer, secluded.as_deref())?;
            (conn, protocol)
        }
        Remote::Shell { user, host, path } => {
            let file = if path.is_empty() {
                ".".to_string()
            } else {
                path.clone()
            };
            let command = crate::client::shell_command(opts, env, &sargs, &[file], true);
            crate::client::open_remote_shell(
                opts,
                env,
                user.as_deref(),
                host,
                &command,
                our_protocol,
            )?
        }
    };
    let mut ncfg = negotiate_config(opts)?;
    ncfg.offered_inc_recurse = offer_inc;
    let mut neg = negotiate::client_setup(&mut conn.reader, &mut conn.writer, protocol, &ncfg)?;
    neg.apply_compress_level(opts.compress_level);
    if let Some(b) = &env.batch {
        b.record_header(&neg);
    }
    let started = std::time::Instant::now();
    // The outer buffer tells the sender when reading would wait on the peer.
    let counted_reader = std::io::BufReader::new(crate::connect::Counting::new(conn.reader));
    let received = counted_reader.get_ref().counter();
    let counted_writer = crate::connect::Counting::new(conn.writer);
    let sent = counted_writer.counter();
    let closer = &conn.closer;
    let session = || -> Result<Outcome> {
        let mut deletions = rtsync_engine::report::DeletionLines::new(opts);
        deletions.set_sum_len(
            rtsync_engine::report::shown_sum(opts.checksum, neg.checksum, neg.file_checksum)
                .digest_len(),
        );
        let handler = ClientMessages { deletions };
        let mut reader = MuxReader::new(counted_reader, Box::new(handler));
        reader.start_mux();
        let mut writer = MuxWriter::new(counted_writer);
        writer
            .start_mux()
            .map_err(|e| Error::io("starting multiplexing", e))?;
        writer.set_bwlimit(opts.bwlimit);

        let mut filters = crate::filters::client_filters(opts)?;
        filters.trace = rtsync_engine::filters::FilterTrace::for_role(opts, "sender");
        // The receiver only reads our filter rules when it deletes (or prunes).
        let prefix = crate::filters::client_list(opts, &neg, &filters, true)?;
        crate::client::become_copy_as(opts)?;
        let mut reporter = Reporter::new(opts);
        reporter.set_peer_names_unchanged();
        reporter.set_sum_kinds(neg.checksum, neg.file_checksum);
        let srcs: Vec<Vec<u8>> = sources
            .iter()
            .map(|s| crate::argtext::bytes(s).into_owned())
            .collect();
        let srcs: Vec<&[u8]> = srcs.iter().map(Vec::as_slice).collect();
        reporter.set_rooted_sources(opts.relative, &srcs);
        let mut prefix = prefix;
        if let Some(b) = &env.batch {
            // The batch records what we send after the filter rules (stock's start_write_batch).
            std::io::Write::write_all(&mut writer, &std::mem::take(&mut prefix))
                .map_err(|e| Error::io("sending filter list", e))?;
            writer.set_tee(Some(b.clone()));
            writer.set_batch_only(opts.only_write_batch);
        }
        let names = match remote_files_from(opts) {
            Some(_) => {
                // `--files-from=host:LIST`: the receiving server reads its list and sends us the
                // names once it has our filter rules.
                std::io::Write::write_all(&mut writer, &std::mem::take(&mut prefix))
                    .and_then(|_| std::io::Write::flush(&mut writer))
                    .map_err(|e| Error::io("sending filter list", e))?;
                Some(crate::server::read_forwarded_names(&mut reader, &neg)?)
            }
            None => local_files_from(opts, ListUse::Read)?,
        };
        let paths = source_paths(sources, names.as_deref());
        let mut popts = PushOptions {
            verbose: opts.verbose,
            compress_level: opts.compress_level,
            server: false,
            total_size: 0,
            follow_links: opts.copy_links || opts.copy_unsafe_links,
            noatime: opts.open_noatime,
            confine: None,
            // For the closing lines (and a batch records the sender's statistics).
            counts: Some(push::ByteCounts {
                read: received.clone(),
                written: sent.clone(),
            }),
            remove_source: opts.remove_source_files && !opts.dry_run,
            info_remove: opts.info_remove(),
            match_report: opts.debug_level("deltasum") >= 1,
            heap_report: opts.info_stats() >= 3,
            xattrs: opts.xattr_rules(),
            module: None,
            transfer_log: None,
            untimed: !opts.times,
            // (A local copy, as with --write-batch, logs its sent files as stock's local
            // sender does: `>f`.)
            itemize: !env.local_server
                && (opts.itemize > 0
                    || opts
                        .out_format
                        .as_deref()
                        .is_some_and(|f| rtsync_engine::report::format_has(f, b'i'))),
            append: crate::server_args::append_mode(opts),
            inplace: opts.inplace,
            dry_run: opts.dry_run,
            flist_times: (0, 0),
        };
        let lists = reporter.lists_items() || reporter.shows_progress();
        let pending = |r: &mut std::io::BufReader<_>| !r.buffer().is_empty();
        let io_error;
        let build_ms;
        // Transfer errors met while listing (they make the exit code 23).
        let mut list_errors = 0;
        let (stats, counts) = if neg.inc_recurse() {
            reporter.list_notice("sending incremental file list");
            reporter.flush();
            let sopts = scan_options(opts, &neg);
            let mut out = prefix;
            let cfg = push::inc::IncConfig {
                opts,
                sopts: &sopts,
                neg: &neg,
                fopts: flist_options(opts, &neg),
                problems: push::inc::Problems::Print,
                confine: None,
                io_error: 0,
                adjust: None,
            };
            let list_started = std::time::Instant::now();
            let mut list = push::inc::IncList::start(cfg, &paths, &mut filters, &mut out)?;
            build_ms = flist_ms(list_started);
            writer
                .write_all(&out)
                .map_err(|e| Error::io("writing to receiver", e))?;
            let stats = push::run_push_pacing(
                &mut reader,
                &mut writer,
                &neg,
                &mut list,
                &popts,
                lists.then_some(&mut reporter),
                pending,
            )
            .map_err(|e| answer_remote_exit(e, &mut reader, &mut writer, &neg, closer))?;
            io_error = list.io_error();
            list_errors = list.xfer_errors;
            (stats, (list.total_size, list.kind_counts))
        } else {
            let mut bits = 0;
            let list_started = std::time::Instant::now();
            if opts.recursive || opts.dirs {
                // (Without directories to transfer stock's sender says nothing of its list.)
                reporter.list_start("building file list ... ");
            }
            let sent_list = push::walk::send_list(
                opts,
                &neg,
                flist_options(opts, &neg),
                &paths,
                &mut filters,
                &mut writer,
                prefix,
                |problems| {
                    let (b, errors) = print_problems(problems);
                    bits = b;
                    list_errors += errors;
                    bits
                },
            )?;
            io_error = bits;
            build_ms = flist_ms(list_started);
            let mut list = sent_list.list;
            popts.total_size = list.total_size as i64;
            reporter.list_built();
            reporter.flush();
            let stats = push::run_push_pacing(
                &mut reader,
                &mut writer,
                &neg,
                &mut list,
                &popts,
                lists.then_some(&mut reporter),
                pending,
            )
            .map_err(|e| answer_remote_exit(e, &mut reader, &mut writer, &neg, closer))?;
            (stats, (list.total_size, list.kind_counts))
        };
        if let Some(b) = &env.batch {
            b.finish()?;
        }
        let times = (started, build_ms);
        finish_report(opts, reporter, counts, &sent, &received, times, &stats);
        // A remote shell's rsync may have failed without a word on the wire (stock's server
        // writes its errors to stderr): its exit status counts, as stock's client takes it.
        let remote_status = closer.wait();
        let mut outcome = Outcome {
            remote_status,
            ..Outcome::default()
        };
        outcome.stats.files_transferred = stats.files_sent;
        outcome.stats.literal_bytes = stats.literal_bytes;
        outcome.stats.matched_bytes = stats.matched_bytes;
        outcome.stats.deleted = stats.deleted;
        outcome.stats.errors = stats.errors + list_errors;
        outcome.stats.io_error = io_error | reader.oob.io_error;
        if reader.oob.xfer_error {
            outcome.stats.errors += 1;
        }
        Ok(outcome)
    };
    session().map_err(|e| crate::client::lost(e, &received, closer, None))
}

/// The receiver told us it stops (MSG_ERROR_EXIT with its code): as stock's sender, from
/// protocol 31 on answer (an empty MSG_ERROR_EXIT) and read on until it goes, printing what
/// it still says (a daemon's generator sends its own closing line after the code); before
/// 31 stock's sender simply exits, and so do we (a peer waiting for us to go would wait).
/// Bounded: after 10 seconds the connection is closed. Other errors pass through.
fn answer_remote_exit<R: std::io::Read, W: std::io::Write>(
    e: Error,
    reader: &mut MuxReader<R>,
    writer: &mut MuxWriter<W>,
    neg: &crate::negotiate::Negotiated,
    closer: &crate::connect::Closer,
) -> Error {
    if !matches!(e, Error::RemoteExit(_)) {
        return e;
    }
    if neg.protocol >= 31 {
        let _ = writer.send_msg(MsgTag::ErrorExit, &[]);
        let _ = std::io::Write::flush(writer);
        crate::pull::drain_until_peer_leaves(reader, closer);
    }
    e
}

/// Milliseconds since `from`, at least 1 (as stock's sender counts its list's generation).
pub(crate) fn flist_ms(from: std::time::Instant) -> i64 {
    from.elapsed().as_millis().clamp(1, i64::MAX as u128) as i64
}

/// Prints scan problems as stock's sender does; returns their io_error bits and how many
/// were transfer errors (each makes the exit code 23).
fn print_problems(problems: &[ScanProblem]) -> (i32, u64) {
    let (messages, bits) = problem_messages(problems);
    for (tag, text) in &messages {
        PrintMessages.message(*tag, text.as_bytes());
    }
    (bits, xfer_errors(&messages))
}

/// How many of a sender's `messages` are transfer errors: each makes the exit code 23
/// (stock's got_xfer_error), with or without an io_error bit.
pub(crate) fn xfer_errors(messages: &[(MsgTag, String)]) -> u64 {
    messages
        .iter()
        .filter(|(tag, _)| *tag == MsgTag::ErrorXfer)
        .count() as u64
}

/// Scans the sources into a sorted list; reports problems as stock does and returns the
/// io_error bits for the end marker.
pub(crate) fn build_list<F: rtsync_tree::ScanFilter>(
    opts: &Options,
    sources: &[String],
    neg: &negotiate::Negotiated,
    filter: &mut F,
    files_from_names: Option<&[Vec<u8>]>,
    confine: Option<rtsync_tree::Confine>,
) -> (SendList, i32) {
    let sopts = scan_options(opts, neg);
    let paths = source_paths(sources, files_from_names);
    let scanned = rtsync_tree::scan_sources_confined(&paths, &sopts, filter, confine);
    let (messages, io_error) = problem_messages(&scanned.problems);
    let mut order: Vec<usize> = (0..scanned.entries.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&scanned.entries[a], &scanned.entries[b]);
        compare_names(&x.name, x.is_dir(), &y.name, y.is_dir())
    });
    order.dedup_by(|a, b| scanned.entries[*a].name == scanned.entries[*b].name);
    let mut list = SendList::default();
    for i in order {
        let mut e = scanned.entries[i].clone();
        if opts.checksum && e.kind == rtsync_tree::FileKind::Regular {
            e.checksum = file_sum(&scanned.paths[i], neg).ok();
        }
        list.no_content
            .push(e.is_dir() && !scanned.descended.get(i).copied().unwrap_or(true));
        list.entries.push(e);
        list.paths.push(scanned.paths[i].clone());
    }
    list.mark_implied(opts.relative, opts.recursive);
    list.messages = messages;
    (list, io_error)
}

/// The scan options `opts` asks for, sending with protocol `neg`.
pub(crate) fn scan_options(opts: &Options, neg: &negotiate::Negotiated) -> ScanOptions {
    // Whether stock would send this list incrementally (we may not, e.g. with -R): a client
    // as its options allow, a server when the client offered it (`i`).
    let incremental = neg.protocol >= 30
        && if opts.server {
            opts.recursive && opts.rsh.as_deref().is_some_and(|c| c.contains('i'))
        } else {
            opts.incremental_recursion()
        };
    ScanOptions {
        incremental,
        recursive: opts.recursive,
        dirs: opts.dirs,
        links: opts.links,
        copy_links: opts.copy_links,
        copy_unsafe_links: opts.copy_unsafe_links,
        copy_dirlinks: opts.copy_dirlinks,
        one_file_system: opts.one_file_system,
        relative: opts.relative,
        // From protocol 30 on, a sender always lists the parents of `-R` names, flagged as
        // implied; `--no-implied-dirs` only tells the receiver not to apply them (stock's
        // receivers refuse a name whose parent is not in the list).
        implied_dirs: opts.implied_dirs || (opts.relative && neg.protocol >= 30),
        hard_links: opts.hard_links,
        missing_args: opts.missing_args(),
        xattrs: opts.xattr_rules(),
        acls: opts.acls,
        fake_super: opts.am_root() < 0,
        copy_devices: opts.copy_devices,
        unmunge_links: opts.munge_links,
        note_unsafe_copies: opts.info_level("symsafe") > 0,
        name_check: name_check(opts, neg),
    }
}

/// `--iconv`: an entry whose name (or, with CF_SYMLINK_ICONV, symlink target) does not
/// convert is left out with stock's message.
fn name_check(opts: &Options, neg: &negotiate::Negotiated) -> Option<rtsync_tree::NameCheck> {
    let ic = crate::client::transfer_iconv(opts).ok().flatten()?;
    let symlinks = neg.symlink_iconv();
    Some(rtsync_tree::NameCheck(std::sync::Arc::new(
        move |e: &rtsync_tree::FileEntry| {
            let fail = |what: &str, err: std::io::Error| {
                Some(crate::iconv::cannot_convert("sender", what, &e.name, &err))
            };
            if let Err(err) = ic.to_wire(&e.name) {
                return fail("filename", err);
            }
            match &e.link_target {
                Some(t) if symlinks => ic
                    .to_wire(t)
                    .err()
                    .and_then(|err| fail("symlink data for", err)),
                _ => None,
            }
        },
    )))
}

/// The command-line sources, or with `--files-from` the listed names beneath the one source.
fn source_paths(sources: &[String], files_from_names: Option<&[Vec<u8>]>) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = sources.iter().map(|s| crate::argtext::path(s)).collect();
    if let Some(names) = files_from_names {
        // --files-from: the names are relative to the one source directory.
        let dir = paths.first().cloned().unwrap_or_else(|| PathBuf::from("."));
        paths = rtsync_engine::files_from::sources(&dir, names);
    }
    paths
}

/// Stock's messages for scan problems, and the io_error bits for the end marker.
pub(crate) fn problem_messages(problems: &[ScanProblem]) -> (Vec<(MsgTag, String)>, i32) {
    let mut io_error = 0;
    let mut messages = Vec::new();
    // Paths are shown absolute, as stock's full_fname does (a daemon strips its module's).
    let full = |path: &std::path::Path| rtsync_engine::local::full_path(path);
    let err_text = |what: &str, path: &std::path::Path, error: &std::io::Error| {
        format!(
            "rsync: [sender] {what} \"{}\" failed: {} ({})\n",
            full(path),
            crate::client::strerror(error),
            error.raw_os_error().unwrap_or(0)
        )
    };
    for p in problems {
        match p {
            ScanProblem::Missing { path, error } => {
                messages.push((MsgTag::ErrorXfer, err_text("link_stat", path, error)));
                // A name that is not there does not stop the receiver's deletions (the
                // error still makes the exit code 23).
                if error.kind() != std::io::ErrorKind::NotFound {
                    io_error |= IOERR_GENERAL;
                }
            }
            ScanProblem::ChangeDir { path, error } => {
                // (Shown without its trailing slash, as stock's full_fname shows it.)
                let text = path.to_string_lossy();
                let trimmed = text.trim_end_matches('/');
                let path = std::path::Path::new(if trimmed.is_empty() { "/" } else { trimmed });
                messages.push((MsgTag::ErrorXfer, err_text("change_dir", path, error)));
                io_error |= IOERR_GENERAL;
            }
            ScanProblem::ReadDir { path, error } => {
                messages.push((MsgTag::ErrorXfer, err_text("opendir", path, error)));
                io_error |= IOERR_GENERAL;
            }
            ScanProblem::ReadlinkStat { path, error } => {
                messages.push((
                    MsgTag::ErrorXfer,
                    format!(
                        "rsync: [sender] readlink_stat(\"{}\") failed: {} ({})\n",
                        full(path),
                        crate::client::strerror(error),
                        error.raw_os_error().unwrap_or(0)
                    ),
                ));
                io_error |= IOERR_GENERAL;
            }
            ScanProblem::NoReferent { path } => {
                messages.push((
                    MsgTag::ErrorXfer,
                    format!("symlink has no referent: \"{}\"\n", full(path)),
                ));
                io_error |= IOERR_GENERAL;
            }
            ScanProblem::CopyingUnsafe { name, target } => {
                messages.push((
                    MsgTag::Info,
                    format!(
                        "copying unsafe symlink \"{}\" -> \"{}\"\n",
                        rtsync_engine::report::lossless_text(name),
                        rtsync_engine::report::lossless_text(target)
                    ),
                ));
            }
            ScanProblem::Vanished { path } => {
                messages.push((
                    MsgTag::Warning,
                    format!("file has vanished: \"{}\"\n", full(path)),
                ));
                io_error |= IOERR_VANISHED;
            }
            ScanProblem::Skipped { name, directory } => {
                let text = if *directory {
                    format!(
                        "skipping directory {}\n",
                        rtsync_engine::report::lossless_text(name)
                    )
                } else {
                    format!(
                        "skipping non-regular file \"{}\"\n",
                        rtsync_engine::report::lossless_text(name)
                    )
                };
                messages.push((MsgTag::Info, text));
            }
            ScanProblem::Note { text } => messages.push((MsgTag::Info, format!("{text}\n"))),
            ScanProblem::TooLong { dir, name, over } => {
                let text = rtsync_engine::local::too_long_text(dir, name, *over);
                messages.push((MsgTag::ErrorXfer, format!("{text}\n")));
                io_error |= IOERR_GENERAL;
            }
            ScanProblem::Unconvertible { text } => {
                messages.push((MsgTag::ErrorXfer, format!("{text}\n")));
                io_error |= IOERR_GENERAL;
            }
            _ => {}
        }
    }
    (messages, io_error)
}

/// Prints the closing `sent … received …` lines (with `-v`) and `--stats` for a push,
/// from the list's counts (the list keeps no per-entry sizes).
fn finish_report(
    opts: &Options,
    mut reporter: Reporter,
    (total_size, kind_counts): (u64, [u64; 7]),
    sent: &std::sync::atomic::AtomicU64,
    received: &std::sync::atomic::AtomicU64,
    (started, build_ms): (std::time::Instant, i64),
    xfer: &push::PushStats,
) {
    use std::sync::atomic::Ordering::Relaxed;
    if opts.quiet || opts.info_stats() == 0 {
        return;
    }
    let mut s = rtsync_engine::report::Stats {
        sent: xfer.totals.map_or_else(|| sent.load(Relaxed), |t| t.1),
        received: xfer.totals.map_or_else(|| received.load(Relaxed), |t| t.0),
        transferred: xfer.files_sent,
        literal: xfer.literal_bytes,
        matched: xfer.matched_bytes,
        transferred_size: xfer.transferred_size,
        total_size,
        ..Default::default()
    };
    // The receiver's counts per kind (its NDX_DEL_STATS).
    match xfer.deleted_stats {
        Some(d) => s.deleted = d.map(|n| n.max(0) as u64),
        None => s.deleted[0] = xfer.deleted,
    }
    s.created = xfer.created;
    for (code, n) in kind_counts.iter().enumerate() {
        let kind = push::streamed::code_kind(code as u8);
        s.files[rtsync_engine::report::kind_slot(kind)] += n;
    }
    if opts.info_stats() >= 2 {
        reporter.stats(&s, build_ms as f64 / 1000.0, 0.0);
    }
    reporter.summary(&s, started.elapsed().as_secs_f64(), opts.dry_run);
    reporter.flush();
}

pub(crate) fn file_sum(
    path: &std::path::Path,
    neg: &negotiate::Negotiated,
) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = FileHasher::new(neg.file_checksum);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish().as_bytes().to_vec())
}

type Names = Vec<(u32, Vec<u8>)>;

/// The uid/gid → name lists to send (empty when not preserving or with `--numeric-ids`).
pub(crate) fn id_names(opts: &Options, list: &SendList) -> (Names, Names) {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    if opts.numeric_ids {
        return (users, groups);
    }
    let mut seen_u = std::collections::BTreeSet::new();
    let mut seen_g = std::collections::BTreeSet::new();
    for e in &list.entries {
        if opts.owner && seen_u.insert(e.uid) {
            if let Some(n) = local::user_name(e.uid) {
                users.push((e.uid, n));
            }
        }
        if opts.group && seen_g.insert(e.gid) {
            if let Some(n) = local::group_name(e.gid) {
                groups.push((e.gid, n));
            }
        }
    }
    (users, groups)
}

/// The path of a remote `--files-from` list (`host:LIST` or `:LIST`): the server reads it.
pub fn remote_files_from(opts: &Options) -> Option<String> {
    let text = opts.files_from.as_ref()?.to_string_lossy();
    match crate::client::parse_remote(&text)? {
        crate::client::Remote::Shell { path, .. } | crate::client::Remote::Daemon { path, .. } => {
            Some(path)
        }
    }
}

/// The names of a local `--files-from` list (`None` without the option, or when the list is
/// on the remote side), read as the sender reads it or as a client forwards it.
pub(crate) fn local_files_from(opts: &Options, usage: ListUse) -> Result<Option<Vec<Vec<u8>>>> {
    let Some(list) = &opts.files_from else {
        return Ok(None);
    };
    let text = list.to_string_lossy();
    if remote_files_from(opts).is_some() {
        return Ok(None);
    }
    rtsync_engine::files_from::read_list(std::path::Path::new(list), opts.from0, usage)
        .map(Some)
        .map_err(|e| {
            Error::Usage(format!(
                "rsync: failed to open files-from file {}: {}",
                text,
                crate::client::strerror(&e)
            ))
        })
}
